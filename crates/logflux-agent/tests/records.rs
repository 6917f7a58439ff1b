//! What the agent's records tell the server, checked on what a real server stored: time ranges
//! bounded and rounded outward to the granularity, entry counts bucketed, ciphertext lengths
//! padded; and entries from archives or from the future delivered within those rules.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Client, Stack};
use logflux_proto::{limits, timefmt};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// One local-API message carrying entries at these times (ns), payload `p<i>`.
fn message(times: &[i64], first: usize) -> String {
    let entries: Vec<Value> = times
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            json!({"payload": format!("p{}", first + i), "source": "archive", "entryType": 1,
                   "logLevel": 7, "timestamp": timefmt::format_rfc3339(t)})
        })
        .collect();
    json!({"version": "1.0", "entries": entries}).to_string()
}

async fn ping<S: tokio::io::AsyncRead + tokio::io::AsyncWrite>(c: &mut Client<S>) {
    c.send(r#"{"action":"ping"}"#).await;
    assert_eq!(c.reply().await.unwrap(), json!({"status": "pong"}));
}

fn ts(r: &Value, field: &str) -> i64 {
    r[field].as_i64().unwrap()
}

#[tokio::test]
async fn archived_lines_spanning_days_make_bounded_records_all_searchable() {
    let mut s = Stack::new().await;
    // Long enough that the whole burst arrives while one batch is open.
    s.agent_config.batch.max_wait_ms = 500;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    // Five days of lines, one every 25 minutes, read in one go (as from an archive).
    let base = timefmt::parse_rfc3339("2025-03-01T00:00:00.25Z").unwrap();
    let times: Vec<i64> = (0..300).map(|i| base + i * 25 * 60 * S).collect();
    for (k, chunk) in times.chunks(100).enumerate() {
        c.send(&message(chunk, k * 100)).await;
    }
    ping(&mut c).await;
    s.shipped(300).await;

    let records = s.stored_records(json!({"order": "oldest"})).await;
    // Three lines (50 minutes) fit in an hour's range, a fourth does not.
    assert!(records.len() >= 100, "{} records", records.len());
    let mut all = Vec::new();
    for (r, entries) in &records {
        let (lo, hi) = (ts(r, "min_ts"), ts(r, "max_ts"));
        assert!(hi - lo <= limits::MAX_RECORD_SPAN_NS, "{r}");
        for e in entries {
            assert!((lo..=hi).contains(&e.timestamp_ns), "{r}");
        }
        all.extend(entries.iter().map(|e| e.timestamp_ns));
    }
    all.sort_unstable();
    assert_eq!(all, times, "every entry delivered once, with its own time");

    // A window of one day in the middle finds its entries (filtered exactly after
    // decryption), and is not sent the records of the other days.
    let (from, to) = (base + 2 * 86_400 * S, base + 3 * 86_400 * S - 1);
    let window = s
        .stored_records(json!({"order": "oldest", "from": from, "to": to}))
        .await;
    let mut found: Vec<i64> = window
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| e.timestamp_ns))
        .filter(|t| (from..=to).contains(t))
        .collect();
    found.sort_unstable();
    let want: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| (from..=to).contains(t))
        .collect();
    assert_eq!(found, want);
    assert!(window.len() < records.len() / 3, "{} records", window.len());
    s.stop().await;
}

#[tokio::test]
async fn entries_stamped_far_in_the_future_get_their_arrival_time() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    let before = timefmt::now_ns();
    let soon = before + 60 * S;
    let wrong_year = timefmt::parse_rfc3339("2125-06-01T12:00:00Z").unwrap();
    c.send(&message(&[soon, wrong_year], 0)).await;
    ping(&mut c).await;
    s.shipped(2).await;
    let after = timefmt::now_ns();
    let records = s.stored_records(json!({"order": "oldest"})).await;
    for (r, _) in &records {
        assert!(ts(r, "max_ts") <= after + limits::MAX_FUTURE_NS, "{r}");
    }
    let entries: Vec<_> = records.into_iter().flat_map(|(_, e)| e).collect();
    let ok = entries.iter().find(|e| e.payload == "p0").unwrap();
    assert_eq!(ok.timestamp_ns, soon, "a minute ahead is clock skew: kept");
    assert!(!ok.metadata.contains_key("logflux_original_time"));
    let moved = entries.iter().find(|e| e.payload == "p1").unwrap();
    assert!((before..=after).contains(&moved.timestamp_ns));
    assert_eq!(
        moved.metadata["logflux_original_time"],
        "2125-06-01T12:00:00Z"
    );
    let metrics = s.agent.as_ref().unwrap().metrics_text();
    assert!(
        metrics.contains("logflux_agent_entries_restamped_total 1"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test]
async fn stored_records_reveal_rounded_ranges_bucketed_counts_and_padded_lengths() {
    let mut s = Stack::new().await;
    s.start_agent().await;
    let mut c = Client::new(tokio::net::UnixStream::connect(s.socket()).await.unwrap());
    let base = timefmt::parse_rfc3339("2025-11-20T10:00:00.123456789Z").unwrap();
    // One batch each (every batch is shipped before the next is sent).
    let mut sent = 0u64;
    for n in [1usize, 3, 5, 17, 40] {
        let times: Vec<i64> = (0..n as i64).map(|i| base + i * 7_777_777).collect();
        c.send(&message(&times, sent as usize)).await;
        ping(&mut c).await;
        sent += n as u64;
        s.shipped(sent).await;
    }
    let records = s.stored_records(json!({"order": "oldest"})).await;
    assert_eq!(records.len(), 5);
    for (r, entries) in &records {
        let (lo, hi) = (ts(r, "min_ts"), ts(r, "max_ts"));
        // Whole seconds: [⌊first⌋, ⌊last⌋ + 1 s − 1 ns].
        assert_eq!(lo.rem_euclid(S), 0, "{r}");
        assert_eq!((hi + 1).rem_euclid(S), 0, "{r}");
        let first = entries.iter().map(|e| e.timestamp_ns).min().unwrap();
        let last = entries.iter().map(|e| e.timestamp_ns).max().unwrap();
        assert_eq!(lo, first - first.rem_euclid(S));
        assert_eq!(hi, last - last.rem_euclid(S) + S - 1);
        // The count is the entries' number rounded up to a power of two.
        let count = r["count"].as_u64().unwrap();
        assert_eq!(count, (entries.len() as u64).next_power_of_two(), "{r}");
        // The record id is random: it does not start with the sealing time, as a ULID would.
        let id = r["record_id"]
            .as_str()
            .unwrap()
            .trim_start_matches("agent-");
        assert_eq!(id.len(), 26, "{r}");
        let ulid_ms = ulid::Ulid::from_string(&id.to_uppercase())
            .unwrap()
            .timestamp_ms() as i64;
        let received_ms = ts(r, "received_ns") / 1_000_000;
        assert!((ulid_ms - received_ms).abs() > 60_000, "{r}");
        // The sealed body (without its 16-byte tag) has a Padmé length.
        let body = base64_len(r["body"].as_str().unwrap()) - 16;
        assert_eq!(logflux_crypto::padme(body), body, "{r}");
    }
    s.stop().await;
}

fn base64_len(b64: &str) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
        .len()
}
