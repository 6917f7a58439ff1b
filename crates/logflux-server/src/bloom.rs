//! A Bloom filter over a segment's tokens, kept in the catalog so a query skips segments that
//! cannot match without reading them. About 10 bits per token and 7 probes: ~1 % false
//! positives. Tokens are HMAC outputs (or SHA-256 of opaque SDK tokens), already uniform, so
//! the probes are derived from the token by double hashing.
//!
//! Encoding: `k:u8` followed by the bit array (length a multiple of 8 bytes).

const K: u8 = 7;
const BITS_PER_TOKEN: usize = 10;

/// Builds the filter of `tokens`.
pub(crate) fn build(tokens: &[u64]) -> Vec<u8> {
    let words = (tokens.len() * BITS_PER_TOKEN).div_ceil(64).max(1);
    let mut bits = vec![0u64; words];
    let m = (words * 64) as u64;
    for &t in tokens {
        for i in probes(t, m) {
            bits[(i / 64) as usize] |= 1 << (i % 64);
        }
    }
    let mut out = Vec::with_capacity(1 + words * 8);
    out.push(K);
    for w in bits {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

fn probes(token: u64, m: u64) -> impl Iterator<Item = u64> {
    let h1 = token;
    let h2 = token.rotate_left(32).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..u64::from(K)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % m)
}

/// Whether the filter may contain `token` (never false for a token it was built with). A
/// malformed filter answers "maybe", so a query never misses data because of it.
pub(crate) fn may_contain(filter: &[u8], token: u64) -> bool {
    let Some((&k, bytes)) = filter.split_first() else {
        return true;
    };
    if k != K || bytes.is_empty() || bytes.len() % 8 != 0 {
        return true;
    }
    let m = (bytes.len() * 8) as u64;
    probes(token, m).all(|i| bytes[(i / 8) as usize] & (1 << (i % 8)) != 0)
}

/// Whether a segment may match every group (each an any-of set of tokens).
pub(crate) fn may_match(filter: &[u8], groups: &[Vec<u64>]) -> bool {
    groups
        .iter()
        .all(|g| g.iter().any(|&t| may_contain(filter, t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn false_positive_rate_is_near_one_percent() {
        let tokens: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xdead)
            .collect();
        let f = build(&tokens);
        assert!(tokens.iter().all(|&t| may_contain(&f, t)));
        let fp = (1..=100_000u64)
            .map(|i| i.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
            .filter(|&t| may_contain(&f, t))
            .count();
        assert!(fp < 2_000, "{fp} false positives in 100 000");
    }

    #[test]
    fn malformed_filters_say_maybe() {
        assert!(may_contain(&[], 1));
        assert!(may_contain(&[7], 1));
        assert!(may_contain(&[3, 0, 0, 0, 0, 0, 0, 0, 0], 1));
        assert!(may_match(&build(&[]), &[]));
        assert!(!may_match(&build(&[]), &[vec![1]]));
    }

    proptest! {
        #[test]
        fn no_false_negatives(tokens in proptest::collection::vec(any::<u64>(), 0..200), other in any::<u64>()) {
            let f = build(&tokens);
            for &t in &tokens {
                prop_assert!(may_contain(&f, t));
            }
            if !tokens.is_empty() {
                prop_assert!(may_match(&f, std::slice::from_ref(&tokens)));
                prop_assert!(may_match(&f, &[vec![other, tokens[0]]]), "any-of finds the member");
            }
        }
    }
}
