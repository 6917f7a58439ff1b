//! `logflux-agent`: flags and the runtime here; everything else is in the library.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use logflux_agent::config::AgentConfig;

#[derive(Debug, Parser)]
#[command(
    name = "logflux-agent",
    version,
    about = "Collects logs, seals them here, and ships them to LogFlux"
)]
struct Cli {
    /// Configuration file [default: /etc/logflux-agent/agent.yaml].
    #[arg(long, env = "LOGFLUX_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent (the default).
    Run,
    /// Check the configuration (every problem, with its path), then exit.
    CheckConfig,
    /// Show the running agent's spool depth, oldest record, last delivery and errors.
    Status,
}

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFLUX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_json {
        b.json().init();
    } else {
        b.init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        eprintln!("logflux-agent: error: {e:#}");
        std::process::exit(2);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let path = cli
        .config
        .unwrap_or_else(logflux_agent::default_config_path);
    let config = AgentConfig::load(&path)?;
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => {
            println!("{}: configuration is valid", path.display());
            Ok(())
        }
        Command::Status => {
            let addr = config
                .metrics
                .listen
                .context("status needs metrics.listen (the agent's status endpoint)")?;
            let v: serde_json::Value = reqwest::get(format!("http://{addr}/status"))
                .await
                .with_context(|| format!("no agent answers on {addr} (is it running?)"))?
                .json()
                .await?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
        Command::Run => {
            let agent = logflux_agent::Agent::start(config).await?;
            if let Some(a) = agent.tcp_addr() {
                println!("tcp listening on {a}");
            }
            println!("ready");
            shutdown_signal().await;
            tracing::info!("shutting down: sealing and spooling what is held");
            agent.shutdown().await
        }
    }
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
