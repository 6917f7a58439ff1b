//! File inputs (and Docker, Kubernetes and nginx, which are files in known places and formats):
//! the tailer on a blocking thread, multi-line joining, parsing, then the pipeline. A file's
//! checkpoint advances only once its entries are in the spool, and is written atomically.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use logflux_proto::{Entry, Metadata};
use serde::Deserialize;
use tokio::sync::watch;

use crate::detect::{DetectConfig, Detector, LevelConfig, TimestampConfig};
use crate::multiline::{Joiner, MultilineConfig, Rules};
use crate::parse::{Format, NGINX_COMBINED, NginxFormat, Parsed, Parser};
use crate::pipeline::{Intake, Shared};
use crate::tail::{LongLines, ReadFrom, TailConfig, Tailer};

/// One `inputs.files` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInputConfig {
    /// Glob patterns (`/var/log/app/*.log`).
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// For files found at start that have no checkpoint (files appearing later are always read
    /// from their beginning).
    #[serde(default)]
    pub read_from: ReadFrom,
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
    #[serde(default)]
    pub long_lines: LongLines,
    #[serde(default)]
    pub format: Format,
    /// An nginx `log_format` for `format: nginx_access` (default: `combined`).
    #[serde(default)]
    pub nginx_log_format: Option<String>,
    #[serde(default)]
    pub multiline: Option<MultilineConfig>,
    /// The entries' source (default: the file name without `.log`).
    #[serde(default)]
    pub source: Option<String>,
    /// Lines' own times: `{format: none}` (off: the read time), `{regex: '(?P<time>…)',
    /// format: '%Y-%m-%d %H:%M:%S'}` (default: detected).
    #[serde(default)]
    pub timestamp: Option<TimestampConfig>,
    /// The zone of times written without one: `UTC`, `+02:00`, `Europe/Berlin`, `local`
    /// (default: the host's).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `error`: every line has this level (detection off); `{regex: '(?P<level>…)'}`
    /// (default: detected).
    #[serde(default)]
    pub level: Option<LevelConfig>,
    /// Level of lines that carry none (default: info).
    #[serde(default)]
    pub default_level: Option<String>,
    /// Added to every entry's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Read `*.gz` files matched by `paths` (decompressed); otherwise they are skipped.
    #[serde(default)]
    pub decompress_gzip: bool,
    /// How often files are looked at when nothing is happening, in milliseconds.
    #[serde(default = "default_poll_ms")]
    pub poll_interval_ms: u64,
    /// Names the checkpoint file (default: derived from `paths`).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_max_line() -> usize {
    1024 * 1024
}

fn default_poll_ms() -> u64 {
    250
}

/// `inputs.docker`: containers' json-file logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerInputConfig {
    #[serde(default = "default_docker_dir")]
    pub containers_dir: PathBuf,
    #[serde(default)]
    pub read_from: ReadFrom,
}

fn default_docker_dir() -> PathBuf {
    PathBuf::from("/var/lib/docker/containers")
}

/// `inputs.kubernetes`: the kubelet's CRI logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesInputConfig {
    #[serde(default = "default_k8s_dir")]
    pub logs_dir: PathBuf,
    #[serde(default)]
    pub read_from: ReadFrom,
}

fn default_k8s_dir() -> PathBuf {
    PathBuf::from("/var/log/containers")
}

/// `inputs.nginx`: access and error logs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxInputConfig {
    #[serde(default)]
    pub access_logs: Vec<String>,
    #[serde(default)]
    pub error_logs: Vec<String>,
    /// The `log_format` of the access logs (default: `combined`).
    #[serde(default)]
    pub log_format: Option<String>,
    #[serde(default)]
    pub read_from: ReadFrom,
    #[serde(default)]
    pub source: Option<String>,
}

/// Where per-file source and metadata come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Files,
    Docker,
    Kubernetes,
}

impl FileInputConfig {
    fn plain(paths: Vec<String>, format: Format, read_from: ReadFrom) -> Self {
        FileInputConfig {
            paths,
            exclude: Vec::new(),
            read_from,
            max_line_bytes: default_max_line(),
            long_lines: LongLines::Split,
            format,
            nginx_log_format: None,
            multiline: None,
            source: None,
            timestamp: None,
            time_zone: None,
            level: None,
            default_level: None,
            metadata: BTreeMap::new(),
            decompress_gzip: false,
            poll_interval_ms: default_poll_ms(),
            name: None,
        }
    }

