//! Forwarding: copies of selected entries, after redaction, sent as RFC 5424 syslog over TCP
//! (octet counting, RFC 6587) or TLS (RFC 5425) to another system — a SIEM, a central site.
//! This is plaintext leaving the agent by the operator's choice; it never blocks or slows the
//! sealed path (a full queue drops the copy, counted).
//!
//! ```yaml
//! forward:
//!   - address: siem.example.com:6514
//!     ca_file: /etc/logflux-agent/siem-ca.pem   # extra root; the system's roots are trusted too
//!     match: {min_level: warning, sources: [checkout], metadata: {env: prod}}
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use logflux_proto::{Entry, Level, timefmt};
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, watch};

/// One `forward` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// `host:port` of the receiver.
    pub address: String,
    /// TLS (default: on, except to a loopback address).
    #[serde(default)]
    pub tls: Option<bool>,
    /// A PEM file of extra trusted roots.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// The name the receiver's certificate must carry (default: the host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default, rename = "match")]
    pub filter: ForwardMatch,
    /// Copies held while the receiver is slow or away; beyond it copies are dropped (counted).
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_queue() -> usize {
    10_000
}

/// Which entries are forwarded (all conditions must hold; empty means any).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardMatch {
    /// This level and more severe.
    #[serde(default)]
    pub min_level: Option<String>,
    #[serde(default)]
    pub sources: Vec<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl ForwardConfig {
    fn host(&self) -> &str {
        self.address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    fn tls(&self) -> bool {
        self.tls.unwrap_or_else(|| {
            let h = self.host();
            !(h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback()))
        })
    }

    pub fn validate(&self, at: &str) -> anyhow::Result<()> {
        if !self.address.contains(':') {
            anyhow::bail!("{at}.address: host:port, got {:?}", self.address);
        }
        if let Some(l) = &self.filter.min_level {
            l.parse::<Level>()
                .map_err(|e| anyhow::anyhow!("{at}.match.min_level: {e}"))?;
        }
        if self.queue == 0 {
            anyhow::bail!("{at}.queue must be positive");
        }
        Ok(())
    }
}

/// The sealer's side of one forwarding target.
#[derive(Debug, Clone)]
pub(crate) struct Forwarder {
    min_level: Option<Level>,
    sources: Vec<String>,
    metadata: BTreeMap<String, String>,
    tx: mpsc::Sender<Entry>,
    dropped: Counter,
}

impl Forwarder {
    /// Queues a copy of `e` when it matches (never waits).
    pub(crate) fn offer(&self, e: &Entry) {
        if self.min_level.is_some_and(|m| e.level > m)
            || (!self.sources.is_empty() && !self.sources.iter().any(|s| *s == e.source))
            || !self
                .metadata
                .iter()
                .all(|(k, v)| e.metadata.get(k).is_some_and(|x| x == v))
        {
            return;
        }
        if self.tx.try_send(e.clone()).is_err() {
            self.dropped.inc();
        }
    }
}

/// Characters RFC 5424 allows in header fields (printable US-ASCII), others replaced.
fn header_field(s: &str, max: usize) -> String {
    let t: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if t.is_empty() { "-".into() } else { t }
}

fn sd_name(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"' | ' '))
        .take(32)
        .collect();
    if t.is_empty() { "_".into() } else { t }
}

/// One entry as an RFC 5424 message (facility user).
pub fn format_5424(e: &Entry, default_host: &str) -> String {
    let pri = 8 + u32::from(e.level.number() - 1);
    let host = e.metadata.get("host").unwrap_or(default_host);
    let mut sd = String::new();
    if !e.metadata.is_empty() {
        sd.push_str("[logflux@32473");
        for (k, v) in &e.metadata {
            sd.push(' ');
            sd.push_str(&sd_name(k));
            sd.push_str("=\"");
            for c in v.chars() {
                if matches!(c, '"' | '\\' | ']') {
                    sd.push('\\');
                }
                sd.push(c);
            }
            sd.push('"');
        }
        sd.push(']');
    } else {
        sd.push('-');
    }
    format!(
        "<{pri}>1 {} {} {} - - {sd} {}",
        timefmt::format_rfc3339(e.timestamp_ns),
        header_field(host, 255),
        header_field(&e.source, 48),
        e.payload
    )
}

