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
mod keys;
mod metrics;
mod pipeline;
mod ship;
pub mod spool;

pub use agent::{Agent, default_config_path};
