//! Files only this user may read: the web UI's saved searches and dashboards, `logflux up`'s
//! client configuration and environment. Each is written whole (a new file of mode 0600
//! beside it, synced, renamed into place, the directory synced), so a crash leaves the old
//! file or the new one, never half of one, and never a moment where others could read it.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;

/// Makes `dir` (and its parents) with mode 0700 when it is missing. With `narrow`, an existing
/// `dir` that group or others may read or enter is narrowed to 0700 (a directory of our own,
/// made more open by hand or by an older version, would name its files to other users).
pub(crate) fn private_dir(dir: &Path, narrow: bool) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) => {
            let mode = m.permissions().mode();
            if narrow && mode & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .with_context(|| {
                        format!(
                            "narrowing {} (mode {:o}) to 0700",
                            dir.display(),
                            mode & 0o777
                        )
                    })?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display())),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Writes `bytes` to `path` whole, mode 0600; its directory is made (0700) when missing.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    private_dir(dir, false)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context("a file name")?;
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename is durable once the directory is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_file_is_replaced_whole_owner_only_in_a_private_directory() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("a/b/file.json");
        write_atomic(&f, b"one").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        assert_eq!(mode(&f), 0o600);
        assert_eq!(mode(&d.path().join("a/b")), 0o700);
        // An existing file of another mode is replaced by one of 0600.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), 0o600);
        let left: Vec<_> = std::fs::read_dir(d.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["file.json"], "no temporary file is left");
    }

    #[test]
    fn an_open_directory_is_narrowed_only_when_asked() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("dashboards");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir, false).unwrap();
        assert_eq!(mode(&dir), 0o755);
        private_dir(&dir, true).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }
}
