//! The local API (PROTOCOL.md §1): NDJSON over a Unix socket (access by file mode) and over
//! TCP (shared-secret authentication first, or the C SDK's secret inside each entry).
//!
//! Replies are one line each and only for pings, flushes, authentication, and errors; accepted
//! entries get no reply, so a client reading after a ping never finds anything else first.

mod gate;

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use logflux_proto::ndjson::{self, ErrorCode, Message, ProtocolError};
use logflux_proto::{Secret, limits};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf as IoBuf};
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::time::Instant;

use crate::metrics::{InputLabel, ReasonLabel};
use crate::pipeline::{Intake, Shared};

use gate::{Gate, Refusal, TcpLimits, Ticket};

/// How long a client waits for room in the pipeline before `queue_full`.
const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Longest line read before a TCP connection authenticates. The `authenticate` message is
/// under 200 bytes; the C SDK authenticates with the secret inside an entry, on lines it
/// truncates at 4 096 bytes.
const PRE_AUTH_MAX_LINE: usize = 8 * 1024;

/// Read buffer of a connection not yet authenticated, and of one that is.
const PRE_AUTH_READ_BUF: usize = 4 * 1024;
const READ_BUF: usize = 64 * 1024;

/// A line buffer grown past this by a long line is released once the line is handled.
const LINE_KEEP: usize = 64 * 1024;

/// Entry bytes gathered before they are handed over, at most (besides `CHUNK_ENTRIES`).
const CHUNK_BYTES: usize = 1024 * 1024;

/// After an error that closes the connection, input still arriving is read and dropped for at
/// most this long (and this much), so the client reads the error line instead of a reset.
const LINGER: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 256 * 1024;

/// What a connection is allowed.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    /// From connecting to authenticating (TCP).
    auth_timeout: Duration,
    /// With nothing received for this long, an authenticated connection is closed.
    idle_timeout: Option<Duration>,
}

fn reason(code: ErrorCode) -> &'static str {
    code.as_str()
}

/// Logs refused lines at most once a second (SDKs do not read error replies).
fn log_refusal(e: &ProtocolError, input: &'static str) {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = logflux_proto::timefmt::now_ns() / 1_000_000_000;
    if LAST.swap(now, Ordering::Relaxed) != now {
        tracing::warn!(input, code = e.code.as_str(), message = %e.message, "refused a line (logged at most once a second; see metrics)");
    }
}

/// The connections being served (Unix socket and TCP), numbered in accept order, each with
/// whether its last read found nothing waiting — then everything it was sent so far has been
/// read and handed over. A `flush` waits, briefly, for the connections accepted before it to
/// get there, so entries a client wrote and closed just before are part of it.
#[derive(Debug)]
pub(crate) struct Connections {
    next: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<AtomicBool>>>,
    /// Flushes waiting; readers signal `changed` only while there are some.
    waiters: AtomicUsize,
    changed: watch::Sender<u64>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            next: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            waiters: AtomicUsize::new(0),
            changed: watch::channel(0).0,
        }
    }
}

/// How long a flush waits for the connections accepted before it to read what they were sent
/// (a client flooding without pause never gets there; the flush then goes ahead).
const FLUSH_DRAIN_WAIT: Duration = Duration::from_secs(1);

impl Connections {
    /// Numbers a connection just accepted; it counts as open until the guard is dropped.
    fn register(self: &Arc<Self>) -> ConnGuard {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let drained = Arc::new(AtomicBool::new(false));
        self.open
            .lock()
            .expect("connections lock")
            .insert(seq, drained.clone());
        ConnGuard {
            conns: self.clone(),
            seq,
            drained,
        }
    }

