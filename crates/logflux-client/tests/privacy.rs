//! What the client sends and what it refuses to show: query words never reach the server in
//! clear (every byte the client sends is captured), proxies from the environment are used,
//! a record that fails its integrity check is named and never printed, and an interrupted
//! export leaves no file that looks complete.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Capture, Stack};
use serde_json::json;

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_never_receives_a_query_word_in_clear() {
    let stack = Stack::start().await;
    stack
        .send_unix(&[json!({
            "payload": "zebracorn failure in quuxinator", "source": "svc-hidden-source",
            "entryType": 1, "logLevel": 3, "metadata": {"tenant-secret-key": "meta-hidden-value"}
        })])
        .await;
    stack.wait_for_entries(2).await;
    let server = stack
        .var("LOGFLUX_SERVER")
        .trim_start_matches("http://")
        .to_owned();
    let cap = Capture::start(server, None).await;
    let out = stack
        .command()
        .env("LOGFLUX_SERVER", format!("http://{}", cap.addr))
        .args([
            "search",
            "zebracorn",
            "Quuxinator",
            // A phrase: its words leave as tokens, the phrase itself not at all.
            "In Quuxinator",
            "--grep",
            "quux.nator",
            "--contains",
            "failure in",
            "--regex",
            "zebra[a-z]+",
            "--source",
            "svc-hidden-source",
            "--meta",
            "tenant-secret-key=meta-hidden-value",
            "--level",
            "crit",
            "--format",
            "ndjson",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The search found the entry through the relay…
    assert!(
        stdout.contains("zebracorn failure in quuxinator"),
        "{stdout}"
    );
    let sent = cap.sent();
    // …the query went through it, with blind tokens…
    assert!(contains(&sent, "POST /v1/query"));
    assert!(contains(&sent, "\"tokens\""));
    // …and nothing of what was asked for, in any case.
    let text = String::from_utf8_lossy(&sent).to_lowercase();
    for secret in [
        "zebracorn",
        "quuxinator",
        "failure in",
        "zebra[a-z]",
        "quux.nator",
        "svc-hidden-source",
        "tenant-secret-key",
        "meta-hidden-value",
        "crit",
    ] {
        assert!(!text.contains(secret), "{secret:?} was sent to the server");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn proxies_integrity_errors_and_interrupted_exports() {
    let stack = Stack::start().await;
    let server_addr = stack
        .var("LOGFLUX_SERVER")
        .trim_start_matches("http://")
        .to_owned();

    // HTTP_PROXY is honoured (the relay then sees absolute-form requests) for a remote server,
    // NO_PROXY too; a loopback server is always reached directly, so a proxy never sees the
    // token in clear.
    let port = server_addr.rsplit_once(':').unwrap().1.to_owned();
    let remote = format!("http://logflux.test:{port}");
    let proxy = Capture::start(server_addr.clone(), None).await;
    let out = stack
        .command()
        .env("HTTP_PROXY", format!("http://{}", proxy.addr))
        .env("LOGFLUX_SERVER", &remote)
        .env("LOGFLUX_ALLOW_HTTP", "1")
        .args(["admin", "apps", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("default"));
    let request = format!("GET {remote}/v1/admin/applications");
    assert!(
        contains(&proxy.sent(), &request),
        "{}",
        String::from_utf8_lossy(&proxy.sent())
    );
    let before = proxy.sent().len();
    let out = stack
        .command()
        .env("HTTP_PROXY", format!("http://{}", proxy.addr))
        .env("NO_PROXY", "logflux.test")
        .env("LOGFLUX_SERVER", &remote)
        .env("LOGFLUX_ALLOW_HTTP", "1")
        .args(["admin", "apps", "list"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "logflux.test resolves nowhere without the proxy"
    );
    assert_eq!(proxy.sent().len(), before, "NO_PROXY bypasses the proxy");
    let out = stack
        .command()
        .env("HTTP_PROXY", format!("http://{}", proxy.addr))
        .args(["admin", "apps", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        proxy.sent().len(),
        before,
        "loopback servers are reached directly"
    );

    // A record altered in storage: named on stderr, exit 2, its plaintext never shown, the
    // other records shown.
    let selftest = stack.damage_selftest_record().await;
    let (code, out, err) = stack.run(&["search", "--format", "ndjson"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.contains("an intact entry"), "{out}");
    assert!(!out.contains(&selftest), "{out}");
    assert!(err.contains("record agent-"), "{err}");
    assert!(err.contains("integrity check failed"), "{err}");
    // Regression: "integrity check failed: integrity check failed: …".
    assert!(
        !err.contains("integrity check failed: integrity check failed"),
        "said once: {err}"
    );
    // The same through the listing's fast path (all entries, oldest first, records opened
    // ahead of the one printed): the damaged record named once, where it is shown.
    let (code, out, err) = stack.run(&["search", "-n", "0", "--format", "ndjson"]);
    assert_eq!(code, 2, "{err}");
    assert!(out.contains("an intact entry"), "{out}");
    assert!(!out.contains(&selftest), "{out}");
    assert_eq!(err.matches("integrity check failed").count(), 1, "{err}");
    // An export with a record that failed holds the others, says what is missing, exits 2,
    // and is private.
    let damaged = stack.tmp.path().join("damaged.ndjson");
    let (code, _, err) = stack.run(&["export", "-O", damaged.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("1 records could not be opened"), "{err}");
    let written = std::fs::read_to_string(&damaged).unwrap();
    assert!(written.contains("an intact entry"), "{written}");
    assert!(!written.contains(&selftest), "{written}");
    assert_eq!(common::mode(&damaged), 0o600);

    // An export interrupted while the server is silent: FILE never appears.
    let silent = Capture::start(server_addr, Some("POST /v1/query")).await;
    let file = stack.tmp.path().join("export.csv");
    let child = tokio::process::Command::from(stack.command())
        .env("LOGFLUX_SERVER", format!("http://{}", silent.addr))
        .args(["export", "--format", "csv", "-O", file.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Wait until the export has asked for the records (and so created its .partial file).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !contains(&silent.sent(), "POST /v1/query") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "export never queried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        !file.exists(),
        "an interrupted export left {}",
        file.display()
    );
    assert!(stack.tmp.path().join("export.csv.partial").exists());
}
