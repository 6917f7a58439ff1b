//! Line understanding on the project's labelled corpus (`testdata/corpus`): every line goes
//! through the `Parser` a file input uses (format `auto`, zone UTC as the corpus README says,
//! read at the system's `read_time`), and the detected level and time are compared with the
//! labels. Prints the figures per system (`--nocapture`) and asserts the goals: ≥ 99 % of the
//! lines that carry a level/time get it right, < 0.5 % false levels on lines that carry none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use logflux_agent::detect::{DetectConfig, Detector};
use logflux_agent::parse::{Format, Parsed, Parser};
use logflux_proto::timefmt;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus")
}

/// Counts of one system (or all).
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
        format!("{:.2} %", 100.0 * n as f64 / d as f64)
    }
}

fn run_system(name: &str, read_time: i64, misses: &mut Vec<String>) -> Tally {
    let dir = corpus_dir();
    let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).expect("corpus log");
    let labels = std::fs::read_to_string(dir.join(format!("{name}.labels.jsonl"))).expect("labels");
    let detector = Detector::new(&DetectConfig {
        time_zone: Some("UTC".into()),
        ..Default::default()
    })
    .expect("detector");
    let parser = Parser::new(
        Format::Auto,
        None,
        Arc::new(detector),
        name.into(),
        BTreeMap::new(),
    );
    let mut t = Tally::default();
    for (line, label) in log.lines().zip(labels.lines()) {
        let label: Value = serde_json::from_str(label).expect("label line");
        let (parsed, outcome) =
            parser.parse_at(line.to_owned(), "corpus", &mut String::new(), read_time);
        let Parsed::Entry(e) = parsed else {
            panic!("a plain line is never partial")
        };
        t.lines += 1;
        match label["level"].as_str() {
            Some(want) => {
                t.with_level += 1;
                if outcome.level && e.level.name() == want {
                    t.level_ok += 1;
                } else if misses.len() < 40 {
                    misses.push(format!(
                        "{name} level {want} got {:?}: {line}",
                        outcome.level.then_some(e.level)
                    ));
                }
            }
            None => {
                t.without_level += 1;
                if outcome.level {
                    t.false_level += 1;
                    if misses.len() < 40 {
                        misses.push(format!("{name} false level {}: {line}", e.level));
                    }
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
            } else if misses.len() < 40 {
                misses.push(format!(
                    "{name} time {} got {}: {line}",
                    timefmt::format_rfc3339(want),
                    timefmt::format_rfc3339(e.timestamp_ns)
                ));
            }
        }
    }
    t
}

#[test]
fn corpus_levels_and_times_are_detected() {
    let systems: Value = serde_json::from_str(
        &std::fs::read_to_string(corpus_dir().join("systems.json")).expect("systems.json"),
    )
    .expect("systems.json is JSON");
    let mut all = Tally::default();
    let mut misses = Vec::new();
    println!(
        "| system | lines | level correct (lines with one) | time correct to the second | false levels (lines without) |"
    );
    println!("|---|---|---|---|---|");
    for (name, info) in systems.as_object().expect("an object") {
        let read_time = timefmt::parse_rfc3339(info["read_time"].as_str().expect("read_time"))
            .expect("read_time is RFC 3339");
        let t = run_system(name, read_time, &mut misses);
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
        all.add(&t);
    }
    println!(
        "| **all** | {} | {} | {} | {} |",
        all.lines,
        pct(all.level_ok, all.with_level),
        pct(all.ts_ok, all.with_ts),
        pct(all.false_level, all.without_level)
    );
    for m in &misses {
        println!("miss: {m}");
    }
    assert!(
        systems.as_object().map(|o| o.len()).unwrap_or(0) >= 10,
        "at least 10 formats"
    );
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
