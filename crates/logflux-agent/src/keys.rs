//! The agent's keys: the pinned tenant public key, its identity on the server (tenant and
//! application ids, which sealed records are bound to) and its data keys.
//!
//! Data keys are generated here, wrapped at once to the tenant public key, and given an id the
//! agent chooses (`ak_` + 32 hex digits), so sealing never waits for the server. Only the
//! wrapped key is written to disk (`SPOOL/keys/<id>.wrapped`, readable only by the private key's
//! holder); the plain key lives in memory. The shipper registers each wrapped key with the
//! server before sending records sealed under it, then marks it `<id>.registered`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use logflux_crypto::{Dek, Fingerprint, PublicKey, SealingKey, wrap_dek};

/// Where the tenant key and identity come from.
#[derive(Debug, Clone)]
pub(crate) enum Pin {
    /// A public key file given in the configuration.
    Key(PublicKey),
    /// A fingerprint; the key comes from the server's handshake and must match.
    Fingerprint(Fingerprint),
}

/// What the agent learned at its first handshake, cached in `SPOOL/identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Identity {
    pub(crate) tenant_id: String,
    pub(crate) application_id: String,
    pub(crate) public_key_pem: String,
}

impl Identity {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("identity.json")
    }

    pub(crate) fn load(dir: &Path) -> anyhow::Result<Option<Identity>> {
        match std::fs::read_to_string(Self::path(dir)) {
            Ok(t) => Ok(Some(
                serde_json::from_str(&t).context("identity.json is malformed")?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context("reading identity.json"),
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join("identity.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, Self::path(dir))?;
        Ok(())
    }

    /// Checks the public key the server handed out against the pin.
    pub(crate) fn verify(&self, pin: &Pin) -> anyhow::Result<PublicKey> {
        let key = PublicKey::from_pem(&self.public_key_pem).context("the server's public key")?;
        let ok = match pin {
            Pin::Key(k) => *k == key,
            Pin::Fingerprint(fp) => key.fingerprint() == *fp,
        };
        if !ok {
            bail!(
                "the server handed out public key {} which is not the pinned tenant key; refusing to send anything",
                key.fingerprint()
            );
        }
        Ok(key)
    }
}

/// The current data key.
pub(crate) struct CurrentKey {
    pub(crate) key_id: String,
    /// Shared with the sealing threads, which seal outside the key ring's lock.
    pub(crate) sealing: std::sync::Arc<SealingKey>,
    created: Instant,
    batches: u64,
}

impl std::fmt::Debug for CurrentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Generates, rotates and remembers data keys.
#[derive(Debug)]
pub(crate) struct KeyRing {
    dir: PathBuf,
    public_key: PublicKey,
    max_age: Duration,
    max_batches: u64,
    current: Option<CurrentKey>,
}

impl KeyRing {
    pub(crate) fn new(
        spool_dir: &Path,
        public_key: PublicKey,
        max_age: Duration,
        max_batches: u64,
    ) -> anyhow::Result<KeyRing> {
        let dir = spool_dir.join("keys");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(KeyRing {
            dir,
            public_key,
            max_age,
            max_batches,
            current: None,
        })
    }

    /// The key to seal the next batch with (a new one when the current is too old or used).
    pub(crate) fn for_next_batch(&mut self) -> anyhow::Result<&CurrentKey> {
        let stale = self
            .current
            .as_ref()
            .is_none_or(|c| c.created.elapsed() >= self.max_age || c.batches >= self.max_batches);
        if stale {
            let dek = Dek::generate()?;
            let wrapped = wrap_dek(&self.public_key, &dek)?;
            let mut id = [0u8; 16];
            logflux_crypto::random_bytes(&mut id)?;
            let key_id = format!("ak_{}", hex::encode(id));
            // The wrapped key is durable before anything is sealed under it.
            let path = self.dir.join(format!("{key_id}.wrapped"));
            logflux_crypto::keyfile::write_new_file("wrapped data key", &path, &wrapped, 0o600)?;
            self.current = Some(CurrentKey {
                key_id,
                sealing: std::sync::Arc::new(SealingKey::new(&dek)),
                created: Instant::now(),
                batches: 0,
            });
            tracing::info!(key_id = %self.current.as_ref().expect("set").key_id, "new data key");
        }
        let c = self.current.as_mut().expect("set above");
        c.batches += 1;
        Ok(c)
    }
}

/// Wrapped keys not yet registered with the server: (key id, wrapped bytes).
pub(crate) fn unregistered(spool_dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let dir = spool_dir.join("keys");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for e in rd {
        let name = e?.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(".wrapped")
            && !dir.join(format!("{id}.registered")).exists()
        {
            out.push((id.to_owned(), std::fs::read(dir.join(&name))?));
        }
    }
    Ok(out)
}

/// Records that the server knows `key_id`.
pub(crate) fn mark_registered(spool_dir: &Path, key_id: &str) -> anyhow::Result<()> {
    let p = spool_dir.join("keys").join(format!("{key_id}.registered"));
    std::fs::write(&p, b"")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_rotate_by_count_and_are_stored_only_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let sk = logflux_crypto::PrivateKey::generate(2048).unwrap();
        let mut ring =
            KeyRing::new(dir.path(), sk.public_key(), Duration::from_secs(3600), 3).unwrap();
        let a = ring.for_next_batch().unwrap().key_id.clone();
        assert_eq!(ring.for_next_batch().unwrap().key_id, a);
        assert_eq!(ring.for_next_batch().unwrap().key_id, a);
        let b = ring.for_next_batch().unwrap().key_id.clone();
        assert_ne!(a, b, "rotated after 3 batches");
        assert!(a.starts_with("ak_") && a.len() == 35);
        let pending = unregistered(dir.path()).unwrap();
        assert_eq!(pending.len(), 2);
        for (id, wrapped) in &pending {
            // Only the private key's holder can read what is on disk.
            let dek = logflux_crypto::unwrap_dek(&sk, wrapped).unwrap();
            assert_eq!(dek.expose().len(), 32, "{id}");
        }
        mark_registered(dir.path(), &a).unwrap();
        assert_eq!(unregistered(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn keys_rotate_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let sk = logflux_crypto::PrivateKey::generate(2048).unwrap();
        let mut ring = KeyRing::new(dir.path(), sk.public_key(), Duration::ZERO, 1_000).unwrap();
        let a = ring.for_next_batch().unwrap().key_id.clone();
        assert_ne!(ring.for_next_batch().unwrap().key_id, a);
    }

    #[test]
    fn pins_refuse_another_key() {
        let sk = logflux_crypto::PrivateKey::generate(2048).unwrap();
        let other = logflux_crypto::PrivateKey::generate(2048).unwrap();
        let id = Identity {
            tenant_id: "t".into(),
            application_id: "a".into(),
            public_key_pem: other.public_key().to_pem(),
        };
        assert!(
            id.verify(&Pin::Key(sk.public_key()))
                .unwrap_err()
                .to_string()
                .contains("not the pinned tenant key")
        );
        assert!(
            id.verify(&Pin::Fingerprint(sk.public_key().fingerprint()))
                .is_err()
        );
        assert!(
            id.verify(&Pin::Fingerprint(other.public_key().fingerprint()))
                .is_ok()
        );
    }
}