    fn signal(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    fn drained_before(&self, seq: u64) -> bool {
        self.open
            .lock()
            .expect("connections lock")
            .range(..seq)
            .all(|(_, d)| d.load(Ordering::SeqCst))
    }

    /// Waits (at most `FLUSH_DRAIN_WAIT`) until every connection accepted before `seq` has
    /// read all it was sent, or closed.
    async fn wait_drained_before(&self, seq: u64) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut rx = self.changed.subscribe();
        let _ = tokio::time::timeout(FLUSH_DRAIN_WAIT, async {
            while !self.drained_before(seq) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection's place among the open ones.
struct ConnGuard {
    conns: Arc<Connections>,
    seq: u64,
    drained: Arc<AtomicBool>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conns
            .open
            .lock()
            .expect("connections lock")
            .remove(&self.seq);
        self.conns.signal();
    }
}

/// A stream that records whether its last read found nothing waiting (see `Connections`).
struct Tracked<S> {
    inner: S,
    drained: Arc<AtomicBool>,
    conns: Arc<Connections>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut IoBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if r.is_pending() {
            if !this.drained.swap(true, Ordering::SeqCst) {
                this.conns.signal();
            }
        } else {
            this.drained.store(false, Ordering::SeqCst);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A connection being served, with what it is allowed.
struct Conn {
    input: &'static str,
    /// `Some` for TCP: the shared secret it must present.
    secret: Option<Arc<Secret>>,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
    limits: ConnLimits,
    /// Its place at the TCP gate, and the signal that evicts it while unauthenticated.
    ticket: Option<Ticket>,
    evict: Option<oneshot::Receiver<()>>,
    /// Its place among the open connections (for `flush`).
    guard: ConnGuard,
}

impl Conn {
    /// Counts the connection as authenticated; refused when the gate is full (counted there)
    /// or when it was evicted meanwhile.
    fn authenticate(&mut self) -> Result<(), Refusal> {
        if let Some(t) = &mut self.ticket {
            t.authenticate()?;
        }
        self.evict = None;
        Ok(())
    }

    fn refused(&self, reason: &'static str) {
        self.shared
            .metrics
            .tcp_connections_refused
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    fn rejected(&self, code: ErrorCode, n: u64) {
        self.shared
            .metrics
            .entries_rejected
            .get_or_create(&ReasonLabel {
                reason: reason(code),
            })
            .inc_by(n);
    }
}

/// A read buffer that stays small until its connection authenticates, and is released with it.
struct ReadBuf<R> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    cap: usize,
}

impl<R: AsyncRead + Unpin> ReadBuf<R> {
    fn new(inner: R, cap: usize) -> Self {
        ReadBuf {
            inner,
            buf: Vec::new(),
            pos: 0,
            cap,
        }
    }

    /// The buffered input, reading more when none is left; empty at the end of the stream.
    /// Cancel-safe (nothing is read when the future is dropped).
    async fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.buf.reserve_exact(self.cap);
            self.inner.read_buf(&mut self.buf).await?;
        }
        Ok(&self.buf[self.pos..])
    }

    fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Drops `n` buffered bytes (`usize::MAX`: all of them).
    fn consume(&mut self, n: usize) {
        self.pos = self.pos.saturating_add(n).min(self.buf.len());
    }

    fn set_capacity(&mut self, cap: usize) {
        self.cap = cap;
    }
}

/// Writes a reply, giving up at the deadline or when the agent stops (a client that never
/// reads is dropped; without an idle timeout it has no deadline, and would otherwise hold the
/// connection, its intake and so the agent's stop until `shutdown_timeout_s`). A reply that
/// fits in the socket's buffer is written even while stopping. Callers hand their entries over
/// before replying, so giving up loses none.
async fn send<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    deadline: Option<Instant>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        biased;
        written = write_by(w, bytes, deadline) => written,
        () = stop_signalled(stop) => false,
    }
}

/// Writes `bytes`, giving up at the deadline.
async fn write_by<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    deadline: Option<Instant>,
) -> bool {
    match deadline {
        Some(d) => matches!(
            tokio::time::timeout_at(d, w.write_all(bytes)).await,
            Ok(Ok(()))
        ),
        None => w.write_all(bytes).await.is_ok(),
    }
}

