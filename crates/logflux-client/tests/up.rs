//! `logflux up` as a newcomer runs it: everything starts, the self-test passes, `up.env` is
//! written (0600), Ctrl-C/SIGTERM stops cleanly, and a second run reuses what the first made.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux");

async fn up(dir: &std::path::Path) -> (tokio::process::Child, Vec<String>) {
    let mut child = tokio::process::Command::new(BIN)
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

#[tokio::test]
async fn up_starts_everything_checks_it_and_is_reusable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    // 2048-bit keys made ahead, only to keep the test fast; `up` makes RSA-4096 ones when absent.
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
