//! A pane's data: one task per pane query that connects (retrying with backoff while the
//! server is away), opens the live stream before the history (as `tail -f` does, so nothing
//! committed between the two is missed, and what both list is shown once), then loads pages
//! of history backwards when the pane asks and sends live entries as they arrive. Everything
//! goes to the UI as [`Msg`]s; errors too, so the UI never leaves for them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use logflux_proto::EntryView;
use tokio::sync::mpsc;

use super::model::Msg;
use crate::api::StatusError;
use crate::config::Settings;
use crate::fetch::{Bodies, Chunk, Mapper, Merger, Session, spawn_query};
use crate::filter::FilterArgs;
use crate::live::{Live, SharedLedger};

/// Entries in the first page of history (a screen or two, quickly); later pages are as
/// large as the pane asks ([`super::model::PAGE`] at most).
pub(crate) const FIRST_PAGE: usize = 300;

/// What a pane asks of its source.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// A page of at most `max` entries older than those sent so far, or (after the pane
    /// dropped some) older than `before`.
    Older { before: Option<i64>, max: usize },
}

/// A running source; dropping it stops it.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) cmd: mpsc::UnboundedSender<Cmd>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Source {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the source of generation `era` (a pane's query; data is tagged with it) for `args`.
pub(crate) fn spawn(
    settings: Arc<Settings>,
    args: FilterArgs,
    era: u64,
    tx: mpsc::Sender<Msg>,
) -> Source {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let live_abort: Arc<Mutex<Option<tokio::task::AbortHandle>>> = Arc::default();
    let main = tokio::spawn(run(settings, args, era, tx, cmd_rx, live_abort.clone()));
    Source {
        cmd: cmd_tx,
        tasks: vec![main.abort_handle(), LiveAbort(live_abort).handle()],
    }
}

/// The live task's abort handle, known once it is started.
struct LiveAbort(Arc<Mutex<Option<tokio::task::AbortHandle>>>);

impl LiveAbort {
    /// A handle that aborts the live task whenever it exists: a task that aborts it.
    fn handle(self) -> tokio::task::AbortHandle {
        let slot = self.0;
        tokio::spawn(async move {
            // Holds nothing but the slot: aborting this task aborts the live one too.
            struct Guard(Arc<Mutex<Option<tokio::task::AbortHandle>>>);
            impl Drop for Guard {
                fn drop(&mut self) {
                    if let Ok(g) = self.0.lock()
                        && let Some(h) = g.as_ref()
                    {
                        h.abort();
                    }
                }
            }
            let _g = Guard(slot);
            std::future::pending::<()>().await;
        })
        .abort_handle()
    }
}

/// Whether retrying may help: the server is away or busy, not refusing.
fn transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<reqwest::Error>().is_some()
            || c.downcast_ref::<std::io::Error>().is_some()
            || c.downcast_ref::<StatusError>()
                .is_some_and(|s| s.status >= 500 || s.status == 408 || s.status == 429)
    })
}

