//! Line understanding on held-out lines (`testdata/heldout/lines.jsonl`): 48 formats that the
//! labelled corpus does not hold, labelled before the detector was read. Every line goes through
//! the `Parser` a file input uses (format `auto`, zone UTC, read at the README's `read_time`),
//! the same path as the corpus test. Prints the figures per format (`--nocapture`) and every miss,
//! and asserts the goals (on `lines.jsonl`; `fresh.jsonl` is only measured): ≥ 99 % of the lines that carry a level/time get it right, < 0.5 % false
//! levels on lines that carry none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use logflux_agent::detect::{DetectConfig, Detector};
use logflux_agent::parse::{Format, Parsed, Parser};
use logflux_proto::timefmt;
use serde_json::Value;

fn heldout_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/heldout")
}

/// The `read_time: …` line at the top of the README.
fn read_time() -> i64 {
    let readme = std::fs::read_to_string(heldout_dir().join("README.md")).expect("README.md");
    let line = readme
        .lines()
        .find_map(|l| l.strip_prefix("read_time: "))
        .expect("a read_time line in the README");
    timefmt::parse_rfc3339(line.trim()).expect("read_time is RFC 3339")
}

/// Counts of one format (or all).
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    lines: usize,
    with_level: usize,
    level_ok: usize,
    without_level: usize,
    false_level: usize,
    with_ts: usize,
    ts_ok: usize,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.lines += o.lines;
        self.with_level += o.with_level;
        self.level_ok += o.level_ok;
        self.without_level += o.without_level;
        self.false_level += o.false_level;
        self.with_ts += o.with_ts;
        self.ts_ok += o.ts_ok;
    }
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "—".into()
    } else {
        format!("{:.1} %", 100.0 * n as f64 / d as f64)
    }
}

/// Runs one labelled line through `parser` and counts it in `t`; a miss is described in `misses`.
fn check(parser: &Parser, read_time: i64, label: &Value, t: &mut Tally, misses: &mut Vec<String>) {
    let format = label["format"].as_str().expect("format");
    let line = label["line"].as_str().expect("line");
    let (parsed, outcome) =
        parser.parse_at(line.to_owned(), "heldout", &mut String::new(), read_time);
    let Parsed::Entry(e) = parsed else {
        panic!("a plain line is never partial")
    };
    t.lines += 1;
    match label["level"].as_str() {
        Some(want) => {
            t.with_level += 1;
            if outcome.level && e.level.name() == want {
                t.level_ok += 1;
            } else {
                misses.push(format!(
                    "{format}: level {want} got {:?}: {line}",
                    outcome.level.then_some(e.level)
                ));
            }
        }
        None => {
            t.without_level += 1;
            if outcome.level {
                t.false_level += 1;
                misses.push(format!("{format}: false level {}: {line}", e.level));
            }
        }
    }
    if let Some(want) = label["ts"].as_str() {
        t.with_ts += 1;
        let want = timefmt::parse_rfc3339(want).expect("label time");
        if outcome.time
            && !outcome.implausible
            && e.timestamp_ns.div_euclid(1_000_000_000) == want.div_euclid(1_000_000_000)
        {
            t.ts_ok += 1;
        } else {
            misses.push(format!(
                "{format}: time {} got {}{}: {line}",
                timefmt::format_rfc3339(want),
                timefmt::format_rfc3339(e.timestamp_ns),
                if outcome.time { "" } else { " (none detected)" }
            ));
        }
    }
}

/// Runs every line of `file` (in `testdata/heldout`), prints the table and the misses, returns
/// the overall tally.
fn run_heldout(file: &str) -> Tally {
    let read_time = read_time();
    let text = std::fs::read_to_string(heldout_dir().join(file)).expect("a held-out file");
    let mut per_format: Vec<(String, Tally)> = Vec::new();
    let mut misses = Vec::new();
    for label in text.lines() {
        let label: Value = serde_json::from_str(label).expect("a JSON line");
        let format = label["format"].as_str().expect("format").to_owned();
        if per_format.last().map(|(f, _)| f != &format).unwrap_or(true) {
            per_format.push((format.clone(), Tally::default()));
        }
        // A fresh parser per format, as each format would be its own input.
        let detector = Detector::new(&DetectConfig {
            time_zone: Some("UTC".into()),
            ..Default::default()
        })
        .expect("detector");
        let parser = Parser::new(
            Format::Auto,
            None,
            Arc::new(detector),
            format.clone(),
            BTreeMap::new(),
        );
        let tally = &mut per_format.last_mut().expect("pushed above").1;
        check(&parser, read_time, &label, tally, &mut misses);
    }
    println!(
        "| format | lines | level correct (lines with one) | time correct to the second | false levels (lines without) |"
    );
    println!("|---|---|---|---|---|");
    let mut all = Tally::default();
    for (name, t) in &per_format {
        println!(
            "| {name} | {} | {} of {} ({}) | {} of {} ({}) | {} of {} ({}) |",
            t.lines,
            t.level_ok,
            t.with_level,
            pct(t.level_ok, t.with_level),
            t.ts_ok,
            t.with_ts,
            pct(t.ts_ok, t.with_ts),
            t.false_level,
            t.without_level,
            pct(t.false_level, t.without_level)
        );
        all.add(t);
    }
    println!(
        "| **all ({} formats)** | {} | {} of {} ({}) | {} of {} ({}) | {} of {} ({}) |",
        per_format.len(),
        all.lines,
        all.level_ok,
        all.with_level,
        pct(all.level_ok, all.with_level),
        all.ts_ok,
        all.with_ts,
        pct(all.ts_ok, all.with_ts),
        all.false_level,
        all.without_level,
        pct(all.false_level, all.without_level)
    );
    for m in &misses {
        println!("miss: {m}");
    }
    all
}

#[test]
fn heldout_levels_and_times_are_detected() {
    let all = run_heldout("lines.jsonl");
    assert!(all.lines >= 25 * 8, "at least 25 formats of 8 lines");
    assert!(
        all.level_ok * 100 >= all.with_level * 99,
        "level accuracy below 99 %"
    );
    assert!(
        all.ts_ok * 100 >= all.with_ts * 99,
        "time accuracy below 99 %"
    );
    assert!(
        all.false_level * 1000 < all.without_level * 5,
        "false levels not below 0.5 %"
    );
}

/// `fresh.jsonl`: 30 lines of 22 more formats written after the fixes and never used to change
/// the detector; its figures are printed (benchmarks.md), not asserted, as an estimate of how
/// the fixes generalise.
#[test]
fn fresh_lines_are_measured() {
    let all = run_heldout("fresh.jsonl");
    assert_eq!(all.lines, 30, "every fresh line ran");
}
