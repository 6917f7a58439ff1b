//! Alerts evaluated by the client over the decrypted live stream (issue 15, docs/alerts.md),
//! end to end: a `logflux up` stack, `logflux serve --rules` or `logflux alerts run`, and a
//! webhook receiver started here that keeps every body it is sent (Alertmanager's JSON).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::Stack;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

/// A webhook receiver: every body POSTed to `/hook`, in order.
struct Receiver {
    url: String,
    bodies: tokio::sync::mpsc::UnboundedReceiver<Value>,
}

impl Receiver {
    async fn start() -> Receiver {
        let (tx, bodies) = tokio::sync::mpsc::unbounded_channel();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(serde_json::from_slice::<Value>(&body).unwrap());
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, bodies }
    }

    /// The next body whose `status` is `status`; the others before it are returned too.
    async fn until(&mut self, status: &str, within: Duration) -> (Value, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let b = tokio::time::timeout(left, self.bodies.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {status} notification within {within:?}; got {before:?}")
                })
                .unwrap();
            if b["status"] == status {
                return (b, before);
            }
            before.push(b);
        }
    }

    /// Bodies already received, without waiting.
    fn drain(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Ok(b) = self.bodies.try_recv() {
            out.push(b);
        }
        out
    }
}

/// Alertmanager's webhook JSON (version 4), field by field.
fn check_webhook_schema(b: &Value) {
    assert_eq!(b["version"], "4", "{b}");
    for k in ["groupKey", "receiver", "status", "externalURL"] {
        assert!(b[k].is_string(), "{k}: {b}");
    }
    assert!(b["truncatedAlerts"].is_u64(), "{b}");
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        assert!(b[k].is_object(), "{k}: {b}");
    }
    let alerts = b["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty());
    for a in alerts {
        assert!(
            matches!(a["status"].as_str(), Some("firing" | "resolved")),
            "{a}"
        );
        assert!(a["labels"]["alertname"].is_string(), "{a}");
        assert!(a["annotations"].is_object(), "{a}");
        for t in ["startsAt", "endsAt"] {
            let s = a[t].as_str().unwrap();
            assert!(
                s.len() >= 20
                    && s.as_bytes()[4] == b'-'
                    && s.as_bytes()[10] == b'T'
                    && s.ends_with('Z'),
                "{t}: {s}"
            );
        }
        assert!(
            a["generatorURL"].as_str().unwrap().starts_with("http"),
            "{a}"
        );
        assert!(a["fingerprint"].as_str().unwrap().len() == 16, "{a}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn receivers(dir: &Path, url: &str) -> PathBuf {
    write(
        dir,
        "receivers.yml",
        &format!(
            "route:\n  receiver: hook\n  group_by: [alertname, source]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: {url}\n        send_resolved: true\n"
        ),
    )
}

/// A rules directory holding `rules_yaml`, receivers sending to `hook_url`, a state
/// directory, all under the stack's temporary directory: that directory and the arguments
/// of `logflux alerts run` on them.
fn alerts_run(
    stack: &Stack,
    hook_url: &str,
    rules_yaml: &str,
) -> (PathBuf, Vec<std::ffi::OsString>) {
    let conf = stack.tmp.path().join("alerting");
    let rules = conf.join("rules");
    write(&rules, "r.yaml", rules_yaml);
    let receivers = receivers(&conf, hook_url);
    let args = [
        "alerts".as_ref(),
        "run".as_ref(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--receivers".as_ref(),
        receivers.as_os_str(),
        "--alerts-state".as_ref(),
        conf.join("state").as_os_str(),
    ]
    .iter()
    .map(|a: &&std::ffi::OsStr| a.to_os_string())
    .collect();
    (conf, args)
}

fn entries(source: &str, payload: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"payload": format!("{payload} #{i}"), "source": source, "entryType": 1, "logLevel": 3}))
        .collect()
}

/// A `logflux` process of the stack's client that prints until a line starting with `ready`;
/// its stderr lines go to `log`.
struct Proc {
    child: tokio::process::Child,
    printed: Vec<String>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    async fn start(stack: &Stack, args: &[&std::ffi::OsStr], ready: &str) -> Proc {
        Proc::start_with(stack.command(), args, ready).await
    }

