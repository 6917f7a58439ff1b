//! `patterns` throughput: 1 M lines (the 16 systems of testdata/corpus, round-robin, each
//! line whole with its header) grouped by template, on the two shards' threads.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use logflux_query::patterns::Patterns;

const N: usize = 1_000_000;

fn lines() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus");
    let systems = [
        "hdfs",
        "hadoop",
        "spark",
        "zookeeper",
        "openstack",
        "bgl",
        "hpc",
        "thunderbird",
        "windows",
        "linux",
        "mac",
        "android",
        "healthapp",
        "apache",
        "openssh",
        "proxifier",
    ];
    let per: Vec<Vec<String>> = systems
        .iter()
        .map(|s| {
            std::fs::read_to_string(dir.join(format!("{s}.log")))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    (0..N)
        .map(|i| {
            let lines = &per[i % per.len()];
            lines[(i / per.len()) % lines.len()].clone()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = lines();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut g = c.benchmark_group("patterns");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("1M corpus lines, add_batch", |b| {
        b.iter(|| {
            let mut p = Patterns::default();
            let ids = p.add_batch(&refs);
            assert_eq!(ids.len(), N);
            p
        });
    });
    g.bench_function("1M corpus lines, one by one on one thread", |b| {
        b.iter(|| {
            let mut p = Patterns::default();
            for l in &refs {
                p.add(l);
            }
            p
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