fn tls_config(cfg: &ForwardConfig) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if let Some(f) = &cfg.ca_file {
        use rustls::pki_types::pem::PemObject as _;
        for c in rustls::pki_types::CertificateDer::pem_file_iter(f)
            .with_context(|| format!("reading {}", f.display()))?
        {
            roots.add(c?)?;
        }
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    ))
}

/// Starts one forwarding target: the sealer's handle and the sending task.
pub(crate) fn start(
    cfg: ForwardConfig,
    host: String,
    sent: Counter,
    dropped: Counter,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<(Forwarder, tokio::task::JoinHandle<()>)> {
    let (tx, mut rx) = mpsc::channel::<Entry>(cfg.queue);
    let tls = if cfg.tls() {
        Some(tls_config(&cfg)?)
    } else {
        None
    };
    let fwd = Forwarder {
        min_level: cfg
            .filter
            .min_level
            .as_deref()
            .map(|l| l.parse().map_err(|e| anyhow::anyhow!("{e}")))
            .transpose()?,
        sources: cfg.filter.sources.clone(),
        metadata: cfg.filter.metadata.clone(),
        tx,
        dropped,
    };
    let task = tokio::spawn(async move {
        let mut backoff = Duration::from_millis(200);
        let mut pending: Vec<Entry> = Vec::new();
        loop {
            let conn = tokio::select! {
                c = connect(&cfg, tls.clone()) => c,
                _ = stop.changed() => return,
            };
            let mut w = match conn {
                Ok(w) => {
                    backoff = Duration::from_millis(200);
                    w
                }
                Err(e) => {
                    tracing::warn!(target = %cfg.address, error = format!("{e:#}"), "forwarding: cannot connect; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            loop {
                if pending.is_empty() {
                    tokio::select! {
                        n = rx.recv_many(&mut pending, 1000) => if n == 0 { return },
                        _ = stop.changed() => return,
                    }
                }
                let mut buf = Vec::new();
                for e in &pending {
                    let m = format_5424(e, &host);
                    buf.extend_from_slice(format!("{} {m}", m.len()).as_bytes());
                }
                // A target that stops reading holds this write; a stop ends it (as it ends the
                // waits above: what is pending is not forwarded), rather than holding the
                // agent's stop until `shutdown_timeout_s`.
                let written = tokio::select! {
                    r = async {
                        w.write_all(&buf).await?;
                        w.flush().await
                    } => r,
                    _ = stop.wait_for(|stop| *stop) => return,
                };
                match written {
                    Ok(()) => {
                        sent.inc_by(pending.len() as u64);
                        pending.clear();
                    }
                    Err(e) => {
                        // The batch is kept and sent again on the next connection.
                        tracing::warn!(target = %cfg.address, error = %e, "forwarding: connection lost; reconnecting");
                        break;
                    }
                }
            }
        }
    });
    Ok((fwd, task))
}

type Stream = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

async fn connect(
    cfg: &ForwardConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Stream> {
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect(&cfg.address),
    )
    .await
    .context("connect timed out")??;
    tcp.set_nodelay(true)?;
    let Some(tls) = tls else {
        return Ok(Box::new(tcp));
    };
    let name = cfg
        .server_name
        .clone()
        .unwrap_or_else(|| cfg.host().to_owned());
    let server_name = rustls::pki_types::ServerName::try_from(name)?;
    let s = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .context("TLS handshake")?;
    Ok(Box::new(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_rfc5424_with_metadata_as_structured_data() {
        let mut e = Entry::new(
            timefmt::parse_rfc3339("2026-11-21T10:00:00.5Z").unwrap(),
            Level::Error,
            "check out",
            "payment failed",
        );
        e.metadata.insert("host", "web-1");
        e.metadata.insert("q", r#"a"b]c\d"#);
        let m = format_5424(&e, "agent-host");
        assert_eq!(
            m,
            r#"<11>1 2026-11-21T10:00:00.500Z web-1 check_out - - [logflux@32473 host="web-1" q="a\"b\]c\\d"] payment failed"#
        );
        // It parses back with the syslog input's parser.
        let back = crate::syslog::parse(&m, 0);
        assert_eq!(back.level, Level::Error);
        assert_eq!(back.payload, "payment failed");
        assert_eq!(back.metadata["sd.logflux@32473.q"], r#"a"b]c\d"#);
        let bare = Entry::new(0, Level::Info, "", "x");
        assert_eq!(
            format_5424(&bare, "h"),
            "<14>1 1970-01-01T00:00:00Z h - - - - x"
        );
    }
}
