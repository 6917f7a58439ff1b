//! Detection on lines in the shapes each system writes, with the expected time and level.

use super::*;
use proptest::prelude::*;

fn ts(s: &str) -> i64 {
    timefmt::parse_rfc3339(s).expect("test time")
}

fn det(zone: &str) -> Detector {
    Detector::new(&DetectConfig {
        time_zone: Some(zone.into()),
        ..Default::default()
    })
    .expect("detector")
}

/// (line, expected time RFC 3339 or "", expected level or None), read at `now`.
fn check(d: &Detector, now: &str, cases: &[(&str, &str, Option<Level>)]) {
    let now = ts(now);
    for (line, want_ts, want_level) in cases {
        let (e, out) = d.entry(line.to_string(), now, "t");
        if want_ts.is_empty() {
            assert!(
                !out.time,
                "{line}: no time expected, got {}",
                timefmt::format_rfc3339(e.timestamp_ns)
            );
            assert_eq!(e.timestamp_ns, now, "{line}");
        } else {
            assert!(out.time, "{line}: no time found");
            assert_eq!(
                timefmt::format_rfc3339(e.timestamp_ns),
                timefmt::format_rfc3339(ts(want_ts)),
                "{line}"
            );
        }
        assert_eq!(out.level.then_some(e.level), *want_level, "{line}");
    }
}

#[test]
fn iso_8601_and_log4j_forms() {
    let d = det("UTC");
    check(
        &d,
        "2026-11-30T12:00:00Z",
        &[
            ("2026-11-30T10:42:00Z GET /", "2026-11-30T10:42:00Z", None),
            (
                "2026-11-30T10:42:00.123456+02:00 ERROR db down",
                "2026-11-30T08:42:00.123456Z",
                Some(Level::Error),
            ),
            (
                "2026-11-30 10:42:00,548 WARN [main] x.Y: slow",
                "2026-11-30T10:42:00.548Z",
                Some(Level::Warning),
            ),
            (
                "2015-07-31 11:09:02,548 - INFO  [QuorumPeer[myid=1]/0:0:0:0:2181:Leader@1] - ok",
                "2015-07-31T11:09:02.548Z",
                Some(Level::Info),
            ),
            (
                "2026-11-30 10:42:00 +0100 [error] x",
                "2026-11-30T09:42:00Z",
                Some(Level::Error),
            ),
            (
                "2026/11/21 10:00:00 [notice] 1#1: signal",
                "2026-11-21T10:00:00Z",
                Some(Level::Notice),
            ),
            (
                "[2026-11-30 10:42:00.5] [DEBUG] cache miss",
                "2026-11-30T10:42:00.5Z",
                Some(Level::Debug),
            ),
            (
                "2017-05-16 00:00:00.008 25746 INFO nova.compute.manager [req-1 - - -] ok",
                "2017-05-16T00:00:00.008Z",
                Some(Level::Info),
            ),
            (
                "2016-09-28 04:30:30, Warning               CBS    Failed",
                "2016-09-28T04:30:30Z",
                Some(Level::Warning),
            ),
            (
                "2016-09-28 04:30:30, Info                  CBS    Warning: Unrecognized",
                "2016-09-28T04:30:30Z",
                Some(Level::Info),
            ),
        ],
    );
}

#[test]
fn compact_and_numeric_forms() {
    let d = det("UTC");
    check(
        &d,
        "2026-11-30T12:00:00Z",
        &[
            (
                "081109 203615 148 INFO dfs.DataNode$PacketResponder: done",
                "2008-11-09T20:36:15Z",
                Some(Level::Info),
            ),
            (
                "20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579",
                "2017-12-23T22:15:29.606Z",
                None,
            ),
            (
                "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 RAS KERNEL FATAL data TLB error",
                "2005-06-03T15:42:50.675872Z",
                Some(Level::Critical),
            ),
            (
                "17/06/09 20:10:40 ERROR executor.Executor: Exception in task",
                "2017-06-09T20:10:40Z",
                Some(Level::Error),
            ),
            (
                "31.12.2025 23:59:59 WARN x",
                "2025-12-31T23:59:59Z",
                Some(Level::Warning),
            ),
            (
                "460056 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change",
                "2004-02-26T14:12:22Z",
                None,
            ),
        ],
    );
}

