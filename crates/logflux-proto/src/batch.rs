//! The binary encoding of a batch of entries, the plaintext that the agent compresses and
//! seals. It is persisted inside sealed records, so a layout never changes once written: a new
//! layout gets a new version byte, and decoders keep reading every older version.
//!
//! Version 1, entry after entry (read, never written since version 2):
//!
//! ```text
//! batch   = "LFB" 1 count:varint entry{count}
//! entry   = timestamp_ns:zigzag-varint level:u8 entry_type:u8
//!           source:str payload_type:str payload:str
//!           pairs:varint (key:str value:str){pairs}
//! str     = len:varint utf8-bytes{len}
//! varint  = unsigned LEB128, at most 10 bytes
//! ```
//!
//! Version 2 (written today), column after column, so that like lies beside like for zstd and
//! what every entry repeats is written once:
//!
//! ```text
//! batch2  = "LFB" 2 count:varint
//!           dict:     n:varint str{n}                     sources, payload types, metadata keys
//!           common:   pairs:varint (key:idx value:str){pairs}   metadata every entry carries
//!           times:    zigzag-varint{count}   the first timestamp, then each one's difference
//!                                            from the one before (wrapping 64-bit arithmetic)
//!           levels:   u8{count}
//!           types:    u8{count}
//!           sources:  idx{count}
//!           ptypes:   idx{count}
//!           metadata: (pairs:varint (key:idx value:str){pairs}){count}   each entry's own
//!           lengths:  varint{count}          each payload's length in bytes
//!           payloads: utf8-bytes             the payloads, one after the other
//! idx     = varint, an index into dict
//! ```
//!
//! An entry's metadata is its own pairs and the common ones; keys within `common` and within
//! each entry's own pairs are strictly increasing, and no entry repeats a common key.
//!
//! Decoding checks every length against the bytes that remain, so a hostile input cannot make
//! it allocate more than a small multiple of the input's size, and every field against the
//! entry's rules. A version 2 batch whose entries, written as version 1, would exceed
//! [`limits::MAX_BATCH_PLAINTEXT_BYTES`] is refused, so a small batch cannot expand into a
//! large one (a long common value repeated in a hundred thousand entries).
//!
//! [`BatchView::parse`] reads either version without copying: its entries borrow their strings
//! from the decompressed batch. [`decode`] turns the view into owned [`Entry`]s.

use std::collections::HashMap;

use crate::codec::{ReadError, Reader, put_str, put_varint, unzigzag, zigzag};
use crate::entry::{Entry, EntryType, Level, limits};
use crate::metadata::{self, Metadata};

const MAGIC: &[u8; 3] = b"LFB";
/// The format version this crate writes.
pub const VERSION: u8 = 2;
/// The first version, entry after entry: still read, written only by [`encode_v1`].
pub const VERSION_1: u8 = 1;
/// Most entries in one batch: the agent's largest `batch.max_entries`. A decoded entry takes
/// more memory than its few encoded bytes, so this bounds what one record can cost a reader.
pub const MAX_ENTRIES: usize = 100_000;

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("not a LogFlux batch (bad magic)")]
    Magic,
    #[error("batch format version {0} is not supported (this build reads 1 and 2)")]
    Version(u8),
    #[error("batch is truncated at byte {0}")]
    Truncated(usize),
    #[error("bad varint at byte {0}")]
    Varint(usize),
    #[error("entry {entry}: {what}")]
    Invalid { entry: usize, what: &'static str },
    #[error("batch header: {0}")]
    Header(&'static str),
    #[error("{0} bytes of trailing data after the last entry")]
    Trailing(usize),
    #[error("{0} entries in one batch (at most {max})", max = MAX_ENTRIES)]
    TooManyEntries(u64),
    #[error("the entries would take more than {max} bytes", max = limits::MAX_BATCH_PLAINTEXT_BYTES)]
    TooLarge,
}

/// Appends the encoding of `entries` to `out`, in the current version (2): metadata that every
/// entry carries with the same value is written once, sources, payload types and metadata keys
/// once each in a dictionary.
pub fn encode(entries: &[Entry], out: &mut Vec<u8>) {
    encode_with(entries, &NO_DEFAULTS, out);
}

/// No default metadata.
static NO_DEFAULTS: Metadata = Metadata::new();

/// [`encode`] of `entries` as if each carried the pairs of `defaults` whose keys it lacks
/// (the agent's enrichment, `host` and `agent_id`): the same bytes as inserting them into every
/// entry's map first, without copying them into every entry.
pub fn encode_with(entries: &[Entry], defaults: &Metadata, out: &mut Vec<u8>) {
    out.reserve(16 + entries.iter().map(|e| e.payload.len() + 8).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put_varint(out, entries.len() as u64);
    // Pairs of the first entry that every other entry carries with the same value; sorted,
    // as the map iterates.
    let common: Vec<(&str, &str)> = match entries.split_first() {
        Some((first, rest)) => metadata_with(first, defaults)
            .filter(|(k, v)| {
                rest.iter().all(|e| {
                    metadata_value_with(e, defaults, k)
                        .is_some_and(|x| crate::same_bytes(x.as_bytes(), v.as_bytes()))
                })
            })
            .collect(),
        None => Vec::new(),
    };
    // The common keys are the dictionary's first names: a key is common when its id is below
    // their count.
    let mut dict = Dict::default();
    for (k, _) in &common {
        dict.id(k);
    }
    let mut sources = Vec::with_capacity(entries.len());
    let mut ptypes = Vec::with_capacity(entries.len());
    // Each entry's own (not common) pairs, as dictionary index and value, entry after entry,
    // and where each entry's end.
    let mut own: Vec<(u32, &str)> = Vec::with_capacity(entries.len());
    let mut own_ends: Vec<usize> = Vec::with_capacity(entries.len());
    for e in entries {
        sources.push(dict.id(&e.source));
        ptypes.push(dict.id(&e.payload_type));
        for (k, v) in metadata_with(e, defaults) {
            let id = dict.id(k);
            if id as usize >= common.len() {
                own.push((id, v));
            }
        }
        own_ends.push(own.len());
    }
    put_varint(out, dict.names.len() as u64);
    for name in &dict.names {
        put_str(out, name);
    }
    put_varint(out, common.len() as u64);
    for (k, v) in &common {
        put_varint(out, u64::from(dict.ids[k]));
        put_str(out, v);
    }
    let mut prev = 0i64;
    for e in entries {
        put_varint(out, zigzag(e.timestamp_ns.wrapping_sub(prev)));
        prev = e.timestamp_ns;
    }
    out.extend(entries.iter().map(|e| e.level.number()));
    out.extend(entries.iter().map(|e| e.entry_type.number()));
    for id in sources.into_iter().chain(ptypes) {
        put_varint(out, u64::from(id));
    }
    let mut start = 0;
    for end in own_ends {
        put_varint(out, (end - start) as u64);
        for (id, v) in &own[start..end] {
            put_varint(out, u64::from(*id));
            put_str(out, v);
        }
        start = end;
    }
    for e in entries {
        put_varint(out, e.payload.len() as u64);
    }
    for e in entries {
        out.extend_from_slice(e.payload.as_bytes());
    }
}

/// `entry`'s metadata with the pairs of `defaults` whose keys it lacks, in key order: the map
/// it would have after inserting them.
pub fn metadata_with<'a>(
    entry: &'a Entry,
    defaults: &'a Metadata,
) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    WithDefaults {
        own: entry.metadata.iter().peekable(),
        defaults: defaults.iter().peekable(),
    }
}

