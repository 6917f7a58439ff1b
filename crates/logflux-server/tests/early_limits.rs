//! A request that declares a body larger than its endpoint reads is answered as soon as its
//! headers arrive, before any of the body is sent: 401 without a valid credential, 413 with
//! one. A request without a valid credential gets its 401 before any body is read, whatever
//! its size. A raw TCP client sends only the headers and waits, with a deadline, for the answer.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Sends `POST path` with `Content-Length: length` and no body; returns the status line's code.
async fn status_without_body(t: &TestServer, path: &str, bearer: Option<&str>, length: u64) -> u16 {
    let addr = t.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = bearer.map_or(String::new(), |b| format!("Authorization: Bearer {b}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: multipart/mixed; boundary=b\r\nContent-Length: {length}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "{path}: no answer within 5 s to a declared {length}-byte body (the server waits for it)"
    );
    let line = String::from_utf8_lossy(&buf);
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{path}: not an HTTP answer: {line:?}"))
}

#[tokio::test]
async fn a_declared_oversize_body_is_answered_before_it_is_sent() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("web").await;
    let admin = t.admin.clone();
    const GIB: u64 = 1 << 30;
    // Ingest: 413 with a valid key, 401 without one or with a wrong one.
    assert_eq!(
        status_without_body(&t, "/v1/ingest", Some(&api_key), GIB).await,
        413
    );
    assert_eq!(status_without_body(&t, "/v1/ingest", None, GIB).await, 401);
    assert_eq!(
        status_without_body(&t, "/v1/ingest", Some("eu-lf_wrong"), GIB).await,
        401
    );
    // Every other body-reading endpoint too, each at its own limit.
    assert_eq!(
        status_without_body(&t, "/v1/handshake/complete", Some(&api_key), 1 << 20).await,
        413
    );
    assert_eq!(
        status_without_body(&t, "/v1/query", Some(&admin), GIB).await,
        413
    );
    assert_eq!(
        status_without_body(&t, "/v1/query", Some("lf_pat_wrong"), GIB).await,
        401
    );
    assert_eq!(
        status_without_body(&t, "/v1/admin/applications", Some(&admin), GIB).await,
        413
    );
    assert_eq!(
        status_without_body(&t, "/v1/admin/erase", None, GIB).await,
        401
    );
    // A body within the limit is not read either until the credential is good: without one the
    // answer comes before any of it is sent.
    for path in [
        "/v1/query",
        "/v1/tail",
        "/v1/admin/applications",
        "/v1/ingest",
    ] {
        assert_eq!(
            status_without_body(&t, path, None, 1000).await,
            401,
            "{path}"
        );
        assert_eq!(
            status_without_body(&t, path, Some("lf_pat_wrong"), 1000).await,
            401,
            "{path}"
        );
    }
    // Within the limit, the body is still awaited and read as before.
    let r = t
        .http
        .post(format!("{}/v1/query", t.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.stop().await;
}
