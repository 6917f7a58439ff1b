//! Live tails end when their token is revoked or expires, a reader that takes nothing is ended
//! as a slow consumer without losing a record on resume, and a token holds only so many tails.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, config_for, tenant_key};
use futures_util::StreamExt as _;
use logflux_crypto::{Dek, SealingKey, seal_sdk_part, wrap_dek};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// An application, its API key and a sealing key registered for it.
async fn producer(t: &TestServer) -> (String, String, SealingKey) {
    let (_, api_key) = t.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let key_id = t
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    (api_key, key_id, SealingKey::new(&dek))
}

/// Ingests one request of `parts` records of about `size` bytes each; returns their nonces
/// (a record's nonce identifies it in the tail's record lines).
async fn ingest(
    t: &TestServer,
    (api_key, key_id, key): &(String, String, SealingKey),
    parts: usize,
    size: usize,
) -> Vec<String> {
    // Sealed bodies are random bytes: a long random boundary never occurs in them.
    let mut boundary = [0u8; 16];
    logflux_crypto::random_bytes(&mut boundary).unwrap();
    let mut w = Writer::new(hex::encode(boundary));
    let mut nonces = Vec::new();
    for i in 0..parts {
        // Hex of random bytes: gzip cannot shrink it much, so the record keeps its size.
        let mut noise = vec![0u8; size / 2];
        logflux_crypto::random_bytes(&mut noise).unwrap();
        let msg = json!({"message": format!("{i} {}", hex::encode(noise))}).to_string();
        let (nonce, body) = seal_sdk_part(key, msg.as_bytes(), true).unwrap();
        let n64 = B64.encode(nonce);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Key-ID", key_id),
                ("X-LF-Nonce", &n64),
            ],
            &body,
        );
        nonces.push(n64);
    }
    t.ingest_accepted(api_key, w).await;
    nonces
}

