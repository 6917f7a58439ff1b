//! Group commit: records of many requests become a few segments, written durably, then
//! recorded in the catalog in one transaction; only then is each request acknowledged.
//!
//! - A request's records are committed together or not at all, so an error answer (5xx)
//!   always means nothing of that request was stored (the Java SDK rebuilds retries, which
//!   cannot be deduplicated).
//! - A record whose id the tenant already stored, or that appears twice in one batch, is
//!   acknowledged as a duplicate and not stored again — also when another server commits the
//!   same id at the same moment: the catalog's primary key on `(tenant, record id)` decides,
//!   and the loser commits again without it (see [`commit_staged`]). The same holds between
//!   this server's own batches in flight.
//! - Batches are pipelined: [`MAX_IN_FLIGHT`] at most, the one whose catalog transaction runs
//!   included, so up to two more are looked up, built and written meanwhile; catalog
//!   transactions run one at a time in batch order, and a request is answered only after its batch's transaction (the
//!   live tail's `commits` watch is bumped after each).
//! - A crash after an object is written but before the catalog commit leaves an orphan object
//!   that no query can see; housekeeping quarantines such objects after a long grace.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};

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
    /// When it was submitted.
    arrived: tokio::time::Instant,
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
    /// Requests being received (read and checked), not yet submitted.
    arriving: Arc<watch::Sender<usize>>,
}

/// A request on its way to the committer (see [`Committer::arriving`]); dropping it (when the
/// request is submitted, or refused) says so.
#[derive(Debug)]
pub(crate) struct Arriving(Arc<watch::Sender<usize>>);

impl Drop for Arriving {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
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
        let arriving = Arc::new(watch::channel(0).0);
        let task = tokio::spawn(run(
            rx,
            arriving.subscribe(),
            catalog,
            store,
            config,
            commits,
            metrics,
        ));
        (Committer { tx, arriving }, task)
    }

    /// Marks a request as on its way: while any is, a batch lingers for it (up to
    /// `linger`); once none is, the batch is committed without waiting longer.
    pub(crate) fn arriving(&self) -> Arriving {
        self.arriving.send_modify(|n| *n += 1);
        Arriving(self.arriving.clone())
    }

    /// Stores `records` of one tenant and application; returns once they are durable and in
    /// the catalog.
    /// `arriving` is this request's mark, dropped once the request is queued.
    pub(crate) async fn submit(
        &self,
        arriving: Option<Arriving>,
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
                arrived: tokio::time::Instant::now(),
                reply,
            })
            .await
            .map_err(|_| CommitError::ShuttingDown)?;
        drop(arriving);
        rx.await.map_err(|_| CommitError::ShuttingDown)?
    }
}

/// Most batches in flight at once, the one whose catalog transaction runs included: later
/// batches are looked up, built and written while an earlier one's transaction runs. Catalog transactions run one at a time, in the
/// order the batches were formed, so segment ids ascend in commit order on either catalog.
const MAX_IN_FLIGHT: usize = 3;

/// A batch whose objects are written (or whose preparation failed), waiting for its catalog
/// transaction.
struct Prepared {
    batch: Vec<Request>,
    /// When its preparation started.
    started: std::time::Instant,
    staged: Result<Staged, CommitError>,
}

