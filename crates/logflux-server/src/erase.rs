//! Erasure of an application's records in a time range.
//!
//! The server cannot split a sealed record (an agent batch spans a short time), so every
//! record that overlaps the range is erased whole: at the range's edges up to one batch's
//! worth of entries just outside it may go too, and nothing inside it stays. Segments entirely
//! inside the range are dropped; others are rewritten without the erased records, the old and
//! new segment swapped in one catalog transaction, then the old object deleted. The swap
//! records the old object as pending deletion: if its delete fails or the server stops first,
//! housekeeping deletes it on its next pass (it is never quarantined), and `catalog rebuild`
//! never registers it again.

use crate::catalog::Catalog;
use crate::commit::finish_segment;
use crate::segment::{Footer, SegmentWriter};
use crate::store::BlobStore;

/// What an erasure did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Erased {
    pub(crate) segments_deleted: usize,
    pub(crate) segments_rewritten: usize,
    pub(crate) records_erased: usize,
}

pub(crate) async fn erase(
    catalog: &Catalog,
    store: &BlobStore,
    tenant_id: &str,
    application_id: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<Erased> {
    let mut out = Erased::default();
    for seg in catalog
        .application_segments(tenant_id, application_id, from, to)
        .await?
    {
        let overlaps = |min: i64, max: i64| max >= from && min <= to;
        if seg.min_ts >= from && seg.max_ts <= to {
            catalog.replace_segment(seg.id, None).await?;
            delete_object(catalog, store, &seg.object_key).await?;
            out.segments_deleted += 1;
            out.records_erased += seg.records as usize;
            continue;
        }
        let bytes = store.get(&seg.object_key).await?;
        let footer = Footer::from_segment(&bytes)?;
        let kept: Vec<_> = footer
            .records
            .iter()
            .filter(|r| !overlaps(r.meta.min_ts, r.meta.max_ts))
            .collect();
        let removed = footer.records.len() - kept.len();
        if removed == 0 {
            continue;
        }
        if kept.is_empty() {
            catalog.replace_segment(seg.id, None).await?;
            out.segments_deleted += 1;
        } else {
            let mut writer = SegmentWriter::new();
            let mut ids = Vec::with_capacity(kept.len());
            for r in kept {
                writer.add(
                    r.meta.clone(),
                    &bytes[r.range.start as usize..r.range.end as usize],
                );
                ids.push(r.meta.record_id.clone());
            }
            let (new_seg, data) = finish_segment(tenant_id, application_id, writer, ids);
            store.put(&new_seg.object_key, data).await?;
            catalog.replace_segment(seg.id, Some(&new_seg)).await?;
            out.segments_rewritten += 1;
        }
        delete_object(catalog, store, &seg.object_key).await?;
        out.records_erased += removed;
    }
    Ok(out)
}

/// Deletes the object of a segment the catalog no longer names. The swap recorded it as
/// pending deletion: if this fails or never runs, housekeeping deletes it.
async fn delete_object(catalog: &Catalog, store: &BlobStore, key: &str) -> anyhow::Result<()> {
    store.delete(key).await?;
    catalog.deletion_done(key).await?;
    Ok(())
}
