//! Decryption, here and only here: agent batches (AES-256-GCM bound to tenant, application, key
//! and record, then zstd) and SDK entries (AES-256-GCM, gzip, payload v2.0 JSON or, from the Go SDK, plain text) alike. Data
//! keys are fetched wrapped, unwrapped once with the private key and cached; records are opened
//! in parallel across cores. A record that fails its integrity check yields an error naming it,
//! never plaintext.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{
    NONCE_LEN, PrivateKey, RecordBinding, SealingKey, open_batch_plain, open_sdk_gzip,
    open_sdk_part, unwrap_dek,
};
use logflux_proto::batch::{BatchView, EntryRef};
use logflux_proto::{EntryType, EntryView};
use rayon::prelude::*;

use crate::api::{Api, Line};

/// Payload types (PROTOCOL.md §2, docs/formats.md).
const PAYLOAD_SDK_SEALED: u8 = 1;
const PAYLOAD_SDK_GZIP: u8 = 3;
const PAYLOAD_AGENT_BATCH: u8 = 4;

/// A record that could not be opened, named so the user can find it.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "record {record_id} (application {application_id}, segment {segment_id}, key {key_id}): {reason}"
)]
pub(crate) struct RecordError {
    pub(crate) record_id: String,
    pub(crate) application_id: String,
    pub(crate) segment_id: i64,
    pub(crate) key_id: String,
    pub(crate) reason: String,
}

impl RecordError {
    pub(crate) fn new(r: &Line, reason: impl Into<String>) -> RecordError {
        RecordError {
            record_id: r.record_id.clone(),
            application_id: r.application_id.clone(),
            segment_id: r.segment_id,
            key_id: r.key_id.clone(),
            reason: reason.into(),
        }
    }
}

fn record_error(r: &Line, reason: impl Into<String>) -> RecordError {
    RecordError::new(r, reason)
}

/// One entry of an opened record: borrowed from a decrypted agent batch, or an SDK entry.
pub(crate) enum Decoded<'e, 'v, 'a> {
    Borrowed(&'e EntryRef<'v, 'a>),
    Owned(EntryView),
}

/// Opens records of one tenant with its private key.
pub(crate) struct Decryptor {
    private: PrivateKey,
    tenant_id: String,
    /// Unwrapped data keys by key id; an error string for keys that could not be had.
    keys: Mutex<HashMap<String, Result<Arc<SealingKey>, String>>>,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("tenant_id", &self.tenant_id)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    pub(crate) fn new(private: PrivateKey, tenant_id: String) -> Self {
        Decryptor {
            private,
            tenant_id,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches and unwraps the data keys of `records` not yet cached (concurrently).
    pub(crate) async fn ensure_keys(self: &Arc<Self>, api: &Api, records: &[Line]) {
        let missing: Vec<String> = {
            let cache = self.keys.lock().expect("lock");
            let mut m: Vec<String> = records
                .iter()
                .filter(|r| r.payload_type != PAYLOAD_SDK_GZIP && !r.key_id.is_empty())
                .map(|r| r.key_id.clone())
                .filter(|k| !cache.contains_key(k))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if missing.is_empty() {
            return;
        }
        // Transport failures are not remembered (the next record asks again); a refusal (no
        // such key) and a key that does not unwrap are.
        let fetched = futures_util::future::join_all(missing.iter().map(|id| async move {
            let v = match api.get_json(&format!("/v1/keys/{id}")).await {
                Ok(v) => v,
                Err(e) if crate::api::StatusError::is_final(&e) => {
                    return Some(Err(format!("data key unavailable: {e:#}")));
                }
                Err(e) => {
                    crate::fetch::note(format_args!("logflux: fetching data key {id}: {e:#}"));
                    return None;
                }
            };
            Some(
                v["wrapped_key"]
                    .as_str()
                    .and_then(|w| B64.decode(w).ok())
                    .ok_or_else(|| "the server sent a malformed data key".to_owned()),
            )
        }))
        .await;
        // RSA private-key operations take about a millisecond each: off the async threads.
        let this = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let unwrapped: Vec<_> = missing
                .into_iter()
                .zip(fetched)
                .filter_map(|(id, w)| w.map(|w| (id, w)))
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|(id, w)| {
                    let k = w.and_then(|w| {
                        unwrap_dek(&this.private, &w)
                            .map(|dek| Arc::new(SealingKey::new(&dek)))
                            .map_err(|e| match e {
                                // Already says "the data key does not unwrap with this private key".
                                logflux_crypto::CryptoError::Unwrap => e.to_string(),
                                other => format!(
                                    "data key does not unwrap with this private key: {other}"
                                ),
                            })
                    });
                    (id, k)
                })
                .collect();
            this.keys.lock().expect("lock").extend(unwrapped);
        })
        .await;
    }

    /// Caches an unwrapped data key (tests, which have no server to fetch it from).
    #[cfg(test)]
    pub(crate) fn insert_key(&self, key_id: &str, key: SealingKey) {
        self.keys
            .lock()
            .expect("lock")
            .insert(key_id.to_owned(), Ok(Arc::new(key)));
    }

