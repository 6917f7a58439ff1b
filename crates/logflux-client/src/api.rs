//! The server's client API over HTTP(S): JSON calls and record streams (the binary form,
//! `logflux_proto::frames`, or NDJSON from a server older than it), authenticated with the
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
/// Largest record body accepted in the binary form.
const MAX_BODY: usize = 40 * 1024 * 1024;
/// What a stream request accepts: the binary record stream first, NDJSON from an older server.
const STREAM_ACCEPT: &str = "application/vnd.logflux.records, application/x-ndjson;q=0.5";

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

    /// POST a JSON body and read the reply message by message: the binary record stream,
    /// or NDJSON when the server answers with it (a server older than the binary form) or
    /// refuses the binary form (406, then asked again for NDJSON).
    pub(crate) async fn stream<B: Serialize>(&self, path: &str, body: &B) -> anyhow::Result<Lines> {
        let ask = |accept: &str| {
            self.request(Method::POST, path)
                .header(reqwest::header::ACCEPT, accept)
                .json(body)
        };
        let r = match self.send(ask(STREAM_ACCEPT), path).await {
            Err(e) if StatusError::of(&e).is_some_and(|s| s.status == 406) => {
                self.send(ask(logflux_proto::frames::NDJSON), path).await?
            }
            r => r?,
        };
        let binary = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case(logflux_proto::frames::CONTENT_TYPE)
            });
        Ok(Lines::new(Box::pin(r.bytes_stream()), binary))
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

/// How a reply is cut into messages.
enum Decode {
    /// NDJSON: bytes received and not yet cut into lines, and how many of them hold no
    /// newline.
    Ndjson {
        buf: bytes::BytesMut,
        scanned: usize,
    },
    /// The binary record stream.
    Frames(logflux_proto::frames::Decoder),
}

/// The messages of a query, records or tail reply, in either form.
pub(crate) struct Lines {
    inner: ByteStream,
    decode: Decode,
    done: bool,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let buffered = match &self.decode {
            Decode::Ndjson { buf, .. } => buf.len(),
            Decode::Frames(d) => d.buffered(),
        };
        f.debug_struct("Lines")
            .field("buffered", &buffered)
            .finish()
    }
}

/// One message of a reply: its JSON object and, in the binary form, a record's body.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    json: bytes::Bytes,
    body: Option<bytes::Bytes>,
}

impl Message {
    /// The message as a [`Line`] (a binary body in place of the base64 one).
    pub(crate) fn parse(self) -> serde_json::Result<Line> {
        let mut l: Line = serde_json::from_slice(&self.json)?;
        if let Some(b) = self.body {
            l.body = Some(RecordBody::Raw(b));
        }
        Ok(l)
    }
}

impl Lines {
    pub(crate) fn new(inner: ByteStream, binary: bool) -> Lines {
        let decode = if binary {
            Decode::Frames(logflux_proto::frames::Decoder::new(MAX_BODY))
        } else {
            Decode::Ndjson {
                buf: bytes::BytesMut::new(),
                scanned: 0,
            }
        };
        Lines {
            inner,
            decode,
            done: false,
        }
    }

    /// The next whole message, if one is buffered.
    fn take(&mut self) -> anyhow::Result<Option<Message>> {
        match &mut self.decode {
            Decode::Ndjson { buf, scanned } => {
                if let Some(i) = memchr::memchr(b'\n', &buf[*scanned..]) {
                    // Cut off the front: no copy of the rest, whatever its size.
                    let mut line = buf.split_to(*scanned + i + 1);
                    line.truncate(line.len() - 1);
                    *scanned = 0;
                    return Ok(Some(Message {
                        json: line.freeze(),
                        body: None,
                    }));
                }
                *scanned = buf.len();
                if self.done && !buf.is_empty() {
                    *scanned = 0;
                    return Ok(Some(Message {
                        json: buf.split().freeze(),
                        body: None,
                    }));
                }
                if buf.len() > MAX_LINE {
                    bail!("the server sent a line longer than {MAX_LINE} bytes");
                }
                Ok(None)
            }
            Decode::Frames(d) => {
                let f = d
                    .next_frame()
                    .context("a malformed record stream from the server")?;
                if f.is_none() && self.done {
                    d.finish()
                        .context("a malformed record stream from the server")?;
                }
                Ok(f.map(|f| Message {
                    json: f.header,
                    body: f.body,
                }))
            }
        }
    }

    /// The next message; `None` at the end of the reply.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Message>> {
        loop {
            if let Some(m) = self.take()? {
                return Ok(Some(m));
            }
            if self.done {
                return Ok(None);
            }
            match self.inner.next().await {
                Some(chunk) => {
                    let chunk = chunk.context("the server's reply broke off")?;
                    match &mut self.decode {
                        Decode::Ndjson { buf, .. } => buf.extend_from_slice(&chunk),
                        Decode::Frames(d) => d.push(&chunk),
                    }
                }
                None => self.done = true,
            }
        }
    }
}

/// A record's ciphertext as the server sent it: base64 in an NDJSON line, raw bytes in the
/// binary form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordBody {
    Base64(String),
    Raw(bytes::Bytes),
}

impl RecordBody {
    /// The ciphertext; `None` when an NDJSON body is not base64.
    pub(crate) fn decode(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        use base64::Engine as _;
        match self {
            RecordBody::Raw(b) => Some(std::borrow::Cow::Borrowed(b)),
            RecordBody::Base64(s) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .ok()
                .map(std::borrow::Cow::Owned),
        }
    }
}

