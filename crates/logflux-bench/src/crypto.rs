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
            e.metadata.insert("host".into(), format!("web-{}", x % 8));
            e
        })
        .collect()
}

pub(crate) async fn run(args: Args) -> anyhow::Result<()> {
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
