//! `logflux search` end to end, through real processes: entries sent over the agent's Unix
//! socket and TCP and over the SDK-compatible ingest API come back exact and complete, with
//! every filter, in every format; ordering, limits and exit statuses; `stats`, `export` and
//! `tail -f`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Stack, meta, ns};
use logflux_proto::timefmt;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

/// What the test sent, as the client must show it.
#[derive(Debug, Clone)]
struct Sent {
    payload: String,
    level: u8,
    etype: u8,
    source: String,
    region: Option<String>,
    /// Set for entries sent with a timestamp; otherwise read from the output.
    ts: i64,
}

const S: i64 = 1_000_000_000;

fn agent_entries(now: i64) -> Vec<(Value, Sent)> {
    let payloads = [
        "upstream timeout after 30s",
        "connection refused by db-1",
        "user_id=42 logged in",
        "Grüße aus Köln — ünïcödé",
        "panic: boom\n  at main.rs:10\n  at lib.rs:20",
    ];
    let types = [1u8, 1, 2, 4, 5, 1];
    (0..36)
        .map(|i| {
            let payload = format!("{} #{i}", payloads[i % 5]);
            let level = (i % 8) as u8 + 1;
            let etype = types[i % 6];
            let source = if i % 3 == 0 { "worker" } else { "api" };
            let region = if i % 2 == 0 { "eu" } else { "us" };
            // A quarter two hours ago, a quarter half an hour ago, the rest now.
            let ts = match i % 4 {
                0 => Some(now - 2 * 3600 * S - i as i64 * S),
                1 => Some(now - 1800 * S - i as i64 * S),
                _ => None,
            };
            let mut line = json!({
                "payload": payload, "source": source, "entryType": etype, "logLevel": level,
                "metadata": {"region": region},
            });
            if let Some(t) = ts {
                line["timestamp"] = json!(timefmt::format_rfc3339(t - t % S));
            }
            let sent = Sent {
                payload,
                level,
                etype,
                source: source.into(),
                region: Some(region.into()),
                ts: ts.map_or(0, |t| t - t % S),
            };
            (line, sent)
        })
        .collect()
}

fn sdk_entries(now: i64) -> Vec<(u8, Value)> {
    let ts = |back: i64| timefmt::format_rfc3339((now - back * S) / 1_000_000 * 1_000_000);
    vec![
        (
            1,
            json!({"v":"2.0","type":"log","source":"checkout","level":4,"ts": ts(60),
                   "message":"sdk timeout contacting payment","attributes":{"region":"eu"}}),
        ),
        (
            2,
            json!({"v":"2.0","type":"metric","source":"checkout","level":7,"ts": ts(50),
                   "name":"cpu_load","value":0.5,"metric_type":"gauge"}),
        ),
        (
            4,
            json!({"v":"2.0","type":"event","source":"checkout","level":6,"ts": ts(7300),
                   "event":"order_placed","attributes":{"order":"A-17"}}),
        ),
    ]
}

fn sdk_sent(entries: &[(u8, Value)]) -> Vec<Sent> {
    entries
        .iter()
        .map(|(t, json)| {
            let view = logflux_proto::sdk::to_view(
                logflux_proto::EntryType::from_number(i64::from(*t)).unwrap(),
                0,
                json.as_object().unwrap().clone(),
            );
            Sent {
                payload: view.payload,
                level: view.level.number(),
                etype: *t,
                source: view.source,
                region: view.metadata.get("region").cloned(),
                ts: view.timestamp_ns,
            }
        })
        .collect()
}

fn payloads(v: &[Value]) -> Vec<String> {
    let mut p: Vec<String> = v
        .iter()
        .map(|e| e["payload"].as_str().unwrap().to_owned())
        .collect();
    p.sort();
    p
}

