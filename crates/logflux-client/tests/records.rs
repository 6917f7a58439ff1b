//! Records as the client meets them. One bad record among good ones — a body that fails its
//! integrity check, and a correctly sealed zstd bomb — costs `search`, `export`, `stats` and
//! `tail` an error line naming it: the good entries are all there, and the exit status is 2.
//! And records' time ranges, rounded outward by the agent, cost no precision: entries are
//! filtered exactly after decryption.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Stack;
use logflux_crypto::{Dek, PublicKey, RecordBinding, SealingKey, wrap_dek};
use logflux_proto::multipart::{Writer, format_time_range, headers};
use logflux_proto::timefmt;
use serde_json::{Value, json};

/// A data key registered through the SDK handshake, as a producer with the API key gets one.
async fn data_key(s: &Stack, http: &reqwest::Client) -> (String, SealingKey) {
    let (base, api_key) = (s.var("LOGFLUX_SERVER"), s.var("LOGFLUX_API_KEY"));
    let init: Value = http
        .post(format!("{base}/v1/handshake/init"))
        .bearer_auth(api_key)
        .json(&json!({"api_key": api_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public = PublicKey::from_pem(init["data"]["public_key"].as_str().unwrap()).unwrap();
    let dek = Dek::generate().unwrap();
    let done: Value = http
        .post(format!("{base}/v1/handshake/complete"))
        .bearer_auth(api_key)
        .json(&json!({"api_key": api_key, "encrypted_secret": B64.encode(wrap_dek(&public, &dek).unwrap())}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        done["data"]["key_id"].as_str().unwrap().to_owned(),
        SealingKey::new(&dek),
    )
}

async fn get(s: &Stack, http: &reqwest::Client, path: &str) -> Value {
    http.get(format!("{}{path}", s.var("LOGFLUX_SERVER")))
        .bearer_auth(s.var("LOGFLUX_PAT"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A zstd frame whose content is `claimed` zero bytes (a few KiB compressed).
fn bomb(claimed: usize) -> Vec<u8> {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.include_contentsize(true).unwrap();
    enc.set_pledged_src_size(Some(claimed as u64)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..claimed / zeros.len() {
        enc.write_all(&zeros).unwrap();
    }
    enc.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_bad_record_costs_an_error_line_not_the_command() {
    let s = Stack::start().await;
    let now = timefmt::now_ns();
    // `logflux up` may have logged entries of its own.
    let (_, before) = s.search(&[]);
    let good: Vec<Value> = (0..20)
        .map(|i| {
            json!({"version": "1.0", "payload": format!("good {i}"), "source": "app",
                        "entryType": 1, "logLevel": 6})
        })
        .collect();
    s.send_unix(&good).await;
    s.wait_for_entries(before.len() + 20).await;

    // Two bad records, within the same hour as the good ones, with an ordinary token: every
    // search of that time fetches them.
    let http = reqwest::Client::new();
    let (key_id, key) = data_key(&s, &http).await;
    let me = get(&s, &http, "/v1/me").await;
    let tenant = me["tenant_id"].as_str().unwrap();
    let apps = get(&s, &http, "/v1/applications").await;
    assert_eq!(apps["applications"].as_array().unwrap().len(), 1, "{apps}");
    let app = apps["applications"][0]["id"].as_str().unwrap().to_owned();
    let poisoned_id = "01kbadrecord0000000000000a";
    let bomb_id = "01kbadrecord0000000000000b";
    let mut poisoned = vec![0x5au8; 60];
    poisoned[..4].copy_from_slice(b"junk");
    let mut bomb_body = bomb(255 * 1024 * 1024);
    let binding = RecordBinding {
        tenant,
        application: &app,
        key_id: &key_id,
        record_id: bomb_id,
    };
    let bomb_nonce = key.seal(&binding.aad(), &mut bomb_body).unwrap();
    let range = format_time_range(now - now.rem_euclid(1_000_000_000), now + 999_999_999);
    let mut w = Writer::new("bad-records-0123456789");
    for (id, nonce, body) in [
        (poisoned_id, [7u8; 12], &poisoned),
        (bomb_id, bomb_nonce, &bomb_body),
    ] {
        let nonce = B64.encode(nonce);
        w.part(
            &[
                ("Content-Type", "application/octet-stream"),
                (headers::PAYLOAD_TYPE, "4"),
                (headers::KEY_ID, &key_id),
                (headers::NONCE, &nonce),
                (headers::RECORD_ID, id),
                (headers::COUNT, "1"),
                (headers::TIME_RANGE, &range),
                (headers::SEARCH_TOKENS, "0123456789abcdef"),
            ],
            body,
        );
    }
    let r = http
        .post(format!("{}/v1/ingest", s.var("LOGFLUX_SERVER")))
        .bearer_auth(s.var("LOGFLUX_API_KEY"))
        .header("content-type", w.content_type())
        .body(w.finish())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    // Both are stored and listed (committed asynchronously): wait for them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (code, _, err) = s.run(&["search", "--limit", "0", "--since", "1h"]);
        if code == 2 && err.contains(poisoned_id) && err.contains(bomb_id) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bad records never listed: {err}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let names_both = |err: &str| {
        assert!(err.contains(poisoned_id), "{err}");
        assert!(err.contains("integrity check failed"), "{err}");
        assert!(err.contains(bomb_id), "{err}");
        assert!(
            err.contains("larger than the limit of 16777216 bytes"),
            "{err}"
        );
    };
    let payloads = |out: &str| {
        let mut p: Vec<String> = out
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["payload"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .filter(|p| p.starts_with("good "))
            .collect();
        p.sort();
        p
    };
    let mut want: Vec<String> = (0..20).map(|i| format!("good {i}")).collect();
    want.sort();

    let (code, out, err) = s.run(&[
        "search", "--format", "ndjson", "--limit", "0", "--since", "1h",
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(payloads(&out), want);
    names_both(&err);

    let file = s.tmp.path().join("day.ndjson");
    let (code, _, err) = s.run(&["export", "--since", "1h", "-O", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    names_both(&err);
    assert!(err.contains("2 records could not be opened"), "{err}");
    assert_eq!(payloads(&std::fs::read_to_string(&file).unwrap()), want);

    let (code, out, err) = s.run(&["stats", "--since", "1h", "--format", "json"]);
    assert_eq!(code, 2, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["total"], before.len() + 20);
    names_both(&err);

    let (code, out, err) = s.run(&["tail", "-n", "5", "--format", "ndjson"]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(out.lines().count(), 5);
    names_both(&err);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sub_second_window_returns_exactly_its_entries() {
    let s = Stack::start().await;
    let (_, before) = s.search(&[]);
    // Ten entries 100 ms apart within one second: one record, whose range the agent rounds
    // out to the whole second.
    let second = timefmt::now_ns() / 1_000_000_000 * 1_000_000_000 - 30_000_000_000;
    let at = |k: i64| second + k * 100_000_000 + 1234;
    let lines: Vec<Value> = (0..10)
        .map(|k| {
            json!({"version": "1.0", "payload": format!("tick {k}"), "source": "clock",
                        "entryType": 1, "logLevel": 6, "timestamp": timefmt::format_rfc3339(at(k))})
        })
        .collect();
    s.send_unix(&lines).await;
    s.wait_for_entries(before.len() + 10).await;
    // From just before tick 3 to exactly tick 6 (both bounds inclusive).
    let since = timefmt::format_rfc3339(at(3) - 1);
    let until = timefmt::format_rfc3339(at(6));
    let (code, found) = s.search(&["--order", "oldest", "--since", &since, "--until", &until]);
    assert_eq!(code, 0);
    let payloads: Vec<&str> = found
        .iter()
        .map(|e| e["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads, ["tick 3", "tick 4", "tick 5", "tick 6"]);
    let (code, found) = s.search(&[
        "--since",
        &timefmt::format_rfc3339(at(6) + 1),
        "--until",
        &timefmt::format_rfc3339(at(7) - 1),
    ]);
    assert_eq!((code, found.len()), (1, 0), "nothing between two ticks");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_log_records_a_query_without_its_tokens() {
    let s = Stack::start().await;
    let word = "zebrafinch";
    let (code, _) = s.search(&[word, "--level", "error"]);
    assert_eq!(code, 1);
    // The blind token the client sent for the word, for each application.
    let http = reqwest::Client::new();
    let apps = get(&s, &http, "/v1/applications").await;
    let text = std::fs::read_to_string(s.var("LOGFLUX_SEARCH_KEY_FILE")).unwrap();
    let key = logflux_crypto::SearchKey::from_text(text.trim()).unwrap();
    let tokens: Vec<String> = apps["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            key.token_key(a["id"].as_str().unwrap())
                .token(logflux_crypto::Field::Word, word)
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(!tokens.is_empty());
    let audit = get(&s, &http, "/v1/admin/audit").await;
    let query = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "query")
        .unwrap_or_else(|| panic!("no query audited: {audit}"));
    let details: Value = serde_json::from_str(query["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["token_groups"], 2, "{details}");
    let all = audit.to_string();
    assert!(!all.contains(word), "{all}");
    for t in &tokens {
        assert!(
            !all.contains(t.as_str()),
            "token {t} in the audit log: {all}"
        );
    }
}
