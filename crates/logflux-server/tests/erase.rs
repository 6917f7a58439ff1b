//! Erasure through the admin API: records overlapping the range go, the rest stay readable.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{TestServer, tenant_key};
use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey, wrap_dek};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::{Entry, Level};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

#[tokio::test]
async fn erase_removes_overlapping_records_and_keeps_the_rest() {
    let mut t = TestServer::start().await;
    let (app_id, api_key) = t.app_with_key("web").await;
    let dek = Dek::generate().unwrap();
    let key_id = t
        .register_key(
            &api_key,
            &wrap_dek(&tenant_key().public_key(), &dek).unwrap(),
        )
        .await;
    let key = SealingKey::new(&dek);
    let mut sealer = BatchSealer::new(1);
    // Three requests, so three segments: {r0 [0,10], r1 [20,30]}, {r2 [40,50]}, {r3 [100,110]}.
    for batch in [
        vec![("r0", 0), ("r1", 20)],
        vec![("r2", 40)],
        vec![("r3", 100)],
    ] {
        let mut w = Writer::new("b");
        for (id, start) in batch {
            let entries = vec![
                Entry::new(start * S, Level::Info, "s", id),
                Entry::new((start + 10) * S, Level::Info, "s", id),
            ];
            let binding = RecordBinding {
                tenant: "t",
                application: &app_id,
                key_id: &key_id,
                record_id: id,
            };
            let sealed = sealer.seal(&key, &binding, &entries).unwrap();
            let (n, c, r) = (
                B64.encode(sealed.nonce),
                sealed.count.to_string(),
                format_time_range(sealed.time_range.0, sealed.time_range.1),
            );
            w.part(
                &[
                    ("X-LF-Payload-Type", "4"),
                    ("X-LF-Key-ID", &key_id),
                    ("X-LF-Nonce", &n),
                    ("X-LF-Record-ID", id),
                    ("X-LF-Count", &c),
                    ("X-LF-Time-Range", &r),
                ],
                &sealed.ciphertext,
            );
        }
        let r = t
            .http
            .post(format!("{}/v1/ingest", t.base))
            .bearer_auth(&api_key)
            .header("content-type", w.content_type())
            .body(w.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let r = t
        .http
        .post(format!("{}/v1/admin/erase", t.base))
        .bearer_auth(&t.admin)
        .json(&json!({"application": "web", "from": 25 * S, "to": 60 * S}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (
            v["segments_deleted"].as_u64(),
            v["segments_rewritten"].as_u64(),
            v["records_erased"].as_u64()
        ),
        (Some(1), Some(1), Some(2)),
        "{v}"
    );

    let (records, _) = t.query(&t.admin.clone(), json!({"order": "oldest"})).await;
    let ids: Vec<&str> = records
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["agent-r0", "agent-r3"]);
    // What stayed still opens: the rewrite kept its bytes exactly.
    for r in &records {
        let nonce: [u8; 12] = B64
            .decode(r["nonce"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let id = r["record_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("agent-");
        let binding = RecordBinding {
            tenant: "t",
            application: &app_id,
            key_id: &key_id,
            record_id: id,
        };
        let entries = logflux_crypto::open_batch(
            &key,
            &binding,
            &nonce,
            &B64.decode(r["body"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        assert_eq!(entries[0].payload, id);
    }
    let audit: Value = t
        .http
        .get(format!("{}/v1/admin/audit", t.base))
        .bearer_auth(&t.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "records.erase"),
        "{audit}"
    );
    // The old objects are gone from the store; only live segments remain.
    let objects = walk(&t.dir.path().join("objects"));
    assert_eq!(objects, 2, "one rewritten and one untouched segment");
    t.stop().await;
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            // Segments only: the store also holds tenant, application and key objects.
            if p.is_dir() {
                walk(&p)
            } else {
                usize::from(p.extension().is_some_and(|x| x == "lfs"))
            }
        })
        .sum()
}
