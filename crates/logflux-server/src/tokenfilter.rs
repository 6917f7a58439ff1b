//! A record's token filter in a version 2 segment footer: a binary fuse filter with 8-bit
//! fingerprints (9–14 bits per distinct token: the fewer tokens, the more; ~0.4 % false
//! positives, no false negatives).
//!
//! The `xorf` crate (pinned) builds the filter; the bytes are ours (docs/formats.md, "Segments"):
//!
//! ```text
//! filter = kind:u8 body
//!   kind 0: no token (body empty; selected by no token)
//!   kind 1: seed:u64le segment_length:u32le segment_length_mask:u32le
//!           segment_count_length:u32le fingerprint:u8{..}
//!   kind 2: could not be built (body empty; "may contain" every token)
//! ```
//!
//! The kind 1 body is the crate's descriptor then its fingerprints, so lookups run on the
//! footer's bytes without a copy (`BinaryFuse8Ref`), after [`check`]ing that no lookup can
//! index outside them. The lookup is written out in docs/formats.md; a test checks that
//! description against the crate, and the golden segments catch any change of construction.

use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable as _, Filter as _, FilterRef as _};

const EMPTY: u8 = 0;
const FUSE8: u8 = 1;
const ANY: u8 = 2;
/// Bytes of a kind 1 filter before its fingerprints.
const HEADER: usize = 1 + 8 + 4 + 4 + 4;
// The crate's descriptor is the layout above (seed and three sizes, little-endian).
const _: () = assert!(BinaryFuse8::DESCRIPTOR_LEN + 1 == HEADER);

