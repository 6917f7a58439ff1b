use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::entry::{Entry, EntryType, Level};
use crate::timefmt;

/// One entry as clients show it, whichever way it arrived: from the agent's NDJSON API (then
/// `fields` is empty) or as an SDK payload v2.0 (then `fields` holds the SDK's own fields,
/// such as a metric's `name` and `value` or a captured error's `stack_trace`, unknown ones
/// included).
#[derive(Debug, Clone, PartialEq)]
pub struct EntryView {
    /// Unix nanoseconds, UTC.
    pub timestamp_ns: i64,
    pub level: Level,
    pub entry_type: EntryType,
    pub source: String,
    /// The message; for SDK entries of other types, a one-line rendering of their fields.
    pub payload: String,
    pub payload_type: String,
    pub metadata: BTreeMap<String, String>,
    /// The SDK payload's own fields, kept as sent.
    pub fields: Map<String, Value>,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        EntryView {
            timestamp_ns: e.timestamp_ns,
            level: e.level,
            entry_type: e.entry_type,
            source: e.source,
            payload: e.payload,
            payload_type: e.payload_type,
            metadata: e.metadata,
            fields: Map::new(),
        }
    }
}

impl EntryView {
    /// The object `logflux search --format ndjson` prints: `timestamp` (RFC 3339), `logLevel`,
    /// `entryType`, `source`, `payload`, `payloadType`, `metadata`, then the SDK's own fields
    /// (a field whose name collides with one of those is left out).
    pub fn to_json(&self) -> Value {
        let mut m = Map::with_capacity(7 + self.fields.len());
        m.insert(
            "timestamp".into(),
            timefmt::format_rfc3339(self.timestamp_ns).into(),
        );
        m.insert("logLevel".into(), self.level.number().into());
        m.insert("entryType".into(), self.entry_type.number().into());
        m.insert("source".into(), self.source.clone().into());
        m.insert("payload".into(), self.payload.clone().into());
        m.insert("payloadType".into(), self.payload_type.clone().into());
        m.insert(
            "metadata".into(),
            Value::Object(
                self.metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
        for (k, v) in &self.fields {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }
}
