//! The `/v1/ingest` body: `multipart/mixed`, one part per record (PROTOCOL.md §2).
//!
//! [`parse`] splits a body into [`RawPart`]s. A delimiter is `--boundary` with the CRLF before
//! it optional, because the JavaScript SDK writes the next delimiter straight after a part's
//! ciphertext. A CRLF found before a delimiter is removed from the body and the part says so
//! ([`RawPart::crlf_stripped`]): the server cannot tell it from ciphertext that ends in `0d 0a`,
//! so a client whose tag check fails retries with the CRLF restored.
//!
//! [`IngestPart::from_raw`] reads the `X-LF-*` headers of one part into typed fields, with an
//! error that names the part and the header. [`Writer`] builds bodies the way the Java SDK does
//! (and the agent sends them).

use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use memchr::memmem;

use crate::entry::EntryType;
use crate::timefmt;

/// Limits that bound the work and memory one body can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most parts in one body (PROTOCOL.md: batches of at most 1000 parts).
    pub max_parts: usize,
    /// Largest part body in bytes.
    pub max_part_bytes: usize,
    /// Largest header block of one part, in bytes (agent parts carry their blind tokens here).
    pub max_header_bytes: usize,
    /// Most header lines in one part.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parts: 1000,
            max_part_bytes: 8 * 1024 * 1024,
            max_header_bytes: 192 * 1024,
            max_headers: 32,
        }
    }
}

/// Why a body or a part was refused. Every variant names the part (0-based) where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("Content-Type must be multipart/mixed with a boundary parameter, got {0:?}")]
    ContentType(String),
    #[error("boundary must be 1..70 characters, got {0}")]
    Boundary(usize),
    #[error("body has no opening boundary")]
    NoOpening,
    #[error("body has no parts")]
    Empty,
    #[error("more than {0} parts")]
    TooManyParts(usize),
    #[error("part {part}: {what}")]
    Part { part: usize, what: String },
}

fn part_err(part: usize, what: impl Into<String>) -> MultipartError {
    MultipartError::Part {
        part,
        what: what.into(),
    }
}

/// The boundary from a `Content-Type` header value such as
/// `multipart/mixed; boundary=0123…` (quoted or not).
pub fn boundary_from_content_type(content_type: &str) -> Result<&str, MultipartError> {
    let bad = || MultipartError::ContentType(content_type.chars().take(100).collect());
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime
        .get(..10)
        .is_some_and(|m| m.eq_ignore_ascii_case("multipart/"))
    {
        return Err(bad());
    }
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            if value.is_empty() || value.len() > 70 {
                return Err(MultipartError::Boundary(value.len()));
            }
            return Ok(value);
        }
    }
    Err(bad())
}

/// One part as it stands in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPart<'a> {
    /// Header lines as (name, value), names as sent.
    pub headers: Vec<(&'a str, &'a str)>,
    /// Where the body lies in the buffer given to [`parse`].
    pub body: Range<usize>,
    /// Whether a CRLF before the next delimiter was removed from the body.
    pub crlf_stripped: bool,
}

impl<'a> RawPart<'a> {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Splits `body` into parts.
pub fn parse<'a>(
    body: &'a [u8],
    boundary: &str,
    limits: &Limits,
) -> Result<Vec<RawPart<'a>>, MultipartError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(MultipartError::Boundary(boundary.len()));
    }
    let mut delimiter = Vec::with_capacity(boundary.len() + 2);
    delimiter.extend_from_slice(b"--");
    delimiter.extend_from_slice(boundary.as_bytes());
    let finder = memmem::Finder::new(&delimiter);

    // A preamble is allowed by RFC 2046 and ignored; SDKs send none.
    let start = finder.find(body).ok_or(MultipartError::NoOpening)?;
    let mut pos = start + delimiter.len();
    let mut parts = Vec::new();
    loop {
        let index = parts.len();
        // After a delimiter: `--` closes the body, otherwise optional padding then CRLF.
        if body[pos..].starts_with(b"--") {
            break;
        }
        pos = skip_line_end(body, pos).ok_or_else(|| {
            if pos >= body.len() {
                part_err(
                    index,
                    "body ends right after a boundary (no closing delimiter)",
                )
            } else {
                part_err(index, "boundary is not followed by a line break")
            }
        })?;
        if index == limits.max_parts {
            return Err(MultipartError::TooManyParts(limits.max_parts));
        }
        let (headers, body_start) = parse_headers(body, pos, index, limits)?;
        let max_end = body_start
            .saturating_add(limits.max_part_bytes)
            .saturating_add(2 + delimiter.len())
            .min(body.len());
        let found = finder
            .find(&body[body_start..max_end])
            .map(|i| body_start + i);
        let Some(delim_at) = found else {
            if max_end < body.len() {
                return Err(part_err(
                    index,
                    format!("body is larger than {} bytes", limits.max_part_bytes),
                ));
            }
            return Err(part_err(index, "body is not terminated by a boundary"));
        };
        let crlf_stripped = delim_at >= body_start + 2 && &body[delim_at - 2..delim_at] == b"\r\n";
        let end = if crlf_stripped {
            delim_at - 2
        } else {
            delim_at
        };
        if end - body_start > limits.max_part_bytes {
            return Err(part_err(
                index,
                format!("body is larger than {} bytes", limits.max_part_bytes),
            ));
        }
        parts.push(RawPart {
            headers,
            body: body_start..end,
            crlf_stripped,
        });
        pos = delim_at + delimiter.len();
    }
    if parts.is_empty() {
        return Err(MultipartError::Empty);
    }
    Ok(parts)
}

