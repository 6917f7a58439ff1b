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

#[test]
fn round_trip_with_bodies_and_summary() {
    let mut w = SegmentWriter::new();
    w.add(meta(0, 10, 20, vec![5, 9]), b"body-zero");
    w.add(meta(1, -5, 15, vec![9]), b"");
    w.add(meta(2, 30, 40, vec![1, 5, 7]), b"body-two!");
    let (bytes, summary) = w.finish();
    assert_eq!(summary.min_ts, -5);
    assert_eq!(summary.max_ts, 40);
    assert_eq!(summary.records, 3);
    assert_eq!(summary.entries, 1 + 2 + 3);
    assert_eq!(summary.tokens, [1, 5, 7, 9]);
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
    assert_eq!(f.records[2].meta, meta(2, 30, 40, vec![1, 5, 7]));
    assert_eq!(f.records[0].meta.tokens, [5, 9]);
}

#[test]
fn select_by_time_and_token_groups() {
    let mut w = SegmentWriter::new();
    w.add(meta(0, 0, 10, vec![1, 2]), b"a");
    w.add(meta(1, 20, 30, vec![2, 3]), b"b");
    w.add(meta(2, 40, 50, vec![3, 4]), b"c");
    let f = read(&w.finish().0).unwrap();
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
    let mut w = SegmentWriter::new();
    w.add(meta(0, 0, 10, vec![1, 2]), b"abc");
    w.add(meta(1, 20, 30, vec![2, 3]), b"defg");
    let bytes = w.finish().0;
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
        let (bytes, _) = w.finish();
        let f = read(&bytes).unwrap();
        let to = from + span;
        let want: Vec<usize> = records.iter().enumerate().filter(|(_, (s, l, toks))| {
            s + l >= from && *s <= to && groups.iter().all(|g| g.iter().any(|t| toks.contains(t)))
        }).map(|(i, _)| i).collect();
        prop_assert_eq!(f.select(from, to, &groups), want);
        for (i, r) in f.records.iter().enumerate() {
            prop_assert_eq!(&bytes[r.range.start as usize..r.range.end as usize], &[i as u8]);
        }
    }

    #[test]
    fn arbitrary_footers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let crc = crc32c(&bytes);
        let _ = Footer::parse(&bytes, crc, bytes.len() as u64 + 13 + 100);
        let mut prefixed = b"LFSF\x01".to_vec();
        prefixed.extend_from_slice(&bytes);
        let crc = crc32c(&prefixed);
        let _ = Footer::parse(&prefixed, crc, prefixed.len() as u64 + 13 + 100);
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
            },
            b"body",
        );
    }
    let (bytes, summary) = w.finish();
    let footer = Footer::from_segment(&bytes).unwrap();
    assert_eq!(footer.summary(bytes.len() as u64), summary);
    assert_eq!(summary.tokens, [3, 7, 9]);
}
