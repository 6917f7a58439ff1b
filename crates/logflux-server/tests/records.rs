//! Listing without bodies (`/v1/query` with `bodies: false`) and fetching bodies by id
//! (`/v1/records`): the same records, order, cursors and watermarks as a query with bodies,
//! no record byte read for a listing, and never a record of another tenant.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::TestServer;
use logflux_crypto::{Dek, SealingKey, seal_sdk_part};
use logflux_proto::multipart::Writer;
use logflux_proto::timefmt;
use serde_json::{Value, json};

/// Stores one SDK record per payload in one request (one segment), the n-th at `ts0 + n` s.
async fn ingest(
    t: &TestServer,
    api_key: &str,
    key_id: &str,
    dek: &Dek,
    ts0: i64,
    payloads: &[Vec<u8>],
) {
    // A long boundary: megabytes of ciphertext hold a short one by chance.
    let mut w = Writer::new("logflux-5d41402abc4b2a76b9719d911017c592");
    for (n, p) in payloads.iter().enumerate() {
        let (nonce, body) = seal_sdk_part(&SealingKey::new(dek), p, false).unwrap();
        let n64 = B64.encode(nonce);
        let ts = timefmt::format_rfc3339(ts0 + n as i64 * 1_000_000_000);
        w.part(
            &[
                ("X-LF-Entry-Type", "1"),
                ("X-LF-Payload-Type", "1"),
                ("X-LF-Timestamp", &ts),
                ("X-LF-Key-ID", key_id),
                ("X-LF-Nonce", &n64),
            ],
            &body,
        );
    }
    t.ingest_accepted(api_key, w).await;
}

