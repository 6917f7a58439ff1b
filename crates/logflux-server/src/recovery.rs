//! Recovery: the store describes itself, so a lost, damaged or older catalog can be rebuilt
//! from it (`logflux-server catalog rebuild`), and the catalog can be backed up and restored.
//!
//! Besides segments (`TENANT/APP/YYYY/MM/DD/ULID.lfs`: the key names the tenant and
//! application, the footer holds every record's id, key id, time range, count and tokens), the
//! store holds small JSON objects (see `docs/formats.md`, "Store metadata objects"):
//!
//! ```text
//! TENANT/_meta/tenant.json               id, name, public key, quota
//! TENANT/_meta/applications/APP.json     id, name, retention
//! TENANT/_keys/KEY.json                  a wrapped data key (RSA-OAEP; only the tenant's
//!                                        private key opens it)
//! _quarantine/UNIX_SECONDS/KEY           a segment no catalog named, moved aside by housekeeping
//! ```
//!
//! A data key is written to the store before the catalog learns it, so every key a stored
//! record names is in the store. Tenant and application objects are rewritten after every
//! change, and housekeeping writes any that are missing (catalogs older than this scheme).
//! Credentials (API keys, access tokens) are not in the store: after a rebuild from nothing,
//! the operator issues a new admin token (`logflux-server tenants token`) and admins reissue
//! API keys.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ServerConfig;
use crate::catalog::{Application, Catalog, CatalogError, Commit, DataKey, NewSegment, Tenant};
use crate::segment::{Footer, TRAILER_LEN, footer_range, parse_trailer};
use crate::store::BlobStore;

/// Where housekeeping moves segments no catalog names.
pub(crate) const QUARANTINE: &str = "_quarantine";

const TENANT_FORMAT: &str = "logflux.tenant.v1";
const APPLICATION_FORMAT: &str = "logflux.application.v1";
const DATA_KEY_FORMAT: &str = "logflux.data_key.v1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantObject {
    format: String,
    id: String,
    name: String,
    public_key_pem: Option<String>,
    quota_bytes: Option<i64>,
    created_ns: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationObject {
    format: String,
    id: String,
    tenant_id: String,
    name: String,
    retention_days: Option<i64>,
    created_ns: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DataKeyObject {
    format: String,
    id: String,
    tenant_id: String,
    application_id: String,
    /// Base64 of the RSA-OAEP wrapped key.
    wrapped_key: String,
    created_ns: i64,
}

fn tenant_object_key(tenant_id: &str) -> String {
    format!("{tenant_id}/_meta/tenant.json")
}

fn application_object_key(tenant_id: &str, application_id: &str) -> String {
    format!("{tenant_id}/_meta/applications/{application_id}.json")
}

fn data_key_object_key(tenant_id: &str, key_id: &str) -> String {
    format!("{tenant_id}/_keys/{key_id}.json")
}

fn to_json(v: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(v).expect("plain structs serialise"))
}

/// The tenant and application a segment object belongs to, if `key` is a segment
/// (`TENANT/APP/…/NAME.lfs`, outside the quarantine).
pub(crate) fn segment_owner(key: &str) -> Option<(&str, &str)> {
    if !key.ends_with(".lfs") {
        return None;
    }
    let mut parts = key.split('/');
    let (tenant, app) = (parts.next()?, parts.next()?);
    parts.next()?;
    (!tenant.starts_with('_') && !app.starts_with('_')).then_some((tenant, app))
}

/// A quarantined object's original key and the time (Unix seconds) it was quarantined.
pub(crate) fn quarantined(key: &str) -> Option<(&str, i64)> {
    let rest = key.strip_prefix(QUARANTINE)?.strip_prefix('/')?;
    let (at, original) = rest.split_once('/')?;
    Some((original, at.parse().ok()?))
}

/// The quarantine key of segment `key`, moved at `now_s`.
pub(crate) fn quarantine_key(key: &str, now_s: i64) -> String {
    format!("{QUARANTINE}/{now_s}/{key}")
}

