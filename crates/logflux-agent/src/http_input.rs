//! An HTTP input compatible with Fluent Bit's `http` output, so a team already running Fluent
//! Bit points it at the agent:
//!
//! ```text
//! [OUTPUT]
//!     Name   http
//!     Match  *
//!     Host   127.0.0.1
//!     Port   8088
//!     URI    /
//!     Format json_lines          # or json, json_stream
//!     Compress gzip              # optional
//!     Header Authorization Bearer ${LOGFLUX_HTTP_TOKEN}
//!     json_date_key date         # Fluent Bit's default
//!     json_date_format double    # or epoch, iso8601, java_sql_timestamp
//! ```
//!
//! Bodies: a JSON array of records (`json`), or records one after another (`json_lines`,
//! `json_stream`), optionally gzip (`Content-Encoding: gzip`). A record's message is `log`,
//! `message` or `msg` (else the record itself, as JSON), its level `level`/`severity`, its time
//! the `date` key (or `time`/`timestamp`); other fields become metadata. The source is the
//! record's `tag`, the `Fluent-Tag` header, or the input's `source`.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logflux_proto::{Entry, EntryType, Level, Secret, timefmt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::detect::{DetectConfig, Detector, LevelConfig, LineFormat, TimestampConfig};
use crate::pipeline::{Intake, Shared};

/// `inputs.http`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpInputConfig {
    pub listen: std::net::SocketAddr,
    /// The bearer token senders present (at least 32 characters).
    pub token: String,
    /// Listen on a non-loopback address.
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Source of records without a tag.
    #[serde(default = "default_source")]
    pub source: String,
    /// Largest request body, as sent and after decompression, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Request bodies read at once; others wait for a turn (up to 2 s, then 503). The memory
    /// bodies hold is bounded by `max_body_bytes` × this (twice that for gzip).
    #[serde(default = "default_max_concurrent_bodies")]
    pub max_concurrent_bodies: usize,
    /// The record key holding the time (Fluent Bit's `json_date_key`).
    #[serde(default = "default_date_key")]
    pub date_key: String,
    /// How the time of a record without a time field is found in its message (as for file
    /// inputs; default: detected, `{format: none}`: the arrival time).
    #[serde(default)]
    pub timestamp: Option<TimestampConfig>,
    /// The zone of detected times written without one (default: the host's).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// The level of records without a level field: `error` (fixed), `{regex}` (default:
    /// detected in the message, else info).
    #[serde(default)]
    pub level: Option<LevelConfig>,
    /// Connections open at once; a connection over the cap is closed as soon as it is
    /// accepted (counted as refused, reason `max_connections`).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, in milliseconds: the first
    /// ones from connecting, the next ones from the end of the previous response.
    #[serde(default = "default_header_timeout_ms")]
    pub header_timeout_ms: u64,
}

fn default_source() -> String {
    "fluent-bit".into()
}

fn default_max_body() -> usize {
    16 * 1024 * 1024
}

fn default_max_concurrent_bodies() -> usize {
    4
}

fn default_date_key() -> String {
    "date".into()
}

fn default_max_connections() -> usize {
    256
}

fn default_header_timeout_ms() -> u64 {
    10_000
}

impl HttpInputConfig {
    pub fn validate(&self, at: &str) -> anyhow::Result<()> {
        if self.token.chars().count() < 32 {
            anyhow::bail!("{at}.token: at least 32 characters");
        }
        if !(1..=1024).contains(&self.max_concurrent_bodies) {
            anyhow::bail!("{at}.max_concurrent_bodies: 1..1024");
        }
        if !(1..=65_536).contains(&self.max_connections) {
            anyhow::bail!("{at}.max_connections: 1..65536");
        }
        if !(100..=600_000).contains(&self.header_timeout_ms) {
            anyhow::bail!("{at}.header_timeout_ms: 100..600000");
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.max_body_bytes) {
            anyhow::bail!("{at}.max_body_bytes: 1 KiB..1 GiB");
        }
        self.detector().map_err(|e| anyhow::anyhow!("{at}.{e:#}"))?;
        if !self.listen.ip().is_loopback() && !self.allow_non_loopback {
            anyhow::bail!(
                "{at}.listen: {} is not loopback; set allow_non_loopback to expose it",
                self.listen
            );
        }
        Ok(())
    }
}

impl HttpInputConfig {
    /// How messages of records without a time or level field are read.
    pub fn detector(&self) -> anyhow::Result<Detector> {
        Detector::new(&DetectConfig {
            format: LineFormat::Plain,
            timestamp: self.timestamp.clone(),
            time_zone: self.time_zone.clone(),
            level: self.level.clone(),
            default_level: None,
        })
        .map_err(anyhow::Error::msg)
    }
}