    /// The file inputs the Docker section stands for.
    pub fn docker(d: &DockerInputConfig) -> (Self, Kind) {
        let glob = format!("{}/*/*-json.log", d.containers_dir.display());
        let mut c = Self::plain(vec![glob], Format::Docker, d.read_from);
        c.name = Some("docker".into());
        (c, Kind::Docker)
    }

    /// The file input the Kubernetes section stands for.
    pub fn kubernetes(k: &KubernetesInputConfig) -> (Self, Kind) {
        let glob = format!("{}/*.log", k.logs_dir.display());
        let mut c = Self::plain(vec![glob], Format::Cri, k.read_from);
        c.name = Some("kubernetes".into());
        (c, Kind::Kubernetes)
    }

    /// The file inputs the nginx section stands for.
    pub fn nginx(n: &NginxInputConfig) -> Vec<(Self, Kind)> {
        let mut v = Vec::new();
        if !n.access_logs.is_empty() {
            let mut c = Self::plain(n.access_logs.clone(), Format::NginxAccess, n.read_from);
            c.nginx_log_format = n.log_format.clone();
            c.source = Some(n.source.clone().unwrap_or_else(|| "nginx".into()));
            c.name = Some("nginx-access".into());
            v.push((c, Kind::Files));
        }
        if !n.error_logs.is_empty() {
            let mut c = Self::plain(n.error_logs.clone(), Format::NginxError, n.read_from);
            c.source = Some(n.source.clone().unwrap_or_else(|| "nginx".into()));
            c.name = Some("nginx-error".into());
            v.push((c, Kind::Files));
        }
        v
    }

    /// Checks what can be checked before starting (patterns, regexes, levels).
    pub fn validate(&self, at: &str) -> anyhow::Result<()> {
        if self.paths.is_empty() {
            anyhow::bail!("{at}.paths: at least one pattern");
        }
        for p in self.paths.iter().chain(&self.exclude) {
            glob::Pattern::new(p).with_context(|| format!("{at}: the pattern {p:?}"))?;
        }
        if let Some(m) = &self.multiline {
            Rules::new(m).with_context(|| at.to_owned())?;
        }
        if let Some(f) = &self.nginx_log_format {
            NginxFormat::new(f).with_context(|| format!("{at}.nginx_log_format"))?;
        }
        self.detector().map_err(|e| anyhow::anyhow!("{at}.{e:#}"))?;
        if self.max_line_bytes == 0 {
            anyhow::bail!("{at}.max_line_bytes must be positive");
        }
        Ok(())
    }

    /// The input's line understanding (an error names the field: `timestamp.format: …`).
    pub fn detector(&self) -> anyhow::Result<Detector> {
        Detector::new(&DetectConfig {
            format: self.format.line_format(),
            timestamp: self.timestamp.clone(),
            time_zone: self.time_zone.clone(),
            level: self.level.clone(),
            default_level: self.default_level.clone(),
        })
        .map_err(anyhow::Error::msg)
    }

    fn checkpoint_name(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => {
                let mut h: u64 = 0xcbf2_9ce4_8422_2325;
                for b in self.paths.join("\n").bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
                format!("files-{h:016x}")
            }
        }
    }
}

/// Source and metadata of one file, by kind.
fn file_context(kind: Kind, cfg: &FileInputConfig, path: &Path) -> (String, Metadata) {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let stem = stem.strip_suffix(".log").unwrap_or(stem).to_owned();
    let mut meta = Metadata::new();
    let source = match kind {
        Kind::Files => cfg.source.clone().unwrap_or(stem),
        Kind::Docker => {
            let dir = path.parent();
            let id = dir
                .and_then(|d| d.file_name())
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_owned();
            let mut cname = id.chars().take(12).collect::<String>();
            if let Some(conf) = dir
                .map(|d| d.join("config.v2.json"))
                .and_then(|p| std::fs::read(p).ok())
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            {
                if let Some(n) = conf["Name"].as_str() {
                    cname = n.trim_start_matches('/').to_owned();
                }
                if let Some(img) = conf["Config"]["Image"].as_str() {
                    meta.insert("image", img.to_owned());
                }
            }
            meta.insert("container_id", id);
            meta.insert("container_name", cname.clone());
            cname
        }
        Kind::Kubernetes => {
            // <pod>_<namespace>_<container>-<64 hex id>.log
            let base = name.strip_suffix(".log").unwrap_or(name);
            let mut parts = base.splitn(3, '_');
            let (pod, ns, rest) = (parts.next(), parts.next(), parts.next());
            match (pod, ns, rest.and_then(|r| r.rsplit_once('-'))) {
                (Some(pod), Some(ns), Some((container, id))) => {
                    meta.insert("pod", pod.to_owned());
                    meta.insert("namespace", ns.to_owned());
                    meta.insert("container", container.to_owned());
                    meta.insert("container_id", id.to_owned());
                    container.to_owned()
                }
                _ => stem,
            }
        }
    };
    (source, meta)
}

