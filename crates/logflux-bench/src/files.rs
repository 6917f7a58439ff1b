//! File scenario: a fast writer's log file tailed by the agent (read, parsed, sealed and
//! durably spooled), beside `cat FILE > /dev/null` on the same file in the same run; with
//! `--detect both`, read twice by fresh agents, with line understanding on (the default) and
//! off, for its cost.

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
    /// Line understanding (time and level detection): on (the agent's default), off
    /// (`format: plain`, `timestamp: {format: none}`, a fixed level), or both, one after the
    /// other on the same file.
    #[arg(long, default_value = "on")]
    detect: Detect,
    /// The lines' own times: `live` (the time the file is written, as a writer stamps its
    /// lines) or `old` (2026-11-21, as an archive: the agent then keeps each line's read time
    /// in metadata).
    #[arg(long, default_value = "old")]
    line_time: LineTime,
    /// The agent binary to run (default: `logflux-agent` beside this one), e.g. an older build
    /// for a before/after comparison in the same run.
    #[arg(long)]
    agent_bin: Option<PathBuf>,
}

/// `--line-time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LineTime {
    Live,
    Old,
}

/// `--detect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Detect {
    On,
    Off,
    Both,
}

/// One agent's reading of the file.
struct Reading {
    /// Until every line was sealed and spooled.
    seconds: f64,
    cpu: f64,
    /// Until every line was acknowledged by the server, and the agent's CPU until then.
    delivered_seconds: f64,
    delivered_cpu: f64,
    rss: f64,
}

/// A fresh agent and server under `w` read every line of the files in `logs`.
async fn read_once(
    w: &std::path::Path,
    logs: &std::path::Path,
    args: &Args,
    detect: bool,
) -> anyhow::Result<Reading> {
    std::fs::create_dir_all(w)?;
    let options = if detect {
        ""
    } else {
        "      format: plain\n      timestamp: {format: none}\n      level: info\n"
    };
    let AgentStack {
        server,
        mut agent,
        agent_pid,
        metrics_url,
        http,
    } = start_stack(
        w,
        &format!(
            "  files:\n    - paths: ['{}/*.log']\n      source: app\n      poll_interval_ms: 50\n{options}",
            logs.display()
        ),
        &args.fsync,
        args.agent_bin.as_deref(),
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
    let seconds = started.elapsed().as_secs_f64();
    let cpu = procs::cpu_seconds(agent_pid) - cpu0;
    // Until the server acknowledged every line (bounded).
    loop {
        let m = http.get(&metrics_url).send().await?.text().await?;
        if metric(&m, "logflux_agent_entries_shipped_total") >= args.lines as f64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the agent did not deliver the file within 900 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_seconds = started.elapsed().as_secs_f64();
    let delivered_cpu = procs::cpu_seconds(agent_pid) - cpu0;
    let rss = procs::peak_rss_mib(agent_pid);
    agent.start_kill().ok();
    drop(server);
    Ok(Reading {
        seconds,
        cpu,
        delivered_seconds,
        delivered_cpu,
        rss,
    })
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
        // Live: each line a microsecond after the last, from now (as an RFC 3339 prefix).
        let start = match args.line_time {
            LineTime::Live => logflux_proto::timefmt::now_ns(),
            LineTime::Old => logflux_proto::timefmt::parse_rfc3339("2026-11-21T10:00:00Z")?,
        };
        for i in 0..args.lines {
            let t = start + i as i64 * 1_000;
            let text = logflux_proto::timefmt::format_rfc3339(t - t.rem_euclid(1_000_000_000));
            writeln!(
                f,
                "{}.{:06}Z INFO GET /api/v1/orders/{} completed in {}ms user=u{} status=200",
                text.trim_end_matches('Z'),
                t.rem_euclid(1_000_000_000) / 1_000,
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
    let modes: &[bool] = match args.detect {
        Detect::On => &[true],
        Detect::Off => &[false],
        Detect::Both => &[true, false],
    };
    let mut readings = Vec::new();
    for &on in modes {
        let r = read_once(&w.join(if on { "on" } else { "off" }), &logs, &args, on).await?;
        readings.push((on, r));
    }
    println!("## logflux-bench files\n");
    println!(
        "### one file of {} lines ({:.0} MB, line times {}), read from its beginning, fsync {}\n",
        args.lines,
        bytes / 1e6,
        match args.line_time {
            LineTime::Live => "live",
            LineTime::Old => "old",
        },
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
    for (on, r) in &readings {
        let label = if readings.len() > 1 {
            if *on {
                ", detection on"
            } else {
                ", detection off"
            }
        } else {
            ""
        };
        println!(
            "| agent{label}: read, parsed, sealed, spooled | {:.0} lines/s, **{:.0} MB/s** ({:.3} × cat) |",
            args.lines as f64 / r.seconds,
            bytes / 1e6 / r.seconds,
            cat_s / r.seconds
        );
        println!(
            "| agent{label} CPU | {:.2} cores, {:.2} s per million lines |",
            r.cpu / r.seconds,
            r.cpu / args.lines as f64 * 1e6
        );
        println!(
            "| agent{label}: delivered (acknowledged by the server) | **{:.0} lines/s**, {:.2} s per million lines of agent CPU |",
            args.lines as f64 / r.delivered_seconds,
            r.delivered_cpu / args.lines as f64 * 1e6
        );
        println!("| agent{label} peak RSS | {:.0} MiB |", r.rss);
    }
    if let [(true, on), (false, off)] = &readings[..] {
        println!(
            "| cost of detection | {:+.1} % CPU per line, {:+.1} % lines/s |",
            (on.cpu / off.cpu - 1.0) * 100.0,
            (off.seconds / on.seconds - 1.0) * 100.0
        );
    }
    Ok(())
}
