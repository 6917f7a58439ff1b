//! Line understanding: the time, level and structure a line carries, detected by default and
//! overridable per input. A [`Detector`] is built once per input from its [`DetectConfig`];
//! its hot path tries byte recognisers at the line's start first (the one that matched the
//! input's last line before the others) and uses `regex` only for users' overrides.
//!
//! - Time: [`time::find`] (written times), else an epoch number among the first words; zone-less
//!   times are in the input's `time_zone` (default: the host's); a time outside
//!   [`time::plausible`] falls back to the read time (counted).
//! - Level: [`level::after`] (words after the time, brackets, `level=`, klog, Android, Windows).
//! - Structure: JSON objects and logfmt lines ([`structured`]) become fields.
//!
//! The original line stays the payload of a plain line; the read time goes to metadata
//! (`read_time`) when a time was detected more than [`READ_TIME_MIN_LAG_NS`] away from it.

pub mod level;
pub mod structured;
pub mod time;

use logflux_proto::{CompactString, Entry, EntryType, Level, timefmt};
use prometheus_client::metrics::counter::Counter;
use regex::Regex;
use serde::Deserialize;

use structured::{FieldValue, Fields};
use time::{CachedZone, LastRec, Zone};

/// Metadata key of the time the agent read a line whose own time was detected.
pub const READ_TIME_KEY: &str = "read_time";

/// Metadata key of a detected time that was not believed (see [`time::plausible`]); the same
/// key the pipeline uses for entries that arrive with such a time.
pub const ORIGINAL_TIME_KEY: &str = "logflux_original_time";

const NS: i64 = 1_000_000_000;

/// How far the read time must be from a line's own time to be kept in metadata: a line read
/// live (within a minute) gains nothing from it, and an extra field is CPU and bytes per entry
/// on the file path (benchmarks.md, "Line understanding"); a backlog or an archive keeps it.
pub const READ_TIME_MIN_LAG_NS: i64 = 60 * NS;

/// `timestamp:` of an input: where and how its lines write their time.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimestampConfig {
    /// A regex whose `time` group (else whole match) is the time; default: the line's start.
    #[serde(default)]
    pub regex: Option<String>,
    /// A strftime format (`%Y-%m-%d %H:%M:%S%.f`), `unix`, `unix_ms`, `auto` or `none`
    /// (no detection: the read time).
    pub format: String,
}

/// `level:` of an input: a fixed level (every line has it) or a regex.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum LevelConfig {
    /// Every line of the input has this level (detection off).
    Fixed(String),
    /// A regex whose `level` group (else whole match) names the level.
    Rule(LevelRuleConfig),
}

/// `level: {regex: …}`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LevelRuleConfig {
    pub regex: String,
}

/// How an input's lines are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineFormat {
    /// JSON objects and logfmt lines are structured; others are text.
    #[default]
    Auto,
    /// Text only.
    Plain,
    /// JSON objects (other lines are text).
    Json,
    /// logfmt (other lines are text).
    Logfmt,
}

/// What a detector is built from (the detection options of an input).
#[derive(Debug, Clone, Default)]
pub struct DetectConfig {
    pub format: LineFormat,
    pub timestamp: Option<TimestampConfig>,
    pub time_zone: Option<String>,
    pub level: Option<LevelConfig>,
    pub default_level: Option<String>,
}

#[derive(Debug, Clone)]
enum TimeRule {
    Auto,
    Off,
    Custom {
        regex: Option<Regex>,
        format: CustomFormat,
    },
}

#[derive(Debug, Clone)]
enum CustomFormat {
    Unix,
    UnixMs,
    /// A strftime format; `year` when it names the year, `zone` when it names an offset.
    Strftime {
        fmt: String,
        year: bool,
        zone: bool,
    },
}

#[derive(Debug, Clone)]
enum LevelRule {
    Auto,
    Fixed(Level),
    Regex(Regex),
}

/// What detection found in one line (for the accuracy count and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// A time was found in the line (believed or not).
    pub time: bool,
    /// A level was found in the line (or the input's level is fixed).
    pub level: bool,
    /// The time found was not believed: the entry has the read time.
    pub implausible: bool,
}

/// An input's line understanding, built once from its config.
#[derive(Debug, Clone)]
pub struct Detector {
    format: LineFormat,
    time: TimeRule,
    level: LevelRule,
    default_level: Level,
    zone: CachedZone,
    last: LastRec,
    /// Times found but not believed (`logflux_agent_timestamps_implausible_total{input}`).
    pub implausible: Counter,
}

