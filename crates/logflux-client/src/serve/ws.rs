//! `GET /loki/api/v1/tail`: Loki's live tail over a WebSocket (text messages, as Grafana's
//! live view reads them). The protocol (RFC 6455: handshake, framing, masking, control frames,
//! pings) is axum's `ws` over tungstenite; this module checks the query before upgrading and
//! runs the session.
//!
//! A session sends the newest `limit` entries since `start` (default an hour back), oldest
//! first, then every new entry the server's live stream carries that the query matches, each
//! message `{"streams":[…],"dropped_entries":[]}`. The server's live stream is opened, and its
//! first line (a heartbeat naming the segment it starts after) read, before the history's end
//! is taken and the history read, so nothing committed in between is missed; a record seen in
//! both is split at the history's end (see [`Sent`]), so each entry is sent once.
//!
//! When the server's live stream ends, fails or stops heartbeating, it is opened again (capped
//! exponential backoff kept across losses, [`Reconnect`]) with `after_segment` = the last
//! position the server gave, so nothing committed meanwhile is lost and nothing is sent twice
//! (a resumed stream repeats at most the segment it was in; those records are recognised by
//! id). The WebSocket stays open meanwhile, and the client is pinged every 30 s; the session
//! ends when the client leaves or stays silent 90 s (1001), with 1013 or 1011 when the live
//! stream cannot open at the start, or with 1011 when the server refuses the credentials for
//! good (a revoked or expired token: retrying cannot help).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt as _, StreamExt as _};
use logflux_proto::query::TailRequest;
use logflux_query::{LogLine, LogQuery, Query, Row};
use serde_json::json;

use super::http::{DEFAULT_SINCE_NS, LokiError, Params};
use super::{Prepared, Scan, Service};
use crate::api::{Line, Lines, StatusError};

/// Largest message (and frame) accepted from a client: it only sends control frames.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;
/// Without a line (heartbeats included) from the server for this long, the live stream is
/// taken for lost and opened again (the server heartbeats every 15 s).
const STALL: Duration = Duration::from_secs(75);
/// The first wait before opening a lost live stream again, doubled up to [`BACKOFF_MAX`].
const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A live stream up this long, or that brought a line beyond its first heartbeat, has proved
/// itself: the next loss starts the waits over from [`BACKOFF_START`]. A stream that opens
/// and ends at once keeps the waits growing.
const PROVEN: Duration = Duration::from_secs(30);
/// Failed attempts at opening the live stream before a session gives up, when it has not
/// opened yet (the client has been sent nothing: it should hear why rather than wait on an
/// open socket). A refusal (4xx) gives up at once.
const FIRST_OPEN_ATTEMPTS: u32 = 3;
/// How often a tail on applications that do not exist looks again for them: the server is
/// asked for nothing meanwhile (an empty list would be all applications).
const REPREPARE_EVERY: Duration = Duration::from_secs(10);
/// Longest wait a server's `Retry-After` is honoured with.
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);
/// A ping is sent to the client this often, so that a client gone without a word (its
/// machine asleep, a network cut) is found out.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Without any frame from the client (a pong or anything else) for this long, the session
/// ends.
const CLIENT_SILENT_MAX: Duration = Duration::from_secs(90);
/// How long the session waits for a close to be answered, or a message to be taken.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Longest close reason: a control frame's payload is at most 125 bytes, 2 of them the code.
const MAX_CLOSE_REASON: usize = 123;
/// `end` reasons a reconnect cannot help with.
const FINAL_END_REASONS: [&str; 2] = ["token_revoked", "token_expired"];

/// The handler: checks the query, then the upgrade, and runs the session on the WebSocket.
/// Every refusal is a plain 4xx in Loki's shape, before any upgrade.
pub(crate) async fn tail(
    State(s): State<Arc<Service>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let params = Params::from_request(&uri, &headers, &[]);
    let (q, limit, start) = match check(&params) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return refuse_upgrade(rejection),
    };
    // A tail the web UI opened with its session cookie ends with that session.
    let ui_session = s.guard.cookie_session(&headers);
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| session(s, q, limit, start, ui_session, socket))
}

