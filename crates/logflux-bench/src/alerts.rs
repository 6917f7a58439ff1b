//! Alerts scenario (issue 15, docs/alerts.md): how long from an entry sent to the agent to the
//! webhook that says its alert fires (`for: 0`), and what the evaluator costs with 100 rules
//! over a stream of 10 000 entries/s, beside `logflux tail -f` over the same stream (the cost
//! of decrypting it with no rules).
//!
//! Both parts run against one `logflux up` stack (server and agent in one process) in a
//! temporary directory, with `logflux alerts run` as a process of its own and the webhook
//! receiver in this process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;

use crate::procs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Probes for the latency: one entry each, each with a source of its own.
    #[arg(long, default_value_t = 100)]
    probes: usize,
    /// Milliseconds between two probes.
    #[arg(long, default_value_t = 300)]
    probe_every_ms: u64,
    /// Entries per second sent under the rules.
    #[arg(long, default_value_t = 10_000)]
    rate: usize,
    /// Seconds of that load.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Rules evaluated under that load, two of them the bench's own (at least 2).
    #[arg(long, default_value_t = 100)]
    rules: usize,
    /// Evaluation interval of the rules' groups (a Prometheus duration).
    #[arg(long, default_value = "10s")]
    interval: String,
    /// Evaluate the rules in `logflux serve --rules` instead of `logflux alerts run` (the
    /// same evaluator), to report the rules' health from its `/api/v1/rules`.
    #[arg(long)]
    serve: bool,
    /// `--cache-mb` of `logflux alerts run` (memory for decrypted records; default: its own).
    #[arg(long)]
    cache_mb: Option<u64>,
    /// One part only: `latency` or `cpu` (default: both).
    #[arg(long)]
    only: Option<String>,
    /// Work directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    logflux_proto::timefmt::now_ns() / 1_000_000
}

/// Waits until `f` gives a value, looking again at each change `rx` announces, for at most
/// `within`.
async fn until<T>(
    rx: &mut watch::Receiver<u64>,
    within: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        // Marked seen before looking, so a change after the look wakes the wait below.
        rx.mark_unchanged();
        if let Some(v) = f() {
            return Ok(v);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("{what}: the process ended"),
            Err(_) => bail!("not within {within:?}: {what}"),
        }
    }
}

/// A running `logflux up` (server and agent in one process).
struct Up {
    _child: tokio::process::Child,
    pid: u32,
    bin: PathBuf,
    dir: PathBuf,
    home: PathBuf,
    socket: PathBuf,
}

impl Up {
    async fn start(w: &Path) -> anyhow::Result<Up> {
        let bin = procs::sibling("logflux")?;
        let dir = w.join("stack");
        // 2048-bit keys made ahead, as the client's tests do: `up` would spend seconds making
        // RSA-4096 ones.
        let st = std::process::Command::new(&bin)
            .args(["keys", "generate", "--bits", "2048", "--dir"])
            .arg(dir.join("keys"))
            .stdout(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("logflux keys generate failed");
        }
        let socket = w.join("agent.sock");
        let mut child = tokio::process::Command::new(&bin)
            .arg("up")
            .arg("--dir")
            .arg(&dir)
            .arg("--socket")
            .arg(&socket)
            .args([
                "--tcp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--serve",
                "off",
            ])
            .env("HOME", w)
            .env("LOGFLUX_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("pid")?;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        loop {
            let l = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
                .await
                .context("logflux up not ready within 120 s")??
                .context("logflux up exited before it was ready")?;
            if l.starts_with("ready") {
                break;
            }
        }
        // Its output is drained so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Up {
            _child: child,
            pid,
            bin,
            dir,
            home: w.to_owned(),
            socket,
        })
    }

    /// `logflux …` as a user of this stack runs it: its client.yaml, nothing from this
    /// process's LOGFLUX_* variables.
    fn logflux(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.bin);
        for (k, _) in std::env::vars() {
            if k.starts_with("LOGFLUX_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &self.home)
            .env("LOGFLUX_CONFIG", self.dir.join("client.yaml"))
            .env("LOGFLUX_LOG", "warn")
            .env("NO_COLOR", "1");
        c
    }

    async fn connect(&self) -> anyhow::Result<tokio::net::UnixStream> {
        Ok(tokio::net::UnixStream::connect(&self.socket).await?)
    }
}

