//! Equality of short byte strings without a call into the C library.

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

#[cfg(test)]
mod tests {
    use super::same_bytes;
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
    }
}
