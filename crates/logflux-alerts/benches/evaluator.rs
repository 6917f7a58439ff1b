//! The evaluator's cost: 100 rules over one minute of a 10 000 entries/s stream (600 000
//! entries), evaluated every 10 s as the entries come. The time per iteration over 60 s is
//! the share of one core the evaluator needs at that rate.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logflux_alerts::eval::{Evaluator, Options};
use logflux_alerts::rules::parse_rules;
use logflux_proto::{Entry, EntryView, Level};
use logflux_query::Row;

const RATE: usize = 10_000;
const SECS: usize = 60;

fn rules() -> String {
    let mut y = String::from("groups:\n");
    // 10 groups of 10 rules: counts, rates and bytes, grouped or not, with line filters.
    let exprs = [
        r#"sum by (source) (count_over_time({app="web", level="error"} |= "timeout" [5m])) > 10"#,
        r#"sum(rate({app="web"} |= "refused" [1m])) > 5"#,
        r#"sum by (level) (count_over_time({app="web"} [1m])) > 1000"#,
        r#"sum by (source) (bytes_over_time({app="web", source="api"} [5m])) > 1e6"#,
        r#"count_over_time({app="web", source="db"} |~ "disk (full|error)" [2m]) > 3"#,
        r#"sum by (host) (count_over_time({app="web"} |= "GET" [1m])) > 500"#,
        r#"max by (source) (max_over_time({app="web"} |= "took" | logfmt | unwrap took [1m])) > 900"#,
        r#"sum(count_over_time({app="web", level=~"warn|warning"} [10m])) > 100"#,
        r#"sum by (source) (rate({app="web"} != "health" [30s])) > 50"#,
        r#"sum(count_over_time({app="web"} |= "alice" [1h])) > 0"#,
    ];
    for g in 0..10 {
        y.push_str(&format!("  - name: g{g}\n    interval: 10s\n    rules:\n"));
        for (i, e) in exprs.iter().enumerate() {
            y.push_str(&format!(
                "      - alert: R{g}x{i}\n        expr: '{e}'\n        for: 1m\n"
            ));
        }
    }
    y
}

fn entries() -> Vec<EntryView> {
    let payloads = [
        "GET /api/v1/users 200 took=12",
        "connection refused by db-1, retrying",
        "disk full on /var/lib/data",
        "user alice logged in from 10.0.0.7",
        "read timeout after 30s",
    ];
    (0..RATE * SECS)
        .map(|i| {
            let mut e = Entry::new(
                (i * (1_000_000_000 / RATE)) as i64,
                Level::ALL[i % 8],
                ["api", "db", "web"][i % 3],
                payloads[i % payloads.len()],
            );
            e.metadata.insert("host", format!("h{}", i % 4));
            e.into()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let set = || parse_rules(&rules(), Path::new("bench.yaml")).unwrap();
    assert_eq!(
        set().groups.iter().map(|g| g.rules.len()).sum::<usize>(),
        100
    );
    let entries = entries();
    let mut g = c.benchmark_group("evaluator");
    g.throughput(Throughput::Elements(entries.len() as u64));
    g.sample_size(10);
    g.bench_function(
        "100 rules, 60 s of 10 000 entries/s, evaluated every 10 s",
        |b| {
            b.iter(|| {
                let mut ev = Evaluator::new(set(), None, &Options::default());
                let mut next = 0;
                let mut notified = 0;
                for e in &entries {
                    let ms = e.timestamp_ns / 1_000_000;
                    if ms >= next {
                        notified += ev.tick(ms).len();
                        next = ev.next_due_ms().unwrap();
                    }
                    ev.push(&Row {
                        app: "web",
                        entry: e,
                    });
                }
                notified += ev.tick(SECS as i64 * 1_000).len();
                assert_eq!(ev.metrics().failures, 0);
                notified
            });
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
