//! RFC 3339 timestamps as Unix nanoseconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A timestamp that is not RFC 3339, or outside what 64-bit nanoseconds hold (1677..2262).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("not an RFC 3339 timestamp (e.g. 2025-08-20T10:00:00Z)")]
    Syntax,
    #[error("outside the supported range 1677-09-21..2262-04-11")]
    Range,
}

/// Parses an RFC 3339 timestamp (any fraction precision, `Z` or an offset) to Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Result<i64, TimeError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| TimeError::Syntax)?;
    i64::try_from(t.unix_timestamp_nanos()).map_err(|_| TimeError::Range)
}

/// Unix seconds (integer or fractional) to nanoseconds.
pub fn from_unix_seconds(secs: f64) -> Result<i64, TimeError> {
    if !secs.is_finite() || secs.abs() >= 9.2e9 {
        return Err(TimeError::Range);
    }
    // Whole seconds and the fraction apart, so 1724083200.25 gives exactly .250000000.
    let whole = secs.trunc() as i64;
    let frac = (secs.fract() * 1e9).round() as i64;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or(TimeError::Range)
}

/// Unix nanoseconds as RFC 3339 in UTC with the shortest exact fraction (0, 3, 6 or 9 digits).
pub fn format_rfc3339(ns: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .expect("every i64 nanosecond value is in time's range");
    let frac = t.nanosecond();
    let fraction = if frac == 0 {
        String::new()
    } else if frac.is_multiple_of(1_000_000) {
        format!(".{:03}", frac / 1_000_000)
    } else if frac.is_multiple_of(1_000) {
        format!(".{:06}", frac / 1_000)
    } else {
        format!(".{frac:09}")
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{fraction}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Appends exactly [`format_rfc3339`]'s text to `out`, without allocating (the client writes
/// one per listed entry).
pub fn write_rfc3339(ns: i64, out: &mut Vec<u8>) {
    const NS_PER_SEC: i64 = 1_000_000_000;
    let second = ns.div_euclid(NS_PER_SEC);
    let frac = ns.rem_euclid(NS_PER_SEC);
    // Entries come in time order, hundreds within a second: the date and time of the second
    // are worked out once per second (per thread), and only the fraction per entry.
    let head = LAST_SECOND.with(|last| {
        let (s, head) = last.get();
        if s == second {
            return head;
        }
        let head = second_text(second);
        last.set((second, head));
        head
    });
    // Written into a fixed buffer, then appended in one of four fixed lengths (a copy of a
    // known size, not a call to memcpy).
    let mut b = [0u8; 30];
    b[..19].copy_from_slice(&head);
    let (digits, mut value) = if frac == 0 {
        (0, 0)
    } else if frac % 1_000_000 == 0 {
        (3, frac / 1_000_000)
    } else if frac % 1_000 == 0 {
        (6, frac / 1_000)
    } else {
        (9, frac)
    };
    b[19] = b'.';
    for d in b[20..20 + digits].iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
    match digits {
        0 => {
            b[19] = b'Z';
            out.extend_from_slice(&b[..20]);
        }
        3 => {
            b[23] = b'Z';
            out.extend_from_slice(&b[..24]);
        }
        6 => {
            b[26] = b'Z';
            out.extend_from_slice(&b[..27]);
        }
        _ => {
            b[29] = b'Z';
            out.extend_from_slice(&b[..30]);
        }
    }
}

thread_local! {
    /// The second [`write_rfc3339`] wrote last on this thread, and its text (`second_text`).
    /// No second of an i64 of nanoseconds is `i64::MIN`: nothing matches it at first.
    static LAST_SECOND: std::cell::Cell<(i64, [u8; 19])> =
        const { std::cell::Cell::new((i64::MIN, [0; 19])) };
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix second.
fn second_text(second: i64) -> [u8; 19] {
    const SECS_PER_DAY: i64 = 86_400;
    let days = second.div_euclid(SECS_PER_DAY);
    let secs = second.rem_euclid(SECS_PER_DAY);
    // Days since 1970-01-01 to a civil date (H. Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut b = *b"0000-00-00T00:00:00";
    let two = |b: &mut [u8; 19], at: usize, v: i64| {
        b[at] = b'0' + (v / 10) as u8;
        b[at + 1] = b'0' + (v % 10) as u8;
    };
    // i64 nanoseconds span the years 1677..2262: always four digits.
    two(&mut b, 0, year / 100);
    two(&mut b, 2, year % 100);
    two(&mut b, 5, month);
    two(&mut b, 8, day);
    two(&mut b, 11, secs / 3600);
    two(&mut b, 14, secs / 60 % 60);
    two(&mut b, 17, secs % 60);
    b
}

/// The current time in Unix nanoseconds.
pub fn now_ns() -> i64 {
    // Straight from the clock: going through `OffsetDateTime` computes a calendar date and
    // back, which showed in profiles of the agent (it stamps every entry without a time).
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_precision_and_offset_parses() {
        let base = 1_755_684_000_000_000_000; // 2025-08-20T10:00:00Z
        assert_eq!(parse_rfc3339("2025-08-20T10:00:00Z"), Ok(base));
        assert_eq!(
            parse_rfc3339("2025-08-20T10:00:00.123Z"),
            Ok(base + 123_000_000)
        );
        assert_eq!(
            parse_rfc3339("2025-08-20T10:00:00.123456Z"),
            Ok(base + 123_456_000)
        );
        assert_eq!(
            parse_rfc3339("2025-08-20T10:00:00.123456789Z"),
            Ok(base + 123_456_789)
        );
        assert_eq!(parse_rfc3339("2025-08-20T12:00:00+02:00"), Ok(base));
        assert_eq!(parse_rfc3339("2025-08-20T05:30:00-04:30"), Ok(base));
        assert_eq!(parse_rfc3339("2025-08-20 10:00:00"), Err(TimeError::Syntax));
        assert_eq!(parse_rfc3339("yesterday"), Err(TimeError::Syntax));
        assert_eq!(parse_rfc3339("9999-01-01T00:00:00Z"), Err(TimeError::Range));
    }

    #[test]
    fn formats_shortest_exact_fraction() {
        let base = 1_755_684_000_000_000_000;
        assert_eq!(format_rfc3339(base), "2025-08-20T10:00:00Z");
        assert_eq!(
            format_rfc3339(base + 545_000_000),
            "2025-08-20T10:00:00.545Z"
        );
        assert_eq!(
            format_rfc3339(base + 545_100_000),
            "2025-08-20T10:00:00.545100Z"
        );
        assert_eq!(format_rfc3339(base + 1), "2025-08-20T10:00:00.000000001Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn unix_seconds_convert() {
        assert_eq!(
            from_unix_seconds(1_724_083_200.0),
            Ok(1_724_083_200_000_000_000)
        );
        assert_eq!(from_unix_seconds(f64::NAN), Err(TimeError::Range));
        assert_eq!(from_unix_seconds(1e300), Err(TimeError::Range));
    }

    proptest! {
        #[test]
        fn write_rfc3339_is_format_rfc3339(
            ns in any::<i64>(),
            ms in -9_000_000_000_000i64..9_000_000_000_000,
            secs in -9_000_000_000i64..9_000_000_000,
        ) {
            for t in [ns, ms * 1_000_000, ms * 1_000, secs * 1_000_000_000, i64::MIN, i64::MAX, 0, -1] {
                let mut out = Vec::new();
                write_rfc3339(t, &mut out);
                prop_assert_eq!(String::from_utf8(out).unwrap(), format_rfc3339(t));
            }
        }

        /// Times in and around one second, in any order, as a listing writes them: the
        /// second remembered from the entry before is used only for the same second.
        #[test]
        fn write_rfc3339_of_neighbours_is_format_rfc3339(
            second in -9_000_000_000i64..9_000_000_000,
            offsets in proptest::collection::vec(-2_000_000_000i64..3_000_000_000, 1..40),
        ) {
            for off in offsets {
                let t = second * 1_000_000_000 + off;
                let mut out = b"x".to_vec();
                write_rfc3339(t, &mut out);
                prop_assert_eq!(String::from_utf8(out).unwrap(), format!("x{}", format_rfc3339(t)));
            }
        }

        #[test]
        fn format_then_parse_round_trips(ns in i64::MIN / 2..i64::MAX / 2) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(ns)), Ok(ns));
        }
    }
}
