//! Notifications to real receivers started here: an HTTP server capturing webhook and Slack
//! bodies (checked against Alertmanager's webhook schema), a command run by `exec`, and an SMTP
//! server with STARTTLS (aiosmtpd from PyPI, in a venv under `target/`; skipped when it cannot
//! be installed, unless LOGFLUX_REQUIRE_PROGRAMS=1, as in CI, where that is a failure).
//!
//! Intervals are short and real; the tests wait on what the receivers and the notifier report,
//! not on sleeps.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use logflux_alerts::Alert;
use logflux_alerts::notify::{Notifier, NotifierOptions, NotifyEvent, Outcome, ReceiversConfig};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{broadcast, mpsc};

const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// An HTTP receiver.

#[derive(Clone)]
struct ReceiverState {
    tx: mpsc::UnboundedSender<(String, Value)>,
    fail: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

struct HttpReceiver {
    addr: SocketAddr,
    bodies: mpsc::UnboundedReceiver<(String, Value)>,
    /// Answers 503 to this many requests first: the service behind it is down.
    fail: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn capture(State(s): State<ReceiverState>, uri: Uri, body: Bytes) -> StatusCode {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if s.fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
        .is_ok()
    {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let v: Value = serde_json::from_slice(&body).expect("the body is JSON");
    let _ = s.tx.send((uri.path().to_owned(), v));
    StatusCode::OK
}

async fn http_receiver() -> HttpReceiver {
    let (tx, bodies) = mpsc::unbounded_channel();
    let fail = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/{*path}", axum::routing::post(capture))
        .with_state(ReceiverState {
            tx,
            fail: Arc::clone(&fail),
            requests: Arc::clone(&requests),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    HttpReceiver {
        addr,
        bodies,
        fail,
        requests,
    }
}

impl HttpReceiver {
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(WAIT, self.bodies.recv())
            .await
            .expect("a notification within 30 s")
            .unwrap()
    }

    /// The next bodies, sorted by path.
    async fn next_n(&mut self, n: usize) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        for _ in 0..n {
            let (p, v) = self.next().await;
            assert!(m.insert(p.clone(), v).is_none(), "two bodies to {p}");
        }
        m
    }
}

// ---------------------------------------------------------------------------------------------
// Alertmanager's webhook schema (version 4), plus LogFlux's `lines`.

fn rfc3339(v: &Value, what: &str) -> OffsetDateTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{what} {s:?}: {e}"))
}

fn string_map(v: &Value, what: &str) {
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for (k, x) in o {
        assert!(x.is_string(), "{what}.{k} is not a string: {x}");
    }
}

fn check_webhook_schema(v: &Value) {
    let o = v.as_object().expect("the body is an object");
    let keys: BTreeSet<&str> = o.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "alerts",
            "commonAnnotations",
            "commonLabels",
            "externalURL",
            "groupKey",
            "groupLabels",
            "receiver",
            "status",
            "truncatedAlerts",
            "version",
        ])
    );
    assert_eq!(o["version"], "4");
    for k in ["receiver", "groupKey", "externalURL"] {
        assert!(o[k].is_string(), "{k}: {}", o[k]);
    }
    assert!(o["truncatedAlerts"].is_u64());
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        string_map(&o[k], k);
    }
    let alerts = o["alerts"].as_array().expect("alerts is an array");
    assert!(!alerts.is_empty());
    let mut any_firing = false;
    for a in alerts {
        let a = a.as_object().expect("an alert is an object");
        let keys: BTreeSet<&str> = a.keys().map(String::as_str).collect();
        let required = BTreeSet::from([
            "annotations",
            "endsAt",
            "fingerprint",
            "generatorURL",
            "labels",
            "startsAt",
            "status",
        ]);
        assert!(keys.is_superset(&required), "{keys:?}");
        let extra: Vec<_> = keys.difference(&required).collect();
        assert!(extra.is_empty() || extra == [&"lines"], "{extra:?}");
        if let Some(lines) = a.get("lines") {
            let lines = lines.as_array().expect("lines is an array");
            assert!(!lines.is_empty() && lines.iter().all(Value::is_string));
        }
        string_map(&a["labels"], "labels");
        string_map(&a["annotations"], "annotations");
        assert!(a["generatorURL"].is_string());
        let fp = a["fingerprint"].as_str().unwrap();
        assert!(
            fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit()),
            "{fp}"
        );
        let starts = rfc3339(&a["startsAt"], "startsAt");
        let ends = rfc3339(&a["endsAt"], "endsAt");
        match a["status"].as_str() {
            Some("firing") => {
                any_firing = true;
                assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
            }
            Some("resolved") => assert!(ends >= starts, "resolved before it started"),
            s => panic!("status {s:?}"),
        }
    }
    assert_eq!(o["status"], if any_firing { "firing" } else { "resolved" });
}

