use super::*;
use proptest::prelude::*;

fn meta(i: u32, min_ts: i64, max_ts: i64, tokens: Vec<u64>) -> RecordMeta {
    RecordMeta {
        record_id: format!("r{i}"),
        key_id: if i.is_multiple_of(3) {
            String::new()
        } else {
            format!("k{}", i % 2)
        },
        payload: [1, 3, 4][(i % 3) as usize],
        entry_type: (i % 8) as u8,
        nonce: if i % 3 == 1 {
            None
        } else {
            Some([i as u8; 12])
        },
        crlf_stripped: i.is_multiple_of(2),
        min_ts,
        max_ts,
        count: i + 1,
        received_ns: 1_000 + i64::from(i),
        tokens,
        filter: None,
    }
}

fn read(bytes: &[u8]) -> Result<Footer, SegmentError> {
    let (len, crc) = parse_trailer(&bytes[bytes.len() - TRAILER_LEN..])?;
    let r = footer_range(bytes.len() as u64, len)?;
    Footer::parse(
        &bytes[r.start as usize..r.end as usize],
        crc,
        bytes.len() as u64,
    )
}

/// A segment of three records written with `finish`, as version 2 or (`v1`) version 1.
fn three(v1: bool) -> (Vec<u8>, SegmentSummary) {
    let mut w = SegmentWriter::new();
    w.add(meta(0, 10, 20, vec![5, 9]), b"body-zero");
    w.add(meta(1, -5, 15, vec![9]), b"");
    w.add(meta(2, 30, 40, vec![1, 5, 7]), b"body-two!");
    if v1 { w.finish_v1() } else { w.finish() }
}

#[test]
fn round_trip_with_bodies_and_summary() {
    for v1 in [false, true] {
        let (bytes, summary) = three(v1);
        assert_eq!(summary.min_ts, -5);
        assert_eq!(summary.max_ts, 40);
        assert_eq!(summary.records, 3);
        assert_eq!(summary.entries, 1 + 2 + 3);
        assert_eq!(summary.bloom, bloom::build(&[1, 5, 7, 9]));
        assert_eq!(summary.bytes, bytes.len() as u64);
        let f = read(&bytes).unwrap();
        assert_eq!(f.records.len(), 3);
        assert_eq!(
            &bytes[f.records[0].range.start as usize..f.records[0].range.end as usize],
            b"body-zero"
        );
        assert_eq!(
            &bytes[f.records[2].range.start as usize..f.records[2].range.end as usize],
            b"body-two!"
        );
        assert_eq!(f.records[1].range.start, f.records[1].range.end);
        assert_eq!(f.summary(bytes.len() as u64), summary);
        if v1 {
            assert_eq!(f.records[2].meta, meta(2, 30, 40, vec![1, 5, 7]));
            assert_eq!(f.records[0].meta.tokens, [5, 9]);
            assert_eq!(f.stored_bloom(), None);
        } else {
            // Version 2 keeps no token, only each record's filter.
            let mut want = meta(2, 30, 40, vec![]);
            let mut filter = Vec::new();
            tokenfilter::build(&[1, 5, 7], tokenfilter::salt("r2"), &mut filter);
            want.filter = Some(filter);
            assert_eq!(f.records[2].meta, want);
            assert_eq!(f.stored_bloom(), Some(&summary.bloom[..]));
        }
    }
}

#[test]
fn select_by_time_and_token_groups() {
    for v1 in [false, true] {
        let mut w = SegmentWriter::new();
        w.add(meta(0, 0, 10, vec![1, 2]), b"a");
        w.add(meta(1, 20, 30, vec![2, 3]), b"b");
        w.add(meta(2, 40, 50, vec![3, 4]), b"c");
        let f = read(&if v1 { w.finish_v1() } else { w.finish() }.0).unwrap();
        select_abc(&f);
    }
}

/// The selections of the segment of `select_by_time_and_token_groups` (exact for both
/// versions: these few tokens meet no false positive of the filters, built deterministically).
fn select_abc(f: &Footer) {
    assert_eq!(f.select(i64::MIN, i64::MAX, &[]), [0, 1, 2]);
    assert_eq!(f.select(25, 45, &[]), [1, 2]);
    assert_eq!(f.select(i64::MIN, i64::MAX, &[vec![2]]), [0, 1]);
    // any-of within a group
    assert_eq!(f.select(i64::MIN, i64::MAX, &[vec![1, 4]]), [0, 2]);
    // all of the groups
    assert_eq!(f.select(i64::MIN, i64::MAX, &[vec![2], vec![3]]), [1]);
    assert_eq!(
        f.select(i64::MIN, i64::MAX, &[vec![1], vec![4]]),
        Vec::<usize>::new()
    );
    assert_eq!(
        f.select(i64::MIN, i64::MAX, &[vec![99]]),
        Vec::<usize>::new()
    );
    assert_eq!(f.select(0, 15, &[vec![3]]), Vec::<usize>::new());
}

