//! Seal and open of ~1 MiB batches, raw AES-256-GCM for comparison, and token computation.
#![allow(clippy::unwrap_used)]
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use logflux_crypto::{
    BatchSealer, CachedTokenSet, DEFAULT_TOKEN_CACHE, Dek, Field, RecordBinding, SealingKey,
    SearchKey, TokenSet, open_batch,
};
use logflux_proto::{Entry, Level};
use std::hint::black_box;

const BINDING: RecordBinding<'static> = RecordBinding {
    tenant: "t_01",
    application: "app_checkout",
    key_id: "k_1",
    record_id: "01JD8Z5W3YV5K2N0Q9R7T6S4P3",
};

/// About 1 MiB (encoded) of realistic ~200-byte log entries: 4 856 of them.
fn entries() -> Vec<Entry> {
    entries_n(4856)
}

/// `n` entries as [`entries`] makes them.
fn entries_n(n: usize) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut i: u64 = 0;
    while out.len() < n {
        let mut e = Entry::new(
            1_763_675_346_545_000_000 + i as i64 * 1_000_017,
            Level::from_number(1 + (i % 8) as i64).unwrap(),
            "checkout-service",
            &format!(
                "GET /api/v1/orders/{} completed in {}ms user=u{} trace={:016x} status={}",
                i * 7919 % 100_000,
                i % 250,
                i % 1013,
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                [200, 201, 404, 500][(i % 4) as usize]
            ),
        );
        e.metadata.insert("host", format!("web-{}", i % 8));
        e.metadata.insert("region", "eu-west-1");
        out.push(e);
        i += 1;
    }
    out
}

fn seal_open(c: &mut Criterion) {
    let entries = entries();
    let mut plain = Vec::new();
    logflux_proto::batch::encode(&entries, &mut plain);
    let key = SealingKey::new(&Dek::generate().unwrap());
    let mut g = c.benchmark_group("batch_1mib");
    g.throughput(Throughput::Bytes(plain.len() as u64));
    g.sample_size(30);
    for level in [-1, 1, 3] {
        let mut sealer = BatchSealer::new(level);
        g.bench_with_input(BenchmarkId::new("seal_zstd", level), &level, |b, _| {
            b.iter(|| black_box(sealer.seal(&key, &BINDING, black_box(&entries)).unwrap()))
        });
        let sealed = sealer.seal(&key, &BINDING, &entries).unwrap();
        eprintln!(
            "zstd level {level}: {} -> {} bytes (ratio {:.1})",
            sealed.plaintext_len,
            sealed.ciphertext.len(),
            sealed.plaintext_len as f64 / sealed.ciphertext.len() as f64
        );
        g.bench_with_input(BenchmarkId::new("open_zstd", level), &level, |b, _| {
            b.iter(|| {
                black_box(open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext).unwrap())
            })
        });
    }
    // The baseline: AES-256-GCM alone over the same number of bytes.
    let mut buf = plain.clone();
    g.bench_function("aes_256_gcm_only", |b| {
        b.iter(|| {
            buf.truncate(plain.len());
            black_box(key.seal(b"aad", &mut buf).unwrap())
        })
    });
    g.bench_function("decode_only", |b| {
        b.iter(|| black_box(logflux_proto::batch::decode(black_box(&plain)).unwrap()))
    });
    let compressed = zstd::bulk::compress(&plain, 1).unwrap();
    g.bench_function("zstd1_decompress_only", |b| {
        b.iter(|| black_box(zstd::bulk::decompress(black_box(&compressed), plain.len()).unwrap()))
    });
    g.bench_function("encode_only", |b| {
        let mut out = Vec::with_capacity(plain.len());
        b.iter(|| {
            out.clear();
            logflux_proto::batch::encode(black_box(&entries), &mut out);
        })
    });
    g.finish();
}

fn tokens(c: &mut Criterion) {
    let entries = entries();
    let tk = SearchKey::generate().unwrap().token_key("app_checkout");
    let mut g = c.benchmark_group("tokens");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single_token", |b| {
        b.iter(|| black_box(tk.token(Field::Word, black_box("completed"))))
    });
    let batch = &entries[..1000];
    g.throughput(Throughput::Elements(batch.len() as u64));
    // The tokenizer alone: the words of 1000 entries' payloads.
    g.bench_function("words_of_1000_payloads", |b| {
        b.iter(|| {
            batch
                .iter()
                .map(|e| logflux_crypto::words(black_box(&e.payload)).count())
                .sum::<usize>()
        })
    });
    g.bench_function("batch_of_1000_entries", |b| {
        let mut set = TokenSet::new();
        b.iter(|| {
            for e in batch {
                set.add_entry(e);
            }
            black_box(set.finish(&tk))
        })
    });
    // The agent's set: successive batches of 1000 entries through one cache, over 100 000
    // entries (each with a trace id of its own, so at least one HMAC per entry remains, and the
    // cache fills and is emptied as it goes).
    let many = entries_n(100_000);
    g.bench_function("batch_of_1000_entries_cached", |b| {
        let mut set = CachedTokenSet::new(tk.clone(), DEFAULT_TOKEN_CACHE);
        let mut next = 0;
        b.iter(|| {
            for e in &many[next..next + 1000] {
                set.add_entry(e);
            }
            next = (next + 1000) % many.len();
            black_box(set.finish())
        })
    });
    g.finish();
}

criterion_group!(benches, seal_open, tokens);
criterion_main!(benches);
