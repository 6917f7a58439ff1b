//! The catalog: tenants, applications, credentials, data keys, segments, record ids and the
//! audit log, in SQLite (embedded) or PostgreSQL (scale-out).
//!
//! One implementation serves both through sqlx's `Any` driver: the queries are written in the
//! SQL both dialects share (`$n` placeholders, `ON CONFLICT`, `RETURNING`), integers are
//! 64-bit, booleans are integers, timestamps are Unix nanoseconds. Only the schema (column
//! types) and leader election differ per dialect. One conformance suite runs against both.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row as _};

/// Which database the catalog lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The `n`th (from 1) placeholder of a statement built at run time with many of them:
    /// `$n` on PostgreSQL, `?` on SQLite, where binding each of `k` numbered parameters looks
    /// its name up by a walk of the statement's names (k²/2 steps: ~0.4 ms for a 900-value
    /// insert, measured as the top symbol of SDK ingest) and plain ones need no look-up.
    /// Statements using it bind their values in placeholder order, never one twice.
    fn placeholder(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// Catalog errors.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("catalog URL {0:?} is neither sqlite:… nor postgres://…")]
    Url(String),
    #[error(
        "catalog URL {0:?} names an in-memory SQLite database: each connection would get its own, empty one; give a file path"
    )]
    InMemory(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A name that matches more than one row (only possible in catalogs written before names
    /// were case-folded); the message says how to address the row instead.
    #[error("{0}")]
    Ambiguous(String),
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

type Result<T> = std::result::Result<T, CatalogError>;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub public_key_pem: Option<String>,
    pub created_ns: i64,
    /// Bytes of stored segments allowed; `None` is unlimited.
    pub quota_bytes: Option<i64>,
}

/// An application of a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// Days to keep records; `None` keeps them forever.
    pub retention_days: Option<i64>,
    pub created_ns: i64,
}

/// An ingest API key (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub tenant_id: String,
    pub application_id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in listings.
    pub prefix: String,
    pub signature_required: bool,
    pub created_ns: i64,
    pub revoked_ns: Option<i64>,
    pub last_used_ns: Option<i64>,
}

/// A personal access token (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub prefix: String,
    /// Space-separated: `read`, `write`, `admin`.
    pub scopes: String,
    pub created_ns: i64,
    pub expires_ns: i64,
    pub revoked_ns: Option<i64>,
    pub last_used_ns: Option<i64>,
}

/// A wrapped data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKey {
    pub id: String,
    pub tenant_id: String,
    pub application_id: String,
    pub wrapped: Vec<u8>,
    pub created_ns: i64,
}

/// A committed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: i64,
    pub tenant_id: String,
    pub application_id: String,
    pub object_key: String,
    pub min_ts: i64,
    pub max_ts: i64,
    pub records: i64,
    pub entries: i64,
    pub bytes: i64,
    /// A Bloom filter of the segment's tokens (see `bloom`).
    pub bloom: Vec<u8>,
    pub max_received_ns: i64,
    pub created_ns: i64,
}

/// A segment about to be committed, with its records' ids.
#[derive(Debug, Clone)]
pub struct NewSegment {
    pub tenant_id: String,
    pub application_id: String,
    pub object_key: String,
    pub min_ts: i64,
    pub max_ts: i64,
    pub records: i64,
    pub entries: i64,
    pub bytes: i64,
    pub bloom: Vec<u8>,
    pub max_received_ns: i64,
    pub record_ids: Vec<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    pub tenant_id: String,
    pub at_ns: i64,
    /// Who: `token:<id>`, `api_key:<id>`, `system`.
    pub actor: String,
    pub action: String,
    pub target: String,
    pub remote: String,
    pub details: String,
}

/// Filter for segment listings.
#[derive(Debug, Clone)]
pub struct SegmentFilter<'a> {
    pub tenant_id: &'a str,
    /// Empty: every application of the tenant.
    pub application_ids: &'a [String],
    pub from_ns: i64,
    pub to_ns: i64,
    /// Newest first (by max_ts, then id) when true; oldest first (by min_ts, then id) when false.
    pub newest_first: bool,
    /// Continue after this (max_ts or min_ts, id) in the listing's order.
    pub after: Option<(i64, i64)>,
    /// Whether the segment at `after` itself is included.
    pub include_after: bool,
    pub limit: i64,
}

/// The catalog key of a record id (`record_keys.record_key`): the ids servers make and agents
/// send, in their canonical form, as the 16 bytes they spell, after a tag byte; any other id
/// as its UTF-8 bytes after tag 0. [`record_id_of_key`] turns a key back into its id, so the
/// mapping is one to one (no two ids share a key):
///
/// - `sdk-` and 32 lower-case hex digits (an SDK part's id, see `ingest::sdk_record_id`):
///   `0x01` and the 16 bytes;
/// - `agent-` and 26 lower-case Crockford base-32 digits that read as a 128-bit number (the
///   ids agents make): `0x02` and the 16 bytes, big-endian;
/// - anything else: `0x00` and the id's bytes.
///
/// 17 bytes instead of 36–42 characters: every commit inserts one key per record, and agent
/// ids and v1 SDK ids land at random places of the primary key's B-tree, so a smaller key
/// means fewer pages to write (v2 SDK ids lead with their time and append; docs/formats.md).
pub(crate) fn record_key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    if let Some(hex) = id.strip_prefix("sdk-")
        && hex.len() == 32
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && let Ok(bytes) = hex::decode(hex)
    {
        key.push(1);
        key.extend_from_slice(&bytes);
        return key;
    }
    if let Some(ulid) = id.strip_prefix("agent-")
        && ulid.len() == 26
        && let Ok(n) = ulid::Ulid::from_string(ulid)
        && n.to_string().to_lowercase() == ulid
    {
        key.push(2);
        key.extend_from_slice(&n.0.to_be_bytes());
        return key;
    }
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The record id a key of [`record_key`] stands for; `None` for bytes no id maps to.
pub(crate) fn record_id_of_key(key: &[u8]) -> Option<String> {
    match key.split_first()? {
        (1, b) if b.len() == 16 => Some(format!("sdk-{}", hex::encode(b))),
        (2, b) if b.len() == 16 => {
            let n = u128::from_be_bytes(b.try_into().ok()?);
            Some(format!(
                "agent-{}",
                ulid::Ulid(n).to_string().to_lowercase()
            ))
        }
        (0, b) => String::from_utf8(b.to_vec()).ok(),
        _ => None,
    }
}