impl Default for Detector {
    fn default() -> Self {
        Detector::new(&DetectConfig::default()).expect("the default config is valid")
    }
}

fn compile(re: &str, group: &str) -> Result<Regex, String> {
    let r = Regex::new(re).map_err(|e| format!("not a valid regex: {e}"))?;
    let named: Vec<&str> = r.capture_names().flatten().collect();
    if !named.is_empty() && !named.contains(&group) {
        return Err(format!(
            "the regex names groups {named:?} but not `{group}` (name the part that is the {group}, or name none)"
        ));
    }
    Ok(r)
}

fn strftime(fmt: &str) -> Result<CustomFormat, String> {
    use chrono::format::{Item, StrftimeItems};
    let mut year = false;
    let mut zone = false;
    let mut any = false;
    for item in StrftimeItems::new(fmt) {
        match item {
            Item::Error => return Err(format!("not a valid strftime format: {fmt:?}")),
            Item::Numeric(n, _) => {
                use chrono::format::Numeric::*;
                any = true;
                if matches!(n, Year | YearDiv100 | YearMod100 | IsoYear | Timestamp) {
                    year = true;
                }
            }
            Item::Fixed(f) => {
                use chrono::format::Fixed::*;
                any = true;
                if matches!(
                    f,
                    TimezoneOffset
                        | TimezoneOffsetColon
                        | TimezoneOffsetColonZ
                        | TimezoneOffsetZ
                        | TimezoneOffsetDoubleColon
                        | TimezoneOffsetTripleColon
                        | RFC3339
                        | RFC2822
                ) {
                    zone = true;
                }
                if matches!(f, RFC3339 | RFC2822) {
                    year = true;
                }
            }
            _ => {}
        }
    }
    if !any {
        return Err(format!("{fmt:?} names no date or time field"));
    }
    Ok(CustomFormat::Strftime {
        fmt: fmt.to_owned(),
        year,
        zone,
    })
}

impl Detector {
    /// Builds a detector; an error names the field (`timestamp.format: …`).
    pub fn new(cfg: &DetectConfig) -> Result<Detector, String> {
        let time = match &cfg.timestamp {
            None => TimeRule::Auto,
            Some(t) => {
                let regex = t
                    .regex
                    .as_deref()
                    .map(|r| compile(r, "time"))
                    .transpose()
                    .map_err(|e| format!("timestamp.regex: {e}"))?;
                match t.format.trim() {
                    "none" if regex.is_none() => TimeRule::Off,
                    "none" => return Err("timestamp: `format: none` takes no regex".into()),
                    "auto" if regex.is_none() => TimeRule::Auto,
                    "auto" => {
                        return Err(
                            "timestamp: a regex needs a format (strftime, unix or unix_ms)".into(),
                        );
                    }
                    "unix" => TimeRule::Custom {
                        regex,
                        format: CustomFormat::Unix,
                    },
                    "unix_ms" => TimeRule::Custom {
                        regex,
                        format: CustomFormat::UnixMs,
                    },
                    f => TimeRule::Custom {
                        regex,
                        format: strftime(f).map_err(|e| format!("timestamp.format: {e}"))?,
                    },
                }
            }
        };
        let level = match &cfg.level {
            None => LevelRule::Auto,
            Some(LevelConfig::Fixed(l)) if l.trim() == "auto" => LevelRule::Auto,
            Some(LevelConfig::Fixed(l)) => {
                LevelRule::Fixed(l.parse::<Level>().map_err(|e| format!("level: {e}"))?)
            }
            Some(LevelConfig::Rule(r)) => LevelRule::Regex(
                compile(&r.regex, "level").map_err(|e| format!("level.regex: {e}"))?,
            ),
        };
        let default_level = match &cfg.default_level {
            None => Level::Info,
            Some(l) => l
                .parse::<Level>()
                .map_err(|e| format!("default_level: {e}"))?,
        };
        let zone = match &cfg.time_zone {
            None => Zone::Local,
            Some(z) => Zone::parse(z).map_err(|e| format!("time_zone: {e}"))?,
        };
        Ok(Detector {
            format: cfg.format,
            time,
            level,
            default_level,
            zone: CachedZone::new(zone),
            last: LastRec::default(),
            implausible: Counter::default(),
        })
    }

    /// The level of lines that carry none.
    pub fn default_level(&self) -> Level {
        self.default_level
    }

