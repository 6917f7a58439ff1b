//! What the Go SDK (v3.0.x) sends, read back with `logflux search`: its `Info`/`Warn`/… methods
//! and logging adapters seal the bare message text (gzipped or not), its high-level API writes
//! `kind` and a span's `name`, and its requests are spelled its own way (PROTOCOL.md §2).
#![allow(clippy::unwrap_used)]

mod common;

use common::{SdkPart, SdkStyle, Stack};
use logflux_proto::timefmt;
use serde_json::{Value, json};

/// `secs` seconds before `now_s` (whole seconds) with `fraction` as written after the dot
/// (the Go SDK trims trailing zeros: 6 to 9 digits, fewer when they were zeros).
fn go_ts(now_s: i64, secs_ago: i64, fraction: &str) -> String {
    let whole = timefmt::format_rfc3339((now_s - secs_ago) * 1_000_000_000);
    let stem = whole.strip_suffix('Z').unwrap();
    if fraction.is_empty() {
        format!("{stem}Z")
    } else {
        format!("{stem}.{fraction}Z")
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn go_sdk_plain_text_and_fields_are_shown_by_search() {
    let stack = Stack::start().await;
    let now_s = timefmt::now_ns() / 1_000_000_000;
    let metric_ts = go_ts(now_s, 30, "5451");
    let span_ts = go_ts(now_s, 29, "5");
    let parts = [
        // Raw text, gzipped (compression on) and not.
        (1, b"user alice logged in".to_vec(), true, go_ts(now_s, 60, "123456")),
        (1, b"disk almost full\n".to_vec(), false, go_ts(now_s, 59, "1234567")),
        (1, b"cache warmed".to_vec(), true, go_ts(now_s, 58, "12345678")),
        (1, b"{half a json".to_vec(), false, go_ts(now_s, 57, "123456789")),
        (
            2,
            json!({"v":"2.0","type":"metric","source":"gosvc","level":7,"ts":metric_ts,"name":"requests","value":42,"kind":"counter"})
                .to_string()
                .into_bytes(),
            true,
            metric_ts.clone(),
        ),
        (
            3,
            json!({"v":"2.0","type":"trace","source":"gosvc","level":7,"ts":span_ts,"trace_id":"t1","span_id":"s1","operation":"GET /","name":"index","start_time":span_ts,"end_time":span_ts,"duration_ms":12,"status":"ok"})
                .to_string()
                .into_bytes(),
            false,
            span_ts.clone(),
        ),
    ];
    let sdk: Vec<SdkPart> = parts
        .iter()
        .map(|(t, p, gz, ts)| SdkPart {
            entry_type: *t,
            plaintext: p.clone(),
            gzip: *gz,
            timestamp: ts.clone(),
        })
        .collect();
    stack.send_sdk_parts(SdkStyle::Go, &sdk).await;

    // `up`'s own self-test entry is there too.
    let all = stack.wait_for_entries(parts.len() + 1).await;
    let by_payload = |p: &str| -> &Value {
        all.iter()
            .find(|e| e["payload"] == p)
            .unwrap_or_else(|| panic!("no entry {p:?} in {all:#?}"))
    };
    for (payload, ts) in [
        ("user alice logged in", &parts[0].3),
        ("disk almost full", &parts[1].3),
        ("cache warmed", &parts[2].3),
        ("{half a json", &parts[3].3),
    ] {
        let e = by_payload(payload);
        assert_eq!(e["logLevel"], 7, "{e}: level info (parts carry none)");
        assert_eq!(e["entryType"], 1, "{e}");
        assert_eq!(
            timefmt::parse_rfc3339(e["timestamp"].as_str().unwrap()).unwrap(),
            timefmt::parse_rfc3339(ts).unwrap(),
            "{e}: time from X-LF-Timestamp {ts}"
        );
        assert_eq!(e["payloadType"], "application");
    }
    let m = by_payload("requests = 42 (counter)");
    assert_eq!(
        (m["entryType"].as_u64(), m["kind"].as_str()),
        (Some(2), Some("counter"))
    );
    assert_eq!(
        timefmt::parse_rfc3339(m["timestamp"].as_str().unwrap()).unwrap(),
        timefmt::parse_rfc3339(&metric_ts).unwrap()
    );
    let s = by_payload("GET /: index (12 ms, ok)");
    assert_eq!(
        (s["entryType"].as_u64(), s["name"].as_str()),
        (Some(3), Some("index"))
    );

    // Text output shows the plain lines; nothing fails, nothing is hidden.
    let (code, text, err) = stack.run(&["search", "--format", "text", "--limit", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("error"), "no record errors: {err}");
    for line in ["user alice logged in", "disk almost full", "{half a json"] {
        assert!(
            text.lines()
                .any(|l| l.contains(" INFO ") && l.ends_with(&format!(": {line}"))),
            "{line:?} in {text}"
        );
    }
    // And the plain text is searchable like any payload.
    let (code, found) = stack.search(&["--contains", "alice"]);
    assert_eq!(code, 0);
    assert_eq!(found.len(), 1, "{found:?}");
}
