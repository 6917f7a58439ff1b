//! Sealing and opening: round trips, and every kind of tampering is an integrity error.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use logflux_crypto::{
    BatchSealer, CryptoError, Dek, ErrorKind, PrivateKey, RecordBinding, SealingKey, open_batch,
    open_sdk_gzip, open_sdk_part, seal_sdk_part, unwrap_dek, wrap_dek, wrap_dek_mgf1_sha1,
};
use logflux_proto::{Entry, EntryType, Level};
use proptest::prelude::*;

const BINDING: RecordBinding<'static> = RecordBinding {
    tenant: "tenant-1",
    application: "checkout",
    key_id: "dek-42",
    record_id: "01JD8Z5W3YV5K2N0Q9R7T6S4P3",
};

fn sample(n: usize) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut e = Entry::new(
                1_763_675_346_545_000_000 + i as i64 * 1_000_000,
                Level::from_number(1 + (i % 8) as i64).unwrap(),
                "checkout-service",
                &format!(
                    "GET /api/v1/orders/{i} completed status=200 user=u{}",
                    i % 13
                ),
            );
            e.metadata.insert("host", format!("web-{}", i % 4));
            e
        })
        .collect()
}

fn rsa() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| PrivateKey::generate(2048).unwrap())
}

#[test]
fn batch_round_trip_and_metadata() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let entries = sample(500);
    let sealed = BatchSealer::new(3).seal(&key, &BINDING, &entries).unwrap();
    assert_eq!(sealed.count, 500);
    assert_eq!(
        sealed.time_range,
        (entries[0].timestamp_ns, entries[499].timestamp_ns)
    );
    assert!(
        sealed.ciphertext.len() < sealed.plaintext_len / 3,
        "repetitive logs compress: {} of {}",
        sealed.ciphertext.len(),
        sealed.plaintext_len
    );
    let opened = open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext).unwrap();
    assert_eq!(opened, entries);
}

/// `with_format(1)` writes version 1, for clients older than version 2; the default writes
/// the newest; both open to the same entries.
#[test]
fn the_sealer_writes_the_batch_format_it_is_asked_for() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let entries = sample(50);
    for (sealer, version) in [
        (BatchSealer::new(1).with_format(1), 1u8),
        (BatchSealer::new(1), logflux_proto::batch::VERSION),
        (BatchSealer::new(1).with_format(2), 2),
    ] {
        let mut sealer = sealer;
        let sealed = sealer.seal(&key, &BINDING, &entries).unwrap();
        let plain =
            logflux_crypto::open_batch_plain(&key, &BINDING, &sealed.nonce, &sealed.ciphertext)
                .unwrap()
                .plain;
        assert_eq!(&plain[..4], &[b'L', b'F', b'B', version]);
        let opened = open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext).unwrap();
        assert_eq!(opened, entries);
    }
}

#[test]
fn nonces_are_fresh_for_every_seal() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let mut sealer = BatchSealer::new(1);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let s = sealer.seal(&key, &BINDING, &sample(1)).unwrap();
        assert!(seen.insert(s.nonce), "a nonce repeated");
    }
}

#[test]
fn every_bit_flip_is_detected() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let sealed = BatchSealer::new(3)
        .seal(&key, &BINDING, &sample(3))
        .unwrap();
    for i in 0..sealed.ciphertext.len() * 8 {
        let mut ct = sealed.ciphertext.clone();
        ct[i / 8] ^= 1 << (i % 8);
        let e = open_batch(&key, &BINDING, &sealed.nonce, &ct).unwrap_err();
        assert!(matches!(e, CryptoError::Integrity), "bit {i}: {e}");
    }
    for i in 0..96 {
        let mut nonce = sealed.nonce;
        nonce[i / 8] ^= 1 << (i % 8);
        assert!(matches!(
            open_batch(&key, &BINDING, &nonce, &sealed.ciphertext),
            Err(CryptoError::Integrity)
        ));
    }
}

