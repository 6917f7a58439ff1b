//! Storage scenario: real-style logs (testdata/corpus, 16 systems) read from their beginning by
//! the agent's file input, shipped to a real server; the bytes the server keeps (segments and
//! catalog) against the raw text and against `zstd -1`/`zstd -19` of the same text, measured in
//! the same run, with a breakdown of the segments: zstd frames, Padmé padding, GCM tags,
//! per-record footer metadata, the per-record token filters and the segment's Bloom filter
//! (footer version 2) or the token index (version 1), trailers. The records are opened with the
//! tenant's key to split frames from padding and to weigh the same entries in batch v1.
//!
//! `--baseline-agent PATH` reads the corpus a second time with another agent binary (a copy of
//! the release build from before a change), alternating, for a before/after in one run.
//! `LOGFLUX_BENCH_KEEP=1` keeps the work directory (servers' data, catalogs) and prints its path.
//! `LOGFLUX_BENCH_DUMP=1` prints the first two entries of every record to stderr (to see what
//! the file input made of the lines).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use logflux_crypto::{PrivateKey, RecordBinding, SealingKey, open_batch_plain, unwrap_dek};
use logflux_proto::batch;
use logflux_proto::codec::Reader;

use crate::agent::{AgentStack, metric, start_stack_with};
use crate::procs;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory of log files (default: the repository's testdata/corpus).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// File name endings read from it: the corpus's raw lines (`log`) and its labels, one JSON
    /// object per line (`jsonl`); together the ~32 000 lines issue 18 measured.
    #[arg(long, value_delimiter = ',', default_value = "log,jsonl")]
    ext: Vec<String>,
    /// Another agent binary, run over the same files in the same run (before/after).
    #[arg(long)]
    baseline_agent: Option<PathBuf>,
    /// Top-level agent configuration added to both runs (YAML), e.g. `batch: {max_wait_ms: 5000}`.
    #[arg(long, default_value = "")]
    agent_config: String,
    /// zstd level at which the same entries are weighed as batch v1 (the agent's default is 1).
    #[arg(long, default_value_t = 1)]
    level: i32,
    /// Work directory parent (default: a temporary directory under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// What the server kept after one agent read the corpus.
#[derive(Debug, Default, Clone)]
struct Sizes {
    segments: u64,
    segment_bytes: u64,
    catalog: u64,
    /// Of which the WAL file (left when the server stopped without a final checkpoint).
    catalog_wal: u64,
    other_objects: u64,
    records: u64,
    entries: u64,
    /// Record bodies as stored: ciphertext and tag.
    bodies: u64,
    frames: u64,
    padding: u64,
    tags: u64,
    /// The footer's per-record fields (offset, length, ids, nonce, times, count).
    footer_records: u64,
    /// The footer's token index (version 1 footers).
    index: u64,
    index_entries: u64,
    /// The footer's per-record token filters, with their lengths (version 2 footers).
    filters: u64,
    /// The footer's copy of the segment's Bloom filter, with its length (version 2 footers).
    footer_bloom: u64,
    /// Footer versions seen.
    footer_versions: Vec<u8>,
    /// Footer headers and trailers.
    framing: u64,
    /// Decompressed batches as sealed, and the same entries written as batch v1.
    plain: u64,
    plain_v1: u64,
    /// Metadata pairs as batch v1 writes them (every entry its own copy).
    metadata_v1: u64,
    /// The same entries as batch v1, compressed at `--level` and padded as the sealer pads.
    sealed_v1: u64,
    versions: Vec<u8>,
    seconds: f64,
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    let corpus = args
        .corpus
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .with_context(|| format!("reading {}", corpus.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| args.ext.iter().any(|e| x == e.as_str()))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        bail!(
            "no *.{{{}}} files in {}",
            args.ext.join(","),
            corpus.display()
        );
    }
    let mut text = Vec::new();
    for f in &files {
        text.extend_from_slice(&std::fs::read(f)?);
    }
    let raw = text.len() as f64;
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let z1 = zstd_cli(&text, 1)?;
    let z19 = zstd_cli(&text, 19)?;

    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("logflux-bench-storage-")
        .tempdir_in(&parent)?;
    let w = work.path().to_path_buf();
    let w = w.as_path();
    if std::env::var_os("LOGFLUX_BENCH_KEEP").is_some() {
        eprintln!("keeping {}", w.display());
        let _ = work.keep();
    }
    let logs = w.join("logs");
    std::fs::create_dir_all(&logs)?;
    for f in &files {
        std::fs::copy(f, logs.join(f.file_name().context("file name")?))?;
    }
    let this = procs::sibling("logflux-agent")?;
    let mut runs: Vec<(&str, &Path)> = Vec::new();
    if let Some(b) = &args.baseline_agent {
        runs.push(("baseline", b.as_path()));
    }
    runs.push(("this build", this.as_path()));
    let mut results = Vec::new();
    for (i, (name, bin)) in runs.iter().enumerate() {
        let s = read_corpus(&w.join(format!("run{i}")), &logs, bin, &args).await?;
        results.push((*name, s));
    }

    println!("## logflux-bench storage\n");
    println!(
        "### {} files of {} ({} lines, {:.2} MB), read by the file input from their beginning\n",
        files.len(),
        corpus.display(),
        lines,
        raw / 1e6
    );
    println!(
        "Same-run baselines: `zstd -1` of the concatenated text {:.0} B ({:.3} × raw), `zstd -19` {:.0} B ({:.3} × raw).\n",
        z1,
        z1 / raw,
        z19,
        z19 / raw
    );
    let mut header = String::from("| figure |");
    let mut rule = String::from("|---|");
    for (name, _) in &results {
        header.push_str(&format!(" {name} | × raw |"));
        rule.push_str("---:|---:|");
    }
    println!("{header}\n{rule}");
    let row = |label: &str, f: &dyn Fn(&Sizes) -> f64| {
        let mut line = format!("| {label} |");
        for (_, s) in &results {
            let v = f(s);
            line.push_str(&format!(" {v:.0} | {:.4} |", v / raw));
        }
        println!("{line}");
    };
    row("**segments + catalog**", &|s| {
        (s.segment_bytes + s.catalog) as f64
    });
    row("segments (all bytes)", &|s| s.segment_bytes as f64);
    row("· zstd frames (batch content)", &|s| s.frames as f64);
    row("· Padmé padding", &|s| s.padding as f64);
    row("· GCM tags (16 B per record)", &|s| s.tags as f64);
    row("· per-record footer metadata", &|s| {
        s.footer_records as f64
    });
    row("· per-record token filters (footer v2)", &|s| {
        s.filters as f64
    });
    row("· segment Bloom filter (footer v2)", &|s| {
        s.footer_bloom as f64
    });
    row("· token index (footer v1)", &|s| s.index as f64);
    row("· footer headers and trailers", &|s| s.framing as f64);
    row("catalog (SQLite, with its WAL)", &|s| s.catalog as f64);
    row("· of which the WAL", &|s| s.catalog_wal as f64);
    row("other store objects (tenant, app, keys JSON)", &|s| {
        s.other_objects as f64
    });
    row("batch plaintext as sealed", &|s| s.plain as f64);
    row("same entries as batch v1, uncompressed", &|s| {
        s.plain_v1 as f64
    });
    row("· of which metadata pairs in v1", &|s| {
        s.metadata_v1 as f64
    });
    row("same entries as batch v1, compressed and padded", &|s| {
        s.sealed_v1 as f64
    });
    let mut counts = String::from(
        "| records / entries / segments / index postings / batch versions / footer versions / seconds |",
    );
    for (_, s) in &results {
        counts.push_str(&format!(
            " {} / {} / {} / {} / {:?} / {:?} / {:.1} | |",
            s.records,
            s.entries,
            s.segments,
            s.index_entries,
            s.versions,
            s.footer_versions,
            s.seconds
        ));
    }
    println!("{counts}");
    if let [(_, before), (_, after)] = &results[..] {
        let b = (before.segment_bytes + before.catalog) as f64;
        let a = (after.segment_bytes + after.catalog) as f64;
        println!(
            "\nsegments + catalog: {:.0} → {:.0} B ({:.3} × raw → {:.3} × raw, {:+.1} %)",
            b,
            a,
            b / raw,
            a / raw,
            (a / b - 1.0) * 100.0
        );
    }
    Ok(())
}

/// `zstd -LEVEL` of `text`, in bytes (the command-line tool, as users would run it).
fn zstd_cli(text: &[u8], level: i32) -> anyhow::Result<f64> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("zstd")
        .args([format!("-{level}").as_str(), "-c", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running zstd (install the zstd command)")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let input = text.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer.join().map_err(|_| anyhow::anyhow!("writer"))??;
    if !out.status.success() {
        bail!("zstd -{level} failed");
    }
    Ok(out.stdout.len() as f64)
}

/// A fresh server and agent (`agent_bin`) under `w`; the agent reads every file in `logs`
/// until everything it sealed is shipped; then the server's store is weighed.
async fn read_corpus(
    w: &Path,
    logs: &Path,
    agent_bin: &Path,
    args: &Args,
) -> anyhow::Result<Sizes> {
    std::fs::create_dir_all(w)?;
    let (stack, key) = start_stack_with(
        w,
        &format!(
            "  files:\n    - paths: ['{}/*']\n      source: app\n      poll_interval_ms: 50\n",
            logs.display()
        ),
        "never",
        agent_bin,
        &args.agent_config,
    )
    .await?;
    let AgentStack {
        server,
        mut agent,
        metrics_url,
        http,
        ..
    } = stack;
    let started = Instant::now();
    // Until the sealed count stops moving and the spool is empty.
    let mut last = (-1.0, Instant::now());
    loop {
        let m = http.get(&metrics_url).send().await?.text().await?;
        let sealed = metric(&m, "logflux_agent_entries_sealed_total");
        let spooled = metric(&m, "logflux_agent_spool_records");
        if sealed != last.0 {
            last = (sealed, Instant::now());
        } else if sealed > 0.0 && spooled == 0.0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("the agent did not ship the corpus within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seconds = started.elapsed().as_secs_f64() - 3.0;
    agent.start_kill().ok();
    agent.wait().await.ok();
    // A clean stop: the server finishes its writes and closes the catalog.
    let mut child = server.child;
    std::process::Command::new("kill")
        .args(["-TERM", &server.pid.to_string()])
        .status()?;
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .context("the server did not stop")??;
    let mut s = weigh(&w.join("server"), &key, args.level)?;
    s.seconds = seconds;
    Ok(s)
}

/// Weighs a stopped server's data directory.
fn weigh(data: &Path, key: &PrivateKey, level: i32) -> anyhow::Result<Sizes> {
    let mut s = Sizes::default();
    for name in ["catalog.db", "catalog.db-wal"] {
        if let Ok(m) = std::fs::metadata(data.join(name)) {
            s.catalog += m.len();
            if name.ends_with("-wal") {
                s.catalog_wal += m.len();
            }
        }
    }
    let objects = data.join("objects");
    let mut files = Vec::new();
    walk(&objects, &mut files)?;
    let mut keys: HashMap<String, SealingKey> = HashMap::new();
    for f in &files {
        let rel = f.strip_prefix(&objects)?;
        let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap_or_default()).collect();
        let len = std::fs::metadata(f)?.len();
        if parts.get(1) == Some(&"_keys") {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f)?)?;
            let wrapped = B64.decode(v["wrapped_key"].as_str().context("wrapped_key")?)?;
            let dek = unwrap_dek(key, &wrapped)?;
            keys.insert(
                v["id"].as_str().context("key id")?.to_owned(),
                SealingKey::new(&dek),
            );
        }
        if f.extension().is_none_or(|x| x != "lfs") {
            s.other_objects += len;
        }
    }
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "lfs"))
    {
        let rel = f.strip_prefix(&objects)?;
        let mut it = rel.iter().map(|c| c.to_str().unwrap_or_default());
        let (tenant, app) = (
            it.next().context("tenant")?.to_owned(),
            it.next().context("app")?.to_owned(),
        );
        let bytes = std::fs::read(f)?;
        s.segments += 1;
        s.segment_bytes += bytes.len() as u64;
        weigh_segment(&bytes, &tenant, &app, &keys, level, &mut s)
            .with_context(|| format!("segment {}", rel.display()))?;
    }
    s.versions.sort_unstable();
    s.versions.dedup();
    s.footer_versions.sort_unstable();
    s.footer_versions.dedup();
    Ok(s)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// One segment (docs/formats.md, "Segments"): its footer parsed, its agent records opened.