    async fn start_with(
        cmd: std::process::Command,
        args: &[&std::ffi::OsStr],
        ready: &str,
    ) -> Proc {
        let mut child = tokio::process::Command::from(cmd)
            .env("LOGFLUX_LOG", "info")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = log.clone();
        let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err.next_line().await {
                keep.lock().unwrap().push(l);
            }
        });
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        loop {
            let l = tokio::time::timeout(Duration::from_secs(60), out.next_line())
                .await
                .expect("ready within 60 s")
                .unwrap()
                .unwrap_or_else(|| {
                    panic!(
                        "it ended before {ready:?}: {printed:?} {:?}",
                        log.lock().unwrap()
                    )
                });
            if l.starts_with(ready) {
                break;
            }
            printed.push(l);
        }
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        Proc {
            child,
            printed,
            log,
        }
    }

    fn stderr(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// Waits (polling every 50 ms, at most 60 s) until `f` holds: for what only shows in a file
/// or a process's output.
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 60 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn get_json(url: &str, token: &str) -> Value {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn alerts_check_passes_good_rules_and_names_every_problem_s_file_line_group_and_rule() {
    let d = tempfile::tempdir().unwrap();
    let good = write(
        d.path(),
        "good.yaml",
        "groups:\n  - name: api\n    interval: 30s\n    rules:\n      - alert: Timeouts\n        expr: sum by (source) (count_over_time({source=\"api\"} |= \"timeout\" [5m])) > 10\n        for: 1m\n        labels: {severity: page}\n        annotations:\n          summary: '{{ $labels.source }}: {{ $value }} timeouts'\n",
    );
    let bad = write(
        d.path(),
        "bad.yaml",
        "groups:\n  - name: db\n    rules:\n      - alert: Ok\n        expr: count_over_time({source=\"db\"}[1m]) > 1\n      - alert: Broken\n        expr: count_over_time({source=\"db\"} |~ [1m]) > 1\n      - alert: Typo\n        expr: count_over_time({source=\"db\"}[1m]) > 1\n        fore: 5m\n",
    );
    let run = |args: &[&Path]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_logflux"))
            .arg("alerts")
            .arg("check")
            .args(args)
            .env("LOGFLUX_CONFIG", "/nonexistent/client.yaml")
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[&good]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ok: 1 rule in 1 group from 1 file"), "{out}");
    let (code, out, err) = run(&[&good, &bad]);
    assert_eq!(code, 2, "{out}{err}");
    // Each problem names its file and line; YAML's own errors stop at the first one.
    assert!(err.contains("bad.yaml:"), "{err}");
    assert!(err.contains("fore"), "the unknown field is named: {err}");
    // A directory is every rule file in it.
    let (code, _, err) = run(&[d.path()]);
    assert_eq!(code, 2, "{err}");
    std::fs::remove_file(&bad).unwrap();
    let broken = write(
        d.path(),
        "broken.yaml",
        "groups:\n  - name: db\n    rules:\n      - alert: Broken\n        expr: count_over_time({source=\"db\"} |~ [1m]) > 1\n",
    );
    let (code, _, err) = run(&[&broken]);
    assert_eq!(code, 2);
    assert!(
        err.contains("broken.yaml:5") && err.contains("group \"db\", rule 1 \"Broken\""),
        "file:line, group and rule: {err}"
    );
}

#[tokio::test]
async fn a_rule_goes_pending_then_fires_to_the_webhook_and_resolves_with_no_log_content_sent() {
    let stack = Stack::start().await;
    let mut hook = Receiver::start().await;
    let conf = stack.tmp.path().join("alerting");
    let rules = conf.join("rules");
    write(
        &rules,
        "checkout.yaml",
        "groups:\n  - name: checkout\n    interval: 1s\n    rules:\n      - alert: CheckoutTimeouts\n        expr: sum by (source) (count_over_time({source=\"checkout\"} |= \"timeout\" [8s])) > 2\n        for: 2s\n        labels:\n          severity: page\n        annotations:\n          summary: '{{ $labels.source }}: {{ $value }} timeouts'\n      - alert: WithLines\n        expr: sum by (source) (count_over_time({source=\"lines\"} [8s])) > 0\n        include_lines: 2\n",
    );
    // A file with an error: reported, left out; the other rules run.
    write(
        &rules,
        "zz-broken.yaml",
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: '{source=\"x\"}'\n",
    );
    let receivers = receivers(&conf, &hook.url);
    let token_file = stack.tmp.path().join("own/serve.token");
    let state = conf.join("state");
    let args = [
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--token-file".as_ref(),
        token_file.as_os_str(),
        "--rules".as_ref(),
        rules.as_os_str(),
        "--receivers".as_ref(),
        receivers.as_os_str(),
        "--alerts-state".as_ref(),
        state.as_os_str(),
    ];
    let serve = Proc::start(&stack, &args, "serving").await;
    let url = serve
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("serve   "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    // Reported on stderr (read as it comes).
    eventually("the broken rule file reported", || {
        serve.stderr().contains("zz-broken.yaml")
    })
    .await;

    let canary = "canary-7f3a91";
    stack
        .send_unix(&entries(
            "checkout",
            &format!("payment timeout {canary}"),
            5,
        ))
        .await;
    // Pending first (for: 2s), as /api/v1/alerts shows.
    let alerts = format!("{url}/api/v1/alerts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut states = Vec::new();
    loop {
        let v = get_json(&alerts, &token).await;
        assert_eq!(v["status"], "success", "{v}");
        let s = v["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == "CheckoutTimeouts")
            .map(|a| a["state"].as_str().unwrap().to_owned());
        if let Some(s) = s
            && states.last() != Some(&s)
        {
            states.push(s);
        }
        if states.last().is_some_and(|s| s == "firing") || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        states,
        ["pending", "firing"],
        "pending, then firing after `for`"
    );

    let (firing, _) = hook.until("firing", Duration::from_secs(30)).await;
    check_webhook_schema(&firing);
    let a = &firing["alerts"][0];
    assert_eq!(a["labels"]["alertname"], "CheckoutTimeouts");
    assert_eq!(a["labels"]["severity"], "page");
    assert_eq!(a["labels"]["source"], "checkout");
    assert_eq!(a["annotations"]["summary"], "checkout: 5 timeouts");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{url}/ui/#/explore?")),
        "{a}"
    );
    // Labels, annotations and counts only: not a word of the entries.
    assert!(!firing.to_string().contains(canary), "{firing}");
    assert!(a.get("lines").is_none(), "{a}");

    // The rule lists in Prometheus's shape, also under Loki's ruler path (Grafana's).
    for path in ["/api/v1/rules", "/prometheus/api/v1/rules"] {
        let v = get_json(&format!("{url}{path}"), &token).await;
        let groups = v["data"]["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "the broken file's group is left out: {v}");
        let problems = v["data"]["problems"].as_array().unwrap();
        assert!(
            problems.len() == 1 && problems[0].as_str().unwrap().contains("zz-broken.yaml"),
            "and named: {v}"
        );
        let rule = &groups[0]["rules"][0];
        assert_eq!(rule["name"], "CheckoutTimeouts");
        assert_eq!(rule["type"], "alerting");
        assert_eq!(rule["health"], "ok");
        assert_eq!(rule["state"], "firing");
        assert_eq!(rule["duration"], 2.0);
    }

    // A rule that asks for lines gets them, and only its own.
    stack
        .send_unix(&entries("lines", "shown on purpose", 3))
        .await;
    let (with_lines, _) = loop {
        let (b, before) = hook.until("firing", Duration::from_secs(30)).await;
        if b["alerts"][0]["labels"]["alertname"] == "WithLines" {
            break (b, before);
        }
    };
    let lines = with_lines["alerts"][0]["lines"].as_array().unwrap();
    assert_eq!(
        lines.len(),
        2,
        "include_lines: 2 → the last 2: {with_lines}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("shown on purpose"))
    );
    assert!(!with_lines.to_string().contains(canary));

    // The entries age out of the 8 s window: resolved, once.
    let (resolved, _) = loop {
        let (b, before) = hook.until("resolved", Duration::from_secs(60)).await;
        if b["alerts"][0]["labels"]["alertname"] == "CheckoutTimeouts" {
            break (b, before);
        }
    };
    check_webhook_schema(&resolved);
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    // The evaluator hands the resolved alert on at every evaluation for a while (so a resolve
    // is not lost to a restart); the receiver hears it once. Three evaluations and group
    // intervals (1 s each) later:
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later: Vec<Value> = hook
        .drain()
        .into_iter()
        .filter(|b| b["alerts"][0]["labels"]["alertname"] == "CheckoutTimeouts")
        .collect();
    assert!(later.is_empty(), "sent again: {later:?}");

    // The evaluator's metrics.
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "logflux_alerts_rules 2",
        "logflux_alerts_rule_files_failed 1",
        "logflux_alerts_stream_current 1",
        "logflux_alerts_notifications_total{integration=\"webhook\"}",
    ] {
        assert!(metrics.contains(want), "{want} in\n{metrics}");
    }
    let evaluations: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("logflux_alerts_evaluations_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(evaluations > 5, "{metrics}");
    // No log content on disk either: the state holds label sets and counts.
    for f in std::fs::read_dir(conf.join("state")).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            assert!(!text.contains(canary), "{}: {text}", p.display());
            assert!(
                !text.contains("shown on purpose"),
                "{}: {text}",
                p.display()
            );
            assert_eq!(common::mode(&p), 0o600, "{}", p.display());
        }
    }
    drop(serve);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_for_keeps_the_pending_alert_and_fires_on_time() {
    let stack = Stack::start().await;
    let mut hook = Receiver::start().await;
    let (conf, args) = alerts_run(
        &stack,
        &hook.url,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Slow\n        expr: sum by (source) (count_over_time({source=\"slow\"}[60s])) > 1\n        for: 8s\n",
    );
    let state = conf.join("state");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let mut run = Proc::start(&stack, &args, "evaluating").await;
    stack.send_unix(&entries("slow", "slow request", 3)).await;
    // Pending, as the state file says.
    let state_file = state.join("alerts-state.json");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let active_at = loop {
        let s: Value = std::fs::read(&state_file)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if let Some(a) = s["rules"][0]["alerts"].as_array().and_then(|a| a.first())
            && a["state"] == "pending"
        {
            break a["active_at_ms"].as_i64().unwrap();
        }
        assert!(tokio::time::Instant::now() < deadline, "never pending: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Killed mid-`for` (no goodbye), then started again.
    run.child.kill().await.unwrap();
    let restarted_ms = now_ms();
    let run = Proc::start(&stack, &args, "evaluating").await;
    let (firing, before) = hook.until("firing", Duration::from_secs(60)).await;
    assert!(before.is_empty(), "{before:?}");
    let starts_at = common::ns(firing["alerts"][0]["startsAt"].as_str().unwrap()) / 1_000_000;
    // It fired `for` after it became pending before the restart — not `for` after the
    // restart, as it would had the restart forgotten it.
    assert!(starts_at >= active_at + 8_000, "{starts_at} vs {active_at}");
    assert!(
        starts_at < restarted_ms + 8_000,
        "fired at {starts_at}, restarted at {restarted_ms}: the pending time was lost"
    );
    // Fired once.
    assert!(hook.drain().iter().all(|b| b["status"] != "firing"));
    // A second evaluator of the same state is refused (two would notify twice).
    let strs: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
    let (code, out, err) = stack.run(&strs);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("in use by process") && err.contains("--alerts-state"),
        "{err}"
    );
    drop(run);
}

/// After the live stream is lost: waits until it is resumed and two evaluations have run
/// since (the state file says when the last was), then asserts that the firing alert was
/// neither resolved nor fired again meanwhile.
async fn held_after_resume(run: &Proc, hook: &mut Receiver, state_file: &Path) {
    eventually("the stream resumed", || {
        run.stderr().contains("resumed the server's live stream")
    })
    .await;
    let resumed_ms = now_ms();
    eventually("two evaluations after the stream came back", || {
        std::fs::read(state_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|s| s["rules"][0]["last_evaluation_ms"].as_i64())
            .is_some_and(|t| t >= resumed_ms + 2_000)
    })
    .await;
    // What those evaluations notified would be out within the group's interval (1 s).
    let mut heard = hook.drain();
    if let Ok(Some(b)) = tokio::time::timeout(Duration::from_secs(3), hook.bodies.recv()).await {
        heard.push(b);
    }
    assert!(
        heard.iter().all(|b| b["status"] != "resolved"),
        "a false resolution: {heard:?}\n{}",
        run.stderr()
    );
    assert!(
        heard.iter().all(|b| b["status"] != "firing"),
        "fired again: {heard:?}"
    );
}

/// A relay to the server that can be cut: every connection through it closed, new ones
/// refused, until it is restored (the log stream interrupted while the agents go on).
struct Relay {
    url: String,
    open: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let (open, watch) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                if !*watch.borrow() {
                    continue; // dropped: refused while cut
                }
                let mut cut = watch.clone();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Relay { url, open }
    }

    fn set(&self, open: bool) {
        self.open.send_replace(open);
    }
}

#[tokio::test]
async fn an_interrupted_stream_neither_resolves_a_firing_alert_nor_fires_it_again() {
    let stack = Stack::start().await;
    let relay = Relay::start(
        stack
            .var("LOGFLUX_SERVER")
            .trim_start_matches("http://")
            .to_owned(),
    )
    .await;
    let mut hook = Receiver::start().await;
    // Entries come steadily, about 20 per 6 s window: the alert fires and stays firing as long
    // as they come. Were a gap in the stream read as no entries, it would resolve within 6 s.
    let (conf, args) = alerts_run(
        &stack,
        &hook.url,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Steady\n        expr: sum by (source) (count_over_time({source=\"steady\"}[6s])) > 2\n",
    );
    let state = conf.join("state");
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let mut cmd = stack.command();
    cmd.env("LOGFLUX_SERVER", &relay.url);
    let run = Proc::start_with(cmd, &args, "evaluating").await;
    let stack = std::sync::Arc::new(stack);
    let sending = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sender = {
        let (stack, sending) = (stack.clone(), sending.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while sending.load(std::sync::atomic::Ordering::Relaxed) {
                stack
                    .send_unix(&entries("steady", &format!("tick {i}"), 1))
                    .await;
                i += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        })
    };
    let (firing, _) = hook.until("firing", Duration::from_secs(30)).await;
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "Steady");

    // The stream is cut for 10 s (more than the window) while entries go on being stored.
    relay.set(false);
    eventually("the stream seen lost", || {
        run.stderr().contains("lost the server's live stream")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    relay.set(true);
    held_after_resume(&run, &mut hook, &state.join("alerts-state.json")).await;
    // When the entries do stop, it resolves: the test could have seen one.
    sending.store(false, std::sync::atomic::Ordering::Relaxed);
    sender.await.unwrap();
    let (resolved, _) = hook.until("resolved", Duration::from_secs(30)).await;
    assert_eq!(resolved["alerts"][0]["labels"]["alertname"], "Steady");
    drop(run);
}

#[tokio::test]
async fn a_server_restart_neither_resolves_a_firing_alert_nor_fires_it_again() {
    // The server on a fixed port, so that its restart is the same server to `alerts run`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let stack = Stack::start_on(&http).await;
    let mut hook = Receiver::start().await;
    let (conf, args) = alerts_run(
        &stack,
        &hook.url,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Errors\n        expr: sum by (source) (count_over_time({source=\"flaky\"}[60s])) > 2\n",
    );
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let run = Proc::start(&stack, &args, "evaluating").await;
    stack.send_unix(&entries("flaky", "boom", 4)).await;
    let (firing, _) = hook.until("firing", Duration::from_secs(30)).await;
    assert_eq!(firing["alerts"][0]["labels"]["alertname"], "Errors");

    // The server stops (its live streams end) and starts again; the entries are still in the
    // 60 s window.
    let (tmp, dir) = stack.stop().await;
    eventually("the stream seen lost", || {
        run.stderr().contains("lost the server's live stream")
    })
    .await;
    let stack = Stack::restart_on(tmp, dir, &http).await;
    held_after_resume(&run, &mut hook, &conf.join("state/alerts-state.json")).await;
    drop(run);
    drop(stack);
}