    fn key(&self, r: &Line) -> Result<Arc<SealingKey>, RecordError> {
        match self.keys.lock().expect("lock").get(&r.key_id) {
            Some(Ok(k)) => Ok(k.clone()),
            Some(Err(e)) => Err(record_error(r, e.clone())),
            None => Err(record_error(r, "data key could not be fetched (see above)")),
        }
    }

    /// Opens one record into its entries.
    pub(crate) fn open(&self, r: &Line) -> Result<Vec<EntryView>, RecordError> {
        self.open_where(r, &|_| true)
    }

    /// Opens one record into the entries `keep` accepts: an agent batch's entries are tested
    /// while they still borrow from the decrypted batch, and only those kept are copied out;
    /// SDK entries are all kept.
    pub(crate) fn open_where(
        &self,
        r: &Line,
        keep: &(dyn Fn(&EntryRef<'_, '_>) -> bool + Sync),
    ) -> Result<Vec<EntryView>, RecordError> {
        let mut out = Vec::new();
        self.visit(r, &mut |d| match d {
            Decoded::Borrowed(e) => {
                if keep(e) {
                    out.push(EntryView::from(e));
                }
            }
            Decoded::Owned(v) => out.push(v),
        })?;
        Ok(out)
    }

    /// Opens one record and hands each of its entries to `each`, in the record's order: an
    /// agent batch's entries borrowed from the decrypted batch, SDK entries owned.
    pub(crate) fn visit(
        &self,
        r: &Line,
        each: &mut dyn FnMut(Decoded<'_, '_, '_>),
    ) -> Result<(), RecordError> {
        self.visit_counted(r, &mut |_| {}, each)
    }

    /// As [`Decryptor::visit`], telling `count` how many entries the record holds before the
    /// first is handed over (for the caller to size what it fills).
    pub(crate) fn visit_counted(
        &self,
        r: &Line,
        count: &mut dyn FnMut(usize),
        each: &mut dyn FnMut(Decoded<'_, '_, '_>),
    ) -> Result<(), RecordError> {
        if r.kind == "damaged" {
            return Err(RecordError {
                record_id: "(every record of the segment)".into(),
                reason: format!(
                    "the server cannot read this segment, its records are missing here: {}",
                    r.message
                ),
                ..record_error(r, "")
            });
        }
        let Some(body) = r.body.as_ref() else {
            return Err(record_error(r, "the server sent no body for it"));
        };
        let body = body
            .decode()
            .ok_or_else(|| record_error(r, "the body is not base64"))?;
        let nonce = || -> Result<[u8; NONCE_LEN], RecordError> {
            r.nonce
                .as_deref()
                .and_then(|n| B64.decode(n).ok())
                .and_then(|n| n.try_into().ok())
                .ok_or_else(|| record_error(r, "missing or malformed nonce"))
        };
        match r.payload_type {
            PAYLOAD_AGENT_BATCH => {
                let key = self.key(r)?;
                let record_id = r.record_id.strip_prefix("agent-").unwrap_or(&r.record_id);
                let binding = RecordBinding {
                    tenant: &self.tenant_id,
                    application: &r.application_id,
                    key_id: &r.key_id,
                    record_id,
                };
                let refused = |e: logflux_crypto::CryptoError| {
                    record_error(
                        r,
                        match e.kind() {
                            // Its message begins "integrity check failed".
                            logflux_crypto::ErrorKind::Integrity => e.to_string(),
                            _ => format!("content refused: {e}"),
                        },
                    )
                };
                let opened = open_batch_plain(&key, &binding, &nonce()?, &body).map_err(refused)?;
                let batch = BatchView::parse(&opened.plain)
                    .map_err(|e| refused(logflux_crypto::CryptoError::Format(e.to_string())))?;
                count(batch.len());
                for e in batch.iter() {
                    each(Decoded::Borrowed(&e));
                }
                Ok(())
            }
            PAYLOAD_SDK_SEALED | PAYLOAD_SDK_GZIP => {
                let plaintext = if r.payload_type == PAYLOAD_SDK_SEALED {
                    let key = self.key(r)?;
                    // The error says what failed (CryptoError::Integrity reads "integrity check
                    // failed: …"): no prefix of our own, which would say it twice.
                    open_sdk_part(&key, &nonce()?, &body, r.crlf_stripped)
                        .map_err(|e| record_error(r, e.to_string()))?
                } else {
                    open_sdk_gzip(&body).map_err(|e| record_error(r, e.to_string()))?
                };
                // A v2 JSON object, or (the Go SDK's Info/Warn/… and logging adapters) the bare
                // message text.
                let t = EntryType::from_number(i64::from(r.entry_type)).unwrap_or(EntryType::Log);
                count(1);
                each(Decoded::Owned(logflux_proto::sdk::view_of(
                    t, r.min_ts, &plaintext,
                )));
                Ok(())
            }
            p => Err(record_error(r, format!("unknown payload type {p}"))),
        }
    }
}
