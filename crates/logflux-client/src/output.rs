//! Printing entries: `text` (for people; levels coloured on a terminal), `json` (one array),
//! `ndjson` (one object per line) and `csv`.

use std::io::Write;

use clap::ValueEnum;
use logflux_proto::{EntryView, Level, timefmt};
use serde_json::Value;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Ndjson,
    Csv,
}

/// Writes entries in one format.
pub(crate) struct Printer<W: Write> {
    out: W,
    format: Format,
    color: bool,
    count: u64,
}

impl<W: Write> std::fmt::Debug for Printer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("format", &self.format)
            .field("count", &self.count)
            .finish()
    }
}

const CSV_HEADER: &str = "timestamp,level,entry_type,source,payload,payload_type,metadata,fields\n";

fn level_color(l: Level) -> &'static str {
    match l {
        Level::Emergency | Level::Alert | Level::Critical => "\x1b[1;31m",
        Level::Error => "\x1b[31m",
        Level::Warning => "\x1b[33m",
        Level::Notice => "\x1b[36m",
        Level::Info => "\x1b[32m",
        Level::Debug => "\x1b[2m",
    }
}

/// The short upper-case level label of text output.
fn level_label(l: Level) -> &'static str {
    match l {
        Level::Emergency => "EMERG",
        Level::Alert => "ALERT",
        Level::Critical => "CRIT",
        Level::Error => "ERROR",
        Level::Warning => "WARN",
        Level::Notice => "NOTICE",
        Level::Info => "INFO",
        Level::Debug => "DEBUG",
    }
}

/// A CSV field, quoted when it needs to be (RFC 4180).
fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// A metadata value as text output shows it: bare, or quoted when it has spaces or quotes.
fn text_value(v: &str, out: &mut String) {
    if v.is_empty() || v.contains([' ', '"', '=', '\n', '\t']) || v.chars().any(char::is_control) {
        out.push_str(&Value::String(v.to_owned()).to_string());
    } else {
        out.push_str(v);
    }
}

/// Text as the terminal should show it: control characters (escape sequences, carriage
/// returns, C1 codes) written as `\u{..}` escapes, so log content cannot drive the terminal or
/// overwrite what is shown. Tabs stay.
fn push_clean(out: &mut String, text: &str) {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if c.is_control() && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
}

/// RFC 3339 with milliseconds, UTC: fixed width for columns.
pub(crate) fn short_time(ns: i64) -> String {
    let full = timefmt::format_rfc3339(ns.div_euclid(1_000_000) * 1_000_000);
    // format_rfc3339 drops a zero fraction and trims trailing zeros: pad to .mmm.
    let stem = full.trim_end_matches('Z');
    let (secs, frac) = stem.split_once('.').unwrap_or((stem, ""));
    format!("{secs}.{frac:0<3}Z")
}

/// A rate for people: "184,616 entries/s" (whole numbers with thousands separators from 10 up,
/// one decimal below).
pub(crate) fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0 entries/s".into();
    }
    if per_sec < 10.0 {
        return format!("{per_sec:.1} entries/s");
    }
    let digits = format!("{:.0}", per_sec);
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{grouped} entries/s")
}

/// One entry in `format` (for `json`, the object alone: the printer adds separators). Pure,
/// so that entries are rendered in parallel where they are decrypted.
pub(crate) fn render(format: Format, color: bool, e: &EntryView) -> String {
    let mut s = String::with_capacity(128 + e.payload.len());
    match format {
        Format::Text => text(color, e, &mut s),
        Format::Ndjson => {
            s.push_str(&e.to_json().to_string());
            s.push('\n');
        }
        Format::Json => s.push_str(&e.to_json().to_string()),
        Format::Csv => {
            for (i, f) in [
                timefmt::format_rfc3339(e.timestamp_ns),
                e.level.name().to_owned(),
                e.entry_type.name().to_owned(),
                e.source.clone(),
                e.payload.clone(),
                e.payload_type.clone(),
                serde_json::to_string(&e.metadata).unwrap_or_default(),
                Value::Object(e.fields.clone()).to_string(),
            ]
            .iter()
            .enumerate()
            {
                if i > 0 {
                    s.push(',');
                }
                csv_field(f, &mut s);
            }
            s.push('\n');
        }
    }
    s
}

fn text(color: bool, e: &EntryView, s: &mut String) {
    use std::fmt::Write as _;
    s.push_str(&short_time(e.timestamp_ns));
    s.push(' ');
    let label = level_label(e.level);
    if color {
        let _ = write!(s, "{}{label:<6}\x1b[0m", level_color(e.level));
    } else {
        let _ = write!(s, "{label:<6}");
    }
    s.push(' ');
    push_clean(s, &e.source);
    s.push_str(": ");
    // Continuation lines (stack traces) indented under the message.
    let mut lines = e.payload.split('\n');
    push_clean(s, lines.next().unwrap_or("").trim_end_matches('\r'));
    let rest: Vec<&str> = lines.collect();
    let mut extras = String::new();
    for (k, v) in &e.metadata {
        extras.push(' ');
        push_clean(&mut extras, k);
        extras.push('=');
        text_value(v, &mut extras);
    }
    for (k, v) in &e.fields {
        extras.push(' ');
        push_clean(&mut extras, k);
        extras.push('=');
        match v {
            Value::String(t) => text_value(t, &mut extras),
            other => extras.push_str(&other.to_string()),
        }
    }
    if !extras.is_empty() {
        if color {
            s.push_str("\x1b[2m");
            s.push_str(&extras);
            s.push_str("\x1b[0m");
        } else {
            s.push_str(&extras);
        }
    }
    for l in rest {
        s.push_str("\n    ");
        push_clean(s, l.trim_end_matches('\r'));
    }
    s.push('\n');
}

