//! The agent's local API (PROTOCOL.md §1): one JSON object per line.
//!
//! [`parse_line`] turns one line into a [`Message`] or a [`ProtocolError`] whose message names
//! the field and the limit. Both schemas are accepted:
//!
//! - current (camelCase): `payload`, `source`, `entryType`, `logLevel`, `timestamp` (RFC 3339),
//!   `payloadType`, `metadata`, `version`;
//! - legacy (snake_case, older C, PHP, Ruby and Java SDKs): `message`, `source`, `entry_type`,
//!   `level` (0..7, mapped to 1..8), `timestamp` (Unix seconds), `labels` (`payload_type` is taken
//!   out of them; `[]` and a missing object mean none), `id` (kept as metadata `id`), and the C
//!   SDK's `shared_secret` inside an entry (returned separately, never stored).
//!
//! A line is legacy when it has no `payload` but has `message`, `level`, `entry_type` or `labels`.
//! In the legacy schema `source` defaults to `unknown`, `entry_type` to 1 and `level` to 6 (info),
//! the SDK defaults, because those SDKs leave empty fields out; in the current schema `payload`,
//! `source`, `entryType` and `logLevel` are required as PROTOCOL.md says.
//!
//! In a batch, valid entries are accepted and invalid ones rejected one by one; the reply names
//! the first rejected entry and how many were rejected, so one bad entry loses nothing else.

use std::borrow::Cow;
use std::fmt;

use compact_str::CompactString;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::entry::{Entry, EntryType, Level, limits};
use crate::metadata::Metadata;
use crate::secret::Secret;
use crate::timefmt::{self, TimeError};

/// The machine-readable code of an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The line is not a JSON object.
    InvalidJson,
    /// An entry broke a rule of the schema; the message names the field.
    InvalidEntry,
    /// A batch is empty, too large or not an array.
    InvalidBatch,
    /// `action` is none of `ping`, `flush`, `authenticate`.
    UnknownAction,
    /// The line is longer than the limit.
    LineTooLong,
    /// The spool is full and the agent applies backpressure.
    QueueFull,
    /// A TCP connection sent entries before authenticating.
    AuthRequired,
    /// A wrong shared secret.
    AuthFailed,
    /// The agent is shutting down or failed internally.
    Unavailable,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidEntry => "invalid_entry",
            ErrorCode::InvalidBatch => "invalid_batch",
            ErrorCode::UnknownAction => "unknown_action",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::AuthRequired => "auth_required",
            ErrorCode::AuthFailed => "auth_failed",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    /// Every code, for metrics labels.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::InvalidJson,
        ErrorCode::InvalidEntry,
        ErrorCode::InvalidBatch,
        ErrorCode::UnknownAction,
        ErrorCode::LineTooLong,
        ErrorCode::QueueFull,
        ErrorCode::AuthRequired,
        ErrorCode::AuthFailed,
        ErrorCode::Unavailable,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply: a code and a message that says what was wrong, with which value and limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }

    /// The reply line, `\n`-terminated:
    /// `{"status":"error","error":{"code":…,"message":…}}`.
    ///
    /// Authentication failures also carry a top-level `message`, the shape the
    /// `authenticate` reply has in PROTOCOL.md, so clients of either shape read it.
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = if matches!(self.code, ErrorCode::AuthFailed | ErrorCode::AuthRequired) {
            serde_json::json!({
                "status": "error",
                "message": self.message,
                "error": {"code": self.code.as_str(), "message": self.message},
            })
        } else {
            serde_json::json!({
                "status": "error",
                "error": {"code": self.code.as_str(), "message": self.message},
            })
        }
        .to_string()
        .into_bytes();
        v.push(b'\n');
        v
    }
}

/// The reply to a ping.
pub const PONG_LINE: &[u8] = b"{\"status\":\"pong\"}\n";
/// The reply to a `flush` once everything received before it is at the server.
pub const FLUSHED_LINE: &[u8] = b"{\"status\":\"flushed\"}\n";
/// The reply to a successful `authenticate`.
pub const AUTHENTICATED_LINE: &[u8] = b"{\"status\":\"success\",\"message\":\"authenticated\"}\n";

/// One parsed line.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// `{"action":"ping"}`: reply [`PONG_LINE`].
    Ping,
    /// `{"action":"flush"}`: seal what the agent holds and deliver it, then reply
    /// [`FLUSHED_LINE`] (LogFlux's own addition; no SDK sends it).
    Flush,
    /// `{"action":"authenticate","shared_secret":…}`.
    Authenticate { shared_secret: Secret },
    /// A single entry or a batch.
    Entries(EntriesMessage),
}