/// The tail's parameters: a log query, `limit`, and a `start` within the range limit.
fn check(params: &Params) -> Result<(LogQuery, u64, i64), LokiError> {
    let q = params.query()?;
    let Query::Log(q) = super::loki::parse_query(q)? else {
        return Err(LokiError::bad(
            "tail takes a log query ({app=\"web\"} |= \"error\"), not a metric query",
        ));
    };
    let limit = params.limit()?;
    let now = logflux_proto::timefmt::now_ns();
    let start = params.time("start", now - DEFAULT_SINCE_NS)?;
    // The history before the live stream is held to a query's range limit (Loki limits its
    // tail look-back too): `start=0` would scan, and remember, everything.
    if now.saturating_sub(start) > super::http::MAX_RANGE_NS {
        return Err(LokiError::bad(format!(
            "the tail's start is further back than the limit ({})",
            super::http::human_duration(super::http::MAX_RANGE_NS)
        )));
    }
    Ok((q, limit, start))
}

/// A request that is not a WebSocket upgrade this service speaks: Loki's error shape, with
/// the status axum chose (400 for a missing or wrong header). A wrong version is answered
/// with the version spoken (RFC 6455 §4.4).
fn refuse_upgrade(rejection: WebSocketUpgradeRejection) -> Response {
    let version = matches!(
        rejection,
        WebSocketUpgradeRejection::InvalidWebSocketVersionHeader(_)
    );
    let mut resp = LokiError {
        status: rejection.status(),
        message: format!(
            "tail is a WebSocket (Upgrade: websocket, Sec-WebSocket-Version: 13): {}",
            rejection.body_text()
        ),
    }
    .into_response();
    if version {
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
    }
    resp
}

/// `message` cut to fit a close frame, on a character boundary.
fn close_reason(message: &str) -> &str {
    &message[..message.floor_char_boundary(MAX_CLOSE_REASON)]
}

/// What the session sends the client, from [`run`]: a data message at a time.
type Outbox = tokio::sync::mpsc::Sender<Message>;

/// The close a client's read error calls for (RFC 6455 §7.4.1): 1002 for a frame the protocol
/// forbids (unmasked, a fragmented control frame…), 1009 for one larger than accepted, 1007
/// for text that is not UTF-8; none when the connection itself failed.
fn refusal(e: axum::Error) -> Option<CloseFrame> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let inner = e.into_inner();
    let code = match inner.downcast_ref::<WsError>()? {
        WsError::Protocol(_) => 1002,
        WsError::Capacity(_) => 1009,
        WsError::Utf8(_) => 1007,
        _ => return None,
    };
    Some(CloseFrame {
        code,
        reason: close_reason(&inner.to_string()).to_owned().into(),
    })
}

/// The client's reader task, aborted when dropped (every way the session ends).
struct Reader(tokio::task::JoinHandle<Option<CloseFrame>>);

impl Drop for Reader {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The close code and reason of a tail whose UI session ended (1008: policy violation).
const SESSION_ENDED: (u16, &str) = (
    1008,
    "the UI session ended (signed out or expired): sign in again",
);

async fn session(
    s: Arc<Service>,
    q: LogQuery,
    limit: u64,
    start: i64,
    ui_session: Option<[u8; 32]>,
    socket: WebSocket,
) {
    let (mut tx, mut rx) = socket.split();
    // The client's side is read all along, so tungstenite answers its pings and its close.
    // Reading goes on after a close until tungstenite has sent the answering close. A frame
    // the protocol forbids ends the session with the close code that says why. Every frame
    // is news that the client is there.
    let (heard_tx, mut heard) = tokio::sync::watch::channel(());
    let mut client = Reader(tokio::spawn(async move {
        loop {
            match rx.next().await {
                None => return None,
                Some(Ok(_)) => {
                    heard_tx.send_replace(());
                }
                Some(Err(e)) => return refusal(e),
            }
        }
    }));
    let (out, mut outbox) = tokio::sync::mpsc::channel(1);
    let run = run(&s, &q, limit, start, out);
    tokio::pin!(run);
    let mut liveness = Liveness::new(tokio::time::Instant::now());
    let mut ended = s.guard.sessions_ended();
    let live = |key: &Option<[u8; 32]>| key.as_ref().is_none_or(|k| s.guard.session_is_live(k));
    let (code, message) = loop {
        tokio::select! {
            Ok(()) = ended.changed(), if ui_session.is_some() => {
                if !live(&ui_session) {
                    break (SESSION_ENDED.0, SESSION_ENDED.1.to_owned());
                }
            }
            left = &mut client.0 => {
                if let Ok(Some(close)) = left {
                    let _ = give(&mut tx, Message::Close(Some(close)), CLOSE_WAIT).await;
                }
                return;
            }
            ended = &mut run => match ended {
                Err(End::Error(e)) => break (1011, e.message),
                Err(End::TryLater(e)) => break (1013, e.message),
                Err(End::ClientGone) => return,
            },
            Some(m) = outbox.recv() => {
                // A client that takes nothing for as long as it may stay silent is gone.
                if !give(&mut tx, m, CLIENT_SILENT_MAX).await {
                    return;
                }
            }
            tick = keepalive(&mut heard, &mut liveness) => match tick {
                Tick::Ping => {
                    // A session that expired meanwhile ends its tails at the next ping.
                    if !live(&ui_session) {
                        break (SESSION_ENDED.0, SESSION_ENDED.1.to_owned());
                    }
                    if !give(&mut tx, Message::Ping(Default::default()), CLIENT_SILENT_MAX).await {
                        return;
                    }
                }
                Tick::Silent => {
                    let silent = CLIENT_SILENT_MAX.as_secs();
                    tracing::info!(silent_s = silent, "serve: a tail's client went silent");
                    break (1001, format!("no frame from the client for {silent} s"));
                }
            },
        }
    };
    if code != 1001 && code != SESSION_ENDED.0 {
        tracing::warn!(error = %message, code, "serve: a tail ended");
    }
    let close = CloseFrame {
        code,
        reason: close_reason(&message).to_owned().into(),
    };
    if give(&mut tx, Message::Close(Some(close)), CLOSE_WAIT).await {
        // The client answers with its close; the reader above sees it.
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut client.0).await;
    }
}