    /// An entry from one line read at `now`: structured when it is (per the input's format),
    /// else the original line with the time and level detected in it.
    pub fn entry(&self, line: String, now: i64, source: &str) -> (Entry, Outcome) {
        self.entry_with(line, now, source, None)
    }

    /// [`Detector::entry`] for a line whose time is known (`own`: a container runtime's),
    /// which is taken instead of one found in the line.
    pub fn entry_with(
        &self,
        line: String,
        now: i64,
        source: &str,
        own: Option<i64>,
    ) -> (Entry, Outcome) {
        let fields = match self.format {
            LineFormat::Plain => None,
            LineFormat::Json => structured::json(&line),
            LineFormat::Logfmt => structured::logfmt(&line),
            LineFormat::Auto => match line.as_bytes().first() {
                Some(b'{') => structured::json(&line),
                _ if line.contains('=') => structured::logfmt(&line),
                _ => None,
            },
        };
        match fields {
            Some(f) => {
                let payload_type = if line.starts_with('{') {
                    "generic_json"
                } else {
                    "generic"
                };
                self.structured(line, f, now, source, payload_type, own)
            }
            None => self.plain(line, now, source, "generic", own),
        }
    }

    /// A text line: the payload is `line` unchanged.
    pub fn plain(
        &self,
        line: String,
        now: i64,
        source: &str,
        payload_type: &str,
        own: Option<i64>,
    ) -> (Entry, Outcome) {
        let (ts, level, out) = self.detect_text(&line, now);
        let e = new_entry(now, level, source, line, payload_type);
        self.stamp(e, own.or(ts), now, out)
    }

    /// A structured line: message from `msg`/`message`/`log`, time and level from their fields,
    /// the other fields → metadata.
    pub fn structured(
        &self,
        line: String,
        mut fields: Fields,
        now: i64,
        source: &str,
        payload_type: &str,
        own: Option<i64>,
    ) -> (Entry, Outcome) {
        let message =
            structured::take(&mut fields, &["message", "msg", "log"]).map(FieldValue::into_text);
        // MongoDB 4.4+: `{"t":{"$date":…},"s":"I",…}` (its severity letter under `s`).
        let mongo = fields.iter().any(|(k, _)| k == "t.$date");
        let level_keys: &[&str] = if mongo {
            &["s", "level", "severity"]
        } else {
            &["level", "lvl", "severity", "log.level", "loglevel"]
        };
        let lv = structured::take(&mut fields, level_keys);
        let t = structured::take(
            &mut fields,
            &[
                "time",
                "timestamp",
                "ts",
                "@timestamp",
                "datetime",
                "t.$date",
            ],
        );
        let mut out = Outcome::default();
        let level = match &self.level {
            LevelRule::Fixed(l) => {
                out.level = true;
                *l
            }
            _ => match lv.as_ref().and_then(|v| {
                level::word(v.text().trim().as_bytes())
                    .or_else(|| level_number(v))
                    .or_else(|| mongo.then(|| mongo_severity(v.text())).flatten())
            }) {
                Some(l) => {
                    out.level = true;
                    l
                }
                None => self.default_level,
            },
        };
        let ts = match self.time {
            _ if own.is_some() => own,
            TimeRule::Off => None,
            _ => t.as_ref().and_then(|v| self.field_time(v, now)),
        };
        if let Some(v) = lv.filter(|_| !out.level) {
            fields.push(("level".into(), v));
        }
        let payload = message.unwrap_or_else(|| line.clone());
        let mut e = new_entry(now, level, source, payload, payload_type);
        e.metadata
            .extend(fields.into_iter().map(|(k, v)| (k, v.into_text())));
        self.stamp(e, ts, now, out)
    }

    /// Completes an entry built by an input that knows some of it (the HTTP input's record
    /// without a time field, a syslog message without a timestamp): the time (when `need_time`)
    /// and level (when `need_level`) detected in `text`, as for a file's line.
    pub fn fill(
        &self,
        mut e: Entry,
        text: &str,
        now: i64,
        need_time: bool,
        need_level: bool,
    ) -> (Entry, Outcome) {
        let (ts, level, mut out) = self.detect_text(text, now);
        if need_level && out.level {
            e.level = level;
        } else if need_level {
            e.level = self.default_level;
        }
        out.level &= need_level;
        self.stamp(e, ts.filter(|_| need_time), now, out)
    }

