//! The server's client API over HTTP(S): JSON calls and NDJSON streams, authenticated with the
//! personal access token. `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` are honoured
//! (reqwest reads them); plain HTTP is refused off loopback, since the token would travel in
//! clear.

use std::time::Duration;

use anyhow::{Context as _, bail};
use futures_util::StreamExt as _;
use logflux_proto::Secret;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Settings;

/// Longest NDJSON line accepted from the server (a record of up to 32 MiB, in base64).
const MAX_LINE: usize = 48 * 1024 * 1024;

/// The server, as this client talks to it.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

/// Whether `url`'s host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback()),
        None => false,
    }
}

impl Api {
    /// A client for the configured server and token.
    pub(crate) fn new(settings: &Settings) -> anyhow::Result<Api> {
        let base = settings.server()?.to_owned();
        let url = reqwest::Url::parse(&base)
            .with_context(|| format!("the server URL {base:?} is not a URL"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" if std::env::var_os("LOGFLUX_ALLOW_HTTP").is_some_and(|v| v == "1") => {}
            "http" => bail!(
                "refusing plain http:// to {base}: the access token would travel in clear; use https:// \
                 (or set LOGFLUX_ALLOW_HTTP=1 on a network you trust)"
            ),
            s => bail!("the server URL must be https:// (or http:// on loopback), got {s}://"),
        }
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("logflux/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_keepalive(Duration::from_secs(30));
        if is_loopback(&url) {
            // A proxy cannot reach this machine's loopback, and over plain HTTP it would see
            // the token: loopback servers are always reached directly.
            b = b.no_proxy();
        }
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca)
                .with_context(|| format!("reading the CA file {}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("{} holds no PEM certificate", ca.display()))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        Ok(Api {
            http: b.build()?,
            base,
            token: settings.token()?.clone(),
        })
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.expose())
    }

    /// Sends a request; a non-2xx answer becomes an error with the server's message.
    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
        what: &str,
    ) -> anyhow::Result<reqwest::Response> {
        // The causes said once, and a refused certificate in plain words with what to do.
        let r = rb.send().await.map_err(|e| {
            anyhow::anyhow!(
                "{what}: cannot reach the server at {}: {}",
                self.base,
                logflux_config::tls::explain_send_error(&e)
            )
        })?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let retry_after = r
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_secs);
        let body = r.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(300).collect());
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (check LOGFLUX_PAT or the profile's token_file)",
            StatusCode::FORBIDDEN => " (the token lacks the scope this needs)",
            _ => "",
        };
        // The status is carried by the error itself, not as a cause under it: a cause would
        // print again after the message ("…403 Forbidden…: HTTP status 403").
        Err(anyhow::Error::new(StatusError {
            status: status.as_u16(),
            retry_after,
            message: format!("{what}: the server answered {status}: {message}{hint}"),
        }))
    }

    /// GET a JSON document.
    pub(crate) async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.send(self.request(Method::GET, path), path).await?;
        r.json()
            .await
            .with_context(|| format!("{path}: a reply that is not JSON"))
    }

    /// A JSON call with a body; `Value::Null` for an empty reply (204).
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut rb = self.request(method, path);
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = self.send(rb, path).await?;
        if r.status() == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let text = r.text().await?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{path}: a reply that is not JSON"))
    }

    /// POST a JSON body and read the NDJSON reply line by line.
    pub(crate) async fn stream<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<Lines> {
        let r = self
            .send(self.request(Method::POST, path).json(body), path)
            .await?;
        Ok(Lines {
            inner: Box::pin(r.bytes_stream()),
            buf: Vec::new(),
            done: false,
        })
    }

    /// Who the token is: its tenant (decryption binds records to it) and scopes.
    pub(crate) async fn me(&self) -> anyhow::Result<Me> {
        let v = self.get_json("/v1/me").await?;
        serde_json::from_value(v).context("/v1/me: unexpected reply")
    }

    /// The tenant's applications.
    pub(crate) async fn applications(&self) -> anyhow::Result<Vec<Application>> {
        let v = self.get_json("/v1/applications").await?;
        serde_json::from_value(v["applications"].clone())
            .context("/v1/applications: unexpected reply")
    }
}

