//! The LogFlux client: key management now; search, tail, export, stats and admin as they land.
//!
//! Exit status: [`EXIT_OK`] (0) on success, [`EXIT_NO_RESULTS`] (1) when a search found
//! nothing, [`EXIT_ERROR`] (2) on any error.
#![forbid(unsafe_code)]

mod keys;
mod up;

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
}

/// Runs a parsed command line; returns the exit status.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd),
        Command::Up(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(up::run(args))
        }
    }
}
