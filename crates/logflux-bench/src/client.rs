//! Client scenario: `logflux search` over a million stored entries — time from enter to the
//! first and to the last result, decrypted entries per second per core — beside the same
//! search done with `zstdcat | grep` over the same entries kept as plaintext, in the same run;
//! then `logflux serve` (Loki's API) on the same data: a `count_over_time by level` metric
//! query (cold and warm cache) and a needle line filter, beside `logflux stats` and
//! `logflux search`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey, TokenSet, keyfile, wrap_dek};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::{Entry, EntryView, Level};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use crate::procs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Entries stored.
    #[arg(long, default_value_t = 1_000_000)]
    entries: usize,
    /// Entries per sealed agent batch (record).
    #[arg(long, default_value_t = 500)]
    entries_per_record: usize,
    /// One entry in this many carries the word searched for.
    #[arg(long, default_value_t = 1000)]
    needle_every: usize,
    /// Runs of each search (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Work directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `logflux` binary to search with (default: the one beside this program): a build
    /// kept from before a change, measured on the same stored records.
    #[arg(long)]
    logflux_bin: Option<PathBuf>,
    /// Searches with this `logflux` too, alternating run by run with the other, and prints
    /// both (before/after pairs from one run on a noisy machine).
    #[arg(long)]
    compare_bin: Option<PathBuf>,
    /// Only the searches: not `logflux serve`'s figures.
    #[arg(long)]
    search_only: bool,
}

/// ~200-byte access-log entries; every `needle_every`-th carries the word `needle`.
fn entry(i: usize, needle_every: usize) -> Entry {
    let x = (i as u64).wrapping_mul(6_364_136_223_846_793_005);
    let mut e = Entry::new(
        1_763_675_346_545_000_000 + i as i64 * 1_000_000,
        [
            Level::Info,
            Level::Info,
            Level::Info,
            Level::Warning,
            Level::Error,
        ][(x >> 33) as usize % 5],
        "checkout-service",
        &format!(
            "GET /api/v1/orders/{} completed in {}ms user=u{} trace={:016x} status={}{}",
            x % 100_000,
            x % 250,
            x % 1013,
            x.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            [200, 201, 404, 500][(x >> 40) as usize % 4],
            if i % needle_every == needle_every / 2 {
                " needle"
            } else {
                ""
            }
        ),
    );
    e.metadata.insert("host", format!("web-{}", x % 8));
    e
}

/// What one timed run of a command printed and took.
#[derive(Debug, Clone, Copy)]
struct Run {
    first: Duration,
    last: Duration,
    lines: usize,
    cpu: f64,
    rss_mib: f64,
}

