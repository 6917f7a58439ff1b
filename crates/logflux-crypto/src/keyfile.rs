//! Key files on disk: the one place this crate does I/O (blocking `std::fs`).
//!
//! Secret files (the private key, the search key) must not be accessible by group or others:
//! loading one that is fails with an error naming the file and the `chmod` that fixes it, as
//! OpenSSH does. New files are created exclusively (never overwriting) with their final mode
//! set at creation, so no other user can open them in between.

use std::fs;
use std::io::Write as _;
use std::path::Path;

use crate::error::CryptoError;
use crate::keys::{PrivateKey, PublicKey};
use crate::tokens::SearchKey;

/// Largest key file read, in bytes.
const MAX_KEY_FILE: u64 = 64 * 1024;

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> CryptoError + 'a {
    move |error| CryptoError::Io {
        what,
        path: path.to_path_buf(),
        error,
    }
}

/// Fails unless only the owner can access `path`.
pub fn check_owner_only(what: &'static str, path: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path)
            .map_err(io(what, path))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(CryptoError::Permissions {
                what,
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    Ok(())
}

fn read_text(what: &'static str, path: &Path) -> Result<zeroize::Zeroizing<String>, CryptoError> {
    let meta = fs::metadata(path).map_err(io(what, path))?;
    if meta.len() > MAX_KEY_FILE {
        return Err(CryptoError::Io {
            what,
            path: path.to_path_buf(),
            error: std::io::Error::other(format!(
                "{} bytes is too large for a key file",
                meta.len()
            )),
        });
    }
    let text = fs::read_to_string(path).map_err(io(what, path))?;
    Ok(zeroize::Zeroizing::new(text))
}

fn in_file(what: &'static str, path: &Path, e: CryptoError) -> CryptoError {
    match e {
        CryptoError::Key(msg) => CryptoError::Key(format!("{what} file {}: {msg}", path.display())),
        other => other,
    }
}

/// Reads a PEM private key, refusing a file that group or others can access.
pub fn read_private_key(path: &Path) -> Result<PrivateKey, CryptoError> {
    const WHAT: &str = "private key";
    check_owner_only(WHAT, path)?;
    let text = read_text(WHAT, path)?;
    PrivateKey::from_pem(&text).map_err(|e| in_file(WHAT, path, e))
}

/// Reads a PEM public key.
pub fn read_public_key(path: &Path) -> Result<PublicKey, CryptoError> {
    const WHAT: &str = "public key";
    let text = read_text(WHAT, path)?;
    PublicKey::from_pem(&text).map_err(|e| in_file(WHAT, path, e))
}

/// Reads a search key file (64 hex digits), refusing a file that group or others can access.
pub fn read_search_key(path: &Path) -> Result<SearchKey, CryptoError> {
    const WHAT: &str = "search key";
    check_owner_only(WHAT, path)?;
    let text = read_text(WHAT, path)?;
    SearchKey::from_text(&text).map_err(|e| in_file(WHAT, path, e))
}

/// Creates `path` with `contents` and `mode`, failing if it exists; flushed to disk.
pub fn write_new_file(
    what: &'static str,
    path: &Path,
    contents: &[u8],
    mode: u32,
) -> Result<(), CryptoError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(io(what, path))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(io(what, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error and every cause below it, as `anyhow`'s `{:#}` prints them.
    fn chain(e: &dyn std::error::Error) -> String {
        let mut text = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        text
    }

    #[test]
    fn a_missing_key_file_says_no_such_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_public_key(&dir.path().join("public_key.pem")).unwrap_err();
        let text = chain(&e);
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert!(text.starts_with("public key file "), "{text}");
    }
}
