//! Credentials: ingest API keys (`<region>-lf_<secret>`, the shape the v3 SDKs check before
//! sending) and personal access tokens (`lf_pat_<secret>`). Only SHA-256 hashes are stored;
//! lookups go by hash, so no stored value can be replayed as a credential.

use aws_lc_rs::digest;

/// Regions the SDKs accept in an API key.
pub const REGIONS: [&str; 5] = ["eu", "us", "ca", "au", "ap"];

/// Scopes a personal access token may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl Scope {
    /// Whether holding this scope grants `needed`: each scope includes the ones below it
    /// (admin ⊇ write ⊇ read). `write` provisions ingest (applications, their retention, API
    /// keys) without managing access tokens, the tenant key, erasure or the audit log.
    fn includes(self, needed: Scope) -> bool {
        let rank = |s: Scope| match s {
            Scope::Read => 0,
            Scope::Write => 1,
            Scope::Admin => 2,
        };
        rank(self) >= rank(needed)
    }
}

/// Whether a space-separated scope list grants `needed`.
pub(crate) fn grants(scopes: &str, needed: Scope) -> bool {
    scopes
        .split_whitespace()
        .filter_map(Scope::parse)
        .any(|s| s.includes(needed))
}

fn random_secret() -> String {
    let mut b = [0u8; 24];
    logflux_crypto::random_bytes(&mut b).expect("system random generator");
    hex::encode(b)
}

/// A new API key for `region`; returns (key, display prefix).
pub(crate) fn new_api_key(region: &str) -> (String, String) {
    let key = format!("{region}-lf_{}", random_secret());
    let prefix = key[..key.find("lf_").expect("shape") + 7].to_owned();
    (key, prefix)
}

/// A new personal access token; returns (token, display prefix).
pub(crate) fn new_access_token() -> (String, String) {
    let token = format!("lf_pat_{}", random_secret());
    let prefix = token[..11].to_owned();
    (token, prefix)
}

/// The stored hash of a credential.
pub(crate) fn hash(credential: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, credential.as_bytes())
        .as_ref()
        .to_vec()
}

/// Whether `s` has the API key shape `<region>-lf_<secret>`.
pub(crate) fn is_api_key_shape(s: &str) -> bool {
    s.split_once("-lf_").is_some_and(|(region, secret)| {
        REGIONS.contains(&region)
            && !secret.is_empty()
            && secret.len() <= 256
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// Whether `s` looks like a personal access token.
pub(crate) fn is_access_token_shape(s: &str) -> bool {
    s.strip_prefix("lf_pat_").is_some_and(|secret| {
        !secret.is_empty()
            && secret.len() <= 256
            && secret.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// A new random id with a prefix (`t_`, `app_`, `key_`, …).
pub(crate) fn new_id(prefix: &str) -> String {
    let mut b = [0u8; 8];
    logflux_crypto::random_bytes(&mut b).expect("system random generator");
    format!("{prefix}{}", hex::encode(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_sdk_shape() {
        for region in REGIONS {
            let (key, prefix) = new_api_key(region);
            assert!(is_api_key_shape(&key), "{key}");
            assert!(key.starts_with(&prefix));
            assert_eq!(
                prefix,
                format!("{region}-lf_{}", &key[region.len() + 4..region.len() + 8])
            );
        }
        assert!(!is_api_key_shape("xx-lf_abc"));
        assert!(!is_api_key_shape("eu-lf_"));
        assert!(!is_api_key_shape("eu_lf_abc"));
        assert!(!is_api_key_shape("lf_pat_abc"));
    }

    #[test]
    fn tokens_and_hashes() {
        let (t, prefix) = new_access_token();
        assert!(is_access_token_shape(&t));
        assert!(t.starts_with(&prefix) && prefix.starts_with("lf_pat_"));
        assert!(!is_access_token_shape("eu-lf_abc"));
        assert_ne!(new_access_token().0, t, "random");
        assert_eq!(hash(&t), hash(&t));
        assert_ne!(hash(&t), hash(&new_access_token().0));
        assert_eq!(hash("x").len(), 32);
    }

    #[test]
    fn scopes() {
        assert!(grants("read", Scope::Read));
        assert!(!grants("read", Scope::Write));
        assert!(grants("admin", Scope::Write));
        assert!(grants("read write", Scope::Write));
        assert!(grants("write", Scope::Read), "write includes read");
        assert!(!grants("write", Scope::Admin));
        assert!(!grants("read", Scope::Admin));
        assert!(!grants("", Scope::Read));
        assert!(!grants("superuser", Scope::Read));
    }
}
