//! Points in time as `--since` and `--until` take them, in the forms journalctl accepts: `now`,
//! `today`, `yesterday`, `tomorrow`, spans back from now (`30m`, `1h30m`, `1 hour ago`,
//! `2 days ago`, `-15min`) or ahead (`+1h`), times of today (`10:42`, `10:42:30`), local dates and
//! times (`2026-11-30`, `2026-11-30 10:42`, `2026-11-30T10:42:30`), RFC 3339 (`…Z`,
//! `…+01:00`) and Unix seconds (`@1796026520`). Every form without a zone is in the local time zone, which is passed in (the
//! process's own, `chrono::Local`, outside tests).

use anyhow::bail;
use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use logflux_proto::timefmt;

const NS: i64 = 1_000_000_000;

/// The length of a unit word of a span, in seconds.
fn unit_seconds(unit: &str) -> Option<i64> {
    Some(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        _ => return None,
    })
}

/// A span such as `90s`, `1h30m`, `1 hour`, `2 days`, `1h 30min`, in nanoseconds.
pub(crate) fn parse_span(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = unit_seconds(&rest[..letters].to_ascii_lowercase())?;
        rest = rest[letters..].trim_start();
        total = total.checked_add(n.checked_mul(unit)?.checked_mul(NS)?)?;
    }
    Some(total)
}

/// The instant of a local date and time; in a daylight-saving gap (a time that does not exist
/// there), the same time moved on by the gap, in 15-minute steps (02:07 in a 02:00→03:00 gap
/// is 03:07, as glibc's `mktime` and so journalctl have it); in an overlap, the earlier of
/// the two.
fn local_instant<Tz: TimeZone>(tz: &Tz, t: NaiveDateTime) -> anyhow::Result<i64> {
    for step in 0..=8 {
        let candidate = t + chrono::Duration::minutes(15 * step);
        if let Some(dt) = tz.from_local_datetime(&candidate).earliest() {
            return dt
                .timestamp_nanos_opt()
                .ok_or_else(|| anyhow::anyhow!("{t} is outside the supported range 1677..2262"));
        }
    }
    bail!("{t} does not exist in the local time zone")
}

/// The local date of an instant.
fn local_date<Tz: TimeZone>(tz: &Tz, ns: i64) -> NaiveDate {
    tz.timestamp_nanos(ns).date_naive()
}

fn midnight(d: NaiveDate) -> NaiveDateTime {
    d.and_time(NaiveTime::MIN)
}

const FORMS: &str = "use now, today, yesterday, a span back from now (30m, 1h30m, \"1 hour ago\", \
    \"2 days ago\"), a time of today (10:42, 10:42:30), a local date or date and time \
    (2026-11-20, \"2026-11-20 10:42\"), RFC 3339 (2026-11-20T14:00:00Z) or Unix seconds \
    (@1796026520)";

