//! The shipper: sends spooled records to the server, oldest first, and deletes them only after
//! the server acknowledged them.
//!
//! - Many records per request (multipart, payload type 4), HTTP/2 keep-alive over rustls.
//! - Data keys are registered (`/v1/handshake/complete` with the agent's key id) before any
//!   record sealed under them is sent.
//! - 2xx: acknowledged, removed from the spool. 400, 401, 413: the server will never take these
//!   records; they go to the dead-letter directory (a spool of its own), counted and logged.
//!   The server refuses a whole request for one bad part: a 400 that names the part
//!   (`part N: …`) dead-letters that record only, and the others are sent again.
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
    /// The server refused the request for the record at this index of the batch alone (a 400
    /// whose message names the part); the others were not stored and may be good.
    RefusedPart(usize, String),
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
            Err(e) => {
                return Outcome::Retry(
                    cfg.backoff_initial,
                    format!(
                        "key registration: {}",
                        logflux_config::tls::explain_send_error(&e)
                    ),
                );
            }
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

/// The search tokens header: 16 lower-case hex digits each, comma-separated (written
/// directly: a batch carries about a thousand tokens, one `format!` each was 4–6 % of the
/// agent's CPU).
fn tokens_header(tokens: &[u64]) -> String {
    if tokens.is_empty() {
        return String::new();
    }
    // Commas everywhere, then each token's 16 digits written over its place: no capacity
    // check per digit (pushing them one by one was most of `body_of`, ~2 % of the agent).
    let mut out = vec![b','; tokens.len() * 17 - 1];
    for (t, place) in tokens.iter().zip(out.chunks_mut(17)) {
        hex::encode_to_slice(t.to_be_bytes(), &mut place[..16]).expect("16 digits for 8 bytes");
    }
    String::from_utf8(out).expect("hex digits and commas are ASCII")
}

fn body_of(records: &[(SpoolRecord, Position)]) -> (String, Vec<u8>) {
    let mut boundary = [0u8; 16];
    let _ = logflux_crypto::random_bytes(&mut boundary);
    let mut w = Writer::new(format!("logflux-agent-{}", hex::encode(boundary)));
    for (r, _) in records {
        let nonce = B64.encode(r.nonce);
        let count = count_bucket(r.count).to_string();
        let range = format_time_range(r.min_ts, r.max_ts);
        let tokens = tokens_header(&r.tokens);
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
            let text = r.text().await.unwrap_or_default();
            match refused_part(&text) {
                Some(i) if status == 400 && i < records.len() => Outcome::RefusedPart(i, text),
                _ => Outcome::Refused(status, text),
            }
        }
        Ok(r) => {
            let status = r.status();
            // A 503 may say when to come back; the backoff applies in any case.
            let wait = retry_after(&r).unwrap_or(cfg.backoff_initial);
            Outcome::Retry(wait, format!("server answered {status}"))
        }
        // Causes included (reqwest's message alone hides them), certificate errors explained.
        Err(e) => Outcome::Retry(
            cfg.backoff_initial,
            logflux_config::tls::explain_send_error(&e),
        ),
    }
}

/// The part a 400 refuses the request for: the server's error message starts `part N: ` (N
/// counted from 0 in the multipart body) when one part broke a rule, and names none when the
/// request as a whole is bad.
fn refused_part(response: &str) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(response).ok()?;
    let rest = v["error"]["message"].as_str()?.strip_prefix("part ")?;
    let (n, _) = rest.split_once(": ")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// Moves `records` (the first ones of the spool) to the dead-letter directory, then
