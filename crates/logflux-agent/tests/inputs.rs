//! The agent's integrations with the real programs: `logger` into the syslog input over UDP,
//! TCP and a Unix socket; a real nginx whose access and error logs are tailed; a real journal
//! file read through `journalctl`; files rotated by `logrotate` (rename and copytruncate) under
//! continuous writing; Fluent Bit's `http` output formats; Docker and Kubernetes log files;
//! redaction (no secret reaches the spool or the server) and forwarding.
//!
//! Programs come from Debian's packages (`bsdutils`, `nginx`, `systemd-journal-remote`,
//! `logrotate`); a test whose program is missing says so and skips, unless
//! `LOGFLUX_REQUIRE_PROGRAMS=1` (CI), where that is a failure.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Stack, counter};
use logflux_proto::{Entry, Level, timefmt};
use serde_json::json;

fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
            "{program} is required (LOGFLUX_REQUIRE_PROGRAMS=1)"
        );
        eprintln!("SKIPPED: {program} not found (Debian: see the test's header)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Replaces the agent's inputs with `extra` (YAML: an `inputs:` section, filters, forward).
fn yaml_into(stack: &mut Stack, extra: &str) {
    let full = format!("{}{extra}", agent_yaml(stack));
    stack.agent_config = logflux_config::from_str(&full, "test").unwrap();
    stack.agent_config.validate().unwrap();
}

/// The stack's agent configuration as YAML, with its inputs section open for more.
fn agent_yaml(stack: &Stack) -> String {
    let c = &stack.agent_config;
    format!(
        "server: {{urls: ['{}'], api_key: '{}'}}\n\
         keys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
         batch: {{max_wait_ms: 50}}\n\
         spool: {{dir: '{}', fsync: always}}\n\
         shipper: {{backoff_initial_ms: 20, backoff_max_ms: 500}}\n\
         metrics: {{listen: null}}\n",
        c.server.urls[0],
        c.server.api_key,
        c.keys.public_key_file.as_ref().unwrap().display(),
        c.keys.search_key_file.display(),
        c.spool.dir.display(),
    )
}

/// Waits (bounded) until `n` entries are stored, and returns them.
async fn stored(stack: &Stack, n: usize) -> Vec<Entry> {
    stored_until(stack, |e| e.len() >= n).await
}

/// Waits (bounded) until the stored entries satisfy `done`, and returns them.
async fn stored_until(stack: &Stack, done: impl Fn(&[Entry]) -> bool) -> Vec<Entry> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = stack.stored_entries().await;
        if done(&e) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} entries stored after 60 s, not yet what the test waits for: {:?}",
            e.len(),
            e.iter().map(|e| &e.payload).collect::<Vec<_>>()
        );
        // Delivery crosses processes (logger, nginx, journalctl): polled, bounded.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logger_over_udp_tcp_and_a_unix_socket() {
    if !have("logger") {
        return;
    }
    let mut stack = Stack::new().await;
    let (udp, tcp) = (free_port(), free_port());
    let sock = stack.dir.path().join("dev-log");
    let extra = format!(
        "inputs:\n  syslog:\n    - listen: udp://127.0.0.1:{udp}\n    - listen: tcp://127.0.0.1:{tcp}\n    - listen: unix://{}\n",
        sock.display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let run = |args: &[&str]| {
        let out = Command::new("logger").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "logger {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (udp_s, tcp_s) = (udp.to_string(), tcp.to_string());
    run(&[
        "--rfc5424",
        "-d",
        "-n",
        "127.0.0.1",
        "-P",
        &udp_s,
        "-t",
        "billing",
        "-p",
        "local3.err",
        "--msgid",
        "INV",
        "--sd-id",
        "zoo@32473",
        "--sd-param",
        "tiger=\"hungry\"",
        "invoice 17 failed over udp",
    ]);
    run(&[
        "--rfc5424",
        "-T",
        "--octet-count",
        "-n",
        "127.0.0.1",
        "-P",
        &tcp_s,
        "-t",
        "shipping",
        "-p",
        "daemon.warning",
        "parcel late over tcp",
    ]);
    run(&[
        "--rfc3164",
        "-u",
        sock.to_str().unwrap(),
        "-t",
        "cron",
        "-p",
        "cron.info",
        "job ran over the socket",
    ]);
    let entries = stored(&stack, 3).await;
    let by: HashMap<&str, &Entry> = entries.iter().map(|e| (e.source.as_str(), e)).collect();
    let u = by["billing"];
    assert_eq!(u.payload, "invoice 17 failed over udp");
    assert_eq!(u.level, Level::Error);
    assert_eq!(u.payload_type, "syslog");
    assert_eq!(u.metadata["facility"], "local3");
    assert_eq!(u.metadata["msgid"], "INV");
    assert_eq!(u.metadata["sd.zoo@32473.tiger"], "hungry");
    assert!(u.metadata.contains_key("hostname"));
    let t = by["shipping"];
    assert_eq!(t.payload, "parcel late over tcp");
    assert_eq!(t.level, Level::Warning);
    assert_eq!(t.metadata["facility"], "daemon");
    let c = by["cron"];
    assert_eq!(c.payload, "job ran over the socket");
    assert_eq!(c.level, Level::Info);
    assert_eq!(c.metadata["facility"], "cron");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_nginx_access_and_error_log() {
    if !have("nginx") {
        return;
    }
    let mut stack = Stack::new().await;
    let ng = stack.dir.path().join("nginx");
    std::fs::create_dir_all(ng.join("logs")).unwrap();
    std::fs::create_dir_all(ng.join("html")).unwrap();
    std::fs::write(ng.join("html/index.html"), "hello\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        for d in [stack.dir.path(), &ng, &ng.join("html")] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(
            ng.join("html/index.html"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let port = free_port();
    let conf = format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\npid {ng}/nginx.pid;\nerror_log {ng}/logs/error.log info;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {ng}/logs/access.log combined;\n  client_body_temp_path {ng}/tmp;\n  proxy_temp_path {ng}/tmp;\n  fastcgi_temp_path {ng}/tmp;\n  uwsgi_temp_path {ng}/tmp;\n  scgi_temp_path {ng}/tmp;\n\
         server {{ listen 127.0.0.1:{port}; root {ng}/html;\n    location /boom {{ return 502; }} }}\n}}\n",
        ng = ng.display()
    );
    std::fs::write(ng.join("nginx.conf"), conf).unwrap();
    let extra = format!(
        "inputs:\n  nginx:\n    access_logs: ['{ng}/logs/access.log']\n    error_logs: ['{ng}/logs/error.log']\n",
        ng = ng.display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let nginx = tokio::process::Command::new("nginx")
        .args([
            "-c",
            ng.join("nginx.conf").to_str().unwrap(),
            "-p",
            ng.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    // Stopped the way nginx is (its workers with it), whatever happens to the test.
    struct Stop(u32);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.to_string()])
                .status();
        }
    }
    let stop = Stop(nginx.id().unwrap());
    // Requests once nginx answers (it starts in the background).
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base}/")).send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s404 = http
        .get(format!("{base}/missing.html"))
        .header("user-agent", "logflux-test/1")
        .send()
        .await
        .unwrap();
    assert_eq!(s404.status(), 404);
    let s502 = http.get(format!("{base}/boom")).send().await.unwrap();
    assert_eq!(s502.status(), 502);
    // The first GET /, the 404, the 502; and the error log's line for the missing file (nginx
    // also logs notices of its own).
    let entries = stored_until(&stack, |es| {
        ["/", "/missing.html", "/boom"].iter().all(|p| {
            es.iter()
                .any(|e| e.metadata.get("path").is_some_and(|x| x == *p))
        }) && es
            .iter()
            .any(|e| e.payload.contains("missing.html") && !e.metadata.contains_key("status"))
    })
    .await;
    let access: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.metadata.contains_key("status"))
        .collect();
    let by_path: HashMap<&str, &Entry> = access
        .iter()
        .map(|e| (e.metadata["path"].as_str(), *e))
        .collect();
    let missing = by_path["/missing.html"];
    assert_eq!(missing.level, Level::Warning);
    assert_eq!(missing.metadata["status"], "404");
    assert_eq!(missing.metadata["method"], "GET");
    assert_eq!(missing.metadata["user_agent"], "logflux-test/1");
    assert_eq!(missing.metadata["remote_addr"], "127.0.0.1");
    assert_eq!(missing.source, "nginx");
    assert_eq!(by_path["/boom"].level, Level::Error);
    assert_eq!(by_path["/"].level, Level::Info);
    let err = entries
        .iter()
        .find(|e| e.payload.contains("missing.html") && !e.metadata.contains_key("status"))
        .unwrap_or_else(|| panic!("no error-log entry: {entries:#?}"));
    assert_eq!(err.level, Level::Error);
    assert_eq!(err.metadata["client"], "127.0.0.1");
    assert_eq!(err.metadata["request"], "GET /missing.html HTTP/1.1");
    drop(stop);
    let status = tokio::time::timeout(Duration::from_secs(30), nginx.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(status.status.success() || status.status.code().is_none());
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_journal_file_and_its_cursor() {
    let remote = "/lib/systemd/systemd-journal-remote";
    if !Path::new(remote).exists() {
        assert!(
            std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
            "{remote} is required"
        );
        eprintln!("SKIPPED: {remote} not found (Debian: systemd-journal-remote)");
        return;
    }
    if !have("journalctl") {
        return;
    }
    let mut stack = Stack::new().await;
    let journal = stack.dir.path().join("demo.journal");
    let export = "__REALTIME_TIMESTAMP=1763719200123456\n__MONOTONIC_TIMESTAMP=1000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
MESSAGE=database connection lost\nPRIORITY=3\n_SYSTEMD_UNIT=api.service\n_PID=4242\n_HOSTNAME=web-1\nSYSLOG_IDENTIFIER=api\n\n\
__REALTIME_TIMESTAMP=1763719201123456\n__MONOTONIC_TIMESTAMP=2000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
MESSAGE=reconnected\nPRIORITY=6\n_SYSTEMD_UNIT=api.service\n_PID=4242\n_HOSTNAME=web-1\n\n";
    let mut child = Command::new(remote)
        .arg("-o")
        .arg(&journal)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    let extra = format!(
        "inputs:\n  journald:\n    files: ['{}']\n    read_from: beginning\n",
        journal.display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let entries = stored(&stack, 2).await;
    let lost = entries
        .iter()
        .find(|e| e.payload == "database connection lost")
        .unwrap();
    assert_eq!(lost.level, Level::Error);
    assert_eq!(lost.source, "api");
    assert_eq!(lost.metadata["unit"], "api.service");
    assert_eq!(lost.metadata["pid"], "4242");
    assert_eq!(lost.metadata["hostname"], "web-1");
    assert_eq!(lost.payload_type, "systemd_journal");
    assert_eq!(lost.timestamp_ns, 1_763_719_200_123_456_000);
    let re = entries.iter().find(|e| e.payload == "reconnected").unwrap();
    assert_eq!(re.source, "api.service");
    assert_eq!(re.level, Level::Info);
    // A restart continues after the saved cursor: a new entry arrives, the first two do not
    // arrive again.
    let agent = stack.agent.take().unwrap();
    agent.shutdown().await.unwrap();
    let more = "__REALTIME_TIMESTAMP=1763719202123456\n__MONOTONIC_TIMESTAMP=3000\n_BOOT_ID=0123456789abcdef0123456789abcdef\n\
MESSAGE=after the restart\nPRIORITY=5\n\n";
    let mut child = Command::new(remote)
        .arg("-o")
        .arg(&journal)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(more.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    stack.start_agent().await;
    let entries = stored(&stack, 3).await;
    assert!(entries.iter().any(|e| e.payload == "after the restart"));
    assert_eq!(entries.len(), 3, "nothing read twice");
    stack.stop().await;
}

/// The writer's line `i`.
fn line(i: usize) -> String {
    format!("event {i:07} {}", "x".repeat(i % 50))
}

#[tokio::test(flavor = "multi_thread")]
async fn logrotate_rename_and_copytruncate_under_continuous_writing() {
    if !have("logrotate") {
        return;
    }
    for mode in ["create", "copytruncate"] {
        let mut stack = Stack::new().await;
        let logs = stack.dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let app = logs.join("app.log");
        let extra = format!(
            "inputs:\n  files:\n    - paths: ['{}/app.log*']\n      source: app\n      poll_interval_ms: 20\n",
            logs.display()
        );
        yaml_into(&mut stack, &extra);
        stack.start_agent().await;
        let conf = stack.dir.path().join("logrotate.conf");
        std::fs::write(
            &conf,
            format!(
                "{} {{\n  rotate 20\n  {mode}\n  missingok\n  nocompress\n}}\n",
                app.display()
            ),
        )
        .unwrap();
        // The writer appends continuously, reopening by path for every batch (as an app does
        // after a rename rotation); the test rotates with logrotate meanwhile.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer = {
            let (app, stop, written) = (app.clone(), stop.clone(), written.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&app)
                        .unwrap();
                    let mut buf = String::new();
                    for _ in 0..20 {
                        buf.push_str(&line(i));
                        buf.push('\n');
                        i += 1;
                    }
                    f.write_all(buf.as_bytes()).unwrap();
                    written.store(i, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        // copytruncate loses what is written between the copy and the truncation (logrotate's
        // documented race); those windows are recorded.
        let mut windows = Vec::new();
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let before = written.load(std::sync::atomic::Ordering::SeqCst);
            let out = Command::new("logrotate")
                .args(["-f", "-s"])
                .arg(stack.dir.path().join("logrotate.state"))
                .arg(&conf)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            windows.push(before..written.load(std::sync::atomic::Ordering::SeqCst) + 20);
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.join().unwrap();
        let total = written.load(std::sync::atomic::Ordering::SeqCst);
        // Every line written outside a copytruncate window arrives; none arrives twice.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let entries = stack.stored_entries().await;
            let mut count: HashMap<&str, usize> = HashMap::new();
            for e in &entries {
                *count.entry(e.payload.as_str()).or_default() += 1;
            }
            let twice: Vec<&&str> = count
                .iter()
                .filter(|(_, n)| **n > 1)
                .map(|(l, _)| l)
                .take(3)
                .collect();
            if !twice.is_empty() {
                let mut places: Vec<String> = Vec::new();
                for f in walk(&logs) {
                    let text = std::fs::read_to_string(&f).unwrap_or_default();
                    if text.contains(*twice[0]) {
                        places.push(format!("{} ({} bytes)", f.display(), text.len()));
                    }
                }
                panic!(
                    "{mode}: lines arrived twice, e.g. {twice:?}; the first is in {places:?}; {total} written, {} stored",
                    entries.len()
                );
            }
            let missing: Vec<usize> = (0..total)
                .filter(|&i| !count.contains_key(line(i).as_str()))
                .filter(|i| mode == "create" || !windows.iter().any(|w| w.contains(i)))
                .collect();
            if missing.is_empty() {
                if mode == "create" {
                    assert_eq!(entries.len(), total, "{mode}: exactly the lines written");
                }
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode}: {} of {total} lines missing, first {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let files = std::fs::read_dir(&logs).unwrap().count();
        assert!(files >= 5, "{mode}: logrotate rotated ({files} files)");
        stack.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fluent_bit_http_output_formats() {
    let mut stack = Stack::new().await;
    let token = "fluent-bit-token-0123456789abcdef01";
    let extra = format!("inputs:\n  http: {{listen: '127.0.0.1:0', token: '{token}'}}\n");
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let addr = stack.agent.as_ref().unwrap().http_addr().unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/");
    // json_lines, gzip, as Fluent Bit's http output sends it with `Compress gzip`.
    let lines = "{\"date\":1763719200.25,\"log\":\"GET /cart 200\\n\",\"kubernetes\":{\"pod\":\"web-1\"}}\n{\"date\":1763719201.5,\"log\":\"GET /pay 500\",\"level\":\"error\"}\n";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(lines.as_bytes()).unwrap();
    let r = http
        .post(&url)
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // json: an array, with a tag header.
    let r = http
        .post(&url)
        .bearer_auth(token)
        .header("fluent-tag", "app.api")
        .json(&json!([{"date": "2026-11-21T10:00:00Z", "message": "array one"}, {"date": 1763719202, "message": "array two"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Refusals: a wrong token, invalid JSON; nothing of them is stored.
    let r = http
        .post(&url)
        .bearer_auth("wrong")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth(token)
        .body("{\"log\":")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let entries = stored(&stack, 4).await;
    assert_eq!(entries.len(), 4);
    let cart = entries
        .iter()
        .find(|e| e.payload == "GET /cart 200")
        .unwrap();
    assert_eq!(cart.timestamp_ns, 1_763_719_200_250_000_000);
    assert_eq!(cart.metadata["kubernetes"], r#"{"pod":"web-1"}"#);
    assert_eq!(cart.source, "fluent-bit");
    let pay = entries
        .iter()
        .find(|e| e.payload == "GET /pay 500")
        .unwrap();
    assert_eq!(pay.level, Level::Error);
    let one = entries.iter().find(|e| e.payload == "array one").unwrap();
    assert_eq!(one.source, "app.api");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_and_kubernetes_container_logs() {
    let mut stack = Stack::new().await;
    let docker = stack.dir.path().join("docker");
    let id = "a".repeat(64);
    std::fs::create_dir_all(docker.join(&id)).unwrap();
    std::fs::write(
        docker.join(&id).join("config.v2.json"),
        r#"{"Name":"/shop-web-1","Config":{"Image":"nginx:1.27"}}"#,
    )
    .unwrap();
    std::fs::write(
        docker.join(&id).join(format!("{id}-json.log")),
        concat!(
            r#"{"log":"listening on :8080\n","stream":"stdout","time":"2026-11-21T10:00:00.000000001Z"}"#, "\n",
            r#"{"log":"a long line in ","stream":"stderr","time":"2026-11-21T10:00:01Z"}"#, "\n",
            r#"{"log":"two parts\n","stream":"stderr","time":"2026-11-21T10:00:01Z"}"#, "\n",
        ),
    )
    .unwrap();
    let k8s = stack.dir.path().join("containers");
    std::fs::create_dir_all(&k8s).unwrap();
    std::fs::write(
        k8s.join(format!("api-5d9f_shop_server-{}.log", "b".repeat(64))),
        "2026-11-21T10:00:02.5Z stdout P partial \n2026-11-21T10:00:02.6Z stdout F joined\n2026-11-21T10:00:03Z stderr F crashed\n",
    )
    .unwrap();
    let extra = format!(
        "inputs:\n  docker: {{containers_dir: '{}'}}\n  kubernetes: {{logs_dir: '{}'}}\n",
        docker.display(),
        k8s.display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let entries = stored(&stack, 4).await;
    assert_eq!(entries.len(), 4);
    let l = entries
        .iter()
        .find(|e| e.payload == "listening on :8080")
        .unwrap();
    assert_eq!(l.source, "shop-web-1");
    assert_eq!(l.metadata["image"], "nginx:1.27");
    assert_eq!(l.metadata["stream"], "stdout");
    assert_eq!(l.payload_type, "container");
    assert!(
        entries
            .iter()
            .any(|e| e.payload == "a long line in two parts")
    );
    let j = entries
        .iter()
        .find(|e| e.payload == "partial joined")
        .unwrap();
    assert_eq!(j.source, "server");
    assert_eq!(j.metadata["pod"], "api-5d9f");
    assert_eq!(j.metadata["namespace"], "shop");
    assert!(
        entries
            .iter()
            .any(|e| e.payload == "crashed" && e.metadata["stream"] == "stderr")
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_input_stores_lines_under_their_own_time_and_level() {
    let mut stack = Stack::new().await;
    let logs = stack.dir.path().join("archive");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("hadoop.log"),
        concat!(
            "2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster\n",
            "2015-10-18 18:05:02,112 ERROR [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Job failed with 0 errors logged\n",
            r#"{"time":"2015-10-18T18:06:00Z","level":"warn","msg":"slow","http":{"status":503}}"#, "\n",
            "a line with no time, 3 errors\n",
        ),
    )
    .unwrap();
    let extra = format!(
        "inputs:\n  files:\n    - paths: ['{}/*.log']\n      time_zone: UTC\n      poll_interval_ms: 20\n",
        logs.display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let entries = stored(&stack, 4).await;
    let by = |p: &str| entries.iter().find(|e| e.payload.starts_with(p)).unwrap();
    let t = |s: &str| timefmt::parse_rfc3339(s).unwrap();
    let first = by("2015-10-18 18:01:47,978 INFO");
    assert_eq!(first.timestamp_ns, t("2015-10-18T18:01:47.978Z"));
    assert_eq!(first.level, Level::Info);
    assert!(
        first.metadata.contains_key("read_time"),
        "{:?}",
        first.metadata
    );
    let err = by("2015-10-18 18:05:02,112 ERROR");
    assert_eq!(err.level, Level::Error);
    let json = by("slow");
    assert_eq!(
        (json.level, json.timestamp_ns),
        (Level::Warning, t("2015-10-18T18:06:00Z"))
    );
    assert_eq!(json.metadata["http.status"], "503");
    let plain = by("a line with no time");
    assert_eq!(plain.level, Level::Info);
    assert!(
        plain.timestamp_ns > t("2026-01-01T00:00:00Z"),
        "the read time"
    );
    assert!(!plain.metadata.contains_key("read_time"));
    // The 2015 entries are found by a query for their own time range.
    let old: Vec<Entry> = stack
        .stored_records(json!({
            "order": "oldest", "from": "2015-10-18T00:00:00Z", "to": "2015-10-19T00:00:00Z"
        }))
        .await
        .into_iter()
        .flat_map(|(_, e)| e)
        .collect();
    assert_eq!(
        old.len(),
        3,
        "{:?}",
        old.iter().map(|e| &e.payload).collect::<Vec<_>>()
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redaction_keeps_every_secret_out_of_the_spool_the_server_and_forwarded_copies() {
    let mut stack = Stack::new().await;
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fwd = receiver.local_addr().unwrap();
    let extra = format!(
        "inputs:\n  unix_socket: {{path: '{}', mode: '0600'}}\n\
         filters:\n  - {{type: preset, name: passwords}}\n  - {{type: preset, name: bearer_tokens}}\n  - {{type: preset, name: api_keys}}\n  - {{type: preset, name: card_numbers}}\n  - {{type: preset, name: emails}}\n  - type: regex\n    pattern: 'ssn=\\d{{3}}-\\d{{2}}-\\d{{4}}'\n    replacement: 'ssn=***'\n\
         forward:\n  - address: '{fwd}'\n    match: {{min_level: warning}}\n",
        stack.socket().display()
    );
    yaml_into(&mut stack, &extra);
    stack.start_agent().await;
    let secrets = [
        ("login password=Hunter2Secret ok", "Hunter2Secret"),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.secretpart",
            "eyJhbGciOiJIUzI1NiJ9",
        ),
        (
            "using api_key=sk_live_51ABCDEFsecret",
            "sk_live_51ABCDEFsecret",
        ),
        ("card 4111 1111 1111 1111 charged", "4111 1111 1111 1111"),
        ("mail from jane.doe@example.com", "jane.doe@example.com"),
        ("user ssn=123-45-6789 updated", "123-45-6789"),
    ];
    let mut c = common::Client::new(
        tokio::net::UnixStream::connect(stack.socket())
            .await
            .unwrap(),
    );
    for (payload, _) in &secrets {
        c.send(&json!({"payload": payload, "source": "app", "entryType": 1, "logLevel": 4, "metadata": {"note": payload}}).to_string())
            .await;
    }
    c.send(&json!({"payload": "only info password=NotForwarded1", "source": "app", "entryType": 1, "logLevel": 7}).to_string())
        .await;
    drop(c);
    let entries = stored(&stack, secrets.len() + 1).await;
    for (_, secret) in &secrets {
        for e in &entries {
            assert!(!e.payload.contains(secret), "{secret} in {:?}", e.payload);
            if let Some(n) = e.metadata.get("note") {
                assert!(!n.contains(secret), "{secret} in metadata {n:?}");
            }
        }
    }
    // Forwarded: the warning-and-worse entries only, redacted, as RFC 5424 octet-counted.
    let (mut s, _) = receiver.accept().await.unwrap();
    let mut got = String::new();
    let mut buf = vec![0u8; 65536];
    while got.matches("<").count() < secrets.len() {
        let n = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::io::AsyncReadExt::read(&mut s, &mut buf),
        )
        .await
        .expect("forwarded entries")
        .unwrap();
        assert!(n > 0);
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.contains("<11>1 "), "{got}");
    for (_, secret) in &secrets {
        assert!(!got.contains(secret), "{secret} forwarded: {got}");
    }
    assert!(!got.contains("NotForwarded1") && !got.contains("only info"));
    let metrics = stack.agent.as_ref().unwrap().metrics_text();
    for rule in [
        "passwords",
        "bearer_tokens",
        "api_keys",
        "card_numbers",
        "emails",
    ] {
        assert!(
            metrics.contains(&format!(
                "logflux_agent_redactions_total{{rule=\"{rule}\"}}"
            )),
            "{rule}: {metrics}"
        );
    }
    // And in clear nowhere on disk.
    stack.stop().await;
    for (_, secret) in &secrets {
        for f in walk(stack.dir.path()) {
            let b = std::fs::read(&f).unwrap_or_default();
            assert!(
                !b.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in {}",
                f.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A stop while a file's lines wait in a batch (`max_wait_ms` of a minute): the input has them
/// sealed at once and commits their offsets, so the stop waits out neither the batch nor
/// `shutdown_timeout_s`, and the next run reads no line twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_seals_a_files_waiting_lines_commits_them_and_nothing_is_read_twice() {
    let mut stack = Stack::new().await;
    let logs = stack.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let app = logs.join("app.log");
    let text = |range: std::ops::Range<usize>| range.map(|i| line(i) + "\n").collect::<String>();
    std::fs::write(&app, text(0..50)).unwrap();
    let extra = format!(
        "inputs:\n  files:\n    - paths: ['{}']\n      source: app\n      read_from: beginning\n      poll_interval_ms: 20\n",
        app.display()
    );
    yaml_into(&mut stack, &extra);
    stack.agent_config.batch.max_wait_ms = 60_000;
    stack.agent_config.shutdown_timeout_s = 600;
    stack.start_agent().await;
    let agent = stack.agent.take().unwrap();
    // Read and handed over; the batch now waits for a minute (or 1 000 entries).
    let received = async {
        while agent.status()["entries_received"] != 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), received)
        .await
        .expect("the agent read the file");
    let report = tokio::time::timeout(Duration::from_secs(30), agent.shutdown_report())
        .await
        .expect("the agent stopped without waiting out the batch")
        .unwrap();
    assert_eq!(report.not_spooled, 0);

    // The next run ships the spooled lines and then only what is new.
    stack.agent_config.batch.max_wait_ms = 100;
    stack.start_agent().await;
    stack.shipped(50).await;
    let mut f = std::fs::OpenOptions::new().append(true).open(&app).unwrap();
    f.write_all(text(50..60).as_bytes()).unwrap();
    stack.shipped(60).await;
    let mut payloads: Vec<String> = stack
        .stored_entries()
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    payloads.sort();
    let expected: Vec<String> = (0..60).map(line).collect();
    assert_eq!(payloads, expected);
    stack.stop().await;
}

/// A connection to the HTTP input that sends nothing (a port probe, a health check's TCP
/// connect) is closed by a stop at once: it held the input's graceful shutdown, and its
/// intake the sealer, until the header timeout (up to 10 minutes) ran out.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_connection_to_the_http_input_does_not_hold_the_stop() {
    let mut stack = Stack::new().await;
    let token = "fluent-bit-token-0123456789abcdef01";
    let extra = format!(
        "inputs:\n  http: {{listen: '127.0.0.1:0', token: '{token}', header_timeout_ms: 600000}}\n"
    );
    yaml_into(&mut stack, &extra);
    stack.agent_config.shutdown_timeout_s = 600;
    stack.start_agent().await;
    let agent = stack.agent.take().unwrap();
    let addr = agent.http_addr().unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A request on a second connection is answered: the first one's task is running by then
    // (connections are taken in order).
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(r#"{"date":1763719200.25,"log":"one"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let report = tokio::time::timeout(Duration::from_secs(30), agent.shutdown_report())
        .await
        .expect("the agent stopped without waiting out the header timeout")
        .unwrap();
    assert_eq!(report.not_spooled, 0);
    // And the silent connection was closed.
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut silent, &mut buf),
    )
    .await
    .expect("closed")
    .unwrap_or(0);
    assert_eq!(n, 0);
    stack.stop().await;
}

/// A forwarding target that accepts and never reads: once the socket's buffers are full the
/// forwarder's write waits, and it held the agent's stop until `shutdown_timeout_s` (then the
/// tasks after it were aborted). A stop ends that write.
#[tokio::test(flavor = "multi_thread")]
async fn a_forwarding_target_that_never_reads_does_not_hold_the_stop() {
    use tokio::io::AsyncWriteExt as _;
    let mut stack = Stack::new().await;
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fwd = receiver.local_addr().unwrap();
    let (accepted_tx, accepted) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        let (conn, _) = receiver.accept().await.unwrap();
        let _ = accepted_tx.send(());
        // Held open, never read.
        std::future::pending::<()>().await;
        drop(conn);
    });
    let extra = format!(
        "inputs:\n  unix_socket: {{path: '{}', mode: '0600'}}\nforward:\n  - address: '{fwd}'\n    queue: 1000\n",
        stack.socket().display()
    );
    yaml_into(&mut stack, &extra);
    stack.agent_config.shutdown_timeout_s = 600;
    stack.start_agent().await;
    accepted.await.unwrap();
    // 32 MB of entries: far more than the sockets between the forwarder and its target hold.
    const ENTRIES: u64 = 512;
    let payload = "f".repeat(64 * 1024);
    let mut c = tokio::net::UnixStream::connect(stack.socket())
        .await
        .unwrap();
    for _ in 0..ENTRIES {
        let line = common::entry_line(&payload) + "\n";
        c.write_all(line.as_bytes()).await.unwrap();
    }
    // All sealed, offered to the forwarder (before spooling) and delivered to the server.
    stack.shipped(ENTRIES).await;
    let agent = stack.agent.take().unwrap();
    let report = tokio::time::timeout(Duration::from_secs(30), agent.shutdown_report())
        .await
        .expect("the agent stopped without waiting for the forwarding target")
        .unwrap();
    assert_eq!(report.not_spooled, 0);
    holder.abort();
    stack.stop().await;
}

/// An HTTP request whose entries wait in a batch (`max_wait_ms` of a minute) when the agent
/// stops: they are sealed at once and the request answered 200, rather than the stop waiting
/// for the request and the request answering 503 after 30 s (its sender would then send the
/// entries again, to be stored twice).
#[tokio::test(flavor = "multi_thread")]
async fn an_http_request_waiting_at_a_stop_is_sealed_at_once_and_answered() {
    let mut stack = Stack::new().await;
    let token = "fluent-bit-token-0123456789abcdef01";
    let extra = format!("inputs:\n  http: {{listen: '127.0.0.1:0', token: '{token}'}}\n");
    yaml_into(&mut stack, &extra);
    stack.agent_config.batch.max_wait_ms = 60_000;
    stack.agent_config.batch.max_entries = 2;
    stack.agent_config.shutdown_timeout_s = 600;
    stack.start_agent().await;
    let agent = stack.agent.take().unwrap();
    let url = format!("http://{}/", agent.http_addr().unwrap());
    let request = tokio::spawn(
        reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body("{\"log\":\"one\"}\n{\"log\":\"two\"}\n{\"log\":\"three\"}\n")
            .send(),
    );
    // The first two make a batch of their own at once; the third waits for a minute.
    let sealed = async {
        while counter(&agent, "logflux_agent_entries_sealed_total") != 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), sealed)
        .await
        .expect("the first batch was sealed");
    let report = tokio::time::timeout(Duration::from_secs(30), agent.shutdown_report())
        .await
        .expect("the agent stopped without waiting out the batch")
        .unwrap();
    assert_eq!(report.not_spooled, 0);
    let r = request.await.unwrap().unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // All three reach the server, once: before the stop or from the spool after a restart.
    stack.start_agent().await;
    let stored = async {
        loop {
            let mut p: Vec<String> = stack
                .stored_entries()
                .await
                .into_iter()
                .map(|e| e.payload)
                .collect();
            if p.len() >= 3 {
                p.sort();
                return p;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let payloads = tokio::time::timeout(Duration::from_secs(60), stored)
        .await
        .expect("all three stored");
    assert_eq!(payloads, ["one", "three", "two"]);
    stack.stop().await;
}
