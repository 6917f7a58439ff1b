use std::fmt;

use aws_lc_rs::rsa::{OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey};
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::keys::{PrivateKey, PublicKey};
use crate::oaep_mgf1_sha1;

/// Length of a data key in bytes.
pub const DEK_LEN: usize = 32;

/// A 256-bit data key (DEK). Exists unwrapped only in the producer's and the client's memory;
/// zeroed on drop, never printed.
#[derive(Clone)]
pub struct Dek(Zeroizing<[u8; DEK_LEN]>);

impl fmt::Debug for Dek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Dek(***)")
    }
}

impl Dek {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; DEK_LEN]);
        crate::random_bytes(k.as_mut())?;
        Ok(Dek(k))
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; DEK_LEN] = bytes.try_into().map_err(|_| {
            CryptoError::Format(format!(
                "a data key is {DEK_LEN} bytes, got {}",
                bytes.len()
            ))
        })?;
        Ok(Dek(Zeroizing::new(arr)))
    }

    /// The key bytes. Handle with care: never log or persist them unwrapped.
    pub fn expose(&self) -> &[u8; DEK_LEN] {
        &self.0
    }
}

/// Wraps `dek` to `public_key` with RSA-OAEP, SHA-256 and MGF1-SHA256 (what `openssl pkeyutl
/// -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256` produces).
pub fn wrap_dek(public_key: &PublicKey, dek: &Dek) -> Result<Vec<u8>, CryptoError> {
    let key = OaepPublicEncryptingKey::new(public_key.inner().clone())
        .map_err(|_| CryptoError::Key("not usable for RSA-OAEP".into()))?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let n = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, dek.expose(), &mut out, None)
        .map_err(|_| CryptoError::Key("RSA-OAEP encryption failed".into()))?
        .len();
    out.truncate(n);
    Ok(out)
}

/// Wraps `dek` with RSA-OAEP, SHA-256 and MGF1-SHA1: what the Java SDK sends. For fixtures and
/// tests of that path; producers of LogFlux use [`wrap_dek`].
#[doc(hidden)]
pub fn wrap_dek_mgf1_sha1(public_key: &PublicKey, dek: &Dek) -> Result<Vec<u8>, CryptoError> {
    oaep_mgf1_sha1::encrypt(public_key.spki_der(), dek.expose())
        .ok_or_else(|| CryptoError::Key("RSA-OAEP encryption failed".into()))
}

/// Unwraps a data key: RSA-OAEP with SHA-256 and MGF1-SHA256 first, then MGF1-SHA1 (the Java
/// SDK's `OAEPWithSHA-256AndMGF1Padding`). The server cannot tell them apart, so the client
/// tries both.
pub fn unwrap_dek(private_key: &PrivateKey, wrapped: &[u8]) -> Result<Dek, CryptoError> {
    let key = OaepPrivateDecryptingKey::new(private_key.inner().clone())
        .map_err(|_| CryptoError::Key("not usable for RSA-OAEP".into()))?;
    let mut out = Zeroizing::new(vec![0u8; key.key_size_bytes()]);
    if let Ok(plain) = key.decrypt(&OAEP_SHA256_MGF1SHA256, wrapped, &mut out, None) {
        return Dek::from_bytes(plain).map_err(|_| CryptoError::Unwrap);
    }
    match oaep_mgf1_sha1::decrypt(private_key.pkcs8_der(), wrapped) {
        Some(plain) => Dek::from_bytes(&plain).map_err(|_| CryptoError::Unwrap),
        None => Err(CryptoError::Unwrap),
    }
}
