use serde_json::{Map, Value};

use crate::batch::EntryRef;
use crate::entry::{Entry, EntryType, Level};
use crate::metadata::Metadata;
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
    pub metadata: Metadata,
    /// The SDK payload's own fields, kept as sent.
    pub fields: Map<String, Value>,
}

impl From<Entry> for EntryView {
    fn from(e: Entry) -> Self {
        EntryView {
            timestamp_ns: e.timestamp_ns,
            level: e.level,
            entry_type: e.entry_type,
            source: e.source.into_string(),
            payload: e.payload,
            payload_type: e.payload_type.into_string(),
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
            metadata: e.metadata().collect(),
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
        // Writing to a Vec cannot fail; serde_json escapes strings as `to_string` does.
        let string = write_json_str;
        write_json_head(
            out,
            self.timestamp_ns,
            self.level.number(),
            self.entry_type.number(),
            [&self.source, &self.payload, &self.payload_type],
        );
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
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect(),
            ),
        );
        for (k, v) in &self.fields {
            m.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(m)
    }
}

/// Appends `s` as a JSON string, byte for byte as `serde_json::to_writer` writes it (`\"`,
/// `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`, everything
/// else as it is), eight bytes at a time where nothing needs escaping.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `w` is below 0x20, `"` or `\` (exact as a yes/no answer).
    let special = |w: u64| {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | zero(w ^ (ONES * b'"' as u64))
            | zero(w ^ (ONES * b'\\' as u64))
            != 0
    };
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut clean = 0; // start of the bytes not yet written
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !special(w) {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let escaped: &[u8] = match b {
                b'"' => b"\\\"",
                b'\\' => b"\\\\",
                b'\n' => b"\\n",
                b'\r' => b"\\r",
                b'\t' => b"\\t",
                0x08 => b"\\b",
                0x0c => b"\\f",
                0..0x20 => b"",
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.extend_from_slice(&bytes[clean..i]);
            if escaped.is_empty() {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            } else {
                out.extend_from_slice(escaped);
            }
            i += 1;
            clean = i;
        }
    }
    out.extend_from_slice(&bytes[clean..]);
    out.push(b'"');
}

/// `n` in decimal, as `{}` writes it.
fn push_u8(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

impl EntryRef<'_, '_> {
    /// Appends exactly what [`EntryView::write_json`] writes for this entry's owned copy
    /// (`EntryView::from(self)`), straight from the decrypted batch: no copy of any string.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // The owned copy's metadata is a map sorted by key, where a later pair (the common
        // ones come after the entry's own) replaces an earlier one of the same key. Merged
        // here when both lists are sorted with distinct keys (always in batch version 2);
        // otherwise through the owned copy.
        let strictly_sorted = |p: &[(&str, &str)]| p.windows(2).all(|w| w[0].0 < w[1].0);
        if !strictly_sorted(self.own) || !strictly_sorted(self.common) {
            EntryView::from(self).write_json(out);
            return;
        }
        let string = write_json_str;
        write_json_head(
            out,
            self.timestamp_ns,
            self.level.number(),
            self.entry_type.number(),
            [self.source, self.payload, self.payload_type],
        );
        let (mut own, mut common) = (self.own.iter().peekable(), self.common.iter().peekable());
        let mut first = true;
        loop {
            let (k, v) = match (own.peek(), common.peek()) {
                (Some(a), Some(b)) if a.0 < b.0 => own.next(),
                (Some(a), Some(b)) if a.0 == b.0 => {
                    own.next();
                    common.next()
                }
                (Some(_), Some(_)) | (None, Some(_)) => common.next(),
                (Some(_), None) => own.next(),
                (None, None) => break,
            }
            .copied()
            .unwrap_or_default();
            if !first {
                out.push(b',');
            }
            first = false;
            string(out, k);
            out.push(b':');
            string(out, v);
        }
        out.extend_from_slice(b"}}");
    }
}

/// The fields every printed entry begins with, up to and including `"metadata":{` (shared by
/// the owned and the borrowed entry's `write_json`).
fn write_json_head(out: &mut Vec<u8>, ts: i64, level: u8, entry_type: u8, text: [&str; 3]) {
    let [source, payload, payload_type] = text;
    out.extend_from_slice(b"{\"timestamp\":\"");
    timefmt::write_rfc3339(ts, out);
    out.extend_from_slice(b"\",\"logLevel\":");
    push_u8(out, level);
    out.extend_from_slice(b",\"entryType\":");
    push_u8(out, entry_type);
    out.extend_from_slice(b",\"source\":");
    write_json_str(out, source);
    out.extend_from_slice(b",\"payload\":");
    write_json_str(out, payload);
    out.extend_from_slice(b",\"payloadType\":");
    write_json_str(out, payload_type);
    out.extend_from_slice(b",\"metadata\":{");
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
            level in 1i64..=8,
            entry_type in 1i64..=7,
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
                level: Level::from_number(level).unwrap(),
                entry_type: EntryType::from_number(entry_type).unwrap(),
                source,
                payload,
                payload_type,
                metadata: metadata.into(),
                fields: fields.into_iter().collect(),
            };
            let mut out = Vec::new();
            v.write_json(&mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), v.to_json().to_string());
        }

        /// Strings are escaped exactly as serde_json escapes them.
        #[test]
        fn json_strings_are_serde_jsons(
            s in any::<String>(),
            ascii in "[ -~\\x00-\\x1f\\x7f\"\\\\]{0,40}",
        ) {
            for s in [s, ascii] {
                let mut out = Vec::new();
                write_json_str(&mut out, &s);
                prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
            }
        }

        /// An entry written from its batch is the entry written from its owned copy, in both
        /// batch versions, with the batch's shared pairs and keys in any order.
        #[test]
        fn entry_ref_writes_what_its_owned_copy_writes(
            mut entries in proptest::collection::vec(crate::batch::tests::arb_entry(), 1..12),
            shared in proptest::collection::btree_map("[a-c]{0,2}", ".{0,6}", 0..4),
        ) {
            for e in &mut entries {
                e.metadata.extend(shared.clone());
            }
            for v2 in [true, false] {
                let mut buf = Vec::new();
                if v2 {
                    crate::batch::encode(&entries, &mut buf);
                } else {
                    crate::batch::encode_v1(&entries, &mut buf);
                }
                let view = crate::batch::BatchView::parse(&buf).unwrap();
                for e in view.iter() {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    e.write_json(&mut a);
                    EntryView::from(&e).write_json(&mut b);
                    prop_assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
                }
            }
        }

        /// Pairs out of order or repeated (a hand-made version 1 batch may hold them): the
        /// owned copy's map decides, the later of two equal keys wins.
        #[test]
        fn entry_ref_with_unsorted_pairs_writes_what_its_owned_copy_writes(
            own in proptest::collection::vec(("[a-c]{0,2}", ".{0,4}"), 0..5),
            common in proptest::collection::vec(("[a-c]{0,2}", ".{0,4}"), 0..5),
        ) {
            let own: Vec<(&str, &str)> = own.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let common: Vec<(&str, &str)> = common.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let e = EntryRef {
                timestamp_ns: 1,
                level: Level::Info,
                entry_type: EntryType::Log,
                source: "s",
                payload_type: "",
                payload: "p",
                own: &own,
                common: &common,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            e.write_json(&mut a);
            EntryView::from(&e).write_json(&mut b);
            prop_assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        }
    }
}
