//! A record's token filter in a version 2 segment footer: a sorted list of 16-bit
//! fingerprints for a record of at most 64 distinct tokens (16 bits per token, false positives
//! ~n/65 536, at most 0.1 %), else a binary fuse filter with 8-bit fingerprints (~17 bits per
//! distinct token at 65, ~13 at a few hundred, ~10 at 10 000, 9.5 toward 100 000: the crate
//! sizes small sets generously; ~0.4 % false positives). Neither has false negatives. Below 65
//! tokens the fuse filter would cost 17–30 bits per token.
//!
//! Every filter is salted by its record: it holds `key(t) = mix64(t ^ salt)` for each token
//! `t`, where `salt = mix64(fnv1a64(record_id))` ([`salt`]) and `mix64` is MurmurHash3's
//! 64-bit finalizer (a bijection). Two records with the same tokens therefore get unrelated
//! filter bytes, so the server cannot group records by filter to count how often a token
//! occurs (docs/security.md).
//!
//! The `xorf` crate (pinned) builds the fuse filter; the bytes are ours (docs/formats.md,
//! "Segments"):
//!
//! ```text
//! filter = kind:u8 body
//!   kind 0: no token (body empty; selected by no token)
//!   kind 1: seed:u64le segment_length_log2:u8 segments:varint fingerprint:u8{..}
//!           (binary fuse of the keys; segment_length = 1 << segment_length_log2,
//!           segment_length_mask = segment_length - 1,
//!           segment_count_length = segments * segment_length)
//!   kind 2: could not be built (body empty; "may contain" every token)
//!   kind 3: fingerprint:u16le{n}, 1 <= n <= 64, strictly ascending; fingerprint = key(t) >> 48
//! ```
//!
//! The kind 1 body is the crate's descriptor, its fields derivable from others left out, then
//! its fingerprints, so lookups run on the footer's bytes without a copy (`BinaryFuse8Ref`),
//! after [`check`]ing that no lookup can index outside them. The lookup is written out in
//! docs/formats.md; a test checks that description against the crate, and the golden segments
//! catch any change of construction.

use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable as _, Filter as _, FilterRef as _};

const EMPTY: u8 = 0;
const FUSE8: u8 = 1;
const ANY: u8 = 2;
const SMALL: u8 = 3;
/// Records of at most this many distinct tokens get a kind 3 filter.
pub(crate) const SMALL_MAX: usize = 64;
/// The crate's descriptor: seed:u64le segment_length:u32le segment_length_mask:u32le
/// segment_count_length:u32le.
const DESCRIPTOR_LEN: usize = 8 + 4 + 4 + 4;
const _: () = assert!(BinaryFuse8::DESCRIPTOR_LEN == DESCRIPTOR_LEN);

/// MurmurHash3's 64-bit finalizer.
const fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The salt of the record whose id is `record_id`: `mix64` of its 64-bit FNV-1a hash.
pub(crate) fn salt(record_id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in record_id.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    mix64(h)
}

/// What a record's filter holds for `token`.
fn key(token: u64, salt: u64) -> u64 {
    mix64(token ^ salt)
}

fn small_fingerprint(token: u64, salt: u64) -> u16 {
    (key(token, salt) >> 48) as u16
}

/// Appends the filter of `tokens` (any order, duplicates allowed) for the record whose salt
/// is `salt` to `out`.
pub(crate) fn build(tokens: &[u64], salt: u64, out: &mut Vec<u8>) {
    let mut keys: Vec<u64> = tokens.iter().map(|&t| key(t, salt)).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        out.push(EMPTY);
        return;
    }
    if keys.len() <= SMALL_MAX {
        out.push(SMALL);
        // Sorted keys give sorted top bits; equal fingerprints are stored once.
        let mut prev = None;
        for k in keys {
            let fp = (k >> 48) as u16;
            if prev != Some(fp) {
                out.extend_from_slice(&fp.to_le_bytes());
                prev = Some(fp);
            }
        }
        return;
    }
    match BinaryFuse8::try_from(&keys[..]) {
        Ok(f) => {
            let mut d = [0u8; DESCRIPTOR_LEN];
            f.dma_copy_descriptor_to(&mut d);
            let seed = &d[0..8];
            let segment_length = u32::from_le_bytes(d[8..12].try_into().expect("4 bytes"));
            let segment_count_length = u32::from_le_bytes(d[16..20].try_into().expect("4 bytes"));
            // The crate's segment length is a power of two and divides the segment count
            // length; anything else would not round-trip, so stays unfiltered.
            if !segment_length.is_power_of_two()
                || !segment_count_length.is_multiple_of(segment_length)
            {
                out.push(ANY);
                return;
            }
            out.push(FUSE8);
            out.extend_from_slice(seed);
            out.push(segment_length.trailing_zeros() as u8);
            let mut n = u64::from(segment_count_length / segment_length);
            loop {
                let b = (n & 0x7f) as u8;
                n >>= 7;
                if n == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
            out.extend_from_slice(f.dma_fingerprints());
        }
        Err(_) => out.push(ANY),
    }
}

