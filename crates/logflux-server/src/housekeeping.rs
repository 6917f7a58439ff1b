//! Housekeeping, run by one leader at a time: retention (segments entirely older than an
//! application's retention are dropped from the catalog, then their objects deleted) and
//! orphan collection (objects that no catalog row names, left by a crash between the object
//! write and the catalog commit, deleted once they are an hour old).

use std::collections::HashSet;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::store::BlobStore;

/// Objects younger than this are never collected: their commit may still be under way.
const ORPHAN_MIN_AGE_S: i64 = 3600;

pub(crate) fn start(
    catalog: Catalog,
    store: BlobStore,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let ran = catalog
                .as_leader(|| async {
                    if let Err(e) =
                        run_once(&catalog, &store, logflux_proto::timefmt::now_ns()).await
                    {
                        tracing::warn!(error = %e, "housekeeping pass failed; will retry");
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
    pub(crate) orphans: usize,
}

pub(crate) async fn run_once(
    catalog: &Catalog,
    store: &BlobStore,
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
            // object is deleted leaves an orphan, which the next pass collects.
            catalog.delete_segments(&ids).await?;
            for s in &expired {
                store.delete(&s.object_key).await?;
            }
            pass.expired_segments += expired.len();
        }
    }
    let known: HashSet<String> = catalog.all_object_keys().await?.into_iter().collect();
    let now_s = now_ns / 1_000_000_000;
    for (key, mtime) in store.list("").await? {
        if !known.contains(&key) && key.ends_with(".lfs") && now_s - mtime > ORPHAN_MIN_AGE_S {
            store.delete(&key).await?;
            pass.orphans += 1;
        }
    }
    if pass != Pass::default() {
        tracing::info!(
            expired_segments = pass.expired_segments,
            orphans = pass.orphans,
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

    #[tokio::test]
    async fn retention_drops_old_segments_and_orphans_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::connect(&format!("sqlite:{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let store = BlobStore::local(dir.path().join("objects")).unwrap();
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
        // An orphan: an object written, then the "server" died before the catalog commit.
        store
            .put(
                "t1/a1/2026/01/01/orphan.lfs",
                bytes::Bytes::from_static(b"x"),
            )
            .await
            .unwrap();

        // Orphans younger than an hour are left alone (their commit may be under way).
        let pass = run_once(&catalog, &store, now).await.unwrap();
        assert_eq!(
            pass,
            Pass {
                expired_segments: 1,
                orphans: 0
            }
        );
        let keys: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(!keys.contains(&old) && keys.contains(&fresh) && keys.contains(&kept));
        assert_eq!(
            catalog
                .known_records("t1", &["old".into(), "fresh".into()])
                .await
                .unwrap(),
            ["fresh"]
        );

        // An hour later (by the clock housekeeping is given), the orphan goes.
        let later = now + 2 * 3_600_000_000_000;
        let pass = run_once(&catalog, &store, later).await.unwrap();
        assert_eq!(pass.orphans, 1);
        let keys: Vec<String> = store
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert!(
            keys.contains(&kept),
            "an application without retention keeps everything"
        );
    }
}
