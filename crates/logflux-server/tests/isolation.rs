//! Tenant isolation: every endpoint refuses every wrong credential, and another tenant's valid
//! credential never returns anything of this tenant.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use logflux_crypto::{Dek, SealingKey, seal_sdk_part, wrap_dek};
use logflux_proto::multipart::Writer;
use logflux_server::catalog::Catalog;
use reqwest::Method;
use serde_json::{Value, json};

fn sha256(s: &str) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn every_endpoint_refuses_every_wrong_credential() {
    let mut t = TestServer::start().await;
    // Tenant A ("acme", from TestServer) with data.
    let (app_a, key_a) = t.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let dk_a = t
        .register_key(&key_a, &wrap_dek(&tenant_key().public_key(), &dek).unwrap())
        .await;
    let (nonce, body) = seal_sdk_part(
        &SealingKey::new(&dek),
        br#"{"message":"secret of A"}"#,
        true,
    )
    .unwrap();
    let mut w = Writer::new("b");
    let n64 = B64.encode(nonce);
    w.part(
        &[
            ("X-LF-Entry-Type", "1"),
            ("X-LF-Payload-Type", "1"),
            ("X-LF-Key-ID", &dk_a),
            ("X-LF-Nonce", &n64),
        ],
        &body,
    );
    let r = t
        .http
        .post(format!("{}/v1/ingest", t.base))
        .bearer_auth(&key_a)
        .header("content-type", w.content_type())
        .body(w.finish())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let (records, _) = t.query(&t.admin.clone(), json!({})).await;
    let record_a = records[0]["record_id"].as_str().unwrap().to_owned();
    let segment_a = records[0]["segment_id"].clone();
    let revoked = t
        .admin_post(
            "/v1/admin/tokens",
            json!({"name": "old", "scopes": ["admin"]}),
        )
        .await;
    let revoked_token = revoked["token"].as_str().unwrap().to_owned();
    let r = t
        .http
        .delete(format!(
            "{}/v1/admin/tokens/{}",
            t.base,
            revoked["id"].as_str().unwrap()
        ))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let read_only = t
        .admin_post(
            "/v1/admin/tokens",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    let read_token = read_only["token"].as_str().unwrap().to_owned();
    let key_list = t
        .http
        .get(format!("{}/v1/admin/api-keys", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let api_key_id_a = key_list["api_keys"][0]["id"].as_str().unwrap().to_owned();

    // An expired admin token of A, written straight into the catalog.
    let catalog = Catalog::connect(&t.config.catalog_url).await.unwrap();
    let tenant_a = catalog.tenant_by_name("acme").await.unwrap();
    let expired_token = "lf_pat_00000000000000000000000000000000000000000000expired";
    catalog
        .create_access_token(
            "pat_expired",
            &tenant_a.id,
            "expired",
            &sha256(expired_token),
            "lf_pat_0000",
            "admin",
            1,
        )
        .await
        .unwrap();

    // Tenant B, with its own admin token and ingest key.
    let b = logflux_server::init_tenant(&t.config, "globex", 90)
        .await
        .unwrap();
    let b_app = t
        .http
        .post(format!("{}/v1/admin/applications", t.base))
        .bearer_auth(&b.admin_token)
        .json(&json!({"name": "web"}))
        .send()
        .await
        .unwrap();
    assert_eq!(b_app.status(), 201, "tenants may reuse application names");
    let b_key: Value = t
        .http
        .post(format!("{}/v1/admin/api-keys", t.base))
        .bearer_auth(&b.admin_token)
        .json(&json!({"application": "web", "name": "k"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_b = b_key["api_key"].as_str().unwrap().to_owned();

    // What must never reach a caller that is not A.
    let secrets_of_a = [
        app_a.clone(),
        dk_a.clone(),
        record_a.clone(),
        api_key_id_a.clone(),
        revoked["id"].as_str().unwrap().to_owned(),
        tenant_a.id.clone(),
    ];

    let ingest_body = {
        let mut w = Writer::new("b");
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Key-ID", &dk_a),
                ("X-LF-Nonce", &n64),
            ],
            &body,
        );
        w.finish()
    };
    struct Endpoint {
        method: Method,
        path: String,
        body: Option<Vec<u8>>,
        content_type: &'static str,
        ingest: bool,
        admin: bool,
    }
    let ep =
        |method: Method, path: String, body: Option<Value>, ingest: bool, admin: bool| Endpoint {
            method,
            path,
            body: body.map(|b| b.to_string().into_bytes()),
            content_type: "application/json",
            ingest,
            admin,
        };
    let endpoints = vec![
        ep(
            Method::POST,
            "/v1/query".into(),
            Some(json!({})),
            false,
            false,
        ),
        ep(
            Method::POST,
            "/v1/records".into(),
            Some(json!({"records": [{"segment_id": segment_a, "record_id": record_a}]})),
            false,
            false,
        ),
        ep(
            Method::POST,
            "/v1/tail".into(),
            Some(json!({"after_segment": 0})),
            false,
            false,
        ),
        ep(Method::GET, format!("/v1/keys/{dk_a}"), None, false, false),
        ep(Method::GET, "/v1/applications".into(), None, false, false),
        ep(
            Method::GET,
            "/v1/admin/applications".into(),
            None,
            false,
            false,
        ),
        ep(
            Method::POST,
            "/v1/admin/applications".into(),
            Some(json!({"name": "intruder"})),
            false,
            true,
        ),
        ep(
            Method::PUT,
            "/v1/admin/applications/web/retention".into(),
            Some(json!({"days": 1})),
            false,
            true,
        ),
        ep(Method::GET, "/v1/admin/api-keys".into(), None, false, true),
        ep(
            Method::POST,
            "/v1/admin/api-keys".into(),
            Some(json!({"application": "web", "name": "x"})),
            false,
            true,
        ),
        ep(
            Method::DELETE,
            format!("/v1/admin/api-keys/{api_key_id_a}"),
            None,
            false,
            true,
        ),
        ep(Method::GET, "/v1/admin/tokens".into(), None, false, true),
        ep(
            Method::POST,
            "/v1/admin/tokens".into(),
            Some(json!({"name": "x", "scopes": ["admin"]})),
            false,
            true,
        ),
        ep(
            Method::DELETE,
            format!("/v1/admin/tokens/{}", read_only["id"].as_str().unwrap()),
            None,
            false,
            true,
        ),
        ep(
            Method::GET,
            "/v1/admin/public-key".into(),
            None,
            false,
            false,
        ),
        ep(
            Method::PUT,
            "/v1/admin/public-key".into(),
            Some(json!({"public_key_pem": tenant_key().public_key().to_pem()})),
            false,
            true,
        ),
        ep(Method::GET, "/v1/admin/audit".into(), None, false, true),
        ep(
            Method::POST,
            "/v1/handshake/init".into(),
            Some(json!({})),
            true,
            false,
        ),
        ep(
            Method::POST,
            "/v1/handshake/complete".into(),
            Some(json!({"encrypted_secret": B64.encode([0u8; 256])})),
            true,
            false,
        ),
        Endpoint {
            method: Method::POST,
            path: "/v1/ingest".into(),
            body: Some(ingest_body),
            content_type: "multipart/mixed; boundary=b",
            ingest: true,
            admin: false,
        },
    ];

    let mut checked = 0;
    for e in &endpoints {
        let creds: Vec<(&str, Option<String>)> = vec![
            ("no credential", None),
            ("wrong scheme", Some(format!("Basic {}", t.admin))),
            ("token scheme", Some(format!("Token {}", t.admin))),
            ("garbage bearer", Some("Bearer lf_pat_nope".into())),
            ("expired", Some(format!("Bearer {expired_token}"))),
            ("revoked", Some(format!("Bearer {revoked_token}"))),
            (
                "api key on a client endpoint",
                (!e.ingest).then(|| format!("Bearer {key_a}")),
            ),
            (
                "PAT on ingest",
                e.ingest.then(|| format!("Bearer {}", t.admin)),
            ),
            (
                "read-only token on admin",
                e.admin.then(|| format!("Bearer {read_token}")),
            ),
        ];
        for (what, cred) in creds {
            if (what == "api key on a client endpoint"
                || what == "PAT on ingest"
                || what == "read-only token on admin")
                && cred.is_none()
            {
                continue;
            }
            let mut req = t
                .http
                .request(e.method.clone(), format!("{}{}", t.base, e.path))
                .header("content-type", e.content_type);
            if let Some(c) = &cred {
                req = req.header("authorization", c);
            }
            if let Some(b) = &e.body {
                req = req.body(b.clone());
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(
                matches!(status, 401 | 403),
                "{} {} with {what}: {status} {text}",
                e.method,
                e.path
            );
            for s in &secrets_of_a {
                assert!(
                    !text.contains(s.as_str()),
                    "{} {} with {what} leaked {s}",
                    e.method,
                    e.path
                );
            }
            checked += 1;
        }
        // Tenant B's valid credential: refused, not found, or B's own (empty of A) answer.
        let cred_b = if e.ingest { &key_b } else { &b.admin_token };
        let mut req = t
            .http
            .request(e.method.clone(), format!("{}{}", t.base, e.path))
            .header("content-type", e.content_type)
            .bearer_auth(cred_b);
        if let Some(body) = &e.body {
            req = req.body(body.clone());
        }
        if e.path == "/v1/tail" {
            // A tail never ends by itself; read its first lines with a deadline instead.
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let chunk =
                tokio::time::timeout(std::time::Duration::from_millis(300), r.bytes()).await;
            if let Ok(Ok(bytes)) = chunk {
                let text = String::from_utf8_lossy(&bytes);
                for s in &secrets_of_a {
                    assert!(!text.contains(s.as_str()), "tail of B leaked {s}");
                }
            }
            continue;
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        // An error may echo what the caller itself sent; anything else of A is a leak.
        let sent = format!(
            "{}{}",
            e.path,
            String::from_utf8_lossy(e.body.as_deref().unwrap_or_default())
        );
        for s in secrets_of_a.iter().filter(|s| !sent.contains(s.as_str())) {
            assert!(
                !text.contains(s.as_str()),
                "{} {} with tenant B's credential leaked {s}: {text}",
                e.method,
                e.path
            );
        }
        if e.path.starts_with("/v1/keys/")
            || e.path.contains("/api-keys/")
            || e.path.contains("/tokens/pat_")
        {
            assert_eq!(
                status, 404,
                "{} {} with tenant B's credential: {text}",
                e.method, e.path
            );
        }
        if e.path == "/v1/ingest" {
            assert_eq!(status, 400, "A's data key is unknown to B: {text}");
        }
        checked += 1;
    }
    assert!(checked > 130, "{checked} combinations checked");

    // Nothing B did touched A: A's key still works and A's data is intact.
    let (records, _) = t.query(&t.admin.clone(), json!({})).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["record_id"], record_a.as_str());
    let keys: Value = t
        .http
        .get(format!("{}/v1/admin/api-keys", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        keys["api_keys"][0]["revoked_ns"].is_null(),
        "B could not revoke A's key"
    );
    let pk: Value = t
        .http
        .get(format!("{}/v1/admin/public-key", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        pk["fingerprint"],
        tenant_key().public_key().fingerprint().to_string()
    );
    t.stop().await;
}