struct HttpState {
    cfg: HttpInputConfig,
    detector: Detector,
    token: Secret,
    shared: Arc<Shared>,
    intake: Intake,
    /// One permit per body being read and decoded.
    bodies: Semaphore,
    /// The agent's stop signal (a request waiting for its entries to be spooled has them
    /// sealed at once).
    stop: watch::Receiver<bool>,
}

/// How long a request waits for its turn to read its body before 503.
const BODY_TURN_WAIT: Duration = Duration::from_secs(2);

/// How long reading one body may take before 408.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Time values as Fluent Bit writes them: seconds (double or integer), ISO 8601, or
/// `java_sql_timestamp` (`2026-11-21 10:00:00.123456`).
fn record_time(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_f64().and_then(|f| timefmt::from_unix_seconds(f).ok()),
        Value::String(s) => timefmt::parse_rfc3339(s)
            .ok()
            .or_else(|| timefmt::parse_rfc3339(&format!("{}Z", s.replacen(' ', "T", 1))).ok()),
        _ => None,
    }
}

fn value_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// One Fluent Bit record as an entry; a record without a time or level field gets the ones
/// `detector` finds in its message (a Fluent Bit `tail` record's `log` line).
pub fn record_entry(
    v: Value,
    date_key: &str,
    source: &str,
    now_ns: i64,
    detector: &Detector,
) -> Entry {
    let Value::Object(mut m) = v else {
        let mut e = Entry::new(now_ns, Level::Info, source, &value_text(v));
        e.payload_type = "generic_json".into();
        return e;
    };
    let ts = [date_key, "time", "timestamp", "@timestamp"]
        .iter()
        .find_map(|k| m.get(*k).and_then(record_time).map(|t| (k.to_string(), t)));
    if let Some((k, _)) = &ts {
        m.remove(k);
    }
    let level = ["level", "severity", "log_level"].iter().find_map(|k| {
        let l = m.get(*k)?.as_str()?.to_ascii_lowercase();
        let level = match l.as_str() {
            "warn" => Level::Warning,
            "fatal" => Level::Critical,
            "trace" => Level::Debug,
            other => other.parse().ok()?,
        };
        m.remove(*k);
        Some(level)
    });
    let source = m
        .remove("tag")
        .map(value_text)
        .unwrap_or_else(|| source.to_owned());
    let message = ["log", "message", "msg"]
        .iter()
        .find_map(|k| m.remove(*k))
        .map(value_text);
    let has_message = message.is_some();
    let payload = match message {
        Some(mut s) => {
            if s.ends_with('\n') {
                s.pop();
            }
            s
        }
        None => Value::Object(m.clone()).to_string(),
    };
    let (need_time, need_level) = (ts.is_none(), level.is_none());
    let mut e = Entry::new(
        ts.map_or(now_ns, |(_, t)| t),
        level.unwrap_or(Level::Info),
        &source,
        "",
    );
    e.payload = payload;
    e.entry_type = EntryType::Log;
    e.payload_type = "generic_json".into();
    e.metadata
        .extend(m.into_iter().map(|(k, v)| (k, value_text(v))));
    if has_message && (need_time || need_level) {
        let text = e.payload.clone();
        return detector.fill(e, &text, now_ns, need_time, need_level).0;
    }
    e
}

/// The records of a body: a JSON array, or JSON values one after another.
pub fn records(body: &[u8]) -> Result<Vec<Value>, String> {
    let trimmed = body.trim_ascii_start();
    if trimmed.starts_with(b"[") {
        return serde_json::from_slice::<Vec<Value>>(trimmed).map_err(|e| e.to_string());
    }
    serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    let mut r = (
        status,
        axum::Json(json!({"status": "error", "error": {"code": code, "message": message}})),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    r
}

impl HttpState {
    fn refused(&self, reason: &'static str) {
        self.shared
            .metrics
            .http_requests_refused
            .get_or_create(&crate::metrics::ReasonLabel { reason })
            .inc();
    }

    fn too_large(&self) -> Response {
        self.refused("too_large");
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body is limited to {} bytes (inputs.http.max_body_bytes)",
                self.cfg.max_body_bytes
            ),
        )
    }
}