/// Appends the filter of `tokens` (sorted and distinct, as [`crate::segment::RecordMeta`]
/// keeps them; duplicates are removed here all the same) to `out`.
pub(crate) fn build(tokens: &[u64], out: &mut Vec<u8>) {
    if tokens.is_empty() {
        out.push(EMPTY);
        return;
    }
    let owned;
    let keys = if tokens.windows(2).all(|w| w[0] < w[1]) {
        tokens
    } else {
        let mut v = tokens.to_vec();
        v.sort_unstable();
        v.dedup();
        owned = v;
        &owned[..]
    };
    match BinaryFuse8::try_from(keys) {
        Ok(f) => {
            out.push(FUSE8);
            let at = out.len();
            out.resize(at + BinaryFuse8::DESCRIPTOR_LEN, 0);
            f.dma_copy_descriptor_to(&mut out[at..]);
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

/// Checks that `filter` is well formed: a lookup in it stays inside its bytes.
pub(crate) fn check(filter: &[u8]) -> Result<(), &'static str> {
    match filter.split_first() {
        Some((&EMPTY | &ANY, [])) => Ok(()),
        Some((&FUSE8, _)) => parse(filter).map(|_| ()),
        _ => Err("bad token filter"),
    }
}

/// A kind 1 filter's parameters and fingerprints, checked.
fn parse(filter: &[u8]) -> Result<(Descriptor, &[u8]), &'static str> {
    if filter.len() < HEADER || filter[0] != FUSE8 {
        return Err("bad token filter");
    }
    let u32_at = |i: usize| u32::from_le_bytes(filter[i..i + 4].try_into().expect("4 bytes"));
    let d = Descriptor {
        seed: u64::from_le_bytes(filter[1..9].try_into().expect("8 bytes")),
        segment_length: u32_at(9),
        segment_length_mask: u32_at(13),
        segment_count_length: u32_at(17),
    };
    let fingerprints = &filter[HEADER..];
    // Every index is below segment_count_length + 2 * segment_length (docs/formats.md):
    // h0 < segment_count_length (not 0, a multiple of segment_length), and the masks change
    // only the bits below segment_length.
    let span = u64::from(d.segment_count_length) + 2 * u64::from(d.segment_length);
    if !d.segment_length.is_power_of_two()
        || d.segment_length_mask != d.segment_length - 1
        || d.segment_count_length == 0
        || !d.segment_count_length.is_multiple_of(d.segment_length)
        || span > fingerprints.len() as u64
    {
        return Err("bad token filter");
    }
    Ok((d, fingerprints))
}

/// Whether the record whose filter is `filter` may carry `token` (always true when it does).
/// A malformed filter (refused by [`check`] when its footer was parsed) answers "maybe".
pub(crate) fn may_contain(filter: &[u8], token: u64) -> bool {
    match filter.first() {
        Some(&EMPTY) => false,
        Some(&FUSE8) => match parse(filter) {
            Ok(_) => {
                BinaryFuse8Ref::from_dma(&filter[1..HEADER], &filter[HEADER..]).contains(&token)
            }
            Err(_) => true,
        },
        _ => true,
    }
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

    #[test]
    fn about_ten_bits_per_token_and_under_half_a_percent_false_positives() {
        let k = keys(10_000, 1);
        let mut f = Vec::new();
        build(&k, &mut f);
        assert!(k.iter().all(|&t| may_contain(&f, t)));
        let bits = (f.len() * 8) as f64 / k.len() as f64;
        // The crate sizes small sets more generously: ~10.3 bits at 10 000 tokens (9 bits
        // only toward millions), ~13 at the few hundred of a typical agent batch.
        assert!(bits < 10.5, "{bits} bits per token");
        let fp = keys(100_000, 0xdead_beef)
            .into_iter()
            .filter(|t| k.binary_search(t).is_err())
            .filter(|&t| may_contain(&f, t))
            .count();
        assert!(fp < 600, "{fp} false positives in 100 000");
    }

    /// The lookup as docs/formats.md writes it out, from the bytes alone.
    fn documented_lookup(filter: &[u8], x: u64) -> bool {
        let (d, fp) = parse(filter).unwrap();
        let mut h = x.wrapping_add(d.seed);
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        let f = (h ^ (h >> 32)) as u8;
        let h0 = ((u128::from(h) * u128::from(d.segment_count_length)) >> 64) as u32;
        let h1 = (h0 + d.segment_length) ^ ((h >> 18) as u32 & d.segment_length_mask);
        let h2 = (h0 + 2 * d.segment_length) ^ (h as u32 & d.segment_length_mask);
        f ^ fp[h0 as usize] ^ fp[h1 as usize] ^ fp[h2 as usize] == 0
    }

    #[test]
    fn the_documented_lookup_agrees_with_the_crate() {
        for n in [1u64, 2, 3, 10, 100, 1_000, 5_000] {
            let k = keys(n, n);
            let crate_filter = BinaryFuse8::try_from(&k[..]).unwrap();
            let mut f = Vec::new();
            build(&k, &mut f);
            assert_eq!(&f[HEADER..], crate_filter.dma_fingerprints());
            let mut hits = 0;
            for t in keys(20_000, 0x5eed ^ n)
                .into_iter()
                .chain(k.iter().copied())
            {
                let want = crate_filter.contains(&t);
                assert_eq!(may_contain(&f, t), want, "n {n}, token {t}");
                assert_eq!(documented_lookup(&f, t), want, "n {n}, token {t}");
                hits += usize::from(want);
            }
            assert!(hits >= k.len());
        }
    }

    #[test]
    fn special_kinds_and_malformed_filters() {
        let mut f = Vec::new();
        build(&[], &mut f);
        assert_eq!(f, [EMPTY]);
        assert!(!may_contain(&f, 1));
        assert_eq!(check(&f), Ok(()));
        assert!(may_contain(&[ANY], 1));
        assert_eq!(check(&[ANY]), Ok(()));
        assert!(check(&[]).is_err());
        assert!(check(&[EMPTY, 0]).is_err());
        assert!(check(&[3]).is_err());
        let mut f = Vec::new();
        build(&[1, 2, 3], &mut f);
        assert_eq!(check(&f), Ok(()));
        // Fingerprints cut short, a segment length that is not a power of two, a bad mask.
        assert!(check(&f[..f.len() - 1]).is_err());
        assert!(
            may_contain(&f[..f.len() - 1], 12_345),
            "malformed says maybe"
        );
        let mut g = f.clone();
        g[9] = 3;
        assert!(check(&g).is_err());
        let mut g = f.clone();
        g[13] ^= 1;
        assert!(check(&g).is_err());
        // segment_count_length 0 would let the third index run past the fingerprints.
        let mut g = f.clone();
        g[17..21].copy_from_slice(&0u32.to_le_bytes());
        assert!(check(&g).is_err());
        for t in 0..1_000 {
            assert!(may_contain(&g, t), "malformed says maybe");
        }
        // Unsorted and repeated tokens are accepted.
        let mut h = Vec::new();
        build(&[3, 1, 2, 3], &mut h);
        assert_eq!(h, f);
    }

    proptest! {
        #[test]
        fn no_false_negatives(tokens in proptest::collection::vec(any::<u64>(), 0..500)) {
            let mut f = Vec::new();
            build(&tokens, &mut f);
            prop_assert_eq!(check(&f), Ok(()));
            for &t in &tokens {
                prop_assert!(may_contain(&f, t));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), t in any::<u64>()) {
            let _ = check(&bytes);
            let _ = may_contain(&bytes, t);
        }
    }
}
