//! Application names cannot be confused with each other or with ids, so a path or a query
//! that names an application reaches exactly that one; and what each token scope grants.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn send(
    t: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = t
        .http
        .request(method, format!("{}{path}", t.base))
        .bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn application_names_are_checked_folded_and_never_read_as_ids() {
    let mut t = TestServer::start().await;
    let admin = t.admin.clone();
    let create = |name: &str| {
        send(
            &t,
            reqwest::Method::POST,
            "/v1/admin/applications",
            &admin,
            Some(json!({"name": name})),
        )
    };
    let too_long = "a".repeat(64);
    for bad in [
        "",
        ".",
        "..",
        "-web",
        "_web",
        "a/b",
        "a b",
        "wéb",
        "a\u{0}b",
        &too_long,
        "app_x",
        "APP_0123456789abcdef",
    ] {
        let (status, v) = create(bad).await;
        assert_eq!(status, 400, "{bad:?}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("application name"),
            "{bad:?}: {v}"
        );
    }
    let (status, web) = create("web").await;
    assert_eq!(status, 201, "{web}");
    for same in ["Web", "WEB"] {
        let (status, v) = create(same).await;
        assert_eq!(status, 409, "{same}: {v}");
        assert_eq!(v["error"]["code"], "conflict");
    }
    let (status, mixed) = create("Checkout.V2").await;
    assert_eq!(status, 201);
    assert_eq!(mixed["name"], "checkout.v2", "stored case-folded");
    // Another application's id is not a name.
    let id = web["id"].as_str().unwrap();
    assert!(id.starts_with("app_"), "{id}");
    let (status, _) = create(id).await;
    assert_eq!(status, 400);

    // Lookups ignore case and reach the one application.
    let (status, v) = send(
        &t,
        reqwest::Method::PUT,
        "/v1/admin/applications/WEB/retention",
        &admin,
        Some(json!({"days": 7})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], web["id"]);
    t.stop().await;
}

#[tokio::test]
async fn an_id_reaches_its_application_even_when_an_older_name_equals_it() {
    // A catalog written before names were checked may hold an application named like another
    // application's id; the retention change addressed to that id must reach the id's owner.
    let mut t = TestServer::start().await;
    let admin = t.admin.clone();
    let (_, me) = send(&t, reqwest::Method::GET, "/v1/me", &admin, None).await;
    let tenant = me["tenant_id"].as_str().unwrap();
    let catalog = logflux_server::catalog::Catalog::connect(&t.config.catalog_url)
        .await
        .unwrap();
    let target = "app_00000000000000b2";
    catalog
        .create_application("app_00000000000000a1", tenant, target)
        .await
        .unwrap();
    catalog
        .create_application(target, tenant, "billing")
        .await
        .unwrap();
    catalog.close().await;
    let (status, v) = send(
        &t,
        reqwest::Method::PUT,
        &format!("/v1/admin/applications/{target}/retention"),
        &admin,
        Some(json!({"days": 3})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], target);
    assert_eq!(v["name"], "billing");
    let (_, apps) = send(&t, reqwest::Method::GET, "/v1/applications", &admin, None).await;
    for a in apps["applications"].as_array().unwrap() {
        let expected = if a["id"] == target {
            json!(3)
        } else {
            Value::Null
        };
        assert_eq!(a["retention_days"], expected, "{a}");
    }
    t.stop().await;
}

#[tokio::test]
async fn the_write_scope_provisions_ingest_but_does_not_administer() {
    let mut t = TestServer::start().await;
    let admin = t.admin.clone();
    let token = |scopes: Value| {
        let t = &t;
        let admin = admin.clone();
        async move {
            let (status, v) = send(
                t,
                reqwest::Method::POST,
                "/v1/admin/tokens",
                &admin,
                Some(json!({"name": "scoped", "scopes": scopes})),
            )
            .await;
            assert_eq!(status, 201, "{v}");
            v["token"].as_str().unwrap().to_owned()
        }
    };
    let write = token(json!(["write"])).await;
    let read = token(json!(["read"])).await;
    use reqwest::Method as M;
    let (status, _) = send(&t, M::GET, "/v1/me", &write, None).await;
    assert_eq!(status, 200, "write includes read");
    let (status, v) = send(
        &t,
        M::POST,
        "/v1/admin/applications",
        &write,
        Some(json!({"name": "deploy"})),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = send(
        &t,
        M::PUT,
        "/v1/admin/applications/deploy/retention",
        &write,
        Some(json!({"days": 30})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, key) = send(
        &t,
        M::POST,
        "/v1/admin/api-keys",
        &write,
        Some(json!({"application": "deploy", "name": "ci"})),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let (status, _) = send(&t, M::GET, "/v1/admin/api-keys", &write, None).await;
    assert_eq!(status, 200);
    let (status, _) = send(
        &t,
        M::DELETE,
        &format!("/v1/admin/api-keys/{}", key["id"].as_str().unwrap()),
        &write,
        None,
    )
    .await;
    assert_eq!(status, 204);
    // Not: access tokens, the tenant key, erasure, the audit log.
    for (method, path, body) in [
        (
            M::POST,
            "/v1/admin/tokens",
            Some(json!({"name": "x", "scopes": ["admin"]})),
        ),
        (M::GET, "/v1/admin/tokens", None),
        (
            M::PUT,
            "/v1/admin/public-key",
            Some(json!({"public_key_pem": "x"})),
        ),
        (
            M::POST,
            "/v1/admin/erase",
            Some(json!({"application": "deploy", "from": 0, "to": 1})),
        ),
        (M::GET, "/v1/admin/audit", None),
    ] {
        let (status, v) = send(&t, method.clone(), path, &write, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
    }
    // And read provisions nothing.
    let (status, _) = send(
        &t,
        M::POST,
        "/v1/admin/applications",
        &read,
        Some(json!({"name": "nope"})),
    )
    .await;
    assert_eq!(status, 403);
    t.stop().await;
}
