//! From inputs to the spool: entries are gathered into micro-batches (max wait, max entries,
//! max bytes, and a time range no wider than `limits::MAX_RECORD_SPAN_NS`), enriched (in
//! place, or, when nothing reads the entries after sealing, at encoding), sealed
//! (zstd then AES-256-GCM under the current data key, bound to tenant, application, key id and
//! record id), given their blind tokens, and appended to the spool. Nothing in clear ever
//! reaches the disk.
//!
//! What a record tells the server is kept small: its time range is rounded outward to whole
//! granules (`batch.time_granularity_ms`), and an entry stamped too far in the future is
//! stamped with its arrival time instead (the server refuses such records), its own time kept
//! in metadata.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use logflux_crypto::{
    BatchSealer, CachedTokenSet, DEFAULT_TOKEN_CACHE, RecordBinding, SealingKey, TokenKey,
};
use logflux_proto::multipart::MAX_SEARCH_TOKENS;
use logflux_proto::{Entry, Metadata, limits, timefmt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::config::WhenFull;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
use crate::redact::Redactor;
use crate::spool::{Spool, SpoolError, SpoolRecord};

/// The agent's shared state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) metrics: Metrics,
    pub(crate) spool: Mutex<Spool>,
    /// Woken after every append (the shipper waits on it).
    pub(crate) appended: Notify,
    pub(crate) status: Mutex<Status>,
    /// Entries the server has acknowledged so far.
    pub(crate) shipped: tokio::sync::watch::Sender<u64>,
    /// Set when a shutdown ran out of time: the sealer stops waiting for room in the spool and
    /// for more entries, and counts what it could not spool in `unspooled`.
    pub(crate) abandon: tokio::sync::watch::Sender<bool>,
    /// Entries received but not spooled because the shutdown ran out of time.
    pub(crate) unspooled: std::sync::atomic::AtomicU64,
    /// The spool's head, after each acknowledgement (delivered or dead-lettered): everything
    /// before it has left the spool.
    pub(crate) head: tokio::sync::watch::Sender<crate::spool::Position>,
    /// The local API's open connections, in accept order (for `flush`).
    pub(crate) connections: Arc<crate::api::Connections>,
}

/// What `logflux-agent status` shows besides the spool.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Status {
    pub(crate) last_delivery_ns: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) endpoint: Option<String>,
}

impl Shared {
    fn abandoned(&self) -> bool {
        *self.abandon.borrow()
    }

    fn count_unspooled(&self, n: u64) {
        self.unspooled
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Brings the file-event counters of one input up to the tailer's totals.
    pub(crate) fn record_tail_stats(&self, input: &'static str, st: &crate::tail::TailStats) {
        use crate::metrics::FileEventLabel;
        for (event, total) in [
            ("lines", st.lines),
            ("bytes", st.bytes),
            ("long_lines_split", st.long_lines_split),
            ("long_lines_skipped", st.long_lines_skipped),
            ("invalid_utf8", st.invalid_utf8),
            ("truncations", st.truncations),
            ("rotations", st.rotations),
        ] {
            // One guard at a time (see status_json).
            let c = self
                .metrics
                .file_events
                .get_or_create(&FileEventLabel { input, event })
                .clone();
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        }
    }

    pub(crate) fn update_spool_gauges(&self) {
        let st = self.spool.lock().expect("lock").stats();
        self.metrics.spool_bytes.set(st.bytes as i64);
        self.metrics.spool_records.set(st.records as i64);
    }
}

/// The inputs' side of the pipeline. What is in flight between inputs and the sealer is
/// bounded in bytes (a semaphore of KiB permits travels with each message), so memory stays
/// bounded whatever the line sizes.
#[derive(Debug, Clone)]
pub(crate) struct Intake {
    tx: mpsc::UnboundedSender<Msg>,
    budget: Arc<Semaphore>,
    budget_kib: u32,
}

/// KiB of entries (by `Entry::approx_size`, their size in memory) in flight between the inputs
/// and the sealer: a quarter of the spool, within 1..4 MiB — tens of milliseconds of traffic at
/// full speed, so memory stays bounded and a full spool is felt by clients soon.
pub(crate) fn intake_budget_kib(spool_max_bytes: u64) -> u32 {
    (spool_max_bytes / 4 / 1024).clamp(1024, 4 * 1024) as u32
}

/// Entries on their way to the sealer, the room they take, and who wants to know when they
/// are in the spool.
#[derive(Debug)]
struct Msg {
    entries: Vec<Entry>,
    /// The entries' `Entry::approx_size`, summed once here for the whole way to the sealer.
    bytes: usize,
    _permit: OwnedSemaphorePermit,
    spooled: Option<oneshot::Sender<()>>,
    /// Seal what is gathered now instead of waiting out `max_wait` (a `flush`).
    seal_now: bool,
}

/// The pipeline is full: the spool is full (or the sealer is behind).
#[derive(Debug)]
pub(crate) struct QueueFull;

impl Intake {
    /// Hands entries over, waiting up to `wait` for room (the client is slowed down meanwhile);
    /// `QueueFull` when there is still none (the spool is full and the sealer cannot proceed).
    pub(crate) async fn send(&self, entries: Vec<Entry>, wait: Duration) -> Result<(), QueueFull> {
        self.send_inner(entries, Some(wait), None, false).await
    }

    /// Hands entries over, waiting as long as it takes for room, and returns what resolves
    /// once they are all in the spool (or dropped by `when_full: drop_newest`, and counted):
    /// inputs that keep a position (file offsets, journal cursors) advance it only then.
    pub(crate) async fn send_spooled(
        &self,
        entries: Vec<Entry>,
    ) -> Result<oneshot::Receiver<()>, QueueFull> {
        let (tx, rx) = oneshot::channel();
        self.send_inner(entries, None, Some(tx), false).await?;
        Ok(rx)
    }

    /// Waits until entries handed over with [`Intake::send_spooled`] are in the spool: whether
    /// they are (`false`: the sealer is gone, or the shutdown ran out of time before all were).
    /// At a stop the sealer is asked to seal what it holds at once, not after
    /// `batch.max_wait_ms`: the waiting input holds its intake, and so the sealer and the
    /// agent's stop, until then. The stop is waited for by its value, so a caller looks at
    /// `*stop.borrow()` afterwards, not for a change.
    pub(crate) async fn until_spooled(
        &self,
        spooled: &mut oneshot::Receiver<()>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        if !*stop.borrow() {
            tokio::select! {
                r = &mut *spooled => return r.is_ok(),
                _ = stop.wait_for(|stop| *stop) => {}
            }
        }
        let _ = self.flush().await;
        spooled.await.is_ok()
    }

    /// Asks the sealer to seal what it holds now; what is returned resolves once every entry
    /// handed over before is in the spool (the `flush` action).
    pub(crate) async fn flush(&self) -> Result<oneshot::Receiver<()>, QueueFull> {
        let (tx, rx) = oneshot::channel();
        self.send_inner(Vec::new(), None, Some(tx), true).await?;
        Ok(rx)
    }