/// The value of `key` in [`metadata_with`]`(entry, defaults)`.
pub fn metadata_value_with<'a>(
    entry: &'a Entry,
    defaults: &'a Metadata,
    key: &str,
) -> Option<&'a str> {
    entry.metadata.get(key).or_else(|| defaults.get(key))
}

/// Two sorted maps merged by key, the first one's value kept where both hold a key.
struct WithDefaults<'a> {
    own: std::iter::Peekable<metadata::Iter<'a>>,
    defaults: std::iter::Peekable<metadata::Iter<'a>>,
}

impl<'a> Iterator for WithDefaults<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.own.peek(), self.defaults.peek()) {
            (Some((k, _)), Some((d, _))) => match crate::order_bytes(k.as_bytes(), d.as_bytes()) {
                std::cmp::Ordering::Less => self.own.next(),
                std::cmp::Ordering::Equal => {
                    self.defaults.next();
                    self.own.next()
                }
                std::cmp::Ordering::Greater => self.defaults.next(),
            },
            (Some(_), None) => self.own.next(),
            (None, _) => self.defaults.next(),
        }
    }
}

/// Strings of a version 2 batch's dictionary, numbered in order of first use.
#[derive(Default)]
struct Dict<'e> {
    ids: HashMap<&'e str, u32, foldhash::fast::RandomState>,
    names: Vec<&'e str>,
}

/// Up to this many names (a batch's sources, payload types and metadata keys, as a rule) a
/// lookup scans them for equal bytes instead of hashing: no hash, and no call into the C
/// library's `memcmp` per entry (issue 18, round 6).
const SCAN_NAMES: usize = 16;

