//! Decrypted records in memory, so a dashboard refreshing every 10 s does not decrypt the same
//! records again: records are immutable, so a record (application and record id) always opens
//! to the same entries.
//! Bounded by bytes (an estimate of what the entries hold), least recently used first out.
//! Nothing here is ever written to disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use logflux_proto::EntryView;
#[cfg(doc)]
use logflux_proto::Metadata;

/// The entries of one record.
pub(crate) type Entries = Arc<Vec<EntryView>>;

/// What an entry costs in memory, about: the struct in its vector, each string's heap block as
/// the allocator hands it out (rounded up, with its header), the metadata's vector of pairs and
/// its keys and values too long to be stored inline ([`Metadata::heap_size`]) and the fields.
/// Counting only
/// the strings' lengths came to about 40 % of the real cost: in `logflux-bench alerts` a full
/// 64 MiB cache grew the process by ~150 MiB; with this estimate, by ~60 MiB.
pub(crate) fn entry_bytes(e: &EntryView) -> usize {
    /// A heap block for `len` bytes: at least 32, a multiple of 16, 8 bytes of header.
    fn block(len: usize) -> usize {
        if len == 0 {
            0
        } else {
            (len + 8).next_multiple_of(16).max(32)
        }
    }
    let meta = e.metadata.heap_size();
    let fields: usize = e
        .fields
        .iter()
        .map(|(k, v)| block(k.len()) + v.to_string().len() + 64)
        .sum();
    std::mem::size_of::<EntryView>()
        + block(e.source.len())
        + block(e.payload.len())
        + block(e.payload_type.len())
        + meta
        + fields
}

/// The cost of a record's entries.
pub(crate) fn entries_bytes(v: &[EntryView]) -> usize {
    64 + v.iter().map(entry_bytes).sum::<usize>()
}

#[derive(Debug, Default)]
struct Inner {
    /// Record id → (entries, cost, last use).
    map: HashMap<String, (Entries, usize, u64)>,
    /// Last use → record id.
    order: BTreeMap<u64, String>,
    bytes: usize,
    tick: u64,
}

/// The cache; cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Cache {
    capacity: usize,
    inner: Mutex<Inner>,
}

/// Counters, for tests.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CacheStats {
    pub(crate) records: usize,
    pub(crate) bytes: usize,
}

impl Cache {
    pub(crate) fn new(capacity_bytes: usize) -> Cache {
        Cache {
            capacity: capacity_bytes,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The capacity in bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The entries of `record_id`, if held (then it is the most recently used).
    pub(crate) fn get(&self, record_id: &str) -> Option<Entries> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        inner.tick += 1;
        let tick = inner.tick;
        match inner.map.get_mut(record_id) {
            Some((entries, _, last)) => {
                inner.order.remove(last);
                *last = tick;
                inner.order.insert(tick, record_id.to_owned());
                Some(entries.clone())
            }
            None => None,
        }
    }

    /// Whether `record_id` is held (its use is not counted: [`Cache::get`] does that).
    pub(crate) fn contains(&self, record_id: &str) -> bool {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.map.contains_key(record_id)
    }

    /// Holds `entries` of `record_id`, letting out the least recently used records to stay
    /// within the capacity. A record larger than the whole capacity is not held.
    pub(crate) fn insert(&self, record_id: &str, entries: Entries) {
        let cost = entries_bytes(&entries) + record_id.len();
        if cost > self.capacity {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *g;
        if let Some((_, old, last)) = inner.map.remove(record_id) {
            inner.order.remove(&last);
            inner.bytes -= old;
        }
        while inner.bytes + cost > self.capacity {
            let Some((_, id)) = inner.order.pop_first() else {
                break;
            };
            if let Some((_, c, _)) = inner.map.remove(&id) {
                inner.bytes -= c;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, record_id.to_owned());
        inner
            .map
            .insert(record_id.to_owned(), (entries, cost, tick));
        inner.bytes += cost;
    }

    /// Bytes held (as [`entries_bytes`] counts them).
    pub(crate) fn used(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> CacheStats {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        CacheStats {
            records: g.map.len(),
            bytes: g.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::{Entry, Level};

    fn entries(payload: &str, n: usize) -> Entries {
        Arc::new(
            (0..n)
                .map(|i| Entry::new(i as i64, Level::Info, "s", payload).into())
                .collect(),
        )
    }

    #[test]
    fn least_recently_used_records_go_first_and_bytes_stay_bounded() {
        let one = entries_bytes(&entries(&"x".repeat(100), 1)) + 2;
        let c = Cache::new(one * 3);
        for id in ["r1", "r2", "r3"] {
            c.insert(id, entries(&"x".repeat(100), 1));
        }
        assert_eq!(c.stats().records, 3);
        // r1 used: r2 is now the least recently used.
        assert!(c.get("r1").is_some());
        c.insert("r4", entries(&"x".repeat(100), 1));
        assert!(c.get("r2").is_none(), "r2 was the least recently used");
        assert!(!c.contains("r2") && c.contains("r4"));
        for id in ["r1", "r3", "r4"] {
            assert!(c.get(id).is_some(), "{id}");
        }
        assert!(c.stats().bytes <= c.capacity());
        // A record larger than the whole cache is not held, and evicts nothing.
        c.insert("big", entries(&"y".repeat(10_000), 1));
        assert!(c.get("big").is_none());
        assert_eq!(c.stats().records, 3);
        // Replacing a record does not count it twice.
        c.insert("r1", entries(&"x".repeat(100), 1));
        assert_eq!(c.stats().records, 3);
        assert!(c.stats().bytes <= c.capacity());
    }

    #[test]
    fn an_entry_with_metadata_counts_its_vector_and_its_long_strings() {
        let plain: EntryView = Entry::new(0, Level::Info, "api", "GET / 200").into();
        let mut tagged = plain.clone();
        tagged.metadata.insert("host", "h1");
        // The first pair allocates the vector, with room for two pairs of inline strings.
        let pair = 2 * std::mem::size_of::<logflux_proto::CompactString>();
        let one = entry_bytes(&tagged) - entry_bytes(&plain);
        assert!((2 * pair..2 * pair + 64).contains(&one), "{one}");
        let mut two = plain.clone();
        two.metadata.insert("host", "h1");
        two.metadata.insert("region", "eu");
        assert_eq!(
            entry_bytes(&two),
            entry_bytes(&tagged),
            "the second fits the room"
        );
        // A value too long to be inline counts its own block.
        let mut long = plain.clone();
        long.metadata.insert("host", "h".repeat(100));
        assert!(entry_bytes(&long) - entry_bytes(&tagged) >= 100);
        assert!(entry_bytes(&plain) >= std::mem::size_of::<EntryView>());
    }

    #[test]
    fn many_records_never_exceed_the_bound() {
        let c = Cache::new(50_000);
        for i in 0..1000 {
            c.insert(&format!("r{i}"), entries("some log line", 3));
            assert!(c.stats().bytes <= 50_000);
        }
        assert!(c.get("r999").is_some());
        assert!(c.get("r0").is_none());
    }
}
