//! From inputs to the spool: entries are gathered into micro-batches (max wait, max entries,
//! max bytes), enriched, sealed (zstd then AES-256-GCM under the current data key, bound to
//! tenant, application, key id and record id), given their blind tokens, and appended to the
//! spool. Nothing in clear ever reaches the disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use logflux_crypto::{BatchSealer, RecordBinding, TokenKey, TokenSet};
use logflux_proto::Entry;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc};

use crate::config::WhenFull;
use crate::keys::KeyRing;
use crate::metrics::Metrics;
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
    tx: mpsc::UnboundedSender<(Vec<Entry>, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
    budget_kib: u32,
}

/// KiB of entries (by `Entry::approx_size`, their size in memory) in flight between the inputs
/// and the sealer: a quarter of the spool, within 1..4 MiB — tens of milliseconds of traffic at
/// full speed, so memory stays bounded and a full spool is felt by clients soon.
pub(crate) fn intake_budget_kib(spool_max_bytes: u64) -> u32 {
    (spool_max_bytes / 4 / 1024).clamp(1024, 4 * 1024) as u32
}

/// The pipeline is full: the spool is full (or the sealer is behind).
#[derive(Debug)]
pub(crate) struct QueueFull;

impl Intake {
    /// Hands entries over, waiting up to `wait` for room (the client is slowed down meanwhile);
    /// `QueueFull` when there is still none (the spool is full and the sealer cannot proceed).
    pub(crate) async fn send(&self, entries: Vec<Entry>, wait: Duration) -> Result<(), QueueFull> {
        let kib = entries
            .iter()
            .map(Entry::approx_size)
            .sum::<usize>()
            .div_ceil(1024)
            .max(1);
        let kib = u32::try_from(kib).unwrap_or(u32::MAX).min(self.budget_kib);
        let permit = tokio::time::timeout(wait, self.budget.clone().acquire_many_owned(kib))
            .await
            .map_err(|_| QueueFull)?
            .map_err(|_| QueueFull)?;
        self.tx.send((entries, permit)).map_err(|_| QueueFull)
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
}

/// Starts the sealer; it ends (after sealing what it holds) when every `Intake` is dropped.
pub(crate) fn start(
    shared: Arc<Shared>,
    keys: KeyRing,
    token_key: TokenKey,
    config: SealerConfig,
) -> (Intake, tokio::task::JoinHandle<()>) {
    // When the spool is full the sealer waits, the byte budget runs out, and inputs are told.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<Entry>, OwnedSemaphorePermit)>();
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
        loop {
            let first = if pending.is_empty() {
                match rx.recv().await {
                    Some(e) => Some(e),
                    None => break,
                }
            } else {
                None
            };
            if let Some((first, _permit)) = first {
                bytes += first.iter().map(Entry::approx_size).sum::<usize>();
                pending.extend(first);
            }
            let deadline = tokio::time::Instant::now() + config.max_wait;
            let mut closed = false;
            while pending.len() < config.max_entries && bytes < config.max_bytes {
                tokio::select! {
                    r = rx.recv() => match r {
                        Some((more, _permit)) => {
                            bytes += more.iter().map(Entry::approx_size).sum::<usize>();
                            pending.extend(more);
                        }
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
            let done = tokio::task::spawn_blocking(move || {
                seal_and_spool(&shared2, &state2, &key2, &config2, batch)
            })
            .await;
            if let Err(e) = done {
                tracing::error!(error = %e, "sealer thread failed");
            }
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
                // Disk errors (e.g. no space left): keep the batch and retry.
                tracing::error!(error = %e, "spool append failed; retrying");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}
