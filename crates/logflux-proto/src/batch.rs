//! The binary encoding of a batch of entries (format version 1), the plaintext that the agent
//! compresses and seals. It is persisted inside sealed records, so it never changes: a new
//! layout gets a new version byte, and decoders keep reading every older version.
//!
//! ```text
//! batch   = "LFB" version:u8 count:varint entry{count}
//! entry   = timestamp_ns:zigzag-varint level:u8 entry_type:u8
//!           source:str payload_type:str payload:str
//!           pairs:varint (key:str value:str){pairs}
//! str     = len:varint utf8-bytes{len}
//! varint  = unsigned LEB128, at most 10 bytes
//! ```
//!
//! Decoding checks every length against the bytes that remain, so a hostile input cannot make
//! it allocate more than the input's size, and every field against the entry's rules.

use std::collections::BTreeMap;

use crate::codec::{ReadError, Reader, put_str, put_varint, unzigzag, zigzag};
use crate::entry::{Entry, EntryType, Level};

const MAGIC: &[u8; 3] = b"LFB";
/// The format version this crate writes.
pub const VERSION: u8 = 1;
/// Most entries in one batch: the agent's largest `batch.max_entries`. A decoded entry takes
/// more memory than its few encoded bytes, so this bounds what one record can cost a reader.
pub const MAX_ENTRIES: usize = 100_000;

/// Why a batch could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("not a LogFlux batch (bad magic)")]
    Magic,
    #[error("batch format version {0} is not supported (this build reads 1)")]
    Version(u8),
    #[error("batch is truncated at byte {0}")]
    Truncated(usize),
    #[error("bad varint at byte {0}")]
    Varint(usize),
    #[error("entry {entry}: {what}")]
    Invalid { entry: usize, what: &'static str },
    #[error("{0} bytes of trailing data after the last entry")]
    Trailing(usize),
    #[error("{0} entries in one batch (at most {max})", max = MAX_ENTRIES)]
    TooManyEntries(u64),
}

/// Appends the encoding of `entries` to `out`.
pub fn encode(entries: &[Entry], out: &mut Vec<u8>) {
    out.reserve(8 + entries.iter().map(Entry::approx_size).sum::<usize>());
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    put_varint(out, entries.len() as u64);
    for e in entries {
        put_varint(out, zigzag(e.timestamp_ns));
        out.push(e.level.number());
        out.push(e.entry_type.number());
        put_str(out, &e.source);
        put_str(out, &e.payload_type);
        put_str(out, &e.payload);
        put_varint(out, e.metadata.len() as u64);
        for (k, v) in &e.metadata {
            put_str(out, k);
            put_str(out, v);
        }
    }
}

/// Decodes a whole batch.
pub fn decode(buf: &[u8]) -> Result<Vec<Entry>, BatchError> {
    let mut r = Reader::new(buf);
    if r.take(3).map_err(read)? != MAGIC {
        return Err(BatchError::Magic);
    }
    let version = r.byte().map_err(read)?;
    if version != VERSION {
        return Err(BatchError::Version(version));
    }
    let count = r.varint().map_err(read)?;
    if count > MAX_ENTRIES as u64 {
        return Err(BatchError::TooManyEntries(count));
    }
    // Every entry takes at least 7 bytes, so a count beyond that is a lie.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= r.remaining() / 7)
        .ok_or(BatchError::Truncated(buf.len()))?;
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let invalid = |what| BatchError::Invalid { entry: i, what };
        let field = |e: ReadError| match e {
            ReadError::Utf8(_) => invalid("string is not UTF-8"),
            other => read(other),
        };
        let timestamp_ns = unzigzag(r.varint().map_err(read)?);
        let level = Level::from_number(i64::from(r.byte().map_err(read)?))
            .ok_or(invalid("level out of range"))?;
        let entry_type = EntryType::from_number(i64::from(r.byte().map_err(read)?))
            .ok_or(invalid("entry type out of range"))?;
        let source = r.string().map_err(field)?;
        let payload_type = r.string().map_err(field)?;
        let payload = r.string().map_err(field)?;
        let pairs = r.varint().map_err(read)?;
        if pairs > (r.remaining() / 2) as u64 {
            return Err(BatchError::Truncated(buf.len()));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..pairs {
            let k = r.string().map_err(field)?;
            let v = r.string().map_err(field)?;
            if metadata.insert(k, v).is_some() {
                return Err(invalid("duplicate metadata key"));
            }
        }
        entries.push(Entry {
            timestamp_ns,
            level,
            entry_type,
            source,
            payload,
            payload_type,
            metadata,
        });
    }
    if r.remaining() != 0 {
        return Err(BatchError::Trailing(r.remaining()));
    }
    Ok(entries)
}

fn read(e: ReadError) -> BatchError {
    match e {
        ReadError::Truncated(p) | ReadError::Utf8(p) => BatchError::Truncated(p),
        ReadError::Varint(p) => BatchError::Varint(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Entry> {
        let mut e = Entry::new(
            1_755_684_000_123_000_000,
            Level::Error,
            "api",
            "disk full on /var",
        );
        e.metadata.insert("host".into(), "web-1".into());
        e.metadata.insert("region".into(), "eu".into());
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

    #[test]
    fn empty_batch_round_trips() {
        let mut buf = Vec::new();
        encode(&[], &mut buf);
        assert_eq!(buf, b"LFB\x01\x00");
        assert_eq!(decode(&buf).unwrap(), Vec::<Entry>::new());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let mut buf = Vec::new();
        encode(&sample(), &mut buf);
        for n in 0..buf.len() {
            assert!(decode(&buf[..n]).is_err(), "prefix of {n} bytes decoded");
        }
        let mut extra = buf.clone();
        extra.push(0);
        assert_eq!(decode(&extra), Err(BatchError::Trailing(1)));
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
        assert_eq!(decode(b"LFB\x02\x00"), Err(BatchError::Version(2)));
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
        encode(&sample()[..1], &mut buf);
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
                    source,
                    payload,
                    payload_type,
                    metadata,
                },
            )
    }

    proptest! {
        #[test]
        fn round_trips(entries in proptest::collection::vec(arb_entry(), 0..20)) {
            let mut buf = Vec::new();
            encode(&entries, &mut buf);
            prop_assert_eq!(decode(&buf).unwrap(), entries);
        }

        #[test]
        fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
            let mut prefixed = b"LFB\x01".to_vec();
            prefixed.append(&mut bytes);
            let _ = decode(&prefixed);
        }
    }
}
