//! The LogFlux server: stores and indexes sealed log records it cannot read, for many tenants.
//!
//! Embedded: [`ServerConfig::embedded`] keeps objects in a directory and the catalog in SQLite
//! there. Scale-out: a PostgreSQL catalog and an S3-compatible store shared by several
//! stateless servers.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! let config = logflux_server::ServerConfig::embedded("/var/lib/logflux".into());
//! let server = logflux_server::Server::start(config).await?;
//! println!("listening on {}", server.local_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod admin;
mod auth;
mod bloom;
pub mod catalog;
mod commit;
pub mod config;
mod conn;
mod erase;
mod housekeeping;
mod http;
mod ingest;
mod metrics;
mod query;
mod ratelimit;
mod recovery;
mod segment;
pub mod store;
mod tokenfilter;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::sync::{oneshot, watch};

pub use auth::{REGIONS, Scope};
pub use http::HttpConfig;
pub use query::TailConfig;
pub use recovery::{
    POSTGRES_BACKUP_ADVICE, RebuildReport, backup_catalog, rebuild_catalog, restore_catalog,
};

use crate::catalog::Catalog;
use crate::commit::{CommitConfig, Committer};
use crate::http::AppState;
use crate::store::BlobStore;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// `sqlite:PATH` or `postgres://…`.
    pub catalog_url: String,
    /// A local directory, or `s3://bucket[/prefix]`.
    pub store_url: String,
    /// Options for S3 (`endpoint`, `region`, `access_key_id`, `secret_access_key`, `allow_http`).
    pub store_options: Vec<(String, String)>,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    pub allow_insecure_http: bool,
    pub http: HttpConfig,
    /// Group-commit linger.
    pub commit_linger: Duration,
    /// How often retention and orphan collection run.
    pub housekeeping_interval: Duration,
    /// How long a segment no catalog names stays in place, from the housekeeping pass that
    /// first found it unknown, before housekeeping moves it to the store's `_quarantine/`
    /// (after a catalog loss, run `catalog rebuild` within this).
    pub orphan_grace: Duration,
    /// How long a quarantined segment is kept before it is deleted.
    pub quarantine_period: Duration,
    /// A connection whose peer takes nothing written to it for this long is dropped (a live
    /// tail that never reads, a query answer nobody takes).
    pub write_stall_timeout: Duration,
    /// How long a shutdown waits for open connections to finish before it drops them.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// The embedded default: objects in `DIR/objects`, catalog in `DIR/catalog.db`, loopback.
    pub fn embedded(data_dir: PathBuf) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            catalog_url: format!("sqlite:{}", data_dir.join("catalog.db").display()),
            store_url: data_dir.join("objects").display().to_string(),
            store_options: Vec::new(),
            tls: None,
            allow_insecure_http: false,
            http: HttpConfig::default(),
            commit_linger: CommitConfig::default().linger,
            housekeeping_interval: Duration::from_secs(300),
            orphan_grace: housekeeping::HousekeepingConfig::default().orphan_grace,
            quarantine_period: housekeeping::HousekeepingConfig::default().quarantine,
            write_stall_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }

    /// Opens the catalog and the store. A local catalog and store live in private directories
    /// (created 0700; one that group or others may write is refused, since whoever can write
    /// there can replace the catalog) and the SQLite files are 0600: they hold credential
    /// hashes and wrapped data keys.
    async fn open(&self) -> anyhow::Result<(Catalog, BlobStore)> {
        let sqlite_file = recovery::sqlite_path(&self.catalog_url);
        if let Some(file) = &sqlite_file {
            if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                private_dir(parent)?;
            }
            create_private_file(file)?;
        }
        let catalog = Catalog::connect(&self.catalog_url)
            .await
            .with_context(|| format!("opening the catalog {}", redact_url(&self.catalog_url)))?;
        if let Some(file) = &sqlite_file {
            // Catalogs made by earlier versions were 0644; SQLite gives its -wal and -shm files
            // the database file's mode, but they may predate it too.
            for suffix in ["", "-wal", "-shm"] {
                let mut name = file.as_os_str().to_owned();
                name.push(suffix);
                restrict_file(&PathBuf::from(name))?;
            }
        }
        let store = if self.store_url.starts_with("s3://") {
            BlobStore::s3(&self.store_url, &self.store_options)?
        } else {
            let root = PathBuf::from(&self.store_url);
            if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
                private_dir(parent)?;
            }
            private_dir(&root)?;
            BlobStore::local(&self.store_url)?
        };
        Ok((catalog, store))
    }
}

