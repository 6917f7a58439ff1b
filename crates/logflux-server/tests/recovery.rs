//! Catalog loss and recovery, with the real binary: a lost SQLite WAL and a restored old backup
//! lose no record. Housekeeping keeps the segments the catalog forgot (and warns), `catalog
//! rebuild` registers them again with their data keys, and every entry decrypts.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{Dek, PrivateKey, SealingKey, seal_sdk_part, wrap_dek};
use logflux_proto::multipart::Writer;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux-server");

struct Proc {
    child: tokio::process::Child,
    base: String,
    /// Every line the server wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

/// Starts the server on any port with `extra` arguments and waits for its "listening on" line.
async fn spawn(dir: &Path, extra: &[&str]) -> Proc {
    let mut child = tokio::process::Command::new(BIN)
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(extra)
        .args(["--listen", "127.0.0.1:0", "--commit-linger-ms", "2"])
        .env("LOGFLUX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = err.next_line().await {
            eprintln!("server: {line}");
            sink.lock().unwrap().push(line);
        }
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("server did not start")
        .unwrap()
        .expect("server exited before listening");
    let base = line.strip_prefix("listening on ").unwrap().to_owned();
    Proc { child, base, log }
}

impl Proc {
    async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// Runs an operator command; returns its stdout, or its stderr as the error.
fn run(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new(BIN)
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(args)
        .env("LOGFLUX_LOG", "warn")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn init(dir: &Path) -> String {
    run(dir, &["init", "--tenant", "recovery"])
        .unwrap()
        .lines()
        .find(|l| l.starts_with("lf_pat_"))
        .unwrap()
        .to_owned()
}

struct Client {
    http: reqwest::Client,
    admin: String,
    api_key: String,
    key_id: String,
    dek: Dek,
    sk: PrivateKey,
}

impl Client {
    /// Public key, application, API key and a registered data key.
    async fn setup(base: &str, admin: &str) -> Client {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let sk = PrivateKey::generate(2048).unwrap();
        let r = http
            .put(format!("{base}/v1/admin/public-key"))
            .bearer_auth(admin)
            .json(&json!({"public_key_pem": sk.public_key().to_pem()}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let r = http
            .post(format!("{base}/v1/admin/applications"))
            .bearer_auth(admin)
            .json(&json!({"name": "app"}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let key: Value = http
            .post(format!("{base}/v1/admin/api-keys"))
            .bearer_auth(admin)
            .json(&json!({"application": "app", "name": "k"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut c = Client {
            http,
            admin: admin.to_owned(),
            api_key: key["api_key"].as_str().unwrap().to_owned(),
            key_id: String::new(),
            dek: Dek::generate().unwrap(),
            sk,
        };
        c.new_data_key(base).await;
        c
    }

    /// Registers a new data key (as an SDK does when it rotates).
    async fn new_data_key(&mut self, base: &str) {
        self.dek = Dek::generate().unwrap();
        let r: Value = self
            .http
            .post(format!("{base}/v1/handshake/complete"))
            .bearer_auth(&self.api_key)
            .json(&json!({"encrypted_secret": B64.encode(wrap_dek(&self.sk.public_key(), &self.dek).unwrap())}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.key_id = r["key_id"].as_str().unwrap().to_owned();
    }

    /// Ingests one request of SDK records with these messages.
    async fn ingest(&self, base: &str, messages: &[String]) {
        let sealing = SealingKey::new(&self.dek);
        let mut w = Writer::new("b");
        for m in messages {
            let (nonce, body) =
                seal_sdk_part(&sealing, json!({"message": m}).to_string().as_bytes(), true)
                    .unwrap();
            let n = B64.encode(nonce);
            w.part(
                &[
                    ("X-LF-Entry-Type", "1"),
                    ("X-LF-Payload-Type", "1"),
                    ("X-LF-Key-ID", &self.key_id),
                    ("X-LF-Nonce", &n),
                ],
                &body,
            );
        }
        let r = self
            .http
            .post(format!("{base}/v1/ingest"))
            .bearer_auth(&self.api_key)
            .header("content-type", "multipart/mixed; boundary=b")
            .body(w.finish())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }

    /// Every record, decrypted with the tenant's private key: their messages.
    async fn messages(&self, base: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut cursor = Value::Null;
        loop {
            let text = self
                .http
                .post(format!("{base}/v1/query"))
                .bearer_auth(&self.admin)
                .json(&json!({"order": "oldest", "limit": 1000, "cursor": cursor}))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let mut end = Value::Null;
            for line in text.lines() {
                let r: Value = serde_json::from_str(line).unwrap();
                if r["type"] != "record" {
                    end = r;
                    continue;
                }
                let v = common::open_sdk_record(&self.http, base, &self.admin, &self.sk, &r).await;
                assert!(
                    out.insert(v["message"].as_str().unwrap().to_owned()),
                    "a record is stored twice"
                );
            }
            if end["cursor"].is_null() {
                return out;
            }
            cursor = end["cursor"].clone();
        }
    }
}

fn batch(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Segment objects in the store (outside the quarantine).
fn segments(dir: &Path) -> Vec<String> {
    let root = dir.join("objects");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "lfs") {
                let rel = p.strip_prefix(&root).unwrap().display().to_string();
                if !rel.starts_with("_quarantine") {
                    out.push(rel);
                }
            }
        }
    }
    out.sort();
    out
}

async fn metric(http: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_wal_loses_no_record_after_catalog_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("server.yaml");
    std::fs::write(&config, "housekeeping_interval_s: 1\n").unwrap();
    let cfg = ["--config", config.to_str().unwrap()];
    let admin = init(d);
    let p = spawn(d, &cfg).await;
    let client = Client::setup(&p.base, &admin).await;
    let mut want = BTreeSet::new();
    for round in 0..3 {
        let m = batch(&format!("wal{round}"), 10);
        client.ingest(&p.base, &m).await;
        want.extend(m);
    }
    assert_eq!(client.messages(&p.base).await, want);
    // Killed, so the commits are still in the WAL; then the WAL is lost.
    p.kill().await;
    let wal = d.join("catalog.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "commits are in the WAL"
    );
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(d.join("catalog.db-shm"));
    let before = segments(d);
    assert!(!before.is_empty());
    // The objects are two days old by now (older than any "commit in progress" window).
    let status = std::process::Command::new("find")
        .arg(d.join("objects"))
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "2 days ago",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(status.success());

    // The restarted server has forgotten the records; housekeeping (every second) warns and
    // keeps every segment.
    let p = spawn(d, &cfg).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("the store holds segments the catalog does not know"))
    {
        assert!(
            Instant::now() < deadline,
            "no warning about unknown segments; segments left in the store: {} of {}",
            segments(d).len(),
            before.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let passes = "logflux_server_housekeeping_passes_total";
    let first = metric(&client.http, &p.base, passes).await;
    while metric(&client.http, &p.base, passes).await < first + 2.0 {
        assert!(Instant::now() < deadline, "housekeeping stopped running");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(segments(d), before, "housekeeping kept every segment");
    assert_eq!(
        metric(&client.http, &p.base, "logflux_server_unknown_segments").await,
        before.len() as f64
    );
    assert!(client.messages(&p.base).await.is_empty());
    p.kill().await;

    // `catalog rebuild` brings back the application, the data key and every segment.
    let out = run(d, &["catalog", "rebuild"]).unwrap();
    assert!(
        out.contains(&format!(
            "registered: 0 tenants, 1 applications, 1 data keys, {} segments (30 records)",
            before.len()
        )),
        "{out}"
    );
    assert!(out.contains("updated from the store: 1 settings"), "{out}");
    let p = spawn(d, &cfg).await;
    assert_eq!(client.messages(&p.base).await, want);
    // And again: nothing left to do.
    p.kill().await;
    let out = run(d, &["catalog", "rebuild"]).unwrap();
    assert!(
        out.starts_with("registered: 0 tenants, 0 applications, 0 data keys, 0 segments"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_backup_restored_and_rebuilt_loses_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin = init(d);
    let p = spawn(d, &[]).await;
    let mut client = Client::setup(&p.base, &admin).await;
    let mut want = BTreeSet::from_iter(batch("before", 10));
    client.ingest(&p.base, &batch("before", 10)).await;

    // An online backup, private to the owner.
    let backup = d.join("backup.db");
    let out = run(d, &["backup", "--out", backup.to_str().unwrap()]).unwrap();
    assert!(out.contains("catalog backed up"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run(d, &["backup", "--out", backup.to_str().unwrap()]).unwrap_err();
    assert!(again.contains("must not exist"), "{again}");

    // After the backup: more records, under a new data key.
    client.new_data_key(&p.base).await;
    client.ingest(&p.base, &batch("after", 10)).await;
    want.extend(batch("after", 10));
    assert_eq!(client.messages(&p.base).await, want);

    // A running server's catalog is not replaced.
    let refused = run(d, &["restore", "--from", backup.to_str().unwrap()]).unwrap_err();
    assert!(
        refused.contains("is in use by process") && refused.contains("catalog.db.lock"),
        "{refused}"
    );
    p.kill().await;

    // Restored and rebuilt: the records and the key newer than the backup are back.
    let out = run(d, &["restore", "--from", backup.to_str().unwrap()]).unwrap();
    assert!(out.contains("catalog restored"), "{out}");
    assert!(
        out.contains("registered: 0 tenants, 0 applications, 1 data keys, 1 segments (10 records)"),
        "{out}"
    );
    let p = spawn(d, &[]).await;
    assert_eq!(client.messages(&p.base).await, want);
    p.kill().await;
}

/// The store's copy of a data key is the one the catalog holds: a second registration of the
/// same id with other bytes is refused and does not replace it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_registration_leaves_the_stored_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let admin = init(d);
    let p = spawn(d, &[]).await;
    let client = Client::setup(&p.base, &admin).await;
    let id = format!("ak_{}", "ab".repeat(16));
    let mut statuses = Vec::new();
    let mut wrapped = Vec::new();
    for _ in 0..2 {
        let w = wrap_dek(&client.sk.public_key(), &Dek::generate().unwrap()).unwrap();
        let r = client
            .http
            .post(format!("{}/v1/handshake/complete", p.base))
            .bearer_auth(&client.api_key)
            .json(&json!({"encrypted_secret": B64.encode(&w), "key_id": id}))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
        wrapped.push(w);
    }
    assert_eq!(statuses, [200, 409]);
    let tenant = std::fs::read_dir(d.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.join("_keys").join(format!("{id}.json")).exists())
        .expect("the key object");
    let stored: Value = serde_json::from_slice(
        &std::fs::read(tenant.join("_keys").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["wrapped_key"], B64.encode(&wrapped[0]));
    p.kill().await;
}
