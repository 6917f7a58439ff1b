//! Crypto scenario: our AES-256-GCM and batch sealing per core, beside `openssl speed` run in
//! the same sitting on the same core.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey, open_batch};
use logflux_proto::{Entry, Level};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// Batches sealed to measure what padding costs (0: skip).
    #[arg(long, default_value_t = 2000)]
    padding_batches: usize,
    /// Measure only what padding costs.
    #[arg(long)]
    padding_only: bool,
}

/// `openssl speed -evp aes-256-gcm` on 16 KiB blocks, in MB/s.
fn openssl_speed(seconds: u64) -> anyhow::Result<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-gcm",
            "-bytes",
            "16384",
            "-seconds",
            &seconds.to_string(),
        ])
        .output()
        .context("running openssl speed (is openssl installed?)")?;
    if !out.status.success() {
        bail!(
            "openssl speed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line reads `AES-256-GCM    2327905.21k`: thousands of bytes per second.
    let k = text
        .lines()
        .rev()
        .find(|l| l.starts_with("AES-256-GCM"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.strip_suffix('k'))
        .and_then(|v| v.parse::<f64>().ok())
        .context("could not read openssl speed's output")?;
    Ok(k / 1000.0)
}

/// Calls `f` until `seconds` pass; returns calls per second.
fn rate(seconds: u64, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let window = Duration::from_secs(seconds);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < window {
        f()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn entries(n: usize) -> Vec<Entry> {
    (0..n as u64)
        .map(|i| {
            let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut e = Entry::new(
                1_763_675_346_545_000_000 + i as i64 * 1_000_000,
                [Level::Info, Level::Warning, Level::Error][(x % 3) as usize],
                "checkout-service",
                &format!(
                    "GET /api/v1/orders/{} completed in {}ms user=u{} trace={x:016x} status=200",
                    x % 100_000,
                    x % 250,
                    x % 1013
                ),
            );
            e.metadata.insert("host", format!("web-{}", x % 8));
            e
        })
        .collect()
}

/// A small deterministic generator (xorshift), so figures are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A realistic mix of lines: web access logs, application lines with key=values, JSON lines,
/// and now and then a stack trace.
fn realistic_entry(rng: &mut Rng, ts: i64) -> Entry {
    const PATHS: [&str; 6] = [
        "/api/v1/orders",
        "/api/v1/users",
        "/static/app.js",
        "/healthz",
        "/api/v1/cart/items",
        "/login",
    ];
    const AGENTS: [&str; 3] = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
        "curl/8.5.0",
        "Go-http-client/1.1",
    ];
    let kind = rng.below(100);
    let (level, source, payload) = if kind < 55 {
        let status = [200, 200, 200, 201, 204, 301, 404, 500][rng.below(8) as usize];
        (
            Level::Info,
            "nginx",
            format!(
                "10.{}.{}.{} - - [20/Nov/2025:10:{:02}:{:02} +0000] \"{} {}/{} HTTP/1.1\" {status} {} \"-\" \"{}\"",
                rng.below(4),
                rng.below(256),
                rng.below(256),
                rng.below(60),
                rng.below(60),
                ["GET", "GET", "POST", "PUT"][rng.below(4) as usize],
                PATHS[rng.below(6) as usize],
                rng.below(100_000),
                rng.below(50_000),
                AGENTS[rng.below(3) as usize],
            ),
        )
    } else if kind < 85 {
        (
            [Level::Info, Level::Warning, Level::Debug][rng.below(3) as usize],
            "checkout-service",
            format!(
                "order {} processed in {}ms user=u{} items={} total={}.{:02} trace={:016x}",
                rng.below(10_000_000),
                rng.below(900),
                rng.below(50_000),
                1 + rng.below(12),
                rng.below(500),
                rng.below(100),
                rng.next()
            ),
        )
    } else if kind < 98 {
        (
            Level::Info,
            "billing",
            format!(
                r#"{{"event":"invoice.{}","invoice_id":"in_{:012x}","amount":{},"currency":"EUR","customer":"cus_{:08x}","attempt":{}}}"#,
                ["created", "paid", "failed"][rng.below(3) as usize],
                rng.next() & 0xffff_ffff_ffff,
                rng.below(100_000),
                rng.next() & 0xffff_ffff,
                1 + rng.below(3)
            ),
        )
    } else {
        let mut t = format!(
            "unhandled error: connection reset by peer (id {:x})",
            rng.next()
        );
        for i in 0..(5 + rng.below(20)) {
            t.push_str(&format!(
                "\n    at com.example.checkout.Service{}.handle(Service.java:{})",
                i,
                rng.below(900)
            ));
        }
        (Level::Error, "checkout-service", t)
    };
    let mut e = Entry::new(ts, level, source, &payload);
    e.metadata.insert("host", format!("web-{}", rng.below(8)));
    e
}

/// What padding costs on realistic logs: sealed body bytes with and without it, over
/// `batches` batches of 1 to 1000 entries (a log-uniform spread: quiet and busy agents).
fn padding_cost(batches: usize) -> anyhow::Result<()> {
    let key = SealingKey::new(&Dek::generate()?);
    let binding = RecordBinding {
        tenant: "t",
        application: "a",
        key_id: "k",
        record_id: "r",
    };
    let mut sealer = BatchSealer::new(1);
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    // (label, upper bound of entries) → (batches, unpadded bytes, padded bytes, worst ratio)
    let bins = [
        (1usize, "1 entry"),
        (10, "2–10"),
        (100, "11–100"),
        (1000, "101–1000"),
    ];
    let mut stats = vec![(0u64, 0u64, 0u64, 1.0f64); bins.len()];
    let mut distinct = std::collections::BTreeSet::new();
    for b in 0..batches {
        // Log-uniform from 1 to 1000 entries.
        let n = (1000f64.powf(rng.below(1_000_001) as f64 / 1e6))
            .round()
            .max(1.0) as usize;
        let entries: Vec<Entry> = (0..n)
            .map(|i| realistic_entry(&mut rng, 1_763_675_346_000_000_000 + (b * 1000 + i) as i64))
            .collect();
        let sealed = sealer.seal(&key, &binding, &entries)?;
        let padded = sealed.ciphertext.len() as u64;
        let unpadded = sealed.compressed_len as u64 + 16;
        distinct.insert(padded);
        let bin = bins
            .iter()
            .position(|(max, _)| n <= *max)
            .unwrap_or(bins.len() - 1);
        let st = &mut stats[bin];
        st.0 += 1;
        st.1 += unpadded;
        st.2 += padded;
        st.3 = st.3.max(padded as f64 / unpadded as f64);
    }
    println!("### Padding (Padmé) on realistic logs, zstd level 1\n");
    println!(
        "{batches} batches, 1 to 1000 entries (log-uniform), lines: 55 % web access, 30 % app key=value, 13 % JSON, 2 % stack traces.\n"
    );
    println!(
        "| entries per batch | batches | sealed bytes unpadded | padded | padded / unpadded | worst batch |"
    );
    println!("|---|---|---|---|---|---|");
    let (mut all_u, mut all_p) = (0u64, 0u64);
    for ((_, label), (n, u, p, worst)) in bins.iter().zip(&stats) {
        all_u += u;
        all_p += p;
        if *n > 0 {
            println!(
                "| {label} | {n} | {u} | {p} | {:.4} | {worst:.4} |",
                *p as f64 / *u as f64
            );
        }
    }
    println!(
        "| **all** | {batches} | {all_u} | {all_p} | **{:.4}** | |\n",
        all_p as f64 / all_u as f64
    );
    println!(
        "{} distinct ciphertext lengths among {batches} batches.\n",
        distinct.len()
    );
    Ok(())
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
    if args.padding_batches > 0 {
        padding_cost(args.padding_batches)?;
    }
    if args.padding_only {
        return Ok(());
    }
    let s = args.seconds.max(1);
    let openssl = openssl_speed(s)?;
    let key = SealingKey::new(&Dek::generate()?);
    let block = vec![0x5au8; 16384];
    let mut buf = Vec::with_capacity(16384 + 16);
    let gcm = rate(s, || {
        buf.clear();
        buf.extend_from_slice(&block);
        key.seal(&[], &mut buf)?;
        Ok(())
    })? * 16384.0
        / 1e6;

    let batch = entries(500);
    let plain: usize = batch.iter().map(Entry::approx_size).sum();
    let binding = RecordBinding {
        tenant: "t",
        application: "a",
        key_id: "k",
        record_id: "r",
    };
    let mut sealer = BatchSealer::new(1);
    let sealed = sealer.seal(&key, &binding, &batch)?;
    let seals = rate(s, || {
        sealer.seal(&key, &binding, &batch)?;
        Ok(())
    })?;
    let opens = rate(s, || {
        let out = open_batch(&key, &binding, &sealed.nonce, &sealed.ciphertext)?;
        anyhow::ensure!(out.len() == batch.len(), "opened {} entries", out.len());
        Ok(())
    })?;

    println!("## logflux-bench crypto\n");
    println!("### AES-256-GCM and batch sealing, one core\n");
    println!("| figure | value |\n|---|---|");
    println!(
        "| **baseline**: `openssl speed -evp aes-256-gcm`, 16 KiB blocks | {openssl:.0} MB/s |"
    );
    println!(
        "| our AES-256-GCM (aws-lc-rs), 16 KiB blocks | **{gcm:.0} MB/s** ({:.2} of openssl) |",
        gcm / openssl
    );
    println!(
        "| seal a 500-entry batch (encode, zstd 1, AES-GCM) | {:.0} MB/s of plaintext, {:.0} k entries/s ({:.2} of openssl) |",
        seals * plain as f64 / 1e6,
        seals * batch.len() as f64 / 1e3,
        seals * plain as f64 / 1e6 / openssl
    );
    println!(
        "| open it back into entries | {:.0} MB/s of plaintext, {:.0} k entries/s |",
        opens * plain as f64 / 1e6,
        opens * batch.len() as f64 / 1e3
    );
    println!(
        "| compression: plaintext / ciphertext | {plain} B / {} B ({:.1}×) |\n",
        sealed.ciphertext.len(),
        plain as f64 / sealed.ciphertext.len() as f64
    );
    Ok(())
}
