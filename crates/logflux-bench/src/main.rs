//! `logflux-bench`: end-to-end scenarios against real LogFlux processes on loopback.
//!
//! ```text
//! cargo build --release --bins
//! target/release/logflux-bench server [--seconds 15] [--clients 8]
//! ```
//!
//! Each scenario prints a Markdown table: throughput, latency percentiles, the server's CPU
//! time and peak RSS, and a baseline measured in the same run (`dd` for disk writes).
#![forbid(unsafe_code)]

mod agent;
mod procs;
mod server;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "logflux-bench",
    about = "End-to-end LogFlux benchmarks on loopback"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Server: ingest throughput and acknowledgement latency, needle search, full scan.
    Server(server::Args),
    /// Agent: many local clients → agent → server; entries/s, latency, agent CPU and memory.
    Agent(agent::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.scenario {
            Scenario::Server(args) => server::run(args).await,
            Scenario::Agent(args) => agent::run(args).await,
        }
    })
}
