//! Group commit: records of many requests become a few segments, written durably, then
//! recorded in the catalog in one transaction; only then is each request acknowledged.
//!
//! - A request's records are committed together or not at all, so an error answer (5xx)
//!   always means nothing of that request was stored (the Java SDK rebuilds retries, which
//!   cannot be deduplicated).
//! - A record whose id the tenant already stored, or that appears twice in one batch, is
//!   acknowledged as a duplicate and not stored again — also when another server commits the
//!   same id at the same moment: the catalog's primary key on `(tenant, record id)` decides,
//!   and the loser commits again without it (see [`commit_batch`]).
//! - A crash after an object is written but before the catalog commit leaves an orphan object
//!   that no query can see; housekeeping quarantines such objects after a long grace.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::catalog::{Catalog, Commit, NewSegment};
use crate::metrics::Metrics;
use crate::segment::{RecordMeta, SegmentWriter};
use crate::store::BlobStore;

/// One record to store.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    pub(crate) meta: RecordMeta,
    pub(crate) body: Bytes,
}

/// What happened to a request's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Outcome {
    pub(crate) stored: usize,
    pub(crate) duplicates: usize,
}

/// Why a commit failed; nothing of the request was stored.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum CommitError {
    #[error("storage unavailable: {0}")]
    Storage(String),
    #[error("catalog unavailable: {0}")]
    Catalog(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

struct Request {
    tenant_id: String,
    application_id: String,
    records: Vec<Incoming>,
    bytes: usize,
    reply: oneshot::Sender<Result<Outcome, CommitError>>,
}

/// Group-commit settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CommitConfig {
    /// How long the first record of a batch waits for company.
    pub(crate) linger: Duration,
    /// A batch is committed at once when it holds this many bytes.
    pub(crate) max_batch_bytes: usize,
    /// Records of one tenant and application beyond this size start a new segment.
    pub(crate) max_segment_bytes: usize,
}

