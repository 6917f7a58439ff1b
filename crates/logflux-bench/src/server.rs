//! Server scenarios: ingest (agent and SDK formats), live-tail latency, needle search, full scan.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::StreamExt as _;
use logflux_crypto::{
    BatchSealer, Dek, RecordBinding, SealingKey, SearchKey, TokenSet, seal_sdk_part, wrap_dek,
};
use logflux_proto::multipart::{Writer, format_time_range};
use logflux_proto::{Entry, Level};
use serde_json::{Value, json};

use crate::procs::{self, ServerProc};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds of sustained ingest.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Records (sealed agent batches) per ingest request.
    #[arg(long, default_value_t = 10)]
    parts_per_request: usize,
    /// Entries (~200 bytes each) per sealed batch.
    #[arg(long, default_value_t = 500)]
    entries_per_batch: usize,
    /// Records stored for the needle and scan scenarios.
    #[arg(long, default_value_t = 10_000)]
    needle_records: usize,
    /// Entries each of those records stands for.
    #[arg(long, default_value_t = 1_000)]
    needle_entries_per_record: usize,
    /// Needle queries to time.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// SDK entries per ingest request (the SDKs batch entries into one multipart request).
    #[arg(long, default_value_t = 100)]
    sdk_entries_per_request: usize,
    /// SDK parts each with a nonce of its own (client, request, part), so that no part repeats
    /// an earlier one and every part is stored; without it the 4 096 sealed templates repeat
    /// and the server answers most parts as duplicates (the same key id, nonce and body).
    /// The bodies then no longer open with their nonces: for ingest figures only.
    #[arg(long)]
    sdk_unique: bool,
    /// Entries sent one at a time to time the live tail.
    #[arg(long, default_value_t = 200)]
    tail_samples: usize,
    /// Data directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The server binary to measure (default: the `logflux-server` next to this binary), to
    /// compare two builds with the same benchmark.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Scenarios to run (comma-separated: agent, sdk, tail, scan); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Ask query responses as NDJSON instead of the binary record stream.
    #[arg(long)]
    ndjson: bool,
    /// Timed full scans; the median is reported (one by default; more to profile the scan or
    /// to see its spread on a busy machine).
    #[arg(long, default_value_t = 1)]
    scans: usize,
}

struct Tenant {
    proc: ServerProc,
    http: reqwest::Client,
    admin: String,
    api_key: String,
    key_id: String,
    app_id: String,
    dek: Dek,
}