// Record ids live in `record_keys` (since 2026-12-01; before, in `records` with TEXT ids and
// a rowid, migrated on start by `migrate_records`): one row per record, keyed by tenant and
// [`record_key`], so the primary key is the table (WITHOUT ROWID on SQLite) and the only
// other B-tree is the index by segment that retention and erasure delete through.
const SQLITE_SCHEMA: &str = r#"
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
CREATE TABLE IF NOT EXISTS record_keys (
    tenant_id TEXT NOT NULL, record_key BLOB NOT NULL, segment_id INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, record_key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS record_keys_by_segment ON record_keys (segment_id);
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

const POSTGRES_SCHEMA: &str = r#"
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
CREATE TABLE IF NOT EXISTS record_keys (
    tenant_id TEXT NOT NULL, record_key BYTEA NOT NULL, segment_id BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, record_key));
CREATE INDEX IF NOT EXISTS record_keys_by_segment ON record_keys (segment_id);
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

// SQLite treats `$n` as a named parameter numbered by first appearance, so in every query
// placeholders first appear in ascending order (a repeat of an earlier one is fine).

const SEGMENT_COLUMNS: &str = "id, tenant_id, application_id, object_key, min_ts, max_ts, records, \
     entries, bytes, bloom, max_received_ns, created_ns";

/// Inserts a segment's row (its records are claimed separately, see [`claim_records`]).
async fn insert_segment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    s: &NewSegment,
    created_ns: i64,
) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO segments (tenant_id, application_id, object_key, min_ts, max_ts, records, entries, bytes, bloom, max_received_ns, created_ns) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(&s.tenant_id)
    .bind(&s.application_id)
    .bind(&s.object_key)
    .bind(s.min_ts)
    .bind(s.max_ts)
    .bind(s.records)
    .bind(s.entries)
    .bind(s.bytes)
    .bind(&s.bloom)
    .bind(s.max_received_ns)
    .bind(created_ns)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("id")?)
}

/// Claims record ids for the segments just inserted: `(tenant, record id, segment id)`. The
/// primary key `(tenant_id, record_key)` makes the catalog the arbiter between servers: a
/// record id is held by one segment only. Returns the `(tenant, record id)` pairs another
/// segment already holds (nothing is changed for them).
///
/// Claims are inserted in one global order (tenant, then key: the B-tree's own order), so two
/// transactions claiming overlapping ids wait for each other instead of deadlocking, and each
/// statement's rows land in ascending key order; one batched statement per
/// [`CLAIMS_PER_STATEMENT`] records. The statement returns no rows: only when it inserts fewer
/// than it was given are the holders of its keys read back, to name the ones held by other
/// segments.
async fn claim_records(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    claims: Vec<(&str, &str, i64)>,
) -> Result<Vec<(String, String)>> {
    let mut claims: Vec<Claim<'_>> = claims
        .into_iter()
        .map(|(tenant, id, segment)| (tenant, record_key(id), segment, id))
        .collect();
    claims.sort_unstable();
    let mut conflicts = Vec::new();
    for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let p = |k: usize| dialect.placeholder(3 * i + k);
                format!("({}, {}, {})", p(1), p(2), p(3))
            })
            .collect();
        let sql = format!(
            "INSERT INTO record_keys (tenant_id, record_key, segment_id) VALUES {} \
             ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(audited(sql));
        for (tenant, key, segment, _) in chunk {
            q = q.bind(*tenant).bind(key.as_slice()).bind(*segment);
        }
        let inserted = q.execute(&mut **tx).await?.rows_affected();
        if inserted < chunk.len() as u64 {
            conflicts.extend(claims_held_by_others(tx, dialect, chunk).await?);
        }
    }
    Ok(conflicts)
}

/// A claim as inserted: tenant, [`record_key`], segment id, and the record id itself.
type Claim<'a> = (&'a str, Vec<u8>, i64, &'a str);

/// Records claimed by one `INSERT` (3 parameters each: within SQLite's 32 766 and
/// PostgreSQL's 65 535).
const CLAIMS_PER_STATEMENT: usize = 1000;