/// Entries from a single-entry line or a batch.
#[derive(Debug, PartialEq)]
pub struct EntriesMessage {
    /// Valid entries, in the order sent.
    pub entries: Vec<Entry>,
    /// Invalid entries of a batch: the index and the error. Empty for a valid line.
    pub rejected: Vec<(usize, ProtocolError)>,
    /// The C SDK's in-entry `shared_secret`, stripped from the entry.
    pub shared_secret: Option<Secret>,
}

impl EntriesMessage {
    /// The one error reply this message deserves, if any entry was rejected.
    pub fn error_reply(&self) -> Option<ProtocolError> {
        let (_, first) = self.rejected.first()?;
        if self.rejected.len() == 1 && self.entries.is_empty() {
            return Some(first.clone());
        }
        let total = self.entries.len() + self.rejected.len();
        Some(ProtocolError::new(
            first.code,
            format!(
                "{} ({} of {total} entries rejected)",
                first.message,
                self.rejected.len()
            ),
        ))
    }
}

/// Parses one line (without its `\n`; surrounding white space, such as a trailing `\r`, is
/// ignored) received at `now_ns`, the time given to entries without a timestamp.
///
/// A blank line is an error here; line readers skip blank lines without a reply.
pub fn parse_line(line: &[u8], now_ns: i64) -> Result<Message, ProtocolError> {
    parse_line_with(line, now_ns, true)
}

/// [`parse_line`], reading the line with the fast path first when `fast_path` (tests compare
/// both ways).
fn parse_line_with(line: &[u8], now_ns: i64, fast_path: bool) -> Result<Message, ProtocolError> {
    let line = trim_ascii(line);
    if line.len() > limits::MAX_LINE_BYTES {
        return Err(line_too_long(line.len()));
    }
    if line.first() != Some(&b'{') {
        return Err(ProtocolError::new(
            ErrorCode::InvalidJson,
            if line.is_empty() {
                "empty line; expected one JSON object".to_owned()
            } else {
                "line must be one JSON object".to_owned()
            },
        ));
    }
    let raw = match fast_path.then(|| fast::raw_object(line)).flatten() {
        Some(raw) => raw,
        None => serde_json::from_slice::<RawObject<'_>>(line).map_err(json_error)?,
    };
    if !raw.action.is_missing() {
        return parse_action(raw);
    }
    let shared_secret = optional_secret(&raw.shared_secret, "shared_secret")?;
    let mut entries = Vec::new();
    let mut rejected = Vec::new();
    match raw.entries {
        Entries::Missing => entries.push(parse_entry(&raw, now_ns, "")?),
        Entries::NotArray(kind) => {
            return Err(ProtocolError::new(
                ErrorCode::InvalidBatch,
                format!(
                    "entries must be an array of 1..{} entries, got {kind}",
                    limits::MAX_BATCH_ENTRIES
                ),
            ));
        }
        Entries::Array(items) => {
            if items.is_empty() || items.len() > limits::MAX_BATCH_ENTRIES {
                return Err(ProtocolError::new(
                    ErrorCode::InvalidBatch,
                    format!(
                        "entries must hold 1..{} entries, got {}",
                        limits::MAX_BATCH_ENTRIES,
                        items.len()
                    ),
                ));
            }
            entries.reserve(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let prefix = format!("entries[{i}].");
                let parsed = match item {
                    Element::Object(obj) if !obj.entries.is_missing() => Err(ProtocolError::new(
                        ErrorCode::InvalidBatch,
                        format!("{prefix}entries: batches cannot be nested"),
                    )),
                    Element::Object(obj) => parse_entry(&obj, now_ns, &prefix),
                    Element::Other(kind) => Err(ProtocolError::new(
                        ErrorCode::InvalidEntry,
                        format!("entries[{i}] must be an object, got {kind}"),
                    )),
                };
                match parsed {
                    Ok(e) => entries.push(e),
                    Err(e) => rejected.push((i, e)),
                }
            }
        }
    }
    Ok(Message::Entries(EntriesMessage {
        entries,
        rejected,
        shared_secret,
    }))
}