/// A token with the read scope (and its id), created through the admin API.
async fn read_token(t: &TestServer) -> (String, String) {
    let v = t
        .admin_post(
            "/v1/admin/tokens",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    let secret = v["token"]
        .as_str()
        .or_else(|| v["data"]["token"].as_str())
        .unwrap_or_else(|| panic!("no token in {v}"))
        .to_owned();
    let me: Value = t
        .http
        .get(format!("{}/v1/me", t.base))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (secret, me["token_id"].as_str().unwrap().to_owned())
}

/// The NDJSON lines of an open tail, read as they come.
struct Lines {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Lines {
    async fn open(t: &TestServer, token: &str, body: Value) -> Lines {
        let r = t
            .http
            .post(format!("{}/v1/tail", t.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        Lines {
            stream: r.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next line; `None` when the stream ended. The timeout guards against a hang, it
    /// does not synchronise: the line is awaited as an event.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            match tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("no line from the tail in time")
            {
                Some(chunk) => self.buf.extend_from_slice(&chunk.unwrap()),
                None => return None,
            }
        }
    }

    /// Lines up to and including the first `end` line (none after it: the stream closes).
    async fn until_end(&mut self, within: Duration) -> (Vec<Value>, Value) {
        let started = Instant::now();
        let mut before = Vec::new();
        loop {
            let left = within.saturating_sub(started.elapsed());
            let line = self
                .next(left)
                .await
                .expect("the stream closed without an end line");
            if line["type"] == "end" {
                assert!(
                    self.next(Duration::from_secs(10)).await.is_none(),
                    "nothing follows the end line"
                );
                return (before, line);
            }
            before.push(line);
        }
    }
}

fn short_checks(dir: &std::path::Path) -> logflux_server::ServerConfig {
    let mut c = config_for(dir);
    c.http.tail.credential_check = Duration::from_millis(200);
    c
}

#[tokio::test]
async fn a_tail_ends_when_its_token_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let config = short_checks(dir.path());
    let t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    let (token, token_id) = read_token(&t).await;
    let mut lines = Lines::open(&t, &token, json!({})).await;
    assert_eq!(
        lines.next(Duration::from_secs(10)).await.unwrap()["type"],
        "heartbeat"
    );
    ingest(&t, &p, 1, 100).await;
    assert_eq!(
        lines.next(Duration::from_secs(10)).await.unwrap()["type"],
        "record"
    );

    let r = t
        .http
        .delete(format!("{}/v1/admin/tokens/{token_id}", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (before, end) = lines.until_end(Duration::from_secs(10)).await;
    assert!(before.iter().all(|l| l["type"] != "record"), "{before:?}");
    assert_eq!(end["reason"], "token_revoked", "{end}");
    assert!(end["after_segment"].as_i64().is_some(), "{end}");
    assert_eq!(
        t.metric("logflux_server_tail_ended_total{reason=\"token_revoked\"}")
            .await,
        1
    );
    // The stream's place was given back.
    assert_eq!(t.metric("logflux_server_tail_streams").await, 0);
}

#[tokio::test]
async fn a_tail_ends_when_its_token_is_revoked_on_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = short_checks(dir.path());
    let t = TestServer::start_with(dir, config).await;
    let (token, token_id) = read_token(&t).await;
    let mut lines = Lines::open(&t, &token, json!({})).await;
    assert_eq!(
        lines.next(Duration::from_secs(10)).await.unwrap()["type"],
        "heartbeat"
    );
    // Revoked in the catalog behind this server's back, as another server of a scale-out
    // deployment does: the periodic check finds it.
    let catalog = logflux_server::catalog::Catalog::connect(&t.config.catalog_url)
        .await
        .unwrap();
    let tenant = catalog.tenant_by_name("acme").await.unwrap();
    catalog
        .revoke_access_token(&tenant.id, &token_id)
        .await
        .unwrap();
    let (_, end) = lines.until_end(Duration::from_secs(10)).await;
    assert_eq!(end["reason"], "token_revoked", "{end}");
    catalog.close().await;
}

#[tokio::test]
async fn a_tail_ends_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    // Only expiry can end this stream in time: the periodic check is far away.
    config.http.tail.credential_check = Duration::from_secs(300);
    let t = TestServer::start_with(dir, config).await;
    let catalog = logflux_server::catalog::Catalog::connect(&t.config.catalog_url)
        .await
        .unwrap();
    let tenant = catalog.tenant_by_name("acme").await.unwrap();
    let token = "lf_pat_expiresveryverysoon0123456789abcdef";
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let expires = logflux_proto::timefmt::now_ns() + 1_500_000_000;
    catalog
        .create_access_token(
            "pat_short",
            &tenant.id,
            "short",
            hash.as_ref(),
            "lf_pat_expi",
            "read",
            expires,
        )
        .await
        .unwrap();
    let mut lines = Lines::open(&t, token, json!({})).await;
    let (_, end) = lines.until_end(Duration::from_secs(10)).await;
    assert_eq!(end["reason"], "token_expired", "{end}");
    assert!(
        logflux_proto::timefmt::now_ns() >= expires,
        "not before the expiry time"
    );
    catalog.close().await;
}

/// A raw HTTP/1.1 connection with a tiny receive buffer, so that a reader that stops reading
/// pushes back on the server at once.
struct RawTail {
    sock: tokio::net::TcpStream,
    raw: Vec<u8>,
}

impl RawTail {
    async fn open(t: &TestServer, token: &str) -> RawTail {
        let addr = t.server.as_ref().unwrap().local_addr();
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut sock = sock.connect(addr).await.unwrap();
        let body = "{}";
        sock.write_all(
            format!(
                "POST /v1/tail HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
                 content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut raw = RawTail {
            sock,
            raw: Vec::new(),
        };
        // The status line and the first heartbeat, then nothing more is read.
        while !raw.body().0.contains(&b'\n') {
            raw.read_some().await;
        }
        assert!(raw.raw.starts_with(b"HTTP/1.1 200"), "{:?}", raw.head());
        raw
    }

    async fn read_some(&mut self) -> usize {
        let mut chunk = vec![0u8; 64 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.sock.read(&mut chunk))
            .await
            .expect("the tail sent nothing in time")
            .unwrap();
        self.raw.extend_from_slice(&chunk[..n]);
        n
    }

    fn head(&self) -> String {
        String::from_utf8_lossy(&self.raw[..self.raw.len().min(200)]).into_owned()
    }

    /// The chunked body received so far, and whether its last chunk came.
    fn body(&self) -> (Vec<u8>, bool) {
        let Some(start) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return (Vec::new(), false);
        };
        let mut rest = &self.raw[start + 4..];
        let mut body = Vec::new();
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let len =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
            if len == 0 {
                return (body, true);
            }
            if rest.len() < eol + 2 + len + 2 {
                break;
            }
            body.extend_from_slice(&rest[eol + 2..eol + 2 + len]);
            rest = &rest[eol + 2 + len + 2..];
        }
        (body, false)
    }
}

#[tokio::test]
async fn a_tail_that_never_reads_is_ended_as_a_slow_consumer_and_resumes_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    config.http.tail.buffer_bytes = 64 * 1024;
    config.http.tail.slow_consumer_timeout = Duration::from_millis(300);
    let t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    let mut raw = RawTail::open(&t, &t.admin).await;

    // Commit far more than the stream's buffer (and the sockets' buffers) while it reads
    // nothing, until the server gives up on it.
    let mut sent: HashSet<String> = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while t
        .metric("logflux_server_tail_ended_total{reason=\"slow_consumer\"}")
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "a tail that never reads was not ended after {} records",
            sent.len()
        );
        sent.extend(ingest(&t, &p, 16, 16 * 1024).await);
    }
    assert!(sent.len() * 16 * 1024 > 64 * 1024);

    // Now it reads: what it was handed, then the end line saying where to resume.
    while !raw.body().1 {
        assert!(
            raw.read_some().await > 0,
            "connection closed before the last chunk"
        );
    }
    let body = raw.body().0;
    let lines: Vec<Value> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end", "{end}");
    assert_eq!(end["reason"], "slow_consumer", "{end}");
    let mut got: HashSet<String> = lines
        .iter()
        .filter(|l| l["type"] == "record")
        .map(|l| l["nonce"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        got.len() < sent.len(),
        "it was ended before it had everything"
    );

    // Resuming from the end line's cursor brings the rest: nothing is lost.
    let mut lines = Lines::open(
        &t,
        &t.admin,
        json!({"after_segment": end["after_segment"].as_i64().unwrap()}),
    )
    .await;
    while !sent.is_subset(&got) {
        let line = lines.next(Duration::from_secs(30)).await.unwrap();
        if line["type"] == "record" {
            got.insert(line["nonce"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(got, sent);
}

#[tokio::test]
async fn a_token_holds_only_so_many_tails() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    config.http.tail.max_streams_per_token = 2;
    let t = TestServer::start_with(dir, config).await;
    let (token, _) = read_token(&t).await;
    let mut first = Lines::open(&t, &token, json!({})).await;
    let _second = Lines::open(&t, &token, json!({})).await;
    let r = t
        .http
        .post(format!("{}/v1/tail", t.base))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_streams", "{v}");
    assert_eq!(t.metric("logflux_server_tail_refused_total").await, 1);
    // Another token is not held back by this one's streams.
    Lines::open(&t, &t.admin, json!({})).await;

    // A stream closed gives its place back.
    assert_eq!(
        first.next(Duration::from_secs(10)).await.unwrap()["type"],
        "heartbeat"
    );
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = t
            .http
            .post(format!("{}/v1/tail", t.base))
            .bearer_auth(&token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            break;
        }
        assert_eq!(r.status(), 429);
        assert!(
            Instant::now() < deadline,
            "the closed stream's place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a tail with `token`, retrying while it is refused with 429 until `within`; panics
/// with `why` if it never opens.
async fn open_when_allowed(t: &TestServer, token: &str, within: Duration, why: &str) -> Lines {
    let deadline = Instant::now() + within;
    loop {
        let r = t
            .http
            .post(format!("{}/v1/tail", t.base))
            .bearer_auth(token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            return Lines {
                stream: r.bytes_stream().boxed(),
                buf: Vec::new(),
            };
        }
        assert_eq!(r.status(), 429);
        assert!(Instant::now() < deadline, "{why}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Commits records until the server ends a tail as a slow consumer: then the reader's
/// connection holds as much as it can and takes nothing more, not even the end line.
async fn fill_until_slow_consumer(t: &TestServer, p: &(String, String, SealingKey)) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while t
        .metric("logflux_server_tail_ended_total{reason=\"slow_consumer\"}")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "the tail was not ended in time");
        ingest(t, p, 16, 16 * 1024).await;
    }
}

fn never_reading(dir: &std::path::Path) -> logflux_server::ServerConfig {
    let mut c = config_for(dir);
    c.http.tail.buffer_bytes = 64 * 1024;
    c.http.tail.slow_consumer_timeout = Duration::from_millis(300);
    c
}

#[tokio::test]
async fn a_tail_ended_as_a_slow_consumer_gives_its_place_back_though_its_reader_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = never_reading(dir.path());
    config.http.tail.max_streams_per_token = 1;
    // Only the end of the stream can give the place back: the connection stays.
    config.write_stall_timeout = Duration::from_secs(600);
    let t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    let (token, _) = read_token(&t).await;
    let raw = RawTail::open(&t, &token).await;
    fill_until_slow_consumer(&t, &p).await;
    assert_eq!(t.metric("logflux_server_tail_streams").await, 0);
    let mut again = open_when_allowed(
        &t,
        &token,
        Duration::from_secs(10),
        "the ended stream still holds the token's only place",
    )
    .await;
    assert_eq!(
        again.next(Duration::from_secs(10)).await.unwrap()["type"],
        "heartbeat"
    );
    // The first reader is still connected and still reads nothing.
    drop(raw);
}

#[tokio::test]
async fn a_tenant_holds_only_so_many_tails() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    config.http.tail.max_streams_per_tenant = 2;
    let t = TestServer::start_with(dir, config).await;
    let (first, _) = read_token(&t).await;
    let (second, _) = read_token(&t).await;
    let _a = Lines::open(&t, &first, json!({})).await;
    let _b = Lines::open(&t, &t.admin, json!({})).await;
    // A token with no stream of its own is refused: its tenant has all it may.
    let r = t
        .http
        .post(format!("{}/v1/tail", t.base))
        .bearer_auth(&second)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_streams", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tail.max_streams_per_tenant"),
        "{v}"
    );
    assert_eq!(t.metric("logflux_server_tail_refused_total").await, 1);
}

#[tokio::test]
async fn a_connection_that_takes_nothing_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = never_reading(dir.path());
    config.write_stall_timeout = Duration::from_secs(1);
    // Only the write stall can close the connection: the shutdown would wait for it.
    config.shutdown_grace = Duration::from_secs(600);
    let mut t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    let _raw = RawTail::open(&t, &t.admin).await;
    fill_until_slow_consumer(&t, &p).await;
    tokio::time::timeout(Duration::from_secs(20), t.server.take().unwrap().shutdown())
        .await
        .expect("the connection that takes nothing still holds the shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_shutdown_does_not_wait_for_ever_for_a_tail_that_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = never_reading(dir.path());
    config.write_stall_timeout = Duration::from_secs(600);
    config.shutdown_grace = Duration::from_secs(1);
    let mut t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    let _raw = RawTail::open(&t, &t.admin).await;
    fill_until_slow_consumer(&t, &p).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), t.server.take().unwrap().shutdown())
        .await
        .expect("a tail that never reads holds the shutdown")
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the grace was given"
    );
}

