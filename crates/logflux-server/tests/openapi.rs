//! The committed OpenAPI document and the router agree: every documented operation is routed,
//! every routed path is documented, the server serves the document, and it refuses every
//! value the document's bounds forbid.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use serde_json::{Value, json};

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

/// One step into a request body: a property, or the items of an array.
#[derive(Debug, Clone)]
enum Step {
    Prop(String),
    Item,
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => schema,
    }
}

/// A value that satisfies `schema`.
fn sample(doc: &Value, schema: &Value) -> Value {
    let s = resolve(doc, schema);
    if let Some(e) = s["enum"].as_array() {
        return e[0].clone();
    }
    if let Some(one) = s["oneOf"].as_array() {
        return sample(doc, &one[0]);
    }
    let ty = match &s["type"] {
        Value::Array(t) => t[0].as_str().unwrap_or("string"),
        t => t.as_str().unwrap_or("string"),
    };
    match ty {
        "integer" => s["minimum"].clone().as_i64().unwrap_or(1).into(),
        "array" => {
            let n = s["minItems"].as_u64().unwrap_or(0).max(1);
            Value::Array((0..n).map(|_| sample(doc, &s["items"])).collect())
        }
        "object" => Value::Object(Default::default()),
        "boolean" => true.into(),
        _ => "a".into(),
    }
}

/// Every documented bound of `schema`, each as (where, a value just outside it).
fn violations(doc: &Value, schema: &Value, at: &[Step], out: &mut Vec<(Vec<Step>, Value)>) {
    let s = resolve(doc, schema);
    let mut push = |v: Value| out.push((at.to_vec(), v));
    if let Some(m) = s["minimum"].as_i64() {
        push((m - 1).into());
    }
    if let Some(m) = s["maximum"].as_i64() {
        push((m + 1).into());
    }
    if s["enum"].is_array() {
        push("not-a-documented-value".into());
    }
    if s["pattern"].is_string() {
        push("!".into());
    }
    if let Some(n) = s["maxItems"].as_u64() {
        push(Value::Array(
            (0..=n).map(|_| sample(doc, &s["items"])).collect(),
        ));
    }
    if let Some(n) = s["minItems"].as_u64().filter(|&n| n > 0) {
        push(Value::Array(
            (1..n).map(|_| sample(doc, &s["items"])).collect(),
        ));
    }
    if let Some(props) = s["properties"].as_object() {
        for (name, p) in props {
            let mut next = at.to_vec();
            next.push(Step::Prop(name.clone()));
            violations(doc, p, &next, out);
        }
    }
    if s["type"] == "array" && s["items"].is_object() {
        let mut next = at.to_vec();
        next.push(Step::Item);
        violations(doc, &s["items"], &next, out);
    }
}

/// `base` with the value at `path` replaced by `bad` (an array item becomes a one-item array).
fn place(base: &Value, path: &[Step], bad: Value) -> Value {
    match path.split_first() {
        None => bad,
        Some((Step::Prop(p), rest)) => {
            let mut o = base.as_object().cloned().unwrap_or_default();
            let inner = place(o.get(p).unwrap_or(&Value::Null), rest, bad);
            o.insert(p.clone(), inner);
            Value::Object(o)
        }
        Some((Step::Item, rest)) => Value::Array(vec![place(
            base.as_array()
                .and_then(|a| a.first())
                .unwrap_or(&Value::Null),
            rest,
            bad,
        )]),
    }
}

/// Walks openapi.json: for every documented bound of every request body and query parameter,
/// the server refuses a value just outside it with 400 (not a clamp, not a 200).
#[tokio::test]
async fn every_documented_bound_is_enforced() {
    let mut t = TestServer::start().await;
    let (_, api_key) = t.app_with_key("web").await;
    let doc: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    // Valid bodies for operations with required fields; each violation replaces one field.
    let base = |method: &str, path: &str| -> Value {
        match (method, path) {
            ("post", "/v1/admin/applications") => json!({"name": "fresh"}),
            ("post", "/v1/admin/api-keys") => json!({"application": "web", "name": "k"}),
            ("post", "/v1/admin/tokens") => json!({"name": "t", "scopes": ["read"]}),
            ("post", "/v1/admin/erase") => json!({"application": "web", "from": 0, "to": 1}),
            ("post", "/v1/handshake/complete") => {
                json!({"encrypted_secret": B64.encode([1u8; 256])})
            }
            _ => json!({}),
        }
    };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let concrete = path.replace("{app}", "web");
            let credential = if op["security"][0].get("apiKey").is_some() {
                api_key.clone()
            } else {
                t.admin.clone()
            };
            let mut cases: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
            let m: reqwest::Method = method.to_uppercase().parse().unwrap();
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_object() {
                let mut found = Vec::new();
                violations(&doc, schema, &[], &mut found);
                for (at, bad) in found {
                    let body = place(&base(method, path), &at, bad);
                    let req = t
                        .http
                        .request(m.clone(), format!("{}{concrete}", t.base))
                        .bearer_auth(&credential)
                        .json(&body);
                    cases.push((body.to_string(), req));
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] != "query" {
                    continue;
                }
                let mut found = Vec::new();
                violations(&doc, &p["schema"], &[], &mut found);
                for (_, bad) in found {
                    let name = p["name"].as_str().unwrap();
                    let value = bad.to_string().trim_matches('"').to_owned();
                    let req = t
                        .http
                        .request(m.clone(), format!("{}{concrete}", t.base))
                        .bearer_auth(&credential)
                        .query(&[(name, value.as_str())]);
                    cases.push((format!("?{name}={value}"), req));
                }
            }
            for (what, req) in cases {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                let text = r.text().await.unwrap();
                assert_eq!(status, 400, "{method} {path} {what}: {text}");
                checked += 1;
            }
        }
    }
    // 26 bounds today: query (limit, entry_types, tokens, order), tail (entry_types, tokens),
    // names, scopes, regions, days, the handshake's key id and the audit page size.
    assert!(checked >= 26, "{checked}");
    t.stop().await;
}
