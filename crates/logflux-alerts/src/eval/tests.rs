#![allow(clippy::unwrap_used)]

use std::path::Path;

use logflux_proto::{Entry, EntryView, Level};
use logflux_query::Row;

use super::*;
use crate::rules::parse_rules;

const S: i64 = 1_000;

fn rules(yaml: &str) -> RuleSet {
    parse_rules(yaml, Path::new("t.yaml")).unwrap()
}

/// A rule counting `timeout` lines per source over 1 m, firing above 2.
fn timeouts(extra: &str) -> RuleSet {
    rules(&format!(
        r#"
groups:
  - name: api
    interval: 1m
    rules:
      - alert: Timeouts
        expr: sum by (source) (count_over_time({{app="web"}} |= "timeout" [1m])) > 2
        labels:
          severity: page
        annotations:
          summary: "{{{{ $labels.source }}}} timed out {{{{ $value }}}} times"
{extra}
"#
    ))
}

struct H {
    ev: Evaluator,
}

impl H {
    fn new(set: RuleSet) -> H {
        H::restored(set, None)
    }

    fn restored(set: RuleSet, state: Option<PersistedState>) -> H {
        H {
            ev: Evaluator::new(
                set,
                state,
                &Options {
                    base_url: "http://127.0.0.1:3100/".to_owned(),
                },
            ),
        }
    }

    /// `n` entries of `source` saying `msg`, at `at_ms`.
    fn push(&mut self, at_ms: i64, source: &str, msg: &str, n: usize) {
        for _ in 0..n {
            let e: EntryView = Entry::new(at_ms * 1_000_000, Level::Error, source, msg).into();
            self.ev.push(&Row {
                app: "web",
                entry: &e,
            });
        }
    }

    fn states(&self) -> Vec<(String, AlertState)> {
        self.ev
            .active_alerts()
            .alerts
            .into_iter()
            .map(|a| (a.labels["source"].clone(), a.state))
            .collect()
    }
}

fn firing(alerts: &[Alert]) -> Vec<&str> {
    alerts
        .iter()
        .filter(|a| a.ends_at_ms.is_none())
        .map(|a| a.labels["source"].as_str())
        .collect()
}

fn resolved(alerts: &[Alert]) -> Vec<&str> {
    alerts
        .iter()
        .filter(|a| a.ends_at_ms.is_some())
        .map(|a| a.labels["source"].as_str())
        .collect()
}