/// Sends `m` to the client; whether it was taken within `wait`.
async fn give(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    m: Message,
    wait: Duration,
) -> bool {
    matches!(tokio::time::timeout(wait, tx.send(m)).await, Ok(Ok(())))
}

/// What keeping an eye on the client calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tick {
    /// A ping is due.
    Ping,
    /// Nothing came from the client for [`CLIENT_SILENT_MAX`].
    Silent,
}

/// When the client was last heard from and last pinged.
#[derive(Debug)]
struct Liveness {
    heard: tokio::time::Instant,
    pinged: tokio::time::Instant,
}

impl Liveness {
    fn new(now: tokio::time::Instant) -> Liveness {
        Liveness {
            heard: now,
            pinged: now,
        }
    }
}

/// Waits until a ping is due or the client has been silent too long, noting every frame
/// `heard` tells of meanwhile. Cancel-safe: the session polls it beside its other work.
async fn keepalive(heard: &mut tokio::sync::watch::Receiver<()>, l: &mut Liveness) -> Tick {
    loop {
        let silent_at = l.heard + CLIENT_SILENT_MAX;
        let ping_at = l.pinged + PING_EVERY;
        tokio::select! {
            Ok(()) = heard.changed() => l.heard = tokio::time::Instant::now(),
            () = tokio::time::sleep_until(silent_at.min(ping_at)) => {
                let now = tokio::time::Instant::now();
                if now >= silent_at {
                    return Tick::Silent;
                }
                l.pinged = now;
                return Tick::Ping;
            }
        }
    }
}