/// Writes a last error line, ends the output, and reads and drops what the client still sends
/// for a moment, so the client reads the error instead of a connection reset.
async fn close_with<R, W>(reader: &mut ReadBuf<R>, write: &mut W, error: &ProtocolError)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let until = Instant::now() + LINGER;
    if !write_by(write, &error.to_line(), Some(until)).await {
        return;
    }
    let _ = tokio::time::timeout_at(until, write.shutdown()).await;
    reader.consume(usize::MAX);
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(until, reader.fill_buf()).await {
            Ok(Ok(b)) if !b.is_empty() => {
                let n = b.len();
                drained += n;
                reader.consume(n);
            }
            _ => return,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the gate evicts the connection; never once it is authenticated.
async fn evicted(rx: &mut Option<oneshot::Receiver<()>>) {
    if let Some(r) = rx {
        if r.await.is_ok() {
            return;
        }
        // The gate is gone (shutting down): the shutdown signal ends the connection.
        *rx = None;
    }
    std::future::pending().await
}

/// Serves one connection until it closes.
///
/// Before a TCP connection authenticates, it has `auth_timeout` from connecting, lines of at
/// most `PRE_AUTH_MAX_LINE` bytes and a small read buffer; after, an idle timeout and full-size
/// lines. Replies are written within the same deadlines.
async fn serve_connection<S>(stream: S, mut c: Conn)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let stream = Tracked {
        inner: stream,
        drained: c.guard.drained.clone(),
        conns: c.guard.conns.clone(),
    };
    let (read, mut write) = tokio::io::split(stream);
    let mut authenticated = c.secret.is_none();
    let mut reader = ReadBuf::new(
        read,
        if authenticated {
            READ_BUF
        } else {
            PRE_AUTH_READ_BUF
        },
    );
    let auth_deadline = Instant::now() + c.limits.auth_timeout;
    let mut last_input = Instant::now();
    let idle_timeout = c.limits.idle_timeout;
    let deadline = |authenticated: bool, last_input: Instant| {
        if authenticated {
            idle_timeout.map(|t| last_input + t)
        } else {
            Some(auth_deadline)
        }
    };
    let mut line: Vec<u8> = Vec::new();
    // Entries parsed but not yet handed over: passed on in chunks, whenever the socket has no
    // more buffered input and always before a reply (so a pong still means "everything before
    // it was handed over").
    let mut chunk: Vec<logflux_proto::Entry> = Vec::new();
    let mut chunk_bytes = 0;
    // Set once a flush saw the agent stopping: the stop signal's change was taken by the
    // flush's wait, so the buffered path below no longer notices it by `has_changed`.
    let mut stopping = false;
    loop {
        if !chunk.is_empty()
            && (reader.buffer().is_empty()
                || chunk.len() >= CHUNK_ENTRIES
                || chunk_bytes >= CHUNK_BYTES)
        {
            chunk_bytes = 0;
            if let Some(e) = flush(&mut chunk, &c.intake, &c.shared, c.input).await
                && !send(
                    &mut write,
                    &e.to_line(),
                    deadline(authenticated, last_input),
                    &mut c.shutdown,
                )
                .await
            {
                return;
            }
        }
        // A long line's buffer is not kept for the life of the connection.
        if line.capacity() > LINE_KEEP {
            line = Vec::new();
        } else {
            line.clear();
        }
        let max_line = if authenticated {
            limits::MAX_LINE_BYTES
        } else {
            PRE_AUTH_MAX_LINE
        };
        // Read one line, never buffering more than the limit.
        let mut too_long = false;
        let eof = loop {
            // Before waiting for the rest of a line, the whole lines before it are handed over
            // (a read that finds nothing marks the connection drained for `flush`).
            if !chunk.is_empty() && reader.buffer().is_empty() {
                chunk_bytes = 0;
                if let Some(e) = flush(&mut chunk, &c.intake, &c.shared, c.input).await
                    && !send(
                        &mut write,
                        &e.to_line(),
                        deadline(authenticated, last_input),
                        &mut c.shutdown,
                    )
                    .await
                {
                    return;
                }
            }
            // Input already buffered is taken without a wait: no timer, shutdown or eviction
            // future is set up per line (they were ~3 % of the agent's CPU on the socket path:
            // docs/benchmarks.md, issue 18 round 7). A shutdown is still looked at per line
            // (one atomic load), and the rest after at most one read's `READ_BUF` bytes.
            let buf = if !reader.buffer().is_empty()
                && !stopping
                && matches!(c.shutdown.has_changed(), Ok(false))
            {
                // Each line counts as input when it is taken, as one read from the socket
                // does: time spent on earlier lines of the buffer (a flush waiting for room)
                // does not run down the idle timeout or a reply's deadline.
                last_input = Instant::now();
                reader.buffer()
            } else {
                let buf = tokio::select! {
                    r = reader.fill_buf() => match r {
                        Ok(b) => b,
                        Err(_) => {
                            let _ = flush(&mut chunk, &c.intake, &c.shared, c.input).await;
                            return;
                        }
                    },
                    () = stop_signalled(&mut c.shutdown) => {
                        let _ = flush(&mut chunk, &c.intake, &c.shared, c.input).await;
                        return;
                    }
                    () = sleep_until(deadline(authenticated, last_input)) => {
                        let _ = flush(&mut chunk, &c.intake, &c.shared, c.input).await;
                        if authenticated {
                            c.shared
                                .metrics
                                .connections_idle_closed
                                .get_or_create(&InputLabel { input: c.input })
                                .inc();
                        } else {
                            c.refused("auth_timeout");
                            let e = ProtocolError::new(
                                ErrorCode::AuthRequired,
                                format!(
                                    "not authenticated within {} ms of connecting",
                                    c.limits.auth_timeout.as_millis()
                                ),
                            );
                            close_with(&mut reader, &mut write, &e).await;
                        }
                        return;
                    }
                    // Counted by the gate.
                    () = evicted(&mut c.evict) => return,
                };
                if buf.is_empty() {
                    break true;
                }
                last_input = Instant::now();
                buf
            };
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    if !too_long {
                        if line.len() + i > max_line {
                            too_long = true;
                        } else {
                            line.extend_from_slice(&buf[..i]);
                        }
                    }
                    reader.consume(i + 1);
                    break false;
                }
                None => {
                    let n = buf.len();
                    if !too_long {
                        if line.len() + n > max_line {
                            too_long = true;
                            line.clear();
                        } else {
                            line.extend_from_slice(buf);
                        }
                    }
                    reader.consume(n);
                    if too_long && !authenticated {
                        // Not read to its end: the connection closes.
                        break false;
                    }
                }
            }
        };
        if too_long && !authenticated {
            c.rejected(ErrorCode::LineTooLong, 1);
            c.refused("pre_auth_line_too_long");
            let e = ProtocolError::new(
                ErrorCode::LineTooLong,
                format!(
                    "a line before authentication is limited to {PRE_AUTH_MAX_LINE} bytes; \
                     authenticate first: {{\"action\":\"authenticate\",\"shared_secret\":\"…\"}}"
                ),
            );
            close_with(&mut reader, &mut write, &e).await;
            return;
        }
        let deadline = deadline(authenticated, last_input);
        if too_long {
            let e = ndjson::line_too_long(limits::MAX_LINE_BYTES + 1);
            c.rejected(e.code, 1);
            log_refusal(&e, c.input);
            if let Some(q) = flush(&mut chunk, &c.intake, &c.shared, c.input).await {
                let _ = send(&mut write, &q.to_line(), deadline, &mut c.shutdown).await;
            }
            chunk_bytes = 0;
            if !send(&mut write, &e.to_line(), deadline, &mut c.shutdown).await || eof {
                return;
            }
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if eof {
                if let Some(q) = flush(&mut chunk, &c.intake, &c.shared, c.input).await {
                    let _ = send(&mut write, &q.to_line(), deadline, &mut c.shutdown).await;
                }
                return;
            }
            continue;
        }
        let reply: Option<Vec<u8>> = match ndjson::parse_line(
            &line,
            logflux_proto::timefmt::now_ns(),
        ) {
            Ok(Message::Ping) => Some(ndjson::PONG_LINE.to_vec()),
            Ok(Message::Flush) if !authenticated => {
                c.refused("auth_required");
                let e = ProtocolError::new(
                    ErrorCode::AuthRequired,
                    "authenticate first: {\"action\":\"authenticate\",\"shared_secret\":\"…\"}",
                );
                close_with(&mut reader, &mut write, &e).await;
                return;
            }
            // This connection's entries go first; then everything handed over is sealed,
            // spooled and delivered before the reply.
            Ok(Message::Flush) => {
                chunk_bytes = 0;
                match flush(&mut chunk, &c.intake, &c.shared, c.input).await {
                    Some(e) => Some(e.to_line()),
                    None => {
                        let r = deliver_all(&c.shared, &c.intake, &mut c.shutdown, &c.guard).await;
                        stopping = *c.shutdown.borrow();
                        Some(match r {
                            Ok(()) => ndjson::FLUSHED_LINE.to_vec(),
                            Err(e) => e.to_line(),
                        })
                    }
                }
            }
            Ok(Message::Authenticate { shared_secret }) => match &c.secret {
                Some(s)
                    if logflux_crypto::constant_time_eq(
                        s.expose().as_bytes(),
                        shared_secret.expose().as_bytes(),
                    ) =>
                {
                    if c.authenticate().is_err() {
                        let _ = flush(&mut chunk, &c.intake, &c.shared, c.input).await;
                        close_with(&mut reader, &mut write, &too_many()).await;
                        return;
                    }
                    authenticated = true;
                    reader.set_capacity(READ_BUF);
                    Some(ndjson::AUTHENTICATED_LINE.to_vec())
                }
                Some(_) => {
                    let e = ProtocolError::new(ErrorCode::AuthFailed, "authentication failed");
                    c.rejected(e.code, 1);
                    c.refused("auth_failed");
                    // Entries accepted before this line are still handed over.
                    let _ = flush(&mut chunk, &c.intake, &c.shared, c.input).await;
                    close_with(&mut reader, &mut write, &e).await;
                    return;
                }
                // On the Unix socket the file mode is the access control.
                None => Some(ndjson::AUTHENTICATED_LINE.to_vec()),
            },
            Ok(Message::Entries(m)) => {
                if !authenticated {
                    // The C SDK sends its secret inside every entry instead.
                    let ok = match (&c.secret, &m.shared_secret) {
                        (Some(s), Some(given)) => logflux_crypto::constant_time_eq(
                            s.expose().as_bytes(),
                            given.expose().as_bytes(),
                        ),
                        _ => false,
                    };
                    if !ok {
                        let e = if m.shared_secret.is_some() {
                            c.refused("auth_failed");
                            ProtocolError::new(ErrorCode::AuthFailed, "authentication failed")
                        } else {
                            ProtocolError::new(
                                ErrorCode::AuthRequired,
                                "authenticate first: {\"action\":\"authenticate\",\"shared_secret\":\"…\"}",
                            )
                        };
                        c.rejected(e.code, (m.entries.len() + m.rejected.len()) as u64);
                        close_with(&mut reader, &mut write, &e).await;
                        return;
                    }
                    if c.authenticate().is_err() {
                        c.rejected(ErrorCode::Unavailable, m.entries.len() as u64);
                        close_with(&mut reader, &mut write, &too_many()).await;
                        return;
                    }
                    authenticated = true;
                    reader.set_capacity(READ_BUF);
                }
                for (_, e) in &m.rejected {
                    c.rejected(e.code, 1);
                }
                let error = m.error_reply();
                if let Some(e) = &error {
                    log_refusal(e, c.input);
                }
                chunk_bytes += line.len();
                chunk.extend(m.entries);
                error.map(|e| e.to_line())
            }
            Err(e) => {
                c.rejected(e.code, 1);
                log_refusal(&e, c.input);
                Some(e.to_line())
            }
        };
        if let Some(r) = reply {
            chunk_bytes = 0;
            if let Some(e) = flush(&mut chunk, &c.intake, &c.shared, c.input).await
                && !send(&mut write, &e.to_line(), deadline, &mut c.shutdown).await
            {
                return;
            }
            if !send(&mut write, &r, deadline, &mut c.shutdown).await {
                return;
            }
        }
        if eof {
            if let Some(e) = flush(&mut chunk, &c.intake, &c.shared, c.input).await {
                let _ = send(&mut write, &e.to_line(), deadline, &mut c.shutdown).await;
            }
            return;
        }
    }
}