#[test]
fn inactive_pending_firing_resolved() {
    let mut h = H::new(timeouts("        for: 2m"));
    assert_eq!(h.ev.next_due_ms(), Some(0));
    // Nothing yet: inactive.
    assert!(h.ev.tick(0).is_empty());
    assert!(h.states().is_empty());
    assert_eq!(h.ev.next_due_ms(), Some(60 * S));
    // Not due before the next whole minute.
    h.push(30 * S, "api", "read timeout", 3);
    h.push(30 * S, "db", "read timeout", 1);
    assert!(h.ev.tick(59 * S).is_empty());
    assert!(h.states().is_empty());
    // 3 > 2 at 60 s: pending (not notified).
    assert!(h.ev.tick(60 * S + 500).is_empty());
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Pending)]);
    let a = &h.ev.active_alerts().alerts[0];
    assert_eq!(a.active_at, "1970-01-01T00:01:00Z");
    assert_eq!(a.value, "3e+00");
    // Still pending after 1 m of `for: 2m`.
    h.push(100 * S, "api", "timeout", 3);
    assert!(h.ev.tick(120 * S).is_empty());
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Pending)]);
    // Firing once pending for 2 m.
    h.push(150 * S, "api", "timeout", 4);
    let out = h.ev.tick(180 * S);
    assert_eq!(firing(&out), ["api"]);
    let a = &out[0];
    assert_eq!(a.starts_at_ms, 180 * S);
    assert_eq!(a.value, 4.0);
    assert_eq!(a.labels["alertname"], "Timeouts");
    assert_eq!(a.labels["severity"], "page");
    assert_eq!(a.annotations["summary"], "api timed out 4 times");
    assert!(a.lines.is_empty());
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Firing)]);
    // Re-sent at every evaluation while it fires.
    h.push(200 * S, "api", "timeout", 3);
    let out = h.ev.tick(240 * S);
    assert_eq!(firing(&out), ["api"]);
    assert_eq!(out[0].starts_at_ms, 180 * S);
    // The rate drops: resolved, and handed on as resolved for RESOLVED_RETENTION_MS (the
    // notifier sends it once), then nothing.
    h.push(270 * S, "api", "timeout", 1);
    let out = h.ev.tick(300 * S);
    assert_eq!(resolved(&out), ["api"]);
    assert!(firing(&out).is_empty());
    assert_eq!(out[0].ends_at_ms, Some(300 * S));
    assert_eq!(out[0].starts_at_ms, 180 * S);
    assert!(h.states().is_empty());
    let again = h.ev.tick(360 * S);
    assert_eq!(resolved(&again), ["api"]);
    assert_eq!(again[0].ends_at_ms, Some(300 * S));
    let m = h.ev.metrics();
    assert_eq!(m.evaluations, 7);
    assert_eq!(m.failures, 0);
    assert_eq!(m.entries, 15);
    // It survives a restart as resolved, so a resolve not yet sent is not lost.
    let json = serde_json::to_string(&h.ev.state()).unwrap();
    let mut h = H::restored(
        timeouts("        for: 2m"),
        Some(serde_json::from_str(&json).unwrap()),
    );
    assert!(h.states().is_empty());
    assert_eq!(resolved(&h.ev.tick(420 * S)), ["api"]);
    assert!(h.ev.tick(300 * S + RESOLVED_RETENTION_MS).is_empty());
}

#[test]
fn a_pending_alert_that_goes_away_is_forgotten_without_a_notification() {
    let mut h = H::new(timeouts("        for: 5m"));
    h.push(30 * S, "api", "timeout", 3);
    assert!(h.ev.tick(60 * S).is_empty());
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Pending)]);
    assert!(h.ev.tick(120 * S).is_empty());
    assert!(h.states().is_empty());
    // Back again: pending from the new time, not the old one.
    h.push(150 * S, "api", "timeout", 3);
    assert!(h.ev.tick(180 * S).is_empty());
    assert_eq!(
        h.ev.active_alerts().alerts[0].active_at,
        "1970-01-01T00:03:00Z"
    );
}

#[test]
fn for_zero_fires_at_the_first_evaluation() {
    let mut h = H::new(timeouts(""));
    h.push(30 * S, "api", "timeout", 3);
    let out = h.ev.tick(60 * S);
    assert_eq!(firing(&out), ["api"]);
    assert_eq!(out[0].starts_at_ms, 60 * S);
}

#[test]
fn keep_firing_for_holds_a_firing_alert_then_resolves_it() {
    let mut h = H::new(timeouts("        keep_firing_for: 2m"));
    h.push(30 * S, "api", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(60 * S)), ["api"]);
    // Missing at 120 s and 180 s: still firing (kept since 120 s, for 2 m).
    assert_eq!(firing(&h.ev.tick(120 * S)), ["api"]);
    let a = &h.ev.active_alerts().alerts[0];
    assert_eq!(a.keep_firing_since.as_deref(), Some("1970-01-01T00:02:00Z"));
    assert_eq!(firing(&h.ev.tick(180 * S)), ["api"]);
    // 2 m after it went missing: resolved.
    let out = h.ev.tick(240 * S);
    assert_eq!(resolved(&out), ["api"]);
    assert!(h.states().is_empty());
}