    async fn send_inner(
        &self,
        entries: Vec<Entry>,
        wait: Option<Duration>,
        spooled: Option<oneshot::Sender<()>>,
        seal_now: bool,
    ) -> Result<(), QueueFull> {
        let bytes = entries.iter().map(Entry::approx_size).sum::<usize>();
        let kib = bytes.div_ceil(1024).max(1);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX).min(self.budget_kib);
        let acquire = self.budget.clone().acquire_many_owned(kib);
        let permit = match wait {
            Some(w) => tokio::time::timeout(w, acquire)
                .await
                .map_err(|_| QueueFull)?
                .map_err(|_| QueueFull)?,
            None => acquire.await.map_err(|_| QueueFull)?,
        };
        self.tx
            .send(Msg {
                entries,
                bytes,
                _permit: permit,
                spooled,
                seal_now,
            })
            .map_err(|_| QueueFull)
    }
}

/// Batching and enrichment settings.
#[derive(Debug, Clone)]
pub(crate) struct SealerConfig {
    pub(crate) max_wait: Duration,
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
    pub(crate) zstd_level: i32,
    /// The batch encoding version written (`batch.format`).
    pub(crate) batch_format: u8,
    /// Records' time ranges are rounded outward to multiples of this, in nanoseconds.
    pub(crate) time_granularity_ns: i64,
    pub(crate) tenant_id: String,
    pub(crate) application_id: String,
    pub(crate) when_full: WhenFull,
    /// Added to every entry's metadata unless the entry has the key.
    pub(crate) enrich: Metadata,
    /// Entries in flight before the sealer, in KiB (see `intake_budget_kib`).
    pub(crate) intake_budget_kib: u32,
    /// Redaction rules, applied after enrichment, before sealing.
    pub(crate) redactor: Arc<Redactor>,
    /// Forwarding targets, offered every entry after redaction.
    pub(crate) forwarders: Vec<crate::forward::Forwarder>,
}

/// Most batches sealed at once, whatever the core count: each sealing thread holds a batch, a
/// compression context and a token cache, so memory grows with their number; four already
/// seal faster than the spool's fsync and the server take records.
const MAX_SEALING_WORKERS: usize = 4;

/// How many batches are sealed at once: one per core (each on its own blocking thread, with
/// its own compression context and token cache), 1 to [`MAX_SEALING_WORKERS`].
fn sealing_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .clamp(1, MAX_SEALING_WORKERS)
}

/// Starts the sealer; it ends (after sealing what it holds) when every `Intake` is dropped.
///
/// One task gathers entries and cuts batches, in arrival order. Up to [`sealing_workers`]
/// batches are sealed at once on blocking threads; one writer task takes the sealed batches in
/// the order they were cut, offers their entries to the forwarders, appends them to the spool
/// (the fsync of one overlapping the sealing of the next) and tells the waiting inputs. The
/// queue between them is bounded, so a full spool still stops the gathering and, through the
/// intake budget, the inputs.
pub(crate) fn start(
    shared: Arc<Shared>,
    keys: KeyRing,
    token_key: TokenKey,
    config: SealerConfig,
) -> (Intake, tokio::task::JoinHandle<()>) {
    start_with_workers(shared, keys, token_key, config, sealing_workers())
}

