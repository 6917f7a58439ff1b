use super::*;
use crate::commit::finish_segment;
use crate::segment::{RecordMeta, SegmentWriter};

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
        count: 2,
        received_ns: ts + 9,
        tokens,
        filter: None,
    }
}

/// A segment of `records` under `key` (or a fresh key), written and, with `catalog`, committed.
async fn segment(
    store: &BlobStore,
    catalog: Option<&Catalog>,
    key: Option<&str>,
    records: &[(&str, i64)],
) -> NewSegment {
    let mut w = SegmentWriter::new();
    for (id, ts) in records {
        w.add(meta(id, *ts, vec![*ts as u64, 42]), id.as_bytes());
    }
    let ids = records.iter().map(|(id, _)| id.to_string()).collect();
    let (mut seg, data) = finish_segment("t_1", "app_1", w, ids);
    if let Some(k) = key {
        seg.object_key = k.into();
    }
    store.put(&seg.object_key, data).await.unwrap();
    if let Some(c) = catalog {
        assert!(matches!(
            c.commit_segments(std::slice::from_ref(&seg)).await.unwrap(),
            Commit::Committed(_)
        ));
    }
    seg
}

async fn sqlite(dir: &Path, name: &str) -> Catalog {
    Catalog::connect(&format!("sqlite:{}", dir.join(name).display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_lost_catalog_is_rebuilt_from_the_store_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("objects")).unwrap();
    let old = sqlite(dir.path(), "old.db").await;
    old.create_tenant("t_1", "acme").await.unwrap();
    old.set_public_key("t_1", "PEM").await.unwrap();
    old.set_quota("t_1", Some(5_000)).await.unwrap();
    publish_tenant(&old, &store, "t_1").await.unwrap();
    old.create_application("app_1", "t_1", "web").await.unwrap();
    old.set_retention("t_1", "app_1", Some(30)).await.unwrap();
    publish_application(&old, &store, "t_1", "app_1")
        .await
        .unwrap();
    let key = old
        .create_data_key("k_1", "t_1", "app_1", &[9u8; 256])
        .await
        .unwrap();
    publish_data_key(&store, &key).await.unwrap();
    segment(&store, Some(&old), None, &[("r1", 100), ("r2", 300)]).await;
    segment(&store, Some(&old), None, &[("r3", 200)]).await;

    // A catalog that lost its latest changes (a WAL) gets them back from the store.
    let stale = sqlite(dir.path(), "stale.db").await;
    stale.create_tenant("t_1", "acme").await.unwrap();
    stale
        .create_application("app_1", "t_1", "web")
        .await
        .unwrap();
    let report = rebuild(&stale, &store, false).await.unwrap();
    assert_eq!(
        (report.tenants, report.applications, report.updated),
        (0, 0, 3)
    );
    let t = stale.tenant("t_1").await.unwrap();
    assert_eq!(
        (t.public_key_pem.as_deref(), t.quota_bytes),
        (Some("PEM"), Some(5_000))
    );
    let a = stale.application("t_1", "web").await.unwrap();
    assert_eq!(a.retention_days, Some(30));

    // The catalog is gone; a new, empty one is rebuilt from the store alone.
    let new = sqlite(dir.path(), "new.db").await;
    let report = rebuild(&new, &store, false).await.unwrap();
    assert_eq!(
        report,
        RebuildReport {
            tenants: 1,
            applications: 1,
            data_keys: 1,
            segments: 2,
            records: 3,
            ..RebuildReport::default()
        }
    );
    assert_eq!(
        new.tenant("t_1").await.unwrap(),
        old.tenant("t_1").await.unwrap()
    );
    assert_eq!(
        new.application("t_1", "web").await.unwrap(),
        old.application("t_1", "web").await.unwrap()
    );
    assert_eq!(new.data_key("t_1", "k_1").await.unwrap(), key);
    let rows = |c: &Catalog| {
        let c = c.clone();
        async move {
            let mut v: Vec<_> = c
                .application_segments("t_1", "app_1", i64::MIN, i64::MAX)
                .await
                .unwrap()
                .into_iter()
                .map(|s| {
                    (
                        s.object_key,
                        s.min_ts,
                        s.max_ts,
                        s.records,
                        s.entries,
                        s.bytes,
                        s.bloom,
                        s.max_received_ns,
                    )
                })
                .collect();
            v.sort();
            v
        }
    };
    assert_eq!(rows(&new).await, rows(&old).await);
    let mut ids = new
        .known_records("t_1", &["r1".into(), "r2".into(), "r3".into()])
        .await
        .unwrap();
    ids.sort();
    assert_eq!(ids, ["r1", "r2", "r3"]);

    // Again: nothing left to do.
    assert_eq!(
        rebuild(&new, &store, false).await.unwrap(),
        RebuildReport::default()
    );
}

#[tokio::test]
async fn rebuild_leaves_out_replaced_segments_and_brings_back_quarantined_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("objects")).unwrap();
    // An erasure rewrote the older segment without r1, and the old object's delete failed.
    segment(
        &store,
        None,
        Some("t_1/app_1/2026/11/20/01aaaaaaaaaaaaaaaaaaaaaaaa.lfs"),
        &[("r1", 100), ("r2", 300)],
    )
    .await;
    segment(
        &store,
        None,
        Some("t_1/app_1/2026/11/21/01bbbbbbbbbbbbbbbbbbbbbbbb.lfs"),
        &[("r2", 300)],
    )
    .await;
    // Housekeeping quarantined a segment the catalog did not know.
    let original = "t_1/app_1/2026/11/19/01cccccccccccccccccccccccc.lfs";
    segment(
        &store,
        None,
        Some(&quarantine_key(original, 1_700_000_000)),
        &[("r9", 50)],
    )
    .await;

    let c = sqlite(dir.path(), "c.db").await;
    let report = rebuild(&c, &store, false).await.unwrap();
    assert_eq!(
        (
            report.unquarantined,
            report.segments,
            report.records,
            report.placeholders
        ),
        (1, 2, 2, 2),
        "{report}"
    );
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert!(
        report.skipped[0]
            .starts_with("t_1/app_1/2026/11/20/01aaaaaaaaaaaaaaaaaaaaaaaa.lfs: 1 of its 2 records"),
        "{report}"
    );
    // What was erased stays erased; the quarantined segment is back in place.
    assert!(
        c.known_records("t_1", &["r1".into()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(c.has_object_key(original).await.unwrap());
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(!keys.iter().any(|k| k.starts_with(QUARANTINE)), "{keys:?}");
    // Placeholders: the segment's tenant and application had no metadata object.
    assert_eq!(c.tenant("t_1").await.unwrap().name, "t_1");
}

#[tokio::test]
async fn housekeeping_writes_missing_metadata_objects() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("objects")).unwrap();
    let c = sqlite(dir.path(), "c.db").await;
    c.create_tenant("t_1", "acme").await.unwrap();
    c.create_application("app_1", "t_1", "web").await.unwrap();
    c.create_data_key("k_1", "t_1", "app_1", &[1u8; 256])
        .await
        .unwrap();
    assert_eq!(
        mirror_missing(&c, &store, &HashSet::new()).await.unwrap(),
        3
    );
    let present: HashSet<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        present,
        HashSet::from([
            "t_1/_meta/tenant.json".to_owned(),
            "t_1/_meta/applications/app_1.json".to_owned(),
            "t_1/_keys/k_1.json".to_owned(),
        ])
    );
    assert_eq!(mirror_missing(&c, &store, &present).await.unwrap(), 0);
}

