//! The dispatcher's timing on Tokio's paused clock, with an integration that hands each
//! notification to the test (the real receivers are in `tests/notify.rs`).

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use tokio::sync::mpsc;

use super::*;

const BASE: &str = "
global: {resolve_timeout: 1d, retry_for: 10s}
route:
  receiver: r
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
receivers: [{name: r}]
";

struct Setup {
    n: Notifier,
    rx: Vec<mpsc::UnboundedReceiver<Notification>>,
    events: broadcast::Receiver<NotifyEvent>,
}

/// A notifier whose receiver `r` has one capturing integration per `(failures, send_resolved)`.
fn setup(yaml: &str, integrations: &[(usize, bool)], state: Option<PathBuf>) -> Setup {
    setup_with(yaml, integrations, state, None)
}

fn setup_with(
    yaml: &str,
    integrations: &[(usize, bool)],
    state: Option<PathBuf>,
    dead: Option<PathBuf>,
) -> Setup {
    let config = ReceiversConfig::parse(yaml, "test.yml").unwrap().config;
    let mut rx = Vec::new();
    let mut list = Vec::new();
    for &(failures, send_resolved) in integrations {
        let (tx, r) = mpsc::unbounded_channel();
        rx.push(r);
        list.push(Integration::capture(tx, failures, send_resolved));
    }
    let n = Notifier::with_integrations(
        &config,
        NotifierOptions {
            state_path: state,
            dead_letter_path: dead,
            external_url: "http://127.0.0.1:9090".into(),
        },
        HashMap::from([("r".to_owned(), list)]),
    )
    .unwrap();
    let events = n.subscribe();
    Setup { n, rx, events }
}

fn alert(n: &Notifier, name: &str, extra: &[(&str, &str)]) -> Alert {
    let mut labels: LabelSet = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    labels.insert("alertname".into(), name.into());
    Alert {
        labels,
        annotations: [("summary".to_owned(), format!("{name} is bad"))].into(),
        starts_at_ms: n.inner.clock.now_ms(),
        ends_at_ms: None,
        value: 11.0,
        generator_url: "http://127.0.0.1:9090/explore".into(),
        lines: Vec::new(),
    }
}

fn resolved(n: &Notifier, mut a: Alert) -> Alert {
    a.ends_at_ms = Some(n.inner.clock.now_ms());
    a
}

async fn next_event(events: &mut broadcast::Receiver<NotifyEvent>) -> NotifyEvent {
    events.recv().await.unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_new_group_waits_group_wait_and_groups_by_its_labels() {
    let mut s = setup(BASE, &[(0, true)], None);
    let t0 = Instant::now();
    s.n.send(vec![alert(&s.n, "A", &[("i", "1")])]);
    tokio::time::sleep(Duration::from_secs(10)).await;
    s.n.send(vec![alert(&s.n, "A", &[("i", "2")]), alert(&s.n, "B", &[])]);
    assert_eq!(s.n.group_count(), 2);

    let a = s.rx[0].recv().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(30));
    assert_eq!(a.group_labels["alertname"], "A");
    assert_eq!(a.group_key, r#"{}:{alertname="A"}"#);
    assert_eq!(a.alerts.len(), 2);
    let b = s.rx[0].recv().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(40));
    assert_eq!(b.group_labels["alertname"], "B");
    assert_eq!(b.alerts.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_firing_group_is_sent_again_after_repeat_interval_only() {
    let mut s = setup(BASE, &[(0, true)], None);
    let t0 = Instant::now();
    let a = alert(&s.n, "A", &[]);
    s.n.send(vec![a.clone()]);
    s.rx[0].recv().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(30));
    // The evaluator re-sends it at each evaluation; nothing changes.
    let resend = {
        let n = &s.n;
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                n.send(vec![a.clone()]);
            }
        }
    };
    tokio::select! {
        again = s.rx[0].recv() => {
            assert_eq!(again.unwrap().alerts.len(), 1);
        }
        () = resend => unreachable!(),
    }
    // Flushes every 5 min from 30 s; the first after 1 h since the last notification.
    assert_eq!(t0.elapsed(), Duration::from_secs(30 + 13 * 300));
    let unchanged = std::iter::from_fn(|| s.events.try_recv().ok())
        .filter(|e| e.outcome == Outcome::Unchanged)
        .count();
    assert_eq!(unchanged, 12);
}