#[test]
fn keep_firing_for_restarts_when_the_series_comes_back() {
    let mut h = H::new(timeouts("        keep_firing_for: 2m"));
    h.push(30 * S, "api", "timeout", 3);
    h.ev.tick(60 * S);
    h.ev.tick(120 * S);
    // Back at 180 s: the hold is reset.
    h.push(150 * S, "api", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(180 * S)), ["api"]);
    assert_eq!(h.ev.active_alerts().alerts[0].keep_firing_since, None);
    assert_eq!(firing(&h.ev.tick(240 * S)), ["api"]);
    assert_eq!(firing(&h.ev.tick(300 * S)), ["api"]);
    assert_eq!(resolved(&h.ev.tick(360 * S)), ["api"]);
}

#[test]
fn a_restart_in_the_middle_of_for_fires_on_time() {
    let set = || timeouts("        for: 2m");
    let mut h = H::new(set());
    h.push(30 * S, "api", "timeout", 3);
    h.ev.tick(60 * S);
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Pending)]);
    // Persisted as JSON, as `logflux alerts run` writes it; no log content in it.
    let json = serde_json::to_string(&h.ev.state()).unwrap();
    assert!(!json.contains("timeout\""), "{json}");
    assert!(json.contains("\"active_at_ms\":60000"), "{json}");
    let state: PersistedState = serde_json::from_str(&json).unwrap();

    // The new process backfills the window and keeps evaluating.
    let mut h = H::restored(set(), Some(state));
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Pending)]);
    h.push(100 * S, "api", "timeout", 3);
    assert!(h.ev.tick(120 * S).is_empty());
    h.push(150 * S, "api", "timeout", 3);
    let out = h.ev.tick(180 * S);
    assert_eq!(firing(&out), ["api"]);
    assert_eq!(out[0].starts_at_ms, 180 * S);

    // Without the state, it would only be pending since 120 s.
    let mut fresh = H::new(set());
    fresh.push(100 * S, "api", "timeout", 3);
    fresh.ev.tick(120 * S);
    fresh.push(150 * S, "api", "timeout", 3);
    assert!(fresh.ev.tick(180 * S).is_empty());
}

#[test]
fn a_restored_firing_alert_keeps_firing_without_a_new_start() {
    let set = || timeouts("");
    let mut h = H::new(set());
    h.push(30 * S, "api", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(60 * S)), ["api"]);
    let state = h.ev.state();
    let mut h = H::restored(set(), Some(state.clone()));
    h.push(90 * S, "api", "timeout", 3);
    let out = h.ev.tick(120 * S);
    assert_eq!(firing(&out), ["api"]);
    assert_eq!(out[0].starts_at_ms, 60 * S);
    // A rule whose expression changed does not take the old state.
    let changed = rules(
        r#"
groups:
  - name: api
    rules:
      - alert: Timeouts
        expr: sum by (source) (count_over_time({app="web"} |= "timeout" [1m])) > 5
"#,
    );
    let h = H::restored(changed, Some(state));
    assert!(h.states().is_empty());
}

#[test]
fn an_interrupted_stream_holds_every_state() {
    let mut h = H::new(timeouts("        for: 1m"));
    h.push(30 * S, "api", "timeout", 3);
    h.push(30 * S, "db", "timeout", 3);
    h.ev.tick(60 * S);
    h.push(90 * S, "api", "timeout", 3);
    h.push(90 * S, "db", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(120 * S)), ["api", "db"]);
    // db's entries stop as the stream breaks (api's arrive after it comes back).
    h.ev.set_stream_ok(false);
    for t in [180, 240, 300] {
        assert!(h.ev.tick(t * S).is_empty(), "at {t}");
    }
    assert_eq!(
        h.states(),
        [
            ("api".to_owned(), AlertState::Firing),
            ("db".to_owned(), AlertState::Firing)
        ]
    );
    let st = h.ev.rules_status();
    let r = &st.groups[0].rules[0];
    assert_eq!(r.health, Health::Err);
    assert!(
        r.last_error
            .contains("log stream is interrupted: evaluations paused since 1970-01-01T00:03:00Z"),
        "{}",
        r.last_error
    );
    assert_eq!(h.ev.metrics().missed_evaluations, 3);
    // Back: the entries missed are backfilled, then the next evaluation reads them.
    h.ev.set_stream_ok(true);
    h.push(310 * S, "api", "timeout", 3);
    let out = h.ev.tick(360 * S);
    // api still fires, from its first start (no duplicate firing); db, quiet, resolves.
    assert_eq!(firing(&out), ["api"]);
    assert_eq!(resolved(&out), ["db"]);
    assert!(out.iter().all(|a| a.starts_at_ms == 120 * S));
    assert_eq!(h.ev.rules_status().groups[0].rules[0].health, Health::Ok);
    // The paused evaluations are counted once.
    assert_eq!(h.ev.metrics().missed_evaluations, 3);
}

