//! NDJSON parse + validate throughput, for entries of about 200 bytes.
#![allow(clippy::unwrap_used)]
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logflux_proto::ndjson::{Message, parse_line};
use std::hint::black_box;

fn lines() -> Vec<String> {
    (0..1000)
        .map(|i| {
            format!(
                r#"{{"version":"1.0","payload":"GET /api/v1/orders/{i} completed in {}ms user=u{} status=200 bytes=5120","source":"checkout-service","timestamp":"2026-11-20T21:49:06.{:03}Z","payloadType":"generic","entryType":1,"logLevel":7,"metadata":{{"host":"web-{}","region":"eu-west-1"}}}}"#,
                i % 97,
                i % 13,
                i % 1000,
                i % 8
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let mut g = c.benchmark_group("ndjson");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse_validate_entries", |b| {
        b.iter(|| {
            for l in &lines {
                match parse_line(black_box(l.as_bytes()), 0) {
                    Ok(Message::Entries(m)) => {
                        black_box(m);
                    }
                    _ => unreachable!(),
                }
            }
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("parse_validate_bytes", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(parse_line(black_box(l.as_bytes()), 0).is_ok());
            }
        })
    });
    let batch = format!(
        r#"{{"version":"1.0","entries":[{}]}}"#,
        lines[..100].join(",")
    );
    g.throughput(Throughput::Elements(100));
    g.bench_function("parse_validate_batch_of_100", |b| {
        b.iter(|| black_box(parse_line(black_box(batch.as_bytes()), 0).is_ok()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
