//! `logflux keys` as a user runs it.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

fn logflux(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_logflux"))
        .args(args)
        .output()
        .unwrap()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn generate_writes_keys_with_safe_modes_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/keys");
    let d = dir.to_str().unwrap();
    let out = logflux(&["keys", "generate", "--dir", d, "--bits", "2048"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("private_key.pem")), 0o600);
    assert_eq!(mode(&dir.join("public_key.pem")), 0o644);
    assert_eq!(mode(&dir.join("search.key")), 0o600);
    let search = std::fs::read_to_string(dir.join("search.key")).unwrap();
    assert_eq!(search.trim().len(), 64);
    assert!(
        !stdout.contains(search.trim()),
        "the search key is never printed"
    );

    // The printed fingerprint is what `keys fingerprint` says for both files.
    let fp_line = stdout
        .lines()
        .find(|l| l.starts_with("fingerprint "))
        .unwrap();
    let fp = fp_line.trim_start_matches("fingerprint ");
    for f in ["public_key.pem", "private_key.pem"] {
        let out = logflux(&["keys", "fingerprint", dir.join(f).to_str().unwrap()]);
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), fp);
    }

    let before = std::fs::read(dir.join("private_key.pem")).unwrap();
    let again = logflux(&["keys", "generate", "--dir", d, "--bits", "2048"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));
    assert_eq!(std::fs::read(dir.join("private_key.pem")).unwrap(), before);
}

#[test]
fn generate_refuses_an_open_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("open");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = logflux(&[
        "keys",
        "generate",
        "--dir",
        dir.to_str().unwrap(),
        "--bits",
        "2048",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 700"), "{err}");
    assert!(!dir.join("private_key.pem").exists());
}

#[test]
fn default_directory_follows_xdg_config_home() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_logflux"))
        .args(["keys", "generate", "--bits", "2048"])
        .env("XDG_CONFIG_HOME", tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tmp.path().join("logflux/keys/private_key.pem").exists());
}

#[test]
fn fingerprint_refuses_a_loose_private_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("k");
    assert!(
        logflux(&[
            "keys",
            "generate",
            "--dir",
            dir.to_str().unwrap(),
            "--bits",
            "2048"
        ])
        .status
        .success()
    );
    let key = dir.join("private_key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = logflux(&["keys", "fingerprint", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("chmod 600 {}", key.display())));
    let missing = logflux(&["keys", "fingerprint", "/nonexistent.pem"]);
    assert_eq!(missing.status.code(), Some(2));
}