async fn run(
    mut rx: mpsc::Receiver<Request>,
    mut arriving: watch::Receiver<usize>,
    catalog: Catalog,
    store: BlobStore,
    config: CommitConfig,
    commits: Arc<watch::Sender<u64>>,
    metrics: Arc<Metrics>,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // In batch order; never holds more than MAX_IN_FLIGHT (each entry holds a slot).
    let (order_tx, mut order_rx) =
        mpsc::unbounded_channel::<(tokio::task::JoinHandle<Prepared>, OwnedSemaphorePermit)>();
    let finisher = {
        let (catalog, store) = (catalog.clone(), store.clone());
        tokio::spawn(async move {
            while let Some((prepared, slot)) = order_rx.recv().await {
                // `prepare` answers a panic of its own as a failed commit; only an abort (at
                // shutdown) lands here, and the requests then hear that the server stops.
                if let Ok(p) = prepared.await {
                    finish(&catalog, &store, &config, &commits, &metrics, p).await;
                }
                drop(slot);
            }
        })
    };
    let mut open = true;
    while open {
        let Some(first) = rx.recv().await else { break };
        // The first request waits at most `linger` from its arrival for company, and only
        // while other requests are on their way (being received and checked): one that
        // already waited for a free slot, or that came alone, does not wait.
        let deadline = first.arrived + config.linger;
        let mut bytes = first.bytes;
        let mut batch = vec![first];
        while bytes < config.max_batch_bytes {
            tokio::select! {
                biased;
                // First: requests arriving without pause do not hold the batch past it.
                () = tokio::time::sleep_until(deadline) => break,
                r = rx.recv() => match r {
                    Some(r) => {
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    None => {
                        open = false;
                        break;
                    }
                },
                // Queued before its mark was dropped: whatever arrived is in `rx` by now.
                _ = arriving.wait_for(|n| *n == 0) => {
                    while bytes < config.max_batch_bytes {
                        let Ok(r) = rx.try_recv() else { break };
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    break;
                }
            }
        }
        // While every slot is taken, the batch goes on taking requests (up to its size).
        let slot = loop {
            if !open || bytes >= config.max_batch_bytes {
                break slots.clone().acquire_owned().await;
            }
            tokio::select! {
                biased;
                s = slots.clone().acquire_owned() => break s,
                r = rx.recv() => match r {
                    Some(r) => {
                        bytes += r.bytes;
                        batch.push(r);
                    }
                    None => open = false,
                },
            }
        };
        let slot = slot.expect("the semaphore is never closed");
        let prepared = tokio::spawn(prepare(catalog.clone(), store.clone(), config, batch));
        if order_tx.send((prepared, slot)).is_err() {
            break;
        }
    }
    drop(order_tx);
    let _ = finisher.await;
}

async fn prepare(
    catalog: Catalog,
    store: BlobStore,
    config: CommitConfig,
    batch: Vec<Request>,
) -> Prepared {
    use futures_util::FutureExt as _;
    let started = std::time::Instant::now();
    // A panic (a bug) fails this batch's requests with an error that says so, rather than
    // dropping their answers (which read as the server shutting down).
    let staged = std::panic::AssertUnwindSafe(stage(&catalog, &store, &config, &batch))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(CommitError::Storage(
                "preparing the commit failed (a bug: see the server's log)".into(),
            ))
        });
    Prepared {
        batch,
        started,
        staged,
    }
}

/// Commits a prepared batch to the catalog and answers its requests.
async fn finish(
    catalog: &Catalog,
    store: &BlobStore,
    config: &CommitConfig,
    commits: &watch::Sender<u64>,
    metrics: &Metrics,
    p: Prepared,
) {
    let Prepared {
        batch,
        started,
        staged,
    } = p;
    let result = match staged {
        Ok(staged) => commit_staged(catalog, store, config, &batch, staged).await,
        Err(e) => Err(e),
    };
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

/// A record: the index of its request in the batch and its own index in that request.
type Slot = (usize, usize);

/// A tenant and application's new records, by the request index of its first one.
struct Group {
    /// Index of a request of this tenant and application.
    request: usize,
    records: Vec<Slot>,
    /// Its segments, built and written, with their sizes; `None` when it must be (re)built.
    built: Option<Vec<(NewSegment, usize)>>,
}

/// A batch whose objects are durable, ready for its catalog transaction.
struct Staged {
    outcomes: Vec<Outcome>,
    groups: Vec<Group>,
    /// Objects written but not committed, after losing a race.
    superseded: Vec<String>,
}

/// A record and the index of the request it came from.
type Placed<'a> = (usize, &'a Incoming);

/// How many times a batch is rebuilt after losing record ids to segments committed
/// meanwhile; every round drops at least one record, so this only bounds pathological cases.
const MAX_CONFLICT_ROUNDS: usize = 16;

