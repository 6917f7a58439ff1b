//! One conformance suite, run against every catalog backend: SQLite always; PostgreSQL when
//! reachable (`LOGFLUX_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/test`), each
//! test in a fresh database. With `LOGFLUX_REQUIRE_POSTGRES=1` (CI) a missing PostgreSQL fails.

use super::*;

pub(crate) struct Backend {
    pub(crate) name: &'static str,
    pub(crate) catalog: Catalog,
    _dir: Option<tempfile::TempDir>,
}

pub(crate) async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("catalog.db").display());
    let mut out = vec![Backend {
        name: "sqlite",
        catalog: Catalog::connect(&url).await.unwrap(),
        _dir: Some(dir),
    }];
    if let Some(pg) = fresh_postgres().await {
        out.push(Backend {
            name: "postgres",
            catalog: pg,
            _dir: None,
        });
    }
    out
}

/// A catalog in a new PostgreSQL database, or `None` (with a message) when none is reachable.
pub(crate) async fn fresh_postgres() -> Option<Catalog> {
    let url = fresh_postgres_url().await?;
    Some(Catalog::connect(&url).await.unwrap())
}

/// The URL of a new, empty PostgreSQL database, or `None` (with a message) when none is
/// reachable.
pub(crate) async fn fresh_postgres_url() -> Option<String> {
    let admin_url = std::env::var("LOGFLUX_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    sqlx::any::install_default_drivers();
    let admin = match AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&admin_url)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if std::env::var("LOGFLUX_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!(
                    "PostgreSQL required (LOGFLUX_REQUIRE_POSTGRES=1) but {admin_url} is unreachable: {e}"
                );
            }
            eprintln!(
                "skipping PostgreSQL: {admin_url} unreachable ({e}); start PostgreSQL or set LOGFLUX_TEST_POSTGRES"
            );
            return None;
        }
    };
    // Sweep databases that earlier runs left behind (their ULID names carry their birth time).
    let stale = sqlx::query("SELECT CAST(datname AS TEXT) AS datname FROM pg_database WHERE datname LIKE 'logflux_test_%'")
        .fetch_all(&admin)
        .await
        .unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for row in stale {
        let name: String = row.try_get("datname").unwrap();
        let born = ulid::Ulid::from_string(&name["logflux_test_".len()..].to_uppercase())
            .map(|u| u.datetime());
        if born.is_ok_and(|t| t < hour_ago) {
            let _ = sqlx::query(audited(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&admin)
            .await;
        }
    }
    let db = format!(
        "logflux_test_{}",
        ulid::Ulid::new().to_string().to_lowercase()
    );
    sqlx::query(audited(format!("CREATE DATABASE {db}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    Some(format!("{base}/{db}"))
}

fn segment(
    tenant: &str,
    app: &str,
    key: &str,
    min_ts: i64,
    max_ts: i64,
    records: &[&str],
) -> NewSegment {
    NewSegment {
        tenant_id: tenant.into(),
        application_id: app.into(),
        object_key: key.into(),
        min_ts,
        max_ts,
        records: records.len() as i64,
        entries: 10,
        bytes: 100,
        bloom: vec![1, 2, 3],
        max_received_ns: max_ts + 1,
        record_ids: records.iter().map(|s| s.to_string()).collect(),
    }
}

#[tokio::test]
async fn tenants_and_applications() {
    for b in backends().await {
        let c = &b.catalog;
        let t = c.create_tenant("t1", "acme").await.unwrap();
        assert!(
            matches!(
                c.create_tenant("t2", "acme").await,
                Err(CatalogError::Conflict("tenant"))
            ),
            "{}",
            b.name
        );
        assert_eq!(c.tenant("t1").await.unwrap(), t);
        assert_eq!(c.tenant_by_name("acme").await.unwrap().id, "t1");
        assert!(matches!(
            c.tenant("nope").await,
            Err(CatalogError::NotFound(_))
        ));
        c.set_public_key("t1", "PEM").await.unwrap();
        assert_eq!(c.tenant("t1").await.unwrap().quota_bytes, None);
        c.set_quota("t1", Some(1_000)).await.unwrap();
        assert_eq!(c.tenant("t1").await.unwrap().quota_bytes, Some(1_000));
        assert_eq!(c.tenant_usage("t1").await.unwrap(), 0);
        c.commit_segments(&[segment("t1", "a1", "t1/q", 0, 1, &["q1"])])
            .await
            .unwrap();
        assert_eq!(c.tenant_usage("t1").await.unwrap(), 100, "{}", b.name);
        assert!(c.set_quota("nope", None).await.is_err());
        assert_eq!(
            c.tenant("t1").await.unwrap().public_key_pem.as_deref(),
            Some("PEM")
        );
        assert!(matches!(
            c.set_public_key("nope", "PEM").await,
            Err(CatalogError::NotFound(_))
        ));

        c.create_tenant("t2", "other").await.unwrap();
        let a = c.create_application("a1", "t1", "web").await.unwrap();
        c.create_application("a2", "t2", "web").await.unwrap();
        assert!(matches!(
            c.create_application("a3", "t1", "web").await,
            Err(CatalogError::Conflict(_))
        ));
        assert_eq!(c.application("t1", "web").await.unwrap(), a);
        assert_eq!(c.application("t1", "a1").await.unwrap(), a);
        assert!(
            matches!(
                c.application("t1", "a2").await,
                Err(CatalogError::NotFound(_))
            ),
            "other tenant's app"
        );
        assert_eq!(c.applications("t1").await.unwrap(), vec![a.clone()]);
        c.set_retention("t1", "a1", Some(30)).await.unwrap();
        assert_eq!(
            c.application("t1", "a1").await.unwrap().retention_days,
            Some(30)
        );
        assert!(
            c.set_retention("t2", "a1", Some(1)).await.is_err(),
            "cross-tenant retention"
        );
        assert_eq!(c.all_applications().await.unwrap().len(), 2);
    }
}

#[tokio::test]
async fn credentials_by_hash_revocation_and_use() {
    for b in backends().await {
        let c = &b.catalog;
        c.create_tenant("t1", "acme").await.unwrap();
        c.create_application("a1", "t1", "web").await.unwrap();
        let k = c
            .create_api_key("k1", "t1", "a1", "prod", b"hash-1", "eu-lf_ab", true)
            .await
            .unwrap();
        assert_eq!(c.api_key_by_hash(b"hash-1").await.unwrap(), Some(k.clone()));
        assert_eq!(c.api_key_by_hash(b"hash-2").await.unwrap(), None);
        c.touch_api_key("k1", 42).await.unwrap();
        assert_eq!(
            c.api_key_by_hash(b"hash-1")
                .await
                .unwrap()
                .unwrap()
                .last_used_ns,
            Some(42)
        );
        c.revoke_api_key("t1", "k1").await.unwrap();
        assert!(
            c.api_key_by_hash(b"hash-1")
                .await
                .unwrap()
                .unwrap()
                .revoked_ns
                .is_some()
        );
        assert!(
            c.revoke_api_key("t1", "k1").await.is_err(),
            "already revoked"
        );
        assert_eq!(c.api_keys("t1").await.unwrap().len(), 1);

        let t = c
            .create_access_token("p1", "t1", "ci", b"thash", "lf_pat_x", "read write", 99)
            .await
            .unwrap();
        assert_eq!(c.access_token_by_hash(b"thash").await.unwrap(), Some(t));
        assert!(
            c.revoke_access_token("t2", "p1").await.is_err(),
            "{}: other tenant cannot revoke",
            b.name
        );
        c.revoke_access_token("t1", "p1").await.unwrap();
        assert!(
            c.access_token_by_hash(b"thash")
                .await
                .unwrap()
                .unwrap()
                .revoked_ns
                .is_some()
        );
    }
}

#[tokio::test]
async fn data_keys_are_scoped_to_their_tenant() {
    for b in backends().await {
        let c = &b.catalog;
        let wrapped = vec![7u8; 512];
        c.create_data_key("dk1", "t1", "a1", &wrapped)
            .await
            .unwrap();
        assert_eq!(c.data_key("t1", "dk1").await.unwrap().wrapped, wrapped);
        assert!(
            matches!(
                c.data_key("t2", "dk1").await,
                Err(CatalogError::NotFound(_))
            ),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn segments_commit_list_and_delete() {
    for b in backends().await {
        let c = &b.catalog;
        let ids = c
            .commit_segments(&[
                segment("t1", "a1", "t1/a1/s1", 0, 10, &["r1", "r2"]),
                segment("t1", "a2", "t1/a2/s2", 5, 20, &["r3"]),
                segment("t2", "a9", "t2/a9/s3", 0, 100, &["r1"]),
            ])
            .await
            .unwrap();
        let Commit::Committed(ids) = ids else {
            panic!("{ids:?}")
        };
        assert_eq!(ids.len(), 3);
        assert!(ids[0] < ids[1] && ids[1] < ids[2]);
        // Record ids are per tenant.
        let known = c
            .known_records("t1", &["r1".into(), "r3".into(), "r9".into()])
            .await
            .unwrap();
        let mut known = known;
        known.sort();
        assert_eq!(known, ["r1", "r3"]);
        assert_eq!(
            c.known_records("t2", &["r2".into()]).await.unwrap(),
            Vec::<String>::new()
        );
        // A segment holding a record id another segment holds is not committed at all: the
        // conflict is reported, and the caller commits again without it.
        assert_eq!(
            c.commit_segments(&[
                segment("t1", "a1", "t1/a1/s4", 30, 40, &["r5", "r1"]),
                segment("t2", "a9", "t2/a9/s5", 0, 1, &["r7"]),
            ])
            .await
            .unwrap(),
            Commit::Conflict(vec![("t1".into(), "r1".into())]),
            "{}",
            b.name
        );
        assert!(!c.has_object_key("t1/a1/s4").await.unwrap());
        assert!(!c.has_object_key("t2/a9/s5").await.unwrap());
        assert!(
            c.known_records("t2", &["r7".into()])
                .await
                .unwrap()
                .is_empty()
        );
        c.commit_segments(&[segment("t1", "a1", "t1/a1/s4", 30, 40, &["r5"])])
            .await
            .unwrap();

        let all = |newest_first, after, apps: &'static [String]| SegmentFilter {
            tenant_id: "t1",
            application_ids: apps,
            from_ns: i64::MIN,
            to_ns: i64::MAX,
            newest_first,
            after,
            include_after: false,
            limit: 100,
        };
        let oldest: Vec<String> = c
            .segments(&all(false, None, &[]))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(oldest, ["t1/a1/s1", "t1/a2/s2", "t1/a1/s4"], "{}", b.name);
        let newest: Vec<String> = c
            .segments(&all(true, None, &[]))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(newest, ["t1/a1/s4", "t1/a2/s2", "t1/a1/s1"]);
        let first = c.segments(&all(false, None, &[])).await.unwrap();
        let after: Vec<String> = c
            .segments(&all(false, Some((first[0].min_ts, first[0].id)), &[]))
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(after, ["t1/a2/s2", "t1/a1/s4"]);
        let including: Vec<String> = c
            .segments(&SegmentFilter {
                include_after: true,
                ..all(false, Some((first[0].min_ts, first[0].id)), &[])
            })
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(including, ["t1/a1/s1", "t1/a2/s2", "t1/a1/s4"]);
        static A2: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["a2".to_string()]);
        let only_a2 = c.segments(&all(false, None, &A2)).await.unwrap();
        assert_eq!(only_a2.len(), 1);
        assert_eq!(only_a2[0].bloom, vec![1, 2, 3]);
        let window = SegmentFilter {
            from_ns: 11,
            to_ns: 25,
            ..all(false, None, &[])
        };
        let w: Vec<String> = c
            .segments(&window)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(w, ["t1/a2/s2"]);

        // By id, within the tenant only: another tenant's id and an unknown one are absent.
        let by_id: Vec<String> = c
            .tenant_segments("t1", &[ids[1], ids[2], 999_999, ids[0], ids[1]])
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.object_key)
            .collect();
        assert_eq!(by_id, ["t1/a1/s1", "t1/a2/s2"], "{}", b.name);
        let other = c.tenant_segments("t2", &[ids[0], ids[2]]).await.unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(other[0].object_key, "t2/a9/s3");
        assert_eq!(other[0].bloom, vec![1, 2, 3]);
        assert!(c.tenant_segments("t1", &[]).await.unwrap().is_empty());
        let many: Vec<i64> = (0..1200).map(|i| ids[0] + i).collect();
        assert_eq!(c.tenant_segments("t1", &many).await.unwrap().len(), 3);

        let tail = c.segments_after("t1", ids[0], 10).await.unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(c.last_segment_id("t1").await.unwrap(), tail[1].id);
        assert_eq!(c.last_segment_id("nobody").await.unwrap(), 0);

        let expired = c.expired_segments("a1", 35, 10).await.unwrap();
        assert_eq!(expired.len(), 1);
        c.delete_segments(&[expired[0].id]).await.unwrap();
        assert_eq!(
            c.known_records("t1", &["r2".into()]).await.unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(c.all_object_keys().await.unwrap().len(), 3);
    }
}

#[tokio::test]
async fn many_record_ids_in_one_commit() {
    for b in backends().await {
        let c = &b.catalog;
        let ids: Vec<String> = (0..1234).map(|i| format!("rec-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        c.commit_segments(&[segment("t1", "a1", "k", 0, 1, &refs)])
            .await
            .unwrap();
        assert_eq!(
            c.known_records("t1", &ids).await.unwrap().len(),
            1234,
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn audit_log_pages_newest_first() {
    for b in backends().await {
        let c = &b.catalog;
        for i in 0..5 {
            c.audit(
                "t1",
                "token:p1",
                "query",
                &format!("app{i}"),
                "127.0.0.1",
                "{}",
            )
            .await
            .unwrap();
        }
        c.audit("t2", "token:p9", "query", "x", "::1", "{}")
            .await
            .unwrap();
        let page = c.audit_events("t1", None, 3).await.unwrap();
        assert_eq!(
            page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
            ["app4", "app3", "app2"]
        );
        let next = c.audit_events("t1", Some(page[2].id), 3).await.unwrap();
        assert_eq!(
            next.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
            ["app1", "app0"],
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn leadership_runs_the_closure() {
    for b in backends().await {
        let ran = std::sync::atomic::AtomicBool::new(false);
        let led = b
            .catalog
            .as_leader(|| async { ran.store(true, std::sync::atomic::Ordering::SeqCst) })
            .await
            .unwrap();
        assert!(
            led && ran.load(std::sync::atomic::Ordering::SeqCst),
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn only_one_postgres_leader_at_a_time() {
    let Some(c) = fresh_postgres().await else {
        return;
    };
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let c1 = c.clone();
    let holder = tokio::spawn(async move {
        c1.as_leader(|| async move {
            entered_tx.send(()).unwrap();
            release_rx.await.unwrap();
        })
        .await
        .unwrap()
    });
    entered_rx.await.unwrap();
    let second = c.as_leader(|| async {}).await.unwrap();
    assert!(!second, "a second leader while the first holds the lock");
    release_tx.send(()).unwrap();
    assert!(holder.await.unwrap());
    assert!(
        c.as_leader(|| async {}).await.unwrap(),
        "leadership is free again"
    );
}

#[tokio::test]
async fn bad_url_is_a_clear_error() {
    let e = Catalog::connect("mysql://x").await.unwrap_err();
    assert!(e.to_string().contains("neither sqlite"), "{e}");
}

/// Two servers committing overlapping record ids at the same moment, in opposite orders: one
/// commit wins whole, the other commits nothing and is told every id it lost. (Whether the two
/// transactions interleave is up to the scheduler; the global claim order that keeps them from
/// deadlocking when they do is by construction, see `claim_records`.)
#[tokio::test]
async fn overlapping_commits_at_once_store_each_record_once() {
    for b in backends().await {
        let c = &b.catalog;
        let ids: Vec<String> = (0..700).map(|i| format!("r{i:04}")).collect();
        let forward: Vec<&str> = ids.iter().map(String::as_str).collect();
        let backward: Vec<&str> = forward.iter().rev().copied().collect();
        let sx = [segment("t1", "a1", "t1/a1/x", 0, 1, &forward)];
        let sy = [segment("t1", "a1", "t1/a1/y", 0, 1, &backward)];
        let (x, y) = tokio::join!(c.commit_segments(&sx), c.commit_segments(&sy));
        let (x, y) = (x.unwrap(), y.unwrap());
        let lost = match (&x, &y) {
            (Commit::Committed(_), Commit::Conflict(lost))
            | (Commit::Conflict(lost), Commit::Committed(_)) => lost.len(),
            other => panic!("{}: {other:?}", b.name),
        };
        assert_eq!(lost, 700, "{}", b.name);
        assert_eq!(c.all_object_keys().await.unwrap().len(), 1, "{}", b.name);
    }
}

#[tokio::test]
async fn dropped_segments_are_pending_deletion_and_unknown_objects_keep_their_first_time() {
    for b in backends().await {
        let c = &b.catalog;
        let Commit::Committed(ids) = c
            .commit_segments(&[
                segment("t1", "a1", "t1/a1/s1", 0, 10, &["r1"]),
                segment("t1", "a1", "t1/a1/s2", 0, 10, &["r2"]),
                segment("t1", "a1", "t1/a1/s3", 0, 10, &["r3"]),
            ])
            .await
            .unwrap()
        else {
            panic!("{}", b.name)
        };
        // An erasure's swap, an erasure's drop and retention record the old objects in the
        // same transaction.
        c.replace_segment(
            ids[0],
            Some(&segment("t1", "a1", "t1/a1/s1b", 0, 10, &["r1"])),
        )
        .await
        .unwrap();
        c.replace_segment(ids[1], None).await.unwrap();
        c.delete_segments(&[ids[2]]).await.unwrap();
        let mut pending = c.pending_deletions().await.unwrap();
        pending.sort();
        assert_eq!(pending, ["t1/a1/s1", "t1/a1/s2", "t1/a1/s3"], "{}", b.name);
        // A failed swap records nothing.
        assert!(c.replace_segment(ids[0], None).await.is_err());
        assert_eq!(c.pending_deletions().await.unwrap().len(), 3, "{}", b.name);
        for k in ["t1/a1/s1", "t1/a1/s2", "t1/a1/s3"] {
            c.deletion_done(k).await.unwrap();
        }
        assert!(
            c.pending_deletions().await.unwrap().is_empty(),
            "{}",
            b.name
        );

        // An unknown object keeps the time it was first noted.
        let keys = ["x/y/1.lfs".to_owned(), "x/y/2.lfs".to_owned()];
        c.note_unknown_objects(&keys, 100).await.unwrap();
        c.note_unknown_objects(&keys, 200).await.unwrap();
        let seen = c.unknown_objects().await.unwrap();
        assert_eq!(
            (seen.len(), seen["x/y/1.lfs"], seen["x/y/2.lfs"]),
            (2, 100, 100),
            "{}",
            b.name
        );
        c.forget_unknown_objects(&keys[..1]).await.unwrap();
        let seen = c.unknown_objects().await.unwrap();
        assert_eq!(
            seen.into_keys().collect::<Vec<_>>(),
            ["x/y/2.lfs"],
            "{}",
            b.name
        );
    }
}

/// The schema of catalogs made before `record_keys` (release of 2026-11-30), as created then:
/// record ids as TEXT in a rowid table `records`, with its primary key and an index by segment.
const OLD_SQLITE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, public_key_pem TEXT, created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
    retention_days INTEGER, created_ns INTEGER NOT NULL, UNIQUE (tenant_id, name));
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL, name TEXT NOT NULL,
    key_hash BLOB NOT NULL UNIQUE, prefix TEXT NOT NULL, signature_required INTEGER NOT NULL,
    created_ns INTEGER NOT NULL, revoked_ns INTEGER, last_used_ns INTEGER);
CREATE TABLE IF NOT EXISTS access_tokens (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,
    prefix TEXT NOT NULL, scopes TEXT NOT NULL, created_ns INTEGER NOT NULL, expires_ns INTEGER NOT NULL,
    revoked_ns INTEGER, last_used_ns INTEGER);
CREATE TABLE IF NOT EXISTS data_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL, wrapped BLOB NOT NULL,
    created_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
    records INTEGER NOT NULL, entries INTEGER NOT NULL, bytes INTEGER NOT NULL, bloom BLOB NOT NULL,
    max_received_ns INTEGER NOT NULL, created_ns INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS segments_by_time ON segments (tenant_id, application_id, max_ts);
CREATE INDEX IF NOT EXISTS segments_by_start ON segments (tenant_id, application_id, min_ts);
CREATE TABLE IF NOT EXISTS records (
    tenant_id TEXT NOT NULL, record_id TEXT NOT NULL, segment_id INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_id));
CREATE INDEX IF NOT EXISTS records_by_segment ON records (segment_id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant_id TEXT NOT NULL, at_ns INTEGER NOT NULL,
    actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL,
    details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (tenant_id, at_ns);
CREATE TABLE IF NOT EXISTS unknown_objects (
    object_key TEXT PRIMARY KEY, first_seen_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending_deletions (
    object_key TEXT PRIMARY KEY, since_ns INTEGER NOT NULL);
"#;
const OLD_POSTGRES_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, public_key_pem TEXT, created_ns BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS applications (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants(id), name TEXT NOT NULL,
    retention_days BIGINT, created_ns BIGINT NOT NULL, UNIQUE (tenant_id, name));
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL, name TEXT NOT NULL,
    key_hash BYTEA NOT NULL UNIQUE, prefix TEXT NOT NULL, signature_required BIGINT NOT NULL,
    created_ns BIGINT NOT NULL, revoked_ns BIGINT, last_used_ns BIGINT);
CREATE TABLE IF NOT EXISTS access_tokens (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, name TEXT NOT NULL, token_hash BYTEA NOT NULL UNIQUE,
    prefix TEXT NOT NULL, scopes TEXT NOT NULL, created_ns BIGINT NOT NULL, expires_ns BIGINT NOT NULL,
    revoked_ns BIGINT, last_used_ns BIGINT);
CREATE TABLE IF NOT EXISTS data_keys (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL, wrapped BYTEA NOT NULL,
    created_ns BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS segments (
    id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, application_id TEXT NOT NULL,
    object_key TEXT NOT NULL UNIQUE, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL,
    records BIGINT NOT NULL, entries BIGINT NOT NULL, bytes BIGINT NOT NULL, bloom BYTEA NOT NULL,
    max_received_ns BIGINT NOT NULL, created_ns BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS segments_by_time ON segments (tenant_id, application_id, max_ts);
CREATE INDEX IF NOT EXISTS segments_by_start ON segments (tenant_id, application_id, min_ts);
CREATE TABLE IF NOT EXISTS records (
    tenant_id TEXT NOT NULL, record_id TEXT NOT NULL, segment_id BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, record_id));
CREATE INDEX IF NOT EXISTS records_by_segment ON records (segment_id);
CREATE TABLE IF NOT EXISTS audit (
    id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, at_ns BIGINT NOT NULL,
    actor TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, remote TEXT NOT NULL,
    details TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (tenant_id, at_ns);
CREATE TABLE IF NOT EXISTS unknown_objects (
    object_key TEXT PRIMARY KEY, first_seen_ns BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS pending_deletions (
    object_key TEXT PRIMARY KEY, since_ns BIGINT NOT NULL);
"#;

#[test]
fn record_keys_are_one_to_one() {
    let sdk = "sdk-00112233445566778899aabbccddeeff";
    let agent = "agent-01jdq8r9s0t1v2w3x4y5z6a7b8";
    let ids = [
        sdk,
        agent,
        // Not canonical: kept as their bytes, so they cannot collide with the forms above.
        "sdk-00112233445566778899AABBCCDDEEFF",
        "sdk-00112233445566778899aabbccddeef",
        "agent-01JDQ8R9S0T1V2W3X4Y5Z6A7B8",
        "agent-81jdq8r9s0t1v2w3x4y5z6a7b8",
        "agent-o1jdq8r9s0t1v2w3x4y5z6a7b8",
        "r1",
        "",
        "\u{1}\u{2}",
    ];
    let keys: Vec<Vec<u8>> = ids.iter().map(|id| record_key(id)).collect();
    assert_eq!(keys[0].len(), 17);
    assert_eq!(keys[0][0], 1);
    assert_eq!(keys[1].len(), 17);
    assert_eq!(keys[1][0], 2);
    for (id, key) in ids.iter().zip(&keys) {
        assert_eq!(record_id_of_key(key).as_deref(), Some(*id), "{id:?}");
        if !std::ptr::eq(*id, sdk) && !std::ptr::eq(*id, agent) {
            assert_eq!(key[0], 0, "{id:?} is kept as its bytes");
        }
    }
    let distinct: std::collections::HashSet<&Vec<u8>> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len());
    // Bytes no id maps to.
    assert_eq!(record_id_of_key(&[]), None);
    assert_eq!(record_id_of_key(&[1, 2, 3]), None);
    assert_eq!(record_id_of_key(&[3; 17]), None);
    assert_eq!(record_id_of_key(&[0, 0xff]), None);
}

/// Makes a catalog with the old schema at `url` and fills it: tenant `t1`, application `a1`,
/// segments 1 (`old-1`: an SDK id, an agent id, `r1`) and 2 (`old-2`: `r2`), and `t2`'s
/// segment 3 holding `r1` too. Returns the record ids of segment 1.
async fn old_catalog(url: &str, dialect: Dialect) -> Vec<String> {
    use sqlx::Executor as _;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&match dialect {
            Dialect::Sqlite => format!("{url}?mode=rwc"),
            Dialect::Postgres => url.to_owned(),
        })
        .await
        .unwrap();
    pool.execute(match dialect {
        Dialect::Sqlite => OLD_SQLITE_SCHEMA,
        Dialect::Postgres => OLD_POSTGRES_SCHEMA,
    })
    .await
    .unwrap();
    pool.execute(
        "INSERT INTO tenants (id, name, created_ns) VALUES ('t1', 'acme', 1), ('t2', 'other', 1)",
    )
    .await
    .unwrap();
    pool.execute(
        "INSERT INTO applications (id, tenant_id, name, created_ns) VALUES ('a1', 't1', 'app', 1)",
    )
    .await
    .unwrap();
    for (id, tenant, key) in [(1, "t1", "old-1"), (2, "t1", "old-2"), (3, "t2", "old-3")] {
        sqlx::query(
            "INSERT INTO segments (id, tenant_id, application_id, object_key, min_ts, max_ts, \
             records, entries, bytes, bloom, max_received_ns, created_ns) \
             VALUES ($1, $2, 'a1', $3, 0, 10, 1, 1, 1, $4, 11, 1)",
        )
        .bind(id as i64)
        .bind(tenant)
        .bind(key)
        .bind(vec![0u8])
        .execute(&pool)
        .await
        .unwrap();
    }
    if dialect == Dialect::Postgres {
        // Ids given explicitly do not advance the sequence a server's inserts take theirs from.
        pool.execute("SELECT setval('segments_id_seq', 3)")
            .await
            .unwrap();
    }
    let first = vec![
        "sdk-00112233445566778899aabbccddeeff".to_owned(),
        "agent-01jdq8r9s0t1v2w3x4y5z6a7b8".to_owned(),
        "r1".to_owned(),
    ];
    let rows = first
        .iter()
        .map(|id| ("t1", id.as_str(), 1i64))
        .chain([("t1", "r2", 2), ("t2", "r1", 3)]);
    for (tenant, id, segment) in rows {
        sqlx::query("INSERT INTO records (tenant_id, record_id, segment_id) VALUES ($1, $2, $3)")
            .bind(tenant)
            .bind(id)
            .bind(segment)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    first
}

/// A catalog made by the schema before `record_keys` is migrated when a server opens it: its
/// record ids are still found, still deduplicate new commits, and are deleted with their
/// segments (retention and erasure); the old table is gone, and opening again is a no-op.
#[tokio::test]
async fn a_catalog_with_the_old_records_table_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        format!("sqlite:{}", dir.path().join("old.db").display()),
        Dialect::Sqlite,
    )];
    if let Some(url) = fresh_postgres_url().await {
        urls.push((url, Dialect::Postgres));
    }
    for (url, dialect) in urls {
        let first = old_catalog(&url, dialect).await;
        let c = Catalog::connect(&url).await.unwrap();
        let old_table = match dialect {
            Dialect::Sqlite => {
                "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'records'"
            }
            Dialect::Postgres => {
                "SELECT 1 AS x FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'records'"
            }
        };
        assert!(
            sqlx::query(old_table)
                .fetch_optional(&c.pool)
                .await
                .unwrap()
                .is_none(),
            "{dialect:?}: `records` dropped"
        );
        let mut asked = first.clone();
        asked.extend(["r2".to_owned(), "r9".to_owned()]);
        let mut known = c.known_records("t1", &asked).await.unwrap();
        known.sort();
        let mut expected = asked[..4].to_vec();
        expected.sort();
        assert_eq!(known, expected, "{dialect:?}");
        assert_eq!(
            c.known_records("t2", &asked).await.unwrap(),
            ["r1"],
            "{dialect:?}"
        );
        // Deduplicated: a new segment claiming a migrated id is refused, naming it.
        assert_eq!(
            c.commit_segments(&[segment(
                "t1",
                "a1",
                "new-1",
                0,
                1,
                &["n1", first[0].as_str()]
            )])
            .await
            .unwrap(),
            Commit::Conflict(vec![("t1".into(), first[0].clone())]),
            "{dialect:?}"
        );
        assert!(matches!(
            c.commit_segments(&[segment("t1", "a1", "new-1", 0, 1, &["n1"])])
                .await
                .unwrap(),
            Commit::Committed(_)
        ));
        // Deleted with their segment (what retention and erasure call).
        c.delete_segments(&[1]).await.unwrap();
        assert_eq!(
            c.known_records("t1", &asked).await.unwrap(),
            ["r2"],
            "{dialect:?}"
        );
        assert_eq!(c.known_records("t2", &asked).await.unwrap(), ["r1"]);
        assert!(
            c.pending_deletions()
                .await
                .unwrap()
                .contains(&"old-1".to_owned())
        );
        // Released: the id can be stored again.
        assert!(matches!(
            c.commit_segments(&[segment("t1", "a1", "new-2", 0, 1, &[first[0].as_str()])])
                .await
                .unwrap(),
            Commit::Committed(_)
        ));
        c.close().await;
        // Opening the migrated catalog again changes nothing.
        let c = Catalog::connect(&url).await.unwrap();
        let mut known = c.known_records("t1", &asked).await.unwrap();
        known.sort();
        assert_eq!(known, ["r2", first[0].as_str()], "{dialect:?}");
        c.close().await;
    }
}

/// Record ids of every form round-trip through the catalog: conflicts name them as sent.
#[tokio::test]
async fn record_ids_of_every_form_are_claimed_and_named() {
    for b in backends().await {
        let c = &b.catalog;
        let ids = [
            "sdk-00112233445566778899aabbccddeeff",
            "agent-01jdq8r9s0t1v2w3x4y5z6a7b8",
            "sdk-00112233445566778899AABBCCDDEEFF",
            "plain.id_1",
        ];
        c.commit_segments(&[segment("t1", "a1", "s1", 0, 1, &ids)])
            .await
            .unwrap();
        let Commit::Conflict(mut lost) = c
            .commit_segments(&[segment("t1", "a1", "s2", 0, 1, &ids)])
            .await
            .unwrap()
        else {
            panic!("{}: committed twice", b.name)
        };
        lost.sort();
        let mut expected: Vec<(String, String)> = ids
            .iter()
            .map(|i| ("t1".to_owned(), (*i).to_owned()))
            .collect();
        expected.sort();
        assert_eq!(lost, expected, "{}", b.name);
    }
}

/// The migration copies `records` page by page (1 000 rows a page): 2 500 more ids over two
/// tenants all arrive, each under its own tenant.
#[tokio::test]
async fn a_migration_over_several_pages_moves_every_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![(
        format!("sqlite:{}", dir.path().join("old.db").display()),
        Dialect::Sqlite,
    )];
    if let Some(url) = fresh_postgres_url().await {
        urls.push((url, Dialect::Postgres));
    }
    for (url, dialect) in urls {
        old_catalog(&url, dialect).await;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .unwrap();
        let ids: Vec<String> = (0..1250).map(|i| format!("bulk-{i:05}")).collect();
        for (tenant, segment) in [("t1", 2i64), ("t2", 3)] {
            for chunk in ids.chunks(250) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|i| format!("('{tenant}', ${}, {segment})", i + 1))
                    .collect();
                let sql = format!(
                    "INSERT INTO records (tenant_id, record_id, segment_id) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for id in chunk {
                    q = q.bind(id.as_str());
                }
                q.execute(&pool).await.unwrap();
            }
        }
        pool.close().await;
        let c = Catalog::connect(&url).await.unwrap();
        for tenant in ["t1", "t2"] {
            let mut known = c.known_records(tenant, &ids).await.unwrap();
            known.sort();
            assert_eq!(known, ids, "{dialect:?} {tenant}");
        }
        // Each id under its own tenant's segment: dropping t2's segment leaves t1's ids.
        c.delete_segments(&[3]).await.unwrap();
        assert!(c.known_records("t2", &ids).await.unwrap().is_empty());
        assert_eq!(c.known_records("t1", &ids).await.unwrap().len(), ids.len());
        c.close().await;
    }
}

/// An in-memory SQLite URL is refused with a message saying why (each pooled connection
/// would open a database of its own).
#[tokio::test]
async fn an_in_memory_sqlite_catalog_is_refused() {
    for url in ["sqlite::memory:", "sqlite:file:c?mode=memory&cache=shared"] {
        let e = Catalog::connect(url).await.unwrap_err().to_string();
        assert!(e.contains("in-memory SQLite"), "{url}: {e}");
    }
}