/// Writes the tenant's metadata object, as the catalog now has it.
pub(crate) async fn publish_tenant(
    catalog: &Catalog,
    store: &BlobStore,
    tenant_id: &str,
) -> anyhow::Result<()> {
    let t = catalog.tenant(tenant_id).await?;
    store
        .put(&tenant_object_key(&t.id), to_json(&tenant_object(&t)))
        .await?;
    Ok(())
}

fn tenant_object(t: &Tenant) -> TenantObject {
    TenantObject {
        format: TENANT_FORMAT.into(),
        id: t.id.clone(),
        name: t.name.clone(),
        public_key_pem: t.public_key_pem.clone(),
        quota_bytes: t.quota_bytes,
        created_ns: t.created_ns,
    }
}

/// Writes the application's metadata object, as the catalog now has it.
pub(crate) async fn publish_application(
    catalog: &Catalog,
    store: &BlobStore,
    tenant_id: &str,
    application_id: &str,
) -> anyhow::Result<()> {
    let a = catalog.application(tenant_id, application_id).await?;
    store
        .put(
            &application_object_key(&a.tenant_id, &a.id),
            to_json(&application_object(&a)),
        )
        .await?;
    Ok(())
}

fn application_object(a: &Application) -> ApplicationObject {
    ApplicationObject {
        format: APPLICATION_FORMAT.into(),
        id: a.id.clone(),
        tenant_id: a.tenant_id.clone(),
        name: a.name.clone(),
        retention_days: a.retention_days,
        created_ns: a.created_ns,
    }
}

/// Writes a wrapped data key to the store. Call it before the catalog learns the key: then
/// every key a stored record can name is in the store.
pub(crate) async fn publish_data_key(store: &BlobStore, k: &DataKey) -> anyhow::Result<()> {
    let obj = DataKeyObject {
        format: DATA_KEY_FORMAT.into(),
        id: k.id.clone(),
        tenant_id: k.tenant_id.clone(),
        application_id: k.application_id.clone(),
        wrapped_key: B64.encode(&k.wrapped),
        created_ns: k.created_ns,
    };
    store
        .put(&data_key_object_key(&k.tenant_id, &k.id), to_json(&obj))
        .await?;
    Ok(())
}

/// Writes the metadata objects the store lacks (`present`: every key it holds); returns how
/// many. Covers catalogs from before the store described itself, and a publish that failed.
pub(crate) async fn mirror_missing(
    catalog: &Catalog,
    store: &BlobStore,
    present: &HashSet<String>,
) -> anyhow::Result<usize> {
    let mut written = 0;
    for t in catalog.tenants().await? {
        if !present.contains(&tenant_object_key(&t.id)) {
            store
                .put(&tenant_object_key(&t.id), to_json(&tenant_object(&t)))
                .await?;
            written += 1;
        }
    }
    for a in catalog.all_applications().await? {
        let key = application_object_key(&a.tenant_id, &a.id);
        if !present.contains(&key) {
            store.put(&key, to_json(&application_object(&a))).await?;
            written += 1;
        }
    }
    for k in catalog.all_data_keys().await? {
        if !present.contains(&data_key_object_key(&k.tenant_id, &k.id)) {
            publish_data_key(store, &k).await?;
            written += 1;
        }
    }
    Ok(written)
}

/// What a rebuild did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// Segments moved back from the quarantine before registering.
    pub unquarantined: usize,
    pub tenants: usize,
    pub applications: usize,
    pub data_keys: usize,
    pub segments: usize,
    pub records: usize,
    /// Settings of known tenants and applications (public key, quota, retention) set to what
    /// the store describes: its objects are rewritten after every change, so where the catalog
    /// differs, the catalog is the older.
    pub updated: usize,
    /// Tenants or applications a segment names but no metadata object describes: registered
    /// under their id as name.
    pub placeholders: usize,
    /// What was left out, and why (one line each).
    pub skipped: Vec<String>,
    /// Segments the catalog names that the store does not hold (deleted after a backup was
    /// taken, by retention or erasure), left in the catalog.
    pub missing_objects: usize,
    /// Such segments removed from the catalog (`--prune-missing`, and after a restore).
    pub pruned: usize,
    /// Objects of erased or expired segments still to be deleted (the catalog lists them;
    /// housekeeping deletes them): neither moved back nor registered.
    pub pending_deletion: usize,
}