impl<'e> Dict<'e> {
    fn id(&mut self, s: &'e str) -> u32 {
        let found = if self.names.len() <= SCAN_NAMES {
            self.names
                .iter()
                .position(|n| crate::same_bytes(n.as_bytes(), s.as_bytes()))
                .map(|i| i as u32)
        } else {
            self.ids.get(s).copied()
        };
        if let Some(id) = found {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(s, id);
        self.names.push(s);
        id
    }
}

/// Appends the version 1 encoding of `entries` to `out`: what agents wrote before version 2,
/// kept for golden files, tests and comparisons.
pub fn encode_v1(entries: &[Entry], out: &mut Vec<u8>) {
    encode_v1_with(entries, &NO_DEFAULTS, out);
}

/// [`encode_v1`] of `entries` as if each carried the pairs of `defaults` whose keys it lacks
/// (see [`encode_with`]).
pub fn encode_v1_with(entries: &[Entry], defaults: &Metadata, out: &mut Vec<u8>) {
    out.reserve(8 + entries.iter().map(Entry::approx_size).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.push(VERSION_1);
    put_varint(out, entries.len() as u64);
    for e in entries {
        put_varint(out, zigzag(e.timestamp_ns));
        out.push(e.level.number());
        out.push(e.entry_type.number());
        put_str(out, &e.source);
        put_str(out, &e.payload_type);
        put_str(out, &e.payload);
        put_varint(out, metadata_with(e, defaults).count() as u64);
        for (k, v) in metadata_with(e, defaults) {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

/// The length of the version 1 encoding of `entries`: the size the batch's entries take
/// written out one by one, which bounds what decoding any version may produce (see
/// [`limits::MAX_BATCH_PLAINTEXT_BYTES`]).
pub fn expanded_len(entries: &[Entry]) -> usize {
    expanded_len_with(entries, &NO_DEFAULTS)
}

/// [`expanded_len`] of `entries` as if each carried the pairs of `defaults` whose keys it lacks.
pub fn expanded_len_with(entries: &[Entry], defaults: &Metadata) -> usize {
    4 + varint_len(entries.len() as u64)
        + entries
            .iter()
            .map(|e| {
                let (mut pairs, mut bytes) = (0u64, 0usize);
                for (k, v) in metadata_with(e, defaults) {
                    pairs += 1;
                    bytes += str_len(k) + str_len(v);
                }
                entry_fixed_len(e.timestamp_ns, &e.source, &e.payload_type, &e.payload)
                    + varint_len(pairs)
                    + bytes
            })
            .sum::<usize>()
}

/// Whether [`expanded_len_with`]`(entries, defaults)` is at most `limit`. A bound that needs no
/// merge of each entry's pairs with `defaults` (each entry counted with all of `defaults`, its
/// own pairs' lengths summed) settles nearly every batch; only a batch near the limit is
/// measured exactly. (The exact walk was ~1.6 % of the agent's CPU per entry: docs/benchmarks.md,
/// issue 18 round 7.)
pub fn expanded_len_at_most(entries: &[Entry], defaults: &Metadata, limit: usize) -> bool {
    let defaults_bytes: usize = defaults.iter().map(|(k, v)| str_len(k) + str_len(v)).sum();
    let bound = 4
        + varint_len(entries.len() as u64)
        + entries
            .iter()
            .map(|e| {
                let own: usize = e
                    .metadata
                    .iter()
                    .map(|(k, v)| str_len(k) + str_len(v))
                    .sum();
                entry_fixed_len(e.timestamp_ns, &e.source, &e.payload_type, &e.payload)
                    + varint_len((e.metadata.len() + defaults.len()) as u64)
                    + own
                    + defaults_bytes
            })
            .sum::<usize>();
    bound <= limit || expanded_len_with(entries, defaults) <= limit
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

/// A version 1 entry's length without its metadata pairs.
fn entry_fixed_len(ts: i64, source: &str, payload_type: &str, payload: &str) -> usize {
    varint_len(zigzag(ts)) + 2 + str_len(source) + str_len(payload_type) + str_len(payload)
}

/// Decodes a whole batch, of either version, into owned entries.
pub fn decode(buf: &[u8]) -> Result<Vec<Entry>, BatchError> {
    Ok(BatchView::parse(buf)?
        .iter()
        .map(|e| e.to_entry())
        .collect())
}

/// A decoded batch whose entries borrow their strings from the encoded bytes: nothing is
/// copied but one small record per entry and per metadata pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchView<'a> {
    version: u8,
    entries: Vec<Raw<'a>>,
    /// Every entry's own metadata pairs, entry after entry.
    pairs: Vec<(&'a str, &'a str)>,
    /// Pairs every entry carries (version 2), sorted by key.
    common: Vec<(&'a str, &'a str)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Raw<'a> {
    timestamp_ns: i64,
    level: Level,
    entry_type: EntryType,
    source: &'a str,
    payload_type: &'a str,
    payload: &'a str,
    pairs_start: usize,
    pairs_end: usize,
}

/// One entry of a [`BatchView`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'v, 'a> {
    /// Nanoseconds since the Unix epoch, UTC.
    pub timestamp_ns: i64,
    pub level: Level,
    pub entry_type: EntryType,
    pub source: &'a str,
    pub payload_type: &'a str,
    pub payload: &'a str,
    /// The entry's own metadata pairs (in the order written: sorted by key in version 2).
    pub own: &'v [(&'a str, &'a str)],
    /// The pairs it shares with every entry of its batch, sorted by key; no key is in both.
    pub common: &'v [(&'a str, &'a str)],
}

impl<'a> EntryRef<'_, 'a> {
    /// Every metadata pair, the entry's own first, then the common ones.
    pub fn metadata(&self) -> impl Iterator<Item = (&'a str, &'a str)> + '_ {
        self.own.iter().chain(self.common).copied()
    }

    /// The value of metadata `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&'a str> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// An owned copy.
    pub fn to_entry(&self) -> Entry {
        Entry {
            timestamp_ns: self.timestamp_ns,
            level: self.level,
            entry_type: self.entry_type,
            source: self.source.into(),
            payload: self.payload.to_owned(),
            payload_type: self.payload_type.into(),
            metadata: self.metadata().collect(),
        }
    }
}

/// Most memory a view's own tables (dictionary, metadata pairs, entries) may take. Every item
/// takes at least a byte or two of the batch but 16 to 72 bytes in the tables, so without this a
/// hostile batch of a few MiB (compressing to almost nothing) could make each reader allocate
/// hundreds; the agent's batches (`limits::MAX_AGENT_BATCH_BYTES` of entries, each entry and
/// pair counted at ≥ 96 bytes) stay far below it.
const MAX_VIEW_TABLES_BYTES: usize = limits::MAX_BATCH_PLAINTEXT_BYTES;

impl<'a> BatchView<'a> {
    /// `TooLarge` when a dictionary of `dict` names, the pairs read so far plus `more_pairs`,
    /// and the entries would take more than [`MAX_VIEW_TABLES_BYTES`]; checked before reading
    /// (and allocating) them.
    fn check_tables(&self, dict: u64, more_pairs: u64) -> Result<(), BatchError> {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let pairs = (self.pairs.len() + self.common.len()).saturating_add(n(more_pairs));
        let bytes = n(dict)
            .saturating_mul(std::mem::size_of::<&str>())
            .saturating_add(pairs.saturating_mul(std::mem::size_of::<(&str, &str)>()))
            .saturating_add(
                self.entries
                    .capacity()
                    .saturating_mul(std::mem::size_of::<Raw<'_>>()),
            );
        if bytes > MAX_VIEW_TABLES_BYTES {
            return Err(BatchError::TooLarge);
        }
        Ok(())
    }

    /// Reads and checks a whole batch of either version.
    pub fn parse(buf: &'a [u8]) -> Result<Self, BatchError> {
        let mut r = Reader::new(buf);
        if r.take(3).map_err(read)? != MAGIC {
            return Err(BatchError::Magic);
        }
        let version = r.byte().map_err(read)?;
        if version != VERSION_1 && version != VERSION {
            return Err(BatchError::Version(version));
        }
        let count = r.varint().map_err(read)?;
        if count > MAX_ENTRIES as u64 {
            return Err(BatchError::TooManyEntries(count));
        }
        // Every entry takes at least 7 bytes in either version, so a count beyond that is a lie.
        let count = usize::try_from(count)
            .ok()
            .filter(|&c| c <= r.remaining() / 7)
            .ok_or(BatchError::Truncated(buf.len()))?;
        let mut view = BatchView {
            version,
            entries: Vec::with_capacity(count),
            pairs: Vec::new(),
            common: Vec::new(),
        };
        if version == VERSION_1 {
            view.parse_v1(&mut r, count)?;
        } else {
            view.parse_v2(&mut r, count, buf.len())?;
        }
        if r.remaining() != 0 {
            return Err(BatchError::Trailing(r.remaining()));
        }
        Ok(view)
    }

    fn parse_v1(&mut self, r: &mut Reader<'a>, count: usize) -> Result<(), BatchError> {
        for i in 0..count {
            let invalid = |what| BatchError::Invalid { entry: i, what };
            let field = |e: ReadError| match e {
                ReadError::Utf8(_) => invalid("string is not UTF-8"),
                other => read(other),
            };
            let timestamp_ns = unzigzag(r.varint().map_err(read)?);
            let level = level_of(r.byte().map_err(read)?).ok_or(invalid("level out of range"))?;
            let entry_type =
                type_of(r.byte().map_err(read)?).ok_or(invalid("entry type out of range"))?;
            let source = str_ref(r).map_err(field)?;
            let payload_type = str_ref(r).map_err(field)?;
            let payload = str_ref(r).map_err(field)?;
            let pairs = r.varint().map_err(read)?;
            if pairs > (r.remaining() / 2) as u64 {
                return Err(BatchError::Truncated(r.pos()));
            }
            self.check_tables(0, pairs)?;
            let pairs_start = self.pairs.len();
            for _ in 0..pairs {
                let k = str_ref(r).map_err(field)?;
                let v = str_ref(r).map_err(field)?;
                self.pairs.push((k, v));
            }
            if !keys_unique(&self.pairs[pairs_start..]) {
                return Err(invalid("duplicate metadata key"));
            }
            self.entries.push(Raw {
                timestamp_ns,
                level,
                entry_type,
                source,
                payload_type,
                payload,
                pairs_start,
                pairs_end: self.pairs.len(),
            });
        }
        Ok(())
    }

    fn parse_v2(&mut self, r: &mut Reader<'a>, count: usize, len: usize) -> Result<(), BatchError> {
        let utf8 = |e: ReadError| match e {
            ReadError::Utf8(_) => BatchError::Header("string is not UTF-8"),
            other => read(other),
        };
        let n = r.varint().map_err(read)?;
        if n > r.remaining() as u64 {
            return Err(BatchError::Truncated(len));
        }
        self.check_tables(n, 0)?;
        let mut dict = Vec::with_capacity(n as usize);
        for _ in 0..n {
            dict.push(str_ref(r).map_err(utf8)?);
        }
        let name = |r: &mut Reader<'a>| -> Result<Option<&'a str>, BatchError> {
            let i = r.varint().map_err(read)?;
            Ok(usize::try_from(i).ok().and_then(|i| dict.get(i).copied()))
        };
        let pairs = r.varint().map_err(read)?;
        if pairs > (r.remaining() / 2) as u64 {
            return Err(BatchError::Truncated(r.pos()));
        }
        self.check_tables(n, pairs)?;
        let mut common_len = 0usize;
        for _ in 0..pairs {
            let k = name(r)?.ok_or(BatchError::Header("dictionary index out of range"))?;
            let v = str_ref(r).map_err(utf8)?;
            if self.common.last().is_some_and(|(last, _)| *last >= k) {
                return Err(BatchError::Header("common metadata keys out of order"));
            }
            common_len += str_len(k) + str_len(v);
            self.common.push((k, v));
        }
        let mut prev = 0i64;
        for _ in 0..count {
            prev = prev.wrapping_add(unzigzag(r.varint().map_err(read)?));
            self.entries.push(Raw {
                timestamp_ns: prev,
                level: Level::Info,
                entry_type: EntryType::Log,
                source: "",
                payload_type: "",
                payload: "",
                pairs_start: 0,
                pairs_end: 0,
            });
        }
        let invalid = |entry, what| BatchError::Invalid { entry, what };
        let levels = r.take(count).map_err(read)?;
        let types = r.take(count).map_err(read)?;
        for (i, (e, (&l, &t))) in self
            .entries
            .iter_mut()
            .zip(levels.iter().zip(types))
            .enumerate()
        {
            e.level = level_of(l).ok_or(invalid(i, "level out of range"))?;
            e.entry_type = type_of(t).ok_or(invalid(i, "entry type out of range"))?;
        }
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.source = name(r)?.ok_or(invalid(i, "dictionary index out of range"))?;
        }
        for (i, e) in self.entries.iter_mut().enumerate() {
            e.payload_type = name(r)?.ok_or(invalid(i, "dictionary index out of range"))?;
        }
        let field = |i, e: ReadError| match e {
            ReadError::Utf8(_) => invalid(i, "string is not UTF-8"),
            other => read(other),
        };
        for (i, e) in self.entries.iter_mut().enumerate() {
            let pairs = r.varint().map_err(read)?;
            if pairs > (r.remaining() / 2) as u64 {
                return Err(BatchError::Truncated(r.pos()));
            }
            // (`self.entries` is borrowed by the loop: the same check, spelled out.)
            let tables = (n as usize)
                .saturating_mul(std::mem::size_of::<&str>())
                .saturating_add(
                    (self.pairs.len() + self.common.len())
                        .saturating_add(usize::try_from(pairs).unwrap_or(usize::MAX))
                        .saturating_mul(std::mem::size_of::<(&str, &str)>()),
                )
                .saturating_add(count.saturating_mul(std::mem::size_of::<Raw<'_>>()));
            if tables > MAX_VIEW_TABLES_BYTES {
                return Err(BatchError::TooLarge);
            }
            e.pairs_start = self.pairs.len();
            for _ in 0..pairs {
                let k = name(r)?.ok_or(invalid(i, "dictionary index out of range"))?;
                let v = str_ref(r).map_err(|e| field(i, e))?;
                if self.pairs[e.pairs_start..]
                    .last()
                    .is_some_and(|(last, _)| *last >= k)
                {
                    return Err(invalid(i, "metadata keys out of order"));
                }
                if self.common.binary_search_by(|(c, _)| (*c).cmp(k)).is_ok() {
                    return Err(invalid(i, "duplicate metadata key"));
                }
                self.pairs.push((k, v));
            }
            e.pairs_end = self.pairs.len();
        }
        let mut lengths = Vec::with_capacity(count);
        let mut total = 0usize;
        for _ in 0..count {
            let n = usize::try_from(r.varint().map_err(read)?).unwrap_or(usize::MAX);
            total = total.saturating_add(n);
            lengths.push(n);
        }
        if total > r.remaining() {
            return Err(BatchError::Truncated(len));
        }
        let mut expanded = 4 + varint_len(count as u64);
        // The payloads follow each other: validated as UTF-8 at once, then each cut at a
        // character boundary (`str::get`) — the same verdict, entry by entry, as validating each
        // alone, without a call per entry. When the whole is not UTF-8, each is validated alone
        // (to name the first entry at fault).
        let start = r.pos();
        let region = r.take(total).map_err(read)?;
        let whole = std::str::from_utf8(region).ok();
        let mut at = 0usize;
        for (i, (e, n)) in self.entries.iter_mut().zip(lengths).enumerate() {
            let end = at + n;
            let piece = match whole {
                Some(text) => text.get(at..end),
                None => std::str::from_utf8(&region[at..end]).ok(),
            };
            e.payload = piece.ok_or_else(|| field(i, ReadError::Utf8(start + at)))?;
            at = end;
            let own = &self.pairs[e.pairs_start..e.pairs_end];
            expanded = expanded
                .saturating_add(entry_fixed_len(
                    e.timestamp_ns,
                    e.source,
                    e.payload_type,
                    e.payload,
                ))
                .saturating_add(varint_len((own.len() + self.common.len()) as u64))
                .saturating_add(own.iter().map(|(k, v)| str_len(k) + str_len(v)).sum())
                .saturating_add(common_len);
            if expanded > limits::MAX_BATCH_PLAINTEXT_BYTES {
                return Err(BatchError::TooLarge);
            }
        }
        Ok(())
    }

    /// The format version it was written in.
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The metadata pairs every entry carries (version 2; empty for version 1), sorted by key.
    pub fn common(&self) -> &[(&'a str, &'a str)] {
        &self.common
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<EntryRef<'_, 'a>> {
        self.entries.get(i).map(|raw| self.entry(raw))
    }

    /// The entries in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntryRef<'_, 'a>> + '_ {
        self.entries.iter().map(|raw| self.entry(raw))
    }

    fn entry(&self, raw: &Raw<'a>) -> EntryRef<'_, 'a> {
        EntryRef {
            timestamp_ns: raw.timestamp_ns,
            level: raw.level,
            entry_type: raw.entry_type,
            source: raw.source,
            payload_type: raw.payload_type,
            payload: raw.payload,
            own: &self.pairs[raw.pairs_start..raw.pairs_end],
            common: &self.common,
        }
    }
}

fn level_of(b: u8) -> Option<Level> {
    Level::from_number(i64::from(b))
}

fn type_of(b: u8) -> Option<EntryType> {
    EntryType::from_number(i64::from(b))
}

/// A varint length and that many bytes of UTF-8, borrowed.
fn str_ref<'a>(r: &mut Reader<'a>) -> Result<&'a str, ReadError> {
    let start = r.pos();
    let b = r.bytes()?;
    std::str::from_utf8(b).map_err(|_| ReadError::Utf8(start))
}

/// Whether no two pairs share a key: linear when the keys are sorted (as written), else by
/// sorting a copy of the keys.
fn keys_unique(pairs: &[(&str, &str)]) -> bool {
    if pairs.windows(2).all(|w| w[0].0 < w[1].0) {
        return true;
    }
    let mut keys: Vec<&str> = pairs.iter().map(|(k, _)| *k).collect();
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1])
}

