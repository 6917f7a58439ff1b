//! The LogFlux client: search, tail, export, stats and patterns that decrypt on this machine; keys;
//! administration; and `logflux up`, the whole system in one command.
//!
//! Exit status: [`EXIT_OK`] (0) on success, [`EXIT_NO_RESULTS`] (1) when a search found
//! nothing, [`EXIT_ERROR`] (2) on any error (including a record that failed its integrity
//! check, which is reported on stderr and never printed).
#![forbid(unsafe_code)]

mod admin;
mod alerts;
mod api;
mod config;
mod decrypt;
mod fetch;
mod filter;
mod keys;
mod live;
mod output;
mod pager;
mod patterns;
mod private_files;
mod search;
mod serve;
#[doc(hidden)]
pub mod tui;
mod uistore;
mod up;
mod when;

use clap::{Parser, Subcommand};

/// Success.
pub const EXIT_OK: i32 = 0;
/// A search ran and found nothing.
pub const EXIT_NO_RESULTS: i32 = 1;
/// Any error (bad flags, unreachable server, bad key, …).
pub const EXIT_ERROR: i32 = 2;

/// The `logflux` command line.
#[derive(Debug, Parser)]
#[command(
    name = "logflux",
    version,
    about = "LogFlux client: zero-knowledge logs, decrypted only here"
)]
pub struct Cli {
    /// The client config file [default: $LOGFLUX_CONFIG, else ~/.config/logflux/config.yaml].
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The profile of the config file to use [default: $LOGFLUX_PROFILE, else the file's
    /// `profile`].
    #[arg(long, global = true, value_name = "NAME")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and inspect the tenant key pair and the search key.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Start the whole system here with its embedded defaults (server, agent, keys,
    /// credentials), check it end to end, and keep it running until Ctrl-C.
    Up(up::UpArgs),
    /// Search stored entries: filter, decrypt here, print.
    ///
    /// Exit status: 0 with results, 1 with none, 2 on error.
    Search(search::SearchArgs),
    /// Show the most recent entries; with -f, keep showing new ones as they arrive.
    Tail(search::TailArgs),
    /// Write matching entries to a file (ndjson, json or csv), with progress.
    Export(search::ExportArgs),
    /// Counts by level over time buckets, as a text histogram or JSON.
    Stats(search::StatsArgs),
    /// The matching entries grouped by template (variable parts as `<*>`), most entries
    /// first, with their levels and first/last time; grouped here, after decryption.
    Patterns(patterns::PatternsArgs),
    /// A terminal UI over live and stored entries: follow, filter as you type, jump between
    /// errors, split panes with their own queries (search's filters); see docs/tui.md.
    Tui(tui::TuiArgs),
    /// Serve Loki's HTTP API on this machine (for Grafana's Loki data source and our UIs):
    /// queries decrypted here, behind a token; see docs/serve.md.
    Serve(serve::ServeArgs),
    /// Open the web UI in the browser (signed in), on the `logflux serve` running at --listen
    /// or on one started here: `logflux ui '{app="web"} |= "timeout"' --since 24h`.
    Ui(serve::open::UiArgs),
    /// Show the settings in effect and where they come from (never the token itself); marks
    /// with (!) what is missing or wrong.
    Config,
    /// Administer the tenant: applications, API keys, tokens, public key, retention, erasure,
    /// audit log.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Alerts evaluated here over the decrypted live stream: check rule files, run them and
    /// notify (docs/alerts.md).
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let settings = || {
        config::Settings::resolve(
            cli.config.as_deref(),
            cli.profile.as_deref(),
            &config::ProcessEnv,
        )
    };
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Up(args) => rt()?.block_on(up::run(args)),
        Command::Search(args) => {
            let s = settings()?;
            rt()?.block_on(search::search(&s, args))
        }
        Command::Tail(args) => {
            let s = settings()?;
            rt()?.block_on(search::tail(&s, args))
        }
        Command::Export(args) => {
            let s = settings()?;
            rt()?.block_on(search::export(&s, args))
        }
        Command::Stats(args) => {
            let s = settings()?;
            rt()?.block_on(search::stats(&s, args))
        }
        Command::Patterns(args) => {
            let s = settings()?;
            rt()?.block_on(patterns::patterns(&s, args))
        }
        Command::Tui(args) => {
            let s = settings()?;
            rt()?.block_on(tui::run(&s, args))
        }
        Command::Serve(args) => {
            let s = settings()?;
            rt()?.block_on(serve::run(&s, args))
        }
        Command::Ui(args) => {
            let s = settings()?;
            rt()?.block_on(serve::open::run(&s, args))
        }
        Command::Config => {
            // Shown even when settings are missing or wrong (each marked): only an unreadable
            // or invalid config file is an error.
            let s = config::Settings::resolve_to_show(
                cli.config.as_deref(),
                cli.profile.as_deref(),
                &config::ProcessEnv,
            )?;
            print!("{}", s.describe());
            Ok(EXIT_OK)
        }
        Command::Admin(cmd) => {
            let s = settings()?;
            rt()?.block_on(admin::run(&s, cmd))
        }
        // Checking files needs no server or keys.
        Command::Alerts(cmd @ alerts::AlertsCommand::Check(_)) => {
            rt()?.block_on(alerts::run(None, cmd))
        }
        Command::Alerts(cmd) => {
            let s = settings()?;
            rt()?.block_on(alerts::run(Some(&s), cmd))
        }
    }
}
