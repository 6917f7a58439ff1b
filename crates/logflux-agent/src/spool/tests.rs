//! The spool against a model: a plain queue of records. Random sequences of appends, shipping
//! with acknowledgement, restarts, crashes mid-write (torn frames) and corruption must leave the
//! spool holding exactly what the model holds, in order.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

fn record(n: u64, body_len: usize) -> SpoolRecord {
    SpoolRecord {
        record_id: format!("rec-{n:08}"),
        key_id: "ak_0123".into(),
        nonce: [n as u8; 12],
        count: (n % 100) as u32 + 1,
        min_ts: (n as i64).wrapping_mul(10),
        max_ts: (n as i64).wrapping_mul(10).wrapping_add(5),
        sealed_ns: n as i64,
        tokens: (0..(n % 5)).map(|t| n.wrapping_add(t * 7)).collect(),
        body: (0..body_len).map(|i| (i as u64 ^ n) as u8).collect(),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    /// Appended without their fsyncs, then one for all (the writer's group commit).
    AppendGroup(Vec<usize>),
    Ship(usize),
    Restart,
    TornWrite(Vec<u8>),
    CorruptLast,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..3000).prop_map(Op::Append),
        2 => proptest::collection::vec(0usize..3000, 1..5).prop_map(Op::AppendGroup),
        3 => (1usize..6).prop_map(Op::Ship),
        1 => Just(Op::Restart),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Op::TornWrite),
        1 => Just(Op::CorruptLast),
    ]
}

fn config() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 40_000,
        segment_bytes: 8_000,
        fsync: FsyncPolicy::Always,
    }
}

fn check(spool: &Spool, model: &VecDeque<SpoolRecord>) -> Result<(), TestCaseError> {
    let all: Vec<SpoolRecord> = spool
        .peek(usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    prop_assert_eq!(all.len(), model.len());
    for (a, b) in all.iter().zip(model) {
        prop_assert_eq!(a, b);
    }
    prop_assert_eq!(spool.stats().records, model.len() as u64);
    prop_assert_eq!(spool.stats().oldest_ts, model.front().map(|r| r.min_ts));
    Ok(())
}

fn tail_segment(dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    segs.pop().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn spool_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), config()).unwrap();
        let mut model: VecDeque<SpoolRecord> = VecDeque::new();
        let mut next = 0u64;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let rec = record(next, len);
                    next += 1;
                    match spool.append(&rec) {
                        Ok(()) => model.push_back(rec),
                        Err(SpoolError::Full { used, max }) => {
                            // Refused only when it really does not fit.
                            prop_assert!(used + rec.encoded_len() as u64 > max - 64 - 16);
                        }
                        Err(e) => return Err(TestCaseError::fail(e.to_string())),
                    }
                }
                Op::AppendGroup(lens) => {
                    for len in lens {
                        let rec = record(next, len);
                        next += 1;
                        match spool.append_deferred(&rec) {
                            Ok(()) => model.push_back(rec),
                            Err(SpoolError::Full { used, max }) => {
                                prop_assert!(used + rec.encoded_len() as u64 > max - 64 - 16);
                            }
                            Err(e) => return Err(TestCaseError::fail(e.to_string())),
                        }
                    }
                    spool.sync_appended().unwrap();
                    prop_assert!(!spool.dirty(), "one fsync made the group durable");
                }
                Op::Ship(n) => {
                    let batch = spool.peek(n, usize::MAX).unwrap();
                    if let Some((_, pos)) = batch.last() {
                        spool.ack(*pos, batch.len() as u64).unwrap();
                        for _ in 0..batch.len() {
                            model.pop_front();
                        }
                    }
                }
                Op::Restart => {
                    drop(spool);
                    spool = Spool::open(dir.path(), config()).unwrap();
                }
                Op::TornWrite(garbage) => {
                    // The process died in the middle of writing a frame.
                    drop(spool);
                    let mut f = OpenOptions::new().append(true).open(tail_segment(dir.path())).unwrap();
                    let mut partial = (garbage.len() as u32 + 100).to_le_bytes().to_vec();
                    partial.extend_from_slice(&garbage);
                    f.write_all(&partial).unwrap();
                    drop(f);
                    spool = Spool::open(dir.path(), config()).unwrap();
                }
                Op::CorruptLast => {
                    // A bit flips in the newest frame (a torn sector): that frame is dropped.
                    drop(spool);
                    let path = tail_segment(dir.path());
                    let mut data = fs::read(&path).unwrap();
                    if !data.is_empty() && !model.is_empty() {
                        let last = data.len() - 1;
                        data[last] ^= 0x40;
                        fs::write(&path, &data).unwrap();
                        // Only if the flipped frame is still unacknowledged does the model lose it.
                        let head = fs::read_to_string(dir.path().join("head")).unwrap_or_default();
                        let in_head_segment_before = head.split_whitespace().next().and_then(|s| s.parse::<u64>().ok())
                            .is_some_and(|seg| path.file_stem().unwrap().to_str().unwrap().parse::<u64>().unwrap() < seg);
                        if !in_head_segment_before {
                            model.pop_back();
                        }
                    }
                    spool = Spool::open(dir.path(), config()).unwrap();
                }
            }
            check(&spool, &model)?;
        }
        // And a last restart changes nothing.
        drop(spool);
        let spool = Spool::open(dir.path(), config()).unwrap();
        check(&spool, &model)?;
    }

    #[test]
    fn records_round_trip(n in any::<u64>(), len in 0usize..500) {
        let r = record(n, len);
        let mut buf = Vec::new();
        r.encode(&mut buf);
        prop_assert_eq!(SpoolRecord::decode(&buf), Some(r));
        for cut in 0..buf.len() {
            prop_assert!(SpoolRecord::decode(&buf[..cut]).is_none());
        }
    }
}

