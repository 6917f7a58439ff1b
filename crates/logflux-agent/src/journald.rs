//! The systemd journal, read through `journalctl -o json --follow`, with the journal cursor
//! as checkpoint (advanced once entries are in the spool, written atomically).
//!
//! ```yaml
//! inputs:
//!   journald:
//!     units: [nginx.service, sshd.service]    # default: everything
//!     read_from: end                          # without a checkpoint: end (default) or beginning
//!     directory: /var/log/journal             # or files: [/path/x.journal]; default: the system journal
//! ```
//!
//! `PRIORITY` becomes `logLevel` (+1); `SYSLOG_IDENTIFIER` (else the unit, else `_COMM`) the
//! source; `_SYSTEMD_UNIT`, `_PID`, `_HOSTNAME` and the other fields metadata (leading `_`
//! dropped, lower-cased). `payloadType: systemd_journal`.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use logflux_proto::{Entry, EntryType, Level, timefmt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::watch;

use crate::pipeline::{Intake, Shared};
use crate::tail::ReadFrom;

/// `inputs.journald`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournaldInputConfig {
    /// The `journalctl` program.
    #[serde(default = "default_journalctl")]
    pub journalctl: PathBuf,
    /// A journal directory (`--directory`).
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Journal files (`--file`).
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Only these units (`--unit`).
    #[serde(default)]
    pub units: Vec<String>,
    /// Without a checkpoint: everything in the journal (`beginning`) or only new entries.
    #[serde(default = "default_read_from")]
    pub read_from: ReadFrom,
    /// Entries handed to the pipeline at once, at most.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_journalctl() -> PathBuf {
    PathBuf::from("journalctl")
}

fn default_read_from() -> ReadFrom {
    ReadFrom::End
}

