//! The shipper: sends spooled records to the server, oldest first, and deletes them only after
//! the server acknowledged them.
//!
//! - Many records per request (multipart, payload type 4), HTTP/2 keep-alive over rustls.
//! - Data keys are registered (`/v1/handshake/complete` with the agent's key id) before any
//!   record sealed under them is sent.
//! - 2xx: acknowledged, removed from the spool. 400, 401, 413: the server will never take these
//!   records; they go to the dead-letter directory (a spool of its own), counted and logged.
//!   429: wait `Retry-After`. 5xx and network errors: retry forever with exponential backoff
//!   and jitter, failing over to the next configured endpoint.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_proto::multipart::{Writer, format_time_range, headers};
use tokio::sync::watch;

use crate::keys;
use crate::pipeline::Shared;
use crate::spool::{Position, Spool, SpoolConfig, SpoolRecord};

/// Shipper settings.
#[derive(Debug, Clone)]
pub(crate) struct ShipperConfig {
    pub(crate) urls: Vec<String>,
    pub(crate) api_key: logflux_proto::Secret,
    pub(crate) max_records: usize,
    pub(crate) max_bytes: usize,
    pub(crate) backoff_initial: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) spool_dir: PathBuf,
    pub(crate) signer: Signer,
}

/// Signs requests when `server.sign_requests` is on, with this machine's clock corrected by
/// what the server said when it last refused a signature for clock skew.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    api_key: Option<logflux_proto::Secret>,
    /// Seconds to add to this machine's clock.
    offset: Arc<std::sync::atomic::AtomicI64>,
}

impl Signer {
    pub(crate) fn new(api_key: &str, enabled: bool) -> Self {
        Signer {
            api_key: enabled.then(|| logflux_proto::Secret::new(api_key.to_owned())),
            offset: Arc::default(),
        }
    }

    /// Adds `X-LF-Signature` and `X-LF-Signature-Timestamp` over `body` (when signing).
    pub(crate) fn apply(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
        body: &[u8],
    ) -> reqwest::RequestBuilder {
        let Some(key) = &self.api_key else {
            return req;
        };
        let ts = logflux_proto::timefmt::now_ns() / 1_000_000_000
            + self.offset.load(std::sync::atomic::Ordering::Relaxed);
        let sig = logflux_crypto::sign_request(
            &logflux_crypto::signing_key(key.expose()),
            "POST",
            path,
            ts,
            body,
        );
        req.header("x-lf-signature", sig)
            .header("x-lf-signature-timestamp", ts.to_string())
    }

    /// For a 401 refusing the signature's clock (it carries `X-LF-Server-Time`): adopts the
    /// server's clock and says whether that changed anything (retry at once) or not (already
    /// signing with the server's time: back off). `None` for any other response.
    pub(crate) fn learn_clock(&self, r: &reqwest::Response) -> Option<bool> {
        if r.status() != 401 {
            return None;
        }
        let server = r
            .headers()
            .get("x-lf-server-time")?
            .to_str()
            .ok()?
            .trim()
            .parse::<i64>()
            .ok()?;
        let offset = server - logflux_proto::timefmt::now_ns() / 1_000_000_000;
        let before = self
            .offset
            .swap(offset, std::sync::atomic::Ordering::Relaxed);
        let changed = (offset - before).abs() > 1;
        if changed {
            tracing::error!(
                offset_s = offset,
                "this machine's clock is {} s off the server's; signing with the server's time (fix the clock: NTP)",
                -offset
            );
        }
        Some(changed)
    }
}

enum Outcome {
    Delivered,
    /// The server refused these records for good.
    Refused(u16, String),
    /// Try again after this long (at least).
    Retry(Duration, String),
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = logflux_crypto::random_bytes(&mut b);
    let f = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) * 0.5;
    d.mul_f64(f)
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(300)))
}

