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
