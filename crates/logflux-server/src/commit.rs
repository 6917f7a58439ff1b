//! Group commit: records of many requests become a few segments, written durably, then
//! recorded in the catalog in one transaction; only then is each request acknowledged.
//!
//! - A request's records are committed together or not at all, so an error answer (5xx)
//!   always means nothing of that request was stored (the Java SDK rebuilds retries, which
//!   cannot be deduplicated).
//! - A record whose id the tenant already stored, or that appears twice in one batch, is
//!   acknowledged as a duplicate and not stored again.
//! - A crash after an object is written but before the catalog commit leaves an orphan object
//!   that no query can see; housekeeping deletes such objects later.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::bloom;
use crate::catalog::{Catalog, NewSegment};
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

/// Commits a batch; returns each request's outcome, in order, and the segments and bytes
/// written.
async fn commit_batch(
    catalog: &Catalog,
    store: &BlobStore,
    config: &CommitConfig,
    batch: &[Request],
) -> Result<(Vec<Outcome>, usize, usize), CommitError> {
    // Which record ids each tenant already has.
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

    // New records, grouped by tenant and application, each request's count kept.
    let mut outcomes = vec![Outcome::default(); batch.len()];
    let mut groups: HashMap<(&str, &str), Vec<&Incoming>> = HashMap::new();
    for (i, req) in batch.iter().enumerate() {
        for rec in &req.records {
            if seen.insert((req.tenant_id.clone(), rec.meta.record_id.clone())) {
                outcomes[i].stored += 1;
                groups
                    .entry((&req.tenant_id, &req.application_id))
                    .or_default()
                    .push(rec);
            } else {
                outcomes[i].duplicates += 1;
            }
        }
    }

    // Build the segments.
    let mut segments = Vec::new();
    let mut objects = Vec::new();
    for ((tenant, app), records) in groups {
        let mut writer = SegmentWriter::new();
        let mut ids = Vec::new();
        for rec in records {
            if !writer.is_empty() && writer.body_len() + rec.body.len() > config.max_segment_bytes {
                let (seg, data) = finish_segment(
                    tenant,
                    app,
                    std::mem::take(&mut writer),
                    std::mem::take(&mut ids),
                );
                segments.push(seg);
                objects.push((segments.last().expect("pushed").object_key.clone(), data));
            }
            ids.push(rec.meta.record_id.clone());
            writer.add(rec.meta.clone(), &rec.body);
        }
        if !writer.is_empty() {
            let (seg, data) = finish_segment(tenant, app, writer, ids);
            objects.push((seg.object_key.clone(), data));
            segments.push(seg);
        }
    }
    if segments.is_empty() {
        return Ok((outcomes, 0, 0));
    }
    let bytes: usize = objects.iter().map(|(_, d)| d.len()).sum();

    // Durable objects first, then the catalog: a record is visible only when both are done.
    let puts = objects.into_iter().map(|(key, data)| async move {
        store
            .put(&key, data)
            .await
            .map_err(|e| CommitError::Storage(e.to_string()))
    });
    futures_util::future::try_join_all(puts).await?;
    catalog
        .commit_segments(&segments)
        .await
        .map_err(|e| CommitError::Catalog(e.to_string()))?;
    Ok((outcomes, segments.len(), bytes))
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
        bloom: bloom::build(&summary.tokens),
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
