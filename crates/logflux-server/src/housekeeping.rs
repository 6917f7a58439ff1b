//! Housekeeping, run by one leader at a time:
//!
//! - retention: segments entirely older than an application's retention are dropped from the
//!   catalog, then their objects deleted;
//! - orphans: segments no catalog row names are never deleted outright. They are left over by
//!   a crash between the object write and the catalog commit — or they are what a lost or
//!   restored catalog forgot. Every pass counts those older than an hour (metric
//!   `unknown_segments`) and warns with the way to recover (`logflux-server catalog rebuild`);
//!   after the orphan grace (default 7 days) they are moved to `_quarantine/`, and deleted
//!   from there only after the quarantine period (default 30 days). A rebuild moves
//!   quarantined segments back.
//! - store metadata: tenants, applications and data keys the store does not describe yet are
//!   written to it (see `recovery`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::metrics::Metrics;
use crate::recovery;
use crate::store::BlobStore;

/// Objects younger than this are not counted as unknown: their commit may still be under way.
const ORPHAN_MIN_AGE_S: i64 = 3600;

/// Housekeeping settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HousekeepingConfig {
    /// How often a pass runs.
    pub(crate) interval: Duration,
    /// How long a segment no catalog names stays where it is before it is quarantined.
    pub(crate) orphan_grace: Duration,
    /// How long a quarantined segment is kept before it is deleted.
    pub(crate) quarantine: Duration,
}

impl Default for HousekeepingConfig {
    fn default() -> Self {
        HousekeepingConfig {
            interval: Duration::from_secs(300),
            orphan_grace: Duration::from_secs(7 * 86_400),
            quarantine: Duration::from_secs(30 * 86_400),
        }
    }
}

pub(crate) fn start(
    catalog: Catalog,
    store: BlobStore,
    config: HousekeepingConfig,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ran = catalog
                .as_leader(|| async {
                    match run_once(&catalog, &store, &config, logflux_proto::timefmt::now_ns())
                        .await
                    {
                        Ok(pass) => {
                            metrics.unknown_segments.set(pass.unknown_segments as i64);
                            metrics.segments_quarantined.inc_by(pass.quarantined as u64);
                            metrics
                                .quarantine_deleted
                                .inc_by(pass.quarantine_deleted as u64);
                            metrics.housekeeping_passes.inc();
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "housekeeping pass failed; will retry");
                        }
                    }
                })
                .await;
            if let Err(e) = ran {
                tracing::warn!(error = %e, "housekeeping could not check leadership");
            }
        }
    })
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    pub(crate) expired_segments: usize,
    /// Segments older than an hour that no catalog row names and that are not quarantined
    /// (yet).
    pub(crate) unknown_segments: usize,
    pub(crate) quarantined: usize,
    pub(crate) quarantine_deleted: usize,
    /// Metadata objects written to the store.
    pub(crate) mirrored: usize,
}