/// A line a `logflux` child printed, when.
#[derive(Debug, Default)]
struct Printed {
    lines: u64,
    /// `probe NAME …` lines: NAME → (when read, Unix ms).
    probes: HashMap<String, (Instant, i64)>,
}

/// A `logflux` child whose standard output is read line by line as it comes.
struct Child {
    // Killed when dropped.
    _child: tokio::process::Child,
    pid: u32,
    printed: Arc<Mutex<Printed>>,
    changed: watch::Receiver<u64>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// What it printed before its ready line.
    before: Vec<String>,
}

impl Child {
    /// Starts `cmd`; when `ready` is given, returns once a line starting with it was printed.
    async fn start(mut cmd: tokio::process::Command, ready: Option<&str>) -> anyhow::Result<Child> {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().context("pid")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let keep = stderr.clone();
        let mut err = tokio::io::BufReader::new(child.stderr.take().context("stderr")?).lines();
        tokio::spawn(async move {
            while let Ok(Some(l)) = err.next_line().await {
                lock(&keep).push(l);
            }
        });
        let mut out = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
        let mut before = Vec::new();
        if let Some(ready) = ready {
            loop {
                let l = tokio::time::timeout(Duration::from_secs(120), out.next_line())
                    .await
                    .context("not ready within 120 s")??;
                match l {
                    Some(l) if l.starts_with(ready) => break,
                    Some(l) => before.push(l),
                    None => bail!(
                        "{cmd:?} ended before {ready:?}: {}",
                        lock(&stderr).join("\n")
                    ),
                }
            }
        }
        let printed = Arc::new(Mutex::new(Printed::default()));
        let (tx, changed) = watch::channel(0u64);
        let p = printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = out.next_line().await {
                let at = (Instant::now(), now_ms());
                {
                    let mut p = lock(&p);
                    p.lines += 1;
                    if let Some(rest) = l.strip_prefix("probe ") {
                        let name = rest.split_whitespace().next().unwrap_or_default();
                        p.probes.entry(name.to_owned()).or_insert(at);
                    }
                }
                tx.send_modify(|n| *n += 1);
            }
        });
        Ok(Child {
            _child: child,
            pid,
            printed,
            changed,
            stderr,
            before,
        })
    }

    fn stderr(&self) -> String {
        lock(&self.stderr).join("\n")
    }
}

/// A firing alert as it reached the webhook.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    wall_ms: i64,
    /// `startsAt`: the evaluation it started firing at (Unix ms).
    starts_at_ms: i64,
}

/// The webhook receiver: the first firing notification of each alert, by its `source` label
/// (else its name), and how many notifications came.
struct Hook {
    url: String,
    firing: Arc<Mutex<HashMap<String, Arrival>>>,
    bodies: Arc<Mutex<u64>>,
    changed: watch::Receiver<u64>,
}