/// Creates `dir` (and missing parents) with mode 0700, and refuses a directory that group or
/// others may write, naming it and its mode.
pub fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("reading the mode of {}", dir.display()))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o022 != 0 {
            bail!(
                "refusing to use data directory {} with mode {mode:04o}: group or others may \
                 write to it (and so replace the catalog or objects); run chmod 700 {}",
                dir.display(),
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// Creates an empty `file` with mode 0600 if it does not exist (SQLite then uses it).
fn create_private_file(file: &std::path::Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", file.display())),
    }
}

/// Sets `file` to mode 0600 if it exists and is more open.
fn restrict_file(file: &std::path::Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let Ok(meta) = std::fs::metadata(file) else {
            return Ok(());
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("setting {} to mode 0600", file.display()))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// PEM files for HTTPS: a certificate chain (leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TlsFiles {
    /// Checks both files as serving would (`check-config`): they exist and are readable, the
    /// key is not accessible by group or others, the certificate and key parse and match.
    /// Each problem names its config path (`tls.cert_file`, `tls.key_file`).
    pub fn check(&self) -> anyhow::Result<()> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut p = Vec::new();
        let certs: Vec<CertificateDer<'static>> =
            match CertificateDer::pem_file_iter(&self.cert_file) {
                Err(e) => {
                    p.push(format!("tls.cert_file: {}: {e}", self.cert_file.display()));
                    Vec::new()
                }
                Ok(it) => match it.collect::<Result<Vec<_>, _>>() {
                    Ok(c) if c.is_empty() => {
                        p.push(format!(
                            "tls.cert_file: {}: no certificate in it",
                            self.cert_file.display()
                        ));
                        c
                    }
                    Ok(c) => c,
                    Err(e) => {
                        p.push(format!("tls.cert_file: {}: {e}", self.cert_file.display()));
                        Vec::new()
                    }
                },
            };
        let key_ok = match logflux_crypto::keyfile::check_owner_only("TLS key", &self.key_file) {
            Err(e) => {
                p.push(format!("tls.key_file: {e}"));
                false
            }
            Ok(()) => match PrivateKeyDer::from_pem_file(&self.key_file) {
                Err(e) => {
                    p.push(format!("tls.key_file: {}: {e}", self.key_file.display()));
                    false
                }
                Ok(_) => true,
            },
        };
        if p.is_empty()
            && !certs.is_empty()
            && key_ok
            && let Err(e) = self.server_config()
        {
            p.push(format!("tls: {e:#}"));
        }
        if !p.is_empty() {
            anyhow::bail!(
                "files the configuration names cannot be used:\n  {}",
                p.join("\n  ")
            );
        }
        Ok(())
    }

    /// A rustls server configuration: TLS 1.2 and 1.3 with AWS-LC, ALPN h2 and http/1.1. The
    /// key file must not be readable by group or others.
    pub fn server_config(&self) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        logflux_crypto::keyfile::check_owner_only("TLS key", &self.key_file)?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_file)
            .with_context(|| format!("reading TLS certificates from {}", self.cert_file.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("parsing TLS certificates in {}", self.cert_file.display()))?;
        anyhow::ensure!(
            !certs.is_empty(),
            "no certificate in {}",
            self.cert_file.display()
        );
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .with_context(|| format!("reading the TLS key {}", self.key_file.display()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .context("the TLS certificate and key do not match")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Opens the catalog and the store, binds, and serves until [`Server::shutdown`].
    pub async fn start(config: ServerConfig) -> anyhow::Result<Server> {
        let tls = config
            .tls
            .as_ref()
            .map(TlsFiles::server_config)
            .transpose()?;
        if tls.is_none() && !config.listen.ip().is_loopback() && !config.allow_insecure_http {
            bail!(
                "refusing to serve plain HTTP on non-loopback address {}: configure tls \
                 (cert_file, key_file), or set allow_insecure_http when a TLS-terminating proxy \
                 is in front",
                config.listen
            );
        }
        // One server per SQLite catalog; `restore` refuses while this is held. Taking it
        // creates the catalog's directory private (or refuses it) first.
        let catalog_lock = recovery::lock_catalog(&config.catalog_url)?;
        let (catalog, store) = config.open().await?;
        let commits = Arc::new(watch::channel(0u64).0);
        let commit_config = CommitConfig {
            linger: config.commit_linger,
            ..CommitConfig::default()
        };
        let metrics = Arc::new(metrics::Metrics::new());
        let (committer, commit_task) = Committer::start(
            catalog.clone(),
            store.clone(),
            commit_config,
            commits.clone(),
            metrics.clone(),
        );
        let housekeeping_metrics = metrics.clone();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(AppState::new(
            catalog.clone(),
            store.clone(),
            committer,
            commits,
            shutdown_rx,
            metrics,
            config.http.clone(),
        ));
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let hk = housekeeping::start(
            catalog.clone(),
            store.clone(),
            housekeeping::HousekeepingConfig {
                interval: config.housekeeping_interval,
                orphan_grace: config.orphan_grace,
                quarantine: config.quarantine_period,
            },
            housekeeping_metrics,
        );
        let app = normalize(http::router(state));
        let limits = conn::ConnLimits {
            write_stall: config.write_stall_timeout,
            shutdown_grace: config.shutdown_grace,
        };
        let task = tokio::spawn(async move {
            // Live tails end at the shutdown, so their connections do not hold it open.
            let result = conn::serve(listener, tls, app, limits, stopped, shutdown_tx).await;
            hk.abort();
            // Every request handler is done: the committer's senders are gone once the
            // router is dropped, and the loop ends after committing what it holds.
            commit_task.await.ok();
            catalog.close().await;
            drop(catalog_lock);
            result
        });
        tracing::info!(%addr, "logflux-server listening");
        Ok(Server {
            addr,
            stop: Some(stop),
            task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, ends live tails, finishes in-flight requests (dropping connections
    /// still open after `shutdown_grace`), commits what is pending, closes.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.context("server task")?
    }

    /// Serves until the server stops by itself (an error).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }

    /// Asks the server to stop without waiting.
    pub fn stop_handle(&mut self) -> Option<oneshot::Sender<()>> {
        self.stop.take()
    }
}

/// Collapses a leading `//` in the path (SDKs given a base URL with a trailing slash send
/// `POST //v1/ingest`), before routing.
fn normalize(
    router: axum::Router,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send {
    use tower::ServiceExt as _;
    router.map_request(|mut req: axum::extract::Request| {
        let path = req.uri().path();
        if path.starts_with("//") {
            let trimmed = format!("/{}", path.trim_start_matches('/'));
            let pq = match req.uri().query() {
                Some(q) => format!("{trimmed}?{q}"),
                None => trimmed,
            };
            let mut parts = req.uri().clone().into_parts();
            if let Ok(p) = pq.parse() {
                parts.path_and_query = Some(p);
                if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
        req
    })
}

/// What `init` created. The token is shown once and never stored in clear.
#[derive(Debug)]
pub struct InitOutcome {
    pub tenant_id: String,
    pub admin_token: String,
}

/// Every tenant, for the operator.
pub async fn list_tenants(config: &ServerConfig) -> anyhow::Result<Vec<catalog::Tenant>> {
    let (catalog, _) = config.open().await?;
    let t = catalog.tenants().await?;
    catalog.close().await;
    Ok(t)
}

/// Sets a tenant's storage quota in bytes (`None`: unlimited); ingest beyond it gets 507.
pub async fn set_quota(
    config: &ServerConfig,
    tenant: &str,
    quota_bytes: Option<i64>,
) -> anyhow::Result<()> {
    let (catalog, store) = config.open().await?;
    let t = catalog
        .tenant_by_name(tenant)
        .await
        .with_context(|| format!("tenant {tenant:?}"))?;
    catalog.set_quota(&t.id, quota_bytes).await?;
    recovery::publish_tenant(&catalog, &store, &t.id).await?;
    catalog
        .audit(
            &t.id,
            "operator",
            "tenant.quota",
            &t.id,
            "local",
            &serde_json::json!({"quota_bytes": quota_bytes}).to_string(),
        )
        .await?;
    catalog.close().await;
    Ok(())
}

/// A new admin token for an existing tenant (when its admins lost theirs), shown once.
pub async fn new_admin_token(
    config: &ServerConfig,
    tenant: &str,
    expiry_days: i64,
) -> anyhow::Result<String> {
    let (catalog, _) = config.open().await?;
    let t = catalog
        .tenant_by_name(tenant)
        .await
        .with_context(|| format!("tenant {tenant:?}"))?;
    let (token, prefix) = auth::new_access_token();
    let expires = logflux_proto::timefmt::now_ns() + expiry_days * 86_400 * 1_000_000_000;
    let record = catalog
        .create_access_token(
            &auth::new_id("pat_"),
            &t.id,
            "operator-admin",
            &auth::hash(&token),
            &prefix,
            "admin",
            expires,
        )
        .await?;
    catalog
        .audit(&t.id, "operator", "token.create", &record.id, "local", "{}")
        .await?;
    catalog.close().await;
    Ok(token)
}

/// Creates a tenant and an admin personal access token (valid `expiry_days`).
pub async fn init_tenant(
    config: &ServerConfig,
    tenant: &str,
    expiry_days: i64,
) -> anyhow::Result<InitOutcome> {
    let (catalog, store) = config.open().await?;
    if tenant.is_empty()
        || tenant.len() > 64
        || !tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        bail!("tenant name must be 1..64 characters of a-z, A-Z, 0-9, -, _ or .");
    }
    let t = match catalog.create_tenant(&auth::new_id("t_"), tenant).await {
        Ok(t) => t,
        Err(catalog::CatalogError::Conflict(_)) => {
            bail!(
                "tenant {tenant:?} already exists; create more tokens with `logflux admin tokens create`"
            )
        }
        Err(e) => return Err(e.into()),
    };
    recovery::publish_tenant(&catalog, &store, &t.id).await?;
    let (token, prefix) = auth::new_access_token();
    let expires = logflux_proto::timefmt::now_ns() + expiry_days * 86_400 * 1_000_000_000;
    let record = catalog
        .create_access_token(
            &auth::new_id("pat_"),
            &t.id,
            "initial-admin",
            &auth::hash(&token),
            &prefix,
            "admin",
            expires,
        )
        .await?;
    catalog
        .audit(
            &t.id,
            "system",
            "tenant.create",
            &t.id,
            "local",
            &serde_json::json!({"admin_token": record.id}).to_string(),
        )
        .await?;
    catalog.close().await;
    Ok(InitOutcome {
        tenant_id: t.id,
        admin_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:/x/y.db"), "sqlite:/x/y.db");
    }
}