/// The claims of `chunk` (sorted by tenant) whose record key a segment other than the
/// claim's holds, as `(tenant, record id)`.
async fn claims_held_by_others(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dialect: Dialect,
    chunk: &[Claim<'_>],
) -> Result<Vec<(String, String)>> {
    let mut held = Vec::new();
    for run in chunk.chunk_by(|a, b| a.0 == b.0) {
        let tenant = run[0].0;
        let placeholders: Vec<String> =
            (0..run.len()).map(|i| dialect.placeholder(i + 2)).collect();
        let sql = format!(
            "SELECT record_key, segment_id FROM record_keys WHERE tenant_id = {} AND record_key IN ({})",
            dialect.placeholder(1),
            placeholders.join(", ")
        );
        let mut q = sqlx::query(audited(sql)).bind(tenant);
        for (_, key, _, _) in run {
            q = q.bind(key.as_slice());
        }
        let mut holders = HashMap::new();
        for r in q.fetch_all(&mut **tx).await? {
            holders.insert(
                r.try_get::<Vec<u8>, _>("record_key")?,
                r.try_get::<i64, _>("segment_id")?,
            );
        }
        for (_, key, segment, id) in run {
            if holders.get(key) != Some(segment) {
                held.push((tenant.to_owned(), (*id).to_owned()));
            }
        }
    }
    Ok(held)
}

/// Records the object of segment `id` as pending deletion, in the transaction that drops the
/// segment: housekeeping deletes it (and never quarantines it) if the caller's own delete
/// fails or the server stops first, and `catalog rebuild` never registers it again.
async fn mark_for_deletion(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO pending_deletions (object_key, since_ns) \
         SELECT object_key, $1 FROM segments WHERE id = $2 ON CONFLICT DO NOTHING",
    )
    .bind(now_ns())
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Moves the record ids of a catalog made before `record_keys` existed (table `records`, ids
/// as TEXT, a rowid and two indexes) into `record_keys`, and drops `records`, in one
/// transaction: a crash midway leaves the old table whole, and the next start migrates
/// again. Rows are read in primary-key order, 1 000 at a time, so memory stays bounded.
async fn migrate_records(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
) -> std::result::Result<(), sqlx::Error> {
    use sqlx::Connection as _;
    let exists = match dialect {
        Dialect::Sqlite => {
            "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'records'"
        }
        // `to_regclass` resolves the name as the unqualified statements below do (search
        // path), and sees the table whatever the role's privileges on it.
        Dialect::Postgres => "SELECT 1 AS x WHERE to_regclass('records') IS NOT NULL",
    };
    if sqlx::query(exists)
        .fetch_optional(&mut *conn)
        .await?
        .is_none()
    {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    // An older server still running on the catalog would go on claiming into `records`
    // while it is read, behind the page already copied, and lose those claims with the drop:
    // its writes wait for this transaction instead (and fail once `records` is gone, so its
    // clients retry against an upgraded server). SQLite needs nothing: the first claim below
    // makes this the only writer, and it fails (to be retried at the next start) if anyone
    // wrote since its first read.
    if dialect == Dialect::Postgres {
        sqlx::query("LOCK TABLE records IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await?;
    }
    let mut after: Option<(String, String)> = None;
    let (mut moved, mut held) = (0usize, 0usize);
    loop {
        let page = match &after {
            None => {
                sqlx::query(
                    "SELECT tenant_id, record_id, segment_id FROM records \
                     ORDER BY tenant_id, record_id LIMIT 1000",
                )
                .fetch_all(&mut *tx)
                .await?
            }
            Some((tenant, id)) => {
                sqlx::query(
                    "SELECT tenant_id, record_id, segment_id FROM records \
                     WHERE (tenant_id, record_id) > ($1, $2) \
                     ORDER BY tenant_id, record_id LIMIT 1000",
                )
                .bind(tenant)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        let Some(last) = page.last() else { break };
        let rows: Vec<(String, String, i64)> = page
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("tenant_id")?,
                    r.try_get("record_id")?,
                    r.try_get("segment_id")?,
                ))
            })
            .collect::<std::result::Result<_, sqlx::Error>>()?;
        after = Some((last.try_get("tenant_id")?, last.try_get("record_id")?));
        let claims = rows
            .iter()
            .map(|(t, id, s)| (t.as_str(), id.as_str(), *s))
            .collect();
        // Ids are unique in `records` and keys are one to one, so a claim can only be held
        // already if `record_keys` had rows before (an older server recreated `records`
        // after an upgrade): the claim already there stays.
        held += claim_records(&mut tx, dialect, claims)
            .await
            .map_err(|e| match e {
                CatalogError::Db(d) => d,
                other => sqlx::Error::Protocol(other.to_string()),
            })?
            .len();
        moved += rows.len();
    }
    sqlx::query("DROP TABLE records").execute(&mut *tx).await?;
    tx.commit().await?;
    if dialect == Dialect::Sqlite {
        // The migration wrote about the new table's size to the WAL: give that disk back now
        // rather than at the next checkpoint that finds no reader.
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
    }
    tracing::info!(
        records = moved,
        already_held = held,
        "catalog migrated: record ids moved from `records` to `record_keys`"
    );
    Ok(())
}

/// What [`Catalog::commit_segments`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Every segment is in the catalog, with these ids, in order.
    Committed(Vec<i64>),
    /// Nothing was committed: these `(tenant, record id)` pairs are already held by other
    /// segments (committed meanwhile by another server, or registered by a rebuild).
    Conflict(Vec<(String, String)>),
}

/// The catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pool: AnyPool,
    /// The connection [`Catalog::commit_segments`] runs on (SQLite); `pool` on PostgreSQL.
    committer: AnyPool,
    dialect: Dialect,
}

/// Page cache of each SQLite connection of the pool, in KiB (SQLite's default is 2 000).
const SQLITE_CACHE_KIB: i64 = 8 * 1024;
/// Page cache of the SQLite connection commits run on, in KiB: the `record_keys` B-tree's
/// upper levels and recent leaves.
const SQLITE_COMMITTER_CACHE_KIB: i64 = 64 * 1024;

/// A pool of `max` connections to the SQLite database `opts` names, each set up with the
/// catalog's pragmas and a page cache of `cache_kib`.
async fn sqlite_pool(opts: &str, max: u32, cache_kib: i64) -> Result<AnyPool> {
    Ok(AnyPoolOptions::new()
        .max_connections(max)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                use sqlx::Executor as _;
                conn.execute(audited(format!(
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                     PRAGMA wal_autocheckpoint=16384; PRAGMA temp_store=MEMORY; \
                     PRAGMA cache_size=-{cache_kib}; \
                     PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON;"
                )))
                .await?;
                Ok(())
            })
        })
        .connect(opts)
        .await?)
}

/// Marks SQL built at run time as safe: every such string here is assembled from constants and
/// placeholders only; values are always bound, never formatted in.
fn audited(sql: String) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(sql)
}

