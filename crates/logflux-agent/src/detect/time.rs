//! Timestamps found in a line's text: hand-written byte recognisers for the common shapes
//! (ISO 8601 / RFC 3339, BSD syslog, Apache/nginx, log4j, klog/glog, Android, compact forms),
//! tried at the line's start and then at word starts in its head, a zone for zone-less forms,
//! the year of year-less forms inferred from the read time, and the plausibility rule.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Offset as _, TimeZone as _};

/// Nanoseconds per second.
const NS: i64 = 1_000_000_000;

/// How far past the read time a detected time may be and still be believed (clock skew): the
/// same margin the pipeline gives entries that carry their own time.
pub const FUTURE_MARGIN_NS: i64 = 5 * 60 * NS;

/// Times before this (1990-01-01T00:00:00Z) are not believed (an unset clock, a counter).
pub const EARLIEST_NS: i64 = 631_152_000 * NS;

/// How far past the read time a year-less time may be before it is put in the year before.
const YEAR_MARGIN_S: i64 = 24 * 3600;

/// How many bytes of a line's head are searched for a timestamp that is not at its start.
const HEAD: usize = 200;

/// Whether `ts` can be a line's real time when read at `now`: not before 1990 and not more than
/// [`FUTURE_MARGIN_NS`] after `now`. The one rule of the agent: the pipeline uses it too.
pub fn plausible(ts: i64, now: i64) -> bool {
    ts >= EARLIEST_NS && ts <= now.saturating_add(FUTURE_MARGIN_NS)
}

/// The zone of times written without one.
#[derive(Debug, Clone)]
pub enum Zone {
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
    Named(chrono_tz::Tz),
    /// The host's (`TZ`, else `/etc/localtime`).
    Local,
}

impl Zone {
    /// Parses `UTC`, `local`, `+02:00`/`-0530`, or an IANA name (`Europe/Berlin`).
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("gmt") {
            return Ok(Zone::Utc);
        }
        if t.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if let Some((off, end)) = offset_at(t.as_bytes(), 0, true)
            && end == t.len()
        {
            return Ok(Zone::Fixed(off));
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone {s:?}; expected UTC, local, an offset (+02:00) or an IANA name (Europe/Berlin)")
        })
    }

    /// The offset (seconds east of UTC) in force at local civil time `local_s` (seconds since
    /// 1970-01-01T00:00 on the wall clock); the earlier one in a repeated hour.
    fn offset_at_local(&self, local_s: i64) -> i32 {
        let naive = || chrono::DateTime::from_timestamp(local_s, 0).map(|d| d.naive_utc());
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => naive()
                .and_then(|n| {
                    let r = tz.offset_from_local_datetime(&n);
                    // A time in the hour skipped by a change: the offset from before it.
                    r.earliest().or_else(|| {
                        tz.offset_from_local_datetime(&(n - chrono::TimeDelta::hours(1)))
                            .earliest()
                    })
                })
                .map(|o| o.fix().local_minus_utc())
                .unwrap_or(0),
            Zone::Local => naive()
                .and_then(|n| {
                    chrono::Local
                        .offset_from_local_datetime(&n)
                        .earliest()
                        .or_else(|| {
                            chrono::Local
                                .offset_from_local_datetime(&(n - chrono::TimeDelta::hours(1)))
                                .earliest()
                        })
                })
                .map(|o| o.local_minus_utc())
                .unwrap_or(0),
        }
    }

    /// The offset in force at UTC time `utc_s` (for the read time's year and date).
    fn offset_at_utc(&self, utc_s: i64) -> i32 {
        let Some(d) = chrono::DateTime::from_timestamp(utc_s, 0) else {
            return 0;
        };
        match self {
            Zone::Utc => 0,
            Zone::Fixed(o) => *o,
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&d.naive_utc())
                .fix()
                .local_minus_utc(),
            Zone::Local => chrono::Local
                .offset_from_utc_datetime(&d.naive_utc())
                .local_minus_utc(),
        }
    }
}