/// Skips transport padding (spaces, tabs) and one CRLF or LF; `None` if there is none.
fn skip_line_end(body: &[u8], mut pos: usize) -> Option<usize> {
    while matches!(body.get(pos), Some(b' ' | b'\t')) {
        pos += 1;
    }
    match body.get(pos..pos + 2) {
        Some(b"\r\n") => Some(pos + 2),
        _ if body.get(pos) == Some(&b'\n') => Some(pos + 1),
        _ => None,
    }
}

/// Header lines of one part, as (name, value).
type Headers<'a> = Vec<(&'a str, &'a str)>;

fn parse_headers<'a>(
    body: &'a [u8],
    start: usize,
    index: usize,
    limits: &Limits,
) -> Result<(Headers<'a>, usize), MultipartError> {
    let window = &body[start..body.len().min(start + limits.max_header_bytes + 4)];
    let (block_len, sep_len) = match (
        memmem::find(window, b"\r\n\r\n"),
        window.starts_with(b"\r\n"),
    ) {
        (_, true) => (0, 2),
        (Some(i), false) => (i, 4),
        (None, false) => match memmem::find(window, b"\n\n") {
            Some(i) => (i, 2),
            None if window.len() > limits.max_header_bytes => {
                return Err(part_err(
                    index,
                    format!("headers are larger than {} bytes", limits.max_header_bytes),
                ));
            }
            None => return Err(part_err(index, "headers are not followed by a blank line")),
        },
    };
    if block_len > limits.max_header_bytes {
        return Err(part_err(
            index,
            format!("headers are larger than {} bytes", limits.max_header_bytes),
        ));
    }
    let block = std::str::from_utf8(&window[..block_len])
        .map_err(|_| part_err(index, "headers are not UTF-8"))?;
    let mut headers = Vec::new();
    for line in block.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if headers.len() == limits.max_headers {
            return Err(part_err(
                index,
                format!("more than {} header lines", limits.max_headers),
            ));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| {
            part_err(
                index,
                format!("header line without a colon: {:?}", truncate(line)),
            )
        })?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(part_err(
                index,
                format!("bad header name {:?}", truncate(name)),
            ));
        }
        headers.push((name, value.trim()));
    }
    Ok((headers, start + block_len + sep_len))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// What a part's body holds (`X-LF-Payload-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartPayload {
    /// 1: AES-256-GCM over gzip(JSON) (or JSON when the SDK's compression is off), no associated
    /// data. Entry types 1..6.
    SdkEncrypted,
    /// 3: gzip(JSON), not encrypted. Entry type 7.
    SdkGzip,
    /// 4: a LogFlux agent sealed batch: AES-256-GCM over zstd of a [`crate::batch`], with
    /// associated data binding tenant, application, key id and record id.
    AgentBatch,
}

impl PartPayload {
    /// The header value.
    pub fn number(self) -> u8 {
        match self {
            PartPayload::SdkEncrypted => 1,
            PartPayload::SdkGzip => 3,
            PartPayload::AgentBatch => 4,
        }
    }

    /// The payload kind for header value `n`.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            1 => Some(PartPayload::SdkEncrypted),
            3 => Some(PartPayload::SdkGzip),
            4 => Some(PartPayload::AgentBatch),
            _ => None,
        }
    }

    /// Whether the body is encrypted (and so needs a key id and a nonce).
    pub fn is_encrypted(self) -> bool {
        !matches!(self, PartPayload::SdkGzip)
    }
}