/// Runs `cmd`, timing the first and the last byte of its output.
async fn timed(mut cmd: tokio::process::Command) -> anyhow::Result<Run> {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("pid")?;
    let mut out = child.stdout.take().context("stdout")?;
    let mut buf = vec![0u8; 1 << 20];
    let mut first = None;
    let mut lines = 0;
    let mut rss: f64 = 0.0;
    let mut sampled = Instant::now();
    loop {
        let n = out.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        first.get_or_insert_with(|| started.elapsed());
        lines += memchr_count(&buf[..n]);
        if sampled.elapsed() > Duration::from_millis(50) {
            rss = rss.max(procs::peak_rss_mib(pid));
            sampled = Instant::now();
        }
    }
    let last = started.elapsed();
    // Exited but not yet reaped: the kernel still has its CPU times.
    rss = rss.max(procs::peak_rss_mib(pid));
    let cpu = procs::cpu_seconds(pid);
    let status = child.wait().await?;
    if !status.success() && status.code() != Some(1) {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(Run {
        first: first.unwrap_or(last),
        last,
        lines,
        cpu,
        rss_mib: rss,
    })
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by_key(|r| r.last);
    runs[runs.len() / 2]
}

async fn runs(n: usize, make: impl Fn() -> tokio::process::Command) -> anyhow::Result<Run> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(timed(make()).await?);
    }
    Ok(median(v))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::io::Write::write_all(&mut f, text.as_bytes())?;
    Ok(())
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let server_bin = procs::sibling("logflux-server")?;
    let client_bin = match &args.logflux_bin {
        Some(b) => b.clone(),
        None => procs::sibling("logflux")?,
    };
    let work = match &args.dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => tempfile::tempdir()?,
    };
    let keys = work.path().join("keys");
    let st = std::process::Command::new(&client_bin)
        .args(["keys", "generate", "--dir"])
        .arg(&keys)
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("logflux keys generate failed");
    }
    let private = keyfile::read_private_key(&keys.join("private_key.pem"))?;
    let search = keyfile::read_search_key(&keys.join("search.key"))?;
    let data = work.path().join("server");
    std::fs::create_dir_all(&data)?;
    let admin = procs::init_tenant(&server_bin, &data)?;
    let server = procs::start_server(&server_bin, &data).await?;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let call = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await?;
        if !r.status().is_success() {
            bail!("{} {}", r.status(), r.text().await.unwrap_or_default());
        }
        Ok::<Value, anyhow::Error>(r.json().await.unwrap_or(Value::Null))
    };
    call(
        http.put(format!("{base}/v1/admin/public-key"))
            .bearer_auth(&admin)
            .json(&json!({"public_key_pem": private.public_key().to_pem()})),
    )
    .await?;
    let app = call(
        http.post(format!("{base}/v1/admin/applications"))
            .bearer_auth(&admin)
            .json(&json!({"name": "bench"})),
    )
    .await?;
    let app_id = app["id"].as_str().context("app id")?.to_owned();
    let key = call(
        http.post(format!("{base}/v1/admin/api-keys"))
            .bearer_auth(&admin)
            .json(&json!({"application": "bench", "name": "bench"})),
    )
    .await?;
    let api_key = key["api_key"].as_str().context("api key")?.to_owned();
    let me = call(http.get(format!("{base}/v1/me")).bearer_auth(&admin)).await?;
    let tenant = me["tenant_id"].as_str().context("tenant")?.to_owned();
    let dek = Dek::generate()?;
    let done = call(
        http.post(format!("{base}/v1/handshake/complete"))
            .bearer_auth(&api_key)
            .json(&json!({"encrypted_secret": B64.encode(wrap_dek(&private.public_key(), &dek)?)})),
    )
    .await?;
    let key_id = done["key_id"].as_str().context("key id")?.to_owned();

    // Load: sealed batches with their blind tokens, exactly as the agent makes them; the same
    // entries as plaintext NDJSON compressed with zstd for the baseline.
    println!(
        "loading {} entries ({} per record) …",
        args.entries, args.entries_per_record
    );
    let sealing = SealingKey::new(&dek);
    let tk = search.token_key(&app_id);
    let mut sealer = BatchSealer::new(1);
    let plain_path = work.path().join("plain.ndjson");
    let mut plain = std::io::BufWriter::new(std::fs::File::create(&plain_path)?);
    let records = args.entries.div_ceil(args.entries_per_record);
    let mut w = Writer::new("benchclientboundary0123456789abcd");
    let mut in_request = 0;
    for r in 0..records {
        let es: Vec<Entry> = (r * args.entries_per_record
            ..((r + 1) * args.entries_per_record).min(args.entries))
            .map(|i| entry(i, args.needle_every))
            .collect();
        for e in &es {
            let line = EntryView::from(e.clone()).to_json().to_string();
            std::io::Write::write_all(&mut plain, line.as_bytes())?;
            std::io::Write::write_all(&mut plain, b"\n")?;
        }
        let record_id = format!("bench{r:08}");
        let binding = RecordBinding {
            tenant: &tenant,
            application: &app_id,
            key_id: &key_id,
            record_id: &record_id,
        };
        let sealed = sealer.seal(&sealing, &binding, &es)?;
        let mut ts = TokenSet::new();
        for e in &es {
            ts.add_entry(e);
        }
        let tokens = ts
            .finish(&tk)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        w.part(
            &[
                ("X-LF-Payload-Type", "4"),
                ("X-LF-Key-ID", &key_id),
                ("X-LF-Nonce", &B64.encode(sealed.nonce)),
                ("X-LF-Record-ID", &record_id),
                ("X-LF-Count", &sealed.count.to_string()),
                (
                    "X-LF-Time-Range",
                    &format_time_range(sealed.time_range.0, sealed.time_range.1),
                ),
                ("X-LF-Search-Tokens", &tokens),
            ],
            &sealed.ciphertext,
        );
        in_request += 1;
        if in_request == 50 || r + 1 == records {
            let full = std::mem::replace(&mut w, Writer::new("benchclientboundary0123456789abcd"));
            call(
                http.post(format!("{base}/v1/ingest"))
                    .bearer_auth(&api_key)
                    .header("content-type", full.content_type())
                    .body(full.finish()),
            )
            .await?;
            in_request = 0;
        }
    }
    std::io::Write::flush(&mut plain)?;
    drop(plain);
    let zst = work.path().join("plain.ndjson.zst");
    let st = std::process::Command::new("zstd")
        .args(["-q", "-3", "-T1"])
        .arg(&plain_path)
        .arg("-o")
        .arg(&zst)
        .status()
        .context("zstd (apt install zstd)")?;
    if !st.success() {
        bail!("zstd failed");
    }
    let plain_mib = std::fs::metadata(&plain_path)?.len() as f64 / 1048576.0;
    let zst_mib = std::fs::metadata(&zst)?.len() as f64 / 1048576.0;
    std::fs::remove_file(&plain_path)?;

    let token_file = work.path().join("token");
    write_private(&token_file, &admin)?;
    let config = work.path().join("client.yaml");
    write_private(
        &config,
        &format!(
            "server: {base}\ntoken_file: {}\nprivate_key_file: {}\nsearch_key_file: {}\n",
            token_file.display(),
            keys.join("private_key.pem").display(),
            keys.join("search.key").display()
        ),
    )?;
    let logflux = |args: &[&str]| {
        let mut c = tokio::process::Command::new(&client_bin);
        c.arg("--config").arg(&config).args(args);
        c
    };
    let shell = |script: String| {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(script);
        c
    };
    let needles = (0..args.entries)
        .filter(|i| i % args.needle_every == args.needle_every / 2)
        .count();

    // Warm the server's footer cache and the page cache once, for both sides.
    timed(logflux(&[
        "search", "needle", "--limit", "0", "--format", "ndjson",
    ]))
    .await?;
    timed(shell(format!("zstdcat {} | grep -w needle", zst.display()))).await?;

    let word = runs(args.runs, || {
        logflux(&["search", "needle", "--limit", "0", "--format", "ndjson"])
    })
    .await?;
    let word_base = runs(args.runs, || {
        shell(format!("zstdcat {} | grep -w needle", zst.display()))
    })
    .await?;
    let all = runs(args.runs, || {
        logflux(&[
            "search", "--limit", "0", "--order", "oldest", "--format", "ndjson",
        ])
    })
    .await?;
    let all_base = runs(args.runs, || shell(format!("zstdcat {}", zst.display()))).await?;
    if word.lines != needles || word_base.lines != needles {
        bail!(
            "the word search found {} (logflux) and {} (grep) entries, expected {needles}",
            word.lines,
            word_base.lines
        );
    }
    if all.lines != args.entries || all_base.lines != args.entries {
        bail!(
            "the full listing gave {} (logflux) and {} (zstdcat) entries, expected {}",
            all.lines,
            all_base.lines,
            args.entries
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "\n{} entries ({plain_mib:.0} MiB as NDJSON, {zst_mib:.0} MiB zstd -3; {records} sealed records) · {cores} cores · median of {} runs, warm caches\n",
        args.entries, args.runs
    );
    println!(
        "| search | logflux: first result | logflux: last result | `zstdcat \\| grep`: first | `zstdcat \\| grep`: last | last-result ratio |"
    );
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, a: &Run, b: &Run| {
        println!(
            "| {name} | {} | {} | {} | {} | {:.2}× |",
            procs::ms(a.first),
            procs::ms(a.last),
            procs::ms(b.first),
            procs::ms(b.last),
            a.last.as_secs_f64() / b.last.as_secs_f64()
        );
    };
    row(
        &format!("one word, {needles} matches (`logflux search needle`)"),
        &word,
        &word_base,
    );
    row(
        &format!(
            "everything, {} entries (`logflux search --limit 0`)",
            args.entries
        ),
        &all,
        &all_base,
    );
    println!();
    println!("| client, full listing | value |");
    println!("|---|---|");
    println!(
        "| decrypted, filtered and printed entries per second (wall) | {:.0} |",
        args.entries as f64 / all.last.as_secs_f64()
    );
    println!(
        "| client CPU time | {:.2} s ({:.2} cores busy) |",
        all.cpu,
        all.cpu / all.last.as_secs_f64()
    );
    println!(
        "| **decrypted entries per second per core** (entries ÷ client CPU seconds) | **{:.0}** |",
        args.entries as f64 / all.cpu.max(1e-9)
    );
    println!("| client peak RSS | {:.0} MiB |", all.rss_mib);
    println!(
        "| word search: client CPU time / peak RSS | {:.2} s / {:.0} MiB |",
        word.cpu, word.rss_mib
    );
    if let Some(other) = &args.compare_bin {
        compare(
            other,
            &client_bin,
            &config,
            &zst,
            args.runs,
            args.entries,
            needles,
        )
        .await?;
    }
    if args.search_only {
        drop(server);
        return Ok(());
    }
    let mut live = Live {
        http: &http,
        base: &base,
        api_key: &api_key,
        sealing: &sealing,
        sealer: &mut sealer,
        tenant: &tenant,
        app_id: &app_id,
        key_id: &key_id,
        tk: &tk,
    };
    serve_figures(
        &client_bin,
        &config,
        work.path(),
        &args,
        needles,
        &word,
        &mut live,
    )
    .await?;
    drop(server);
    Ok(())
}