#[test]
fn include_lines_sends_the_series_last_lines_and_only_when_asked() {
    let with = timeouts("        include_lines: 2");
    let mut h = H::new(with);
    h.push(10 * S, "api", "timeout 1", 1);
    h.push(20 * S, "db", "timeout db", 3);
    h.push(30 * S, "api", "timeout 2", 1);
    h.push(40 * S, "api", "other line", 1);
    h.push(50 * S, "api", "timeout 3", 1);
    let out = h.ev.tick(60 * S);
    let api = out.iter().find(|a| a.labels["source"] == "api").unwrap();
    assert_eq!(api.lines, ["timeout 2", "timeout 3"]);
    let db = out.iter().find(|a| a.labels["source"] == "db").unwrap();
    assert_eq!(db.lines, ["timeout db", "timeout db"]);

    let mut h = H::new(timeouts(""));
    h.push(10 * S, "api", "timeout secret", 3);
    let out = h.ev.tick(60 * S);
    assert_eq!(out.len(), 1);
    assert!(out[0].lines.is_empty());
    let json = serde_json::to_string(&out).unwrap();
    assert!(!json.contains("secret"), "{json}");
}

#[test]
fn evaluations_align_to_the_interval_and_missed_ones_are_counted() {
    let mut h = H::new(timeouts(""));
    h.ev.tick(61_500);
    assert_eq!(
        h.ev.rules_status().groups[0].last_evaluation,
        "1970-01-01T00:01:00Z"
    );
    assert_eq!(h.ev.next_due_ms(), Some(120 * S));
    // The caller was away for three intervals.
    h.ev.tick(300 * S + 1);
    assert_eq!(h.ev.metrics().missed_evaluations, 3);
    assert_eq!(h.ev.next_due_ms(), Some(360 * S));
}

#[test]
fn the_generator_url_opens_the_rules_log_query() {
    let mut h = H::new(timeouts(""));
    h.push(30 * S, "api", "timeout", 3);
    let out = h.ev.tick(60 * S);
    assert_eq!(
        out[0].generator_url,
        "http://127.0.0.1:3100/ui/#/explore?q=%7Bapp%3D%22web%22%7D+%7C%3D+%22timeout%22&since=1m"
    );
}

#[test]
fn over_the_groups_limit_the_rule_fails_and_forgets_its_alerts() {
    let set = rules(
        r#"
groups:
  - name: api
    limit: 1
    rules:
      - alert: Timeouts
        expr: sum by (source) (count_over_time({app="web"} |= "timeout" [1m])) > 2
"#,
    );
    let mut h = H::new(set);
    h.push(30 * S, "api", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(60 * S)).len(), 1);
    h.push(90 * S, "api", "timeout", 3);
    h.push(90 * S, "db", "timeout", 3);
    assert!(h.ev.tick(120 * S).is_empty());
    assert!(h.states().is_empty());
    let r = &h.ev.rules_status().groups[0].rules[0];
    assert_eq!(r.health, Health::Err);
    assert!(r.last_error.contains("limit of 1"), "{}", r.last_error);
    assert_eq!(h.ev.metrics().failures, 1);
}