/// A file's parser (its source and metadata) and its path as text.
type FileContext = (Parser, String);

/// The context of the file at `path`, made by `make` the first time.
fn context_of(
    contexts: &mut HashMap<Arc<Path>, Arc<FileContext>>,
    path: &Arc<Path>,
    make: impl FnOnce() -> (Parser, String),
) -> Arc<FileContext> {
    if let Some(c) = contexts.get(path) {
        return c.clone();
    }
    let c = Arc::new(make());
    contexts.insert(path.clone(), c.clone());
    c
}

/// Consecutive lines of one file, with its context.
struct Run {
    file: u64,
    context: Arc<FileContext>,
    /// Each line's text and the offset it completes.
    lines: Vec<(String, u64)>,
}

/// Parses runs one line after the other, with each file's partial container line in
/// `partials`; a file's offset in `ends` advances only past complete entries (a partial
/// container line is re-read after a restart from its first part).
fn parse_in_order(
    runs: Vec<Run>,
    partials: &mut HashMap<u64, String>,
    ends: &mut HashMap<u64, u64>,
) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(runs.iter().map(|r| r.lines.len()).sum());
    for r in runs {
        let (parser, path_text) = &*r.context;
        let partial = partials.entry(r.file).or_default();
        for (text, end) in r.lines {
            if let Parsed::Entry(e) = parser.parse(text, path_text, partial) {
                entries.push(e);
            }
            if partial.is_empty() {
                let e = ends.entry(r.file).or_insert(end);
                *e = (*e).max(end);
            }
        }
    }
    entries
}

/// An acknowledgement that is already there (for offsets with no entries to wait for).
fn ready_ack() -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = tx.send(());
    rx
}

/// Runs one file input until `stop`.
pub(crate) async fn run(
    cfg: FileInputConfig,
    kind: Kind,
    spool_dir: PathBuf,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(e) = run_inner(cfg, kind, spool_dir, shared, intake, &mut stop).await {
        tracing::error!(error = format!("{e:#}"), "file input stopped");
    }
}

