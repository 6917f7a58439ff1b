use std::io::Read as _;

use crate::aead::{NONCE_LEN, SealingKey};
use crate::error::CryptoError;

/// Largest decompressed SDK entry accepted, in bytes (an entry is at most 1 MiB, plus JSON).
pub const MAX_SDK_PLAINTEXT: usize = 4 * 1024 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens an SDK part (payload type 1): AES-256-GCM without associated data, then gunzip when
/// the plaintext starts with gzip's magic bytes (SDKs keep payload type 1 with compression off).
///
/// When the multipart parser removed a CRLF before the next delimiter (`crlf_stripped`) and the
/// tag does not verify, the CRLF was the ciphertext's own (the JavaScript SDK writes no CRLF of
/// its own there): the open is retried with it restored.
///
/// Returns the entry's JSON.
pub fn open_sdk_part(
    key: &SealingKey,
    nonce: &[u8; NONCE_LEN],
    body: &[u8],
    crlf_stripped: bool,
) -> Result<Vec<u8>, CryptoError> {
    let mut buf = body.to_vec();
    let plain_len = match key.open(nonce, &[], &mut buf) {
        Ok(p) => p.len(),
        Err(e) if !crlf_stripped => return Err(e),
        Err(_) => {
            buf.clear();
            buf.extend_from_slice(body);
            buf.extend_from_slice(b"\r\n");
            key.open(nonce, &[], &mut buf)?.len()
        }
    };
    buf.truncate(plain_len);
    maybe_gunzip(buf)
}

/// Opens a gzip-only SDK part (payload type 3): gunzip when it starts with gzip's magic bytes.
pub fn open_sdk_gzip(body: &[u8]) -> Result<Vec<u8>, CryptoError> {
    maybe_gunzip(body.to_vec())
}

fn maybe_gunzip(plain: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
    if !plain.starts_with(&GZIP_MAGIC) {
        if plain.len() > MAX_SDK_PLAINTEXT {
            return Err(CryptoError::TooLarge {
                limit: MAX_SDK_PLAINTEXT,
            });
        }
        return Ok(plain);
    }
    let mut out = Vec::with_capacity(plain.len() * 4);
    flate2::read::GzDecoder::new(plain.as_slice())
        .take(MAX_SDK_PLAINTEXT as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| CryptoError::Format(format!("gzip: {e}")))?;
    if out.len() > MAX_SDK_PLAINTEXT {
        return Err(CryptoError::TooLarge {
            limit: MAX_SDK_PLAINTEXT,
        });
    }
    Ok(out)
}

/// Seals one entry's JSON as the v3 SDKs do: gzip (when `gzip`), then AES-256-GCM without
/// associated data under a fresh nonce. Returns the nonce and `ciphertext ‖ tag`.
pub fn seal_sdk_part(
    key: &SealingKey,
    json: &[u8],
    gzip: bool,
) -> Result<([u8; NONCE_LEN], Vec<u8>), CryptoError> {
    let mut buf = if gzip {
        use std::io::Write as _;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(json)
            .and_then(|()| enc.finish())
            .map_err(|e| CryptoError::Format(format!("gzip: {e}")))?
    } else {
        json.to_vec()
    };
    let nonce = key.seal(&[], &mut buf)?;
    Ok((nonce, buf))
}