    /// Applies a found time: believed → the entry's time (the read time to metadata); not
    /// believed → the read time stays, the found time to metadata, counted.
    fn stamp(&self, mut e: Entry, ts: Option<i64>, now: i64, mut out: Outcome) -> (Entry, Outcome) {
        if let Some(ts) = ts {
            out.time = true;
            if time::plausible(ts, now) {
                e.timestamp_ns = ts;
                if (now - ts).abs() > READ_TIME_MIN_LAG_NS {
                    e.metadata.insert(READ_TIME_KEY, read_time_text(now));
                }
            } else {
                out.implausible = true;
                self.implausible.inc();
                e.metadata
                    .insert(ORIGINAL_TIME_KEY, timefmt::format_rfc3339(ts));
            }
        }
        (e, out)
    }

    /// The time and level of a text line (the level is the default when none is found).
    pub fn detect_text(&self, line: &str, now: i64) -> (Option<i64>, Level, Outcome) {
        let mut out = Outcome::default();
        let (ts, span) = match &self.time {
            TimeRule::Off => (None, None),
            TimeRule::Auto => match time::find(line, self.last.get()) {
                Some(f) => {
                    self.last.set(f.rec);
                    (f.civil.resolve(&self.zone, now), Some(f))
                }
                None => match time::find_epoch(line, now) {
                    Some((ts, _, _)) => (Some(ts), None),
                    None => (None, None),
                },
            },
            TimeRule::Custom { regex, format } => {
                (self.custom_time(line, regex.as_ref(), format, now), None)
            }
        };
        let level = match &self.level {
            LevelRule::Fixed(l) => Some(*l),
            LevelRule::Regex(r) => r.captures(line).and_then(|c| {
                let m = c.name("level").or_else(|| c.get(0))?;
                level::word(m.as_str().trim().as_bytes())
            }),
            LevelRule::Auto => level::pri(line)
                .or_else(|| match span {
                    Some(f) => f
                        .klog_letter
                        .and_then(level::letter)
                        .or_else(|| level::redis_mark(&line[..f.start], &line[f.end..]))
                        .or_else(|| level::after(line, f.end))
                        .or_else(|| {
                            (f.start > 0)
                                .then(|| level::before_time(&line[..f.start]))
                                .flatten()
                        }),
                    None => level::after(line, 0),
                })
                .or_else(|| level::key_anywhere(line)),
        };
        out.level = level.is_some();
        (ts, level.unwrap_or(self.default_level), out)
    }

    fn custom_time(
        &self,
        line: &str,
        regex: Option<&Regex>,
        format: &CustomFormat,
        now: i64,
    ) -> Option<i64> {
        let text = match regex {
            Some(r) => {
                let c = r.captures(line)?;
                c.name("time").or_else(|| c.get(0))?.as_str()
            }
            None => line,
        };
        let text = text.trim();
        match format {
            CustomFormat::Unix | CustomFormat::UnixMs => {
                let end = text
                    .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                    .unwrap_or(text.len());
                let unit = if matches!(format, CustomFormat::UnixMs) {
                    1_000_000
                } else {
                    NS
                };
                if let Ok(v) = text[..end].parse::<i64>() {
                    return v.checked_mul(unit);
                }
                let v: f64 = text[..end].parse().ok()?;
                timefmt::from_unix_seconds(v * unit as f64 / NS as f64).ok()
            }
            CustomFormat::Strftime { fmt, year, zone } => {
                self.strftime_time(text, fmt, *year, *zone, now)
            }
        }
    }

    fn strftime_time(
        &self,
        text: &str,
        fmt: &str,
        year: bool,
        zone: bool,
        now: i64,
    ) -> Option<i64> {
        use chrono::{DateTime, Datelike as _, NaiveDateTime, Timelike as _};
        if zone {
            let (d, _) = DateTime::parse_and_remainder(text, fmt).ok()?;
            return d.timestamp_nanos_opt();
        }
        let naive = if year {
            NaiveDateTime::parse_and_remainder(text, fmt).ok()?.0
        } else {
            // A year-less format: read with a leap year, then the year is inferred.
            let with = format!("2000 {text}");
            NaiveDateTime::parse_and_remainder(&with, &format!("%Y {fmt}"))
                .ok()?
                .0
        };
        let civil = time::Civil {
            year: year.then(|| naive.year()),
            month: naive.month(),
            day: naive.day(),
            hour: naive.hour(),
            minute: naive.minute(),
            second: naive.second(),
            nanos: naive.nanosecond() % 1_000_000_000,
            offset: None,
        };
        civil.resolve(&self.zone, now)
    }