async fn run_inner(
    cfg: FileInputConfig,
    kind: Kind,
    spool_dir: PathBuf,
    shared: Arc<Shared>,
    intake: Intake,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let dir = spool_dir.join("checkpoints");
    std::fs::create_dir_all(&dir)?;
    let ck_path = dir.join(format!("{}.json", cfg.checkpoint_name()));
    let saved = crate::tail::load_checkpoints(&ck_path)?;
    let mut tailer = Some(Tailer::new(
        TailConfig {
            include: cfg.paths.clone(),
            exclude: cfg.exclude.clone(),
            read_from: cfg.read_from,
            max_line_bytes: cfg.max_line_bytes,
            long_lines: cfg.long_lines,
            decompress_gzip: cfg.decompress_gzip,
        },
        saved,
    )?);
    let mut detector = cfg.detector()?;
    let nginx = match (cfg.format, &cfg.nginx_log_format) {
        (Format::NginxAccess, f) => Some(NginxFormat::new(f.as_deref().unwrap_or(NGINX_COMBINED))?),
        _ => None,
    };
    let rules = cfg.multiline.as_ref().map(Rules::new).transpose()?;
    let input_label: &'static str = match (kind, cfg.format) {
        (Kind::Docker, _) => "docker",
        (Kind::Kubernetes, _) => "kubernetes",
        (_, Format::NginxAccess | Format::NginxError) => "nginx",
        _ => "file",
    };
    detector.implausible = shared
        .metrics
        .timestamps_implausible
        .get_or_create(&crate::metrics::InputLabel { input: input_label })
        .clone();
    let detector = Arc::new(detector);
    let poll = Duration::from_millis(cfg.poll_interval_ms.max(10));
    // Each file's event being joined, with the file's path (for its source and metadata).
    let mut joiners: HashMap<u64, (Joiner, Arc<Path>)> = HashMap::new();
    let mut partials: HashMap<u64, String> = HashMap::new();
    let mut contexts: HashMap<Arc<Path>, Arc<FileContext>> = HashMap::new();
    // The last line's file and its context: lines come file by file, each sharing its file's
    // `Arc<Path>`, so most lines find theirs without hashing the path.
    let mut last: Option<(Arc<Path>, Arc<FileContext>)> = None;
    let mut last_line = Instant::now();
    let mut last_saved: Vec<crate::tail::Checkpoint> = Vec::new();
    // The checkpoint write under way, and whether offsets were committed since the last one.
    let mut saving: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;
    let mut unsaved = false;
    let mut in_flight: std::collections::VecDeque<(
        tokio::sync::oneshot::Receiver<()>,
        HashMap<u64, u64>,
    )> = Default::default();
    'read: loop {
        let mut t = tailer.take().context("tailer")?;
        let (t, lines, stats) = tokio::task::spawn_blocking(move || {
            let lines = t.poll();
            let stats = t.stats.clone();
            (t, lines, stats)
        })
        .await?;
        tailer = Some(t);
        shared.record_tail_stats(input_label, &stats);
        let got_lines = !lines.is_empty();
        if got_lines {
            last_line = Instant::now();
        }
        // Lines → events (multi-line) → entries, with the offset each one completes.
        let mut events: Vec<(u64, Arc<Path>, String, u64)> = Vec::new();
        for l in lines {
            match &rules {
                Some(r) => {
                    let (j, path) = joiners
                        .entry(l.file)
                        .or_insert_with(|| (Joiner::default(), l.path.clone()));
                    if let Some((text, end)) = j.push(r, l.text, l.end) {
                        events.push((l.file, path.clone(), text, end));
                    }
                    // A renamed file (rotation) goes on under its new name.
                    *path = l.path;
                }
                None => events.push((l.file, l.path, l.text, l.end)),
            }
        }
        if let Some(r) = &rules
            && last_line.elapsed() >= r.timeout
        {
            // No new line for the timeout: pending events are complete, each with its own
            // file's path (so its own source and metadata).
            for (file, (j, path)) in joiners.iter_mut() {
                if let Some((text, end)) = j.take() {
                    events.push((*file, path.clone(), text, end));
                }
            }
            // Files with nothing pending are forgotten (a rotated file's id is not reused).
            joiners.retain(|_, (j, _)| !j.is_empty());
        }
        // Events in runs of one file (and one context: a renamed file's name may change).
        let mut runs: Vec<Run> = Vec::new();
        for (file, path, text, end) in events {
            // One parser per file (its source and metadata), made once.
            let context = match &last {
                Some((p, c)) if Arc::ptr_eq(p, &path) => c.clone(),
                _ => {
                    let c = context_of(&mut contexts, &path, || {
                        let (source, meta) = file_context(kind, &cfg, &path);
                        (
                            Parser {
                                format: cfg.format,
                                nginx: nginx.clone(),
                                detector: detector.clone(),
                                source,
                                metadata: meta
                                    .into_iter()
                                    .chain(
                                        cfg.metadata
                                            .iter()
                                            .map(|(k, v)| (k.as_str().into(), v.as_str().into())),
                                    )
                                    .collect(),
                            },
                            path.to_string_lossy().into_owned(),
                        )
                    });
                    last = Some((path.clone(), c.clone()));
                    c
                }
            };
            match runs.last_mut() {
                Some(r) if r.file == file && Arc::ptr_eq(&r.context, &context) => {
                    r.lines.push((text, end));
                }
                _ => runs.push(Run {
                    file,
                    context,
                    lines: vec![(text, end)],
                }),
            }
        }
        let mut ends: HashMap<u64, u64> = HashMap::new();
        let entries = parse_in_order(runs, &mut partials, &mut ends);
        if !entries.is_empty() {
            let n = entries.len() as u64;
            // Waits while the spool is full; a stop ends the wait (these lines are read again:
            // their offsets are not committed), and what was handed over before is still
            // committed below once spooled (it was read again after a restart, twice).
            let handed = tokio::select! {
                r = intake.send_spooled(entries) => {
                    Some(r.map_err(|_| anyhow::anyhow!("the pipeline is closed"))?)
                }
                _ = stop.wait_for(|stop| *stop) => None,
            };
            if let Some(spooled) = handed {
                shared.metrics.received(input_label, n);
                // Reading goes on; these offsets are committed once the entries are in the
                // spool (acknowledgements come in order). In flight is bounded by the intake's
                // budget.
                in_flight.push_back((spooled, ends));
            }
        } else if !ends.is_empty() {
            in_flight.push_back((ready_ack(), ends));
        }
        // Commit what the sealer has spooled; when idle (or stopping), wait for it.
        let idle = !got_lines || *stop.borrow();
        let mut committed = false;
        // An acknowledgement that never came: the sealer is gone, or the shutdown ran out of
        // time and some of those entries are not in the spool.
        let mut unacknowledged = false;
        while let Some((rx, _)) = in_flight.front_mut() {
            let done = if idle {
                intake.until_spooled(rx, stop).await
            } else {
                match rx.try_recv() {
                    Ok(()) => true,
                    Err(tokio::sync::oneshot::error::TryRecvError::Empty) => break,
                    Err(_) => false,
                }
            };
            let Some((_, ends)) = in_flight.pop_front() else {
                break;
            };
            if !done {
                // These offsets, and any after them, stay where they were: the lines are read
                // again. What was committed before is still saved below.
                unacknowledged = true;
                break;
            }
            if let Some(t) = tailer.as_mut() {
                for (file, end) in ends {
                    t.commit(file, end);
                }
            }
            committed = true;
        }
        // Checkpoints are written (atomically, fsynced) one write at a time, in the background
        // while lines keep coming: reading does not wait for the disk. When idle or stopping,
        // the writes are waited for. A write has only committed offsets, so the file on disk
        // may lag behind, never run ahead of the spool.
        unsaved |= committed;
        if let Some(h) = saving.take_if(|h| idle || h.is_finished()) {
            h.await?
                .with_context(|| format!("writing {}", ck_path.display()))?;
        }
        if unsaved
            && saving.is_none()
            && let Some(t) = tailer.as_mut()
        {
            let cks = t.checkpoints();
            if cks != last_saved {
                let path = ck_path.clone();
                let cks2 = cks.clone();
                let h = tokio::task::spawn_blocking(move || {
                    crate::tail::save_checkpoints(&path, &cks2)
                });
                if idle {
                    h.await?
                        .with_context(|| format!("writing {}", ck_path.display()))?;
                } else {
                    saving = Some(h);
                }
                last_saved = cks;
            }
            unsaved = false;
        }
        if unacknowledged || *stop.borrow() {
            break 'read;
        }
        if !got_lines {
            let wait = match &rules {
                Some(r) if joiners.values().any(|(j, _)| !j.is_empty()) => poll.min(r.timeout),
                _ => poll,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => break 'read,
            }
        }
    }
    // A checkpoint write still under way is waited for: its error is not lost, and stopping
    // means the file holds what was committed.
    if let Some(h) = saving {
        h.await?
            .with_context(|| format!("writing {}", ck_path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_and_docker_files_name_their_containers() {
        let cfg = FileInputConfig::plain(vec![], Format::Cri, ReadFrom::Beginning);
        let (src, meta) = file_context(
            Kind::Kubernetes,
            &cfg,
            Path::new(
                "/var/log/containers/web-7d9f_shop_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
            ),
        );
        assert_eq!(src, "nginx");
        assert_eq!(meta["pod"], "web-7d9f");
        assert_eq!(meta["namespace"], "shop");
        assert_eq!(meta["container"], "nginx");
        assert_eq!(meta["container_id"].len(), 64);

        let d = tempfile::tempdir().unwrap();
        let id = "f".repeat(64);
        let cdir = d.path().join(&id);
        std::fs::create_dir_all(&cdir).unwrap();
        std::fs::write(
            cdir.join("config.v2.json"),
            r#"{"Name":"/shop-web-1","Config":{"Image":"nginx:1.27"}}"#,
        )
        .unwrap();
        let (src, meta) = file_context(Kind::Docker, &cfg, &cdir.join(format!("{id}-json.log")));
        assert_eq!(src, "shop-web-1");
        assert_eq!(meta["image"], "nginx:1.27");
        assert_eq!(meta["container_id"], id);
        let (src, _) = file_context(Kind::Files, &cfg, Path::new("/var/log/app/api.log"));
        assert_eq!(src, "api");
    }
}
