//! What a peer without a credential can make the agent spend: the TCP local API (bounded
//! lines, an authentication deadline, a cap on unauthenticated connections that evicts the
//! oldest, an idle timeout) and the HTTP input (401 and 413 before any body byte is read).
//! Each test uses small configured limits so it runs in seconds.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Client, SECRET, Stack, entry_line};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Longest a test waits for something the agent must do at once.
const PROMPT: Duration = Duration::from_secs(5);

/// The next reply line, or `None` at the end of the stream; fails after `PROMPT`.
async fn reply_within<S>(c: &mut Client<S>, what: &str) -> Option<Value>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncBufReadExt as _;
    let mut line = String::new();
    let n = tokio::time::timeout(PROMPT, c.reader.read_line(&mut line))
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {PROMPT:?}"))
        .unwrap_or(0);
    (n > 0).then(|| serde_json::from_str(&line).unwrap())
}

/// Waits (bounded) until the connection is closed by the agent.
async fn closed_within(s: &mut TcpStream, limit: Duration, what: &str) {
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => panic!("{what}: still open after {limit:?}"),
            Ok(Ok(0) | Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

fn authenticate_line() -> String {
    json!({"version": "1.0", "action": "authenticate", "shared_secret": SECRET}).to_string()
}

fn metric(text: &str, name_and_labels: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits (bounded) until the agent's metrics satisfy `done`.
async fn metrics_until(s: &Stack, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + PROMPT;
    loop {
        let m = s.agent.as_ref().unwrap().metrics_text();
        if done(&m) {
            return;
        }
        assert!(Instant::now() < deadline, "metrics not reached: {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_long_line_before_authentication_is_refused_at_once() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    // 64 KiB without a newline: the old agent kept reading, up to 1 MiB, waiting for the end.
    let mut c = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    let started = Instant::now();
    c.writer.write_all(&[b'x'; 64 * 1024]).await.unwrap();
    let e = reply_within(&mut c, "a 64 KiB unauthenticated line")
        .await
        .expect("an error line before the close");
    assert_eq!(e["error"]["code"], "line_too_long", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("before authentication"),
        "{e}"
    );
    assert!(
        reply_within(&mut c, "the close").await.is_none(),
        "closed after the error"
    );
    assert!(started.elapsed() < PROMPT);
    // A complete 64 KiB line too (the old agent answered invalid_json and stayed open).
    let mut c = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    c.send(&"y".repeat(64 * 1024)).await;
    let e = reply_within(&mut c, "a complete 64 KiB line")
        .await
        .unwrap();
    assert_eq!(e["error"]["code"], "line_too_long", "{e}");
    assert!(reply_within(&mut c, "the close").await.is_none());
    // Authenticated clients keep the full limit.
    let mut c = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    c.send(&authenticate_line()).await;
    assert_eq!(
        reply_within(&mut c, "auth").await.unwrap()["status"],
        "success"
    );
    c.send(&entry_line(&"z".repeat(200 * 1024))).await;
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(
        reply_within(&mut c, "pong").await.unwrap(),
        json!({"status": "pong"})
    );
    s.shipped(1).await;
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_tcp_connections_refused_total{reason=\"pre_auth_line_too_long\"}"
        ),
        2,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_is_closed_at_the_deadline() {
    let mut s = Stack::new().await;
    s.agent_config.inputs.tcp.as_mut().unwrap().auth_timeout_ms = 300;
    s.start_agent().await;
    let mut c = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    let started = Instant::now();
    let e = reply_within(&mut c, "the authentication deadline")
        .await
        .expect("an error line before the close");
    assert_eq!(e["error"]["code"], "auth_required", "{e}");
    assert!(reply_within(&mut c, "the close").await.is_none());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "closed too early: {took:?}"
    );
    // Pings do not extend the deadline.
    let mut c = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    let started = Instant::now();
    loop {
        c.send(r#"{"action":"ping"}"#).await;
        match reply_within(&mut c, "pings before the deadline").await {
            Some(r) if r["status"] == "pong" => {
                // Paced (not a synchronisation): a few dozen pings before the deadline.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Some(r) => {
                assert_eq!(r["error"]["code"], "auth_required", "{r}");
                break;
            }
            None => break,
        }
        assert!(started.elapsed() < PROMPT, "pings kept the connection open");
    }
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_tcp_connections_refused_total{reason=\"auth_timeout\"}"
        ),
        2,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn idle_unauthenticated_connections_do_not_lock_out_a_client() {
    const CAP: usize = 32;
    let mut s = Stack::new().await;
    {
        let t = s.agent_config.inputs.tcp.as_mut().unwrap();
        t.max_unauthenticated = CAP;
        // Long enough that only eviction can close the flood's connections here.
        t.auth_timeout_ms = 60_000;
    }
    s.start_agent().await;
    let addr = s.tcp();
    // Twice the cap of idle connections, from the client's own address (loopback).
    let mut flood = Vec::new();
    for _ in 0..2 * CAP {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    // The oldest ones are closed to make room.
    for (i, f) in flood.iter_mut().take(CAP).enumerate() {
        closed_within(f, PROMPT, &format!("flood connection {i}")).await;
    }
    // The client connects into a full set of unauthenticated connections and is served.
    let mut c = Client::new(TcpStream::connect(addr).await.unwrap());
    c.send(&authenticate_line()).await;
    assert_eq!(
        reply_within(&mut c, "auth during the flood").await.unwrap()["status"],
        "success"
    );
    // The flood goes on; an authenticated connection is never evicted.
    for _ in 0..2 * CAP {
        flood.push(TcpStream::connect(addr).await.unwrap());
    }
    for i in 0..100 {
        c.send(&entry_line(&format!("during-flood-{i}"))).await;
    }
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(
        reply_within(&mut c, "pong during the flood").await.unwrap(),
        json!({"status": "pong"})
    );
    s.shipped(100).await;
    let stored = s.stored_entries().await;
    let payloads: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(payloads.len(), 100, "every entry delivered");
    // Every flood connection is accounted for once the agent has accepted them all: 128 from
    // the flood and the client admitted, the client authenticated, the newest 32 waiting.
    metrics_until(&s, |m| {
        metric(
            m,
            "logflux_agent_tcp_connections_refused_total{reason=\"evicted\"}",
        ) == 3 * CAP as u64
            && metric(
                m,
                "logflux_agent_tcp_connections{state=\"unauthenticated\"}",
            ) == CAP as u64
            && metric(m, "logflux_agent_tcp_connections{state=\"authenticated\"}") == 1
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn an_idle_authenticated_connection_is_closed_after_the_idle_timeout() {
    let mut s = Stack::new().await;
    s.agent_config.inputs.tcp.as_mut().unwrap().idle_timeout_s = 1;
    s.start_agent().await;
    let mut stream = TcpStream::connect(s.tcp()).await.unwrap();
    stream
        .write_all(format!("{}\n", authenticate_line()).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(PROMPT, stream.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("authenticated"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    let started = Instant::now();
    closed_within(&mut stream, PROMPT, "an idle authenticated connection").await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before the idle timeout: {:?}",
        started.elapsed()
    );
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_connections_idle_closed_total{input=\"tcp\"}"
        ),
        1,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn authenticated_connections_beyond_the_cap_are_refused_when_they_authenticate() {
    let mut s = Stack::new().await;
    s.agent_config.inputs.tcp.as_mut().unwrap().max_connections = 1;
    s.start_agent().await;
    let mut first = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    first.send(&authenticate_line()).await;
    assert_eq!(
        reply_within(&mut first, "auth").await.unwrap()["status"],
        "success"
    );
    let mut second = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    second.send(&authenticate_line()).await;
    let e = reply_within(&mut second, "auth beyond the cap")
        .await
        .unwrap();
    assert_eq!(e["error"]["code"], "unavailable", "{e}");
    assert!(reply_within(&mut second, "the close").await.is_none());
    // The first is unaffected, and its slot is free again once it leaves.
    first.send(r#"{"action":"ping"}"#).await;
    assert_eq!(
        reply_within(&mut first, "pong").await.unwrap(),
        json!({"status": "pong"})
    );
    drop(first);
    metrics_until(&s, |m| {
        metric(m, "logflux_agent_tcp_connections{state=\"authenticated\"}") == 0
    })
    .await;
    let mut third = Client::new(TcpStream::connect(s.tcp()).await.unwrap());
    third.send(&authenticate_line()).await;
    assert_eq!(
        reply_within(&mut third, "auth").await.unwrap()["status"],
        "success"
    );
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_tcp_connections_refused_total{reason=\"max_connections\"}"
        ),
        1,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_idle_unix_socket_connection_is_closed_after_the_idle_timeout() {
    let mut s = Stack::new().await;
    s.agent_config
        .inputs
        .unix_socket
        .as_mut()
        .unwrap()
        .idle_timeout_s = 1;
    s.start_agent().await;
    let mut c = tokio::net::UnixStream::connect(s.socket()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(PROMPT, c.read(&mut buf))
        .await
        .expect("closed within the idle timeout")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_connections_idle_closed_total{input=\"unix\"}"
        ),
        1,
        "{m}"
    );
    s.stop().await;
}

const HTTP_TOKEN: &str = "fluent-bit-token-0123456789abcdef01";

/// A request with the token is served (200).
async fn assert_served(s: &Stack, addr: std::net::SocketAddr) {
    let r = s
        .http
        .post(format!("http://{addr}/"))
        .bearer_auth(HTTP_TOKEN)
        .body("{\"log\":\"served\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn http_stack(extra: &str) -> (Stack, std::net::SocketAddr) {
    let mut s = Stack::new().await;
    s.agent_config.inputs.http = Some(
        logflux_config::from_str(
            &format!("{{listen: '127.0.0.1:0', token: '{HTTP_TOKEN}'{extra}}}"),
            "test",
        )
        .unwrap(),
    );
    s.agent_config.validate().unwrap();
    s.start_agent().await;
    let addr = s.agent.as_ref().unwrap().http_addr().unwrap();
    (s, addr)
}

/// Sends request headers and `body` (perhaps shorter than declared, or none) and returns the
/// status line of the response, which must come within `PROMPT`.
async fn status_after(addr: std::net::SocketAddr, headers: &str, body: &str) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(format!("POST / HTTP/1.1\r\nHost: agent\r\n{headers}\r\n{body}").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + PROMPT;
    while !got.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => panic!("no response to {headers:?} within {PROMPT:?}"),
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn http_refuses_before_reading_the_body() {
    let (mut s, addr) = http_stack("").await;
    let big = "Content-Type: application/x-ndjson\r\nContent-Length: 10485760\r\n";
    // No token, a wrong token: 401 as soon as the headers are in.
    let status = status_after(addr, big, "").await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    let status = status_after(
        addr,
        &format!("{big}Authorization: Bearer wrong-token\r\n"),
        "",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    // The right token with a declared body over max_body_bytes (16 MiB): 413 at once.
    let status = status_after(
        addr,
        &format!("Content-Length: 1073741824\r\nAuthorization: Bearer {HTTP_TOKEN}\r\n"),
        "",
    )
    .await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_http_requests_refused_total{reason=\"unauthorized\"}"
        ),
        2,
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "logflux_agent_http_requests_refused_total{reason=\"too_large\"}"
        ),
        1,
        "{m}"
    );
    s.stop().await;
}

#[tokio::test]
async fn http_bodies_are_bounded_in_size_and_number() {
    let (mut s, addr) = http_stack(", max_body_bytes: 65536, max_concurrent_bodies: 1").await;
    // A chunked body (no length) is cut at the limit while it streams.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        format!(
            "POST / HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {HTTP_TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // Exactly the limit, then 16 bytes more: the agent has read everything sent when it
    // answers (so the answer is not lost to a reset).
    let chunk = format!("4000\r\n{}\r\n", "x".repeat(0x4000));
    for _ in 0..4 {
        c.write_all(chunk.as_bytes()).await.unwrap();
    }
    c.write_all(b"10\r\nyyyyyyyyyyyyyyyy\r\n").await.unwrap();
    let mut got = vec![0u8; 1024];
    let n = tokio::time::timeout(PROMPT, c.read(&mut got))
        .await
        .expect("a response while the body still streams")
        .unwrap();
    let text = String::from_utf8_lossy(&got[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    // One body at a time: while one is being read, another waits its turn, then gets 503.
    let mut holder = TcpStream::connect(addr).await.unwrap();
    holder
        .write_all(
            format!(
                "POST / HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer {HTTP_TOKEN}\r\nContent-Length: 1000\r\n\r\n{{\"log\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    loop {
        // Until the holder's request has taken its turn, a complete small request is served.
        let status = status_after(
            addr,
            &format!("Content-Length: 10\r\nAuthorization: Bearer {HTTP_TOKEN}\r\n"),
            "{\"log\":1}\n",
        )
        .await;
        if status.starts_with("HTTP/1.1 503") {
            break;
        }
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    }
    drop(holder);
    // Once it is gone, bodies are read again.
    let r = s
        .http
        .post(format!("http://{addr}/"))
        .bearer_auth(HTTP_TOKEN)
        .body("{\"log\":\"after\"}\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

/// The resident set of this process (agent, server and test client together), in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

/// Memory before, at the peak of and after rounds of floods of unauthenticated connections
/// that each send 4 KiB without a newline, with an authenticated client measured alongside.
/// A measurement, not a check: run with `--ignored --nocapture` (LOGFLUX_FLOOD_CONNS sets the
/// connections per round, 4 000 by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn flood_memory_figures() {
    let conns: usize = std::env::var("LOGFLUX_FLOOD_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    let mut s = Stack::new().await;
    s.start_agent().await;
    let addr = s.tcp();
    let mut c = Client::new(TcpStream::connect(addr).await.unwrap());
    c.send(&authenticate_line()).await;
    assert_eq!(
        reply_within(&mut c, "auth").await.unwrap()["status"],
        "success"
    );
    eprintln!("baseline: {:.1} MiB", rss_mib());
    for round in 1..=3 {
        let mut flood = Vec::with_capacity(conns);
        let mut peak = rss_mib();
        for i in 0..conns {
            let Ok(mut f) = TcpStream::connect(addr).await else {
                continue;
            };
            let _ = f.write_all(&[b'x'; 4096]).await;
            flood.push(f);
            if i % 500 == 0 {
                peak = peak.max(rss_mib());
            }
        }
        // The client is served in the middle of the flood.
        let started = Instant::now();
        c.send(&entry_line(&format!("round-{round}"))).await;
        c.send(r#"{"action":"ping"}"#).await;
        assert_eq!(
            reply_within(&mut c, "pong during the flood").await.unwrap(),
            json!({"status": "pong"})
        );
        let latency = started.elapsed();
        peak = peak.max(rss_mib());
        drop(flood);
        // Closed connections end their tasks; polled, bounded, until the memory settles.
        let mut after = rss_mib();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = rss_mib();
        }
        eprintln!(
            "round {round}: {conns} connections, peak {peak:.1} MiB, after {after:.1} MiB, \
             client entry+ping {latency:?}"
        );
    }
    s.shipped(3).await;
    s.stop().await;
}

/// Memory before, at the peak of and after 100 unauthenticated requests to the HTTP input that
/// each declare a 10 MiB body and send all of it but its last byte. A measurement: run with
/// `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; prints figures"]
async fn http_flood_memory_figures() {
    let (mut s, addr) = http_stack("").await;
    eprintln!("baseline: {:.1} MiB", rss_mib());
    let body = vec![b'x'; 10 * 1024 * 1024 - 1];
    let body = std::sync::Arc::new(body);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let head = "POST / HTTP/1.1\r\nHost: agent\r\nContent-Length: 10485760\r\n\r\n";
            let _ = c.write_all(head.as_bytes()).await;
            // Refused early, the write fails; otherwise the unfinished request is held open.
            let _ = tokio::time::timeout(Duration::from_secs(10), c.write_all(&body)).await;
            c
        }));
    }
    let mut open = Vec::new();
    for t in tasks {
        open.push(t.await.unwrap());
    }
    let peak = rss_mib();
    drop(open);
    let mut after = rss_mib();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = rss_mib();
    }
    eprintln!("100 unauthenticated 10 MiB bodies: peak {peak:.1} MiB, after {after:.1} MiB");
    s.stop().await;
}

#[tokio::test]
async fn http_connections_without_a_request_are_closed() {
    let (mut s, addr) = http_stack("").await;
    // Nothing at all, and headers that never end: both closed after the 10 s header timeout.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut partial = TcpStream::connect(addr).await.unwrap();
    partial
        .write_all(b"POST / HTTP/1.1\r\nHost: agent\r\nX-Slow: ")
        .await
        .unwrap();
    let started = Instant::now();
    let limit = Duration::from_secs(15);
    let (a, b) = tokio::join!(
        closed_within(&mut silent, limit, "a silent connection"),
        closed_within(&mut partial, limit, "unfinished headers"),
    );
    let ((), ()) = (a, b);
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    // Requests on a connection kept alive are still served.
    assert_served(&s, addr).await;
    s.stop().await;
}

#[tokio::test]
async fn http_an_h2_preface_then_silence_is_closed_within_the_header_timeout() {
    let (mut s, addr) = http_stack(", header_timeout_ms: 500").await;
    // HTTP/2 with prior knowledge: the preface, then nothing (not even SETTINGS).
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    closed_within(&mut c, Duration::from_millis(500) + PROMPT, "an h2 preface").await;
    // HTTP/1.1 is served as before.
    assert_served(&s, addr).await;
    s.stop().await;
}

#[tokio::test]
async fn http_connections_over_the_cap_are_closed_at_once() {
    let (mut s, addr) = http_stack(", max_connections: 2").await;
    // Two connections that send nothing hold the two places (until the header timeout).
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The server takes a connection when it accepts it, in order: the third is over the cap.
    for _ in 0..3 {
        let mut over = TcpStream::connect(addr).await.unwrap();
        closed_within(&mut over, PROMPT, "a connection over the cap").await;
    }
    let m = s.agent.as_ref().unwrap().metrics_text();
    assert_eq!(
        metric(
            &m,
            "logflux_agent_http_requests_refused_total{reason=\"max_connections\"}"
        ),
        3,
        "{m}"
    );
    // Once the held connections go, a legitimate request is served (the agent frees a place
    // when it sees the close, so retry until then, bounded).
    drop(held);
    let deadline = Instant::now() + PROMPT;
    loop {
        let r = s
            .http
            .post(format!("http://{addr}/"))
            .bearer_auth(HTTP_TOKEN)
            .body("{\"log\":\"served\"}\n")
            .send()
            .await;
        match r {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "not served: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.stop().await;
}