impl Hook {
    async fn start() -> anyhow::Result<Hook> {
        let firing = Arc::new(Mutex::new(HashMap::new()));
        let bodies = Arc::new(Mutex::new(0u64));
        let (tx, changed) = watch::channel(0u64);
        let tx = Arc::new(tx);
        let (f, b) = (firing.clone(), bodies.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (f, b, tx) = (f.clone(), b.clone(), tx.clone());
                async move {
                    let at = Instant::now();
                    let wall_ms = now_ms();
                    let v: Value = serde_json::from_slice(&body).unwrap_or_default();
                    *lock(&b) += 1;
                    let mut f = lock(&f);
                    for a in v["alerts"].as_array().into_iter().flatten() {
                        if a["status"] != "firing" {
                            continue;
                        }
                        let key = a["labels"]["source"]
                            .as_str()
                            .or(a["labels"]["alertname"].as_str())
                            .unwrap_or_default()
                            .to_owned();
                        let starts_at_ms = a["startsAt"]
                            .as_str()
                            .and_then(|s| logflux_proto::timefmt::parse_rfc3339(s).ok())
                            .map_or(0, |ns| ns / 1_000_000);
                        f.entry(key).or_insert(Arrival {
                            at,
                            wall_ms,
                            starts_at_ms,
                        });
                    }
                    drop(f);
                    tx.send_modify(|n| *n += 1);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Hook {
            url,
            firing,
            bodies,
            changed,
        })
    }

    fn get(&self, key: &str) -> Option<Arrival> {
        lock(&self.firing).get(key).copied()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// Receivers: one webhook, grouped by `group_by`, told at once of a new group.
fn receivers(
    dir: &Path,
    url: &str,
    group_by: &str,
    group_interval: &str,
) -> anyhow::Result<PathBuf> {
    write(
        dir,
        "receivers.yml",
        &format!(
            "route:\n  receiver: bench\n  group_by: [{group_by}]\n  group_wait: 0s\n  group_interval: {group_interval}\n  repeat_interval: 1h\n\
             receivers:\n  - name: bench\n    webhook_configs:\n      - url: {url}\n        send_resolved: false\n"
        ),
    )
}

/// `logflux alerts run` on the rules in `dir/rules` and the receivers `dir/receivers.yml`,
/// its state in `dir/state`, once it says it is evaluating.
async fn alerts_run(
    up: &Up,
    dir: &Path,
    receivers: &Path,
    cache_mb: Option<u64>,
) -> anyhow::Result<Child> {
    let mut cmd = up.logflux();
    cmd.args(["alerts", "run", "--rules"])
        .arg(dir.join("rules"))
        .arg("--receivers")
        .arg(receivers)
        .arg("--alerts-state")
        .arg(dir.join("state"));
    if let Some(mb) = cache_mb {
        cmd.arg("--cache-mb").arg(mb.to_string());
    }
    Child::start(cmd, Some("evaluating")).await
}

/// The same rules in `logflux serve --rules`: the process, its URL and its token.
async fn serve_rules(
    up: &Up,
    dir: &Path,
    receivers: &Path,
) -> anyhow::Result<(Child, String, String)> {
    let token_file = dir.join("serve.token");
    let mut cmd = up.logflux();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token_file)
        .arg("--rules")
        .arg(dir.join("rules"))
        .arg("--receivers")
        .arg(receivers)
        .arg("--alerts-state")
        .arg(dir.join("state"));
    let child = Child::start(cmd, Some("serving")).await?;
    let url = child
        .before
        .iter()
        .find_map(|l| l.strip_prefix("serve   "))
        .and_then(|r| r.split_whitespace().next())
        .context("logflux serve printed no URL")?
        .to_owned();
    let token = std::fs::read_to_string(&token_file)?.trim().to_owned();
    Ok((child, url, token))
}

/// The rules' health from `/api/v1/rules`: how many are `ok`, and the others' errors.
async fn health(url: &str, token: &str) -> anyhow::Result<(usize, Vec<String>)> {
    let v: Value = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("{url}/api/v1/rules"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut ok = 0;
    let mut bad = Vec::new();
    for r in v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        if r["health"] == "ok" {
            ok += 1;
        } else {
            bad.push(format!("{}: {}", r["name"], r["lastError"]));
        }
    }
    Ok((ok, bad))
}

/// `logflux tail -f` of every new entry, payloads only.
async fn tail_f(up: &Up) -> anyhow::Result<Child> {
    let mut cmd = up.logflux();
    cmd.args(["tail", "-f", "-n", "0", "-o", "cat"]);
    Child::start(cmd, None).await
}

async fn send_line(s: &mut tokio::net::UnixStream, line: &Value) -> anyhow::Result<()> {
    s.write_all(format!("{line}\n").as_bytes()).await?;
    Ok(())
}

/// Sends `{"action":"flush"}` and waits for its answer: everything sent before it on any
/// connection is then stored by the server.
async fn flush(s: tokio::net::UnixStream) -> anyhow::Result<()> {
    let (r, mut w) = s.into_split();
    w.write_all(b"{\"action\":\"flush\"}\n").await?;
    let mut reply = String::new();
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::io::BufReader::new(r).read_line(&mut reply),
    )
    .await
    .context("the agent did not flush within 120 s")??;
    if !reply.contains("flushed") {
        bail!("the agent answered the flush with {reply:?}");
    }
    Ok(())
}

fn sorted_ms(mut v: Vec<f64>) -> Vec<Duration> {
    v.sort_by(f64::total_cmp);
    v.into_iter()
        .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0))
        .collect()
}

