//! Syslog input: RFC 5424 and RFC 3164 messages over UDP, TCP (octet counting or newline
//! framing, detected per message) and a Unix datagram socket (like `/dev/log`).
//!
//! ```yaml
//! inputs:
//!   syslog:
//!     - listen: udp://127.0.0.1:5514
//!     - listen: tcp://127.0.0.1:5514
//!     - listen: unix:///run/logflux/dev-log      # mode 0666 by default, like /dev/log
//! ```
//!
//! Severity becomes `logLevel` (severity + 1); facility, hostname, app-name, procid, msgid and
//! structured data (`sd.<id>.<param>`) become metadata; the source is the app-name (or tag).
//! `payloadType: syslog`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use logflux_proto::{CompactString, Entry, EntryType, Level, format_compact, timefmt};
use serde::Deserialize;
use tokio::io::AsyncReadExt as _;
use tokio::sync::watch;

use crate::detect::{DetectConfig, Detector, LineFormat, TimestampConfig};
use crate::pipeline::{Intake, Shared};

/// One `inputs.syslog` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogInputConfig {
    /// `udp://HOST:PORT`, `tcp://HOST:PORT` or `unix:///path`.
    pub listen: String,
    /// Listen on a non-loopback address (syslog has no authentication).
    #[serde(default)]
    pub allow_non_loopback: bool,
    /// Longest message accepted, in bytes (longer ones are cut, and counted).
    #[serde(default = "default_max")]
    pub max_message_bytes: usize,
    /// Octal mode of a Unix socket.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Added to every entry's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// How the time of a message without a timestamp is found in its text (as for file
    /// inputs; default: detected, `{format: none}`: the arrival time).
    #[serde(default)]
    pub timestamp: Option<TimestampConfig>,
    /// The zone of detected times written without one (default: the host's). A BSD header's
    /// timestamp is read as before (UTC).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Built from the above when the input starts.
    #[serde(skip)]
    pub detector: Option<Arc<Detector>>,
}

fn default_max() -> usize {
    64 * 1024
}

fn default_mode() -> String {
    "0666".into()
}

/// Where a syslog input listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Udp(std::net::SocketAddr),
    Tcp(std::net::SocketAddr),
    Unix(std::path::PathBuf),
}

impl SyslogInputConfig {
    pub fn address(&self) -> anyhow::Result<Listen> {
        let l = &self.listen;
        if let Some(a) = l.strip_prefix("udp://") {
            return Ok(Listen::Udp(a.parse().with_context(|| format!("{l:?}"))?));
        }
        if let Some(a) = l.strip_prefix("tcp://") {
            return Ok(Listen::Tcp(a.parse().with_context(|| format!("{l:?}"))?));
        }
        if let Some(p) = l.strip_prefix("unix://") {
            return Ok(Listen::Unix(p.into()));
        }
        bail!("listen {l:?}: udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")
    }

    /// How the time of messages without a timestamp is found (the level is the PRI's).
    pub fn detector(&self) -> anyhow::Result<Detector> {
        Detector::new(&DetectConfig {
            format: LineFormat::Plain,
            timestamp: self.timestamp.clone(),
            time_zone: self.time_zone.clone(),
            level: None,
            default_level: None,
        })
        .map_err(anyhow::Error::msg)
    }

