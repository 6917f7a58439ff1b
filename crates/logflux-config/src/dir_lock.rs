//! One process per directory: an exclusive `flock` on a file in the directory, held while the
//! returned [`DirLock`] lives (the kernel releases it when the process ends, however it ends),
//! with the holder's process id written in the file so that a refusal can name it.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error("{what} is in use by {holder} (it holds the lock {lock}); {hint}", holder = holder(*.pid))]
    Held {
        /// What is locked, with its path ("the spool directory /var/lib/…").
        what: String,
        lock: PathBuf,
        /// The holder's process id, when it could be read.
        pid: Option<u32>,
        hint: String,
    },
    /// The lock file could not be opened or locked.
    // The I/O error is in the message only (not also a `source`), so a printed chain says
    // it once.
    #[error("locking {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(p) => format!("process {p}"),
        None => "another process".to_owned(),
    }
}

/// Takes the lock file `name` in `dir` (which must exist), created with mode 0600, or says
/// which process holds it. `what` names the directory in the error ("the spool directory"),
/// `hint` says what to do ("stop it first, or use another directory").
pub fn lock_dir(dir: &Path, name: &str, what: &str, hint: &str) -> Result<DirLock, LockError> {
    lock_file(&dir.join(name), &format!("{what} {}", dir.display()), hint)
}

/// Takes the lock file `path` (its directory must exist), created with mode 0600, or says which
/// process holds it; `what` names what it guards, path included ("the catalog /…/catalog.db").
pub fn lock_file(path: &Path, what: &str, hint: &str) -> Result<DirLock, LockError> {
    let path = path.to_path_buf();
    let io = |error| LockError::Io {
        path: path.clone(),
        error,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(LockError::Held {
                what: what.to_owned(),
                lock: path.clone(),
                pid: text.trim().parse().ok(),
                hint: hint.to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    // The holder's pid, for whoever is refused next. Best effort: the lock, not the file's
    // content, is what excludes (a stale pid left by a killed process means nothing), and a
    // full disk must not keep an agent from starting to drain its spool.
    let _ = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| writeln!(file, "{}", std::process::id()));
    Ok(DirLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_again_after_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let held = lock_dir(tmp.path(), "lock", "the spool directory", "stop it first").unwrap();
        assert_eq!(
            std::fs::read_to_string(held.path()).unwrap().trim(),
            std::process::id().to_string()
        );
        let e = lock_dir(tmp.path(), "lock", "the spool directory", "stop it first").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("in use by process {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("the spool directory"), "{text}");
        assert!(text.ends_with("stop it first"), "{text}");
        drop(held);
        lock_dir(tmp.path(), "lock", "the spool directory", "stop it first").unwrap();
    }
}
