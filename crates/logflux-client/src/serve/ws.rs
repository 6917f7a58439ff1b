//! `GET /loki/api/v1/tail`: Loki's live tail over a WebSocket (RFC 6455, text frames, as
//! Grafana's live view reads it). The handshake and framing are done here (a server side
//! needs little of the protocol: unmasked text frames out; masked close, ping and pong in).
//!
//! A session sends the newest `limit` entries since `start` (default an hour back), oldest
//! first, then every new entry the server's live stream carries that the query matches, each
//! message `{"streams":[…],"dropped_entries":[]}`. The server's live stream is opened before
//! the history is read, so nothing committed in between is missed; records seen in both are
//! sent once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_proto::query::TailRequest;
use logflux_query::{LogLine, LogQuery, Query, Row};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::Service;
use super::http::{DEFAULT_SINCE_NS, LokiError, Params};
use crate::api::Line;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Longest frame accepted from a client (it only sends control frames).
const MAX_CLIENT_FRAME: u64 = 64 * 1024;
/// Without a line (heartbeats included) from the server for this long, the session ends.
const STALL: Duration = Duration::from_secs(75);

/// `Sec-WebSocket-Accept` for a key.
pub(crate) fn accept_key(key: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    B64.encode(d.as_ref())
}

/// A server frame (FIN set, unmasked).
pub(crate) fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 10);
    f.push(0x80 | opcode);
    if n < 126 {
        f.push(n as u8);
    } else if n <= 0xffff {
        f.push(126);
        f.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// Reads one client frame: (opcode, unmasked payload).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h).await?;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        r.read_exact(&mut b).await?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        r.read_exact(&mut b).await?;
        len = u64::from_be_bytes(b);
    }
    if len > MAX_CLIENT_FRAME {
        return Err(std::io::Error::other("client frame too large"));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p).await?;
    if masked {
        for (i, b) in p.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok((opcode, p))
}

fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(&reason.as_bytes()[..reason.len().min(120)]);
    frame(0x8, &p)
}

fn message(lines: Vec<LogLine>) -> Vec<u8> {
    let m = json!({
        "streams": super::loki::streams_json(lines, false),
        "dropped_entries": [],
    });
    frame(0x1, m.to_string().as_bytes())
}

/// The handler: checks the query and the upgrade, answers 101, and runs the session.
pub(crate) async fn tail(State(s): State<Arc<Service>>, mut req: Request) -> Response {
    let params = Params::from_request(req.uri(), req.headers(), &[]);
    let prepared = (|| {
        let q = params.query()?;
        let Query::Log(q) = super::loki::parse_query(q)? else {
            return Err(LokiError::bad(
                "tail takes a log query ({app=\"web\"} |= \"error\"), not a metric query",
            ));
        };
        let limit = params.limit()?;
        let now = logflux_proto::timefmt::now_ns();
        let start = params.time("start", now - DEFAULT_SINCE_NS)?;
        // The history before the live stream is held to a query's range limit (Loki limits
        // its tail look-back too): `start=0` would scan, and remember, everything.
        if now.saturating_sub(start) > super::http::MAX_RANGE_NS {
            return Err(LokiError::bad(format!(
                "the tail's start is further back than the limit ({})",
                super::http::human_duration(super::http::MAX_RANGE_NS)
            )));
        }
        Ok((q, limit, start))
    })();
    let (q, limit, start) = match prepared {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let h = req.headers();
    let upgrade = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key = h
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (true, Some(key)) = (upgrade, key) else {
        return LokiError::bad(
            "tail is a WebSocket: send Upgrade: websocket and Sec-WebSocket-Key",
        )
        .into_response();
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let (rd, wr) = tokio::io::split(io);
        session(s, q, limit, start, rd, wr).await;
    });
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let hm = resp.headers_mut();
    hm.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    hm.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept_key(&key)) {
        hm.insert("sec-websocket-accept", v);
    }
    resp
}

