//! `logflux-bench`: end-to-end scenarios against real LogFlux processes on loopback.
//!
//! ```text
//! cargo build --release --bins
//! target/release/logflux-bench server [--seconds 15] [--clients 8]
//! target/release/logflux-bench agent [--seconds 15]
//! target/release/logflux-bench client [--entries 1000000]
//! target/release/logflux-bench files [--lines 2000000]
//! target/release/logflux-bench crypto [--seconds 3]
//! target/release/logflux-bench storage [--baseline-agent /tmp/logflux-agent-before]
//! target/release/logflux-bench alerts [--probes 100] [--rate 10000] [--seconds 30]
//! target/release/logflux-bench all [--short] [--write docs/benchmarks.md]
//! target/release/logflux-bench faults [--short] [--write docs/reliability.md]
//! target/release/logflux-bench abuse [--short] [--write docs/reliability.md]
//! ```
//!
//! Each scenario prints a Markdown table: throughput, latency percentiles, the server's CPU
//! time and peak RSS, and a baseline measured in the same run (`dd` for disk writes).
#![forbid(unsafe_code)]

mod abuse;
mod agent;
mod alerts;
mod all;
mod client;
mod crypto;
mod faults;
mod files;
mod procs;
mod server;
mod storage;

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
    /// Client: `logflux search` over a million stored entries beside `zstdcat | grep`.
    Client(client::Args),
    /// Files: a log file tailed by the agent beside `cat FILE > /dev/null`.
    Files(files::Args),
    /// Crypto: AES-256-GCM and batch sealing per core beside `openssl speed`.
    Crypto(crypto::Args),
    /// Storage: real-style logs read by the file input; bytes stored beside `zstd -1`/`-19`.
    Storage(storage::Args),
    /// Alerts: entry sent → webhook received (`for: 0`), and 100 rules' CPU beside `tail -f`.
    Alerts(alerts::Args),
    /// Fault suite: kill -9, outages, 5xx/429, full disks, corruption, clock skew.
    Faults(faults::Args),
    /// Abuse suite: floods, hostile producers and slow readers beside legitimate traffic.
    Abuse(abuse::Args),
    /// Every scenario, each in its own process; `--write docs/benchmarks.md` updates the tables.
    All(all::Args),
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
            Scenario::Client(args) => client::run(args).await,
            Scenario::Files(args) => files::run(args).await,
            Scenario::Crypto(args) => crypto::run(args).await,
            Scenario::Alerts(args) => alerts::run(args).await,
            Scenario::Storage(args) => storage::run(args).await,
            Scenario::Faults(args) => faults::run(args).await,
            Scenario::Abuse(args) => abuse::run(args).await,
            // Runs the other scenarios as child processes; it only waits on them.
            Scenario::All(args) => all::run(&args),
        }
    })
}
