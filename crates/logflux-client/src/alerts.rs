//! `logflux alerts`: check rule files, and run them over the live stream here (docs/alerts.md).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::serve::AlertArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum AlertsCommand {
    /// Check rule files (Loki ruler format): every problem with its file, line, group and
    /// rule. Exit status 0 when all are valid, 2 otherwise.
    Check(CheckArgs),
    /// Evaluate the rules over the live stream here and send their alerts to the receivers,
    /// until Ctrl-C (`logflux serve --rules` does the same and lists them over HTTP).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Rule files, or directories of them (every *.yaml and *.yml).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// A receivers file (Alertmanager's format, a subset) to check as well.
    #[arg(long, value_name = "FILE")]
    receivers: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    alerts: AlertArgs,
    /// Where `logflux serve` answers, for the links in alerts to its explore page.
    #[arg(long, default_value = "http://127.0.0.1:3100", value_name = "URL")]
    external_url: String,
    /// Memory for decrypted records while reading the look-back at start, in MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    cache_mb: u64,
}

pub(crate) async fn run(settings: Option<&Settings>, cmd: AlertsCommand) -> anyhow::Result<i32> {
    match cmd {
        AlertsCommand::Check(args) => Ok(check(&args)),
        AlertsCommand::Run(args) => {
            let settings = settings.ok_or_else(|| anyhow::anyhow!("no settings"))?;
            crate::serve::run_alerts(settings, &args.alerts, args.cache_mb, &args.external_url)
                .await
        }
    }
}

/// `logflux alerts check`: prints every problem (warnings too) and a summary.
fn check(args: &CheckArgs) -> i32 {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for f in &args.files {
        if f.is_dir() {
            match logflux_alerts::rules::rule_files(f) {
                Ok(found) => files.extend(found),
                Err(e) => problems.push(format!("{}: cannot read the directory: {e}", f.display())),
            }
        } else {
            files.push(f.clone());
        }
    }
    let (groups, rules, warnings) = match logflux_alerts::rules::check_files(&files) {
        Ok(set) => (
            set.groups.len(),
            set.groups.iter().map(|g| g.rules.len()).sum::<usize>(),
            set.warnings.iter().map(ToString::to_string).collect(),
        ),
        Err(ps) => {
            problems.extend(ps.iter().map(ToString::to_string));
            (0, 0, Vec::new())
        }
    };
    if let Some(r) = &args.receivers {
        match logflux_alerts::notify::ReceiversConfig::load(r) {
            Ok(loaded) => {
                for w in loaded.warnings {
                    println!("{}: warning: {w}", r.display());
                }
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    for w in &warnings {
        println!("{w}");
    }
    if problems.is_empty() {
        println!(
            "ok: {rules} rule{} in {groups} group{} from {} file{}",
            if rules == 1 { "" } else { "s" },
            if groups == 1 { "" } else { "s" },
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        );
        crate::EXIT_OK
    } else {
        for p in &problems {
            eprintln!("{p}");
        }
        eprintln!(
            "{} problem{} found",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        crate::EXIT_ERROR
    }
}