/// Runs a session until something ends it for good (the client leaving is seen by the
/// caller, which drops this).
async fn run(
    s: &Arc<Service>,
    q: &LogQuery,
    limit: u64,
    start: i64,
    tx: Outbox,
) -> Result<Infallible, End> {
    let now = logflux_proto::timefmt::now_ns();
    let Some(scan) = super::loki::scan_for(&q.prune(), start, now, true) else {
        // Nothing can match: keep the socket until the client leaves.
        return std::future::pending().await;
    };
    let mut live = Live::open(s, scan).await?;
    // History: the newest `limit` since start up to now, sent oldest first. "Now" is read
    // once the live stream's position is known: whatever is committed from then on comes on
    // the live stream, so the history may read records the live stream brings too. Those
    // are remembered: sent whole by the history (skipped when they come live), or only up to
    // the history's end (their later entries sent when they come live).
    let end = logflux_proto::timefmt::now_ns();
    let mut sent = Sent::default();
    let live_start = live.after;
    let mut history = super::loki::log_lines(s, q, start, end, limit, true, &mut |r| {
        sent.read_by_history(r, live_start, end)
    })
    .await?;
    history.reverse();
    if !history.is_empty() {
        send(&tx, history).await?;
    }
    loop {
        let (opened, from) = live.next_due(&mut sent).await?;
        let mut out = Vec::new();
        for r in &opened.records {
            for e in r.entries.iter().filter(|e| e.timestamp_ns >= from) {
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
            send(&tx, out).await?;
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Writing to the client failed: it is gone.
    ClientGone,
    /// Closed with 1011 (internal error) and this reason.
    Error(LokiError),
    /// Closed with 1013 (try again later) and this reason: the server is busy or away.
    TryLater(LokiError),
}

impl From<LokiError> for End {
    fn from(e: LokiError) -> End {
        End::Error(e)
    }
}

/// Records already sent, so an entry is sent once: those the history read (the live stream
/// may bring them once more), and those the live stream brought from segments a resumed
/// stream may repeat.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    /// Records the history read that the live stream may bring too (those of segments after
    /// its start): id → their segment, and the history's end when the record has entries at
    /// or beyond it (left to the live stream), `None` when the history had all of it. Held
    /// until the live stream brings them or passes their segment.
    history: HashMap<String, (i64, Option<i64>)>,
    /// Ids of the records the live stream brought, per segment after the resume point: a
    /// resumed stream repeats those segments (the server resumes one segment back), never
    /// earlier ones. Cleared as the resume point passes them, so at most about one segment's
    /// records are held, however many it has.
    live: BTreeMap<i64, HashSet<String>>,
}

/// What of a record the live stream brings is still to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Every entry: the history did not read it.
    All,
    /// Its entries at or after this time: the history sent those before.
    From(i64),
    /// Nothing: sent already.
    Nothing,
}

impl Sent {
    /// Notes a record the history read, up to `end` (exclusive), if the live stream (which
    /// starts after segment `live_start`) will bring it too.
    pub(crate) fn read_by_history(&mut self, r: &super::Opened, live_start: i64, end: i64) {
        if r.segment_id <= live_start {
            return;
        }
        let beyond = r.entries.iter().any(|e| e.timestamp_ns >= end);
        self.history
            .insert(r.record_id.clone(), (r.segment_id, beyond.then_some(end)));
    }

    /// What of record `id` of `segment`, brought by the live stream, is still to be sent;
    /// from then on it counts as sent.
    fn due(&mut self, segment: i64, id: &str) -> Due {
        if !self.live.entry(segment).or_default().insert(id.to_owned()) {
            return Due::Nothing;
        }
        match self.history.remove(id) {
            None => Due::All,
            Some((_, None)) => Due::Nothing,
            Some((_, Some(end))) => Due::From(end),
        }
    }

    /// Forgets the records of segments at or before `after`, the point a resumed stream would
    /// start after: it cannot bring them again.
    fn advance(&mut self, after: i64) {
        if !self.history.is_empty() {
            self.history.retain(|_, (segment, _)| *segment > after);
        }
        if self
            .live
            .first_key_value()
            .is_some_and(|(&first, _)| first <= after)
        {
            self.live = self.live.split_off(&(after + 1));
        }
    }
}

/// Capped exponential waits: 0.5 s, 1 s, 2 s, … 10 s, 10 s, …
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(BACKOFF_START)
    }

    fn next(&mut self) -> Duration {
        let wait = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        wait
    }
}

/// The waits before opening a lost live stream again: they grow across losses, and start
/// over only once a stream has proved itself ([`PROVEN`]).
#[derive(Debug)]
struct Reconnect {
    backoff: Backoff,
    /// When the stream in use opened.
    opened: tokio::time::Instant,
    /// Its lines so far (its `end` line not counted).
    lines: u32,
}

impl Reconnect {
    fn new(now: tokio::time::Instant) -> Reconnect {
        Reconnect {
            backoff: Backoff::new(),
            opened: now,
            lines: 0,
        }
    }

    /// A stream opened at `now`.
    fn opened(&mut self, now: tokio::time::Instant) {
        self.opened = now;
        self.lines = 0;
    }

    /// A line of kind `kind` came: a line beyond the first heartbeat proves the stream.
    fn line(&mut self, kind: &str) {
        // `caught_up` follows a resumed stream's first read at once: it proves nothing.
        if kind == "end" || kind == "caught_up" {
            return;
        }
        self.lines += 1;
        if self.lines > 1 {
            self.backoff = Backoff::new();
        }
    }

    /// The stream was lost at `now`: a stream up for [`PROVEN`] proved itself too.
    fn lost(&mut self, now: tokio::time::Instant) {
        if now.saturating_duration_since(self.opened) >= PROVEN {
            self.backoff = Backoff::new();
        }
    }

    /// The wait before the next attempt.
    fn wait(&mut self) -> Duration {
        self.backoff.next()
    }
}