#[tokio::test(start_paused = true)]
async fn a_resolved_alert_is_sent_once_and_only_where_send_resolved() {
    let mut s = setup(BASE, &[(0, true), (0, false)], None);
    let t0 = Instant::now();
    let a = alert(&s.n, "A", &[]);
    s.n.send(vec![a.clone()]);
    for rx in &mut s.rx {
        let f = rx.recv().await.unwrap();
        assert_eq!(f.firing(), 1);
    }
    tokio::time::sleep(Duration::from_secs(60)).await;
    let r = resolved(&s.n, a);
    s.n.send(vec![r.clone()]);
    let n = s.rx[0].recv().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(330));
    assert_eq!((n.firing(), n.alerts.len(), n.status()), (0, 1, "resolved"));
    // Flushed and told: the group is gone.
    while s.n.group_count() > 0 {
        tokio::task::yield_now().await;
    }
    // The evaluator says it again: a new group, flushed at once (it started long ago), with
    // nothing new to say.
    let mut events = s.n.subscribe();
    s.n.send(vec![r]);
    for _ in 0..2 {
        assert_eq!(next_event(&mut events).await.outcome, Outcome::Unchanged);
    }
    assert!(s.rx[0].try_recv().is_err());
    assert!(s.rx[1].try_recv().is_err(), "send_resolved: false got it");
}

#[tokio::test(start_paused = true)]
async fn an_alert_no_longer_refreshed_resolves_after_resolve_timeout() {
    let mut s = setup(
        &BASE.replace("resolve_timeout: 1d", "resolve_timeout: 10m"),
        &[(0, true)],
        None,
    );
    let t0 = Instant::now();
    let a = alert(&s.n, "A", &[]);
    let start = a.starts_at_ms;
    s.n.send(vec![a]);
    assert_eq!(s.rx[0].recv().await.unwrap().firing(), 1);
    let r = s.rx[0].recv().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(630));
    assert_eq!(r.status(), "resolved");
    assert_eq!(r.alerts[0].ends_at_ms, Some(start + 600_000));
}

