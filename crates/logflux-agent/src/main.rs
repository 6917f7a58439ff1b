//! `logflux-agent`: flags and the runtime here; everything else is in the library.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
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

/// glibc's malloc gives each thread that allocates under contention an arena of its own (up to
/// 8 × cores): the agent's entries are allocated on the inputs' threads and freed on the
/// sealing threads, so under load most of those arenas fill and keep their pages — peak RSS
/// 62–65 MiB on the file benchmark, 48 MiB with two arenas at the same CPU per line
/// (docs/decisions.md). glibc reads `MALLOC_ARENA_MAX` only at start, and setting it from
/// inside needs `unsafe` (which the agent forbids), so the agent starts itself again, once,
/// with it set, unless the environment already says (any value, including the default's `0`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_malloc_arenas() {
    use std::os::unix::process::CommandExt as _;
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "logflux-agent".into());
    let e = std::process::Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .env("MALLOC_ARENA_MAX", "2")
        .exec();
    // Only on failure (no /proc): run on as we are, with glibc's default arenas.
    eprintln!("logflux-agent: warning: could not restart with MALLOC_ARENA_MAX=2: {e}");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_malloc_arenas() {}

fn main() {
    bound_malloc_arenas();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFLUX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal: not in a file or journal, not with NO_COLOR.
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
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
    match rt.block_on(run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("logflux-agent: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Exit status when a shutdown had to give up entries (not spooled within its bound).
const EXIT_NOT_SPOOLED: i32 = 1;
/// Exit status after a second SIGTERM or SIGINT (128 + SIGINT, as shells report it).
const EXIT_SECOND_SIGNAL: i32 = 130;

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let path = cli
        .config
        .unwrap_or_else(logflux_agent::default_config_path);
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Status = command {
        // Only the agent's local address is needed: the rest of the file (and the variables
        // it refers to, like the API key) is not read.
        let addr = AgentConfig::load_status_address(&path)?
            .context("status needs metrics.listen (the agent's status endpoint)")?;
        let v: serde_json::Value = reqwest::get(format!("http://{addr}/status"))
            .await
            .with_context(|| format!("no agent answers on {addr} (is it running?)"))?
            .json()
            .await?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    let config = AgentConfig::load(&path)?;
    match command {
        Command::CheckConfig => {
            config.check_files()?;
            println!("{}: configuration is valid", path.display());
            Ok(0)
        }
        Command::Status => unreachable!("answered above"),
        Command::Run => {
            // Installed before anything starts, so that no signal is missed.
            let mut signals = Signals::new()?;
            let agent = tokio::select! {
                a = logflux_agent::Agent::start(config) => a?,
                name = signals.next() => {
                    // Nothing was taken in yet: nothing to seal or spool.
                    eprintln!("logflux-agent: {name} before the agent was ready; stopped");
                    return Ok(0);
                }
            };
            if let Some(a) = agent.tcp_addr() {
                println!("tcp listening on {a}");
            }
            println!("ready");
            let name = signals.next().await;
            tracing::info!(
                signal = name,
                "shutting down: sealing and spooling what is held (a second SIGTERM or SIGINT stops at once)"
            );
            tokio::select! {
                r = agent.shutdown_report() => {
                    let report = r?;
                    if report.not_spooled > 0 {
                        eprintln!("logflux-agent: stopped: {report}");
                        Ok(EXIT_NOT_SPOOLED)
                    } else {
                        tracing::info!("stopped: {report}");
                        Ok(0)
                    }
                }
                name = signals.next() => {
                    eprintln!(
                        "logflux-agent: second signal ({name}): stopped at once; entries not yet \
                         in the spool are lost (what is in the spool is kept for the next start)"
                    );
                    Ok(EXIT_SECOND_SIGNAL)
                }
            }
        }
    }
}

/// SIGTERM and SIGINT, each as often as they come.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}