#[test]
fn apache_and_nginx_forms() {
    let d = det("UTC");
    check(
        &d,
        "2026-11-30T12:00:00Z",
        &[
            (
                "[Sun Dec 04 04:47:44 2005] [error] mod_jk child workerEnv in error state 6",
                "2005-12-04T04:47:44Z",
                Some(Level::Error),
            ),
            (
                "[Sun Dec 04 04:47:44 2005] [emerg] down",
                "2005-12-04T04:47:44Z",
                Some(Level::Emergency),
            ),
            (
                r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /error.gif HTTP/1.0" 500 2326"#,
                "2000-10-10T20:55:36Z",
                None,
            ),
        ],
    );
}

#[test]
fn year_less_forms_take_the_year_before_the_read_time() {
    let d = det("UTC");
    // Read on New Year's Day: December lines are last year's.
    check(
        &d,
        "2026-01-01T00:10:00Z",
        &[
            (
                "Dec 31 23:59:58 combo sshd(pam_unix)[19939]: authentication failure; 0 errors",
                "2025-12-31T23:59:58Z",
                None,
            ),
            (
                "Jan  1 00:05:00 combo kernel: Warning: something",
                "2026-01-01T00:05:00Z",
                None,
            ),
            (
                "Dec 10 06:55:46 LabSZ sshd[24200]: error: Received disconnect",
                "2025-12-10T06:55:46Z",
                None,
            ),
            (
                "<34>Oct 11 22:14:15 mymachine su: 'su root' failed",
                "2025-10-11T22:14:15Z",
                // The PRI's severity (34 mod 8 = 2).
                Some(Level::Critical),
            ),
            (
                "03-17 16:13:38.811  1702  2395 D WindowManager: printFreezingDisplayLogs",
                "2025-03-17T16:13:38.811Z",
                Some(Level::Debug),
            ),
            (
                "12-31 23:00:00.000  1702  2395 E AndroidRuntime: FATAL EXCEPTION: main",
                "2025-12-31T23:00:00Z",
                Some(Level::Error),
            ),
            (
                "[10.30 16:49:06] chrome.exe - proxy.example:5070 error : Could not connect",
                "2025-10-30T16:49:06Z",
                None,
            ),
            (
                "I1231 23:59:59.123456    2151 kubelet.go:2273] \"SyncLoop\"",
                "2025-12-31T23:59:59.123456Z",
                Some(Level::Info),
            ),
            (
                "E0101 00:01:00.000001    2151 pod.go:1] failed",
                "2026-01-01T00:01:00.000001Z",
                Some(Level::Error),
            ),
            (
                "F0101 00:01:00.5    1 main.go:1] bye",
                "2026-01-01T00:01:00.5Z",
                Some(Level::Critical),
            ),
        ],
    );
    // Thunderbird, read the same evening: its BSD time is before its epoch in the line.
    check(
        &d,
        "2005-11-09T23:00:00Z",
        &[(
            "- 1131566461 2005.11.09 dn228 Nov  9 20:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed",
            "2005-11-09T20:01:01Z",
            None,
        )],
    );
}

