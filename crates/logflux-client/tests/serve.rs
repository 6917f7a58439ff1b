//! `logflux serve` (started by `logflux up`) end to end: Grafana's exact requests
//! (tests/fixtures/grafana, taken from Grafana's Loki data source source code — a real Grafana
//! could not be run here) replayed against a real stack, every answer validated against
//! Loki's documented JSON shapes and compared with `logflux search`; the access guard; bad
//! input; the cache; nothing decrypted on disk.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::Stack;
use logflux_proto::timefmt;
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;
const CANARY: &str = "canary-7f3e9a-decrypted-only-in-memory";

/// Entries sent: (payload, source, level number, region).
fn entries() -> Vec<(String, &'static str, u8, &'static str)> {
    let words = [
        "upstream timeout after 30s",
        "connection refused by db-1",
        "user_id=42 logged in",
        CANARY,
    ];
    (0..24)
        .map(|i| {
            (
                format!("{} #{i}", words[i % 4]),
                if i % 3 == 0 { "worker" } else { "api" },
                (i % 8) as u8 + 1,
                if i % 2 == 0 { "eu" } else { "us" },
            )
        })
        .collect()
}

async fn stack_with_entries() -> Stack {
    let stack = Stack::start().await;
    let lines: Vec<Value> = entries()
        .iter()
        .map(|(p, s, l, r)| {
            json!({"payload": p, "source": s, "entryType": 1, "logLevel": l, "metadata": {"region": r}})
        })
        .collect();
    stack.send_unix(&lines).await;
    // The self-test entry of `logflux up`, plus ours.
    stack.wait_for_entries(lines.len() + 1).await;
    stack
}

struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    fn new(stack: &Stack) -> Client {
        Client {
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: stack.var("LOGFLUX_SERVE_URL").to_owned(),
            token: stack.var("LOGFLUX_SERVE_TOKEN").to_owned(),
        }
    }

    /// GET with basic auth (any user, the token as password), as Grafana sends it.
    async fn get(&self, path: &str, params: &[(&str, String)]) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .basic_auth("grafana", Some(&self.token))
            .query(params)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "no CORS header, ever"
        );
        (status, r.text().await.unwrap())
    }

    async fn json(&self, path: &str, params: &[(&str, String)]) -> Value {
        let (status, body) = self.get(path, params).await;
        assert_eq!(status, 200, "{path} {params:?}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn window() -> (i64, i64) {
    let now = timefmt::now_ns();
    (now - 3600 * S, now + 60 * S)
}

fn labels_ok(v: &Value) {
    let m = v.as_object().expect("labels are an object");
    assert!(
        m.values().all(Value::is_string),
        "label values are strings: {v}"
    );
}

/// Loki's documented shapes (HTTP API reference): the envelope and each result type.
fn validate(v: &Value, result_type: &str) {
    assert_eq!(v["status"], "success", "{v}");
    let data = &v["data"];
    assert_eq!(data["resultType"], result_type, "{v}");
    assert!(data["stats"].is_object() || result_type == "vector", "{v}");
    match result_type {
        "streams" => {
            for s in data["result"].as_array().unwrap() {
                labels_ok(&s["stream"]);
                for val in s["values"].as_array().unwrap() {
                    let a = val.as_array().unwrap();
                    assert!(a.len() == 2 || a.len() == 3, "{val}");
                    let ns: i64 = a[0].as_str().unwrap().parse().unwrap();
                    assert!(ns > 0);
                    assert!(a[1].is_string());
                    if a.len() == 3 {
                        assert!(a[2].is_object());
                    }
                }
            }
        }
        "matrix" => {
            for s in data["result"].as_array().unwrap() {
                labels_ok(&s["metric"]);
                for p in s["values"].as_array().unwrap() {
                    let p = p.as_array().unwrap();
                    assert_eq!(p.len(), 2);
                    assert!(p[0].is_number());
                    p[1].as_str().unwrap().parse::<f64>().unwrap();
                }
            }
        }
        "vector" => {
            for s in data["result"].as_array().unwrap() {
                labels_ok(&s["metric"]);
                let p = s["value"].as_array().unwrap();
                assert_eq!(p.len(), 2);
                assert!(p[0].is_number());
                p[1].as_str().unwrap().parse::<f64>().unwrap();
            }
        }
        "scalar" => {
            let p = data["result"].as_array().unwrap();
            assert!(p[0].is_number() && p[1].is_string());
        }
        other => panic!("unknown result type {other}"),
    }
}

fn validate_shape(v: &Value, shape: &str) {
    match shape {
        "strings" => {
            assert_eq!(v["status"], "success");
            assert!(v["data"].as_array().unwrap().iter().all(Value::is_string));
        }
        "label_sets" => {
            assert_eq!(v["status"], "success");
            v["data"].as_array().unwrap().iter().for_each(labels_ok);
        }
        "index_stats" => {
            for k in ["streams", "chunks", "entries", "bytes"] {
                assert!(v[k].is_u64(), "{k}: {v}");
            }
        }
        "detected_labels" => {
            for l in v["detectedLabels"].as_array().unwrap() {
                assert!(l["label"].is_string() && l["cardinality"].is_u64(), "{l}");
            }
        }
        // Loki's `DetectedFieldsResponse`: `fields` and `limit` only when something was found.
        "detected_fields" => {
            for f in v["fields"].as_array().unwrap() {
                assert!(f["label"].is_string() && f["cardinality"].is_u64(), "{f}");
                let t = f["type"].as_str().unwrap();
                assert!(
                    ["string", "int", "float", "boolean", "duration", "bytes"].contains(&t),
                    "{f}"
                );
                match &f["parsers"] {
                    Value::Null => {}
                    Value::Array(p) => assert!(
                        !p.is_empty() && p.iter().all(|p| p == "json" || p == "logfmt"),
                        "{f}"
                    ),
                    other => panic!("parsers: {other}"),
                }
            }
            assert!(v["limit"].is_u64(), "{v}");
        }
        "detected_field_values" => {
            assert!(v["values"].as_array().unwrap().iter().all(Value::is_string));
            assert!(v["limit"].is_u64(), "{v}");
        }
        "buildinfo" => assert!(v["version"].is_string()),
        other => panic!("unknown shape {other}"),
    }
}

#[tokio::test]
async fn grafanas_requests_are_answered_in_lokis_shapes_with_what_search_finds() {
    let stack = stack_with_entries().await;
    let c = Client::new(&stack);
    let (start, end) = window();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/grafana");
    let mut replayed = 0;
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    fixtures.sort();
    for path in fixtures {
        let f: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut rb = c
            .http
            .get(format!("{}{}", c.url, f["path"].as_str().unwrap()))
            .basic_auth("admin", Some(&c.token));
        let params: Vec<(String, String)> = f["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let v = p[1]
                    .as_str()
                    .unwrap()
                    .replace("$START_NS", &start.to_string())
                    .replace("$END_NS", &end.to_string());
                (p[0].as_str().unwrap().to_owned(), v)
            })
            .collect();
        rb = rb.query(&params);
        for (k, v) in f["headers"].as_object().unwrap() {
            rb = rb.header(k.as_str(), v.as_str().unwrap());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(
            status,
            f["expect"]["status"].as_u64().unwrap() as u16,
            "{name}: {body}"
        );
        replayed += 1;
        if status != 200 {
            continue;
        }
        let v: Value = serde_json::from_str(&body).unwrap();
        if let Some(t) = f["expect"]["resultType"].as_str() {
            validate(&v, t);
        }
        if let Some(s) = f["expect"]["shape"].as_str() {
            validate_shape(&v, s);
        }
        match name.as_str() {
            // Grafana's "Save & test" checks one sample of value 2.
            "health_check.json" => {
                let r = v["data"]["result"].as_array().unwrap();
                assert_eq!(r.len(), 1, "{v}");
                assert_eq!(r[0]["value"][1], "2", "{v}");
            }
            "logs_range.json" => {
                let got = stream_lines(&v);
                let want = entries().into_iter().filter(|e| e.1 == "api").count();
                assert_eq!(got.len(), want, "{v}");
                // Metadata that is not a stream label travels folded into the labels (Loki's
                // default encoding).
                for s in v["data"]["result"].as_array().unwrap() {
                    assert_eq!(s["stream"]["app"], "default");
                    assert_eq!(s["stream"]["source"], "api");
                    assert!(s["stream"]["region"].is_string(), "{s}");
                }
            }
            "logs_volume.json" => {
                let mut total = 0.0;
                for s in v["data"]["result"].as_array().unwrap() {
                    assert!(s["metric"]["level"].is_string(), "{s}");
                    // count_over_time[60s] per 60 s step: each entry counted once.
                    total += s["values"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
                        .sum::<f64>();
                }
                assert_eq!(total as usize, entries().len() + 1, "{v}");
            }
            "metric_instant.json" => {
                assert_eq!(
                    v["data"]["result"][0]["value"][1],
                    (entries().len() + 1).to_string(),
                    "{v}"
                );
            }
            "labels.json" => {
                let l: BTreeSet<&str> = v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                for want in ["app", "level", "source", "type"] {
                    assert!(l.contains(want), "{want}: {v}");
                }
            }
            "label_values.json" => {
                let l: BTreeSet<&str> = v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap())
                    .collect();
                assert!(l.contains("error") && l.contains("debug"), "{v}");
            }
            "series.json" => {
                for s in v["data"].as_array().unwrap() {
                    assert_eq!(s["source"], "api", "{s}");
                }
            }
            "index_stats.json" => {
                assert_eq!(v["entries"].as_u64().unwrap() as usize, entries().len() + 1);
            }
            // Of the lines, only "user_id=42 logged in #N" has a logfmt pair with a value.
            "detected_fields.json" => {
                let f = |n: &str| {
                    v["fields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|f| f["label"] == n)
                        .unwrap_or_else(|| panic!("no {n}: {v}"))
                        .clone()
                };
                assert_eq!(
                    f("user_id"),
                    json!({"label": "user_id", "type": "int", "cardinality": 1, "parsers": ["logfmt"]})
                );
                assert_eq!(
                    f("region"),
                    json!({"label": "region", "type": "string", "cardinality": 2, "parsers": null})
                );
                assert_eq!(v["limit"], 1000);
            }
            "detected_field_values.json" => {
                assert_eq!(v, json!({"values": ["42"], "limit": 1000}));
            }
            _ => {}
        }
    }
    assert!(replayed >= 16, "{replayed} fixtures");

    // The same filter through `logflux search` and through LogQL: the same entries.
    for (args, logql) in [
        (
            &["--source", "api", "--level", "err"][..],
            r#"{source="api", level=~"emergency|alert|critical|error"}"#,
        ),
        (
            &["--source", "worker", "--contains", "refused"][..],
            r#"{source="worker"} |= "refused""#,
        ),
        (&["-m", "region=eu"][..], r#"{region="eu"}"#),
        (&["timeout"][..], r#"{app="default"} |~ `(?i)\btimeout\b`"#),
    ] {
        let mut all = vec!["--since", "1h"];
        all.extend_from_slice(args);
        let (_, searched) = stack.search(&all);
        let v = c
            .json(
                "/loki/api/v1/query_range",
                &[
                    ("query", logql.to_owned()),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("limit", "5000".into()),
                ],
            )
            .await;
        validate(&v, "streams");
        let mut a: Vec<String> = searched
            .iter()
            .map(|e| e["payload"].as_str().unwrap().to_owned())
            .collect();
        let mut b = stream_lines(&v);
        a.sort();
        b.sort();
        assert!(!a.is_empty(), "{args:?}");
        assert_eq!(a, b, "search {args:?} and {logql}");
    }

    // Categorized labels on request (Loki 3): stream labels apart from structured metadata.
    let r = c
        .http
        .get(format!("{}/loki/api/v1/query_range", c.url))
        .bearer_auth(&c.token)
        .header("X-Loki-Response-Encoding-Flags", "categorize-labels")
        .query(&[
            ("query", r#"{source="worker"}"#.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    validate(&v, "streams");
    assert_eq!(v["data"]["encodingFlags"], json!(["categorize-labels"]));
    for s in v["data"]["result"].as_array().unwrap() {
        assert!(s["stream"].get("region").is_none(), "{s}");
        for val in s["values"].as_array().unwrap() {
            assert!(val[2]["structuredMetadata"]["region"].is_string(), "{val}");
        }
    }

    // POST form, as Grafana sends when its HTTP method is POST; `$__auto` left literal.
    let r = c
        .http
        .post(format!("{}/loki/api/v1/query_range", c.url))
        .bearer_auth(&c.token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            reqwest::Url::parse_with_params(
                "http://form.invalid/",
                &[
                    (
                        "query",
                        "sum by (level) (count_over_time({app=\"default\"} | drop __error__ [$__auto]))"
                            .to_owned(),
                    ),
                    ("start", start.to_string()),
                    ("end", end.to_string()),
                    ("step", "60s".into()),
                ],
            )
            .unwrap()
            .query()
            .unwrap()
            .to_owned(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    validate(&r.json().await.unwrap(), "matrix");

    // The cache: the same metric query again decrypts nothing.
    let q = [
        (
            "query",
            "sum(count_over_time({app=\"default\"}[2h]))".to_owned(),
        ),
        ("time", end.to_string()),
    ];
    let first = c.json("/loki/api/v1/query", &q).await;
    let again = c.json("/loki/api/v1/query", &q).await;
    assert_eq!(first["data"]["result"], again["data"]["result"]);
    let chunk = &again["data"]["stats"]["cache"]["chunk"];
    assert_eq!(chunk["entriesStored"], 0, "{again}");
    assert!(chunk["entriesFound"].as_u64().unwrap() > 0, "{again}");

    // Nothing decrypted is written to disk: not in the stack's directory (config, keys,
    // server data, agent spool), not in HOME.
    let mut stack_files = Vec::new();
    walk(stack.tmp.path(), &mut stack_files);
    assert!(!stack_files.is_empty());
    for f in stack_files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            memchr_find(&bytes, CANARY.as_bytes()).is_none(),
            "{} holds a decrypted payload",
            f.display()
        );
    }
}

/// Lines of known times, levels and formats for the field and volume endpoints:
/// (seconds after the base, level number, region, payload).
fn field_entries() -> Vec<(i64, u8, &'static str, &'static str)> {
    vec![
        (0, 7, "eu", r#"{"status":200,"path":"/a","took":"15ms"}"#),
        (60, 5, "us", r#"{"status":404,"path":"/b","took":"1.5s"}"#),
        (600, 7, "eu", "user=alice size=10KB ok=true"),
        (660, 4, "eu", "connection refused by db-1"),
        (1200, 4, "us", r#"{"status":500,"path":"/a"}"#),
    ]
}

#[tokio::test]
async fn fields_and_volume_over_time_are_lokis_for_known_entries() {
    let stack = Stack::start().await;
    let c = Client::new(&stack);
    // Steps of 600 s from a base on that grid, 40 to 50 minutes ago.
    let now = timefmt::now_ns();
    let base = now - now.rem_euclid(600 * S) - 2400 * S;
    let lines: Vec<Value> = field_entries()
        .iter()
        .map(|(dt, level, region, p)| {
            json!({"payload": p, "source": "fields", "entryType": 1, "logLevel": level,
                   "metadata": {"region": region},
                   "timestamp": timefmt::format_rfc3339(base + dt * S)})
        })
        .collect();
    stack.send_unix(&lines).await;
    stack.wait_for_entries(lines.len() + 1).await;
    let sel = r#"{source="fields"}"#;
    let (start, end) = (base - 600 * S, now + 60 * S);
    let range = |extra: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("query", sel.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ];
        p.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        p
    };
    let len = |i: usize| field_entries()[i].3.len() as u64;
    // A step's point is stamped with its last millisecond.
    let stamp = |k: i64| (base + (k + 1) * 600 * S - 1_000_000) as f64 / S as f64;
    let points = |v: &Value| -> Vec<(f64, u64)> {
        v["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_f64().unwrap(),
                    p[1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    };
    let same = |got: Vec<(f64, u64)>, want: Vec<(f64, u64)>| {
        assert_eq!(got.len(), want.len(), "{got:?} {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!((g.0 - w.0).abs() < 1e-6 && g.1 == w.1, "{got:?} {want:?}");
        }
    };

    // volume_range by the selector's labels: one series, bytes per 600 s step.
    let v = c
        .json(
            "/loki/api/v1/index/volume_range",
            &range(&[("step", "600s")]),
        )
        .await;
    validate(&v, "matrix");
    let r = v["data"]["result"].as_array().unwrap();
    assert_eq!(r.len(), 1, "{v}");
    assert_eq!(r[0]["metric"], json!({"source": "fields"}));
    same(
        points(&r[0]),
        vec![
            (stamp(0), len(0) + len(1)),
            (stamp(1), len(2) + len(3)),
            (stamp(2), len(4)),
        ],
    );

    // By level: each step's own series; the largest first point first.
    let v = c
        .json(
            "/loki/api/v1/index/volume_range",
            &range(&[("step", "600"), ("targetLabels", "level")]),
        )
        .await;
    validate(&v, "matrix");
    let by: Vec<(String, Vec<(f64, u64)>)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["metric"]["level"].as_str().unwrap().to_owned(), points(s)))
        .collect();
    assert_eq!(by.len(), 3, "{v}");
    let get = |l: &str| by.iter().find(|(n, _)| n == l).unwrap().1.clone();
    same(get("info"), vec![(stamp(0), len(0)), (stamp(1), len(2))]);
    same(get("warning"), vec![(stamp(0), len(1))]);
    same(get("error"), vec![(stamp(1), len(3)), (stamp(2), len(4))]);
    let first: Vec<u64> = by.iter().map(|(_, p)| p[0].1).collect();
    assert!(first.windows(2).all(|w| w[0] >= w[1]), "{v}");

    // limit=1: each step keeps its largest series only.
    let v = c
        .json(
            "/loki/api/v1/index/volume_range",
            &range(&[("step", "600s"), ("targetLabels", "level"), ("limit", "1")]),
        )
        .await;
    let kept: usize = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["values"].as_array().unwrap().len())
        .sum();
    assert_eq!(kept, 3, "{v}");

    // aggregateBy=labels: one series per stream label name, `{name=""}` (the agent adds
    // `host`).
    let total: u64 = (0..5).map(len).sum();
    let v = c
        .json(
            "/loki/api/v1/index/volume",
            &range(&[("aggregateBy", "labels")]),
        )
        .await;
    validate(&v, "vector");
    let mut names: Vec<(String, u64)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = s["metric"].as_object().unwrap();
            assert_eq!(m.len(), 1, "{s}");
            let (k, val) = m.iter().next().unwrap();
            assert_eq!(val, "", "{s}");
            (k.clone(), s["value"][1].as_str().unwrap().parse().unwrap())
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["app", "host", "level", "source", "type"].map(|n| (n.to_owned(), total))
    );
    let (st, body) = c
        .get(
            "/loki/api/v1/index/volume_range",
            &range(&[("aggregateBy", "streams")]),
        )
        .await;
    assert_eq!((st, body.as_str()), (400, "invalid aggregation option\n"));

    // detected_fields: metadata (no parser; the agent adds `agent_id`), JSON fields, logfmt
    // fields; Loki's types.
    let v = c.json("/loki/api/v1/detected_fields", &range(&[])).await;
    validate_shape(&v, "detected_fields");
    assert_eq!(
        v,
        json!({"fields": [
            {"label": "agent_id", "type": "string", "cardinality": 1, "parsers": null},
            {"label": "detected_level", "type": "string", "cardinality": 3, "parsers": null},
            {"label": "ok", "type": "boolean", "cardinality": 1, "parsers": ["logfmt"]},
            {"label": "path", "type": "string", "cardinality": 2, "parsers": ["json"]},
            {"label": "region", "type": "string", "cardinality": 2, "parsers": null},
            {"label": "size", "type": "bytes", "cardinality": 1, "parsers": ["logfmt"]},
            {"label": "status", "type": "int", "cardinality": 3, "parsers": ["json"]},
            {"label": "took", "type": "duration", "cardinality": 2, "parsers": ["json"]},
            {"label": "user", "type": "string", "cardinality": 1, "parsers": ["logfmt"]},
        ], "limit": 1000})
    );
    // line_limit: the newest lines only ("connection refused…" and the last JSON line).
    let v = c
        .json(
            "/loki/api/v1/detected_fields",
            &range(&[("line_limit", "2")]),
        )
        .await;
    let labels: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["agent_id", "detected_level", "path", "region", "status"]
    );
    // limit: the first fields met (the newest line's metadata, in name order).
    let v = c
        .json("/loki/api/v1/detected_fields", &range(&[("limit", "1")]))
        .await;
    assert_eq!(v["fields"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["fields"][0]["label"], "agent_id");
    assert_eq!(v["limit"], 1);
    // A query's own parser and filters are applied first.
    let v = c
        .json(
            "/loki/api/v1/detected_fields",
            &[
                ("query", format!("{sel} | json | status >= 400")),
                ("start", start.to_string()),
                ("end", end.to_string()),
            ],
        )
        .await;
    let status = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == "status")
        .unwrap();
    assert_eq!(status["cardinality"], 2, "{v}");
    // Nothing found: Loki's empty object.
    let v = c
        .json(
            "/loki/api/v1/detected_fields",
            &[
                ("query", r#"{source="nothing-here"}"#.to_owned()),
                ("start", start.to_string()),
                ("end", end.to_string()),
            ],
        )
        .await;
    assert_eq!(v, json!({}));

    // Values of one field.
    for (name, want) in [
        ("status", json!(["200", "404", "500"])),
        ("region", json!(["eu", "us"])),
        ("took", json!(["1.5s", "15ms"])),
    ] {
        let v = c
            .json(
                &format!("/loki/api/v1/detected_field/{name}/values"),
                &range(&[]),
            )
            .await;
        validate_shape(&v, "detected_field_values");
        assert_eq!(v, json!({"values": want, "limit": 1000}), "{name}");
    }
    let v = c
        .json("/loki/api/v1/detected_field/absent/values", &range(&[]))
        .await;
    assert_eq!(v, json!({}));

    // Bad input: a metric query, absurd limits.
    for (extra, needle) in [
        (&[("line_limit", "100000")][..], "5000"),
        (&[("limit", "0")][..], "positive"),
        (&[("limit", "9999")][..], "5000"),
    ] {
        let (st, body) = c.get("/loki/api/v1/detected_fields", &range(extra)).await;
        assert_eq!(st, 400, "{extra:?}: {body}");
        assert!(body.contains(needle), "{extra:?}: {body}");
    }
    let (st, body) = c
        .get(
            "/loki/api/v1/detected_fields",
            &[("query", format!("count_over_time({sel}[1m])"))],
        )
        .await;
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("stream selector"), "{body}");
}

/// The server's count of record bytes read for queries (`/metrics`).
async fn server_record_bytes(stack: &Stack) -> u64 {
    let text = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{}/metrics", stack.var("LOGFLUX_SERVER")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("logflux_server_query_record_bytes_total "))
        .unwrap_or_else(|| panic!("no record bytes counter in {text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_warm_query_lists_records_without_their_bodies() {
    let stack = stack_with_entries().await;
    let c = Client::new(&stack);
    let (start, end) = window();
    let logs = [
        ("query", "{app=\"default\"} |= \"#\"".to_owned()),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("limit", "1000".into()),
        ("direction", "forward".into()),
    ];
    let metric = [
        (
            "query",
            "sum by (level) (count_over_time({app=\"default\"}[2h]))".to_owned(),
        ),
        ("time", end.to_string()),
    ];
    // Cold: the bodies are read (and the records decrypted and cached).
    let before = server_record_bytes(&stack).await;
    let first = c.json("/loki/api/v1/query_range", &logs).await;
    let first_metric = c.json("/loki/api/v1/query", &metric).await;
    let cold = server_record_bytes(&stack).await;
    assert!(cold > before, "a cold query fetches the bodies it decrypts");
    let lines = stream_lines(&first);
    assert_eq!(lines.len(), entries().len(), "{first}");
    // Warm: the same answers, and not one record byte read on the server.
    let again = c.json("/loki/api/v1/query_range", &logs).await;
    let again_metric = c.json("/loki/api/v1/query", &metric).await;
    assert_eq!(first["data"]["result"], again["data"]["result"]);
    assert_eq!(
        first_metric["data"]["result"],
        again_metric["data"]["result"]
    );
    assert_eq!(
        server_record_bytes(&stack).await,
        cold,
        "a warm query lists records without bodies and takes them from the cache"
    );
    for v in [&again, &again_metric] {
        let chunk = &v["data"]["stats"]["cache"]["chunk"];
        assert_eq!(chunk["entriesStored"], 0, "{v}");
        assert!(chunk["entriesFound"].as_u64().unwrap() > 0, "{v}");
    }
    // A new entry: only its record's body is fetched, and it is in the next answer.
    let lines_before = lines.len();
    stack
        .send_unix(&[
            json!({"payload": "one more #99", "source": "api", "entryType": 1, "logLevel": 6}),
        ])
        .await;
    stack.wait_for_entries(entries().len() + 2).await;
    let warm = server_record_bytes(&stack).await;
    let third = c.json("/loki/api/v1/query_range", &logs).await;
    assert_eq!(stream_lines(&third).len(), lines_before + 1, "{third}");
    let grown = server_record_bytes(&stack).await - warm;
    assert!(
        grown > 0 && grown < cold - before,
        "only the new record: {grown} bytes"
    );
    let chunk = &third["data"]["stats"]["cache"]["chunk"];
    assert!(chunk["entriesFound"].as_u64().unwrap() > 0, "{third}");
}

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&p, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn stream_lines(v: &Value) -> Vec<String> {
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().iter())
        .map(|x| x[1].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_guard_refuses_no_token_another_host_and_other_origins() {
    let stack = Stack::start().await;
    let c = Client::new(&stack);
    let url = format!("{}/loki/api/v1/labels", c.url);
    // No token: 401, without a challenge (a browser would prompt for the token and keep it).
    let r = c.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("www-authenticate").is_none());
    // A wrong token.
    let r = c
        .http
        .get(&url)
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // DNS rebinding: a page's own name in Host, even with the token.
    let r = c
        .http
        .get(&url)
        .bearer_auth(&c.token)
        .header("Host", "attacker.example:3100")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // Cross-origin browser requests.
    for (h, v) in [
        ("Origin", "https://attacker.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = c
            .http
            .get(&url)
            .bearer_auth(&c.token)
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{h}: {v}");
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    // A CORS preflight gets no CORS answer.
    let r = c
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://attacker.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(!r.status().is_success());
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // The token works as bearer and as basic password; the token file is owner-only.
    let r = c.http.get(&url).bearer_auth(&c.token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Decrypted answers are not for a browser's disk cache.
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(common::mode(&stack.dir.join("serve.token")), 0o600);

    // Off loopback without TLS: refused before anything is served.
    let out = stack
        .command()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without TLS") && err.contains("--tls-cert"),
        "{err}"
    );
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_position_or_the_limit() {
    let stack = Stack::start().await;
    let c = Client::new(&stack);
    let (start, end) = window();
    let range = |q: &str, extra: &[(&'static str, String)]| -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("query", q.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
        ];
        p.extend(extra.iter().cloned());
        p
    };
    // Malformed LogQL: Loki's plain-text message with the position.
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &range(r#"{app="default"} |= "x" | "#, &[]),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.starts_with("parse error at line 1, col "), "{body}");
    // Outside the subset: named, with its position.
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &range(r#"{app="default"} | pattern "<ip> <_>""#, &[]),
        )
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("col "), "{body}");
    // Absurd limits, steps and ranges.
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &range(r#"{app="default"}"#, &[("limit", "1000000".into())]),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("5000"), "{body}");
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &range(
                r#"count_over_time({app="default"}[1m])"#,
                &[("step", "1ms".into())],
            ),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("11000"), "{body}");
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &[
                ("query", r#"{app="default"}"#.to_owned()),
                ("start", "0".into()),
                ("end", end.to_string()),
            ],
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("721h0m0s"), "{body}");
    let (s, body) = c
        .get(
            "/loki/api/v1/query",
            &[(
                "query",
                r#"sum(count_over_time({app="default"}[100d]))"#.to_owned(),
            )],
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("721h0m0s"), "{body}");
    let (s, body) = c
        .get(
            "/loki/api/v1/query_range",
            &range(r#"{app="default"}"#, &[("start", "yesterday".into())]),
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("yesterday"), "{body}");
    // A log query as an instant query, as Loki refuses it.
    let (s, body) = c
        .get(
            "/loki/api/v1/query",
            &[("query", r#"{app="default"}"#.to_owned())],
        )
        .await;
    assert_eq!(s, 400);
    assert!(body.contains("range query"), "{body}");
    // The service still answers.
    let (s, _) = c.get("/ready", &[]).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn serve_alone_starts_with_the_clients_config_and_makes_its_token() {
    let stack = Stack::start().await;
    let token_file = stack.tmp.path().join("own/serve.token");
    let mut child = tokio::process::Command::from(stack.command())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token_file)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = common::serve_url(&mut lines).await;
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(common::mode(&token_file), 0o600);
    let v: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/loki/api/v1/query"))
        .basic_auth("x", Some(&token))
        .query(&[("query", "vector(1)+vector(1)"), ("time", "4000000000")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    validate(&v, "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl binary is needed: apt-get install openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn off_loopback_serve_runs_with_tls_and_answers_over_https() {
    use std::os::unix::fs::PermissionsExt as _;
    let stack = Stack::start().await;
    let d = stack.tmp.path().join("tls");
    std::fs::create_dir_all(&d).unwrap();
    openssl(
        &d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=serve test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        &d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
    std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut child = tokio::process::Command::from(stack.command())
        .args(["serve", "--listen", "0.0.0.0:0", "--tls-cert"])
        .arg(d.join("server.pem"))
        .arg("--tls-key")
        .arg(d.join("server.key"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = common::serve_url(&mut lines).await;
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let token = std::fs::read_to_string(stack.dir.join("serve.token"))
        .unwrap()
        .trim()
        .to_owned();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(d.join("ca.pem")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let v: Value = http
        .get(format!("{url}/loki/api/v1/query"))
        .bearer_auth(&token)
        .query(&[("query", "vector(1)+vector(1)")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    validate(&v, "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "2");
    // Plain HTTP to the TLS port is not served.
    let plain = url.replace("https://", "http://");
    assert!(
        reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{plain}/ready"))
            .bearer_auth(&token)
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
}

#[tokio::test]
async fn up_runs_without_serve_when_its_port_is_taken_and_says_so() {
    // Another process holds the port (a Loki of its own, say).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stack");
    let out = std::process::Command::new(common::BIN)
        .args(["keys", "generate", "--bits", "2048", "--dir"])
        .arg(dir.join("keys"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let log = tmp.path().join("up.err");
    let mut child = tokio::process::Command::new(common::BIN)
        .arg("up")
        .arg("--dir")
        .arg(&dir)
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .args(["--tcp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--serve"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let l = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("logflux up ready despite the taken port");
        if l.starts_with("ready") {
            break;
        }
    }
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("logflux serve not started") && err.contains(&port.to_string()),
        "{err}"
    );
    let env = std::fs::read_to_string(dir.join("up.env")).unwrap();
    assert!(!env.contains("LOGFLUX_SERVE_URL"), "{env}");
    drop(taken);
}