#[test]
fn truncation_wrong_key_and_wrong_binding_are_integrity_errors() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let sealed = BatchSealer::new(3)
        .seal(&key, &BINDING, &sample(3))
        .unwrap();
    for n in 0..sealed.ciphertext.len() {
        let e = open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext[..n]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "truncated to {n}");
    }
    let other = SealingKey::new(&Dek::generate().unwrap());
    assert!(matches!(
        open_batch(&other, &BINDING, &sealed.nonce, &sealed.ciphertext),
        Err(CryptoError::Integrity)
    ));
    let moved = [
        RecordBinding {
            tenant: "tenant-2",
            ..BINDING
        },
        RecordBinding {
            application: "billing",
            ..BINDING
        },
        RecordBinding {
            key_id: "dek-43",
            ..BINDING
        },
        RecordBinding {
            record_id: "01JD8Z5W3YV5K2N0Q9R7T6S4P4",
            ..BINDING
        },
        // Field boundaries are part of the binding: moving a character across them fails.
        RecordBinding {
            tenant: "tenant-1c",
            application: "heckout",
            ..BINDING
        },
    ];
    for b in moved {
        assert!(
            matches!(
                open_batch(&key, &b, &sealed.nonce, &sealed.ciphertext),
                Err(CryptoError::Integrity)
            ),
            "{b:?}"
        );
    }
}

#[test]
fn dek_wrap_round_trip_both_mgf1_variants() {
    let sk = rsa();
    let pk = sk.public_key();
    let dek = Dek::generate().unwrap();
    let w = wrap_dek(&pk, &dek).unwrap();
    assert_eq!(unwrap_dek(sk, &w).unwrap().expose(), dek.expose());
    let java = wrap_dek_mgf1_sha1(&pk, &dek).unwrap();
    assert_ne!(w, java);
    assert_eq!(unwrap_dek(sk, &java).unwrap().expose(), dek.expose());
    // Another key, or garbage, does not unwrap.
    let other = PrivateKey::generate(2048).unwrap();
    assert!(matches!(unwrap_dek(&other, &w), Err(CryptoError::Unwrap)));
    let mut bad = w.clone();
    bad[100] ^= 1;
    assert!(matches!(unwrap_dek(sk, &bad), Err(CryptoError::Unwrap)));
    assert!(matches!(unwrap_dek(sk, b"short"), Err(CryptoError::Unwrap)));
}

#[test]
fn sdk_part_gzip_and_plain_json() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let json = br#"{"v":"2.0","type":"log","source":"web","level":4,"ts":"2026-11-20T21:49:06.545Z","message":"boom"}"#;
    for gzip in [true, false] {
        let (nonce, body) = seal_sdk_part(&key, json, gzip).unwrap();
        assert!(!body.starts_with(&[0x1f, 0x8b]), "ciphertext, not gzip");
        assert_eq!(open_sdk_part(&key, &nonce, &body, false).unwrap(), json);
    }
    let gz = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(json).unwrap();
        e.finish().unwrap()
    };
    assert_eq!(open_sdk_gzip(&gz).unwrap(), json);
    assert_eq!(open_sdk_gzip(json).unwrap(), json);
}

#[test]
fn sdk_part_whose_ciphertext_ended_in_crlf_opens_after_restoring_it() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    // Search for a seal whose ciphertext ends in 0d 0a, as one JS part in 65 536 does.
    let json = br#"{"message":"x"}"#;
    let (nonce, body) = loop {
        let (n, b) = seal_sdk_part(&key, json, false).unwrap();
        if b.ends_with(b"\r\n") {
            break (n, b);
        }
    };
    let stripped = &body[..body.len() - 2];
    assert_eq!(open_sdk_part(&key, &nonce, stripped, true).unwrap(), json);
    assert!(matches!(
        open_sdk_part(&key, &nonce, stripped, false),
        Err(CryptoError::Integrity)
    ));
    // An intact body flagged as stripped still opens on the first try.
    let (n2, b2) = seal_sdk_part(&key, json, true).unwrap();
    assert_eq!(open_sdk_part(&key, &n2, &b2, true).unwrap(), json);
}