#[test]
fn a_pipeline_error_fails_the_next_evaluation_and_holds_state() {
    let set = rules(
        r#"
groups:
  - name: api
    rules:
      - alert: Slow
        expr: max by (source) (max_over_time({app="web"} | logfmt | unwrap took [1m])) > 100
"#,
    );
    let mut h = H::new(set);
    h.push(30 * S, "api", "took=300", 1);
    assert_eq!(firing(&h.ev.tick(60 * S)), ["api"]);
    h.push(90 * S, "api", "took=fast", 1);
    assert!(h.ev.tick(120 * S).is_empty());
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Firing)]);
    let r = &h.ev.rules_status().groups[0].rules[0];
    assert_eq!(r.health, Health::Err);
    assert!(r.last_error.contains("pipeline error"), "{}", r.last_error);
    // The next one reads again.
    h.push(150 * S, "api", "took=500", 1);
    assert_eq!(firing(&h.ev.tick(180 * S)), ["api"]);
}

#[test]
fn late_entries_are_counted() {
    let mut h = H::new(timeouts(""));
    h.ev.tick(120 * S);
    // The window at 120 s starts after 60 s: an entry at 50 s is never read again.
    h.push(50 * S, "api", "timeout", 1);
    h.push(70 * S, "api", "timeout", 1);
    assert_eq!(h.ev.metrics().entries_dropped_late, 1);
    // Dated more than an hour after the clock: ignored.
    h.push(120 * S + MAX_AHEAD_MS, "api", "timeout", 1);
    h.push(121 * S + MAX_AHEAD_MS, "api", "timeout", 1);
    let m = h.ev.metrics();
    assert_eq!(m.entries_dropped_future, 1);
    assert_eq!(
        m.newest_entry_ns,
        Some((120 * S + MAX_AHEAD_MS) * 1_000_000)
    );
}

#[test]
fn status_shapes_are_prometheus_json() {
    let mut h = H::new(timeouts("        for: 5m"));
    h.push(30 * S, "api", "timeout", 3);
    h.ev.tick(60 * S);
    let rules = serde_json::to_value(h.ev.rules_status()).unwrap();
    let g = &rules["groups"][0];
    assert_eq!(g["name"], "api");
    assert_eq!(g["file"], "t.yaml");
    assert_eq!(g["interval"], 60.0);
    assert_eq!(g["lastEvaluation"], "1970-01-01T00:01:00Z");
    let r = &g["rules"][0];
    assert_eq!(r["type"], "alerting");
    assert_eq!(r["state"], "pending");
    assert_eq!(r["health"], "ok");
    assert_eq!(r["duration"], 300.0);
    assert_eq!(r["labels"]["severity"], "page");
    assert_eq!(
        r["annotations"]["summary"],
        "{{ $labels.source }} timed out {{ $value }} times"
    );
    assert!(r.get("lastError").is_none());
    assert!(r["evaluationTime"].is_number());
    assert_eq!(r["alerts"][0]["state"], "pending");
    let alerts = serde_json::to_value(h.ev.active_alerts()).unwrap();
    let a = &alerts["alerts"][0];
    assert_eq!(a["activeAt"], "1970-01-01T00:01:00Z");
    assert_eq!(a["value"], "3e+00");
    assert_eq!(a["labels"]["alertname"], "Timeouts");
    assert_eq!(a["annotations"]["summary"], "api timed out 3 times");
}

#[test]
fn the_lookback_is_the_widest_window_and_the_evaluator_can_move_between_threads() {
    let set = rules(
        r#"
groups:
  - name: a
    rules:
      - alert: A
        expr: count_over_time({app="web"}[5m] offset 1m) > 1
  - name: b
    rules:
      - alert: B
        expr: count_over_time({app="web"}[1h]) > 1
"#,
    );
    let h = H::new(set);
    assert_eq!(h.ev.lookback_ms(), 3_600 * S);
    fn send<T: Send>(_: &T) {}
    send(&h.ev);
}

#[test]
fn values_print_as_prometheus_prints_them() {
    assert_eq!(format_value_e(10.0), "1e+01");
    assert_eq!(format_value_e(0.25), "2.5e-01");
    assert_eq!(format_value_e(0.0), "0e+00");
    assert_eq!(format_value_e(f64::NAN), "NaN");
    assert_eq!(format_value_e(f64::NEG_INFINITY), "-Inf");
    assert_eq!(format_value_e(1.5e300), "1.5e+300");
}