#[test]
fn object_keys_are_classified() {
    assert_eq!(segment_owner("t/a/2026/11/20/x.lfs"), Some(("t", "a")));
    assert_eq!(segment_owner("t/_keys/k.json"), None);
    assert_eq!(segment_owner("t/x.lfs"), None);
    assert_eq!(segment_owner("_quarantine/1/t/a/2026/x.lfs"), None);
    assert_eq!(
        quarantined("_quarantine/17/t/a/2026/x.lfs"),
        Some(("t/a/2026/x.lfs", 17))
    );
    assert_eq!(quarantined("t/a/2026/x.lfs"), None);
}

#[tokio::test]
async fn an_older_catalog_is_pruned_of_deleted_segments_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("objects")).unwrap();
    let c = sqlite(dir.path(), "c.db").await;
    // The backup names a segment an erasure later rewrote (r1 erased) and deleted.
    let gone = segment(
        &store,
        Some(&c),
        Some("t_1/app_1/2026/11/20/01aaaaaaaaaaaaaaaaaaaaaaaa.lfs"),
        &[("r1", 100), ("r2", 300)],
    )
    .await;
    store.delete(&gone.object_key).await.unwrap();
    segment(
        &store,
        None,
        Some("t_1/app_1/2026/11/21/01bbbbbbbbbbbbbbbbbbbbbbbb.lfs"),
        &[("r2", 300)],
    )
    .await;

    // Without pruning, the stale row keeps r2 and the rewrite is left out, with a report.
    let r = rebuild(&c, &store, false).await.unwrap();
    assert_eq!(
        (r.segments, r.missing_objects, r.pruned, r.skipped.len()),
        (0, 1, 0, 1),
        "{r}"
    );

    // Rows committed within the last minutes are never pruned (another server's clock).
    let r = rebuild(&c, &store, true).await.unwrap();
    assert_eq!((r.pruned, r.missing_objects), (0, 1), "{r}");
    backdate(&c).await;
    let r = rebuild(&c, &store, true).await.unwrap();
    assert_eq!(
        (r.pruned, r.missing_objects, r.segments, r.records),
        (1, 0, 1, 1),
        "{r}"
    );
    assert_eq!(
        c.known_records("t_1", &["r1".into(), "r2".into()])
            .await
            .unwrap(),
        ["r2"]
    );

    // A store without any segment prunes nothing: most likely the wrong store.
    let empty = BlobStore::local(dir.path().join("elsewhere")).unwrap();
    backdate(&c).await;
    let e = rebuild(&c, &empty, true).await.unwrap_err();
    assert!(e.to_string().contains("holds no segment at all"), "{e}");
    assert_eq!(c.all_object_keys().await.unwrap().len(), 1);
}

