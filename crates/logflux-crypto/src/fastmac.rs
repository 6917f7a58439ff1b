//! HMAC-SHA256 of blind-token inputs with the key's inner and outer SHA-256 states computed
//! once, when the key is made: a token is then two or three runs of the SHA-256 compression
//! function (`aws-lc-sys`'s `SHA256_TransformBlocks`, with the CPU's SHA extensions), with no
//! HMAC context set up, copied and torn down per input. The same function as
//! `aws_lc_rs::hmac` (RFC 2104); `tests` checks it against it for every input length up to
//! three blocks, and `tests/golden.rs` against the committed v1 tokens.
//!
//! Measured need for the unsafe call (docs/benchmarks.md, issue 18 round 2): the HMAC context's
//! set-up, copy and finalisation cost about three times the compression itself in the agent's
//! file path, where lines carry values new in every line (fractions of seconds, order
//! numbers), each MAC'd once.
#![allow(unsafe_code)]

use aws_lc_sys as sys;
use zeroize::Zeroize;

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

const BLOCK: usize = 64;

/// An HMAC-SHA256 key as the SHA-256 states after its inner and outer padded blocks.
#[derive(Clone)]
pub(crate) struct MacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Drop for MacKey {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

/// Runs the compression function over `blocks` (a whole number of 64-byte blocks; none is
/// a no-op).
fn compress(state: &mut [u32; 8], blocks: &[u8]) {
    assert!(blocks.len().is_multiple_of(BLOCK), "whole blocks only");
    // The assembly loops assume at least one block: a count of 0 would read out of bounds.
    if blocks.is_empty() {
        return;
    }
    // SAFETY: `state` is the 8 words the function updates; `blocks` is readable for
    // `blocks.len() / 64` whole blocks, at least one (checked above); nothing else is touched.
    unsafe {
        sys::SHA256_TransformBlocks(state.as_mut_ptr(), blocks.as_ptr(), blocks.len() / BLOCK)
    }
}

impl MacKey {
    /// The key of `key` (at most one block; a token key is 32 bytes).
    pub(crate) fn new(key: &[u8]) -> Self {
        assert!(
            key.len() <= BLOCK,
            "keys longer than a block are hashed first; not needed here"
        );
        // The states are as secret as the key: computed in place, no copy left behind.
        let mut mac = MacKey {
            inner: IV,
            outer: IV,
        };
        let mut pad = [0u8; BLOCK];
        for (xor, state) in [(0x36, &mut mac.inner), (0x5c, &mut mac.outer)] {
            pad.fill(xor);
            for (p, k) in pad.iter_mut().zip(key) {
                *p ^= k;
            }
            compress(state, &pad);
        }
        pad.zeroize();
        mac
    }

    /// The first 8 bytes, big-endian, of HMAC-SHA256(key, `input`).
    pub(crate) fn mac64(&self, input: &[u8]) -> u64 {
        let mut s = self.inner;
        let whole = input.len() - input.len() % BLOCK;
        if whole > 0 {
            compress(&mut s, &input[..whole]);
        }
        // The rest, 0x80, zeros, and the bit length of key block + input, in one or two blocks.
        let rest = &input[whole..];
        let mut tail = Blocks([0u8; 2 * BLOCK]);
        tail.0[..rest.len()].copy_from_slice(rest);
        tail.0[rest.len()] = 0x80;
        let n = if rest.len() < BLOCK - 8 {
            BLOCK
        } else {
            2 * BLOCK
        };
        let bits = ((BLOCK + input.len()) as u64) * 8;
        tail.0[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        compress(&mut s, &tail.0[..n]);
        // Outer: the inner digest (32 bytes), padded to one block (the tail's first block is
        // used again: every byte of it is written).
        for (i, w) in s.iter().enumerate() {
            tail.0[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        tail.0[32] = 0x80;
        tail.0[33..BLOCK - 8].fill(0);
        tail.0[BLOCK - 8..BLOCK].copy_from_slice(&(((BLOCK + 32) as u64) * 8).to_be_bytes());
        let mut o = self.outer;
        compress(&mut o, &tail.0[..BLOCK]);
        let token = (u64::from(o[0]) << 32) | u64::from(o[1]);
        s.zeroize();
        tail.wipe();
        o.zeroize();
        token
    }
}

/// Two blocks of MAC input, aligned so that wiping them is eight 16-byte stores (zeroize's
/// byte-by-byte volatile stores over 192 bytes were about a third of a short token's cost:
/// docs/benchmarks.md, issue 18 round 7).
#[repr(C, align(16))]
struct Blocks([u8; 2 * BLOCK]);

impl Blocks {
    /// Zeroes the blocks with volatile stores the compiler keeps, as `zeroize` does.
    fn wipe(&mut self) {
        let words = self.0.as_mut_ptr().cast::<u128>();
        for i in 0..(2 * BLOCK) / 16 {
            // SAFETY: `Blocks` is 16-aligned and 128 bytes: word `i` < 8 lies inside it, and
            // any bytes are a valid `u128`.
            unsafe { std::ptr::write_volatile(words.add(i), 0) };
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::hmac;

    #[test]
    fn the_first_eight_bytes_of_hmac_sha256_for_every_length() {
        for key in [
            vec![0u8; 32],
            (0..32).collect::<Vec<u8>>(),
            vec![0xa5; 64],
            b"k".to_vec(),
        ] {
            let fast = MacKey::new(&key);
            let reference = hmac::Key::new(hmac::HMAC_SHA256, &key);
            for len in 0..=3 * BLOCK + 1 {
                let input: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                let tag = hmac::sign(&reference, &input);
                let want = u64::from_be_bytes(tag.as_ref()[..8].try_into().unwrap());
                assert_eq!(fast.mac64(&input), want, "key {key:?}, length {len}");
            }
        }
    }
}
