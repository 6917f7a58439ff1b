//! A stored segment whose footer is damaged does not fail queries: it is skipped with a
//! `damaged` line naming it, and every other record is returned.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use logflux_crypto::{SealingKey, seal_sdk_part};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(segments(&p));
        } else if p.extension().is_some_and(|x| x == "lfs") {
            out.push(p);
        }
    }
    out
}

/// Three requests, three segments of two records each; returns their files, in order.
async fn three_segments(t: &TestServer) -> Vec<std::path::PathBuf> {
    let (api_key, key_id, dek) = t.producer("web").await;
    let key = SealingKey::new(&dek);
    // Three requests, three segments of two records each.
    for r in 0..3 {
        let mut w = Writer::new("b");
        for i in 0..2 {
            let (nonce, body) = seal_sdk_part(
                &key,
                json!({"message": format!("m{r}{i}")})
                    .to_string()
                    .as_bytes(),
                true,
            )
            .unwrap();
            let n64 = B64.encode(nonce);
            w.part(
                &[
                    ("X-LF-Entry-Type", "1"),
                    ("X-LF-Payload-Type", "1"),
                    ("X-LF-Key-ID", &key_id),
                    ("X-LF-Nonce", &n64),
                ],
                &body,
            );
        }
        let resp = t
            .http
            .post(format!("{}/v1/ingest", t.base))
            .bearer_auth(&api_key)
            .header("content-type", w.content_type())
            .body(w.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    let mut segs = segments(&t.dir.path().join("objects"));
    segs.sort();
    assert_eq!(segs.len(), 3);
    segs
}

/// Flips one bit in the middle of a segment's footer (its length is in the 13-byte trailer).
fn flip_footer_bit(seg: &std::path::Path) {
    let mut bytes = std::fs::read(seg).unwrap();
    let tr = bytes.len() - 13;
    let footer_len = u32::from_le_bytes(bytes[tr..tr + 4].try_into().unwrap()) as usize;
    bytes[tr - footer_len / 2] ^= 0x10;
    std::fs::write(seg, bytes).unwrap();
}

#[tokio::test]
async fn a_damaged_footer_skips_its_segment_and_says_so() {
    let t = TestServer::start().await;
    let segs = three_segments(&t).await;
    flip_footer_bit(&segs[1]);
    assert_damaged_is_reported(&t).await;
}

/// A footer already read (and cached) by an earlier query, then damaged on disk, is reported
/// by the next query, without a restart.
#[tokio::test]
async fn a_footer_damaged_after_it_was_cached_is_reported_at_once() {
    let t = TestServer::start().await;
    let segs = three_segments(&t).await;
    let (records, _) = t.query(&t.admin, json!({})).await;
    assert_eq!(records.len(), 6, "every footer read and cached");
    flip_footer_bit(&segs[1]);
    assert_damaged_is_reported(&t).await;
    // Repaired (restored from a backup): read again, whole.
    flip_footer_bit(&segs[1]);
    let (records, _) = t.query(&t.admin, json!({})).await;
    assert_eq!(records.len(), 6);
    assert!(records.iter().all(|l| l["type"] == "record"));
}

/// Queries in both orders get the four intact records and one `damaged` line.
async fn assert_damaged_is_reported(t: &TestServer) {
    for order in ["newest", "oldest"] {
        let r = t
            .http
            .post(format!("{}/v1/query", t.base))
            .bearer_auth(&t.admin)
            .json(&json!({"order": order}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "a damaged segment does not fail the query");
        let lines: Vec<Value> = r
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "record").count(),
            4,
            "{kinds:?}"
        );
        let damaged: Vec<&Value> = lines.iter().filter(|l| l["type"] == "damaged").collect();
        assert_eq!(damaged.len(), 1, "{kinds:?}");
        assert!(
            damaged[0]["message"].as_str().unwrap().contains("checksum"),
            "{}",
            damaged[0]
        );
        assert!(damaged[0]["segment_id"].as_i64().is_some());
        assert_eq!(*kinds.last().unwrap(), "end");
    }
}
