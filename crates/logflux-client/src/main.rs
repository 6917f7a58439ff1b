//! `logflux`: the LogFlux client. Flags are parsed here; everything else is in the library.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;

use clap::Parser as _;

fn main() {
    let cli = logflux_client::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOGFLUX_LOG")
        // rustls-platform-verifier logs a refused certificate at error level; the error
        // returned says it (explained) already.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("warn,rustls_platform_verifier=off")
        });
    // Colours only for a person at a terminal: not in a file or journal, not with NO_COLOR
    // (`logflux up` logs the embedded server's and agent's events here).
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    match logflux_client::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("logflux: error: {e:#}");
            std::process::exit(logflux_client::EXIT_ERROR);
        }
    }
}