/// A zone with a one-slot cache of its offset per quarter hour of wall-clock time (offsets
/// change on quarter hours), so a file's lines look the zone up about once.
#[derive(Debug)]
pub struct CachedZone {
    pub zone: Zone,
    /// `(quarter-hour index + 1) << 32 | (offset + 2^31)`; 0 is empty.
    slot: AtomicU64,
}

impl Clone for CachedZone {
    fn clone(&self) -> Self {
        CachedZone::new(self.zone.clone())
    }
}

impl CachedZone {
    /// A zone with an empty cache.
    pub fn new(zone: Zone) -> Self {
        CachedZone {
            zone,
            slot: AtomicU64::new(0),
        }
    }

    fn offset_at_local(&self, local_s: i64) -> i32 {
        if matches!(self.zone, Zone::Utc) {
            return 0;
        }
        if let Zone::Fixed(o) = self.zone {
            return o;
        }
        let q = local_s.div_euclid(900);
        let key = u64::try_from(q + 1).unwrap_or(0) & 0xffff_ffff;
        let s = self.slot.load(Ordering::Relaxed);
        if key != 0 && s >> 32 == key {
            return ((s & 0xffff_ffff) as i64 - (1i64 << 31)) as i32;
        }
        let off = self.zone.offset_at_local(local_s);
        if key != 0 {
            let packed = (key << 32) | ((i64::from(off) + (1i64 << 31)) as u64 & 0xffff_ffff);
            self.slot.store(packed, Ordering::Relaxed);
        }
        off
    }
}

/// Which recogniser found a time (cached per input: the one that matched last is tried first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Rec {
    /// Digits first: ISO 8601 and its relatives, compact forms, Android, Spark, CLF.
    Numeric = 1,
    /// A month or weekday name first: BSD syslog, ctime/Apache.
    Named = 2,
    /// klog/glog: `I1130 10:42:00.123456`.
    Klog = 3,
}

impl Rec {
    /// The recogniser stored as `n`.
    pub fn from_u8(n: u8) -> Option<Rec> {
        match n {
            1 => Some(Rec::Numeric),
            2 => Some(Rec::Named),
            3 => Some(Rec::Klog),
            _ => None,
        }
    }
}

/// A wall-clock time read from a line, before its zone and year are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// `None` when the form has no year (BSD syslog, Android, klog).
    pub year: Option<i32>,
    /// 0 when the form has no date at all (a clock time opening the line: log4j2's default
    /// `HH:mm:ss.SSS`, Serilog's `[HH:mm:ss INF]`).
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub nanos: u32,
    /// Seconds east of UTC when the line says.
    pub offset: Option<i32>,
}

