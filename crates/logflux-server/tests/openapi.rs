//! The committed OpenAPI document and the router agree: every documented operation is routed,
//! every routed path is documented, and the server serves the document.
#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::Value;

#[tokio::test]
async fn openapi_matches_the_router() {
    let mut t = TestServer::start().await;
    let served: Value = t
        .http
        .get(format!("{}/openapi.json", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    assert_eq!(served, committed);
    let paths = committed["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path
            .replace("{key_id}", "k_x")
            .replace("{app}", "web")
            .replace("{id}", "x");
        for (method, _) in item.as_object().unwrap() {
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let r = t
                .http
                .request(m, format!("{}{concrete}", t.base))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap();
            // Unrouted requests get a bare 404 or 405 from the router; ours carry an error body.
            assert!(
                status != 405 && (status != 404 || body.contains("\"code\"")),
                "{method} {path}: {status} {body}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 25, "{operations}");
    // And a path that is not documented is not served.
    let r = t
        .http
        .get(format!("{}/v1/undocumented", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    t.stop().await;
}

#[tokio::test]
async fn every_route_in_the_source_is_documented() {
    let committed: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    let source = include_str!("../src/http.rs");
    let mut routes = 0;
    for (at, _) in source.match_indices(".route(") {
        let rest = &source[at + 7..];
        let open = rest.find('"').unwrap();
        let path = &rest[open + 1..open + 1 + rest[open + 1..].find('"').unwrap()];
        assert!(
            committed["paths"].get(path).is_some(),
            "route {path} is not in openapi.json (edit tools/openapi.py)"
        );
        routes += 1;
    }
    assert!(routes >= 20, "{routes}");
}
