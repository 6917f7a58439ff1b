//! A newcomer's first hour with the agent (issue 12): `~` in paths, `check-config` that looks
//! at the files, `status` without the API key's variable, a busy metrics port, a shutdown that
//! ends while the spool is full and the server away, logs without colours in a file, and
//! `entries_received` / multi-line metadata for file inputs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Client, Stack, entry_line, tenant_key, write_keys};
use serde_json::json;
use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux-agent");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `logflux-agent ARGS` to its end with `HOME` set to `home`: (status, stdout, stderr).
fn agent_cli(home: &Path, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("HOME", home)
        .env_remove("LOGFLUX_AGENT_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_expands_tilde_and_refuses_key_files_that_are_missing_or_open() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join(".config/logflux/keys");
    std::fs::create_dir_all(&keys).unwrap();
    write_keys(&keys);
    let config = home.path().join("agent.yaml");
    std::fs::write(
        &config,
        "server: {urls: ['https://logs.example.com'], api_key: eu-lf_abc}\n\
         keys:\n  public_key_file: ~/.config/logflux/keys/public_key.pem\n  search_key_file: ~/.config/logflux/keys/search.key\n\
         inputs: {unix_socket: {path: ~/agent.sock}}\n\
         spool: {dir: ~/spool}\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (code, out, err) = agent_cli(home.path(), &["--config", cfg, "check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("configuration is valid"), "{out}");

    // A missing public key and a search key others can read: both reported, with their
    // config paths, the reason said once.
    std::fs::remove_file(keys.join("public_key.pem")).unwrap();
    std::fs::set_permissions(
        keys.join("search.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let (code, out, err) = agent_cli(home.path(), &["--config", cfg, "check-config"]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(!out.contains("valid"), "{out}");
    let expanded = keys.join("public_key.pem");
    assert!(
        err.contains(&format!(
            "keys.public_key_file: public key file {}",
            expanded.display()
        )),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert!(
        err.contains("keys.search_key_file: search key file"),
        "{err}"
    );
    assert!(err.contains("chmod 600"), "{err}");

    // Starting says the same about the missing key, once.
    std::fs::set_permissions(
        keys.join("search.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, _, err) = agent_cli(home.path(), &["--config", cfg, "run"]);
    assert_ne!(code, 0);
    assert!(err.contains("keys.public_key_file"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}

#[tokio::test]
async fn status_needs_only_the_agents_address_not_the_api_key_variable() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let addr = s.agent.as_ref().unwrap().metrics_addr().unwrap();
    let config = s.dir.path().join("status.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{urls: ['{}'], api_key: ${{LOGFLUX_TEST_UNSET_API_KEY}}}}\n\
             keys: {{public_key_file: /nowhere/pk.pem, search_key_file: /nowhere/search.key}}\n\
             spool: {{dir: /nowhere}}\n\
             metrics: {{listen: '{addr}'}}\n",
            s.base
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "status"])
        .env_remove("LOGFLUX_TEST_UNSET_API_KEY")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(v["spool"]["records"].is_number(), "{v}");
    s.stop().await;
}

#[tokio::test]
async fn a_busy_metrics_port_is_a_warning_and_the_agent_delivers() {
    let mut s = Stack::new().await;
    // Another exporter holds the port.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    s.agent_config.metrics.listen = Some(held.local_addr().unwrap());
    s.start_agent().await;
    assert_eq!(s.agent.as_ref().unwrap().metrics_addr(), None);
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(&entry_line("delivered without metrics")).await;
    s.shipped(1).await;
    assert_eq!(
        s.stored_entries().await[0].payload,
        "delivered without metrics"
    );
    drop(held);
    s.stop().await;
}

#[test]
fn the_default_metrics_port_is_not_node_exporters_nor_another_default() {
    let port = logflux_agent::config::DEFAULT_METRICS_PORT;
    assert!(
        !(9100..=9999).contains(&port),
        "9100-9999 is Prometheus' exporter range"
    );
    assert!(![8080, 8088, 9999].contains(&port));
    let c: logflux_agent::config::AgentConfig = logflux_config::from_str(
        "server: {urls: [https://x], api_key: eu-lf_a}\nkeys: {search_key_file: /k, public_key_file: /p}\n\
         inputs: {unix_socket: {path: /tmp/s}}\nspool: {dir: /s}\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.metrics.listen.unwrap().port(), port);
}

#[tokio::test]
async fn entries_received_counts_file_inputs_and_multiline_timeouts_keep_their_file() {
    let mut s = Stack::new().await;
    let logs = s.dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    // Plain lines in one file, multi-line events in two others, each event closed only by
    // the timeout (nothing follows it).
    let c = &s.agent_config;
    let text = format!(
        "server: {{urls: ['{}'], api_key: '{}'}}\n\
         keys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
         batch: {{max_wait_ms: 50}}\n\
         spool: {{dir: '{}', fsync: always}}\n\
         shipper: {{backoff_initial_ms: 20, backoff_max_ms: 500}}\n\
         metrics: {{listen: '127.0.0.1:0'}}\n\
         inputs:\n\
         \x20 files:\n\
         \x20   - {{paths: ['{logs}/plain.log'], read_from: beginning, poll_interval_ms: 20}}\n\
         \x20   - {{paths: ['{logs}/alpha.log', '{logs}/beta.log'], read_from: beginning, poll_interval_ms: 20,\n\
         \x20      multiline: {{start: '^\\d{{4}}-', timeout_ms: 300}}}}\n",
        c.server.urls[0],
        c.server.api_key,
        c.keys.public_key_file.as_ref().unwrap().display(),
        c.keys.search_key_file.display(),
        c.spool.dir.display(),
        logs = logs.display(),
    );
    s.agent_config = logflux_config::from_str(&text, "test").unwrap();
    let plain: String = (0..18).map(|i| format!("plain line {i}\n")).collect();
    std::fs::write(logs.join("plain.log"), plain).unwrap();
    std::fs::write(
        logs.join("alpha.log"),
        "2026-01-01 alpha failed\n  at alpha.frame\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("beta.log"),
        "2026-01-01 beta failed\n  at beta.frame\n",
    )
    .unwrap();
    s.start_agent().await;
    s.shipped(20).await;
    let agent = s.agent.as_ref().unwrap();
    assert_eq!(agent.status()["entries_received"], 20, "{}", agent.status());
    assert!(
        agent
            .metrics_text()
            .contains("logflux_agent_entries_received_total{input=\"file\"} 20"),
        "{}",
        agent.metrics_text()
    );
    let stored = s.stored_entries().await;
    for name in ["alpha", "beta"] {
        let e = stored
            .iter()
            .find(|e| e.payload.starts_with(&format!("2026-01-01 {name} failed")))
            .unwrap_or_else(|| panic!("no {name} event in {stored:?}"));
        assert_eq!(
            e.payload,
            format!("2026-01-01 {name} failed\n  at {name}.frame")
        );
        assert_eq!(
            e.metadata.get("file"),
            Some(logs.join(format!("{name}.log")).to_str().unwrap()),
            "{e:?}"
        );
        assert_eq!(e.source, name, "{e:?}");
    }
    s.stop().await;
}

/// An agent binary whose server is gone: identity cached (as after an earlier run), the
/// server's URL a closed port, a 1 MiB spool.
struct DeadServerAgent {
    _dir: tempfile::TempDir,
    child: tokio::process::Child,
    socket: PathBuf,
    stderr: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
}

async fn agent_without_server(shutdown_timeout_s: u64) -> DeadServerAgent {
    let dir = tempfile::tempdir().unwrap();
    let (pk, skp, _) = write_keys(dir.path());
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    std::fs::write(
        spool.join("identity.json"),
        json!({"tenant_id": "t_test", "application_id": "a_test",
               "public_key_pem": tenant_key().public_key().to_pem()})
        .to_string(),
    )
    .unwrap();
    let socket = dir.path().join("agent.sock");
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{urls: ['http://127.0.0.1:{}'], api_key: eu-lf_dead}}\n\
             keys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
             inputs: {{unix_socket: {{path: '{}', mode: '0600'}}}}\n\
             batch: {{max_wait_ms: 50}}\n\
             spool: {{dir: '{}', max_bytes: 1048576, segment_bytes: 131072}}\n\
             shipper: {{backoff_initial_ms: 20, backoff_max_ms: 200}}\n\
             metrics: {{listen: null}}\n\
             shutdown_timeout_s: {shutdown_timeout_s}\n",
            free_port(),
            pk.display(),
            skp.display(),
            socket.display(),
            spool.display(),
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("LOGFLUX_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("agent start")
            .unwrap()
            .expect("agent exited before ready");
        if line == "ready" {
            break;
        }
    }
    let stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    DeadServerAgent {
        _dir: dir,
        child,
        socket,
        stderr,
    }
}

/// Sends incompressible entries until the agent answers `queue_full` (the spool is full);
/// returns the connection, still open.
async fn fill(socket: &Path) -> Client<tokio::net::UnixStream> {
    let mut c = Client::new(tokio::net::UnixStream::connect(socket).await.unwrap());
    for i in 0..4000u64 {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i + 1);
        let noise: String = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        c.send(&entry_line(&format!("{i} {noise}"))).await;
        c.send(r#"{"action":"ping"}"#).await;
        let r = c.reply().await.unwrap();
        if r["error"]["code"] == "queue_full" {
            return c;
        }
    }
    panic!("the spool never filled");
}

fn sigterm(child: &tokio::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// Reads the agent's stderr to its end (it has exited), after what was already read.
async fn rest(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStderr>>,
) -> String {
    let mut text = String::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn sigterm_with_a_full_spool_and_no_server_exits_within_the_bound_and_counts_the_loss() {
    let mut a = agent_without_server(2).await;
    let _client = fill(&a.socket).await;
    let started = std::time::Instant::now();
    sigterm(&a.child);
    let status = tokio::time::timeout(Duration::from_secs(30), a.child.wait())
        .await
        .expect("the agent did not exit within 30 s of SIGTERM (bound: 2 s)")
        .unwrap();
    let took = started.elapsed();
    let err = rest(&mut a.stderr).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let line = err
        .lines()
        .find(|l| l.starts_with("logflux-agent: stopped: "))
        .unwrap_or_else(|| panic!("no final message in {err}"));
    let n: u64 = line
        .trim_start_matches("logflux-agent: stopped: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 0, "{line}");
    assert!(
        line.contains("were not spooled within shutdown_timeout_s (2 s)"),
        "{line}"
    );
    assert!(!err.contains('\u{1b}'), "colours in a pipe: {err:?}");
}

#[tokio::test]
async fn a_second_sigterm_stops_the_agent_at_once() {
    let mut a = agent_without_server(600).await;
    let _client = fill(&a.socket).await;
    sigterm(&a.child);
    // The first signal is taken: the agent says it is shutting down (and stays stuck on the
    // full spool, for up to 600 s).
    let mut seen = String::new();
    loop {
        let l = tokio::time::timeout(Duration::from_secs(30), a.stderr.next_line())
            .await
            .expect("no shutdown message")
            .unwrap()
            .expect("stderr closed");
        seen.push_str(&l);
        seen.push('\n');
        if l.contains("shutting down") {
            break;
        }
    }
    sigterm(&a.child);
    let status = tokio::time::timeout(Duration::from_secs(10), a.child.wait())
        .await
        .expect("a second SIGTERM did not stop the agent within 10 s")
        .unwrap();
    let err = rest(&mut a.stderr).await;
    assert_eq!(status.code(), Some(130), "{seen}{err}");
    assert!(
        err.contains("logflux-agent: second signal (SIGTERM): stopped at once"),
        "{err}"
    );
}

#[tokio::test]
async fn logs_written_to_a_file_have_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("agent.log");
    let mut s = Stack::new().await;
    // The stack's configuration, as a file.
    let c = &s.agent_config;
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{urls: ['{}'], api_key: '{}'}}\n\
             keys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
             inputs: {{unix_socket: {{path: '{}'}}}}\n\
             spool: {{dir: '{}'}}\n\
             metrics: {{listen: null}}\n",
            c.server.urls[0],
            c.server.api_key,
            c.keys.public_key_file.as_ref().unwrap().display(),
            c.keys.search_key_file.display(),
            dir.path().join("agent.sock").display(),
            dir.path().join("spool").display(),
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("LOGFLUX_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while out.next_line().await.unwrap().expect("exited early") != "ready" {}
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("INFO"), "{text}");
    assert!(text.contains("shutting down"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file: {text:?}"
    );
    s.stop().await;
}
