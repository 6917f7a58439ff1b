//! The agent's configuration file (YAML, default `/etc/logflux-agent/agent.yaml`).
//!
//! ```yaml
//! server:
//!   urls: [https://logs-1.example.com, https://logs-2.example.com]   # failover in order
//!   api_key: ${LOGFLUX_API_KEY}
//!   ca_file: /etc/logflux-agent/ca.pem        # optional, for a private CA
//!   sign_requests: false
//! keys:
//!   public_key_file: /etc/logflux-agent/public_key.pem    # or public_key_fingerprint: SHA256:…
//!   search_key_file: /etc/logflux-agent/search.key
//! inputs:
//!   unix_socket: {path: /tmp/logflux-agent.sock, mode: "0660"}
//!   tcp: {listen: 127.0.0.1:9999, shared_secret: ${LOGFLUX_SHARED_SECRET}}
//! batch: {max_wait_ms: 1000, max_entries: 1000, max_bytes: 1048576, zstd_level: 1, time_granularity_ms: 1000, format: 2}
//! rotation: {max_age_s: 86400, max_batches: 100000}
//! spool: {dir: /var/lib/logflux-agent, max_bytes: 1073741824, fsync: always, when_full: block}
//! shipper: {max_records_per_request: 64, max_request_bytes: 8388608}
//! metrics: {listen: 127.0.0.1:8465}
//! labels: {env: prod}
//! shutdown_timeout_s: 10
//! ```
//!
//! Every path may start with `~/` (the home directory of the user running the agent).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use serde::Deserialize;

use crate::spool::{FsyncPolicy, SpoolConfig};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Identifies this agent in metadata (default: the host name).
    #[serde(default)]
    pub agent_id: Option<String>,
    pub server: ServerSection,
    pub keys: KeysSection,
    #[serde(default)]
    pub inputs: InputsSection,
    #[serde(default)]
    pub batch: BatchSection,
    #[serde(default)]
    pub rotation: RotationSection,
    pub spool: SpoolSection,
    #[serde(default)]
    pub shipper: ShipperSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    /// Static labels added to every entry's metadata (an entry's own value wins).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Add `host` and `agent_id` to every entry's metadata.
    #[serde(default = "yes")]
    pub enrich: bool,
    /// Redaction rules, applied in order to every entry before it is sealed.
    #[serde(default)]
    pub filters: Vec<crate::redact::FilterConfig>,
    /// Copies of selected entries (after redaction) sent as RFC 5424 syslog to other systems.
    #[serde(default)]
    pub forward: Vec<crate::forward::ForwardConfig>,
    /// On SIGTERM, how long the agent may take to seal and spool what it holds; what is not
    /// spooled by then (a full spool with the server away) is counted, reported, and lost.
    #[serde(default = "default_shutdown_timeout")]
    pub shutdown_timeout_s: u64,
}

fn yes() -> bool {
    true
}

fn default_shutdown_timeout() -> u64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Server base URLs, tried in order; the agent fails over to the next on errors.
    pub urls: Vec<String>,
    pub api_key: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a non-loopback host (only inside a trusted network).
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default)]
    pub sign_requests: bool,
    #[serde(default = "default_timeout")]
    pub timeout_s: u64,
}

fn default_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// The tenant public key; pinned.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
    /// Or its fingerprint: the key is fetched from the server once, checked, and cached.
    #[serde(default)]
    pub public_key_fingerprint: Option<String>,
    pub search_key_file: PathBuf,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputsSection {
    #[serde(default)]
    pub unix_socket: Option<UnixSection>,
    #[serde(default)]
    pub tcp: Option<TcpSection>,
    /// Log files (globs, rotation, checkpoints, multi-line, formats).
    #[serde(default)]
    pub files: Vec<crate::files::FileInputConfig>,
    /// Docker's json-file container logs.
    #[serde(default)]
    pub docker: Option<crate::files::DockerInputConfig>,
    /// Kubernetes' CRI container logs.
    #[serde(default)]
    pub kubernetes: Option<crate::files::KubernetesInputConfig>,
    /// nginx access and error logs.
    #[serde(default)]
    pub nginx: Option<crate::files::NginxInputConfig>,
    /// Syslog listeners (RFC 5424 and 3164 over UDP, TCP, a Unix datagram socket).
    #[serde(default)]
    pub syslog: Vec<crate::syslog::SyslogInputConfig>,
    /// The systemd journal, through `journalctl`.
    #[serde(default)]
    pub journald: Option<crate::journald::JournaldInputConfig>,
    /// An HTTP endpoint for Fluent Bit's `http` output (and anything that posts JSON).
    #[serde(default)]
    pub http: Option<crate::http_input::HttpInputConfig>,
}