/// The server's live stream for a scan, opened again where it left off when it is lost.
pub(crate) struct Live<'a> {
    s: &'a Arc<Service>,
    scan: Scan,
    prepared: Prepared,
    lines: Lines,
    /// The segment the server has given everything up to (its heartbeats' `after_segment`,
    /// and one segment back from a record's: its segment may not be whole yet).
    pub(crate) after: i64,
    reconnect: Reconnect,
    /// Whether what the stream brings is the present: false from a loss (or a
    /// [`Live::restart_from_start`]) until the resumed stream's `caught_up` line (what was
    /// committed meanwhile comes first).
    pub(crate) current: Arc<std::sync::atomic::AtomicBool>,
}

impl<'a> Live<'a> {
    /// Opens the stream and reads its first line, the heartbeat naming where it starts: from
    /// then on every loss can be resumed without a gap. Until the position is known nothing
    /// has been sent: a refusal ends the session at once, other failures after
    /// [`FIRST_OPEN_ATTEMPTS`] — with 1013 (try again later) when the server is busy (429)
    /// or unavailable (503), else 1011.
    pub(crate) async fn open(s: &'a Arc<Service>, scan: Scan) -> Result<Live<'a>, End> {
        let mut prepared = s.prepare(&scan).await?;
        // None of the applications asked for exists: nothing can match until one is added.
        // The socket is kept, and the list read again now and then.
        while prepared.empty {
            tokio::time::sleep(REPREPARE_EVERY).await;
            if let Ok(p) = s.prepare(&scan).await {
                prepared = p;
            }
        }
        let mut backoff = Backoff::new();
        let mut attempt = 0u32;
        loop {
            let failed = match open_stream(s, &scan, &prepared, None).await {
                Ok(mut lines) => match first_position(&mut lines).await {
                    Ok(after) => {
                        let mut reconnect = Reconnect::new(tokio::time::Instant::now());
                        reconnect.line("heartbeat");
                        return Ok(Live {
                            s,
                            scan,
                            prepared,
                            lines,
                            after,
                            reconnect,
                            current: Arc::new(std::sync::atomic::AtomicBool::new(true)),
                        });
                    }
                    Err(f) => f,
                },
                Err(f) => f,
            };
            let retry = match failed {
                Fail::Final(e) => return Err(End::Error(e)),
                Fail::Retry(r) => r,
            };
            attempt += 1;
            let refused = retry.status.is_some_and(|c| (400..500).contains(&c));
            if refused || attempt >= FIRST_OPEN_ATTEMPTS {
                let e = LokiError::internal(format!("live stream: {}", retry.why));
                return Err(if matches!(retry.status, Some(429 | 503)) {
                    End::TryLater(e)
                } else {
                    End::Error(e)
                });
            }
            let wait = retry.wait(backoff.next());
            tracing::warn!(
                reason = %retry.why,
                attempt,
                retry_in_ms = wait.as_millis() as u64,
                "serve: a tail could not open the server's live stream; retrying"
            );
            tokio::time::sleep(wait).await;
            if let Ok(p) = s.prepare(&scan).await
                && !p.empty
            {
                prepared = p;
            }
        }
    }

    /// The next line of the stream (a malformed one skipped), opening it again as often as
    /// it is lost.
    async fn next_line(&mut self) -> Result<Line, LokiError> {
        loop {
            let why = match tokio::time::timeout(STALL, self.lines.next()).await {
                Ok(Ok(Some(l))) => {
                    let Ok(l) = l.parse() else {
                        continue;
                    };
                    self.reconnect.line(&l.kind);
                    if l.kind == "caught_up" {
                        self.current
                            .store(true, std::sync::atomic::Ordering::Release);
                    }
                    return Ok(l);
                }
                Err(_) => format!("no line from the server for {} s", STALL.as_secs()),
                Ok(Ok(None)) => "the server closed it".to_owned(),
                Ok(Err(e)) => format!("{e:#}"),
            };
            self.lost(Retry::because(why)).await?;
        }
    }

    /// Opens the stream again from where it started, without waiting: what it brought so
    /// far and did not give is brought again, then its `caught_up` line says it has reached
    /// the present ([`Live::current`] false until then). For a reader that read the history
    /// first while the stream waited.
    pub(crate) async fn restart_from_start(&mut self) -> Result<(), LokiError> {
        self.current
            .store(false, std::sync::atomic::Ordering::Release);
        match open_stream(self.s, &self.scan, &self.prepared, Some(self.after)).await {
            Ok(lines) => {
                self.lines = lines;
                self.reconnect.opened(tokio::time::Instant::now());
                Ok(())
            }
            Err(Fail::Final(e)) => Err(e),
            Err(Fail::Retry(why)) => self.lost(why).await,
        }
    }

    /// The next record the stream brings that is still due, opened, with the time from
    /// which its entries are due (`sent` decides: a record the history read whole, or one a
    /// resumed stream repeats, is skipped). `end` lines are handled here: a final one (the
    /// token revoked or expired) is an error, the others reopen the stream.
    pub(crate) async fn next_due(
        &mut self,
        sent: &mut Sent,
    ) -> Result<(super::OpenedLines, i64), LokiError> {
        loop {
            let l = self.next_line().await?;
            self.saw(&l);
            sent.advance(self.after);
            match l.kind.as_str() {
                "record" => {
                    let from = match sent.due(l.segment_id, &l.record_id) {
                        Due::Nothing => continue,
                        Due::All => i64::MIN,
                        Due::From(end) => end,
                    };
                    let opened = self.s.open_lines(vec![l], &self.prepared.names).await?;
                    return Ok((opened, from));
                }
                "end" => {
                    let reason = l.reason.as_deref().unwrap_or("unknown");
                    if FINAL_END_REASONS.contains(&reason) {
                        return Err(LokiError::internal(format!(
                            "the server ended the live stream ({reason}): {}",
                            l.message
                        )));
                    }
                    self.lost(Retry::because(format!("the server ended it ({reason})")))
                        .await?;
                }
                _ => {}
            }
        }
    }

    /// Notes the position a line gives.
    fn saw(&mut self, l: &Line) {
        if let Some(a) = l.after_segment {
            self.after = self.after.max(a);
        }
        if l.kind == "record" || l.kind == "damaged" {
            self.after = self.after.max(l.segment_id - 1);
        }
    }

    /// Opens the stream again after `after`, waiting longer after each failure, until it
    /// opens (or the credentials are refused for good).
    async fn lost(&mut self, why: Retry) -> Result<(), LokiError> {
        self.current
            .store(false, std::sync::atomic::Ordering::Release);
        self.reconnect.lost(tokio::time::Instant::now());
        let mut why = why;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let wait = why.wait(self.reconnect.wait());
            tracing::warn!(
                reason = %why.why,
                after_segment = self.after,
                attempt,
                retry_in_ms = wait.as_millis() as u64,
                "serve: a tail lost the server's live stream; reconnecting"
            );
            tokio::time::sleep(wait).await;
            // The applications are listed again (one may have been added); when that fails,
            // the stream's own answer says why. A list that no longer has any of them is not
            // taken: asking for no application would be asking for all.
            if let Ok(p) = self.s.prepare(&self.scan).await
                && !p.empty
            {
                self.prepared = p;
            }
            match open_stream(self.s, &self.scan, &self.prepared, Some(self.after)).await {
                Ok(lines) => {
                    self.lines = lines;
                    self.reconnect.opened(tokio::time::Instant::now());
                    tracing::info!(
                        after_segment = self.after,
                        attempts = attempt,
                        "serve: a tail resumed the server's live stream"
                    );
                    return Ok(());
                }
                Err(Fail::Final(e)) => return Err(e),
                Err(Fail::Retry(w)) => why = w,
            }
        }
    }
}

