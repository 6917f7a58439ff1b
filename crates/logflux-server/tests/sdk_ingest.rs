//! Real SDK traffic, byte for byte as PROTOCOL.md §2 describes it, ingested and read back.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use logflux_crypto::{
    BatchSealer, Dek, RecordBinding, SealingKey, SearchKey, TokenSet, open_batch, wrap_dek,
    wrap_dek_mgf1_sha1,
};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::{Entry, Level};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Posts a multipart body to `/v1/ingest` as `api_key`; the reply, which must be a 202.
async fn ingest(t: &TestServer, api_key: &str, content_type: &str, body: Vec<u8>) -> Value {
    let r = t
        .http
        .post(format!("{}/v1/ingest", t.base))
        .bearer_auth(api_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 202, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// Seals like the SDKs: AES-256-GCM over gzip(JSON), no associated data.
fn sdk_seal(key: &SealingKey, json: &Value) -> ([u8; 12], Vec<u8>) {
    let mut buf = gzip(json.to_string().as_bytes());
    let nonce = key.seal(&[], &mut buf).unwrap();
    (nonce, buf)
}

/// A body exactly as the JavaScript SDK writes it: 32-hex boundary, no CRLF after a part's
/// ciphertext before the next delimiter, CRLF only before the closing one, epilogue CRLF.
fn js_body(boundary: &str, key_id: &str, parts: &[([u8; 12], Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (nonce, body) in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
        out.extend_from_slice(b"X-LF-Entry-Type: 1\r\nX-LF-Payload-Type: 1\r\n");
        out.extend_from_slice(b"X-LF-Timestamp: 2026-11-20T21:49:06.545Z\r\n");
        out.extend_from_slice(
            format!(
                "X-LF-Key-ID: {key_id}\r\nX-LF-Nonce: {}\r\n\r\n",
                B64.encode(nonce)
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// Decrypts every SDK record of a query result with the tenant's private key.
async fn decrypt_sdk(t: &TestServer, records: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for r in records {
        out.push(common::open_sdk_record(&t.http, &t.base, &t.admin, tenant_key(), r).await);
    }
    out
}

#[tokio::test]
async fn javascript_sdk_traffic_round_trips() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let key = SealingKey::new(&dek);
    let entries: Vec<Value> = (0..5)
        .map(|i| json!({"v":"2.0","type":"log","source":"web","level":4,"ts":"2026-11-20T21:49:06.545Z","message":format!("payment {i} failed"),"attributes":{"user":"u1"}}))
        .collect();
    let mut parts: Vec<([u8; 12], Vec<u8>)> = entries.iter().map(|e| sdk_seal(&key, e)).collect();
    // Make sure one part's ciphertext ends in CRLF, as one JS part in 65 536 does.
    loop {
        let p = sdk_seal(&key, &entries[4]);
        if p.1.ends_with(b"\r\n") {
            parts[4] = p;
            break;
        }
    }
    let boundary = "0793c1f2a5b44e2d8f9a0b1c2d3e4f50";
    let body = js_body(boundary, &key_id, &parts);
    // A base URL with a trailing slash: `//v1/ingest`; fetch's own headers.
    let r = t
        .http
        .post(format!("{}//v1/ingest", t.base))
        .bearer_auth(&api_key)
        .header(
            "content-type",
            format!("multipart/mixed; boundary={boundary}"),
        )
        .header("user-agent", "logflux-js-sdk/3.0.0")
        .header("accept", "*/*")
        .header("accept-language", "*")
        .header("sec-fetch-mode", "cors")
        .header("accept-encoding", "gzip, deflate")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 5);

    // A byte-identical retry (the JS SDK's) is acknowledged and not stored twice.
    let content_type = format!("multipart/mixed; boundary={boundary}");
    let v = ingest(&t, &api_key, &content_type, body).await;
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(5))
    );

    let (records, end) = t.query(&t.admin.clone(), json!({"order": "oldest"})).await;
    assert_eq!(records.len(), 5, "{end}");
    // Parts with X-LF-Timestamp get v2 ids: the part's millisecond (2026-11-20T21:49:06.545Z
    // is 1 795 211 346 545 ms, 0x01a1faef4271) before the digest (docs/formats.md).
    for r in &records {
        let id = r["record_id"].as_str().unwrap();
        assert!(id.starts_with("sdk-01a1faef4271"), "{id}");
        assert_eq!(id.len(), 36, "{id}");
    }
    let mut got = decrypt_sdk(&t, &records).await;
    let mut want = entries.clone();
    let key_of = |v: &Value| v["message"].as_str().unwrap().to_owned();
    got.sort_by_key(key_of);
    want.sort_by_key(key_of);
    assert_eq!(got, want, "byte-identical entries come back");

    let metrics = t.metrics_text().await;
    assert!(
        metrics.contains("logflux_server_records_stored_total 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("logflux_server_records_duplicate_total 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/v1/ingest\",status=\"202\""),
        "{metrics}"
    );
    assert!(
        !metrics.contains(&api_key) && !metrics.contains("lf_pat_") && !metrics.contains(&key_id),
        "no credentials or ids in metrics"
    );
    t.stop().await;
}

/// One part as the Go SDK (v3.0.x) builds it: entry type, `X-LF-Timestamp`, payload type and
/// the body (sealed when payload type 1).
struct GoPart {
    entry_type: u8,
    timestamp: &'static str,
    payload_type: u8,
    nonce: Option<[u8; 12]>,
    body: Vec<u8>,
}

/// Seals `plain` as the Go SDK's encryptor does: gzip when compression is on (payload type stays
/// 1 either way), then AES-256-GCM without associated data.
fn go_seal(key: &SealingKey, plain: &[u8], compress: bool) -> ([u8; 12], Vec<u8>) {
    let mut buf = if compress {
        gzip(plain)
    } else {
        plain.to_vec()
    };
    let nonce = key.seal(&[], &mut buf).unwrap();
    (nonce, buf)
}

/// A body exactly as Go's `mime/multipart` writes the SDK's parts: header names canonicalised
/// by `textproto` (`X-Lf-Entry-Type`, `X-Lf-Key-Id`) and sorted, a CRLF before every later
/// delimiter, epilogue CRLF.
fn go_body(boundary: &str, key_id: &str, parts: &[GoPart]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        } else {
            out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
        }
        let mut h = vec![
            ("Content-Type", "application/octet-stream".to_owned()),
            ("X-Lf-Entry-Type", p.entry_type.to_string()),
            ("X-Lf-Payload-Type", p.payload_type.to_string()),
            ("X-Lf-Timestamp", p.timestamp.to_owned()),
        ];
        if let Some(n) = p.nonce {
            h.push(("X-Lf-Key-Id", key_id.to_owned()));
            h.push(("X-Lf-Nonce", B64.encode(n)));
        }
        h.sort();
        for (k, v) in h {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&p.body);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// The Go SDK's variations (PROTOCOL.md §2): handshake with `User-Agent: Go-http-client/1.1`,
/// ingest with `logflux-go-sdk/3.0.0`, a 60-hex boundary, `X-Lf-…` header names, timestamps of
/// 6 to 9 fraction digits with trailing zeros trimmed, the raw message text (gzipped or not)
/// where the others seal a JSON object, and `kind` / a span's `name` in its v2 JSON.
#[tokio::test]
async fn go_sdk_traffic_raw_text_and_its_header_spellings_are_stored() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("gosvc").await;
    let dek = Dek::generate().unwrap();
    let wrapped = wrap_dek(&tenant_key().public_key(), &dek).unwrap();
    // The handshake goes out with Go's default User-Agent, not the SDK's.
    let r = t
        .http
        .post(format!("{}/v1/handshake/init", t.base))
        .bearer_auth(&api_key)
        .header("user-agent", "Go-http-client/1.1")
        .json(&json!({"api_key": api_key}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = t
        .http
        .post(format!("{}/v1/handshake/complete", t.base))
        .bearer_auth(&api_key)
        .header("user-agent", "Go-http-client/1.1")
        .json(&json!({"api_key": api_key, "encrypted_secret": B64.encode(&wrapped)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    let key_id = v["data"]["key_id"].as_str().unwrap().to_owned();

    let key = SealingKey::new(&dek);
    let metric = json!({"v":"2.0","type":"metric","source":"gosvc","level":7,"ts":"2026-11-20T21:49:06.5451Z","name":"requests","value":42,"kind":"counter"});
    let span = json!({"v":"2.0","type":"trace","source":"gosvc","level":7,"ts":"2026-11-20T21:49:06.5451Z","trace_id":"t1","span_id":"s1","operation":"GET /","name":"index","start_time":"2026-11-20T21:49:06.5Z","end_time":"2026-11-20T21:49:06.512Z","duration_ms":12,"status":"ok"});
    // (plaintext, gzip, entry type, timestamp): the timestamps have 6, 7, 8, 9 and (trailing
    // zeros trimmed) 4 and 0 fraction digits.
    let sealed: Vec<(Vec<u8>, bool, u8, &'static str)> = vec![
        (
            b"user alice logged in".to_vec(),
            true,
            1,
            "2026-11-20T21:49:06.123456Z",
        ),
        (
            b"disk almost full".to_vec(),
            false,
            1,
            "2026-11-20T21:49:07.1234567Z",
        ),
        (
            metric.to_string().into_bytes(),
            true,
            2,
            "2026-11-20T21:49:08.12345678Z",
        ),
        (
            span.to_string().into_bytes(),
            false,
            3,
            "2026-11-20T21:49:09.123456789Z",
        ),
        (
            b"retrying in 5s\n".to_vec(),
            true,
            1,
            "2026-11-20T21:49:10.5451Z",
        ),
        (b"{not json".to_vec(), true, 1, "2026-11-20T21:49:11Z"),
    ];
    let mut parts: Vec<GoPart> = sealed
        .iter()
        .map(|(plain, compress, entry_type, timestamp)| {
            let (nonce, body) = go_seal(&key, plain, *compress);
            GoPart {
                entry_type: *entry_type,
                timestamp,
                payload_type: 1,
                nonce: Some(nonce),
                body,
            }
        })
        .collect();
    // Type 7 (managed telemetry): gzip only, not encrypted.
    parts.push(GoPart {
        entry_type: 7,
        timestamp: "2026-11-20T21:49:12.98765Z",
        payload_type: 3,
        nonce: None,
        body: gzip(b"sensor online"),
    });
    // Go's multipart boundary: 30 random bytes in hex.
    let boundary = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f0";
    assert_eq!(boundary.len(), 60);
    let r = t
        .http
        .post(format!("{}/v1/ingest", t.base))
        .bearer_auth(&api_key)
        .header("user-agent", "logflux-go-sdk/3.0.0")
        .header(
            "content-type",
            format!("multipart/mixed; boundary={boundary}"),
        )
        .body(go_body(boundary, &key_id, &parts))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["accepted"], 7, "{v}");

    let (records, end) = t.query(&t.admin.clone(), json!({"order": "oldest"})).await;
    assert_eq!(records.len(), 7, "{end}");
    let by_ts = |ts: &str| {
        let ns = logflux_proto::timefmt::parse_rfc3339(ts).unwrap();
        records
            .iter()
            .find(|r| r["min_ts"] == ns)
            .unwrap_or_else(|| panic!("no record at {ts} ({ns}): {records:?}"))
    };
    for (plain, _, entry_type, ts) in &sealed {
        let r = by_ts(ts);
        assert_eq!(r["entry_type"], *entry_type, "{ts}");
        assert_eq!(r["payload_type"], 1);
        let got = common::open_sdk_plaintext(&t.http, &t.base, &t.admin, tenant_key(), r).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(plain),
            "{ts}: the plaintext comes back as sealed"
        );
    }
    let r = by_ts("2026-11-20T21:49:12.98765Z");
    assert_eq!(
        (r["entry_type"].as_u64(), r["payload_type"].as_u64()),
        (Some(7), Some(3))
    );
    let body = B64.decode(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        logflux_crypto::open_sdk_gzip(&body).unwrap(),
        b"sensor online"
    );
    t.stop().await;
}

/// Sends raw HTTP/1.1 as the JDK's client does over plain HTTP, h2c upgrade headers included.
async fn raw_post(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    req.push_str("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAAAAIAAAAAAAMAAAPoAAQAAP__AAUAAEAAAAYAACAA\r\n");
    req.push_str("User-Agent: logflux-java-sdk/3.0.0\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the headers and the announced body are in.
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(h_end) = text.find("\r\n\r\n") {
            let len = text[..h_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= h_end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    assert!(
        text.starts_with("HTTP/1.1 "),
        "answered in HTTP/1.1, not an upgrade: {text}"
    );
    (status, text)
}

#[tokio::test]
async fn java_sdk_traffic_with_h2c_headers_and_mgf1_sha1_key() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("svc").await;
    let addr = t.server.as_ref().unwrap().local_addr();
    let dek = Dek::generate().unwrap();
    let wrapped = wrap_dek_mgf1_sha1(&tenant_key().public_key(), &dek).unwrap();
    let auth = ("Authorization", format!("Bearer {api_key}"));
    let json_ct = ("Content-Type", "application/json".to_owned());
    let (status, text) = raw_post(
        addr,
        "/v1/handshake/init",
        &[auth.clone(), json_ct.clone()],
        json!({"api_key": api_key}).to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "exactly 200 (Java fails on 201): {text}");
    let (status, text) = raw_post(
        addr,
        "/v1/handshake/complete",
        &[auth.clone(), json_ct],
        json!({"api_key": api_key, "encrypted_secret": B64.encode(&wrapped)})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let body_json: Value =
        serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    let key_id = body_json["data"]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(body_json["key_uuid"], body_json["key_id"]);

    let key = SealingKey::new(&dek);
    let entry = json!({"v":"2.0","type":"metric","source":"svc","level":7,"ts":"2026-11-20T21:49:06.545123456Z","name":"requests","value":42,"metric_type":"counter"});
    let (nonce, sealed) = sdk_seal(&key, &entry);
    let boundary = "logflux-5d41402abc4b2a76b9719d911017c592";
    let mut w = Writer::new(boundary);
    let n64 = B64.encode(nonce);
    w.part(
        &[
            ("Content-Type", "application/octet-stream"),
            ("X-LF-Entry-Type", "2"),
            ("X-LF-Payload-Type", "1"),
            ("X-LF-Timestamp", "2026-11-20T21:49:06.545123456Z"),
            ("X-LF-Key-ID", &key_id),
            ("X-LF-Nonce", &n64),
        ],
        &sealed,
    );
    let (status, text) = raw_post(
        addr,
        "/v1/ingest",
        &[
            auth,
            (
                "Content-Type",
                format!("multipart/mixed; boundary={boundary}"),
            ),
        ],
        &w.finish(),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let (records, _) = t.query(&t.admin.clone(), json!({"entry_types": [2]})).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["entry_type"], 2);
    assert_eq!(
        decrypt_sdk(&t, &records).await,
        vec![entry],
        "the MGF1-SHA1 key unwraps and the entry opens"
    );
    let (none, _) = t.query(&t.admin.clone(), json!({"entry_types": [1]})).await;
    assert!(none.is_empty(), "entry type filter");
    t.stop().await;
}

#[tokio::test]
async fn agent_batches_with_tokens_are_found_by_blind_search() {
    let mut t = TestServer::start().await;
    let (app_id, api_key) = t.app_with_key("checkout").await;
    let dek = Dek::generate().unwrap();
    let key_id = t
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    let key = SealingKey::new(&dek);
    let search = SearchKey::generate().unwrap();
    let tk = search.token_key(&app_id);
    let tenant: Value = t
        .http
        .get(format!("{}/v1/applications", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tenant["applications"][0]["id"], app_id.as_str());

    // 20 batches; one has the needle word.
    let mut sealer = BatchSealer::new(1);
    let mut w = Writer::new("b0793c1f2a5b44e2d8f9a0b1c2d3e4f5");
    let mut bodies = Vec::new();
    for b in 0..20 {
        let entries: Vec<Entry> = (0..50)
            .map(|i| {
                let word = if b == 13 && i == 7 { "needle" } else { "hay" };
                Entry::new(
                    1_000_000_000 * (b * 100 + i),
                    Level::Info,
                    "api",
                    &format!("request {word} done"),
                )
            })
            .collect();
        let record_id = format!("01JD8Z5W3YV5K2N0Q9R7T6S4{b:02}");
        let binding = RecordBinding {
            tenant: "t",
            application: &app_id,
            key_id: &key_id,
            record_id: &record_id,
        };
        let sealed = sealer.seal(&key, &binding, &entries).unwrap();
        let mut ts = TokenSet::new();
        for e in &entries {
            ts.add_entry(e);
        }
        let tokens: Vec<String> = ts.finish(&tk).iter().map(ToString::to_string).collect();
        bodies.push((record_id, sealed, tokens.join(","), entries));
    }
    for (record_id, sealed, tokens, _) in &bodies {
        let nonce = B64.encode(sealed.nonce);
        let count = sealed.count.to_string();
        let range = format_time_range(sealed.time_range.0, sealed.time_range.1);
        w.part(
            &[
                ("X-LF-Payload-Type", "4"),
                ("X-LF-Key-ID", &key_id),
                ("X-LF-Nonce", &nonce),
                ("X-LF-Record-ID", record_id),
                ("X-LF-Count", &count),
                ("X-LF-Time-Range", &range),
                ("X-LF-Search-Tokens", tokens),
            ],
            &sealed.ciphertext,
        );
    }
    let content_type = w.content_type();
    ingest(&t, &api_key, &content_type, w.finish()).await;

    let needle = tk
        .token(logflux_crypto::Field::Word, "needle")
        .unwrap()
        .to_string();
    let (records, end) = t
        .query(&t.admin.clone(), json!({"tokens": [[needle]]}))
        .await;
    assert_eq!(records.len(), 1, "only the batch with the needle: {end}");
    let rec = &records[0];
    assert_eq!(rec["record_id"], "agent-01JD8Z5W3YV5K2N0Q9R7T6S413");
    assert_eq!(rec["count"], 50);
    let nonce: [u8; 12] = B64
        .decode(rec["nonce"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let ct = B64.decode(rec["body"].as_str().unwrap()).unwrap();
    let binding = RecordBinding {
        tenant: "t",
        application: &app_id,
        key_id: &key_id,
        record_id: "01JD8Z5W3YV5K2N0Q9R7T6S413",
    };
    assert_eq!(
        open_batch(&key, &binding, &nonce, &ct).unwrap(),
        bodies[13].3
    );

    // Time range and paging: 20 records, 7 per page, oldest first, cursor until done.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let (page, end) = t
            .query(
                &t.admin.clone(),
                json!({"order": "oldest", "limit": 7, "cursor": cursor}),
            )
            .await;
        seen.extend(
            page.iter()
                .map(|r| r["record_id"].as_str().unwrap().to_owned()),
        );
        if end["cursor"].is_null() {
            break;
        }
        cursor = end["cursor"].clone();
    }
    let want: Vec<String> = (0..20)
        .map(|b| format!("agent-01JD8Z5W3YV5K2N0Q9R7T6S4{b:02}"))
        .collect();
    assert_eq!(seen, want, "every record once, in order, across pages");

    // Watermarks: no record after a line holds an entry beyond that line's watermark, and
    // here (time-ordered records) each watermark is the next record's edge, so a client can
    // show entries record by record.
    for (order, newest) in [("oldest", false), ("newest", true)] {
        let mut lines = Vec::new();
        let mut cursor = Value::Null;
        loop {
            let (page, end) = t
                .query(
                    &t.admin.clone(),
                    json!({"order": order, "limit": 6, "cursor": cursor}),
                )
                .await;
            lines.extend(page);
            if end["cursor"].is_null() {
                break;
            }
            cursor = end["cursor"].clone();
        }
        assert_eq!(lines.len(), 20);
        for (i, l) in lines.iter().enumerate() {
            let w = l["watermark"].as_i64().unwrap();
            for later in &lines[i + 1..] {
                if newest {
                    assert!(later["max_ts"].as_i64().unwrap() <= w, "{order} {i}");
                } else {
                    assert!(later["min_ts"].as_i64().unwrap() >= w, "{order} {i}");
                }
            }
            let edge = match lines.get(i + 1) {
                Some(next) if newest => next["max_ts"].as_i64().unwrap(),
                Some(next) => next["min_ts"].as_i64().unwrap(),
                None if newest => i64::MIN,
                None => i64::MAX,
            };
            assert_eq!(w, edge, "{order} {i}");
        }
    }
    let (window, _) = t
        .query(
            &t.admin.clone(),
            json!({"from": 500_000_000_000i64, "to": 799_000_000_000i64, "order": "oldest"}),
        )
        .await;
    assert_eq!(window.len(), 3, "batches 5, 6 and 7 overlap the window");
    t.stop().await;
}

/// The record id the server derives for an SDK part (docs/formats.md, "SDK record ids"): v2,
/// led by the part's millisecond, when the part carries its own time — the start of
/// `X-LF-Time-Range` before `X-LF-Timestamp` — and v1 when it carries none. A byte-identical
/// retry gets the same ids. The expected ids were computed apart from the server, with Python's
/// hashlib, for unencrypted parts (payload type 3: no nonce, fixed bodies).
#[tokio::test]
async fn sdk_record_ids_follow_the_parts_own_time() {
    let mut t = TestServer::start().await;
    let (api_key, _key_id, _dek) = t.producer("web").await;
    let part = |w: &mut Writer, time: &[(&str, &str)], body: &[u8]| {
        let mut h = vec![("X-LF-Entry-Type", "7"), ("X-LF-Payload-Type", "3")];
        h.extend_from_slice(time);
        w.part(&h, body);
    };
    let mut w = Writer::new("ids");
    part(
        &mut w,
        &[
            ("X-LF-Timestamp", "2026-11-20T21:49:06.545Z"),
            (
                "X-LF-Time-Range",
                "2026-11-20T21:00:00.250Z/2026-11-20T21:49:06.545Z",
            ),
        ],
        b"part a",
    );
    part(&mut w, &[], b"part b");
    part(
        &mut w,
        &[("X-LF-Timestamp", "2026-11-20T21:49:06.545Z")],
        b"part c",
    );
    let (content_type, body) = (w.content_type(), w.finish());
    for (accepted, duplicates) in [(3, 0), (0, 3)] {
        let v = ingest(&t, &api_key, &content_type, body.clone()).await;
        assert_eq!(
            (v["accepted"].as_u64(), v["duplicates"].as_u64()),
            (Some(accepted), Some(duplicates)),
            "{v}"
        );
    }
    let (records, end) = t.query(&t.admin.clone(), json!({})).await;
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            // a: the range's start, 2026-11-20T21:00:00.250Z (0x01a1fac24d7a ms).
            "sdk-01a1fac24d7a15cb706fa55840ce152f",
            // c: its timestamp, 2026-11-20T21:49:06.545Z (0x01a1faef4271 ms).
            "sdk-01a1faef427184520d025e1a960a6474",
            // b: no time of its own, so v1.
            "sdk-1cb7df861b64930fe4e36579aec3569e",
        ],
        "{end}"
    );
    t.stop().await;
}