/// Drops the records a tenant already has and in-batch repeats, groups the rest by tenant and
/// application, and writes their segments durably.
async fn stage(
    catalog: &Catalog,
    store: &BlobStore,
    config: &CommitConfig,
    batch: &[Request],
) -> Result<Staged, CommitError> {
    // Which record ids each tenant already has (a cheap filter; the commit itself decides).
    let mut ids_by_tenant: HashMap<&str, Vec<String>> = HashMap::new();
    for req in batch {
        ids_by_tenant
            .entry(&req.tenant_id)
            .or_default()
            .extend(req.records.iter().map(|r| r.meta.record_id.clone()));
    }
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut known_ids: Vec<(&str, String)> = Vec::new();
    for (tenant, ids) in &ids_by_tenant {
        let known = catalog
            .known_records(tenant, ids)
            .await
            .map_err(|e| CommitError::Catalog(e.to_string()))?;
        known_ids.extend(known.into_iter().map(|id| (*tenant, id)));
    }
    seen.extend(known_ids.iter().map(|(t, id)| (*t, id.as_str())));

    // New records, grouped by tenant and application.
    let mut outcomes = vec![Outcome::default(); batch.len()];
    let mut index: HashMap<(&str, &str), usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, req) in batch.iter().enumerate() {
        for (j, rec) in req.records.iter().enumerate() {
            if seen.insert((&req.tenant_id, &rec.meta.record_id)) {
                outcomes[i].stored += 1;
                let g = *index
                    .entry((&req.tenant_id, &req.application_id))
                    .or_insert_with(|| {
                        groups.push(Group {
                            request: i,
                            records: Vec::new(),
                            built: None,
                        });
                        groups.len() - 1
                    });
                groups[g].records.push((i, j));
            } else {
                outcomes[i].duplicates += 1;
            }
        }
    }
    let mut staged = Staged {
        outcomes,
        groups,
        superseded: Vec::new(),
    };
    write_groups(store, config, batch, &mut staged).await?;
    Ok(staged)
}

/// Builds and writes the segments of the groups that need it. Durable objects first, then the
/// catalog: a record is visible only when both are done.
async fn write_groups(
    store: &BlobStore,
    config: &CommitConfig,
    batch: &[Request],
    staged: &mut Staged,
) -> Result<(), CommitError> {
    let mut objects = Vec::new();
    for group in &mut staged.groups {
        if group.built.is_some() {
            continue;
        }
        let req = &batch[group.request];
        let placed: Vec<Placed<'_>> = group
            .records
            .iter()
            .map(|&(i, j)| (i, &batch[i].records[j]))
            .collect();
        let segs = build_segments(
            &req.tenant_id,
            &req.application_id,
            &placed,
            config.max_segment_bytes,
        );
        let mut sized = Vec::with_capacity(segs.len());
        for (seg, data) in segs {
            sized.push((seg.clone(), data.len()));
            objects.push((seg.object_key, data));
        }
        group.built = Some(sized);
    }
    let puts = objects.into_iter().map(|(key, data)| async move {
        store
            .put(&key, data)
            .await
            .map_err(|e| CommitError::Storage(e.to_string()))
    });
    futures_util::future::try_join_all(puts).await?;
    Ok(())
}

