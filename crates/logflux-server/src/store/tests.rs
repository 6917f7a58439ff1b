//! One conformance suite for every blob store: the local directory always; an S3-compatible
//! server when `LOGFLUX_TEST_S3_URL` (e.g. `s3://logflux-test`) and the usual `AWS_*`
//! variables are set. With `LOGFLUX_REQUIRE_S3=1` (CI) a missing S3 server fails.

use super::*;

pub(crate) fn backends() -> Vec<(&'static str, BlobStore, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![(
        "local",
        BlobStore::local(dir.path().join("objects")).unwrap(),
        Some(dir),
    )];
    match std::env::var("LOGFLUX_TEST_S3_URL") {
        Ok(url) => {
            // A fresh prefix per test run keeps runs apart in one bucket.
            let url = format!(
                "{}/run-{}",
                url.trim_end_matches('/'),
                ulid::Ulid::new().to_string().to_lowercase()
            );
            out.push(("s3", BlobStore::s3(&url, &[]).unwrap(), None));
        }
        Err(_) if std::env::var("LOGFLUX_REQUIRE_S3").is_ok_and(|v| v == "1") => {
            panic!("S3 required (LOGFLUX_REQUIRE_S3=1) but LOGFLUX_TEST_S3_URL is not set")
        }
        Err(_) => eprintln!(
            "skipping S3: set LOGFLUX_TEST_S3_URL and AWS_* to test an S3-compatible store"
        ),
    }
    out
}

#[tokio::test]
async fn put_get_range_size_list_delete() {
    for (name, s, _dir) in backends() {
        let data = Bytes::from((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
        s.put("t1/a1/2026/11/20/seg-1.lfs", data.clone())
            .await
            .unwrap();
        s.put("t1/a2/seg-2.lfs", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(
            s.get("t1/a1/2026/11/20/seg-1.lfs").await.unwrap(),
            data,
            "{name}"
        );
        assert_eq!(s.size("t1/a1/2026/11/20/seg-1.lfs").await.unwrap(), 10_000);
        assert_eq!(
            s.get_range("t1/a1/2026/11/20/seg-1.lfs", 9_990..10_000)
                .await
                .unwrap(),
            data.slice(9_990..)
        );
        assert_eq!(
            s.get_range("t1/a1/2026/11/20/seg-1.lfs", 5..5)
                .await
                .unwrap()
                .len(),
            0
        );
        let keys: Vec<String> = s
            .list("t1/")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            ["t1/a1/2026/11/20/seg-1.lfs", "t1/a2/seg-2.lfs"],
            "{name}"
        );
        let only_a2: Vec<String> = s
            .list("t1/a2/")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(only_a2, ["t1/a2/seg-2.lfs"]);
        // Overwrite replaces whole.
        s.put("t1/a2/seg-2.lfs", Bytes::from_static(b"yy"))
            .await
            .unwrap();
        assert_eq!(
            s.get("t1/a2/seg-2.lfs").await.unwrap(),
            Bytes::from_static(b"yy")
        );
        s.delete("t1/a2/seg-2.lfs").await.unwrap();
        s.delete("t1/a2/seg-2.lfs").await.unwrap();
        assert!(
            matches!(s.get("t1/a2/seg-2.lfs").await, Err(StoreError::NotFound(_))),
            "{name}"
        );
        assert!(matches!(
            s.size("nope/x").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn bad_keys_and_ranges_are_errors() {
    for (name, s, _dir) in backends() {
        for key in ["", "/abs", "a//b", "../escape", "a/./b", "sp ace", "a/"] {
            assert!(
                matches!(s.put(key, Bytes::new()).await, Err(StoreError::Key(_))),
                "{name}: {key:?}"
            );
        }
        s.put("k/obj", Bytes::from_static(b"abc")).await.unwrap();
        assert!(
            s.get_range("k/obj", 2..10).await.is_err(),
            "{name}: range past the end"
        );
    }
}

#[tokio::test]
async fn local_writes_leave_no_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let s = BlobStore::local(dir.path()).unwrap();
    for i in 0..20 {
        s.put(&format!("t/{i}/obj"), Bytes::from(vec![i as u8; 1000]))
            .await
            .unwrap();
    }
    let mut stack = vec![dir.path().to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                assert!(!p.to_string_lossy().ends_with(".tmp"), "{}", p.display());
                files += 1;
            }
        }
    }
    assert_eq!(files, 20);
    // A temporary file left by a crash is not listed as an object.
    std::fs::write(dir.path().join("t/0/obj.123.tmp"), b"partial").unwrap();
    assert_eq!(s.list("").await.unwrap().len(), 20);
}

#[test]
fn s3_urls_are_checked() {
    assert!(BlobStore::s3("http://x", &[]).is_err());
    assert!(BlobStore::s3("s3://", &[]).is_err());
    let e = BlobStore::s3("s3://b", &[("colour".into(), "red".into())]).unwrap_err();
    assert!(e.to_string().contains("unknown option"), "{e}");
}

#[tokio::test]
async fn rename_moves_an_object_and_creates_its_prefix() {
    for (name, s, _dir) in backends() {
        s.put("t1/a1/2026/11/20/seg.lfs", Bytes::from_static(b"segment"))
            .await
            .unwrap();
        s.rename(
            "t1/a1/2026/11/20/seg.lfs",
            "_quarantine/1700000000/t1/a1/2026/11/20/seg.lfs",
        )
        .await
        .unwrap();
        let keys: Vec<String> = s
            .list("")
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            keys,
            ["_quarantine/1700000000/t1/a1/2026/11/20/seg.lfs"],
            "{name}"
        );
        assert_eq!(
            &s.get("_quarantine/1700000000/t1/a1/2026/11/20/seg.lfs")
                .await
                .unwrap()[..],
            b"segment"
        );
        assert!(matches!(
            s.rename("t1/absent.lfs", "t1/other.lfs").await,
            Err(StoreError::NotFound(_))
        ));
    }
}

/// Two writers of one key at once (housekeeping republishing a metadata object while an admin
/// request publishes it) both succeed, and the object is one of the two whole values.
#[test]
fn concurrent_writes_of_one_key_all_succeed() {
    let root = tempfile::tempdir().expect("tempdir");
    let path = root.path().join("t/_meta/applications/app_1.json");
    std::thread::scope(|s| {
        for w in 0..8u8 {
            let (root, path) = (root.path(), &path);
            s.spawn(move || {
                for _ in 0..50 {
                    write_durably(root, path, &[w; 100]).expect("a concurrent write");
                }
            });
        }
    });
    let data = std::fs::read(&path).expect("read");
    assert_eq!(data.len(), 100);
    assert!(data.iter().all(|&b| b == data[0]));
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