impl std::fmt::Display for RebuildReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "registered: {} tenants, {} applications, {} data keys, {} segments ({} records)",
            self.tenants, self.applications, self.data_keys, self.segments, self.records
        )?;
        if self.updated > 0 {
            writeln!(
                f,
                "updated from the store: {} settings (public key, quota, retention)",
                self.updated
            )?;
        }
        if self.unquarantined > 0 {
            writeln!(
                f,
                "moved back from {QUARANTINE}/: {} segments",
                self.unquarantined
            )?;
        }
        if self.placeholders > 0 {
            writeln!(
                f,
                "{} tenants or applications had no metadata object and were registered with their id as name; rename them as needed",
                self.placeholders
            )?;
        }
        if self.pending_deletion > 0 {
            writeln!(
                f,
                "left out: {} objects of erased or expired segments, still to be deleted by housekeeping",
                self.pending_deletion
            )?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        if self.pruned > 0 {
            writeln!(
                f,
                "removed from the catalog: {} segments the store no longer holds (deleted since the backup by retention or erasure)",
                self.pruned
            )?;
        }
        if self.missing_objects > 0 {
            writeln!(
                f,
                "the catalog names {} segments the store does not hold (deleted since the backup?); queries report them as damaged; `catalog rebuild --prune-missing` removes them",
                self.missing_objects
            )?;
        }
        Ok(())
    }
}

/// Segments committed this close to the listing are never pruned: their commit time comes from
/// another server's clock.
const PRUNE_MARGIN_NS: i64 = 10 * 60 * 1_000_000_000;