/// Header names, as the SDKs write them.
pub mod headers {
    pub const ENTRY_TYPE: &str = "X-LF-Entry-Type";
    pub const PAYLOAD_TYPE: &str = "X-LF-Payload-Type";
    pub const TIMESTAMP: &str = "X-LF-Timestamp";
    pub const KEY_ID: &str = "X-LF-Key-ID";
    pub const NONCE: &str = "X-LF-Nonce";
    pub const SEARCH_TOKENS: &str = "X-LF-Search-Tokens";
    pub const RECORD_ID: &str = "X-LF-Record-ID";
    pub const COUNT: &str = "X-LF-Count";
    pub const TIME_RANGE: &str = "X-LF-Time-Range";
}

/// Most search tokens on one part.
pub const MAX_SEARCH_TOKENS: usize = 8192;
/// Longest key id or record id.
pub const MAX_ID_LEN: usize = 128;

/// One part with its `X-LF-*` headers read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestPart<'a> {
    pub payload: PartPayload,
    /// Required for SDK parts; absent on agent batches, which may mix types.
    pub entry_type: Option<EntryType>,
    /// `X-LF-Timestamp` in Unix nanoseconds.
    pub timestamp_ns: Option<i64>,
    pub key_id: Option<&'a str>,
    pub nonce: Option<[u8; 12]>,
    /// Opaque tokens, compared for equality.
    pub search_tokens: Vec<&'a str>,
    /// The agent's idempotency key.
    pub record_id: Option<&'a str>,
    /// Entries in an agent batch.
    pub count: Option<u32>,
    /// First and last entry time of an agent batch, Unix nanoseconds.
    pub time_range: Option<(i64, i64)>,
    pub body: Range<usize>,
    pub crlf_stripped: bool,
}

impl<'a> IngestPart<'a> {
    /// Reads and checks the headers of part number `index`.
    pub fn from_raw(raw: &RawPart<'a>, index: usize) -> Result<Self, MultipartError> {
        let err = |what: String| part_err(index, what);
        let payload_value = raw
            .header(headers::PAYLOAD_TYPE)
            .ok_or_else(|| err(format!("{} is required (1, 3 or 4)", headers::PAYLOAD_TYPE)))?;
        let payload = payload_value
            .parse::<u8>()
            .ok()
            .and_then(PartPayload::from_number)
            .ok_or_else(|| {
                err(format!(
                    "{} must be 1, 3 or 4, got {:?}",
                    headers::PAYLOAD_TYPE,
                    truncate(payload_value)
                ))
            })?;
        let entry_type = match raw.header(headers::ENTRY_TYPE) {
            None if payload == PartPayload::AgentBatch => None,
            None => return Err(err(format!("{} is required (1..7)", headers::ENTRY_TYPE))),
            Some(v) => Some(
                v.parse::<i64>()
                    .ok()
                    .and_then(EntryType::from_number)
                    .ok_or_else(|| {
                        err(format!(
                            "{} must be 1..7, got {:?}",
                            headers::ENTRY_TYPE,
                            truncate(v)
                        ))
                    })?,
            ),
        };
        let timestamp_ns = raw
            .header(headers::TIMESTAMP)
            .map(|v| {
                timefmt::parse_rfc3339(v)
                    .map_err(|e| err(format!("{} {:?}: {e}", headers::TIMESTAMP, truncate(v))))
            })
            .transpose()?;
        let key_id = raw.header(headers::KEY_ID);
        if let Some(k) = key_id {
            check_id(k, headers::KEY_ID, index)?;
        }
        let nonce = raw
            .header(headers::NONCE)
            .map(|v| {
                BASE64
                    .decode(v)
                    .ok()
                    .and_then(|n| <[u8; 12]>::try_from(n).ok())
                    .ok_or_else(|| err(format!("{} must be base64 of 12 bytes", headers::NONCE)))
            })
            .transpose()?;
        if payload.is_encrypted() && (key_id.is_none() || nonce.is_none()) {
            return Err(err(format!(
                "encrypted parts need {} and {}",
                headers::KEY_ID,
                headers::NONCE
            )));
        }
        let search_tokens: Vec<&str> = raw
            .header(headers::SEARCH_TOKENS)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if search_tokens.len() > MAX_SEARCH_TOKENS {
            return Err(err(format!(
                "{} has {} tokens, the limit is {MAX_SEARCH_TOKENS}",
                headers::SEARCH_TOKENS,
                search_tokens.len()
            )));
        }
        let record_id = raw.header(headers::RECORD_ID);
        if let Some(r) = record_id {
            check_id(r, headers::RECORD_ID, index)?;
        }
        let count = raw
            .header(headers::COUNT)
            .map(|v| {
                v.parse::<u32>().ok().filter(|&c| c > 0).ok_or_else(|| {
                    err(format!(
                        "{} must be a positive integer, got {:?}",
                        headers::COUNT,
                        truncate(v)
                    ))
                })
            })
            .transpose()?;
        let time_range = raw
            .header(headers::TIME_RANGE)
            .map(|v| parse_time_range(v).map_err(err))
            .transpose()?;
        if payload == PartPayload::AgentBatch
            && (record_id.is_none() || count.is_none() || time_range.is_none())
        {
            return Err(err(format!(
                "agent batches need {}, {} and {}",
                headers::RECORD_ID,
                headers::COUNT,
                headers::TIME_RANGE
            )));
        }
        Ok(IngestPart {
            payload,
            entry_type,
            timestamp_ns,
            key_id,
            nonce,
            search_tokens,
            record_id,
            count,
            time_range,
            body: raw.body.clone(),
            crlf_stripped: raw.crlf_stripped,
        })
    }
}

