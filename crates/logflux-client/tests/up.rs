//! `logflux up` as a newcomer runs it: everything starts, the self-test passes, `up.env` is
//! written (0600), Ctrl-C/SIGTERM stops cleanly, and a second run reuses what the first made.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux");

async fn up(dir: &std::path::Path) -> (tokio::process::Child, Vec<String>) {
    up_with_path(dir, None).await
}

/// `logflux up` with `PATH` set to `path` (when given).
async fn up_with_path(
    dir: &std::path::Path,
    path: Option<&str>,
) -> (tokio::process::Child, Vec<String>) {
    let mut cmd = tokio::process::Command::new(BIN);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let mut child = cmd
        .args([
            "up",
            "--dir",
            dir.to_str().unwrap(),
            "--socket",
            dir.join("agent.sock").to_str().unwrap(),
            "--tcp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--serve",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("ready in time")
            .unwrap()
            .expect("logflux up exited");
        let ready = line.starts_with("ready");
        seen.push(line);
        if ready {
            break;
        }
    }
    (child, seen)
}

async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// 2048-bit keys made ahead in DIR/keys, only to keep the tests fast; `up` makes RSA-4096
/// ones when absent.
fn small_keys(dir: &std::path::Path) {
    let out = std::process::Command::new(BIN)
        .args([
            "keys",
            "generate",
            "--dir",
            dir.join("keys").to_str().unwrap(),
            "--bits",
            "2048",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn up_starts_everything_checks_it_and_is_reusable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    small_keys(&dir);

    let (child, lines) = up(&dir).await;
    let all = lines.join("\n");
    assert!(all.contains("self-test: an entry went app → agent (sealed) → server (stored encrypted) → here (decrypted)"), "{all}");
    // The Grafana data source settings to paste.
    assert!(
        all.contains("Grafana") && all.contains("Basic authentication"),
        "{all}"
    );
    let env_path = dir.join("up.env");
    assert_eq!(
        std::fs::metadata(&env_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(dir.join("up.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let env = std::fs::read_to_string(&env_path).unwrap();
    for var in [
        "LOGFLUX_SERVER=http://127.0.0.1:",
        "LOGFLUX_API_KEY=eu-lf_",
        "LOGFLUX_AGENT_SOCKET=",
        "LOGFLUX_AGENT_TCP=127.0.0.1:",
        "LOGFLUX_SHARED_SECRET=",
        "LOGFLUX_CONFIG=",
        "LOGFLUX_PAT=lf_pat_",
        "LOGFLUX_SERVE_URL=http://127.0.0.1:",
        "LOGFLUX_SERVE_TOKEN=",
    ] {
        assert!(
            env.contains(&format!("export {var}")),
            "{var} missing from {env}"
        );
    }
    // The printed instructions work: an entry over the socket is accepted (a ping answers).
    let mut s = tokio::net::UnixStream::connect(dir.join("agent.sock"))
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut s, b"{\"payload\":\"Hello\",\"source\":\"my-app\",\"entryType\":1,\"logLevel\":7}\n{\"action\":\"ping\"}\n").await.unwrap();
    let mut reply = String::new();
    tokio::io::BufReader::new(s)
        .read_line(&mut reply)
        .await
        .unwrap();
    assert_eq!(reply.trim(), "{\"status\":\"pong\"}");
    let state_before = std::fs::read_to_string(dir.join("up.json")).unwrap();
    stop(child).await;

    // A second run reuses the keys, tenant and credentials.
    let (child, lines) = up(&dir).await;
    assert!(
        lines.iter().any(|l| l.starts_with("self-test")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.contains("creating an RSA-4096")));
    assert_eq!(
        std::fs::read_to_string(dir.join("up.json")).unwrap(),
        state_before
    );
    stop(child).await;
}

/// A second `up` on a directory in use, with other ports, used to start: it shared the catalog,
/// the objects and the agent's spool with the first and rewrote up.env.
#[tokio::test]
async fn a_second_up_on_the_same_dir_is_refused_naming_the_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    small_keys(&dir);
    let (child, _) = up(&dir).await;
    let pid = child.id().unwrap();
    let env_before = std::fs::read_to_string(dir.join("up.env")).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(BIN)
            .args([
                "up",
                "--dir",
                dir.to_str().unwrap(),
                "--socket",
                dir.join("second.sock").to_str().unwrap(),
                "--tcp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ])
            .output(),
    )
    .await
    .expect("refused at once")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by process {pid}")),
        "{stderr}"
    );
    assert!(stderr.contains("--dir"), "{stderr}");
    assert!(!dir.join("second.sock").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("up.env")).unwrap(),
        env_before
    );
    stop(child).await;
    // Free again once the first one stopped.
    let (child, _) = up(&dir).await;
    stop(child).await;
}

/// up.env left the PATH line out when `logflux` was on PATH where `up` ran: a fresh shell
/// sourcing it then found no `logflux`.
#[tokio::test]
async fn up_env_puts_logflux_on_path_even_when_it_already_was() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    small_keys(&dir);
    let exe = std::path::Path::new(BIN).canonicalize().unwrap();
    let bin_dir = exe.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (child, _) = up_with_path(&dir, Some(&path)).await;
    let env = std::fs::read_to_string(dir.join("up.env")).unwrap();
    assert!(
        env.contains(&format!("export PATH='{}':\"$PATH\"", bin_dir.display())),
        "{env}"
    );
    // A fresh shell without it on PATH finds this very binary after sourcing up.env.
    let out = std::process::Command::new("/bin/sh")
        .args(["-c", ". \"$1\" && command -v logflux", "sh"])
        .arg(dir.join("up.env"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::path::Path::new(String::from_utf8_lossy(&out.stdout).trim())
            .canonicalize()
            .unwrap(),
        exe
    );
    stop(child).await;
}