/// Reads a body of at most `limit` bytes (`declared` of them announced); `None` when it is
/// longer, which stops reading there, whether or not a length was declared (chunked bodies).
async fn read_limited(
    mut body: Body,
    limit: usize,
    declared: usize,
) -> Result<Option<Vec<u8>>, axum::Error> {
    use axum::body::HttpBody as _;
    let mut out = Vec::with_capacity(declared.min(limit));
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        if let Ok(data) = frame?.into_data() {
            if out.len() + data.len() > limit {
                return Ok(None);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(Some(out))
}

/// Handles one request. Everything that can refuse it without the body (the token, a declared
/// oversize length) is decided as soon as the headers arrive, before a byte of the body is read;
/// then the body is read with a bounded size, time and number of bodies at once.
async fn ingest(State(st): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !logflux_crypto::constant_time_eq(presented.as_bytes(), st.token.expose().as_bytes()) {
        st.refused("unauthorized");
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required".into(),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > st.cfg.max_body_bytes as u64) {
        return st.too_large();
    }
    let Ok(Ok(_turn)) = tokio::time::timeout(BODY_TURN_WAIT, st.bodies.acquire()).await else {
        st.refused("busy");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} bodies are being read (inputs.http.max_concurrent_bodies); retry",
                st.cfg.max_concurrent_bodies
            ),
        );
    };
    let read = read_limited(body, st.cfg.max_body_bytes, declared.unwrap_or(0) as usize);
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, read).await {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return st.too_large(),
        Ok(Err(e)) => {
            st.refused("bad_body");
            return error(
                StatusCode::BAD_REQUEST,
                "bad_body",
                format!("reading the body: {e}"),
            );
        }
        Err(_) => {
            st.refused("body_timeout");
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the body was not received within {} s",
                    BODY_READ_TIMEOUT.as_secs()
                ),
            );
        }
    };
    let gz = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body: Vec<u8> = if gz {
        let mut out = Vec::new();
        let r = flate2::read::MultiGzDecoder::new(&body[..])
            .take(st.cfg.max_body_bytes as u64 + 1)
            .read_to_end(&mut out);
        if let Err(e) = r {
            return error(StatusCode::BAD_REQUEST, "bad_gzip", format!("gzip: {e}"));
        }
        if out.len() > st.cfg.max_body_bytes {
            return st.too_large();
        }
        out
    } else {
        body
    };
    let recs = match records(&body) {
        Ok(r) => r,
        Err(e) => {
            st.shared
                .metrics
                .entries_rejected
                .get_or_create(&crate::metrics::ReasonLabel {
                    reason: "http_invalid_json",
                })
                .inc();
            return error(StatusCode::BAD_REQUEST, "invalid_json", e);
        }
    };
    let tag = headers
        .get("fluent-tag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&st.cfg.source)
        .to_owned();
    let now = timefmt::now_ns();
    let entries: Vec<Entry> = recs
        .into_iter()
        .map(|v| record_entry(v, &st.cfg.date_key, &tag, now, &st.detector))
        .collect();
    let n = entries.len();
    if n == 0 {
        return (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "accepted": 0})),
        )
            .into_response();
    }
    // Answered once the entries are in the spool: Fluent Bit retries anything not answered 2xx.
    let spooled =
        match tokio::time::timeout(Duration::from_secs(2), st.intake.send_spooled(entries)).await {
            Ok(Ok(s)) => s,
            _ => {
                return error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_full",
                    "the agent's spool is full; retry".into(),
                );
            }
        };
    let mut spooled = spooled;
    let mut stop = st.stop.clone();
    match tokio::time::timeout(
        Duration::from_secs(30),
        st.intake.until_spooled(&mut spooled, &mut stop),
    )
    .await
    {
        Ok(true) => {
            st.shared.metrics.received("http", n as u64);
            (
                StatusCode::OK,
                axum::Json(json!({"status": "ok", "accepted": n})),
            )
                .into_response()
        }
        // The agent stopped before they were all spooled (they are counted as not spooled).
        Ok(false) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the agent stopped before the entries were spooled; retry".into(),
        ),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            "the entries could not be spooled in time; retry".into(),
        ),
    }
}

