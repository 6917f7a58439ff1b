//! Request signatures: HMAC-SHA256 over method, path, timestamp and body hash, sent as
//! `X-LF-Signature` (hex) and `X-LF-Signature-Timestamp` (Unix seconds).
//!
//! signing key = SHA-256(API key) — the value the server already keeps to look keys up, so
//! signing adds no secret to store; the bearer key itself is still required.
//!
//! ```text
//! signature = hex(HMAC-SHA256(signing key, METHOD "\n" PATH "\n" TIMESTAMP "\n" hex(SHA-256(body))))
//! ```

use aws_lc_rs::{digest, hmac};

/// The window within which a signature's timestamp must fall, in seconds either way.
pub const SIGNATURE_SKEW_SECONDS: i64 = 300;

/// The signing key of an API key.
pub fn signing_key(api_key: &str) -> [u8; 32] {
    digest::digest(&digest::SHA256, api_key.as_bytes())
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn message(method: &str, path: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let body_hash = hex::encode(digest::digest(&digest::SHA256, body));
    format!(
        "{}\n{path}\n{timestamp}\n{body_hash}",
        method.to_ascii_uppercase()
    )
    .into_bytes()
}

/// The `X-LF-Signature` value for a request.
pub fn sign_request(
    signing_key: &[u8],
    method: &str,
    path: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_key);
    hex::encode(hmac::sign(&key, &message(method, path, timestamp, body)))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-LF-Signature and X-LF-Signature-Timestamp are required for this API key")]
    Missing,
    #[error("X-LF-Signature-Timestamp must be Unix seconds")]
    Timestamp,
    #[error("signature timestamp is {0} s away from the server's clock (the window is ±300 s)")]
    Skew(i64),
    #[error("signature does not match the request")]
    Mismatch,
}

/// Checks a signature in constant time, and its timestamp against `now` (Unix seconds).
pub fn verify_request(
    signing_key: &[u8],
    method: &str,
    path: &str,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Timestamp)?;
    let skew = ts - now;
    if skew.abs() > SIGNATURE_SKEW_SECONDS {
        return Err(SignatureError::Skew(skew));
    }
    let presented = hex::decode(signature.trim()).map_err(|_| SignatureError::Mismatch)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, signing_key);
    hmac::verify(&key, &message(method, path, ts, body), &presented)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify_and_every_change_fails() {
        let k = signing_key("eu-lf_abc");
        let sig = sign_request(&k, "post", "/v1/ingest", 1_000, b"body");
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1000", &sig, b"body", 1_100),
            Ok(())
        );
        let other = signing_key("eu-lf_abd");
        assert_eq!(
            verify_request(&other, "POST", "/v1/ingest", "1000", &sig, b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "PUT", "/v1/ingest", "1000", &sig, b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/query", "1000", &sig, b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1001", &sig, b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1000", &sig, b"bodx", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1000", "zz", b"body", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1000", &sig, b"body", 1_301),
            Err(SignatureError::Skew(-301))
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "1000", &sig, b"body", 699),
            Err(SignatureError::Skew(301))
        );
        assert_eq!(
            verify_request(&k, "POST", "/v1/ingest", "soon", &sig, b"body", 1_000),
            Err(SignatureError::Timestamp)
        );
    }
}