/// This process's resident memory and its peak, MiB (Linux).
fn rss_mib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap()
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Memory of the server (in this process) with 100 tails that never read while 64 MiB are
/// committed: bounded by 100 × (buffer + the connection's write buffer), whatever is
/// committed. A measurement run by hand (`--ignored --nocapture`); it prints its figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn memory_of_tails_that_never_read_is_bounded() {
    // TAILS=0 gives the baseline.
    let tails_n: usize = std::env::var("TAILS").map_or(100, |v| v.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_for(dir.path());
    config.http.tail.max_streams_per_token = tails_n.max(1);
    config.http.tail.max_streams_per_tenant = tails_n.max(1);
    config.http.tail.max_streams = tails_n.max(1);
    let t = TestServer::start_with(dir, config).await;
    let p = producer(&t).await;
    ingest(&t, &p, 4, 1024).await;
    let mut tails = Vec::new();
    for _ in 0..tails_n {
        tails.push(RawTail::open(&t, &t.admin).await);
    }
    let before = rss_mib();
    let mut sent = 0usize;
    // Requests of PARTS records of 64 KiB: one segment each (16 MiB by default).
    let parts: usize = std::env::var("PARTS").map_or(256, |v| v.parse().unwrap());
    while sent < 64 << 20 {
        ingest(&t, &p, parts, 64 * 1024).await;
        sent += parts * 64 * 1024;
    }
    // Let every stream fill what it can.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_mib();
    println!(
        "{tails_n} tails that never read, {} MiB committed: RSS {} MiB before, {} MiB after \
         (peak {} MiB)",
        sent >> 20,
        before.0,
        after.0,
        after.1
    );
    assert!(
        after.0.saturating_sub(before.0) < (tails_n as u64) * 2 + 64,
        "{before:?} → {after:?}"
    );
    drop(tails);
}
