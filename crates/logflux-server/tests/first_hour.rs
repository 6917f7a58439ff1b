//! A newcomer's first hour with the server binary (issue 12): `check-config` looks at the TLS
//! files it names (`~/` expanded), and logs written to a file carry no colours.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_logflux-server");

#[test]
fn check_config_refuses_missing_and_open_tls_files_with_their_paths() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("key.pem"), "not a key").unwrap();
    std::fs::set_permissions(
        home.path().join("key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let config = home.path().join("server.yaml");
    std::fs::write(
        &config,
        "tls: {cert_file: ~/cert.pem, key_file: ~/key.pem}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--data-dir"])
        .arg(home.path().join("data"))
        .arg("check-config")
        .env("HOME", home.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}{err}");
    assert!(!stdout.contains("configuration is valid"), "{stdout}");
    let d = home.path().display();
    assert!(
        err.contains(&format!("tls.cert_file: {d}/cert.pem: ")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "tls.key_file: TLS key file {d}/key.pem is accessible by group or others"
        )),
        "{err}"
    );
}

#[test]
fn logs_written_to_a_file_have_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "serve"])
        .env("LOGFLUX_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("LOGFLUX_SERVER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("listening on "), "{line:?}");
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    // Awaits the exit, bounded: a hung server fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server did not exit within 60 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    assert!(text.contains("INFO"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file: {text:?}"
    );
}