/// A kind 1 filter's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descriptor {
    seed: u64,
    segment_length: u32,
    segment_length_mask: u32,
    segment_count_length: u32,
}

impl Descriptor {
    /// The crate's bytes of it.
    fn dma(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut d = [0u8; DESCRIPTOR_LEN];
        d[0..8].copy_from_slice(&self.seed.to_le_bytes());
        d[8..12].copy_from_slice(&self.segment_length.to_le_bytes());
        d[12..16].copy_from_slice(&self.segment_length_mask.to_le_bytes());
        d[16..20].copy_from_slice(&self.segment_count_length.to_le_bytes());
        d
    }
}

/// Checks that `filter` is well formed: a lookup in it stays inside its bytes.
pub(crate) fn check(filter: &[u8]) -> Result<(), &'static str> {
    match filter.split_first() {
        Some((&EMPTY | &ANY, [])) => Ok(()),
        Some((&FUSE8, _)) => parse(filter).map(|_| ()),
        Some((&SMALL, fps)) => parse_small(fps).map(|_| ()),
        _ => Err("bad token filter"),
    }
}

/// A kind 3 filter's fingerprints, checked.
fn parse_small(fps: &[u8]) -> Result<&[u8], &'static str> {
    let n = fps.len() / 2;
    if !fps.len().is_multiple_of(2) || n == 0 || n > SMALL_MAX {
        return Err("bad token filter");
    }
    let at = |i: usize| u16::from_le_bytes([fps[2 * i], fps[2 * i + 1]]);
    if (1..n).any(|i| at(i - 1) >= at(i)) {
        return Err("bad token filter");
    }
    Ok(fps)
}

/// A kind 1 filter's parameters and fingerprints, checked.
fn parse(filter: &[u8]) -> Result<(Descriptor, &[u8]), &'static str> {
    const BAD: &str = "bad token filter";
    if filter.len() < 1 + 8 + 1 + 1 || filter[0] != FUSE8 {
        return Err(BAD);
    }
    let seed = u64::from_le_bytes(filter[1..9].try_into().expect("8 bytes"));
    let log2 = filter[9];
    let mut segments = 0u64;
    let mut at = 10;
    for shift in (0..35).step_by(7) {
        let b = *filter.get(at).ok_or(BAD)?;
        at += 1;
        segments |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        if shift == 28 {
            return Err(BAD);
        }
    }
    // Segment lengths stay far below 2^18 (the crate's cap); 2^31 keeps the arithmetic in u32.
    if log2 > 30 || segments == 0 {
        return Err(BAD);
    }
    let segment_length = 1u32 << log2;
    let segment_count_length = u32::try_from(segments)
        .ok()
        .and_then(|s| s.checked_mul(segment_length))
        .ok_or(BAD)?;
    let d = Descriptor {
        seed,
        segment_length,
        segment_length_mask: segment_length - 1,
        segment_count_length,
    };
    let fingerprints = &filter[at..];
    // Every index is below segment_count_length + 2 * segment_length (docs/formats.md):
    // h0 < segment_count_length (a multiple of segment_length), and the masks change only the
    // bits below segment_length.
    let span = u64::from(d.segment_count_length) + 2 * u64::from(d.segment_length);
    if span > fingerprints.len() as u64 {
        return Err(BAD);
    }
    Ok((d, fingerprints))
}

/// A record's filter ready for lookups: parsed once, then asked about any number of tokens.
#[derive(Debug, Clone)]
pub(crate) enum Probe<'a> {
    Never,
    Always,
    Small {
        salt: u64,
        fingerprints: &'a [u8],
    },
    Fuse {
        salt: u64,
        filter: BinaryFuse8Ref<'a>,
    },
}

impl<'a> Probe<'a> {
    /// The probe of `filter`, the filter of a record whose salt is `salt`. A malformed filter
    /// (refused by [`check`] when its footer was parsed) answers "maybe".
    pub(crate) fn new(filter: &'a [u8], salt: u64) -> Self {
        match filter.split_first() {
            Some((&EMPTY, [])) => Probe::Never,
            Some((&SMALL, fps)) => match parse_small(fps) {
                Ok(fingerprints) => Probe::Small { salt, fingerprints },
                Err(_) => Probe::Always,
            },
            Some((&FUSE8, _)) => match parse(filter) {
                Ok((d, fps)) => Probe::Fuse {
                    salt,
                    filter: BinaryFuse8Ref::from_dma(&d.dma(), fps),
                },
                Err(_) => Probe::Always,
            },
            _ => Probe::Always,
        }
    }