#[test]
fn levels_only_in_their_positions() {
    let d = det("UTC");
    check(
        &d,
        "2026-11-30T12:00:00Z",
        &[
            (
                "2026-11-30 10:00:00 job finished with 0 errors",
                "2026-11-30T10:00:00Z",
                None,
            ),
            (
                "2026-11-30 10:00:00 worker: ERROR in upstream ignored",
                "2026-11-30T10:00:00Z",
                None,
            ),
            ("no time here, an error somewhere", "", None),
            ("[WARN] disk 91% full", "", Some(Level::Warning)),
            ("ERROR: could not open file", "", Some(Level::Error)),
            (
                "E/ActivityManager( 123): ANR in com.example",
                "",
                Some(Level::Error),
            ),
            (
                "ts=2026-11-30T10:00:00Z caller=main.go:1 level=warn msg=\"slow\" x=1 oops",
                "2026-11-30T10:00:00Z",
                Some(Level::Warning),
            ),
            (
                "2026-11-30 10:00:00 [main] FATAL app - out of memory",
                "2026-11-30T10:00:00Z",
                Some(Level::Critical),
            ),
            (
                "2026-11-30 10:00:00 VERBOSE tick",
                "2026-11-30T10:00:00Z",
                Some(Level::Debug),
            ),
            (
                "2026-11-30 10:00:00 [CRIT] raid degraded",
                "2026-11-30T10:00:00Z",
                Some(Level::Critical),
            ),
            (
                "2026-11-30 10:00:00 ALERT: fan",
                "2026-11-30T10:00:00Z",
                Some(Level::Alert),
            ),
            (
                "2026-11-30 10:00:00 PANIC: kernel",
                "2026-11-30T10:00:00Z",
                Some(Level::Emergency),
            ),
            (
                "2026-11-30 10:00:00 TRACE entering",
                "2026-11-30T10:00:00Z",
                Some(Level::Debug),
            ),
            (
                "2026-11-30 10:00:00 Alert rule fired for checkout",
                "2026-11-30T10:00:00Z",
                None,
            ),
            (
                "2026-11-30 10:00:00 Critical section entered",
                "2026-11-30T10:00:00Z",
                None,
            ),
            (
                "2026-11-30 10:00:00 Error reading config",
                "2026-11-30T10:00:00Z",
                Some(Level::Error),
            ),
        ],
    );
}

#[test]
fn zones_apply_to_zone_less_times_only() {
    let now = "2026-11-30T12:00:00Z";
    check(
        &det("+02:00"),
        now,
        &[
            (
                "2026-11-30 10:42:00 INFO x",
                "2026-11-30T08:42:00Z",
                Some(Level::Info),
            ),
            (
                "2026-11-30T10:42:00Z INFO x",
                "2026-11-30T10:42:00Z",
                Some(Level::Info),
            ),
        ],
    );
    // Berlin: CET in winter (+01:00), CEST in summer (+02:00).
    check(
        &det("Europe/Berlin"),
        now,
        &[
            ("2026-11-30 10:42:00 x", "2026-11-30T09:42:00Z", None),
            ("2026-07-01 10:42:00 x", "2026-07-01T08:42:00Z", None),
        ],
    );
    assert!(Zone::parse("Mars/Olympus").is_err());
    assert!(matches!(Zone::parse("local"), Ok(Zone::Local)));
    assert!(matches!(Zone::parse("-0530"), Ok(Zone::Fixed(-19_800))));
}

