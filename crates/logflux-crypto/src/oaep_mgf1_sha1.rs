//! RSA-OAEP with SHA-256 as the hash and MGF1 with SHA-1, the Java SDK's variant.
//!
//! The JDK's `OAEPWithSHA-256AndMGF1Padding` without explicit parameters uses MGF1-SHA1.
//! aws-lc-rs offers OAEP only with matching hashes, so this module calls the same AWS-LC
//! library through `aws-lc-sys` to set the MGF1 hash on its own. Its unsafe code (with
//! `fastmac`'s one call, the crate's only) is a handful of calls with owned pointers released
//! by `Drop` guards.
#![allow(unsafe_code)]

use std::os::raw::c_long;
use std::ptr::null_mut;

use aws_lc_sys as sys;
use zeroize::Zeroizing;

struct Pkey(*mut sys::EVP_PKEY);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful d2i_* call and is freed once.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

struct Ctx(*mut sys::EVP_PKEY_CTX);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful EVP_PKEY_CTX_new and is freed once.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

/// Sets up `ctx` for OAEP with SHA-256 and MGF1-SHA1.
///
/// SAFETY: `ctx` must be a live context initialised for encryption or decryption.
unsafe fn set_params(ctx: &Ctx) -> bool {
    unsafe {
        sys::EVP_PKEY_CTX_set_rsa_padding(ctx.0, sys::RSA_PKCS1_OAEP_PADDING) == 1
            && sys::EVP_PKEY_CTX_set_rsa_oaep_md(ctx.0, sys::EVP_sha256()) == 1
            && sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.0, sys::EVP_sha1()) == 1
    }
}

/// Decrypts `ciphertext` with the PKCS#8 DER private key; `None` if it does not decrypt.
pub(crate) fn decrypt(pkcs8_der: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let result = (|| {
        let len = c_long::try_from(pkcs8_der.len()).ok()?;
        let mut input = pkcs8_der.as_ptr();
        // SAFETY: `input` points at `len` readable bytes; the result is owned by `Pkey`.
        let key = unsafe { sys::d2i_AutoPrivateKey(null_mut(), &mut input, len) };
        if key.is_null() {
            return None;
        }
        let key = Pkey(key);
        // SAFETY: `key.0` is a live key; the context is owned by `Ctx`.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(key.0, null_mut()) };
        if ctx.is_null() {
            return None;
        }
        let ctx = Ctx(ctx);
        // SAFETY: `ctx` is live; it is initialised before its parameters are set.
        if unsafe { sys::EVP_PKEY_decrypt_init(ctx.0) } != 1 || !unsafe { set_params(&ctx) } {
            return None;
        }
        let mut out = Zeroizing::new(vec![0u8; ciphertext.len().max(512)]);
        let mut out_len = out.len();
        // SAFETY: `out` has `out_len` writable bytes, `ciphertext` is readable for its length.
        let ok = unsafe {
            sys::EVP_PKEY_decrypt(
                ctx.0,
                out.as_mut_ptr(),
                &mut out_len,
                ciphertext.as_ptr(),
                ciphertext.len(),
            )
        };
        if ok != 1 || out_len > out.len() {
            return None;
        }
        out.truncate(out_len);
        Some(out)
    })();
    if result.is_none() {
        // SAFETY: clears this thread's error queue; no pointers involved.
        unsafe { sys::ERR_clear_error() };
    }
    result
}

/// Encrypts `plaintext` to the DER SubjectPublicKeyInfo `spki`, as the Java SDK does. Used to
/// build test fixtures of Java traffic.
pub(crate) fn encrypt(spki: &[u8], plaintext: &[u8]) -> Option<Vec<u8>> {
    let result = (|| {
        let len = c_long::try_from(spki.len()).ok()?;
        let mut input = spki.as_ptr();
        // SAFETY: as in `decrypt`.
        let key = unsafe { sys::d2i_PUBKEY(null_mut(), &mut input, len) };
        if key.is_null() {
            return None;
        }
        let key = Pkey(key);
        // SAFETY: as in `decrypt`.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(key.0, null_mut()) };
        if ctx.is_null() {
            return None;
        }
        let ctx = Ctx(ctx);
        // SAFETY: as in `decrypt`.
        if unsafe { sys::EVP_PKEY_encrypt_init(ctx.0) } != 1 || !unsafe { set_params(&ctx) } {
            return None;
        }
        let mut out = vec![0u8; 1024];
        let mut out_len = out.len();
        // SAFETY: `out` has `out_len` writable bytes (enough for RSA-8192).
        let ok = unsafe {
            sys::EVP_PKEY_encrypt(
                ctx.0,
                out.as_mut_ptr(),
                &mut out_len,
                plaintext.as_ptr(),
                plaintext.len(),
            )
        };
        if ok != 1 || out_len > out.len() {
            return None;
        }
        out.truncate(out_len);
        Some(out)
    })();
    if result.is_none() {
        // SAFETY: as in `decrypt`.
        unsafe { sys::ERR_clear_error() };
    }
    result
}
