//! A store that fails in the middle of a query's reply: the reply is streamed as it is read,
//! so once its first bytes are out the status (200) cannot become a 503. The reply then ends
//! with an `{"type":"error",…}` message and is cut (no end line, the body not terminated), in
//! both forms, so that no reader takes it for a complete page. A failure before the first
//! byte is still an ordinary 503.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use logflux_crypto::{SealingKey, seal_sdk_part};
use logflux_proto::frames::{self, Decoder};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};

const BINARY: &str = "application/vnd.logflux.records";

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(segments(&p));
        } else if p.extension().is_some_and(|x| x == "lfs") {
            out.push(p);
        }
    }
    out
}

/// Three requests, three segments of two records each, oldest first; returns their files in
/// the order a query reads them.
async fn three_segments(t: &TestServer) -> Vec<std::path::PathBuf> {
    let (api_key, key_id, dek) = t.producer("web").await;
    let key = SealingKey::new(&dek);
    let base = logflux_proto::timefmt::now_ns() - 3_600_000_000_000;
    for r in 0..3 {
        let mut w = Writer::new("b");
        for i in 0..2 {
            let (nonce, body) = seal_sdk_part(
                &key,
                json!({"message": format!("m{r}{i}")})
                    .to_string()
                    .as_bytes(),
                true,
            )
            .unwrap();
            let ts = logflux_proto::timefmt::format_rfc3339(base + (r * 10 + i) * 1_000_000_000);
            w.part(
                &[
                    ("X-LF-Entry-Type", "1"),
                    ("X-LF-Payload-Type", "1"),
                    ("X-LF-Timestamp", &ts),
                    ("X-LF-Key-ID", &key_id),
                    ("X-LF-Nonce", &B64.encode(nonce)),
                ],
                &body,
            );
        }
        t.ingest_accepted(&api_key, w).await;
    }
    let mut segs = segments(&t.dir.path().join("objects"));
    segs.sort();
    assert_eq!(segs.len(), 3);
    segs
}

/// What a reply delivered before it ended: its status, its bytes, and whether the body was
/// cut (a transport error) rather than ended.
async fn read_reply(t: &TestServer, accept: &str) -> (u16, Vec<u8>, bool) {
    let mut r = t
        .http
        .post(format!("{}/v1/query", t.base))
        .bearer_auth(&t.admin)
        .header("accept", accept)
        .json(&json!({"order": "oldest"}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let mut bytes = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(c)) => bytes.extend_from_slice(&c),
            Ok(None) => return (status, bytes, false),
            Err(_) => return (status, bytes, true),
        }
    }
}

/// The messages of a reply's bytes, in either form (a cut frame or line at the end is left
/// out), as JSON objects.
fn messages(accept: &str, bytes: &[u8]) -> Vec<Value> {
    if accept == BINARY {
        assert_eq!(&bytes[..4], &frames::MAGIC);
        let mut d = Decoder::new(1 << 20);
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(f) = d.next_frame().unwrap() {
            out.push(serde_json::from_slice(&f.header).unwrap());
        }
        out
    } else {
        bytes
            .split_inclusive(|&b| b == b'\n')
            .filter(|l| l.ends_with(b"\n"))
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn a_store_failing_mid_reply_ends_it_with_an_error_and_cuts_it() {
    let mut t = TestServer::start().await;
    let segs = three_segments(&t).await;
    for accept in [BINARY, frames::NDJSON] {
        let (status, bytes, cut) = read_reply(&t, accept).await;
        assert_eq!((status, cut), (200, false));
        let all = messages(accept, &bytes);
        assert_eq!(all.len(), 7, "six records and the end line");
        assert_eq!(all[6]["type"], "end");
    }

    // The last segment's object can no longer be read: the store fails after the first two
    // segments' records were sent.
    std::fs::remove_file(&segs[2]).unwrap();
    for accept in [BINARY, frames::NDJSON] {
        let (status, bytes, cut) = read_reply(&t, accept).await;
        assert_eq!(status, 200, "{accept}: the reply had begun");
        assert!(cut, "{accept}: the body is cut, not ended");
        let got = messages(accept, &bytes);
        let kinds: Vec<&str> = got.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["record", "record", "record", "record", "error"],
            "{accept}: the records read, then the error, and no end line"
        );
        let err = &got[4];
        assert_eq!(err["code"], "unavailable");
        assert!(
            err["message"].as_str().unwrap().contains("incomplete"),
            "{err}"
        );
        // Nothing of the store's own error (paths) reaches the reader.
        assert!(!err.to_string().contains(".lfs"), "{err}");
    }

    // Both replies were 200 in the request metrics; they are counted as cut.
    let unavailable = "logflux_server_query_replies_broken_total{reason=\"unavailable\"}";
    assert_eq!(t.metric(unavailable).await, 2);
    assert_eq!(t.metric(DISCONNECTED).await, 0);

    // The first segment fails too: nothing was sent yet, so the answer is a plain 503.
    std::fs::remove_file(&segs[0]).unwrap();
    for accept in [BINARY, frames::NDJSON] {
        let (status, bytes, cut) = read_reply(&t, accept).await;
        assert_eq!((status, cut), (503, false), "{accept}");
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "unavailable");
    }
    t.stop().await;
}