fn start_with_workers(
    shared: Arc<Shared>,
    keys: KeyRing,
    token_key: TokenKey,
    config: SealerConfig,
    workers: usize,
) -> (Intake, tokio::task::JoinHandle<()>) {
    // When the spool is full the sealer waits, the byte budget runs out, and inputs are told.
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let budget_kib = config.intake_budget_kib;
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    let sealers = Arc::new(Sealers {
        keys: Mutex::new(keys),
        idle: Mutex::new(Vec::new()),
        token_key,
        config: config.clone(),
        shared: shared.clone(),
    });
    let mut abandon = shared.abandon.subscribe();
    let acks = Arc::new(Mutex::new(Acks::default()));
    // Batches being sealed or sealed, in the order they were cut; the writer takes them in that
    // order. A place in this queue is taken before a batch goes to a sealing thread, and a
    // sealing permit too, so at most `workers` batches are sealed at once (each with its
    // worker's compression context and token cache), and at most `SEALED_QUEUE × workers`
    // sealed batches wait for the writer, which spools those that are ready with one fsync
    // (a group commit).
    let (sealed_tx, sealed_rx) = mpsc::channel::<InFlight>(workers.max(1) * SEALED_QUEUE);
    let sealing_permits = Arc::new(Semaphore::new(workers.max(1)));
    let writer = tokio::spawn(write_in_order(
        shared.clone(),
        config.clone(),
        acks.clone(),
        sealed_rx,
    ));
    let task = tokio::spawn(async move {
        let mut pending: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        // Earliest and latest time in `pending`.
        let mut span = (i64::MAX, i64::MIN);
        let granule = config.time_granularity_ns;
        let take =
            |m: Msg, pending: &mut Vec<Entry>, bytes: &mut usize, span: &mut (i64, i64)| -> bool {
                let mut entries = m.entries;
                let restamped = restamp_future(&mut entries, timefmt::now_ns());
                if restamped > 0 {
                    shared.metrics.entries_restamped.inc_by(restamped);
                }
                // Sized once by the intake; a restamped entry gained a metadata pair.
                *bytes += if restamped > 0 {
                    entries.iter().map(Entry::approx_size).sum::<usize>()
                } else {
                    m.bytes
                };
                *span = entries.iter().fold(*span, |(lo, hi), e| {
                    (lo.min(e.timestamp_ns), hi.max(e.timestamp_ns))
                });
                acks.lock()
                    .expect("lock")
                    .received(entries.len(), m.spooled);
                pending.extend(entries);
                m.seal_now
            };
        // A flush came: everything gathered is sealed without waiting for more.
        let mut seal_now = false;
        loop {
            let first = if pending.is_empty() {
                match next_msg(&mut rx, &mut abandon).await {
                    Some(m) => Some(m),
                    None => break,
                }
            } else {
                None
            };
            if let Some(m) = first {
                seal_now |= take(m, &mut pending, &mut bytes, &mut span);
            }
            let deadline = tokio::time::Instant::now() + config.max_wait;
            let mut closed = false;
            while !seal_now
                && pending.len() < config.max_entries
                && bytes < config.max_bytes
                && rounded_span(span.0, span.1, granule) <= limits::MAX_RECORD_SPAN_NS
            {
                tokio::select! {
                    r = next_msg(&mut rx, &mut abandon) => match r {
                        Some(m) => seal_now |= take(m, &mut pending, &mut bytes, &mut span),
                        None => { closed = true; break; }
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            // Seal what fits in one batch; the rest starts the next one (moved into a vector
            // sized for a batch, so gathering the next one does not grow it step by step).
            let (cut, cut_bytes) = batch_len_of(&pending, bytes, &config);
            let mut rest = Vec::with_capacity(
                config
                    .max_entries
                    .min(PENDING_CAPACITY)
                    .max(pending.len() - cut),
            );
            rest.extend(pending.drain(cut..));
            let batch = std::mem::replace(&mut pending, rest);
            // What is left: the cut's own sum when it was cut by size, else from whichever
            // part is shorter (a file input's message can hold many batches: summing the rest
            // after every cut went over it again and again).
            bytes = if let Some(b) = cut_bytes {
                bytes.saturating_sub(b)
            } else if batch.len() <= pending.len() {
                bytes.saturating_sub(batch.iter().map(Entry::approx_size).sum())
            } else {
                pending.iter().map(Entry::approx_size).sum()
            };
            debug_assert_eq!(bytes, pending.iter().map(Entry::approx_size).sum::<usize>());
            span = pending.iter().fold((i64::MAX, i64::MIN), |(lo, hi), e| {
                (lo.min(e.timestamp_ns), hi.max(e.timestamp_ns))
            });
            let n = batch.len() as u64;
            // Waits while `SEALED_QUEUE × workers` batches wait for the writer.
            let Ok(place) = sealed_tx.reserve().await else {
                let lost = n + pending.len() as u64;
                tracing::error!(entries = lost, "spool writer stopped");
                shared.count_unspooled(lost);
                break;
            };
            let Ok(permit) = sealing_permits.clone().acquire_owned().await else {
                unreachable!("the sealing semaphore is never closed");
            };
            let s = sealers.clone();
            let sealing = tokio::task::spawn_blocking(move || {
                let sealed = s.seal(batch);
                drop(permit);
                sealed
            });
            place.send(InFlight { n, sealing });
            if pending.is_empty() {
                seal_now = false;
            }
            if closed && pending.is_empty() {
                break;
            }
        }
        // Everything cut is spooled (or counted) once the writer has taken it all.
        drop(sealed_tx);
        if let Err(e) = writer.await {
            tracing::error!(error = %e, "spool writer failed");
        }
        // Abandoned: inputs still open (a local client's connection) are refused from now on;
        // what they handed over meanwhile is counted.
        rx.close();
        while let Ok(m) = rx.try_recv() {
            shared.count_unspooled(m.entries.len() as u64);
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.spool.lock().expect("lock").sync()).await;
        let lost = shared.unspooled.load(std::sync::atomic::Ordering::Relaxed);
        if lost == 0 {
            tracing::info!("sealer stopped; everything received is sealed and spooled");
        } else {
            tracing::warn!(
                entries = lost,
                "sealer stopped; entries received but not spooled are lost"
            );
        }
    });
    (
        Intake {
            tx,
            budget,
            budget_kib,
        },
        task,
    )
}

/// A batch on a sealing thread: its size, and what the thread gives back.
struct InFlight {
    n: u64,
    sealing: tokio::task::JoinHandle<Sealed>,
}

/// Sealed batches that may wait for the writer, per sealing thread (see `start_with_workers`).
const SEALED_QUEUE: usize = 2;

/// Most sealed batches spooled with one fsync.
const MAX_GROUP: usize = 8;

/// Takes sealed batches in the order they were cut: forwards, spools, acknowledges. The
/// batches whose sealing is done when the writer gets to them are spooled together and made
/// durable with one fsync (a group commit: under `fsync: always`, one fsync per batch capped the
/// file input at a few hundred batches a second); their inputs are told only after it.
async fn write_in_order(
    shared: Arc<Shared>,
    config: SealerConfig,
    acks: Arc<Mutex<Acks>>,
    mut sealed: mpsc::Receiver<InFlight>,
) {
    let config = Arc::new(config);
    // A batch taken from the queue whose sealing was not done yet: the first of the next group.
    let mut carried: Option<InFlight> = None;
    loop {
        let first = match carried.take() {
            Some(f) => f,
            None => match sealed.recv().await {
                Some(f) => f,
                None => break,
            },
        };
        let mut group = vec![(first.n, first.sealing.await)];
        while group.len() < MAX_GROUP {
            match sealed.try_recv() {
                Ok(f) if f.sealing.is_finished() => group.push((f.n, f.sealing.await)),
                Ok(f) => {
                    carried = Some(f);
                    break;
                }
                Err(_) => break,
            }
        }
        let mut outs = Vec::with_capacity(group.len());
        for (n, r) in group {
            match r {
                Ok(out) => outs.push((n, Some(out))),
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "sealer thread failed");
                    shared.metrics.entries_dropped.inc_by(n);
                    outs.push((n, None));
                }
            }
        }
        let counts: Vec<u64> = outs.iter().map(|(n, _)| *n).collect();
        let total: u64 = counts.iter().sum();
        let (shared2, config2) = (shared.clone(), config.clone());
        let kept = tokio::task::spawn_blocking(move || {
            for out in outs.iter().filter_map(|(_, o)| o.as_ref()) {
                for e in &out.entries {
                    for f in &config2.forwarders {
                        f.offer(e);
                    }
                }
            }
            spool_group(&shared2, &config2, &outs)
        })
        .await;
        let kept = kept.unwrap_or_else(|e| {
            // Not known how far it got: the batches are counted as dropped (an upper bound),
            // so the loss shows, and their inputs are not told they are spooled.
            tracing::error!(error = %e, entries = total, "spool writer thread failed");
            shared.metrics.entries_dropped.inc_by(total);
            false
        });
        let mut told = acks.lock().expect("lock");
        for n in counts {
            told.done(n, kept);
        }
    }
}

/// The next message for the sealer; `None` when every intake is gone, or when the shutdown
/// ran out of time and nothing more is waiting.
async fn next_msg(
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    abandon: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Msg> {
    if *abandon.borrow() {
        return rx.try_recv().ok();
    }
    tokio::select! {
        m = rx.recv() => m,
        _ = abandon.wait_for(|a| *a) => rx.try_recv().ok(),
    }
}

// How far beyond the agent's clock an entry's time may be before it is stamped with its
// arrival time is `detect::time::FUTURE_MARGIN_NS`: well within what the server accepts
// (`limits::MAX_FUTURE_NS`), so that the record's range rounded outward and some clock skew
// still pass.
#[cfg(test)]
use crate::detect::time::FUTURE_MARGIN_NS;

/// The metadata key that keeps the own time of an entry stamped with its arrival time.
pub(crate) const ORIGINAL_TIME_KEY: &str = crate::detect::ORIGINAL_TIME_KEY;

/// Stamps entries whose time is not plausible ([`crate::detect::time::plausible`], the agent's
/// one rule: beyond `now` + [`crate::detect::time::FUTURE_MARGIN_NS`] — a line with a wrong year, a producer's clock
/// far ahead — or before 1990, an unset clock) with `now`, keeping their own time (RFC 3339) under
/// [`ORIGINAL_TIME_KEY`]; returns how many were.
fn restamp_future(entries: &mut [Entry], now: i64) -> u64 {
    let mut n = 0;
    for e in entries {
        if !crate::detect::time::plausible(e.timestamp_ns, now) {
            e.metadata
                .insert(ORIGINAL_TIME_KEY, timefmt::format_rfc3339(e.timestamp_ns));
            e.timestamp_ns = now;
            n += 1;
        }
    }
    n
}

/// The time range a record declares for entries from `lo` to `hi`: rounded outward to whole
/// granules, `[⌊lo⌋, ⌊hi⌋ + granule − 1]`, so it says only which granules hold entries (a
/// one-entry batch no longer gives its time to the nanosecond).
pub(crate) fn rounded_range(lo: i64, hi: i64, granule: i64) -> (i64, i64) {
    let g = i128::from(granule.max(1));
    let clamp = |v: i128| v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let floor = |v: i64| i128::from(v).div_euclid(g) * g;
    (clamp(floor(lo)), clamp(floor(hi) + g - 1))
}

/// A record id: 128 random bits written as a ULID is (26 Crockford base-32 digits). A real ULID
/// would start with the sealing time in milliseconds, telling the server more than the record's
/// rounded range does.
fn random_record_id() -> String {
    let mut bits = [0u8; 16];
    if logflux_crypto::random_bytes(&mut bits).is_err() {
        // The system's generator failed (it does not in practice): a ULID is still unique.
        return ulid::Ulid::new().to_string().to_lowercase();
    }
    ulid::Ulid(u128::from_be_bytes(bits))
        .to_string()
        .to_lowercase()
}

/// Width of the rounded range of entries from `lo` to `hi` (0 for none).
fn rounded_span(lo: i64, hi: i64, granule: i64) -> i64 {
    if lo > hi {
        return 0;
    }
    let (lo, hi) = rounded_range(lo, hi, granule);
    hi.saturating_sub(lo)
}

/// How many of `pending`'s first entries make the next batch: at most `max_entries`, at most
/// `max_bytes` (but at least one entry), and a rounded time range no wider than
/// `limits::MAX_RECORD_SPAN_NS` — files read from archives can hold months of lines, which
/// then make several records, each with a true, bounded range.
#[cfg(test)]
fn batch_len(pending: &[Entry], config: &SealerConfig) -> usize {
    cut_len(pending, config, true).0
}

/// [`batch_len`] for entries whose `approx_size` sum is `pending_bytes`: their sizes are looked
/// at only when together they are over `max_bytes` (otherwise no prefix is), and then the
/// batch's own sum comes with its length.
fn batch_len_of(
    pending: &[Entry],
    pending_bytes: usize,
    config: &SealerConfig,
) -> (usize, Option<usize>) {
    cut_len(pending, config, pending_bytes > config.max_bytes)
}

/// Entries a new pending vector has room for (growing it step by step moves every entry
/// several times).
const PENDING_CAPACITY: usize = 1024;

/// The batch's length, and with `by_bytes` the sum of its entries' `approx_size`.
fn cut_len(pending: &[Entry], config: &SealerConfig, by_bytes: bool) -> (usize, Option<usize>) {
    let sum = |bytes: usize| by_bytes.then_some(bytes);
    let (mut lo, mut hi, mut bytes) = (i64::MAX, i64::MIN, 0usize);
    for (i, e) in pending.iter().enumerate() {
        if i == config.max_entries {
            return (i, sum(bytes));
        }
        let (l, h) = (lo.min(e.timestamp_ns), hi.max(e.timestamp_ns));
        let b = if by_bytes { bytes + e.approx_size() } else { 0 };
        if i > 0
            && (b > config.max_bytes
                || rounded_span(l, h, config.time_granularity_ns) > limits::MAX_RECORD_SPAN_NS)
        {
            return (i, sum(bytes));
        }
        (lo, hi, bytes) = (l, h, b);
    }
    (pending.len(), sum(bytes))
}

/// Entries received and entries done (spooled or dropped) since start, and who waits for
/// which count: batches keep arrival order, so counts are enough.
#[derive(Debug, Default)]
struct Acks {
    received: u64,
    done: u64,
    /// Entries up to this count may have been lost (not spooled: the shutdown ran out of time).
    lost_through: u64,
    /// The entries each waiter handed over, as the counts `(from, upto]`, and its sender.
    waiting: std::collections::VecDeque<(u64, u64, oneshot::Sender<()>)>,
}

impl Acks {
    fn received(&mut self, n: usize, tx: Option<oneshot::Sender<()>>) {
        let from = self.received;
        self.received += n as u64;
        if let Some(tx) = tx {
            self.waiting.push_back((from, self.received, tx));
        }
    }

    /// The next `n` entries are done: spooled, or dropped on purpose and counted
    /// (`when_full: drop_newest`, a batch that could not be sealed) when `kept`; else some may
    /// be lost to a shutdown that ran out of time, and whoever handed any of them over hears
    /// nothing but a closed channel, so that it keeps them (a file offset not committed, an
    /// HTTP sender not told they were accepted) instead of taking them as spooled.
    fn done(&mut self, n: u64, kept: bool) {
        self.done += n;
        if !kept {
            self.lost_through = self.done;
        }
        while self
            .waiting
            .front()
            .is_some_and(|(_, upto, _)| *upto <= self.done)
        {
            if let Some((from, _, tx)) = self.waiting.pop_front()
                && from >= self.lost_through
            {
                let _ = tx.send(());
            }
        }
    }
}

/// What the sealing threads share: the key ring (behind a short lock) and idle workers.
struct Sealers {
    shared: Arc<Shared>,
    keys: Mutex<KeyRing>,
    /// Compression contexts and token caches not in use (one per thread that sealed at once).
    idle: Mutex<Vec<Worker>>,
    token_key: TokenKey,
    config: SealerConfig,
}

/// One sealing thread's reusable state.
struct Worker {
    sealer: BatchSealer,
    tokens: CachedTokenSet,
}

/// A batch after sealing: its entries (redacted, and enriched unless the enrichment was applied
/// at encoding — see `Sealers::enrich_at_encoding`, which must name every reader of these
/// entries: today the forwarders; empty when there is none) and its record, `None` when it
/// could not be sealed (counted as dropped).
struct Sealed {
    entries: Vec<Entry>,
    /// Usually one record; more when the batch had more distinct tokens than a record may carry
    /// (`multipart::MAX_SEARCH_TOKENS`) and was split. Empty when it could not be sealed.
    records: Vec<SpoolRecord>,
}

impl Sealers {
    /// Enriches, redacts and seals a batch (on a blocking thread).
    fn seal(&self, mut batch: Vec<Entry>) -> Sealed {
        if batch.is_empty() {
            return Sealed {
                entries: batch,
                records: Vec::new(),
            };
        }
        let config = &self.config;
        // Without redaction rules and forwarders (which see each entry enriched), the
        // enrichment is applied as the batch is encoded and its tokens added once per batch,
        // instead of two strings copied into (and freed from) every entry: the same record.
        if !self.enrich_at_encoding() {
            for e in &mut batch {
                for (k, v) in &config.enrich {
                    e.metadata.insert_if_absent(k, || v.into());
                }
                config.redactor.redact(e);
            }
        }
        let (key_id, sealing) = {
            let mut keys = self.keys.lock().expect("lock");
            match keys.for_next_batch() {
                Ok(k) => (k.key_id.clone(), k.sealing.clone()),
                Err(e) => {
                    // Without a key nothing can be sealed; the entries are counted as dropped.
                    tracing::error!(error = %e, entries = batch.len(), "cannot create a data key");
                    self.shared
                        .metrics
                        .entries_dropped
                        .inc_by(batch.len() as u64);
                    return Sealed {
                        entries: batch,
                        records: Vec::new(),
                    };
                }
            }
        };
        let mut worker = self
            .idle
            .lock()
            .expect("lock")
            .pop()
            .unwrap_or_else(|| Worker {
                sealer: BatchSealer::new(config.zstd_level).with_format(config.batch_format),
                tokens: CachedTokenSet::new(self.token_key.clone(), DEFAULT_TOKEN_CACHE),
            });
        let mut records = Vec::with_capacity(1);
        self.seal_with(&mut worker, &key_id, &sealing, &batch, &mut records);
        self.idle.lock().expect("lock").push(worker);
        for r in &records {
            self.shared.metrics.batches_sealed.inc();
            self.shared
                .metrics
                .entries_sealed
                .inc_by(u64::from(r.count));
        }
        if config.forwarders.is_empty() {
            // Nothing reads them after sealing: freed here, on the sealing threads, rather than
            // on the one writer.
            batch = Vec::new();
        }
        Sealed {
            entries: batch,
            records,
        }
    }

    /// Whether `config.enrich` is left out of the entries and applied at encoding (see `seal`):
    /// only when nothing reads the sealed entries (`Sealed::entries`) — a redaction rule may
    /// test the enriched metadata, and forwarders send the entries on. A new reader of them
    /// must be added here.
    fn enrich_at_encoding(&self) -> bool {
        self.config.redactor.is_empty() && self.config.forwarders.is_empty()
    }

    /// Seals `batch` into `out`: one record, or, when its entries have more distinct tokens
    /// than the server takes on one record, the records of its halves (the server would refuse
    /// the whole record, and the shipper would dead-letter it). A single entry over the limit
    /// keeps the first `MAX_SEARCH_TOKENS` of its sorted tokens — a search for one of the
    /// others misses it — and is counted in `logflux_agent_entries_tokens_truncated_total`.
    fn seal_with(
        &self,
        worker: &mut Worker,
        key_id: &str,
        sealing: &SealingKey,
        batch: &[Entry],
        out: &mut Vec<SpoolRecord>,
    ) {
        let config = &self.config;
        worker.tokens.add_entries(batch);
        let no_defaults = Metadata::new();
        let defaults = if self.enrich_at_encoding() {
            &config.enrich
        } else {
            &no_defaults
        };
        for (k, v) in defaults {
            if batch.iter().any(|e| !e.metadata.contains_key(k)) {
                worker.tokens.add_metadata(k, v);
            }
        }
        let mut tokens = worker.tokens.finish();
        if tokens.len() > MAX_SEARCH_TOKENS {
            if batch.len() > 1 {
                let (a, b) = batch.split_at(batch.len() / 2);
                self.seal_with(worker, key_id, sealing, a, out);
                self.seal_with(worker, key_id, sealing, b, out);
                return;
            }
            tracing::warn!(
                tokens = tokens.len(),
                limit = MAX_SEARCH_TOKENS,
                "an entry has more distinct words than a record may carry tokens; some of its words will not find it"
            );
            self.shared.metrics.entries_tokens_truncated.inc();
            tokens.truncate(MAX_SEARCH_TOKENS);
        }
        let record_id = random_record_id();
        let binding = RecordBinding {
            tenant: &config.tenant_id,
            application: &config.application_id,
            key_id,
            record_id: &record_id,
        };
        let sealed = match worker
            .sealer
            .seal_with_defaults(sealing, &binding, batch, defaults)
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "sealing failed");
                self.shared
                    .metrics
                    .entries_dropped
                    .inc_by(batch.len() as u64);
                return;
            }
        };
        let (min_ts, max_ts) = rounded_range(
            sealed.time_range.0,
            sealed.time_range.1,
            config.time_granularity_ns,
        );
        out.push(SpoolRecord {
            record_id,
            key_id: key_id.to_owned(),
            nonce: sealed.nonce,
            count: sealed.count,
            min_ts,
            max_ts,
            sealed_ns: logflux_proto::timefmt::now_ns(),
            tokens: tokens.into_iter().map(|t| t.0).collect(),
            body: sealed.ciphertext,
        });
    }
}