/// The persisted state's format (v1): the committed file must keep restoring, and the code
/// must keep writing it. A failure means the format changed: add a version instead. To write
/// the file anew (only for a new format), run with `LOGFLUX_BLESS=1` and commit the diff.
#[test]
fn persisted_state_v1_golden() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/alerts_state_v1.json");
    let set = || timeouts("        for: 2m\n        keep_firing_for: 10m");
    let mut h = H::new(set());
    h.push(1_000 * S, "api", "timeout", 3);
    h.push(1_000 * S, "db", "timeout", 5);
    h.ev.tick(1_020 * S);
    h.push(1_070 * S, "db", "timeout", 5);
    h.ev.tick(1_080 * S);
    h.push(1_130 * S, "db", "timeout", 5);
    h.ev.tick(1_140 * S);
    // db fires (pending since 1020 s); api went missing while pending: forgotten. db now
    // goes missing: kept firing since 1200 s.
    h.ev.tick(1_200 * S);
    h.push(1_230 * S, "api", "timeout", 4);
    h.ev.tick(1_260 * S);
    let written = serde_json::to_string_pretty(&h.ev.state()).unwrap() + "\n";
    if std::env::var_os("LOGFLUX_BLESS").is_some() {
        std::fs::write(&path, &written).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, golden, "the persisted state's format changed");
    let state: PersistedState = serde_json::from_str(&golden).unwrap();
    let h = H::restored(set(), Some(state));
    assert_eq!(
        h.states(),
        [
            ("api".to_owned(), AlertState::Pending),
            ("db".to_owned(), AlertState::Firing)
        ]
    );
    let db = &h.ev.active_alerts().alerts[1];
    assert_eq!(
        db.keep_firing_since.as_deref(),
        Some("1970-01-01T00:20:00Z")
    );
}