/// `--compare-bin`: the same searches with two `logflux` binaries, run after run in turn
/// (before, after, after, before, …) beside `zstdcat`, each pair printed.
async fn compare(
    before: &Path,
    after: &Path,
    config: &Path,
    zst: &Path,
    pairs: usize,
    entries: usize,
    needles: usize,
) -> anyhow::Result<()> {
    let search = |bin: &Path, word: bool| {
        let mut c = tokio::process::Command::new(bin);
        c.arg("--config").arg(config).args(if word {
            &["search", "needle", "--limit", "0", "--format", "ndjson"][..]
        } else {
            &[
                "search", "--limit", "0", "--order", "oldest", "--format", "ndjson",
            ][..]
        });
        c
    };
    let shell = |script: String| {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(script);
        c
    };
    println!(
        "\nSame run, `logflux` before = {}, after = {}, alternated (before first in odd pairs, after first in even ones):\n",
        before.display(),
        after.display()
    );
    println!(
        "| pair | full listing before / `zstdcat` | after / `zstdcat` | client CPU before → after | entries/s per core before → after | cores busy before → after | peak RSS before → after | word search before / after / `zstdcat \\| grep` |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for pair in 0..pairs {
        let order: [&Path; 2] = if pair % 2 == 0 {
            [before, after]
        } else {
            [after, before]
        };
        let mut all = Vec::new();
        let mut word = Vec::new();
        for bin in order {
            let a = timed(search(bin, false)).await?;
            let w = timed(search(bin, true)).await?;
            if a.lines != entries || w.lines != needles {
                bail!(
                    "{}: {} entries listed and {} found, expected {entries} and {needles}",
                    bin.display(),
                    a.lines,
                    w.lines
                );
            }
            all.push(a);
            word.push(w);
        }
        if pair % 2 == 1 {
            all.reverse();
            word.reverse();
        }
        let base = timed(shell(format!("zstdcat {}", zst.display()))).await?;
        let grep = timed(shell(format!("zstdcat {} | grep -w needle", zst.display()))).await?;
        let ratio = |r: &Run, b: &Run| r.last.as_secs_f64() / b.last.as_secs_f64();
        println!(
            "| {} | {} / {} = **{:.2}×** | {} / {} = **{:.2}×** | {:.2} s → {:.2} s | {:.0} → {:.0} | {:.2} → {:.2} | {:.0} → {:.0} MiB | {} / {} / {} |",
            pair + 1,
            procs::ms(all[0].last),
            procs::ms(base.last),
            ratio(&all[0], &base),
            procs::ms(all[1].last),
            procs::ms(base.last),
            ratio(&all[1], &base),
            all[0].cpu,
            all[1].cpu,
            entries as f64 / all[0].cpu.max(1e-9),
            entries as f64 / all[1].cpu.max(1e-9),
            all[0].cpu / all[0].last.as_secs_f64(),
            all[1].cpu / all[1].last.as_secs_f64(),
            all[0].rss_mib,
            all[1].rss_mib,
            procs::ms(word[0].last),
            procs::ms(word[1].last),
            procs::ms(grep.last),
        );
    }
    Ok(())
}