async fn setup(bin: &std::path::Path, data: &std::path::Path) -> anyhow::Result<Tenant> {
    let admin = procs::init_tenant(bin, data)?;
    let proc = procs::start_server_unlimited(bin, data).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let base = &proc.base;
    let p = procs::provision(&http, base, &admin, "bench", false).await?;
    let (sk, api_key) = (p.key, p.api_key);
    let dek = Dek::generate()?;
    let r = http
        .post(format!("{base}/v1/handshake/complete"))
        .bearer_auth(&api_key)
        .json(&json!({"encrypted_secret": B64.encode(wrap_dek(&sk.public_key(), &dek)?)}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "handshake: {} {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let done: Value = r.json().await?;
    Ok(Tenant {
        http,
        admin,
        api_key,
        key_id: done["key_id"].as_str().context("key id")?.to_owned(),
        app_id: p.app_id,
        dek,
        proc,
    })
}

/// A sealed batch ready to send: its ciphertext, nonce, count, time range and tokens.
#[derive(Clone)]
struct Template {
    /// An SDK part (payload type 1: one entry, gzip + AES-GCM) rather than an agent batch.
    sdk: bool,
    body: bytes::Bytes,
    nonce: String,
    count: String,
    range: String,
    tokens: String,
    /// An SDK part's `X-LF-Timestamp`: the entry's time, with milliseconds, as the JavaScript
    /// SDK stamps it (empty on agent parts).
    timestamp: String,
}

/// Realistic ~200-byte access-log entries.
fn entries(n: usize, seed: u64) -> Vec<Entry> {
    (0..n as u64)
        .map(|i| {
            let x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
            let mut e = Entry::new(
                1_763_675_346_545_000_000 + (seed * 100_000 + i) as i64 * 1_000_000,
                [
                    Level::Info,
                    Level::Info,
                    Level::Info,
                    Level::Warning,
                    Level::Error,
                ][(x % 5) as usize],
                "checkout-service",
                &format!(
                    "GET /api/v1/orders/{} completed in {}ms user=u{} trace={:016x} status={}",
                    x % 100_000,
                    x % 250,
                    x % 1013,
                    x.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    [200, 201, 404, 500][(x % 4) as usize]
                ),
            );
            e.metadata.insert("host", format!("web-{}", x % 8));
            e
        })
        .collect()
}

fn templates(
    t: &Tenant,
    n: usize,
    entries_per_batch: usize,
) -> anyhow::Result<(Vec<Template>, usize)> {
    let key = SealingKey::new(&t.dek);
    let tk = SearchKey::generate()?.token_key(&t.app_id);
    let mut sealer = BatchSealer::new(1);
    let mut plain = 0;
    let mut out = Vec::new();
    for i in 0..n {
        let es = entries(entries_per_batch, i as u64);
        plain = es.iter().map(Entry::approx_size).sum::<usize>();
        let binding = RecordBinding {
            tenant: "t",
            application: &t.app_id,
            key_id: &t.key_id,
            record_id: "template",
        };
        let s = sealer.seal(&key, &binding, &es)?;
        let mut ts = TokenSet::new();
        for e in &es {
            ts.add_entry(e);
        }
        out.push(Template {
            sdk: false,
            body: s.ciphertext.into(),
            nonce: B64.encode(s.nonce),
            count: s.count.to_string(),
            range: format_time_range(s.time_range.0, s.time_range.1),
            tokens: ts
                .finish(&tk)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            timestamp: String::new(),
        });
    }
    Ok((out, plain))
}

/// Entries sealed one by one as the v3 SDKs seal them (JSON, gzip, AES-256-GCM).
fn sdk_templates(t: &Tenant, n: usize) -> anyhow::Result<(Vec<Template>, usize)> {
    let key = SealingKey::new(&t.dek);
    let mut plain = 0;
    let mut out = Vec::new();
    for (i, e) in entries(n, 7).iter().enumerate() {
        let json = json!({
            "payload": e.payload, "source": e.source, "logLevel": e.level as u8,
            "entryType": 1, "timestamp": logflux_proto::timefmt::format_rfc3339(e.timestamp_ns),
            "metadata": e.metadata, "seq": i,
        })
        .to_string();
        plain += json.len();
        let (nonce, body) = seal_sdk_part(&key, json.as_bytes(), true)?;
        out.push(Template {
            sdk: true,
            body: body.into(),
            nonce: B64.encode(nonce),
            count: "1".into(),
            range: String::new(),
            tokens: String::new(),
            timestamp: logflux_proto::timefmt::format_rfc3339(e.timestamp_ns),
        });
    }
    Ok((out, plain / n.max(1)))
}

fn request_body(key_id: &str, parts: &[(String, &Template)], unique: bool) -> (String, Vec<u8>) {
    let mut w = Writer::new("benchboundary0123456789abcdef0123");
    // Unique parts are stamped with the send time, as the Java SDK stamps them (the server's
    // v2 record ids begin with a part's millisecond); repeated templates keep their own.
    let now_ms = logflux_proto::timefmt::now_ns() / 1_000_000 * 1_000_000;
    let sent_at = logflux_proto::timefmt::format_rfc3339(now_ms);
    for (id, t) in parts {
        if t.sdk {
            let nonce = if unique {
                // The part's id (`c{client}-s{seq}-p{part}`), distinct per part, in 12 bytes.
                let fnv = |seed: u64| {
                    id.bytes().fold(seed, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
                    })
                };
                let mut n = [0u8; 12];
                n[..8].copy_from_slice(&fnv(0xcbf2_9ce4_8422_2325).to_le_bytes());
                n[8..].copy_from_slice(&fnv(0x8422_2325_cbf2_9ce4).to_le_bytes()[..4]);
                B64.encode(n)
            } else {
                t.nonce.clone()
            };
            w.part(
                &[
                    ("X-LF-Entry-Type", "1"),
                    ("X-LF-Payload-Type", "1"),
                    (
                        "X-LF-Timestamp",
                        if unique { &sent_at } else { &t.timestamp },
                    ),
                    ("X-LF-Key-ID", key_id),
                    ("X-LF-Nonce", &nonce),
                ],
                &t.body,
            );
            continue;
        }
        w.part(
            &[
                ("X-LF-Payload-Type", "4"),
                ("X-LF-Key-ID", key_id),
                ("X-LF-Nonce", &t.nonce),
                ("X-LF-Record-ID", id),
                ("X-LF-Count", &t.count),
                ("X-LF-Time-Range", &t.range),
                ("X-LF-Search-Tokens", &t.tokens),
            ],
            &t.body,
        );
    }
    (w.content_type(), w.finish())
}

struct IngestResult {
    requests: usize,
    records: usize,
    entries: usize,
    wire_bytes: usize,
    plain_bytes: usize,
    latencies: Vec<Duration>,
    elapsed: Duration,
    /// Records the server answered as duplicates (already stored).
    duplicates: usize,
}

async fn ingest(
    t: &Tenant,
    templates: Arc<Vec<Template>>,
    plain_per_batch: usize,
    clients: usize,
    parts: usize,
    deadline: Duration,
    unique: bool,
) -> anyhow::Result<IngestResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, api_key, key_id, templates) = (
            t.http.clone(),
            t.proc.base.clone(),
            t.api_key.clone(),
            t.key_id.clone(),
            templates.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut records, mut entries, mut wire) = (0usize, 0usize, 0usize);
            let mut duplicates = 0usize;
            let mut seq = 0usize;
            while started.elapsed() < deadline {
                let chosen: Vec<(String, &Template)> = (0..parts)
                    .map(|p| {
                        (
                            format!("c{c}-s{seq}-p{p}"),
                            &templates[(seq * parts + p + c) % templates.len()],
                        )
                    })
                    .collect();
                let (ct, body) = request_body(&key_id, &chosen, unique);
                wire += body.len();
                let sent = Instant::now();
                let r = http
                    .post(format!("{base}/v1/ingest"))
                    .bearer_auth(&api_key)
                    .header("content-type", ct)
                    .body(body)
                    .send()
                    .await?;
                if r.status() != 202 {
                    bail!(
                        "ingest answered {}: {}",
                        r.status(),
                        r.text().await.unwrap_or_default()
                    );
                }
                let answer = r.bytes().await?;
                lat.push(sent.elapsed());
                duplicates += serde_json::from_slice::<Value>(&answer)?["duplicates"]
                    .as_u64()
                    .unwrap_or(0) as usize;
                records += parts;
                entries += chosen
                    .iter()
                    .map(|(_, t)| t.count.parse::<usize>().unwrap_or(0))
                    .sum::<usize>();
                seq += 1;
            }
            anyhow::Ok((lat, records, entries, wire, duplicates))
        }));
    }
    let mut res = IngestResult {
        requests: 0,
        records: 0,
        entries: 0,
        wire_bytes: 0,
        plain_bytes: 0,
        latencies: Vec::new(),
        elapsed: Duration::ZERO,
        duplicates: 0,
    };
    for task in tasks {
        let (lat, records, entries, wire, duplicates) = task.await??;
        res.duplicates += duplicates;
        res.requests += lat.len();
        res.latencies.extend(lat);
        res.records += records;
        res.entries += entries;
        res.wire_bytes += wire;
    }
    res.elapsed = started.elapsed();
    res.plain_bytes = res.records * plain_per_batch;
    res.latencies.sort();
    Ok(res)
}

