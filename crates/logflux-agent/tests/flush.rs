//! The `flush` action of the local API, and one agent per spool directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Client, Stack, counter, entry_line};
use logflux_agent::Agent;
use serde_json::json;

/// The README's quickstart: entries sent on their own connections, then a search. With a
/// `flush` in between, the search finds them — at once, without waiting out the batch linger.
#[tokio::test]
async fn flush_replies_once_entries_sent_before_on_other_connections_are_at_the_server() {
    let mut s = Stack::new().await;
    // The longest linger there is: only a flush seals these entries before it ends.
    s.agent_config.batch.max_wait_ms = 60_000;
    s.start_agent().await;
    let started = Instant::now();
    // Written and closed at once, as `echo … | nc -U -q0` does: the agent may not have read
    // them yet when the flush arrives; the flush waits for connections accepted before it.
    for payload in ["Hello, LogFlux", "disk almost full on db-1"] {
        let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
        c.send(&entry_line(payload)).await;
        tokio::io::AsyncWriteExt::shutdown(&mut c.writer)
            .await
            .unwrap();
    }
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(r#"{"version":"1.0","action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    // Already at the server, without waiting for anything else.
    let stored: Vec<String> = s
        .stored_entries()
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored.contains(&"Hello, LogFlux".to_owned()), "{stored:?}");
    assert!(stored.contains(&"disk almost full on db-1".to_owned()));
    assert!(started.elapsed() < Duration::from_secs(30));

    // A flush with nothing to seal answers at once; the connection stays usable.
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    // This connection's own entries, sent just before, are in.
    c.send(&entry_line("same connection")).await;
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    assert_eq!(s.stored_entries().await.len(), 3);
    s.stop().await;
}

/// The spool's head also moves past records the server refused for good (dead-lettered):
/// those never reached it, so the flush must not answer "flushed".
#[tokio::test]
async fn flush_does_not_say_flushed_when_the_server_refused_the_records() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(&entry_line("accepted")).await;
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    // The agent's API key is revoked: the server answers 401 to every request, for good.
    let keys: serde_json::Value = s
        .http
        .get(format!("{}/v1/admin/api-keys", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = keys["api_keys"]
        .as_array()
        .or(keys.as_array())
        .and_then(|a| a.first())
        .and_then(|k| k["id"].as_str())
        .unwrap_or_else(|| panic!("no api key id in {keys}"))
        .to_owned();
    let r = s
        .http
        .delete(format!("{}/v1/admin/api-keys/{id}", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    c.send(&entry_line("refused")).await;
    c.send(r#"{"action":"flush"}"#).await;
    let r = c.reply().await.unwrap();
    assert_eq!(
        r["error"]["code"],
        "unavailable",
        "{r} {} {:?}",
        s.agent.as_ref().unwrap().status(),
        s.stored_entries()
            .await
            .into_iter()
            .map(|e| e.payload)
            .collect::<Vec<_>>()
    );
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("1 records were refused"), "{msg}");
    assert!(msg.contains("401"), "{msg}");
    let stored: Vec<String> = s
        .stored_entries()
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(stored, ["accepted"]);
    s.stop().await;
}

#[tokio::test]
async fn flush_over_tcp_needs_authentication() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::TcpStream::connect(s.tcp()).await.unwrap());
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap()["error"]["code"], "auth_required");
    assert!(c.reply().await.is_none(), "closed");

    let mut c = Client::new(tokio::net::TcpStream::connect(s.tcp()).await.unwrap());
    c.send(&format!(
        r#"{{"action":"authenticate","shared_secret":"{}"}}"#,
        common::SECRET
    ))
    .await;
    assert_eq!(c.reply().await.unwrap()["status"], "success");
    c.send(&entry_line("over tcp")).await;
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    assert_eq!(s.stored_entries().await.len(), 1);
    s.stop().await;
}

/// A flush while the server is down says so, within its bound, and the entries stay spooled.
#[tokio::test]
async fn flush_with_the_server_down_says_what_is_pending() {
    let mut s = Stack::new().await;
    // The identity is cached from a first run against the real server.
    s.start_agent().await;
    s.agent.take().unwrap().shutdown().await.unwrap();
    s.agent_config.server.urls = vec!["http://127.0.0.1:9".into()];
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(&entry_line("pending")).await;
    c.send(r#"{"action":"flush"}"#).await;
    // The agent answers within its bound of 30 s (longer than `Client::reply` waits).
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncBufReadExt::read_line(&mut c.reader, &mut line),
    )
    .await
    .unwrap()
    .unwrap();
    let r: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(r["error"]["code"], "unavailable", "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("not acknowledged"), "{msg}");
    assert_eq!(s.agent.as_ref().unwrap().status()["spool"]["records"], 1);
    s.stop().await;
}

/// Two agents on one spool each counted only their own appends to the shared segment and
/// shipped the other's records in place of their own: each entry waited for the next one.
#[tokio::test]
async fn a_second_agent_on_the_same_spool_is_refused_naming_the_pid() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut second = s.agent_config.clone();
    second.inputs.unix_socket.as_mut().unwrap().path = s.dir.path().join("second.sock");
    let e = Agent::start(second.clone()).await.unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains(&format!("in use by process {}", std::process::id())),
        "{text}"
    );
    assert!(text.contains("spool"), "{text}");
    assert!(!s.dir.path().join("second.sock").exists());
    // Stopped, the first one releases it.
    s.agent.take().unwrap().shutdown().await.unwrap();
    let again = Agent::start(second).await.unwrap();
    again.shutdown().await.unwrap();
    s.stop().await;
}