/// What sending one more sealed record takes (for the tail latency).
struct Live<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    api_key: &'a str,
    sealing: &'a SealingKey,
    sealer: &'a mut BatchSealer,
    tenant: &'a str,
    app_id: &'a str,
    key_id: &'a str,
    tk: &'a logflux_crypto::TokenKey,
}

impl Live<'_> {
    /// Seals `entries` into one record (with their blind tokens) and ingests it.
    async fn send(&mut self, record_id: &str, entries: &[Entry]) -> anyhow::Result<()> {
        let binding = RecordBinding {
            tenant: self.tenant,
            application: self.app_id,
            key_id: self.key_id,
            record_id,
        };
        let sealed = self.sealer.seal(self.sealing, &binding, entries)?;
        let mut ts = TokenSet::new();
        for e in entries {
            ts.add_entry(e);
        }
        let tokens = ts
            .finish(self.tk)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut w = Writer::new("benchclientboundary0123456789abcd");
        w.part(
            &[
                ("X-LF-Payload-Type", "4"),
                ("X-LF-Key-ID", self.key_id),
                ("X-LF-Nonce", &B64.encode(sealed.nonce)),
                ("X-LF-Record-ID", record_id),
                ("X-LF-Count", &sealed.count.to_string()),
                (
                    "X-LF-Time-Range",
                    &format_time_range(sealed.time_range.0, sealed.time_range.1),
                ),
                ("X-LF-Search-Tokens", &tokens),
            ],
            &sealed.ciphertext,
        );
        let r = self
            .http
            .post(format!("{}/v1/ingest", self.base))
            .bearer_auth(self.api_key)
            .header("content-type", w.content_type())
            .body(w.finish())
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("ingest: {}", r.status());
        }
        Ok(())
    }
}

