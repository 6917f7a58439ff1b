//! From inputs to the spool: entries are gathered into micro-batches (max wait, max entries,
//! max bytes), enriched, sealed (zstd then AES-256-GCM under the current data key, bound to
//! tenant, application, key id and record id), given their blind tokens, and appended to the
//! spool. Nothing in clear ever reaches the disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logflux_crypto::{BatchSealer, RecordBinding, TokenKey, TokenSet};
use logflux_proto::Entry;
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
}

/// What `logflux-agent status` shows besides the spool.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub(crate) struct Status {
    pub(crate) last_delivery_ns: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) endpoint: Option<String>,
}

impl Shared {
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
    _permit: OwnedSemaphorePermit,
    spooled: Option<oneshot::Sender<()>>,
}

/// The pipeline is full: the spool is full (or the sealer is behind).
#[derive(Debug)]
pub(crate) struct QueueFull;

impl Intake {
    /// Hands entries over, waiting up to `wait` for room (the client is slowed down meanwhile);
    /// `QueueFull` when there is still none (the spool is full and the sealer cannot proceed).
    pub(crate) async fn send(&self, entries: Vec<Entry>, wait: Duration) -> Result<(), QueueFull> {
        self.send_inner(entries, Some(wait), None).await
    }

    /// Hands entries over, waiting as long as it takes for room, and returns what resolves
    /// once they are all in the spool (or dropped by `when_full: drop_newest`, and counted):
    /// inputs that keep a position (file offsets, journal cursors) advance it only then.
    pub(crate) async fn send_spooled(
        &self,
        entries: Vec<Entry>,
    ) -> Result<oneshot::Receiver<()>, QueueFull> {
        let (tx, rx) = oneshot::channel();
        self.send_inner(entries, None, Some(tx)).await?;
        Ok(rx)
    }

