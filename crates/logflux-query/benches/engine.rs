//! Engine throughput: the Grafana log-volume shape (count_over_time by level), a filtered
//! log query, and an alerting rule's sliding count, over 1 M entries.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logflux_proto::{Entry, EntryView, Level};
use logflux_query::{Query, Row, parse};

const N: usize = 1_000_000;
const S: i64 = 1_000_000_000;

fn entries() -> Vec<EntryView> {
    let payloads = [
        "GET /api/v1/users 200 took 12ms",
        "connection refused by db-1, retrying",
        "disk full on /var/lib/data",
        "user alice logged in from 10.0.0.7",
    ];
    (0..N)
        .map(|i| {
            // One entry every 3.6 ms: 1 M entries over one hour.
            let mut e = Entry::new(
                i as i64 * 3_600_000,
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
    let entries = entries();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let Ok(Query::Metric(volume)) = parse(
        r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__ [1m]))"#,
    ) else {
        panic!("volume query");
    };
    g.bench_function("count_over_time by level, 1M rows, 1h / 1m steps", |b| {
        b.iter(|| {
            let m = volume.eval_range(&rows, 60 * S, 3600 * S, 60 * S).unwrap();
            assert_eq!(m.len(), 8);
        });
    });
    let Ok(Query::Log(log)) = parse(r#"{app="web", level=~"err|info"} |= "disk full""#) else {
        panic!("log query");
    };
    g.bench_function("log query with line filter, 1M rows", |b| {
        b.iter(|| {
            let n = rows.iter().filter_map(|r| log.eval(r)).count();
            assert!(n > 0);
        });
    });
    // An alerting rule over the live stream: 1 M entries (one hour) pushed through a
    // sliding count, evaluated every minute as they come.
    let Ok(Query::Metric(rule)) = parse(
        r#"sum by (source) (count_over_time({app="web", level="error"} |= "disk" [5m])) > 10"#,
    ) else {
        panic!("rule query");
    };
    g.bench_function(
        "sliding count rule, 1M rows pushed, evaluated every 1m",
        |b| {
            b.iter(|| {
                let mut s = rule.sliding(S).unwrap();
                let mut next_eval = 60 * S;
                for r in &rows {
                    if r.entry.timestamp_ns > next_eval {
                        s.eval_at(next_eval).unwrap();
                        next_eval += 60 * S;
                    }
                    s.push(r).unwrap();
                }
                s.eval_at(next_eval).unwrap();
                assert_eq!(s.dropped(), 0);
            });
        },
    );
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