/// The error for a line of `len` bytes over the limit.
pub fn line_too_long(len: usize) -> ProtocolError {
    ProtocolError::new(
        ErrorCode::LineTooLong,
        format!(
            "line is {len} bytes or more, the limit is {} bytes (1 MiB payload plus envelope)",
            limits::MAX_LINE_BYTES
        ),
    )
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn json_error(e: serde_json::Error) -> ProtocolError {
    use serde_json::error::Category;
    let code = match e.classify() {
        Category::Data => ErrorCode::InvalidEntry,
        Category::Io | Category::Syntax | Category::Eof => ErrorCode::InvalidJson,
    };
    ProtocolError::new(code, format!("invalid JSON: {e}"))
}

fn parse_action(raw: RawObject<'_>) -> Result<Message, ProtocolError> {
    let action = match &raw.action {
        Any::Str(s) => s.as_ref(),
        other => {
            return Err(ProtocolError::new(
                ErrorCode::UnknownAction,
                format!(
                    "action must be a string (ping, flush or authenticate), got {}",
                    other.kind()
                ),
            ));
        }
    };
    match action {
        "ping" => Ok(Message::Ping),
        "flush" => Ok(Message::Flush),
        "authenticate" => match optional_secret(&raw.shared_secret, "shared_secret")? {
            Some(shared_secret) => Ok(Message::Authenticate { shared_secret }),
            None => Err(ProtocolError::new(
                ErrorCode::AuthFailed,
                "authenticate needs shared_secret",
            )),
        },
        other => Err(ProtocolError::new(
            ErrorCode::UnknownAction,
            format!("unknown action {other:?}; expected ping, flush or authenticate"),
        )),
    }
}

fn optional_secret(v: &Any<'_>, field: &str) -> Result<Option<Secret>, ProtocolError> {
    match v {
        Any::Missing | Any::Null => Ok(None),
        Any::Str(s) => Ok(Some(Secret::new(s.as_ref()))),
        other => Err(ProtocolError::new(
            ErrorCode::AuthFailed,
            format!("{field} must be a string, got {}", other.kind()),
        )),
    }
}

fn invalid(prefix: &str, msg: std::fmt::Arguments<'_>) -> ProtocolError {
    ProtocolError::new(ErrorCode::InvalidEntry, format!("{prefix}{msg}"))
}

fn parse_entry(raw: &RawObject<'_>, now_ns: i64, p: &str) -> Result<Entry, ProtocolError> {
    let legacy = raw.payload.is_missing()
        && !(raw.message.is_missing()
            && raw.level.is_missing()
            && raw.entry_type_legacy.is_missing()
            && raw.labels.is_missing());
    if legacy {
        parse_legacy(raw, now_ns, p)
    } else {
        parse_current(raw, now_ns, p)
    }
}

fn parse_current(raw: &RawObject<'_>, now_ns: i64, p: &str) -> Result<Entry, ProtocolError> {
    if !raw.version.is_missing() && !matches!(raw.version, Any::Str(_) | Any::Null) {
        return Err(invalid(
            p,
            format_args!("version must be a string, got {}", raw.version.kind()),
        ));
    }
    let payload = payload(&raw.payload, "payload", p)?;
    let source = source(&raw.source, None, p)?;
    let entry_type = integer(&raw.entry_type, "entryType", p, 1..=7)
        .and_then(|n| n.ok_or_else(|| invalid(p, format_args!("entryType is required (1..7)"))))?;
    let level = integer(&raw.log_level, "logLevel", p, 1..=8)
        .and_then(|n| n.ok_or_else(|| invalid(p, format_args!("logLevel is required (1..8)"))))?;
    let timestamp_ns = match &raw.timestamp {
        Any::Missing | Any::Null => now_ns,
        Any::Str(s) => rfc3339(s, "timestamp", p)?,
        other => {
            return Err(invalid(
                p,
                format_args!(
                    "timestamp must be an RFC 3339 string (e.g. 2025-08-20T10:00:00Z), got {}",
                    other.kind()
                ),
            ));
        }
    };
    let payload_type = match &raw.payload_type {
        Any::Missing | Any::Null => Entry::default_payload_type(),
        v => payload_type(v, "payloadType", p)?,
    };
    let mut metadata = Metadata::new();
    string_map(&raw.metadata, "metadata", p, &mut metadata, None)?;
    Ok(Entry {
        timestamp_ns,
        level: Level::from_number(level).expect("range checked"),
        entry_type: EntryType::from_number(entry_type).expect("range checked"),
        source,
        payload,
        payload_type,
        metadata,
    })
}

fn parse_legacy(raw: &RawObject<'_>, now_ns: i64, p: &str) -> Result<Entry, ProtocolError> {
    let payload = payload(&raw.message, "message", p)?;
    let source = source(&raw.source, Some("unknown"), p)?;
    let entry_type = integer(&raw.entry_type_legacy, "entry_type", p, 1..=7)?.unwrap_or(1);
    let level = integer(&raw.level, "level", p, 0..=7)?.unwrap_or(6) + 1;
    let timestamp_ns = match &raw.timestamp {
        Any::Missing | Any::Null => now_ns,
        Any::Int(n) => unix_seconds(*n as f64, p)?,
        Any::UInt(n) => unix_seconds(*n as f64, p)?,
        Any::Float(f) => unix_seconds(*f, p)?,
        Any::Str(s) => rfc3339(s, "timestamp", p)?,
        other => {
            return Err(invalid(
                p,
                format_args!(
                    "timestamp must be Unix seconds or RFC 3339, got {}",
                    other.kind()
                ),
            ));
        }
    };
    let mut metadata = Metadata::new();
    let mut payload_type = None;
    string_map(
        &raw.labels,
        "labels",
        p,
        &mut metadata,
        Some(&mut payload_type),
    )?;
    match &raw.id {
        Any::Missing | Any::Null => {}
        Any::Str(id) => {
            check_meta_value("id", id, "id", p)?;
            metadata.insert("id", &**id);
        }
        other => {
            return Err(invalid(
                p,
                format_args!("id must be a string, got {}", other.kind()),
            ));
        }
    }
    Ok(Entry {
        timestamp_ns,
        level: Level::from_number(level).expect("range checked"),
        entry_type: EntryType::from_number(entry_type).expect("range checked"),
        source,
        payload,
        payload_type: payload_type.unwrap_or_else(Entry::default_payload_type),
        metadata,
    })
}

fn payload(v: &Any<'_>, field: &str, p: &str) -> Result<String, ProtocolError> {
    match v {
        Any::Str(s) if s.len() > limits::MAX_PAYLOAD_BYTES => Err(invalid(
            p,
            format_args!(
                "{field} is {} bytes, the limit is {} bytes",
                s.len(),
                limits::MAX_PAYLOAD_BYTES
            ),
        )),
        Any::Str(s) => Ok(s.to_string()),
        Any::Missing => Err(invalid(p, format_args!("{field} is required"))),
        other => Err(invalid(
            p,
            format_args!("{field} must be a string, got {}", other.kind()),
        )),
    }
}

fn source(v: &Any<'_>, default: Option<&str>, p: &str) -> Result<CompactString, ProtocolError> {
    match (v, default) {
        (Any::Str(s), _) if s.is_empty() => {
            Err(invalid(p, format_args!("source must not be empty")))
        }
        (Any::Str(s), _) => {
            if let Some(chars) = chars_over(s, limits::MAX_SOURCE_CHARS) {
                return Err(invalid(
                    p,
                    format_args!(
                        "source is {chars} characters, the limit is {}",
                        limits::MAX_SOURCE_CHARS
                    ),
                ));
            }
            Ok(CompactString::from(&**s))
        }
        (Any::Missing | Any::Null, Some(d)) => Ok(d.into()),
        (Any::Missing, None) => Err(invalid(p, format_args!("source is required"))),
        (other, _) => Err(invalid(
            p,
            format_args!("source must be a string, got {}", other.kind()),
        )),
    }
}

fn integer(
    v: &Any<'_>,
    field: &str,
    p: &str,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, ProtocolError> {
    let n = match v {
        Any::Missing => return Ok(None),
        Any::Int(n) => Some(*n),
        Any::UInt(n) => i64::try_from(*n).ok(),
        _ => None,
    };
    match n {
        Some(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(invalid(
            p,
            format_args!(
                "{field} must be an integer {}..{}, got {}",
                range.start(),
                range.end(),
                v.describe()
            ),
        )),
    }
}

fn rfc3339(s: &str, field: &str, p: &str) -> Result<i64, ProtocolError> {
    timefmt::parse_rfc3339(s).map_err(|e| match e {
        TimeError::Syntax => invalid(
            p,
            format_args!("{field} must be RFC 3339 (e.g. 2025-08-20T10:00:00Z), got {s:?}"),
        ),
        TimeError::Range => invalid(p, format_args!("{field} {s:?} is {e}")),
    })
}

fn unix_seconds(secs: f64, p: &str) -> Result<i64, ProtocolError> {
    timefmt::from_unix_seconds(secs)
        .map_err(|e| invalid(p, format_args!("timestamp {secs} is {e}")))
}

fn payload_type(v: &Any<'_>, field: &str, p: &str) -> Result<CompactString, ProtocolError> {
    match v {
        Any::Str(s)
            if !s.is_empty()
                && s.len() <= limits::MAX_PAYLOAD_TYPE_BYTES
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.') =>
        {
            Ok(CompactString::from(&**s))
        }
        Any::Str(s) => Err(invalid(
            p,
            format_args!(
                "{field} must be 1..{} characters of a-z, 0-9, _, - or . (e.g. generic), got {s:?}",
                limits::MAX_PAYLOAD_TYPE_BYTES
            ),
        )),
        other => Err(invalid(
            p,
            format_args!("{field} must be a string, got {}", other.kind()),
        )),
    }
}

/// The number of characters of `s` when it is more than `max` (counted only when its bytes are:
/// a character is at least one byte).
fn chars_over(s: &str, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let chars = s.chars().count();
    (chars > max).then_some(chars)
}

fn check_meta_value(key: &str, value: &str, field: &str, p: &str) -> Result<(), ProtocolError> {
    if let Some(chars) = chars_over(value, limits::MAX_METADATA_VALUE_CHARS) {
        return Err(invalid(
            p,
            format_args!(
                "{field} value of {key:?} is {chars} characters, the limit is {}",
                limits::MAX_METADATA_VALUE_CHARS
            ),
        ));
    }
    Ok(())
}

/// Reads a flat string map (`metadata`, or legacy `labels`, where `payload_type` is taken out).
fn string_map(
    v: &Any<'_>,
    field: &str,
    p: &str,
    out: &mut Metadata,
    mut payload_type_out: Option<&mut Option<CompactString>>,
) -> Result<(), ProtocolError> {
    let pairs = match v {
        Any::Missing | Any::Null => return Ok(()),
        // PHP encodes an empty array as `[]`.
        Any::Seq(0) => return Ok(()),
        Any::Map(pairs) => pairs,
        other => {
            return Err(invalid(
                p,
                format_args!(
                    "{field} must be an object of string values, got {}",
                    other.kind()
                ),
            ));
        }
    };
    if pairs.len() > limits::MAX_METADATA_PAIRS {
        return Err(invalid(
            p,
            format_args!(
                "{field} has {} keys, the limit is {}",
                pairs.len(),
                limits::MAX_METADATA_PAIRS
            ),
        ));
    }
    // Room for every pair at once, exactly (at most MAX_METADATA_PAIRS, inserted in turn).
    out.reserve_exact(pairs.len());
    for (key, value) in pairs {
        let value = match value {
            Any::Str(s) => s,
            other => {
                return Err(invalid(
                    p,
                    format_args!("{field}.{key} must be a string, got {}", other.kind()),
                ));
            }
        };
        if key.is_empty() || chars_over(key, limits::MAX_METADATA_KEY_CHARS).is_some() {
            return Err(invalid(
                p,
                format_args!(
                    "{field} keys must be 1..{} characters, got {key:?}",
                    limits::MAX_METADATA_KEY_CHARS
                ),
            ));
        }
        if let Some(pt) = payload_type_out.as_deref_mut()
            && key == "payload_type"
        {
            *pt = Some(payload_type(
                &Any::Str(value.clone()),
                "labels.payload_type",
                p,
            )?);
            continue;
        }
        check_meta_value(key, value, field, p)?;
        // Short keys and values are stored inline: no allocation for them.
        out.insert(&**key, &**value);
    }
    Ok(())
}

/// Every field either schema may carry; unknown fields are ignored.
#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct RawObject<'a> {
    #[serde(default, borrow)]
    version: Any<'a>,
    #[serde(default, borrow)]
    action: Any<'a>,
    #[serde(default, borrow)]
    shared_secret: Any<'a>,
    #[serde(default, borrow)]
    entries: Entries<'a>,
    #[serde(default, borrow)]
    payload: Any<'a>,
    #[serde(default, borrow)]
    source: Any<'a>,
    #[serde(default, borrow)]
    timestamp: Any<'a>,
    #[serde(default, borrow, rename = "payloadType")]
    payload_type: Any<'a>,
    #[serde(default, borrow, rename = "entryType")]
    entry_type: Any<'a>,
    #[serde(default, borrow, rename = "logLevel")]
    log_level: Any<'a>,
    #[serde(default, borrow)]
    metadata: Any<'a>,
    #[serde(default, borrow)]
    id: Any<'a>,
    #[serde(default, borrow)]
    message: Any<'a>,
    #[serde(default, borrow, rename = "entry_type")]
    entry_type_legacy: Any<'a>,
    #[serde(default, borrow)]
    level: Any<'a>,
    #[serde(default, borrow)]
    labels: Any<'a>,
}

/// Any JSON value, borrowed where it can be, typed late so errors can name the field.
#[derive(Debug, Default, Clone)]
#[cfg_attr(test, derive(PartialEq))]
enum Any<'a> {
    #[default]
    Missing,
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(Cow<'a, str>),
    /// An array, with its length; the elements are skipped.
    Seq(usize),
    Map(Vec<(Cow<'a, str>, Any<'a>)>),
}

impl Any<'_> {
    fn is_missing(&self) -> bool {
        matches!(self, Any::Missing)
    }

    fn kind(&self) -> &'static str {
        match self {
            Any::Missing => "nothing",
            Any::Null => "null",
            Any::Bool(_) => "a boolean",
            Any::Int(_) | Any::UInt(_) => "an integer",
            Any::Float(_) => "a number with a fraction",
            Any::Str(_) => "a string",
            Any::Seq(_) => "an array",
            Any::Map(_) => "an object",
        }
    }

    /// The kind, and the value itself for scalars.
    fn describe(&self) -> String {
        match self {
            Any::Int(n) => n.to_string(),
            Any::UInt(n) => n.to_string(),
            Any::Float(f) => f.to_string(),
            Any::Bool(b) => b.to_string(),
            Any::Str(s) if s.len() <= 32 => format!("the string {s:?}"),
            other => other.kind().to_owned(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Any<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnyVisitor)
    }
}

struct AnyVisitor;

impl<'de> Visitor<'de> for AnyVisitor {
    type Value = Any<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Any::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Any::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Any::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Any::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Any::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Any::Float(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Any::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(Any::Seq(n))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4).min(64));
        while let Some(key) = map.next_key::<KeyStr<'de>>()? {
            pairs.push((key.0, map.next_value::<Any<'de>>()?));
        }
        Ok(Any::Map(pairs))
    }
}

