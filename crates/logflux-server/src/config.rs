//! The server's configuration file (YAML). Every field is optional; flags override the file;
//! `${VAR}` references are resolved from the environment; unknown fields are refused with
//! their path.
//!
//! ```yaml
//! listen: 0.0.0.0:8443
//! data_dir: /var/lib/logflux
//! catalog: postgres://logflux@db/logflux          # default: sqlite in data_dir
//! store:
//!   url: s3://logs/prod                           # default: data_dir/objects
//!   endpoint: https://s3.eu-west-1.amazonaws.com
//!   region: eu-west-1
//!   access_key_id: ${AWS_ACCESS_KEY_ID}
//!   secret_access_key: ${AWS_SECRET_ACCESS_KEY}
//! tls:
//!   cert_file: /etc/logflux/tls/cert.pem
//!   key_file: /etc/logflux/tls/key.pem
//! region: eu
//! limits: {max_request_bytes: 67108864, max_part_bytes: 8388608, max_parts: 1000}
//! rate_limit: {requests_per_second: 1000, burst: 2000}
//! commit: {linger_ms: 2}
//! housekeeping_interval_s: 300
//! orphan_grace_days: 7           # segments no catalog names: quarantined once unknown this long
//! quarantine_days: 30            # … and deleted from _quarantine/ after this
//! token_expiry_days: 90
//! ingest: {max_backfill_days: 3650}                # default: records of any age
//! tail: {buffer_bytes: 262144, slow_consumer_timeout_s: 30, max_streams_per_token: 8, max_streams_per_tenant: 64, max_streams: 256, credential_check_s: 5}
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{ServerConfig, TlsFiles};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub catalog: Option<String>,
    pub store: Option<StoreSection>,
    pub tls: Option<TlsFiles>,
    pub allow_insecure_http: Option<bool>,
    pub region: Option<String>,
    pub limits: Option<LimitsSection>,
    pub rate_limit: Option<RateSection>,
    pub commit: Option<CommitSection>,
    pub housekeeping_interval_s: Option<u64>,
    pub orphan_grace_days: Option<u64>,
    pub quarantine_days: Option<u64>,
    pub token_expiry_days: Option<i64>,
    pub log_json: Option<bool>,
    pub ingest: Option<IngestSection>,
    pub tail: Option<TailSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSection {
    /// Refuse records whose first entry is older than this many days (default: any age).
    pub max_backfill_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub url: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub allow_http: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub max_request_bytes: Option<usize>,
    pub max_part_bytes: Option<usize>,
    pub max_parts: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSection {
    pub requests_per_second: Option<u32>,
    pub burst: Option<u32>,
}

/// Limits of live tails (docs/server.md, "Live tail").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailSection {
    pub buffer_bytes: Option<usize>,
    pub slow_consumer_timeout_s: Option<u64>,
    pub max_streams_per_token: Option<usize>,
    pub max_streams_per_tenant: Option<usize>,
    pub max_streams: Option<usize>,
    pub credential_check_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSection {
    pub linger_ms: Option<u64>,
}

impl FileConfig {
    /// The configuration this file describes, on top of the embedded defaults. Checks values
    /// and reports every problem at once.
    pub fn into_server_config(self) -> anyhow::Result<ServerConfig> {
        // Paths may start with `~/` (the home directory), as in the agent's configuration.
        let data_dir = self.data_dir.map_or_else(
            || PathBuf::from("./logflux-data"),
            |d| logflux_config::expand_home(&d),
        );
        let mut c = ServerConfig::embedded(data_dir);
        let mut problems = Vec::new();
        if let Some(l) = self.listen {
            c.listen = l;
        }
        if let Some(cat) = self.catalog {
            c.catalog_url = cat;
        }
        if let Some(st) = self.store {
            if let Some(u) = st.url {
                c.store_url = u;
            }
            for (k, v) in [
                ("endpoint", st.endpoint),
                ("region", st.region),
                ("access_key_id", st.access_key_id),
                ("secret_access_key", st.secret_access_key),
                ("allow_http", st.allow_http.map(|b| b.to_string())),
            ] {
                if let Some(v) = v {
                    c.store_options.push((k.to_owned(), v));
                }
            }
        }
        c.tls = self.tls.map(|t| TlsFiles {
            cert_file: logflux_config::expand_home(&t.cert_file),
            key_file: logflux_config::expand_home(&t.key_file),
        });
        if let Some(a) = self.allow_insecure_http {
            c.allow_insecure_http = a;
        }
        if let Some(r) = self.region {
            if !crate::auth::REGIONS.contains(&r.as_str()) {
                problems.push(format!(
                    "region: must be one of {}, got {r:?}",
                    crate::auth::REGIONS.join(", ")
                ));
            }
            c.http.region = r;
        }
        if let Some(l) = self.limits {
            if let Some(v) = l.max_request_bytes {
                c.http.max_request_bytes = v;
            }
            if let Some(v) = l.max_part_bytes {
                c.http.max_part_bytes = v;
            }
            if let Some(v) = l.max_parts {
                if v == 0 {
                    problems.push("limits.max_parts: must be at least 1".to_owned());
                }
                c.http.max_parts = v;
            }
            if c.http.max_part_bytes > c.http.max_request_bytes {
                problems.push(
                    "limits.max_part_bytes: must not exceed limits.max_request_bytes".to_owned(),
                );
            }
        }
        if let Some(r) = self.rate_limit {
            if let Some(v) = r.requests_per_second {
                c.http.rate_limit_per_second = v;
            }
            if let Some(v) = r.burst {
                c.http.rate_limit_burst = v;
            }
        }
        if let Some(linger) = self.commit.and_then(|s| s.linger_ms) {
            if linger > 10_000 {
                problems.push("commit.linger_ms: at most 10000".to_owned());
            }
            c.commit_linger = Duration::from_millis(linger);
        }
        if let Some(s) = self.housekeeping_interval_s {
            if s == 0 {
                problems.push("housekeeping_interval_s: must be at least 1".to_owned());
            }
            c.housekeeping_interval = Duration::from_secs(s.max(1));
        }
        for (name, value, target) in [
            (
                "orphan_grace_days",
                self.orphan_grace_days,
                &mut c.orphan_grace,
            ),
            (
                "quarantine_days",
                self.quarantine_days,
                &mut c.quarantine_period,
            ),
        ] {
            if let Some(d) = value {
                if !(1..=3650).contains(&d) {
                    problems.push(format!(
                        "{name}: must be 1..3650 days (segments the catalog does not know may \
                         be all that is left after a catalog loss), got {d}"
                    ));
                }
                *target = Duration::from_secs(d.clamp(1, 3650) * 86_400);
            }
        }
        if let Some(d) = self.token_expiry_days {
            if !(1..=3650).contains(&d) {
                problems.push("token_expiry_days: must be 1..3650".to_owned());
            }
            c.http.token_expiry_days = d;
        }
        if let Some(d) = self.ingest.and_then(|i| i.max_backfill_days) {
            if !(1..=36_500).contains(&d) {
                problems.push("ingest.max_backfill_days: must be 1..36500".to_owned());
            }
            c.http.max_backfill_days = Some(d);
        }
        if let Some(t) = self.tail {
            let limits = &mut c.http.tail;
            if let Some(v) = t.buffer_bytes {
                if !(4096..=1 << 30).contains(&v) {
                    problems.push("tail.buffer_bytes: must be 4096..1073741824".to_owned());
                }
                limits.buffer_bytes = v.clamp(4096, 1 << 30);
            }
            if let Some(v) = t.slow_consumer_timeout_s {
                if !(1..=3600).contains(&v) {
                    problems.push("tail.slow_consumer_timeout_s: must be 1..3600".to_owned());
                }
                limits.slow_consumer_timeout = Duration::from_secs(v.clamp(1, 3600));
            }
            if let Some(v) = t.max_streams_per_token {
                if v == 0 {
                    problems.push("tail.max_streams_per_token: must be at least 1".to_owned());
                }
                limits.max_streams_per_token = v;
            }
            if let Some(v) = t.max_streams_per_tenant {
                if v == 0 {
                    problems.push("tail.max_streams_per_tenant: must be at least 1".to_owned());
                }
                limits.max_streams_per_tenant = v;
            }
            if let Some(v) = t.max_streams {
                if v == 0 {
                    problems.push("tail.max_streams: must be at least 1".to_owned());
                }
                limits.max_streams = v;
            }
            if let Some(v) = t.credential_check_s {
                if !(1..=300).contains(&v) {
                    problems.push("tail.credential_check_s: must be 1..300".to_owned());
                }
                limits.credential_check = Duration::from_secs(v.clamp(1, 300));
            }
        }
        if !problems.is_empty() {
            anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let text = include_str!("config.rs")
            .lines()
            .skip_while(|l| !l.contains("```yaml"))
            .skip(1)
            .take_while(|l| !l.contains("```"))
            .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        // SAFETY of the test: these variables are only read by this test.
        let f: FileConfig = logflux_config::from_str(
            &text
                .replace("${AWS_ACCESS_KEY_ID}", "AK")
                .replace("${AWS_SECRET_ACCESS_KEY}", "SK"),
            "doc",
        )
        .unwrap();
        let c = f.into_server_config().unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8443");
        assert_eq!(c.store_url, "s3://logs/prod");
        assert!(
            c.store_options
                .contains(&("secret_access_key".into(), "SK".into()))
        );
        assert_eq!(
            c.tls.as_ref().unwrap().cert_file,
            PathBuf::from("/etc/logflux/tls/cert.pem")
        );
        assert_eq!(c.commit_linger, Duration::from_millis(2));
        assert_eq!(c.http.max_backfill_days, Some(3650));
        assert_eq!(c.orphan_grace, Duration::from_secs(7 * 86_400));
        assert_eq!(c.quarantine_period, Duration::from_secs(30 * 86_400));
        assert_eq!(c.http.tail.max_streams_per_token, 8);
        assert_eq!(c.http.tail.max_streams_per_tenant, 64);
        assert_eq!(c.http.tail.credential_check, Duration::from_secs(5));
    }

    #[test]
    fn problems_are_reported_together() {
        let f: FileConfig = logflux_config::from_str(
            "region: mars\nlimits: {max_parts: 0}\ntoken_expiry_days: 0\ningest: {max_backfill_days: 0}\norphan_grace_days: 0\ntail: {buffer_bytes: 10, credential_check_s: 0, max_streams_per_tenant: 0}\n",
            "c",
        )
        .unwrap();
        let e = f.into_server_config().unwrap_err().to_string();
        assert!(e.contains("region: must be one of"), "{e}");
        assert!(e.contains("limits.max_parts"), "{e}");
        assert!(e.contains("token_expiry_days"), "{e}");
        assert!(
            e.contains("ingest.max_backfill_days: must be 1..36500"),
            "{e}"
        );
        assert!(e.contains("orphan_grace_days: must be 1..3650"), "{e}");
        assert!(e.contains("tail.buffer_bytes"), "{e}");
        assert!(e.contains("tail.credential_check_s"), "{e}");
        assert!(e.contains("tail.max_streams_per_tenant"), "{e}");
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let e = logflux_config::from_str::<FileConfig>("store: {bucket: x}\n", "server.yaml")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("server.yaml: store.bucket: unknown field `bucket`"),
            "{e}"
        );
    }
}
