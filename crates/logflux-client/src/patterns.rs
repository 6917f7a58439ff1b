//! `logflux patterns`: the matching entries grouped by template (`logflux_query::patterns`,
//! a Drain-style online algorithm run here, after decryption: the server never sees a
//! template), each with its count, share, levels and first/last time, most entries first.

use std::io::Write as _;
use std::sync::Arc;

use clap::{Args, ValueEnum};
use logflux_proto::{EntryView, Level, timefmt};
use logflux_query::patterns::{Config, Tally, Template};
use serde_json::json;

use crate::config::Settings;
use crate::fetch::Session;
use crate::filter::FilterArgs;
use crate::output::{Zone, push_clean, zoned_time};
use crate::search::{run_query, status};

/// Entries grouped at a time (on two threads).
const BATCH: usize = 1 << 16;

/// Output formats of `patterns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PatternsFormat {
    /// A table, most entries first.
    Text,
    /// One JSON object per template and line, most entries first.
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct PatternsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Most templates to show, those with the most entries (0: all).
    #[arg(short = 'n', long, default_value_t = 50)]
    limit: usize,
    /// text: a table; json: one object per template and line.
    #[arg(short = 'o', long, value_enum, default_value_t = PatternsFormat::Text)]
    format: PatternsFormat,
    /// Show times in UTC (default: local time; JSON always writes UTC).
    #[arg(long)]
    utc: bool,
}

/// Runs `logflux patterns`.
pub(crate) async fn patterns(settings: &Settings, mut args: PatternsArgs) -> anyhow::Result<i32> {
    if args.filter.since.is_none() {
        args.filter.since = Some("24h".into());
    }
    let session = Session::open(settings, &args.filter).await?;
    let mut tally = Tally::new(Config::default(), None);
    let mut batch: Vec<(i64, Level, String)> = Vec::with_capacity(BATCH);
    let sum = run_query(
        &session,
        false,
        0,
        Arc::new(|e: EntryView| (e.timestamp_ns, e.level, e.payload)),
        |item| {
            batch.push(item);
            if batch.len() >= BATCH {
                tally.drain_owned(&mut batch);
            }
            Ok(true)
        },
        |_| Ok(()),
    )
    .await?;
    tally.drain_owned(&mut batch);
    let templates = tally.templates("<*>");
    let total = sum.entries;
    let shown = match args.limit {
        0 => &templates[..],
        n => &templates[..n.min(templates.len())],
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    match args.format {
        PatternsFormat::Json => {
            for t in shown {
                writeln!(out, "{}", template_json(t, total))?;
            }
        }
        PatternsFormat::Text => {
            write!(
                out,
                "{}",
                table(shown, templates.len(), total, Zone::new(args.utc))
            )?;
        }
    }
    out.flush()?;
    if tally.dropped() > 0 {
        eprintln!(
            "logflux: {} entries were in rare templates dropped to bound memory (not shown)",
            tally.dropped()
        );
    }
    Ok(status(&sum))
}

/// Levels as `error 12 · info 3`, most severe first.
fn levels_text(levels: &[u64; 8]) -> String {
    Level::ALL
        .iter()
        .zip(levels)
        .filter(|(_, n)| **n > 0)
        .map(|(l, n)| format!("{} {n}", l.name()))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn share(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// One template as JSON: `template`, `count`, `share` (0..1), `levels` (name → count),
/// `first` and `last` (RFC 3339, UTC).
fn template_json(t: &Template, total: u64) -> serde_json::Value {
    let s = &t.stats;
    json!({
        "template": t.template,
        "count": s.count,
        "share": share(s.count, total),
        "levels": Level::ALL
            .iter()
            .zip(&s.levels)
            .filter(|(_, n)| **n > 0)
            .map(|(l, n)| (l.name().to_owned(), json!(n)))
            .collect::<serde_json::Map<_, _>>(),
        "first": timefmt::format_rfc3339(s.first_ns),
        "last": timefmt::format_rfc3339(s.last_ns),
    })
}

/// The text table: a heading line, then count, share, levels, first and last time and the
/// template (control characters escaped), most entries first.
fn table(shown: &[Template], all: usize, total: u64, zone: Zone) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{total} entries, {all} templates{}",
        if shown.len() < all {
            format!(
                " (the {} with the most entries shown; -n 0 for all)",
                shown.len()
            )
        } else {
            String::new()
        }
    );
    if shown.is_empty() {
        return s;
    }
    let levels: Vec<String> = shown.iter().map(|t| levels_text(&t.stats.levels)).collect();
    let lw = levels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let tw = zoned_time(shown[0].stats.first_ns, zone).len();
    let _ = writeln!(
        s,
        "{:>8} {:>6}  {:<lw$}  {:<tw$}  {:<tw$}  template",
        "count", "share", "levels", "first", "last"
    );
    for (t, l) in shown.iter().zip(&levels) {
        let st = &t.stats;
        let _ = write!(
            s,
            "{:>8} {:>5.1}%  {:<lw$}  {:<tw$}  {:<tw$}  ",
            st.count,
            share(st.count, total) * 100.0,
            l,
            zoned_time(st.first_ns, zone),
            zoned_time(st.last_ns, zone),
        );
        push_clean(&mut s, &t.template);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_query::patterns::Stats;
    use std::collections::BTreeMap;

    fn template(text: &str, count: u64, levels: [u64; 8]) -> Template {
        Template {
            template: text.into(),
            stats: Stats {
                count,
                levels,
                first_ns: 1_700_000_000_000_000_000,
                last_ns: 1_700_000_060_000_000_000,
                samples: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn the_table_shows_counts_shares_levels_times_and_escaped_templates() {
        let shown = [
            template("disk full on <*>", 15, [0, 0, 0, 12, 0, 0, 3, 0]),
            template("bad \u{1b}[31m <*>", 5, [0, 0, 0, 0, 0, 0, 5, 0]),
        ];
        let t = table(&shown, 3, 20, Zone::new(true));
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "20 entries, 3 templates (the 2 with the most entries shown; -n 0 for all)"
        );
        assert!(lines[1].starts_with("   count  share  levels"), "{t}");
        assert!(lines[2].contains("15  75.0%  error 12 · info 3"), "{t}");
        assert!(
            lines[2].contains("2023-11-14T22:13:20.000Z  2023-11-14T22:14:20.000Z"),
            "{t}"
        );
        assert!(lines[2].ends_with("disk full on <*>"), "{t}");
        assert!(lines[3].ends_with("bad \\u{1b}[31m <*>"), "{t}");
    }

    #[test]
    fn json_has_one_object_per_template() {
        let v = template_json(&template("a <*>", 3, [0, 0, 0, 1, 0, 0, 2, 0]), 4);
        assert_eq!(
            v,
            json!({"template": "a <*>", "count": 3, "share": 0.75,
                   "levels": {"error": 1, "info": 2},
                   "first": "2023-11-14T22:13:20Z", "last": "2023-11-14T22:14:20Z"})
        );
    }
}