// ---------------------------------------------------------------------------------------------
// Alerts and notifiers.

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn alert(name: &str, source: &str) -> Alert {
    Alert {
        labels: [
            ("alertname".to_owned(), name.to_owned()),
            ("source".to_owned(), source.to_owned()),
        ]
        .into(),
        annotations: [("summary".to_owned(), format!("errors on {source}"))].into(),
        starts_at_ms: now_ms(),
        ends_at_ms: None,
        value: 12.0,
        generator_url: "http://127.0.0.1:9090/explore?q=x".into(),
        lines: Vec::new(),
    }
}

fn resolve(mut a: Alert) -> Alert {
    a.ends_at_ms = Some(now_ms());
    a
}

fn notifier(yaml: &str, dir: &Path) -> Notifier {
    let loaded = ReceiversConfig::parse(yaml, "receivers.yml").unwrap();
    Notifier::new(
        &loaded.config,
        NotifierOptions {
            state_path: Some(dir.join("notifications.json")),
            dead_letter_path: Some(dir.join("dead-letters.jsonl")),
            external_url: "http://127.0.0.1:9090".into(),
        },
    )
    .unwrap()
}

async fn event(events: &mut broadcast::Receiver<NotifyEvent>) -> NotifyEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within 30 s")
        .unwrap()
}

const FAST: &str =
    "group_by: [alertname]\n  group_wait: 200ms\n  group_interval: 400ms\n  repeat_interval: 1h";

// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_and_slack_get_alertmanagers_json_grouped_then_resolved_once() {
    let mut r = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("hook2.url");
    std::fs::write(&url_file, format!("http://{}/hook2\n", r.addr)).unwrap();
    let yaml = format!(
        "global: {{slack_api_url: 'http://{a}/slack'}}
route:
  receiver: team
  {FAST}
receivers:
- name: team
  webhook_configs:
  - url: 'http://{a}/hook'
  - url_file: '{f}'
    max_alerts: 1
  slack_configs:
  - channel: '#alerts'
    send_resolved: true
    title: '{{{{ .Status | toUpper }}}} {{{{ .GroupLabels.alertname }}}}'
",
        a = r.addr,
        f = url_file.display()
    );
    let n = notifier(&yaml, dir.path());
    let mut events = n.subscribe();
    let api = alert("HighErrors", "api");
    let mut web = alert("HighErrors", "web");
    web.lines = vec!["GET /checkout 500 timeout".into()];
    n.send(vec![api.clone(), web.clone()]);

    let b = r.next_n(3).await;
    for hook in ["/hook", "/hook2"] {
        check_webhook_schema(&b[hook]);
    }
    let hook = &b["/hook"];
    assert_eq!(hook["status"], "firing");
    assert_eq!(hook["receiver"], "team");
    assert_eq!(hook["groupKey"], r#"{}:{alertname="HighErrors"}"#);
    assert_eq!(
        hook["groupLabels"],
        serde_json::json!({"alertname": "HighErrors"})
    );
    assert_eq!(
        hook["commonLabels"],
        serde_json::json!({"alertname": "HighErrors"})
    );
    assert_eq!(hook["externalURL"], "http://127.0.0.1:9090");
    assert_eq!(hook["truncatedAlerts"], 0);
    let alerts = hook["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    // Sorted by labels: api, then web. Lines only where the rule asked for them.
    assert_eq!(alerts[0]["labels"]["source"], "api");
    assert!(alerts[0].get("lines").is_none());
    assert_eq!(
        alerts[1]["lines"],
        serde_json::json!(["GET /checkout 500 timeout"])
    );
    assert_eq!(alerts[0]["fingerprint"], api.fingerprint());
    assert_eq!(b["/hook2"]["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(b["/hook2"]["truncatedAlerts"], 1);

    let slack = &b["/slack"];
    assert_eq!(slack["channel"], "#alerts");
    let att = &slack["attachments"][0];
    assert_eq!(att["title"], "FIRING HighErrors");
    let text = att["text"].as_str().unwrap();
    assert!(
        text.contains("errors on api") && text.contains("source=web"),
        "{text}"
    );
    assert!(text.contains("GET /checkout 500 timeout"), "{text}");

    // Resolved: told once (the Slack receiver asked for it too).
    n.send(vec![resolve(api), resolve(web.clone())]);
    let b = r.next_n(3).await;
    for hook in ["/hook", "/hook2"] {
        check_webhook_schema(&b[hook]);
        assert_eq!(b[hook]["status"], "resolved");
    }
    assert!(
        b["/slack"]["attachments"][0]["title"]
            .as_str()
            .unwrap()
            .starts_with("RESOLVED")
    );
    // The evaluator says it once more: nothing new for any of the three.
    let mut unchanged = 0;
    n.send(vec![resolve(web)]);
    while unchanged < 3 {
        if event(&mut events).await.outcome == Outcome::Unchanged {
            unchanged += 1;
        }
    }
    assert!(r.bodies.try_recv().is_err(), "sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_down_for_a_while_gets_the_notification_after_once() {
    let mut r = http_receiver().await;
    r.fail.store(2, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "route:\n  receiver: team\n  {FAST}\nreceivers:\n- name: team\n  webhook_configs: [{{url: 'http://{}/hook'}}]\n",
        r.addr
    );
    let n = notifier(&yaml, dir.path());
    let mut events = n.subscribe();
    n.send(vec![alert("HighErrors", "api")]);
    let (_, body) = r.next().await;
    check_webhook_schema(&body);
    assert_eq!(r.requests.load(Ordering::SeqCst), 3);
    let m = n.metrics().snapshot()[0].1;
    assert_eq!((m.attempted, m.failed, m.dead_lettered), (3, 2, 0));
    // The next flushes have nothing new.
    let mut unchanged = 0;
    while unchanged < 2 {
        if event(&mut events).await.outcome == Outcome::Unchanged {
            unchanged += 1;
        }
    }
    assert!(r.bodies.try_recv().is_err());
    assert_eq!(r.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_stays_down_goes_to_the_dead_letter_log() {
    let r = http_receiver().await;
    r.fail.store(usize::MAX, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "global: {{retry_for: 2s}}\nroute:\n  receiver: team\n  {FAST}\nreceivers:\n- name: team\n  webhook_configs: [{{url: 'http://{}/hook?token=s3cr3t'}}]\n",
        r.addr
    );
    let n = notifier(&yaml, dir.path());
    let mut events = n.subscribe();
    let mut a = alert("HighErrors", "api");
    a.lines = vec!["a log line".into()];
    n.send(vec![a]);
    assert_eq!(event(&mut events).await.outcome, Outcome::DeadLettered);
    let path = dir.path().join("dead-letters.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["receiver"], "team");
    assert_eq!(line["integration"], "webhook");
    assert_eq!(line["groupKey"], r#"{}:{alertname="HighErrors"}"#);
    assert_eq!(line["alerts"][0]["labels"]["source"], "api");
    assert_eq!(line["alerts"][0]["annotations"]["summary"], "errors on api");
    assert!(line["error"].as_str().unwrap().contains("503"), "{line}");
    // No secret of the file, no log content.
    assert!(
        !text.contains("s3cr3t") && !text.contains("a log line"),
        "{text}"
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let m = n.metrics().snapshot()[0].1;
    // (The next flush may have started trying again: a dead letter is not logged as sent.)
    assert!(m.dead_lettered >= 1 && m.attempted >= 2, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_notifier_does_not_send_again() {
    let mut r = http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "route:\n  receiver: team\n  {FAST}\nreceivers:\n- name: team\n  webhook_configs: [{{url: 'http://{}/hook'}}]\n",
        r.addr
    );
    let a = alert("HighErrors", "api");
    {
        let n = notifier(&yaml, dir.path());
        let mut events = n.subscribe();
        n.send(vec![a.clone()]);
        r.next().await;
        // Logged (and the state file written) before the event.
        assert!(matches!(
            event(&mut events).await.outcome,
            Outcome::Sent { .. }
        ));
    }
    let state = dir.path().join("notifications.json");
    assert_eq!(
        std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let n = notifier(&yaml, dir.path());
    let mut events = n.subscribe();
    n.send(vec![a]);
    assert_eq!(event(&mut events).await.outcome, Outcome::Unchanged);
    assert!(r.bodies.try_recv().is_err(), "sent again after a restart");
    assert_eq!(r.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_the_command_with_the_webhook_json_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("receive.sh");
    std::fs::write(&script, "#!/bin/sh\ncat > \"$1\"\n").unwrap();
    let out = dir.path().join("stdin.json");
    let yaml = format!(
        "global: {{retry_for: 1s}}
route:
  receiver: cmd
  {FAST}
  routes:
  - matchers: ['source=\"broken\"']
    receiver: broken
receivers:
- name: cmd
  exec_configs: [{{command: [/bin/sh, '{s}', '{o}'], timeout: 5s}}]
- name: broken
  exec_configs: [{{command: [/bin/sh, -c, 'echo failing >&2; exit 3']}}]
",
        s = script.display(),
        o = out.display()
    );
    let n = notifier(&yaml, dir.path());
    let mut events = n.subscribe();
    n.send(vec![alert("HighErrors", "api"), alert("Other", "broken")]);
    let mut seen = BTreeMap::new();
    while seen.len() < 2 {
        let e = event(&mut events).await;
        seen.entry(e.receiver.clone()).or_insert(e.outcome);
    }
    assert_eq!(
        seen["cmd"],
        Outcome::Sent {
            firing: 1,
            resolved: 0
        }
    );
    assert_eq!(seen["broken"], Outcome::DeadLettered);
    let body: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    check_webhook_schema(&body);
    assert_eq!(body["receiver"], "cmd");
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap();
    assert!(dead.contains("exit status: 3"), "{dead}");
    let m = n.metrics().snapshot()[3];
    assert_eq!(m.0, "exec");
    assert_eq!(m.1.dead_lettered, 1);
}

// ---------------------------------------------------------------------------------------------
// E-mail: aiosmtpd with STARTTLS.

fn require_programs() -> bool {
    std::env::var("LOGFLUX_REQUIRE_PROGRAMS").is_ok_and(|v| v == "1")
}

/// The venv's python with aiosmtpd, made under `target/` once; `None` (after saying why) when
/// it cannot be made here. Made by one test at a time (two making it at once break it).
fn aiosmtpd_python() -> Option<PathBuf> {
    static PYTHON: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    PYTHON.get_or_init(make_aiosmtpd_venv).clone()
}

fn make_aiosmtpd_venv() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/venv-aiosmtpd");
    let python = venv.join("bin/python");
    let has = |p: &Path| {
        std::process::Command::new(p)
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&python) {
        return Some(python);
    }
    let made = std::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && std::process::Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
    if made && has(&python) {
        return Some(python);
    }
    let why = "aiosmtpd cannot be installed (python3 -m venv + pip install aiosmtpd)";
    assert!(!require_programs(), "{why}; LOGFLUX_REQUIRE_PROGRAMS=1");
    eprintln!("skipped: {why} (LOGFLUX_REQUIRE_PROGRAMS=1 makes this a failure)");
    None
}

const SMTP_SERVER: &str = r#"
import asyncio, json, socket, ssl, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

cert, key, mode = sys.argv[1], sys.argv[2], sys.argv[3]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(json.dumps({
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }), flush=True)
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alice" \
        and auth_data.password == b"s3cret pass"
    return AuthResult(success=ok)

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
if mode == "starttls":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    kw = dict(tls_context=ctx, require_starttls=True, auth_require_tls=True)
else:
    kw = dict(auth_require_tls=False)
c = Controller(Handler(), hostname="127.0.0.1", port=port, authenticator=authenticator, **kw)
c.start()
print(json.dumps({"port": port}), flush=True)
sys.stdin.read()
c.stop()
"#;

struct SmtpServer {
    port: u16,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    _child: tokio::process::Child,
}

impl SmtpServer {
    async fn start(python: &Path, dir: &Path, mode: &str) -> Self {
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SMTP_SERVER).unwrap();
        let mut child = tokio::process::Command::new(python)
            .arg(&script)
            .arg(dir.join("cert.pem"))
            .arg(dir.join("key.pem"))
            .arg(mode)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the SMTP server starts")
            .unwrap()
            .expect("the SMTP server says its port");
        let port = serde_json::from_str::<Value>(&first).unwrap()["port"]
            .as_u64()
            .unwrap();
        Self {
            port: u16::try_from(port).unwrap(),
            lines,
            _child: child,
        }
    }

    async fn next_mail(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("a mail within 30 s")
            .unwrap()
            .expect("the SMTP server is running");
        serde_json::from_str(&line).unwrap()
    }
}

/// A test CA (`ca.pem`) and a certificate it signed for localhost and 127.0.0.1 (`cert.pem`,
/// `key.pem`), made with the openssl CLI. (rustls refuses a CA certificate as the server's own,
/// so not one self-signed certificate.)
fn certificates(dir: &Path) -> bool {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ok = run(&[
        &["req", "-x509"],
        &ec[..],
        &["-days", "1", "-subj", "/CN=LogFlux test CA"],
        &["-keyout", "ca.key", "-out", "ca.pem"],
    ]
    .concat())
        && run(&[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat())
        && run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ]);
    if !ok {
        assert!(!require_programs(), "openssl cannot make certificates");
        eprintln!("skipped: openssl cannot make certificates");
    }
    ok
}

fn email_yaml(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "global:
  smtp_smarthost: '127.0.0.1:{port}'
  smtp_from: 'LogFlux <alerts@example.test>'
  smtp_auth_username: alice
  smtp_auth_password: 's3cret pass'
  retry_for: 2s
route:
  receiver: mail
  {FAST}
receivers:
- name: mail
  email_configs:
  - to: 'oncall@example.test, lead@example.test'
    send_resolved: true
    tls_config: {{ca_file: '{ca}', server_name: localhost}}
    headers: {{Subject: '[{{{{ .Status | toUpper }}}}] {{{{ .GroupLabels.alertname }}}}', X-Team: db}}
{extra}",
        ca = dir.join("ca.pem").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_goes_over_starttls_to_an_smtp_server() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        return;
    }
    let mut smtp = SmtpServer::start(&python, dir.path(), "starttls").await;
    let n = notifier(&email_yaml(dir.path(), smtp.port, ""), dir.path());
    let mut events = n.subscribe();
    let mut a = alert("HighErrors", "api");
    a.lines = vec!["GET /checkout 500 timeout".into()];
    n.send(vec![a.clone(), alert("HighErrors", "web")]);
    let e = event(&mut events).await;
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap_or_default();
    assert!(matches!(e.outcome, Outcome::Sent { .. }), "{e:?} {dead}");
    let mail = smtp.next_mail().await;
    assert_eq!(mail["tls"], true, "{mail}");
    assert_eq!(mail["authenticated"], true, "{mail}");
    assert_eq!(mail["from"], "alerts@example.test");
    assert_eq!(
        mail["to"],
        serde_json::json!(["oncall@example.test", "lead@example.test"])
    );
    let data = mail["data"].as_str().unwrap().replace("\r\n", "\n");
    assert!(data.contains("Subject: [FIRING] HighErrors"), "{data}");
    assert!(data.contains("X-Team: db"), "{data}");
    assert!(
        data.contains("errors on api") && data.contains("source=web"),
        "{data}"
    );
    assert!(data.contains("GET /checkout 500 timeout"), "{data}");

    n.send(vec![resolve(a)]);
    // The api alert resolved, web still fires: a change the receiver asked to hear about.
    let mail = smtp.next_mail().await;
    let data = mail["data"].as_str().unwrap().replace("\r\n", "\n");
    assert!(data.contains("HighErrors (resolved)"), "{data}");
    assert!(data.contains("HighErrors (firing)"), "{data}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_is_not_sent_to_a_server_without_starttls() {
    let Some(python) = aiosmtpd_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        return;
    }
    let smtp = SmtpServer::start(&python, dir.path(), "plain").await;
    let n = notifier(&email_yaml(dir.path(), smtp.port, ""), dir.path());
    let mut events = n.subscribe();
    n.send(vec![alert("HighErrors", "api")]);
    assert_eq!(event(&mut events).await.outcome, Outcome::DeadLettered);
    let dead = std::fs::read_to_string(dir.path().join("dead-letters.jsonl")).unwrap();
    assert!(!dead.contains("s3cret"), "{dead}");
    assert!(dead.contains("\"integration\":\"email\""), "{dead}");
    assert!(dead.to_lowercase().contains("tls"), "{dead}");
    drop(smtp);
}
