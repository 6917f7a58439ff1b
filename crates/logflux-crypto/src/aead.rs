use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::dek::Dek;
use crate::error::CryptoError;

/// Length of an AES-GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;
/// Length of an AES-GCM tag in bytes.
pub const TAG_LEN: usize = 16;

/// What a sealed agent record is bound to. The associated data is
/// `"logflux-record-v1\0"` followed by each field as a 4-byte big-endian length and its bytes,
/// so the server cannot move a record to another tenant, application, key or record id
/// without the client noticing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordBinding<'a> {
    pub tenant: &'a str,
    pub application: &'a str,
    pub key_id: &'a str,
    pub record_id: &'a str,
}

impl RecordBinding<'_> {
    const DOMAIN: &'static [u8] = b"logflux-record-v1\0";

    /// The associated data bytes.
    pub fn aad(&self) -> Vec<u8> {
        let fields = [self.tenant, self.application, self.key_id, self.record_id];
        let mut out = Vec::with_capacity(
            Self::DOMAIN.len() + fields.iter().map(|f| f.len() + 4).sum::<usize>(),
        );
        out.extend_from_slice(Self::DOMAIN);
        for f in fields {
            out.extend_from_slice(&(f.len() as u32).to_be_bytes());
            out.extend_from_slice(f.as_bytes());
        }
        out
    }
}

/// An AES-256-GCM key ready for sealing and opening (the key schedule done once).
pub struct SealingKey {
    key: LessSafeKey,
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(***)")
    }
}

impl SealingKey {
    /// Prepares `dek` for AES-256-GCM.
    pub fn new(dek: &Dek) -> Self {
        let unbound = UnboundKey::new(&AES_256_GCM, dek.expose()).expect("32-byte key");
        SealingKey {
            key: LessSafeKey::new(unbound),
        }
    }

    /// Encrypts `buf` in place under a fresh random nonce and appends the tag.
    pub fn seal(&self, aad: &[u8], buf: &mut Vec<u8>) -> Result<[u8; NONCE_LEN], CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        crate::random_bytes(&mut nonce)?;
        self.seal_with_nonce(nonce, aad, buf)?;
        Ok(nonce)
    }

    /// Encrypts with a given nonce. A nonce must never repeat under one key: only golden-file
    /// tests choose one; everything else calls [`SealingKey::seal`].
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        nonce: [u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Format("plaintext too large for AES-GCM".into()))
    }

    /// Decrypts `ciphertext ‖ tag` in place; returns the plaintext, a prefix of the buffer.
    /// Any change to the ciphertext, tag, nonce or associated data, or a wrong key, is
    /// [`CryptoError::Integrity`].
    pub fn open<'a>(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &'a mut [u8],
    ) -> Result<&'a mut [u8], CryptoError> {
        self.key
            .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), buf)
            .map_err(|_| CryptoError::Integrity)
    }
}