async fn post(
    http: &reqwest::Client,
    cfg: &ShipperConfig,
    base: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<reqwest::Response, reqwest::Error> {
    let req = http
        .post(format!("{}{path}", base.trim_end_matches('/')))
        .bearer_auth(cfg.api_key.expose())
        .header("content-type", content_type)
        .header(
            "user-agent",
            concat!("logflux-agent/", env!("CARGO_PKG_VERSION")),
        );
    let req = cfg.signer.apply(req, path, &body);
    req.body(body).send().await
}

/// The server refused a signature because the clocks disagree: sign with the server's time
/// from now on (as AWS SDKs correct for skew) and retry at once; the records are fine.
fn clock_skew(cfg: &ShipperConfig, r: &reqwest::Response) -> Outcome {
    match cfg.signer.learn_clock(r) {
        Some(true) => Outcome::Retry(Duration::from_millis(10), "clock skew (401)".into()),
        _ => Outcome::Retry(
            cfg.backoff_max,
            "clock skew (401) although signing with the server's time".into(),
        ),
    }
}

/// Registers every wrapped key the server does not know yet.
async fn register_keys(http: &reqwest::Client, cfg: &ShipperConfig, base: &str) -> Outcome {
    let pending = match keys::unregistered(&cfg.spool_dir) {
        Ok(p) => p,
        Err(e) => return Outcome::Retry(Duration::from_secs(1), format!("reading keys: {e}")),
    };
    for (key_id, wrapped) in pending {
        let body = serde_json::json!({"encrypted_secret": B64.encode(&wrapped), "key_id": key_id})
            .to_string();
        match post(
            http,
            cfg,
            base,
            "/v1/handshake/complete",
            "application/json",
            body.into_bytes(),
        )
        .await
        {
            Ok(r) if r.status().is_success() => {
                if let Err(e) = keys::mark_registered(&cfg.spool_dir, &key_id) {
                    return Outcome::Retry(
                        Duration::from_secs(1),
                        format!("marking key registered: {e}"),
                    );
                }
            }
            Ok(r) if r.status() == 429 => {
                let wait = retry_after(&r).unwrap_or(Duration::from_secs(1));
                return Outcome::Retry(wait, "rate limited".into());
            }
            Ok(r) if r.status().is_server_error() => {
                return Outcome::Retry(
                    cfg.backoff_initial,
                    format!("key registration: {}", r.status()),
                );
            }
            // A refused key cannot be fixed by retrying quickly (bad API key, conflict):
            // keep its records and retry slowly, loudly.
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                return Outcome::Retry(
                    Duration::from_secs(30),
                    format!("the server refused data key {key_id}: {status} {text}"),
                );
            }
            Err(e) => return Outcome::Retry(cfg.backoff_initial, format!("key registration: {e}")),
        }
    }
    Outcome::Delivered
}

/// The entry count a record tells the server: rounded up to a power of two (at most a batch's
/// largest count), so it says the order of magnitude, not the number. The server requires
/// at least 1; it only adds counts up into its segment summaries.
pub(crate) fn count_bucket(count: u32) -> u32 {
    let max = logflux_proto::batch::MAX_ENTRIES as u32;
    count
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(max)
        .min(max)
}

fn body_of(records: &[(SpoolRecord, Position)]) -> (String, Vec<u8>) {
    let mut boundary = [0u8; 16];
    let _ = logflux_crypto::random_bytes(&mut boundary);
    let mut w = Writer::new(format!("logflux-agent-{}", hex::encode(boundary)));
    for (r, _) in records {
        let nonce = B64.encode(r.nonce);
        let count = count_bucket(r.count).to_string();
        let range = format_time_range(r.min_ts, r.max_ts);
        let tokens: String = r
            .tokens
            .iter()
            .map(|t| format!("{t:016x}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut h: Vec<(&str, &str)> = vec![
            ("Content-Type", "application/octet-stream"),
            (headers::PAYLOAD_TYPE, "4"),
            (headers::KEY_ID, &r.key_id),
            (headers::NONCE, &nonce),
            (headers::RECORD_ID, &r.record_id),
            (headers::COUNT, &count),
            (headers::TIME_RANGE, &range),
        ];
        if !tokens.is_empty() {
            h.push((headers::SEARCH_TOKENS, &tokens));
        }
        w.part(&h, &r.body);
    }
    (w.content_type(), w.finish())
}

async fn send(
    http: &reqwest::Client,
    cfg: &ShipperConfig,
    base: &str,
    records: &[(SpoolRecord, Position)],
    registered: &mut HashSet<String>,
) -> Outcome {
    // The keys directory is read only when a batch uses a key not yet known to be registered
    // (keys rotate daily, so the directory grows; listing it per request would be wasted I/O).
    if records.iter().any(|(r, _)| !registered.contains(&r.key_id)) {
        match register_keys(http, cfg, base).await {
            Outcome::Delivered => registered.extend(records.iter().map(|(r, _)| r.key_id.clone())),
            other => return other,
        }
    }
    let (ct, body) = body_of(records);
    match post(http, cfg, base, "/v1/ingest", &ct, body).await {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) if r.status() == 429 => Outcome::Retry(
            retry_after(&r).unwrap_or(Duration::from_secs(1)),
            "rate limited (429)".into(),
        ),
        Ok(r) if r.status() == 401 && r.headers().contains_key("x-lf-server-time") => {
            clock_skew(cfg, &r)
        }
        Ok(r) if matches!(r.status().as_u16(), 400 | 401 | 413) => {
            let status = r.status().as_u16();
            Outcome::Refused(status, r.text().await.unwrap_or_default())
        }
        Ok(r) => {
            let status = r.status();
            // A 503 may say when to come back; the backoff applies in any case.
            let wait = retry_after(&r).unwrap_or(cfg.backoff_initial);
            Outcome::Retry(wait, format!("server answered {status}"))
        }
        Err(e) => Outcome::Retry(cfg.backoff_initial, format!("{e}")),
    }
}