/// A time found in a line: where it was and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub civil: Civil,
    pub rec: Rec,
    /// For klog/glog: the severity letter before the date.
    pub klog_letter: Option<u8>,
}

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01 (proleptic Gregorian): (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// The civil year of `s` seconds since 1970-01-01T00:00 (a wall clock's, or UTC).
fn year_of(s: i64) -> i32 {
    chrono::DateTime::from_timestamp(s, 0)
        .map(|d| chrono::Datelike::year(&d.date_naive()))
        .unwrap_or(1970)
}

impl Civil {
    /// Wall-clock seconds since 1970-01-01T00:00 in year `y`, or `None` for an impossible date.
    fn local_seconds(&self, y: i32) -> Option<i64> {
        if !(1..=12).contains(&self.month)
            || self.day == 0
            || self.day > days_in_month(y, self.month)
            || self.hour > 23
            || self.minute > 59
            || self.second > 60
        {
            return None;
        }
        let days = days_from_civil(y, self.month, self.day);
        Some(
            days * 86_400
                + i64::from(self.hour) * 3600
                + i64::from(self.minute) * 60
                + i64::from(self.second.min(59)),
        )
    }

    /// Unix nanoseconds: the line's offset, else `zone`'s; a missing year is the one that puts
    /// the time closest before `now` (plus a day's margin), so Dec 31 read on Jan 1 is last year's.
    pub fn resolve(&self, zone: &CachedZone, now: i64) -> Option<i64> {
        let to_utc = |local: i64| -> i64 {
            let off = match self.offset {
                Some(o) => o,
                None => zone.offset_at_local(local),
            };
            local - i64::from(off)
        };
        let secs = match self.year {
            None if self.month == 0 => self.clock_seconds(zone, now, to_utc)?,
            Some(y) => to_utc(self.local_seconds(y)?),
            None => {
                let now_s = now.div_euclid(NS);
                let this = year_of(now_s + i64::from(zone.zone.offset_at_utc(now_s)));
                let mut found = None;
                for y in [this + 1, this, this - 1, this - 2, this - 3, this - 4] {
                    if let Some(l) = self.local_seconds(y) {
                        let t = to_utc(l);
                        if t <= now_s + YEAR_MARGIN_S {
                            found = Some(t);
                            break;
                        }
                    }
                }
                found?
            }
        };
        secs.checked_mul(NS)?.checked_add(i64::from(self.nanos))
    }
}

impl Civil {
    /// A date-less clock time: the latest day (in `zone`) that puts it at or before `now` (plus
    /// [`CLOCK_MARGIN_S`] for clocks a little ahead), as a missing year is inferred.
    fn clock_seconds(
        &self,
        zone: &CachedZone,
        now: i64,
        to_utc: impl Fn(i64) -> i64,
    ) -> Option<i64> {
        if self.hour > 23 || self.minute > 59 || self.second > 60 {
            return None;
        }
        let now_s = now.div_euclid(NS);
        let today = (now_s + i64::from(zone.zone.offset_at_utc(now_s))).div_euclid(86_400);
        let sod = i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.min(59));
        [today, today - 1]
            .into_iter()
            .map(|d| to_utc(d * 86_400 + sod))
            .find(|&t| t <= now_s + CLOCK_MARGIN_S)
    }
}

/// How far ahead of the read time a date-less clock time may be and still be today's.
const CLOCK_MARGIN_S: i64 = 300;

/// `hour` on a 24-hour clock when ` AM`/` PM` follows at `i` (`11:59:59 PM`), with the end.
fn meridiem(b: &[u8], i: usize, hour: u32) -> (u32, usize) {
    if at(b, i) == b' '
        && (1..=12).contains(&hour)
        && matches!(at(b, i + 2), b'M' | b'm')
        && !at(b, i + 3).is_ascii_alphanumeric()
    {
        match at(b, i + 1) {
            b'A' | b'a' => return (hour % 12, i + 3),
            b'P' | b'p' => return (hour % 12 + 12, i + 3),
            _ => {}
        }
    }
    (hour, i)
}

// ---- byte helpers ----

