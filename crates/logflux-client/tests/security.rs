//! The security campaign over a whole running system (`logflux up`: server, agent, client):
//! - plaintext canaries sent through every path (Unix socket, TCP, SDK ingest) are found
//!   nowhere on disk: not in the server's store or catalog, not in the agent's spool or
//!   checkpoints, not in any log line (debug level);
//! - no secret (access token, API key, shared secret, private key, search key) appears in any
//!   log line or error message, and none reaches the server's disk in clear;
//! - every file holding a secret is private (no group or world access), and no directory the
//!   system made is writable by others;
//! - a bit flipped anywhere in any stored record is detected: the client names the record,
//!   exits 2 and never prints wrong plaintext.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use common::Stack;
use serde_json::json;

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd {
        let p = e.unwrap().path();
        let ft = std::fs::symlink_metadata(&p).unwrap().file_type();
        if ft.is_dir() {
            out.push(p.clone());
            out.extend(walk(&p));
        } else if ft.is_file() {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    logflux_crypto::random_bytes(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bodies' part of a segment (`body{n} footer trailer`, the trailer's first field being
/// the footer's length).
fn body_region(seg: &[u8]) -> std::ops::Range<usize> {
    let t = seg.len() - 13;
    let footer_len = u32::from_le_bytes(seg[t..t + 4].try_into().unwrap()) as usize;
    0..t - footer_len
}

#[tokio::test(flavor = "multi_thread")]
async fn canaries_secrets_permissions_and_bit_flips() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("up.log");
    let stack = Stack::start_logged(&log).await;

    // Canaries through every way in: payload, source and metadata values.
    let c: Vec<String> = (0..6)
        .map(|i| format!("canary{i}x{}", random_hex(8)))
        .collect();
    stack
        .send_unix(&[
            json!({"payload": format!("login ok for {}", c[0]), "source": c[1],
                            "entryType": 1, "logLevel": 6, "metadata": {"user": c[2]}}),
        ])
        .await;
    stack
        .send_tcp(&[
            json!({"payload": format!("payment {}", c[3]), "source": "billing",
                           "entryType": 1, "logLevel": 4}),
        ])
        .await;
    stack
        .send_sdk(
            &[(
                1,
                json!({"message": format!("sdk says {}", c[4]), "ts": "2026-11-21T03:00:00Z",
                       "attributes": {"k": c[5]}}),
            )],
            true,
        )
        .await;
    // The self-test entry of `up`, plus the three above.
    let all = stack.wait_for_entries(4).await;
    let text = serde_json::to_string(&all).unwrap();
    for canary in &c {
        assert!(text.contains(canary.as_str()), "{canary} came back");
    }

    // Some failures, so error paths log too: a wrong token, a wrong key file, a bad query.
    let mut errors = String::new();
    let bad_pat = format!("lf_pat_{}", random_hex(16));
    let out = stack
        .command()
        .env("LOGFLUX_PAT", &bad_pat)
        .args(["search", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    errors.push_str(&String::from_utf8_lossy(&out.stderr));
    let (code, _, err) = stack.run(&["search", "--since", "not-a-time"]);
    assert_eq!(code, 2);
    errors.push_str(&err);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/ingest", stack.var("LOGFLUX_SERVER")))
        .bearer_auth(format!("{}x", stack.var("LOGFLUX_API_KEY")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    errors.push_str(&r.text().await.unwrap());

    // The secrets of this installation.
    let keys = stack.dir.join("keys");
    let private_pem = std::fs::read_to_string(keys.join("private_key.pem")).unwrap();
    let search_key = std::fs::read_to_string(keys.join("search.key")).unwrap();
    let mut secrets: Vec<(String, String)> = vec![
        ("access token".into(), stack.var("LOGFLUX_PAT").to_owned()),
        ("wrong access token".into(), bad_pat.clone()),
        ("API key".into(), stack.var("LOGFLUX_API_KEY").to_owned()),
        (
            "shared secret".into(),
            stack.var("LOGFLUX_SHARED_SECRET").to_owned(),
        ),
        ("search key".into(), search_key.trim().to_owned()),
    ];
    // Every base64 line of the private key is a secret of its own.
    for (i, line) in private_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 32)
        .enumerate()
    {
        secrets.push((format!("private key line {i}"), line.to_owned()));
    }

    // Let the system settle so its logs are complete, then stop it (flushing everything).
    let mut child = stack.child;
    let pid = child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    let logs = std::fs::read(&log).unwrap();
    assert!(
        logs.len() > 1000,
        "the debug log is real ({} bytes)",
        logs.len()
    );

    // 1. Canaries: nowhere on disk, nowhere in the logs.
    let files: Vec<PathBuf> = walk(&stack.dir)
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "lfs")),
        "segments were written"
    );
    for f in files.iter().chain([&log]) {
        let bytes = std::fs::read(f).unwrap();
        for canary in &c {
            assert!(
                !contains(&bytes, canary),
                "plaintext canary {canary} found in {}",
                f.display()
            );
        }
    }

    // 2. Secrets: in no log line, no error message, nowhere on the server's disk.
    let server_files: Vec<&PathBuf> = files
        .iter()
        .filter(|p| p.starts_with(stack.dir.join("server")))
        .collect();
    assert!(!server_files.is_empty());
    for (what, s) in &secrets {
        assert!(!contains(&logs, s), "the {what} appears in the logs");
        assert!(
            !errors.contains(s.as_str()),
            "the {what} appears in an error message"
        );
        for f in &server_files {
            assert!(
                !contains(&std::fs::read(f).unwrap(), s),
                "the {what} is stored in clear in {}",
                f.display()
            );
        }
    }

    // 3. Permissions: a file holding a secret is the owner's alone; directories are not
    //    writable by others.
    let mut private_files = 0;
    for p in walk(&stack.dir) {
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        if p.is_dir() {
            assert_eq!(mode & 0o022, 0, "{} is {mode:o}", p.display());
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        if let Some((what, _)) = secrets.iter().find(|(_, s)| contains(&bytes, s)) {
            assert_eq!(
                mode & 0o077,
                0,
                "{} holds the {what} and is mode {mode:o}",
                p.display()
            );
            private_files += 1;
        }
    }
    assert!(
        private_files >= 4,
        "keys, token file, up.env and the agent's configuration hold secrets ({private_files} found)"
    );

    // 4. Bit flips: restart the system on the same directory, then flip bits across every
    //    stored record, one at a time.
    let stack = Stack::restart(stack.tmp, stack.dir).await;
    // The restarted `up` adds its own self-test entry.
    let all = stack.wait_for_entries(all.len() + 1).await;
    let expected: HashSet<String> = all.iter().map(|e| e["payload"].to_string()).collect();
    let mut segments: Vec<PathBuf> = walk(&stack.dir.join("server"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "lfs"))
        .collect();
    segments.sort();
    let mut flips = 0;
    for seg in &segments {
        let original = std::fs::read(seg).unwrap();
        let bodies = body_region(&original);
        assert!(!bodies.is_empty());
        // Sixteen places spread over the bodies (first and last byte included), one bit each.
        for k in 0..16usize {
            let at = bodies.start + (bodies.len() - 1) * k / 15;
            let mut bytes = original.clone();
            bytes[at] ^= 1 << (k % 8);
            std::fs::write(seg, &bytes).unwrap();
            let (code, out, err) = stack.run(&["search", "--format", "ndjson", "--limit", "0"]);
            assert_eq!(code, 2, "flip at {at} of {}: {err}", seg.display());
            assert!(err.contains("integrity check failed"), "{err}");
            for line in out.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert!(
                    expected.contains(&v["payload"].to_string()),
                    "wrong plaintext shown after a flip: {line}"
                );
            }
            flips += 1;
        }
        std::fs::write(seg, &original).unwrap();
    }
    assert!(flips >= 16);
    // Everything restored: everything readable again.
    let (code, out, err) = stack.run(&["search", "--format", "ndjson", "--limit", "0"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), all.len());
}