/// Runs until shutdown. Records stay in the spool until acknowledged, so stopping at any
/// moment loses nothing.
pub(crate) async fn run(
    shared: Arc<Shared>,
    http: reqwest::Client,
    cfg: ShipperConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut endpoint = 0usize;
    let mut registered: HashSet<String> = HashSet::new();
    let mut backoff = cfg.backoff_initial;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (max_r, max_b) = (cfg.max_records, cfg.max_bytes);
        let s = shared.clone();
        let batch = match tokio::task::spawn_blocking(move || {
            s.spool.lock().expect("lock").peek(max_r, max_b)
        })
        .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "reading the spool failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        if batch.is_empty() {
            tokio::select! {
                () = shared.appended.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let base = cfg.urls[endpoint % cfg.urls.len()].clone();
        let outcome = tokio::select! {
            o = send(&http, &cfg, &base, &batch, &mut registered) => o,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Outcome::Delivered => {
                let now = logflux_proto::timefmt::now_ns();
                let entries: u64 = batch.iter().map(|(r, _)| u64::from(r.count)).sum();
                for (r, _) in &batch {
                    shared
                        .metrics
                        .delivery_seconds
                        .observe((now - r.sealed_ns).max(0) as f64 / 1e9);
                }
                let (upto, n) = (batch.last().expect("non-empty").1, batch.len() as u64);
                ack(&shared, upto, n).await;
                shared.metrics.records_shipped.inc_by(n);
                shared.metrics.entries_shipped.inc_by(entries);
                shared.shipped.send_modify(|n| *n += entries);
                let mut st = shared.status.lock().expect("lock");
                st.last_delivery_ns = Some(now);
                st.endpoint = Some(base);
                backoff = cfg.backoff_initial;
            }
            Outcome::Refused(status, text) => {
                tracing::error!(status, records = batch.len(), response = %text.chars().take(300).collect::<String>(), "the server refused records for good; moved to the dead-letter directory");
                let dir = cfg.spool_dir.join("deadletter");
                let records: Vec<SpoolRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
                let dl =
                    tokio::task::spawn_blocking(move || -> Result<(), crate::spool::SpoolError> {
                        let mut dead = Spool::open(
                            &dir,
                            SpoolConfig {
                                max_bytes: u64::MAX,
                                ..SpoolConfig::default()
                            },
                        )?;
                        for r in &records {
                            dead.append(r)?;
                        }
                        Ok(())
                    })
                    .await;
                match dl {
                    Ok(Ok(())) => {
                        let (upto, n) = (batch.last().expect("non-empty").1, batch.len() as u64);
                        ack(&shared, upto, n).await;
                        shared.metrics.records_dead_lettered.inc_by(n);
                        shared.status.lock().expect("lock").last_error =
                            Some(format!("server refused records with {status}"));
                    }
                    _ => {
                        tracing::error!(
                            "writing the dead-letter directory failed; the records stay in the spool"
                        );
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                }
            }
            Outcome::Retry(wait, why) => {
                shared.metrics.retries.inc();
                let wait = wait.max(jitter(backoff));
                tracing::warn!(endpoint = %base, reason = %why, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry");
                shared.status.lock().expect("lock").last_error = Some(why);
                if cfg.urls.len() > 1 {
                    endpoint += 1;
                }
                backoff = (backoff * 2).min(cfg.backoff_max);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

async fn ack(shared: &Arc<Shared>, upto: Position, n: u64) {
    let s = shared.clone();
    let r = tokio::task::spawn_blocking(move || {
        let r = s.spool.lock().expect("lock").ack(upto, n);
        s.update_spool_gauges();
        r
    })
    .await;
    if !matches!(r, Ok(Ok(()))) {
        // The records will be sent again after a restart; the server deduplicates them.
        tracing::error!("recording an acknowledgement in the spool failed");
    }
}

#[cfg(test)]
mod count_tests {
    use super::count_bucket;

    #[test]
    fn counts_are_sent_as_powers_of_two() {
        let sent: Vec<u32> = [0, 1, 2, 3, 5, 1000, 65_536, 65_537, 100_000, u32::MAX]
            .into_iter()
            .map(count_bucket)
            .collect();
        assert_eq!(
            sent,
            [1, 1, 2, 4, 8, 1024, 65_536, 100_000, 100_000, 100_000]
        );
    }
}