mod model {
    //! The evaluator against a model of Prometheus's alerting state machine, over random
    //! sequences of evaluations where each series is present or not, with restarts (the state
    //! through JSON) and stream gaps in between.

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum M {
        Pending { active: i64 },
        Firing { fired: i64, kfs: Option<i64> },
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// An evaluation with these series present (bits of `api`, `db`).
        Eval(u8),
        /// The process restarts from its persisted state.
        Restart,
        /// The stream is down for this many evaluations.
        Gap(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u8..4).prop_map(Step::Eval),
            1 => Just(Step::Restart),
            1 => (1u8..4).prop_map(Step::Gap),
        ]
    }

    const MIN: i64 = 60 * S;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_evaluator_follows_prometheus_states(
            for_min in 0i64..4,
            kff_min in 0i64..3,
            steps in prop::collection::vec(step(), 1..30),
        ) {
            let yaml = format!(
                r#"
groups:
  - name: g
    rules:
      - alert: A
        expr: sum by (source) (count_over_time({{app="web"}}[1m])) > 0
        for: {for_min}m
        keep_firing_for: {kff_min}m
"#
            );
            let set = || rules(&yaml);
            let (for_ms, kff_ms) = (for_min * MIN, kff_min * MIN);
            let mut h = H::new(set());
            let mut model: BTreeMap<&str, M> = BTreeMap::new();
            // Resolved alerts still handed on (RESOLVED_RETENTION_MS): fired, resolved at.
            let mut gone: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            let mut t = 0;
            for st in steps {
                match st {
                    Step::Restart => {
                        let json = serde_json::to_string(&h.ev.state()).unwrap();
                        h = H::restored(set(), Some(serde_json::from_str(&json).unwrap()));
                    }
                    Step::Gap(n) => {
                        h.ev.set_stream_ok(false);
                        for _ in 0..n {
                            t += MIN;
                            prop_assert!(h.ev.tick(t).is_empty());
                        }
                        h.ev.set_stream_ok(true);
                    }
                    Step::Eval(bits) => {
                        t += MIN;
                        let present: Vec<&str> = ["api", "db"]
                            .into_iter()
                            .enumerate()
                            .filter(|(i, _)| bits & (1 << i) != 0)
                            .map(|(_, s)| s)
                            .collect();
                        for s in &present {
                            h.push(t - 30 * S, s, "x", 1);
                        }
                        let got = h.ev.tick(t);
                        // The model.
                        let mut want = Vec::new();
                        for s in ["api", "db"] {
                            let here = present.contains(&s);
                            let next = match (model.get(s).copied(), here) {
                                (None, true) => Some(M::Pending { active: t }),
                                (None, false) => None,
                                (Some(M::Pending { active }), true) => Some(M::Pending { active }),
                                (Some(M::Pending { .. }), false) => None,
                                (Some(M::Firing { fired, .. }), true) => {
                                    Some(M::Firing { fired, kfs: None })
                                }
                                (Some(M::Firing { fired, kfs }), false) => {
                                    let since = kfs.unwrap_or(t);
                                    if kff_ms > 0 && t - since < kff_ms {
                                        Some(M::Firing { fired, kfs: Some(since) })
                                    } else {
                                        gone.insert(s, (fired, t));
                                        None
                                    }
                                }
                            };
                            let next = match next {
                                Some(M::Pending { active }) if t - active >= for_ms => {
                                    Some(M::Firing { fired: t, kfs: None })
                                }
                                n => n,
                            };
                            match next {
                                Some(m) => {
                                    if let M::Firing { fired, .. } = m {
                                        want.push((s, fired, None));
                                    }
                                    model.insert(s, m);
                                }
                                None => {
                                    model.remove(s);
                                }
                            }
                        }
                        // One that comes back is a new alert; the others go after the
                        // retention.
                        gone.retain(|s, (_, at)| {
                            t - *at < RESOLVED_RETENTION_MS && !model.contains_key(s)
                        });
                        for (s, (fired, at)) in &gone {
                            want.push((s, *fired, Some(*at)));
                        }
                        let mut got: Vec<(&str, i64, Option<i64>)> = got
                            .iter()
                            .map(|a| (
                                if a.labels["source"] == "api" { "api" } else { "db" },
                                a.starts_at_ms,
                                a.ends_at_ms,
                            ))
                            .collect();
                        got.sort();
                        want.sort();
                        prop_assert_eq!(got, want, "at {}", t);
                        let states: Vec<(String, AlertState)> = model
                            .iter()
                            .map(|(s, m)| (s.to_string(), match m {
                                M::Pending { .. } => AlertState::Pending,
                                M::Firing { .. } => AlertState::Firing,
                            }))
                            .collect();
                        prop_assert_eq!(h.states(), states);
                    }
                }
            }
        }
    }
}

#[test]
fn entries_fed_again_after_forget_entries_count_once_and_states_are_kept() {
    let set = || {
        rules(
            r#"
groups:
  - name: api
    interval: 1m
    rules:
      - alert: Timeouts
        expr: sum by (source) (count_over_time({app="web"} |= "timeout" [5m])) > 2
"#,
        )
    };
    let mut h = H::new(set());
    h.push(30_000, "api", "timeout", 3);
    assert_eq!(firing(&h.ev.tick(60_000)), ["api"]);
    // The feed restarts from its look-back: the same entries come again.
    h.ev.forget_entries();
    h.push(30_000, "api", "timeout", 3);
    let again = h.ev.tick(120_000);
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].value, 3.0, "counted once, not twice");
    assert_eq!(h.states(), [("api".to_owned(), AlertState::Firing)]);
    // Without forgetting them, they would have counted twice.
    let mut twice = H::new(set());
    twice.push(30_000, "api", "timeout", 3);
    twice.ev.tick(60_000);
    twice.push(30_000, "api", "timeout", 3);
    assert_eq!(twice.ev.tick(120_000)[0].value, 6.0);
}
