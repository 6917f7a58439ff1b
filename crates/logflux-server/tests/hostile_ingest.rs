//! A producer holding only an API key cannot store a record that every search of its tenant
//! would fetch: the reserved "no tokens" token, time ranges of centuries or in the future,
//! empty bodies and impossible counts are refused at `/v1/ingest` with a 400 naming the part
//! and the rule, and nothing of such a request is stored. Old times stay acceptable.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use logflux_crypto::{Dek, SealingKey, seal_sdk_part};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::timefmt::{format_rfc3339, now_ns, parse_rfc3339};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// One part's headers and body.
struct Part {
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

/// An agent batch part: its body is opaque to the server, so random bytes do.
fn agent(key_id: &str, record_id: &str, range: (i64, i64), tokens: &str, body_len: usize) -> Part {
    let mut headers = vec![
        ("X-LF-Payload-Type", "4".to_owned()),
        ("X-LF-Key-ID", key_id.to_owned()),
        ("X-LF-Nonce", B64.encode([7u8; 12])),
        ("X-LF-Record-ID", record_id.to_owned()),
        ("X-LF-Count", "3".to_owned()),
        ("X-LF-Time-Range", format_time_range(range.0, range.1)),
    ];
    if !tokens.is_empty() {
        headers.push(("X-LF-Search-Tokens", tokens.to_owned()));
    }
    Part {
        headers,
        body: vec![0xA5; body_len],
    }
}

/// A well-formed SDK part (payload type 1), sealed with `dek`.
fn sdk(key_id: &str, dek: &Dek) -> Part {
    let (nonce, body) =
        seal_sdk_part(&SealingKey::new(dek), b"{\"message\":\"fine\"}", true).unwrap();
    Part {
        headers: vec![
            ("X-LF-Entry-Type", "1".to_owned()),
            ("X-LF-Payload-Type", "1".to_owned()),
            ("X-LF-Key-ID", key_id.to_owned()),
            ("X-LF-Nonce", B64.encode(nonce)),
        ],
        body,
    }
}

fn with(mut p: Part, name: &'static str, value: &str) -> Part {
    p.headers.retain(|(n, _)| *n != name);
    p.headers.push((name, value.to_owned()));
    p
}

fn with_body(mut p: Part, body: Vec<u8>) -> Part {
    p.body = body;
    p
}

async fn post(t: &TestServer, api_key: &str, parts: &[&Part]) -> (u16, Value) {
    let mut w = Writer::new("b");
    for p in parts {
        let h: Vec<(&str, &str)> = p.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        w.part(&h, &p.body);
    }
    let r = t
        .http
        .post(format!("{}/v1/ingest", t.base))
        .bearer_auth(api_key)
        .header("content-type", w.content_type())
        .body(w.finish())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

const TOKEN: &str = "0123456789abcdef";

#[tokio::test]
async fn hostile_parts_are_refused_with_their_reason_and_nothing_is_stored() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let now = now_ns();
    let ts = |s: &str| parse_rfc3339(s).unwrap();
    let recent = (now - 60 * S, now - 50 * S);
    let good = agent(&key_id, "good-1", recent, TOKEN, 64);
    let cases: Vec<(&str, Part, &str)> = vec![
        (
            "reserved token",
            agent(
                &key_id,
                "r1",
                recent,
                "0000000000000000,0123456789abcdef",
                64,
            ),
            "0000000000000000 is reserved",
        ),
        (
            "a range of centuries",
            agent(
                &key_id,
                "r2",
                (ts("1678-01-01T00:00:00Z"), ts("2262-01-01T00:00:00Z")),
                TOKEN,
                64,
            ),
            "spans more than 3600 s",
        ),
        (
            "a range just over an hour",
            agent(&key_id, "r3", (now - 3601 * S, now), TOKEN, 64),
            "spans more than 3600 s",
        ),
        (
            "a range ending tomorrow",
            agent(
                &key_id,
                "r4",
                (now + 86_400 * S, now + 86_401 * S),
                TOKEN,
                64,
            ),
            "more than 15 minutes ahead",
        ),
        (
            "an empty agent body",
            agent(&key_id, "r5", recent, TOKEN, 0),
            "body is 0 bytes",
        ),
        (
            "an agent body of a bare GCM tag",
            agent(&key_id, "r6", recent, TOKEN, 16),
            "body is 16 bytes",
        ),
        (
            "a token that is not 16 hex digits",
            agent(&key_id, "r7", recent, "zzzzzzzzzzzzzzzz", 64),
            "16 hex digits",
        ),
        (
            "an impossible count",
            with(
                agent(&key_id, "r8", recent, TOKEN, 64),
                "X-LF-Count",
                "4000000000",
            ),
            "entries",
        ),
        (
            "an agent part with an entry type",
            with(
                agent(&key_id, "r9", recent, TOKEN, 64),
                "X-LF-Entry-Type",
                "3",
            ),
            "an agent batch mixes entry types",
        ),
        (
            "an SDK timestamp centuries ahead",
            with(sdk(&key_id, &dek), "X-LF-Timestamp", "2200-01-01T00:00:00Z"),
            "X-LF-Timestamp 2200-01-01T00:00:00Z is more than 15 minutes ahead",
        ),
        (
            "an empty SDK body",
            with_body(sdk(&key_id, &dek), Vec::new()),
            "body is 0 bytes",
        ),
        (
            "an SDK body of a bare GCM tag",
            with_body(sdk(&key_id, &dek), vec![1; 16]),
            "body is 16 bytes",
        ),
        (
            "an empty unencrypted SDK body",
            with_body(
                Part {
                    headers: vec![
                        ("X-LF-Entry-Type", "7".to_owned()),
                        ("X-LF-Payload-Type", "3".to_owned()),
                    ],
                    body: Vec::new(),
                },
                Vec::new(),
            ),
            "body is empty",
        ),
        (
            "an SDK part claiming many entries",
            with(sdk(&key_id, &dek), "X-LF-Count", "5"),
            "an SDK part is one entry",
        ),
        (
            "an SDK part with a range of centuries",
            with(
                sdk(&key_id, &dek),
                "X-LF-Time-Range",
                "1700-01-01T00:00:00Z/2200-01-01T00:00:00Z",
            ),
            "spans more than",
        ),
    ];
    for (what, bad, reason) in &cases {
        // The bad part comes second, after a valid one: the request is refused as a whole.
        let (status, v) = post(&t, &api_key, &[&good, bad]).await;
        assert_eq!(status, 400, "{what}: {v}");
        assert_eq!(v["error"]["code"], "bad_request", "{what}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.starts_with("part 1: ") && msg.contains(reason),
            "{what}: {msg}"
        );
    }
    let (records, _) = t.query(&t.admin.clone(), json!({})).await;
    assert!(records.is_empty(), "nothing of a refused request is stored");

    // The valid part alone is stored; so is a record with old times (an archive).
    let archive = agent(
        &key_id,
        "archive-1",
        (ts("1999-12-31T23:00:00Z"), ts("1999-12-31T23:59:59Z")),
        TOKEN,
        64,
    );
    let old_sdk = with(sdk(&key_id, &dek), "X-LF-Timestamp", "1990-01-01T00:00:00Z");
    let soon = agent(&key_id, "skewed-1", (now, now + 60 * S), TOKEN, 64);
    let (status, v) = post(&t, &api_key, &[&good, &archive, &old_sdk, &soon]).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["accepted"], 4, "{v}");
    let (records, _) = t.query(&t.admin.clone(), json!({})).await;
    assert_eq!(records.len(), 4);
    t.stop().await;
}