    /// Whether the record may carry `token` (always true when it does).
    pub(crate) fn may_contain(&self, token: u64) -> bool {
        match self {
            Probe::Never => false,
            Probe::Always => true,
            Probe::Small { salt, fingerprints } => {
                let want = small_fingerprint(token, *salt);
                let (mut lo, mut hi) = (0, fingerprints.len() / 2);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let fp = u16::from_le_bytes([fingerprints[2 * mid], fingerprints[2 * mid + 1]]);
                    match fp.cmp(&want) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => return true,
                    }
                }
                false
            }
            Probe::Fuse { salt, filter } => filter.contains(&key(token, *salt)),
        }
    }
}

/// Whether the record whose filter is `filter` and salt `salt` may carry `token`.
#[cfg(test)]
pub(crate) fn may_contain(filter: &[u8], salt: u64, token: u64) -> bool {
    Probe::new(filter, salt).may_contain(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(n: u64, salt: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..n)
            .map(|i| (i ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    const SALT: u64 = 0x1234_5678_9abc_def0;

    #[test]
    fn about_ten_bits_per_token_and_under_half_a_percent_false_positives() {
        let k = keys(10_000, 1);
        let mut f = Vec::new();
        build(&k, SALT, &mut f);
        assert_eq!(f[0], FUSE8);
        assert!(k.iter().all(|&t| may_contain(&f, SALT, t)));
        let bits = (f.len() * 8) as f64 / k.len() as f64;
        // The crate sizes small sets more generously: ~10.3 bits at 10 000 tokens (9 bits
        // only toward millions), ~13 at the few hundred of a typical agent batch.
        assert!(bits < 10.5, "{bits} bits per token");
        let fp = keys(100_000, 0xdead_beef)
            .into_iter()
            .filter(|t| k.binary_search(t).is_err())
            .filter(|&t| may_contain(&f, SALT, t))
            .count();
        assert!(fp < 600, "{fp} false positives in 100 000");
    }

    #[test]
    fn small_sets_take_two_bytes_per_token() {
        for n in 1..=SMALL_MAX as u64 {
            let k = keys(n, n);
            let mut f = Vec::new();
            build(&k, SALT, &mut f);
            assert_eq!(f[0], SMALL);
            assert_eq!(f.len(), 1 + 2 * k.len(), "n {n}");
            assert_eq!(check(&f), Ok(()));
            assert!(k.iter().all(|&t| may_contain(&f, SALT, t)));
        }
        // 64 fingerprints of 16 bits: ~64 / 65 536 false positives.
        let k = keys(SMALL_MAX as u64, 3);
        let mut f = Vec::new();
        build(&k, SALT, &mut f);
        let fp = keys(200_000, 0xfeed)
            .into_iter()
            .filter(|t| k.binary_search(t).is_err())
            .filter(|&t| may_contain(&f, SALT, t))
            .count();
        assert!(fp < 300, "{fp} false positives in 200 000");
        // One more token: a fuse filter.
        let mut g = Vec::new();
        build(&keys(SMALL_MAX as u64 + 1, 3), SALT, &mut g);
        assert_eq!(g[0], FUSE8);
    }

    #[test]
    fn records_with_the_same_tokens_get_unrelated_filters() {
        for n in [1u64, 2, 5, 64, 65, 300] {
            let k = keys(n, 7);
            let filters: Vec<Vec<u8>> = ["r0", "r1", "agent-1", "agent-2"]
                .iter()
                .map(|id| {
                    let mut f = Vec::new();
                    build(&k, salt(id), &mut f);
                    assert!(k.iter().all(|&t| may_contain(&f, salt(id), t)));
                    f
                })
                .collect();
            for i in 0..filters.len() {
                for j in i + 1..filters.len() {
                    assert_ne!(filters[i], filters[j], "n {n}");
                }
            }
            // The same record gets the same filter back (a rewrite keeps it).
            let mut again = Vec::new();
            build(&k, salt("r1"), &mut again);
            assert_eq!(again, filters[1]);
        }
    }

    /// The lookup as docs/formats.md writes it out, from the bytes alone.
    fn documented_lookup(filter: &[u8], salt: u64, t: u64) -> bool {
        let (d, fp) = parse(filter).unwrap();
        let x = mix64(t ^ salt);
        let h = mix64(x.wrapping_add(d.seed));
        let f = (h ^ (h >> 32)) as u8;
        let h0 = ((u128::from(h) * u128::from(d.segment_count_length)) >> 64) as u32;
        let h1 = (h0 + d.segment_length) ^ ((h >> 18) as u32 & d.segment_length_mask);
        let h2 = (h0 + 2 * d.segment_length) ^ (h as u32 & d.segment_length_mask);
        f ^ fp[h0 as usize] ^ fp[h1 as usize] ^ fp[h2 as usize] == 0
    }

    #[test]
    fn the_documented_lookup_agrees_with_the_crate() {
        for n in [65u64, 100, 300, 1_000, 5_000] {
            let k = keys(n, n);
            let salted: Vec<u64> = k.iter().map(|&t| key(t, SALT)).collect();
            let crate_filter = BinaryFuse8::try_from(&salted[..]).unwrap();
            let mut f = Vec::new();
            build(&k, SALT, &mut f);
            let (d, fps) = parse(&f).unwrap();
            assert_eq!(fps, crate_filter.dma_fingerprints());
            let mut dma = [0u8; DESCRIPTOR_LEN];
            crate_filter.dma_copy_descriptor_to(&mut dma);
            assert_eq!(d.dma(), dma, "the descriptor is rebuilt exactly");
            let mut hits = 0;
            for t in keys(20_000, 0x5eed ^ n)
                .into_iter()
                .chain(k.iter().copied())
            {
                let want = crate_filter.contains(&key(t, SALT));
                assert_eq!(may_contain(&f, SALT, t), want, "n {n}, token {t}");
                assert_eq!(documented_lookup(&f, SALT, t), want, "n {n}, token {t}");
                hits += usize::from(want);
            }
            assert!(hits >= k.len());
        }
    }

    #[test]
    fn special_kinds_and_malformed_filters() {
        let mut f = Vec::new();
        build(&[], SALT, &mut f);
        assert_eq!(f, [EMPTY]);
        assert!(!may_contain(&f, SALT, 1));
        assert_eq!(check(&f), Ok(()));
        assert!(may_contain(&[ANY], SALT, 1));
        assert_eq!(check(&[ANY]), Ok(()));
        assert!(check(&[]).is_err());
        assert!(check(&[EMPTY, 0]).is_err());
        assert!(check(&[4]).is_err());
        // Small: empty, odd, unsorted, repeated, too many.
        assert!(check(&[SMALL]).is_err());
        assert!(check(&[SMALL, 1, 0, 2]).is_err());
        assert!(check(&[SMALL, 2, 0, 1, 0]).is_err());
        assert!(check(&[SMALL, 1, 0, 1, 0]).is_err());
        assert_eq!(check(&[SMALL, 1, 0, 2, 0]), Ok(()));
        let mut many = vec![SMALL];
        for i in 0..=SMALL_MAX as u16 {
            many.extend_from_slice(&i.to_le_bytes());
        }
        assert!(check(&many).is_err());
        assert!(may_contain(&many, SALT, 5), "malformed says maybe");
        let k = keys(100, 9);
        let mut f = Vec::new();
        build(&k, SALT, &mut f);
        assert_eq!(f[0], FUSE8);
        assert_eq!(check(&f), Ok(()));
        // Fingerprints cut short, a segment length beyond 2^30, no segment, a varint that
        // does not end, a segment count past u32.
        assert!(check(&f[..f.len() - 1]).is_err());
        assert!(
            may_contain(&f[..f.len() - 1], SALT, 12_345),
            "malformed says maybe"
        );
        let mut g = f.clone();
        g[9] = 31;
        assert!(check(&g).is_err());
        let mut g = f[..10].to_vec();
        g.push(0);
        g.extend_from_slice(&f[11..]);
        assert!(check(&g).is_err());
        for t in 0..1_000 {
            assert!(may_contain(&g, SALT, t), "malformed says maybe");
        }
        let mut g = f[..10].to_vec();
        g.extend_from_slice(&[0xff; 5]);
        assert!(check(&g).is_err());
        let mut g = f[..10].to_vec();
        g.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        g.extend_from_slice(&f[11..]);
        assert!(check(&g).is_err());
        // Unsorted and repeated tokens are accepted.
        let mut rev: Vec<u64> = k.iter().rev().copied().collect();
        rev.push(k[0]);
        let mut h = Vec::new();
        build(&rev, SALT, &mut h);
        assert_eq!(h, f);
    }

    proptest! {
        #[test]
        fn no_false_negatives(
            tokens in proptest::collection::vec(any::<u64>(), 0..500),
            id in "[a-z0-9-]{0,40}",
        ) {
            let s = salt(&id);
            let mut f = Vec::new();
            build(&tokens, s, &mut f);
            prop_assert_eq!(check(&f), Ok(()));
            let probe = Probe::new(&f, s);
            for &t in &tokens {
                prop_assert!(probe.may_contain(t));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), t in any::<u64>()) {
            let _ = check(&bytes);
            let _ = may_contain(&bytes, 0, t);
        }
    }
}
