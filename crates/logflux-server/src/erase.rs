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
            // A version 2 footer no longer knows the records' tokens, and the old segment's
            // Bloom filter would go on answering for the erased records' tokens: the writer
            // stores the empty Bloom filter ("maybe" to every token) for the rewrite, and the
            // catalog row gets the same (SegmentWriter::finish).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Commit, NewSegment};
    use crate::segment::{RecordMeta, SegmentSummary};

    fn meta(id: &str, ts: i64, tokens: Vec<u64>) -> RecordMeta {
        RecordMeta {
            record_id: id.into(),
            key_id: "k_1".into(),
            payload: 4,
            entry_type: 0,
            nonce: Some([7; 12]),
            crlf_stripped: false,
            min_ts: ts,
            max_ts: ts + 5,
            count: 1,
            received_ns: ts,
            tokens,
            filter: None,
        }
    }

    /// Three records at 0, 100 and 200, each with its own tokens and one shared token (7).
    fn writer() -> SegmentWriter {
        let mut w = SegmentWriter::new();
        for (i, ts) in [0i64, 100, 200].into_iter().enumerate() {
            w.add(
                meta(&format!("r{i}"), ts, vec![7, 1000 + ts as u64]),
                format!("body{i}").as_bytes(),
            );
        }
        w
    }

    async fn commit(
        catalog: &Catalog,
        store: &BlobStore,
        key: &str,
        data: Vec<u8>,
        s: SegmentSummary,
    ) {
        let seg = NewSegment {
            tenant_id: "t_1".into(),
            application_id: "app_1".into(),
            object_key: key.into(),
            min_ts: s.min_ts,
            max_ts: s.max_ts,
            records: i64::from(s.records),
            entries: s.entries as i64,
            bytes: s.bytes as i64,
            bloom: s.bloom,
            max_received_ns: s.max_received_ns,
            record_ids: vec!["r0".into(), "r1".into(), "r2".into()],
        };
        store.put(key, data.into()).await.unwrap();
        assert!(matches!(
            catalog.commit_segments(&[seg]).await.unwrap(),
            Commit::Committed(_)
        ));
    }

    /// Erases the middle record of a segment written with `finish` and returns the old
    /// segment's Bloom filter and the rewritten segment's catalog row and footer.
    async fn erase_middle(v1: bool) -> (Vec<u8>, crate::catalog::Segment, Footer) {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path().join("objects")).unwrap();
        let catalog = Catalog::connect(&format!("sqlite:{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        catalog.create_tenant("t_1", "acme").await.unwrap();
        catalog
            .create_application("app_1", "t_1", "web")
            .await
            .unwrap();
        let (data, summary) = if v1 {
            writer().finish_v1()
        } else {
            writer().finish()
        };
        let old_bloom = summary.bloom.clone();
        commit(
            &catalog,
            &store,
            "t_1/app_1/2026/12/01/old.lfs",
            data,
            summary,
        )
        .await;
        let out = erase(&catalog, &store, "t_1", "app_1", 90, 110)
            .await
            .unwrap();
        assert_eq!(
            out,
            Erased {
                segments_deleted: 0,
                segments_rewritten: 1,
                records_erased: 1
            }
        );
        let segs = catalog
            .application_segments("t_1", "app_1", i64::MIN, i64::MAX)
            .await
            .unwrap();
        assert_eq!(segs.len(), 1);
        let seg = segs.into_iter().next().unwrap();
        let footer = Footer::from_segment(&store.get(&seg.object_key).await.unwrap()).unwrap();
        (old_bloom, seg, footer)
    }

    #[tokio::test]
    async fn erasing_from_a_version_2_segment_forgets_its_bloom_and_keeps_the_kept_filters() {
        let (old_bloom, seg, footer) = erase_middle(false).await;
        // The erased record (r1) carried token 1100: the old Bloom filter answers for it.
        assert!(crate::bloom::may_contain(&old_bloom, 1100));
        // Nothing derived from it stays: the footer's and the catalog's Bloom filters are the
        // empty one ("maybe" to every token, so no false negatives for the records kept).
        assert_eq!(seg.bloom, Vec::<u8>::new());
        assert_eq!(footer.stored_bloom(), Some(&[][..]));
        assert_eq!(footer.summary(seg.bytes as u64).bloom, seg.bloom);
        let ids: Vec<_> = footer
            .records
            .iter()
            .map(|r| r.meta.record_id.as_str())
            .collect();
        assert_eq!(ids, ["r0", "r2"]);
        assert_eq!(footer.select(i64::MIN, i64::MAX, &[vec![1000]]), [0]);
        assert_eq!(footer.select(i64::MIN, i64::MAX, &[vec![1200]]), [1]);
        assert_eq!(footer.select(i64::MIN, i64::MAX, &[vec![7]]), [0, 1]);
        assert_eq!(
            footer.select(i64::MIN, i64::MAX, &[vec![1100]]),
            Vec::<usize>::new()
        );
        for t in [7, 1000, 1100, 1200] {
            assert!(crate::bloom::may_contain(&seg.bloom, t));
        }
    }

    #[tokio::test]
    async fn erasing_from_a_version_1_segment_rewrites_it_as_version_2() {
        let (_, seg, footer) = erase_middle(true).await;
        assert!(
            footer.stored_bloom().is_some(),
            "rewritten with a version 2 footer"
        );
        assert_eq!(footer.summary(seg.bytes as u64).bloom, seg.bloom);
        assert_eq!(footer.select(i64::MIN, i64::MAX, &[vec![1000]]), [0]);
        assert_eq!(footer.select(i64::MIN, i64::MAX, &[vec![1200]]), [1]);
        for t in [7, 1000, 1200] {
            assert!(crate::bloom::may_contain(&seg.bloom, t));
        }
        // Built from the kept records' tokens: the erased record's token is not in it.
        assert_eq!(
            footer.select(i64::MIN, i64::MAX, &[vec![1100]]),
            Vec::<usize>::new()
        );
    }
}
