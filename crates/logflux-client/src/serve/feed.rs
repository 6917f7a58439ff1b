//! Every entry from a point in time on, once each: the history up to now, then the server's
//! live stream, resumed without a gap whenever it is lost — for the alert evaluator, which
//! must see all entries of all applications (each rule picks its own).
//!
//! The live stream is opened first and the history read up to the moment after, so nothing
//! committed between the two is missed; records both bring are fed once ([`Sent`], as the
//! Loki tail does). A flag says whether what is fed is the present: false while the history
//! is read, while the stream is lost and while a resumed stream brings what was committed
//! meanwhile (until its `caught_up` line), so the evaluator never takes a gap in what it has
//! seen for a drop in what happened.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use logflux_query::Row;

use super::Service;
use super::http::LokiError;
use super::ws::{Due, End, Live, Retry, Sent};

/// Feeds `sink` every entry with a timestamp after `start_ns`, history first, then live, for
/// ever (an error only when the server refuses the credentials for good). `current` is set
/// as described in the module's documentation.
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
    live.current = current.clone();
    live.current.store(false, Ordering::Release);
    let live_start = live.after;
    let end = logflux_proto::timefmt::now_ns();
    let mut sent = Sent::default();
    let mut history = scan;
    history.to_ns = end;
    super::loki::each_record(s, history, &mut |batch| {
        for r in batch {
            sent.read_by_history(r, live_start, end);
        }
        let rows = rows_in(batch, start_ns, end - 1);
        sink(&rows);
    })
    .await?;
    current.store(true, Ordering::Release);
    loop {
        let l = live.next_line().await?;
        live.saw(&l);
        sent.advance(live.after);
        match l.kind.as_str() {
            "record" => {
                let from = match sent.due(l.segment_id, &l.record_id) {
                    Due::Nothing => continue,
                    Due::All => i64::MIN,
                    Due::From(end) => end,
                };
                let opened = s.open_lines(vec![l], &live.prepared.names).await?;
                let rows = rows_in(&opened.records, from.saturating_sub(1), i64::MAX);
                sink(&rows);
            }
            "end" => {
                let reason = l.reason.as_deref().unwrap_or("unknown");
                if matches!(reason, "token_revoked" | "token_expired") {
                    return Err(LokiError::internal(format!(
                        "the server ended the live stream ({reason}): {}",
                        l.message
                    )));
                }
                live.lost(Retry::because(format!("the server ended it ({reason})")))
                    .await?;
            }
            _ => {}
        }
    }
}

/// The rows of `records` with timestamps in `(from, to]`.
fn rows_in(records: &[super::Opened], from_ns: i64, to_ns: i64) -> Vec<Row<'_>> {
    records
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .filter(move |e| e.timestamp_ns > from_ns && e.timestamp_ns <= to_ns)
                .map(move |e| Row {
                    app: &r.app,
                    entry: e,
                })
        })
        .collect()
}