#[test]
fn gzip_bombs_are_bounded() {
    use std::io::Write as _;
    let key = SealingKey::new(&Dek::generate().unwrap());
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![b'a'; logflux_crypto::MAX_SDK_PLAINTEXT + 10])
        .unwrap();
    let mut gz = e.finish().unwrap();
    assert!(gz.len() < 20_000);
    assert!(matches!(
        open_sdk_gzip(&gz),
        Err(CryptoError::TooLarge { .. })
    ));
    let nonce = key.seal(&[], &mut gz).unwrap();
    assert!(matches!(
        open_sdk_part(&key, &nonce, &gz, false),
        Err(CryptoError::TooLarge { .. })
    ));
}

/// Seals `plaintext` (the bytes under AES-GCM, whatever they are) as a batch would be.
fn seal_raw(key: &SealingKey, mut plaintext: Vec<u8>) -> ([u8; 12], Vec<u8>) {
    let nonce = key.seal(&BINDING.aad(), &mut plaintext).unwrap();
    (nonce, plaintext)
}

#[test]
fn batch_bomb_claiming_255_mib_is_refused_before_decompressing() {
    use std::io::Write as _;
    // 255 MiB of zeros compress to a few KiB; the frame states its content size.
    let claimed = 255 * 1024 * 1024;
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.include_contentsize(true).unwrap();
    enc.set_pledged_src_size(Some(claimed as u64)).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..claimed / zeros.len() {
        enc.write_all(&zeros).unwrap();
    }
    let frame = enc.finish().unwrap();
    assert!(frame.len() < 64 * 1024, "{} bytes", frame.len());
    let key = SealingKey::new(&Dek::generate().unwrap());
    let (nonce, ct) = seal_raw(&key, frame);
    let started = std::time::Instant::now();
    let err = open_batch(&key, &BINDING, &nonce, &ct).unwrap_err();
    assert!(
        matches!(err, CryptoError::TooLarge { limit } if limit == logflux_proto::limits::MAX_BATCH_PLAINTEXT_BYTES),
        "{err}"
    );
    // Refused from the frame header: nothing was decompressed.
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn sealed_batches_are_padded_to_padme_lengths_and_open() {
    use logflux_crypto::padme;
    // Padmé: at most 12 % more, only the top bits of the length may be set.
    for len in [2usize, 9, 100, 1000, 4097, 65_535, 1 << 20, 10_000_019] {
        let p = padme(len);
        assert!(
            p >= len && (p - len) as f64 <= 0.12 * len as f64,
            "{len} -> {p}"
        );
        assert_eq!(padme(p), p, "padded lengths are fixed points");
    }
    assert_eq!(padme(9), 10);
    assert_eq!(padme(1000), 1024);
    assert_eq!(padme(221), 224);
    let key = SealingKey::new(&Dek::generate().unwrap());
    let mut sealer = BatchSealer::new(3);
    let mut lengths = std::collections::BTreeSet::new();
    for n in 1..200 {
        let entries = sample(n);
        let sealed = sealer.seal(&key, &BINDING, &entries).unwrap();
        let body = sealed.ciphertext.len() - 16;
        assert_eq!(
            padme(body),
            body,
            "{n} entries: {body} bytes is not a Padmé length"
        );
        lengths.insert(body);
        assert_eq!(
            open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext).unwrap(),
            entries
        );
    }
    // Far fewer distinct lengths than batches.
    assert!(lengths.len() < 100, "{} distinct lengths", lengths.len());
}