/// Re-registers everything the store describes that the catalog does not know: quarantined
/// segments (moved back), tenants, applications, data keys, then segments, newest first.
/// Objects the catalog lists as pending deletion (an erasure's or retention's, whose delete
/// failed) are neither moved back nor registered.
/// Idempotent: what the catalog knows is left as it is. A segment whose record ids other
/// segments hold (the original of an erasure's rewrite, or the loser of a commit race) is left
/// out, so no record becomes visible twice and nothing erased comes back.
///
/// With `prune_missing`, catalog rows whose object the store does not hold are removed first
/// (an older catalog names segments deleted since, and their record ids would keep an
/// erasure's rewrite out). Only rows committed well before the listing are removed, and none
/// when the store holds no segment at all (a wrong store URL must not empty the catalog).
pub(crate) async fn rebuild(
    catalog: &Catalog,
    store: &BlobStore,
    prune_missing: bool,
) -> anyhow::Result<RebuildReport> {
    let mut report = RebuildReport::default();
    let listed_ns = logflux_proto::timefmt::now_ns();
    // Objects of erased or expired segments, still to be deleted: never brought back.
    let pending: HashSet<String> = catalog.pending_deletions().await?.into_iter().collect();
    let mut keys = Vec::new();
    for (key, _) in store.list("").await.context("listing the store")? {
        match quarantined(&key) {
            Some((original, _)) if pending.contains(original) => report.pending_deletion += 1,
            Some((original, _)) if segment_owner(original).is_some() => {
                store.rename(&key, original).await?;
                report.unquarantined += 1;
                keys.push(original.to_owned());
            }
            Some(_) => {}
            None if pending.contains(&key) => report.pending_deletion += 1,
            None => keys.push(key),
        }
    }

    for key in keys.iter().filter(|k| k.ends_with("/_meta/tenant.json")) {
        let o: TenantObject = read_json(store, key).await?;
        let t = Tenant {
            id: o.id,
            name: o.name,
            public_key_pem: o.public_key_pem,
            created_ns: o.created_ns,
            quota_bytes: o.quota_bytes,
        };
        match catalog.restore_tenant(&t).await {
            Ok(true) => report.tenants += 1,
            Ok(false) => {
                // The object is rewritten after every change: where the catalog differs, it
                // is the older of the two (a lost WAL, a restored backup).
                let have = catalog.tenant(&t.id).await?;
                if let Some(pem) = &t.public_key_pem
                    && have.public_key_pem.as_ref() != Some(pem)
                {
                    catalog.set_public_key(&t.id, pem).await?;
                    report.updated += 1;
                }
                if have.quota_bytes != t.quota_bytes {
                    catalog.set_quota(&t.id, t.quota_bytes).await?;
                    report.updated += 1;
                }
            }
            Err(CatalogError::Conflict(_)) => report.skipped.push(format!(
                "tenant {} ({:?}): another tenant has its name",
                t.id, t.name
            )),
            Err(e) => return Err(e.into()),
        }
    }
    for key in keys
        .iter()
        .filter(|k| k.contains("/_meta/applications/") && k.ends_with(".json"))
    {
        let o: ApplicationObject = read_json(store, key).await?;
        let a = Application {
            id: o.id,
            tenant_id: o.tenant_id,
            name: o.name,
            retention_days: o.retention_days,
            created_ns: o.created_ns,
        };
        match catalog.restore_application(&a).await {
            Ok(true) => report.applications += 1,
            Ok(false) => {
                let have = catalog.application(&a.tenant_id, &a.id).await?;
                if have.retention_days != a.retention_days {
                    catalog
                        .set_retention(&a.tenant_id, &a.id, a.retention_days)
                        .await?;
                    report.updated += 1;
                }
            }
            Err(CatalogError::Conflict(_)) => report.skipped.push(format!(
                "application {} ({:?}): another application of the tenant has its name",
                a.id, a.name
            )),
            Err(e) => return Err(e.into()),
        }
    }
    for key in keys
        .iter()
        .filter(|k| k.contains("/_keys/") && k.ends_with(".json"))
    {
        let o: DataKeyObject = read_json(store, key).await?;
        let k = DataKey {
            wrapped: B64
                .decode(&o.wrapped_key)
                .with_context(|| format!("{key}: wrapped_key is not base64"))?,
            id: o.id,
            tenant_id: o.tenant_id,
            application_id: o.application_id,
            created_ns: o.created_ns,
        };
        report.data_keys += usize::from(catalog.restore_data_key(&k).await?);
    }

    let present: HashSet<&String> = keys.iter().collect();
    let rows = catalog.segment_objects().await?;
    let missing: Vec<&(i64, String, i64)> = rows
        .iter()
        .filter(|(_, key, _)| !present.contains(key))
        .collect();
    if prune_missing && !missing.is_empty() {
        anyhow::ensure!(
            keys.iter().any(|k| segment_owner(k).is_some()),
            "the store holds no segment at all, but the catalog names {}: is the store URL \
             right? Nothing was pruned",
            rows.len()
        );
        let old: Vec<i64> = missing
            .iter()
            .filter(|(_, _, created)| *created < listed_ns - PRUNE_MARGIN_NS)
            .map(|(id, _, _)| *id)
            .collect();
        catalog.delete_segments(&old).await?;
        report.pruned = old.len();
    }
    report.missing_objects = missing.len() - report.pruned;

    // Segments, newest first (object names are ULIDs): an erasure's rewrite is newer than the
    // segment it replaced, so it claims the kept records and the original is left out.
    let known: HashSet<String> = catalog.all_object_keys().await?.into_iter().collect();
    let mut segments: Vec<&String> = keys
        .iter()
        .filter(|k| segment_owner(k).is_some() && !known.contains(*k))
        .collect();
    segments.sort_by(|a, b| b.rsplit('/').next().cmp(&a.rsplit('/').next()));
    for key in segments {
        let (tenant, app) = segment_owner(key).expect("filtered");
        report.placeholders += ensure_owner(catalog, tenant, app).await?;
        let seg = match read_segment(store, key, tenant, app).await {
            Ok(seg) => seg,
            Err(e) => {
                report.skipped.push(format!("{key}: {e:#}"));
                continue;
            }
        };
        match catalog.commit_segments(std::slice::from_ref(&seg)).await? {
            Commit::Committed(_) => {
                report.segments += 1;
                report.records += seg.record_ids.len();
            }
            Commit::Conflict(held) => report.skipped.push(format!(
                "{key}: {} of its {} records are held by other segments (replaced by an erasure, or a commit race's loser)",
                held.len(),
                seg.record_ids.len()
            )),
        }
    }
    Ok(report)
}

