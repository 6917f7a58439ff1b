//! The statuses SDKs act on, each with PROTOCOL.md's error body: 400, 401, 413, 429 (with
//! Retry-After and X-RateLimit-*), and request signatures.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use logflux_crypto::{Dek, SealingKey, seal_sdk_part, sign_request, signing_key, wrap_dek};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};

fn body(key_id: &str, dek: &Dek, parts: usize) -> Vec<u8> {
    let mut w = Writer::new("b");
    for _ in 0..parts {
        let (nonce, b) =
            seal_sdk_part(&SealingKey::new(dek), b"{\"message\":\"x\"}", true).unwrap();
        let n = B64.encode(nonce);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Key-ID", key_id),
                ("X-LF-Nonce", &n),
            ],
            &b,
        );
    }
    w.finish()
}

async fn check_error(r: reqwest::Response, status: u16, code: &str) -> reqwest::header::HeaderMap {
    assert_eq!(r.status().as_u16(), status);
    let headers = r.headers().clone();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(v["request_id"].as_str().is_some_and(|m| !m.is_empty()));
    headers
}

#[tokio::test]
async fn bad_requests_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_for(dir.path());
    config.http.max_request_bytes = 64 * 1024;
    config.http.max_parts = 5;
    config.http.rate_limit_per_second = 1;
    config.http.rate_limit_burst = 40;
    let mut t = TestServer::start_with(dir, config).await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let post = |b: Vec<u8>, ct: &str| {
        t.http
            .post(format!("{}/v1/ingest", t.base))
            .bearer_auth(&api_key)
            .header("content-type", ct.to_owned())
            .body(b)
            .send()
    };
    check_error(
        post(body(&key_id, &dek, 1), "application/json")
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    check_error(
        post(b"garbage".to_vec(), "multipart/mixed; boundary=b")
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    check_error(
        post(body("k_unknown", &dek, 1), "multipart/mixed; boundary=b")
            .await
            .unwrap(),
        400,
        "bad_request",
    )
    .await;
    check_error(
        post(body(&key_id, &dek, 6), "multipart/mixed; boundary=b")
            .await
            .unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    check_error(
        post(vec![b'x'; 70 * 1024], "multipart/mixed; boundary=b")
            .await
            .unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    let r = t
        .http
        .post(format!("{}/v1/ingest", t.base))
        .bearer_auth("eu-lf_notakey")
        .header("content-type", "multipart/mixed; boundary=b")
        .body(body(&key_id, &dek, 1))
        .send()
        .await
        .unwrap();
    check_error(r, 401, "unauthorized").await;
    // Nothing of the refused requests was stored.
    let (records, _) = t.query(&t.admin.clone(), json!({})).await;
    assert!(records.is_empty());

    // Exhaust the bucket (40, refilling at 1/s): a 429 with its headers follows.
    let mut limited = None;
    for _ in 0..60 {
        let r = post(body(&key_id, &dek, 1), "multipart/mixed; boundary=b")
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let h = check_error(
        limited.expect("rate limited within 60 requests"),
        429,
        "rate_limited",
    )
    .await;
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(h["x-ratelimit-limit"], "1");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(
        h["x-ratelimit-reset"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 1_700_000_000
    );
    t.stop().await;
}

#[tokio::test]
async fn signature_required_keys() {
    let mut t = TestServer::start().await;
    t.admin_post("/v1/admin/applications", json!({"name": "signed"}))
        .await;
    let k = t
        .admin_post(
            "/v1/admin/api-keys",
            json!({"application": "signed", "name": "s", "signature_required": true}),
        )
        .await;
    let api_key = k["api_key"].as_str().unwrap().to_owned();
    assert_eq!(k["signature_required"], true);
    let dek = Dek::generate().unwrap();
    let sk = signing_key(&api_key);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let complete = json!({"encrypted_secret": B64.encode(wrap_dek(&tenant_key().public_key(), &dek).unwrap())}).to_string();
    let send = |path: &'static str, b: Vec<u8>, ct: &'static str, sig: Option<(String, String)>| {
        let mut r = t
            .http
            .post(format!("{}{path}", t.base))
            .bearer_auth(&api_key)
            .header("content-type", ct)
            .body(b);
        if let Some((s, ts)) = sig {
            r = r
                .header("x-lf-signature", s)
                .header("x-lf-signature-timestamp", ts);
        }
        r.send()
    };
    // Unsigned: refused.
    check_error(
        send(
            "/v1/handshake/complete",
            complete.clone().into_bytes(),
            "application/json",
            None,
        )
        .await
        .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    // Signed: accepted.
    let ts = now();
    let sig = sign_request(
        &sk,
        "POST",
        "/v1/handshake/complete",
        ts,
        complete.as_bytes(),
    );
    let r = send(
        "/v1/handshake/complete",
        complete.clone().into_bytes(),
        "application/json",
        Some((sig, ts.to_string())),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let key_id = r.json::<Value>().await.unwrap()["key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let payload = body(&key_id, &dek, 2);
    let ts = now();
    let good = sign_request(&sk, "POST", "/v1/ingest", ts, &payload);
    // Tampered body, wrong path, stale clock: refused.
    let mut tampered = payload.clone();
    let last = tampered.len() - 20;
    tampered[last] ^= 1;
    check_error(
        send(
            "/v1/ingest",
            tampered,
            "multipart/mixed; boundary=b",
            Some((good.clone(), ts.to_string())),
        )
        .await
        .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let wrong_path = sign_request(&sk, "POST", "/v1/query", ts, &payload);
    check_error(
        send(
            "/v1/ingest",
            payload.clone(),
            "multipart/mixed; boundary=b",
            Some((wrong_path, ts.to_string())),
        )
        .await
        .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let old = ts - 600;
    let stale = sign_request(&sk, "POST", "/v1/ingest", old, &payload);
    let r = send(
        "/v1/ingest",
        payload.clone(),
        "multipart/mixed; boundary=b",
        Some((stale, old.to_string())),
    )
    .await
    .unwrap();
    // Told apart from a bad signature, with the server's clock, so a signer can correct.
    assert_eq!(r.status(), 401);
    let server_time: i64 = r.headers()["x-lf-server-time"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (server_time - (old + 600)).abs() < 60,
        "{server_time} vs {old}"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "clock_skew", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("away from the server's clock"),
        "{v}"
    );
    let r = send(
        "/v1/ingest",
        payload,
        "multipart/mixed; boundary=b",
        Some((good, ts.to_string())),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 202);
    t.stop().await;
}

#[tokio::test]
async fn agent_proposed_key_ids_register_idempotently() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("web").await;
    let pk = tenant_key().public_key();
    let w1 = B64.encode(wrap_dek(&pk, &Dek::generate().unwrap()).unwrap());
    let w2 = B64.encode(wrap_dek(&pk, &Dek::generate().unwrap()).unwrap());
    let id = format!("ak_{}", "0123456789abcdef".repeat(2));
    let complete = |wrapped: &str, key_id: &str| {
        t.http
            .post(format!("{}/v1/handshake/complete", t.base))
            .bearer_auth(&api_key)
            .json(&json!({"encrypted_secret": wrapped, "key_id": key_id}))
            .send()
    };
    for _ in 0..2 {
        let r = complete(&w1, &id).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["key_id"], id.as_str());
    }
    check_error(complete(&w2, &id).await.unwrap(), 409, "conflict").await;
    check_error(complete(&w1, "ak_short").await.unwrap(), 400, "bad_request").await;
    check_error(
        complete(&w1, "k_0123456789abcdef").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    t.stop().await;
}

#[tokio::test]
async fn storage_quota_is_507() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    logflux_server::set_quota(&t.config, "acme", Some(20_000))
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let r = t
            .http
            .post(format!("{}/v1/ingest", t.base))
            .bearer_auth(&api_key)
            .header("content-type", "multipart/mixed; boundary=b")
            .body(body(&key_id, &dek, 5))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        statuses.push(status);
        if status == 507 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "quota_exceeded");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("20000 bytes"),
                "{v}"
            );
            break;
        }
        assert_eq!(status, 202);
    }
    assert_eq!(statuses.last(), Some(&507), "{statuses:?}");
    assert!(statuses.len() > 2, "some requests fit before the quota");
    t.stop().await;
}

/// Bodies and query strings that are not what an endpoint takes get the documented 400 with
/// the JSON error body, never a plain-text 415 or 422 (found by schemathesis).
#[tokio::test]
async fn malformed_request_bodies_get_the_documented_error() {
    let t = TestServer::start().await;
    let post = |path: &str| {
        t.http
            .post(format!("{}{path}", t.base))
            .bearer_auth(&t.admin)
    };
    // No content type.
    let r = post("/v1/query").body("{}").send().await.unwrap();
    check_error(r, 400, "bad_request").await;
    // Not JSON.
    let r = post("/v1/admin/applications")
        .header("content-type", "application/json")
        .body("\u{fffd}\u{fffd}")
        .send()
        .await
        .unwrap();
    check_error(r, 400, "bad_request").await;
    // JSON of the wrong shape: the message names the field.
    let r = post("/v1/admin/tokens")
        .json(&json!({"name": "n", "scopes": ["read"], "expires_in_days": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expires_in_days"),
        "{v}"
    );
    // An unknown query parameter.
    let r = t
        .http
        .get(format!("{}/v1/admin/audit?limit=1&bogus=2", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    check_error(r, 400, "bad_request").await;
}
