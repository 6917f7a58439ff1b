//! `logflux tui`: time from a key press to the redrawn frame with 100 000 entries loaded (a
//! 200×50 TestBackend), memory with the default scrollback full, and the entries per second
//! the model and draw loop sustain. Criterion measures each key; a second pass times single
//! key presses and prints p50/p99 (what docs/benchmarks.md quotes).
//!
//! `cargo bench -p logflux-client --bench tui`
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use logflux_client::tui::bench::{Bench, entry};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const N: u64 = 100_000;

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

/// The keys measured: each pair leaves the view where it was, so every press does the same
/// work.
fn cases() -> Vec<(&'static str, Vec<KeyEvent>)> {
    vec![
        ("scroll (k, j)", vec![key('k'), key('j')]),
        ("page (b, space)", vec![key('b'), key(' ')]),
        ("error jump (E, e)", vec![key('E'), key('e')]),
        // `/` is pressed first; each press types a letter (the filter runs over all 100 000)
        // or takes it back.
        (
            "filter typing a letter (/ then 7, Backspace)",
            vec![
                key('7'),
                KeyEvent::new(KeyCode::Backspace, KeyModifiers::NONE),
            ],
        ),
    ]
}

fn setup(case: &str) -> (Bench, Terminal<TestBackend>) {
    setup_n(case, N)
}

fn setup_n(case: &str, n: u64) -> (Bench, Terminal<TestBackend>) {
    let mut b = Bench::new(n, 100_000);
    let mut t = Terminal::new(TestBackend::new(200, 50)).unwrap();
    b.draw(&mut t);
    if case.starts_with("filter") {
        b.key(key('/'));
    } else {
        // From the middle, so that moves go both ways.
        for _ in 0..20 {
            b.key(KeyEvent::new(KeyCode::PageUp, KeyModifiers::NONE));
        }
    }
    b.draw(&mut t);
    (b, t)
}

fn keys(c: &mut Criterion) {
    let mut g = c.benchmark_group("tui_key_to_frame_100k");
    g.sample_size(30).measurement_time(Duration::from_secs(4));
    for (name, presses) in cases() {
        let (mut b, mut t) = setup(name);
        let mut i = 0usize;
        g.bench_function(name, |bch| {
            bch.iter(|| {
                b.key(presses[i % presses.len()]);
                b.draw(&mut t);
                i += 1;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, keys);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Single key presses timed one by one: p50 and p99 (and, for scrolling, the same with 100
/// entries: a frame must cost the same).
fn latencies() {
    println!("\nkey press → frame drawn, 200×50, {N} entries loaded (1000 presses each):");
    let mut all = cases();
    all.push((
        "scroll (k, j) with 100 entries loaded",
        vec![key('k'), key('j')],
    ));
    for (name, presses) in all {
        let n = if name.contains("100 entries") { 100 } else { N };
        let (mut b, mut t) = setup_n(name, n);
        let mut times = Vec::with_capacity(1000);
        for i in 0..1000 {
            let start = Instant::now();
            b.key(presses[i % presses.len()]);
            b.draw(&mut t);
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "  {name:<46} p50 {:>9.3?}  p99 {:>9.3?}",
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
    }
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Memory with the default scrollback (100 000 entries) full.
fn memory() {
    let before = rss().unwrap_or(0);
    let b = Bench::new(N, 100_000);
    let after = rss().unwrap_or(0);
    let (bytes, held) = b.held();
    println!(
        "\nscrollback full: {held} entries; estimate {:.1} MiB ({} bytes/entry); process RSS grew {:.1} MiB",
        bytes as f64 / 1048576.0,
        bytes / held.max(1),
        after.saturating_sub(before) as f64 / 1048576.0
    );
    drop(b);
}

/// Live entries per second the model takes while drawing a frame per batch, with the
/// scrollback full (every entry in drops one out).
fn throughput() {
    let mut b = Bench::new(N, 100_000);
    let mut t = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let batch = 1000u64;
    let batches: Vec<Vec<_>> = (0..50)
        .map(|k| (0..batch).map(|i| entry(N + k * batch + i)).collect())
        .collect();
    let start = Instant::now();
    let mut n = 0u64;
    for batch_entries in batches {
        n += batch_entries.len() as u64;
        b.live(batch_entries);
        b.draw(&mut t);
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "live: {n} entries in batches of {batch}, a frame drawn after each: {:.0} entries/s ({:.2} ms per batch + frame)\n",
        n as f64 / secs,
        secs * 1000.0 / 50.0
    );
}

fn main() {
    // First, while the process is fresh: its resident memory grows by the model's size.
    memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
    latencies();
    throughput();
}