#[test]
fn implausible_times_fall_back_to_the_read_time_and_are_counted() {
    let d = det("UTC");
    let now = ts("2026-11-30T12:00:00Z");
    let (e, out) = d.entry("2031-01-01 00:00:00 ERROR from the future".into(), now, "t");
    assert!(out.time && out.implausible);
    assert_eq!(e.timestamp_ns, now);
    assert_eq!(e.metadata[ORIGINAL_TIME_KEY], "2031-01-01T00:00:00Z");
    assert!(!e.metadata.contains_key(READ_TIME_KEY));
    let (e, out) = d.entry("1985-01-01 00:00:00 old".into(), now, "t");
    assert!(out.implausible);
    assert_eq!(e.timestamp_ns, now);
    assert_eq!(d.implausible.get(), 2);
    // An archive from 2015 keeps its own time, and the read time goes to metadata.
    let (e, out) = d.entry("2015-07-31 11:09:02,548 INFO old but real".into(), now, "t");
    assert!(!out.implausible);
    assert_eq!(e.timestamp_ns, ts("2015-07-31T11:09:02.548Z"));
    assert_eq!(e.metadata[READ_TIME_KEY], "2026-11-30T12:00:00Z");
    assert_eq!(e.payload, "2015-07-31 11:09:02,548 INFO old but real");
    // A line read live (within a minute of its time) does not carry it.
    let (e, _) = d.entry("2026-11-30 11:59:30 INFO live".into(), now, "t");
    assert_eq!(e.timestamp_ns, ts("2026-11-30T11:59:30Z"));
    assert!(!e.metadata.contains_key(READ_TIME_KEY));
    let (e, _) = d.entry("2026-11-30 11:58:59 INFO a minute late".into(), now, "t");
    assert!(e.metadata.contains_key(READ_TIME_KEY));
}

#[test]
fn structured_lines() {
    let d = det("UTC");
    let now = ts("2026-11-30T12:00:00Z");
    let (e, out) = d.entry(
        r#"{"time":"2026-11-30T10:00:00Z","level":"warn","msg":"slow","http":{"status":503,"path":"/x"},"tags":["a"]}"#.into(),
        now,
        "t",
    );
    assert!(out.time && out.level);
    assert_eq!(e.payload, "slow");
    assert_eq!(e.level, Level::Warning);
    assert_eq!(e.timestamp_ns, ts("2026-11-30T10:00:00Z"));
    assert_eq!(e.metadata["http.status"], "503");
    assert_eq!(e.metadata["http.path"], "/x");
    assert_eq!(e.metadata["tags"], r#"["a"]"#);
    assert_eq!(e.payload_type, "generic_json");
    // Epoch milliseconds, a nested `log.level`, pino's numeric level.
    let (e, _) = d.entry(
        r#"{"ts":1764496800123,"log":{"level":"error"},"message":"m"}"#.into(),
        now,
        "t",
    );
    assert_eq!(e.timestamp_ns, ts("2025-11-30T10:00:00.123Z"));
    assert_eq!(e.level, Level::Error);
    let (e, _) = d.entry(
        r#"{"time":1764496800,"level":50,"msg":"m"}"#.into(),
        now,
        "t",
    );
    assert_eq!(
        (e.level, e.timestamp_ns),
        (Level::Error, ts("2025-11-30T10:00:00Z"))
    );
    // A log4j time in a JSON field.
    let (e, _) = d.entry(
        r#"{"timestamp":"2026-11-30 10:00:00,250","severity":"DEBUG","msg":"m"}"#.into(),
        now,
        "t",
    );
    assert_eq!(
        (e.level, e.timestamp_ns),
        (Level::Debug, ts("2026-11-30T10:00:00.25Z"))
    );
    // logfmt
    let (e, out) = d.entry(
        r#"time=2026-11-30T10:00:00Z level=error msg="db \"main\" down" retries=3"#.into(),
        now,
        "t",
    );
    assert!(out.level && out.time);
    assert_eq!(e.payload, r#"db "main" down"#);
    assert_eq!(e.metadata["retries"], "3");
    // Not logfmt: `=` in text, or too few pairs.
    let (e, _) = d.entry("a=b and more text".into(), now, "t");
    assert_eq!(e.payload, "a=b and more text");
    let (e, _) = d.entry("{not json".into(), now, "t");
    assert_eq!(e.payload, "{not json");
}

#[test]
fn overrides() {
    let now = ts("2026-11-30T12:00:00Z");
    let d = Detector::new(&DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: Some(r"at (?P<time>\d+/\d+/\d+ \d+:\d+)".into()),
            format: "%d/%m/%Y %H:%M".into(),
        }),
        level: Some(LevelConfig::Rule(LevelRuleConfig {
            regex: r"sev:(?P<level>\w+)".into(),
        })),
        default_level: Some("notice".into()),
        time_zone: Some("UTC".into()),
        ..Default::default()
    })
    .expect("valid");
    let (e, out) = d.entry(
        "job 7 at 30/11/2026 09:15 sev:warning done".into(),
        now,
        "t",
    );
    assert!(out.time && out.level);
    assert_eq!(e.timestamp_ns, ts("2026-11-30T09:15:00Z"));
    assert_eq!(e.level, Level::Warning);
    let (e, out) = d.entry("2026-11-30 10:00:00 ERROR other".into(), now, "t");
    assert!(!out.time && !out.level);
    assert_eq!((e.timestamp_ns, e.level), (now, Level::Notice));

    let off = Detector::new(&DetectConfig {
        format: LineFormat::Plain,
        timestamp: Some(TimestampConfig {
            regex: None,
            format: "none".into(),
        }),
        level: Some(LevelConfig::Fixed("warn".into())),
        ..Default::default()
    })
    .expect("valid");
    let (e, _) = off.entry(
        r#"{"level":"error","time":"2026-11-30T10:00:00Z"}"#.into(),
        now,
        "t",
    );
    assert_eq!((e.timestamp_ns, e.level), (now, Level::Warning));
    assert!(!e.metadata.contains_key(READ_TIME_KEY));

    // Year-less strftime and unix formats.
    let yl = Detector::new(&DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: None,
            format: "%b %d %H:%M:%S".into(),
        }),
        time_zone: Some("UTC".into()),
        ..Default::default()
    })
    .expect("valid");
    let (e, _) = yl.entry("Dec 31 23:00:00 x".into(), now, "t");
    assert_eq!(e.timestamp_ns, ts("2025-12-31T23:00:00Z"));
    let ux = Detector::new(&DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: Some(r"t=(?P<time>\S+)".into()),
            format: "unix_ms".into(),
        }),
        ..Default::default()
    })
    .expect("valid");
    let (e, _) = ux.entry("x t=1764496800123 y".into(), now, "t");
    assert_eq!(e.timestamp_ns, ts("2025-11-30T10:00:00.123Z"));
}

