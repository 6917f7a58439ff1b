//! Printing entries: `text` (`short`; for people, levels coloured on a terminal), `json` (one
//! array), `ndjson` (one object per line), `json-pretty` (indented objects), `csv`, `cat` (the
//! payload alone) and `verbose` (every field on its own line).
//!
//! Times in `text` and `verbose` are local (the process's time zone) unless `--utc`; the
//! machine formats (`json`, `ndjson`, `json-pretty`, `csv`) always carry RFC 3339 in UTC.

use std::io::Write;

use clap::ValueEnum;
use logflux_proto::batch::EntryRef;
use logflux_proto::{EntryView, Level, timefmt};
use serde_json::Value;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// time, level, source: payload, metadata (journalctl's `short`)
    #[value(alias = "short")]
    Text,
    /// one JSON array of entries (with `-o`: one object per line, as journalctl's `json`)
    Json,
    /// one JSON object per line
    Ndjson,
    /// one indented JSON object per entry
    JsonPretty,
    /// comma-separated, with a header
    Csv,
    /// the payload alone
    Cat,
    /// every field of an entry, one per line
    Verbose,
}

impl Format {
    /// The format `-o NAME` asks for: journalctl's names, where `json` is one object per
    /// line (`--format json` is one array).
    pub(crate) fn journalctl(self) -> Format {
        match self {
            Format::Json => Format::Ndjson,
            f => f,
        }
    }
}

/// `-o MODE` against `--format FORMAT` (`json` differs, see [`Format::journalctl`]).
pub(crate) fn chosen(o: Option<Format>, format: Option<Format>, default: Format) -> Format {
    o.map(Format::journalctl).or(format).unwrap_or(default)
}

/// The time zone of times shown to people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zone {
    Utc,
    /// The process's own (`TZ`, else `/etc/localtime`).
    Local,
    /// A fixed offset east of UTC, in seconds (tests).
    #[cfg(test)]
    Fixed(i32),
}

impl Zone {
    pub(crate) fn new(utc: bool) -> Zone {
        if utc { Zone::Utc } else { Zone::Local }
    }

    /// Seconds east of UTC at `ns`, or `None` for UTC itself (shown as `Z`).
    pub(crate) fn offset(self, ns: i64) -> Option<i32> {
        use chrono::{Offset as _, TimeZone as _};
        match self {
            Zone::Utc => None,
            Zone::Local => Some(
                chrono::Local
                    .offset_from_utc_datetime(
                        &chrono::DateTime::from_timestamp_nanos(ns).naive_utc(),
                    )
                    .fix()
                    .local_minus_utc(),
            ),
            #[cfg(test)]
            Zone::Fixed(s) => Some(s),
        }
    }
}

/// How entries are shown: format, colour, time zone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub(crate) format: Format,
    pub(crate) color: bool,
    pub(crate) zone: Zone,
}

/// Writes entries in one format.
pub(crate) struct Printer<W: Write> {
    out: W,
    style: Style,
    count: u64,
}

impl<W: Write> std::fmt::Debug for Printer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printer")
            .field("style", &self.style)
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
pub(crate) fn level_label(l: Level) -> &'static str {
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