    /// A time field of a structured line: RFC 3339, another written form, or epoch seconds,
    /// milliseconds, microseconds or nanoseconds (by magnitude).
    fn field_time(&self, v: &FieldValue, now: i64) -> Option<i64> {
        match v {
            FieldValue::Number(n, text) => text
                .parse::<i64>()
                .ok()
                .and_then(epoch_int)
                .or_else(|| epoch(*n)),
            FieldValue::Text(s) => {
                let s = s.trim();
                if let Ok(t) = timefmt::parse_rfc3339(s) {
                    return Some(t);
                }
                if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                    return s
                        .parse::<i64>()
                        .ok()
                        .and_then(epoch_int)
                        .or_else(|| s.parse::<f64>().ok().and_then(epoch));
                }
                let f = time::find(s, self.last.get())?;
                f.civil.resolve(&self.zone, now)
            }
        }
    }
}

/// Integer epoch seconds, milliseconds, microseconds or nanoseconds, by magnitude (exact).
fn epoch_int(v: i64) -> Option<i64> {
    match v {
        ..0 => None,
        0..=99_999_999_999 => v.checked_mul(NS),
        100_000_000_000..=99_999_999_999_999 => v.checked_mul(1_000_000),
        100_000_000_000_000..=99_999_999_999_999_999 => v.checked_mul(1_000),
        _ => Some(v),
    }
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds, by magnitude.
fn epoch(f: f64) -> Option<i64> {
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    if f > 1e17 {
        Some(f as i64)
    } else if f > 1e14 {
        Some((f * 1e3) as i64)
    } else if f > 1e11 {
        Some((f * 1e6) as i64)
    } else {
        timefmt::from_unix_seconds(f).ok()
    }
}

/// MongoDB's severity: `F`, `E`, `W`, `I`, `D1`–`D5`.
fn mongo_severity(s: &str) -> Option<Level> {
    match s.as_bytes() {
        [c] => level::letter(*c),
        [b'D', d] if d.is_ascii_digit() => Some(Level::Debug),
        _ => None,
    }
}

/// A numeric level field: syslog severities 0..7, or bunyan/pino's 10..60.
fn level_number(v: &FieldValue) -> Option<Level> {
    let FieldValue::Number(n, _) = v else {
        return None;
    };
    if n.fract() != 0.0 {
        return None;
    }
    match *n as i64 {
        k @ 0..=7 => Level::from_number(k + 1),
        10 | 20 => Some(Level::Debug),
        30 => Some(Level::Info),
        40 => Some(Level::Warning),
        50 => Some(Level::Error),
        60 => Some(Level::Critical),
        _ => None,
    }
}

/// The read time as RFC 3339 in UTC to the second (`2026-11-30T12:00:00Z`), written by hand.
/// Whole seconds, not nanoseconds: every metadata value gets a blind search token per record
/// (`logflux_crypto::tokens`), and a value unique to each entry would cost a token (an HMAC and
/// 8 bytes in the record) per entry; entries read in the same second share one.
pub fn read_time_text(now: i64) -> CompactString {
    let secs = now.div_euclid(NS);
    let (y, m, d) = time::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u64;
    // Written into a byte buffer, then one copy into a string of 20 bytes, stored inline (no
    // allocation; pushing characters one by one into the string cost more than the rest).
    let mut b = *b"0000-00-00T00:00:00Z";
    put_num(&mut b[0..4], u64::try_from(y).unwrap_or(0));
    put_num(&mut b[5..7], u64::from(m));
    put_num(&mut b[8..10], u64::from(d));
    put_num(&mut b[11..13], sod / 3600);
    put_num(&mut b[14..16], sod / 60 % 60);
    put_num(&mut b[17..19], sod % 60);
    CompactString::from_utf8(b).unwrap_or_default()
}

/// `v` in decimal, zero-padded to the slice's width (its low digits when it is wider).
fn put_num(out: &mut [u8], mut v: u64) {
    for c in out.iter_mut().rev() {
        *c = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// A log entry with the given time, level, source, payload and payload type.
pub fn new_entry(
    ts: i64,
    level: Level,
    source: &str,
    payload: String,
    payload_type: &str,
) -> Entry {
    let mut e = Entry::with_payload(ts, level, source, payload);
    e.entry_type = EntryType::Log;
    // Inline (no allocation): every payload type is a short name.
    e.payload_type = payload_type.into();
    e
}

#[cfg(test)]
mod tests;
