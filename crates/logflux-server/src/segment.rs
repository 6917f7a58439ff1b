//! Segments: the server's storage unit. One object holds many sealed records of one tenant and
//! application, followed by a footer with the record directory and what a search selects
//! records by. Version 2 (written since 2026-12-01) keeps a binary fuse filter per record and
//! the segment's Bloom filter; version 1 kept a token index (every distinct token in clear,
//! with its postings) and is still read.
//!
//! ```text
//! segment  = body{n} footer trailer
//! footer   = "LFSF" 0x02 n:varint record{n} filter{n} bloom_len:varint bloom{bloom_len}   (v2)
//!          | "LFSF" 0x01 n:varint record{n} index                                         (v1)
//! record   = offset:varint len:varint record_id:str key_id:str payload:u8 entry_type:u8
//!            nonce_len:u8 nonce{nonce_len} flags:u8 min_ts:zigzag max_ts:zigzag
//!            count:varint received_ns:zigzag
//! filter   = len:varint bytes{len}            (the record's token filter, [`tokenfilter`])
//! bloom    = the catalog's Bloom filter of the segment's tokens ([`bloom`]); empty: "maybe"
//! index    = t:varint (token:u64be postings:varint record_delta:varint{postings}){t}
//! trailer  = footer_len:u32le crc32c(footer):u32le "LFSG" 0x01           (13 bytes)
//! ```
//!
//! Bodies are the records' ciphertext exactly as ingested. Tokens are 64-bit: an agent token
//! is its own value; an SDK's opaque token string is mapped through [`opaque_token`]. The
//! trailer sits at a fixed distance from the end, so a reader fetches the last 13 bytes, then
//! the footer, then only the record ranges it needs. A torn or altered footer fails its CRC.
//! The trailer's layout (and its version byte, 1) is the same for both footer versions.
//!
//! [`tokenfilter`]: crate::tokenfilter
//! [`bloom`]: crate::bloom

use std::ops::Range;

use aws_lc_rs::digest;
use logflux_proto::codec::{ReadError, Reader, put_str, put_varint, unzigzag, zigzag};

use crate::{bloom, tokenfilter};

/// Bytes of the trailer at the end of every segment.
pub(crate) const TRAILER_LEN: usize = 13;
const FOOTER_MAGIC: &[u8; 4] = b"LFSF";
const TRAILER_MAGIC: &[u8; 4] = b"LFSG";
/// The trailer's version (its layout is the same under both footer versions).
const VERSION: u8 = 1;
/// Footer versions: 1 with the token index, 2 with per-record filters.
const FOOTER_V1: u8 = 1;
const FOOTER_V2: u8 = 2;

/// Why a segment could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SegmentError {
    #[error("segment is shorter than its trailer")]
    Short,
    #[error("segment trailer has a bad magic or version")]
    Trailer,
    #[error("segment footer checksum mismatch (torn or corrupted)")]
    Checksum,
    #[error("segment footer is malformed: {0}")]
    Footer(&'static str),
}

/// The metadata of one record, kept in the footer (and in query responses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordMeta {
    pub(crate) record_id: String,
    /// Empty for unencrypted (payload type 3) parts.
    pub(crate) key_id: String,
    /// `X-LF-Payload-Type`: 1, 3 or 4.
    pub(crate) payload: u8,
    /// `X-LF-Entry-Type` of SDK parts; 0 for agent batches.
    pub(crate) entry_type: u8,
    pub(crate) nonce: Option<[u8; 12]>,
    pub(crate) crlf_stripped: bool,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) count: u32,
    pub(crate) received_ns: i64,
    /// Sorted, deduplicated. Empty for a record read from a version 2 footer, whose tokens
    /// are not kept (only `filter`).
    pub(crate) tokens: Vec<u64>,
    /// The record's token filter as a version 2 footer stores it ([`crate::tokenfilter`]):
    /// `None` for a record not read from one (a writer builds it from `tokens`).
    pub(crate) filter: Option<Vec<u8>>,
}

/// A record's place in its segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecordEntry {
    pub(crate) meta: RecordMeta,
    pub(crate) range: Range<u64>,
}

/// The token of an opaque SDK token string: 16 hex digits are read as the token itself (so an
/// agent-style token matches either way), anything else is the first 8 bytes of its SHA-256.
pub(crate) fn opaque_token(s: &str) -> u64 {
    if let Some(v) = hex16(s.as_bytes()) {
        return v;
    }
    let d = digest::digest(&digest::SHA256, s.as_bytes());
    u64::from_be_bytes(d.as_ref()[..8].try_into().expect("32-byte digest"))
}