/// Appends a group's records and makes them durable (under `fsync: always`, with one fsync),
/// retrying until the shutdown runs out of time. When an fsync fails the spool cuts what it
/// could not make durable (`Spool::sync`: a later fsync that succeeds would not prove those
/// pages reached the disk), so the whole group is appended again; records of the group already
/// made durable before a segment roll are then in the spool twice, and the server answers the
/// second as a duplicate. Nobody is told the group's entries are spooled before this returns.
/// Whether every entry was spooled or dropped on purpose (`when_full: drop_newest`); `false`
/// when the shutdown ran out of time and some were lost.
fn spool_group(shared: &Shared, config: &SealerConfig, outs: &[(u64, Option<Sealed>)]) -> bool {
    let mut failures = 0u64;
    loop {
        let rewinds = shared.spool.lock().expect("lock").rewinds();
        let (mut bytes, mut appended, mut lost) = (0u64, 0u64, false);
        for out in outs.iter().filter_map(|(_, o)| o.as_ref()) {
            for record in &out.records {
                match spool_record(shared, config, record, u64::from(record.count)) {
                    Appended::Yes => {
                        bytes += record.encoded_len() as u64;
                        appended += u64::from(record.count);
                    }
                    Appended::Dropped => {}
                    Appended::Lost => lost = true,
                }
            }
        }
        let synced = {
            let mut spool = shared.spool.lock().expect("lock");
            match spool.sync_appended() {
                Ok(()) if spool.rewinds() == rewinds => Ok(()),
                // An fsync failed midway (at a segment roll): part of the group was cut.
                Ok(()) => Err("records were cut after a failed fsync".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        };
        let error = match synced {
            Ok(()) => {
                shared.metrics.spooled_bytes.inc_by(bytes);
                shared.update_spool_gauges();
                shared.appended.notify_one();
                return !lost;
            }
            Err(e) => e,
        };
        failures += 1;
        if failures == 1 || failures.is_multiple_of(60) {
            tracing::error!(error = %error, attempts = failures, "spool fsync failed; the batches are appended again every 500 ms");
        }
        if shared.abandoned() {
            // Nothing waits any longer: what was not made durable is counted.
            shared.count_unspooled(appended);
            return false;
        }
        if let Err(e) = shared.spool.lock().expect("lock").discard_unsynced() {
            tracing::error!(error = %e, "spool: cutting records not made durable failed");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// What became of a record handed to [`spool_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    Yes,
    /// Dropped on purpose, and counted: the spool was full under `when_full: drop_newest`.
    Dropped,
    /// Not appended, and counted as not spooled: the shutdown ran out of time.
    Lost,
}

/// Appends a sealed record of `n` entries to the spool (without its fsync: `spool_group` makes
/// the group durable), waiting for room (`when_full: block`) or dropping it (`drop_newest`),
/// retrying disk errors, until the shutdown runs out of time.
fn spool_record(shared: &Shared, config: &SealerConfig, record: &SpoolRecord, n: u64) -> Appended {
    let mut waited = false;
    let mut failures = 0u64;
    let mut last_logged: Option<std::time::Instant> = None;
    loop {
        let r = shared.spool.lock().expect("lock").append_deferred(record);
        match r {
            Ok(()) => return Appended::Yes,
            Err(SpoolError::Full { .. }) if config.when_full == WhenFull::DropNewest => {
                shared.metrics.entries_dropped.inc_by(n);
                tracing::warn!(
                    entries = n,
                    "spool full: batch dropped (when_full: drop_newest)"
                );
                return Appended::Dropped;
            }
            Err(_) if shared.abandoned() => {
                // The shutdown ran out of time: nothing will make room any more.
                shared.count_unspooled(n);
                return Appended::Lost;
            }
            Err(SpoolError::Full { used, max }) => {
                if !waited {
                    // The group's records appended so far need not wait unsynced meanwhile
                    // (a failure here shows as a rewind at the group's fsync).
                    let _ = shared.spool.lock().expect("lock").sync_appended();
                    tracing::warn!(
                        used,
                        max,
                        "spool full: inputs pause until the server takes records"
                    );
                    waited = true;
                }
                // The shipper frees space; wait for it (inputs see queue_full meanwhile).
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                // Disk errors (e.g. no space left): keep the batch and retry; inputs see
                // queue_full meanwhile. Logged once, then every 30 s while it lasts.
                failures += 1;
                if last_logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                    tracing::error!(error = %e, attempts = failures, "spool append failed; retrying every 500 ms");
                    last_logged = Some(std::time::Instant::now());
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::Level;

    const S: i64 = 1_000_000_000;
    const H: i64 = 3600 * S;

    fn config(granule: i64) -> SealerConfig {
        SealerConfig {
            max_wait: Duration::from_millis(1),
            max_entries: 1000,
            max_bytes: 1 << 20,
            zstd_level: 1,
            batch_format: logflux_proto::batch::VERSION,
            time_granularity_ns: granule,
            tenant_id: String::new(),
            application_id: String::new(),
            when_full: WhenFull::Block,
            enrich: Metadata::new(),
            intake_budget_kib: 1024,
            redactor: Arc::new(Redactor::new(&[]).expect("no rules")),
            forwarders: Vec::new(),
        }
    }

    fn at(ts: i64) -> Entry {
        Entry::new(ts, Level::Info, "s", "line")
    }

    /// Whoever handed over an entry that a shutdown out of time left out of the spool hears a
    /// closed channel, not "spooled": a file input then keeps its offset, the HTTP input
    /// answers an error and the sender retries. Others, before and after, are told.
    #[test]
    fn waiters_whose_entries_were_lost_are_not_told_they_are_spooled() {
        use tokio::sync::oneshot::error::TryRecvError;
        let mut acks = Acks::default();
        let mut rx = Vec::new();
        // Entries 1–3, 4–5, 6–9 and 10, each handed over by one waiter; 11–12 by nobody.
        for n in [3, 2, 4, 1] {
            let (tx, r) = oneshot::channel();
            acks.received(n, Some(tx));
            rx.push(r);
        }
        acks.received(2, None);
        acks.done(4, true);
        assert_eq!(rx[0].try_recv(), Ok(()));
        assert_eq!(rx[1].try_recv(), Err(TryRecvError::Empty));
        // Entries 5–6 lost: the second and third waiters each had one of them.
        acks.done(2, false);
        assert_eq!(rx[1].try_recv(), Err(TryRecvError::Closed));
        assert_eq!(rx[2].try_recv(), Err(TryRecvError::Empty));
        acks.done(6, true);
        assert_eq!(rx[2].try_recv(), Err(TryRecvError::Closed));
        assert_eq!(rx[3].try_recv(), Ok(()));
        assert!(acks.waiting.is_empty());
    }

    #[test]
    fn ranges_are_rounded_outward_to_whole_granules() {
        assert_eq!(
            rounded_range(1_500_000_000, 1_500_000_000, S),
            (S, 2 * S - 1)
        );
        // An entry on a granule's first nanosecond says no more than one inside it.
        assert_eq!(rounded_range(S, S, S), (S, 2 * S - 1));
        assert_eq!(rounded_range(-1, 0, S), (-S, S - 1));
        assert_eq!(rounded_range(7, 9, 1), (7, 9));
        assert_eq!(
            rounded_range(i64::MIN, i64::MAX, S),
            (i64::MIN, i64::MAX),
            "extremes saturate"
        );
        assert_eq!(rounded_span(i64::MAX, i64::MIN, S), 0, "no entries");
    }

    #[test]
    fn batches_are_cut_before_their_rounded_range_exceeds_the_limit() {
        let c = config(S);
        let base = 1_763_675_346 * S + 123;
        // Days of archived lines, one every 10 minutes.
        let pending: Vec<Entry> = (0..1000).map(|i| at(base + i * 600 * S)).collect();
        let mut rest = &pending[..];
        let mut batches = 0;
        while !rest.is_empty() {
            let n = batch_len(rest, &c);
            assert!(n >= 1);
            let (lo, hi) = rest[..n].iter().fold((i64::MAX, i64::MIN), |(l, h), e| {
                (l.min(e.timestamp_ns), h.max(e.timestamp_ns))
            });
            let (rlo, rhi) = rounded_range(lo, hi, S);
            assert!(rhi - rlo <= limits::MAX_RECORD_SPAN_NS, "batch {batches}");
            rest = &rest[n..];
            batches += 1;
        }
        // Six entries per hour: a batch holds the lines of at most an hour.
        assert!((160..=200).contains(&batches), "{batches} batches");
        // Lines exactly an hour apart: rounding outward makes their range wider than an hour.
        assert_eq!(batch_len(&[at(base), at(base + H)], &c), 1);
        assert_eq!(batch_len(&[at(10 * H), at(11 * H - S)], &c), 2);
        // One entry always makes a batch, whatever its time.
        assert_eq!(batch_len(&[at(i64::MIN), at(i64::MAX)], &c), 1);
        assert_eq!(batch_len(&[at(i64::MAX)], &c), 1);
    }

    #[test]
    fn batches_are_cut_at_max_entries_and_max_bytes() {
        let mut c = config(S);
        c.max_entries = 10;
        let pending: Vec<Entry> = (0..25).map(|_| at(5 * S)).collect();
        assert_eq!(batch_len(&pending, &c), 10);
        c.max_entries = 1000;
        c.max_bytes = 3 * at(0).approx_size();
        assert_eq!(batch_len(&pending, &c), 3);
        let mut big = at(0);
        big.payload = "x".repeat(10 * c.max_bytes);
        assert_eq!(
            batch_len(&[big.clone(), at(0)], &c),
            1,
            "at least one entry"
        );
        assert_eq!(batch_len(&[], &c), 0);
    }

    proptest::proptest! {
        /// Cutting `pending` batch after batch delivers every entry once, in order, and every
        /// batch of more than one entry keeps within every limit.
        #[test]
        fn cuts_deliver_everything_within_the_limits(
            times in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::any::<i64>(),
                    0i64..10 * H,
                    proptest::strategy::Just(i64::MIN),
                    proptest::strategy::Just(i64::MAX),
                ],
                0..200,
            ),
            sizes in proptest::collection::vec(0usize..4000, 200),
            max_entries in 1usize..50,
            granule_ms in 1i64..=60_000,
        ) {
            let mut c = config(granule_ms * 1_000_000);
            c.max_entries = max_entries;
            c.max_bytes = 8 * 1024;
            let pending: Vec<Entry> = times
                .iter()
                .zip(&sizes)
                .map(|(&t, &n)| {
                    let mut e = at(t);
                    e.payload = "x".repeat(n);
                    e
                })
                .collect();
            let mut rest = &pending[..];
            let mut out = Vec::new();
            while !rest.is_empty() {
                let n = batch_len(rest, &c);
                proptest::prop_assert!(n >= 1 && n <= max_entries);
                let batch = &rest[..n];
                if n > 1 {
                    let bytes: usize = batch.iter().map(Entry::approx_size).sum();
                    proptest::prop_assert!(bytes <= c.max_bytes);
                    let (lo, hi) = batch.iter().fold((i64::MAX, i64::MIN), |(l, h), e| {
                        (l.min(e.timestamp_ns), h.max(e.timestamp_ns))
                    });
                    proptest::prop_assert!(
                        rounded_span(lo, hi, c.time_granularity_ns) <= limits::MAX_RECORD_SPAN_NS
                    );
                }
                out.extend_from_slice(batch);
                rest = &rest[n..];
            }
            proptest::prop_assert_eq!(out, pending);
        }
    }

    #[test]
    fn entries_far_in_the_future_or_before_1990_get_their_arrival_time() {
        let now = 1_763_675_346 * S;
        let mut entries = vec![
            at(now + FUTURE_MARGIN_NS),
            at(now + FUTURE_MARGIN_NS + 1),
            at(4_102_444_800 * S), // 2100-01-01
            at(now - 365 * 24 * H),
            at(86_400 * S), // 1970-01-02: an unset clock
        ];
        assert_eq!(restamp_future(&mut entries, now), 3);
        assert_eq!(entries[4].timestamp_ns, now);
        assert_eq!(
            entries[4].metadata[ORIGINAL_TIME_KEY],
            "1970-01-02T00:00:00Z"
        );
        assert_eq!(entries[0].timestamp_ns, now + FUTURE_MARGIN_NS);
        assert!(!entries[0].metadata.contains_key(ORIGINAL_TIME_KEY));
        assert_eq!(entries[1].timestamp_ns, now);
        assert_eq!(entries[2].timestamp_ns, now);
        assert_eq!(
            entries[2].metadata[ORIGINAL_TIME_KEY],
            "2100-01-01T00:00:00Z"
        );
        assert_eq!(
            entries[3].timestamp_ns,
            now - 365 * 24 * H,
            "old times are kept"
        );
    }

    /// `f`, or a failed test after a minute (a regression hangs no test run).
    async fn within<F: std::future::Future>(f: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("timed out after 60 s")
    }

    /// A sealer with `workers` sealing threads over a fresh spool in `dir`, and the private key
    /// that opens its records.
    fn sealer_in(
        dir: &std::path::Path,
        workers: usize,
        config: SealerConfig,
    ) -> (
        Arc<Shared>,
        Intake,
        tokio::task::JoinHandle<()>,
        logflux_crypto::PrivateKey,
        TokenKey,
    ) {
        let private = logflux_crypto::PrivateKey::generate(2048).expect("key");
        let spool = Spool::open(dir, crate::spool::SpoolConfig::default()).expect("spool");
        let head = spool.head();
        let shared = Arc::new(Shared {
            metrics: Metrics::new(),
            spool: Mutex::new(spool),
            appended: Notify::new(),
            status: Mutex::new(Status::default()),
            shipped: tokio::sync::watch::channel(0).0,
            abandon: tokio::sync::watch::channel(false).0,
            unspooled: std::sync::atomic::AtomicU64::new(0),
            head: tokio::sync::watch::channel(head).0,
            connections: Arc::default(),
        });
        let keys = KeyRing::new(dir, private.public_key(), Duration::from_secs(3600), 3)
            .expect("key ring");
        let token_key = logflux_crypto::SearchKey::from_text(&"44".repeat(32))
            .expect("search key")
            .token_key("app");
        let (intake, task) =
            start_with_workers(shared.clone(), keys, token_key.clone(), config, workers);
        (shared, intake, task, private, token_key)
    }

    /// Every record in the spool, opened: (record, its entries).
    fn spooled(
        shared: &Shared,
        dir: &std::path::Path,
        private: &logflux_crypto::PrivateKey,
        config: &SealerConfig,
    ) -> Vec<(SpoolRecord, Vec<Entry>)> {
        let records = shared
            .spool
            .lock()
            .expect("lock")
            .peek(usize::MAX, usize::MAX)
            .expect("peek");
        records
            .into_iter()
            .map(|(r, _)| {
                let wrapped = std::fs::read(dir.join("keys").join(format!("{}.wrapped", r.key_id)))
                    .expect("wrapped key");
                let dek = logflux_crypto::unwrap_dek(private, &wrapped).expect("unwrap");
                let binding = RecordBinding {
                    tenant: &config.tenant_id,
                    application: &config.application_id,
                    key_id: &r.key_id,
                    record_id: &r.record_id,
                };
                let entries =
                    logflux_crypto::open_batch(&SealingKey::new(&dek), &binding, &r.nonce, &r.body)
                        .expect("open");
                (r, entries)
            })
            .collect()
    }

    /// A batch whose entries hold more distinct words than the server takes tokens for on one
    /// record is sealed as several records, each within the limit (the server would refuse the
    /// whole record, and the shipper dead-letter it); an entry over the limit on its own keeps
    /// the limit's worth of tokens and is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_with_too_many_distinct_tokens_is_split_into_records_the_server_takes() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config(S);
        // One message of 401 entries: all of them in the one batch cut (max_wait 1 ms).
        c.max_entries = 1000;
        let (shared, intake, task, private, _) = sealer_in(dir.path(), 2, c.clone());
        let base = 1_763_675_346 * S;
        // 400 entries of 60 distinct words each: 24 000 distinct words in one batch.
        let mut entries: Vec<Entry> = (0..400)
            .map(|i| {
                let mut e = at(base);
                e.payload = (0..60)
                    .map(|w| format!("w{i}x{w}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                e
            })
            .collect();
        // And one entry with 9 000 distinct words by itself.
        let mut huge = at(base);
        huge.payload = (0..9000)
            .map(|w| format!("h{w}"))
            .collect::<Vec<_>>()
            .join(" ");
        entries.push(huge);
        let want: Vec<String> = entries.iter().map(|e| e.payload.clone()).collect();
        within(intake.send_spooled(entries).await.expect("room"))
            .await
            .expect("spooled");
        let records = spooled(&shared, dir.path(), &private, &c);
        assert!(records.len() >= 4, "{} records", records.len());
        for (r, es) in &records {
            assert!(
                r.tokens.len() <= MAX_SEARCH_TOKENS,
                "{} tokens",
                r.tokens.len()
            );
            assert_eq!(r.count as usize, es.len());
        }
        let got: Vec<String> = records
            .iter()
            .flat_map(|(_, es)| es.iter().map(|e| e.payload.clone()))
            .collect();
        assert_eq!(got, want, "every entry once, in order");
        assert_eq!(shared.metrics.entries_tokens_truncated.get(), 1);
        assert_eq!(shared.metrics.entries_sealed.get(), 401);
        drop(intake);
        task.await.expect("sealer");
    }

    /// Failed fsyncs (a dying disk): the writer's group is cut and appended again, inputs are
    /// told their entries are spooled only once an fsync held, and the spool has every entry
    /// once, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fsync_appends_the_group_again_before_anyone_is_told() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config(S);
        c.max_entries = 3;
        let (shared, intake, task, private, _) = sealer_in(dir.path(), 2, c.clone());
        shared.spool.lock().expect("lock").fail_next_syncs(2);
        let base = 1_763_675_346 * S;
        let mut waits = Vec::new();
        for m in 0..10 {
            let mut e = at(base + m);
            e.payload = format!("line {m}");
            waits.push(intake.send_spooled(vec![e]).await.expect("room"));
        }
        for w in waits {
            within(w).await.expect("spooled");
        }
        assert_eq!(shared.spool.lock().expect("lock").rewinds(), 2);
        let got: Vec<String> = spooled(&shared, dir.path(), &private, &c)
            .iter()
            .flat_map(|(_, es)| es.iter().map(|e| e.payload.clone()))
            .collect();
        let want: Vec<String> = (0..10).map(|m| format!("line {m}")).collect();
        assert_eq!(got, want, "every entry once, in order");
        drop(intake);
        within(task).await.expect("sealer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sealing_on_several_threads_spools_batches_in_the_order_they_came() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config(S);
        // Many small batches, sealed four at a time, under keys rotated every 3 batches.
        c.max_entries = 7;
        c.enrich.insert("host", "h1");
        let (shared, intake, task, private, token_key) = sealer_in(dir.path(), 4, c.clone());
        let base = 1_763_675_346 * S;
        let mut waits = Vec::new();
        for m in 0..60 {
            let entries: Vec<Entry> = (0..(m % 5 + 1))
                .map(|i| {
                    let mut e = at(base + m);
                    e.payload = format!("message {m} part {i} Word{}", m % 3);
                    // Some carry the enriched key themselves, and keep their value.
                    if m % 4 == 1 && i == 0 {
                        e.metadata.insert("host", format!("own-{m}"));
                    }
                    e
                })
                .collect();
            waits.push(intake.send_spooled(entries).await.expect("room"));
        }
        // Each input's wait resolves once its entries are in the spool.
        for w in waits {
            within(w).await.expect("spooled");
        }
        let records = spooled(&shared, dir.path(), &private, &c);
        let got: Vec<String> = records
            .iter()
            .flat_map(|(_, es)| es.iter().map(|e| e.payload.clone()))
            .collect();
        let want: Vec<String> = (0..60)
            .flat_map(|m| {
                (0..(m % 5 + 1)).map(move |i| format!("message {m} part {i} Word{}", m % 3))
            })
            .collect();
        assert_eq!(got, want, "every entry once, in order");
        assert!(records.len() >= 60 * 3 / 7, "{} records", records.len());
        let key_ids: std::collections::BTreeSet<&str> =
            records.iter().map(|(r, _)| r.key_id.as_str()).collect();
        assert!(key_ids.len() >= records.len() / 3, "keys rotate");
        for (r, entries) in &records {
            assert!(entries.len() <= 7);
            assert_eq!(r.count as usize, entries.len());
            for e in entries {
                let own = e.payload.starts_with("message ")
                    && e.payload.contains(" part 0 ")
                    && e.payload[8..]
                        .split(' ')
                        .next()
                        .and_then(|m| m.parse::<u32>().ok())
                        .is_some_and(|m| m % 4 == 1);
                if own {
                    assert!(e.metadata["host"].starts_with("own-"), "{e:?}");
                } else {
                    assert_eq!(e.metadata["host"], "h1", "enriched");
                }
            }
            // The record's tokens are exactly those of its entries, however the caches of the
            // sealing threads were filled.
            let mut set = logflux_crypto::TokenSet::new();
            for e in entries {
                set.add_entry(e);
            }
            let want: Vec<u64> = set.finish(&token_key).into_iter().map(|t| t.0).collect();
            assert_eq!(r.tokens, want);
        }
        assert_eq!(shared.metrics.entries_sealed.get(), want.len() as u64);
        drop(intake);
        task.await.expect("sealer ends");
    }

    /// Enrichment applied at encoding: a default's token is in a record exactly when one of its
    /// entries took the default, the same as enriching every entry first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_default_every_entry_overrides_gives_no_token_and_one_taken_does() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config(S);
        c.max_entries = 3;
        c.enrich.insert("host", "h1");
        c.enrich.insert("agent_id", "a1");
        let (shared, intake, task, private, token_key) = sealer_in(dir.path(), 2, c.clone());
        let base = 1_763_675_346 * S;
        // Batch 1: every entry has its own host. Batch 2: one takes the default host. Batch 3:
        // one's own host equals the default.
        let hosts = [
            [Some("x"), Some("y"), Some("x")],
            [Some("x"), None, Some("y")],
            [Some("h1"), Some("x"), Some("x")],
        ];
        for (b, batch) in hosts.iter().enumerate() {
            let entries: Vec<Entry> = batch
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let mut e = at(base + (b * 3 + i) as i64);
                    e.payload = format!("batch {b} entry {i}");
                    if let Some(h) = h {
                        e.metadata.insert("host", *h);
                    }
                    e
                })
                .collect();
            within(intake.send_spooled(entries).await.expect("room"))
                .await
                .expect("spooled");
        }
        let records = spooled(&shared, dir.path(), &private, &c);
        assert_eq!(records.len(), 3);
        let default_host = token_key
            .token(logflux_crypto::Field::Meta("host"), "h1")
            .expect("a metadata token")
            .0;
        for (b, (r, entries)) in records.iter().enumerate() {
            let mut set = logflux_crypto::TokenSet::new();
            for e in entries {
                assert_eq!(e.metadata["agent_id"], "a1", "enriched");
                set.add_entry(e);
            }
            let want: Vec<u64> = set.finish(&token_key).into_iter().map(|t| t.0).collect();
            assert_eq!(r.tokens, want, "batch {b}");
            assert_eq!(
                r.tokens.contains(&default_host),
                b != 0,
                "batch {b}: the default host's token (batch 3's comes from an entry's own)"
            );
        }
        drop(intake);
        task.await.expect("sealer ends");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_waits_for_everything_before_it_and_the_sealer_ends_when_inputs_are_gone() {
        let dir = tempfile::tempdir().expect("dir");
        let mut c = config(S);
        c.max_entries = 3;
        c.max_wait = Duration::from_secs(3600);
        let (shared, intake, task, private, _) = sealer_in(dir.path(), 3, c.clone());
        for m in 0..10 {
            intake
                .send(vec![at(1_763_675_346 * S + m)], Duration::from_secs(5))
                .await
                .expect("room");
        }
        // A max_wait of an hour: only the flush makes the last, partial batch.
        within(intake.flush().await.expect("room"))
            .await
            .expect("flushed");
        let n: usize = spooled(&shared, dir.path(), &private, &c)
            .iter()
            .map(|(_, es)| es.len())
            .sum();
        assert_eq!(n, 10);
        intake
            .send(vec![at(1_763_675_346 * S + 11)], Duration::from_secs(5))
            .await
            .expect("room");
        drop(intake);
        task.await.expect("sealer ends");
        let times: Vec<i64> = spooled(&shared, dir.path(), &private, &c)
            .iter()
            .flat_map(|(_, es)| es.iter().map(|e| e.timestamp_ns - 1_763_675_346 * S))
            .collect();
        assert_eq!(
            times,
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11],
            "sealed before it ended"
        );
        assert_eq!(
            shared.unspooled.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
    }
}