/// Runs a query to the end (following cursors); returns (records, ciphertext bytes, entries, last end line).
/// Asks for the binary record stream (unless `ndjson`) and reads whichever form the server
/// answers with, as the client does: every body decoded (base64) or taken as it is (binary).
async fn query_all(
    t: &Tenant,
    body: Value,
    ndjson: bool,
) -> anyhow::Result<(usize, usize, usize, Value)> {
    // The reader runs in a task, as the `logflux` client's does: woken by the connection's
    // task on the same worker thread, not across threads to the one blocked in `main`.
    let url = format!("{}/v1/query", t.proc.base);
    tokio::spawn(read_query(
        t.http.clone(),
        url,
        t.admin.clone(),
        body,
        ndjson,
    ))
    .await?
}

async fn read_query(
    http: reqwest::Client,
    url: String,
    admin: String,
    body: Value,
    ndjson: bool,
) -> anyhow::Result<(usize, usize, usize, Value)> {
    let (mut records, mut bytes, mut entries) = (0, 0, 0);
    let mut cursor = Value::Null;
    let accept = if ndjson {
        logflux_proto::frames::NDJSON
    } else {
        logflux_proto::frames::CONTENT_TYPE
    };
    loop {
        let mut b = body.clone();
        b["cursor"] = cursor;
        let r = http
            .post(&url)
            .bearer_auth(&admin)
            .header("accept", accept)
            .json(&b)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("query answered {}", r.status());
        }
        let binary = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes() == logflux_proto::frames::CONTENT_TYPE.as_bytes());
        let mut ending = Ending::default();
        let mut count = |v: Value, body: usize| {
            if v["type"] == "record" {
                records += 1;
                bytes += body;
                entries += v["count"].as_u64().unwrap_or(0) as usize;
            } else {
                ending.message(v);
            }
        };
        let mut stream = r.bytes_stream();
        // A cut body: reported after an error message read before it, which says more.
        let mut cut = None;
        if binary {
            let mut d = logflux_proto::frames::Decoder::new(64 << 20);
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => d.push(&c),
                    Err(e) => {
                        cut = Some(e);
                        break;
                    }
                }
                while let Some(f) = d.next_frame()? {
                    let v: Value = serde_json::from_slice(&f.header)?;
                    count(v, f.body.map_or(0, |b| b.len()));
                }
            }
            if cut.is_none() {
                d.finish()?;
            }
        } else {
            let mut buf = Vec::new();
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => buf.extend_from_slice(&c),
                    Err(e) => {
                        cut = Some(e);
                        break;
                    }
                }
            }
            if cut.is_some() {
                // Only whole lines: the cut one is not a message.
                let whole = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                buf.truncate(whole);
            }
            for line in buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let v: Value = serde_json::from_slice(line)?;
                let len = v["body"]
                    .as_str()
                    .map_or(Ok(0), |b| B64.decode(b).map(|b| b.len()))?;
                count(v, len);
            }
        }
        let end = ending.end(cut.map(|e| e.to_string()))?;
        if end["cursor"].is_null() {
            return Ok((records, bytes, entries, end));
        }
        cursor = end["cursor"].clone();
    }
}