#[test]
fn every_footer_corruption_is_detected() {
    for v1 in [false, true] {
        let mut w = SegmentWriter::new();
        w.add(meta(0, 0, 10, vec![1, 2]), b"abc");
        w.add(meta(1, 20, 30, vec![2, 3]), b"defg");
        let bytes = if v1 { w.finish_v1() } else { w.finish() }.0;
        let body_len = 7;
        for i in body_len..bytes.len() {
            for bit in [0x01, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                assert!(read(&b).is_err(), "flip at {i} went unnoticed");
            }
        }
        for n in 0..bytes.len() {
            let cut = &bytes[..n];
            if cut.len() >= TRAILER_LEN {
                assert!(read(cut).is_err(), "truncated to {n}");
            }
        }
    }
}

#[test]
fn hex16_accepts_exactly_sixteen_hex_digits() {
    assert_eq!(hex16(b"0123456789abcdef"), Some(0x0123_4567_89ab_cdef));
    assert_eq!(hex16(b"FFFFFFFFFFFFFFFF"), Some(u64::MAX));
    assert_eq!(hex16(b"0123456789abcdeg"), None);
    assert_eq!(hex16(b"0123456789abcde"), None);
    assert_eq!(hex16(b"0123456789abcdef0"), None);
    assert_eq!(hex16(b"012345678 abcdef"), None);
    assert_eq!(hex16(b"0123456789abcde\xff"), None);
}

#[test]
fn opaque_tokens() {
    assert_eq!(opaque_token("0123456789abcdef"), 0x0123_4567_89ab_cdef);
    assert_eq!(opaque_token("0123456789ABCDEF"), 0x0123_4567_89ab_cdef);
    assert_ne!(opaque_token("user:42"), opaque_token("user:43"));
    assert_eq!(opaque_token("user:42"), opaque_token("user:42"));
}

#[test]
fn crc32c_known_vector() {
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
}

proptest! {
    #[test]
    fn selection_matches_a_naive_model(
        records in proptest::collection::vec(
            (-50i64..50, 0i64..30, proptest::collection::btree_set(0u64..12, 0..5)), 0..40),
        from in -60i64..60,
        span in 0i64..80,
        groups in proptest::collection::vec(proptest::collection::vec(0u64..14, 1..3), 0..3),
    ) {
        let mut w = SegmentWriter::new();
        for (i, (start, len, tokens)) in records.iter().enumerate() {
            w.add(meta(i as u32, *start, start + len, tokens.iter().copied().collect()), &[i as u8]);
        }
        let (bytes, _) = w.finish_v1();
        let f = read(&bytes).unwrap();
        let to = from + span;
        let want: Vec<usize> = records.iter().enumerate().filter(|(_, (s, l, toks))| {
            s + l >= from && *s <= to && groups.iter().all(|g| g.iter().any(|t| toks.contains(t)))
        }).map(|(i, _)| i).collect();
        prop_assert_eq!(f.select(from, to, &groups), want.clone());
        for (i, r) in f.records.iter().enumerate() {
            prop_assert_eq!(&bytes[r.range.start as usize..r.range.end as usize], &[i as u8]);
        }
        // Version 2: every record the model selects, and only records in the time range.
        let mut w = SegmentWriter::new();
        for (i, (start, len, tokens)) in records.iter().enumerate() {
            w.add(meta(i as u32, *start, start + len, tokens.iter().copied().collect()), &[i as u8]);
        }
        let f = read(&w.finish().0).unwrap();
        let got = f.select(from, to, &groups);
        for i in &want {
            prop_assert!(got.contains(i), "record {} missed", i);
        }
        for &i in &got {
            let (s, l, _) = records[i];
            prop_assert!(s + l >= from && s <= to);
        }
    }

    /// A version 2 footer never misses a token of a record: each record is selected by every
    /// one of its tokens, alone and in any-of groups with other tokens.
    #[test]
    fn a_filter_never_misses_a_token_of_its_record(
        records in proptest::collection::vec(
            proptest::collection::btree_set(any::<u64>(), 0..300), 1..6),
        other in any::<u64>(),
    ) {
        let mut w = SegmentWriter::new();
        for (i, tokens) in records.iter().enumerate() {
            w.add(meta(i as u32, 0, 10, tokens.iter().copied().collect()), b"x");
        }
        let (bytes, summary) = w.finish();
        let f = read(&bytes).unwrap();
        for (i, tokens) in records.iter().enumerate() {
            for &t in tokens {
                prop_assert!(f.select(0, 10, &[vec![t]]).contains(&i), "token {} of record {}", t, i);
                prop_assert!(f.select(0, 10, &[vec![other, t], vec![t]]).contains(&i));
                prop_assert!(bloom::may_contain(&summary.bloom, t));
            }
        }
    }

    #[test]
    fn arbitrary_footers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let crc = crc32c(&bytes);
        let _ = Footer::parse(&bytes, crc, bytes.len() as u64 + 13 + 100);
        for version in [1u8, 2] {
            let mut prefixed = b"LFSF".to_vec();
            prefixed.push(version);
            prefixed.extend_from_slice(&bytes);
            let crc = crc32c(&prefixed);
            let _ = Footer::parse(&prefixed, crc, prefixed.len() as u64 + 13 + 100);
        }
    }
}

