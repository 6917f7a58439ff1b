//! The local API (PROTOCOL.md §1): NDJSON over a Unix socket (access by file mode) and over
//! TCP (shared-secret authentication first, or the C SDK's secret inside each entry).
//!
//! Replies are one line each and only for pings, authentication, and errors; accepted entries
//! get no reply, so a client reading after a ping never finds anything else first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::{Context as _, bail};
use logflux_proto::ndjson::{self, ErrorCode, Message, ProtocolError};
use logflux_proto::{Secret, limits};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::sync::{Semaphore, watch};

use crate::metrics::{InputLabel, ReasonLabel};
use crate::pipeline::{Intake, Shared};

/// How long a client waits for room in the pipeline before `queue_full`.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Most connections served at once per listener; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16_384;

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

/// Serves one connection until it closes. `secret` is `Some` for TCP.
async fn serve_connection<S>(
    stream: S,
    input: &'static str,
    secret: Option<Arc<Secret>>,
    shared: Arc<Shared>,
    intake: Intake,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut authenticated = secret.is_none();
    let mut line: Vec<u8> = Vec::new();
    // Entries parsed but not yet handed over: passed on in chunks, whenever the socket has no
    // more buffered input and always before a reply (so a pong still means "everything before
    // it was handed over").
    let mut chunk: Vec<logflux_proto::Entry> = Vec::new();
    loop {
        if !chunk.is_empty()
            && (reader.buffer().is_empty() || chunk.len() >= CHUNK_ENTRIES)
            && let Some(e) = flush(&mut chunk, &intake, &shared, input).await
            && write.write_all(&e.to_line()).await.is_err()
        {
            return;
        }
        line.clear();
        // Read one line, never buffering more than the limit.
        let mut too_long = false;
        let eof = loop {
            let buf = tokio::select! {
                r = reader.fill_buf() => match r {
                    Ok(b) => b,
                    Err(_) => {
                        let _ = flush(&mut chunk, &intake, &shared, input).await;
                        return;
                    }
                },
                _ = shutdown.changed() => {
                    let _ = flush(&mut chunk, &intake, &shared, input).await;
                    return;
                }
            };
            if buf.is_empty() {
                break true;
            }
            match memchr::memchr(b'\n', buf) {
                Some(i) => {
                    if !too_long {
                        if line.len() + i > limits::MAX_LINE_BYTES {
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
                        if line.len() + n > limits::MAX_LINE_BYTES {
                            too_long = true;
                            line.clear();
                        } else {
                            line.extend_from_slice(buf);
                        }
                    }
                    reader.consume(n);
                }
            }
        };
        if too_long {
            let e = ndjson::line_too_long(limits::MAX_LINE_BYTES + 1);
            shared
                .metrics
                .entries_rejected
                .get_or_create(&ReasonLabel {
                    reason: reason(e.code),
                })
                .inc();
            log_refusal(&e, input);
            if let Some(q) = flush(&mut chunk, &intake, &shared, input).await {
                let _ = write.write_all(&q.to_line()).await;
            }
            if write.write_all(&e.to_line()).await.is_err() || eof {
                return;
            }
            continue;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if eof {
                if let Some(q) = flush(&mut chunk, &intake, &shared, input).await {
                    let _ = write.write_all(&q.to_line()).await;
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
            Ok(Message::Authenticate { shared_secret }) => match &secret {
                Some(s)
                    if logflux_crypto::constant_time_eq(
                        s.expose().as_bytes(),
                        shared_secret.expose().as_bytes(),
                    ) =>
                {
                    authenticated = true;
                    Some(ndjson::AUTHENTICATED_LINE.to_vec())
                }
                Some(_) => {
                    let e = ProtocolError::new(ErrorCode::AuthFailed, "authentication failed");
                    shared
                        .metrics
                        .entries_rejected
                        .get_or_create(&ReasonLabel {
                            reason: reason(e.code),
                        })
                        .inc();
                    // Entries accepted before this line are still handed over.
                    let _ = flush(&mut chunk, &intake, &shared, input).await;
                    let _ = write.write_all(&e.to_line()).await;
                    return;
                }
                // On the Unix socket the file mode is the access control.
                None => Some(ndjson::AUTHENTICATED_LINE.to_vec()),
            },
            Ok(Message::Entries(m)) => {
                if !authenticated {
                    // The C SDK sends its secret inside every entry instead.
                    let ok = match (&secret, &m.shared_secret) {
                        (Some(s), Some(given)) => logflux_crypto::constant_time_eq(
                            s.expose().as_bytes(),
                            given.expose().as_bytes(),
                        ),
                        _ => false,
                    };
                    if !ok {
                        let e = if m.shared_secret.is_some() {
                            ProtocolError::new(ErrorCode::AuthFailed, "authentication failed")
                        } else {
                            ProtocolError::new(
                                ErrorCode::AuthRequired,
                                "authenticate first: {\"action\":\"authenticate\",\"shared_secret\":\"…\"}",
                            )
                        };
                        shared
                            .metrics
                            .entries_rejected
                            .get_or_create(&ReasonLabel {
                                reason: reason(e.code),
                            })
                            .inc_by((m.entries.len() + m.rejected.len()) as u64);
                        let _ = write.write_all(&e.to_line()).await;
                        return;
                    }
                    authenticated = true;
                }
                for (_, e) in &m.rejected {
                    shared
                        .metrics
                        .entries_rejected
                        .get_or_create(&ReasonLabel {
                            reason: reason(e.code),
                        })
                        .inc();
                }
                let error = m.error_reply();
                if let Some(e) = &error {
                    log_refusal(e, input);
                }
                chunk.extend(m.entries);
                error.map(|e| e.to_line())
            }
            Err(e) => {
                shared
                    .metrics
                    .entries_rejected
                    .get_or_create(&ReasonLabel {
                        reason: reason(e.code),
                    })
                    .inc();
                log_refusal(&e, input);
                Some(e.to_line())
            }
        };
        if let Some(r) = reply {
            if let Some(e) = flush(&mut chunk, &intake, &shared, input).await
                && write.write_all(&e.to_line()).await.is_err()
            {
                return;
            }
            if write.write_all(&r).await.is_err() {
                return;
            }
        }
        if eof {
            if let Some(e) = flush(&mut chunk, &intake, &shared, input).await {
                let _ = write.write_all(&e.to_line()).await;
            }
            return;
        }
    }
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
            shared
                .metrics
                .entries_received
                .get_or_create(&InputLabel { input })
                .inc_by(n);
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

/// What the accept loop needs of a listener.
trait Listener: Send + Sync + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept_one(&self)
    -> impl std::future::Future<Output = std::io::Result<Self::Stream>> + Send;
}

impl Listener for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept_one(&self) -> std::io::Result<Self::Stream> {
        self.accept().await.map(|(s, _)| s)
    }
}

impl Listener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept_one(&self) -> std::io::Result<Self::Stream> {
        let (s, _) = self.accept().await?;
        let _ = s.set_nodelay(true);
        Ok(s)
    }
}

/// Accepts connections until shutdown, at most `MAX_CONNECTIONS` served at once.
async fn serve<L: Listener>(
    listener: L,
    input: &'static str,
    secret: Option<Arc<Secret>>,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut stop = shutdown.clone();
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore open"),
            _ = stop.changed() => break,
        };
        let stream = tokio::select! {
            r = listener.accept_one() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(input, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let (shared, intake, sd, secret) = (
            shared.clone(),
            intake.clone(),
            shutdown.clone(),
            secret.clone(),
        );
        tokio::spawn(async move {
            serve_connection(stream, input, secret, shared, intake, sd).await;
            drop(permit);
        });
    }
}

/// Serves the Unix socket until shutdown, then removes it.
pub(crate) async fn serve_unix(
    listener: tokio::net::UnixListener,
    path: PathBuf,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) {
    serve(listener, "unix", None, shared, intake, shutdown).await;
    let _ = std::fs::remove_file(&path);
}

/// Serves TCP until shutdown.
pub(crate) async fn serve_tcp(
    listener: tokio::net::TcpListener,
    secret: Arc<Secret>,
    shared: Arc<Shared>,
    intake: Intake,
    shutdown: watch::Receiver<bool>,
) {
    serve(listener, "tcp", Some(secret), shared, intake, shutdown).await;
}
