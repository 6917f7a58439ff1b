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

use crate::entry::{Entry, EntryType, Level};

const MAGIC: &[u8; 3] = b"LFB";
/// The format version this crate writes.
pub const VERSION: u8 = 1;

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
    let mut r = Reader { buf, pos: 0 };
    if r.take(3)? != MAGIC {
        return Err(BatchError::Magic);
    }
    let version = r.byte()?;
    if version != VERSION {
        return Err(BatchError::Version(version));
    }
    let count = r.varint()?;
    // Every entry takes at least 7 bytes, so a count beyond that is a lie.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= r.remaining() / 7)
        .ok_or(BatchError::Truncated(buf.len()))?;
    let mut entries = Vec::with_capacity(count);
    for i in 0..count {
        let invalid = |what| BatchError::Invalid { entry: i, what };
        let timestamp_ns = unzigzag(r.varint()?);
        let level =
            Level::from_number(i64::from(r.byte()?)).ok_or(invalid("level out of range"))?;
        let entry_type = EntryType::from_number(i64::from(r.byte()?))
            .ok_or(invalid("entry type out of range"))?;
        let source = r.string().map_err(|e| e.or_invalid(i))?;
        let payload_type = r.string().map_err(|e| e.or_invalid(i))?;
        let payload = r.string().map_err(|e| e.or_invalid(i))?;
        let pairs = r.varint()?;
        if pairs > (r.remaining() / 2) as u64 {
            return Err(BatchError::Truncated(buf.len()));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..pairs {
            let k = r.string().map_err(|e| e.or_invalid(i))?;
            let v = r.string().map_err(|e| e.or_invalid(i))?;
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

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum StrError {
    Batch(BatchError),
    Utf8,
}

impl StrError {
    fn or_invalid(self, entry: usize) -> BatchError {
        match self {
            StrError::Batch(e) => e,
            StrError::Utf8 => BatchError::Invalid {
                entry,
                what: "string is not UTF-8",
            },
        }
    }
}

impl From<BatchError> for StrError {
    fn from(e: BatchError) -> Self {
        StrError::Batch(e)
    }
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BatchError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(BatchError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, BatchError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, BatchError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(BatchError::Varint(start));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(BatchError::Varint(start))
    }

    fn string(&mut self) -> Result<String, StrError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| BatchError::Truncated(self.pos))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| StrError::Utf8)
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
    fn header_errors() {
        assert_eq!(decode(b"XYZ\x01\x00"), Err(BatchError::Magic));
        assert_eq!(decode(b"LFB\x02\x00"), Err(BatchError::Version(2)));
        // A count far beyond the input's size.
        assert_eq!(
            decode(b"LFB\x01\xff\xff\xff\xff\x0f"),
            Err(BatchError::Truncated(9))
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