async fn run(
    settings: Arc<Settings>,
    args: FilterArgs,
    era: u64,
    tx: mpsc::Sender<Msg>,
    mut cmd: mpsc::UnboundedReceiver<Cmd>,
    live_slot: Arc<Mutex<Option<tokio::task::AbortHandle>>>,
) {
    let notice = |text: String, error: bool| Msg::Notice { era, text, error };
    // Connect: a server away is retried; a refusal or a bad query is the pane's error.
    let mut wait = Duration::from_millis(250);
    let session = loop {
        let opened = async {
            let session = Session::open(&settings, &args).await?;
            let live = if session.filter.until_ns.is_none() {
                Some(Live::open(&session).await?)
            } else {
                None
            };
            anyhow::Ok((session, live))
        }
        .await;
        match opened {
            Ok(s) => break s,
            Err(e) if transient(&e) => {
                let _ = tx
                    .send(notice(
                        format!("server unreachable, retrying in {wait:?}: {e:#}"),
                        true,
                    ))
                    .await;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                let _ = tx
                    .send(Msg::Failed {
                        era,
                        error: format!("{e:#}"),
                    })
                    .await;
                return;
            }
        }
    };
    let (session, live) = session;
    if tx.send(Msg::Opened { era }).await.is_err() {
        return;
    }
    if wait > Duration::from_millis(250) {
        let _ = tx.send(notice("connected".into(), false)).await;
    }
    wait = Duration::from_millis(250);
    let shown: SharedLedger = live.as_ref().map(Live::ledger).unwrap_or_default();
    if let Some(live) = live {
        let h = tokio::spawn(follow(live, era, tx.clone()));
        if let Ok(mut slot) = live_slot.lock() {
            *slot = Some(h.abort_handle());
        }
    }
    let mut history: Option<History> = None;
    let mut oldest: Option<i64> = None;
    // The entries sent of the oldest time so far: a query again after an error takes that
    // time in and leaves these out (no entry twice, none lost).
    let mut edge: Vec<EntryView> = Vec::new();
    let mut want = FIRST_PAGE;
    let mut before: Option<i64> = None;
    loop {
        // A new history query when there is none (the first page, after an error) or the
        // pane dropped entries and asks from before them. Only the first query, which
        // overlaps the live stream, leaves out what the live stream showed: a query again
        // ends before what the pane holds (live entries it dropped are fetched again).
        if before.is_some_and(|b| Some(b) != oldest) {
            // The pane dropped every entry of its oldest time: all before it is wanted.
            history = Some(History::new(&session, before, None, Vec::new()));
        } else if history.is_none() {
            history = Some(match oldest {
                None => History::new(&session, None, Some(shown.clone()), Vec::new()),
                Some(o) => History::new(&session, Some(o.saturating_add(1)), None, edge.clone()),
            });
        }
        let Some(h) = history.as_mut() else { return };
        match h.page(want).await {
            Ok((entries, failed, done)) => {
                if let Some(e) = entries.last() {
                    let t = e.timestamp_ns;
                    if oldest != Some(t) {
                        edge.clear();
                    }
                    oldest = Some(t);
                    edge.extend(
                        entries
                            .iter()
                            .rev()
                            .take_while(|e| e.timestamp_ns == t)
                            .cloned(),
                    );
                }
                let m = Msg::Older {
                    era,
                    entries,
                    done,
                    failed,
                };
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                history = None;
                let m = notice(format!("loading older entries: {e:#}"), true);
                if tx.send(m).await.is_err() {
                    return;
                }
                // Nothing shown yet: try again on our own (the pane has nothing to scroll).
                if oldest.is_none() {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        }
        match cmd.recv().await {
            Some(Cmd::Older { before: b, max }) => {
                before = b;
                want = max.max(1);
            }
            None => return,
        }
    }
}

/// The live task: entries as they arrive, until the stream ends for good.
async fn follow(mut live: Live, era: u64, tx: mpsc::Sender<Msg>) {
    let t = tx.clone();
    let mut notice = move |text: String| {
        let error = !text.ends_with("resumed");
        let _ = t.try_send(Msg::Notice { era, text, error });
    };
    loop {
        match live.next(&mut notice).await {
            Ok(opened) => {
                let failed = opened.errors.iter().map(|e| e.to_string()).collect();
                let entries: Vec<EntryView> = opened.entries.into_iter().map(|(_, e)| e).collect();
                let m = Msg::Live {
                    era,
                    entries,
                    failed,
                };
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx
                    .send(Msg::Notice {
                        era,
                        text: format!("live stream stopped: {e:#}"),
                        error: true,
                    })
                    .await;
                return;
            }
        }
    }
}

/// The history query, newest first, read a page at a time.
struct History {
    session: Session,
    rx: mpsc::Receiver<anyhow::Result<Chunk>>,
    merger: Merger<EntryView>,
    watermark: Option<i64>,
    done: bool,
    /// The ledger shared with the live stream (the first query only: records it showed are
    /// left out).
    shown: Option<SharedLedger>,
    /// Entries already sent, left out once each (a query again after an error).
    skip: Vec<EntryView>,
}

impl History {
    /// The query of the session's filter, before `before` when given; leaving out the
    /// records `shown` live and the entries in `skip`.
    fn new(
        session: &Session,
        before: Option<i64>,
        shown: Option<SharedLedger>,
        skip: Vec<EntryView>,
    ) -> History {
        let mut session = session.clone();
        if let Some(b) = before {
            let mut f = (*session.filter).clone();
            let limit = b.saturating_sub(1);
            f.until_ns = Some(f.until_ns.map_or(limit, |u| u.min(limit)));
            session.filter = Arc::new(f);
        }
        let rx = spawn_query(session.api.clone(), session.query(true), Bodies::Listed);
        History {
            session,
            rx,
            merger: Merger::new(true),
            watermark: None,
            done: false,
            shown,
            skip,
        }
    }

    /// Up to `n` entries, newest first, with the failures of records that could not be
    /// opened, and whether the query is complete.
    async fn page(&mut self, n: usize) -> anyhow::Result<(Vec<EntryView>, Vec<String>, bool)> {
        let identity: Mapper<EntryView> = Arc::new(|e| e);
        let mut out = Vec::new();
        let mut failed = Vec::new();
        loop {
            while out.len() < n {
                match self.merger.pop(self.watermark, self.done) {
                    Some(e) => out.push(e),
                    None => break,
                }
            }
            if out.len() >= n || (self.done && self.merger.is_empty()) {
                let complete = self.done && self.merger.is_empty();
                return Ok((out, failed, complete));
            }
            let Some(chunk) = self.rx.recv().await else {
                self.done = true;
                continue;
            };
            let chunk = chunk?;
            let records: Vec<_> = match self.shown.as_ref().map(|s| s.lock()) {
                Some(Ok(mut s)) => chunk
                    .records
                    .into_iter()
                    .filter(|r| r.kind != "record" || s.list(&r.record_id))
                    .collect(),
                _ => chunk.records,
            };
            let opened = self.session.open_records(records, &identity).await?;
            failed.extend(opened.errors.iter().map(|e| e.to_string()));
            for (ts, e) in opened.entries {
                if let Some(k) = self.skip.iter().position(|s| *s == e) {
                    self.skip.swap_remove(k);
                    continue;
                }
                self.merger.push(ts, e);
            }
            self.watermark = chunk.watermark;
            self.done = chunk.done;
        }
    }
}
