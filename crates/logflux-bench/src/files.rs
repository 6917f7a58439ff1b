//! File scenario: a fast writer's log file tailed by the agent (read, parsed, sealed and
//! durably spooled), beside `cat FILE > /dev/null` on the same file in the same run.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::agent::{AgentStack, metric, start_stack};
use crate::procs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Lines in the file.
    #[arg(long, default_value_t = 2_000_000)]
    lines: usize,
    /// fsync policy of the spool: always, interval or never.
    #[arg(long, default_value = "always")]
    fsync: String,
    /// Work directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("logflux-bench-files-")
        .tempdir_in(&parent)?;
    let w = work.path();
    let logs = w.join("logs");
    std::fs::create_dir_all(&logs)?;
    let file = logs.join("app.log");
    // A fast writer: access-log lines of ~150 bytes, written as fast as the disk takes them.
    let written = Instant::now();
    {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
        for i in 0..args.lines {
            writeln!(
                f,
                "2026-11-21T10:00:{:02}.{:06}Z INFO GET /api/v1/orders/{} completed in {}ms user=u{} status=200",
                i / 1_000_000 % 60,
                i % 1_000_000,
                i % 100_000,
                i % 250,
                i % 1013
            )?;
        }
        f.flush()?;
    }
    let write_s = written.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&file)?.len() as f64;
    // Baseline: cat, twice (the first warms the page cache), the second timed.
    let cat = |_: ()| -> anyhow::Result<f64> {
        let t = Instant::now();
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("cat '{}' > /dev/null", file.display()))
            .status()?;
        if !st.success() {
            bail!("cat failed");
        }
        Ok(t.elapsed().as_secs_f64())
    };
    cat(())?;
    let cat_s = cat(())?;
    let AgentStack {
        server,
        mut agent,
        agent_pid,
        metrics_url,
        http,
    } = start_stack(
        w,
        &format!(
            "  files:\n    - paths: ['{}/*.log']\n      source: app\n      poll_interval_ms: 50\n",
            logs.display()
        ),
        &args.fsync,
    )
    .await?;
    let started = Instant::now();
    let cpu0 = procs::cpu_seconds(agent_pid);
    // Until every line is sealed and in the spool (bounded).
    loop {
        let m = http.get(&metrics_url).send().await?.text().await?;
        if metric(&m, "logflux_agent_entries_sealed_total") >= args.lines as f64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the agent did not read the file within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tail_s = started.elapsed().as_secs_f64();
    let cpu = procs::cpu_seconds(agent_pid) - cpu0;
    let rss = procs::peak_rss_mib(agent_pid);
    println!("## logflux-bench files\n");
    println!(
        "### one file of {} lines ({:.0} MB), read from its beginning, fsync {}\n",
        args.lines,
        bytes / 1e6,
        args.fsync
    );
    println!("| figure | value |\n|---|---|");
    println!(
        "| the writer (BufWriter, same process) | {:.0} lines/s, {:.0} MB/s |",
        args.lines as f64 / write_s,
        bytes / 1e6 / write_s
    );
    println!(
        "| `cat FILE > /dev/null` (page cache warm) | {:.0} lines/s, **{:.0} MB/s** |",
        args.lines as f64 / cat_s,
        bytes / 1e6 / cat_s
    );
    println!(
        "| agent: read, parsed, sealed, spooled | {:.0} lines/s, **{:.0} MB/s** ({:.3} × cat) |",
        args.lines as f64 / tail_s,
        bytes / 1e6 / tail_s,
        cat_s / tail_s
    );
    println!("| agent CPU | {:.2} cores |", cpu / tail_s);
    println!("| agent peak RSS | {rss:.0} MiB |");
    agent.start_kill().ok();
    drop(server);
    Ok(())
}