impl Default for CommitConfig {
    fn default() -> Self {
        CommitConfig {
            linger: Duration::from_millis(2),
            max_batch_bytes: 32 * 1024 * 1024,
            max_segment_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The handle requests are submitted through.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    tx: mpsc::Sender<Request>,
}

impl Committer {
    /// Starts the commit loop. `commits` is bumped after every catalog commit (live tail
    /// listens to it). The loop ends when every handle is dropped, after committing what it
    /// holds.
    pub(crate) fn start(
        catalog: Catalog,
        store: BlobStore,
        config: CommitConfig,
        commits: Arc<watch::Sender<u64>>,
        metrics: Arc<Metrics>,
    ) -> (Committer, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(run(rx, catalog, store, config, commits, metrics));
        (Committer { tx }, task)
    }

    /// Stores `records` of one tenant and application; returns once they are durable and in
    /// the catalog.
    pub(crate) async fn submit(
        &self,
        tenant_id: &str,
        application_id: &str,
        records: Vec<Incoming>,
    ) -> Result<Outcome, CommitError> {
        if records.is_empty() {
            return Ok(Outcome::default());
        }
        let (reply, rx) = oneshot::channel();
        let bytes = records.iter().map(|r| r.body.len() + 256).sum();
        self.tx
            .send(Request {
                tenant_id: tenant_id.to_owned(),
                application_id: application_id.to_owned(),
                records,
                bytes,
                reply,
            })
            .await
            .map_err(|_| CommitError::ShuttingDown)?;
        rx.await.map_err(|_| CommitError::ShuttingDown)?
    }
}

async fn run(
    mut rx: mpsc::Receiver<Request>,
    catalog: Catalog,
    store: BlobStore,
    config: CommitConfig,
    commits: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + config.linger;
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while bytes < config.max_batch_bytes {
            tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => {
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = commit_batch(&catalog, &store, &config, &batch).await;
        metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok((outcomes, segments, bytes)) => {
                commits.send_modify(|n| *n += 1);
                metrics.segments_committed.inc_by(segments as u64);
                metrics.bytes_stored.inc_by(bytes as u64);
                for o in &outcomes {
                    metrics.records_stored.inc_by(o.stored as u64);
                    metrics.records_duplicate.inc_by(o.duplicates as u64);
                }
                for (req, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = req.reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                metrics.commit_failures.inc();
                tracing::error!(error = %e, requests = batch.len(), "commit failed; nothing of these requests was stored");
                for req in batch {
                    let _ = req.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A record and the index of the request it came from.
type Placed<'a> = (usize, &'a Incoming);

/// How many times a batch is rebuilt after losing record ids to segments committed
/// meanwhile; every round drops at least one record, so this only bounds pathological cases.
const MAX_CONFLICT_ROUNDS: usize = 16;

/// Commits a batch; returns each request's outcome, in order, and the segments and bytes
/// written.
///
/// Another server may commit the same record ids at the same moment (a retry racing its
/// original). The catalog is the arbiter: the commit transaction claims every record id, and
/// if another segment holds one, nothing is committed; the segments that held a lost record
/// are rebuilt without it and written again, and the lost records are acknowledged as already
/// stored. A record is therefore visible once, whichever servers receive it.
async fn commit_batch(
    catalog: &Catalog,
    store: &BlobStore,
    config: &CommitConfig,
    batch: &[Request],
) -> Result<(Vec<Outcome>, usize, usize), CommitError> {
    // Which record ids each tenant already has (a cheap filter; the commit itself decides).
    let mut ids_by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
    for req in batch {
        ids_by_tenant
            .entry(&req.tenant_id)
            .or_default()
            .extend(req.records.iter().map(|r| r.meta.record_id.clone()));
    }
    let mut seen: HashSet<(String, String)> = HashSet::new();
    for (tenant, ids) in &ids_by_tenant {
        let known = catalog
            .known_records(tenant, ids)
            .await
            .map_err(|e| CommitError::Catalog(e.to_string()))?;
        seen.extend(known.into_iter().map(|id| ((*tenant).to_owned(), id)));
    }

    // New records, grouped by tenant and application, with the request each came from.
    let mut outcomes = vec![Outcome::default(); batch.len()];
    let mut groups: HashMap<(&str, &str), Vec<Placed<'_>>> = HashMap::new();
    for (i, req) in batch.iter().enumerate() {
        for rec in &req.records {
            if seen.insert((req.tenant_id.clone(), rec.meta.record_id.clone())) {
                outcomes[i].stored += 1;
                groups
                    .entry((&req.tenant_id, &req.application_id))
                    .or_default()
                    .push((i, rec));
            } else {
                outcomes[i].duplicates += 1;
            }
        }
    }
    let mut groups: Vec<_> = groups.into_iter().collect();
    // The segments of each group, built and written; `None` when the group must be (re)built.
    let mut built: Vec<Option<Vec<(NewSegment, usize)>>> = vec![None; groups.len()];
    // Objects written but not committed, after losing a race.
    let mut superseded = Vec::new();
    for _ in 0..MAX_CONFLICT_ROUNDS {
        // Build and write the segments of the groups that need it. Durable objects first,
        // then the catalog: a record is visible only when both are done.
        let mut objects = Vec::new();
        for (g, ((tenant, app), records)) in groups.iter().enumerate() {
            if built[g].is_none() {
                let segs = build_segments(tenant, app, records, config.max_segment_bytes);
                let mut sized = Vec::with_capacity(segs.len());
                for (seg, data) in segs {
                    sized.push((seg.clone(), data.len()));
                    objects.push((seg.object_key, data));
                }
                built[g] = Some(sized);
            }
        }
        let puts = objects.into_iter().map(|(key, data)| async move {
            store
                .put(&key, data)
                .await
                .map_err(|e| CommitError::Storage(e.to_string()))
        });
        futures_util::future::try_join_all(puts).await?;
        let segments: Vec<NewSegment> = built
            .iter()
            .flatten()
            .flatten()
            .map(|(s, _)| s.clone())
            .collect();
        if segments.is_empty() {
            break;
        }
        let lost = match catalog
            .commit_segments(&segments)
            .await
            .map_err(|e| CommitError::Catalog(e.to_string()))?
        {
            Commit::Committed(_) => {
                discard(catalog, store, superseded).await;
                let bytes = built.iter().flatten().flatten().map(|(_, n)| n).sum();
                return Ok((outcomes, segments.len(), bytes));
            }
            Commit::Conflict(lost) => lost,
        };
        tracing::info!(
            records = lost.len(),
            "record ids committed meanwhile by another server; committing again without them"
        );
        let lost: HashSet<(String, String)> = lost.into_iter().collect();
        for (g, ((tenant, _), records)) in groups.iter_mut().enumerate() {
            let before = records.len();
            records.retain(|(i, rec)| {
                let gone = lost.contains(&((*tenant).to_owned(), rec.meta.record_id.clone()));
                if gone {
                    outcomes[*i].stored -= 1;
                    outcomes[*i].duplicates += 1;
                }
                !gone
            });
            if records.len() != before {
                if let Some(segs) = built[g].take() {
                    superseded.extend(segs.into_iter().map(|(s, _)| s.object_key));
                }
                if records.is_empty() {
                    built[g] = Some(Vec::new());
                }
            }
        }
    }
    discard(catalog, store, superseded).await;
    if built.iter().flatten().all(Vec::is_empty) {
        return Ok((outcomes, 0, 0));
    }
    Err(CommitError::Catalog(format!(
        "record ids kept being committed by others for {MAX_CONFLICT_ROUNDS} rounds"
    )))
}

/// Most groups by time one commit of an application is split into (besides cuts by size).
const MAX_TIME_GROUPS: usize = 8;
/// How far a record's start may lie from its group's earliest before it starts a new group.
const GROUP_SPAN_NS: i64 = 86_400 * 1_000_000_000;

/// The time group of each record: records whose starts lie within a day of each other share
/// one, at most [`MAX_TIME_GROUPS`] in all (the last takes whatever remains). A segment's time
/// range is the union of its records', so one record dated far from the others (an archive
/// being imported, or a producer's deliberately old record) would otherwise widen the segment
/// and defeat the catalog's pruning by time for every query of the tenant.
fn time_groups(records: &[Placed<'_>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..records.len()).collect();
    order.sort_by_key(|&i| records[i].1.meta.min_ts);
    let mut group = vec![0; records.len()];
    let mut current = 0;
    let mut start: Option<i64> = None;
    for i in order {
        let ts = records[i].1.meta.min_ts;
        match start {
            None => start = Some(ts),
            Some(s) if ts.saturating_sub(s) > GROUP_SPAN_NS && current + 1 < MAX_TIME_GROUPS => {
                current += 1;
                start = Some(ts);
            }
            Some(_) => {}
        }
        group[i] = current;
    }
    group
}

/// The segments of one tenant and application's records: one run per time group, each cut at
/// `max_bytes` of bodies (or one record).
fn build_segments(
    tenant: &str,
    app: &str,
    records: &[Placed<'_>],
    max_bytes: usize,
) -> Vec<(NewSegment, Bytes)> {
    let groups = time_groups(records);
    let mut out = Vec::new();
    for g in 0..=groups.iter().copied().max().unwrap_or(0) {
        let in_group = records
            .iter()
            .zip(&groups)
            .filter(|(_, rg)| **rg == g)
            .map(|(r, _)| r);
        build_group(tenant, app, in_group, max_bytes, &mut out);
    }
    out
}

fn build_group<'a>(
    tenant: &str,
    app: &str,
    records: impl Iterator<Item = &'a Placed<'a>>,
    max_bytes: usize,
    out: &mut Vec<(NewSegment, Bytes)>,
) {
    let mut writer = SegmentWriter::new();
    let mut ids = Vec::new();
    for (_, rec) in records {
        if !writer.is_empty() && writer.body_len() + rec.body.len() > max_bytes {
            out.push(finish_segment(
                tenant,
                app,
                std::mem::take(&mut writer),
                std::mem::take(&mut ids),
            ));
        }
        ids.push(rec.meta.record_id.clone());
        writer.add(rec.meta.clone(), &rec.body);
    }
    if !writer.is_empty() {
        out.push(finish_segment(tenant, app, writer, ids));
    }
}

/// Deletes objects written for a commit that lost a race, unless a catalog row names them (a
/// `catalog rebuild` running at the same moment may have registered one). A failure leaves an
/// orphan for housekeeping; it is logged, not an error of the commit.
async fn discard(catalog: &Catalog, store: &BlobStore, keys: Vec<String>) {
    for key in keys {
        match catalog.has_object_key(&key).await {
            Ok(false) => {
                if let Err(e) = store.delete(&key).await {
                    tracing::warn!(object = %key, error = %e, "could not delete a superseded segment; housekeeping will");
                }
            }
            Ok(true) => {}
            Err(e) => {
                tracing::warn!(object = %key, error = %e, "could not check a superseded segment; housekeeping will");
            }
        }
    }
}

/// The catalog row and the object bytes of a finished segment, under a new object key.
pub(crate) fn finish_segment(
    tenant: &str,
    app: &str,
    writer: SegmentWriter,
    record_ids: Vec<String>,
) -> (NewSegment, Bytes) {
    let (bytes, summary) = writer.finish();
    let seg = NewSegment {
        tenant_id: tenant.to_owned(),
        application_id: app.to_owned(),
        object_key: object_key(tenant, app),
        min_ts: summary.min_ts,
        max_ts: summary.max_ts,
        records: i64::from(summary.records),
        entries: summary.entries as i64,
        bytes: summary.bytes as i64,
        bloom: summary.bloom,
        max_received_ns: summary.max_received_ns,
        record_ids,
    };
    (seg, Bytes::from(bytes))
}

/// `TENANT/APP/YYYY/MM/DD/ULID.lfs`, by commit date (for listing and lifecycle rules).
fn object_key(tenant: &str, app: &str) -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{tenant}/{app}/{:04}/{:02}/{:02}/{}.lfs",
        now.year(),
        u8::from(now.month()),
        now.day(),
        ulid::Ulid::new().to_string().to_lowercase()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, min_ts: i64) -> Incoming {
        Incoming {
            meta: RecordMeta {
                record_id: id.into(),
                key_id: "k".into(),
                payload: 4,
                entry_type: 0,
                nonce: Some([0; 12]),
                crlf_stripped: false,
                min_ts,
                max_ts: min_ts + 1_000_000_000,
                count: 1,
                received_ns: min_ts,
                tokens: Vec::new(),
                filter: None,
            },
            body: Bytes::from_static(b"sealed body of some length"),
        }
    }

    #[test]
    fn records_far_apart_in_time_go_to_separate_segments() {
        const DAY: i64 = 86_400 * 1_000_000_000;
        let now = 1_796_000_000 * 1_000_000_000;
        // Today's records and one claiming 1678 (its own range is an hour at most).
        let recs = [
            record("a", now),
            record("old", -9_000_000_000_000_000_000),
            record("b", now + 5_000_000_000),
            record("c", now - DAY / 2),
        ];
        let placed: Vec<Placed<'_>> = recs.iter().enumerate().collect();
        let segs = build_segments("t", "a", &placed, 1 << 20);
        let mut ranges: Vec<(i64, i64, i64)> = segs
            .iter()
            .map(|(s, _)| (s.min_ts, s.max_ts, s.records))
            .collect();
        ranges.sort();
        assert_eq!(ranges.len(), 2, "{ranges:?}");
        assert_eq!(ranges[0].2, 1, "the old record alone");
        assert_eq!(ranges[1], (now - DAY / 2, now + 6_000_000_000, 3));
    }

    #[test]
    fn time_groups_are_bounded() {
        const DAY: i64 = 86_400 * 1_000_000_000;
        let recs: Vec<Incoming> = (0..100)
            .map(|i| record(&i.to_string(), i * 2 * DAY))
            .collect();
        let placed: Vec<Placed<'_>> = recs.iter().enumerate().collect();
        let groups = time_groups(&placed);
        assert_eq!(groups.iter().max(), Some(&(MAX_TIME_GROUPS - 1)));
        let segs = build_segments("t", "a", &placed, 1 << 20);
        assert_eq!(segs.len(), MAX_TIME_GROUPS);
        assert_eq!(segs.iter().map(|(s, _)| s.records).sum::<i64>(), 100);
    }
}