#[tokio::test(start_paused = true)]
async fn a_receiver_down_for_a_while_gets_the_notification_after_once() {
    let mut s = setup(BASE, &[(3, true)], None);
    let t0 = Instant::now();
    s.n.send(vec![alert(&s.n, "A", &[])]);
    let n = s.rx[0].recv().await.unwrap();
    // Three failures: waits of about 1, 2 and 4 s (±20 %).
    let took = t0.elapsed() - Duration::from_secs(30);
    assert!(
        took >= Duration::from_millis(5600) && took <= Duration::from_millis(8400),
        "{took:?}"
    );
    assert_eq!(n.alerts.len(), 1);
    let m = s.n.metrics().snapshot();
    assert_eq!(
        m[0],
        (
            "webhook",
            CountersSnapshot {
                attempted: 4,
                failed: 3,
                dead_lettered: 0
            }
        )
    );
    // The next flush has nothing new.
    let e = loop {
        let e = next_event(&mut s.events).await;
        if e.outcome
            != (Outcome::Sent {
                firing: 1,
                resolved: 0,
            })
        {
            break e;
        }
    };
    assert_eq!(e.outcome, Outcome::Unchanged);
    assert!(s.rx[0].try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn retries_give_up_after_retry_for_into_the_dead_letter_log() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead-letters.jsonl");
    let mut s = setup_with(BASE, &[(usize::MAX, true)], None, Some(dead.clone()));
    let t0 = Instant::now();
    let mut a = alert(&s.n, "A", &[("source", "api")]);
    a.lines = vec!["secret log line".into()];
    s.n.send(vec![a]);
    assert_eq!(
        next_event(&mut s.events).await.outcome,
        Outcome::DeadLettered
    );
    assert_eq!(t0.elapsed(), Duration::from_secs(40));
    let text = std::fs::read_to_string(&dead).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(l["receiver"], "r");
    assert_eq!(l["integration"], "webhook");
    assert_eq!(l["alerts"][0]["labels"]["source"], "api");
    assert_eq!(l["alerts"][0]["annotations"]["summary"], "A is bad");
    assert!(l["error"].as_str().unwrap().contains("down"));
    assert!(!text.contains("secret log line"));
    let mode = std::fs::metadata(&dead).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let m = s.n.metrics().snapshot()[0].1;
    assert_eq!(m.dead_lettered, 1);
    assert!(m.attempted >= 4 && m.attempted == m.failed, "{m:?}");
    assert!(s.rx[0].try_recv().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_notifier_does_not_notify_again_what_it_sent() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("notifications.json");
    let first = setup(BASE, &[(0, true)], Some(state.clone()));
    let a = alert(&first.n, "A", &[]);
    first.n.send(vec![a.clone()]);
    let mut s = first;
    s.rx[0].recv().await.unwrap();
    // The state file is written before the event is sent.
    assert!(matches!(
        next_event(&mut s.events).await.outcome,
        Outcome::Sent { .. }
    ));
    let mode = std::fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(s);

    let mut s = setup(BASE, &[(0, true)], Some(state.clone()));
    s.n.send(vec![a.clone()]);
    assert_eq!(next_event(&mut s.events).await.outcome, Outcome::Unchanged);
    assert!(s.rx[0].try_recv().is_err());
    // A new alert in the same group is news.
    let b = alert(&s.n, "A", &[("i", "2")]);
    s.n.send(vec![a, b]);
    let n = s.rx[0].recv().await.unwrap();
    assert_eq!(n.alerts.len(), 2);

    // Without the state file, the same restart notifies again.
    let mut s = setup(BASE, &[(0, true)], None);
    s.n.send(vec![alert(&s.n, "A", &[])]);
    s.rx[0].recv().await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// Golden files: the webhook body (a wire format receivers parse), the dead-letter line and the
// state file (persisted, read by later versions). A failure means a format changed; to write
// the files anew (only for a deliberate change), run with LOGFLUX_BLESS=1 and say why in the
// commit.

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("LOGFLUX_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    assert_eq!(actual, expected, "{name} drifted");
}

fn golden_notification() -> Notification {
    let mut api = Alert {
        labels: [
            ("alertname".to_owned(), "HighErrors".to_owned()),
            ("source".to_owned(), "api".to_owned()),
            ("severity".to_owned(), "page".to_owned()),
        ]
        .into(),
        annotations: [("summary".to_owned(), "12 errors in 5m on api".to_owned())].into(),
        starts_at_ms: 1_764_500_000_000,
        ends_at_ms: None,
        value: 12.0,
        generator_url: "http://127.0.0.1:3100/explore?query=x".into(),
        lines: vec!["GET /checkout 500 upstream timeout".into()],
    };
    let mut web = api.clone();
    web.labels.insert("source".into(), "web".into());
    web.annotations
        .insert("summary".into(), "11 errors in 5m on web".into());
    web.lines.clear();
    web.ends_at_ms = Some(1_764_500_123_456);
    api.labels.insert("source".into(), "api".into());
    Notification {
        receiver: "team".into(),
        group_key: r#"{}/{severity="page"}:{alertname="HighErrors"}"#.into(),
        group_labels: [("alertname".to_owned(), "HighErrors".to_owned())].into(),
        alerts: vec![api, web],
        now_ms: 1_764_500_200_000,
        external_url: "http://127.0.0.1:3100".into(),
    }
}

#[test]
fn golden_webhook_body_v4() {
    let n = golden_notification();
    let body = serde_json::to_string_pretty(&n.webhook_json(0)).unwrap() + "\n";
    golden("webhook_v4.json", &body);
    let truncated = serde_json::to_string_pretty(&n.webhook_json(1)).unwrap() + "\n";
    golden("webhook_v4_max_alerts_1.json", &truncated);
}

#[test]
fn golden_dead_letter_line_v1() {
    let n = golden_notification();
    let line = serde_json::to_string(&n.dead_letter_line(
        "webhook",
        "the receiver answered 503 Service Unavailable",
        1_764_500_800_000,
    ))
    .unwrap()
        + "\n";
    assert!(
        !line.contains("upstream timeout"),
        "lines in the dead-letter log"
    );
    golden("dead_letter_v1.jsonl", &line);
}

#[test]
fn golden_state_file_v1() {
    let mut log = NotificationLog::default();
    let n = golden_notification();
    log.set(Entry {
        group_key: n.group_key.clone(),
        receiver: "team".into(),
        integration: "webhook".into(),
        idx: 0,
        firing: vec![n.alerts[0].fingerprint()],
        resolved: vec![n.alerts[1].fingerprint()],
        at_ms: 1_764_500_200_000,
    });
    log.set(Entry {
        group_key: r#"{}:{alertname="Other"}"#.into(),
        receiver: "mail".into(),
        integration: "email".into(),
        idx: 1,
        firing: vec![],
        resolved: vec!["00000000000000ff".into()],
        at_ms: 1_764_400_000_000,
    });
    let text = String::from_utf8(log.encode()).unwrap() + "\n";
    golden("notify_state_v1.json", &text);
    // The committed file reads back to the same log.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/notify_state_v1.json");
    let back = NotificationLog::load(&path).unwrap();
    assert_eq!(String::from_utf8(back.encode()).unwrap() + "\n", text);
}