fn default_batch() -> usize {
    1000
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Checkpoint {
    cursor: Option<String>,
}

/// A journal field's value: a string, or bytes (`[…]`) for binary or non-UTF-8 data.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(a) => {
            let bytes: Vec<u8> = a
                .iter()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect();
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// One `journalctl -o json` line as an entry, and its cursor.
pub fn parse(line: &str, now_ns: i64) -> Option<(Entry, Option<String>)> {
    let Value::Object(m) = serde_json::from_str::<Value>(line).ok()? else {
        return None;
    };
    let get = |k: &str| m.get(k).and_then(text);
    let level = get("PRIORITY")
        .and_then(|p| p.parse::<i64>().ok())
        .and_then(|p| Level::from_number(p + 1))
        .unwrap_or(Level::Info);
    let ts = get("__REALTIME_TIMESTAMP")
        .and_then(|t| t.parse::<i64>().ok())
        .map(|us| us.saturating_mul(1000))
        .unwrap_or(now_ns);
    let source = get("SYSLOG_IDENTIFIER")
        .or_else(|| get("_SYSTEMD_UNIT"))
        .or_else(|| get("_COMM"))
        .unwrap_or_else(|| "journald".into());
    let mut e = Entry::new(ts, level, &source, "");
    e.payload = get("MESSAGE").unwrap_or_default();
    e.entry_type = EntryType::Log;
    e.payload_type = "systemd_journal".into();
    e.metadata.extend(m.iter().filter_map(|(k, v)| {
        if k.starts_with("__") || k == "MESSAGE" || k == "PRIORITY" {
            return None;
        }
        let t = text(v)?;
        let key = k.trim_start_matches('_').to_ascii_lowercase();
        let key = match key.as_str() {
            "systemd_unit" => "unit".to_owned(),
            _ => key,
        };
        Some((key, t))
    }));
    Some((e, get("__CURSOR")))
}

/// Runs the journald input until `stop`: `journalctl` is restarted (from the checkpoint) if it
/// exits.
pub(crate) async fn run(
    cfg: JournaldInputConfig,
    spool_dir: PathBuf,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let dir = spool_dir.join("checkpoints");
    let ck_path = dir.join("journald.json");
    let mut backoff = Duration::from_millis(500);
    loop {
        match follow(&cfg, &dir, &ck_path, &shared, &intake, &mut stop).await {
            Ok(true) => return,
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "journald input: journalctl failed; restarting"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One run of `journalctl`; `Ok(true)` when stopped.
async fn follow(
    cfg: &JournaldInputConfig,
    dir: &std::path::Path,
    ck_path: &std::path::Path,
    shared: &Shared,
    intake: &Intake,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<bool> {
    std::fs::create_dir_all(dir)?;
    let ck: Checkpoint = match std::fs::read(ck_path) {
        Ok(b) => serde_json::from_slice(&b).context("journald checkpoint")?,
        Err(_) => Checkpoint::default(),
    };
    let mut cmd = tokio::process::Command::new(&cfg.journalctl);
    cmd.args(["-o", "json", "--follow", "--no-pager", "--all"]);
    if let Some(d) = &cfg.directory {
        cmd.arg("--directory").arg(d);
    }
    for f in &cfg.files {
        cmd.arg("--file").arg(f);
    }
    for u in &cfg.units {
        cmd.arg("--unit").arg(u);
    }
    match &ck.cursor {
        Some(c) => {
            cmd.arg(format!("--after-cursor={c}"));
        }
        None if cfg.read_from == ReadFrom::End => {
            cmd.arg("--lines=0");
        }
        None => {}
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", cfg.journalctl.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            tracing::warn!(message = %l, "journalctl");
        }
    });
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut batch = Vec::new();
    let mut cursor = ck.cursor.clone();
    loop {
        // Gather what is ready, up to the batch size, then hand it over.
        let next = if batch.is_empty() {
            tokio::select! {
                l = lines.next_line() => l?,
                _ = stop.changed() => return Ok(true),
            }
        } else {
            match tokio::time::timeout(Duration::from_millis(50), lines.next_line()).await {
                Ok(l) => l?,
                Err(_) => Some(String::new()),
            }
        };
        let eof = next.is_none();
        if let Some(l) = next
            && !l.is_empty()
        {
            match parse(&l, timefmt::now_ns()) {
                Some((e, c)) => {
                    batch.push(e);
                    if c.is_some() {
                        cursor = c;
                    }
                }
                None => {
                    shared
                        .metrics
                        .entries_rejected
                        .get_or_create(&crate::metrics::ReasonLabel {
                            reason: "journald_unreadable",
                        })
                        .inc();
                }
            }
            if batch.len() < cfg.batch {
                continue;
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let mut spooled = tokio::select! {
                r = intake.send_spooled(std::mem::take(&mut batch)) => {
                    r.map_err(|_| anyhow::anyhow!("the pipeline is closed"))?
                }
                _ = stop.changed() => return Ok(true),
            };
            shared.metrics.received("journald", n);
            // At a stop, sealed at once and the cursor still saved (else read again).
            if !intake.until_spooled(&mut spooled, stop).await {
                return Ok(true);
            }
            let data = serde_json::to_vec(&Checkpoint {
                cursor: cursor.clone(),
            })?;
            let path = ck_path.to_path_buf();
            tokio::task::spawn_blocking(move || crate::tail::write_atomic(&path, &data)).await??;
            // The wait took the stop's notice, if there was one.
            if *stop.borrow() {
                return Ok(true);
            }
        }
        if eof {
            let status = child.wait().await?;
            anyhow::bail!("journalctl exited: {status}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_fields_become_level_source_and_metadata() {
        let line = r#"{"__CURSOR":"s=abc;i=1","__REALTIME_TIMESTAMP":"1763719200123456","PRIORITY":"3","_SYSTEMD_UNIT":"nginx.service","_PID":"4242","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"nginx","MESSAGE":"upstream timed out","_COMM":"nginx","CODE_LINE":[49,50]}"#;
        let (e, c) = parse(line, 0).unwrap();
        assert_eq!(c.as_deref(), Some("s=abc;i=1"));
        assert_eq!(e.level, Level::Error);
        assert_eq!(e.timestamp_ns, 1_763_719_200_123_456_000);
        assert_eq!(e.source, "nginx");
        assert_eq!(e.payload, "upstream timed out");
        assert_eq!(e.metadata["unit"], "nginx.service");
        assert_eq!(e.metadata["pid"], "4242");
        assert_eq!(e.metadata["hostname"], "web-1");
        assert_eq!(e.metadata["code_line"], "12");
        assert_eq!(e.payload_type, "systemd_journal");
        assert!(!e.metadata.contains_key("cursor"));
        let bytes = r#"{"MESSAGE":[104,105,255],"PRIORITY":"6"}"#;
        let (e, _) = parse(bytes, 7).unwrap();
        assert_eq!(e.payload, "hi\u{fffd}");
        assert_eq!(e.timestamp_ns, 7);
        assert_eq!(e.source, "journald");
        assert!(parse("not json", 0).is_none());
    }
}