    pub fn validate(&self, at: &str) -> anyhow::Result<()> {
        let a = self.address().with_context(|| format!("{at}.listen"))?;
        if let Listen::Udp(s) | Listen::Tcp(s) = a
            && !s.ip().is_loopback()
            && !self.allow_non_loopback
        {
            bail!(
                "{at}.listen: {s} is not loopback; set allow_non_loopback to accept syslog from the network"
            );
        }
        u32::from_str_radix(self.mode.trim_start_matches("0o"), 8)
            .map_err(|_| anyhow::anyhow!("{at}.mode: an octal mode like \"0666\""))?;
        self.detector().map_err(|e| anyhow::anyhow!("{at}.{e:#}"))?;
        if self.max_message_bytes < 480 {
            bail!("{at}.max_message_bytes: at least 480 (RFC 5424's minimum)");
        }
        Ok(())
    }
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Parses one syslog message (either RFC). Never fails: text that is not syslog becomes an
/// entry with the whole text as payload and `parse_error` in its metadata.
pub fn parse(raw: &str, now_ns: i64) -> Entry {
    parse_with(raw, now_ns, None).0
}

/// [`parse`], and for a message without a timestamp the time `detector` finds in its text
/// (the second value says whether one did).
pub fn parse_with(raw: &str, now_ns: i64, detector: Option<&Detector>) -> (Entry, bool) {
    let e = parse_inner(raw, now_ns);
    match detector {
        Some(d) if e.timestamp_ns == now_ns && !e.payload.is_empty() => {
            let text = e.payload.clone();
            let (e, out) = d.fill(e, &text, now_ns, true, false);
            (e, out.time)
        }
        _ => (e, false),
    }
}

fn parse_inner(raw: &str, now_ns: i64) -> Entry {
    let raw = raw.trim_end_matches(['\n', '\r', '\0']);
    let mut e = Entry::new(now_ns, Level::Notice, "syslog", "");
    e.entry_type = EntryType::Log;
    e.payload_type = "syslog".into();
    let Some((pri, rest)) = parse_pri(raw) else {
        e.payload = raw.to_owned();
        e.metadata.insert("parse_error", "no <PRI>");
        return e;
    };
    let severity = pri % 8;
    let facility = (pri / 8) as usize;
    e.level = Level::from_number(i64::from(severity) + 1).unwrap_or(Level::Notice);
    e.metadata.insert(
        "facility",
        FACILITIES.get(facility).copied().unwrap_or("unknown"),
    );
    if let Some(rest) = rest.strip_prefix("1 ") {
        rfc5424(rest, &mut e, now_ns);
    } else {
        rfc3164(rest, &mut e, now_ns);
    }
    e
}

fn parse_pri(s: &str) -> Option<(u8, &str)> {
    let rest = s.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 {
        return None;
    }
    let pri: u8 = rest[..end].parse().ok()?;
    (pri <= 191).then_some((pri, &rest[end + 1..]))
}

/// The next space-separated field and the rest.
fn field(s: &str) -> (&str, &str) {
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn rfc5424(s: &str, e: &mut Entry, now_ns: i64) {
    let (ts, s) = field(s);
    let (host, s) = field(s);
    let (app, s) = field(s);
    let (procid, s) = field(s);
    let (msgid, s) = field(s);
    e.timestamp_ns = if ts == "-" {
        now_ns
    } else {
        timefmt::parse_rfc3339(ts).unwrap_or(now_ns)
    };
    for (k, v) in [
        ("hostname", host),
        ("appname", app),
        ("procid", procid),
        ("msgid", msgid),
    ] {
        if v != "-" && !v.is_empty() {
            e.metadata.insert(k, v);
        }
    }
    if app != "-" && !app.is_empty() {
        e.source = app.into();
    }
    // Structured data: `-` or one or more `[id k="v" …]`.
    let mut rest = s;
    if let Some(r) = rest.strip_prefix("- ") {
        rest = r;
    } else if rest == "-" {
        rest = "";
    } else {
        // Gathered, then added at once: a message may carry thousands of parameters, in any
        // order (`Metadata::extend` sorts once).
        let mut params = Vec::new();
        while rest.starts_with('[') {
            match structured_element(rest, &mut params) {
                Some(r) => rest = r,
                None => break,
            }
        }
        e.metadata.extend(params);
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    }
    e.payload = rest.strip_prefix('\u{feff}').unwrap_or(rest).to_owned();
}

/// One `[id k="v" …]`; the text after it.
fn structured_element<'a>(
    s: &'a str,
    params: &mut Vec<(CompactString, CompactString)>,
) -> Option<&'a str> {
    let mut chars = s.char_indices().skip(1).peekable();
    let mut id = String::new();
    while let Some(&(_, c)) = chars.peek() {
        if c == ' ' || c == ']' {
            break;
        }
        id.push(c);
        chars.next();
    }
    loop {
        match chars.next()? {
            (i, ']') => return Some(&s[i + 1..]),
            (_, ' ') => {
                let mut key = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                if chars.next()?.1 != '"' {
                    return None;
                }
                let mut val = CompactString::const_new("");
                let mut escaped = false;
                for (_, c) in chars.by_ref() {
                    if escaped {
                        val.push(c);
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    } else {
                        val.push(c);
                    }
                }
                params.push((format_compact!("sd.{id}.{key}"), val));
            }
            _ => return None,
        }
    }
}