/// A refused request: its HTTP status (found with `downcast_ref` in an error's chain) and the
/// message shown, which names the request, the status and the server's reason.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub(crate) struct StatusError {
    pub(crate) status: u16,
    /// The wait the server asked for (`Retry-After` in seconds), if any.
    pub(crate) retry_after: Option<std::time::Duration>,
    message: String,
}

impl StatusError {
    /// A refusal as [`Api`] makes it from an answer, for tests.
    #[cfg(test)]
    pub(crate) fn for_test(status: u16, message: &str) -> StatusError {
        StatusError {
            status,
            message: message.to_owned(),
            retry_after: None,
        }
    }

    /// The refusal in an error's chain, if it is one.
    pub(crate) fn of(e: &anyhow::Error) -> Option<&StatusError> {
        e.chain().find_map(|c| c.downcast_ref::<StatusError>())
    }

    /// Whether an error is a refusal that retrying will not change (4xx other than 408/429).
    pub(crate) fn is_final(e: &anyhow::Error) -> bool {
        e.chain().any(|c| {
            c.downcast_ref::<StatusError>().is_some_and(|s| {
                (400..500).contains(&s.status) && s.status != 408 && s.status != 429
            })
        })
    }
}

/// `GET /v1/me`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Me {
    pub(crate) tenant_id: String,
    #[serde(default)]
    pub(crate) token_name: String,
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    #[serde(default)]
    pub(crate) expires_ns: i64,
}

/// One application.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Application {
    pub(crate) id: String,
    pub(crate) name: String,
}

type ByteStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The lines of an NDJSON reply.
pub(crate) struct Lines {
    inner: ByteStream,
    buf: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lines")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl Lines {
    /// The next line without its newline; `None` at the end of the reply.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                let mut line: Vec<u8> = self.buf.drain(..scanned + i + 1).collect();
                line.pop();
                return Ok(Some(line));
            }
            scanned = self.buf.len();
            if self.done {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            if self.buf.len() > MAX_LINE {
                bail!("the server sent a line longer than {MAX_LINE} bytes");
            }
            match self.inner.next().await {
                Some(chunk) => self
                    .buf
                    .extend_from_slice(&chunk.context("the server's reply broke off")?),
                None => self.done = true,
            }
        }
    }
}

/// One line of a query or tail reply (`type` record, damaged, end or heartbeat).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Line {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) application_id: String,
    #[serde(default)]
    pub(crate) segment_id: i64,
    #[serde(default)]
    pub(crate) record_id: String,
    #[serde(default)]
    pub(crate) key_id: String,
    #[serde(default)]
    pub(crate) payload_type: u8,
    #[serde(default)]
    pub(crate) entry_type: u8,
    #[serde(default)]
    pub(crate) nonce: Option<String>,
    #[serde(default)]
    pub(crate) crlf_stripped: bool,
    #[serde(default)]
    pub(crate) min_ts: i64,
    #[serde(default)]
    pub(crate) max_ts: i64,
    /// The base64 ciphertext; absent from a listing asked for without bodies.
    #[serde(default)]
    pub(crate) body: Option<String>,
    // Damaged-segment line, and why the server ended a live stream.
    #[serde(default)]
    pub(crate) message: String,
    /// Why the server ended a live stream (`end` line of a tail).
    #[serde(default)]
    pub(crate) reason: Option<String>,
    // End line.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// End line of `/v1/records`: records left for another request (beyond the answer's byte
    /// bound). Its `missing` ones are those left without a body.
    #[serde(default)]
    pub(crate) more: Vec<logflux_proto::query::RecordRef>,
    #[serde(default)]
    pub(crate) watermark: Option<i64>,
    // Heartbeat.
    #[serde(default)]
    pub(crate) after_segment: Option<i64>,
}
