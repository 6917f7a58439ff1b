//! The cryptographic core of LogFlux: what seals logs where they are produced and opens them
//! only where the private key is. No network, no runtime; [`keyfile`] is the one module that
//! touches the file system.
//!
//! - [`PrivateKey`], [`PublicKey`], [`Fingerprint`]: RSA tenant keys as `openssl genrsa` and
//!   `openssl rsa -pubout` write them (PKCS#1 or PKCS#8 PEM), generation, `SHA256:<hex>`
//!   fingerprints of the SubjectPublicKeyInfo.
//! - [`Dek`], [`wrap_dek`], [`unwrap_dek`]: 256-bit data keys wrapped with RSA-OAEP-SHA256;
//!   unwrapping also accepts the Java SDK's MGF1-SHA1 variant.
//! - [`SealingKey`], [`RecordBinding`]: AES-256-GCM with random 96-bit nonces and associated
//!   data that binds tenant, application, key id and record id.
//! - [`BatchSealer`], [`open_batch`]: a batch of entries compressed with zstd, then sealed.
//! - [`open_sdk_part`], [`seal_sdk_part`]: SDK parts, AES-256-GCM over gzip(JSON), no
//!   associated data, gzip detected by its magic bytes.
//! - [`SearchKey`], [`TokenKey`], [`Token`]: blind search tokens (HKDF per application,
//!   truncated HMAC-SHA256), computed the same way by agents and clients.
//!
//! ```
//! use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey, open_batch};
//! use logflux_proto::{Entry, Level};
//!
//! let key = SealingKey::new(&Dek::generate().unwrap());
//! let binding = RecordBinding { tenant: "t1", application: "web", key_id: "k1", record_id: "r1" };
//! let entries = vec![Entry::new(0, Level::Error, "api", "disk full")];
//! let sealed = BatchSealer::new(3).seal(&key, &binding, &entries).unwrap();
//! let opened = open_batch(&key, &binding, &sealed.nonce, &sealed.ciphertext).unwrap();
//! assert_eq!(opened, entries);
//! ```

mod aead;
mod batch;
mod dek;
mod error;
mod fastmac;
pub mod keyfile;
mod keys;
mod oaep_mgf1_sha1;
mod sdk;
mod signature;
mod tokens;

pub use aead::{NONCE_LEN, RecordBinding, SealingKey, TAG_LEN};
pub use batch::{
    BatchSealer, MAX_BATCH_PLAINTEXT, OpenedBatch, SealedBatch, open_batch, open_batch_plain, padme,
};
pub use dek::{DEK_LEN, Dek, unwrap_dek, wrap_dek, wrap_dek_mgf1_sha1};
pub use error::{CryptoError, ErrorKind};
pub use keys::{Fingerprint, MIN_RSA_BITS, PrivateKey, PublicKey};
pub use sdk::{MAX_SDK_PLAINTEXT, open_sdk_gzip, open_sdk_part, seal_sdk_part};
pub use signature::{
    SIGNATURE_SKEW_SECONDS, SignatureError, sign_request, signing_key, verify_request,
};
pub use tokens::{
    CachedTokenSet, DEFAULT_TOKEN_CACHE, Field, MAX_WORD_BYTES, SEARCH_KEY_LEN, SearchKey, Token,
    TokenKey, TokenSet, Words, is_word_char, words,
};

/// Compares two secrets in constant time (for shared secrets, API keys, token hashes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// Fills `buf` from the system's secure random generator.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    use aws_lc_rs::rand::SecureRandom as _;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}
