//! `serve`'s live tail (`GET /loki/api/v1/tail`) end to end, against a real stack: a
//! WebSocket client (tokio-tungstenite) gets the history, then live entries; requests that
//! are not a WebSocket this service speaks are refused before any upgrade, in Loki's shape;
//! frames RFC 6455 forbids end the session; and a tail outlives a restart of the server,
//! resuming its live stream where it left off.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Stack;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The tail's URL for `query` (and further parameters) on a serve at `base` (http://…).
fn tail_url(base: &str, params: &[(&str, &str)]) -> reqwest::Url {
    reqwest::Url::parse_with_params(&format!("{base}/loki/api/v1/tail"), params).unwrap()
}

/// Opens the tail as Grafana does: a WebSocket with the token.
async fn connect(base: &str, token: &str, params: &[(&str, &str)]) -> Ws {
    let url = tail_url(base, params)
        .as_str()
        .replacen("http://", "ws://", 1);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (ws, resp) = tokio::time::timeout(
        Duration::from_secs(60),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .expect("the handshake within 60 s")
    .unwrap();
    assert_eq!(resp.status(), 101);
    // The access guard's marks are on the upgrade too.
    assert_eq!(resp.headers()["cache-control"], "no-store");
    ws
}

/// The next data message as JSON (pings and pongs skipped); panics on a close or after 60 s
/// (in all: `serve`'s pings every 30 s do not put the deadline off).
async fn next_json(ws: &mut Ws) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a message within 60 s")
            .expect("the WebSocket is open")
            .unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Every line of a tail message, in order.
fn lines(m: &Value) -> Vec<String> {
    assert_eq!(m["dropped_entries"], json!([]), "{m}");
    let mut v: Vec<(i64, String)> = m["streams"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap())
        .map(|v| {
            (
                v[0].as_str().unwrap().parse().unwrap(),
                v[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

fn entry(payload: &str, source: &str) -> Value {
    json!({"payload": payload, "source": source, "entryType": 1, "logLevel": 6})
}

#[tokio::test]
async fn a_websocket_client_gets_history_then_live_entries_and_pongs() {
    let stack = Stack::start().await;
    stack.send_unix(&[entry("before the tail", "tailer")]).await;
    stack.wait_for_entries(2).await;
    let base = stack.var("LOGFLUX_SERVE_URL");
    let token = stack.var("LOGFLUX_SERVE_TOKEN");
    let mut ws = connect(
        base,
        token,
        &[("query", r#"{source="tailer"}"#), ("limit", "10")],
    )
    .await;
    // History first.
    let m = next_json(&mut ws).await;
    assert_eq!(m["streams"][0]["stream"]["source"], "tailer", "{m}");
    assert_eq!(lines(&m), ["before the tail"]);
    // A ping is answered with its payload (nothing else is due yet).
    ws.send(Message::Ping("are you there".into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong("are you there".into()));
    // Then what arrives, and only what the query matches.
    stack
        .send_unix(&[
            entry("not for this tail", "other"),
            entry("after the tail", "tailer"),
        ])
        .await;
    let m = next_json(&mut ws).await;
    assert_eq!(lines(&m), ["after the tail"], "{m}");
    // The client's close is answered with a close (1000 echoed), then the stream ends.
    ws.close(None).await.unwrap();
    let mut answered = false;
    while let Some(m) = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
    {
        if let Ok(Message::Close(_)) = m {
            answered = true;
        }
    }
    assert!(answered, "the server answered the close");
}

/// A request by hand: the answer's head (lower-cased header names) and body.
async fn raw(addr: &str, head: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        buf.push(b[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (status, head, String::from_utf8(body).unwrap())
}

fn upgrade_head(host: &str, path_query: &str, version: &str, auth: Option<&str>) -> String {
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "GET {path_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n{auth}\r\n"
    )
}

/// After a handshake by hand, the server's answer to `frame`: its close code, or `None` when
/// it just drops the connection. A data message in between is a failure.
async fn answer_to(addr: &str, path_query: &str, token: &str, frame: &[u8]) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(upgrade_head(addr, path_query, "13", Some(token)).as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // RFC 6455 §1.3's example key and answer.
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    s.write_all(frame).await.unwrap();
    loop {
        let mut h = [0u8; 2];
        let read = tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut h))
            .await
            .expect("an answer within 30 s");
        if read.is_err() {
            return None;
        }
        assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).await.unwrap();
            len = u64::from(u16::from_be_bytes(b));
        }
        assert!(len < 126 * 1024, "no large frame expected: {len}");
        let mut p = vec![0u8; len as usize];
        s.read_exact(&mut p).await.unwrap();
        match h[0] & 0x0f {
            0x8 => return Some(u16::from_be_bytes([p[0], p[1]])),
            0x9 | 0xA => continue,
            op => panic!("unexpected opcode {op} after a frame the server must refuse"),
        }
    }
}

/// A client frame with FIN as given, masked with `mask` (none: unmasked).
fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        f.push(m | payload.len() as u8);
    } else {
        f.push(m | 127);
        f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            f.extend_from_slice(&k);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => f.extend_from_slice(payload),
    }
    f
}

#[tokio::test]
async fn what_is_not_a_websocket_it_speaks_is_refused() {
    let stack = Stack::start().await;
    let base = stack.var("LOGFLUX_SERVE_URL");
    let token = stack.var("LOGFLUX_SERVE_TOKEN");
    let addr = base.strip_prefix("http://").unwrap();
    let good = tail_url(base, &[("query", r#"{source="x"}"#)]);
    let pq = format!("{}?{}", good.path(), good.query().unwrap());

    // A plain GET: 400 in Loki's shape (plain text), no upgrade.
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(good.clone())
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("tail is a WebSocket"), "{body}");

    // A version other than 13: 400, naming the version spoken (RFC 6455 §4.4).
    let (status, head, body) = raw(addr, &upgrade_head(addr, &pq, "8", Some(token))).await;
    assert_eq!(status, 400, "{head}");
    assert!(head.contains("sec-websocket-version: 13"), "{head}");
    assert!(body.contains("Sec-WebSocket-Version"), "{body}");

    // The query is checked before the upgrade: a metric query, a start too far back.
    for (params, says) in [
        (
            vec![("query", r#"count_over_time({source="x"}[1m])"#)],
            "not a metric query",
        ),
        (
            vec![("query", r#"{source="x"}"#), ("start", "0")],
            "further back than the limit",
        ),
        (vec![("query", r#"{source="x""#)], "parse error"),
    ] {
        let u = tail_url(base, &params);
        let pq = format!("{}?{}", u.path(), u.query().unwrap());
        let (status, head, body) = raw(addr, &upgrade_head(addr, &pq, "13", Some(token))).await;
        assert_eq!(status, 400, "{params:?}: {head}");
        assert!(body.contains(says), "{params:?}: {body}");
    }

    // The access guard is in front of the tail: no token, no upgrade.
    let (status, _, _) = raw(addr, &upgrade_head(addr, &pq, "13", None)).await;
    assert_eq!(status, 401);

    // Frames RFC 6455 forbids end the session with 1002 (protocol error), one too large for
    // this service with 1009 (too big), never read whole.
    let mask = Some([1, 2, 3, 4]);
    let cases: [(&str, Vec<u8>, u16); 3] = [
        (
            "an unmasked frame",
            client_frame(true, 0x1, b"hi", None),
            1002,
        ),
        (
            "a fragmented ping",
            client_frame(false, 0x9, b"part", mask),
            1002,
        ),
        (
            "a 1 MiB message",
            client_frame(true, 0x1, &vec![b'x'; 1 << 20], mask),
            1009,
        ),
    ];
    for (what, frame, code) in cases {
        let got = answer_to(addr, &pq, token, &frame).await;
        assert_eq!(got, Some(code), "{what}");
    }
}

/// A `logflux serve` of its own (not `up`'s), so that the stack can be restarted under it.
struct OwnServe {
    _child: tokio::process::Child,
    url: String,
    token: String,
    /// Its log lines (LOGFLUX_LOG=info), as they come.
    log: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Every log line so far.
    all: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl OwnServe {
    /// Starts `logflux serve` with the stack's client config; `server` instead of the
    /// config's server URL when given.
    async fn start(stack: &Stack, server: Option<&str>) -> OwnServe {
        let token_file = stack.tmp.path().join("own/serve.token");
        let mut cmd = stack.command();
        if let Some(url) = server {
            cmd.env("LOGFLUX_SERVER", url);
        }
        let mut child = tokio::process::Command::from(cmd)
            .env("LOGFLUX_LOG", "info")
            .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token_file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, log) = tokio::sync::mpsc::unbounded_channel();
        let all = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = all.clone();
        let mut err = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err.next_line().await {
                keep.lock().unwrap().push(l.clone());
                let _ = tx.send(l);
            }
        });
        let mut out = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = common::serve_url(&mut out).await;
        tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
        let token = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_owned();
        OwnServe {
            _child: child,
            url,
            token,
            log,
            all,
        }
    }

    /// Waits (bounded) for a log line containing `text`.
    async fn wait_log(&mut self, text: &str) -> String {
        loop {
            let l = tokio::time::timeout(Duration::from_secs(90), self.log.recv())
                .await
                .unwrap_or_else(|_| panic!("no log line with {text:?} within 90 s"))
                .expect("serve's stderr is open");
            if l.contains(text) {
                return l;
            }
        }
    }
}

#[tokio::test]
async fn a_tail_outlives_a_server_restart_and_loses_nothing() {
    // The server on a fixed port, so that its restart is the same server to `serve`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let stack = Stack::start_on(&http).await;
    stack.send_unix(&[entry("before the tail", "tailer")]).await;
    stack.wait_for_entries(2).await;
    let mut serve = OwnServe::start(&stack, None).await;
    let mut ws = connect(
        &serve.url,
        &serve.token,
        &[("query", r#"{source="tailer"}"#), ("limit", "10")],
    )
    .await;
    assert_eq!(lines(&next_json(&mut ws).await), ["before the tail"]);
    stack
        .send_unix(&[entry("live before the restart", "tailer")])
        .await;
    assert_eq!(
        lines(&next_json(&mut ws).await),
        ["live before the restart"]
    );

    // The server stops (its live streams end: shutdown) and is away for a while.
    let (tmp, dir) = stack.stop().await;
    let lost = serve.wait_log("lost the server's live stream").await;
    assert!(lost.contains("after_segment="), "{lost}");
    let stack = Stack::restart_on(tmp, dir, &http).await;
    // Committed while `serve` may still be waiting to reconnect: it comes all the same.
    stack
        .send_unix(&[entry("committed during the outage", "tailer")])
        .await;
    serve.wait_log("resumed the server's live stream").await;
    // Committed once the stream is back.
    stack
        .send_unix(&[entry("after the restart", "tailer")])
        .await;

    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(lines(&next_json(&mut ws).await));
    }
    assert_eq!(
        got,
        ["committed during the outage", "after the restart"],
        "each once, in order, nothing from before the restart again"
    );
    // Nothing else (no repeat of a resumed segment) follows: a ping's pong comes next.
    nothing_more(&mut ws).await;
    // The reconnects are logged, without any log content.
    let log = serve.all.lock().unwrap().join("\n");
    for payload in [
        "before the tail",
        "live before the restart",
        "committed during the outage",
        "after the restart",
    ] {
        assert!(!log.contains(payload), "{payload:?} in serve's log:\n{log}");
    }
    ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
    .await
    .unwrap();
}

/// A TCP relay to the server that can be cut (every connection through it closed, new ones
/// closed on arrival) and mended: the server stays up, but `serve` cannot reach it.
struct Relay {
    addr: std::net::SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (open, _) = tokio::sync::watch::channel(true);
        let state = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = l.accept().await {
                let mut cut = state.subscribe();
                if !*cut.borrow_and_update() {
                    continue;
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let mut server = tokio::net::TcpStream::connect(&target).await.unwrap();
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Relay { addr, open }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn mend(&self) {
        self.open.send_replace(true);
    }
}

#[tokio::test]
async fn entries_committed_while_the_server_is_out_of_reach_still_come_once() {
    let stack = Stack::start().await;
    stack.send_unix(&[entry("before the tail", "tailer")]).await;
    stack.wait_for_entries(2).await;
    let relay = Relay::start(
        stack
            .var("LOGFLUX_SERVER")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
    )
    .await;
    let mut serve = OwnServe::start(&stack, Some(&relay.url())).await;
    let mut ws = connect(
        &serve.url,
        &serve.token,
        &[("query", r#"{source="tailer"}"#), ("limit", "10")],
    )
    .await;
    assert_eq!(lines(&next_json(&mut ws).await), ["before the tail"]);
    stack
        .send_unix(&[entry("live before the cut", "tailer")])
        .await;
    assert_eq!(lines(&next_json(&mut ws).await), ["live before the cut"]);

    // `serve` loses the server; an entry is committed (the server itself finds it) while
    // `serve` cannot reach it.
    relay.cut();
    serve.wait_log("lost the server's live stream").await;
    stack
        .send_unix(&[entry("committed while cut off", "tailer")])
        .await;
    stack.wait_for_entries(4).await;
    relay.mend();
    serve.wait_log("resumed the server's live stream").await;
    stack.send_unix(&[entry("after the mend", "tailer")]).await;

    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(lines(&next_json(&mut ws).await));
    }
    assert_eq!(got, ["committed while cut off", "after the mend"]);
    ws.close(None).await.unwrap();
}

/// A TCP relay to the server that holds back each request containing a text (its bytes wait
/// in the relay) while closed; `held` hears of every request held.
struct Gate {
    addr: std::net::SocketAddr,
    open: tokio::sync::watch::Sender<bool>,
    held: tokio::sync::mpsc::UnboundedReceiver<()>,
}

impl Gate {
    async fn start(target: String, hold: &'static str) -> Gate {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (open, _) = tokio::sync::watch::channel(false);
        let state = open.clone();
        let (held_tx, held) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                let mut open = state.subscribe();
                let held = held_tx.clone();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let chunk = &buf[..n];
                            if !*open.borrow_and_update()
                                && chunk.windows(hold.len()).any(|w| w == hold.as_bytes())
                            {
                                let _ = held.send(());
                                let _ = open.wait_for(|o| *o).await;
                            }
                            if sw.write_all(chunk).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Gate { addr, open, held }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (bounded) until a request is held.
    async fn held(&mut self) {
        tokio::time::timeout(Duration::from_secs(60), self.held.recv())
            .await
            .expect("a request held within 60 s")
            .unwrap();
    }

    fn release(&self) {
        self.open.send_replace(true);
    }
}

/// Asserts that nothing but the answer to a ping is due on `ws`.
async fn nothing_more(ws: &mut Ws) {
    ws.send(Message::Ping("anything else?".into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match m {
            Message::Pong(p) => {
                assert_eq!(&p[..], b"anything else?");
                return;
            }
            Message::Ping(_) => {}
            other => panic!("nothing but the pong was due: {other:?}"),
        }
    }
}

fn stamped(payload: &str, ts_ns: i64) -> Value {
    json!({"payload": payload, "source": "tailer", "entryType": 1, "logLevel": 6,
           "timestamp": logflux_proto::timefmt::format_rfc3339(ts_ns)})
}

#[tokio::test]
async fn a_record_committed_as_the_tail_starts_comes_once_history_and_live_split() {
    let stack = Stack::start().await;
    stack.send_unix(&[entry("before the tail", "tailer")]).await;
    stack.wait_for_entries(2).await;
    // `serve` reaches the server through a gate that holds its queries (the tail's history)
    // back: the live stream opens, the history waits.
    let mut gate = Gate::start(
        stack
            .var("LOGFLUX_SERVER")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned(),
        "POST /v1/query",
    )
    .await;
    let serve = OwnServe::start(&stack, Some(&gate.url())).await;
    let t0 = logflux_proto::timefmt::now_ns();
    let mut ws = connect(
        &serve.url,
        &serve.token,
        &[("query", r#"{source="tailer"}"#), ("limit", "10")],
    )
    .await;
    gate.held().await;
    // Committed after the live stream's start and before the history is read: both read
    // it. One entry is older than the tail, one stamped as it comes, one a minute ahead.
    stack
        .send_unix(&[
            stamped("stamped before the tail", t0 - 1_000_000_000),
            entry("stamped as it came", "tailer"),
            stamped("stamped a minute ahead", t0 + 60_000_000_000),
        ])
        .await;
    stack.wait_for_entries(5).await;
    gate.release();
    // The history has what is older than its end; the live stream the rest; each once.
    let mut history = lines(&next_json(&mut ws).await);
    history.sort();
    assert_eq!(history, ["before the tail", "stamped before the tail"]);
    let mut got = Vec::new();
    while got.len() < 2 {
        got.extend(lines(&next_json(&mut ws).await));
    }
    assert_eq!(got, ["stamped as it came", "stamped a minute ahead"]);
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_tail_the_server_refuses_for_too_many_streams_is_closed_with_try_again_later() {
    let stack = Stack::start().await;
    stack.send_unix(&[entry("before the tail", "tailer")]).await;
    stack.wait_for_entries(2).await;
    let base = stack.var("LOGFLUX_SERVE_URL");
    let token = stack.var("LOGFLUX_SERVE_TOKEN");
    let params = [("query", r#"{source="tailer"}"#), ("limit", "10")];
    // The server's limit of live streams per token (8 by default): each of these tails holds
    // one once it has sent its history.
    let mut open = Vec::new();
    for _ in 0..8 {
        let mut ws = connect(base, token, &params).await;
        assert_eq!(lines(&next_json(&mut ws).await), ["before the tail"]);
        open.push(ws);
    }
    // One more is refused by the server (429 too_many_streams): the client hears why, with
    // 1013 (try again later), instead of an open socket that never sends anything.
    let mut ws = connect(base, token, &params).await;
    let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .expect("an answer within 30 s")
        .expect("a close frame")
        .unwrap();
    let Message::Close(Some(close)) = m else {
        panic!("a close was due: {m:?}");
    };
    assert_eq!(close.code, CloseCode::Again, "{close:?}");
    assert!(close.reason.contains("429"), "{close:?}");
    assert!(close.reason.contains("live tails open"), "{close:?}");
    // A tail given back makes room again.
    drop(open.pop());
    let mut ws = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let mut ws = connect(base, token, &params).await;
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let m: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert_eq!(lines(&m), ["before the tail"]);
                    return ws;
                }
                // The server has not seen the dropped tail go yet.
                Some(Ok(Message::Close(Some(c)))) if c.code == CloseCode::Again => {}
                other => panic!("history or 1013 was due: {other:?}"),
            }
        }
    })
    .await
    .expect("room within 60 s");
    nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_tail_on_an_application_not_yet_created_gets_its_entries_once_it_is() {
    let mut stack = Stack::start().await;
    stack.send_unix(&[entry("in another app", "tailer")]).await;
    stack.wait_for_entries(2).await;
    let base = stack.var("LOGFLUX_SERVE_URL").to_owned();
    let token = stack.var("LOGFLUX_SERVE_TOKEN").to_owned();
    let mut ws = connect(&base, &token, &[("query", r#"{app="later"}"#)]).await;
    // The application comes into being, with a key of its own, and an entry is sent to it.
    let (code, _, err) = stack.run(&["admin", "apps", "create", "later"]);
    assert_eq!(code, 0, "{err}");
    let (code, key, err) = stack.run(&[
        "admin",
        "api-keys",
        "create",
        "--app",
        "later",
        "--name",
        "tail-test",
    ]);
    assert_eq!(code, 0, "{err}");
    stack
        .env
        .insert("LOGFLUX_API_KEY".into(), key.trim().to_owned());
    let ts = logflux_proto::timefmt::format_rfc3339(
        logflux_proto::timefmt::now_ns() / 1_000_000 * 1_000_000,
    );
    stack
        .send_sdk(
            &[(
                1,
                json!({"v":"2.0","type":"log","source":"late","level":6,"ts": ts,
                       "message":"the first entry of a new app"}),
            )],
            false,
        )
        .await;
    // It comes (by the history or the live stream, once), nothing of the other app does.
    let m = next_json(&mut ws).await;
    assert_eq!(lines(&m), ["the first entry of a new app"], "{m}");
    assert_eq!(m["streams"][0]["stream"]["app"], "later", "{m}");
    nothing_more(&mut ws).await;
}
