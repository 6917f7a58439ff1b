//! The LogFlux agent: takes logs from applications, seals them with the customer's keys where
//! they are produced, keeps them on disk as ciphertext only, and ships them to the server.
//!
//! ```no_run
//! # async fn f() -> anyhow::Result<()> {
//! let config = logflux_agent::config::AgentConfig::load("/etc/logflux-agent/agent.yaml".as_ref())?;
//! let agent = logflux_agent::Agent::start(config).await?;
//! agent.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

mod agent;
mod api;
pub mod config;
pub mod detect;
pub mod files;
pub mod forward;
pub mod http_input;
pub mod journald;
mod keys;
mod metrics;
pub mod multiline;
pub mod parse;
mod pipeline;
pub mod redact;
mod ship;
pub mod spool;
pub mod syslog;
pub mod tail;

pub use agent::{Agent, ShutdownReport, default_config_path};
