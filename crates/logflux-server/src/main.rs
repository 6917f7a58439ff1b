//! `logflux-server`: flags and the runtime here; everything else is in the library.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use logflux_server::config::FileConfig;
use logflux_server::{Server, ServerConfig, TlsFiles};

#[derive(Debug, Parser)]
#[command(
    name = "logflux-server",
    version,
    about = "Stores and indexes encrypted logs it cannot read"
)]
struct Cli {
    /// YAML configuration file; flags override it.
    #[arg(long, env = "LOGFLUX_SERVER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Data directory of the embedded defaults: objects in DIR/objects, catalog in
    /// DIR/catalog.db [default: ./logflux-data].
    #[arg(long, env = "LOGFLUX_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Catalog: sqlite:PATH or postgres://user@host/db [default: SQLite in the data directory].
    #[arg(long, env = "LOGFLUX_CATALOG", global = true)]
    catalog: Option<String>,
    /// Object store: a directory or s3://bucket[/prefix] [default: DATA_DIR/objects].
    #[arg(long, env = "LOGFLUX_STORE", global = true)]
    store: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "LOGFLUX_LISTEN")]
    listen: Option<SocketAddr>,
    /// TLS certificate chain (PEM); with --tls-key, serves HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, mode 0600).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    allow_insecure_http: bool,
    /// Region reported to SDKs and used in new API keys (eu, us, ca, au, ap) [default: eu].
    #[arg(long)]
    region: Option<String>,
    /// Group-commit linger in milliseconds [default: 2].
    #[arg(long)]
    commit_linger_ms: Option<u64>,
    /// Refuse records whose first entry is older than this many days [default: any age].
    #[arg(long)]
    max_backfill_days: Option<i64>,
    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve (the default).
    Serve,
    /// Check the configuration and print it (secrets hidden), then exit.
    CheckConfig,
    /// Operator commands for tenants (run on the server host, against its catalog).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Catalog maintenance (run on the server host, against its catalog and store).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Write a consistent copy of the SQLite catalog to FILE (mode 0600) while the server
    /// runs. For PostgreSQL, prints how to use pg_dump.
    Backup {
        /// The backup file; it must not exist.
        #[arg(long)]
        out: PathBuf,
    },
    /// Replace the SQLite catalog by a backup (the server must be stopped; the replaced files
    /// are kept as catalog.db.replaced-TIME), then rebuild what is newer than the backup from
    /// the store.
    Restore {
        /// The backup file written by `backup`.
        #[arg(long)]
        from: PathBuf,
        /// Do not run `catalog rebuild` after restoring.
        #[arg(long)]
        no_rebuild: bool,
    },
    /// Create a tenant and print its first admin access token (shown once).
    Init {
        /// The tenant's name.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Days until the admin token expires.
        #[arg(long, default_value_t = 90)]
        token_expiry_days: i64,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Re-register every segment, data key, application and tenant the store holds and the
    /// catalog does not know (after a lost WAL, a lost catalog or a restored backup);
    /// idempotent. Quarantined segments are moved back first.
    Rebuild {
        /// Also remove catalog rows of segments the store no longer holds (deleted since a
        /// restored backup was taken).
        #[arg(long)]
        prune_missing: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TenantsCommand {
    /// List tenants.
    List,
    /// Create a tenant and print its first admin access token (same as `init`).
    Create {
        name: String,
        #[arg(long, default_value_t = 90)]
        token_expiry_days: i64,
    },
    /// Set a tenant's storage quota in bytes, or "none"; ingest beyond it is refused with 507.
    Quota { name: String, bytes: String },
    /// Print a new admin access token for an existing tenant (shown once).
    Token {
        name: String,
        #[arg(long, default_value_t = 90)]
        token_expiry_days: i64,
    },
}

/// The file's configuration with the flags laid over it.
fn configure(cli: &Cli) -> anyhow::Result<(ServerConfig, bool)> {
    let mut file: FileConfig = match &cli.config {
        Some(p) => logflux_config::load(p)?,
        None => FileConfig::default(),
    };
    if let Some(d) = &cli.data_dir {
        file.data_dir = Some(d.clone());
    }
    if let Some(c) = &cli.catalog {
        file.catalog = Some(c.clone());
    }
    if let Some(s) = &cli.store {
        file.store.get_or_insert_with(Default::default).url = Some(s.clone());
    }
    if let Some(l) = cli.listen {
        file.listen = Some(l);
    }
    if let (Some(cert), Some(key)) = (&cli.tls_cert, &cli.tls_key) {
        file.tls = Some(TlsFiles {
            cert_file: cert.clone(),
            key_file: key.clone(),
        });
    }
    if cli.allow_insecure_http {
        file.allow_insecure_http = Some(true);
    }
    if let Some(r) = &cli.region {
        file.region = Some(r.clone());
    }
    if let Some(ms) = cli.commit_linger_ms {
        file.commit.get_or_insert_with(Default::default).linger_ms = Some(ms);
    }
    if let Some(d) = cli.max_backfill_days {
        file.ingest
            .get_or_insert_with(Default::default)
            .max_backfill_days = Some(d);
    }
    let log_json = cli.log_json || file.log_json.unwrap_or(false);
    let data_dir = file.data_dir.as_deref().map_or_else(
        || PathBuf::from("./logflux-data"),
        logflux_config::expand_home,
    );
    let config = file.into_server_config()?;
    if config.catalog_url.starts_with("sqlite:") || !config.store_url.starts_with("s3://") {
        logflux_server::private_dir(&data_dir)?;
    }
    Ok((config, log_json))
}

fn main() {
    let cli = Cli::parse();
    let (config, log_json) = match configure(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logflux-server: error: {e:#}");
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFLUX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: not in a file or journal, not with NO_COLOR.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config)) {
        eprintln!("logflux-server: error: {e:#}");
        std::process::exit(2);
    }
}

async fn run(command: Command, config: ServerConfig) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig => {
            println!("listen: {}", config.listen);
            println!(
                "catalog: {}",
                logflux_server::redact_url(&config.catalog_url)
            );
            println!("store: {}", config.store_url);
            for (k, v) in &config.store_options {
                let shown = if k.contains("secret") || k.contains("key") {
                    "***"
                } else {
                    v.as_str()
                };
                println!("store.{k}: {shown}");
            }
            println!(
                "tls: {}",
                config
                    .tls
                    .as_ref()
                    .map_or("off".to_owned(), |t| t.cert_file.display().to_string())
            );
            println!("region: {}", config.http.region);
            println!(
                "ingest.max_backfill_days: {}",
                config
                    .http
                    .max_backfill_days
                    .map_or("none".to_owned(), |d| d.to_string())
            );
            let tail = &config.http.tail;
            println!(
                "tail: {} bytes buffered per stream, {} streams per token, {} per tenant, {} in \
                 all, slow consumers ended after {} s, tokens checked every {} s",
                tail.buffer_bytes,
                tail.max_streams_per_token,
                tail.max_streams_per_tenant,
                tail.max_streams,
                tail.slow_consumer_timeout.as_secs(),
                tail.credential_check.as_secs()
            );
            if let Some(tls) = &config.tls {
                tls.check()?;
            }
            println!("configuration is valid");
            Ok(())
        }
        Command::Init {
            tenant,
            token_expiry_days,
        }
        | Command::Tenants(TenantsCommand::Create {
            name: tenant,
            token_expiry_days,
        }) => {
            let out = logflux_server::init_tenant(&config, &tenant, token_expiry_days).await?;
            println!("tenant {tenant} created (id {})", out.tenant_id);
            println!(
                "admin access token (shown once; store it safely, e.g. export LOGFLUX_PAT=…):"
            );
            println!("{}", out.admin_token);
            Ok(())
        }
        Command::Tenants(TenantsCommand::Quota { name, bytes }) => {
            let quota = if bytes == "none" {
                None
            } else {
                Some(
                    bytes
                        .parse::<i64>()
                        .ok()
                        .filter(|b| *b > 0)
                        .context("BYTES must be a positive number or none")?,
                )
            };
            logflux_server::set_quota(&config, &name, quota).await?;
            println!(
                "quota of {name}: {}",
                quota.map_or("unlimited".to_owned(), |q| format!("{q} bytes"))
            );
            Ok(())
        }
        Command::Tenants(TenantsCommand::List) => {
            for t in logflux_server::list_tenants(&config).await? {
                let fp = t
                    .public_key_pem
                    .as_deref()
                    .and_then(|p| logflux_crypto::PublicKey::from_pem(p).ok())
                    .map_or_else(
                        || "no public key".to_owned(),
                        |k| k.fingerprint().to_string(),
                    );
                println!("{}\t{}\t{fp}", t.id, t.name);
            }
            Ok(())
        }
        Command::Tenants(TenantsCommand::Token {
            name,
            token_expiry_days,
        }) => {
            let token = logflux_server::new_admin_token(&config, &name, token_expiry_days).await?;
            println!("new admin access token for {name} (shown once):");
            println!("{token}");
            Ok(())
        }
        Command::Catalog(CatalogCommand::Rebuild { prune_missing }) => {
            let report = logflux_server::rebuild_catalog(&config, prune_missing).await?;
            print!("{report}");
            println!("catalog rebuild done");
            Ok(())
        }
        Command::Backup { out } => {
            let bytes = logflux_server::backup_catalog(&config, &out).await?;
            println!("catalog backed up to {} ({bytes} bytes)", out.display());
            println!(
                "restore with: logflux-server restore --from {} (server stopped)",
                out.display()
            );
            Ok(())
        }
        Command::Restore { from, no_rebuild } => {
            logflux_server::restore_catalog(&config, &from).await?;
            println!("catalog restored from {}", from.display());
            if no_rebuild {
                println!(
                    "segments written after the backup are not in it: run `logflux-server catalog rebuild`"
                );
            } else {
                // The backup is older than the store: segments deleted since are pruned.
                let report = logflux_server::rebuild_catalog(&config, true).await?;
                print!("{report}");
                println!("catalog rebuild done");
            }
            Ok(())
        }
        Command::Serve => {
            let tls = config.tls.is_some();
            let mut server = Server::start(config).await?;
            // The handlers are in place before the line scripts wait for: a SIGTERM sent right
            // after it is a graceful stop, not the default action (killed, commits unfinished).
            let signals = shutdown_signal()?;
            // Scripts and tests wait for this line (useful with --listen 127.0.0.1:0).
            let scheme = if tls { "https" } else { "http" };
            println!("listening on {scheme}://{}", server.local_addr());
            let stop = server.stop_handle();
            tokio::spawn(async move {
                signals.await;
                tracing::info!("shutting down: finishing requests and pending commits");
                if let Some(stop) = stop {
                    let _ = stop.send(());
                }
            });
            server.wait().await
        }
    }
}

/// SIGTERM or SIGINT (Ctrl-C), registered now (not when first awaited).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