/// Why opening or reading the live stream failed: worth retrying or not.
enum Fail {
    Retry(Retry),
    Final(LokiError),
}

/// A failure worth retrying: why, the server's status if it answered one, and the wait it
/// asked for (`Retry-After`).
#[derive(Debug)]
struct Retry {
    why: String,
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl Retry {
    fn because(why: impl Into<String>) -> Retry {
        Retry {
            why: why.into(),
            status: None,
            retry_after: None,
        }
    }

    /// The wait before the next attempt: `backoff`, or longer if the server asked for it.
    fn wait(&self, backoff: Duration) -> Duration {
        backoff.max(self.retry_after.unwrap_or_default().min(RETRY_AFTER_MAX))
    }
}

async fn open_stream(
    s: &Service,
    scan: &Scan,
    prepared: &Prepared,
    after: Option<i64>,
) -> Result<Lines, Fail> {
    s.api
        .stream(
            "/v1/tail",
            &TailRequest {
                applications: prepared.ids.clone(),
                entry_types: scan.entry_types.clone(),
                tokens: prepared.tokens.clone(),
                after_segment: after,
            },
        )
        .await
        .map_err(|e| {
            if StatusError::is_final(&e) {
                Fail::Final(LokiError::internal(format!(
                    "the server's live stream: {e:#}"
                )))
            } else {
                let refusal = StatusError::of(&e);
                Fail::Retry(Retry {
                    why: format!("{e:#}"),
                    status: refusal.map(|r| r.status),
                    retry_after: refusal.and_then(|r| r.retry_after),
                })
            }
        })
}

/// The position a fresh stream starts after: its first line, a heartbeat.
async fn first_position(lines: &mut Lines) -> Result<i64, Fail> {
    let line = match tokio::time::timeout(STALL, lines.next()).await {
        Ok(Ok(Some(l))) => l,
        Err(_) => {
            return Err(Fail::Retry(Retry::because(format!(
                "no line from the server for {} s",
                STALL.as_secs()
            ))));
        }
        Ok(Ok(None)) => return Err(Fail::Retry(Retry::because("the server closed it"))),
        Ok(Err(e)) => return Err(Fail::Retry(Retry::because(format!("{e:#}")))),
    };
    let l: Line = line.parse().map_err(|e| {
        Fail::Final(LokiError::internal(format!(
            "the server's live stream began with a malformed line: {e}"
        )))
    })?;
    match (l.kind.as_str(), l.after_segment) {
        ("heartbeat", Some(after)) => Ok(after),
        ("end", _) => {
            let reason = l.reason.as_deref().unwrap_or("unknown");
            let e = format!("the server ended the live stream ({reason}): {}", l.message);
            if FINAL_END_REASONS.contains(&reason) {
                Err(Fail::Final(LokiError::internal(e)))
            } else {
                Err(Fail::Retry(Retry::because(e)))
            }
        }
        (kind, _) => Err(Fail::Final(LokiError::internal(format!(
            "the server's live stream began with a {kind:?} line, not a heartbeat naming its position: is the server older than this client?"
        )))),
    }
}

async fn send(tx: &Outbox, lines: Vec<LogLine>) -> Result<(), End> {
    let m = json!({
        "streams": super::loki::streams_json(lines, false),
        "dropped_entries": [],
    });
    tx.send(Message::Text(m.to_string().into()))
        .await
        .map_err(|_| End::ClientGone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_close_reason_is_cut_on_a_character_boundary_to_fit_the_frame() {
        assert_eq!(close_reason("short"), "short");
        let ascii = "x".repeat(200);
        assert_eq!(close_reason(&ascii).len(), MAX_CLOSE_REASON);
        // 122 ASCII bytes then a 2-byte character: cutting at 123 would split it.
        let s = format!("{}é and more", "x".repeat(122));
        let r = close_reason(&s);
        assert_eq!(r.len(), 122);
        assert!(r.chars().all(|c| c == 'x'));
        // Characters of 3 and 4 bytes across the limit.
        for c in ['€', '😀'] {
            let s = c.to_string().repeat(100);
            let r = close_reason(&s);
            assert!(r.len() <= MAX_CLOSE_REASON && r.len() > MAX_CLOSE_REASON - 4);
            assert!(s.starts_with(r));
        }
    }

    #[test]
    fn reconnects_wait_longer_each_time_up_to_ten_seconds() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_pinged_every_30_s_and_given_up_after_90_s() {
        let t0 = tokio::time::Instant::now();
        let (heard_tx, mut heard) = tokio::sync::watch::channel(());
        let mut l = Liveness::new(t0);
        let mut ticks = Vec::new();
        loop {
            let tick = keepalive(&mut heard, &mut l).await;
            ticks.push((tick, (tokio::time::Instant::now() - t0).as_secs()));
            if tick == Tick::Silent {
                break;
            }
        }
        assert_eq!(
            ticks,
            [(Tick::Ping, 30), (Tick::Ping, 60), (Tick::Silent, 90)]
        );

        // A client that answers (a pong at 80 s) is kept: silent only 90 s after that.
        let t0 = tokio::time::Instant::now();
        let mut l = Liveness::new(t0);
        let answer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(80)).await;
            heard_tx.send_replace(());
            // Kept open: a closed channel is no news.
            std::future::pending::<()>().await;
        });
        let mut ticks = Vec::new();
        loop {
            let tick = keepalive(&mut heard, &mut l).await;
            ticks.push((tick, (tokio::time::Instant::now() - t0).as_secs()));
            if tick == Tick::Silent {
                break;
            }
        }
        answer.abort();
        assert_eq!(
            ticks,
            [
                (Tick::Ping, 30),
                (Tick::Ping, 60),
                (Tick::Ping, 90),
                (Tick::Ping, 120),
                (Tick::Ping, 150),
                (Tick::Silent, 170)
            ]
        );
    }

    #[test]
    fn waits_grow_across_losses_of_streams_that_end_at_once() {
        let t = tokio::time::Instant::now();
        let mut r = Reconnect::new(t);
        r.line("heartbeat");
        let mut waits = Vec::new();
        // Each stream opens, heartbeats once and ends: the waits keep growing.
        for i in 0..6u64 {
            r.lost(t + Duration::from_secs(i));
            waits.push(r.wait().as_millis() as u64);
            r.opened(t + Duration::from_secs(i));
            r.line("heartbeat");
            r.line("end");
        }
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000]);
        // A stream that brought a record proved itself: the next loss starts over.
        r.line("record");
        r.lost(t + Duration::from_secs(7));
        assert_eq!(r.wait(), BACKOFF_START);
        // So does one up for 30 s, even with nothing to bring.
        r.wait();
        r.opened(t + Duration::from_secs(10));
        r.line("heartbeat");
        r.lost(t + Duration::from_secs(10) + PROVEN);
        assert_eq!(r.wait(), BACKOFF_START);
    }

    #[test]
    fn a_record_is_sent_once_across_history_and_resumed_streams() {
        let mut sent = Sent::default();
        sent.history.insert("h1".into(), (5, None));
        sent.history.insert("h2".into(), (5, Some(1_000)));
        // The live stream brings a record the history had whole: dropped; one the history
        // read up to its end: its entries from that end on. A resumed stream that repeats
        // its segment brings them again: dropped.
        assert_eq!(sent.due(5, "h1"), Due::Nothing);
        assert_eq!(sent.due(5, "h2"), Due::From(1_000));
        assert_eq!(sent.due(5, "h1"), Due::Nothing);
        assert_eq!(sent.due(5, "h2"), Due::Nothing);
        assert_eq!(sent.due(5, "n1"), Due::All);
        assert_eq!(sent.due(5, "n1"), Due::Nothing);
    }

    #[test]
    fn a_resumed_segment_of_more_than_4096_records_is_not_sent_again() {
        let mut sent = Sent::default();
        // Segment 7 brings 5000 records (the stream's position is 6 meanwhile), then the
        // stream is lost and resumed after 6: the whole segment comes again.
        let ids: Vec<String> = (0..5000).map(|i| format!("r{i}")).collect();
        for pass in 0..2 {
            sent.advance(6);
            for id in &ids {
                let due = sent.due(7, id);
                assert_eq!(due, if pass == 0 { Due::All } else { Due::Nothing }, "{id}");
            }
        }
        // Segment 8 begins: 7 is whole, a resume starts after it; its ids are let go.
        sent.advance(7);
        assert_eq!(sent.due(8, "s0"), Due::All);
        assert_eq!(sent.live.len(), 1);
        assert_eq!(sent.live[&8].len(), 1);
        // A heartbeat after 8: nothing is held.
        sent.advance(8);
        assert!(sent.live.is_empty());
    }

    fn opened(id: &str, segment_id: i64, times: &[i64]) -> super::super::Opened {
        let entries = times
            .iter()
            .map(|&t| logflux_proto::Entry::new(t, logflux_proto::Level::Info, "s", "p").into())
            .collect::<Vec<_>>();
        super::super::Opened {
            record_id: id.into(),
            segment_id,
            app: "web".into(),
            entries: std::sync::Arc::new(entries),
            min_ts: times[0],
            max_ts: times[times.len() - 1],
        }
    }

    #[test]
    fn the_history_remembers_only_records_the_live_stream_can_still_bring() {
        let mut sent = Sent::default();
        // The live stream starts after segment 10; the history ends at 100.
        for i in 0..1000 {
            sent.read_by_history(&opened(&format!("old{i}"), 1 + i % 10, &[50]), 10, 100);
        }
        sent.read_by_history(&opened("whole", 11, &[60, 70]), 10, 100);
        sent.read_by_history(&opened("split", 12, &[90, 110]), 10, 100);
        sent.read_by_history(&opened("never brought", 13, &[95]), 10, 100);
        assert_eq!(
            sent.history.len(),
            3,
            "records of segments up to 10 never come live"
        );
        assert_eq!(sent.due(11, "whole"), Due::Nothing);
        assert_eq!(sent.due(12, "split"), Due::From(100));
        assert_eq!(sent.due(14, "new"), Due::All);
        // Segment 13's record did not match the live stream's tokens (it was never brought):
        // once the stream is past it, it is let go.
        sent.advance(13);
        assert!(sent.history.is_empty());
    }
}