fn whole_words(s: &str) -> Vec<String> {
    s.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_filter_and_format_returns_exactly_what_was_sent() {
    let stack = Stack::start().await;
    let now = timefmt::now_ns();
    let agent = agent_entries(now);
    let (unix, tcp) = agent.split_at(18);
    stack
        .send_unix(&unix.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>())
        .await;
    stack
        .send_tcp(&tcp.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>())
        .await;
    let sdk = sdk_entries(now);
    stack.send_sdk(&sdk[..2], true).await;
    stack.send_sdk(&sdk[2..], false).await;

    // `up`'s own self-test entry is there too.
    let all = stack.wait_for_entries(36 + 3 + 1).await;
    let mut model: Vec<Sent> = agent.iter().map(|(_, s)| s.clone()).collect();
    model.extend(sdk_sent(&sdk));
    let selftest = all.iter().find(|e| e["source"] == "logflux-up").unwrap();
    model.push(Sent {
        payload: selftest["payload"].as_str().unwrap().to_owned(),
        level: 6,
        etype: 1,
        source: "logflux-up".into(),
        region: None,
        ts: 0,
    });

    // Exact: every field of every entry, each entry once.
    let by_payload: BTreeMap<&str, &Value> = all
        .iter()
        .map(|e| (e["payload"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_payload.len(), all.len(), "an entry appeared twice");
    for s in &mut model {
        let e = by_payload
            .get(s.payload.as_str())
            .unwrap_or_else(|| panic!("{:?} missing", s.payload));
        assert_eq!(e["logLevel"], s.level, "{e}");
        assert_eq!(e["entryType"], s.etype, "{e}");
        assert_eq!(e["source"], s.source.as_str(), "{e}");
        assert_eq!(meta(e).get("region"), s.region.as_ref(), "{e}");
        let ts = ns(e["timestamp"].as_str().unwrap());
        if s.ts != 0 {
            assert_eq!(ts, s.ts, "{e}");
        }
        s.ts = ts;
        if s.source == "checkout" {
            assert_eq!(e["payloadType"], "application", "{e}");
        } else {
            assert_eq!(e["payloadType"], "generic", "{e}");
            assert!(meta(e).contains_key("agent_id"), "enriched: {e}");
        }
    }
    // The SDK's own fields come along.
    let metric = all
        .iter()
        .find(|e| e["entryType"] == 2 && e["source"] == "checkout")
        .unwrap();
    assert_eq!(metric["name"], "cpu_load");
    assert_eq!(metric["value"], 0.5);
    assert_eq!(metric["metric_type"], "gauge");

    type Pred = Box<dyn Fn(&Sent) -> bool>;
    let cases: Vec<(Vec<&str>, Pred)> = vec![
        (vec![], Box::new(|_| true)),
        (vec!["--level", "err"], Box::new(|s| s.level <= 4)),
        (vec!["--level", "3"], Box::new(|s| s.level <= 3)),
        (
            vec!["-l", "err..warning"],
            Box::new(|s| (4..=5).contains(&s.level)),
        ),
        (
            vec!["timeout"],
            Box::new(|s| whole_words(&s.payload).contains(&"timeout".into())),
        ),
        (
            vec!["TIMEOUT", "upstream"],
            Box::new(|s| s.payload.starts_with("upstream timeout")),
        ),
        (
            vec!["connection refused"],
            Box::new(|s| s.payload.starts_with("connection refused")),
        ),
        (vec!["köln"], Box::new(|s| s.payload.contains("Köln"))),
        (
            vec!["--contains", "db-1"],
            Box::new(|s| s.payload.contains("db-1")),
        ),
        (vec!["--contains", "DB-1"], Box::new(|_| false)),
        (
            vec!["--regex", r"after \d+s #\d*[02468]$"],
            Box::new(|s| {
                s.payload.starts_with("upstream timeout after 30s #")
                    && s.payload.ends_with(['0', '2', '4', '6', '8'])
            }),
        ),
        (
            vec!["--source", "worker"],
            Box::new(|s| s.source == "worker"),
        ),
        (vec!["--type", "metric"], Box::new(|s| s.etype == 2)),
        (vec!["-t", "event"], Box::new(|s| s.etype == 4)),
        (vec!["--type", "audit"], Box::new(|s| s.etype == 5)),
        (
            vec!["--meta", "region=eu"],
            Box::new(|s| s.region.as_deref() == Some("eu")),
        ),
        (
            vec!["-m", "region=us", "--level", "warning", "--source", "api"],
            Box::new(|s| s.region.as_deref() == Some("us") && s.level <= 5 && s.source == "api"),
        ),
        (
            vec!["--since", "1h"],
            Box::new(move |s| s.ts >= now - 3600 * S),
        ),
        (
            vec!["--until", "45m"],
            Box::new(move |s| s.ts <= now - 2700 * S),
        ),
        (
            vec!["--since", "3h", "--until", "1h", "--level", "err"],
            Box::new(move |s| s.ts >= now - 3 * 3600 * S && s.ts <= now - 3600 * S && s.level <= 4),
        ),
        (vec!["--app", "default"], Box::new(|_| true)),
        (vec!["nosuchword"], Box::new(|_| false)),
        (vec!["timeout", "--source", "nobody"], Box::new(|_| false)),
    ];
    for (args, pred) in &cases {
        let (code, got) = stack.search(args);
        let mut want: Vec<String> = model
            .iter()
            .filter(|s| pred(s))
            .map(|s| s.payload.clone())
            .collect();
        want.sort();
        assert_eq!(payloads(&got), want, "logflux search {args:?}");
        assert_eq!(code, if want.is_empty() { 1 } else { 0 }, "{args:?}");
    }

    // Order and limit: exactly the newest (or oldest) N, in order.
    let mut by_time: Vec<&Sent> = model.iter().collect();
    by_time.sort_by_key(|s| s.ts);
    for (order, n) in [("newest", 5usize), ("oldest", 7)] {
        let (code, out, err) = stack.run(&[
            "search",
            "--format",
            "ndjson",
            "--order",
            order,
            "--limit",
            &n.to_string(),
        ]);
        assert_eq!(code, 0, "{err}");
        let times: Vec<i64> = out
            .lines()
            .map(|l| {
                ns(serde_json::from_str::<Value>(l).unwrap()["timestamp"]
                    .as_str()
                    .unwrap())
            })
            .collect();
        let mut want: Vec<i64> = by_time.iter().map(|s| s.ts).collect();
        if order == "newest" {
            want.reverse();
        }
        want.truncate(n);
        assert_eq!(times, want, "--order {order} --limit {n}");
    }

    // Every format carries the same entries.
    let (code, text, _) = stack.run(&["search", "--level", "err", "--format", "text"]);
    assert_eq!(code, 0);
    let errs: Vec<&Sent> = model.iter().filter(|s| s.level <= 4).collect();
    for s in &errs {
        let first_line = s.payload.lines().next().unwrap();
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("{}: {first_line}", s.source))),
            "{first_line:?} not in text output"
        );
    }
    assert!(
        text.lines()
            .all(|l| l.starts_with("20") || l.starts_with("    "))
    );
    let (_, json_out, _) = stack.run(&["search", "--level", "err", "--format", "json"]);
    let arr: Vec<Value> = serde_json::from_str(&json_out).unwrap();
    assert_eq!(payloads(&arr), {
        let mut p: Vec<String> = errs.iter().map(|s| s.payload.clone()).collect();
        p.sort();
        p
    });
    let (_, csv_out, _) = stack.run(&["search", "--level", "err", "--format", "csv"]);
    let rows = parse_csv(&csv_out);
    assert_eq!(rows[0][0], "timestamp");
    let mut csv_payloads: Vec<String> = rows[1..].iter().map(|r| r[4].clone()).collect();
    csv_payloads.sort();
    assert_eq!(csv_payloads, payloads(&arr));

    // Errors: exit status 2 with a message.
    let (code, _, err) = stack.run(&["search", "--app", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no application \"nope\""), "{err}");
    let (code, _, err) = stack.run(&["search", "--since", "yesterday-ish"]);
    assert_eq!(code, 2);
    assert!(err.contains("--since"), "{err}");

    // stats: counts by level, JSON and text.
    let (code, out, err) = stack.run(&[
        "stats", "--since", "3h", "--bucket", "1h", "--format", "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["total"], model.len());
    assert_eq!(st["bucket_seconds"], 3600);
    for l in logflux_proto::Level::ALL {
        let n = model.iter().filter(|s| s.level == l.number()).count();
        assert_eq!(
            st["levels"][l.name()].as_u64().unwrap_or(0),
            n as u64,
            "{l}"
        );
    }
    let per_bucket: u64 = st["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["total"].as_u64().unwrap())
        .sum();
    assert_eq!(per_bucket, model.len() as u64);
    let (code, out, _) = stack.run(&["stats", "--since", "3h", "--bucket", "1h", "--level", "err"]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("{} entries", errs.len())), "{out}");
    assert!(out.contains('█'), "{out}");

    // export: a complete file appears under its name only when done.
    let file = stack.tmp.path().join("out.ndjson");
    let (code, _, err) = stack.run(&["export", "--since", "3h", "-O", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(payloads(&lines), payloads(&all));
    let times: Vec<i64> = lines
        .iter()
        .map(|e| ns(e["timestamp"].as_str().unwrap()))
        .collect();
    assert!(times.is_sorted(), "export is oldest first");
    assert!(!stack.tmp.path().join("out.ndjson.partial").exists());
    let (code, _, err) = stack.run(&["export", "-O", file.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("exists"), "{err}");
}

/// RFC 4180, enough for the client's output.
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_follow_shows_new_entries_as_they_arrive() {
    let stack = Stack::start().await;
    let mut child = tokio::process::Command::from(stack.command())
        .args([
            "tail", "-f", "-n", "1", "--format", "ndjson", "--source", "live",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // It says when it follows; entries sent after that must all appear, in order.
    loop {
        let l = tokio::time::timeout(Duration::from_secs(60), err.next_line())
            .await
            .expect("tail starts")
            .unwrap()
            .expect("tail exited");
        if l.contains("following") {
            break;
        }
    }
    for i in 0..3 {
        stack
            .send_unix(&[json!({"payload": format!("live entry {i}"), "source": "live", "entryType": 1, "logLevel": 6})])
            .await;
    }
    stack
        .send_unix(&[
            json!({"payload": "not this one", "source": "other", "entryType": 1, "logLevel": 6}),
        ])
        .await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let l = tokio::time::timeout(Duration::from_secs(60), out.next_line())
            .await
            .expect("live entries within 60 s")
            .unwrap()
            .expect("tail exited");
        let v: Value = serde_json::from_str(&l).unwrap();
        got.push(v["payload"].as_str().unwrap().to_owned());
    }
    assert_eq!(got, ["live entry 0", "live entry 1", "live entry 2"]);
    // Ctrl-C ends it cleanly.
    std::process::Command::new("kill")
        .args(["-INT", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // And plain tail shows the last N, oldest of them first.
    let (code, out, _) = stack.run(&["tail", "-n", "2", "--source", "live", "--format", "ndjson"]);
    assert_eq!(code, 0);
    let p: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["payload"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(p, ["live entry 1", "live entry 2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn tail_follow_exits_with_the_reason_when_its_token_is_revoked() {
    let stack = Stack::start().await;
    let mut child = tokio::process::Command::from(stack.command())
        .args(["tail", "-f", "-n", "0", "--format", "ndjson"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let l = tokio::time::timeout(Duration::from_secs(60), err.next_line())
            .await
            .expect("tail starts")
            .unwrap()
            .expect("tail exited");
        if l.contains("following") {
            break;
        }
    }
    // The token the client uses is revoked (by itself, as an admin token may).
    let http = reqwest::Client::new();
    let base = stack.var("LOGFLUX_SERVER");
    let pat = stack.var("LOGFLUX_PAT");
    let me: Value = http
        .get(format!("{base}/v1/me"))
        .bearer_auth(pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .delete(format!(
            "{base}/v1/admin/tokens/{}",
            me["token_id"].as_str().unwrap()
        ))
        .bearer_auth(pat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // It stops at once with the reason, instead of reconnecting.
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("tail -f exits")
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let mut rest = Vec::new();
    while let Some(l) = err.next_line().await.unwrap() {
        rest.push(l);
    }
    assert!(rest.iter().any(|l| l.contains("token_revoked")), "{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("reconnecting")), "{rest:?}");
}