async fn read_json<T: serde::de::DeserializeOwned>(
    store: &BlobStore,
    key: &str,
) -> anyhow::Result<T> {
    let bytes = store.get(key).await?;
    serde_json::from_slice(&bytes).with_context(|| format!("{key} is not a valid metadata object"))
}

/// Registers a placeholder tenant or application (id as name) when a segment names one the
/// catalog does not know and no metadata object described; returns how many.
async fn ensure_owner(catalog: &Catalog, tenant: &str, app: &str) -> anyhow::Result<usize> {
    let mut n = 0;
    if let Err(CatalogError::NotFound(_)) = catalog.tenant(tenant).await {
        let t = Tenant {
            id: tenant.into(),
            name: tenant.into(),
            public_key_pem: None,
            created_ns: logflux_proto::timefmt::now_ns(),
            quota_bytes: None,
        };
        n += usize::from(catalog.restore_tenant(&t).await?);
    }
    if let Err(CatalogError::NotFound(_)) = catalog.application(tenant, app).await {
        let a = Application {
            id: app.into(),
            tenant_id: tenant.into(),
            name: app.into(),
            retention_days: None,
            created_ns: logflux_proto::timefmt::now_ns(),
        };
        n += usize::from(catalog.restore_application(&a).await?);
    }
    Ok(n)
}

/// The catalog row of a stored segment, from its footer (read with two range reads).
async fn read_segment(
    store: &BlobStore,
    key: &str,
    tenant: &str,
    app: &str,
) -> anyhow::Result<NewSegment> {
    let len = store.size(key).await?;
    let start = len
        .checked_sub(TRAILER_LEN as u64)
        .context("shorter than a segment trailer")?;
    let (footer_len, crc) = parse_trailer(&store.get_range(key, start..len).await?)?;
    let range = footer_range(len, footer_len)?;
    let footer = Footer::parse(&store.get_range(key, range).await?, crc, len)?;
    let summary = footer.summary(len);
    Ok(NewSegment {
        tenant_id: tenant.into(),
        application_id: app.into(),
        object_key: key.into(),
        min_ts: summary.min_ts,
        max_ts: summary.max_ts,
        records: i64::from(summary.records),
        entries: summary.entries as i64,
        bytes: summary.bytes as i64,
        bloom: summary.bloom,
        max_received_ns: summary.max_received_ns,
        record_ids: footer
            .records
            .iter()
            .map(|r| r.meta.record_id.clone())
            .collect(),
    })
}

/// The path of an SQLite catalog URL's database file (`sqlite:PATH` or `sqlite://PATH`, any
/// `?options` dropped); `None` for PostgreSQL and in-memory databases. The one parser for
/// every use of the path (directory and file modes, lock, backup, restore).
pub(crate) fn sqlite_path(catalog_url: &str) -> Option<&Path> {
    let rest = catalog_url.strip_prefix("sqlite:")?;
    let path = rest.split('?').next().unwrap_or(rest);
    let path = path.strip_prefix("//").unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':')).then(|| Path::new(path))
}

/// Holds the SQLite catalog's lock file (`catalog.db.lock`) while a server serves it or a
/// restore replaces it; `None` for PostgreSQL. Fails when another process holds it. The
/// catalog's directory is created private, or refused, first: no lock file is ever made in a
/// directory others may write.
pub(crate) fn lock_catalog(
    catalog_url: &str,
) -> anyhow::Result<Option<logflux_config::dir_lock::DirLock>> {
    let Some(db) = sqlite_path(catalog_url) else {
        return Ok(None);
    };
    if let Some(dir) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::private_dir(dir)?;
    }
    let lock = db.with_extension("db.lock");
    let held = logflux_config::dir_lock::lock_file(
        &lock,
        &format!("the catalog {}", db.display()),
        "stop that server (a logflux-server, or a `logflux up`) first",
    )?;
    Ok(Some(held))
}

/// The catalog and the store of `config`.
async fn open(config: &ServerConfig) -> anyhow::Result<(Catalog, BlobStore)> {
    config.open().await
}