#[test]
fn a_footer_gives_back_the_summary_its_writer_gave() {
    let mut w = SegmentWriter::new();
    for (i, tokens) in [vec![7u64, 3], vec![3, 9], vec![]].into_iter().enumerate() {
        w.add(
            RecordMeta {
                record_id: format!("r{i}"),
                key_id: "k".into(),
                payload: 4,
                entry_type: 0,
                nonce: Some([1; 12]),
                crlf_stripped: false,
                min_ts: 100 - i as i64 * 10,
                max_ts: 200 + i as i64,
                count: 3 + i as u32,
                received_ns: 1_000 + i as i64,
                tokens,
                filter: None,
            },
            b"body",
        );
    }
    let (bytes, summary) = w.finish();
    let footer = Footer::from_segment(&bytes).unwrap();
    assert_eq!(footer.summary(bytes.len() as u64), summary);
    assert_eq!(summary.bloom, bloom::build(&[3, 7, 9]));
}

/// The records of the golden segments: an agent batch with many tokens, an SDK part with one
/// opaque token, a record without tokens, and one sharing a token with the first; version 2
/// adds a fifth record with enough tokens for a fuse filter (the first's 40 take a list).
fn golden_writer(v1: bool) -> SegmentWriter {
    let mut w = SegmentWriter::new();
    let many: Vec<u64> = (1..=40u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    w.add(meta(1, 1_000, 2_000, many), b"agent batch ciphertext");
    w.add(
        meta(2, 1_500, 1_500, vec![opaque_token("user:42")]),
        b"sdk part",
    );
    w.add(meta(3, 3_000, 4_000, vec![]), b"");
    let mut shared = vec![0x9e37_79b9_7f4a_7c15, 7];
    shared.sort_unstable();
    w.add(meta(4, 5_000, 6_000, shared), b"fourth");
    if !v1 {
        let fuse: Vec<u64> = (1_000..1_100).collect();
        w.add(meta(5, 7_000, 7_000, fuse), b"fifth");
    }
    w
}

/// Golden segments of both footer versions: read, searched, and written again byte for byte
/// (a change of the filter crate's construction or hashing shows here). Regenerate only for a
/// deliberate format change: `LOGFLUX_WRITE_GOLDEN=1 cargo test -p logflux-server golden`.
#[test]
fn golden_segments_are_read_and_written_the_same() {
    for (name, v1) in [("segment-v1.lfs", true), ("segment-v2.lfs", false)] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        let (bytes, summary) = if v1 {
            golden_writer(true).finish_v1()
        } else {
            golden_writer(false).finish()
        };
        if std::env::var_os("LOGFLUX_WRITE_GOLDEN").is_some() {
            std::fs::write(&path, &bytes).unwrap();
        }
        let golden = std::fs::read(&path).unwrap();
        assert_eq!(bytes, golden, "{name}: the writer's bytes changed");
        let f = read(&golden).unwrap();
        assert_eq!(&golden[golden.len() - 5..golden.len() - 1], b"LFSG");
        let footer_start = golden.len()
            - TRAILER_LEN
            - u32::from_le_bytes(
                golden[golden.len() - 13..golden.len() - 9]
                    .try_into()
                    .unwrap(),
            ) as usize;
        assert_eq!(golden[footer_start + 4], if v1 { 1 } else { 2 }, "{name}");
        assert_eq!(f.summary(golden.len() as u64), summary, "{name}");
        let ids: Vec<_> = f
            .records
            .iter()
            .map(|r| r.meta.record_id.as_str())
            .collect();
        let all = (i64::MIN, i64::MAX);
        let want = ["r1", "r2", "r3", "r4", "r5"];
        assert_eq!(ids, want[..if v1 { 4 } else { 5 }], "{name}");
        if !v1 {
            let kinds: Vec<u8> = f
                .records
                .iter()
                .map(|r| r.meta.filter.as_ref().unwrap()[0])
                .collect();
            assert_eq!(kinds, [3, 3, 0, 3, 1], "list, list, none, list, fuse");
            assert_eq!(f.select(all.0, all.1, &[vec![1_050]]), [4]);
        }
        assert_eq!(
            f.select(all.0, all.1, &[vec![0x9e37_79b9_7f4a_7c15]]),
            [0, 3]
        );
        assert_eq!(
            f.select(all.0, all.1, &[vec![opaque_token("user:42")]]),
            [1]
        );
        assert_eq!(
            f.select(all.0, all.1, &[vec![7], vec![0x9e37_79b9_7f4a_7c15]]),
            [3]
        );
        assert_eq!(f.select(all.0, all.1, &[vec![8]]), Vec::<usize>::new());
        assert_eq!(f.select(2_500, 5_500, &[]), [2, 3]);
        assert_eq!(
            &golden[f.records[1].range.start as usize..f.records[1].range.end as usize],
            b"sdk part"
        );
    }
}

