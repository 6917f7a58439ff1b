//! Crash safety: the server is killed with SIGKILL at random moments while clients ingest
//! concurrently. After every restart each acknowledged record is readable exactly once, and
//! every segment the catalog names exists and is intact.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{BatchSealer, Dek, PrivateKey, RecordBinding, SealingKey, wrap_dek};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::{Entry, Level};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux-server");

struct Proc {
    child: tokio::process::Child,
    base: String,
}

/// Starts the server on `port` (0: any) and waits for its "listening on" line.
async fn spawn(dir: &std::path::Path, port: u16) -> Proc {
    let mut child = tokio::process::Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--commit-linger-ms",
            "5",
        ])
        .env("LOGFLUX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("server did not start")
        .unwrap()
        .expect("server exited before listening");
    let base = line.strip_prefix("listening on ").unwrap().to_owned();
    Proc { child, base }
}

fn init(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            dir.to_str().unwrap(),
            "init",
            "--tenant",
            "crash",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("lf_pat_"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_concurrent_ingest_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let admin = init(dir.path());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut p = spawn(dir.path(), 0).await;
    let port: u16 = p.base.rsplit(':').next().unwrap().parse().unwrap();

    // Setup: public key, application, API key, one registered data key.
    let sk = PrivateKey::generate(2048).unwrap();
    let put = |path: &str, body: Value| {
        http.put(format!("{}{path}", p.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    assert!(
        put(
            "/v1/admin/public-key",
            json!({"public_key_pem": sk.public_key().to_pem()})
        )
        .await
        .unwrap()
        .status()
        .is_success()
    );
    let post = |path: &str, body: Value| {
        http.post(format!("{}{path}", p.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };
    let app: Value = post("/v1/admin/applications", json!({"name": "app"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key: Value = post(
        "/v1/admin/api-keys",
        json!({"application": "app", "name": "k"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let api_key = key["api_key"].as_str().unwrap().to_owned();
    let app_id = app["id"].as_str().unwrap().to_owned();
    let dek = Dek::generate().unwrap();
    let r: Value = http
        .post(format!("{}/v1/handshake/complete", p.base))
        .bearer_auth(&api_key)
        .json(&json!({"encrypted_secret": B64.encode(wrap_dek(&sk.public_key(), &dek).unwrap())}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = r["key_id"].as_str().unwrap().to_owned();
    let sealing = Arc::new(SealingKey::new(&dek));

    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let rounds = 6;
    for round in 0..rounds {
        let base = p.base.clone();
        // Four clients, each sending requests of 1..4 batches until the server dies.
        let mut workers = Vec::new();
        for w in 0..4 {
            let (http, base, api_key, key_id, app_id, sealing, acked) = (
                http.clone(),
                base.clone(),
                api_key.clone(),
                key_id.clone(),
                app_id.clone(),
                sealing.clone(),
                acked.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut sealer = BatchSealer::new(1);
                for seq in 0.. {
                    let mut w_body = Writer::new("crashboundary");
                    let mut ids = Vec::new();
                    for part in 0..(1 + seq % 4) {
                        let record_id = format!("r{round}-w{w}-s{seq}-p{part}");
                        let entries =
                            vec![Entry::new(seq as i64, Level::Info, "crash", &record_id); 3];
                        let binding = RecordBinding {
                            tenant: "t",
                            application: &app_id,
                            key_id: &key_id,
                            record_id: &record_id,
                        };
                        let sealed = sealer.seal(&sealing, &binding, &entries).unwrap();
                        let (n64, count, range) = (
                            B64.encode(sealed.nonce),
                            sealed.count.to_string(),
                            format_time_range(sealed.time_range.0, sealed.time_range.1),
                        );
                        w_body.part(
                            &[
                                ("X-LF-Payload-Type", "4"),
                                ("X-LF-Key-ID", &key_id),
                                ("X-LF-Nonce", &n64),
                                ("X-LF-Record-ID", &record_id),
                                ("X-LF-Count", &count),
                                ("X-LF-Time-Range", &range),
                            ],
                            &sealed.ciphertext,
                        );
                        ids.push(record_id);
                    }
                    let r = http
                        .post(format!("{base}/v1/ingest"))
                        .bearer_auth(&api_key)
                        .header("content-type", w_body.content_type())
                        .body(w_body.finish())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status() == 202 => acked.lock().unwrap().extend(ids),
                        Ok(r) => panic!("unexpected status {}", r.status()),
                        // The server was killed: stop this client.
                        Err(_) => return seq,
                    }
                }
                unreachable!()
            }));
        }
        // Let the clients get going, then kill at a moment that varies from round to round.
        let before = acked.lock().unwrap().len();
        let started = std::time::Instant::now();
        loop {
            if acked.lock().unwrap().len() >= before + 20 + round * 13 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "round {round}: the server stopped acknowledging"
            );
            tokio::task::yield_now().await;
        }
        p.child.start_kill().unwrap();
        p.child.wait().await.unwrap();
        for w in workers {
            w.await.unwrap();
        }
        p = spawn(dir.path(), port).await;

        // Every acknowledged record is there, exactly once.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut cursor = Value::Null;
        loop {
            let text = http
                .post(format!("{}/v1/query", p.base))
                .bearer_auth(&admin)
                .json(&json!({"order": "oldest", "limit": 5000, "cursor": cursor}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut end = Value::Null;
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                if v["type"] == "record" {
                    *seen
                        .entry(
                            v["record_id"]
                                .as_str()
                                .unwrap()
                                .trim_start_matches("agent-")
                                .to_owned(),
                        )
                        .or_default() += 1;
                } else {
                    end = v;
                }
            }
            if end["cursor"].is_null() {
                break;
            }
            cursor = end["cursor"].clone();
        }
        let acked_now = acked.lock().unwrap().clone();
        let missing: Vec<_> = acked_now
            .iter()
            .filter(|id| !seen.contains_key(*id))
            .collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but missing: {missing:?}"
        );
        let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "round {round}: duplicated: {dups:?}");
        eprintln!(
            "round {round}: {} acknowledged, {} stored (unacknowledged but committed: {})",
            acked_now.len(),
            seen.len(),
            seen.len() - acked_now.len()
        );
    }

    // The catalog and the store agree: every segment named exists, is whole, and opens.
    let catalog = logflux_server::catalog::Catalog::connect(&format!(
        "sqlite:{}",
        dir.path().join("catalog.db").display()
    ))
    .await
    .unwrap();
    let store = logflux_server::store::BlobStore::local(dir.path().join("objects")).unwrap();
    for key in catalog.all_object_keys().await.unwrap() {
        let bytes = store.get(&key).await.unwrap();
        assert!(bytes.ends_with(b"LFSG\x01"), "{key} is whole");
    }
    p.child.start_kill().unwrap();
}