/// Makes every segment row a day old.
async fn backdate(c: &Catalog) {
    c.backdate_segments_for_tests(86_400_000_000_000).await;
}

#[test]
fn one_parser_finds_the_sqlite_file_of_a_catalog_url() {
    for (url, path) in [
        (
            "sqlite:/var/lib/logflux/catalog.db",
            Some("/var/lib/logflux/catalog.db"),
        ),
        ("sqlite:///var/lib/c.db?mode=rwc", Some("/var/lib/c.db")),
        ("sqlite://data/c.db", Some("data/c.db")),
        ("sqlite:c.db", Some("c.db")),
        ("sqlite::memory:", None),
        ("sqlite:", None),
        ("postgres://u@h/db", None),
    ] {
        assert_eq!(sqlite_path(url), path.map(Path::new), "{url}");
    }
}

/// A segment written with a version 1 footer (the token index), as servers before
/// 2026-12-01 wrote them, committed to `catalog`.
async fn segment_v1(store: &BlobStore, catalog: &Catalog, records: &[(&str, i64)]) -> NewSegment {
    let mut w = SegmentWriter::new();
    for (id, ts) in records {
        w.add(meta(id, *ts, vec![*ts as u64, 42]), id.as_bytes());
    }
    let (data, s) = w.finish_v1();
    let seg = NewSegment {
        tenant_id: "t_1".into(),
        application_id: "app_1".into(),
        object_key: format!("t_1/app_1/2026/11/30/v1-{}.lfs", records[0].0),
        min_ts: s.min_ts,
        max_ts: s.max_ts,
        records: i64::from(s.records),
        entries: s.entries as i64,
        bytes: s.bytes as i64,
        bloom: s.bloom,
        max_received_ns: s.max_received_ns,
        record_ids: records.iter().map(|(id, _)| id.to_string()).collect(),
    };
    store.put(&seg.object_key, data.into()).await.unwrap();
    assert!(matches!(
        catalog
            .commit_segments(std::slice::from_ref(&seg))
            .await
            .unwrap(),
        Commit::Committed(_)
    ));
    seg
}

#[tokio::test]
async fn a_store_of_version_1_and_version_2_segments_is_rebuilt_with_the_same_bloom_filters() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::local(dir.path().join("objects")).unwrap();
    let old = sqlite(dir.path(), "old.db").await;
    old.create_tenant("t_1", "acme").await.unwrap();
    publish_tenant(&old, &store, "t_1").await.unwrap();
    old.create_application("app_1", "t_1", "web").await.unwrap();
    publish_application(&old, &store, "t_1", "app_1")
        .await
        .unwrap();
    let v1 = segment_v1(&store, &old, &[("a1", 100), ("a2", 300)]).await;
    let v2 = segment(&store, Some(&old), None, &[("b1", 200), ("b2", 400)]).await;

    let new = sqlite(dir.path(), "new.db").await;
    let report = rebuild(&new, &store, false).await.unwrap();
    assert_eq!((report.segments, report.records), (2, 4));
    let mut rows = new
        .application_segments("t_1", "app_1", i64::MIN, i64::MAX)
        .await
        .unwrap();
    rows.sort_by(|a, b| a.object_key.cmp(&b.object_key));
    for (row, want) in rows.iter().zip([&v1, &v2]) {
        assert_eq!(row.object_key, want.object_key);
        assert_eq!(row.bloom, want.bloom, "{}", row.object_key);
        assert_eq!(
            (row.min_ts, row.max_ts, row.records, row.entries, row.bytes),
            (
                want.min_ts,
                want.max_ts,
                want.records,
                want.entries,
                want.bytes
            )
        );
    }
    // The rebuilt filters still find every token of their segment's records.
    for (row, tokens) in rows.iter().zip([[100u64, 300, 42], [200, 400, 42]]) {
        for t in tokens {
            assert!(
                crate::bloom::may_contain(&row.bloom, t),
                "{t} in {}",
                row.object_key
            );
        }
    }
}