impl<W: Write> Printer<W> {
    pub(crate) fn new(out: W, format: Format, color: bool) -> Self {
        Printer {
            out,
            format,
            color,
            count: 0,
        }
    }

    /// Entries written so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Writes whatever comes before the first entry.
    pub(crate) fn begin(&mut self) -> std::io::Result<()> {
        match self.format {
            Format::Csv => self.out.write_all(CSV_HEADER.as_bytes()),
            Format::Json => self.out.write_all(b"["),
            _ => Ok(()),
        }
    }

    /// Writes one entry.
    pub(crate) fn entry(&mut self, e: &EntryView) -> std::io::Result<()> {
        let r = render(self.format, self.color, e);
        self.rendered(r.as_bytes())
    }

    /// Writes one entry already rendered by [`render`] in this printer's format.
    pub(crate) fn rendered(&mut self, r: &[u8]) -> std::io::Result<()> {
        if self.format == Format::Json {
            self.out
                .write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
        }
        self.count += 1;
        self.out.write_all(r)
    }

    /// Writes whatever comes after the last entry and flushes.
    pub(crate) fn finish(&mut self) -> std::io::Result<()> {
        if self.format == Format::Json {
            self.out
                .write_all(if self.count == 0 { b"]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }

    /// Flushes what is buffered.
    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// The writer, once done.
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::Entry;

    fn sample() -> EntryView {
        let mut e = Entry::new(
            1_763_700_000_123_000_000,
            Level::Error,
            "api",
            "boom, \"quoted\"\n  at main.rs:1",
        );
        e.metadata.insert("region".into(), "eu west".into());
        e.into()
    }

    fn render(format: Format) -> String {
        let mut p = Printer::new(Vec::new(), format, false);
        p.begin().unwrap();
        p.entry(&sample()).unwrap();
        p.entry(&sample()).unwrap();
        p.finish().unwrap();
        String::from_utf8(p.into_inner()).unwrap()
    }

    #[test]
    fn text_shows_time_level_source_payload_and_metadata() {
        let t = render(Format::Text);
        let first = t.lines().next().unwrap();
        assert_eq!(
            first,
            "2025-11-21T04:40:00.123Z ERROR  api: boom, \"quoted\" region=\"eu west\""
        );
        assert_eq!(t.lines().nth(1).unwrap(), "      at main.rs:1");
    }

    #[test]
    fn machine_formats_parse_back() {
        let j: Vec<Value> = serde_json::from_str(&render(Format::Json)).unwrap();
        assert_eq!(j.len(), 2);
        assert_eq!(j[0]["logLevel"], 4);
        assert_eq!(j[0]["metadata"]["region"], "eu west");
        let n = render(Format::Ndjson);
        for l in n.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["payload"], "boom, \"quoted\"\n  at main.rs:1");
            assert_eq!(v["timestamp"], "2025-11-21T04:40:00.123Z");
        }
        let c = render(Format::Csv);
        assert!(c.starts_with(CSV_HEADER));
        assert!(
            c.contains("\"boom, \"\"quoted\"\"\n  at main.rs:1\""),
            "{c}"
        );
        let empty = {
            let mut p = Printer::new(Vec::new(), Format::Json, false);
            p.begin().unwrap();
            p.finish().unwrap();
            String::from_utf8(p.into_inner()).unwrap()
        };
        assert_eq!(serde_json::from_str::<Vec<Value>>(&empty).unwrap().len(), 0);
    }

    #[test]
    fn text_output_cannot_drive_the_terminal() {
        let mut e = sample();
        e.payload = "ok\x1b]52;c;ZXZpbA==\x07 done\rFAKE\n\x1b[2Jnext".into();
        e.source = "a\x1b[31mb".into();
        e.metadata.insert("k\x1b".into(), "v\x1b[0m".into());
        let t = super::render(Format::Text, false, &e);
        assert!(
            !t.contains('\x1b') && !t.contains('\x07') && !t.contains('\r'),
            "{t:?}"
        );
        assert!(
            t.contains("ok\\u{1b}]52;c;ZXZpbA==\\u{7} done\\u{d}FAKE"),
            "{t}"
        );
        assert!(t.contains("\n    \\u{1b}[2Jnext"), "{t}");
    }

    #[test]
    fn short_time_is_fixed_width() {
        assert_eq!(short_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(short_time(1_500_000_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(short_time(1_012_345_678), "1970-01-01T00:00:01.012Z");
    }

    #[test]
    fn rates_read_as_entries_per_second() {
        // Regression: the export's progress showed "184,615.7835/s".
        assert_eq!(rate(184_615.783_5), "184,616 entries/s");
        assert_eq!(rate(1_234_567.4), "1,234,567 entries/s");
        assert_eq!(rate(999.5), "1,000 entries/s");
        assert_eq!(rate(12.0), "12 entries/s");
        assert_eq!(rate(2.54), "2.5 entries/s");
        assert_eq!(rate(0.0), "0 entries/s");
        assert_eq!(rate(f64::NAN), "0 entries/s");
    }
}
