//! Line formats of file inputs: what a line (or a joined multi-line event) becomes.
//!
//! | format | what it reads | payloadType |
//! |---|---|---|
//! | `auto` (default) | JSON objects and logfmt lines structured, other lines text; time and level detected ([`crate::detect`]) | `generic_json` (JSON), `generic` |
//! | `plain` | any text; time and level detected in it | `generic` |
//! | `json` | one JSON object per line (`message`/`msg`/`log`, `level`/`severity`, `time`/`timestamp`/`ts`; other fields → metadata, nested objects flattened with dots) | `generic_json` |
//! | `logfmt` | `key=value` lines, read as `json` reads objects | `generic` |
//! | `docker` | Docker's json-file driver (`{"log","stream","time"}`; partial lines joined; the inner line read as `auto`) | `container` |
//! | `cri` | Kubernetes CRI (`TIME STREAM F|P MESSAGE`; `P` parts joined; the inner line read as `auto`) | `container` |
//! | `nginx_access` | nginx `combined`, or the input's `nginx_log_format` | `nginx` |
//! | `nginx_error` | nginx's error log | `nginx` |

use std::sync::Arc;

use logflux_proto::{Entry, Level, Metadata, timefmt};
use regex::Regex;
use serde::Deserialize;

/// Formats of file inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Auto,
    Plain,
    Json,
    Logfmt,
    Docker,
    Cri,
    NginxAccess,
    NginxError,
}

/// nginx's `combined` log format.
pub const NGINX_COMBINED: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent""#;

/// A compiled nginx `log_format`.
#[derive(Debug, Clone)]
pub struct NginxFormat {
    re: Regex,
    vars: Vec<String>,
}

