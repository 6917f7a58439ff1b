//! Live tail: records are pushed once committed; a reconnect resumes without gaps; shutdown
//! ends the stream instead of hanging.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use futures_util::StreamExt as _;
use logflux_crypto::{Dek, SealingKey, seal_sdk_part, wrap_dek};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};

async fn send(
    t: &TestServer,
    api_key: &str,
    key_id: &str,
    key: &SealingKey,
    msg: &str,
    entry_type: &str,
) {
    let (nonce, body) =
        seal_sdk_part(key, json!({"message": msg}).to_string().as_bytes(), true).unwrap();
    let mut w = Writer::new("b");
    let n64 = B64.encode(nonce);
    w.part(
        &[
            ("X-LF-Entry-Type", entry_type),
            ("X-LF-Payload-Type", "1"),
            ("X-LF-Key-ID", key_id),
            ("X-LF-Nonce", &n64),
        ],
        &body,
    );
    t.ingest_accepted(api_key, w).await;
}

/// Reads NDJSON lines from a streaming response until `n` record lines arrived.
async fn records(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    n: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        while let Some(i) = buf.find('\n') {
            let line: Value = serde_json::from_str(&buf[..i]).unwrap();
            buf.drain(..=i);
            if line["type"] == "record" {
                out.push(line);
            }
        }
        if out.len() >= n {
            break;
        }
        // A guard against a hang, not a synchronisation: the chunk is awaited as an event.
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("tail stalled")
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    out
}

/// The stream's lines up to and including the first of type `kind`.
async fn lines_until(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut String,
    kind: &str,
) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        while let Some(i) = buf.find('\n') {
            let line: Value = serde_json::from_str(&buf[..i]).unwrap();
            buf.drain(..=i);
            let last = line["type"] == kind;
            out.push(line);
            if last {
                return out;
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind} line: {out:?}"))
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test]
async fn tail_pushes_new_records_and_resumes() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let key_id = t
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    let key = SealingKey::new(&dek);
    send(&t, &api_key, &key_id, &key, "before the tail", "1").await;

    let resp = t
        .http
        .post(format!("{}/v1/tail", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({"entry_types": [1]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    send(&t, &api_key, &key_id, &key, "metric, filtered out", "2").await;
    send(&t, &api_key, &key_id, &key, "first", "1").await;
    send(&t, &api_key, &key_id, &key, "second", "1").await;
    let got = records(&mut stream, &mut buf, 2).await;
    assert_eq!(
        got.len(),
        2,
        "only new records of type 1, not the one from before the tail"
    );
    assert!(got.iter().all(|r| r["entry_type"] == 1));
    let last_segment = got[1]["segment_id"].as_i64().unwrap();
    drop(stream);

    // Reconnect after the last seen segment: what came meanwhile arrives, nothing twice.
    send(&t, &api_key, &key_id, &key, "while away", "1").await;
    let resp = t
        .http
        .post(format!("{}/v1/tail", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({"after_segment": last_segment}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    // What was committed while away comes before the stream says it has caught up.
    let seen = lines_until(&mut stream, &mut buf, "caught_up").await;
    let got: Vec<&Value> = seen.iter().filter(|l| l["type"] == "record").collect();
    assert_eq!(got.len(), 1, "{seen:?}");
    assert!(got[0]["segment_id"].as_i64().unwrap() > last_segment);
    let caught_up = seen.last().unwrap();
    assert!(
        caught_up["after_segment"].as_i64().unwrap() >= got[0]["segment_id"].as_i64().unwrap(),
        "{caught_up}"
    );

    // Shutting down ends the stream rather than waiting for it.
    let stop = tokio::spawn(async move {
        t.stop().await;
    });
    let rest = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(rest.is_ok(), "the tail ended with the server");
    tokio::time::timeout(Duration::from_secs(30), stop)
        .await
        .expect("shutdown finished")
        .unwrap();
}