/// `logflux-server catalog rebuild [--prune-missing]`.
pub async fn rebuild_catalog(
    config: &ServerConfig,
    prune_missing: bool,
) -> anyhow::Result<RebuildReport> {
    let (catalog, store) = open(config).await?;
    let report = rebuild(&catalog, &store, prune_missing).await;
    catalog.close().await;
    report
}

/// How to back up and restore a PostgreSQL catalog (the server does not do it itself).
pub const POSTGRES_BACKUP_ADVICE: &str = "the catalog is in PostgreSQL: back it up with \
     `pg_dump --format=custom --file FILE DATABASE_URL` (consistent while servers run), restore \
     with `pg_restore --clean --if-exists --dbname DATABASE_URL FILE`, then run \
     `logflux-server catalog rebuild` to register segments newer than the dump";

/// `logflux-server backup --out FILE`: a consistent copy of the SQLite catalog, taken while
/// the server runs, written with mode 0600 (it holds credential hashes and wrapped keys).
pub async fn backup_catalog(config: &ServerConfig, out: &Path) -> anyhow::Result<u64> {
    if sqlite_path(&config.catalog_url).is_none() {
        anyhow::bail!("{POSTGRES_BACKUP_ADVICE}");
    }
    let out_str = out
        .to_str()
        .context("the backup path must be valid UTF-8")?
        .to_owned();
    {
        // Created empty and private first: VACUUM INTO writes into an empty file as it is.
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(out).with_context(|| {
            format!(
                "creating {} (it must not exist; backups are never overwritten)",
                out.display()
            )
        })?;
    }
    let (catalog, _) = open(config).await?;
    let r = catalog.backup_sqlite(&out_str).await;
    catalog.close().await;
    if let Err(e) = r {
        let _ = std::fs::remove_file(out);
        return Err(e).context("writing the backup");
    }
    std::fs::File::open(out)?.sync_all()?;
    Ok(std::fs::metadata(out)?.len())
}

/// `logflux-server restore --from FILE`: replaces the SQLite catalog by a backup. Refuses
/// while a server serves the catalog. The backup is checked (and migrated to the current
/// schema) on a copy before it replaces anything.
pub async fn restore_catalog(config: &ServerConfig, from: &Path) -> anyhow::Result<()> {
    let Some(db) = sqlite_path(&config.catalog_url) else {
        anyhow::bail!("{POSTGRES_BACKUP_ADVICE}");
    };
    let db = db.to_path_buf();
    let _lock = lock_catalog(&config.catalog_url)?;
    // The lock created the directory (private) if it was missing.
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = db.with_extension("db.restoring");
    remove_sqlite_files(&tmp)?;
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut out = opts.open(&tmp)?;
        let mut src = std::fs::File::open(from)
            .with_context(|| format!("opening the backup {}", from.display()))?;
        std::io::copy(&mut src, &mut out)?;
        out.sync_all()?;
    }
    let checked = async {
        let url = format!("sqlite:{}", tmp.display());
        let c = Catalog::connect(&url)
            .await
            .with_context(|| format!("{} is not a LogFlux catalog", from.display()))?;
        let ok = c.check_sqlite().await?;
        c.close().await;
        anyhow::ensure!(
            ok == "ok",
            "{} fails its integrity check: {ok}",
            from.display()
        );
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = checked {
        let _ = remove_sqlite_files(&tmp);
        return Err(e);
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tmp.display()));
    }
    // The replaced catalog is kept beside it, not deleted.
    let replaced = db.with_extension(format!(
        "db.replaced-{}",
        logflux_proto::timefmt::now_ns() / 1_000_000_000
    ));
    for suffix in ["", "-wal", "-shm"] {
        let from = format!("{}{suffix}", db.display());
        match std::fs::rename(&from, format!("{}{suffix}", replaced.display())) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("moving {from} aside")),
        }
    }
    std::fs::rename(&tmp, &db)
        .with_context(|| format!("moving the restored catalog to {}", db.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Removes an SQLite database and its WAL and shared-memory files, if present.
fn remove_sqlite_files(db: &Path) -> anyhow::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", db.display());
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {p}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