impl InputsSection {
    /// Every file-based input (files, docker, kubernetes, nginx) with its kind.
    pub fn file_inputs(&self) -> Vec<(crate::files::FileInputConfig, crate::files::Kind)> {
        use crate::files::{FileInputConfig, Kind};
        let mut v: Vec<(FileInputConfig, Kind)> = self
            .files
            .iter()
            .map(|f| (f.clone(), Kind::Files))
            .collect();
        if let Some(d) = &self.docker {
            v.push(FileInputConfig::docker(d));
        }
        if let Some(k) = &self.kubernetes {
            v.push(FileInputConfig::kubernetes(k));
        }
        if let Some(n) = &self.nginx {
            v.extend(FileInputConfig::nginx(n));
        }
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnixSection {
    #[serde(default = "default_socket")]
    pub path: PathBuf,
    /// Octal file mode of the socket.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed (0: never).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
}

fn default_socket() -> PathBuf {
    PathBuf::from("/tmp/logflux-agent.sock")
}

fn default_mode() -> String {
    "0660".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSection {
    #[serde(default = "default_tcp")]
    pub listen: SocketAddr,
    pub shared_secret: String,
    /// Listen on a non-loopback address.
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Time from connecting to a successful authentication; then the connection is closed.
    #[serde(default = "default_auth_timeout")]
    pub auth_timeout_ms: u64,
    /// An authenticated connection that sends nothing for this long is closed (0: never).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_s: u64,
    /// Authenticated connections served at once; one more is refused when it authenticates.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Connections not yet authenticated; at the limit a new one closes the oldest of them.
    #[serde(default = "default_max_unauthenticated")]
    pub max_unauthenticated: usize,
    /// Connections from one non-loopback address (authenticated or not); more are refused.
    #[serde(default = "default_max_connections_per_peer")]
    pub max_connections_per_peer: usize,
}

fn default_tcp() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9999))
}

fn default_auth_timeout() -> u64 {
    5_000
}

/// Off: a TCP client cannot see a close before its next write, so closing a quiet but live
/// connection would lose that write (docs/decisions.md); TCP keepalive finds dead peers instead.
fn default_idle_timeout() -> u64 {
    0
}

fn default_max_connections() -> usize {
    1_024
}

fn default_max_unauthenticated() -> usize {
    256
}