#[test]
fn bad_overrides_name_their_field() {
    let bad = |c: DetectConfig| Detector::new(&c).expect_err("invalid");
    let e = bad(DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: None,
            format: "%Q%".into(),
        }),
        ..Default::default()
    });
    assert!(e.starts_with("timestamp.format:"), "{e}");
    let e = bad(DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: Some("(".into()),
            format: "%Y".into(),
        }),
        ..Default::default()
    });
    assert!(e.starts_with("timestamp.regex:"), "{e}");
    let e = bad(DetectConfig {
        timestamp: Some(TimestampConfig {
            regex: Some("(?P<t>x)".into()),
            format: "%Y".into(),
        }),
        ..Default::default()
    });
    assert!(e.contains("`time`"), "{e}");
    let e = bad(DetectConfig {
        time_zone: Some("Nowhere/City".into()),
        ..Default::default()
    });
    assert!(e.starts_with("time_zone:"), "{e}");
    let e = bad(DetectConfig {
        level: Some(LevelConfig::Fixed("loud".into())),
        ..Default::default()
    });
    assert!(e.starts_with("level:"), "{e}");
    let e = bad(DetectConfig {
        level: Some(LevelConfig::Rule(LevelRuleConfig { regex: "[".into() })),
        ..Default::default()
    });
    assert!(e.starts_with("level.regex:"), "{e}");
    let e = bad(DetectConfig {
        default_level: Some("x".into()),
        ..Default::default()
    });
    assert!(e.starts_with("default_level:"), "{e}");
}