impl<'de> Deserialize<'de> for RecordBody {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(RecordBody::Base64)
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
    /// The ciphertext; absent from a listing asked for without bodies.
    #[serde(default)]
    pub(crate) body: Option<RecordBody>,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(chunks: Vec<Vec<u8>>, binary: bool) -> Lines {
        let s = futures_util::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, reqwest::Error>(bytes::Bytes::from(c))),
        );
        Lines::new(Box::pin(s), binary)
    }

    async fn all(mut l: Lines) -> anyhow::Result<Vec<Line>> {
        let mut out = Vec::new();
        while let Some(m) = l.next().await? {
            out.push(m.parse()?);
        }
        Ok(out)
    }

    fn body(l: &Line) -> Vec<u8> {
        l.body.as_ref().unwrap().decode().unwrap().into_owned()
    }

    #[tokio::test]
    async fn both_forms_give_the_same_lines_however_they_are_cut() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"\x00cipher\xff");
        let ndjson = format!(
            "{{\"type\":\"record\",\"record_id\":\"r1\",\"body\":\"{b64}\"}}\n\
             {{\"type\":\"record\",\"record_id\":\"r2\"}}\n{{\"type\":\"end\",\"cursor\":null}}"
        )
        .into_bytes();
        let mut binary = logflux_proto::frames::MAGIC.to_vec();
        binary.extend(logflux_proto::frames::frame(
            br#"{"type":"record","record_id":"r1"}"#,
            Some(b"\x00cipher\xff"),
        ));
        binary.extend(logflux_proto::frames::frame(
            br#"{"type":"record","record_id":"r2"}"#,
            None,
        ));
        binary.extend(logflux_proto::frames::frame(
            br#"{"type":"end","cursor":null}"#,
            None,
        ));
        for (bytes, is_binary) in [(ndjson, false), (binary, true)] {
            for step in [1, 5, 1000] {
                let chunks = bytes.chunks(step).map(<[u8]>::to_vec).collect();
                let got = all(lines_of(chunks, is_binary)).await.unwrap();
                assert_eq!(got.len(), 3);
                assert_eq!(got[0].record_id, "r1");
                assert_eq!(body(&got[0]), b"\x00cipher\xff");
                assert!(got[1].body.is_none());
                assert_eq!(got[2].kind, "end");
            }
        }
    }

    #[tokio::test]
    async fn a_binary_reply_cut_short_is_an_error() {
        let mut binary = logflux_proto::frames::MAGIC.to_vec();
        binary.extend(logflux_proto::frames::frame(b"{\"type\":\"end\"}", None));
        binary.pop();
        let e = all(lines_of(vec![binary], true)).await.unwrap_err();
        assert!(format!("{e:#}").contains("ended inside a frame"), "{e:#}");
        // NDJSON sent where the binary form was announced.
        let e = all(lines_of(vec![b"{\"type\":\"end\"}\n".to_vec()], true))
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("magic"), "{e:#}");
    }

    /// Many lines in one big chunk: each is cut off the front without moving the rest (the
    /// old `drain` moved the whole buffer per line, quadratic in the chunk's size).
    #[tokio::test]
    async fn many_lines_in_one_chunk_are_read_in_linear_time() {
        let n = 200_000;
        let mut text = Vec::new();
        for i in 0..n {
            text.extend_from_slice(
                format!("{{\"type\":\"record\",\"segment_id\":{i}}}\n").as_bytes(),
            );
        }
        let mut l = lines_of(vec![text], false);
        let mut count = 0;
        while let Some(m) = l.next().await.unwrap() {
            assert_eq!(m.parse().unwrap().segment_id, count);
            count += 1;
        }
        assert_eq!(count, n);
    }

    /// A server that refuses the binary form (406) is asked again for NDJSON; one that
    /// ignores `Accept` (older than the binary form) is read as NDJSON by its content type.
    #[tokio::test]
    async fn servers_without_the_binary_form_are_read_as_ndjson() {
        use axum::http::{HeaderMap, StatusCode, header};
        async fn refusing(h: HeaderMap) -> axum::response::Response {
            use axum::response::IntoResponse as _;
            let accept = h
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("vnd.logflux.records") {
                return (StatusCode::NOT_ACCEPTABLE, "{}").into_response();
            }
            (
                [(header::CONTENT_TYPE, "application/x-ndjson")],
                "{\"type\":\"end\",\"cursor\":null}\n",
            )
                .into_response()
        }
        async fn older() -> &'static str {
            // No content type of the binary form: what a server before it answers.
            "{\"type\":\"heartbeat\",\"after_segment\":7}\n"
        }
        let app = axum::Router::new()
            .route("/refusing", axum::routing::post(refusing))
            .route("/older", axum::routing::post(older));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let api = Api {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
            token: Secret::new("lf_pat_test"),
        };
        let mut l = api
            .stream("/refusing", &serde_json::json!({}))
            .await
            .unwrap();
        assert_eq!(
            l.next().await.unwrap().unwrap().parse().unwrap().kind,
            "end"
        );
        assert!(l.next().await.unwrap().is_none());
        let mut l = api.stream("/older", &serde_json::json!({})).await.unwrap();
        let h = l.next().await.unwrap().unwrap().parse().unwrap();
        assert_eq!((h.kind.as_str(), h.after_segment), ("heartbeat", Some(7)));
    }

    #[test]
    fn a_base64_body_that_is_not_base64_is_reported_not_a_panic() {
        assert!(RecordBody::Base64("***".into()).decode().is_none());
        assert_eq!(
            RecordBody::Base64("AAE=".into()).decode().unwrap().as_ref(),
            &[0u8, 1][..]
        );
    }
}
