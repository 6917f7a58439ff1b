//! `logflux`: the LogFlux client. Flags are parsed here; everything else is in the library.
#![forbid(unsafe_code)]

use clap::Parser as _;

fn main() {
    let cli = logflux_client::Cli::parse();
    match logflux_client::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("logflux: error: {e:#}");
            std::process::exit(logflux_client::EXIT_ERROR);
        }
    }
}
