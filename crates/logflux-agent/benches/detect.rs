//! Line understanding's cost on the file path: every line of the labelled corpus
//! (`testdata/corpus`, 16 systems + klog, one parser per system as one per file) through
//! `Parser::parse_at`, with detection on (`format: auto`, the default) and off (`format: plain`,
//! `timestamp: {format: none}`, a fixed level), alternated in the same run. Prints lines/s and
//! CPU seconds per million lines (the thread's own CPU time, from /proc/thread-self/schedstat).
//!
//! `cargo bench -p logflux-agent --bench detect [-- --rounds N]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use logflux_agent::detect::{DetectConfig, Detector, LevelConfig, LineFormat, TimestampConfig};
use logflux_agent::parse::{Format, Parsed, Parser};

/// The thread's CPU time in seconds (0 where /proc does not say).
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map(|ns| ns / 1e9)
        .unwrap_or(0.0)
}

fn parsers(on: bool, systems: &[String]) -> Vec<Parser> {
    systems
        .iter()
        .map(|name| {
            let cfg = if on {
                DetectConfig {
                    time_zone: Some("UTC".into()),
                    ..Default::default()
                }
            } else {
                DetectConfig {
                    format: LineFormat::Plain,
                    timestamp: Some(TimestampConfig {
                        regex: None,
                        format: "none".into(),
                    }),
                    level: Some(LevelConfig::Fixed("info".into())),
                    ..Default::default()
                }
            };
            Parser::new(
                if on { Format::Auto } else { Format::Plain },
                None,
                Arc::new(Detector::new(&cfg).unwrap()),
                name.clone(),
                logflux_proto::Metadata::new(),
            )
        })
        .collect()
}

/// One pass over every system's lines; returns (wall s, cpu s, lines).
fn pass(parsers: &[Parser], corpus: &[Vec<String>], now: i64) -> (f64, f64, usize) {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let mut n = 0;
    for (p, lines) in parsers.iter().zip(corpus) {
        let mut partial = String::new();
        for l in lines {
            let (e, _) = p.parse_at(l.clone(), "/var/log/app.log", &mut partial, now);
            if let Parsed::Entry(e) = e {
                black_box(e);
            }
            n += 1;
        }
    }
    (t0.elapsed().as_secs_f64(), cpu_seconds() - c0, n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(40usize);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus");
    let mut systems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            Some(n.strip_suffix(".log")?.to_owned())
        })
        .collect();
    systems.sort();
    let corpus: Vec<Vec<String>> = systems
        .iter()
        .map(|s| {
            std::fs::read_to_string(dir.join(format!("{s}.log")))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let bytes: usize = corpus.iter().flatten().map(|l| l.len() + 1).sum();
    let now = logflux_proto::timefmt::now_ns();
    let (on, off) = (parsers(true, &systems), parsers(false, &systems));
    // Warm-up, then alternate so that both see the same machine.
    pass(&on, &corpus, now);
    pass(&off, &corpus, now);
    let (mut won, mut con, mut woff, mut coff, mut lines) = (0.0, 0.0, 0.0, 0.0, 0);
    for _ in 0..rounds {
        let (w, c, n) = pass(&on, &corpus, now);
        won += w;
        con += c;
        let (w, c, _) = pass(&off, &corpus, now);
        woff += w;
        coff += c;
        lines += n;
    }
    let l = lines as f64;
    println!(
        "corpus: {} systems, {} lines/pass, {:.0} bytes/line; {rounds} rounds each way, alternated",
        systems.len(),
        corpus.iter().map(Vec::len).sum::<usize>(),
        bytes as f64 / corpus.iter().map(Vec::len).sum::<usize>() as f64
    );
    println!("| detection | lines/s | CPU s per million lines |");
    println!("|---|---|---|");
    println!(
        "| on (`format: auto`) | {:.0} | {:.3} |",
        l / won,
        con / l * 1e6
    );
    println!(
        "| off (`plain`, `timestamp: none`, fixed level) | {:.0} | {:.3} |",
        l / woff,
        coff / l * 1e6
    );
    println!(
        "cost of detection: {:+.1} % CPU per line, {:+.1} % wall",
        (con / coff - 1.0) * 100.0,
        (won / woff - 1.0) * 100.0
    );
}