/// Starts the HTTP input; returns its address and task.
pub(crate) async fn run(
    cfg: HttpInputConfig,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding the http input on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let mut detector = cfg.detector()?;
    detector.implausible = shared
        .metrics
        .timestamps_implausible
        .get_or_create(&crate::metrics::InputLabel { input: "http" })
        .clone();
    let st = Arc::new(HttpState {
        detector,
        token: Secret::new(cfg.token.clone()),
        bodies: Semaphore::new(cfg.max_concurrent_bodies),
        cfg,
        shared,
        intake,
        stop: stop.clone(),
    });
    let header_timeout = Duration::from_millis(st.cfg.header_timeout_ms);
    let connections = Arc::new(Semaphore::new(st.cfg.max_connections));
    let app = axum::Router::new()
        .fallback(axum::routing::post(ingest))
        .with_state(st.clone());
    let task = tokio::spawn(async move {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let tcp = tokio::select! {
                r = listener.accept() => match r {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(input = "http", error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            // Over the cap the connection is dropped unread: it costs no task and no buffer.
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                st.refused("max_connections");
                drop(tcp);
                continue;
            };
            let (app, watcher, mut halt) = (app.clone(), graceful.watcher(), stop.clone());
            tokio::spawn(async move {
                let _permit = permit;
                // A connection that sends nothing is closed: hyper's header timeout starts only
                // with a first byte. A stop closes it too, at once: until then it holds the
                // graceful shutdown (its watcher), and the shutdown would wait the header
                // timeout out (up to 10 minutes).
                let mut first = [0u8; 1];
                let spoke = tokio::select! {
                    r = tokio::time::timeout(header_timeout, tcp.peek(&mut first)) => {
                        matches!(r, Ok(Ok(1)))
                    }
                    _ = halt.wait_for(|stop| *stop) => false,
                };
                if !spoke {
                    return;
                }
                // Made only now: it holds the input's state, and with it the intake (which keeps
                // the sealer waiting for more).
                let svc = hyper_util::service::TowerToHyperService::new(app);
                // HTTP/1.1 only, as Fluent Bit's http output speaks: the header timeout is an
                // HTTP/1 setting, and an HTTP/2 connection (prior knowledge) would be kept open
                // by a peer that sends its preface and then nothing. Its preface is refused here
                // as a malformed HTTP/1 request.
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .serve_connection(TokioIo::new(tcp), svc);
                let _ = watcher.watch(conn).await;
            });
        }
        graceful.shutdown().await;
    });
    Ok((addr, task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fluent_bit_formats_and_records() {
        let lines = br#"{"date":1763719200.5,"log":"GET / 200\n","level":"warn","host":"web-1"}
{"date":1763719201.25,"message":"second","tag":"app.web"}
"#;
        let r = records(lines).unwrap();
        assert_eq!(r.len(), 2);
        let stream = br#"{"a":1}{"a":2} {"a":3}"#;
        assert_eq!(records(stream).unwrap().len(), 3);
        let array = br#"[{"date":"2026-11-21T10:00:00Z","msg":"x"},{"date":"2026-11-21 10:00:01.5","msg":"y"}]"#;
        let r2 = records(array).unwrap();
        assert_eq!(r2.len(), 2);
        assert!(records(b"{not json").is_err());

        // A tail record without a time or level field: both from its line.
        let d = Detector::new(&DetectConfig {
            time_zone: Some("UTC".into()),
            ..Default::default()
        })
        .unwrap();
        let now = timefmt::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        let t = record_entry(
            json!({"log": "2026-11-30 11:00:00,5 WARN [main] a.B: slow\n", "path": "/var/log/a.log"}),
            "date",
            "fb",
            now,
            &d,
        );
        assert_eq!(t.level, Level::Warning);
        assert_eq!(
            t.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-30T11:00:00.5Z").unwrap()
        );
        assert_eq!(t.payload, "2026-11-30 11:00:00,5 WARN [main] a.B: slow");
        // A record's own fields win over its text.
        let f = record_entry(
            json!({"date": 1764496800, "level": "info", "log": "2026-11-30 11:00:00 ERROR x"}),
            "date",
            "fb",
            now,
            &d,
        );
        assert_eq!(
            (f.level, f.timestamp_ns),
            (Level::Info, 1_764_496_800 * 1_000_000_000)
        );

        let e = record_entry(r[0].clone(), "date", "fluent-bit", 0, &Detector::default());
        assert_eq!(e.payload, "GET / 200");
        assert_eq!(e.level, Level::Warning);
        assert_eq!(e.timestamp_ns, 1_763_719_200_500_000_000);
        assert_eq!(e.metadata["host"], "web-1");
        assert_eq!(e.source, "fluent-bit");
        let e = record_entry(r[1].clone(), "date", "fluent-bit", 0, &Detector::default());
        assert_eq!(e.source, "app.web");
        let e = record_entry(r2[1].clone(), "date", "fb", 0, &Detector::default());
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-21T10:00:01.5Z").unwrap()
        );
        let e = record_entry(json!({"cpu": 0.5}), "date", "fb", 9, &Detector::default());
        assert_eq!(e.payload, r#"{"cpu":0.5}"#);
        assert_eq!(e.timestamp_ns, 9);
    }
}
