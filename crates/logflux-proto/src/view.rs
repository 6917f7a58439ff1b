use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::batch::EntryRef;
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

impl From<&EntryRef<'_, '_>> for EntryView {
    /// Copies an entry out of its decoded batch.
    fn from(e: &EntryRef<'_, '_>) -> Self {
        EntryView {
            timestamp_ns: e.timestamp_ns,
            level: e.level,
            entry_type: e.entry_type,
            source: e.source.to_owned(),
            payload: e.payload.to_owned(),
            payload_type: e.payload_type.to_owned(),
            metadata: e
                .metadata()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            fields: Map::new(),
        }
    }
}

/// The keys [`EntryView::to_json`] writes before the SDK's own fields.
const JSON_KEYS: [&str; 7] = [
    "timestamp",
    "logLevel",
    "entryType",
    "source",
    "payload",
    "payloadType",
    "metadata",
];

impl EntryView {
    /// Appends exactly the text of `self.to_json().to_string()` to `out`, without building the
    /// JSON value first (no copy of any string).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail; serde_json escapes strings as `to_string` does.
        let string = |out: &mut Vec<u8>, s: &str| {
            let _ = serde_json::to_writer(&mut *out, s);
        };
        out.extend_from_slice(b"{\"timestamp\":");
        string(out, &timefmt::format_rfc3339(self.timestamp_ns));
        let _ = write!(
            out,
            ",\"logLevel\":{},\"entryType\":{},\"source\":",
            self.level.number(),
            self.entry_type.number()
        );
        string(out, &self.source);
        out.extend_from_slice(b",\"payload\":");
        string(out, &self.payload);
        out.extend_from_slice(b",\"payloadType\":");
        string(out, &self.payload_type);
        out.extend_from_slice(b",\"metadata\":{");
        for (i, (k, v)) in self.metadata.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, k);
            out.push(b':');
            string(out, v);
        }
        out.push(b'}');
        for (k, v) in &self.fields {
            if JSON_KEYS.contains(&k.as_str()) {
                continue;
            }
            out.push(b',');
            string(out, k);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.push(b'}');
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The direct writer and the JSON value print the same bytes, whatever the strings and
        /// SDK fields (colliding names included).
        #[test]
        fn write_json_is_to_json(
            ts in any::<i64>(),
            source in any::<String>(),
            payload in any::<String>(),
            payload_type in "[a-z_]{0,8}",
            metadata in proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4),
            fields in proptest::collection::vec(
                (prop_oneof![Just("source".to_owned()), Just("name".to_owned()), any::<String>()],
                 prop_oneof![any::<String>().prop_map(Value::from), any::<f64>().prop_map(Value::from), Just(Value::Null)]),
                0..4),
        ) {
            let v = EntryView {
                timestamp_ns: ts,
                level: Level::Warning,
                entry_type: EntryType::Metric,
                source,
                payload,
                payload_type,
                metadata,
                fields: fields.into_iter().collect(),
            };
            let mut out = Vec::new();
            v.write_json(&mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), v.to_json().to_string());
        }
    }
}