/// `logflux_server_query_record_bytes_total` from `/metrics`.
async fn record_bytes_read(t: &TestServer) -> u64 {
    let text = t.metrics_text().await;
    text.lines()
        .find_map(|l| l.strip_prefix("logflux_server_query_record_bytes_total "))
        .unwrap_or_else(|| panic!("no record bytes counter in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// POST `/v1/records`: the status and the lines of the answer.
async fn records(t: &TestServer, token: &str, body: Value) -> (u16, Vec<Value>) {
    let r = t
        .http
        .post(format!("{}/v1/records", t.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    if status != 200 {
        return (status, vec![serde_json::from_str(&text).unwrap()]);
    }
    (
        status,
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
}

fn refs(lines: &[&Value]) -> Value {
    Value::Array(
        lines
            .iter()
            .map(|l| json!({"segment_id": l["segment_id"], "record_id": l["record_id"]}))
            .collect(),
    )
}

#[tokio::test]
async fn listing_without_bodies_matches_the_listing_with_them_and_reads_no_record() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let base = timefmt::now_ns() - 3_600_000_000_000;
    // Three segments of five records; the second overlaps the others in time.
    for (n, start) in [
        (0, base),
        (1, base + 2_500_000_000),
        (2, base + 10_000_000_000),
    ] {
        let payloads: Vec<Vec<u8>> = (0..5)
            .map(|i| format!(r#"{{"message":"segment {n} record {i}"}}"#).into_bytes())
            .collect();
        ingest(&t, &api_key, &key_id, &dek, start, &payloads).await;
    }
    let admin = t.admin.clone();
    for order in ["newest", "oldest"] {
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for (bodies, pages) in [(true, &mut with), (false, &mut without)] {
            let mut cursor = Value::Null;
            loop {
                let mut req = json!({"order": order, "limit": 4, "cursor": cursor});
                if !bodies {
                    req["bodies"] = false.into();
                }
                let read = record_bytes_read(&t).await;
                let (lines, end) = t.query(&admin, req).await;
                let read_now = record_bytes_read(&t).await;
                if bodies {
                    assert!(read_now > read, "a page with bodies reads its records");
                } else {
                    assert_eq!(read_now, read, "a page without bodies reads no record");
                }
                cursor = end["cursor"].clone();
                pages.push((lines, end));
                if cursor.is_null() {
                    break;
                }
            }
        }
        assert_eq!(with.len(), 4, "15 records in pages of 4");
        assert_eq!(with.len(), without.len());
        for ((lines_with, end_with), (lines_without, end_without)) in with.iter().zip(&without) {
            assert_eq!(end_with, end_without, "same cursor, watermark and counts");
            assert_eq!(lines_with.len(), lines_without.len());
            for (a, b) in lines_with.iter().zip(lines_without) {
                assert!(!a["body"].as_str().unwrap().is_empty());
                assert!(b.get("body").is_none(), "{b}");
                let mut a = a.clone();
                a.as_object_mut().unwrap().remove("body");
                assert_eq!(&a, b, "every field but the body");
                assert!(b["watermark"].is_i64());
            }
        }
        // The order really is by time (and both listings hold every record once).
        let ids: std::collections::HashSet<&str> = without
            .iter()
            .flat_map(|(l, _)| l.iter().map(|r| r["record_id"].as_str().unwrap()))
            .collect();
        assert_eq!(ids.len(), 15);
    }
    t.stop().await;
}

#[tokio::test]
async fn records_come_in_request_order_and_missing_ones_are_named() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    let base = timefmt::now_ns() - 3_600_000_000_000;
    for n in 0..2 {
        let payloads: Vec<Vec<u8>> = (0..4)
            .map(|i| format!(r#"{{"message":"s{n} r{i}"}}"#).into_bytes())
            .collect();
        ingest(
            &t,
            &api_key,
            &key_id,
            &dek,
            base + n * 10_000_000_000,
            &payloads,
        )
        .await;
    }
    let admin = t.admin.clone();
    let (listed, _) = t.query(&admin, json!({"order": "oldest"})).await;
    assert_eq!(listed.len(), 8);
    let segments: std::collections::BTreeSet<i64> = listed
        .iter()
        .map(|l| l["segment_id"].as_i64().unwrap())
        .collect();
    assert_eq!(segments.len(), 2);

    // Across both segments, out of stored order, with a repeat and two that do not exist:
    // an unknown id in a real segment, and a real id under the wrong segment.
    let pick = [
        &listed[6], &listed[1], &listed[0], &listed[7], &listed[3], &listed[1],
    ];
    let mut wanted = refs(&pick);
    let other_segment = if listed[2]["segment_id"] == listed[0]["segment_id"] {
        listed[7]["segment_id"].clone()
    } else {
        listed[0]["segment_id"].clone()
    };
    wanted.as_array_mut().unwrap().insert(
        2,
        json!({"segment_id": listed[0]["segment_id"], "record_id": "no-such-record"}),
    );
    wanted
        .as_array_mut()
        .unwrap()
        .push(json!({"segment_id": other_segment, "record_id": listed[2]["record_id"]}));
    wanted
        .as_array_mut()
        .unwrap()
        .push(json!({"segment_id": 987_654_321, "record_id": listed[4]["record_id"]}));
    let before = record_bytes_read(&t).await;
    let (status, mut lines) = records(&t, &admin, json!({"records": wanted})).await;
    assert_eq!(status, 200);
    let end = lines.pop().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["records"], 6);
    assert_eq!(
        end["missing"],
        json!([
            "no-such-record",
            listed[2]["record_id"],
            listed[4]["record_id"]
        ])
    );
    assert_eq!(end["more"], json!([]));
    assert_eq!(lines.len(), 6);
    for (got, want) in lines.iter().zip(pick) {
        // Exactly the query's line, but for the watermark (which belongs to a listing).
        let mut want = want.clone();
        want.as_object_mut().unwrap().remove("watermark");
        assert_eq!(got, &want);
    }
    assert!(record_bytes_read(&t).await > before);

    // Nothing asked, nothing read.
    let (status, lines) = records(&t, &admin, json!({"records": []})).await;
    assert_eq!(status, 200);
    assert_eq!(
        lines,
        [json!({"type": "end", "records": 0, "missing": [], "more": []})]
    );
    t.stop().await;
}

#[tokio::test]
async fn another_tenants_records_are_missing_and_bad_requests_are_refused() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    ingest(
        &t,
        &api_key,
        &key_id,
        &dek,
        timefmt::now_ns() - 60_000_000_000,
        &[br#"{"message":"secret of A"}"#.to_vec()],
    )
    .await;
    let admin = t.admin.clone();
    let (listed, _) = t.query(&admin, json!({})).await;
    let wanted = json!({"records": refs(&[&listed[0]])});

    let b = logflux_server::init_tenant(&t.config, "globex", 90)
        .await
        .unwrap();
    let read = record_bytes_read(&t).await;
    let (status, lines) = records(&t, &b.admin_token, wanted.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        lines,
        [json!({"type": "end", "records": 0, "missing": [listed[0]["record_id"]], "more": []})],
        "A's record is simply not there for B"
    );
    assert_eq!(
        record_bytes_read(&t).await,
        read,
        "nothing of A was read for B"
    );
    // A read-scope token of A gets it.
    let reader = t
        .admin_post(
            "/v1/admin/tokens",
            json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    let (status, lines) = records(&t, reader["token"].as_str().unwrap(), wanted).await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["body"], listed[0]["body"]);

    let refused = |body: Value| {
        let t = &t;
        let admin = admin.clone();
        async move {
            let (status, lines) = records(t, &admin, body).await;
            assert_eq!(status, 400, "{lines:?}");
            lines[0]["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"segment_id": 1, "record_id": format!("r{i}")}))
        .collect();
    let m = refused(json!({"records": many})).await;
    assert!(m.contains("at most 1000"), "{m}");
    let thousand: Vec<Value> = (0..1000)
        .map(|i| json!({"segment_id": 1, "record_id": format!("r{i}")}))
        .collect();
    let (status, lines) = records(&t, &admin, json!({"records": thousand})).await;
    assert_eq!(status, 200);
    assert_eq!(
        lines.last().unwrap()["missing"].as_array().unwrap().len(),
        1000
    );
    let m = refused(json!({"records": [], "bodies": false})).await;
    assert!(m.contains("unknown field"), "{m}");
    let m = refused(json!({"records": [{"segment_id": 1, "record_id": "r", "app": "x"}]})).await;
    assert!(m.contains("unknown field"), "{m}");
    refused(json!({})).await;
    refused(json!({"records": [{"segment_id": "one", "record_id": "r"}]})).await;
    t.stop().await;
}

#[tokio::test]
async fn an_answer_beyond_the_byte_bound_lists_the_rest_as_more() {
    let mut t = TestServer::start().await;
    let (api_key, key_id, dek) = t.producer("web").await;
    // Five records of 7 MiB: 35 MiB, beyond the 32 MiB an answer carries.
    let payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'a' + i; 7 << 20]).collect();
    ingest(
        &t,
        &api_key,
        &key_id,
        &dek,
        timefmt::now_ns() - 60_000_000_000,
        &payloads,
    )
    .await;
    let admin = t.admin.clone();
    let (listed, _) = t
        .query(&admin, json!({"order": "oldest", "bodies": false}))
        .await;
    assert_eq!(listed.len(), 5);
    let all: Vec<&Value> = listed.iter().collect();
    let (status, mut lines) = records(&t, &admin, json!({"records": refs(&all)})).await;
    assert_eq!(status, 200);
    let end = lines.pop().unwrap();
    assert_eq!(end["records"], 4);
    assert_eq!(end["missing"], json!([]));
    assert_eq!(end["more"], refs(&all[4..]));
    for (l, want) in lines.iter().zip(&listed) {
        assert_eq!(l["record_id"], want["record_id"]);
        assert!(l["body"].as_str().unwrap().len() > 7 << 20);
    }
    // Asking again for what is left gets it.
    let (status, lines) = records(&t, &admin, json!({"records": end["more"]})).await;
    assert_eq!(status, 200);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["record_id"], listed[4]["record_id"]);
    assert_eq!(lines[1]["more"], json!([]));
    t.stop().await;
}