fn p50_p99(v: Vec<f64>) -> String {
    let s = sorted_ms(v);
    format!(
        "{} / {}",
        procs::ms(procs::percentile(&s, 0.5)),
        procs::ms(procs::percentile(&s, 0.99))
    )
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let (latency, cpu) = match args.only.as_deref() {
        None => (true, true),
        Some("latency") => (true, false),
        Some("cpu") => (false, true),
        Some(o) => bail!("--only {o:?}: latency or cpu"),
    };
    if args.rules < 2 {
        bail!("--rules {}: at least the bench's own 2", args.rules);
    }
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("logflux-bench-alerts-")
        .tempdir_in(&parent)?;
    let w = work.path();
    let up = Up::start(w).await?;
    let mut hook = Hook::start().await?;
    println!("## logflux-bench alerts\n");
    if latency {
        latency_part(&up, &mut hook, w, &args).await?;
    }
    if cpu {
        cpu_part(&up, &mut hook, w, &args).await?;
    }
    Ok(())
}

/// Entry sent → webhook received, per probe, with where the time went.
async fn latency_part(up: &Up, hook: &mut Hook, w: &Path, args: &Args) -> anyhow::Result<()> {
    let d = w.join("latency");
    write(
        &d.join("rules"),
        "probe.yaml",
        "groups:\n  - name: probes\n    interval: 1s\n    rules:\n      - alert: Probe\n        \
         expr: 'sum by (source) (count_over_time({source=~\"probe-.+\"}[10s])) > 0'\n        for: 0s\n",
    )?;
    let receivers = receivers(&d, &hook.url, "source", "1s")?;
    let load_before = load_avg();
    let run = alerts_run(up, &d, &receivers, args.cache_mb).await?;
    // A tail beside it shows when an entry reached a client (the same live stream, decrypted
    // the same way): the transport's share of the latency.
    let mut tail = tail_f(up).await?;
    let mut s = up.connect().await?;
    let probe = |name: &str| {
        json!({"payload": format!("probe {name} sent to the agent"), "source": format!("probe-{name}"),
               "entryType": 1, "logLevel": 6})
    };
    // A first probe, not counted: the evaluator has read its look-back and follows the
    // stream, the tail follows it too, and every path is warm.
    send_line(&mut s, &probe("warmup")).await?;
    until(
        &mut hook.changed,
        Duration::from_secs(120),
        "the warm-up probe's alert",
        || lock(&hook.firing).get("probe-warmup").copied(),
    )
    .await
    .with_context(|| run.stderr())?;
    until(
        &mut tail.changed,
        Duration::from_secs(60),
        "the warm-up probe in the tail",
        || lock(&tail.printed).probes.get("warmup").copied(),
    )
    .await
    .with_context(|| tail.stderr())?;

    let started = Instant::now();
    let mut sent = Vec::with_capacity(args.probes);
    for i in 0..args.probes {
        let due = started + Duration::from_millis(args.probe_every_ms * i as u64);
        tokio::time::sleep_until(due.into()).await;
        let line = probe(&i.to_string());
        let (at, wall) = (Instant::now(), now_ms());
        send_line(&mut s, &line).await?;
        sent.push((at, wall));
    }
    // Every probe's alert, or what is missing 30 s after the last was sent.
    let names: Vec<String> = (0..args.probes).map(|i| format!("probe-{i}")).collect();
    let all = until(&mut hook.changed, Duration::from_secs(30), "", || {
        let f = lock(&hook.firing);
        names.iter().all(|n| f.contains_key(n)).then_some(())
    })
    .await;
    let missing: Vec<&str> = names
        .iter()
        .filter(|n| hook.get(n).is_none())
        .map(String::as_str)
        .collect();
    if all.is_err() && missing.is_empty() {
        all?;
    }
    let (mut total, mut to_tail, mut to_slot, mut to_hook) = (vec![], vec![], vec![], vec![]);
    for (i, (at, wall)) in sent.iter().enumerate() {
        let Some(a) = hook.get(&names[i]) else {
            continue;
        };
        total.push(a.at.duration_since(*at).as_secs_f64() * 1000.0);
        to_hook.push((a.wall_ms - a.starts_at_ms) as f64);
        if let Some((_, tail_wall)) = lock(&tail.printed).probes.get(&i.to_string()).copied() {
            to_tail.push((tail_wall - wall) as f64);
            to_slot.push((a.starts_at_ms - tail_wall) as f64);
        }
    }
    let received = total.len();
    let sorted = sorted_ms(total.clone());
    let p = |q: f64| procs::ms(procs::percentile(&sorted, q));
    println!(
        "### Entry sent to the agent → webhook received: {} probes, one every {} ms (`for: 0`, `interval: 1s`, `group_wait: 0s`)\n",
        args.probes, args.probe_every_ms
    );
    println!(
        "Rule `sum by (source) (count_over_time({{source=~\"probe-.+\"}}[10s])) > 0`; each probe has a source of its own, so each is an alert and a group of its own. Load average before: {load_before}.\n"
    );
    println!("| figure | value |\n|---|---|");
    println!(
        "| webhooks received | {received} of {}{} |",
        args.probes,
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (**missing: {}**)", missing.join(", "))
        }
    );
    println!(
        "| entry sent → webhook received, p50 / p90 / p99 / max | **{}** / {} / **{}** / {} |",
        p(0.5),
        p(0.9),
        p(0.99),
        sorted.last().map_or_else(String::new, |d| procs::ms(*d))
    );
    println!(
        "| of which: sent → printed by `logflux tail -f` beside it (agent batching, server commit, live stream, decryption), p50 / p99 | {} |",
        p50_p99(to_tail)
    );
    println!(
        "| printed by the tail → the evaluation that fired it (`startsAt`; waiting for the next 1 s slot), p50 / p99 | {} |",
        p50_p99(to_slot)
    );
    println!(
        "| evaluation time → webhook received (tick, evaluation, notifier, HTTP), p50 / p99 | {} |",
        p50_p99(to_hook)
    );
    println!();
    drop(run);
    drop(tail);
    Ok(())
}