fn weigh_segment(
    bytes: &[u8],
    tenant: &str,
    app: &str,
    keys: &HashMap<String, SealingKey>,
    level: i32,
    s: &mut Sizes,
) -> anyhow::Result<()> {
    const TRAILER: usize = 13;
    let n = bytes.len();
    if n < TRAILER || &bytes[n - 5..n - 1] != b"LFSG" {
        bail!("no segment trailer");
    }
    let footer_len = u32::from_le_bytes(bytes[n - 13..n - 9].try_into()?) as usize;
    let footer = bytes
        .get(n - TRAILER - footer_len..n - TRAILER)
        .context("footer length")?;
    let err = |e| anyhow::anyhow!("footer: {e:?}");
    let mut r = Reader::new(footer);
    if r.take(4).map_err(err)? != b"LFSF" {
        bail!("not a segment footer");
    }
    let version = r.byte().map_err(err)?;
    if version != 1 && version != 2 {
        bail!("footer version {version}");
    }
    s.footer_versions.push(version);
    let count = r.varint().map_err(err)?;
    let records_start = r.pos();
    for _ in 0..count {
        let offset = r.varint().map_err(err)? as usize;
        let len = r.varint().map_err(err)? as usize;
        let record_id = r.string().map_err(err)?;
        let key_id = r.string().map_err(err)?;
        let payload = r.byte().map_err(err)?;
        let _entry_type = r.byte().map_err(err)?;
        let nonce_len = r.byte().map_err(err)? as usize;
        let nonce = r.take(nonce_len).map_err(err)?;
        let _flags = r.byte().map_err(err)?;
        for _ in 0..4 {
            r.varint().map_err(err)?; // min_ts, max_ts, count, received_ns
        }
        s.records += 1;
        s.bodies += len as u64;
        let body = bytes.get(offset..offset + len).context("record body")?;
        if payload != 4 {
            continue;
        }
        let k = keys.get(&key_id).context("data key of a record")?;
        let binding = RecordBinding {
            tenant,
            application: app,
            key_id: &key_id,
            record_id: record_id.strip_prefix("agent-").unwrap_or(&record_id),
        };
        let nonce: [u8; 12] = nonce.try_into().context("nonce")?;
        let opened = open_batch_plain(k, &binding, &nonce, body)?;
        s.frames += opened.frame_len as u64;
        s.padding += opened.padding_len as u64;
        s.tags += (len - opened.frame_len - opened.padding_len) as u64;
        s.plain += opened.plain.len() as u64;
        s.versions.push(opened.plain[3]);
        let entries = batch::decode(&opened.plain)?;
        if std::env::var_os("LOGFLUX_BENCH_DUMP").is_some() {
            for e in entries.iter().take(2) {
                eprintln!("{e:?}");
            }
        }
        s.entries += entries.len() as u64;
        let mut v1 = Vec::new();
        batch::encode_v1(&entries, &mut v1);
        s.plain_v1 += v1.len() as u64;
        s.metadata_v1 += entries
            .iter()
            .flat_map(|e| &e.metadata)
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>() as u64;
        let frame = zstd::bulk::compress(&v1, level)?.len();
        s.sealed_v1 += (logflux_crypto::padme(frame + 8) + 16) as u64;
    }
    let records_end = r.pos();
    s.footer_records += (records_end - records_start) as u64;
    if version == 2 {
        for _ in 0..count {
            let len = r.varint().map_err(err)? as usize;
            r.take(len).map_err(err)?;
        }
        s.filters += (r.pos() - records_end) as u64;
        s.footer_bloom += (footer.len() - r.pos()) as u64;
    } else {
        let tokens = r.varint().map_err(err)?;
        for _ in 0..tokens {
            r.take(8).map_err(err)?;
            let postings = r.varint().map_err(err)?;
            for _ in 0..postings {
                r.varint().map_err(err)?;
            }
            s.index_entries += postings;
        }
        s.index += (footer.len() - records_end) as u64;
    }
    s.framing += (records_start + TRAILER) as u64;
    Ok(())
}