#[test]
fn a_rewrite_of_version_2_records_keeps_their_filters_and_stores_the_empty_bloom() {
    let (bytes, summary) = three(false);
    let f = read(&bytes).unwrap();
    assert!(!summary.bloom.is_empty());
    let mut w = SegmentWriter::new();
    for r in [&f.records[0], &f.records[2]] {
        w.add(r.meta.clone(), b"kept");
    }
    let (again, s2) = w.finish();
    let g = read(&again).unwrap();
    assert_eq!(g.records[0].meta, f.records[0].meta);
    assert_eq!(g.records[1].meta, f.records[2].meta);
    assert_eq!(g.select(i64::MIN, i64::MAX, &[vec![7]]), [1]);
    assert_eq!(g.select(i64::MIN, i64::MAX, &[vec![9]]), [0]);
    // The records' tokens are gone, and the old Bloom filter would still answer for the
    // records left out: the one that says "maybe" to every token is stored.
    assert!(s2.bloom.is_empty());
    assert_eq!(g.stored_bloom(), Some(&[][..]));
    assert!(bloom::may_contain(&s2.bloom, 9) && bloom::may_contain(&s2.bloom, 12345));
}

/// Records carrying the same tokens (every SDK part carries its opaque token and
/// UNTOKENIZED) get filters the server cannot tell apart from those of other tokens.
#[test]
fn records_with_the_same_tokens_store_different_filters() {
    for tokens in [
        vec![opaque_token("user:42"), opaque_token("x")],
        (1..=100).collect(),
    ] {
        let mut w = SegmentWriter::new();
        for i in 0..3 {
            w.add(meta(i, 0, 10, tokens.clone()), b"x");
        }
        let f = read(&w.finish().0).unwrap();
        let filters: Vec<_> = f.records.iter().map(|r| r.meta.filter.clone()).collect();
        assert_ne!(filters[0], filters[1]);
        assert_ne!(filters[1], filters[2]);
        assert_ne!(filters[0], filters[2]);
        assert_eq!(f.select(0, 10, &[vec![tokens[0]]]), [0, 1, 2]);
    }
}

#[test]
fn a_cached_footer_forgets_its_bloom_and_still_selects() {
    let (bytes, _) = three(false);
    let mut f = read(&bytes).unwrap();
    let before = f.select(i64::MIN, i64::MAX, &[vec![7]]);
    f.forget_bloom();
    assert_eq!(f.stored_bloom(), Some(&[][..]));
    assert_eq!(f.select(i64::MIN, i64::MAX, &[vec![7]]), before);
}

/// An SDK part carries two tokens (its opaque token and UNTOKENIZED): its filter is a list of
/// two fingerprints, 6 bytes with its kind and length (a fuse filter took 34).
#[test]
fn an_sdk_part_filter_takes_six_bytes() {
    let untokenized = opaque_token(logflux_proto::UNTOKENIZED);
    let mut w = SegmentWriter::new();
    for i in 0..1_000u32 {
        let mut m = meta(
            i,
            0,
            10,
            vec![opaque_token(&format!("user:{i}")), untokenized],
        );
        m.record_id = format!(
            "sdk-{:032x}",
            u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        );
        w.add(m, b"x");
    }
    let f = read(&w.finish().0).unwrap();
    for r in &f.records {
        let filter = r.meta.filter.as_ref().unwrap();
        // kind 3, two fingerprints; one more byte for its length in the footer.
        assert_eq!(filter.len(), 5);
        assert_eq!(filter[0], 3);
    }
    assert_eq!(f.select(0, 10, &[vec![untokenized]]).len(), 1_000);
}