fn read(e: ReadError) -> BatchError {
    match e {
        ReadError::Truncated(p) | ReadError::Utf8(p) => BatchError::Truncated(p),
        ReadError::Varint(p) => BatchError::Varint(p),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Entry> {
        let mut e = Entry::new(
            1_755_684_000_123_000_000,
            Level::Error,
            "api",
            "disk full on /var",
        );
        e.metadata.insert("host", "web-1");
        e.metadata.insert("region", "eu");
        let mut m = Entry::new(-5, Level::Debug, "m", "");
        m.entry_type = EntryType::Metric;
        m.payload_type = "metrics".into();
        vec![e, m]
    }

    #[test]
    fn round_trip_sample() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
        assert_eq!(decode(&buf).unwrap(), sample());
    }

    /// Payloads are validated as one run of UTF-8 and cut per entry: a cut inside a character
    /// (two payloads that are UTF-8 only together) is the first entry's error, as when each is
    /// validated alone.
    #[test]
    fn a_payload_cut_inside_a_character_is_not_utf8() {
        let es = vec![
            Entry::new(1, Level::Info, "s", "xé"),
            Entry::new(2, Level::Info, "s", "yz"),
        ];
        let mut buf = Vec::new();
        encode(&es, &mut buf);
        assert_eq!(decode(&buf).unwrap(), es);
        // The payloads end the batch, after their lengths: 3 and 2, then "x\xc3\xa9yz".
        let n = buf.len();
        assert_eq!(&buf[n - 7..], b"\x03\x02x\xc3\xa9yz");
        buf[n - 7] = 2;
        buf[n - 6] = 3;
        let bad = Err(BatchError::Invalid {
            entry: 0,
            what: "string is not UTF-8",
        });
        assert_eq!(decode(&buf), bad);
        // Each alone UTF-8, the second not: the second's error.
        buf[n - 7] = 3;
        buf[n - 6] = 2;
        buf[n - 2] = 0xff;
        assert_eq!(
            decode(&buf),
            Err(BatchError::Invalid {
                entry: 1,
                what: "string is not UTF-8",
            })
        );
    }

    #[test]
    fn empty_batch_round_trips() {
        let mut buf = Vec::new();
        encode(&[], &mut buf);
        assert_eq!(buf, b"LFB\x02\x00\x00\x00");
        assert_eq!(decode(&buf).unwrap(), Vec::<Entry>::new());
        buf.clear();
        encode_v1(&[], &mut buf);
        assert_eq!(buf, b"LFB\x01\x00");
        assert_eq!(decode(&buf).unwrap(), Vec::<Entry>::new());
    }

    #[test]
    fn every_truncation_is_an_error() {
        for v1 in [true, false] {
            let mut buf = Vec::new();
            if v1 {
                encode_v1(&sample(), &mut buf);
            } else {
                encode(&sample(), &mut buf);
            }
            for n in 0..buf.len() {
                assert!(decode(&buf[..n]).is_err(), "prefix of {n} bytes decoded");
            }
            let mut extra = buf.clone();
            extra.push(0);
            assert_eq!(decode(&extra), Err(BatchError::Trailing(1)));
        }
    }

    #[test]
    fn more_entries_than_an_agent_batch_holds_are_refused() {
        let mut buf = Vec::new();
        encode(
            &vec![Entry::new(0, Level::Info, "", ""); MAX_ENTRIES],
            &mut buf,
        );
        assert_eq!(decode(&buf).unwrap().len(), MAX_ENTRIES);
        buf.clear();
        encode(
            &vec![Entry::new(0, Level::Info, "", ""); MAX_ENTRIES + 1],
            &mut buf,
        );
        assert_eq!(
            decode(&buf),
            Err(BatchError::TooManyEntries(MAX_ENTRIES as u64 + 1))
        );
    }

    #[test]
    fn header_errors() {
        assert_eq!(decode(b"XYZ\x01\x00"), Err(BatchError::Magic));
        assert_eq!(decode(b"LFB\x03\x00"), Err(BatchError::Version(3)));
        assert_eq!(decode(b"LFB\x00\x00"), Err(BatchError::Version(0)));
        // A count far beyond the input's size, and one beyond any batch.
        assert_eq!(decode(b"LFB\x01\xe8\x07"), Err(BatchError::Truncated(6)));
        assert_eq!(
            decode(b"LFB\x01\xff\xff\xff\xff\x0f"),
            Err(BatchError::TooManyEntries(u64::from(u32::MAX)))
        );
        // An 11-byte varint.
        assert!(matches!(
            decode(b"LFB\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
            Err(BatchError::Varint(4))
        ));
    }

    #[test]
    fn invalid_fields_are_errors() {
        let mut buf = Vec::new();
        encode_v1(&sample()[..1], &mut buf);
        // Byte 5.. is the timestamp varint; level follows it.
        let ts_len = buf[5..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
        let mut bad = buf.clone();
        bad[5 + ts_len] = 9;
        assert_eq!(
            decode(&bad),
            Err(BatchError::Invalid {
                entry: 0,
                what: "level out of range"
            })
        );
        let mut bad = buf.clone();
        bad[5 + ts_len + 1] = 0;
        assert_eq!(
            decode(&bad),
            Err(BatchError::Invalid {
                entry: 0,
                what: "entry type out of range"
            })
        );
        let mut bad = buf.clone();
        bad[5 + ts_len + 3] = 0xff; // first byte of source
        assert_eq!(
            decode(&bad),
            Err(BatchError::Invalid {
                entry: 0,
                what: "string is not UTF-8"
            })
        );
    }

    /// Agent-like entries: one file, one host, a parsed field that varies.
    fn agent_entries(n: usize) -> Vec<Entry> {
        (0..n)
            .map(|i| {
                let mut e = Entry::new(
                    1_764_000_000_000_000_000 + i as i64 * 1_000_000,
                    Level::Info,
                    "app",
                    &format!("GET /api/orders/{i} 200"),
                );
                e.metadata.insert("file", "/var/log/app/app.log");
                e.metadata.insert("host", "web-1");
                e.metadata.insert("status", format!("{}", 200 + i % 3));
                e
            })
            .collect()
    }

    #[test]
    fn common_metadata_is_written_once() {
        let entries = agent_entries(100);
        let mut v2 = Vec::new();
        encode(&entries, &mut v2);
        let mut v1 = Vec::new();
        encode_v1(&entries, &mut v1);
        assert!(
            v2.len() * 2 < v1.len(),
            "v2 {} bytes, v1 {}",
            v2.len(),
            v1.len()
        );
        assert_eq!(v2.windows(5).filter(|w| w == b"web-1").count(), 1);
        let view = BatchView::parse(&v2).unwrap();
        assert_eq!(
            view.common(),
            &[("file", "/var/log/app/app.log"), ("host", "web-1")]
        );
        let e = view.get(7).unwrap();
        assert_eq!(e.own, &[("status", "201")]);
        assert_eq!(e.metadata_value("host"), Some("web-1"));
        assert_eq!(e.payload, "GET /api/orders/7 200");
        assert_eq!(e.to_entry(), entries[7]);
        assert_eq!(decode(&v2).unwrap(), entries);
        assert_eq!(decode(&v1).unwrap(), entries);
        assert_eq!(BatchView::parse(&v1).unwrap().version(), 1);
    }

    #[test]
    fn v2_invalid_fields_are_errors() {
        // Hand-written: 1 entry, dict ["s", "k"], common k=v, t=0, level 7, type 1,
        // source 0, payload type 0, no own pairs, payload "x".
        let good: &[u8] = b"LFB\x02\x01\x02\x01s\x01k\x01\x01\x01v\x00\x07\x01\x00\x00\x00\x01x";
        let e = decode(good).unwrap();
        assert_eq!(e[0].metadata["k"], "v");
        assert_eq!(e[0].source, "s");
        let bad = |at: usize, byte: u8| {
            let mut b = good.to_vec();
            b[at] = byte;
            decode(&b)
        };
        assert_eq!(
            bad(11, 5),
            Err(BatchError::Header("dictionary index out of range"))
        );
        assert_eq!(
            bad(15, 9),
            Err(BatchError::Invalid {
                entry: 0,
                what: "level out of range"
            })
        );
        assert_eq!(
            bad(16, 0),
            Err(BatchError::Invalid {
                entry: 0,
                what: "entry type out of range"
            })
        );
        assert_eq!(
            bad(17, 2),
            Err(BatchError::Invalid {
                entry: 0,
                what: "dictionary index out of range"
            })
        );
        assert_eq!(
            bad(21, 0xff),
            Err(BatchError::Invalid {
                entry: 0,
                what: "string is not UTF-8"
            })
        );
        assert_eq!(bad(7, 0xff), Err(BatchError::Header("string is not UTF-8")));
        // An own pair repeating the common key.
        let dup: &[u8] =
            b"LFB\x02\x01\x02\x01s\x01k\x01\x01\x01v\x00\x07\x01\x00\x00\x01\x01\x01w\x01x";
        assert_eq!(
            decode(dup),
            Err(BatchError::Invalid {
                entry: 0,
                what: "duplicate metadata key"
            })
        );
        // Own keys out of order.
        let unordered: &[u8] =
            b"LFB\x02\x01\x02\x01s\x01k\x00\x00\x07\x01\x00\x00\x02\x00\x00\x01\x00\x01x";
        assert_eq!(
            decode(unordered),
            Err(BatchError::Invalid {
                entry: 0,
                what: "metadata keys out of order"
            })
        );
        // Common keys out of order.
        let common: &[u8] =
            b"LFB\x02\x01\x02\x01s\x01k\x02\x00\x00\x01\x00\x00\x07\x01\x00\x00\x00\x01x";
        assert_eq!(
            decode(common),
            Err(BatchError::Header("common metadata keys out of order"))
        );
    }

    #[test]
    fn v2_cannot_expand_beyond_the_plaintext_limit() {
        // 20 000 entries sharing one 1000-byte value: about 200 KB written, 20 MB as entries.
        let mut entries = vec![Entry::new(0, Level::Info, "", ""); 20_000];
        for e in &mut entries {
            e.metadata.insert("k", "v".repeat(1000));
        }
        assert!(expanded_len(&entries) > limits::MAX_BATCH_PLAINTEXT_BYTES);
        let mut buf = Vec::new();
        encode(&entries, &mut buf);
        assert!(buf.len() < 200_000);
        assert_eq!(decode(&buf), Err(BatchError::TooLarge));
        entries.truncate(15_000);
        buf.clear();
        encode(&entries, &mut buf);
        assert_eq!(decode(&buf).unwrap().len(), 15_000);
    }

    /// Items that cost a byte or two in the batch but 16–32 bytes in a view's tables: a
    /// dictionary of millions of empty names, or millions of metadata pairs, are refused before
    /// they are allocated (a few MiB of zeros compress to almost nothing).
    #[test]
    fn a_view_s_tables_are_bounded_whatever_the_batch_claims() {
        let varint = |mut v: u64, out: &mut Vec<u8>| loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        };
        // Version 2, no entries, a dictionary of 2 M empty names.
        let names = 2_000_000u64;
        let mut buf = b"LFB\x02".to_vec();
        varint(0, &mut buf);
        varint(names, &mut buf);
        buf.resize(buf.len() + names as usize, 0);
        varint(0, &mut buf);
        assert_eq!(BatchView::parse(&buf).err(), Some(BatchError::TooLarge));
        // The same with 100 000 names is a valid (empty) batch.
        let mut ok = b"LFB\x02".to_vec();
        varint(0, &mut ok);
        varint(100_000, &mut ok);
        ok.resize(ok.len() + 100_000, 0);
        varint(0, &mut ok);
        assert_eq!(BatchView::parse(&ok).map(|v| v.len()), Ok(0));
        // Version 1, one entry with 1 M metadata pairs of empty strings (2 MB).
        let pairs = 1_000_000u64;
        let mut v1 = b"LFB\x01".to_vec();
        varint(1, &mut v1);
        v1.extend_from_slice(&[0, 3, 1, 0, 0, 0]); // time 0, info, log, three empty strings
        varint(pairs, &mut v1);
        v1.resize(v1.len() + 2 * pairs as usize, 0);
        assert_eq!(BatchView::parse(&v1).err(), Some(BatchError::TooLarge));
    }

    #[test]
    fn timestamps_at_the_extremes_round_trip() {
        let entries: Vec<Entry> = [i64::MIN, i64::MAX, 0, -1, i64::MIN, 5]
            .iter()
            .map(|&t| Entry::new(t, Level::Info, "", ""))
            .collect();
        let mut buf = Vec::new();
        encode(&entries, &mut buf);
        assert_eq!(decode(&buf).unwrap(), entries);
    }

    #[test]
    fn zigzag_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1_755_684_000_123_000_000] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    pub(crate) fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<i64>(),
            1i64..=8,
            1i64..=7,
            ".{0,20}",
            any::<String>(),
            "[a-z_]{0,12}",
            proptest::collection::btree_map(".{0,8}", ".{0,16}", 0..4),
        )
            .prop_map(
                |(ts, l, t, source, payload, payload_type, metadata)| Entry {
                    timestamp_ns: ts,
                    level: Level::from_number(l).unwrap(),
                    entry_type: EntryType::from_number(t).unwrap(),
                    source: source.into(),
                    payload,
                    payload_type: payload_type.into(),
                    metadata: metadata.into(),
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips(entries in proptest::collection::vec(arb_entry(), 0..20)) {
            let mut buf = Vec::new();
            encode(&entries, &mut buf);
            prop_assert_eq!(decode(&buf).unwrap(), entries.clone());
            buf.clear();
            encode_v1(&entries, &mut buf);
            prop_assert_eq!(buf.len(), expanded_len(&entries));
            prop_assert_eq!(decode(&buf).unwrap(), entries);
        }

        /// Entries that share metadata, sources and payload types, as an agent's batch does.
        #[test]
        fn shared_metadata_round_trips(
            mut entries in proptest::collection::vec(arb_entry(), 1..20),
            // Up to 24 shared keys: past the 16 that the encoder scans for instead of
            // searching.
            shared in proptest::collection::btree_map("[a-f]{0,2}", ".{0,6}", 0..24),
            source in "[ab]{0,1}",
        ) {
            for (i, e) in entries.iter_mut().enumerate() {
                e.metadata.extend(shared.clone());
                if i % 2 == 0 {
                    e.source = source.as_str().into();
                }
            }
            let mut buf = Vec::new();
            encode(&entries, &mut buf);
            let view = BatchView::parse(&buf).unwrap();
            prop_assert_eq!(view.version(), VERSION);
            for (k, v) in &shared {
                prop_assert_eq!(view.iter().next().unwrap().metadata_value(k), Some(v.as_str()));
            }
            prop_assert!(view.common().len() >= shared.len());
            prop_assert_eq!(decode(&buf).unwrap(), entries);
        }

        /// Defaults applied while encoding give the bytes of the entries with the defaults
        /// inserted where they lack the key, in both versions, and the same expanded length.
        #[test]
        fn defaults_encode_as_inserted_pairs(
            mut entries in proptest::collection::vec(arb_entry(), 0..12),
            defaults in proptest::collection::btree_map("[a-d]{0,2}", ".{0,6}", 0..4),
            overridden in proptest::collection::vec(any::<bool>(), 12),
        ) {
            let defaults = Metadata::from(defaults);
            // Some entries carry a default's key with their own value, which they keep.
            for (e, o) in entries.iter_mut().zip(&overridden) {
                if *o && let Some(k) = defaults.keys().next() {
                    e.metadata.insert(k, "own");
                }
            }
            let enriched: Vec<Entry> = entries
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    for (k, v) in &defaults {
                        e.metadata.insert_if_absent(k, || v.into());
                    }
                    e
                })
                .collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            encode(&enriched, &mut a);
            encode_with(&entries, &defaults, &mut b);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(decode(&b).unwrap(), enriched.clone());
            a.clear();
            b.clear();
            encode_v1(&enriched, &mut a);
            encode_v1_with(&entries, &defaults, &mut b);
            prop_assert_eq!(&a, &b);
            let exact = expanded_len_with(&entries, &defaults);
            prop_assert_eq!(exact, expanded_len(&enriched));
            // The shortcut's answer is the exact one's at every limit around the length.
            for limit in [0, exact.saturating_sub(1), exact, exact + 1, exact + 4096] {
                prop_assert_eq!(expanded_len_at_most(&entries, &defaults, limit), exact <= limit);
            }
            for (e, x) in entries.iter().zip(&enriched) {
                let merged: Vec<(&str, &str)> = metadata_with(e, &defaults).collect();
                let want: Vec<(&str, &str)> =
                    x.metadata.iter().collect();
                prop_assert_eq!(merged, want);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            for version in [1u8, 2] {
                let mut prefixed = vec![b'L', b'F', b'B', version];
                prefixed.extend_from_slice(&bytes);
                let _ = decode(&prefixed);
            }
            bytes.clear();
        }

        /// Whatever a version 2 batch decodes to re-encodes to a batch that decodes the same.
        #[test]
        fn mutated_batches_never_panic(
            entries in proptest::collection::vec(arb_entry(), 1..6),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut buf = Vec::new();
            encode(&entries, &mut buf);
            let i = at.index(buf.len());
            buf[i] = byte;
            if let Ok(d) = decode(&buf) {
                let mut again = Vec::new();
                encode(&d, &mut again);
                prop_assert_eq!(decode(&again).unwrap(), d);
            }
        }
    }
}
