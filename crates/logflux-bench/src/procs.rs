//! Child processes and what the kernel says about them.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::io::AsyncBufReadExt as _;

/// A binary next to this one (`cargo build --release --bins` puts them together).
pub(crate) fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let p = me.parent().context("no parent directory")?.join(name);
    if !p.exists() {
        bail!(
            "{} not found; build all binaries first: cargo build --release --bins",
            p.display()
        );
    }
    Ok(p)
}

/// A running server process.
pub(crate) struct ServerProc {
    pub(crate) child: tokio::process::Child,
    pub(crate) base: String,
    pub(crate) pid: u32,
}

pub(crate) async fn start_server(bin: &Path, data_dir: &Path) -> anyhow::Result<ServerProc> {
    start_server_at(bin, data_dir, "127.0.0.1:0").await
}

/// A server listening on `listen` (a fixed address survives restarts).
pub(crate) async fn start_server_at(
    bin: &Path,
    data_dir: &Path,
    listen: &str,
) -> anyhow::Result<ServerProc> {
    start_server_configured(bin, data_dir, listen, None).await
}

/// A server whose per-key request rate limit is out of the way: throughput scenarios measure
/// ingest, not the limiter (1 000 requests a second per key by default, which is what 8
/// clients of 100-entry SDK requests reach first).
pub(crate) async fn start_server_unlimited(
    bin: &Path,
    data_dir: &Path,
) -> anyhow::Result<ServerProc> {
    let config = data_dir.with_extension("bench.yaml");
    std::fs::write(
        &config,
        "rate_limit: {requests_per_second: 1000000, burst: 1000000}\n",
    )?;
    start_server_configured(bin, data_dir, "127.0.0.1:0", Some(&config)).await
}

async fn start_server_configured(
    bin: &Path,
    data_dir: &Path,
    listen: &str,
    config: Option<&Path>,
) -> anyhow::Result<ServerProc> {
    let mut cmd = tokio::process::Command::new(bin);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .args([
            "--data-dir",
            data_dir.to_str().context("path")?,
            "--listen",
            listen,
        ])
        .env("LOGFLUX_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("server did not start")??
        .context("server exited")?;
    let base = line
        .strip_prefix("listening on ")
        .context("unexpected first line")?
        .to_owned();
    Ok(ServerProc { child, base, pid })
}

pub(crate) fn init_tenant(bin: &Path, data_dir: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .args([
            "--data-dir",
            data_dir.to_str().context("path")?,
            "init",
            "--tenant",
            "bench",
        ])
        .output()?;
    if !out.status.success() {
        bail!("init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8(out.stdout)?
        .lines()
        .find(|l| l.starts_with("lf_pat_"))
        .map(str::to_owned)
        .context("no token printed")
}

/// CPU seconds (user + system) a process has used.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start after ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// Peak resident set size of a process, in MiB (VmHWM).
pub(crate) fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Sequential write speed of `dir` with `dd` (1 MiB blocks, flushed with fsync), in MB/s.
pub(crate) fn dd_write_mb_s(dir: &Path, mib: usize) -> anyhow::Result<f64> {
    let target = dir.join("dd.bench");
    let started = Instant::now();
    let out = std::process::Command::new("dd")
        .args([
            "if=/dev/zero",
            &format!("of={}", target.display()),
            "bs=1M",
            &format!("count={mib}"),
            "conv=fsync",
        ])
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&target);
    if !out.status.success() {
        bail!("dd failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(mib as f64 * 1.048_576 / secs)
}

/// The `p`-th percentile of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// A free TCP port on loopback.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// What [`provision`] set up on a fresh server.
pub(crate) struct Provisioned {
    /// The tenant's private key (its public half is uploaded).
    pub(crate) key: logflux_crypto::PrivateKey,
    pub(crate) app_id: String,
    pub(crate) api_key: String,
}

/// Uploads a new tenant key, creates application `app` and an ingest key for it.
pub(crate) async fn provision(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    app: &str,
    signature_required: bool,
) -> anyhow::Result<Provisioned> {
    async fn ok(r: reqwest::Response) -> anyhow::Result<serde_json::Value> {
        if !r.status().is_success() {
            bail!("{} {}", r.status(), r.text().await.unwrap_or_default());
        }
        Ok(r.json().await?)
    }
    let key = logflux_crypto::PrivateKey::generate(2048)?;
    ok(http
        .put(format!("{base}/v1/admin/public-key"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"public_key_pem": key.public_key().to_pem()}))
        .send()
        .await?)
    .await?;
    let a = ok(http
        .post(format!("{base}/v1/admin/applications"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"name": app}))
        .send()
        .await?)
    .await?;
    let k = ok(http
        .post(format!("{base}/v1/admin/api-keys"))
        .bearer_auth(admin)
        .json(&serde_json::json!({"application": app, "name": app,
                                  "signature_required": signature_required}))
        .send()
        .await?)
    .await?;
    Ok(Provisioned {
        key,
        app_id: a["id"].as_str().context("application id")?.to_owned(),
        api_key: k["api_key"].as_str().context("api key")?.to_owned(),
    })
}
