//! Every entry from a point in time on, once each: the history up to now, then the server's
//! live stream, resumed without a gap whenever it is lost — for the alert evaluator, which
//! must see all entries of all applications (each rule picks its own).
//!
//! The live stream is opened first and the history read up to the moment after, so nothing
//! committed between the two is missed; records both bring are fed once ([`Sent`], as the
//! Loki tail does). A flag says whether what is fed is the present: false while the history
//! is read, then while the stream (opened again from its start once the history is read)
//! brings what was committed meanwhile, and whenever it is lost and resumed, until its
//! `caught_up` line — so the evaluator never takes a gap in what it has seen for a drop in
//! what happened.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use logflux_query::Row;

use super::Service;
use super::http::LokiError;
use super::ws::{End, Live, Sent};

/// Feeds `sink` every entry with a timestamp after `start_ns`, history first, then live, for
/// ever — or until an error: the server refusing the credentials for good, or a record that
/// cannot be fetched or opened (the caller starts a new feed). `current` is set as described
/// in the module's documentation.
pub(crate) async fn feed(
    s: &Arc<Service>,
    start_ns: i64,
    current: Arc<AtomicBool>,
    sink: &mut (dyn FnMut(&[Row<'_>]) + Send),
) -> Result<Infallible, LokiError> {
    current.store(false, Ordering::Release);
    let now = logflux_proto::timefmt::now_ns();
    let everything = logflux_query::Prune::default();
    let scan = super::loki::scan_for(&everything, start_ns, now, false)
        .ok_or_else(|| LokiError::internal("no scan over every application"))?;
    let mut live = match Live::open(s, scan.clone()).await {
        Ok(l) => l,
        Err(End::Error(e) | End::TryLater(e)) => return Err(e),
        Err(End::ClientGone) => return Err(LokiError::internal("the live stream closed")),
    };
    // The flag the caller reads (false since the start): the stream sets it from now on.
    live.current = current.clone();
    let live_start = live.after;
    let end = logflux_proto::timefmt::now_ns();
    let mut sent = Sent::default();
    let mut history = scan;
    history.to_ns = end;
    super::loki::each_record(s, history, &mut |batch| {
        for r in batch {
            sent.read_by_history(r, live_start, end);
        }
        let rows = super::loki::rows(batch, start_ns, end - 1);
        sink(&rows);
    })
    .await?;
    // Records committed while the history was read wait in the stream: it is opened again
    // from its start, so that its `caught_up` line, after them, says when the evaluator sees
    // the present.
    live.restart_from_start().await?;
    loop {
        let (opened, from) = live.next_due(&mut sent).await?;
        let rows = super::loki::rows(&opened.records, from.saturating_sub(1), i64::MAX);
        sink(&rows);
    }
}