/// Reads one server WebSocket frame: (opcode, payload).
async fn ws_frame(s: &mut tokio::net::TcpStream) -> anyhow::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).await?;
    let mut len = u64::from(h[1] & 0x7f);
    if len == 126 {
        let mut b = [0u8; 2];
        s.read_exact(&mut b).await?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        s.read_exact(&mut b).await?;
        len = u64::from_be_bytes(b);
    }
    let mut p = vec![0u8; usize::try_from(len)?];
    s.read_exact(&mut p).await?;
    Ok((h[0] & 0x0f, p))
}

/// Time from sending an entry (sealed record to the server's ingest API) to its message on a
/// WebSocket tail of `logflux serve`, `n` times.
async fn tail_latencies(
    url: &str,
    token: &str,
    live: &mut Live<'_>,
    n: usize,
) -> anyhow::Result<Vec<Duration>> {
    use tokio::io::AsyncWriteExt as _;
    let u = reqwest::Url::parse_with_params(
        &format!("{url}/loki/api/v1/tail"),
        &[("query", r#"{app="bench"} |= "tailprobe""#), ("limit", "1")],
    )?;
    let host = format!(
        "{}:{}",
        u.host_str().context("host")?,
        u.port().context("port")?
    );
    let mut s = tokio::net::TcpStream::connect(&host).await?;
    let req = format!(
        "GET {}?{} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        u.path(),
        u.query().unwrap_or_default(),
    );
    s.write_all(req.as_bytes()).await?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        head.push(b[0]);
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        bail!("tail: {}", String::from_utf8_lossy(&head));
    }
    // Let the session open the server's live stream before the first entry is sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = Vec::new();
    for i in 0..n {
        let mut e = Entry::new(
            logflux_proto::timefmt::now_ns(),
            Level::Info,
            "checkout-service",
            &format!("tailprobe {i}"),
        );
        e.metadata.insert("host", "web-0");
        let started = Instant::now();
        live.send(&format!("tail{i:06}"), &[e]).await?;
        loop {
            let (op, p) = tokio::time::timeout(Duration::from_secs(30), ws_frame(&mut s))
                .await
                .context("no tail message within 30 s")??;
            if op == 1 && String::from_utf8_lossy(&p).contains(&format!("tailprobe {i}\"")) {
                break;
            }
            if op == 8 {
                bail!("the tail closed: {}", String::from_utf8_lossy(&p));
            }
        }
        out.push(started.elapsed());
    }
    Ok(out)
}

/// One timed request to `logflux serve`: wall time to the whole answer, and the answer.
async fn timed_get(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    params: &[(&str, String)],
) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let r = http
        .get(url)
        .bearer_auth(token)
        .query(params)
        .send()
        .await?;
    let status = r.status();
    let body = r.bytes().await?;
    let took = started.elapsed();
    if !status.is_success() {
        bail!("{url}: {status}: {}", String::from_utf8_lossy(&body));
    }
    Ok((took, serde_json::from_slice(&body)?))
}