fn now_ns() -> i64 {
    logflux_proto::timefmt::now_ns()
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl Catalog {
    /// Connects to `url` (`sqlite:PATH` or `postgres://…`) and creates the schema if absent.
    pub async fn connect(url: &str) -> Result<Catalog> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Dialect::Postgres
        } else {
            return Err(CatalogError::Url(url.to_owned()));
        };
        if dialect == Dialect::Sqlite && (url.contains(":memory:") || url.contains("mode=memory")) {
            return Err(CatalogError::InMemory(url.to_owned()));
        }
        let sqlite_opts = format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" });
        let pool = match dialect {
            Dialect::Sqlite => {
                // WAL with synchronous=FULL: a committed transaction survives power loss.
                // Checkpoints every 16 384 WAL pages (64 MiB of 4 KiB pages) instead of
                // SQLite's 1 000: a commit claims agent records (and SDK parts without a time
                // of their own) at random places of the `record_keys` B-tree, so it writes
                // about a page per such record to the WAL; with
                // the default, nearly every commit ran a checkpoint (copying those pages into
                // the database and fsyncing it) before it returned, where a larger WAL lets
                // one checkpoint write a page that many commits changed once.
                // Temporary storage in memory: a claim statement inserts up to 1 000 rows, so
                // SQLite keeps a statement journal (the original of every page it changes, to
                // undo the statement alone); past 64 KiB that journal spilled to a temporary
                // file (10 % of the server's samples during SDK ingest went to writing it).
                // It holds at most the pages one statement changes (about 4 MiB for 1 000
                // claims).
                sqlite_pool(&sqlite_opts, 4, SQLITE_CACHE_KIB).await?
            }
            Dialect::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await?
            }
        };
        // Commits get a connection of their own on SQLite: a connection's page cache is
        // dropped whenever another connection has written since its last transaction, so
        // commits taking turns on the pool's connections read the `record_keys` B-tree from
        // the file again and again (11 % of the server's samples in page reads); one writer
        // keeps it, in a larger cache. PostgreSQL shares its pool.
        let committer = match dialect {
            Dialect::Sqlite => sqlite_pool(&sqlite_opts, 1, SQLITE_COMMITTER_CACHE_KIB).await?,
            Dialect::Postgres => pool.clone(),
        };
        let schema = match dialect {
            Dialect::Sqlite => SQLITE_SCHEMA,
            Dialect::Postgres => POSTGRES_SCHEMA,
        };
        {
            use sqlx::Executor as _;
            let mut conn = pool.acquire().await?;
            if dialect == Dialect::Postgres {
                // Several servers may start at once: serialise schema creation.
                conn.execute("SELECT pg_advisory_lock(7317001)").await?;
            }
            let mut result = conn.execute(schema).await.map(|_| ());
            if result.is_ok() {
                // Columns added after the first release of the schema. Adding one that exists
                // fails; that failure is expected and ignored.
                let add = match dialect {
                    Dialect::Postgres => {
                        "ALTER TABLE tenants ADD COLUMN IF NOT EXISTS quota_bytes BIGINT"
                    }
                    Dialect::Sqlite => "ALTER TABLE tenants ADD COLUMN quota_bytes INTEGER",
                };
                if let Err(e) = conn.execute(add).await
                    && !e.to_string().contains("duplicate column")
                {
                    result = Err(e);
                }
            }
            if result.is_ok() {
                result = migrate_records(&mut conn, dialect).await;
            }
            if dialect == Dialect::Postgres {
                conn.execute("SELECT pg_advisory_unlock(7317001)").await?;
            }
            result?;
        }
        Ok(Catalog {
            pool,
            committer,
            dialect,
        })
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.committer.close().await;
        self.pool.close().await;
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- tenants --------------------------------------------------------------------------

    pub async fn create_tenant(&self, id: &str, name: &str) -> Result<Tenant> {
        let created_ns = now_ns();
        sqlx::query(
            "INSERT INTO tenants (id, name, public_key_pem, created_ns) VALUES ($1, $2, NULL, $3)",
        )
        .bind(id)
        .bind(name)
        .bind(created_ns)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                CatalogError::Conflict("tenant")
            } else {
                e.into()
            }
        })?;
        Ok(Tenant {
            id: id.into(),
            name: name.into(),
            public_key_pem: None,
            created_ns,
            quota_bytes: None,
        })
    }

    fn tenant_row(r: &AnyRow) -> Result<Tenant> {
        Ok(Tenant {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            public_key_pem: r.try_get("public_key_pem")?,
            created_ns: r.try_get("created_ns")?,
            quota_bytes: r.try_get("quota_bytes")?,
        })
    }

    pub async fn tenant(&self, id: &str) -> Result<Tenant> {
        let r = sqlx::query(
            "SELECT id, name, public_key_pem, created_ns, quota_bytes FROM tenants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CatalogError::NotFound("tenant"))?;
        Self::tenant_row(&r)
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant> {
        let r = sqlx::query(
            "SELECT id, name, public_key_pem, created_ns, quota_bytes FROM tenants WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CatalogError::NotFound("tenant"))?;
        Self::tenant_row(&r)
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        sqlx::query(
            "SELECT id, name, public_key_pem, created_ns, quota_bytes FROM tenants ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::tenant_row)
        .collect()
    }

    /// Sets (or, with `None`, removes) a tenant's storage quota.
    pub async fn set_quota(&self, tenant_id: &str, quota_bytes: Option<i64>) -> Result<()> {
        let n = sqlx::query("UPDATE tenants SET quota_bytes = $1 WHERE id = $2")
            .bind(quota_bytes)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("tenant"));
        }
        Ok(())
    }

    /// Bytes of segments a tenant stores.
    pub async fn tenant_usage(&self, tenant_id: &str) -> Result<i64> {
        let r = sqlx::query("SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS used FROM segments WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("used")?)
    }

    pub async fn set_public_key(&self, tenant_id: &str, pem: &str) -> Result<()> {
        let n = sqlx::query("UPDATE tenants SET public_key_pem = $1 WHERE id = $2")
            .bind(pem)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("tenant"));
        }
        Ok(())
    }

    // ---- applications ---------------------------------------------------------------------

    /// Creates an application. `name` is stored as given (the API case-folds and checks it);
    /// it is refused as a conflict when it equals, ignoring ASCII case, the name or the id of
    /// another application of the tenant, so a name always finds one application.
    pub async fn create_application(
        &self,
        id: &str,
        tenant_id: &str,
        name: &str,
    ) -> Result<Application> {
        let created_ns = now_ns();
        let inserted = sqlx::query(
            "INSERT INTO applications (id, tenant_id, name, retention_days, created_ns) \
             SELECT $1, $2, $3, NULL, $4 WHERE NOT EXISTS (SELECT 1 FROM applications \
             WHERE tenant_id = $2 AND (lower(name) = lower($3) OR id = $3))",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(name)
        .bind(created_ns)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                CatalogError::Conflict("application")
            } else {
                e.into()
            }
        })?;
        if inserted.rows_affected() == 0 {
            return Err(CatalogError::Conflict("application"));
        }
        Ok(Application {
            id: id.into(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            retention_days: None,
            created_ns,
        })
    }

    fn application_row(r: &AnyRow) -> Result<Application> {
        Ok(Application {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            name: r.try_get("name")?,
            retention_days: r.try_get("retention_days")?,
            created_ns: r.try_get("created_ns")?,
        })
    }

    pub async fn applications(&self, tenant_id: &str) -> Result<Vec<Application>> {
        sqlx::query(
            "SELECT id, tenant_id, name, retention_days, created_ns FROM applications WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::application_row)
        .collect()
    }

    /// An application of `tenant_id`, by id, or by name ignoring ASCII case. An id wins over a
    /// name (ids never change; names made since names were checked cannot equal an id); a name
    /// that matches several applications (catalogs from before names were case-folded) is
    /// refused with a message naming their ids.
    pub async fn application(&self, tenant_id: &str, id_or_name: &str) -> Result<Application> {
        let mut rows = sqlx::query(
            "SELECT id, tenant_id, name, retention_days, created_ns FROM applications \
             WHERE tenant_id = $1 AND (id = $2 OR lower(name) = lower($2)) ORDER BY id",
        )
        .bind(tenant_id)
        .bind(id_or_name)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(Self::application_row)
        .collect::<Result<Vec<_>>>()?;
        if let Some(i) = rows.iter().position(|a| a.id == id_or_name) {
            return Ok(rows.swap_remove(i));
        }
        match <[Application; 1]>::try_from(rows) {
            Ok([a]) => Ok(a),
            Err(rows) if rows.is_empty() => Err(CatalogError::NotFound("application")),
            Err(rows) => Err(CatalogError::Ambiguous(format!(
                "application name {id_or_name:?} matches {} applications ({}); use its id",
                rows.len(),
                rows.iter()
                    .map(|a| a.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub async fn set_retention(
        &self,
        tenant_id: &str,
        application_id: &str,
        days: Option<i64>,
    ) -> Result<()> {
        let n = sqlx::query(
            "UPDATE applications SET retention_days = $1 WHERE tenant_id = $2 AND id = $3",
        )
        .bind(days)
        .bind(tenant_id)
        .bind(application_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("application"));
        }
        Ok(())
    }

    // ---- API keys -------------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_key(
        &self,
        id: &str,
        tenant_id: &str,
        application_id: &str,
        name: &str,
        key_hash: &[u8],
        prefix: &str,
        signature_required: bool,
    ) -> Result<ApiKey> {
        let created_ns = now_ns();
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, application_id, name, key_hash, prefix, signature_required, created_ns, revoked_ns, last_used_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(application_id)
        .bind(name)
        .bind(key_hash)
        .bind(prefix)
        .bind(i64::from(signature_required))
        .bind(created_ns)
        .execute(&self.pool)
        .await?;
        Ok(ApiKey {
            id: id.into(),
            tenant_id: tenant_id.into(),
            application_id: application_id.into(),
            name: name.into(),
            prefix: prefix.into(),
            signature_required,
            created_ns,
            revoked_ns: None,
            last_used_ns: None,
        })
    }

    fn api_key_row(r: &AnyRow) -> Result<ApiKey> {
        Ok(ApiKey {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            application_id: r.try_get("application_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            signature_required: r.try_get::<i64, _>("signature_required")? != 0,
            created_ns: r.try_get("created_ns")?,
            revoked_ns: r.try_get("revoked_ns")?,
            last_used_ns: r.try_get("last_used_ns")?,
        })
    }

    const API_KEY_COLUMNS: &'static str = "id, tenant_id, application_id, name, prefix, signature_required, created_ns, revoked_ns, last_used_ns";

    /// The key with this hash, revoked or not.
    pub async fn api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKey>> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE key_hash = $1",
            Self::API_KEY_COLUMNS
        );
        sqlx::query(audited(sql))
            .bind(key_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::api_key_row)
            .transpose()
    }

    pub async fn api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {} FROM api_keys WHERE tenant_id = $1 ORDER BY created_ns",
            Self::API_KEY_COLUMNS
        );
        sqlx::query(audited(sql))
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::api_key_row)
            .collect()
    }

    pub async fn revoke_api_key(&self, tenant_id: &str, id: &str) -> Result<()> {
        let n = sqlx::query("UPDATE api_keys SET revoked_ns = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_ns IS NULL")
            .bind(now_ns())
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("active API key"));
        }
        Ok(())
    }

    pub async fn touch_api_key(&self, id: &str, at_ns: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_ns = $1 WHERE id = $2")
            .bind(at_ns)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- access tokens --------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub async fn create_access_token(
        &self,
        id: &str,
        tenant_id: &str,
        name: &str,
        token_hash: &[u8],
        prefix: &str,
        scopes: &str,
        expires_ns: i64,
    ) -> Result<AccessToken> {
        let created_ns = now_ns();
        sqlx::query(
            "INSERT INTO access_tokens (id, tenant_id, name, token_hash, prefix, scopes, created_ns, expires_ns, revoked_ns, last_used_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(name)
        .bind(token_hash)
        .bind(prefix)
        .bind(scopes)
        .bind(created_ns)
        .bind(expires_ns)
        .execute(&self.pool)
        .await?;
        Ok(AccessToken {
            id: id.into(),
            tenant_id: tenant_id.into(),
            name: name.into(),
            prefix: prefix.into(),
            scopes: scopes.into(),
            created_ns,
            expires_ns,
            revoked_ns: None,
            last_used_ns: None,
        })
    }

    fn token_row(r: &AnyRow) -> Result<AccessToken> {
        Ok(AccessToken {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            name: r.try_get("name")?,
            prefix: r.try_get("prefix")?,
            scopes: r.try_get("scopes")?,
            created_ns: r.try_get("created_ns")?,
            expires_ns: r.try_get("expires_ns")?,
            revoked_ns: r.try_get("revoked_ns")?,
            last_used_ns: r.try_get("last_used_ns")?,
        })
    }

    const TOKEN_COLUMNS: &'static str =
        "id, tenant_id, name, prefix, scopes, created_ns, expires_ns, revoked_ns, last_used_ns";

    pub async fn access_token_by_hash(&self, token_hash: &[u8]) -> Result<Option<AccessToken>> {
        let sql = format!(
            "SELECT {} FROM access_tokens WHERE token_hash = $1",
            Self::TOKEN_COLUMNS
        );
        sqlx::query(audited(sql))
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::token_row)
            .transpose()
    }

    pub async fn access_tokens(&self, tenant_id: &str) -> Result<Vec<AccessToken>> {
        let sql = format!(
            "SELECT {} FROM access_tokens WHERE tenant_id = $1 ORDER BY created_ns",
            Self::TOKEN_COLUMNS
        );
        sqlx::query(audited(sql))
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::token_row)
            .collect()
    }

    pub async fn revoke_access_token(&self, tenant_id: &str, id: &str) -> Result<()> {
        let n = sqlx::query(
            "UPDATE access_tokens SET revoked_ns = $1 WHERE tenant_id = $2 AND id = $3 AND revoked_ns IS NULL",
        )
        .bind(now_ns())
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("active access token"));
        }
        Ok(())
    }

    pub async fn touch_access_token(&self, id: &str, at_ns: i64) -> Result<()> {
        sqlx::query("UPDATE access_tokens SET last_used_ns = $1 WHERE id = $2")
            .bind(at_ns)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- data keys ------------------------------------------------------------------------

    pub async fn create_data_key(
        &self,
        id: &str,
        tenant_id: &str,
        application_id: &str,
        wrapped: &[u8],
    ) -> Result<DataKey> {
        let created_ns = now_ns();
        sqlx::query(
            "INSERT INTO data_keys (id, tenant_id, application_id, wrapped, created_ns) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(application_id)
        .bind(wrapped)
        .bind(created_ns)
        .execute(&self.pool)
        .await?;
        Ok(DataKey {
            id: id.into(),
            tenant_id: tenant_id.into(),
            application_id: application_id.into(),
            wrapped: wrapped.to_vec(),
            created_ns,
        })
    }

    /// A data key of `tenant_id`; keys of other tenants are not found.
    pub async fn data_key(&self, tenant_id: &str, id: &str) -> Result<DataKey> {
        let r = sqlx::query(
            "SELECT id, tenant_id, application_id, wrapped, created_ns FROM data_keys WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CatalogError::NotFound("data key"))?;
        Ok(DataKey {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            application_id: r.try_get("application_id")?,
            wrapped: r.try_get("wrapped")?,
            created_ns: r.try_get("created_ns")?,
        })
    }

    /// Every data key of every tenant (to mirror them in the store).
    pub async fn all_data_keys(&self) -> Result<Vec<DataKey>> {
        sqlx::query("SELECT id, tenant_id, application_id, wrapped, created_ns FROM data_keys")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(DataKey {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    application_id: r.try_get("application_id")?,
                    wrapped: r.try_get("wrapped")?,
                    created_ns: r.try_get("created_ns")?,
                })
            })
            .collect()
    }

    // ---- recovery: re-registering what the store describes --------------------------------

    /// Inserts `t` as it is unless a tenant with its id exists; returns whether it was
    /// inserted. A different tenant holding its name is a conflict.
    pub async fn restore_tenant(&self, t: &Tenant) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO tenants (id, name, public_key_pem, created_ns, quota_bytes) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(&t.public_key_pem)
        .bind(t.created_ns)
        .bind(t.quota_bytes)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 && matches!(self.tenant(&t.id).await, Err(CatalogError::NotFound(_))) {
            return Err(CatalogError::Conflict("another tenant with this name"));
        }
        Ok(n > 0)
    }

    /// Inserts `a` as it is unless an application with its id exists; returns whether it was
    /// inserted. A different application of the tenant holding its name is a conflict.
    pub async fn restore_application(&self, a: &Application) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO applications (id, tenant_id, name, retention_days, created_ns) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&a.id)
        .bind(&a.tenant_id)
        .bind(&a.name)
        .bind(a.retention_days)
        .bind(a.created_ns)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0
            && matches!(
                self.application(&a.tenant_id, &a.id).await,
                Err(CatalogError::NotFound(_))
            )
        {
            return Err(CatalogError::Conflict("another application with this name"));
        }
        Ok(n > 0)
    }

    /// Inserts `k` as it is unless a data key with its id exists; returns whether it was
    /// inserted.
    pub async fn restore_data_key(&self, k: &DataKey) -> Result<bool> {
        let n = sqlx::query(
            "INSERT INTO data_keys (id, tenant_id, application_id, wrapped, created_ns) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(&k.id)
        .bind(&k.tenant_id)
        .bind(&k.application_id)
        .bind(&k.wrapped)
        .bind(k.created_ns)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// A consistent copy of an SQLite catalog, taken while it is in use (`VACUUM INTO`), at
    /// `path`, which must not exist or be empty. PostgreSQL catalogs are backed up with
    /// `pg_dump`.
    pub async fn backup_sqlite(&self, path: &str) -> Result<()> {
        if self.dialect != Dialect::Sqlite {
            return Err(CatalogError::Unsupported(
                "backup of a PostgreSQL catalog (use pg_dump)",
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// SQLite only: `PRAGMA integrity_check`'s answer (`ok` when sound), after moving the WAL's
    /// content into the main file, so that the file alone is the whole database.
    pub async fn check_sqlite(&self) -> Result<String> {
        if self.dialect != Dialect::Sqlite {
            return Err(CatalogError::Unsupported(
                "an SQLite check of a PostgreSQL catalog",
            ));
        }
        let ok: String = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(ok)
    }

    // ---- segments and records -------------------------------------------------------------

    /// Which of `record_ids` are already stored for `tenant_id`.
    pub async fn known_records(
        &self,
        tenant_id: &str,
        record_ids: &[String],
    ) -> Result<Vec<String>> {
        let mut known = Vec::new();
        for chunk in record_ids.chunks(1000) {
            let placeholders: Vec<String> = (0..chunk.len())
                .map(|i| self.dialect.placeholder(i + 2))
                .collect();
            let sql = format!(
                "SELECT record_key FROM record_keys WHERE tenant_id = {} AND record_key IN ({})",
                self.dialect.placeholder(1),
                placeholders.join(", ")
            );
            let mut q = sqlx::query(audited(sql)).bind(tenant_id);
            for id in chunk {
                q = q.bind(record_key(id));
            }
            for r in q.fetch_all(&self.pool).await? {
                let key: Vec<u8> = r.try_get("record_key")?;
                // Every stored key was made by `record_key` (or migrated through it).
                if let Some(id) = record_id_of_key(&key) {
                    known.push(id);
                }
            }
        }
        Ok(known)
    }

    /// Records `segments` and claims their record ids in one transaction. If another segment
    /// already holds any of the record ids, nothing is committed and those ids are returned:
    /// the caller commits again without them, so that no record is ever visible twice.
    pub async fn commit_segments(&self, segments: &[NewSegment]) -> Result<Commit> {
        let mut tx = self.committer.begin().await?;
        let created_ns = now_ns();
        let mut ids = Vec::with_capacity(segments.len());
        for s in segments {
            ids.push(insert_segment(&mut tx, s, created_ns).await?);
        }
        let claims = segments
            .iter()
            .zip(&ids)
            .flat_map(|(s, id)| {
                s.record_ids
                    .iter()
                    .map(move |r| (s.tenant_id.as_str(), r.as_str(), *id))
            })
            .collect();
        let conflicts = claim_records(&mut tx, self.dialect, claims).await?;
        if !conflicts.is_empty() {
            tx.rollback().await?;
            return Ok(Commit::Conflict(conflicts));
        }
        tx.commit().await?;
        Ok(Commit::Committed(ids))
    }

    /// Whether a segment row names `object_key`.
    pub async fn has_object_key(&self, object_key: &str) -> Result<bool> {
        Ok(
            sqlx::query("SELECT 1 AS x FROM segments WHERE object_key = $1")
                .bind(object_key)
                .fetch_optional(&self.pool)
                .await?
                .is_some(),
        )
    }

    /// Replaces segment `old_id` by `new` (or by nothing) in one transaction: after it, queries
    /// see either the old segment or the new one, never both or neither.
    pub async fn replace_segment(
        &self,
        old_id: i64,
        new: Option<&NewSegment>,
    ) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM record_keys WHERE segment_id = $1")
            .bind(old_id)
            .execute(&mut *tx)
            .await?;
        mark_for_deletion(&mut tx, old_id).await?;
        let n = sqlx::query("DELETE FROM segments WHERE id = $1")
            .bind(old_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(CatalogError::NotFound("segment"));
        }
        let id = match new {
            Some(s) => {
                let id = insert_segment(&mut tx, s, now_ns()).await?;
                let claims = s
                    .record_ids
                    .iter()
                    .map(|r| (s.tenant_id.as_str(), r.as_str(), id))
                    .collect();
                // The ids were released by the delete above; a conflict means another
                // segment holds one of them, and the swap would hide a record.
                if !claim_records(&mut tx, self.dialect, claims)
                    .await?
                    .is_empty()
                {
                    return Err(CatalogError::Conflict("record id of the new segment"));
                }
                Some(id)
            }
            None => None,
        };
        tx.commit().await?;
        Ok(id)
    }

    /// Segments of one application overlapping `[from, to]`, oldest first.
    pub async fn application_segments(
        &self,
        tenant_id: &str,
        application_id: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Segment>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = $1 AND application_id = $2 \
             AND max_ts >= $3 AND min_ts <= $4 ORDER BY id"
        );
        sqlx::query(audited(sql))
            .bind(tenant_id)
            .bind(application_id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::segment_row)
            .collect()
    }

    fn segment_row(r: &AnyRow) -> Result<Segment> {
        Ok(Segment {
            id: r.try_get("id")?,
            tenant_id: r.try_get("tenant_id")?,
            application_id: r.try_get("application_id")?,
            object_key: r.try_get("object_key")?,
            min_ts: r.try_get("min_ts")?,
            max_ts: r.try_get("max_ts")?,
            records: r.try_get("records")?,
            entries: r.try_get("entries")?,
            bytes: r.try_get("bytes")?,
            bloom: r.try_get("bloom")?,
            max_received_ns: r.try_get("max_received_ns")?,
            created_ns: r.try_get("created_ns")?,
        })
    }

    /// Segments overlapping the filter's time range: newest first in (max_ts, id) order, oldest
    /// first in (min_ts, id) order — so that every segment after a position holds no entry
    /// beyond that position's timestamp, and a client can merge entries exactly.
    pub async fn segments(&self, f: &SegmentFilter<'_>) -> Result<Vec<Segment>> {
        let col = if f.newest_first { "max_ts" } else { "min_ts" };
        let mut sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = $1 AND max_ts >= $2 AND min_ts <= $3"
        );
        let mut n = 4;
        if !f.application_ids.is_empty() {
            let ph: Vec<String> = (0..f.application_ids.len())
                .map(|i| format!("${}", n + i))
                .collect();
            sql.push_str(&format!(" AND application_id IN ({})", ph.join(", ")));
            n += f.application_ids.len();
        }
        if f.after.is_some() {
            let cmp = if f.newest_first { "<" } else { ">" };
            let cmp2 = match (f.newest_first, f.include_after) {
                (true, false) => "<",
                (true, true) => "<=",
                (false, false) => ">",
                (false, true) => ">=",
            };
            sql.push_str(&format!(
                " AND ({col} {cmp} ${n} OR ({col} = ${n} AND id {cmp2} ${}))",
                n + 1
            ));
            n += 2;
        }
        let dir = if f.newest_first { "DESC" } else { "ASC" };
        sql.push_str(&format!(" ORDER BY {col} {dir}, id {dir} LIMIT ${n}"));
        let mut q = sqlx::query(audited(sql))
            .bind(f.tenant_id)
            .bind(f.from_ns)
            .bind(f.to_ns);
        for a in f.application_ids {
            q = q.bind(a);
        }
        if let Some((ts, id)) = f.after {
            q = q.bind(ts).bind(id);
        }
        q = q.bind(f.limit);
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::segment_row)
            .collect()
    }

    /// The segments of `tenant_id` among `ids`, in id order. An id that is not a segment of
    /// this tenant (another tenant's, or deleted) is simply not in the answer: a caller cannot
    /// learn anything about other tenants' segments from it.
    pub async fn tenant_segments(&self, tenant_id: &str, ids: &[i64]) -> Result<Vec<Segment>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = $1 AND id IN ({}) ORDER BY id",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(audited(sql)).bind(tenant_id);
            for id in chunk {
                q = q.bind(*id);
            }
            for r in q.fetch_all(&self.pool).await? {
                out.push(Self::segment_row(&r)?);
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// Segments of a tenant committed after segment id `after_id`, oldest first (live tail).
    pub async fn segments_after(
        &self,
        tenant_id: &str,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<Segment>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE tenant_id = $1 AND id > $2 ORDER BY id ASC LIMIT $3"
        );
        sqlx::query(audited(sql))
            .bind(tenant_id)
            .bind(after_id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::segment_row)
            .collect()
    }

    /// The highest segment id of a tenant (0 when none).
    pub async fn last_segment_id(&self, tenant_id: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM segments WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("m")?)
    }

    /// Every object key the catalog knows (for orphan collection).
    pub async fn all_object_keys(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT object_key FROM segments")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("object_key")?))
            .collect()
    }

    /// Every segment's id, object key and commit time (for `catalog rebuild`).
    pub async fn segment_objects(&self) -> Result<Vec<(i64, String, i64)>> {
        sqlx::query("SELECT id, object_key, created_ns FROM segments")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("object_key")?,
                    r.try_get("created_ns")?,
                ))
            })
            .collect()
    }

    #[cfg(test)]
    pub(crate) async fn backdate_segments_for_tests(&self, by_ns: i64) {
        sqlx::query("UPDATE segments SET created_ns = created_ns - $1")
            .bind(by_ns)
            .execute(&self.pool)
            .await
            .expect("backdating segments");
    }

    /// Deletes segments (and their record ids) by id, in one transaction, and records their
    /// objects as pending deletion.
    pub async fn delete_segments(&self, ids: &[i64]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for id in ids {
            mark_for_deletion(&mut tx, *id).await?;
            sqlx::query("DELETE FROM record_keys WHERE segment_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM segments WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Objects of dropped segments (erased or expired) that are still to be deleted.
    pub async fn pending_deletions(&self) -> Result<Vec<String>> {
        sqlx::query("SELECT object_key FROM pending_deletions")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok(r.try_get("object_key")?))
            .collect()
    }

    /// Forgets a pending deletion once its object is deleted.
    pub async fn deletion_done(&self, object_key: &str) -> Result<()> {
        sqlx::query("DELETE FROM pending_deletions WHERE object_key = $1")
            .bind(object_key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Store objects housekeeping found that no segment names, with the time each was first
    /// found so (the orphan grace counts from it).
    pub async fn unknown_objects(&self) -> Result<HashMap<String, i64>> {
        sqlx::query("SELECT object_key, first_seen_ns FROM unknown_objects")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get("object_key")?, r.try_get("first_seen_ns")?)))
            .collect()
    }

    /// Records objects found unknown at `now_ns` (those already recorded keep their time).
    pub async fn note_unknown_objects(&self, keys: &[String], now_ns: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for key in keys {
            sqlx::query(
                "INSERT INTO unknown_objects (object_key, first_seen_ns) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(key)
            .bind(now_ns)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets unknown objects: known again, quarantined, or gone.
    pub async fn forget_unknown_objects(&self, keys: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for key in keys {
            sqlx::query("DELETE FROM unknown_objects WHERE object_key = $1")
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Segments of an application entirely older than `before_ns`.
    pub async fn expired_segments(
        &self,
        application_id: &str,
        before_ns: i64,
        limit: i64,
    ) -> Result<Vec<Segment>> {
        let sql = format!(
            "SELECT {SEGMENT_COLUMNS} FROM segments WHERE application_id = $1 AND max_ts < $2 ORDER BY max_ts LIMIT $3"
        );
        sqlx::query(audited(sql))
            .bind(application_id)
            .bind(before_ns)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::segment_row)
            .collect()
    }

    /// Every application of every tenant, for housekeeping.
    pub async fn all_applications(&self) -> Result<Vec<Application>> {
        sqlx::query("SELECT id, tenant_id, name, retention_days, created_ns FROM applications")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::application_row)
            .collect()
    }

    // ---- audit ----------------------------------------------------------------------------

    pub async fn audit(
        &self,
        tenant_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        remote: &str,
        details: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit (tenant_id, at_ns, actor, action, target, remote, details) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant_id)
        .bind(now_ns())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(remote)
        .bind(details)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Audit events of a tenant, newest first, before event id `before_id` (exclusive).
    pub async fn audit_events(
        &self,
        tenant_id: &str,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, at_ns, actor, action, target, remote, details FROM audit \
             WHERE tenant_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get("id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    at_ns: r.try_get("at_ns")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    remote: r.try_get("remote")?,
                    details: r.try_get("details")?,
                })
            })
            .collect()
    }

    // ---- leadership -----------------------------------------------------------------------

    /// Runs `f` only if this process is the housekeeping leader: always with SQLite (one
    /// process owns the file), under a PostgreSQL advisory lock otherwise. Returns whether it ran.
    pub async fn as_leader<F, Fut>(&self, f: F) -> Result<bool>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        match self.dialect {
            Dialect::Sqlite => {
                f().await;
                Ok(true)
            }
            Dialect::Postgres => {
                use sqlx::Executor as _;
                let mut conn = self.pool.acquire().await?;
                let r = conn.fetch_one("SELECT CASE WHEN pg_try_advisory_lock(7317002) THEN 1::int8 ELSE 0::int8 END AS got").await?;
                let got: i64 = r.try_get("got")?;
                if got == 0 {
                    return Ok(false);
                }
                f().await;
                conn.execute("SELECT pg_advisory_unlock(7317002)").await?;
                Ok(true)
            }
        }
    }
}

#[cfg(test)]
mod tests;
