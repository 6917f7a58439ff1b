//! `logflux-server`: flags and the runtime here; everything else is in the library.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use logflux_server::{Server, ServerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "logflux-server",
    version,
    about = "Stores and indexes encrypted logs it cannot read"
)]
struct Cli {
    /// Data directory of the embedded defaults: objects in DIR/objects, catalog in DIR/catalog.db.
    #[arg(
        long,
        env = "LOGFLUX_DATA_DIR",
        default_value = "./logflux-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Catalog: sqlite:PATH or postgres://user@host/db (default: SQLite in the data directory).
    #[arg(long, env = "LOGFLUX_CATALOG", global = true)]
    catalog: Option<String>,
    /// Object store: a directory or s3://bucket[/prefix] (default: DATA_DIR/objects).
    #[arg(long, env = "LOGFLUX_STORE", global = true)]
    store: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "LOGFLUX_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    allow_insecure_http: bool,
    /// Region reported to SDKs and used in new API keys (eu, us, ca, au, ap).
    #[arg(long, default_value = "eu")]
    region: String,
    /// Group-commit linger in milliseconds.
    #[arg(long, default_value_t = 20)]
    commit_linger_ms: u64,
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

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFLUX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("logflux-server: error: {e:#}");
        std::process::exit(2);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = ServerConfig::embedded(cli.data_dir.clone());
    config.listen = cli.listen;
    if let Some(c) = cli.catalog {
        config.catalog_url = c;
    }
    if let Some(s) = cli.store {
        config.store_url = s;
    }
    config.allow_insecure_http = cli.allow_insecure_http;
    anyhow::ensure!(
        logflux_server::REGIONS.contains(&cli.region.as_str()),
        "--region must be one of {}",
        logflux_server::REGIONS.join(", ")
    );
    config.http.region = cli.region;
    config.commit_linger = Duration::from_millis(cli.commit_linger_ms);
    if config.catalog_url.starts_with("sqlite:") || !config.store_url.starts_with("s3://") {
        std::fs::create_dir_all(&cli.data_dir)
            .with_context(|| format!("creating {}", cli.data_dir.display()))?;
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Init {
            tenant,
            token_expiry_days,
        } => {
            let out = logflux_server::init_tenant(&config, &tenant, token_expiry_days).await?;
            println!("tenant {tenant} created (id {})", out.tenant_id);
            println!(
                "admin access token (shown once; store it safely, e.g. export LOGFLUX_PAT=…):"
            );
            println!("{}", out.admin_token);
            Ok(())
        }
        Command::Serve => {
            let mut server = Server::start(config).await?;
            // Scripts and tests wait for this line (useful with --listen 127.0.0.1:0).
            println!("listening on http://{}", server.local_addr());
            let stop = server.stop_handle();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutting down: finishing requests and pending commits");
                if let Some(stop) = stop {
                    let _ = stop.send(());
                }
            });
            server.wait().await
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