/// acknowledges them in the spool. False when the dead-letter directory could not be written
/// (the records stay in the spool).
async fn dead_letter(
    shared: &Arc<Shared>,
    cfg: &ShipperConfig,
    records: &[(SpoolRecord, Position)],
    status: u16,
    text: &str,
) -> bool {
    let Some(&(_, upto)) = records.last() else {
        return true;
    };
    tracing::error!(status, records = records.len(), response = %text.chars().take(300).collect::<String>(), "the server refused records for good; moved to the dead-letter directory");
    let dir = cfg.spool_dir.join("deadletter");
    let owned: Vec<SpoolRecord> = records.iter().map(|(r, _)| r.clone()).collect();
    let dl = tokio::task::spawn_blocking(move || -> Result<(), crate::spool::SpoolError> {
        let mut dead = Spool::open(
            &dir,
            SpoolConfig {
                max_bytes: u64::MAX,
                ..SpoolConfig::default()
            },
        )?;
        for r in &owned {
            dead.append(r)?;
        }
        Ok(())
    })
    .await;
    if !matches!(dl, Ok(Ok(()))) {
        tracing::error!("writing the dead-letter directory failed; the records stay in the spool");
        return false;
    }
    let n = records.len() as u64;
    // Counted and said before the head moves past them: a `flush` woken by the head must see
    // that these records did not reach the server.
    shared.metrics.records_dead_lettered.inc_by(n);
    shared.status.lock().expect("lock").last_error =
        Some(format!("server refused records with {status}"));
    ack(shared, upto, n).await;
    true
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
    // Fewer records than `max_records` in the next request: those before a part the server
    // refused, sent again without it. Every round either removes records from the spool or
    // lowers this, so a batch with bad parts takes at most one request per record.
    let mut limit = cfg.max_records;
    // A server that stays down fails every retry the same way: the first failure is a
    // warning, the same reason again within a minute only a debug line (the count is in
    // `retries_total` and `status`), and the first delivery after failures says so.
    let mut failing: Option<(String, std::time::Instant, u64)> = None;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let (max_r, max_b) = (limit, cfg.max_bytes);
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
                limit = cfg.max_records;
                if let Some((_, _, retries)) = failing.take() {
                    tracing::info!(endpoint = %st.endpoint.as_deref().unwrap_or(""), retries, "delivery resumed");
                }
            }
            Outcome::Refused(status, text) => {
                if dead_letter(&shared, &cfg, &batch, status, &text).await {
                    limit = cfg.max_records;
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            // The first record is the bad one: it alone goes. Else the records before it are
            // sent again on their own, which brings the bad one to the front.
            Outcome::RefusedPart(0, text) => {
                if dead_letter(&shared, &cfg, &batch[..1], 400, &text).await {
                    limit = cfg.max_records;
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
            Outcome::RefusedPart(i, text) => {
                tracing::warn!(part = i, response = %text.chars().take(300).collect::<String>(), "the server refused one record of a request; sending the records before it again");
                limit = i;
            }
            Outcome::Retry(wait, why) => {
                shared.metrics.retries.inc();
                let wait = wait.max(jitter(backoff));
                let repeat = matches!(&failing, Some((last, at, _))
                    if *last == why && at.elapsed() < Duration::from_secs(60));
                if repeat {
                    tracing::debug!(endpoint = %base, reason = %why, retry_in_ms = wait.as_millis() as u64, "delivery failed again; will retry");
                    if let Some((_, _, n)) = failing.as_mut() {
                        *n += 1;
                    }
                } else {
                    tracing::warn!(endpoint = %base, reason = %why, retry_in_ms = wait.as_millis() as u64, "delivery failed; will retry (the same failure is logged again after a minute)");
                    let n = failing.as_ref().map_or(0, |f| f.2) + 1;
                    failing = Some((why.clone(), std::time::Instant::now(), n));
                }
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
        let (r, head) = {
            let mut spool = s.spool.lock().expect("lock");
            let r = spool.ack(upto, n);
            (r, spool.head())
        };
        s.head.send_replace(head);
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
    use super::{count_bucket, refused_part, tokens_header};

    #[test]
    fn a_refusal_names_a_part_only_in_the_servers_own_words() {
        let body = |m: &str| {
            serde_json::json!({"status": "error", "error": {"code": "bad_request", "message": m}})
                .to_string()
        };
        assert_eq!(
            refused_part(&body("part 3: X-LF-Time-Range spans more than 3600 s")),
            Some(3)
        );
        assert_eq!(refused_part(&body("part 0: body is empty")), Some(0));
        for whole in [
            body("boundary missing"),
            body("part : x"),
            body("part -1: x"),
            body("part 2 x"),
            body("the part 2: x"),
            "part 1: not json".to_owned(),
            String::new(),
        ] {
            assert_eq!(refused_part(&whole), None, "{whole}");
        }
    }

    #[test]
    fn tokens_header_is_comma_separated_fixed_width_hex() {
        assert_eq!(tokens_header(&[]), "");
        assert_eq!(
            tokens_header(&[0, 0xdead_beef, u64::MAX]),
            format!("{:016x},{:016x},{:016x}", 0, 0xdead_beef_u64, u64::MAX)
        );
        assert_eq!(tokens_header(&[0x0123_4567_89ab_cdef]), "0123456789abcdef");
    }

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