#[tokio::test]
async fn a_query_of_an_unrelated_window_does_not_fetch_a_hostile_record() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, _) = t.producer("web").await;
    let now = now_ns();
    let ts = |s: &str| parse_rfc3339(s).unwrap();
    // The poisoned record of defect 1 (60 bytes, 1678 to 2262 and the reserved token), then a
    // legitimate one from a minute ago.
    let poison = agent(
        &key_id,
        "poison",
        (ts("1678-01-01T00:00:00Z"), ts("2262-01-01T00:00:00Z")),
        "0000000000000000",
        60,
    );
    let _ = post(&t, &api_key, &[&poison]).await;
    let legit = agent(&key_id, "legit", (now - 60 * S, now - 59 * S), TOKEN, 64);
    let (status, v) = post(&t, &api_key, &[&legit]).await;
    assert_eq!(status, 202, "{v}");

    // As the client asks: a window of yesterday, any token or the reserved one.
    let window = json!({
        "from": format_rfc3339(now - 2 * 86_400 * S),
        "to": format_rfc3339(now - 86_400 * S),
        "tokens": [[TOKEN, logflux_proto::UNTOKENIZED]],
    });
    let (records, _) = t.query(&t.admin.clone(), window).await;
    assert!(records.is_empty(), "an unrelated window: {records:?}");
    let (records, _) = t
        .query(
            &t.admin.clone(),
            json!({"tokens": [[TOKEN, logflux_proto::UNTOKENIZED]]}),
        )
        .await;
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["agent-legit"]);
    t.stop().await;
}

#[tokio::test]
async fn a_backfill_limit_refuses_older_records_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config_for(dir.path());
    config.http.max_backfill_days = Some(30);
    let mut t = TestServer::start_with(dir, config).await;
    let (api_key, key_id, _) = t.producer("web").await;
    let now = now_ns();
    let day = 86_400 * S;
    let old = agent(
        &key_id,
        "old",
        (now - 40 * day, now - 40 * day + S),
        TOKEN,
        64,
    );
    let (status, v) = post(&t, &api_key, &[&old]).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ingest.max_backfill_days"),
        "{v}"
    );
    let recent = agent(
        &key_id,
        "recent",
        (now - 10 * day, now - 10 * day + S),
        TOKEN,
        64,
    );
    let (status, v) = post(&t, &api_key, &[&recent]).await;
    assert_eq!(status, 202, "{v}");
    t.stop().await;
}
