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
                region: view.metadata.get("region").map(str::to_owned),
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

/// Sends `payloads` over the agent's socket, one second apart, the last one a minute ago, all
/// from `source` at level info; returns their timestamps.
async fn send_timed(stack: &Stack, source: &str, payloads: &[String]) -> Vec<i64> {
    let now = timefmt::now_ns();
    let base = now - now % S - 60 * S - payloads.len() as i64 * S;
    let mut times = Vec::new();
    let lines: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ts = base + (i as i64 + 1) * S;
            times.push(ts);
            json!({"payload": p, "source": source, "entryType": 1, "logLevel": 7,
                   "timestamp": timefmt::format_rfc3339(ts)})
        })
        .collect();
    stack.send_unix(&lines).await;
    times
}

fn ndjson_payloads(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["payload"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

const LIMIT_CUT: &str = "more match";

#[tokio::test(flavor = "multi_thread")]
async fn search_says_on_stderr_when_the_limit_cut_the_output() {
    let stack = Stack::start().await;
    let many: Vec<String> = (0..1001).map(|i| format!("bulk entry {i}")).collect();
    send_timed(&stack, "bulk", &many).await;
    let five: Vec<String> = (0..5).map(|i| format!("few entry {i}")).collect();
    send_timed(&stack, "few", &five).await;
    stack.wait_for_entries(1001 + 5 + 1).await;

    // The default limit, 1000, with 1001 matching: the newest 1000, and stderr says so.
    let (code, out, err) = stack.run(&["search", "--source", "bulk", "--format", "ndjson"]);
    assert_eq!(code, 0, "{err}");
    let got = ndjson_payloads(&out);
    assert_eq!(got.len(), 1000);
    assert_eq!(got, many[1..], "the newest 1000, oldest of them first");
    assert!(
        err.contains(
            "showing the newest 1000 entries; more match — use -n N for more, or -n 0 for all"
        ),
        "{err}"
    );
    // Everything fits: not a word.
    for n in ["0", "1001", "2000"] {
        let (code, out, err) = stack.run(&["search", "--source", "bulk", "-n", n, "-o", "ndjson"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(ndjson_payloads(&out), many, "-n {n}");
        assert!(
            !err.contains(LIMIT_CUT) && !err.contains("showing"),
            "-n {n}: {err}"
        );
    }
    // Exactly as many as match: silent too.
    let (_, out, err) = stack.run(&["search", "--source", "few", "-n", "5", "-o", "ndjson"]);
    assert_eq!(ndjson_payloads(&out), five);
    assert!(!err.contains("showing"), "{err}");
    // One fewer than match: cut.
    let (_, out, err) = stack.run(&["search", "--source", "few", "-n", "4", "-o", "ndjson"]);
    assert_eq!(ndjson_payloads(&out), five[1..]);
    assert!(
        err.contains("showing the newest 4 entries; more match"),
        "{err}"
    );
    // -r: newest first; --order oldest: the oldest N; --order newest as before (newest first).
    let (_, out, err) = stack.run(&["search", "--source", "few", "-n", "2", "-r", "-o", "ndjson"]);
    assert_eq!(ndjson_payloads(&out), ["few entry 4", "few entry 3"]);
    assert!(
        err.contains("showing the newest 2 entries; more match"),
        "{err}"
    );
    let (_, out, _) = stack.run(&[
        "search", "--source", "few", "--order", "newest", "-n", "2", "-o", "ndjson",
    ]);
    assert_eq!(ndjson_payloads(&out), ["few entry 4", "few entry 3"]);
    let (_, out, err) = stack.run(&[
        "search", "--source", "few", "--order", "oldest", "-n", "2", "-o", "ndjson",
    ]);
    assert_eq!(ndjson_payloads(&out), ["few entry 0", "few entry 1"]);
    assert!(
        err.contains("showing the oldest 2 entries; more match"),
        "{err}"
    );
    let (_, out, _) = stack.run(&["search", "--source", "few", "-r", "-n", "0", "-o", "ndjson"]);
    assert_eq!(
        ndjson_payloads(&out),
        five.iter().rev().cloned().collect::<Vec<_>>()
    );
    let (code, _, err) = stack.run(&["search", "-r", "--order", "oldest"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_search_argument_with_separators_is_a_phrase_not_its_words_anywhere() {
    let stack = Stack::start().await;
    let sent: Vec<String> = [
        // The report: 10.10.34.11 matched entries holding 10, 10, 34 and 11 apart.
        "login from 10.10.34.11 accepted",
        "peer 10.10.34.11:443 reset",
        "login from 10.10.34.12 port 11",
        "counters 10 10 34 11",
        "from 110.10.34.11 denied",
        "from 10.10.34.110 denied",
        "11.34.10.10 reversed",
        "GET /v2/servers 200",
        "GET /V2/Servers/17 404",
        "GET /v2/other/servers 200",
        "GET /v2/serversX 200",
        "mail to alice@example.com sent",
        "mail to Alice@Example.COM sent",
        "mail to malice@example.com sent",
        "alice at example com",
        "job 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708192 done",
        "job 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708193 done",
        "ssh root@db-1 failed",
        "ssh root@db-10 failed",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    send_timed(&stack, "phr", &sent).await;
    stack.wait_for_entries(sent.len() + 1).await;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["10.10.34.11"],
            &[
                "login from 10.10.34.11 accepted",
                "peer 10.10.34.11:443 reset",
            ],
        ),
        (
            &["/v2/servers"],
            &["GET /v2/servers 200", "GET /V2/Servers/17 404"],
        ),
        (
            &["alice@example.com"],
            &[
                "mail to alice@example.com sent",
                "mail to Alice@Example.COM sent",
            ],
        ),
        (
            &["3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708192"],
            &["job 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708192 done"],
        ),
        (&["root@db-1"], &["ssh root@db-1 failed"]),
        // A phrase and a word together: both must hold.
        (
            &["10.10.34.11", "accepted"],
            &["login from 10.10.34.11 accepted"],
        ),
        (&["from 10.10.34.11"], &["login from 10.10.34.11 accepted"]),
        // Words are still whole words anywhere.
        (
            &["11", "34"],
            &[
                "login from 10.10.34.11 accepted",
                "peer 10.10.34.11:443 reset",
                "login from 10.10.34.12 port 11",
                "counters 10 10 34 11",
                "from 110.10.34.11 denied",
                "11.34.10.10 reversed",
            ],
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["--source", "phr"];
        all.extend_from_slice(args);
        let (_, got) = stack.search(&all);
        let mut want: Vec<String> = want.iter().map(|s| (*s).to_owned()).collect();
        want.sort();
        assert_eq!(payloads(&got), want, "logflux search {args:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn journalctl_flags_priority_grep_output_modes_times_and_zones() {
    let stack = Stack::start().await;
    let now = timefmt::now_ns();
    let at = |back: i64| timefmt::format_rfc3339(now - now % S - back * S);
    let lines = vec![
        json!({"payload": "disk Full on /var", "source": "jc", "entryType": 1, "logLevel": 3, "timestamp": at(7200)}),
        json!({"payload": "request failed: Timeout", "source": "jc", "entryType": 1, "logLevel": 4, "timestamp": at(1800)}),
        json!({"payload": "retrying after timeout", "source": "jc", "entryType": 1, "logLevel": 5, "timestamp": at(600),
               "metadata": {"region": "eu"}}),
        json!({"payload": "all good\nsecond line", "source": "jc", "entryType": 1, "logLevel": 7, "timestamp": at(60)}),
    ];
    stack.send_unix(&lines).await;
    stack.wait_for_entries(lines.len() + 1).await;
    let p = |args: &[&str]| {
        let mut all = vec!["--source", "jc"];
        all.extend_from_slice(args);
        payloads(&stack.search(&all).1)
    };
    // -p is journalctl's: syslog numbers (3 = err); --level numbers are LogFlux's (3 = crit).
    assert_eq!(
        p(&["-p", "3"]),
        ["disk Full on /var", "request failed: Timeout"]
    );
    assert_eq!(
        p(&["-p", "err"]),
        ["disk Full on /var", "request failed: Timeout"]
    );
    assert_eq!(p(&["-l", "3"]), ["disk Full on /var"]);
    assert_eq!(
        p(&["-p", "err..warning"]),
        ["request failed: Timeout", "retrying after timeout"]
    );
    let (code, _, err) = stack.run(&["search", "-p", "err", "-l", "err"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, _, err) = stack.run(&["search", "-p", "8"]);
    assert_eq!(code, 2);
    assert!(err.contains("0 (emerg) .. 7 (debug)"), "{err}");
    // --grep: all lower case, case-insensitive; an upper-case letter makes it sensitive.
    assert_eq!(
        p(&["--grep", "time.?out"]),
        ["request failed: Timeout", "retrying after timeout"]
    );
    assert_eq!(p(&["-g", "Timeout"]), ["request failed: Timeout"]);
    assert_eq!(p(&["--grep", "full"]), ["disk Full on /var"]);
    // --since and --until, journalctl's forms.
    assert_eq!(
        p(&["--since", "1 hour ago"]),
        [
            "all good\nsecond line",
            "request failed: Timeout",
            "retrying after timeout"
        ]
    );
    assert_eq!(
        p(&["--since", "20 minutes ago"]),
        ["all good\nsecond line", "retrying after timeout"]
    );
    assert_eq!(p(&["--until", "2 hours ago"]), ["disk Full on /var"]);
    assert_eq!(p(&["--since", "yesterday"]).len(), 4);
    assert_eq!(
        p(&["--until", "now", "--since", "-5min"]),
        ["all good\nsecond line"]
    );

    // Output modes: -o json is journalctl's, one object per line; --format json an array.
    let (code, out, err) = stack.run(&["search", "--source", "jc", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 4, "{out}");
    assert_eq!(
        ndjson_payloads(&out)[0],
        "disk Full on /var",
        "oldest first"
    );
    let (_, out, _) = stack.run(&["search", "--source", "jc", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Vec<Value>>(&out).unwrap().len(), 4);
    let (_, out, _) = stack.run(&["search", "--source", "jc", "-o", "json-pretty", "-n", "1"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payload"], "all good\nsecond line");
    assert!(out.lines().count() > 5, "indented: {out}");
    let (_, out, _) = stack.run(&["search", "--source", "jc", "-o", "cat"]);
    assert_eq!(
        out,
        "disk Full on /var\nrequest failed: Timeout\nretrying after timeout\nall good\nsecond line\n"
    );
    let (_, out, _) = stack.run(&["search", "--source", "jc", "-o", "verbose", "-n", "2"]);
    for want in [
        "    level=warning (5)\n",
        "    source=jc\n",
        "    payload=retrying after timeout\n",
        "    metadata.region=eu\n",
        "    payload=all good\n        second line\n",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
    let (_, short, _) = stack.run(&["search", "--source", "jc", "-o", "short", "--utc"]);
    let (_, text, _) = stack.run(&["search", "--source", "jc", "--format", "text", "--utc"]);
    assert_eq!(short, text);

    // Times: local (the process's TZ) unless --utc, piped or not; machine formats UTC.
    let newest = at(60);
    let run_tz = |args: &[&str]| {
        let out = stack
            .command()
            .env("TZ", "IST-5:30")
            .args(["search", "--source", "jc", "-n", "1"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let local = {
        let t = logflux_proto::timefmt::parse_rfc3339(&newest).unwrap() + (5 * 3600 + 1800) * S;
        format!(
            "{}.000+05:30 INFO",
            timefmt::format_rfc3339(t).trim_end_matches('Z')
        )
    };
    let text = run_tz(&[]);
    assert!(text.starts_with(&local), "{text} (want {local})");
    let utc = format!("{}.000Z INFO", newest.trim_end_matches('Z'));
    assert!(run_tz(&["--utc"]).starts_with(&utc), "want {utc}");
    assert!(run_tz(&["-o", "verbose"]).starts_with(&local[..29]));
    let j = run_tz(&["-o", "json"]);
    assert!(j.contains(&format!("\"timestamp\":\"{newest}\"")), "{j}");
    // A local time of day: in IST, the entry an hour back is at (local) HH:MM of today or,
    // just after midnight, yesterday's; --since that minute finds the last three.
    let out = stack
        .command()
        .env("TZ", "IST-5:30")
        .args(["search", "--source", "jc", "-o", "ndjson", "--since"])
        .arg({
            let t = now - now % S - 1800 * S + (5 * 3600 + 1800) * S;
            let hm = &timefmt::format_rfc3339(t - t % (60 * S))[..16];
            hm.replace('T', " ")
        })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        ndjson_payloads(&String::from_utf8(out.stdout).unwrap()).len(),
        3
    );
    // stats: hourly buckets on local hours, shown in local time; --utc: UTC hours.
    for (utc, suffix) in [(false, ":00:00.000+05:30 "), (true, ":00:00.000Z ")] {
        let mut c = stack.command();
        c.env("TZ", "IST-5:30")
            .args(["stats", "--source", "jc", "--since", "3h", "--bucket", "1h"]);
        if utc {
            c.arg("--utc");
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.starts_with("4 entries from "), "{text}");
        let rows: Vec<&str> = text.lines().skip(2).collect();
        assert!(rows.len() >= 3, "{text}");
        for r in rows {
            assert_eq!(r.get(13..13 + suffix.len()), Some(suffix), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn output_goes_through_the_pager_on_a_terminal_only() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    let stack = Stack::start().await;
    let payloads: Vec<String> = (0..3).map(|i| format!("paged entry {i}")).collect();
    send_timed(&stack, "pg", &payloads).await;
    stack.wait_for_entries(4).await;
    let dir = stack.tmp.path();
    let fake = dir.join("fake-pager");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"LESS=$LESS\" > \"$(dirname \"$0\")/paged\"\ncat >> \"$(dirname \"$0\")/paged\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let paged = dir.join("paged");
    let on_terminal = |extra: &str, vars: &[(&str, &str)]| {
        let _ = std::fs::remove_file(&paged);
        let mut c = stack.command_of("script");
        c.args([
            "-qec",
            &format!("{} search --source pg --utc {extra}", common::BIN),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .env_remove("LESS")
        .env_remove("LOGFLUX_PAGER");
        for (k, v) in vars {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fake_s = fake.to_str().unwrap();
    // On a terminal: everything goes to $PAGER, with journalctl's LESS flags.
    let screen = on_terminal("", &[("PAGER", fake_s)]);
    let got = std::fs::read_to_string(&paged).expect("the pager ran");
    assert!(got.starts_with("LESS=FRSXMK\n"), "{got}");
    for p in &payloads {
        assert!(got.contains(&format!("pg: {p}")), "{got}");
        assert!(
            !screen.contains(p.as_str()),
            "not on the terminal itself: {screen}"
        );
    }
    // $LOGFLUX_PAGER wins over $PAGER, and the user's LESS is kept.
    on_terminal(
        "",
        &[("PAGER", "false"), ("LOGFLUX_PAGER", fake_s), ("LESS", "R")],
    );
    let got = std::fs::read_to_string(&paged).expect("LOGFLUX_PAGER ran");
    assert!(
        got.starts_with("LESS=R\n") && got.contains("paged entry 2"),
        "{got}"
    );
    // --no-pager, or PAGER=cat: straight to the terminal.
    for (extra, vars) in [
        ("--no-pager", vec![("PAGER", fake_s)]),
        ("", vec![("PAGER", "cat")]),
    ] {
        let screen = on_terminal(extra, &vars);
        assert!(!paged.exists(), "{extra} {vars:?}");
        assert!(screen.contains("pg: paged entry 2"), "{screen}");
    }
    // Piped: never a pager.
    let out = stack
        .command()
        .env("PAGER", fake_s)
        .args(["search", "--source", "pg"])
        .output()
        .unwrap();
    assert!(!paged.exists());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("paged entry 0")
    );
}
