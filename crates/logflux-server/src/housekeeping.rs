//! Housekeeping, run by one leader at a time:
//!
//! - retention: segments entirely older than an application's retention are dropped from the
//!   catalog, then their objects deleted;
//! - pending deletions: objects of segments an erasure or retention dropped from the catalog
//!   whose delete failed or never ran (the catalog records them in the same transaction) are
//!   deleted, never quarantined;
//! - orphans: segments no catalog row names are never deleted outright. They are left over by
//!   a crash between the object write and the catalog commit — or they are what a lost or
//!   restored catalog forgot. Every pass counts those older than an hour (metric
//!   `unknown_segments`) and warns with the way to recover (`logflux-server catalog rebuild`).
//!   The catalog records when each was first found unknown; once unknown for the orphan grace
//!   (default 7 days) it is moved to `_quarantine/` (metric `segments_in_quarantine`), and
//!   deleted from there only after the quarantine period (default 30 days). A rebuild moves
//!   quarantined segments back.
//! - store metadata: tenants, applications and data keys the store does not describe yet are
//!   written to it (see `recovery`).

use std::collections::{HashMap, HashSet};
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
    /// How long a segment no catalog names stays where it is, from the pass that first found
    /// it unknown, before it is quarantined.
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
                            metrics
                                .segments_in_quarantine
                                .set(pass.in_quarantine as i64);
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
    /// (yet), whatever their age.
    pub(crate) unknown_segments: usize,
    /// Objects of dropped (erased or expired) segments deleted now, because their first
    /// delete failed or never ran.
    pub(crate) deletions_done: usize,
    pub(crate) quarantined: usize,
    /// Segments in `_quarantine/` after the pass.
    pub(crate) in_quarantine: usize,
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
            // Catalog first: once a segment is out of it, no query sees it. The catalog
            // records the object as pending deletion, so a crash before it is deleted leaves
            // it to a later pass.
            catalog.delete_segments(&ids).await?;
            for s in &expired {
                store.delete(&s.object_key).await?;
                catalog.deletion_done(&s.object_key).await?;
            }
            pass.expired_segments += expired.len();
        }
    }
    // The catalog's keys are read before the pending deletions and the listing: a segment
    // dropped in between is among the pending deletions, and one committed in between is in
    // the listing but not in `known`, and too young to count.
    let known: HashSet<String> = catalog.all_object_keys().await?.into_iter().collect();
    let pending: HashSet<String> = catalog.pending_deletions().await?.into_iter().collect();
    let listing = store.list("").await?;
    pass.deletions_done = delete_pending(catalog, store, &pending, &listing).await;
    let now_s = now_ns / 1_000_000_000;
    let grace_ns = i64::try_from(config.orphan_grace.as_nanos()).unwrap_or(i64::MAX);
    let keep = config.quarantine.as_secs() as i64;
    let first_seen = catalog.unknown_objects().await?;
    let mut newly_unknown = Vec::new();
    let mut still_unknown = HashSet::new();
    let mut oldest_first_seen = i64::MAX;
    for (key, mtime) in &listing {
        if let Some((original, at)) = recovery::quarantined(key) {
            if pending.contains(original) {
                continue;
            }
            if now_s - at > keep {
                store.delete(key).await?;
                pass.quarantine_deleted += 1;
            } else if recovery::segment_owner(original).is_some() {
                pass.in_quarantine += 1;
            }
            continue;
        }
        if recovery::segment_owner(key).is_none()
            || known.contains(key)
            || pending.contains(key)
            || now_s - mtime <= ORPHAN_MIN_AGE_S
        {
            continue;
        }
        // The grace counts from when housekeeping first found the object unknown, not from
        // its age: after a catalog loss every old segment is unknown at once, and that is when
        // the operator needs the whole grace to run a rebuild.
        match first_seen.get(key) {
            Some(&seen) if now_ns.saturating_sub(seen) > grace_ns => {
                // A `catalog rebuild` may have registered it since `known` was read.
                if catalog.has_object_key(key).await? {
                    continue;
                }
                store
                    .rename(key, &recovery::quarantine_key(key, now_s))
                    .await?;
                pass.quarantined += 1;
                pass.in_quarantine += 1;
                continue;
            }
            Some(&seen) => oldest_first_seen = oldest_first_seen.min(seen),
            None => {
                newly_unknown.push(key.clone());
                oldest_first_seen = oldest_first_seen.min(now_ns);
            }
        }
        still_unknown.insert(key.as_str());
        pass.unknown_segments += 1;
    }
    catalog.note_unknown_objects(&newly_unknown, now_ns).await?;
    // Known again (a rebuild), quarantined, or gone.
    let forget: Vec<String> = first_seen
        .into_keys()
        .filter(|k| !still_unknown.contains(k.as_str()))
        .collect();
    catalog.forget_unknown_objects(&forget).await?;
    if pass.unknown_segments > 0 {
        let unknown_for_s = now_ns.saturating_sub(oldest_first_seen) / 1_000_000_000;
        tracing::warn!(
            segments = pass.unknown_segments,
            unknown_for_s,
            quarantine_after_s = config.orphan_grace.as_secs(),
            "the store holds segments the catalog does not know. If the catalog was lost or \
             restored from a backup, run `logflux-server catalog rebuild` now: they are moved \
             to _quarantine/ once unknown for the orphan grace and deleted from there after the \
             quarantine period. Otherwise they are left over from interrupted commits"
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
    if pass.expired_segments
        + pass.deletions_done
        + pass.quarantined
        + pass.quarantine_deleted
        + pass.mirrored
        > 0
    {
        tracing::info!(
            expired_segments = pass.expired_segments,
            pending_deletions_done = pass.deletions_done,
            quarantined = pass.quarantined,
            quarantine_deleted = pass.quarantine_deleted,
            metadata_objects_written = pass.mirrored,
            "housekeeping"
        );
    }
    Ok(pass)
}

/// Deletes the objects of dropped segments whose delete failed or never ran (the server
/// stopped), with any quarantined copy; returns how many were done. They are never
/// quarantined: an erasure must not leave its data in the store for the quarantine period.
/// One that fails again is left for the next pass.
async fn delete_pending(
    catalog: &Catalog,
    store: &BlobStore,
    pending: &HashSet<String>,
    listing: &[(String, i64)],
) -> usize {
    let mut copies: HashMap<&str, Vec<&str>> = HashMap::new();
    if !pending.is_empty() {
        for (k, _) in listing {
            if let Some((original, _)) = recovery::quarantined(k)
                && pending.contains(original)
            {
                copies.entry(original).or_default().push(k);
            }
        }
    }
    let mut done = 0;
    for key in pending {
        let mut result = store.delete(key).await;
        for copy in copies.get(key.as_str()).into_iter().flatten() {
            if result.is_ok() {
                result = store.delete(copy).await;
            }
        }
        let result = match result {
            Ok(()) => catalog
                .deletion_done(key)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        };
        match result {
            Ok(()) => done += 1,
            Err(e) => tracing::warn!(
                object = %key,
                error = %e,
                "could not delete the object of a dropped segment; will retry"
            ),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::NewSegment;
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
            filter: None,
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

    /// A segment written to the store that no catalog names.
    async fn orphan(store: &BlobStore, id: &str, ts: i64) -> NewSegment {
        let mut w = SegmentWriter::new();
        w.add(meta(id, ts), b"ciphertext");
        let (seg, data) = finish_segment("t1", "a1", w, vec![id.into()]);
        store.put(&seg.object_key, data).await.unwrap();
        seg
    }

    async fn sqlite(dir: &std::path::Path, name: &str) -> Catalog {
        Catalog::connect(&format!("sqlite:{}", dir.join(name).display()))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_orphan_grace_counts_from_when_a_segment_was_first_found_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().join("objects")).unwrap();
        let config = HousekeepingConfig::default();
        let now = logflux_proto::timefmt::now_ns();
        let a = orphan(&store, "a", now).await.object_key;
        let b = orphan(&store, "b", now).await.object_key;
        let c = orphan(&store, "c", now).await;
        // The catalog that named them is lost; housekeeping first runs a month later, so the
        // objects are 30 days old: far past the grace, measured by their age.
        let catalog = sqlite(dir.path(), "new.db").await;
        let start = now + 30 * DAY;
        for later in [start, start + 3_600_000_000_000] {
            let pass = run_once(&catalog, &store, &config, later).await.unwrap();
            assert_eq!(
                (pass.unknown_segments, pass.quarantined, pass.in_quarantine),
                (3, 0, 0),
                "every unknown segment is counted, whatever its age, and none is moved yet"
            );
        }
        assert_eq!(keys(&store).await.len(), 3);
        assert_eq!(catalog.unknown_objects().await.unwrap()[&a], start);

        // One is registered again (a rebuild, say): it is no longer unknown.
        assert!(matches!(
            catalog
                .commit_segments(std::slice::from_ref(&c))
                .await
                .unwrap(),
            crate::catalog::Commit::Committed(_)
        ));
        let pass = run_once(&catalog, &store, &config, start + 6 * DAY)
            .await
            .unwrap();
        assert_eq!((pass.unknown_segments, pass.quarantined), (2, 0));
        assert!(
            !catalog
                .unknown_objects()
                .await
                .unwrap()
                .contains_key(&c.object_key)
        );

        // The grace since they were first found unknown has passed: quarantined.
        let moved_at = start + 7 * DAY + 1_000_000_000;
        let pass = run_once(&catalog, &store, &config, moved_at).await.unwrap();
        assert_eq!(
            (pass.unknown_segments, pass.quarantined, pass.in_quarantine),
            (0, 2, 2)
        );
        let k = keys(&store).await;
        for key in [&a, &b] {
            let q = recovery::quarantine_key(key, moved_at / 1_000_000_000);
            assert!(k.contains(&q) && !k.contains(key), "{k:?}");
        }
        assert!(k.contains(&c.object_key));
        assert!(catalog.unknown_objects().await.unwrap().is_empty());
        let pass = run_once(&catalog, &store, &config, moved_at + DAY)
            .await
            .unwrap();
        assert_eq!((pass.unknown_segments, pass.in_quarantine), (0, 2));
    }

    #[tokio::test]
    async fn objects_of_dropped_segments_are_deleted_not_quarantined_nor_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().join("objects")).unwrap();
        let catalog = sqlite(dir.path(), "c.db").await;
        let config = HousekeepingConfig::default();
        catalog.create_tenant("t1", "acme").await.unwrap();
        catalog.create_application("a1", "t1", "web").await.unwrap();
        let now = logflux_proto::timefmt::now_ns();
        let a = commit(&catalog, &store, "a1", "a", now - DAY).await;
        let b = commit(&catalog, &store, "a1", "b", now - DAY).await;
        let c = commit(&catalog, &store, "a1", "c", now - 3 * DAY).await;
        let id_of = |key: String| {
            let catalog = catalog.clone();
            async move {
                catalog
                    .application_segments("t1", "a1", i64::MIN, i64::MAX)
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|s| s.object_key == key)
                    .unwrap()
                    .id
            }
        };
        // Erasures swapped `a` and `b` out of the catalog, and deleting their objects failed
        // (or the server stopped first); `b` was then quarantined by an earlier version.
        catalog
            .replace_segment(id_of(a.clone()).await, None)
            .await
            .unwrap();
        catalog
            .replace_segment(id_of(b.clone()).await, None)
            .await
            .unwrap();
        let b_quarantined = recovery::quarantine_key(&b, now / 1_000_000_000);
        store.rename(&b, &b_quarantined).await.unwrap();

        // A rebuild neither moves back nor registers them.
        let report = recovery::rebuild(&catalog, &store, false).await.unwrap();
        assert_eq!(
            (
                report.segments,
                report.unquarantined,
                report.pending_deletion
            ),
            (0, 0, 2),
            "{report:?}"
        );
        assert!(!catalog.has_object_key(&a).await.unwrap());
        assert!(!catalog.has_object_key(&b).await.unwrap());

        // Housekeeping, even long after, deletes them outright.
        let pass = run_once(&catalog, &store, &config, now + 8 * DAY)
            .await
            .unwrap();
        assert_eq!(
            (pass.deletions_done, pass.quarantined, pass.in_quarantine),
            (2, 0, 0)
        );
        assert_eq!(keys(&store).await, std::slice::from_ref(&c));
        assert!(catalog.pending_deletions().await.unwrap().is_empty());
        let report = recovery::rebuild(&catalog, &store, false).await.unwrap();
        assert_eq!(report.segments, 0);
        assert_eq!(keys(&store).await, std::slice::from_ref(&c));

        // An erasure whose delete succeeds leaves nothing pending.
        let erased =
            crate::erase::erase(&catalog, &store, "t1", "a1", now - 4 * DAY, now - 2 * DAY)
                .await
                .unwrap();
        assert_eq!(erased.segments_deleted, 1);
        assert!(keys(&store).await.is_empty());
        assert!(catalog.pending_deletions().await.unwrap().is_empty());
    }
}