fn rfc3164(s: &str, e: &mut Entry, now_ns: i64) {
    // "Nov 21 01:08:22 host tag[pid]: message" (the host is absent on local sockets).
    let mut rest = s;
    if s.len() >= 16 && s.as_bytes()[15] == b' ' {
        if let Some(t) = bsd_time(&s[..15], now_ns) {
            e.timestamp_ns = t;
            rest = &s[16..];
        }
    } else if let Some((ts, r)) = s.split_once(' ')
        && let Ok(t) = timefmt::parse_rfc3339(ts)
    {
        // Some senders put an RFC 3339 time in a BSD message.
        e.timestamp_ns = t;
        rest = r;
    }
    // The first word is the host unless it is the tag (ends in ':' or has '[').
    let (first, after) = field(rest);
    let (host, tagged) = if first.ends_with(':') || first.contains('[') || after.is_empty() {
        (None, rest)
    } else {
        (Some(first), after)
    };
    if let Some(h) = host {
        e.metadata.insert("hostname", h);
    }
    // The tag is the first word when it ends in ':' (`su[123]: …`).
    let (tag, msg) = match tagged.find(": ") {
        Some(i) if i > 0 && !tagged[..i].contains(' ') => (&tagged[..i], &tagged[i + 2..]),
        _ => ("", tagged),
    };
    if !tag.is_empty() {
        let (name, pid) = match tag.split_once('[') {
            Some((n, p)) => (n, Some(p.trim_end_matches(']'))),
            None => (tag, None),
        };
        e.source = name.into();
        e.metadata.insert("appname", name);
        if let Some(p) = pid {
            e.metadata.insert("procid", p);
        }
    }
    e.payload = msg.to_owned();
}

/// `Nov 21 01:08:22` in the current year (UTC), or the previous one if that is in the future.
fn bsd_time(s: &str, now_ns: i64) -> Option<i64> {
    let now = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ns)).ok()?;
    let fmt = time::macros::format_description!(
        "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
    );
    let parse = |y: i32| {
        time::PrimitiveDateTime::parse(&format!("{s} {y}"), &fmt)
            .ok()
            .map(|t| t.assume_utc())
    };
    let mut t = parse(now.year())?;
    if t > now + time::Duration::days(1) {
        t = parse(now.year() - 1)?;
    }
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

/// Runs one syslog input until `stop`.
pub(crate) async fn run(
    cfg: SyslogInputConfig,
    shared: Arc<Shared>,
    intake: Intake,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut cfg = cfg;
    let mut detector = cfg.detector()?;
    detector.implausible = shared
        .metrics
        .timestamps_implausible
        .get_or_create(&crate::metrics::InputLabel { input: "syslog" })
        .clone();
    cfg.detector = Some(Arc::new(detector));
    let cfg = Arc::new(cfg);
    Ok(match cfg.address()? {
        Listen::Udp(a) => {
            let sock = tokio::net::UdpSocket::bind(a)
                .await
                .with_context(|| format!("binding syslog on udp://{a}"))?;
            tokio::spawn(udp(sock, cfg, shared, intake, stop))
        }
        Listen::Tcp(a) => {
            let l = tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding syslog on tcp://{a}"))?;
            tokio::spawn(tcp(l, cfg, shared, intake, stop))
        }
        Listen::Unix(p) => {
            let _ = std::fs::remove_file(&p);
            let sock = tokio::net::UnixDatagram::bind(&p)
                .with_context(|| format!("binding syslog on {}", p.display()))?;
            let mode = u32::from_str_radix(cfg.mode.trim_start_matches("0o"), 8)?;
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
            }
            tokio::spawn(unix(sock, p, cfg, shared, intake, stop))
        }
    })
}

