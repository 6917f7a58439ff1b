//! Scale-out: two stateless servers share one PostgreSQL catalog and one S3-compatible bucket.
//! Records ingested through one are found through the other, and a record sent to both at the
//! same instant is stored once.
//!
//! Needs PostgreSQL (`LOGFLUX_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432/test)
//! and an S3 server (`LOGFLUX_TEST_S3_URL` plus `AWS_*`; `tools/s3-test-server.sh` starts
//! Garage). Skips with a message when either is missing, unless `LOGFLUX_REQUIRE_POSTGRES=1`
//! or `LOGFLUX_REQUIRE_S3=1` (CI) make that a failure. The race test falls back to a local
//! directory shared by both servers when no S3 server is configured (the race is decided by
//! the catalog, not the store).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use logflux_crypto::{Dek, SealingKey, seal_sdk_part, wrap_dek};
use logflux_proto::multipart::Writer;
use logflux_server::{Server, ServerConfig};
use serde_json::json;
use sqlx::Row as _;

fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v == "1")
}

async fn fresh_postgres_url() -> Option<String> {
    let admin_url = std::env::var("LOGFLUX_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let admin = match sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&admin_url)
        .await
    {
        Ok(p) => p,
        Err(e) if required("LOGFLUX_REQUIRE_POSTGRES") => {
            panic!("PostgreSQL required but {admin_url} is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("skipping: PostgreSQL at {admin_url} unreachable ({e})");
            return None;
        }
    };
    let db = format!(
        "logflux_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .unwrap();
    let _ = sqlx::query("SELECT 1 AS x")
        .fetch_one(&admin)
        .await
        .unwrap()
        .try_get::<i32, _>("x");
    admin.close().await;
    Some(format!("{}/{db}", admin_url.rsplit_once('/').unwrap().0))
}

fn s3_url() -> Option<String> {
    match std::env::var("LOGFLUX_TEST_S3_URL") {
        Ok(u) => Some(format!(
            "{}/scaleout-{}",
            u.trim_end_matches('/'),
            ulid::Ulid::new().to_string().to_lowercase()
        )),
        Err(_) if required("LOGFLUX_REQUIRE_S3") => {
            panic!("S3 required but LOGFLUX_TEST_S3_URL is not set (tools/s3-test-server.sh)")
        }
        Err(_) => {
            eprintln!(
                "skipping: no S3 server (set LOGFLUX_TEST_S3_URL and AWS_*; tools/s3-test-server.sh starts one)"
            );
            None
        }
    }
}

#[tokio::test]
async fn two_servers_share_postgres_and_s3() {
    let (Some(pg), Some(s3)) = (fresh_postgres_url().await, s3_url()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config: ServerConfig = common::config_for(dir.path());
    config.catalog_url = pg;
    config.store_url = s3;
    let mut a = TestServer::start_with(dir, config.clone()).await;
    let b = Server::start(config).await.unwrap();
    let base_b = format!("http://{}", b.local_addr());

    let (_, api_key) = a.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let key_id = a
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    let mut w = Writer::new("b");
    let mut bodies = Vec::new();
    for i in 0..20 {
        bodies.push(
            seal_sdk_part(
                &SealingKey::new(&dek),
                format!("{{\"message\":\"m{i}\"}}").as_bytes(),
                true,
            )
            .unwrap(),
        );
    }
    for (nonce, body) in &bodies {
        let n = B64.encode(nonce);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Key-ID", &key_id),
                ("X-LF-Nonce", &n),
            ],
            body,
        );
    }
    let payload = w.finish();
    // Ingest through A; the same request retried through B is recognised as a duplicate.
    for (base, want_accepted) in [(&a.base, 20), (&base_b, 0)] {
        let r = a
            .http
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(&api_key)
            .header("content-type", "multipart/mixed; boundary=b")
            .body(payload.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["accepted"], want_accepted, "{v}");
    }
    // Query through B.
    let r = a
        .http
        .post(format!("{base_b}/v1/query"))
        .bearer_auth(&a.admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let records = text
        .lines()
        .filter(|l| l.contains("\"type\":\"record\""))
        .count();
    assert_eq!(records, 20, "{text}");

    // A tail on B sees what is ingested through A (B polls the shared catalog).
    let resp = a
        .http
        .post(format!("{base_b}/v1/tail"))
        .bearer_auth(&a.admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let (nonce, body) =
        seal_sdk_part(&SealingKey::new(&dek), b"{\"message\":\"live\"}", true).unwrap();
    let mut w = Writer::new("b");
    let n = B64.encode(nonce);
    w.part(
        &[
            ("X-LF-Entry-Type", "1"),
            ("X-LF-Payload-Type", "1"),
            ("X-LF-Key-ID", &key_id),
            ("X-LF-Nonce", &n),
        ],
        &body,
    );
    let r = a
        .http
        .post(format!("{}/v1/ingest", a.base))
        .bearer_auth(&api_key)
        .header("content-type", "multipart/mixed; boundary=b")
        .body(w.finish())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mut buf = String::new();
    while !buf.contains("\"type\":\"record\"") {
        use futures_util::StreamExt as _;
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("tail on B stalled")
            .unwrap()
            .unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    drop(stream);
    b.shutdown().await.unwrap();
    a.stop().await;
}

/// S3 when configured (as in CI), else a directory both servers share.
fn s3_or_shared_dir(dir: &std::path::Path) -> String {
    if (std::env::var("LOGFLUX_TEST_S3_URL").is_ok() || required("LOGFLUX_REQUIRE_S3"))
        && let Some(url) = s3_url()
    {
        return url;
    }
    eprintln!(
        "no S3 server: both servers share the directory {}",
        dir.display()
    );
    dir.join("shared-objects").display().to_string()
}

/// A retry racing its original on another server: the same record reaches two servers at the
/// same instant, 200 times. Each record must be stored (and found) exactly once, and exactly
/// one of the two answers may count it as accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_sent_to_two_servers_at_once_is_stored_once() {
    let Some(pg) = fresh_postgres_url().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config: ServerConfig = common::config_for(dir.path());
    config.catalog_url = pg;
    config.store_url = s3_or_shared_dir(dir.path());
    let mut a = TestServer::start_with(dir, config.clone()).await;
    let b = Server::start(config).await.unwrap();
    let base_b = format!("http://{}", b.local_addr());

    let (_, api_key) = a.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let key_id = a
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    let sealing = SealingKey::new(&dek);
    const RACES: usize = 200;
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut races = Vec::new();
    for i in 0..RACES {
        let (nonce, body) = seal_sdk_part(
            &sealing,
            format!("{{\"message\":\"race {i}\"}}").as_bytes(),
            true,
        )
        .unwrap();
        let mut w = Writer::new("b");
        let n = B64.encode(nonce);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Key-ID", &key_id),
                ("X-LF-Nonce", &n),
            ],
            &body,
        );
        let payload = w.finish();
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let permit = limit.clone().acquire_owned().await.unwrap();
        let mut sends = Vec::new();
        for base in [a.base.clone(), base_b.clone()] {
            let (http, api_key, payload, barrier) = (
                a.http.clone(),
                api_key.clone(),
                payload.clone(),
                barrier.clone(),
            );
            sends.push(tokio::spawn(async move {
                let req = http
                    .post(format!("{base}/v1/ingest"))
                    .bearer_auth(&api_key)
                    .header("content-type", "multipart/mixed; boundary=b")
                    .body(payload);
                barrier.wait().await;
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 202);
                let v: serde_json::Value = r.json().await.unwrap();
                v["accepted"].as_u64().unwrap()
            }));
        }
        races.push(tokio::spawn(async move {
            let mut accepted = 0;
            for s in sends {
                accepted += s.await.unwrap();
            }
            drop(permit);
            accepted
        }));
    }
    let mut double_accepts = 0;
    for r in races {
        let accepted = r.await.unwrap();
        assert!(accepted >= 1, "a race stored nothing");
        double_accepts += usize::from(accepted > 1);
    }

    // Every record is found exactly once, through either server.
    let mut seen: std::collections::HashMap<String, usize> = Default::default();
    let mut cursor = serde_json::Value::Null;
    loop {
        let (records, end) = a
            .query(
                &a.admin,
                json!({"order": "oldest", "limit": 1000, "cursor": cursor}),
            )
            .await;
        for r in records {
            *seen
                .entry(r["record_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        if end["cursor"].is_null() {
            break;
        }
        cursor = end["cursor"].clone();
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    assert_eq!(
        (seen.len(), twice, double_accepts),
        (RACES, 0, 0),
        "(distinct records, records stored twice, races both servers accepted)"
    );
    b.shutdown().await.unwrap();
    a.stop().await;
}