/// Nibble values of hex digits; 0xFF for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// 16 hex digits (either case) as a u64. Agents send thousands of tokens per request, so this
/// is on the ingest hot path: a table lookup per digit and one validity check at the end.
fn hex16(s: &[u8]) -> Option<u64> {
    let s: &[u8; 16] = s.try_into().ok()?;
    let mut v = 0u64;
    let mut bad = 0u8;
    for &b in s {
        let d = HEX[b as usize];
        bad |= d;
        v = (v << 4) | u64::from(d & 0x0F);
    }
    (bad & 0xF0 == 0).then_some(v)
}

/// Builds a segment in memory.
#[derive(Debug, Default)]
pub(crate) struct SegmentWriter {
    body: Vec<u8>,
    records: Vec<RecordEntry>,
}

/// What the catalog keeps about a finished segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
    pub(crate) records: u32,
    pub(crate) entries: u64,
    pub(crate) bytes: u64,
    /// The catalog's Bloom filter of the segment's tokens ([`crate::bloom`]).
    pub(crate) bloom: Vec<u8>,
    pub(crate) max_received_ns: i64,
}

impl SegmentWriter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Bytes of record bodies so far.
    pub(crate) fn body_len(&self) -> usize {
        self.body.len()
    }

    pub(crate) fn add(&mut self, meta: RecordMeta, body: &[u8]) {
        let start = self.body.len() as u64;
        self.body.extend_from_slice(body);
        self.records.push(RecordEntry {
            meta,
            range: start..self.body.len() as u64,
        });
    }

    /// The segment's bytes (footer version 2) and its summary.
    pub(crate) fn finish(self) -> (Vec<u8>, SegmentSummary) {
        let mut out = self.body;
        let footer_start = out.len();
        out.extend_from_slice(FOOTER_MAGIC);
        out.push(FOOTER_V2);
        let mut summary = put_records(&mut out, &self.records);
        let mut filter = Vec::new();
        for r in &self.records {
            match &r.meta.filter {
                Some(f) => put_bytes(&mut out, f),
                None => {
                    filter.clear();
                    let salt = tokenfilter::salt(&r.meta.record_id);
                    tokenfilter::build(&r.meta.tokens, salt, &mut filter);
                    put_bytes(&mut out, &filter);
                }
            }
        }
        // A record with a stored filter (a rewrite of a version 2 segment, after an erasure)
        // has no tokens left to build from: only the empty Bloom filter ("maybe" for every
        // token) has no false negatives without keeping the old segment's, which would go on
        // answering for the erased records' tokens.
        summary.bloom = if self.records.iter().any(|r| r.meta.filter.is_some()) {
            Vec::new()
        } else {
            let mut tokens: Vec<u64> = self
                .records
                .iter()
                .flat_map(|r| r.meta.tokens.iter().copied())
                .collect();
            tokens.sort_unstable();
            tokens.dedup();
            bloom::build(&tokens)
        };
        put_bytes(&mut out, &summary.bloom);
        finish_trailer(&mut out, footer_start, &mut summary);
        (out, summary)
    }

    /// The segment's bytes with a version 1 footer (the token index), as servers before
    /// 2026-12-01 wrote it: for tests of reading old segments.
    #[cfg(test)]
    pub(crate) fn finish_v1(self) -> (Vec<u8>, SegmentSummary) {
        let mut out = self.body;
        let footer_start = out.len();
        out.extend_from_slice(FOOTER_MAGIC);
        out.push(FOOTER_V1);
        let mut summary = put_records(&mut out, &self.records);
        // (token, record) pairs, sorted below: far cheaper than a map insert per occurrence.
        let mut pairs: Vec<(u64, u32)> = self
            .records
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.meta.tokens.iter().map(move |&t| (t, i as u32)))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let distinct = pairs.chunk_by(|a, b| a.0 == b.0).count();
        put_varint(&mut out, distinct as u64);
        let mut tokens = Vec::with_capacity(distinct);
        for run in pairs.chunk_by(|a, b| a.0 == b.0) {
            let token = run[0].0;
            out.extend_from_slice(&token.to_be_bytes());
            put_varint(&mut out, run.len() as u64);
            let mut prev = 0u32;
            for (j, &(_, r)) in run.iter().enumerate() {
                // Sorted, so postings ascend; store gaps.
                let delta = if j == 0 { r } else { r - prev };
                put_varint(&mut out, u64::from(delta));
                prev = r;
            }
            tokens.push(token);
        }
        summary.bloom = bloom::build(&tokens);
        finish_trailer(&mut out, footer_start, &mut summary);
        (out, summary)
    }
}