/// Hands one message to the pipeline (UDP and datagrams cannot push back: dropped and
/// counted when the pipeline stays full).
async fn deliver(
    cfg: &SyslogInputConfig,
    shared: &Shared,
    intake: &Intake,
    raw: &[u8],
    transport: &'static str,
) {
    let cut = raw.len() > cfg.max_message_bytes;
    if cut {
        shared
            .metrics
            .entries_rejected
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: "syslog_too_long_cut",
            })
            .inc();
    }
    let text = String::from_utf8_lossy(&raw[..raw.len().min(cfg.max_message_bytes)]);
    let mut e = parse_with(&text, timefmt::now_ns(), cfg.detector.as_deref()).0;
    for (k, v) in &cfg.metadata {
        e.metadata.insert_if_absent(k, || v.into());
    }
    if intake.send(vec![e], Duration::from_secs(2)).await.is_err() {
        shared
            .metrics
            .entries_rejected
            .get_or_create(&crate::metrics::ReasonLabel {
                reason: "queue_full",
            })
            .inc();
        return;
    }
    shared.metrics.received(transport, 1);
}

async fn udp(
    sock: tokio::net::UdpSocket,
    cfg: Arc<SyslogInputConfig>,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => match r {
                Ok((n, _)) => deliver(&cfg, &shared, &intake, &buf[..n], "syslog_udp").await,
                Err(e) => tracing::warn!(error = %e, "syslog udp receive failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

async fn unix(
    sock: tokio::net::UnixDatagram,
    path: std::path::PathBuf,
    cfg: Arc<SyslogInputConfig>,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            r = sock.recv(&mut buf) => match r {
                Ok(n) => deliver(&cfg, &shared, &intake, &buf[..n], "syslog_unix").await,
                Err(e) => tracing::warn!(error = %e, "syslog socket receive failed"),
            },
            _ = stop.changed() => break,
        }
    }
    let _ = std::fs::remove_file(path);
}

async fn tcp(
    l: tokio::net::TcpListener,
    cfg: Arc<SyslogInputConfig>,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((s, _)) => {
                    let (cfg, shared, intake, stop) = (cfg.clone(), shared.clone(), intake.clone(), stop.clone());
                    tokio::spawn(async move { tcp_conn(s, cfg, shared, intake, stop).await });
                }
                Err(e) => tracing::warn!(error = %e, "syslog tcp accept failed"),
            },
            _ = stop.changed() => return,
        }
    }
}