struct KeyStr<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for KeyStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Any::<'de>::deserialize(d)? {
            Any::Str(s) => Ok(KeyStr(s)),
            _ => Err(de::Error::custom("object keys must be strings")),
        }
    }
}

/// The `entries` field: a batch, or something that is not an array.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Entries<'a> {
    #[default]
    Missing,
    NotArray(&'static str),
    Array(Vec<Element<'a>>),
}

impl Entries<'_> {
    fn is_missing(&self) -> bool {
        matches!(self, Entries::Missing)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of entries")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Element<'de>>()? {
                    // Past the limit only count, so a huge batch cannot grow memory.
                    if items.len() <= limits::MAX_BATCH_ENTRIES {
                        items.push(item);
                    }
                }
                Ok(Entries::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Entries::NotArray("an object"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Entries::NotArray("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of a batch: an object, or the kind of whatever else it was.
#[cfg_attr(test, derive(Debug, PartialEq))]
enum Element<'a> {
    Object(Box<RawObject<'a>>),
    Other(&'static str),
}

impl<'de: 'a, 'a> Deserialize<'de> for Element<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Element<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an entry object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                RawObject::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|o| Element::Object(Box::new(o)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Element::Other("an array"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Element::Other("null"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Element::Other("a boolean"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Element::Other("a number"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Element::Other("a string"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Writes `entry` as one current-schema line (without `\n`), as SDKs send it.
pub fn encode_entry(entry: &Entry) -> String {
    serde_json::json!({
        "version": "1.0",
        "payload": entry.payload,
        "source": entry.source,
        "timestamp": timefmt::format_rfc3339(entry.timestamp_ns),
        "payloadType": entry.payload_type,
        "entryType": entry.entry_type.number(),
        "logLevel": entry.level.number(),
        "metadata": entry.metadata,
    })
    .to_string()
}

mod fast;

#[cfg(test)]
mod tests;