#[test]
fn acknowledged_segments_are_deleted_and_head_persists() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 1 << 30,
        segment_bytes: 4_000,
        fsync: FsyncPolicy::Never,
    };
    let mut s = Spool::open(dir.path(), cfg).unwrap();
    for n in 0..50 {
        s.append(&record(n, 500)).unwrap();
    }
    s.sync().unwrap();
    let segs = || fs::read_dir(dir.path().join("segments")).unwrap().count();
    assert!(segs() > 5);
    let batch = s.peek(40, usize::MAX).unwrap();
    s.ack(batch.last().unwrap().1, 40).unwrap();
    assert!(segs() <= 3, "{} segments left", segs());
    drop(s);
    let s = Spool::open(dir.path(), cfg).unwrap();
    let rest = s.peek(usize::MAX, usize::MAX).unwrap();
    assert_eq!(rest.len(), 10);
    assert_eq!(rest[0].0.record_id, "rec-00000040");
    assert_eq!(s.stats().records, 10);
}

#[test]
fn full_spool_refuses_then_accepts_after_ack() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: 10_000,
        segment_bytes: 3_000,
        fsync: FsyncPolicy::Always,
    };
    let mut s = Spool::open(dir.path(), cfg).unwrap();
    let mut n = 0;
    loop {
        match s.append(&record(n, 1000)) {
            Ok(()) => n += 1,
            Err(SpoolError::Full { used, max }) => {
                assert_eq!(max, 10_000);
                assert!(used > 8_000);
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let batch = s.peek(3, usize::MAX).unwrap();
    s.ack(batch.last().unwrap().1, 3).unwrap();
    s.append(&record(n, 1000)).unwrap();
}

#[test]
fn bad_head_file_is_an_error_not_a_reset() {
    let dir = tempfile::tempdir().unwrap();
    drop(Spool::open(dir.path(), SpoolConfig::default()).unwrap());
    fs::write(dir.path().join("head"), "garbage").unwrap();
    assert!(matches!(
        Spool::open(dir.path(), SpoolConfig::default()),
        Err(SpoolError::Head(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// One damaged byte anywhere in a segment costs exactly the record it belongs to: the
    /// records before and after it are all kept, in order, and the damage is counted.
    #[test]
    fn a_damaged_frame_costs_only_itself(
        sizes in proptest::collection::vec(0usize..600, 2..30),
        at in any::<proptest::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig { segment_bytes: u64::MAX, ..SpoolConfig::default() };
        let recs: Vec<SpoolRecord> =
            sizes.iter().enumerate().map(|(i, &n)| record(i as u64, n)).collect();
        let mut frames = Vec::new();
        {
            let mut s = Spool::open(dir.path(), cfg).unwrap();
            for r in &recs {
                s.append(r).unwrap();
                let mut p = Vec::new();
                r.encode(&mut p);
                frames.push(FRAME_HEADER + p.len());
            }
        }
        let seg = tail_segment(dir.path());
        let mut data = fs::read(&seg).unwrap();
        prop_assert_eq!(data.len(), frames.iter().sum::<usize>());
        let pos = at.index(data.len());
        data[pos] ^= xor;
        fs::write(&seg, &data).unwrap();
        // The record the byte belongs to.
        let mut hit = 0;
        let mut end = 0;
        for (i, f) in frames.iter().enumerate() {
            end += f;
            if pos < end {
                hit = i;
                break;
            }
        }
        let s = Spool::open(dir.path(), cfg).unwrap();
        let mut model: VecDeque<SpoolRecord> = recs.iter().cloned().collect();
        model.remove(hit);
        check(&s, &model)?;
        prop_assert_eq!(s.damaged_bytes(), frames[hit] as u64);
        // Reopening finds nothing more to remove.
        drop(s);
        let s = Spool::open(dir.path(), cfg).unwrap();
        prop_assert_eq!(s.damaged_bytes(), 0);
        check(&s, &model)?;
    }
}

#[test]
fn damage_in_an_early_segment_keeps_every_later_segment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let mut s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_bytes: u64::MAX,
            ..cfg
        },
    )
    .unwrap();
    let recs: Vec<SpoolRecord> = (0..40).map(|n| record(n, 700)).collect();
    for r in &recs {
        s.append(r).unwrap();
    }
    drop(s);
    let mut segs: Vec<PathBuf> = fs::read_dir(dir.path().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "{} segments", segs.len());
    // The length field of the first frame of the first segment: nothing tells where that
    // frame ends, so the scan must find the next frame on its own.
    let mut data = fs::read(&segs[0]).unwrap();
    data[1] ^= 0x40;
    fs::write(&segs[0], &data).unwrap();
    let s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_bytes: u64::MAX,
            ..cfg
        },
    )
    .unwrap();
    let model: VecDeque<SpoolRecord> = recs[1..].iter().cloned().collect();
    check(&s, &model).unwrap();
    assert!(s.damaged_bytes() > 700);
}

#[test]
fn a_caught_up_tail_is_replaced_so_its_disk_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = SpoolConfig {
        max_bytes: u64::MAX,
        segment_bytes: u64::MAX,
        fsync: FsyncPolicy::Never,
    };
    let mut s = Spool::open(dir.path(), cfg).unwrap();
    for n in 0..40 {
        s.append(&record(n, 30_000)).unwrap();
    }
    let on_disk = |dir: &Path| -> u64 {
        fs::read_dir(dir.join("segments"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    assert!(on_disk(dir.path()) > ROLL_WHEN_IDLE);
    let all = s.peek(usize::MAX, usize::MAX).unwrap();
    s.ack(all.last().unwrap().1, all.len() as u64).unwrap();
    assert_eq!(on_disk(dir.path()), 0, "the acknowledged tail was deleted");
    assert_eq!(s.stats().records, 0);
    // Appends go on in the new tail, and a reopen sees exactly them.
    s.append(&record(99, 10)).unwrap();
    drop(s);
    let s = Spool::open(dir.path(), cfg).unwrap();
    check(&s, &VecDeque::from([record(99, 10)])).unwrap();
}

/// A disk filled to the last byte (appends, then anything else) must still let the spool
/// record acknowledgements, or what was delivered could never be deleted and the disk would
/// stay full. Needs a tmpfs (root); skipped with a message otherwise, unless
/// LOGFLUX_REQUIRE_PROGRAMS=1 (CI), which makes it a failure.
#[test]
fn a_disk_full_to_the_last_byte_still_records_acknowledgements() {
    struct Mounted(std::path::PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("fs");
    fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
            "cannot mount a tmpfs (root needed)"
        );
        eprintln!("skipped: cannot mount a tmpfs (root needed)");
        return;
    }
    let _unmount = Mounted(mnt.clone());
    let mut spool = Spool::open(&mnt.join("spool"), SpoolConfig::default()).unwrap();
    let mut appended = 0u64;
    while spool.append(&record(appended, 8 * 1024)).is_ok() {
        appended += 1;
        assert!(appended < 1000, "a 512 KiB file system never filled");
    }
    assert!(appended > 10, "only {appended} records fit");
    // Whatever room the failed append left is taken too.
    let _ = fs::write(mnt.join("filler"), vec![1u8; 1 << 20]);
    let mut delivered = 0u64;
    loop {
        let batch = spool.peek(4, usize::MAX).unwrap();
        let Some(&(_, upto)) = batch.last() else {
            break;
        };
        spool
            .ack(upto, batch.len() as u64)
            .expect("an acknowledgement is recorded on a full disk");
        delivered += batch.len() as u64;
    }
    assert_eq!(delivered, appended);
    // The delivered records' space came back: appends work again.
    spool.append(&record(appended, 8 * 1024)).unwrap();
}

#[test]
fn deferred_appends_wait_for_one_fsync_under_always_and_for_the_policy_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), config()).unwrap();
    spool.append(&record(0, 10)).unwrap();
    assert!(
        !spool.dirty(),
        "an append under `always` is fsynced on return"
    );
    spool.append_deferred(&record(1, 10)).unwrap();
    spool.append_deferred(&record(2, 10)).unwrap();
    assert!(spool.dirty(), "deferred appends wait for their fsync");
    spool.sync_appended().unwrap();
    assert!(!spool.dirty());
    assert_eq!(spool.stats().records, 3);

    let dir = tempfile::tempdir().unwrap();
    let interval = SpoolConfig {
        fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
        ..config()
    };
    let mut spool = Spool::open(dir.path(), interval).unwrap();
    spool.append_deferred(&record(0, 10)).unwrap();
    spool.sync_appended().unwrap();
    assert!(
        spool.dirty(),
        "under `interval` the timer's sync makes them durable"
    );
    spool.sync().unwrap();
    assert!(!spool.dirty());
}