/// One TCP connection: each message is octet-counted (`LEN SP MSG`) when it starts with a
/// digit, else ends at a newline (RFC 6587).
async fn tcp_conn(
    mut s: tokio::net::TcpStream,
    cfg: Arc<SyslogInputConfig>,
    shared: Arc<Shared>,
    intake: Intake,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut eof = false;
    loop {
        // Every complete message in the buffer.
        while let Some(&first) = buf.first() {
            if first.is_ascii_digit() {
                let Some(sp) = buf.iter().take(8).position(|&b| b == b' ') else {
                    if buf.len() >= 8 || eof {
                        // Not a length after all: newline framing.
                        if !newline_message(&mut buf, &cfg, &shared, &intake, eof).await {
                            break;
                        }
                        continue;
                    }
                    break;
                };
                let len: usize = match std::str::from_utf8(&buf[..sp])
                    .ok()
                    .and_then(|t| t.parse().ok())
                {
                    Some(n) => n,
                    None => {
                        if !newline_message(&mut buf, &cfg, &shared, &intake, eof).await {
                            break;
                        }
                        continue;
                    }
                };
                if len > cfg.max_message_bytes.max(1) * 4 {
                    tracing::warn!(len, "syslog tcp: message length out of bounds; closing");
                    return;
                }
                if buf.len() < sp + 1 + len {
                    break;
                }
                let msg: Vec<u8> = buf.drain(..sp + 1 + len).skip(sp + 1).collect();
                deliver(&cfg, &shared, &intake, &msg, "syslog_tcp").await;
            } else if !newline_message(&mut buf, &cfg, &shared, &intake, eof).await {
                break;
            }
        }
        if eof {
            return;
        }
        if buf.len() > cfg.max_message_bytes * 4 {
            // A newline-framed message far too long: cut it.
            let msg = std::mem::take(&mut buf);
            deliver(&cfg, &shared, &intake, &msg, "syslog_tcp").await;
        }
        tokio::select! {
            r = s.read(&mut chunk) => match r {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
            _ = stop.changed() => return,
        }
    }
}

/// Delivers the newline-ended message at the start of `buf` (or all of it at EOF); whether
/// there was one.
async fn newline_message(
    buf: &mut Vec<u8>,
    cfg: &SyslogInputConfig,
    shared: &Shared,
    intake: &Intake,
    eof: bool,
) -> bool {
    let end = match memchr::memchr(b'\n', buf) {
        Some(i) => i + 1,
        None if eof && !buf.is_empty() => buf.len(),
        None => return false,
    };
    let msg: Vec<u8> = buf.drain(..end).collect();
    let trimmed = msg.trim_ascii_end();
    if !trimmed.is_empty() {
        deliver(cfg, shared, intake, trimmed, "syslog_tcp").await;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000_000_000;

    #[test]
    fn rfc5424_with_structured_data() {
        let e = parse(
            r#"<165>1 2026-11-21T10:00:00.123Z web-1 checkout 4242 ORD [exampleSDID@32473 iut="3" eventSource="Application \"x\""][meta seq="7"] order placed"#,
            NOW,
        );
        assert_eq!(e.level, Level::Notice); // 165 = local4 (20) * 8 + 5 → severity 5 → 6
        assert_eq!(e.metadata["facility"], "local4");
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-21T10:00:00.123Z").unwrap()
        );
        assert_eq!(e.source, "checkout");
        assert_eq!(e.metadata["hostname"], "web-1");
        assert_eq!(e.metadata["procid"], "4242");
        assert_eq!(e.metadata["msgid"], "ORD");
        assert_eq!(e.metadata["sd.exampleSDID@32473.iut"], "3");
        assert_eq!(
            e.metadata["sd.exampleSDID@32473.eventSource"],
            r#"Application "x""#
        );
        assert_eq!(e.metadata["sd.meta.seq"], "7");
        assert_eq!(e.payload, "order placed");
        assert_eq!(e.payload_type, "syslog");
        let nil = parse("<11>1 - - - - - -", NOW);
        assert_eq!(nil.level, Level::Error);
        assert_eq!(nil.timestamp_ns, NOW);
        assert_eq!(nil.payload, "");
        assert_eq!(nil.metadata["facility"], "user");
    }

    #[test]
    fn a_message_without_a_timestamp_gets_the_time_in_its_text() {
        let d = Detector::new(&DetectConfig {
            time_zone: Some("+01:00".into()),
            ..Default::default()
        })
        .unwrap();
        let now = timefmt::parse_rfc3339("2026-11-30T12:00:00Z").unwrap();
        // 3164 without a header time (a local socket), the app's own time in the message.
        let (e, found) = parse_with(
            "<11>app[7]: 2026-11-30 10:15:00,250 ERROR disk full",
            now,
            Some(&d),
        );
        assert!(found);
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-30T09:15:00.25Z").unwrap()
        );
        assert_eq!(e.level, Level::Error, "the PRI's severity stays");
        // A header time wins; no time anywhere: the arrival time.
        let (e, found) = parse_with(
            "<13>Nov 30 11:00:00 h app: at 2026-11-30 10:15:00",
            now,
            Some(&d),
        );
        assert!(!found);
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-30T11:00:00Z").unwrap()
        );
        let (e, found) = parse_with("<13>app: no time", now, Some(&d));
        assert!(!found);
        assert_eq!(e.timestamp_ns, now);
    }

    #[test]
    fn rfc3164_with_and_without_a_host() {
        let e = parse(
            "<34>Oct 11 22:14:15 mymachine su[123]: 'su root' failed for lonvick",
            NOW,
        );
        assert_eq!(e.level, Level::Critical);
        assert_eq!(e.metadata["facility"], "auth");
        assert_eq!(e.metadata["hostname"], "mymachine");
        assert_eq!(e.source, "su");
        assert_eq!(e.metadata["procid"], "123");
        assert_eq!(e.payload, "'su root' failed for lonvick");
        // logger on a local socket: no host.
        let l = parse("<13>Nov  1 01:08:22 root: hello world", NOW);
        assert_eq!(l.level, Level::Notice);
        assert_eq!(l.source, "root");
        assert!(!l.metadata.contains_key("hostname"));
        assert_eq!(l.payload, "hello world");
        let junk = parse("not syslog at all", NOW);
        assert_eq!(junk.payload, "not syslog at all");
        assert!(junk.metadata.contains_key("parse_error"));
        for bad in ["<>x", "<999>x", "<12", ""] {
            let e = parse(bad, NOW);
            assert!(e.metadata.contains_key("parse_error"), "{bad}");
        }
    }
}