fn default_max_connections_per_peer() -> usize {
    64
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSection {
    pub max_wait_ms: u64,
    pub max_entries: usize,
    pub max_bytes: usize,
    pub zstd_level: i32,
    /// Records tell the server their time range rounded outward to this many milliseconds.
    pub time_granularity_ms: u64,
    /// The batch encoding written: 2 (columns, shared metadata once; clients from issue 18 on
    /// read it) or 1 (for clients older than that, while they are upgraded).
    pub format: u8,
}

impl Default for BatchSection {
    fn default() -> Self {
        BatchSection {
            max_wait_ms: 1000,
            max_entries: 1000,
            max_bytes: 1024 * 1024,
            zstd_level: 1,
            time_granularity_ms: 1000,
            format: logflux_proto::batch::VERSION,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationSection {
    pub max_age_s: u64,
    pub max_batches: u64,
}

impl Default for RotationSection {
    fn default() -> Self {
        RotationSection {
            max_age_s: 86_400,
            max_batches: 100_000,
        }
    }
}

/// What to do when the spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Inputs pause; local clients get `queue_full` replies.
    Block,
    /// New batches are dropped and counted.
    DropNewest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    Always,
    Interval,
    Never,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolSection {
    pub dir: PathBuf,
    #[serde(default = "default_spool_bytes")]
    pub max_bytes: u64,
    #[serde(default = "default_segment_bytes")]
    pub segment_bytes: u64,
    #[serde(default = "default_fsync")]
    pub fsync: Fsync,
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval_ms: u64,
    #[serde(default = "default_when_full")]
    pub when_full: WhenFull,
}

fn default_spool_bytes() -> u64 {
    1024 * 1024 * 1024
}
fn default_segment_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_fsync() -> Fsync {
    Fsync::Always
}
fn default_fsync_interval() -> u64 {
    1000
}
fn default_when_full() -> WhenFull {
    WhenFull::Block
}

impl SpoolSection {
    pub fn spool_config(&self) -> SpoolConfig {
        SpoolConfig {
            max_bytes: self.max_bytes,
            segment_bytes: self.segment_bytes,
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Interval => {
                    FsyncPolicy::Interval(Duration::from_millis(self.fsync_interval_ms))
                }
                Fsync::Never => FsyncPolicy::Never,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShipperSection {
    pub max_records_per_request: usize,
    pub max_request_bytes: usize,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for ShipperSection {
    fn default() -> Self {
        ShipperSection {
            max_records_per_request: 64,
            max_request_bytes: 8 * 1024 * 1024,
            backoff_initial_ms: 200,
            backoff_max_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Loopback address of `/metrics`, `/status` and `/healthz`; none to disable.
    #[serde(default = "default_metrics")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            listen: default_metrics(),
        }
    }
}

/// Port 8465: outside 9100-9999, which Prometheus' default port allocations (its wiki) have
/// handed out to exporters in full — 9100 is node_exporter's — and clear of the agent's other
/// defaults (TCP 9999, HTTP input 8088) and the server's 8080.
pub const DEFAULT_METRICS_PORT: u16 = 8465;

fn default_metrics() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], DEFAULT_METRICS_PORT)))
}

/// Hosts a plain `http://` URL may point at without `allow_insecure_http`.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(h) = host.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl AgentConfig {
    /// Checks every value and reports all problems at once, with their paths.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut p = Vec::new();
        if self.server.urls.is_empty() {
            p.push("server.urls: at least one URL".to_owned());
        }
        for (i, u) in self.server.urls.iter().enumerate() {
            if u.starts_with("http://") {
                if !is_loopback_url(u) && !self.server.allow_insecure_http {
                    p.push(format!(
                        "server.urls[{i}]: http:// to a non-loopback host sends logs and the API key in the clear; \
                         use https://, or set server.allow_insecure_http"
                    ));
                }
            } else if !u.starts_with("https://") {
                p.push(format!(
                    "server.urls[{i}]: must start with https:// (or http:// on loopback), got {u:?}"
                ));
            }
        }
        if !self
            .server
            .api_key
            .split_once("-lf_")
            .is_some_and(|(r, s)| !r.is_empty() && !s.is_empty())
        {
            p.push("server.api_key: must look like <region>-lf_<secret>".to_owned());
        }
        match (
            &self.keys.public_key_file,
            &self.keys.public_key_fingerprint,
        ) {
            (None, None) => p.push(
                "keys: set public_key_file or public_key_fingerprint (the tenant key is pinned)"
                    .to_owned(),
            ),
            (_, Some(fp)) if fp.parse::<logflux_crypto::Fingerprint>().is_err() => {
                p.push("keys.public_key_fingerprint: must be SHA256:<64 hex digits>".to_owned())
            }
            _ => {}
        }
        if let Some(tcp) = &self.inputs.tcp {
            if tcp.shared_secret.chars().count() < 32 {
                p.push("inputs.tcp.shared_secret: at least 32 characters".to_owned());
            }
            if !tcp.listen.ip().is_loopback() && !tcp.allow_non_loopback {
                p.push(format!(
                    "inputs.tcp.listen: {} is not loopback; set inputs.tcp.allow_non_loopback to expose it",
                    tcp.listen
                ));
            }
            if !(10..=60_000).contains(&tcp.auth_timeout_ms) {
                p.push("inputs.tcp.auth_timeout_ms: 10..60000".to_owned());
            }
            if !(1..=1_000_000).contains(&tcp.max_connections) {
                p.push("inputs.tcp.max_connections: 1..1000000".to_owned());
            }
            if !(1..=1_000_000).contains(&tcp.max_unauthenticated) {
                p.push("inputs.tcp.max_unauthenticated: 1..1000000".to_owned());
            }
            if tcp.max_connections_per_peer == 0 {
                p.push("inputs.tcp.max_connections_per_peer: at least 1".to_owned());
            }
        }
        if let Some(u) = &self.inputs.unix_socket {
            if u32::from_str_radix(u.mode.trim_start_matches("0o"), 8).is_err() {
                p.push(format!(
                    "inputs.unix_socket.mode: an octal mode like \"0660\", got {:?}",
                    u.mode
                ));
            }
            if !(1..=1_000_000).contains(&u.max_connections) {
                p.push("inputs.unix_socket.max_connections: 1..1000000".to_owned());
            }
        }
        let files = self.inputs.file_inputs();
        for (i, (f, _)) in files.iter().enumerate() {
            if let Err(e) = f.validate(&format!("inputs.files[{i}]")) {
                p.push(format!("{e:#}"));
            }
        }
        for (i, sy) in self.inputs.syslog.iter().enumerate() {
            if let Err(e) = sy.validate(&format!("inputs.syslog[{i}]")) {
                p.push(format!("{e:#}"));
            }
        }
        if let Some(h) = &self.inputs.http
            && let Err(e) = h.validate("inputs.http")
        {
            p.push(format!("{e:#}"));
        }
        if self.inputs.unix_socket.is_none()
            && self.inputs.tcp.is_none()
            && files.is_empty()
            && self.inputs.syslog.is_empty()
            && self.inputs.journald.is_none()
            && self.inputs.http.is_none()
        {
            p.push("inputs: enable at least one input (unix_socket, tcp, files, docker, kubernetes, nginx, syslog, journald, http)".to_owned());
        }
        for (i, f) in self.forward.iter().enumerate() {
            if let Err(e) = f.validate(&format!("forward[{i}]")) {
                p.push(format!("{e:#}"));
            }
        }
        if let Err(e) = crate::redact::Redactor::new(&self.filters) {
            p.push(format!("{e:#}"));
        }
        let b = &self.batch;
        if b.max_entries == 0 || b.max_entries > logflux_proto::batch::MAX_ENTRIES {
            p.push(format!(
                "batch.max_entries: {} is not within 1..{}",
                b.max_entries,
                logflux_proto::batch::MAX_ENTRIES
            ));
        }
        // Clients refuse a batch larger than limits::MAX_BATCH_PLAINTEXT_BYTES; one cut at
        // this size (plus at most one entry) stays well within it.
        let max_bytes = logflux_proto::limits::MAX_AGENT_BATCH_BYTES;
        if b.max_bytes < 1024 || b.max_bytes > max_bytes {
            p.push(format!(
                "batch.max_bytes: {} is not within 1 KiB..{} MiB ({max_bytes} bytes)",
                b.max_bytes,
                max_bytes / (1024 * 1024)
            ));
        }
        if b.time_granularity_ms == 0 || b.time_granularity_ms > 60_000 {
            p.push(format!(
                "batch.time_granularity_ms: {} is not within 1..60000",
                b.time_granularity_ms
            ));
        }
        if b.max_wait_ms == 0 || b.max_wait_ms > 60_000 {
            p.push("batch.max_wait_ms: 1..60000".to_owned());
        }
        if !(-7..=19).contains(&b.zstd_level) {
            p.push("batch.zstd_level: -7..19".to_owned());
        }
        if !(1..=logflux_proto::batch::VERSION).contains(&b.format) {
            p.push(format!(
                "batch.format: 1 or {}",
                logflux_proto::batch::VERSION
            ));
        }
        if self.rotation.max_batches == 0 || self.rotation.max_age_s == 0 {
            p.push("rotation: max_age_s and max_batches must be positive".to_owned());
        }
        if self.spool.max_bytes < 1024 * 1024 {
            p.push("spool.max_bytes: at least 1 MiB".to_owned());
        }
        if self.spool.segment_bytes < 64 * 1024 || self.spool.segment_bytes > self.spool.max_bytes {
            p.push("spool.segment_bytes: 64 KiB..spool.max_bytes".to_owned());
        }
        if self.shipper.max_records_per_request == 0 || self.shipper.max_records_per_request > 1000
        {
            p.push("shipper.max_records_per_request: 1..1000".to_owned());
        }
        if let Some(m) = self.metrics.listen
            && !m.ip().is_loopback()
        {
            p.push("metrics.listen: must be a loopback address".to_owned());
        }
        if !(1..=3600).contains(&self.shutdown_timeout_s) {
            p.push(format!(
                "shutdown_timeout_s: {} is not within 1..3600",
                self.shutdown_timeout_s
            ));
        }
        if !p.is_empty() {
            bail!("invalid configuration:\n  {}", p.join("\n  "));
        }
        Ok(())
    }

    /// Loads and validates a file (paths starting with `~/` are taken from `$HOME`).
    pub fn load(path: &std::path::Path) -> anyhow::Result<AgentConfig> {
        let mut c: AgentConfig = logflux_config::load(path)?;
        c.expand_home();
        c.validate()?;
        Ok(c)
    }

    /// The address `logflux-agent status` asks, read from the file's `metrics` section alone:
    /// an unset `${VAR}` elsewhere in the file does not matter.
    pub fn load_status_address(path: &std::path::Path) -> anyhow::Result<Option<SocketAddr>> {
        let m: Option<MetricsSection> = logflux_config::load_section(path, "metrics")?;
        Ok(m.unwrap_or_default().listen)
    }

    /// Replaces a leading `~/` with `$HOME` in every path of the configuration: the one place
    /// that knows which fields are paths. Idempotent ([`crate::Agent::start`] calls it too).
    pub fn expand_home(&mut self) {
        use logflux_config::{expand_home as home, expand_home_str as home_str};
        let opt = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut() {
                *p = home(p);
            }
        };
        let strs = |v: &mut Vec<String>| {
            for s in v.iter_mut() {
                *s = home_str(s);
            }
        };
        opt(&mut self.server.ca_file);
        opt(&mut self.keys.public_key_file);
        self.keys.search_key_file = home(&self.keys.search_key_file);
        self.spool.dir = home(&self.spool.dir);
        if let Some(u) = &mut self.inputs.unix_socket {
            u.path = home(&u.path);
        }
        for f in &mut self.inputs.files {
            strs(&mut f.paths);
            strs(&mut f.exclude);
        }
        if let Some(d) = &mut self.inputs.docker {
            d.containers_dir = home(&d.containers_dir);
        }
        if let Some(k) = &mut self.inputs.kubernetes {
            k.logs_dir = home(&k.logs_dir);
        }
        if let Some(n) = &mut self.inputs.nginx {
            strs(&mut n.access_logs);
            strs(&mut n.error_logs);
        }
        for sy in &mut self.inputs.syslog {
            if let Some(p) = sy.listen.strip_prefix("unix://") {
                sy.listen = format!("unix://{}", home_str(p));
            }
        }
        if let Some(j) = &mut self.inputs.journald {
            j.journalctl = home(&j.journalctl);
            opt(&mut j.directory);
            for f in &mut j.files {
                *f = home(f);
            }
        }
        for f in &mut self.forward {
            opt(&mut f.ca_file);
        }
    }

    /// Checks that every file the configuration names can be used: key files exist, are
    /// readable and well-formed, secret ones are not accessible by group or others (as at
    /// startup); CA files are readable certificates. Every problem, with its config path.
    pub fn check_files(&self) -> anyhow::Result<()> {
        use logflux_crypto::keyfile;
        let mut p = Vec::new();
        if let Some(f) = &self.keys.public_key_file
            && let Err(e) = keyfile::read_public_key(f)
        {
            p.push(format!("keys.public_key_file: {e}"));
        }
        if let Err(e) = keyfile::read_search_key(&self.keys.search_key_file) {
            p.push(format!("keys.search_key_file: {e}"));
        }
        let ca = |at: String, f: &std::path::Path, p: &mut Vec<String>| match std::fs::read(f) {
            Err(e) => p.push(format!("{at}: {}: {e}", f.display())),
            Ok(pem) if reqwest::Certificate::from_pem_bundle(&pem).is_ok_and(|c| !c.is_empty()) => {
            }
            Ok(_) => p.push(format!("{at}: {}: no PEM certificate in it", f.display())),
        };
        if let Some(f) = &self.server.ca_file {
            ca("server.ca_file".to_owned(), f, &mut p);
        }
        for (i, fw) in self.forward.iter().enumerate() {
            if let Some(f) = &fw.ca_file {
                ca(format!("forward[{i}].ca_file"), f, &mut p);
            }
        }
        if let Some(j) = &self.inputs.journald {
            for (i, f) in j.files.iter().enumerate() {
                if let Err(e) = std::fs::File::open(f) {
                    p.push(format!("inputs.journald.files[{i}]: {}: {e}", f.display()));
                }
            }
        }
        if !p.is_empty() {
            bail!(
                "files the configuration names cannot be used:\n  {}",
                p.join("\n  ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> String {
        include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.contains("```yaml"))
            .skip(1)
            .take_while(|l| !l.contains("```"))
            .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn documented_example_parses() {
        let text = example()
            .replace("${LOGFLUX_API_KEY}", "eu-lf_abc")
            .replace(
                "${LOGFLUX_SHARED_SECRET}",
                "0123456789abcdef0123456789abcdef",
            );
        let c: AgentConfig = logflux_config::from_str(&text, "doc").unwrap();
        c.validate().unwrap();
        assert_eq!(c.server.urls.len(), 2);
        assert_eq!(c.spool.fsync, Fsync::Always);
        assert_eq!(c.spool.when_full, WhenFull::Block);
        assert_eq!(c.labels["env"], "prod");
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let text = "server: {urls: ['http://10.0.0.5:8080', 'ftp://x'], api_key: nope}\n\
                    keys: {search_key_file: /k}\n\
                    inputs: {tcp: {listen: 0.0.0.0:9999, shared_secret: short, auth_timeout_ms: 0, max_unauthenticated: 0, max_connections: 0, max_connections_per_peer: 0}, unix_socket: {max_connections: 0}}\n\
                    spool: {dir: /s, max_bytes: 10}\n\
                    metrics: {listen: 0.0.0.0:9100}\n";
        let c: AgentConfig = logflux_config::from_str(text, "a.yaml").unwrap();
        let e = c.validate().unwrap_err().to_string();
        for needle in [
            "server.urls[0]: http:// to a non-loopback host",
            "server.urls[1]: must start with https://",
            "server.api_key",
            "keys: set public_key_file or public_key_fingerprint",
            "inputs.tcp.shared_secret: at least 32 characters",
            "inputs.tcp.listen: 0.0.0.0:9999 is not loopback",
            "inputs.tcp.auth_timeout_ms: 10..60000",
            "inputs.tcp.max_connections: 1..1000000",
            "inputs.tcp.max_unauthenticated: 1..1000000",
            "inputs.tcp.max_connections_per_peer: at least 1",
            "inputs.unix_socket.max_connections: 1..1000000",
            "spool.max_bytes",
            "metrics.listen",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
    }

    #[test]
    fn line_understanding_options_are_checked_with_their_path() {
        let text = "server: {urls: ['https://x'], api_key: eu-lf_a}\n\
                    keys: {search_key_file: /k}\n\
                    inputs:\n\
                    \x20 files:\n\
                    \x20   - {paths: ['/a/*.log'], timestamp: {format: '%Q%'}, time_zone: Mars/Base}\n\
                    \x20   - {paths: ['/b/*.log'], timestamp: {regex: '(', format: '%Y'}}\n\
                    \x20   - {paths: ['/c/*.log'], level: {regex: '['}, default_level: loud}\n\
                    \x20   - {paths: ['/d/*.log'], level: shouting}\n\
                    \x20   - {paths: ['/e/*.log'], format: logfmt, level: warn, default_level: notice, time_zone: '+02:00', timestamp: {format: none}}\n\
                    \x20 syslog: [{listen: 'udp://127.0.0.1:5514', time_zone: Nowhere}]\n\
                    \x20 http: {listen: '127.0.0.1:9880', token: '0123456789abcdef0123456789abcdef', timestamp: {format: '%H:%M', regex: '(?P<t>x)'}}\n\
                    spool: {dir: /s}\n";
        let c: AgentConfig = logflux_config::from_str(text, "a.yaml").unwrap();
        let e = c.validate().unwrap_err().to_string();
        for needle in [
            "inputs.files[0].timestamp.format: not a valid strftime format",
            "inputs.files[1].timestamp.regex: not a valid regex",
            "inputs.files[2].level.regex: not a valid regex",
            "inputs.files[3].level: unknown level \"shouting\"",
            "inputs.syslog[0].time_zone: unknown time zone \"Nowhere\"",
            "inputs.http.timestamp.regex: the regex names groups",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
        assert!(!e.contains("files[4]"), "{e}");
    }

    #[test]
    fn batch_limits_are_capped_with_their_path() {
        let text = "server: {urls: [https://x], api_key: eu-lf_a}\n\
                    keys: {search_key_file: /k, public_key_file: /p}\n\
                    inputs: {unix_socket: {path: /tmp/s}}\n\
                    batch: {max_bytes: 16777216, max_entries: 100001, time_granularity_ms: 0}\n\
                    spool: {dir: /s}\n";
        let c: AgentConfig = logflux_config::from_str(text, "a.yaml").unwrap();
        let e = c.validate().unwrap_err().to_string();
        for needle in [
            "batch.max_bytes: 16777216 is not within 1 KiB..8 MiB",
            "batch.max_entries: 100001 is not within 1..100000",
            "batch.time_granularity_ms: 0 is not within 1..60000",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in {e}");
        }
        let ok = text
            .replace("16777216", "8388608")
            .replace("100001", "100000")
            .replace("time_granularity_ms: 0", "time_granularity_ms: 60000");
        let c: AgentConfig = logflux_config::from_str(&ok, "a.yaml").unwrap();
        c.validate().unwrap();
        assert_eq!(BatchSection::default().time_granularity_ms, 1000);
    }

    #[test]
    fn unknown_fields_name_their_path() {
        let e = logflux_config::from_str::<AgentConfig>(
            "server: {urls: [https://x], api_key: eu-lf_a}\nkeys: {search_key_file: /k}\nspool: {dir: /s, fsynk: always}\n",
            "agent.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("agent.yaml: spool.fsynk: unknown field `fsynk`"),
            "{e}"
        );
    }

    #[test]
    fn a_leading_tilde_is_expanded_in_every_path() {
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return; // nothing to expand to
        };
        let h = |p: &str| std::path::Path::new(&home).join(p);
        let hs = |p: &str| h(p).to_string_lossy().into_owned();
        let text = "server: {urls: [https://x], api_key: eu-lf_a, ca_file: ~/ca.pem}\n\
                    keys: {public_key_file: ~/k/pk.pem, search_key_file: ~/k/search.key}\n\
                    inputs:\n\
                    \x20 unix_socket: {path: ~/agent.sock}\n\
                    \x20 files: [{paths: [~/logs/*.log], exclude: [~/logs/skip.log]}]\n\
                    \x20 docker: {containers_dir: ~/docker}\n\
                    \x20 kubernetes: {logs_dir: ~/k8s}\n\
                    \x20 nginx: {access_logs: [~/nginx/access.log], error_logs: [~/nginx/error.log]}\n\
                    \x20 syslog: [{listen: 'unix://~/syslog.sock'}]\n\
                    \x20 journald: {journalctl: ~/bin/journalctl, directory: ~/journal, files: [~/j.journal]}\n\
                    spool: {dir: ~/spool}\n\
                    forward: [{address: '127.0.0.1:6514', ca_file: ~/siem.pem}]\n";
        let mut c: AgentConfig = logflux_config::from_str(text, "a.yaml").unwrap();
        c.expand_home();
        assert_eq!(c.server.ca_file, Some(h("ca.pem")));
        assert_eq!(c.keys.public_key_file, Some(h("k/pk.pem")));
        assert_eq!(c.keys.search_key_file, h("k/search.key"));
        assert_eq!(c.inputs.unix_socket.as_ref().unwrap().path, h("agent.sock"));
        assert_eq!(c.inputs.files[0].paths, vec![hs("logs/*.log")]);
        assert_eq!(c.inputs.files[0].exclude, vec![hs("logs/skip.log")]);
        assert_eq!(
            c.inputs.docker.as_ref().unwrap().containers_dir,
            h("docker")
        );
        assert_eq!(c.inputs.kubernetes.as_ref().unwrap().logs_dir, h("k8s"));
        let n = c.inputs.nginx.as_ref().unwrap();
        assert_eq!(n.access_logs, vec![hs("nginx/access.log")]);
        assert_eq!(n.error_logs, vec![hs("nginx/error.log")]);
        assert_eq!(
            c.inputs.syslog[0].listen,
            format!("unix://{}", hs("syslog.sock"))
        );
        let j = c.inputs.journald.as_ref().unwrap();
        assert_eq!(j.journalctl, h("bin/journalctl"));
        assert_eq!(j.directory, Some(h("journal")));
        assert_eq!(j.files, vec![h("j.journal")]);
        assert_eq!(c.spool.dir, h("spool"));
        assert_eq!(c.forward[0].ca_file, Some(h("siem.pem")));
        // Nothing is left with a `~` in it, and a second pass changes nothing.
        assert!(!format!("{c:?}").contains('~'), "{c:?}");
        let again = format!("{c:?}");
        c.expand_home();
        assert_eq!(format!("{c:?}"), again);
    }

    #[test]
    fn check_files_reports_each_unusable_file_with_its_path() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(dir.path().join("search.key"), "00".repeat(32)).unwrap();
        std::fs::set_permissions(
            dir.path().join("search.key"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let text = format!(
            "server: {{urls: [https://x], api_key: eu-lf_a, ca_file: '{d}/ca.pem'}}\n\
             keys: {{public_key_file: '{d}/missing.pem', search_key_file: '{d}/search.key'}}\n\
             inputs: {{unix_socket: {{path: /tmp/s}}}}\n\
             spool: {{dir: '{d}/spool'}}\n\
             forward: [{{address: '127.0.0.1:6514', ca_file: '{d}/nope.pem'}}]\n"
        );
        let c: AgentConfig = logflux_config::from_str(&text, "a.yaml").unwrap();
        c.validate().unwrap();
        let e = c.check_files().unwrap_err().to_string();
        for needle in [
            format!("keys.public_key_file: public key file {d}/missing.pem: No such file"),
            format!(
                "keys.search_key_file: search key file {d}/search.key is accessible by group or others"
            ),
            format!("server.ca_file: {d}/ca.pem: no PEM certificate in it"),
            format!("forward[0].ca_file: {d}/nope.pem: No such file"),
        ] {
            assert!(e.contains(&needle), "missing {needle:?} in {e}");
        }
        assert_eq!(e.matches("No such file").count(), 2, "{e}");
    }

    #[test]
    fn loopback_urls() {
        assert!(is_loopback_url("http://127.0.0.1:8080/"));
        assert!(is_loopback_url("http://localhost:8080"));
        assert!(is_loopback_url("http://[::1]:8080"));
        assert!(!is_loopback_url("http://10.1.2.3:8080"));
        assert!(!is_loopback_url("http://logs.example.com"));
    }
}