pub(crate) async fn run_once(
    catalog: &Catalog,
    store: &BlobStore,
    config: &HousekeepingConfig,
    now_ns: i64,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    for app in catalog.all_applications().await? {
        let Some(days) = app.retention_days else {
            continue;
        };
        let cutoff = now_ns.saturating_sub(days.saturating_mul(86_400_000_000_000));
        loop {
            let expired = catalog.expired_segments(&app.id, cutoff, 500).await?;
            if expired.is_empty() {
                break;
            }
            let ids: Vec<i64> = expired.iter().map(|s| s.id).collect();
            // Catalog first: once a segment is out of it, no query sees it; a crash before the
            // object is deleted leaves an orphan, which is quarantined later.
            catalog.delete_segments(&ids).await?;
            for s in &expired {
                store.delete(&s.object_key).await?;
            }
            pass.expired_segments += expired.len();
        }
    }
    // The catalog's keys are read before the listing: a segment committed in between is in
    // the listing but not in `known`, and is too young to count.
    let known: HashSet<String> = catalog.all_object_keys().await?.into_iter().collect();
    let listing = store.list("").await?;
    let now_s = now_ns / 1_000_000_000;
    let grace = config.orphan_grace.as_secs() as i64;
    let keep = config.quarantine.as_secs() as i64;
    let mut oldest_unknown = i64::MAX;
    for (key, mtime) in &listing {
        if let Some((_, at)) = recovery::quarantined(key) {
            if now_s - at > keep {
                store.delete(key).await?;
                pass.quarantine_deleted += 1;
            }
            continue;
        }
        if recovery::segment_owner(key).is_none()
            || known.contains(key)
            || now_s - mtime <= ORPHAN_MIN_AGE_S
        {
            continue;
        }
        if now_s - mtime > grace {
            // A `catalog rebuild` may have registered it since `known` was read.
            if catalog.has_object_key(key).await? {
                continue;
            }
            store
                .rename(key, &recovery::quarantine_key(key, now_s))
                .await?;
            pass.quarantined += 1;
        } else {
            pass.unknown_segments += 1;
            oldest_unknown = oldest_unknown.min(*mtime);
        }
    }
    if pass.unknown_segments > 0 {
        tracing::warn!(
            segments = pass.unknown_segments,
            oldest_age_s = now_s - oldest_unknown,
            quarantine_after_s = grace,
            "the store holds segments the catalog does not know. If the catalog was lost or \
             restored from a backup, run `logflux-server catalog rebuild` now: they are moved \
             to _quarantine/ after the orphan grace and deleted from there after the quarantine \
             period. Otherwise they are left over from interrupted commits"
        );
    }
    if pass.quarantined > 0 {
        tracing::warn!(
            segments = pass.quarantined,
            "segments no catalog named for the whole orphan grace were moved to _quarantine/; \
             `logflux-server catalog rebuild` moves them back"
        );
    }
    let present: HashSet<String> = listing.into_iter().map(|(k, _)| k).collect();
    pass.mirrored = recovery::mirror_missing(catalog, store, &present).await?;
    if pass.expired_segments + pass.quarantined + pass.quarantine_deleted + pass.mirrored > 0 {
        tracing::info!(
            expired_segments = pass.expired_segments,
            quarantined = pass.quarantined,
            quarantine_deleted = pass.quarantine_deleted,
            metadata_objects_written = pass.mirrored,
            "housekeeping"
        );
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commit::finish_segment;
    use crate::segment::{RecordMeta, SegmentWriter};

    const DAY: i64 = 86_400_000_000_000;

    fn meta(id: &str, ts: i64) -> RecordMeta {
        RecordMeta {
            record_id: id.into(),
            key_id: "k".into(),
            payload: 4,
            entry_type: 0,
            nonce: Some([0; 12]),
            crlf_stripped: false,
            min_ts: ts,
            max_ts: ts,
            count: 1,
            received_ns: ts,
            tokens: vec![],
        }
    }

    async fn commit(catalog: &Catalog, store: &BlobStore, app: &str, id: &str, ts: i64) -> String {
        let mut w = SegmentWriter::new();
        w.add(meta(id, ts), b"ciphertext");
        let (seg, data) = finish_segment("t1", app, w, vec![id.into()]);
        store.put(&seg.object_key, data).await.unwrap();
        catalog
            .commit_segments(std::slice::from_ref(&seg))
            .await
            .unwrap();
        seg.object_key
    }

    async fn keys(store: &BlobStore) -> Vec<String> {
        store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.ends_with(".lfs"))
            .collect()
    }

    #[tokio::test]
    async fn retention_drops_old_segments_and_orphans_are_quarantined_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::connect(&format!("sqlite:{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let store = BlobStore::local(dir.path().join("objects")).unwrap();
        let config = HousekeepingConfig::default();
        catalog.create_tenant("t1", "acme").await.unwrap();
        catalog.create_application("a1", "t1", "web").await.unwrap();
        catalog
            .create_application("a2", "t1", "forever")
            .await
            .unwrap();
        catalog.set_retention("t1", "a1", Some(7)).await.unwrap();
        let now = logflux_proto::timefmt::now_ns();
        let old = commit(&catalog, &store, "a1", "old", now - 8 * DAY).await;
        let fresh = commit(&catalog, &store, "a1", "fresh", now - 6 * DAY).await;
        let kept = commit(&catalog, &store, "a2", "ancient", now - 90 * DAY).await;
        // An orphan: an object written, then the "server" died before the catalog commit (or
        // the catalog forgot it).
        let orphan = "t1/a1/2026/01/01/orphan.lfs";
        store
            .put(orphan, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();

        // Orphans younger than an hour are not even counted (their commit may be under way).
        let pass = run_once(&catalog, &store, &config, now).await.unwrap();
        assert_eq!(
            pass,
            Pass {
                expired_segments: 1,
                mirrored: 3,
                ..Pass::default()
            }
        );
        let k = keys(&store).await;
        assert!(!k.contains(&old) && k.contains(&fresh) && k.contains(&kept));
        assert_eq!(
            catalog
                .known_records("t1", &["old".into(), "fresh".into()])
                .await
                .unwrap(),
            ["fresh"]
        );

        // Hours and days later the orphan is counted (and warned about), but left in place.
        for later in [now + 2 * 3_600_000_000_000, now + 6 * DAY] {
            let pass = run_once(&catalog, &store, &config, later).await.unwrap();
            assert_eq!(
                (pass.unknown_segments, pass.quarantined, pass.mirrored),
                (1, 0, 0)
            );
            assert!(keys(&store).await.contains(&orphan.to_owned()));
        }

        // After the grace it moves to the quarantine, under the time it was moved.
        let moved_at = now + 8 * DAY;
        let pass = run_once(&catalog, &store, &config, moved_at).await.unwrap();
        assert_eq!((pass.unknown_segments, pass.quarantined), (0, 1));
        let quarantined = format!("_quarantine/{}/{orphan}", moved_at / 1_000_000_000);
        let k = keys(&store).await;
        assert!(
            k.contains(&quarantined) && !k.contains(&orphan.to_owned()),
            "{k:?}"
        );
        assert!(
            k.contains(&kept),
            "an application without retention keeps everything"
        );

        // It is deleted only after the quarantine period.
        let pass = run_once(&catalog, &store, &config, moved_at + 29 * DAY)
            .await
            .unwrap();
        assert_eq!(pass.quarantine_deleted, 0);
        let pass = run_once(&catalog, &store, &config, moved_at + 31 * DAY)
            .await
            .unwrap();
        assert_eq!(pass.quarantine_deleted, 1);
        assert!(!keys(&store).await.contains(&quarantined));
    }
}
