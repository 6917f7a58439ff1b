//! Agent scenario: many local clients → agent (sealing, durable spool) → real server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};

use crate::procs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds the clients send.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent clients on the agent's Unix socket.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// fsync policy of the spool: always, interval or never.
    #[arg(long, default_value = "always")]
    fsync: String,
    /// Data directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The agent binary to run (default: `logflux-agent` beside this one), e.g. an older build
    /// for a before/after comparison in the same run.
    #[arg(long)]
    agent_bin: Option<PathBuf>,
}

pub(crate) fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A quantile from a Prometheus histogram's cumulative buckets (upper bound of the bucket).
fn quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&format!("{name}_bucket{{le=\""))?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    buckets
        .iter()
        .find(|(_, c)| *c >= total * q)
        .map(|(le, _)| *le)
}

/// A server with a tenant, and an agent process configured with `inputs` (YAML lines under
/// `inputs:`), waiting for its "ready".
pub(crate) struct AgentStack {
    pub(crate) server: procs::ServerProc,
    pub(crate) agent: tokio::process::Child,
    pub(crate) agent_pid: u32,
    pub(crate) metrics_url: String,
    pub(crate) http: reqwest::Client,
}

pub(crate) async fn start_stack(
    w: &std::path::Path,
    inputs: &str,
    fsync: &str,
    agent_bin: Option<&std::path::Path>,
) -> anyhow::Result<AgentStack> {
    let agent_bin = match agent_bin {
        Some(p) => p.to_path_buf(),
        None => procs::sibling("logflux-agent")?,
    };
    Ok(start_stack_with(w, inputs, fsync, &agent_bin, "").await?.0)
}