/// Writes the record directory (the same in both footer versions) and sums it up.
fn put_records(out: &mut Vec<u8>, records: &[RecordEntry]) -> SegmentSummary {
    put_varint(out, records.len() as u64);
    let mut summary = SegmentSummary {
        min_ts: i64::MAX,
        max_ts: i64::MIN,
        records: records.len() as u32,
        entries: 0,
        bytes: 0,
        bloom: Vec::new(),
        max_received_ns: i64::MIN,
    };
    for r in records {
        let m = &r.meta;
        put_varint(out, r.range.start);
        put_varint(out, r.range.end - r.range.start);
        put_str(out, &m.record_id);
        put_str(out, &m.key_id);
        out.push(m.payload);
        out.push(m.entry_type);
        match m.nonce {
            Some(n) => {
                out.push(12);
                out.extend_from_slice(&n);
            }
            None => out.push(0),
        }
        out.push(u8::from(m.crlf_stripped));
        put_varint(out, zigzag(m.min_ts));
        put_varint(out, zigzag(m.max_ts));
        put_varint(out, u64::from(m.count));
        put_varint(out, zigzag(m.received_ns));
        summary.min_ts = summary.min_ts.min(m.min_ts);
        summary.max_ts = summary.max_ts.max(m.max_ts);
        summary.entries += u64::from(m.count);
        summary.max_received_ns = summary.max_received_ns.max(m.received_ns);
    }
    summary
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends the trailer of the footer that starts at `footer_start`.
fn finish_trailer(out: &mut Vec<u8>, footer_start: usize, summary: &mut SegmentSummary) {
    let footer_len = (out.len() - footer_start) as u32;
    let crc = crc32c(&out[footer_start..]);
    out.extend_from_slice(&footer_len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(TRAILER_MAGIC);
    out.push(VERSION);
    summary.bytes = out.len() as u64;
}

/// Reads the trailer (the last [`TRAILER_LEN`] bytes): the footer's length and checksum.
pub(crate) fn parse_trailer(trailer: &[u8]) -> Result<(u32, u32), SegmentError> {
    if trailer.len() != TRAILER_LEN {
        return Err(SegmentError::Short);
    }
    if &trailer[8..12] != TRAILER_MAGIC || trailer[12] != VERSION {
        return Err(SegmentError::Trailer);
    }
    let len = u32::from_le_bytes(trailer[0..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(trailer[4..8].try_into().expect("4 bytes"));
    Ok((len, crc))
}

/// Where the footer lies in a segment of `segment_len` bytes, given the trailer's length.
pub(crate) fn footer_range(segment_len: u64, footer_len: u32) -> Result<Range<u64>, SegmentError> {
    let end = segment_len
        .checked_sub(TRAILER_LEN as u64)
        .ok_or(SegmentError::Short)?;
    let start = end
        .checked_sub(u64::from(footer_len))
        .ok_or(SegmentError::Footer("footer longer than the segment"))?;
    Ok(start..end)
}

/// A parsed footer: the record directory and what records are selected by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) records: Vec<RecordEntry>,
    tokens: Tokens,
}

/// How a footer's records are selected by token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tokens {
    /// Version 1: every distinct token and the records carrying it, sorted by token.
    Index(Vec<(u64, Vec<u32>)>),
    /// Version 2: a filter per record (in its [`RecordMeta::filter`]) and the segment's Bloom
    /// filter.
    Filters { bloom: Vec<u8> },
}

impl Footer {
    /// Parses a footer whose bytes were checked against `crc` from the trailer.
    pub(crate) fn parse(bytes: &[u8], crc: u32, segment_len: u64) -> Result<Footer, SegmentError> {
        if crc32c(bytes) != crc {
            return Err(SegmentError::Checksum);
        }
        let body_len = segment_len
            .checked_sub((bytes.len() + TRAILER_LEN) as u64)
            .ok_or(SegmentError::Short)?;
        let mut r = Reader::new(bytes);
        if r.take(4).map_err(read)? != FOOTER_MAGIC {
            return Err(SegmentError::Footer("bad magic"));
        }
        let version = r.byte().map_err(read)?;
        if version != FOOTER_V1 && version != FOOTER_V2 {
            return Err(SegmentError::Footer("unknown footer version"));
        }
        let n = count(&mut r, 8)?;
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            let start = r.varint().map_err(read)?;
            let len = r.varint().map_err(read)?;
            let end = start
                .checked_add(len)
                .ok_or(SegmentError::Footer("range overflow"))?;
            if end > body_len {
                return Err(SegmentError::Footer("record range outside the segment"));
            }
            let record_id = r.string().map_err(read)?;
            let key_id = r.string().map_err(read)?;
            let payload = r.byte().map_err(read)?;
            let entry_type = r.byte().map_err(read)?;
            let nonce = match r.byte().map_err(read)? {
                0 => None,
                12 => Some(r.array::<12>().map_err(read)?),
                _ => return Err(SegmentError::Footer("bad nonce length")),
            };
            let crlf_stripped = r.byte().map_err(read)? != 0;
            let min_ts = unzigzag(r.varint().map_err(read)?);
            let max_ts = unzigzag(r.varint().map_err(read)?);
            let count = u32::try_from(r.varint().map_err(read)?)
                .map_err(|_| SegmentError::Footer("count"))?;
            let received_ns = unzigzag(r.varint().map_err(read)?);
            records.push(RecordEntry {
                meta: RecordMeta {
                    record_id,
                    key_id,
                    payload,
                    entry_type,
                    nonce,
                    crlf_stripped,
                    min_ts,
                    max_ts,
                    count,
                    received_ns,
                    tokens: Vec::new(),
                    filter: None,
                },
                range: start..end,
            });
        }
        let tokens = if version == FOOTER_V2 {
            for rec in &mut records {
                let f = take_bytes(&mut r)?;
                tokenfilter::check(f).map_err(SegmentError::Footer)?;
                rec.meta.filter = Some(f.to_vec());
            }
            Tokens::Filters {
                bloom: take_bytes(&mut r)?.to_vec(),
            }
        } else {
            Tokens::Index(parse_index(&mut r, &mut records)?)
        };
        if r.remaining() != 0 {
            return Err(SegmentError::Footer("trailing bytes"));
        }
        Ok(Footer { records, tokens })
    }

    /// Parses the footer of a whole segment.
    pub(crate) fn from_segment(segment: &[u8]) -> Result<Footer, SegmentError> {
        let len = segment.len();
        if len < TRAILER_LEN {
            return Err(SegmentError::Short);
        }
        let (footer_len, crc) = parse_trailer(&segment[len - TRAILER_LEN..])?;
        let r = footer_range(len as u64, footer_len)?;
        Footer::parse(&segment[r.start as usize..r.end as usize], crc, len as u64)
    }

    /// The Bloom filter a version 2 footer stores (`None` for version 1, whose records carry
    /// their tokens).
    #[cfg(test)]
    pub(crate) fn stored_bloom(&self) -> Option<&[u8]> {
        match &self.tokens {
            Tokens::Filters { bloom } => Some(bloom),
            Tokens::Index(_) => None,
        }
    }

    /// Drops a version 2 footer's Bloom filter: only an erasure or a catalog rebuild needs
    /// it, and they parse the footer afresh; a cached footer for queries need not keep it.
    pub(crate) fn forget_bloom(&mut self) {
        if let Tokens::Filters { bloom } = &mut self.tokens {
            *bloom = Vec::new();
        }
    }

    /// What the catalog keeps about the segment this footer ends (`segment_len` bytes long):
    /// the same summary [`SegmentWriter::finish`] gave, so a lost catalog row can be rebuilt.
    pub(crate) fn summary(&self, segment_len: u64) -> SegmentSummary {
        let bloom = match &self.tokens {
            Tokens::Filters { bloom } => bloom.clone(),
            Tokens::Index(index) => {
                let tokens: Vec<u64> = index.iter().map(|(t, _)| *t).collect();
                bloom::build(&tokens)
            }
        };
        let mut s = SegmentSummary {
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            records: self.records.len() as u32,
            entries: 0,
            bytes: segment_len,
            bloom,
            max_received_ns: i64::MIN,
        };
        for r in &self.records {
            s.min_ts = s.min_ts.min(r.meta.min_ts);
            s.max_ts = s.max_ts.max(r.meta.max_ts);
            s.entries += u64::from(r.meta.count);
            s.max_received_ns = s.max_received_ns.max(r.meta.received_ns);
        }
        s
    }

    /// Indexes of records that overlap `[from, to]` and, for every group, may carry at least
    /// one of its tokens. No groups: every record in the time range. From a version 1 footer
    /// the selection is exact; from a version 2 footer it may hold a record that carries none
    /// of a group's tokens (a filter's false positive, ~0.4 % per token), never miss one that
    /// does. The client checks every entry it opens, so an extra record costs only its bytes.
    pub(crate) fn select(&self, from: i64, to: i64, groups: &[Vec<u64>]) -> Vec<usize> {
        let in_time = |i: usize| {
            let m = &self.records[i].meta;
            m.max_ts >= from && m.min_ts <= to
        };
        if groups.is_empty() {
            return (0..self.records.len()).filter(|&i| in_time(i)).collect();
        }
        let index = match &self.tokens {
            Tokens::Index(index) => index,
            Tokens::Filters { .. } => {
                return (0..self.records.len())
                    .filter(|&i| in_time(i))
                    .filter(|&i| {
                        let m = &self.records[i].meta;
                        let f = m.filter.as_deref().unwrap_or_default();
                        // Parsed once per record, then asked about every group's tokens.
                        let probe = tokenfilter::Probe::new(f, tokenfilter::salt(&m.record_id));
                        groups
                            .iter()
                            .all(|g| g.iter().any(|&t| probe.may_contain(t)))
                    })
                    .collect();
            }
        };
        let postings = |token: u64| -> &[u32] {
            match index.binary_search_by_key(&token, |(t, _)| *t) {
                Ok(i) => &index[i].1,
                Err(_) => &[],
            }
        };
        let mut candidates: Option<Vec<u32>> = None;
        for group in groups {
            let mut union: Vec<u32> = group.iter().flat_map(|t| postings(*t)).copied().collect();
            union.sort_unstable();
            union.dedup();
            candidates = Some(match candidates {
                None => union,
                Some(prev) => intersect(&prev, &union),
            });
            if candidates.as_ref().is_some_and(Vec::is_empty) {
                break;
            }
        }
        candidates
            .unwrap_or_default()
            .into_iter()
            .map(|i| i as usize)
            .filter(|&i| in_time(i))
            .collect()
    }
}

/// A version 1 token index; fills in the records' tokens.
fn parse_index(
    r: &mut Reader<'_>,
    records: &mut [RecordEntry],
) -> Result<Vec<(u64, Vec<u32>)>, SegmentError> {
    let t = count(r, 9)?;
    let mut index = Vec::with_capacity(t);
    let mut last_token = None;
    for _ in 0..t {
        let token = u64::from_be_bytes(r.array::<8>().map_err(read)?);
        if last_token.is_some_and(|l| l >= token) {
            return Err(SegmentError::Footer("token index not sorted"));
        }
        last_token = Some(token);
        let p = count(r, 1)?;
        let mut recs = Vec::with_capacity(p);
        let mut cur: u64 = 0;
        for j in 0..p {
            let d = r.varint().map_err(read)?;
            cur = if j == 0 { d } else { cur + d };
            if cur >= records.len() as u64 || (j > 0 && d == 0) {
                return Err(SegmentError::Footer("bad posting"));
            }
            recs.push(cur as u32);
            records[cur as usize].meta.tokens.push(token);
        }
        index.push((token, recs));
    }
    Ok(index)
}

/// A length-prefixed byte string.
fn take_bytes<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], SegmentError> {
    let n = count(r, 1)?;
    r.take(n).map_err(read)
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

fn read(e: ReadError) -> SegmentError {
    match e {
        ReadError::Truncated(_) => SegmentError::Footer("truncated"),
        ReadError::Varint(_) => SegmentError::Footer("varint overflow"),
        ReadError::Utf8(_) => SegmentError::Footer("string is not UTF-8"),
    }
}

/// A count of items that take at least `min_size` bytes each: bounded by what remains.
fn count(r: &mut Reader<'_>, min_size: usize) -> Result<usize, SegmentError> {
    let n = r.varint().map_err(read)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n.saturating_mul(min_size) <= r.remaining())
        .ok_or(SegmentError::Footer("count larger than the footer"))
}

#[cfg(test)]
mod tests;
