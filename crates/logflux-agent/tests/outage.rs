//! The server stops for a minute (`LOGFLUX_TEST_OUTAGE_SECS`, default 60) while clients keep
//! writing to the agent binary: the agent accepts everything, its memory stays bounded (the
//! backlog lives in the spool, as ciphertext), and once the server returns every entry arrives,
//! none twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Stack, entry_line};
use logflux_server::Server;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

const BIN: &str = env!("CARGO_BIN_EXE_logflux-agent");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap()
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_long_outage_under_load() {
    let outage = Duration::from_secs(
        std::env::var("LOGFLUX_TEST_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let mut s = Stack::new().await;
    let port = free_port();
    s.server.take().unwrap().shutdown().await.unwrap();
    s.server_config.listen = format!("127.0.0.1:{port}").parse().unwrap();
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    s.base = format!("http://127.0.0.1:{port}");

    let metrics_port = free_port();
    let cfg = &s.agent_config;
    let config = s.dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{urls: ['{}'], api_key: '{}'}}\nkeys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
             inputs:\n  unix_socket: {{path: '{}'}}\nbatch: {{max_wait_ms: 100}}\n\
             spool: {{dir: '{}', fsync: always}}\nshipper: {{backoff_initial_ms: 100, backoff_max_ms: 2000}}\n\
             metrics: {{listen: '127.0.0.1:{metrics_port}'}}\n",
            s.base,
            cfg.server.api_key,
            cfg.keys.public_key_file.as_ref().unwrap().display(),
            cfg.keys.search_key_file.display(),
            s.socket().display(),
            s.dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let mut agent = tokio::process::Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("LOGFLUX_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = agent.id().unwrap();
    let mut out = tokio::io::BufReader::new(agent.stdout.take().unwrap()).lines();
    while out.next_line().await.unwrap().unwrap() != "ready" {}

    // The server goes away.
    s.server.take().unwrap().shutdown().await.unwrap();

    // Four clients write steadily through the outage: 1 000 entries/s each.
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..4 {
        let path = s.socket();
        clients.push(tokio::spawn(async move {
            let stream = tokio::net::UnixStream::connect(path).await.unwrap();
            let (r, mut w) = tokio::io::split(stream);
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut n = 0usize;
            while started.elapsed() < outage {
                tick.tick().await;
                let chunk: String = (0..100)
                    .map(|_| {
                        n += 1;
                        format!("{}\n", entry_line(&format!("c{c}-{n}")))
                    })
                    .collect();
                w.write_all(chunk.as_bytes()).await.unwrap();
            }
            // Every line before the ping was accepted: the first reply is the pong.
            w.write_all(b"{\"action\":\"ping\"}\n").await.unwrap();
            let mut lines = tokio::io::BufReader::new(r).lines();
            assert_eq!(
                lines.next_line().await.unwrap().unwrap(),
                "{\"status\":\"pong\"}",
                "no error before the pong"
            );
            n
        }));
    }
    let mut peak_during = 0;
    let mut sent = 0;
    for c in clients {
        sent += c.await.unwrap();
        peak_during = peak_during.max(vm_kib(pid, "VmHWM:"));
    }
    let http = reqwest::Client::new();
    let m = http
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(&m, "logflux_agent_entries_shipped_total"),
        0,
        "nothing could be delivered"
    );
    let held = metric(&m, "logflux_agent_spool_records");
    assert!(held > 0, "the backlog is in the spool");
    assert!(
        peak_during < 100 * 1024,
        "agent peak RSS {peak_during} KiB during the outage"
    );

    // The server returns; the backlog drains.
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    let drain = Instant::now();
    loop {
        let m = http
            .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metric(&m, "logflux_agent_entries_shipped_total") >= sent as u64 {
            break;
        }
        assert!(
            drain.elapsed() < Duration::from_secs(180),
            "backlog not delivered: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let peak = vm_kib(pid, "VmHWM:");
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let stored = s.stored_entries().await;
    let distinct: HashSet<&str> = stored.iter().map(|e| e.payload.as_str()).collect();
    assert_eq!(distinct.len(), sent, "none lost");
    assert_eq!(stored.len(), sent, "none twice");
    assert!(peak < 100 * 1024, "agent peak RSS {peak} KiB");
    eprintln!(
        "outage {:?}: {sent} entries, {held} records spooled, drained in {:?}, agent peak RSS {} MiB",
        outage,
        drain.elapsed(),
        peak / 1024
    );
    s.stop().await;
}