/// The reply to a connection that authenticates when `max_connections` are served already.
fn too_many() -> ProtocolError {
    ProtocolError::new(
        ErrorCode::Unavailable,
        "the agent serves its maximum of authenticated connections (inputs.tcp.max_connections); retry later",
    )
}

/// How long a `flush` waits for the server to acknowledge what it sealed.
const FLUSH_WAIT: Duration = Duration::from_secs(30);

/// Returns once the agent is stopping (at once if it already is), or its stop signal is gone.
/// A connection looks at the signal in two places (its read loop and a flush's wait), so it
/// waits for the value, not for a change: `changed()` would have told only the first of them,
/// and the read loop would then have waited for its client to close, holding the stop up
/// until `shutdown_timeout_s`.
async fn stop_signalled(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The `flush` action: seals what the agent holds now (everything handed over before, from
/// any input), and waits until the server has acknowledged everything in the spool up to it —
/// at most `FLUSH_WAIT`, then says why not (what was sealed stays in the spool and is
/// delivered later, as always).
async fn deliver_all(
    shared: &Arc<Shared>,
    intake: &Intake,
    shutdown: &mut watch::Receiver<bool>,
    this: &ConnGuard,
) -> Result<(), ProtocolError> {
    let stopping = || ProtocolError::new(ErrorCode::Unavailable, "the agent is stopping");
    // The spool's head also passes records that were dead-lettered (the server refused them)
    // and the sealer's acknowledgement also covers entries it dropped: neither reached the
    // server, so a rise of either while flushing is an error, not "flushed".
    let dead_before = shared.metrics.records_dead_lettered.get();
    let dropped_before = shared.metrics.entries_dropped.get();
    // How far the flush got, for the reply when time runs out.
    let sealed = std::sync::atomic::AtomicBool::new(false);
    let wait = async {
        // What the connections accepted before this one were sent goes first.
        this.conns.wait_drained_before(this.seq).await;
        let spooled = intake.flush().await.map_err(|_| stopping())?;
        spooled.await.map_err(|_| stopping())?;
        sealed.store(true, std::sync::atomic::Ordering::Relaxed);
        let s = shared.clone();
        let end = tokio::task::spawn_blocking(move || s.spool.lock().expect("lock").end())
            .await
            .map_err(|_| stopping())?;
        let mut head = shared.head.subscribe();
        head.wait_for(|h| *h >= end).await.map_err(|_| stopping())?;
        Ok(())
    };
    let r = tokio::select! {
        r = tokio::time::timeout(FLUSH_WAIT, wait) => r.unwrap_or_else(|_| {
            let last = shared.status.lock().expect("lock").last_error.clone();
            let what = if sealed.load(std::sync::atomic::Ordering::Relaxed) {
                "sealed and spooled, but the server has not acknowledged everything"
            } else {
                "not everything could be sealed and spooled (the spool is full or the agent is busy)"
            };
            Err(ProtocolError::new(
                ErrorCode::Unavailable,
                format!(
                    "{what} within {} s (last delivery error: {}); the agent keeps retrying",
                    FLUSH_WAIT.as_secs(),
                    last.as_deref().unwrap_or("none")
                ),
            ))
        }),
        () = stop_signalled(shutdown) => Err(stopping()),
    };
    r?;
    let dead = shared.metrics.records_dead_lettered.get() - dead_before;
    let dropped = shared.metrics.entries_dropped.get() - dropped_before;
    if dead > 0 || dropped > 0 {
        let last = shared.status.lock().expect("lock").last_error.clone();
        return Err(ProtocolError::new(
            ErrorCode::Unavailable,
            format!(
                "not everything reached the server: {dead} records were refused by it and moved \
                 to the dead-letter directory, {dropped} entries were dropped (last error: {}); \
                 see logflux-agent status",
                last.as_deref().unwrap_or("none")
            ),
        ));
    }
    Ok(())
}

/// Entries handed over per chunk, at most.
const CHUNK_ENTRIES: usize = 512;

/// Hands the chunk to the sealer; the `queue_full` error to reply when there is no room.
async fn flush(
    chunk: &mut Vec<logflux_proto::Entry>,
    intake: &Intake,
    shared: &Shared,
    input: &'static str,
) -> Option<ProtocolError> {
    if chunk.is_empty() {
        return None;
    }
    let entries = std::mem::take(chunk);
    let n = entries.len() as u64;
    match intake.send(entries, QUEUE_WAIT).await {
        Ok(()) => {
            shared.metrics.received(input, n);
            None
        }
        Err(_) => {
            shared
                .metrics
                .entries_rejected
                .get_or_create(&ReasonLabel {
                    reason: "queue_full",
                })
                .inc_by(n);
            Some(ProtocolError::new(
                ErrorCode::QueueFull,
                "the agent's spool is full; retry later",
            ))
        }
    }
}

/// Binds the Unix socket: a stale socket file (no one listening) is replaced; a live one is an
/// error (another agent runs); anything else at the path is left alone.
pub(crate) async fn bind_unix(path: &Path, mode: u32) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            );
        }
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            bail!(
                "{} is in use: another agent is listening on it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))?;
    Ok(listener)
}

