//! The binary record stream (`Accept: application/vnd.logflux.records`) of `/v1/query`,
//! `/v1/records` and `/v1/tail`: the same messages as the NDJSON form, each NDJSON line one
//! frame whose header is the line without `body` and whose body is the ciphertext, raw.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use futures_util::StreamExt as _;
use logflux_crypto::{Dek, SealingKey, seal_sdk_part};
use logflux_proto::frames::{self, Decoder, Frame};
use logflux_proto::multipart::Writer;
use logflux_proto::timefmt;
use serde_json::{Value, json};

const BINARY: &str = "application/vnd.logflux.records";

async fn ingest(t: &TestServer, api_key: &str, key_id: &str, dek: &Dek, ts0: i64, n: usize) {
    let mut w = Writer::new("logflux-5d41402abc4b2a76b9719d911017c592");
    for i in 0..n {
        let p = format!(r#"{{"message":"record {i} of {ts0}"}}"#);
        let (nonce, body) = seal_sdk_part(&SealingKey::new(dek), p.as_bytes(), false).unwrap();
        let ts = timefmt::format_rfc3339(ts0 + i as i64 * 1_000_000_000);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Timestamp", &ts),
                ("X-LF-Key-ID", key_id),
                ("X-LF-Nonce", &B64.encode(nonce)),
            ],
            &body,
        );
    }
    t.ingest_accepted(api_key, w).await;
}

/// POSTs `body` to `path` with `accept`; the content type and the whole reply.
async fn post(t: &TestServer, path: &str, accept: Option<&str>, body: Value) -> (String, Vec<u8>) {
    let mut rb = t
        .http
        .post(format!("{}{path}", t.base))
        .bearer_auth(&t.admin)
        .json(&body);
    if let Some(a) = accept {
        rb = rb.header("accept", a);
    }
    let r = rb.send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (ct, r.bytes().await.unwrap().to_vec())
}

fn decode(bytes: &[u8]) -> Vec<Frame> {
    let mut d = Decoder::new(1 << 20);
    d.push(bytes);
    let mut out = Vec::new();
    while let Some(f) = d.next_frame().unwrap() {
        out.push(f);
    }
    d.finish().unwrap();
    out
}

/// A frame as the NDJSON line it stands for.
fn as_line(f: &Frame) -> Value {
    let mut v: Value = serde_json::from_slice(&f.header).unwrap();
    assert!(v.get("body").is_none(), "a header carries no body: {v}");
    if let Some(b) = &f.body {
        v["body"] = B64.encode(b).into();
    }
    v
}

fn ndjson(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[tokio::test]
async fn query_and_records_send_the_same_messages_in_either_form() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let base = timefmt::now_ns() - 3_600_000_000_000;
    ingest(&t, &api_key, &key_id, &dek, base, 5).await;
    ingest(&t, &api_key, &key_id, &dek, base + 10_000_000_000, 4).await;

    for q in [
        json!({"order": "oldest", "limit": 4}),
        json!({"order": "newest"}),
        json!({"order": "oldest", "bodies": false}),
    ] {
        let (ct, text) = post(&t, "/v1/query", None, q.clone()).await;
        assert_eq!(ct, "application/x-ndjson", "NDJSON unless asked");
        let lines = ndjson(&text);
        let (ct, bin) = post(&t, "/v1/query", Some(BINARY), q.clone()).await;
        assert_eq!(ct, BINARY);
        assert_eq!(&bin[..4], &frames::MAGIC);
        let frames = decode(&bin);
        let as_lines: Vec<Value> = frames.iter().map(as_line).collect();
        assert_eq!(as_lines, lines, "{q}");
        let bodies = q.get("bodies").is_none();
        for (f, l) in frames.iter().zip(&lines) {
            assert_eq!(f.body.is_some(), l["type"] == "record" && bodies);
        }
        assert_eq!(lines.last().unwrap()["type"], "end");
    }

    // A client that lists both forms, the binary one preferred, gets it; one that refuses it
    // (q=0) gets NDJSON.
    let q = json!({"order": "oldest"});
    let accept = "application/vnd.logflux.records, application/x-ndjson;q=0.5";
    assert_eq!(
        post(&t, "/v1/query", Some(accept), q.clone()).await.0,
        BINARY
    );
    let refused = "application/vnd.logflux.records;q=0, application/x-ndjson";
    assert_eq!(
        post(&t, "/v1/query", Some(refused), q.clone()).await.0,
        "application/x-ndjson"
    );

    // /v1/records, with a missing id.
    let (_, text) = post(&t, "/v1/query", None, q).await;
    let lines = ndjson(&text);
    let mut refs: Vec<Value> = lines[..3]
        .iter()
        .map(|l| json!({"segment_id": l["segment_id"], "record_id": l["record_id"]}))
        .collect();
    refs.push(json!({"segment_id": lines[0]["segment_id"], "record_id": "sdk-nope"}));
    let req = json!({ "records": refs });
    let (_, text) = post(&t, "/v1/records", None, req.clone()).await;
    let (ct, bin) = post(&t, "/v1/records", Some(BINARY), req).await;
    assert_eq!(ct, BINARY);
    let got: Vec<Value> = decode(&bin).iter().map(as_line).collect();
    assert_eq!(got, ndjson(&text));
    assert_eq!(got.last().unwrap()["missing"], json!(["sdk-nope"]));
    t.stop().await;
}

/// The next frame of a live stream (bounded wait: a broken server fails the test, not hangs it).
async fn next_frame(
    stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    d: &mut Decoder,
) -> Frame {
    loop {
        if let Some(f) = d.next_frame().unwrap() {
            return f;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("a frame within 20 s")
            .expect("the stream goes on")
            .unwrap();
        d.push(&chunk);
    }
}

#[tokio::test]
async fn a_tail_in_the_binary_form_sends_heartbeat_and_records_as_frames() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let r = t
        .http
        .post(format!("{}/v1/tail", t.base))
        .bearer_auth(&t.admin)
        .header("accept", BINARY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], BINARY);
    let mut stream = r.bytes_stream();
    let mut d = Decoder::new(1 << 20);
    let first = as_line(&next_frame(&mut stream, &mut d).await);
    assert_eq!(first["type"], "heartbeat", "{first}");
    ingest(&t, &api_key, &key_id, &dek, timefmt::now_ns(), 2).await;
    let mut records = Vec::new();
    while records.len() < 2 {
        let f = next_frame(&mut stream, &mut d).await;
        let v: Value = serde_json::from_slice(&f.header).unwrap();
        if v["type"] == "record" {
            let body = f.body.expect("a record frame has its body");
            // The body is the ciphertext: it opens with the data key.
            let mut line = v.clone();
            line["body"] = B64.encode(&body).into();
            let plain =
                common::open_sdk_plaintext(&t.http, &t.base, &t.admin, common::tenant_key(), &line)
                    .await;
            records.push(String::from_utf8(plain).unwrap());
        }
    }
    assert!(records[0].contains("record 0"), "{records:?}");
    assert!(records[1].contains("record 1"), "{records:?}");
    t.stop().await;
}