/// A CSV field, quoted when it needs to be (RFC 4180). A field a spreadsheet would run as a
/// formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, and is not a plain
/// number) gets a leading `'`, as OWASP advises: log content is written by whoever reaches
/// the application, and a CSV export is opened in spreadsheets.
fn csv_field(s: &str, out: &mut String) {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(s);
    let quote = formula || s.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    if quote {
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// `-12`, `+3.5`: a sign, digits, at most one point — a number, which no spreadsheet runs.
fn plain_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// A metadata value as text output shows it: bare, or quoted when it has spaces or quotes.
fn text_value(v: &str, out: &mut String) {
    if v.is_empty() || v.contains([' ', '"', '=', '\n', '\t']) || v.chars().any(char::is_control) {
        out.push_str(&Value::String(v.to_owned()).to_string());
    } else {
        out.push_str(v);
    }
}

/// Whether a character must be escaped before it reaches a terminal: control characters, and
/// the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069), which would make
/// a line read in another order than it is written.
pub(crate) fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text as the terminal should show it: control characters (escape sequences, carriage
/// returns, C1 codes) and bidi controls written as `\u{..}` escapes, so log content cannot
/// drive the terminal, overwrite what is shown or reorder it. Tabs stay.
pub(crate) fn push_clean(out: &mut String, text: &str) {
    if !text.chars().any(|c| unsafe_char(c) && c != '\t') {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if unsafe_char(c) && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
}

/// `text` with its control characters escaped (see [`push_clean`]).
pub(crate) fn clean(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    push_clean(&mut s, text);
    s
}

/// RFC 3339 with milliseconds in `zone` (`Z` for UTC, else the offset): fixed width for
/// columns.
pub(crate) fn zoned_time(ns: i64, zone: Zone) -> String {
    match zone.offset(ns) {
        None => short_time(ns),
        Some(off) => {
            let local = short_time(ns.saturating_add(i64::from(off) * 1_000_000_000));
            let sign = if off < 0 { '-' } else { '+' };
            let abs = off.unsigned_abs();
            format!(
                "{}{sign}{:02}:{:02}",
                local.trim_end_matches('Z'),
                abs / 3600,
                abs / 60 % 60
            )
        }
    }
}

/// RFC 3339 with milliseconds, UTC: fixed width for columns.
pub(crate) fn short_time(ns: i64) -> String {
    // Down to the millisecond (up, at the very start of the i64 range).
    let sub = ns.rem_euclid(1_000_000);
    let ms = ns
        .checked_sub(sub)
        .unwrap_or_else(|| ns.saturating_add(1_000_000 - sub));
    let full = timefmt::format_rfc3339(ms);
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

/// One entry in `style` (for `json`, the object alone: the printer adds separators). Pure,
/// so that entries are rendered in parallel where they are decrypted.
pub(crate) fn render(style: Style, e: &EntryView) -> String {
    let mut s = String::with_capacity(128 + e.payload.len());
    match style.format {
        Format::Text => text(style, e, &mut s),
        Format::Ndjson => {
            s = json_line(e);
            s.push('\n');
        }
        Format::Json => s = json_line(e),
        Format::JsonPretty => {
            s.push_str(&serde_json::to_string_pretty(&e.to_json()).unwrap_or_default());
            s.push('\n');
        }
        Format::Cat => {
            // The payload as it is, its lines kept; other control characters escaped.
            for (i, l) in e.payload.split('\n').enumerate() {
                if i > 0 {
                    s.push('\n');
                }
                push_clean(&mut s, l.trim_end_matches('\r'));
            }
            s.push('\n');
        }
        Format::Verbose => verbose(style, e, &mut s),
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

/// Appends [`render`]'s text for `e` to `out`.
pub(crate) fn render_into(style: Style, e: &EntryView, out: &mut Vec<u8>) {
    match style.format {
        Format::Ndjson => {
            e.write_json(out);
            out.push(b'\n');
        }
        Format::Json => e.write_json(out),
        _ => out.extend_from_slice(render(style, e).as_bytes()),
    }
}

/// Appends [`render`]'s text for the owned copy of `e` to `out`, straight from its decrypted
/// batch, when `style` is JSON (`false`, and nothing written, for the other formats).
pub(crate) fn render_ref_into(style: Style, e: &EntryRef<'_, '_>, out: &mut Vec<u8>) -> bool {
    match style.format {
        Format::Ndjson => {
            e.write_json(out);
            out.push(b'\n');
            true
        }
        Format::Json => {
            e.write_json(out);
            true
        }
        _ => false,
    }
}

/// `EntryView::to_json` as text, written directly.
fn json_line(e: &EntryView) -> String {
    let mut out = Vec::with_capacity(160 + e.payload.len());
    e.write_json(&mut out);
    // serde_json writes UTF-8 (its input is `str`s and JSON values).
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// `verbose`: the time, then every field on its own line, indented; a blank line after.
fn verbose(style: Style, e: &EntryView, s: &mut String) {
    use std::fmt::Write as _;
    s.push_str(&zoned_time(e.timestamp_ns, style.zone));
    s.push('\n');
    let mut field = |k: &str, v: &str| {
        s.push_str("    ");
        push_clean(s, k);
        s.push('=');
        // Continuation lines of a value indented under it.
        for (i, l) in v.split('\n').enumerate() {
            if i > 0 {
                s.push_str("\n        ");
            }
            push_clean(s, l.trim_end_matches('\r'));
        }
        s.push('\n');
    };
    field("timestamp", &timefmt::format_rfc3339(e.timestamp_ns));
    let mut level = String::new();
    let _ = write!(level, "{} ({})", e.level.name(), e.level.number());
    field("level", &level);
    field("entry_type", e.entry_type.name());
    field("source", &e.source);
    field("payload_type", &e.payload_type);
    field("payload", &e.payload);
    for (k, v) in &e.metadata {
        field(&format!("metadata.{k}"), v);
    }
    for (k, v) in &e.fields {
        match v {
            Value::String(t) => field(&format!("fields.{k}"), t),
            other => field(&format!("fields.{k}"), &other.to_string()),
        }
    }
    s.push('\n');
}

/// Metadata the one-line text form leaves out (the other forms show it): the time the agent
/// read a line whose own time it detected, which is the entry's time in every line otherwise.
const HIDDEN_IN_TEXT: [&str; 1] = ["read_time"];

fn text(style: Style, e: &EntryView, s: &mut String) {
    use std::fmt::Write as _;
    let color = style.color;
    s.push_str(&zoned_time(e.timestamp_ns, style.zone));
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
        if HIDDEN_IN_TEXT.contains(&k) {
            continue;
        }
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
    pub(crate) fn new(out: W, style: Style) -> Self {
        Printer {
            out,
            style,
            count: 0,
        }
    }

    /// Entries written so far.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// Writes whatever comes before the first entry.
    pub(crate) fn begin(&mut self) -> std::io::Result<()> {
        match self.style.format {
            Format::Csv => self.out.write_all(CSV_HEADER.as_bytes()),
            Format::Json => self.out.write_all(b"["),
            _ => Ok(()),
        }
    }

    /// Writes one entry.
    pub(crate) fn entry(&mut self, e: &EntryView) -> std::io::Result<()> {
        let r = render(self.style, e);
        self.rendered(r.as_bytes())
    }

    /// Writes one entry already rendered by [`render`] in this printer's format.
    pub(crate) fn rendered(&mut self, r: &[u8]) -> std::io::Result<()> {
        if self.style.format == Format::Json {
            self.out
                .write_all(if self.count == 0 { b"\n" } else { b",\n" })?;
        }
        self.count += 1;
        self.out.write_all(r)
    }

    /// Writes entries already rendered one after the other by [`render`] in this printer's
    /// format: the first begins at `whole[start]`, and each ends where `ends` says (the second
    /// of each pair: an offset into `whole`). One write, unless the format separates entries
    /// (`json`).
    pub(crate) fn rendered_many(
        &mut self,
        whole: &[u8],
        start: usize,
        ends: &[(i64, usize)],
    ) -> std::io::Result<()> {
        let Some(&(_, last)) = ends.last() else {
            return Ok(());
        };
        if self.style.format == Format::Json {
            let mut from = start;
            for &(_, end) in ends {
                self.rendered(&whole[from..end])?;
                from = end;
            }
            return Ok(());
        }
        self.count += ends.len() as u64;
        self.out.write_all(&whole[start..last])
    }

    /// Writes whatever comes after the last entry and flushes.
    pub(crate) fn finish(&mut self) -> std::io::Result<()> {
        if self.style.format == Format::Json {
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
        e.metadata.insert("region", "eu west");
        e.into()
    }

    fn utc(format: Format) -> Style {
        Style {
            format,
            color: false,
            zone: Zone::Utc,
        }
    }

    fn render(format: Format) -> String {
        let mut p = Printer::new(Vec::new(), utc(format));
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
    fn text_leaves_the_read_time_out_and_verbose_shows_it() {
        let mut e = Entry::new(1_764_000_000_123_000_000, Level::Warning, "app", "slow");
        e.metadata
            .insert("read_time", "2026-11-30T12:00:00.000000000Z");
        e.metadata.insert("file", "/var/log/app.log");
        let e: EntryView = e.into();
        let s = super::render(utc(Format::Text), &e);
        assert!(!s.contains("read_time"), "{s}");
        assert!(
            s.contains("WARN") && s.contains("file=/var/log/app.log"),
            "{s}"
        );
        let v = super::render(utc(Format::Verbose), &e);
        assert!(v.contains("read_time"), "{v}");
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
            let mut p = Printer::new(Vec::new(), utc(Format::Json));
            p.begin().unwrap();
            p.finish().unwrap();
            String::from_utf8(p.into_inner()).unwrap()
        };
        assert_eq!(serde_json::from_str::<Vec<Value>>(&empty).unwrap().len(), 0);
    }

    #[test]
    fn a_csv_field_a_spreadsheet_would_run_is_written_as_text() {
        let field = |v: &str| {
            let mut out = String::new();
            csv_field(v, &mut out);
            out
        };
        assert_eq!(
            field("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(field("+cmd|' /C calc'!A0"), "\"'+cmd|' /C calc'!A0\"");
        assert_eq!(field("-2+3"), "\"'-2+3\"");
        assert_eq!(field("@SUM(A1)"), "\"'@SUM(A1)\"");
        assert_eq!(field("\t=1"), "\"'\t=1\"");
        // Numbers and ordinary text stay as they are.
        for plain in ["-12", "+3.5", "-0.25", "GET /a", "a=b", ""] {
            assert_eq!(field(plain), plain);
        }
        assert_eq!(field("-"), "\"'-\"");
        assert_eq!(field("-1."), "\"'-1.\"");
    }

    #[test]
    fn text_output_cannot_drive_the_terminal() {
        let mut e = sample();
        e.payload = "ok\x1b]52;c;ZXZpbA==\x07 done\rFAKE\n\x1b[2Jnext".into();
        e.source = "a\x1b[31mb".into();
        e.metadata.insert("k\x1b", "v\x1b[0m");
        let t = super::render(utc(Format::Text), &e);
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
    fn text_shows_the_time_in_the_zone_given() {
        let at = |zone| {
            super::render(
                Style {
                    format: Format::Text,
                    color: false,
                    zone,
                },
                &sample(),
            )
        };
        assert!(at(Zone::Utc).starts_with("2025-11-21T04:40:00.123Z ERROR "));
        assert!(
            at(Zone::Fixed(5 * 3600 + 1800)).starts_with("2025-11-21T10:10:00.123+05:30 ERROR ")
        );
        assert!(at(Zone::Fixed(-10 * 3600)).starts_with("2025-11-20T18:40:00.123-10:00 ERROR "));
        assert!(at(Zone::Fixed(0)).starts_with("2025-11-21T04:40:00.123+00:00 ERROR "));
        // Machine formats stay UTC whatever the zone.
        let j = super::render(
            Style {
                format: Format::Ndjson,
                color: false,
                zone: Zone::Fixed(3600),
            },
            &sample(),
        );
        assert!(j.contains("\"2025-11-21T04:40:00.123Z\""), "{j}");
    }

    #[test]
    fn journalctl_output_names() {
        use clap::ValueEnum as _;
        assert_eq!(Format::from_str("short", false).unwrap(), Format::Text);
        assert_eq!(
            Format::from_str("json-pretty", false).unwrap(),
            Format::JsonPretty
        );
        // -o json is journalctl's: one object per line; --format json stays an array.
        assert_eq!(
            chosen(Some(Format::Json), None, Format::Text),
            Format::Ndjson
        );
        assert_eq!(chosen(None, Some(Format::Json), Format::Text), Format::Json);
        assert_eq!(chosen(None, None, Format::Text), Format::Text);
        assert_eq!(chosen(Some(Format::Cat), None, Format::Text), Format::Cat);
    }

    #[test]
    fn cat_verbose_and_json_pretty() {
        let mut e = sample();
        e.fields.insert("value".into(), serde_json::json!(0.5));
        let cat = super::render(utc(Format::Cat), &e);
        assert_eq!(cat, "boom, \"quoted\"\n  at main.rs:1\n");
        let v = super::render(utc(Format::Verbose), &e);
        assert_eq!(
            v,
            "2025-11-21T04:40:00.123Z\n    timestamp=2025-11-21T04:40:00.123Z\n    level=error (4)\n    \
             entry_type=log\n    source=api\n    payload_type=generic\n    payload=boom, \"quoted\"\n          \
             at main.rs:1\n    metadata.region=eu west\n    fields.value=0.5\n\n"
        );
        let p = super::render(utc(Format::JsonPretty), &e);
        assert!(p.starts_with("{\n  \""), "{p}");
        let back: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(back["payload"], "boom, \"quoted\"\n  at main.rs:1");
        e.payload = "a\x1b[2Jb".into();
        assert_eq!(super::render(utc(Format::Cat), &e), "a\\u{1b}[2Jb\n");
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