/// How a query page ends: only with its end line. An error message means the reply broke off
/// (it is cut next); other messages (none in a query reply today) are not counted.
#[derive(Default)]
struct Ending {
    end: Value,
    failed: Value,
}

impl Ending {
    /// Takes a message that is not a record.
    fn message(&mut self, v: Value) {
        match v["type"].as_str() {
            Some("end") => self.end = v,
            Some("error") => self.failed = v,
            _ => {}
        }
    }

    /// The end line, or why the page failed (`cut`: the body broke off, after `failed` if
    /// the server said why).
    fn end(self, cut: Option<String>) -> anyhow::Result<Value> {
        if !self.failed.is_null() {
            bail!("the query's reply broke off: {}", self.failed);
        }
        if let Some(e) = cut {
            bail!("the query's reply broke off: {e}");
        }
        if self.end.is_null() {
            bail!("the query's reply ended without its end line");
        }
        Ok(self.end)
    }
}

fn mb(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

/// Runs an ingest pass and prints its table (server CPU and peak RSS included).
async fn print_ingest(
    t: &Tenant,
    title: &str,
    dd: f64,
    pass: impl std::future::Future<Output = anyhow::Result<IngestResult>>,
) -> anyhow::Result<()> {
    let cpu0 = procs::cpu_seconds(t.proc.pid);
    let r = pass.await?;
    let cpu = procs::cpu_seconds(t.proc.pid) - cpu0;
    let rss = procs::peak_rss_mib(t.proc.pid);
    let wire = mb(r.wire_bytes, r.elapsed);
    println!("### {title}\n");
    println!("| figure | value |\n|---|---|");
    println!("| **baseline**: `dd bs=1M conv=fsync` to the data directory | {dd:.0} MB/s |");
    println!(
        "| ingest, bytes on the wire (sealed, compressed) | **{wire:.0} MB/s** ({:.2} of dd) |",
        wire / dd
    );
    println!(
        "| ingest, records | {:.0} records/s |",
        r.records as f64 / r.elapsed.as_secs_f64()
    );
    println!(
        "| ingest, entries those records hold | {:.0} entries/s ({:.0} MB/s of plaintext) |",
        r.entries as f64 / r.elapsed.as_secs_f64(),
        mb(r.plain_bytes, r.elapsed)
    );
    println!(
        "| acknowledgement latency p50 / p99 / max | {} / {} / {} |",
        procs::ms(procs::percentile(&r.latencies, 0.5)),
        procs::ms(procs::percentile(&r.latencies, 0.99)),
        procs::ms(*r.latencies.last().unwrap_or(&Duration::ZERO))
    );
    println!("| requests | {} |", r.requests);
    println!(
        "| records answered as duplicates (already stored) | {} of {} |",
        r.duplicates, r.records
    );
    println!(
        "| server CPU | {:.2} cores |",
        cpu / r.elapsed.as_secs_f64()
    );
    println!("| server peak RSS | {rss:.0} MiB |\n");
    Ok(())
}

/// Latency from sending one SDK entry to receiving its record on an open live-tail stream,
/// one entry at a time (so each sample is the whole path: ingest, commit, push).
async fn tail_latency(t: &Tenant, samples: usize) -> anyhow::Result<()> {
    let r = t
        .http
        .post(format!("{}/v1/tail", t.proc.base))
        .bearer_auth(&t.admin)
        .json(&json!({}))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("tail answered {}", r.status());
    }
    let mut stream = r.bytes_stream();
    let mut buf = String::new();
    // Reads lines until a record arrives (heartbeats and other lines are skipped).
    async fn next_record(
        stream: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
        buf: &mut String,
    ) -> anyhow::Result<()> {
        loop {
            while let Some(i) = buf.find('\n') {
                let line: Value = serde_json::from_str(&buf[..i])?;
                buf.drain(..=i);
                if line["type"] == "record" {
                    return Ok(());
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
                .await
                .context("the tail stream stalled for 30 s")?
                .context("the tail stream ended")??;
            buf.push_str(std::str::from_utf8(&chunk)?);
        }
    }
    let (tpl, _) = sdk_templates(t, samples.max(1))?;
    let mut ack = Vec::new();
    let mut seen = Vec::new();
    for tpl in &tpl {
        let (ct, body) = request_body(&t.key_id, &[(String::new(), tpl)], false);
        let sent = Instant::now();
        let r = t
            .http
            .post(format!("{}/v1/ingest", t.proc.base))
            .bearer_auth(&t.api_key)
            .header("content-type", ct)
            .body(body)
            .send()
            .await?;
        if r.status() != 202 {
            bail!("ingest answered {}", r.status());
        }
        r.bytes().await?;
        ack.push(sent.elapsed());
        next_record(&mut stream, &mut buf).await?;
        seen.push(sent.elapsed());
    }
    ack.sort();
    seen.sort();
    println!(
        "### Live tail ({} entries sent one at a time to a server with one tail stream open)\n",
        tpl.len()
    );
    println!("| figure | p50 | p99 | max |\n|---|---|---|---|");
    for (name, v) in [
        ("**baseline**: ingest request → acknowledged", &ack),
        ("ingest request → record line on the tail stream", &seen),
    ] {
        println!(
            "| {name} | {} | {} | {} |",
            procs::ms(procs::percentile(v, 0.5)),
            procs::ms(procs::percentile(v, 0.99)),
            procs::ms(*v.last().unwrap_or(&Duration::ZERO))
        );
    }
    println!();
    Ok(())
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => procs::sibling("logflux-server")?,
    };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix("logflux-bench-")
        .tempdir_in(&parent)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("## logflux-bench server\n");
    println!(
        "{cores} cores; data under {}; server {}\n",
        parent.display(),
        bin.display()
    );

    // Baseline: sequential write speed of the same disk.
    let dd = procs::dd_write_mb_s(work.path(), 1024)?;

    // Ingest, agent format: sealed batches with blind tokens.
    if wanted("agent") {
        let data = work.path().join("ingest");
        std::fs::create_dir_all(&data)?;
        let t = setup(&bin, &data).await?;
        let (tpl, plain_per_batch) = templates(&t, 32, args.entries_per_batch)?;
        print_ingest(
        &t,
        &format!(
            "Ingest, agent format ({} clients, {} sealed batches of {} entries per request, {} s)",
            args.clients, args.parts_per_request, args.entries_per_batch, args.seconds
        ),
        dd,
        ingest(
            &t,
            Arc::new(tpl),
            plain_per_batch,
            args.clients,
            args.parts_per_request,
            Duration::from_secs(args.seconds),
            false,
        ),
    )
    .await?;
        drop(t);
    }

    // Ingest, SDK format: one sealed entry per part, as the v3 SDKs send.
    if wanted("sdk") || wanted("tail") {
        let data = work.path().join("ingest-sdk");
        std::fs::create_dir_all(&data)?;
        let t = setup(&bin, &data).await?;
        if wanted("sdk") {
            let (tpl, plain_per_entry) = sdk_templates(&t, 4096)?;
            print_ingest(
                &t,
                &format!(
                    "Ingest, SDK format ({} clients, {} entries per request, {} s{})",
                    args.clients,
                    args.sdk_entries_per_request,
                    args.seconds,
                    if args.sdk_unique {
                        ", every part unique"
                    } else {
                        ""
                    }
                ),
                dd,
                ingest(
                    &t,
                    Arc::new(tpl),
                    plain_per_entry,
                    args.clients,
                    args.sdk_entries_per_request,
                    Duration::from_secs(args.seconds),
                    args.sdk_unique,
                ),
            )
            .await?;
        }

        // Live tail: one entry at a time, from the ingest request to its line on a tail stream.
        if wanted("tail") {
            tail_latency(&t, args.tail_samples).await?;
        }
        drop(t);
    }
    if !wanted("scan") {
        return Ok(());
    }

    // Needle and scan: N records standing for N × M entries, one carrying the needle token.
    let data = work.path().join("needle");
    std::fs::create_dir_all(&data)?;
    let mut t = setup(&bin, &data).await?;
    let body_len = args.needle_entries_per_record * 200 / 6;
    let needle = 0x4e45_4544_4c45_0001u64;
    let common: Vec<u64> = (0..2000u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        .collect();
    let loaded = Instant::now();
    let batch = 100;
    let mut sends = Vec::new();
    for chunk_start in (0..args.needle_records).step_by(batch) {
        let mut w = Writer::new("needleboundary0123456789abcdef01");
        for i in chunk_start..(chunk_start + batch).min(args.needle_records) {
            let mut tokens: Vec<u64> = (0..300)
                .map(|k| common[(i * 7 + k * 13) % common.len()])
                .collect();
            tokens.extend(
                // Never 0: that is the reserved token, which agent records may not carry.
                (0..100u64).map(|k| ((i as u64) << 20 | k).wrapping_mul(0xc2b2_ae3d_27d4_eb4f) | 1),
            );
            if i == args.needle_records * 7 / 10 {
                tokens.push(needle);
            }
            tokens.sort_unstable();
            tokens.dedup();
            let tokens: String = tokens
                .iter()
                .map(|t| format!("{t:016x}"))
                .collect::<Vec<_>>()
                .join(",");
            let body: Vec<u8> = (0..body_len)
                .map(|b| (b as u64).wrapping_mul(i as u64 + 0x9e37) as u8)
                .collect();
            let start = 1_763_675_346_000_000_000i64 + i as i64 * 1_000_000_000;
            let (id, count, range) = (
                format!("n{i}"),
                args.needle_entries_per_record.to_string(),
                format_time_range(start, start + 999_000_000),
            );
            w.part(
                &[
                    ("X-LF-Payload-Type", "4"),
                    ("X-LF-Key-ID", &t.key_id),
                    ("X-LF-Nonce", "AAECAwQFBgcICQoL"),
                    ("X-LF-Record-ID", &id),
                    ("X-LF-Count", &count),
                    ("X-LF-Time-Range", &range),
                    ("X-LF-Search-Tokens", &tokens),
                ],
                &body,
            );
        }
        let (http, base, key) = (t.http.clone(), t.proc.base.clone(), t.api_key.clone());
        let ct = w.content_type();
        let body = w.finish();
        sends.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/v1/ingest"))
                .bearer_auth(&key)
                .header("content-type", ct)
                .body(body)
                .send()
                .await?;
            if r.status() != 202 {
                bail!(
                    "needle load answered {} {}",
                    r.status(),
                    r.text().await.unwrap_or_default()
                );
            }
            anyhow::Ok(())
        }));
        if sends.len() >= args.clients {
            sends.remove(0).await??;
        }
    }
    for s in sends {
        s.await??;
    }
    let load_time = loaded.elapsed();
    let needle_q = json!({"tokens": [[format!("{needle:016x}")]], "limit": 100});
    let mut lat = Vec::new();
    let mut last_end = Value::Null;
    let mut needle_found = 0;
    for _ in 0..args.queries.max(1) {
        let started = Instant::now();
        let (n, _, _, end) = query_all(&t, needle_q.clone(), args.ndjson).await?;
        lat.push(started.elapsed());
        // One record carries the needle; a server with per-record filters (segment footer
        // v2) may add a few false positives (~0.4 % of the records it tests), which the
        // client filters out. The same every time: the filters are fixed.
        if n == 0 || (needle_found != 0 && n != needle_found) {
            bail!("the needle query found {n} records, expected 1 (and then the same again)");
        }
        needle_found = n;
        last_end = end;
    }
    let cold = lat[0];
    let mut warm: Vec<Duration> = lat[1..].to_vec();
    warm.sort();
    // Baseline: the segments read from the page cache (`cat segments > /dev/null`), after a
    // first read that puts them there, as the scan finds them.
    let segments = segment_files(&data)?;
    let cat = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = std::process::Command::new("cat")
            .args(&segments)
            .stdout(std::process::Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "cat of the segments failed");
        Ok(started.elapsed())
    };
    cat()?;
    let cat_time = cat()?;
    let segment_bytes: u64 = segments
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let scan_query = json!({"order": "oldest", "limit": 10000});
    // One scan to warm the footer cache, then the timed one.
    query_all(&t, scan_query.clone(), args.ndjson).await?;
    let mut runs = Vec::new();
    let (mut records, mut bytes, mut entries) = (0, 0, 0);
    for _ in 0..args.scans.max(1) {
        let cpu0 = procs::cpu_seconds(t.proc.pid);
        let started = Instant::now();
        (records, bytes, entries, _) = query_all(&t, scan_query.clone(), args.ndjson).await?;
        let scan = started.elapsed();
        runs.push((scan, procs::cpu_seconds(t.proc.pid) - cpu0));
    }
    runs.sort_by_key(|r| r.0);
    let (scan, scan_cpu) = runs[runs.len() / 2];
    if runs.len() > 1 {
        println!(
            "full scans: {} MB/s (slowest to fastest)\n",
            runs.iter()
                .rev()
                .map(|r| format!("{:.0}", mb(bytes, r.0)))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let total_entries = args.needle_records * args.needle_entries_per_record;
    println!(
        "### Needle search and full scan ({} records standing for {} entries)\n",
        args.needle_records, total_entries
    );
    println!("| figure | value |\n|---|---|");
    println!(
        "| load ({} MB of records with ~400 tokens each) | {:.1} s |",
        args.needle_records * body_len / 1_000_000,
        load_time.as_secs_f64()
    );
    println!(
        "| needle query (1 matching record), first (footers not cached) | {} |",
        procs::ms(cold)
    );
    println!(
        "| needle query, warm: p50 / p99 ({} queries) | **{} / {}** |",
        warm.len(),
        procs::ms(procs::percentile(&warm, 0.5)),
        procs::ms(procs::percentile(&warm, 0.99))
    );
    println!(
        "| needle query: segments scanned / pruned by the catalog's Bloom filters | {} / {} |",
        last_end["segments_scanned"], last_end["segments_pruned"]
    );
    println!(
        "| needle query: records returned (1 carries the needle; the rest are filter false positives) | {needle_found} |"
    );
    println!(
        "| full scan: records, ciphertext | {records} records, {:.0} MB in {:.2} s |",
        bytes as f64 / 1e6,
        scan.as_secs_f64()
    );
    println!(
        "| full scan throughput | **{:.0} MB/s** of ciphertext, {:.0} records/s, {:.2} M entries/s |",
        mb(bytes, scan),
        records as f64 / scan.as_secs_f64(),
        entries as f64 / 1e6 / scan.as_secs_f64()
    );
    println!(
        "| baseline: `cat` of the {} segment files ({:.0} MB) from the page cache | {:.0} MB/s; scan / cat = {:.2} |",
        segments.len(),
        segment_bytes as f64 / 1e6,
        segment_bytes as f64 / 1e6 / cat_time.as_secs_f64(),
        mb(bytes, scan) / (segment_bytes as f64 / 1e6 / cat_time.as_secs_f64())
    );
    println!(
        "| response form | {} |",
        if args.ndjson {
            "NDJSON (asked)"
        } else {
            "binary record stream asked (NDJSON from a server without it)"
        }
    );
    println!(
        "| server CPU during the scan | {:.2} cores |",
        scan_cpu / scan.as_secs_f64()
    );
    println!(
        "| server peak RSS | {:.0} MiB |",
        procs::peak_rss_mib(t.proc.pid)
    );
    t.proc.child.start_kill().ok();
    Ok(())
}

/// The segment files (`*.lfs`) under a server's data directory.
fn segment_files(dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "lfs") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending(types: &[&str], cut: Option<&str>) -> anyhow::Result<Value> {
        let mut e = Ending::default();
        for t in types {
            e.message(json!({"type": t, "cursor": null}));
        }
        e.end(cut.map(str::to_owned))
    }

    #[test]
    fn only_the_end_line_ends_a_page() {
        assert_eq!(ending(&["end"], None).unwrap()["type"], "end");
        // An error message, a damaged line or nothing are not an end.
        let err = ending(&["error"], Some("connection reset")).unwrap_err();
        assert!(err.to_string().contains("\"error\""), "{err}");
        assert!(ending(&["error"], None).is_err());
        assert!(ending(&["damaged"], None).is_err());
        assert!(ending(&[], None).is_err());
        assert!(ending(&[], Some("connection reset")).is_err());
        assert!(ending(&["end"], Some("connection reset")).is_err());
    }
}