/// As [`start_stack`] with a chosen agent binary and more agent configuration (top-level YAML
/// lines); also returns the tenant's private key.
pub(crate) async fn start_stack_with(
    w: &std::path::Path,
    inputs: &str,
    fsync: &str,
    agent_bin: &std::path::Path,
    extra_config: &str,
) -> anyhow::Result<(AgentStack, logflux_crypto::PrivateKey)> {
    let server_bin = procs::sibling("logflux-server")?;
    let admin = procs::init_tenant(&server_bin, &w.join("server"))?;
    let server = procs::start_server(&server_bin, &w.join("server")).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let p = procs::provision(&http, &base, &admin, "bench", false).await?;
    let (sk, api_key) = (&p.key, p.api_key.clone());
    std::fs::write(w.join("public_key.pem"), sk.public_key().to_pem())?;
    let search = logflux_crypto::SearchKey::generate()?;
    logflux_crypto::keyfile::write_new_file(
        "search key",
        &w.join("search.key"),
        search.to_text().as_bytes(),
        0o600,
    )?;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = w.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "server: {{urls: ['{base}'], api_key: '{api_key}'}}\nkeys: {{public_key_file: '{}', search_key_file: '{}'}}\n\
             inputs:\n{inputs}spool: {{dir: '{}', fsync: {fsync}}}\nmetrics: {{listen: '127.0.0.1:{metrics_port}'}}\n{extra_config}",
            w.join("public_key.pem").display(),
            w.join("search.key").display(),
            w.join("spool").display(),
        ),
    )?;
    let mut agent = tokio::process::Command::new(agent_bin)
        .args(["--config", config.to_str().context("path")?, "run"])
        .env("LOGFLUX_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let agent_pid = agent.id().context("pid")?;
    let mut lines = tokio::io::BufReader::new(agent.stdout.take().context("stdout")?).lines();
    while lines.next_line().await?.context("agent exited")? != "ready" {}
    Ok((
        AgentStack {
            server,
            agent,
            agent_pid,
            metrics_url: format!("http://127.0.0.1:{metrics_port}/metrics"),
            http,
        },
        p.key,
    ))
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("logflux-bench-agent-")
        .tempdir_in(&parent)?;
    let w = work.path();
    let socket = w.join("agent.sock");
    let AgentStack {
        server,
        mut agent,
        agent_pid,
        metrics_url,
        http,
    } = start_stack(
        w,
        &format!("  unix_socket: {{path: '{}'}}\n", socket.display()),
        &args.fsync,
        args.agent_bin.as_deref(),
    )
    .await?;

    // ~200-byte entries, as an SDK writes them, in 64 KiB writes.
    let line = |c: usize, n: usize| {
        json!({"version":"1.0","payload": format!("GET /api/v1/orders/{n} completed in {}ms user=u{} status=200", n % 250, (n * 7 + c) % 1013),
               "source":"checkout-service","entryType":1,"logLevel":7,"metadata":{"region":"eu-west-1"}}).to_string()
    };
    let sample = line(0, 123_456);
    let started = Instant::now();
    let deadline = Duration::from_secs(args.seconds);
    let cpu0 = procs::cpu_seconds(agent_pid);
    let m0 = http.get(&metrics_url).send().await?.text().await?;
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let socket = socket.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::UnixStream::connect(&socket).await?;
            let mut n = 0usize;
            let mut buf = String::with_capacity(70_000);
            while started.elapsed() < deadline {
                buf.clear();
                while buf.len() < 64 * 1024 {
                    buf.push_str(&line(c, n));
                    buf.push('\n');
                    n += 1;
                }
                s.write_all(buf.as_bytes()).await?;
            }
            // A ping: its reply proves every line before it was read.
            s.write_all(b"{\"action\":\"ping\"}\n").await?;
            let mut r = tokio::io::BufReader::new(s);
            let mut reply = String::new();
            r.read_line(&mut reply).await?;
            anyhow::ensure!(reply.contains("pong"), "unexpected reply {reply}");
            anyhow::Ok(n)
        }));
    }
    let mut sent = 0usize;
    for t in tasks {
        sent += t.await??;
    }
    let window = started.elapsed();
    let m1 = http.get(&metrics_url).send().await?.text().await?;
    let cpu = procs::cpu_seconds(agent_pid) - cpu0;
    let received = metric(&m1, "logflux_agent_entries_received_total")
        - metric(&m0, "logflux_agent_entries_received_total");
    let rejected = metric(&m1, "logflux_agent_entries_rejected_total") + 0.0;
    // Drain: wait until the server acknowledged everything (bounded).
    let drain_start = Instant::now();
    let shipped_all = loop {
        let m = http.get(&metrics_url).send().await?.text().await?;
        if metric(&m, "logflux_agent_entries_shipped_total") >= received {
            break m;
        }
        if drain_start.elapsed() > Duration::from_secs(300) {
            bail!("the agent did not deliver everything within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let total = started.elapsed();
    // User + system time of the agent from the first line to the last acknowledgement.
    let cpu_total = procs::cpu_seconds(agent_pid) - cpu0;
    let rss = procs::peak_rss_mib(agent_pid);
    let entry_bytes = sample.len() + 1;
    println!("## logflux-bench agent\n");
    println!(
        "### {} clients → agent (fsync {}) → server, {} s, ~{} byte entries\n",
        args.clients, args.fsync, args.seconds, entry_bytes
    );
    println!("| figure | value |\n|---|---|");
    println!("| entries sent by the clients | {sent} |");
    println!(
        "| accepted, sealed and spooled during the window | **{:.0} entries/s** ({:.0} MB/s of NDJSON) |",
        received / window.as_secs_f64(),
        received * entry_bytes as f64 / 1e6 / window.as_secs_f64()
    );
    println!("| refused | {rejected} |");
    println!(
        "| everything acknowledged by the server after | {:.1} s ({:.0} entries/s end to end) |",
        total.as_secs_f64(),
        received / total.as_secs_f64()
    );
    if let (Some(p50), Some(p99)) = (
        quantile(&shipped_all, "logflux_agent_delivery_seconds", 0.5),
        quantile(&shipped_all, "logflux_agent_delivery_seconds", 0.99),
    ) {
        println!(
            "| sealed → acknowledged, p50 / p99 (histogram bucket bounds) | ≤ {:.0} ms / ≤ {:.0} ms |",
            p50 * 1000.0,
            p99 * 1000.0
        );
    }
    println!(
        "| agent CPU during the window | {:.2} cores |",
        cpu / window.as_secs_f64()
    );
    println!(
        "| agent CPU per million entries, received → acknowledged | **{:.2} s** |",
        cpu_total / received.max(1.0) * 1e6
    );
    println!("| agent peak RSS | **{rss:.0} MiB** |");
    agent.start_kill().ok();
    drop(server);
    Ok(())
}
