//! The decrypted JSON of an SDK entry (payload v2.0), as the v3 SDKs write it:
//! `{"v":"2.0","type":"log","source":…,"level":4,"ts":…,"message":…,"attributes":{…},"meta":{…}}`.
//!
//! [`to_view`] turns it into an [`EntryView`]: `attributes` become metadata (non-string values as
//! compact JSON), the payload is the message (or, for other types, a one-line rendering of their
//! fields), and every other field is kept in [`EntryView::fields`] as sent — unknown ones
//! included, nothing dropped.
//!
//! The Go SDK's lower-level `Info`/`Warn`/… methods and its logging adapters (stdlib, logrus,
//! zap, zerolog) seal the raw message text instead of a JSON object: [`view_of`] shows such a
//! plaintext as a plain log line (PROTOCOL.md §2). Its high-level API writes `kind` where the
//! other SDKs write `metric_type`, and a span's `name` where they write `description`; both are
//! rendered alike.

use serde_json::{Map, Value};

use crate::entry::{EntryType, Level};
use crate::timefmt;
use crate::view::EntryView;

/// The payload type given to SDK entries.
pub const PAYLOAD_TYPE: &str = "application";

/// Decrypted bytes that are not an SDK payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdkError {
    #[error("SDK payload is not JSON: {0}")]
    Json(String),
    #[error("SDK payload is not a JSON object")]
    NotObject,
}

/// Parses the decrypted (and decompressed) JSON of one SDK entry.
pub fn parse(json: &[u8]) -> Result<Map<String, Value>, SdkError> {
    match serde_json::from_slice::<Value>(json) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(SdkError::NotObject),
        Err(e) => Err(SdkError::Json(e.to_string())),
    }
}

/// The view of one decrypted (and decompressed) SDK plaintext: a v2 JSON object through
/// [`to_view`], anything else (the Go SDK's raw message text) as a plain log line — payload the
/// text (invalid UTF-8 replaced, one trailing line break dropped), level info (parts carry no
/// level), type and time from the part headers.
///
/// A JSON object counts as a v2 payload only when it says so (`v` "2…", or `type` an entry
/// type's name): a raw line that
/// happens to be JSON — what zap, logrus and zerolog JSON formatters write through the Go
/// SDK's adapters (`{"level":"info","ts":…,"msg":…}`) — is a plain line, shown as written,
/// its `ts` and fields not mistaken for the payload's own.
pub fn view_of(entry_type: EntryType, part_timestamp_ns: i64, plaintext: &[u8]) -> EntryView {
    match parse(plaintext) {
        Ok(obj) if is_v2(&obj) => to_view(entry_type, part_timestamp_ns, obj),
        _ => plain_view(entry_type, part_timestamp_ns, plaintext),
    }
}

/// Whether an object is an SDK payload v2.0 (not a JSON log line that has a `type` of its
/// own, such as `{"level":"info","msg":"…","type":"access"}`).
fn is_v2(obj: &Map<String, Value>) -> bool {
    obj.get("v")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with('2'))
        || obj
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| EntryType::ALL.iter().any(|e| e.name() == t))
}

fn plain_view(entry_type: EntryType, part_timestamp_ns: i64, plaintext: &[u8]) -> EntryView {
    let text = String::from_utf8_lossy(plaintext);
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    EntryView {
        timestamp_ns: part_timestamp_ns,
        level: Level::Info,
        entry_type,
        source: "unknown".into(),
        payload: text.to_owned(),
        payload_type: PAYLOAD_TYPE.into(),
        metadata: Default::default(),
        fields: Map::new(),
    }
}

