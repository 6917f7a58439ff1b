//! Equality and order of short byte strings without a call into the C library.

use std::cmp::Ordering;

/// Whether `a` and `b` are the same bytes. Up to 32 bytes they are compared here, as two
/// overlapping loads from each end, rather than by a call into the C library's `memcmp` (which
/// `==` on slices is): most strings the agent compares per entry — words, metadata keys and
/// values, sources — are a few bytes, and the calls were 6.4 % of the agent's CPU on its file
/// path in the profile (docs/benchmarks.md, issue 18 round 6).
#[inline]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Each arm reads the first and the last `W` bytes of both: together they cover all `n`.
    macro_rules! ends {
        ($t:ty, $w:expr) => {{
            let head = |s: &[u8]| <$t>::from_ne_bytes(s[..$w].try_into().expect("width"));
            let tail = |s: &[u8]| <$t>::from_ne_bytes(s[n - $w..].try_into().expect("width"));
            ((head(a) ^ head(b)) | (tail(a) ^ tail(b))) == 0
        }};
    }
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => ends!(u32, 4),
        8..=15 => ends!(u64, 8),
        16..=32 => ends!(u128, 16),
        _ => a == b,
    }
}

/// The order of `a` and `b` (as `a.cmp(b)`, bytes as unsigned, a prefix first). The first 32
/// bytes are compared here, eight at a time as big-endian words, rather than by a call into the
/// C library's `memcmp` (which `Ord` on slices and `str` is): metadata keys, which the batch
/// encoder and the token walk merge in order per entry, are a few bytes (those calls were
/// 2.3 % of the agent's file path: docs/benchmarks.md, issue 18 round 7).
#[inline]
pub fn order_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        if i == 32 {
            return a[i..].cmp(&b[i..]);
        }
        let x = u64::from_be_bytes(a[i..i + 8].try_into().expect("width"));
        let y = u64::from_be_bytes(b[i..i + 8].try_into().expect("width"));
        if x != y {
            return x.cmp(&y);
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return a[i].cmp(&b[i]);
        }
        i += 1;
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::{Ordering, order_bytes, same_bytes};
    use proptest::prelude::*;

    proptest! {
        /// `same_bytes` agrees with `==` at every length its loads handle and beyond, for
        /// equal slices, slices that differ in one byte anywhere, and prefixes.
        #[test]
        fn same_bytes_is_equality(a in proptest::collection::vec(any::<u8>(), 0..48),
                                  at in any::<proptest::sample::Index>(),
                                  flip in 1u8..=255, cut in 0usize..48) {
            prop_assert!(same_bytes(&a, &a.clone()));
            if !a.is_empty() {
                let mut b = a.clone();
                b[at.index(a.len())] ^= flip;
                prop_assert!(!same_bytes(&a, &b));
                prop_assert!(!same_bytes(&b, &a));
            }
            let c = &a[..cut.min(a.len())];
            prop_assert_eq!(same_bytes(&a, c), a.as_slice() == c);
        }

        /// `order_bytes` agrees with `Ord` on slices: equal slices, one byte changed anywhere
        /// (either way), prefixes, and lengths past its 32 inline bytes.
        #[test]
        fn order_bytes_is_slice_order(a in proptest::collection::vec(any::<u8>(), 0..48),
                                      b in proptest::collection::vec(any::<u8>(), 0..48),
                                      at in any::<proptest::sample::Index>(),
                                      flip in 1u8..=255, cut in 0usize..48) {
            prop_assert_eq!(order_bytes(&a, &b), a.cmp(&b));
            prop_assert_eq!(order_bytes(&a, &a.clone()), Ordering::Equal);
            if !a.is_empty() {
                let mut c = a.clone();
                c[at.index(a.len())] ^= flip;
                prop_assert_eq!(order_bytes(&a, &c), a.cmp(&c));
                prop_assert_eq!(order_bytes(&c, &a), c.cmp(&a));
            }
            let p = &a[..cut.min(a.len())];
            prop_assert_eq!(order_bytes(&a, p), a.as_slice().cmp(p));
            prop_assert_eq!(order_bytes(p, &a), p.cmp(a.as_slice()));
        }
    }
}