impl NginxFormat {
    /// Compiles a `log_format` string: each `$variable` becomes a field; text between them
    /// must match exactly.
    pub fn new(format: &str) -> anyhow::Result<NginxFormat> {
        let mut re = String::from("^");
        let mut vars = Vec::new();
        let mut rest = format;
        let mut prev: Option<char> = None;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('$') {
                let n = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                if n == 0 {
                    anyhow::bail!("nginx_log_format: `$` without a variable name in {format:?}");
                }
                let name = &after[..n];
                let class = match prev {
                    Some('"') => r#"[^"]*"#,
                    Some('[') => r"[^\]]*",
                    _ => r"\S*",
                };
                re.push_str(&format!("(?P<v{}>{class})", vars.len()));
                vars.push(name.to_owned());
                rest = &after[n..];
                prev = None;
            } else {
                let c = rest.chars().next().expect("not empty");
                re.push_str(&regex::escape(&c.to_string()));
                prev = Some(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        re.push('$');
        Ok(NginxFormat {
            re: Regex::new(&re)?,
            vars,
        })
    }

    /// The fields of a line, or `None` when it does not have this format.
    pub fn fields(&self, line: &str) -> Option<Vec<(&str, String)>> {
        let c = self.re.captures(line)?;
        Some(
            self.vars
                .iter()
                .enumerate()
                .map(|(i, v)| (v.as_str(), c[&*format!("v{i}")].to_owned()))
                .collect(),
        )
    }
}

/// Time in nginx's `$time_local` form (`21/Nov/2026:10:00:00 +0000`).
fn nginx_local_time(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let t = time::OffsetDateTime::parse(s, &fmt).ok()?;
    i64::try_from(t.unix_timestamp_nanos()).ok()
}

impl Format {
    /// How the detector reads lines of this format (container lines' inner text: `auto`).
    pub fn line_format(self) -> LineFormat {
        match self {
            Format::Plain => LineFormat::Plain,
            Format::Json => LineFormat::Json,
            Format::Logfmt => LineFormat::Logfmt,
            _ => LineFormat::Auto,
        }
    }
}

/// Builds entries from lines; one per file of an input (the detector is the input's).
#[derive(Debug, Clone)]
pub struct Parser {
    pub format: Format,
    pub nginx: Option<NginxFormat>,
    /// The input's line understanding (time, level, structure; its level of lines that carry
    /// none).
    pub detector: Arc<Detector>,
    pub source: String,
    pub metadata: Metadata,
}

use crate::detect::{Detector, LineFormat, Outcome, new_entry};

fn level_from_text(s: &str) -> Option<Level> {
    match s.trim().to_ascii_lowercase().as_str() {
        "trace" | "debug" | "dbg" => Some(Level::Debug),
        "info" | "information" | "informational" => Some(Level::Info),
        "notice" => Some(Level::Notice),
        "warn" | "warning" => Some(Level::Warning),
        "error" | "err" => Some(Level::Error),
        "crit" | "critical" | "fatal" => Some(Level::Critical),
        "alert" => Some(Level::Alert),
        "emerg" | "emergency" | "panic" => Some(Level::Emergency),
        other => other.parse().ok(),
    }
}

/// What a line gave: an entry, nothing yet (a partial container line), or nothing at all.
#[derive(Debug)]
pub enum Parsed {
    Entry(Entry),
    Partial,
}

impl Parser {
    /// A parser of `format` lines with the given detector, source and metadata.
    pub fn new(
        format: Format,
        nginx: Option<NginxFormat>,
        detector: Arc<Detector>,
        source: String,
        metadata: Metadata,
    ) -> Parser {
        Parser {
            format,
            nginx,
            detector,
            source,
            metadata,
        }
    }

    /// Turns one line (or joined event) of `path` into an entry. `partial` holds a container
    /// line's earlier parts.
    pub fn parse(&self, line: String, path: &str, partial: &mut String) -> Parsed {
        self.parse_at(line, path, partial, timefmt::now_ns()).0
    }

    /// [`Parser::parse`] with the read time given, and what detection found.
    pub fn parse_at(
        &self,
        line: String,
        path: &str,
        partial: &mut String,
        now: i64,
    ) -> (Parsed, Outcome) {
        let (mut e, out) = match self.format {
            Format::Auto | Format::Plain | Format::Json | Format::Logfmt => {
                self.detector.entry(line, now, &self.source)
            }
            Format::Docker => match self.docker(&line, partial, now) {
                Some(e) => e,
                None => return (Parsed::Partial, Outcome::default()),
            },
            Format::Cri => match self.cri(&line, partial, now) {
                Some(e) => e,
                None => return (Parsed::Partial, Outcome::default()),
            },
            Format::NginxAccess => (self.nginx_access(line, now), Outcome::default()),
            Format::NginxError => (self.nginx_error(line, now), Outcome::default()),
        };
        // Borrowed: a path of up to 24 bytes is stored inline, a longer one copied once.
        e.metadata.reserve_exact(1 + self.metadata.len());
        e.metadata.insert("file", path);
        for (k, v) in &self.metadata {
            e.metadata.insert_if_absent(k, || v.into());
        }
        (Parsed::Entry(e), out)
    }

    /// A container's inner line read as `auto`, with the runtime's time when it gave one.
    fn container(&self, text: String, own: Option<i64>, now: i64) -> (Entry, Outcome) {
        let (mut e, out) = self.detector.entry_with(text, now, &self.source, own);
        e.payload_type = "container".into();
        (e, out)
    }

    fn docker(&self, line: &str, partial: &mut String, now: i64) -> Option<(Entry, Outcome)> {
        #[derive(Deserialize)]
        struct D {
            log: String,
            #[serde(default)]
            stream: String,
            #[serde(default)]
            time: String,
        }
        let Ok(d) = serde_json::from_str::<D>(line) else {
            return Some(self.container(line.to_owned(), None, now));
        };
        // The json-file driver splits lines over 16 KiB: parts without the final newline.
        partial.push_str(&d.log);
        if !partial.ends_with('\n') {
            return None;
        }
        let mut text = std::mem::take(partial);
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
        let own = timefmt::parse_rfc3339(&d.time).ok();
        let (mut e, out) = self.container(text, own, now);
        if !d.stream.is_empty() {
            e.metadata.insert("stream", d.stream);
        }
        Some((e, out))
    }

    fn cri(&self, line: &str, partial: &mut String, now: i64) -> Option<(Entry, Outcome)> {
        let mut it = line.splitn(4, ' ');
        let (Some(time), Some(stream), Some(tag), msg) =
            (it.next(), it.next(), it.next(), it.next())
        else {
            return Some(self.container(line.to_owned(), None, now));
        };
        partial.push_str(msg.unwrap_or(""));
        if tag == "P" {
            return None;
        }
        let own = timefmt::parse_rfc3339(time).ok();
        let (mut e, out) = self.container(std::mem::take(partial), own, now);
        e.metadata.insert("stream", stream.to_owned());
        Some((e, out))
    }

    fn nginx_access(&self, line: String, now: i64) -> Entry {
        let fmt = self.nginx.as_ref();
        let Some(fields) = fmt.and_then(|f| f.fields(&line)) else {
            let mut e = new_entry(
                now,
                self.detector.default_level(),
                &self.source,
                line,
                "nginx",
            );
            e.metadata
                .insert("parse_error", "not in the access log format");
            return e;
        };
        let mut ts = now;
        let mut level = Level::Info;
        let mut meta = Metadata::new();
        for (k, v) in fields {
            if v == "-" || v.is_empty() {
                continue;
            }
            match k {
                "time_local" => ts = nginx_local_time(&v).unwrap_or(now),
                "time_iso8601" => ts = timefmt::parse_rfc3339(&v).unwrap_or(now),
                "request" => {
                    let mut parts = v.splitn(3, ' ');
                    if let (Some(m), Some(p)) = (parts.next(), parts.next()) {
                        meta.insert("method", m);
                        meta.insert("path", p);
                        if let Some(proto) = parts.next() {
                            meta.insert("protocol", proto);
                        }
                    }
                }
                "status" => {
                    level = match v.as_bytes().first() {
                        Some(b'5') => Level::Error,
                        Some(b'4') => Level::Warning,
                        _ => Level::Info,
                    };
                    meta.insert("status", v);
                }
                "body_bytes_sent" | "bytes_sent" => {
                    meta.insert("bytes", v);
                }
                "http_referer" => {
                    meta.insert("referrer", v);
                }
                "http_user_agent" => {
                    meta.insert("user_agent", v);
                }
                "remote_addr" => {
                    meta.insert("remote_addr", v);
                }
                other => {
                    meta.insert(other, v);
                }
            }
        }
        let mut e = new_entry(ts, level, &self.source, line, "nginx");
        e.metadata = meta;
        e
    }

    fn nginx_error(&self, line: String, now: i64) -> Entry {
        // 2026/11/21 10:00:00 [error] 1234#5678: *9 message, client: 1.2.3.4, server: x, …
        static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
        let re = RE.get_or_init(|| {
            Regex::new(
                r"^(?P<t>\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(?P<l>\w+)\] (?P<pid>\d+)#(?P<tid>\d+): (?:\*(?P<cid>\d+) )?(?P<msg>.*)$",
            )
            .expect("static pattern")
        });
        let Some(c) = re.captures(&line) else {
            return new_entry(
                now,
                self.detector.default_level(),
                &self.source,
                line,
                "nginx",
            );
        };
        let fmt =
            time::macros::format_description!("[year]/[month]/[day] [hour]:[minute]:[second]");
        let ts = time::PrimitiveDateTime::parse(&c["t"], &fmt)
            .ok()
            .and_then(|t| i64::try_from(t.assume_utc().unix_timestamp_nanos()).ok())
            .unwrap_or(now);
        let level = level_from_text(&c["l"]).unwrap_or(self.detector.default_level());
        let msg = c["msg"].to_owned();
        let mut meta = Metadata::new();
        meta.insert("pid", &c["pid"]);
        if let Some(cid) = c.name("cid") {
            meta.insert("connection", cid.as_str());
        }
        // Trailing `, key: value` pairs (client, server, request, upstream, host, referrer).
        let mut message = msg.as_str();
        for key in [
            "referrer", "host", "upstream", "request", "server", "client",
        ] {
            let pat = format!(", {key}: ");
            if let Some(i) = message.rfind(&pat) {
                let v = message[i + pat.len()..].trim_matches('"');
                meta.insert(key, v);
                message = &message[..i];
            }
        }
        let mut e = new_entry(ts, level, &self.source, message.to_owned(), "nginx");
        e.metadata = meta;
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(format: Format) -> Parser {
        Parser {
            format,
            nginx: Some(NginxFormat::new(NGINX_COMBINED).unwrap()),
            detector: Arc::new(
                Detector::new(&crate::detect::DetectConfig {
                    format: format.line_format(),
                    time_zone: Some("UTC".into()),
                    ..Default::default()
                })
                .unwrap(),
            ),
            source: "web".into(),
            metadata: Metadata::new(),
        }
    }

    fn one(p: &Parser, line: &str) -> Entry {
        match p.parse(line.to_owned(), "/var/log/x.log", &mut String::new()) {
            Parsed::Entry(e) => e,
            Parsed::Partial => panic!("partial"),
        }
    }

    #[test]
    fn nginx_access_combined_and_custom_formats() {
        let p = parser(Format::NginxAccess);
        let e = one(
            &p,
            r#"203.0.113.9 - alice [21/Nov/2026:10:00:00 +0100] "GET /api/orders?id=7 HTTP/1.1" 502 157 "https://shop.example/" "Mozilla/5.0 (X11; Linux)""#,
        );
        assert_eq!(e.level, Level::Error);
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-21T09:00:00Z").unwrap()
        );
        assert_eq!(e.metadata["method"], "GET");
        assert_eq!(e.metadata["path"], "/api/orders?id=7");
        assert_eq!(e.metadata["status"], "502");
        assert_eq!(e.metadata["bytes"], "157");
        assert_eq!(e.metadata["referrer"], "https://shop.example/");
        assert_eq!(e.metadata["user_agent"], "Mozilla/5.0 (X11; Linux)");
        assert_eq!(e.metadata["remote_addr"], "203.0.113.9");
        assert_eq!(e.metadata["remote_user"], "alice");
        assert_eq!(e.payload_type, "nginx");
        let e = one(
            &p,
            r#"::1 - - [21/Nov/2026:10:00:00 +0000] "POST /x HTTP/2.0" 404 0 "-" "curl/8""#,
        );
        assert_eq!(e.level, Level::Warning);
        assert!(!e.metadata.contains_key("referrer"));

        let custom = Parser {
            nginx: Some(
                NginxFormat::new(r#"$remote_addr [$time_local] "$request" $status $request_time"#)
                    .unwrap(),
            ),
            ..parser(Format::NginxAccess)
        };
        let e = one(
            &custom,
            r#"10.0.0.1 [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 0.012"#,
        );
        assert_eq!(e.level, Level::Info);
        assert_eq!(e.metadata["request_time"], "0.012");
        let bad = one(&p, "garbage");
        assert_eq!(bad.payload, "garbage");
        assert!(bad.metadata.contains_key("parse_error"));
    }

    #[test]
    fn nginx_error_log_levels_and_fields() {
        let p = parser(Format::NginxError);
        let e = one(
            &p,
            r#"2026/11/21 10:00:00 [error] 4242#4242: *17 open() "/srv/x" failed (2: No such file or directory), client: 127.0.0.1, server: localhost, request: "GET /x HTTP/1.1", host: "localhost:8080""#,
        );
        assert_eq!(e.level, Level::Error);
        assert_eq!(
            e.payload,
            r#"open() "/srv/x" failed (2: No such file or directory)"#
        );
        assert_eq!(e.metadata["client"], "127.0.0.1");
        assert_eq!(e.metadata["request"], "GET /x HTTP/1.1");
        assert_eq!(e.metadata["host"], "localhost:8080");
        assert_eq!(e.metadata["connection"], "17");
        let w = one(
            &p,
            "2026/11/21 10:00:00 [warn] 1#1: conflicting server name",
        );
        assert_eq!(w.level, Level::Warning);
        let n = one(
            &p,
            "2026/11/21 10:00:00 [notice] 1#1: signal process started",
        );
        assert_eq!(n.level, Level::Notice);
    }

    #[test]
    fn container_formats_join_partial_lines() {
        let p = parser(Format::Docker);
        let mut partial = String::new();
        let r = p.parse(
            r#"{"log":"part one ","stream":"stderr","time":"2026-11-21T10:00:00.5Z"}"#.into(),
            "f",
            &mut partial,
        );
        assert!(matches!(r, Parsed::Partial));
        let Parsed::Entry(e) = p.parse(
            r#"{"log":"part two\n","stream":"stderr","time":"2026-11-21T10:00:00.6Z"}"#.into(),
            "f",
            &mut partial,
        ) else {
            panic!()
        };
        assert_eq!(e.payload, "part one part two");
        assert_eq!(e.metadata["stream"], "stderr");
        assert_eq!(e.payload_type, "container");

        let p = parser(Format::Cri);
        let mut partial = String::new();
        assert!(matches!(
            p.parse(
                "2026-11-21T10:00:00.1Z stdout P hello ".into(),
                "f",
                &mut partial
            ),
            Parsed::Partial
        ));
        let Parsed::Entry(e) = p.parse(
            "2026-11-21T10:00:00.2Z stdout F world".into(),
            "f",
            &mut partial,
        ) else {
            panic!()
        };
        assert_eq!(e.payload, "hello world");
        assert_eq!(
            e.timestamp_ns,
            timefmt::parse_rfc3339("2026-11-21T10:00:00.2Z").unwrap()
        );
    }

    #[test]
    fn json_lines_take_message_level_time_and_keep_the_rest() {
        let p = parser(Format::Json);
        let e = one(
            &p,
            r#"{"time":"2026-11-21T10:00:00Z","level":"warn","msg":"slow","took_ms":812,"user":"u1"}"#,
        );
        assert_eq!(e.payload, "slow");
        assert_eq!(e.level, Level::Warning);
        assert_eq!(e.metadata["took_ms"], "812");
        assert_eq!(e.metadata["user"], "u1");
        assert_eq!(e.payload_type, "generic_json");
        let t = one(&p, "not json");
        assert_eq!(t.payload, "not json");
    }
}
