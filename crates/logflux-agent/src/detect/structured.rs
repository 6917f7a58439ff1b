//! Structured lines: a JSON object, or logfmt (`time=… level=warn msg="…" k=v`), read into
//! flat fields (nested objects flattened with dots), from which the detector takes the message,
//! time and level; the rest becomes metadata.

use serde_json::Value;

/// A structured line's fields in their order, every value as text.
pub type Fields = Vec<(String, FieldValue)>;

/// A field's value: text, or a JSON number (epoch times are numbers).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Number(f64, String),
}

impl FieldValue {
    /// The value as text.
    pub fn into_text(self) -> String {
        match self {
            FieldValue::Text(s) | FieldValue::Number(_, s) => s,
        }
    }

    /// The value as text, borrowed.
    pub fn text(&self) -> &str {
        match self {
            FieldValue::Text(s) | FieldValue::Number(_, s) => s,
        }
    }
}

fn flatten(prefix: &str, v: Value, out: &mut Fields) {
    match v {
        Value::Object(m) => {
            if m.is_empty() {
                out.push((prefix.to_owned(), FieldValue::Text("{}".into())));
            }
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_owned(), FieldValue::Text(s))),
        Value::Number(n) => {
            let text = n.to_string();
            out.push((
                prefix.to_owned(),
                FieldValue::Number(n.as_f64().unwrap_or(f64::NAN), text),
            ));
        }
        Value::Null => out.push((prefix.to_owned(), FieldValue::Text(String::new()))),
        other => out.push((prefix.to_owned(), FieldValue::Text(other.to_string()))),
    }
}

/// The fields of a JSON object line (`None` when it is not one).
pub fn json(line: &str) -> Option<Fields> {
    let t = line.trim();
    if !t.starts_with('{') || !t.ends_with('}') {
        return None;
    }
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(t) else {
        return None;
    };
    let mut out = Vec::with_capacity(m.len());
    flatten("", Value::Object(m), &mut out);
    Some(out)
}

/// Keys that make `k=v` pairs a logfmt line rather than text that happens to hold a `=`.
const LOGFMT_KEYS: [&str; 8] = [
    "msg",
    "message",
    "level",
    "lvl",
    "time",
    "ts",
    "timestamp",
    "severity",
];

/// The fields of a logfmt line: at least two `key=value` pairs that make up the whole line,
/// one of them a message, level or time key (`None` otherwise).
pub fn logfmt(line: &str) -> Option<Fields> {
    let b = line.as_bytes();
    let mut out: Fields = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b' ' {
            i += 1;
        }
        if i >= b.len() || b[i] != b'=' || i == ks {
            return None;
        }
        let key = &line[ks..i];
        if !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'@' | b'/'))
        {
            return None;
        }
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            let mut seg = i;
            while i < b.len() {
                match b[i] {
                    b'\\' if i + 1 < b.len() && b[i + 1].is_ascii() => {
                        v.push_str(&line[seg..i]);
                        match b[i + 1] {
                            b'n' => v.push('\n'),
                            b't' => v.push('\t'),
                            b'"' => v.push('"'),
                            b'\\' => v.push('\\'),
                            // Unknown escape: kept as written.
                            c => {
                                v.push('\\');
                                v.push(char::from(c));
                            }
                        }
                        i += 2;
                        seg = i;
                    }
                    b'"' => {
                        v.push_str(&line[seg..i]);
                        i += 1;
                        closed = true;
                        break;
                    }
                    _ => i += 1,
                }
            }
            if !closed || (i < b.len() && b[i] != b' ') {
                return None;
            }
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b' ' {
                if b[i] == b'"' {
                    return None;
                }
                i += 1;
            }
            line[vs..i].to_owned()
        };
        out.push((key.to_owned(), FieldValue::Text(value)));
    }
    let keyed = out
        .iter()
        .any(|(k, _)| LOGFMT_KEYS.iter().any(|w| k.eq_ignore_ascii_case(w)));
    (out.len() >= 2 && keyed).then_some(out)
}

/// Removes and returns the first field named by one of `keys` (in the keys' order).
pub fn take(fields: &mut Fields, keys: &[&str]) -> Option<FieldValue> {
    for k in keys {
        if let Some(i) = fields.iter().position(|(name, _)| name == k) {
            return Some(fields.remove(i).1);
        }
    }
    None
}