#[test]
fn unpadded_batches_still_open_and_bad_padding_is_refused() {
    let key = SealingKey::new(&Dek::generate().unwrap());
    let entries = sample(7);
    let mut plain = Vec::new();
    logflux_proto::batch::encode(&entries, &mut plain);
    let frame = zstd::bulk::compress(&plain, 3).unwrap();
    // As sealed before padding existed.
    let (nonce, ct) = seal_raw(&key, frame.clone());
    assert_eq!(open_batch(&key, &BINDING, &nonce, &ct).unwrap(), entries);
    // A skippable frame of zeros is the padding; anything else after the frame is refused.
    let skippable = |len: u32, fill: u8| {
        let mut p = frame.clone();
        p.extend_from_slice(&0x184D_2A50u32.to_le_bytes());
        p.extend_from_slice(&len.to_le_bytes());
        p.extend(std::iter::repeat_n(fill, len as usize));
        p
    };
    let (nonce, ct) = seal_raw(&key, skippable(5, 0));
    assert_eq!(open_batch(&key, &BINDING, &nonce, &ct).unwrap(), entries);
    // Any zstd decoder skips that frame: a client from before padding decompressed the whole
    // plaintext with the first frame's content size, and still gets the batch.
    assert_eq!(
        zstd::bulk::decompress(&skippable(5, 0), plain.len()).unwrap(),
        plain
    );
    let mut wrong_len = skippable(5, 0);
    wrong_len.push(0);
    let mut bare_zeros = frame.clone();
    bare_zeros.extend_from_slice(&[0; 12]);
    for junk in [
        skippable(5, 1),
        wrong_len,
        bare_zeros,
        [&frame[..], &[0, 0, 1]].concat(),
    ] {
        let (nonce, ct) = seal_raw(&key, junk);
        let e = open_batch(&key, &BINDING, &nonce, &ct).unwrap_err();
        assert!(
            matches!(e, CryptoError::Format(ref m) if m.contains("padding")),
            "{e}"
        );
    }
    let (nonce, ct) = seal_raw(&key, frame[..frame.len() - 1].to_vec());
    assert!(matches!(
        open_batch(&key, &BINDING, &nonce, &ct),
        Err(CryptoError::Format(_))
    ));
}

#[test]
fn debug_output_never_shows_keys() {
    let dek = Dek::generate().unwrap();
    assert_eq!(format!("{dek:?}"), "Dek(***)");
    assert_eq!(format!("{:?}", SealingKey::new(&dek)), "SealingKey(***)");
}

fn arb_entry() -> impl Strategy<Value = Entry> {
    (
        any::<i64>(),
        1i64..=8,
        1i64..=7,
        ".{0,16}",
        any::<String>(),
        proptest::collection::btree_map(".{0,8}", ".{0,16}", 0..3),
    )
        .prop_map(|(ts, l, t, source, payload, metadata)| Entry {
            timestamp_ns: ts,
            level: Level::from_number(l).unwrap(),
            entry_type: EntryType::from_number(t).unwrap(),
            source: source.into(),
            payload,
            payload_type: "generic".into(),
            metadata: metadata.into(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sealed_batches_open_to_exactly_the_same_entries(
        entries in proptest::collection::vec(arb_entry(), 0..40),
        level in 1i32..6,
    ) {
        let key = SealingKey::new(&Dek::generate().unwrap());
        let sealed = BatchSealer::new(level).seal(&key, &BINDING, &entries).unwrap();
        prop_assert_eq!(open_batch(&key, &BINDING, &sealed.nonce, &sealed.ciphertext).unwrap(), entries);
    }

    #[test]
    fn arbitrary_ciphertext_never_panics_or_opens(ct in proptest::collection::vec(any::<u8>(), 0..256)) {
        let key = SealingKey::new(&Dek::generate().unwrap());
        prop_assert!(open_batch(&key, &BINDING, &[0; 12], &ct).is_err());
        prop_assert!(open_sdk_part(&key, &[0; 12], &ct, true).is_err());
    }
}