/// `logflux serve` over the same records: figures beside `logflux stats` and `search`.
async fn serve_figures(
    client_bin: &Path,
    config: &Path,
    work: &Path,
    args: &Args,
    needles: usize,
    word: &Run,
    live: &mut Live<'_>,
) -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt as _;
    const CACHE_MB: u64 = 2048;
    let token_file = work.join("serve.token");
    let mut child = tokio::process::Command::new(client_bin)
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0", "--cache-mb"])
        .arg(CACHE_MB.to_string())
        .arg("--token-file")
        .arg(&token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().context("pid")?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut url = None;
    while let Some(l) = lines.next_line().await? {
        if let Some(rest) = l.strip_prefix("serve   ") {
            url = rest.split_whitespace().next().map(str::to_owned);
        }
        if l.starts_with("serving") {
            break;
        }
    }
    let url = url.context("logflux serve printed no URL")?;
    let token = std::fs::read_to_string(&token_file)?.trim().to_owned();
    let http = reqwest::Client::builder().no_proxy().build()?;
    let first_ns = entry(0, args.needle_every).timestamp_ns;
    let last_ns = entry(args.entries - 1, args.needle_every).timestamp_ns;
    let at = last_ns + 1_000_000_000;
    let range_s = (at - first_ns) / 1_000_000_000 + 2;
    let metric = [
        (
            "query",
            format!("sum by (level) (count_over_time({{app=\"bench\"}}[{range_s}s]))"),
        ),
        ("time", at.to_string()),
    ];
    let (cold, v) = timed_get(&http, &format!("{url}/loki/api/v1/query"), &token, &metric).await?;
    let counted: f64 = v["data"]["result"]
        .as_array()
        .context("a vector")?
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .sum();
    if counted as usize != args.entries {
        bail!("serve counted {counted} entries, expected {}", args.entries);
    }
    let mut warm = Vec::new();
    for _ in 0..args.runs {
        warm.push(
            timed_get(&http, &format!("{url}/loki/api/v1/query"), &token, &metric)
                .await?
                .0,
        );
    }
    warm.sort();
    let warm = warm[warm.len() / 2];
    // Grafana's log volume query as its Loki data source sends it (a range query, about 250
    // points over the range; `$__auto` is the step), warm.
    let step_s = (range_s / 250).max(1);
    // Windows of one step each, from the start to the last step at or after `at`: every
    // entry is in exactly one (Grafana aligns its range to the step the same way).
    let volume_start = first_ns - 1_000_000_000;
    let step_ns = step_s * 1_000_000_000;
    let volume_end = volume_start + (at - volume_start + step_ns - 1) / step_ns * step_ns;
    let volume = [
        (
            "query",
            "sum by (level, detected_level) (count_over_time({app=\"bench\"} | drop __error__ [$__auto]))".to_owned(),
        ),
        ("start", volume_start.to_string()),
        ("end", volume_end.to_string()),
        ("step", format!("{step_s}s")),
    ];
    let mut volume_runs = Vec::new();
    for _ in 0..args.runs {
        let (t, v) = timed_get(
            &http,
            &format!("{url}/loki/api/v1/query_range"),
            &token,
            &volume,
        )
        .await?;
        let counted: f64 = v["data"]["result"]
            .as_array()
            .context("a matrix")?
            .iter()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p[1].as_str()?.parse::<f64>().ok())
            .sum();
        if counted as usize != args.entries {
            bail!(
                "serve's log volume counted {counted} entries, expected {}",
                args.entries
            );
        }
        volume_runs.push(t);
    }
    volume_runs.sort();
    let volume_t = volume_runs[volume_runs.len() / 2];
    let rss = procs::peak_rss_mib(pid);
    let needle = [
        ("query", "{app=\"bench\"} |= \"needle\"".to_owned()),
        ("start", (first_ns - 1_000_000_000).to_string()),
        ("end", at.to_string()),
        ("limit", "5000".to_owned()),
    ];
    let mut needle_runs = Vec::new();
    let mut found = 0;
    for _ in 0..args.runs {
        let (t, v) = timed_get(
            &http,
            &format!("{url}/loki/api/v1/query_range"),
            &token,
            &needle,
        )
        .await?;
        found = v["data"]["result"]
            .as_array()
            .context("streams")?
            .iter()
            .map(|s| s["values"].as_array().map_or(0, Vec::len))
            .sum::<usize>();
        needle_runs.push(t);
    }
    if found != needles {
        bail!("serve found {found} needle entries, expected {needles}");
    }
    needle_runs.sort();
    let needle_t = needle_runs[needle_runs.len() / 2];
    // `logflux stats` over the same range: the search side's counts by level.
    let since = format!("@{}", first_ns / 1_000_000_000 - 1);
    let until = format!("@{}", at / 1_000_000_000);
    let stats = runs(args.runs, || {
        let mut c = tokio::process::Command::new(client_bin);
        c.arg("--config").arg(config).args([
            "stats", "--since", &since, "--until", &until, "-o", "json", "--utc",
        ]);
        c
    })
    .await?;
    println!();
    println!(
        "logflux serve (--cache-mb {CACHE_MB}), same records, same run; HTTP wall time to the whole answer:\n"
    );
    println!("| query | logflux serve | beside it |");
    println!("|---|---|---|");
    println!(
        "| `sum by (level) (count_over_time({{app=\"bench\"}}[{range_s}s]))`, {} entries, cold cache (decrypts every record) | {} | `logflux stats` (counts by level, same range): {} |",
        args.entries,
        procs::ms(cold),
        procs::ms(stats.last)
    );
    println!(
        "| the same, warm cache (median of {}) | **{}** | |",
        args.runs,
        procs::ms(warm)
    );
    println!(
        "| Grafana's log volume, `sum by (level, detected_level) (count_over_time({{app=\"bench\"}} | drop __error__ [$__auto]))`, step {step_s}s, warm (median of {}) | **{}** | |",
        args.runs,
        procs::ms(volume_t)
    );
    println!(
        "| `{{app=\"bench\"}} |= \"needle\"`, {needles} matches (no blind token: `|=` alone cannot prune), warm | {} | `logflux search needle` (pruned by the word's token): {} |",
        procs::ms(needle_t),
        procs::ms(word.last)
    );
    println!("| serve peak RSS after the cold query | {rss:.0} MiB | |");
    let mut lat = tail_latencies(&url, &token, live, 20).await?;
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "| WebSocket tail: entry sent (sealed record to the ingest API) → its tail message, {} entries | p50 {} · p99 {} | |",
        lat.len(),
        procs::ms(p(0.5)),
        procs::ms(p(0.99))
    );
    Ok(())
}