/// Serves the Unix socket until shutdown, then removes it. The socket's file mode decides who
/// connects; at most `max_connections` are served at once, more wait in the listen backlog.
pub(crate) async fn serve_unix(
    listener: tokio::net::UnixListener,
    cfg: crate::config::UnixSection,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) {
    let limits = ConnLimits {
        auth_timeout: Duration::ZERO,
        idle_timeout: idle(cfg.idle_timeout_s),
    };
    let permits = Arc::new(Semaphore::new(cfg.max_connections));
    let mut stop = shutdown.clone();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore open"),
            _ = stop.changed() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(input = "unix", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let conn = Conn {
            input: "unix",
            secret: None,
            shared: shared.clone(),
            intake: intake.clone(),
            shutdown: shutdown.clone(),
            limits,
            ticket: None,
            evict: None,
            guard: shared.connections.register(),
        };
        tokio::spawn(async move {
            serve_connection(stream, conn).await;
            drop(permit);
        });
    }
    let _ = std::fs::remove_file(&cfg.path);
}

fn idle(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// Serves TCP until shutdown. Every connection passes the gate (`gate.rs`): unauthenticated
/// ones are capped with the oldest evicted, authenticated ones capped apart, non-loopback
/// peers capped per address.
pub(crate) async fn serve_tcp(
    listener: tokio::net::TcpListener,
    cfg: crate::config::TcpSection,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) {
    let secret = Arc::new(Secret::new(cfg.shared_secret.clone()));
    let limits = ConnLimits {
        auth_timeout: Duration::from_millis(cfg.auth_timeout_ms),
        idle_timeout: idle(cfg.idle_timeout_s),
    };
    let gate = Gate::new(
        TcpLimits {
            max_connections: cfg.max_connections,
            max_unauthenticated: cfg.max_unauthenticated,
            max_per_peer: cfg.max_connections_per_peer,
        },
        shared.metrics.tcp_connections_refused.clone(),
        shared.metrics.tcp_connections.clone(),
    );
    let mut stop = shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(input = "tcp", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        // Refused connections are dropped at once (and counted by the gate).
        let Ok((ticket, evict)) = gate.admit(peer.ip().to_canonical()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Dead peers (a crashed host, a cut network) are found by keepalive probes and their
        // slots released, without closing live clients that are merely quiet.
        let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(
            &socket2::TcpKeepalive::new()
                .with_time(Duration::from_secs(60))
                .with_interval(Duration::from_secs(10))
                .with_retries(6),
        );
        let conn = Conn {
            input: "tcp",
            secret: Some(secret.clone()),
            shared: shared.clone(),
            intake: intake.clone(),
            shutdown: shutdown.clone(),
            limits,
            ticket: Some(ticket),
            evict: Some(evict),
            guard: shared.connections.register(),
        };
        tokio::spawn(serve_connection(stream, conn));
    }
}

#[cfg(test)]
mod tests {
    use super::ReadBuf;

    #[tokio::test]
    async fn consuming_everything_empties_the_buffer() {
        let mut r = ReadBuf::new(&b"authenticate-me-please"[..], 8);
        assert_eq!(r.fill_buf().await.expect("read"), b"authenti");
        r.consume(3);
        assert_eq!(r.buffer(), b"henti");
        // What an error close does: drop whatever is buffered, however much.
        r.consume(usize::MAX);
        assert!(r.buffer().is_empty());
        assert_eq!(r.fill_buf().await.expect("read"), b"cate-me-");
    }
}