const READERS: &str = "logflux_server_query_readers";
const DISCONNECTED: &str = "logflux_server_query_replies_broken_total{reason=\"disconnected\"}";

/// Waits until `/metrics` shows `want` for `name`; false if it does not within 20 s. (Polls:
/// a task is aborted, and its future dropped, by the runtime shortly after the abort.)
async fn metric_becomes(t: &TestServer, name: &str, want: u64) -> bool {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if t.metric(name).await == want {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Replaces a segment's object by a named pipe: the store's read of it blocks (in `open`)
/// until something opens the pipe for writing.
fn block_reads_of(path: &std::path::Path) {
    std::fs::remove_file(path).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

/// Lets a read blocked on the pipe go on (it then fails: a pipe has no length). A plain
/// thread waits for a reader that may never come (the task was aborted before its read).
fn release(path: &std::path::Path) {
    let path = path.to_owned();
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(path)));
}

/// A `/v1/query` (oldest first) on a raw connection, so that the test decides when it closes.
async fn raw_query(t: &TestServer) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt as _;
    let body = json!({"order": "oldest"}).to_string();
    let addr = t.base.strip_prefix("http://").unwrap();
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST /v1/query HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         accept: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        t.admin,
        frames::NDJSON,
        body.len()
    );
    c.write_all(req.as_bytes()).await.unwrap();
    c
}

#[tokio::test]
async fn a_client_leaving_before_the_reply_began_stops_its_reader() {
    let mut t = TestServer::start().await;
    let segs = three_segments(&t).await;
    // The first segment's read blocks: the reply has not begun (no status sent).
    block_reads_of(&segs[0]);
    let c = raw_query(&t).await;
    assert!(metric_becomes(&t, READERS, 1).await, "the reader runs");
    drop(c);
    let stopped = metric_becomes(&t, READERS, 0).await;
    release(&segs[0]);
    assert!(stopped, "the client left: its reply's reader stops");
    // It had not begun: nothing was cut.
    assert_eq!(t.metric(DISCONNECTED).await, 0);
    t.stop().await;
}

#[tokio::test]
async fn a_client_leaving_mid_reply_stops_its_reader_and_counts_the_cut() {
    use tokio::io::AsyncReadExt as _;
    let mut t = TestServer::start().await;
    let segs = three_segments(&t).await;
    // The first segment's records are sent, then the second's read blocks.
    block_reads_of(&segs[1]);
    let mut c = raw_query(&t).await;
    let mut got = Vec::new();
    while !got.windows(8).any(|w| w == b"\"record\"") {
        let mut buf = [0u8; 4096];
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0, "the connection ended early");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    assert_eq!(t.metric(READERS).await, 1, "the reader waits on the store");
    drop(c);
    let stopped = metric_becomes(&t, READERS, 0).await;
    release(&segs[1]);
    assert!(stopped, "the client left: its reply's reader stops");
    assert!(
        metric_becomes(&t, DISCONNECTED, 1).await,
        "the cut is counted"
    );
    t.stop().await;
}
