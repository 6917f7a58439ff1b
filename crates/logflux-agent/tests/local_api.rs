//! The local API over both sockets with real clients, and delivery to a real server.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{Client, SECRET, Stack, entry_line};
use serde_json::json;

#[tokio::test]
async fn unix_socket_conformance_and_exact_delivery() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(s.socket()).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    // Entries get no reply: the next line a client reads answers its ping.
    c.send(&entry_line("first")).await;
    c.send(r#"{"version":"1.0","entries":[{"payload":"b1","source":"s","entryType":1,"logLevel":7},{"payload":"b2","source":"s","entryType":2,"logLevel":8}]}"#).await;
    c.send(r#"{"id":"5f0c6a43-6f7b-4a52-9d1e-0e1c7f3c9a11","message":"legacy","source":"c-sdk","entry_type":1,"level":3,"timestamp":1724083200,"labels":[]}"#).await;
    c.send(r#"{"version":"1.0","action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "pong"}));
    // Errors get exactly one line, and the connection stays open.
    c.send(r#"{"payload":"x","source":"s","entryType":1,"logLevel":9}"#)
        .await;
    let e = c.reply().await.unwrap();
    assert_eq!(e["error"]["code"], "invalid_entry");
    assert!(e["error"]["message"].as_str().unwrap().contains("logLevel"));
    c.send("not json").await;
    assert_eq!(c.reply().await.unwrap()["error"]["code"], "invalid_json");
    let huge = format!(
        r#"{{"payload":"{}","source":"s","entryType":1,"logLevel":7}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    c.send(&huge).await;
    assert_eq!(c.reply().await.unwrap()["error"]["code"], "line_too_long");
    c.send("").await;
    c.send(&entry_line("last")).await;
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "pong"}));

    let agent = s.agent.as_ref().unwrap();
    s.shipped(5).await;
    let stored = s.stored_entries().await;
    let payloads: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(
        payloads,
        HashSet::from(["first", "b1", "b2", "legacy", "last"])
    );
    let legacy = stored.iter().find(|e| e.payload == "legacy").unwrap();
    assert_eq!(legacy.level.number(), 4, "legacy level 3 is logLevel 4");
    assert_eq!(
        legacy.metadata["id"],
        "5f0c6a43-6f7b-4a52-9d1e-0e1c7f3c9a11"
    );
    assert!(
        stored
            .iter()
            .all(|e| e.metadata.contains_key("host") && e.metadata.contains_key("agent_id")),
        "enriched"
    );
    let first = stored.iter().find(|e| e.payload == "first").unwrap();
    assert_eq!(first.metadata["k"], "v");
    let metrics = agent.metrics_text();
    assert!(
        metrics.contains("logflux_agent_entries_shipped_total 5"),
        "{metrics}"
    );
    assert!(metrics.contains("reason=\"invalid_entry\""), "{metrics}");
    assert!(metrics.contains("reason=\"line_too_long\""), "{metrics}");
    s.stop().await;
}

#[tokio::test]
async fn tcp_requires_the_shared_secret() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let addr = s.tcp();
    // Entries before authenticating: the error line, then the connection closes.
    let mut c = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    c.send(&entry_line("sneaky")).await;
    let e = c.reply().await.unwrap();
    assert_eq!(e["error"]["code"], "auth_required");
    assert!(c.reply().await.is_none(), "closed");
    // A wrong secret: error with a top-level message, then closed.
    let mut c = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    c.send(r#"{"version":"1.0","action":"authenticate","shared_secret":"wrong-secret-wrong-secret-wrong-secret"}"#).await;
    let e = c.reply().await.unwrap();
    assert_eq!(e["status"], "error");
    assert!(e["message"].is_string());
    assert!(c.reply().await.is_none());
    // The right one.
    let mut c = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    c.send(&json!({"version":"1.0","action":"authenticate","shared_secret": SECRET}).to_string())
        .await;
    assert_eq!(
        c.reply().await.unwrap(),
        json!({"status":"success","message":"authenticated"})
    );
    c.send(&entry_line("over tcp")).await;
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status":"pong"}));
    // The C SDK: the secret inside each entry, no authenticate message; it is never stored.
    let mut c = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    c.send(&json!({"message":"from c","source":"c-sdk","entry_type":1,"level":6,"timestamp":1724083200,"shared_secret": SECRET}).to_string()).await;
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status":"pong"}));
    let mut bad = Client::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    bad.send(r#"{"message":"x","level":6,"shared_secret":"nope"}"#)
        .await;
    assert_eq!(bad.reply().await.unwrap()["error"]["code"], "auth_failed");

    s.shipped(2).await;
    let stored = s.stored_entries().await;
    let payloads: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads, HashSet::from(["over tcp", "from c"]));
    for e in &stored {
        assert!(
            !e.metadata.values().any(|v| v.contains(SECRET)),
            "the secret is stripped"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn many_concurrent_clients() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut tasks = Vec::new();
    for c in 0..200 {
        let path = s.socket();
        tasks.push(tokio::spawn(async move {
            let mut cl = Client::new(tokio::net::UnixStream::connect(path).await.unwrap());
            for i in 0..10 {
                cl.send(&entry_line(&format!("c{c}-{i}"))).await;
            }
            cl.send(r#"{"action":"ping"}"#).await;
            assert_eq!(cl.reply().await.unwrap(), json!({"status":"pong"}));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    s.shipped(2000).await;
    let stored = s.stored_entries().await;
    let distinct: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(stored.len(), 2000, "none twice");
    assert_eq!(distinct.len(), 2000, "none lost");
    s.stop().await;
}

#[tokio::test]
async fn entries_followed_by_a_close_are_not_lost() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    for c in 0..20 {
        // Write and close at once, without waiting for any reply (fire-and-forget SDKs).
        let mut stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
        let lines: String = (0..5)
            .map(|i| format!("{}\n", entry_line(&format!("close-{c}-{i}"))))
            .collect();
        tokio::io::AsyncWriteExt::write_all(&mut stream, lines.as_bytes())
            .await
            .unwrap();
        drop(stream);
    }
    s.shipped(100).await;
    let stored = s.stored_entries().await;
    let distinct: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(distinct.len(), 100);
    s.stop().await;
}