/// `n` digits at `i` as a number.
fn num(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// The length of the run of digits at `i`.
fn run(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .map(|s| s.iter().take_while(|c| c.is_ascii_digit()).count())
        .unwrap_or(0)
}

fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// One or two digits at `i` (a day or hour written without its leading zero).
fn num12(b: &[u8], i: usize) -> Option<(u32, usize)> {
    match run(b, i) {
        1 => Some((num(b, i, 1)?, i + 1)),
        2 => Some((num(b, i, 2)?, i + 2)),
        _ => None,
    }
}

/// A fraction of a second: up to 9 digits after the separator (more are dropped).
fn fraction(b: &[u8], i: usize) -> (u32, usize) {
    let n = run(b, i);
    let mut v = 0u32;
    for k in 0..n.min(9) {
        v = v * 10 + u32::from(b[i + k] - b'0');
    }
    for _ in n.min(9)..9 {
        v *= 10;
    }
    (v, i + n)
}

/// `HH:MM:SS` (or `HH.MM.SS` when `sep` is `.`) with an optional fraction after `.`, `,` or
/// (exactly three digits) `:`; returns (h, m, s, nanos, end).
fn hms(b: &[u8], i: usize, sep: u8) -> Option<(u32, u32, u32, u32, usize)> {
    let (h, j) = num12(b, i)?;
    if at(b, j) != sep {
        return None;
    }
    let m = num(b, j + 1, 2)?;
    if at(b, j + 3) != sep {
        return None;
    }
    let s = num(b, j + 4, 2)?;
    let mut end = j + 6;
    if at(b, end).is_ascii_digit() {
        return None;
    }
    let mut nanos = 0;
    let c = at(b, end);
    // `.5`, `,548`, or HealthApp's `:606` (exactly three digits).
    let frac = ((c == b'.' || c == b',') && at(b, end + 1).is_ascii_digit())
        || (c == b':' && run(b, end + 1) == 3);
    if frac {
        (nanos, end) = fraction(b, end + 1);
    }
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some((h, m, s, nanos, end))
}

/// A zone offset at `i`: `Z`, `±HH:MM`, `±HHMM` or `±HH` (`bare` also takes `UTC`/`GMT`).
fn offset_at(b: &[u8], i: usize, bare: bool) -> Option<(i32, usize)> {
    let c = at(b, i);
    if c == b'Z' && !at(b, i + 1).is_ascii_alphanumeric() {
        return Some((0, i + 1));
    }
    if bare || c == b'U' || c == b'G' {
        let w = b.get(i..i + 3);
        if (w == Some(b"UTC") || w == Some(b"GMT")) && !at(b, i + 3).is_ascii_alphabetic() {
            if matches!(at(b, i + 3), b'+' | b'-') {
                return offset_at(b, i + 3, false);
            }
            return Some((0, i + 3));
        }
    }
    let sign = match c {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let h = num(b, i + 1, 2)?;
    let (m, end) = if at(b, i + 3) == b':' {
        (num(b, i + 4, 2)?, i + 6)
    } else if run(b, i + 3) == 2 {
        (num(b, i + 3, 2)?, i + 5)
    } else if run(b, i + 3) == 0 {
        (0, i + 3)
    } else {
        return None;
    };
    if run(b, end) > 0 || h > 18 || m > 59 {
        return None;
    }
    Some((sign * (h as i32 * 3600 + m as i32 * 60), end))
}

/// An offset right after a time (`Z`, `+02:00`) or after one space (`+0200`, `UTC`).
fn trailing_offset(b: &[u8], i: usize) -> (Option<i32>, usize) {
    if let Some((o, e)) = offset_at(b, i, false) {
        return (Some(o), e);
    }
    if at(b, i) == b' '
        && let Some((o, e)) = offset_at(b, i + 1, false)
        && (at(b, i + 1) != b'-' || run(b, i + 2) == 4 || at(b, i + 4) == b':')
    {
        return (Some(o), e);
    }
    (None, i)
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
const FULL_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];

/// A month's abbreviation (any case) at `i`, with the full name's end if it is written out.
fn month_at(b: &[u8], i: usize) -> Option<(u32, usize)> {
    let w = b.get(i..i + 3)?;
    let k = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(w))?;
    let mut end = i + 3;
    while at(b, end).is_ascii_alphabetic() {
        end += 1;
    }
    // `Mar`, `March` or `Sept`, not `Marker`.
    if end - i > 3 {
        let word = &b[i..end];
        let full = FULL_MONTHS[k].as_bytes();
        if !(word.eq_ignore_ascii_case(full) || word.eq_ignore_ascii_case(b"Sept")) {
            return None;
        }
    }
    Some((k as u32 + 1, end))
}

// ---- recognisers ----

/// Digits first. ISO 8601 (`2015-07-31 11:09:02,548`, `2026-11-21T10:00:00.5+01:00`),
/// `2005-06-03-15.42.50.675872`, `2026/11/21 10:00:00`, `20171223-22:15:29:606`,
/// `081109 203615`, `17/06/09 20:10:40`, `03-17 16:13:38.811`, `10.30 16:49:06`,
/// `31.12.2025 23:59:59`, `10/Oct/2000:13:55:36 -0700`.
fn numeric(b: &[u8], i: usize) -> Option<(Civil, usize)> {
    let n1 = run(b, i);
    let sep = at(b, i + n1);
    let civil = |year, month, day, (h, mi, s, nanos): (u32, u32, u32, u32), offset| Civil {
        year,
        month,
        day,
        hour: h,
        minute: mi,
        second: s,
        nanos,
        offset,
    };
    match (n1, sep) {
        (4, b'-' | b'/' | b'.') => {
            let y = num(b, i, 4)? as i32;
            let (mo, j) = num12(b, i + 5)?;
            if at(b, j) != sep {
                return None;
            }
            let (d, j) = num12(b, j + 1)?;
            let dt = at(b, j);
            let (tsep, k) = match dt {
                b'T' | b' ' => {
                    if at(b, j + 1) == b' ' {
                        (b':', j + 2)
                    } else {
                        (b':', j + 1)
                    }
                }
                // DB2/BGL: 2005-06-03-15.42.50.675872
                b'-' => (b'.', j + 1),
                _ => return None,
            };
            let (h, mi, s, ns, e) = hms(b, k, tsep)?;
            let (off, e) = trailing_offset(b, e);
            Some((civil(Some(y), mo, d, (h, mi, s, ns), off), e))
        }
        (8, b'-' | b'T' | b' ') => {
            let y = num(b, i, 4)? as i32;
            let mo = num(b, i + 4, 2)?;
            let d = num(b, i + 6, 2)?;
            let (h, mi, s, ns, e) = hms(b, i + 9, b':').or_else(|| {
                // 20171223T221529
                let k = i + 9;
                if run(b, k) == 6 {
                    Some((
                        num(b, k, 2)?,
                        num(b, k + 2, 2)?,
                        num(b, k + 4, 2)?,
                        0,
                        k + 6,
                    ))
                } else {
                    None
                }
            })?;
            let (off, e) = trailing_offset(b, e);
            Some((civil(Some(y), mo, d, (h, mi, s, ns), off), e))
        }
        (6, b' ') => {
            // HDFS: yymmdd hhmmss
            let k = i + 7;
            if run(b, k) != 6 {
                return None;
            }
            let y = 2000 + num(b, i, 2)? as i32;
            let (mo, d) = (num(b, i + 2, 2)?, num(b, i + 4, 2)?);
            let (h, mi, s) = (num(b, k, 2)?, num(b, k + 2, 2)?, num(b, k + 4, 2)?);
            if h > 23 || mi > 59 || s > 60 {
                return None;
            }
            Some((civil(Some(y), mo, d, (h, mi, s, 0), None), k + 6))
        }
        (1 | 2, b'/') if at(b, i + n1 + 1).is_ascii_alphabetic() => {
            // CLF: 10/Oct/2000:13:55:36 -0700
            let d = num(b, i, n1)?;
            let (mo, j) = month_at(b, i + n1 + 1)?;
            if at(b, j) != b'/' || run(b, j + 1) != 4 || at(b, j + 5) != b':' {
                return None;
            }
            let y = num(b, j + 1, 4)? as i32;
            let (h, mi, s, ns, e) = hms(b, j + 6, b':')?;
            let (off, e) = trailing_offset(b, e);
            Some((civil(Some(y), mo, d, (h, mi, s, ns), off), e))
        }
        (1 | 2, b' ') if at(b, i + n1 + 1).is_ascii_alphabetic() => {
            // Day first, month named: Redis `30 Nov 2026 10:42:00.123`, RFC 2822's
            // `30 Nov 2026 10:42:00 +0000`.
            let d = num(b, i, n1)?;
            let (mo, j) = month_at(b, i + n1 + 1)?;
            if at(b, j) != b' ' || run(b, j + 1) != 4 || at(b, j + 5) != b' ' {
                return None;
            }
            let y = num(b, j + 1, 4)? as i32;
            let (h, mi, s, ns, e) = hms(b, j + 6, b':')?;
            let (off, e) = trailing_offset(b, e);
            Some((civil(Some(y), mo, d, (h, mi, s, ns), off), e))
        }
        (2, b':') if i == 0 || (i == 1 && b[0] == b'[') => {
            // A clock time opening the line, no date (log4j2's default pattern, Serilog's
            // console): month 0, resolved to the latest day at or before the read time.
            let (h, mi, s, ns, e) = hms(b, i, b':')?;
            if !matches!(at(b, e), b' ' | b']' | b'\t') {
                return None;
            }
            Some((civil(None, 0, 0, (h, mi, s, ns), None), e))
        }
        (1 | 2, b'-' | b'/' | b'.') => {
            let a = num(b, i, n1)?;
            let (bb, j) = num12(b, i + n1 + 1)?;
            if at(b, j) == sep {
                // three groups
                let n3 = run(b, j + 1);
                let c = num(b, j + 1, n3)?;
                let (y, mo, d) = match (n3, sep) {
                    (4, b'/') => (c as i32, a, bb),                // 12/31/2025 (US)
                    (4, _) => (c as i32, bb, a),                   // 31.12.2025, 31-12-2025
                    (2, _) if n1 == 2 => (2000 + a as i32, bb, c), // 17/06/09 (Spark)
                    _ => return None,
                };
                if at(b, j + 1 + n3) != b' ' {
                    return None;
                }
                let (h, mi, s, ns, e) = hms(b, j + 2 + n3, b':')?;
                let (h, e) = meridiem(b, e, h);
                let (off, e) = trailing_offset(b, e);
                return Some((civil(Some(y), mo, d, (h, mi, s, ns), off), e));
            }
            // Two groups: month and day, year-less (Android `03-17`, Proxifier `10.30`).
            if n1 != 2 || at(b, j) != b' ' {
                return None;
            }
            let (h, mi, s, ns, e) = hms(b, j + 1, b':')?;
            Some((civil(None, a, bb, (h, mi, s, ns), None), e))
        }
        _ => None,
    }
}

/// A name first: BSD syslog `Jul  8 08:10:46` (optionally followed by a year), ctime/Apache
/// `Sun Dec 04 04:47:44 2005`, `Dec 4, 2005 4:47:44 AM` is not taken.
fn named(b: &[u8], i: usize) -> Option<(Civil, usize)> {
    let mut j = i;
    let w = b.get(i..i + 3)?;
    let weekday = DAYS.iter().any(|d| d.eq_ignore_ascii_case(w));
    if weekday {
        j = i + 3;
        while at(b, j).is_ascii_alphabetic() {
            j += 1;
        }
        if at(b, j) == b',' {
            j += 1;
        }
        if at(b, j) != b' ' {
            return None;
        }
        j += 1;
    }
    let (mo, k) = month_at(b, j)?;
    let mut k = k;
    if at(b, k) != b' ' {
        return None;
    }
    while at(b, k) == b' ' {
        k += 1;
    }
    let (d, k) = num12(b, k)?;
    if at(b, k) != b' ' {
        return None;
    }
    let mut k = k + 1;
    // `Jan 12 2024 10:00:00`
    let mut year = None;
    if run(b, k) == 4 && at(b, k + 4) == b' ' {
        year = Some(num(b, k, 4)? as i32);
        k += 5;
    }
    let (h, mi, s, ns, e) = hms(b, k, b':')?;
    let (mut off, mut e) = trailing_offset(b, e);
    // ctime: `Sun Dec 04 04:47:44 2005` (a zone name between is skipped: `UTC 2005`).
    if year.is_none()
        && at(b, e) == b' '
        && run(b, e + 1) == 4
        && !at(b, e + 5).is_ascii_alphanumeric()
    {
        year = Some(num(b, e + 1, 4)? as i32);
        e += 5;
        if off.is_none()
            && let (Some(o), e2) = trailing_offset(b, e)
        {
            off = Some(o);
            e = e2;
        }
    }
    Some((
        Civil {
            year,
            month: mo,
            day: d,
            hour: h,
            minute: mi,
            second: s,
            nanos: ns,
            offset: off,
        },
        e,
    ))
}

/// klog/glog: `I1130 10:42:00.123456` (severity letter, month, day, time; no year).
fn klog(b: &[u8], i: usize) -> Option<(Civil, usize)> {
    if !matches!(at(b, i), b'I' | b'W' | b'E' | b'F' | b'D')
        || run(b, i + 1) != 4
        || at(b, i + 5) != b' '
    {
        return None;
    }
    let (h, mi, s, ns, e) = hms(b, i + 6, b':')?;
    Some((
        Civil {
            year: None,
            month: num(b, i + 1, 2)?,
            day: num(b, i + 3, 2)?,
            hour: h,
            minute: mi,
            second: s,
            nanos: ns,
            offset: None,
        },
        e,
    ))
}

fn try_rec(rec: Rec, b: &[u8], i: usize) -> Option<Found> {
    let (civil, end) = match rec {
        Rec::Numeric => numeric(b, i)?,
        Rec::Named => named(b, i)?,
        Rec::Klog => klog(b, i)?,
    };
    Some(Found {
        start: i,
        end,
        civil,
        rec,
        klog_letter: (rec == Rec::Klog).then(|| b[i]),
    })
}

/// Every recogniser that can start with byte `c`, the preferred one first.
fn recs_for(c: u8, preferred: Option<Rec>) -> impl Iterator<Item = Rec> {
    let all: &[Rec] = if c.is_ascii_digit() {
        &[Rec::Numeric]
    } else if matches!(c, b'I' | b'W' | b'E' | b'F' | b'D') {
        &[Rec::Klog, Rec::Named]
    } else if c.is_ascii_alphabetic() {
        &[Rec::Named]
    } else {
        &[]
    };
    let first = preferred.filter(|p| all.contains(p));
    first
        .into_iter()
        .chain(all.iter().copied().filter(move |r| Some(*r) != first))
}

/// The first time in the line's head: at its start, else at the start of a later word (after a
/// prefix such as `[`, `<34>`, a file name or a sequence number). `preferred` (the recogniser
/// that matched this input's last line) is tried first at each place.
pub fn find(line: &str, preferred: Option<Rec>) -> Option<Found> {
    let b = line.as_bytes();
    let limit = b.len().min(HEAD);
    let mut i = 0;
    while i < limit {
        let c = b[i];
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if boundary && c.is_ascii_alphanumeric() {
            for r in recs_for(c, preferred) {
                if let Some(f) = try_rec(r, b, i) {
                    return Some(f);
                }
            }
            // Skip the rest of this word.
            while i < limit && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    None
}

/// Epoch seconds (10 digits) or milliseconds (13) standing alone among the line's first words
/// (BGL, Thunderbird, HPC): taken only when no written time is found.
pub fn find_epoch(line: &str, now: i64) -> Option<(i64, usize, usize)> {
    let b = line.as_bytes();
    let mut i = 0;
    let mut words = 0;
    while i < b.len() && words < 8 {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        words += 1;
        let w = &b[start..i];
        let n = w.len();
        if (n == 10 || n == 13) && w.iter().all(u8::is_ascii_digit) {
            let v: i64 = line[start..i].parse().ok()?;
            let ns = v.checked_mul(if n == 10 { NS } else { 1_000_000 })?;
            if plausible(ns, now) {
                return Some((ns, start, i));
            }
        }
    }
    None
}

/// A cache of the recogniser that matched last, shared by the lines of one input.
#[derive(Debug, Default)]
pub struct LastRec(std::sync::atomic::AtomicU8);

impl Clone for LastRec {
    fn clone(&self) -> Self {
        LastRec(std::sync::atomic::AtomicU8::new(
            self.0.load(Ordering::Relaxed),
        ))
    }
}

impl LastRec {
    /// The recogniser that matched last.
    pub fn get(&self) -> Option<Rec> {
        Rec::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Remembers `r`.
    pub fn set(&self, r: Rec) {
        self.0.store(r as u8, Ordering::Relaxed);
    }
}
