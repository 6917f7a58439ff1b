//! The live stream of new entries (`POST /v1/tail`), shared by `logflux tail -f` and
//! `logflux tui`: it resumes after the last segment seen when the stream stalls or the server
//! ends it (with backoff while the server is away), shows each record once (a reconnect
//! resumes one segment back, and records already listed by the history query are skipped),
//! and decrypts what arrives.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use logflux_proto::EntryView;
use logflux_proto::query::TailRequest;

use crate::api::{Line, Lines, StatusError};
use crate::fetch::{Mapper, Opened, Session};

/// A live stream without a line for this long is dead (the server sends heartbeats every
/// 15 s).
pub(crate) const TAIL_STALL: Duration = Duration::from_secs(45);

/// Live records remembered to skip their repeats after a reconnect.
const LIVE_SEEN: usize = 4096;

/// Opens the live stream, resuming after `after` when given.
pub(crate) async fn open_tail(session: &Session, after: Option<i64>) -> anyhow::Result<Lines> {
    session
        .api
        .stream(
            "/v1/tail",
            &TailRequest {
                applications: session.applications.clone(),
                entry_types: session.entry_types.clone(),
                tokens: session.tokens.clone(),
                after_segment: after,
            },
        )
        .await
}

/// Reopens the live stream after `after`, retrying with backoff while the server is away;
/// a refusal (bad token, unknown application) ends it. Each retry is told to `notice`.
pub(crate) async fn reconnect(
    session: &Session,
    after: Option<i64>,
    notice: &mut (dyn FnMut(String) + Send),
) -> anyhow::Result<Lines> {
    let mut wait = Duration::from_millis(250);
    loop {
        tokio::time::sleep(wait).await;
        match open_tail(session, after).await {
            Ok(l) => return Ok(l),
            Err(e) if StatusError::is_final(&e) => return Err(e),
            Err(e) => {
                wait = (wait * 2).min(Duration::from_secs(10));
                notice(format!("server unreachable, retrying in {wait:?}: {e:#}"));
            }
        }
    }
}

/// Which records were shown, by the history query and by the live stream: each is shown
/// once. Shared by the live stream and a history query that runs alongside it.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Records the history query listed.
    listed: HashSet<String>,
    /// Live records already shown, the most recent ones.
    live: VecDeque<String>,
}

impl Ledger {
    /// The history query lists a record: whether to show it (the live stream did not);
    /// remembered either way.
    pub(crate) fn list(&mut self, record_id: &str) -> bool {
        if self.live.iter().any(|r| r == record_id) {
            return false;
        }
        self.listed.insert(record_id.to_owned());
        true
    }

    /// A live record: whether to show it (neither listed nor shown live before).
    fn take_live(&mut self, record_id: &str) -> bool {
        if self.listed.contains(record_id) || self.live.iter().any(|r| r == record_id) {
            return false;
        }
        self.live.push_back(record_id.to_owned());
        if self.live.len() > LIVE_SEEN {
            self.live.pop_front();
        }
        true
    }
}

/// A shared [`Ledger`].
pub(crate) type SharedLedger = Arc<Mutex<Ledger>>;

/// An open live stream and what it has shown.
pub(crate) struct Live {
    session: Session,
    lines: Lines,
    /// The segment to resume after.
    after: Option<i64>,
    ledger: SharedLedger,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").field("after", &self.after).finish()
    }
}

impl Live {
    /// Opens the stream. Open it before the history query, so that nothing committed between
    /// the two is missed; then tell it the history's records with [`Live::listed`].
    pub(crate) async fn open(session: &Session) -> anyhow::Result<Live> {
        Ok(Live {
            lines: open_tail(session, None).await?,
            session: session.clone(),
            after: None,
            ledger: SharedLedger::default(),
        })
    }

    /// Records the history query listed: not shown again when they come live.
    pub(crate) fn listed<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) {
        if let Ok(mut l) = self.ledger.lock() {
            for id in ids {
                l.list(id);
            }
        }
    }

    /// The ledger of shown records, for a history query that runs alongside.
    pub(crate) fn ledger(&self) -> SharedLedger {
        self.ledger.clone()
    }

    /// The next decrypted entries (oldest first, with the records that failed), reconnecting
    /// as needed; `notice` hears why the stream was interrupted and each retry. An error is
    /// final: the token is no longer valid, or the server refuses the stream.
    pub(crate) async fn next(
        &mut self,
        notice: &mut (dyn FnMut(String) + Send),
    ) -> anyhow::Result<Opened<EntryView>> {
        let identity: Mapper<EntryView> = Arc::new(|e| e);
        loop {
            let next = tokio::time::timeout(TAIL_STALL, self.lines.next()).await;
            let line = match next {
                Ok(Ok(Some(l))) => l,
                Err(_) => {
                    self.resume(notice, "no heartbeat from the server").await?;
                    continue;
                }
                Ok(Ok(None)) => {
                    self.resume(notice, "the server ended it").await?;
                    continue;
                }
                Ok(Err(e)) => {
                    self.resume(notice, &format!("{e:#}")).await?;
                    continue;
                }
            };
            let l: Line = line.parse().context("a malformed line from the server")?;
            if let Some(a) = l.after_segment {
                self.after = Some(self.after.map_or(a, |x| x.max(a)));
            }
            match l.kind.as_str() {
                "end" => {
                    let reason = l.reason.as_deref().unwrap_or("unknown");
                    if matches!(reason, "token_revoked" | "token_expired") {
                        // Reconnecting cannot help: the token is no longer valid.
                        bail!("the server ended the live stream ({reason}): {}", l.message);
                    }
                    // slow_consumer, shutdown, unavailable: resume where this stream got to.
                    notice(format!(
                        "the server ended the live stream ({reason}: {}); reconnecting",
                        l.message
                    ));
                    self.lines = reconnect(&self.session, self.after, notice).await?;
                    notice("live stream resumed".to_owned());
                }
                // A segment the server cannot read: named, counted, not waited for.
                "damaged" => return self.session.open_records(vec![l], &identity).await,
                "record" => {
                    let resume = l.segment_id - 1;
                    self.after = Some(self.after.map_or(resume, |x| x.max(resume)));
                    let new = match self.ledger.lock() {
                        Ok(mut g) => g.take_live(&l.record_id),
                        // A poisoned ledger: show rather than lose.
                        Err(_) => true,
                    };
                    if !new {
                        continue;
                    }
                    let mut opened = self.session.open_records(vec![l], &identity).await?;
                    opened.entries.sort_by_key(|(ts, _)| *ts);
                    return Ok(opened);
                }
                _ => {}
            }
        }
    }

    /// Reopens the stream after an interruption (`why`).
    async fn resume(
        &mut self,
        notice: &mut (dyn FnMut(String) + Send),
        why: &str,
    ) -> anyhow::Result<()> {
        notice(format!("live stream interrupted ({why}); reconnecting"));
        self.lines = reconnect(&self.session, self.after, notice).await?;
        notice("live stream resumed".to_owned());
        Ok(())
    }
}
