//! What the line-understanding tests share: a labelled line run through the `Parser` a file input
//! uses (format `auto`, zone UTC), counted against its label, and the figures printed as the
//! table in docs/benchmarks.md.

use std::sync::Arc;

use logflux_agent::detect::{DetectConfig, Detector};
use logflux_agent::parse::{Format, Parsed, Parser};
use logflux_proto::timefmt;
use serde_json::Value;

/// Counts of one system or format (or all).
#[derive(Default, Debug, Clone, Copy)]
pub(crate) struct Tally {
    pub(crate) lines: usize,
    pub(crate) with_level: usize,
    pub(crate) level_ok: usize,
    pub(crate) without_level: usize,
    pub(crate) false_level: usize,
    pub(crate) with_ts: usize,
    pub(crate) ts_ok: usize,
}

impl Tally {
    pub(crate) fn add(&mut self, o: &Tally) {
        self.lines += o.lines;
        self.with_level += o.with_level;
        self.level_ok += o.level_ok;
        self.without_level += o.without_level;
        self.false_level += o.false_level;
        self.with_ts += o.with_ts;
        self.ts_ok += o.ts_ok;
    }

    /// The goals of issue 17: ≥ 99 % of the lines that carry a level/time get it right, < 0.5 %
    /// false levels on lines that carry none.
    pub(crate) fn assert_goals(&self) {
        assert!(
            self.level_ok * 100 >= self.with_level * 99,
            "level accuracy below 99 %: {self:?}"
        );
        assert!(
            self.ts_ok * 100 >= self.with_ts * 99,
            "time accuracy below 99 %: {self:?}"
        );
        assert!(
            self.false_level * 1000 < self.without_level * 5,
            "false levels not below 0.5 %: {self:?}"
        );
    }
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "—".into()
    } else {
        format!("{:.2} %", 100.0 * n as f64 / d as f64)
    }
}

/// The parser of a file input with the default detection, in UTC.
pub(crate) fn parser(source: &str) -> Parser {
    let detector = Detector::new(&DetectConfig {
        time_zone: Some("UTC".into()),
        ..Default::default()
    })
    .expect("detector");
    Parser::new(
        Format::Auto,
        None,
        Arc::new(detector),
        source.into(),
        logflux_proto::Metadata::new(),
    )
}

/// Runs `line` through `parser` as read at `read_time` and counts it in `t` against `label`
/// (`level`: a level name or null; `ts`: RFC 3339 or null); a miss is described in `misses`.
pub(crate) fn check(
    parser: &Parser,
    read_time: i64,
    name: &str,
    line: &str,
    label: &Value,
    t: &mut Tally,
    misses: &mut Vec<String>,
) {
    let (parsed, outcome) = parser.parse_at(line.to_owned(), name, &mut String::new(), read_time);
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
                    "{name}: level {want} got {:?}: {line}",
                    outcome.level.then_some(e.level)
                ));
            }
        }
        None => {
            t.without_level += 1;
            if outcome.level {
                t.false_level += 1;
                misses.push(format!("{name}: false level {}: {line}", e.level));
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
                "{name}: time {} got {}{}: {line}",
                timefmt::format_rfc3339(want),
                timefmt::format_rfc3339(e.timestamp_ns),
                if outcome.time { "" } else { " (none detected)" }
            ));
        }
    }
}

/// Prints the table of `rows` (name, tally), then the overall row, then at most 60 misses;
/// returns the overall tally.
pub(crate) fn print_table(what: &str, rows: &[(String, Tally)], misses: &[String]) -> Tally {
    println!(
        "| {what} | lines | level correct (lines with one) | time correct to the second | false levels (lines without) |"
    );
    println!("|---|---|---|---|---|");
    let mut all = Tally::default();
    let row = |name: &str, t: &Tally| {
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
    };
    for (name, t) in rows {
        row(name, t);
        all.add(t);
    }
    row(&format!("**all ({} {what}s)**", rows.len()), &all);
    for m in misses.iter().take(60) {
        println!("miss: {m}");
    }
    all
}
