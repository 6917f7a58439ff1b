//! What the shipper does when the real server refuses a request for one of its records: only
//! that record goes to the dead-letter directory; the others of the request are delivered.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, Stack, entry_line};
use logflux_agent::spool::{Spool, SpoolConfig};
use logflux_proto::limits;
use logflux_server::Server;
use serde_json::json;

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
        .unwrap_or(0)
}

fn all_records(dir: &std::path::Path) -> Vec<logflux_agent::spool::SpoolRecord> {
    let spool = Spool::open(dir, SpoolConfig::default()).unwrap();
    spool
        .peek(usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_is_dead_lettered_alone_and_the_others_of_its_request_delivered() {
    let mut s = Stack::new().await;
    // One entry per record, so five entries make five records of one request.
    s.agent_config.batch.max_entries = 1;
    s.start_agent().await;
    // The server goes away (the agent has its identity): the records stay in the spool.
    let addr = s.server.as_ref().unwrap().local_addr();
    s.server.take().unwrap().shutdown().await.unwrap();
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    for i in 0..5 {
        c.send(&entry_line(&format!("entry {i}"))).await;
    }
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "pong"}));
    drop(c);
    s.agent.take().unwrap().shutdown().await.unwrap();

    // The third record is made to break a rule the server checks: a time range wider than a
    // record may cover (as an agent older than that rule could have spooled it).
    let dir = s.dir.path().join("spool");
    let mut spooled = all_records(&dir);
    assert_eq!(spooled.len(), 5, "one record per entry");
    spooled[2].min_ts = spooled[2].max_ts - limits::MAX_RECORD_SPAN_NS - 60_000_000_000;
    let bad_id = spooled[2].record_id.clone();
    {
        let mut spool = Spool::open(&dir, SpoolConfig::default()).unwrap();
        let (_, end) = *spool.peek(usize::MAX, usize::MAX).unwrap().last().unwrap();
        spool.ack(end, 5).unwrap();
        for r in &spooled {
            spool.append(r).unwrap();
        }
        spool.sync().unwrap();
    }

    s.server_config.listen = addr;
    s.server = Some(Server::start(s.server_config.clone()).await.unwrap());
    s.start_agent().await;
    let agent = s.agent.as_ref().unwrap();
    if tokio::time::timeout(Duration::from_secs(20), agent.wait_shipped(4))
        .await
        .is_err()
    {
        panic!(
            "the four good entries were not delivered: {}",
            agent.status()
        );
    }
    let m = agent.metrics_text();
    assert_eq!(
        metric(&m, "logflux_agent_records_dead_lettered_total"),
        1,
        "{m}"
    );
    let mut stored: Vec<String> = s
        .stored_entries()
        .await
        .into_iter()
        .map(|e| e.payload)
        .collect();
    stored.sort();
    assert_eq!(stored, ["entry 0", "entry 1", "entry 3", "entry 4"]);
    s.stop().await;
    let dead = all_records(&dir.join("deadletter"));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].record_id, bad_id);
    assert!(all_records(&dir).is_empty(), "the spool is empty");
}