fn check_id(v: &str, header: &str, index: usize) -> Result<(), MultipartError> {
    if v.is_empty()
        || v.len() > MAX_ID_LEN
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(part_err(
            index,
            format!("{header} must be 1..{MAX_ID_LEN} characters of A-Z, a-z, 0-9, -, _ or ."),
        ));
    }
    Ok(())
}

/// `START/END`, two RFC 3339 timestamps (an ISO 8601 interval), START ≤ END.
pub fn parse_time_range(v: &str) -> Result<(i64, i64), String> {
    let bad = || {
        format!(
            "{} must be START/END in RFC 3339, got {:?}",
            headers::TIME_RANGE,
            truncate(v)
        )
    };
    let (a, b) = v.split_once('/').ok_or_else(bad)?;
    let a = timefmt::parse_rfc3339(a.trim()).map_err(|_| bad())?;
    let b = timefmt::parse_rfc3339(b.trim()).map_err(|_| bad())?;
    if a > b {
        return Err(format!("{} starts after it ends", headers::TIME_RANGE));
    }
    Ok((a, b))
}

/// Formats a time range for [`headers::TIME_RANGE`].
pub fn format_time_range(start_ns: i64, end_ns: i64) -> String {
    format!(
        "{}/{}",
        timefmt::format_rfc3339(start_ns),
        timefmt::format_rfc3339(end_ns)
    )
}

/// Builds a multipart body: CRLF before every delimiter, no preamble, epilogue `\r\n`.
#[derive(Debug)]
pub struct Writer {
    boundary: String,
    buf: Vec<u8>,
}

impl Writer {
    /// A body with `boundary` (1..70 characters of `[0-9A-Za-z'()+_,-./:=?]`).
    pub fn new(boundary: impl Into<String>) -> Self {
        Writer {
            boundary: boundary.into(),
            buf: Vec::new(),
        }
    }

    /// The `Content-Type` header value.
    pub fn content_type(&self) -> String {
        format!("multipart/mixed; boundary={}", self.boundary)
    }

    /// Appends a part. Header values must not contain CR or LF.
    pub fn part(&mut self, headers: &[(&str, &str)], body: &[u8]) -> &mut Self {
        if !self.buf.is_empty() {
            self.buf.extend_from_slice(b"\r\n");
        }
        self.buf.extend_from_slice(b"--");
        self.buf.extend_from_slice(self.boundary.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            debug_assert!(
                !value.contains(['\r', '\n']),
                "header value with a line break"
            );
            self.buf.extend_from_slice(name.as_bytes());
            self.buf.extend_from_slice(b": ");
            self.buf.extend_from_slice(value.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        }
        self.buf.extend_from_slice(b"\r\n");
        self.buf.extend_from_slice(body);
        self
    }

    /// Closes the body and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(b"\r\n--");
        self.buf.extend_from_slice(self.boundary.as_bytes());
        self.buf.extend_from_slice(b"--\r\n");
        self.buf
    }
}

#[cfg(test)]
mod tests;