#[test]
fn the_cached_recogniser_does_not_stick() {
    let d = det("UTC");
    let now = ts("2026-11-30T12:00:00Z");
    for (line, want) in [
        ("Nov 30 10:00:00 host x: y", "2026-11-30T10:00:00Z"),
        ("2026-11-30 10:00:01 INFO y", "2026-11-30T10:00:01Z"),
        ("I1130 10:00:02.000000 1 a.go:1] y", "2026-11-30T10:00:02Z"),
        ("Nov 30 10:00:03 host x: y", "2026-11-30T10:00:03Z"),
    ] {
        let (e, _) = d.entry(line.into(), now, "t");
        assert_eq!(e.timestamp_ns, ts(want), "{line}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any text: no panic, and the entry's time is either the read time or a plausible one.
    #[test]
    fn never_panics_and_stays_plausible(line in ".{0,200}", now_s in 700_000_000i64..4_000_000_000) {
        let d = det("Europe/Berlin");
        let now = now_s * NS;
        let (e, _) = d.entry(line, now, "t");
        prop_assert!(e.timestamp_ns == now || time::plausible(e.timestamp_ns, now));
    }

    /// Lines made of the pieces timestamps are made of (digits, separators, month names).
    #[test]
    fn time_shaped_text_stays_plausible(
        parts in proptest::collection::vec(
            prop_oneof![
                "[0-9]{1,14}", Just("-".to_owned()), Just(":".to_owned()), Just(".".to_owned()),
                Just(" ".to_owned()), Just("T".to_owned()), Just("Z".to_owned()), Just("+".to_owned()),
                Just("/".to_owned()), Just(",".to_owned()), Just("Dec".to_owned()), Just("Feb".to_owned()),
                Just("Sun".to_owned()), Just("I".to_owned()), Just("[".to_owned()), Just("]".to_owned()),
                Just("{\"ts\":".to_owned()), Just("}".to_owned()), Just("level=".to_owned()),
            ],
            0..24,
        ),
        now_s in 700_000_000i64..4_000_000_000,
        zone in prop_oneof![Just("UTC"), Just("local"), Just("-11:00"), Just("Pacific/Kiritimati")],
    ) {
        let d = det(zone);
        let now = now_s * NS;
        let (e, _) = d.entry(parts.concat(), now, "t");
        prop_assert!(e.timestamp_ns == now || time::plausible(e.timestamp_ns, now));
    }
}

proptest! {
    /// The hand-written read time is RFC 3339, the read time to the second.
    #[test]
    fn read_time_text_is_rfc3339(now in 0i64..8_000_000_000_000_000_000) {
        let t = read_time_text(now);
        prop_assert_eq!(timefmt::parse_rfc3339(&t).ok(), Some(now - now % NS));
        prop_assert_eq!(t.len(), 20);
        prop_assert!(!t.is_heap_allocated(), "20 bytes are stored inline");
    }

    /// Days to dates and back.
    #[test]
    fn civil_days_round_trip(days in -1_000_000i64..1_000_000) {
        let (y, m, d) = time::civil_from_days(days);
        prop_assert_eq!(time::days_from_civil(y as i32, m, d), days);
    }
}

#[test]
fn date_less_clock_times_take_the_latest_day_before_the_read_time() {
    let utc = det("UTC");
    check(
        &utc,
        "2026-12-01T00:10:00Z",
        &[
            // Just after midnight: 23:58 is yesterday's, 00:09 today's, 00:12 (within the
            // clock margin) today's too.
            (
                "23:58:00.500 [main] INFO  a.B - x",
                "2026-11-30T23:58:00.500Z",
                Some(Level::Info),
            ),
            (
                "[00:09:59 WRN] y",
                "2026-12-01T00:09:59Z",
                Some(Level::Warning),
            ),
            ("00:12:00 z", "2026-12-01T00:12:00Z", None),
            // A clock time later in a line is not taken (a message's "at 10:00:00").
            ("job ran at 10:00:00 ok", "", None),
        ],
    );
    // The input's zone gives the day: 01:00 in Berlin is 00:00 UTC of the same date.
    check(
        &det("Europe/Berlin"),
        "2026-12-01T00:10:00Z",
        &[(
            "[01:05:00 ERR] z",
            "2026-12-01T00:05:00Z",
            Some(Level::Error),
        )],
    );
}

#[test]
fn day_first_named_months_and_twelve_hour_clocks() {
    check(
        &det("UTC"),
        "2026-12-01T00:00:00Z",
        &[
            (
                "12 Jan 2026 08:00:01 +0200 relay started",
                "2026-01-12T06:00:01Z",
                None,
            ),
            (
                "Warning\t1/2/2026 12:00:05 AM\tSrc\t1\tNone\tm",
                "2026-01-02T00:00:05Z",
                Some(Level::Warning),
            ),
            (
                "Information\t1/2/2026 12:30:00 PM\tSrc\t1\tNone\tm",
                "2026-01-02T12:30:00Z",
                Some(Level::Info),
            ),
        ],
    );
}

#[test]
fn header_level_shapes_beyond_the_word_after_the_time() {
    check(
        &det("UTC"),
        "2026-12-01T00:00:00Z",
        &[
            (
                "[Tue Dec 01 00:00:01.5 2026] [rewrite:trace8] [pid 9] r",
                "2026-12-01T00:00:01.500Z",
                Some(Level::Debug),
            ),
            (
                "[Tue Dec 01 00:00:02 2026] [mod_x:info] [pid 9] r",
                "2026-12-01T00:00:02Z",
                Some(Level::Info),
            ),
            (
                "[2026-12-01T00:00:03,1][ERROR][o.e.X] [n] boom",
                "2026-12-01T00:00:03.100Z",
                Some(Level::Error),
            ),
            (
                "[2026-12-01 00:00:04.1][7][warning][pool] x",
                "2026-12-01T00:00:04.100Z",
                Some(Level::Warning),
            ),
            (
                "<13>Dec  1 00:00:05 host app: error: x",
                "2026-12-01T00:00:05Z",
                Some(Level::Notice),
            ),
            (
                "2026-12-01 00:00:06 UTC [5] LOG:  checkpoint",
                "2026-12-01T00:00:06Z",
                Some(Level::Info),
            ),
            (
                "12:M 01 Dec 2026 00:00:07.000 # oom",
                "2026-12-01T00:00:07Z",
                Some(Level::Warning),
            ),
            ("CRITICAL:app.db:lost", "", Some(Level::Critical)),
            ("FATA[0042] gone", "", Some(Level::Critical)),
            ("dbug: A.B[1]", "", Some(Level::Debug)),
            // Not levels: a level word after prose, a lower-case `error:` past the first word,
            // a `#` without Redis's `pid:role` before the time.
            (
                "2026-12-01 00:00:08 Loaded config with level WARN",
                "2026-12-01T00:00:08Z",
                None,
            ),
            (
                "2026-12-01 00:00:09 job failed error: x",
                "2026-12-01T00:00:09Z",
                None,
            ),
            (
                "host 01 Dec 2026 00:00:10 # note",
                "2026-12-01T00:00:10Z",
                None,
            ),
        ],
    );
}

#[test]
fn mongodb_json_severity_and_date() {
    check(
        &det("UTC"),
        "2026-12-01T00:00:00Z",
        &[
            (
                r#"{"t":{"$date":"2026-11-30T23:00:00.000+01:00"},"s":"W","c":"X","msg":"m"}"#,
                "2026-11-30T22:00:00Z",
                Some(Level::Warning),
            ),
            (
                r#"{"t":{"$date":"2026-11-30T23:00:01Z"},"s":"D2","msg":"m"}"#,
                "2026-11-30T23:00:01Z",
                Some(Level::Debug),
            ),
            // `s` is a level only in MongoDB's shape.
            (
                r#"{"time":"2026-11-30T23:00:02Z","s":"E","msg":"m"}"#,
                "2026-11-30T23:00:02Z",
                None,
            ),
        ],
    );
}
