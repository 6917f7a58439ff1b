//! `logflux patterns` and `logflux serve`'s `/loki/api/v1/patterns` end to end: entries of
//! known templates sent through a real stack (`logflux up`), grouped after decryption, their
//! templates, counts, levels and per-step samples asserted.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::Stack;
use logflux_proto::timefmt;
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// Entries sent: (seconds after the base, level number, payload). Three templates and a line
/// with a terminal escape.
fn entries() -> Vec<(i64, u8, String)> {
    let users = ["alice", "bob", "carol"];
    let mut out = Vec::new();
    for i in 0..6 {
        out.push((
            i * 60,
            7,
            format!(
                "Accepted password for {} from 10.0.0.{i} port {} via ssh",
                users[i as usize % 3],
                5000 + i * 7
            ),
        ));
    }
    for (i, level) in [(0, 4), (1, 4), (2, 5), (11, 4)] {
        out.push((
            i * 60 + 30,
            level,
            format!(
                "disk /dev/sd{}{i} is 9{i}% full",
                ["a", "b"][i as usize % 2]
            ),
        ));
    }
    out.push((100, 8, "cache warmed".into()));
    out.push((700, 8, "cache warmed".into()));
    out.push((200, 6, "bad \u{1b}[31m input".into()));
    out
}

/// A stack holding [`entries`] (source `pt`) from `base`, a time on the 600 s grid.
async fn stack_with_entries() -> (Stack, i64) {
    let stack = Stack::start().await;
    let now = timefmt::now_ns();
    let base = now - now.rem_euclid(600 * S) - 2400 * S;
    let lines: Vec<Value> = entries()
        .iter()
        .map(|(dt, level, p)| {
            json!({"payload": p, "source": "pt", "entryType": 1, "logLevel": level,
                   "timestamp": timefmt::format_rfc3339(base + dt * S)})
        })
        .collect();
    stack.send_unix(&lines).await;
    // The self-test entry of `logflux up`, plus ours.
    stack.wait_for_entries(lines.len() + 1).await;
    (stack, base)
}

#[tokio::test]
async fn patterns_groups_entries_by_template_with_counts_levels_and_times() {
    let (stack, base) = stack_with_entries().await;

    let (code, out, err) =
        stack.run(&["patterns", "--source", "pt", "--since", "3h", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let mut got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Shares (parsed back from JSON's shortest form) compared apart, within rounding.
    let shares: Vec<f64> = got
        .iter_mut()
        .map(|v| {
            v.as_object_mut()
                .unwrap()
                .remove("share")
                .unwrap()
                .as_f64()
                .unwrap()
        })
        .collect();
    for (got, want) in shares.iter().zip([6.0, 4.0, 2.0, 1.0]) {
        assert!((got - want / 13.0).abs() < 1e-12, "{shares:?}");
    }
    let t = |s: i64| timefmt::format_rfc3339(base + s * S);
    assert_eq!(
        got,
        vec![
            json!({"template": "Accepted password for <*> from <*> port <*> via ssh", "count": 6, "levels": {"info": 6}, "first": t(0), "last": t(300)}),
            json!({"template": "disk /dev/<*> is <*> full", "count": 4,
                   "levels": {"error": 3, "warning": 1}, "first": t(30), "last": t(690)}),
            json!({"template": "cache warmed", "count": 2,
                   "levels": {"debug": 2}, "first": t(100), "last": t(700)}),
            json!({"template": "bad \u{1b}[<*> input", "count": 1,
                   "levels": {"notice": 1}, "first": t(200), "last": t(200)}),
        ]
    );

    // Text: a table, control characters escaped; --limit keeps the largest.
    let (code, out, err) = stack.run(&["patterns", "--source", "pt", "--since", "3h", "--utc"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "13 entries, 4 templates", "{out}");
    assert!(lines[2].contains("6  46.2%  info 6"), "{out}");
    assert!(
        lines[2].ends_with("Accepted password for <*> from <*> port <*> via ssh"),
        "{out}"
    );
    assert!(lines[3].contains("error 3 · warning 1"), "{out}");
    assert!(lines[5].ends_with("bad \\u{1b}[<*> input"), "{out}");
    assert!(!out.contains('\u{1b}'), "{out}");
    let (code, out, _) = stack.run(&["patterns", "--source", "pt", "--since", "3h", "-n", "1"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("13 entries, 4 templates (the 1 with the most entries shown"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3, "{out}");

    // Filters are search's: errors only.
    let (code, out, _) = stack.run(&[
        "patterns", "--source", "pt", "--since", "3h", "--level", "err", "-o", "json",
    ]);
    assert_eq!(code, 0);
    let got: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 1, "{out}");
    assert_eq!(got[0]["count"], 3);

    // Nothing matches: exit status 1, as search.
    let (code, out, _) = stack.run(&["patterns", "--source", "nothing-here", "--since", "3h"]);
    assert_eq!(code, 1);
    assert_eq!(out, "0 entries, 0 templates\n");
}

#[tokio::test]
async fn serve_answers_lokis_patterns_with_samples_per_step_and_level() {
    let (stack, base) = stack_with_entries().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/loki/api/v1/patterns", stack.var("LOGFLUX_SERVE_URL"));
    let token = stack.var("LOGFLUX_SERVE_TOKEN").to_owned();
    let now = timefmt::now_ns();
    let params = [
        ("query", r#"{source="pt"}"#.to_owned()),
        ("start", (base - 600 * S).to_string()),
        ("end", (now + 60 * S).to_string()),
        ("step", "600s".to_owned()),
    ];
    let r = http
        .get(&url)
        .basic_auth("grafana", Some(&token))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let b = base / S;
    // (pattern, level) → samples.
    let got: BTreeMap<(String, String), Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                (
                    p["pattern"].as_str().unwrap().to_owned(),
                    p["level"].as_str().unwrap().to_owned(),
                ),
                p["samples"].clone(),
            )
        })
        .collect();
    let want: BTreeMap<(String, String), Value> = [
        (
            "Accepted password for <_> from <_> port <_> via ssh",
            "info",
            json!([[b, 6]]),
        ),
        (
            "disk /dev/<_> is <_> full",
            "error",
            json!([[b, 2], [b + 600, 1]]),
        ),
        ("disk /dev/<_> is <_> full", "warning", json!([[b, 1]])),
        ("cache warmed", "debug", json!([[b, 1], [b + 600, 1]])),
        ("bad \u{1b}[<_> input", "notice", json!([[b, 1]])),
    ]
    .into_iter()
    .map(|(p, l, s)| ((p.to_owned(), l.to_owned()), s))
    .collect();
    assert_eq!(got, want, "{v}");
    // The largest template first.
    assert_eq!(
        v["data"][0]["pattern"],
        "Accepted password for <_> from <_> port <_> via ssh"
    );

    // POST with a form, a line filter narrowing it; a metric query is refused.
    let r = http
        .post(&url)
        .basic_auth("grafana", Some(&token))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            reqwest::Url::parse_with_params(
                "http://form.invalid/",
                &[
                    ("query", r#"{source="pt"} |= "disk""#.to_owned()),
                    ("start", (base - 600 * S).to_string()),
                    ("end", (now + 60 * S).to_string()),
                    ("step", "600s".to_owned()),
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
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let r = http
        .get(&url)
        .basic_auth("grafana", Some(&token))
        .query(&[("query", r#"count_over_time({source="pt"}[1m])"#)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
