//! `logflux up` logs the embedded server's and agent's events on stderr: written to a file,
//! they carry no ANSI colours (issue 12).
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux");

#[tokio::test]
async fn up_logs_written_to_a_file_have_no_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    // 2048-bit keys made ahead, only to keep the test fast.
    let out = std::process::Command::new(BIN)
        .args(["keys", "generate", "--dir"])
        .arg(dir.join("keys"))
        .args(["--bits", "2048"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = tmp.path().join("up.log");
    let mut child = tokio::process::Command::new(BIN)
        .arg("up")
        .arg("--dir")
        .arg(&dir)
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args([
            "--tcp",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--serve",
            "127.0.0.1:0",
        ])
        .env("LOGFLUX_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .expect("ready in time")
            .unwrap()
            .expect("logflux up exited");
        if line.starts_with("ready") {
            break;
        }
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("stops")
        .unwrap();
    assert!(status.success(), "{status}");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file: {text:?}"
    );
}