/// The view of an SDK entry. `entry_type` comes from the part's `X-LF-Entry-Type`;
/// `part_timestamp_ns` (its `X-LF-Timestamp`) is used when `ts` is missing or unreadable.
pub fn to_view(
    entry_type: EntryType,
    part_timestamp_ns: i64,
    mut obj: Map<String, Value>,
) -> EntryView {
    let timestamp_ns = match obj
        .get("ts")
        .and_then(Value::as_str)
        .map(timefmt::parse_rfc3339)
    {
        Some(Ok(ns)) => {
            obj.remove("ts");
            ns
        }
        _ => part_timestamp_ns,
    };
    let level = match obj
        .get("level")
        .and_then(Value::as_i64)
        .and_then(Level::from_number)
    {
        Some(l) => {
            obj.remove("level");
            l
        }
        None => Level::Info,
    };
    let source = match obj.remove("source") {
        Some(Value::String(s)) => s,
        Some(other) => {
            obj.insert("source".into(), other);
            "unknown".into()
        }
        None => "unknown".into(),
    };
    obj.remove("v");
    if obj.get("type").and_then(Value::as_str) == Some(entry_type.name()) {
        obj.remove("type");
    }
    let metadata = match obj.remove("attributes") {
        Some(Value::Object(attrs)) => attrs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
        Some(other) => {
            obj.insert("attributes".into(), other);
            Default::default()
        }
        None => Default::default(),
    };
    let payload = render(entry_type, &mut obj);
    EntryView {
        timestamp_ns,
        level,
        entry_type,
        source,
        payload,
        payload_type: PAYLOAD_TYPE.into(),
        metadata,
        fields: obj,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The payload line: the message of a log, a rendering of the fields of other types.
fn render(entry_type: EntryType, obj: &mut Map<String, Value>) -> String {
    if entry_type == EntryType::Log
        && obj.get("message").is_some_and(Value::is_string)
        && let Some(Value::String(m)) = obj.remove("message")
    {
        return m;
    }
    let obj = &*obj;
    let get = |k: &str| text(obj.get(k));
    let rendered = match entry_type {
        EntryType::Log => match (get("error_type"), get("error_message")) {
            (Some(t), Some(m)) => Some(format!("{t}: {m}")),
            (None, Some(m)) => Some(m),
            _ => None,
        },
        EntryType::Metric => get("name").map(|name| {
            let mut s = format!("{name} = {}", get("value").unwrap_or_default());
            if let Some(unit) = get("unit") {
                s.push(' ');
                s.push_str(&unit);
            }
            // `kind`: the Go SDK's name for it.
            if let Some(t) = get("metric_type").or_else(|| get("kind")) {
                s.push_str(&format!(" ({t})"));
            }
            s
        }),
        EntryType::Trace => get("operation").map(|op| {
            let mut s = op;
            // `name`: the Go SDK's name for a span's description.
            if let Some(d) = get("description")
                .or_else(|| get("name"))
                .filter(|d| !d.is_empty())
            {
                s.push_str(&format!(": {d}"));
            }
            let details: Vec<String> =
                [get("duration_ms").map(|d| format!("{d} ms")), get("status")]
                    .into_iter()
                    .flatten()
                    .collect();
            if !details.is_empty() {
                s.push_str(&format!(" ({})", details.join(", ")));
            }
            s
        }),
        EntryType::Event => get("event"),
        EntryType::Audit => get("action").map(|action| {
            let mut s = String::new();
            if let Some(actor) = get("actor") {
                s.push_str(&actor);
                s.push(' ');
            }
            s.push_str(&action);
            if let Some(r) = get("resource") {
                s.push(' ');
                s.push_str(&r);
                if let Some(id) = get("resource_id") {
                    s.push('/');
                    s.push_str(&id);
                }
            }
            if let Some(o) = get("outcome") {
                s.push_str(&format!(" ({o})"));
            }
            s
        }),
        EntryType::Telemetry | EntryType::TelemetryManaged => get("device_id").map(|dev| {
            let readings: Vec<String> = obj
                .get("readings")
                .and_then(Value::as_array)
                .map(|rs| {
                    rs.iter()
                        .map(|r| {
                            let mut s = format!(
                                "{}={}",
                                text(r.get("name")).unwrap_or_default(),
                                text(r.get("value")).unwrap_or_default()
                            );
                            if let Some(u) = text(r.get("unit")) {
                                s.push(' ');
                                s.push_str(&u);
                            }
                            s
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!("{dev}: {}", readings.join(", "))
        }),
    };
    rendered
        .or_else(|| match obj.get("message") {
            Some(Value::String(m)) => Some(m.clone()),
            _ => None,
        })
        .unwrap_or_else(|| Value::Object(obj.clone()).to_string())
}

#[cfg(test)]
mod tests;
