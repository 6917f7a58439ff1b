//! The agent binary killed with SIGKILL again and again under load (fsync: always): every entry
//! whose batch reached the spool is delivered, none twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use common::{Client, Stack, entry_line, tenant_key};
use logflux_agent::spool::{Spool, SpoolConfig};
use logflux_crypto::{RecordBinding, SealingKey, open_batch, unwrap_dek};
use tokio::io::AsyncBufReadExt as _;

const BIN: &str = env!("CARGO_BIN_EXE_logflux-agent");

async fn spawn_agent(config: &std::path::Path) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("LOGFLUX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("agent start")
            .unwrap()
            .expect("agent exited");
        if line == "ready" {
            break;
        }
    }
    child
}

/// The payloads of every entry in the (dead) agent's spool, opened with the private key.
fn spooled_payloads(spool_dir: &std::path::Path) -> Vec<String> {
    let identity: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spool_dir.join("identity.json")).unwrap())
            .unwrap();
    let spool = Spool::open(spool_dir, SpoolConfig::default()).unwrap();
    let mut out = Vec::new();
    for (rec, _) in spool.peek(usize::MAX, usize::MAX).unwrap() {
        let wrapped = std::fs::read(
            spool_dir
                .join("keys")
                .join(format!("{}.wrapped", rec.key_id)),
        )
        .unwrap();
        let dek = unwrap_dek(tenant_key(), &wrapped).unwrap();
        let binding = RecordBinding {
            tenant: identity["tenant_id"].as_str().unwrap(),
            application: identity["application_id"].as_str().unwrap(),
            key_id: &rec.key_id,
            record_id: &rec.record_id,
        };
        for e in open_batch(&SealingKey::new(&dek), &binding, &rec.nonce, &rec.body).unwrap() {
            out.push(e.payload);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_spooled_entry_and_duplicates_none() {
    let mut s = Stack::new().await;
    let spool_dir = s.dir.path().join("spool");
    let config_path = s.dir.path().join("agent.yaml");
    let cfg = s.agent_config.clone();
    let socket = s.socket();
    // A fresh metrics port for each run of the agent.
    let write_config = |metrics_port: u16| {
        std::fs::write(
            &config_path,
            format!(
                "server: {{urls: ['{}'], api_key: '{}'}}\nkeys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
                 inputs:\n  unix_socket: {{path: '{}'}}\nbatch: {{max_wait_ms: 20, max_entries: 50}}\n\
                 spool: {{dir: '{}', fsync: always}}\nshipper: {{backoff_initial_ms: 20, backoff_max_ms: 200}}\n\
                 metrics: {{listen: '127.0.0.1:{metrics_port}'}}\n",
                cfg.server.urls[0],
                cfg.server.api_key,
                cfg.keys.public_key_file.as_ref().unwrap().display(),
                cfg.keys.search_key_file.display(),
                socket.display(),
                spool_dir.display()
            ),
        )
        .unwrap();
    };
    let free_port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let http = reqwest::Client::new();
    let mut must_arrive: HashSet<String> = HashSet::new();
    let mut sent = 0usize;
    for round in 0..5 {
        let port = free_port();
        write_config(port);
        let mut agent = spawn_agent(&config_path).await;
        // Two clients write as fast as they can; the agent is killed mid-stream.
        let mut clients = Vec::new();
        for c in 0..2 {
            let path = s.socket();
            clients.push(tokio::spawn(async move {
                let mut cl = Client::new(tokio::net::UnixStream::connect(path).await.unwrap());
                let mut n = 0usize;
                loop {
                    // A write error means the agent is gone.
                    let line = entry_line(&format!("r{round}-c{c}-{n}"));
                    let ok = tokio::io::AsyncWriteExt::write_all(
                        &mut cl.writer,
                        format!("{line}\n").as_bytes(),
                    )
                    .await
                    .is_ok();
                    if !ok {
                        return n;
                    }
                    n += 1;
                    if n.is_multiple_of(100) {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        // Kill once a growing number of entries has been sealed in this run (the agent's own
        // count), so the kill lands mid-stream at a different point each round.
        let target = 300 + round * 400;
        let mut polls = 0;
        loop {
            let m = http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let sealed: usize = m
                .lines()
                .find_map(|l| l.strip_prefix("logflux_agent_entries_sealed_total "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if sealed >= target {
                break;
            }
            polls += 1;
            assert!(polls < 3000, "the agent sealed only {sealed} entries");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        agent.start_kill().unwrap();
        agent.wait().await.unwrap();
        for c in clients {
            sent += c.await.unwrap();
        }
        // Whatever the spool holds now was sealed and spooled: it must arrive eventually.
        must_arrive.extend(spooled_payloads(&spool_dir));
    }

    // A last run drains the spool.
    write_config(free_port());
    let mut agent = spawn_agent(&config_path).await;
    let mut waited = 0;
    loop {
        // The running agent owns its spool; watch the server instead.
        let stored = s.stored_entries().await;
        let payloads: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
        if must_arrive.iter().all(|p| payloads.contains(p.as_str())) {
            break;
        }
        waited += 1;
        assert!(waited < 300, "spooled entries did not all arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let stored = s.stored_entries().await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for e in &stored {
        *counts.entry(e.payload.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "delivered twice: {dups:?}");
    assert!(
        must_arrive.len() > 50,
        "the test exercised the spool ({} entries were in it at crashes)",
        must_arrive.len()
    );
    eprintln!(
        "sent {sent} lines, {} delivered, {} were in the spool at a crash",
        stored.len(),
        must_arrive.len()
    );
    s.stop().await;
}