/// Commits a staged batch; returns each request's outcome, in order, and the segments and
/// bytes written.
///
/// Another commit may claim the same record ids at the same moment (a retry racing its
/// original, on another server or in an earlier batch of this one still in flight). The
/// catalog is the arbiter: the commit transaction claims every record id, and if another
/// segment holds one, nothing is committed; the segments that held a lost record are rebuilt
/// without it and written again, and the lost records are acknowledged as already stored. A
/// record is therefore visible once, whichever servers and batches receive it.
async fn commit_staged(
    catalog: &Catalog,
    store: &BlobStore,
    config: &CommitConfig,
    batch: &[Request],
    mut staged: Staged,
) -> Result<(Vec<Outcome>, usize, usize), CommitError> {
    for round in 0..MAX_CONFLICT_ROUNDS {
        if round > 0 {
            write_groups(store, config, batch, &mut staged).await?;
        }
        let segments: Vec<NewSegment> = staged
            .groups
            .iter()
            .filter_map(|g| g.built.as_ref())
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
                discard(catalog, store, std::mem::take(&mut staged.superseded)).await;
                let bytes = staged
                    .groups
                    .iter()
                    .filter_map(|g| g.built.as_ref())
                    .flatten()
                    .map(|(_, n)| n)
                    .sum();
                return Ok((staged.outcomes, segments.len(), bytes));
            }
            Commit::Conflict(lost) => lost,
        };
        tracing::info!(
            records = lost.len(),
            "record ids committed meanwhile by another commit; committing again without them"
        );
        let lost: HashSet<(String, String)> = lost.into_iter().collect();
        let Staged {
            outcomes,
            groups,
            superseded,
        } = &mut staged;
        for group in groups.iter_mut() {
            let tenant = &batch[group.request].tenant_id;
            let before = group.records.len();
            group.records.retain(|&(i, j)| {
                let id = &batch[i].records[j].meta.record_id;
                let gone = lost.contains(&(tenant.clone(), id.clone()));
                if gone {
                    outcomes[i].stored -= 1;
                    outcomes[i].duplicates += 1;
                }
                !gone
            });
            if group.records.len() != before {
                if let Some(segs) = group.built.take() {
                    superseded.extend(segs.into_iter().map(|(s, _)| s.object_key));
                }
                if group.records.is_empty() {
                    group.built = Some(Vec::new());
                }
            }
        }
    }
    discard(catalog, store, std::mem::take(&mut staged.superseded)).await;
    if staged
        .groups
        .iter()
        .all(|g| g.built.as_ref().is_some_and(Vec::is_empty))
    {
        return Ok((staged.outcomes, 0, 0));
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

    const NOW: i64 = 1_796_000_000 * 1_000_000_000;

    async fn open(dir: &std::path::Path) -> (Catalog, BlobStore) {
        let url = format!("sqlite:{}", dir.join("catalog.db").display());
        let catalog = Catalog::connect(&url).await.unwrap();
        let store = BlobStore::local(dir.join("store")).unwrap();
        (catalog, store)
    }

    fn request(ids: &[&str]) -> (Request, oneshot::Receiver<Result<Outcome, CommitError>>) {
        let (reply, rx) = oneshot::channel();
        let req = Request {
            tenant_id: "t".into(),
            application_id: "a".into(),
            records: ids.iter().map(|id| record(id, NOW)).collect(),
            bytes: 0,
            arrived: tokio::time::Instant::now(),
            reply,
        };
        (req, rx)
    }

    async fn stored_objects(store: &BlobStore) -> usize {
        store.list("t/").await.unwrap().len()
    }

    /// Two batches in flight at once, both holding record `x`: both are written before either
    /// reaches the catalog; the first to commit stores it, the second answers it as a
    /// duplicate, commits the rest, and deletes the object it wrote with `x`.
    #[tokio::test]
    async fn batches_in_flight_with_the_same_record_store_it_once() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, store) = open(dir.path()).await;
        let config = CommitConfig::default();
        let (r1, _rx1) = request(&["x", "a"]);
        let (r2, _rx2) = request(&["b", "x"]);
        let (b1, b2) = (vec![r1], vec![r2]);
        let s1 = stage(&catalog, &store, &config, &b1).await.unwrap();
        let s2 = stage(&catalog, &store, &config, &b2).await.unwrap();
        assert_eq!(stored_objects(&store).await, 2);
        let (o1, n1, _) = commit_staged(&catalog, &store, &config, &b1, s1)
            .await
            .unwrap();
        let (o2, n2, _) = commit_staged(&catalog, &store, &config, &b2, s2)
            .await
            .unwrap();
        assert_eq!(
            (o1, n1),
            (
                vec![Outcome {
                    stored: 2,
                    duplicates: 0
                }],
                1
            )
        );
        assert_eq!(
            (o2, n2),
            (
                vec![Outcome {
                    stored: 1,
                    duplicates: 1
                }],
                1
            )
        );
        let segments = catalog
            .application_segments("t", "a", i64::MIN, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            segments.iter().map(|s| s.records).collect::<Vec<_>>(),
            [2, 1]
        );
        let ids: Vec<String> = ["a", "b", "x"].map(String::from).into();
        let mut known = catalog.known_records("t", &ids).await.unwrap();
        known.sort();
        assert_eq!(known, ids);
        // The second batch's first object (with `x`) was replaced and deleted.
        assert_eq!(stored_objects(&store).await, 2);
    }

    /// A committer with the default settings but `linger`, and its commit counter.
    fn start(
        catalog: &Catalog,
        store: &BlobStore,
        linger: Duration,
    ) -> (
        Committer,
        tokio::task::JoinHandle<()>,
        Arc<watch::Sender<u64>>,
    ) {
        let commits = Arc::new(watch::channel(0u64).0);
        let config = CommitConfig {
            linger,
            ..CommitConfig::default()
        };
        let (committer, task) = Committer::start(
            catalog.clone(),
            store.clone(),
            config,
            commits.clone(),
            Arc::new(Metrics::new()),
        );
        (committer, task, commits)
    }

    /// Many requests at once through the pipeline, overlapping in record ids: every id is
    /// stored once, and the answers add up to exactly that.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_with_shared_ids_are_answered_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, store) = open(dir.path()).await;
        let (committer, task, commits) = start(&catalog, &store, Duration::ZERO);
        let mut tasks = Vec::new();
        for c in 0..24 {
            let committer = committer.clone();
            tasks.push(tokio::spawn(async move {
                let mut records: Vec<Incoming> = (0..10)
                    .map(|i| record(&format!("shared-{}", (c + i) % 12), NOW))
                    .collect();
                records.push(record(&format!("own-{c}"), NOW));
                committer.submit(None, "t", "a", records).await.unwrap()
            }));
        }
        let mut stored = 0;
        let mut duplicates = 0;
        for t in tasks {
            let o = t.await.unwrap();
            stored += o.stored;
            duplicates += o.duplicates;
        }
        drop(committer);
        task.await.unwrap();
        assert_eq!(stored, 12 + 24);
        assert_eq!(stored + duplicates, 24 * 11);
        let segments = catalog
            .application_segments("t", "a", i64::MIN, i64::MAX)
            .await
            .unwrap();
        assert_eq!(segments.iter().map(|s| s.records).sum::<i64>(), 36);
        assert_eq!(stored_objects(&store).await, segments.len());
        assert!(*commits.borrow() >= 1);
    }

    /// The linger is waited only while another request is on its way: a lone request is
    /// committed at once (an hour's linger is not waited), and one on its way is waited for,
    /// its records joining the same segment.
    #[tokio::test]
    async fn the_linger_waits_only_for_requests_on_their_way() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, store) = open(dir.path()).await;
        let (committer, task, _) = start(&catalog, &store, Duration::from_secs(3600));
        let alone = committer.submit(Some(committer.arriving()), "t", "a", vec![record("x", NOW)]);
        let o = tokio::time::timeout(Duration::from_secs(60), alone)
            .await
            .expect("committed without waiting out the linger")
            .unwrap();
        assert_eq!(o.stored, 1);

        // `y` is queued while `z` is still on its way: `y` waits for it (a committer that
        // took only what was queued would have committed `y` alone by now).
        let on_its_way = committer.arriving();
        let y = tokio::spawn({
            let c = committer.clone();
            async move { c.submit(None, "t", "a", vec![record("y", NOW)]).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!y.is_finished(), "y waits for the request on its way");
        let z = committer.submit(Some(on_its_way), "t", "a", vec![record("z", NOW)]);
        let z = tokio::time::timeout(Duration::from_secs(60), z)
            .await
            .expect("committed once the last request on its way arrived");
        assert_eq!(z.unwrap().stored, 1);
        assert_eq!(y.await.unwrap().unwrap().stored, 1);
        let segments = catalog
            .application_segments("t", "a", i64::MIN, i64::MAX)
            .await
            .unwrap();
        assert_eq!(
            segments.iter().map(|s| s.records).collect::<Vec<_>>(),
            [1, 2]
        );
        drop(committer);
        task.await.unwrap();
    }

    /// A request that never arrives (its mark kept) holds a batch no longer than the linger.
    #[tokio::test]
    async fn the_linger_bounds_the_wait_for_a_request_that_never_comes() {
        let dir = tempfile::tempdir().unwrap();
        let (catalog, store) = open(dir.path()).await;
        let (committer, task, _) = start(&catalog, &store, Duration::from_millis(300));
        let never = committer.arriving();
        let started = std::time::Instant::now();
        let o = tokio::time::timeout(
            Duration::from_secs(60),
            committer.submit(None, "t", "a", vec![record("x", NOW)]),
        )
        .await
        .expect("committed once the linger ran out")
        .unwrap();
        assert_eq!(o.stored, 1);
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the linger was waited"
        );
        drop(never);
        drop(committer);
        task.await.unwrap();
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