/// An entry followed by the start of the next line, on a connection that stays open: the
/// entry is handed over before the agent waits for the rest, so a flush covers it.
#[tokio::test]
async fn flush_covers_whole_lines_of_a_connection_still_writing_the_next_one() {
    let mut s = Stack::new().await;
    s.agent_config.batch.max_wait_ms = 60_000;
    s.start_agent().await;
    let mut writer = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let partial = format!("{}\n{{\"payload\":\"not yet", entry_line("complete"));
    tokio::io::AsyncWriteExt::write_all(&mut writer, partial.as_bytes())
        .await
        .unwrap();
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(r#"{"action":"flush"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "flushed"}));
    let stored: Vec<String> = s
        .stored_entries()
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(stored, ["complete"]);
    drop(writer);
    s.stop().await;
}

/// A flush that is waiting when the agent is asked to stop answers that the agent is stopping,
/// and then the connection ends, although its client keeps it open: the flush had taken the
/// connection's one notice of the shutdown, so the connection waited for its client (holding
/// its intake, and with it the sealer and the whole stop) until `shutdown_timeout_s` ran out.
#[tokio::test]
async fn a_flush_waiting_at_shutdown_answers_and_its_connection_ends_with_the_agent() {
    let mut s = Stack::new().await;
    // The identity is cached from a first run against the real server.
    s.start_agent().await;
    s.agent.take().unwrap().shutdown().await.unwrap();
    s.agent_config.server.urls = vec!["http://127.0.0.1:9".into()];
    // Only the flush seals the entry; a stop held up by the connection would take 10 minutes.
    s.agent_config.batch.max_wait_ms = 60_000;
    s.agent_config.shutdown_timeout_s = 600;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    c.send(&entry_line("pending")).await;
    c.send(r#"{"action":"flush"}"#).await;
    // Spooled means sealed by this flush, which now waits for the (absent) server.
    let agent = s.agent.take().unwrap();
    let polled = async {
        while agent.status()["spool"]["records"] != 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), polled)
        .await
        .expect("the flush sealed the entry");
    let stopping = tokio::spawn(agent.shutdown_report());
    let r = c.reply().await.unwrap();
    assert_eq!(r["error"]["code"], "unavailable", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains("stopping"),
        "{r}"
    );
    // The client does not close its end; the agent does.
    assert!(c.reply().await.is_none(), "the connection ended");
    let report = tokio::time::timeout(Duration::from_secs(60), stopping)
        .await
        .expect("the agent stopped without waiting out shutdown_timeout_s")
        .unwrap()
        .unwrap();
    assert_eq!(report.not_spooled, 0);
    drop(c);
    s.stop().await;
}

/// A client that sends bad lines and never reads the error replies: once the socket's buffer is
/// full a reply waits, and without an idle timeout (the default) it had no deadline, so the
/// connection held its intake, the sealer and the agent's stop until `shutdown_timeout_s`.
#[tokio::test]
async fn a_client_that_never_reads_its_replies_does_not_hold_the_stop() {
    use tokio::io::AsyncWriteExt as _;
    let mut s = Stack::new().await;
    s.agent_config.shutdown_timeout_s = 600;
    s.start_agent().await;
    let stream = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let (read, mut write) = stream.into_split();
    const LINES: u64 = 100_000;
    let writer = tokio::spawn(async move {
        let bad = "not json\n".repeat(1000);
        for _ in 0..LINES / 1000 {
            if write.write_all(bad.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    // The agent takes lines until its replies fill the socket: then its count of refusals
    // stops rising (nothing else tells this from the outside).
    let agent = s.agent.take().unwrap();
    let name = "logflux_agent_entries_rejected_total";
    let stalled = async {
        let (mut last, mut unchanged) = (0, 0);
        while unchanged < 5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = counter(&agent, name);
            unchanged = if now > 0 && now == last {
                unchanged + 1
            } else {
                0
            };
            last = now;
        }
        last
    };
    let refused = tokio::time::timeout(Duration::from_secs(60), stalled)
        .await
        .expect("the agent refused the bad lines");
    assert!(refused < LINES, "the replies never filled the socket");
    let report = tokio::time::timeout(Duration::from_secs(60), agent.shutdown_report())
        .await
        .expect("the agent stopped without waiting out shutdown_timeout_s")
        .unwrap();
    assert_eq!(report.not_spooled, 0);
    writer.abort();
    drop(read);
    s.stop().await;
}