/// A point in time (see the module's forms), relative to `now_ns`, local forms in `tz`.
pub(crate) fn parse_when<Tz: TimeZone>(s: &str, now_ns: i64, tz: &Tz) -> anyhow::Result<i64> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let today = || local_date(tz, now_ns);
    let day_start = |d: Option<NaiveDate>| match d {
        Some(d) => local_instant(tz, midnight(d)),
        None => bail!("{s:?} is outside the supported range"),
    };
    match lower.as_str() {
        "now" => return Ok(now_ns),
        "today" => return day_start(Some(today())),
        "yesterday" => return day_start(today().checked_sub_days(Days::new(1))),
        "tomorrow" => return day_start(today().checked_add_days(Days::new(1))),
        _ => {}
    }
    let back = lower
        .strip_suffix("ago")
        .filter(|r| !r.is_empty())
        .or_else(|| lower.strip_prefix('-'))
        .unwrap_or(&lower);
    if let Some(d) = parse_span(back) {
        return Ok(now_ns.saturating_sub(d));
    }
    if let Some(d) = lower.strip_prefix('+').and_then(parse_span) {
        return Ok(now_ns.saturating_add(d));
    }
    if let Ok(t) = timefmt::parse_rfc3339(s) {
        return Ok(t);
    }
    // journalctl's `@UNIX-SECONDS`.
    if let Some(secs) = s.strip_prefix('@')
        && let Ok(v) = secs.parse::<f64>()
    {
        return timefmt::from_unix_seconds(v).map_err(|e| anyhow::anyhow!("{s:?}: {e}"));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return day_start(Some(d));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return local_instant(tz, t);
        }
    }
    for f in ["%H:%M:%S%.f", "%H:%M"] {
        if let Ok(t) = NaiveTime::parse_from_str(s, f) {
            return local_instant(tz, today().and_time(t));
        }
    }
    bail!("{s:?} is not a time: {FORMS}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    /// 2026-11-30T08:15:20Z: in +05:30 that is 13:45:20 on the 30th; in -10:00 it is 22:15:20
    /// on the 29th.
    const NOW: i64 = 1_796_026_520 * NS;

    fn at(rfc3339: &str) -> i64 {
        timefmt::parse_rfc3339(rfc3339).unwrap()
    }

    #[test]
    fn now_is_fixed_in_these_tests() {
        assert_eq!(timefmt::format_rfc3339(NOW), "2026-11-30T08:15:20Z");
    }

    #[test]
    fn spans_back_from_now_in_every_spelling() {
        let tz = FixedOffset::east_opt(0).unwrap();
        for (s, back) in [
            ("30m", 1800),
            ("1h30m", 5400),
            ("7d", 7 * 86_400),
            ("2w", 14 * 86_400),
            ("1 hour ago", 3600),
            ("2 days ago", 2 * 86_400),
            ("1h ago", 3600),
            ("1h 30min ago", 5400),
            ("90 seconds ago", 90),
            ("3 weeks ago", 21 * 86_400),
            ("-15min", 900),
            ("-2h", 7200),
            ("  10 MINUTES AGO ", 600),
        ] {
            assert_eq!(parse_when(s, NOW, &tz).unwrap(), NOW - back * NS, "{s}");
        }
        assert_eq!(parse_when("+1h", NOW, &tz).unwrap(), NOW + 3600 * NS);
        assert_eq!(parse_when("now", NOW, &tz).unwrap(), NOW);
        assert_eq!(parse_when("NOW", NOW, &tz).unwrap(), NOW);
    }

    #[test]
    fn days_and_times_are_local_to_the_zone_given() {
        let india = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let hawaii = FixedOffset::west_opt(10 * 3600).unwrap();
        // In India it is the 30th.
        assert_eq!(
            parse_when("today", NOW, &india).unwrap(),
            at("2026-11-30T00:00:00+05:30")
        );
        assert_eq!(
            parse_when("yesterday", NOW, &india).unwrap(),
            at("2026-11-29T00:00:00+05:30")
        );
        assert_eq!(
            parse_when("tomorrow", NOW, &india).unwrap(),
            at("2026-12-01T00:00:00+05:30")
        );
        assert_eq!(
            parse_when("10:42", NOW, &india).unwrap(),
            at("2026-11-30T10:42:00+05:30")
        );
        assert_eq!(
            parse_when("10:42:30", NOW, &india).unwrap(),
            at("2026-11-30T10:42:30+05:30")
        );
        // In Hawaii it is still the 29th.
        assert_eq!(
            parse_when("today", NOW, &hawaii).unwrap(),
            at("2026-11-29T00:00:00-10:00")
        );
        assert_eq!(
            parse_when("yesterday", NOW, &hawaii).unwrap(),
            at("2026-11-28T00:00:00-10:00")
        );
        assert_eq!(
            parse_when("10:42", NOW, &hawaii).unwrap(),
            at("2026-11-29T10:42:00-10:00")
        );
        // Dates and date-times without a zone are local too.
        assert_eq!(
            parse_when("2026-11-30 10:42", NOW, &india).unwrap(),
            at("2026-11-30T10:42:00+05:30")
        );
        assert_eq!(
            parse_when("2026-11-30 10:42:30.250", NOW, &hawaii).unwrap(),
            at("2026-11-30T10:42:30.25-10:00")
        );
        assert_eq!(
            parse_when("2026-11-30T10:42", NOW, &hawaii).unwrap(),
            at("2026-11-30T10:42:00-10:00")
        );
        assert_eq!(
            parse_when("2026-11-20", NOW, &india).unwrap(),
            at("2026-11-20T00:00:00+05:30")
        );
        // RFC 3339 says its own zone.
        assert_eq!(
            parse_when("2026-11-20T14:00:00Z", NOW, &india).unwrap(),
            at("2026-11-20T14:00:00Z")
        );
        assert_eq!(
            parse_when("2026-11-20T14:00:00+01:00", NOW, &hawaii).unwrap(),
            at("2026-11-20T13:00:00Z")
        );
        // So does a Unix time.
        assert_eq!(parse_when("@1796026520", NOW, &india).unwrap(), NOW);
        assert_eq!(
            parse_when("@1796026520.5", NOW, &hawaii).unwrap(),
            NOW + NS / 2
        );
    }

    #[test]
    fn what_is_not_a_time_is_refused_with_the_forms() {
        let tz = FixedOffset::east_opt(0).unwrap();
        for bad in [
            "",
            "1x",
            "h",
            "12",
            "ago",
            "yesterday-ish",
            "25:00",
            "2026-13-01",
            "1 fortnight ago",
            "10:42 tomorrow",
            "@soon",
        ] {
            let e = parse_when(bad, NOW, &tz).unwrap_err().to_string();
            assert!(e.contains("is not a time"), "{bad}: {e}");
            assert!(e.contains("1 hour ago"), "{bad}: {e}");
        }
    }

    #[test]
    fn spans_for_buckets_and_their_limits() {
        assert_eq!(parse_span("5m"), Some(300 * NS));
        assert_eq!(parse_span("1 day"), Some(86_400 * NS));
        assert_eq!(parse_span(""), None);
        assert_eq!(parse_span("m"), None);
        assert_eq!(parse_span("5"), None);
        assert_eq!(parse_span("99999999999999w"), None);
    }
}
