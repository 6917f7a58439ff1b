//! Faults: plaintext never on disk; a server that goes away and comes back; a full spool.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::{Client, Stack, entry_line};
use logflux_server::Server;
use serde_json::json;

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn find(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    files(dir)
        .into_iter()
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .collect()
}

#[tokio::test]
async fn plaintext_canaries_never_reach_the_spool_or_the_server() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let canary = format!("CANARY{}", ulid::Ulid::new());
    let secret_meta = format!("SECRETMETA{}", ulid::Ulid::new());
    let source = format!("SOURCE{}", ulid::Ulid::new());
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    for i in 0..200 {
        c.send(&json!({"payload": format!("login ok {canary} #{i}"), "source": source, "entryType": 1, "logLevel": 6,
                       "metadata": {"password": secret_meta}}).to_string()).await;
    }
    c.send(r#"{"action":"ping"}"#).await;
    c.reply().await.unwrap();
    s.shipped(200).await;
    // The entries did arrive and open with the private key...
    let stored = s.stored_entries().await;
    assert_eq!(stored.len(), 200);
    assert!(stored.iter().all(|e| e.payload.contains(&canary)
        && e.metadata["password"] == secret_meta
        && e.source == source));
    s.stop().await;
    // ...yet no file of the agent (spool, keys, dead letters) or of the server (objects, SQLite
    // catalog and WAL) holds any of them in clear.
    for needle in [&canary, &secret_meta, &source] {
        let hits = find(s.dir.path(), needle.as_bytes());
        assert!(hits.is_empty(), "{needle} found in {hits:?}");
    }
    // The search finds nothing by plaintext either: the spool and server have data at all.
    assert!(!files(&s.dir.path().join("spool")).is_empty());
    assert!(!files(&s.dir.path().join("server/objects")).is_empty());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn server_outage_then_everything_arrives_once() {
    let mut s = Stack::new().await;
    // Move the server to a fixed port, so it can come back on the same address.
    let port = free_port();
    s.server.take().unwrap().shutdown().await.unwrap();
    s.server_config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    s.base = format!("http://127.0.0.1:{port}");
    s.agent_config.server.urls = vec![s.base.clone()];
    s.start_agent().await;

    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    for i in 0..100 {
        c.send(&entry_line(&format!("before {i}"))).await;
    }
    c.send(r#"{"action":"ping"}"#).await;
    c.reply().await.unwrap();
    s.shipped(100).await;

    // The server goes away; entries keep coming and wait in the spool.
    s.server.take().unwrap().shutdown().await.unwrap();
    for i in 0..300 {
        c.send(&entry_line(&format!("during {i}"))).await;
    }
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(
        c.reply().await.unwrap(),
        json!({"status":"pong"}),
        "the agent keeps accepting"
    );
    // Wait until the agent has tried and failed at least once (an event on its metrics).
    let agent = s.agent.as_ref().unwrap();
    let mut tries = 0;
    while !agent
        .metrics_text()
        .lines()
        .any(|l| l.starts_with("logflux_agent_retries_total") && !l.ends_with(" 0"))
    {
        tries += 1;
        assert!(tries < 600, "no retry was recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        agent.status()["spool"]["records"].as_u64().unwrap() > 0,
        "held in the spool"
    );

    // It comes back: everything arrives, once.
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    if tokio::time::timeout(
        Duration::from_secs(60),
        s.agent.as_ref().unwrap().wait_shipped(400),
    )
    .await
    .is_err()
    {
        panic!(
            "not delivered after the server returned: {}",
            s.agent.as_ref().unwrap().status()
        );
    }
    let stored = s.stored_entries().await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for e in &stored {
        *counts.entry(e.payload.clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), 400, "none lost");
    assert!(counts.values().all(|&n| n == 1), "none twice");
    assert_eq!(s.agent.as_ref().unwrap().status()["spool"]["records"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_full_spool_answers_queue_full_and_recovers() {
    let mut s = Stack::new().await;
    let port = free_port();
    s.server.take().unwrap().shutdown().await.unwrap();
    s.server_config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    s.base = format!("http://127.0.0.1:{port}");
    s.agent_config.server.urls = vec![s.base.clone()];
    s.agent_config.spool.max_bytes = 1024 * 1024;
    s.agent_config.spool.segment_bytes = 128 * 1024;
    s.start_agent().await;
    // Learn the identity while the server is up, then take it away.
    s.server.take().unwrap().shutdown().await.unwrap();

    // Incompressible payloads fill the 1 MiB spool quickly.
    let mut accepted = HashSet::new();
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    let mut full = false;
    for i in 0..4000 {
        // xorshift noise: incompressible, so the spool fills as fast as the bytes say.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
        let noise: String = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        let payload = format!("{i} {noise}");
        c.send(&entry_line(&payload)).await;
        c.send(r#"{"action":"ping"}"#).await;
        let r = c.reply().await.unwrap();
        if r["error"]["code"] == "queue_full" {
            full = true;
            // The pong still follows.
            assert_eq!(c.reply().await.unwrap(), json!({"status":"pong"}));
            break;
        }
        assert_eq!(r, json!({"status":"pong"}));
        accepted.insert(i);
    }
    assert!(full, "the spool filled up");
    let agent = s.agent.as_ref().unwrap();
    assert!(agent.metrics_text().contains("reason=\"queue_full\""));

    // Space returns when the server does: what was accepted arrives, and new entries go in.
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    s.shipped(accepted.len() as u64).await;
    c.send(&entry_line("after recovery")).await;
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status":"pong"}));
    s.shipped(accepted.len() as u64 + 1).await;
    let stored = s.stored_entries().await;
    let ids: HashSet<usize> = stored
        .iter()
        .filter_map(|e| e.payload.split(' ').next()?.parse().ok())
        .collect();
    assert!(accepted.is_subset(&ids), "every accepted entry arrived");
    assert!(stored.iter().any(|e| e.payload == "after recovery"));
    s.stop().await;
}