/// The rules of the CPU part: `rules − 2` of the kinds people write (counts, rates, bytes, by source,
/// level or host, line filters, `| json`, `| logfmt | unwrap`), in 10 groups, and two that
/// let the bench see the evaluator: `Ready` (a marker entry seen) and `Total` (every load
/// entry counted).
fn cpu_rules(interval: &str, window_s: u64, rules: usize) -> String {
    let kinds: [&dyn Fn(usize) -> String; 10] = [
        &|g| {
            format!(
                r#"sum by (source) (count_over_time({{app="default", level="error"}} |= "timeout" [5m])) > {}"#,
                10 + g
            )
        },
        &|g| {
            format!(
                r#"sum(rate({{app="default"}} |= "refused" [1m])) > {}"#,
                5 + g
            )
        },
        &|g| {
            format!(
                r#"sum by (level) (count_over_time({{app="default"}} [1m])) > {}"#,
                1000 * (g + 1)
            )
        },
        &|g| {
            format!(
                r#"sum by (source) (bytes_over_time({{app="default", source="api"}} [5m])) > {}e6"#,
                g + 1
            )
        },
        &|g| {
            format!(
                r#"count_over_time({{app="default", source="db"}} |~ "disk (full|error)" [2m]) > {}"#,
                3 + g
            )
        },
        &|g| {
            format!(
                r#"sum by (host) (count_over_time({{app="default"}} |= "GET" [1m])) > {}"#,
                500 * (g + 1)
            )
        },
        &|g| {
            format!(
                r#"max by (source) (max_over_time({{app="default", source="worker"}} | logfmt | unwrap took | __error__="" [1m])) > {}"#,
                900 + g
            )
        },
        &|g| {
            format!(
                r#"sum by (source) (count_over_time({{app="default", source="api"}} | json | status >= 500 [1m])) > {}"#,
                10 + g
            )
        },
        &|g| {
            format!(
                r#"sum by (source) (rate({{app="default"}} != "health" [30s])) > {}"#,
                50 * (g + 1)
            )
        },
        &|g| format!(r#"sum(count_over_time({{app="default"}} |= "alice" [1h])) > {g}"#),
    ];
    let mut y = String::from("groups:\n");
    let mut n = 0;
    for g in 0..rules.saturating_sub(2).div_ceil(10) {
        y.push_str(&format!(
            "  - name: g{g}\n    interval: {interval}\n    rules:\n"
        ));
        for (k, kind) in kinds.iter().enumerate() {
            if n + 2 == rules {
                break;
            }
            y.push_str(&format!(
                "      - alert: R{g}k{k}\n        expr: '{}'\n        for: 1m\n",
                kind(g)
            ));
            n += 1;
        }
    }
    y.push_str(&format!(
        "  - name: bench\n    interval: 1s\n    rules:\n\
         \x20     - alert: Ready\n        expr: 'sum by (source) (count_over_time({{source=\"bench-ready\"}}[1h])) > 0'\n\
         \x20     - alert: Total\n        expr: 'sum(count_over_time({{app=\"default\", bench=\"load\"}}[{window_s}s])) > 0'\n"
    ));
    y
}

/// The `i`-th load entry: four sources with their own shapes (JSON access records, logfmt job
/// lines, access-log text, database messages), all levels, four hosts.
fn load_entry(i: usize) -> Value {
    let x = (i as u64).wrapping_mul(6_364_136_223_846_793_005) >> 20;
    let level = (x % 8) as u8 + 1;
    let status = [200, 200, 201, 404, 500][(x % 5) as usize];
    let user = ["alice", "bob", "carol"][(x % 3) as usize];
    let (source, payload) = match i % 4 {
        0 => (
            "api",
            json!({"method": "GET", "path": format!("/api/v1/orders/{}", x % 100_000),
                   "status": status, "took": x % 250, "user": user})
            .to_string(),
        ),
        1 => (
            "worker",
            format!(
                "level=info job=reindex-{} took={} msg=\"batch done\"",
                x % 5,
                x % 1000
            ),
        ),
        2 => (
            "web",
            format!(
                "GET /static/app.{:x}.js 200 took={}ms{}",
                x % 4096,
                x % 90,
                if x.is_multiple_of(50) { " health" } else { "" }
            ),
        ),
        _ => (
            "db",
            [
                "connection refused by db-1, retrying",
                "disk full on /var/lib/data",
                "read timeout after 30s",
                "query ok in 3ms",
            ][(x % 4) as usize]
                .to_owned(),
        ),
    };
    json!({"payload": payload, "source": source, "entryType": 1, "logLevel": level,
           "metadata": {"host": format!("h{}", x % 4), "bench": "load"}})
}

/// The `Total` rule's value in the evaluator's state file, if it fires.
fn total_in_state(file: &Path) -> Option<f64> {
    let s: Value = serde_json::from_slice(&std::fs::read(file).ok()?).ok()?;
    s["rules"]
        .as_array()?
        .iter()
        .find(|r| r["alert"] == "Total")?["alerts"]
        .get(0)?["value"]
        .as_str()?
        .parse()
        .ok()
}

/// Entries the server stores with `bench=load`, as `logflux stats` counts them.
async fn stored(up: &Up, since_s: i64) -> anyhow::Result<f64> {
    let out = up
        .logflux()
        .args(["stats", "-m", "bench=load", "--since"])
        .arg(format!("@{since_s}"))
        .args(["-o", "json", "--utc"])
        .output()
        .await?;
    if !out.status.success() && out.status.code() != Some(1) {
        bail!(
            "logflux stats failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("logflux stats -o json")?;
    v["total"]
        .as_f64()
        .context("no total in logflux stats -o json")
}

/// `rules` rules over `rate` entries/s for `seconds`: the evaluator's CPU and memory, beside
/// `logflux tail -f` over the same entries in the same run.
async fn cpu_part(up: &Up, hook: &mut Hook, w: &Path, args: &Args) -> anyhow::Result<()> {
    let d = w.join("cpu");
    let window_s = args.seconds + 120;
    write(
        &d.join("rules"),
        "bench.yaml",
        &cpu_rules(&args.interval, window_s, args.rules),
    )?;
    let receivers = receivers(&d, &hook.url, "alertname, source", "10s")?;
    let load_before = load_avg();
    let (run, api) = if args.serve {
        let (c, url, token) = serve_rules(up, &d, &receivers).await?;
        (c, Some((url, token)))
    } else {
        (alerts_run(up, &d, &receivers, args.cache_mb).await?, None)
    };
    let evaluator = match (args.serve, args.cache_mb) {
        (true, _) => "`logflux serve --rules`".to_owned(),
        (false, None) => "`logflux alerts run`".to_owned(),
        (false, Some(mb)) => format!("`logflux alerts run --cache-mb {mb}`"),
    };
    let mut tail = tail_f(up).await?;
    // Both follow the stream once they show the marker entry.
    let mut s = up.connect().await?;
    send_line(
        &mut s,
        &json!({"payload": "bench ready", "source": "bench-ready", "entryType": 1, "logLevel": 6}),
    )
    .await?;
    until(
        &mut hook.changed,
        Duration::from_secs(120),
        "the Ready alert",
        || lock(&hook.firing).get("bench-ready").copied(),
    )
    .await
    .with_context(|| run.stderr())?;
    until(
        &mut tail.changed,
        Duration::from_secs(60),
        "the marker in the tail",
        || (lock(&tail.printed).lines > 0).then_some(()),
    )
    .await
    .with_context(|| tail.stderr())?;
    let tail_lines0 = lock(&tail.printed).lines;
    let bodies0 = *lock(&hook.bodies);
    let since_s = now_ms() / 1000 - 1;
    let (run_cpu0, tail_cpu0, up_cpu0) = (
        procs::cpu_seconds(run.pid),
        procs::cpu_seconds(tail.pid),
        procs::cpu_seconds(up.pid),
    );

    // The load: one connection, written every few milliseconds up to where the rate says.
    let started = Instant::now();
    let total = args.rate * args.seconds as usize;
    let mut sent = 0usize;
    let mut buf = String::with_capacity(1 << 16);
    while sent < total {
        let due = ((started.elapsed().as_secs_f64() * args.rate as f64) as usize).min(total);
        buf.clear();
        while sent < due {
            buf.push_str(&load_entry(sent).to_string());
            buf.push('\n');
            sent += 1;
        }
        s.write_all(buf.as_bytes()).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let load_secs = started.elapsed().as_secs_f64();
    flush(s).await?;
    let flushed_after = started.elapsed().as_secs_f64() - load_secs;
    // Both have seen every entry: the tail printed it, the evaluator's Total counts it.
    let state = d.join("state").join("alerts-state.json");
    let tail_all = until(
        &mut tail.changed,
        Duration::from_secs(120),
        "the tail printing every entry",
        || (lock(&tail.printed).lines - tail_lines0 >= sent as u64).then_some(()),
    )
    .await;
    let caught_up = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    let counted = loop {
        let c = total_in_state(&state).unwrap_or(0.0);
        if c >= sent as f64 || Instant::now() > deadline {
            break c;
        }
        // The state file is all there is to watch; it is written once a second.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (run_cpu, tail_cpu, up_cpu) = (
        procs::cpu_seconds(run.pid) - run_cpu0,
        procs::cpu_seconds(tail.pid) - tail_cpu0,
        procs::cpu_seconds(up.pid) - up_cpu0,
    );
    let (run_rss, tail_rss) = (procs::peak_rss_mib(run.pid), procs::peak_rss_mib(tail.pid));
    let tail_seen = lock(&tail.printed).lines - tail_lines0;
    let notifications = *lock(&hook.bodies) - bodies0;
    let stored = stored(up, since_s).await?;
    let load_after = load_avg();
    let healthy = match &api {
        Some((url, token)) => Some(health(url, token).await?),
        None => None,
    };

    println!(
        "### {} rules (groups every {}) over {} entries/s for {} s, beside `logflux tail -f` over the same stream\n",
        args.rules, args.interval, args.rate, args.seconds
    );
    println!(
        "Load average before / after: {load_before} / {load_after}. CPU is user + system time of each process from the first load entry until it had seen the last (everything was in at {caught_up:.1} s).\n"
    );
    println!(
        "| figure | {evaluator}, {} rules | `logflux tail -f`, no rules |",
        args.rules
    );
    println!("|---|---|---|");
    println!(
        "| entries sent over the agent's socket | {sent} in {load_secs:.1} s ({:.0}/s); the agent's flush answered {flushed_after:.2} s after; **{stored:.0} stored** (`logflux stats`) | |",
        sent as f64 / load_secs
    );
    println!(
        "| entries seen | {counted:.0} (its `Total` rule's count){} | {tail_seen} printed{} |",
        if counted >= sent as f64 {
            ""
        } else {
            " **short**"
        },
        if tail_all.is_ok() { "" } else { " **short**" },
    );
    println!("| CPU time | {run_cpu:.2} s | {tail_cpu:.2} s |");
    println!(
        "| share of one core over the load's {load_secs:.0} s | **{:.1} %** | {:.1} % |",
        run_cpu / load_secs * 100.0,
        tail_cpu / load_secs * 100.0
    );
    let per = |cpu: f64| cpu / (sent as f64 / 10_000.0) * 1000.0;
    println!(
        "| CPU per 10 000 entries | {:.1} ms | {:.1} ms |",
        per(run_cpu),
        per(tail_cpu)
    );
    println!(
        "| ratio to `tail -f` | **{:.2}×** | 1 |",
        run_cpu / tail_cpu.max(1e-9)
    );
    println!("| peak RSS | {run_rss:.0} MiB | {tail_rss:.0} MiB |");
    println!("| webhook notifications during the load | {notifications} | |");
    if let Some((ok, bad)) = &healthy {
        println!(
            "| rules healthy after the load (`/api/v1/rules`) | {ok} of {}{} | |",
            args.rules,
            if bad.is_empty() {
                String::new()
            } else {
                format!(": **{}**", bad.join("; "))
            }
        );
    }
    println!(
        "| `logflux up` (server and agent, one process) CPU meanwhile | {up_cpu:.2} s ({:.1} % of one core) | |",
        up_cpu / load_secs * 100.0
    );
    println!();
    drop(run);
    drop(tail);
    Ok(())
}
