//! The notification log (Alertmanager's nflog): what was last sent to which group and
//! integration, kept in a state file so a restarted evaluator does not notify again what it
//! already did; and the dead-letter log of notifications that could not be delivered.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What was last sent for one (group, receiver, integration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) group_key: String,
    pub(crate) receiver: String,
    pub(crate) integration: String,
    /// The integration's position in its receiver.
    pub(crate) idx: usize,
    /// Fingerprints firing when it was sent.
    pub(crate) firing: Vec<String>,
    /// Fingerprints resolved when it was sent.
    pub(crate) resolved: Vec<String>,
    /// When (Unix ms).
    pub(crate) at_ms: i64,
}

impl Entry {
    pub(crate) fn key(&self) -> String {
        key(&self.group_key, &self.receiver, &self.integration, self.idx)
    }
}

pub(crate) fn key(group_key: &str, receiver: &str, integration: &str, idx: usize) -> String {
    format!("{group_key}\u{0}{receiver}\u{0}{integration}\u{0}{idx}")
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    entries: Vec<Entry>,
}

const VERSION: u32 = 1;

/// The log in memory.
#[derive(Debug, Default)]
pub(crate) struct NotificationLog {
    entries: HashMap<String, Entry>,
}

impl NotificationLog {
    /// Reads the state file; a missing file is an empty log. A file that cannot be read is an
    /// error: starting empty would notify everything firing again.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let f: StateFile = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a notification log ({e}); move it away to start afresh (firing \
                 alerts will then be notified again)",
                path.display()
            )
        })?;
        if f.version != VERSION {
            return Err(format!(
                "{}: notification log version {} (this build reads {VERSION})",
                path.display(),
                f.version
            ));
        }
        Ok(Self {
            entries: f.entries.into_iter().map(|e| (e.key(), e)).collect(),
        })
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub(crate) fn set(&mut self, e: Entry) {
        self.entries.insert(e.key(), e);
    }

    /// Drops entries older than `retention` (Alertmanager keeps them 120 h).
    pub(crate) fn prune(&mut self, now_ms: i64, retention_ms: i64) {
        self.entries.retain(|_, e| e.at_ms >= now_ms - retention_ms);
    }

    /// The whole file's bytes, entries in a stable order.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<Entry> = self.entries.values().cloned().collect();
        entries.sort_by_key(Entry::key);
        serde_json::to_vec_pretty(&StateFile {
            version: VERSION,
            entries,
        })
        .unwrap_or_default()
    }
}

/// Writes `bytes` as the whole of `path`, mode 0600: a temporary file beside it, synced, then
/// renamed over it, so a crash leaves the old file or the new one.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(d) = dir {
        std::fs::create_dir_all(d)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An older file may have been created more open; the mode above applies only to new ones.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// Appends one JSON line to the dead-letter log (mode 0600).
pub(crate) fn append_line(path: &Path, line: &serde_json::Value) -> std::io::Result<()> {
    if let Some(d) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let mut bytes = serde_json::to_vec(line).unwrap_or_default();
    bytes.push(b'\n');
    f.write_all(&bytes)?;
    f.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_round_trips_through_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/notify.json");
        let mut log = NotificationLog::default();
        let e = Entry {
            group_key: "{}:{alertname=\"A\"}".into(),
            receiver: "team".into(),
            integration: "webhook".into(),
            idx: 0,
            firing: vec!["00ff".into()],
            resolved: vec![],
            at_ms: 1000,
        };
        log.set(e.clone());
        log.set(Entry {
            at_ms: 10,
            group_key: "old".into(),
            ..e.clone()
        });
        log.prune(2000, 1500);
        write_private(&path, &log.encode()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = NotificationLog::load(&path).unwrap();
        assert_eq!(back.get(&e.key()), Some(&e));
        assert_eq!(back.entries.len(), 1);
        // Missing: empty; damaged: an error naming the file.
        assert!(NotificationLog::load(&dir.path().join("none")).is_ok());
        std::fs::write(&path, b"{not json").unwrap();
        let err = NotificationLog::load(&path).unwrap_err();
        assert!(
            err.contains("notify.json is not a notification log"),
            "{err}"
        );
    }
}