async fn session<R, W>(s: Arc<Service>, q: LogQuery, limit: u64, start: i64, mut rd: R, mut wr: W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    // The client's frames: close ends the session; pings are answered below.
    let (ctl_tx, mut ctl_rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(4);
    let reader = tokio::spawn(async move {
        loop {
            match read_frame(&mut rd).await {
                Ok((op, p)) => {
                    let close = op == 0x8;
                    if ctl_tx.send((op, p)).await.is_err() || close {
                        return;
                    }
                }
                Err(_) => {
                    let _ = ctl_tx.send((0x8, Vec::new())).await;
                    return;
                }
            }
        }
    });
    let r = run(&s, &q, limit, start, &mut wr, &mut ctl_rx).await;
    let close = match r {
        Ok(()) => close_frame(1000, ""),
        Err(e) => close_frame(1011, &e.message),
    };
    let _ = wr.write_all(&close).await;
    let _ = wr.flush().await;
    reader.abort();
}

async fn run<W: AsyncWrite + Unpin>(
    s: &Arc<Service>,
    q: &LogQuery,
    limit: u64,
    start: i64,
    wr: &mut W,
    ctl: &mut tokio::sync::mpsc::Receiver<(u8, Vec<u8>)>,
) -> Result<(), LokiError> {
    let prune = q.prune();
    let now = logflux_proto::timefmt::now_ns();
    let Some(scan) = super::loki::scan_for(&prune, start, now, true) else {
        // Nothing can match: keep the socket until the client leaves.
        while let Some((op, _)) = ctl.recv().await {
            if op == 0x8 {
                break;
            }
        }
        return Ok(());
    };
    let prepared = s.prepare(&scan).await?;
    let mut live = s
        .api
        .stream(
            "/v1/tail",
            &TailRequest {
                applications: prepared.ids.clone(),
                entry_types: scan.entry_types.clone(),
                tokens: prepared.tokens.clone(),
                after_segment: None,
            },
        )
        .await
        .map_err(|e| LokiError::internal(format!("the server's live stream: {e:#}")))?;
    // History: the newest `limit` since start, sent oldest first.
    let mut seen: HashSet<String> = HashSet::new();
    let mut history = super::loki::log_lines(s, q, start, now, limit, true, &mut seen).await?;
    history.reverse();
    if !history.is_empty() {
        write(wr, &message(history)).await?;
    }
    loop {
        let next = tokio::select! {
            c = ctl.recv() => match c {
                None | Some((0x8, _)) => return Ok(()),
                Some((0x9, p)) => {
                    write(wr, &frame(0xA, &p)).await?;
                    continue;
                }
                Some(_) => continue,
            },
            n = tokio::time::timeout(STALL, live.next()) => n,
        };
        let line = match next {
            Ok(Ok(Some(l))) => l,
            Err(_) => return Err(LokiError::internal("no heartbeat from the server")),
            Ok(Ok(None)) => return Err(LokiError::internal("the server ended the live stream")),
            Ok(Err(e)) => return Err(LokiError::internal(format!("the live stream: {e:#}"))),
        };
        let Ok(l) = serde_json::from_slice::<Line>(&line) else {
            continue;
        };
        match l.kind.as_str() {
            "record" => {
                // Already sent with the history (committed while both were opening). Only
                // the history's records are remembered: the set does not grow with the tail.
                if seen.remove(&l.record_id) {
                    continue;
                }
                let opened = s.open_lines(vec![l], &prepared.names).await?;
                let mut out = Vec::new();
                for r in &opened.records {
                    for e in r.entries.iter() {
                        if let Some(x) = q.eval(&Row {
                            app: &r.app,
                            entry: e,
                        }) {
                            out.push(x);
                        }
                    }
                }
                if !out.is_empty() {
                    out.sort_by_key(|l| l.ts_ns);
                    write(wr, &message(out)).await?;
                }
            }
            "end" => {
                return Err(LokiError::internal(format!(
                    "the server ended the live stream ({}): {}",
                    l.reason.as_deref().unwrap_or("unknown"),
                    l.message
                )));
            }
            _ => {}
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, f: &[u8]) -> Result<(), LokiError> {
    wr.write_all(f)
        .await
        .map_err(|e| LokiError::internal(format!("writing to the client: {e}")))?;
    wr.flush()
        .await
        .map_err(|e| LokiError::internal(format!("writing to the client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_and_frames_follow_rfc_6455() {
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(frame(0x1, b"hi"), [0x81, 2, b'h', b'i']);
        let big = frame(0x1, &[0u8; 300]);
        assert_eq!(&big[..4], &[0x81, 126, 1, 44]);
        let huge = frame(0x1, &vec![0u8; 70_000]);
        assert_eq!(huge[1], 127);
    }

    #[tokio::test]
    async fn masked_client_frames_are_unmasked() {
        let mask = [1u8, 2, 3, 4];
        let payload = b"ping!";
        let mut f = vec![0x89, 0x80 | payload.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        let (op, p) = read_frame(&mut &f[..]).await.unwrap();
        assert_eq!(op, 0x9);
        assert_eq!(p, payload);
        // Too large: refused, not allocated.
        let mut f = vec![0x81, 0x80 | 127];
        f.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert!(read_frame(&mut &f[..]).await.is_err());
    }
}