    async fn send_inner(
        &self,
        entries: Vec<Entry>,
        wait: Option<Duration>,
        spooled: Option<oneshot::Sender<()>>,
    ) -> Result<(), QueueFull> {
        let kib = entries
            .iter()
            .map(Entry::approx_size)
            .sum::<usize>()
            .div_ceil(1024)
            .max(1);
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
                _permit: permit,
                spooled,
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
    pub(crate) tenant_id: String,
    pub(crate) application_id: String,
    pub(crate) when_full: WhenFull,
    /// Added to every entry's metadata unless the entry has the key.
    pub(crate) enrich: BTreeMap<String, String>,
    /// Entries in flight before the sealer, in KiB (see `intake_budget_kib`).
    pub(crate) intake_budget_kib: u32,
    /// Redaction rules, applied after enrichment, before sealing.
    pub(crate) redactor: Arc<Redactor>,
    /// Forwarding targets, offered every entry after redaction.
    pub(crate) forwarders: Vec<crate::forward::Forwarder>,
}

/// Starts the sealer; it ends (after sealing what it holds) when every `Intake` is dropped.
pub(crate) fn start(
    shared: Arc<Shared>,
    keys: KeyRing,
    token_key: TokenKey,
    config: SealerConfig,
) -> (Intake, tokio::task::JoinHandle<()>) {
    // When the spool is full the sealer waits, the byte budget runs out, and inputs are told.
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let budget_kib = config.intake_budget_kib;
    let budget = Arc::new(Semaphore::new(budget_kib as usize));
    let state = Arc::new(Mutex::new((
        keys,
        BatchSealer::new(config.zstd_level),
        TokenSet::new(),
    )));
    let task = tokio::spawn(async move {
        let mut pending: Vec<Entry> = Vec::new();
        let mut bytes = 0usize;
        let mut acks = Acks::default();
        let take = |m: Msg, pending: &mut Vec<Entry>, bytes: &mut usize, acks: &mut Acks| {
            *bytes += m.entries.iter().map(Entry::approx_size).sum::<usize>();
            acks.received(m.entries.len(), m.spooled);
            pending.extend(m.entries);
        };
        loop {
            let first = if pending.is_empty() {
                match rx.recv().await {
                    Some(m) => Some(m),
                    None => break,
                }
            } else {
                None
            };
            if let Some(m) = first {
                take(m, &mut pending, &mut bytes, &mut acks);
            }
            let deadline = tokio::time::Instant::now() + config.max_wait;
            let mut closed = false;
            while pending.len() < config.max_entries && bytes < config.max_bytes {
                tokio::select! {
                    r = rx.recv() => match r {
                        Some(m) => take(m, &mut pending, &mut bytes, &mut acks),
                        None => { closed = true; break; }
                    },
                    () = tokio::time::sleep_until(deadline) => break,
                }
            }
            // Seal at most max_entries at a time; the rest starts the next batch.
            let rest = if pending.len() > config.max_entries {
                pending.split_off(config.max_entries)
            } else {
                Vec::new()
            };
            let batch = std::mem::replace(&mut pending, rest);
            bytes = bytes.saturating_sub(batch.iter().map(Entry::approx_size).sum());
            let (shared2, state2, config2, key2) = (
                shared.clone(),
                state.clone(),
                config.clone(),
                token_key.clone(),
            );
            let n = batch.len() as u64;
            let done = tokio::task::spawn_blocking(move || {
                seal_and_spool(&shared2, &state2, &key2, &config2, batch)
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "sealer thread failed");
            }
            acks.done(n);
            if closed && pending.is_empty() {
                break;
            }
        }
        let s = shared.clone();
        let _ = tokio::task::spawn_blocking(move || s.spool.lock().expect("lock").sync()).await;
        tracing::info!("sealer stopped; everything received is sealed and spooled");
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

/// Entries received and entries done (spooled or dropped) since start, and who waits for
/// which count: batches keep arrival order, so counts are enough.
#[derive(Debug, Default)]
struct Acks {
    received: u64,
    done: u64,
    waiting: std::collections::VecDeque<(u64, oneshot::Sender<()>)>,
}

impl Acks {
    fn received(&mut self, n: usize, tx: Option<oneshot::Sender<()>>) {
        self.received += n as u64;
        if let Some(tx) = tx {
            self.waiting.push_back((self.received, tx));
        }
    }

    fn done(&mut self, n: u64) {
        self.done += n;
        while self
            .waiting
            .front()
            .is_some_and(|(upto, _)| *upto <= self.done)
        {
            if let Some((_, tx)) = self.waiting.pop_front() {
                let _ = tx.send(());
            }
        }
    }
}

type SealerState = (KeyRing, BatchSealer, TokenSet);

fn seal_and_spool(
    shared: &Shared,
    state: &Mutex<SealerState>,
    token_key: &TokenKey,
    config: &SealerConfig,
    mut batch: Vec<Entry>,
) {
    if batch.is_empty() {
        return;
    }
    for e in &mut batch {
        for (k, v) in &config.enrich {
            e.metadata.entry(k.clone()).or_insert_with(|| v.clone());
        }
        config.redactor.redact(e);
        for f in &config.forwarders {
            f.offer(e);
        }
    }
    let record = {
        let mut guard = state.lock().expect("lock");
        let (keys, sealer, tokens) = &mut *guard;
        let key = match keys.for_next_batch() {
            Ok(k) => k,
            Err(e) => {
                // Without a key nothing can be sealed; the entries are counted as dropped.
                tracing::error!(error = %e, entries = batch.len(), "cannot create a data key");
                shared.metrics.entries_dropped.inc_by(batch.len() as u64);
                return;
            }
        };
        let record_id = ulid::Ulid::new().to_string().to_lowercase();
        let binding = RecordBinding {
            tenant: &config.tenant_id,
            application: &config.application_id,
            key_id: &key.key_id,
            record_id: &record_id,
        };
        let sealed = match sealer.seal(&key.sealing, &binding, &batch) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, entries = batch.len(), "sealing failed");
                shared.metrics.entries_dropped.inc_by(batch.len() as u64);
                return;
            }
        };
        for e in &batch {
            tokens.add_entry(e);
        }
        SpoolRecord {
            record_id,
            key_id: key.key_id.clone(),
            nonce: sealed.nonce,
            count: sealed.count,
            min_ts: sealed.time_range.0,
            max_ts: sealed.time_range.1,
            sealed_ns: logflux_proto::timefmt::now_ns(),
            tokens: tokens.finish(token_key).into_iter().map(|t| t.0).collect(),
            body: sealed.ciphertext,
        }
    };
    let n = batch.len() as u64;
    shared.metrics.batches_sealed.inc();
    shared.metrics.entries_sealed.inc_by(n);
    let mut waited = false;
    let mut failures = 0u64;
    let mut last_logged: Option<std::time::Instant> = None;
    loop {
        let r = shared.spool.lock().expect("lock").append(&record);
        match r {
            Ok(()) => {
                shared
                    .metrics
                    .spooled_bytes
                    .inc_by(record.encoded_len() as u64);
                shared.update_spool_gauges();
                shared.appended.notify_one();
                return;
            }
            Err(SpoolError::Full { .. }) if config.when_full == WhenFull::DropNewest => {
                shared.metrics.entries_dropped.inc_by(n);
                tracing::warn!(
                    entries = n,
                    "spool full: batch dropped (when_full: drop_newest)"
                );
                return;
            }
            Err(SpoolError::Full { used, max }) => {
                if !waited {
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