/// Under `always` the shipper sees a record only once it is durable.
#[test]
fn records_not_yet_fsynced_are_not_shipped_under_always() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), config()).unwrap();
    spool.append(&record(0, 10)).unwrap();
    spool.append_deferred(&record(1, 10)).unwrap();
    let ids = |s: &Spool| -> Vec<String> {
        s.peek(usize::MAX, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|(r, _)| r.record_id)
            .collect()
    };
    assert_eq!(ids(&spool), ["rec-00000000"]);
    spool.sync_appended().unwrap();
    assert_eq!(ids(&spool), ["rec-00000000", "rec-00000001"]);
}

/// A failed fsync under `always` cuts what it could not make durable (a later fsync that
/// succeeds would not prove it reached the disk) and counts a rewind; the writer appends the
/// group again, and the spool holds each record once.
#[test]
fn a_failed_fsync_cuts_the_unsynced_records_and_they_are_appended_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), config()).unwrap();
    spool.append(&record(0, 10)).unwrap();
    let durable = spool.end();
    let group = [record(1, 10), record(2, 10)];
    for r in &group {
        spool.append_deferred(r).unwrap();
    }
    spool.fail_syncs = 1;
    assert!(spool.sync_appended().is_err());
    assert_eq!(spool.rewinds(), 1);
    assert_eq!(spool.end(), durable, "cut back to the last good fsync");
    assert_eq!(spool.stats().records, 1);
    let on_disk = fs::metadata(segment_path(dir.path(), durable.segment))
        .unwrap()
        .len();
    assert_eq!(on_disk, durable.offset);
    // The plain append's own fsync fails the same way: nothing of it stays.
    spool.fail_syncs = 1;
    assert!(spool.append(&record(3, 10)).is_err());
    assert_eq!((spool.end(), spool.rewinds()), (durable, 2));
    // Appended again, made durable: each record once, in order, also after a restart.
    for r in &group {
        spool.append_deferred(r).unwrap();
    }
    spool.sync_appended().unwrap();
    drop(spool);
    let spool = Spool::open(dir.path(), config()).unwrap();
    let ids: Vec<String> = spool
        .peek(usize::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(r, _)| r.record_id)
        .collect();
    assert_eq!(ids, ["rec-00000000", "rec-00000001", "rec-00000002"]);
}

/// A power loss can leave the head past its segment's end (acknowledged records that never
/// reached the disk under `interval`): opening brings it back, so new records are shipped.
#[test]
fn a_head_past_its_segments_end_is_brought_back_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), config()).unwrap();
    spool.append(&record(0, 10)).unwrap();
    let end = spool.end();
    drop(spool);
    fs::write(
        dir.path().join("head"),
        format!("{} {}\n", end.segment, end.offset + 500),
    )
    .unwrap();
    let mut spool = Spool::open(dir.path(), config()).unwrap();
    assert_eq!(spool.head(), end);
    spool.append(&record(1, 10)).unwrap();
    let got = spool.peek(usize::MAX, usize::MAX).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0.record_id, "rec-00000001");
    drop(spool);
    let head = fs::read_to_string(dir.path().join("head")).unwrap();
    assert_eq!(head.trim(), format!("{} {}", end.segment, end.offset));
}
