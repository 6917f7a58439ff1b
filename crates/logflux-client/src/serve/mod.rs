//! `logflux serve`: a query service on this machine that speaks Loki's HTTP API, so Grafana
//! (its built-in Loki data source) and our own UIs read decrypted logs. The server cannot read
//! logs; this process holds the keys (the client's config and keys, as `search` uses them),
//! fetches sealed records with the same blind tokens `search` sends, decrypts them here, keeps
//! them in memory ([`cache`]) and answers LogQL.
//!
//! - [`http`]: routes, parameters, limits, Loki's error answers;
//! - [`guard`]: the local access guard (token, Host, Origin);
//! - [`cache`]: decrypted records in memory, bounded, LRU;
//! - [`loki`]: queries, labels, series, tail, in Loki's shapes;
//! - [`ui`]: the web UI's files (compiled in), its sign-in link and pages;
//! - [`uiapi`]: the web UI's JSON API (saved searches, dashboards, export).

pub(crate) mod alerting;
pub(crate) mod cache;
pub(crate) mod feed;
pub(crate) mod guard;
pub(crate) mod http;
pub(crate) mod loki;
pub(crate) mod open;
pub(crate) mod ui;
pub(crate) mod uiapi;
pub(crate) mod ws;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use logflux_crypto::{Field, SearchKey, keyfile};
use logflux_proto::query::{QueryRequest, TimeBound};
use tokio::sync::{Mutex, oneshot};

use crate::api::{Api, Application};
use crate::config::Settings;
use crate::decrypt::Decryptor;
use crate::fetch::{Bodies, Chunk, spawn_query};
use cache::{Cache, Entries};
use http::LokiError;

/// How much later than its entry an SDK part may be timestamped (as `search` allows).
const SDK_SEND_SLACK_NS: i64 = 5 * 60 * 1_000_000_000;
/// Records asked for in a scan's first page (later pages: 1000, the most the server sends).
const FIRST_PAGE_RECORDS: usize = 250;
/// How long the list of applications (ids and names) is reused. Short: blind tokens are made
/// per application, so a query prepared with a list that misses a new application would
/// prune away its records, even those that match (a dashboard refresh re-lists).
const APPS_TTL: Duration = Duration::from_secs(2);
/// Connections open at once; more are closed on arrival.
const MAX_CONNECTIONS: usize = 512;
/// How long a connection may take to send a request's head (HTTP/1).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on. Off loopback, --tls-cert and --tls-key are required.
    #[arg(long, default_value = "127.0.0.1:3100")]
    pub(crate) listen: SocketAddr,
    /// A PEM certificate chain for HTTPS.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (mode 0600).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Memory for decrypted records, in MiB (also bounds the entries one metric query counts:
    /// MiB × 2^20 / 24).
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub(crate) cache_mb: u64,
    /// The access token's file, made (mode 0600) when absent [default: serve.token beside
    /// the config file, else ~/.config/logflux/serve.token].
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Another name this service is reached by (its Host header), e.g. with TLS on a LAN:
    /// a name, name:port, or an IPv6 address (fe80::1, [fe80::1]:3100); repeat for several.
    /// localhost, 127.0.0.1 and [::1] are always accepted.
    #[arg(long, value_name = "NAME")]
    pub(crate) allow_host: Vec<String>,
    #[command(flatten)]
    pub(crate) alerts: AlertArgs,
}

/// Where alert rules and receivers are (docs/alerts.md); shared by `serve` and `alerts run`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct AlertArgs {
    /// A directory of alert rule files (Loki ruler format, *.yaml) to evaluate here
    /// [default: the client config's `alert_rules`].
    #[arg(long, value_name = "DIR")]
    pub(crate) rules: Option<PathBuf>,
    /// Where alerts are sent: a receivers file in Alertmanager's format (a subset)
    /// [default: the client config's `alert_receivers`; none: alerts are only listed].
    #[arg(long, value_name = "FILE")]
    pub(crate) receivers: Option<PathBuf>,
    /// Where the alerts' state is kept [default: alerts/ in the client's config directory].
    #[arg(long, value_name = "DIR")]
    pub(crate) alerts_state: Option<PathBuf>,
}

impl AlertArgs {
    /// The alerting set-up these flags and `settings` give, if rules are configured.
    pub(crate) fn setup(
        &self,
        settings: &Settings,
        base_url: &str,
    ) -> anyhow::Result<Option<alerting::Setup>> {
        let Some(rules) = self.rules.clone().or(settings.alert_rules.clone()) else {
            anyhow::ensure!(
                self.receivers.is_none(),
                "--receivers without rules: give --rules DIR (or `alert_rules:` in the client config)"
            );
            return Ok(None);
        };
        anyhow::ensure!(
            rules.is_dir(),
            "the alert rules {} are not a directory",
            rules.display()
        );
        let state_dir = match &self.alerts_state {
            Some(d) => d.clone(),
            None => alerting::default_state_dir(settings)?,
        };
        Ok(Some(alerting::Setup {
            rules,
            receivers: self.receivers.clone().or(settings.alert_receivers.clone()),
            state_dir,
            base_url: base_url.to_owned(),
        }))
    }
}

impl ServeArgs {
    /// Defaults for `logflux up` (`--serve ADDR`).
    pub(crate) fn for_up(listen: SocketAddr, token_file: PathBuf) -> ServeArgs {
        ServeArgs {
            listen,
            tls_cert: None,
            tls_key: None,
            cache_mb: 256,
            token_file: Some(token_file),
            allow_host: Vec::new(),
            alerts: AlertArgs::default(),
        }
    }
}

/// Where the token lives by default: in the client's config directory.
pub(crate) fn default_token_file(settings: &Settings) -> anyhow::Result<PathBuf> {
    crate::uistore::config_dir(settings)
        .map(|d| d.join("serve.token"))
        .context("no place for serve.token: give --token-file")
}

/// The running service's state, shared by every request.
pub(crate) struct Service {
    pub(crate) api: Api,
    pub(crate) decryptor: Arc<Decryptor>,
    pub(crate) search_key: Option<SearchKey>,
    pub(crate) cache: Cache,
    pub(crate) guard: guard::Guard,
    /// The web UI's saved searches and dashboards, in the client's config directory.
    pub(crate) store: crate::uistore::Store,
    /// One store operation at a time.
    pub(crate) ui_lock: std::sync::Mutex<()>,
    apps: Mutex<Option<(Instant, Arc<Vec<Application>>)>>,
    /// Alerts evaluated here, when rules are configured.
    pub(crate) alerting: Option<Arc<alerting::Alerting>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

/// A token condition: any of these fields with its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FieldSpec {
    Level,
    Type,
    Source,
    Meta(String),
    Word,
}

/// What to fetch: a time range, applications (names or ids; empty: all) and token conditions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scan {
    pub(crate) from_ns: i64,
    pub(crate) to_ns: i64,
    pub(crate) apps: Option<Vec<String>>,
    /// Each element: one condition, met by any of its alternatives.
    pub(crate) conditions: Vec<Vec<(FieldSpec, String)>>,
    pub(crate) entry_types: Vec<u8>,
    pub(crate) newest_first: bool,
}

/// One decrypted record: its application's name, entries and time range, and the segment
/// the server keeps it in.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) record_id: String,
    pub(crate) segment_id: i64,
    pub(crate) app: Arc<str>,
    pub(crate) entries: Entries,
    pub(crate) min_ts: i64,
    pub(crate) max_ts: i64,
}

/// Records of a scan, a chunk at a time.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) records: Vec<Opened>,
    /// Entries beyond this (in the scan's order) may be let out.
    pub(crate) watermark: Option<i64>,
    pub(crate) done: bool,
}

/// A scan in progress.
pub(crate) struct Scanner {
    service: Arc<Service>,
    rx: Option<tokio::sync::mpsc::Receiver<anyhow::Result<Chunk>>>,
    names: Arc<HashMap<String, Arc<str>>>,
    pub(crate) records: u64,
    pub(crate) failed: u64,
    /// Records found decrypted in the cache, and records decrypted.
    pub(crate) cache_hits: u64,
    pub(crate) decrypted: u64,
    /// What was left out, named (never its content): at most [`MAX_WARNINGS`], then a count.
    pub(crate) warnings: Warnings,
}

/// Records a query names as left out before it only counts the rest.
pub(crate) const MAX_WARNINGS: usize = 20;

/// Records left out of an answer, by name, for the `warnings` of Loki's responses (the UI
/// shows them): at most [`MAX_WARNINGS`] named, the rest counted.
#[derive(Debug, Default, Clone)]
pub(crate) struct Warnings {
    named: Vec<String>,
    more: u64,
}

impl Warnings {
    pub(crate) fn push(&mut self, w: String) {
        if self.named.len() < MAX_WARNINGS {
            self.named.push(w);
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn extend(&mut self, other: Warnings) {
        for w in other.named {
            self.push(w);
        }
        self.more += other.more;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.named.is_empty()
    }

    /// The warnings as sent: each named one, then how many more there were.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v: Vec<serde_json::Value> = self.named.iter().map(|w| w.as_str().into()).collect();
        if self.more > 0 {
            v.push(
                format!(
                    "{} more records were left out (see serve's standard error)",
                    self.more
                )
                .into(),
            );
        }
        v.into()
    }
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// Whether [`Scanner::next`] has a chunk waiting (or the end): it then waits for no page.
    pub(crate) fn ready(&self) -> bool {
        self.rx
            .as_ref()
            .is_none_or(|rx| !rx.is_empty() || rx.is_closed())
    }

    /// The next chunk of records; `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<Batch>, LokiError> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        let Some(chunk) = rx.recv().await else {
            return Ok(None);
        };
        let chunk = chunk.map_err(|e| LokiError::internal(format!("fetching records: {e:#}")))?;
        if chunk.done {
            self.rx = None;
        }
        let opened = self.service.open_lines(chunk.records, &self.names).await?;
        self.failed += opened.failed;
        self.warnings.extend(opened.warnings);
        self.cache_hits += opened.cache_hits;
        self.decrypted += opened.decrypted;
        let mut records = Vec::with_capacity(opened.records.len());
        for r in opened.records {
            self.records += 1;
            records.push(r);
        }
        Ok(Some(Batch {
            records,
            watermark: chunk.watermark,
            done: chunk.done,
        }))
    }
}

/// A record's key in the cache: its application and id (ids are the producer's; one service
/// serves one tenant).
fn cache_key(r: &crate::api::Line) -> String {
    format!("{}/{}", r.application_id, r.record_id)
}

/// Records opened: from the cache or decrypted now.
#[derive(Debug, Default)]
pub(crate) struct OpenedLines {
    pub(crate) records: Vec<Opened>,
    pub(crate) failed: u64,
    /// The failed ones, named.
    pub(crate) warnings: Warnings,
    pub(crate) cache_hits: u64,
    pub(crate) decrypted: u64,
}

/// A scan's request to the server: application ids, blind tokens, id → name.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// Nothing can match (applications asked for that do not exist).
    pub(crate) empty: bool,
    pub(crate) ids: Vec<String>,
    pub(crate) tokens: Vec<Vec<String>>,
    pub(crate) names: Arc<HashMap<String, Arc<str>>>,
}

impl Service {
    /// Opens records (in parallel, off the async threads): from the cache when held, else
    /// decrypted and cached. A record that fails is reported on stderr by id (never its
    /// content), named in the answer's warnings, and left out.
    pub(crate) async fn open_lines(
        self: &Arc<Self>,
        lines: Vec<crate::api::Line>,
        names: &HashMap<String, Arc<str>>,
    ) -> Result<OpenedLines, LokiError> {
        let mut res = OpenedLines::default();
        let mut out = Vec::with_capacity(lines.len());
        let mut missing = Vec::new();
        for r in lines {
            if r.kind == "damaged" {
                eprintln!(
                    "logflux serve: the server cannot read segment {} of application {}: its records are left out",
                    r.segment_id, r.application_id
                );
                res.warnings.push(format!(
                    "segment {} (application {}) cannot be read by the server: its records are left out",
                    r.segment_id,
                    app_name(names, &r.application_id)
                ));
                res.failed += 1;
                continue;
            }
            match self.cache.get(&cache_key(&r)) {
                Some(entries) => {
                    res.cache_hits += 1;
                    out.push((r, entries));
                }
                None => missing.push(r),
            }
        }
        if !missing.is_empty() {
            // Listed without a body because the cache held them when their page came, and
            // let out since: fetched now.
            crate::fetch::fill_bodies(&self.api, &mut missing, |_| false)
                .await
                .map_err(|e| LokiError::internal(format!("fetching records: {e:#}")))?;
            self.decryptor.ensure_keys(&self.api, &missing).await;
            let dec = self.decryptor.clone();
            let opened =
                tokio::task::spawn_blocking(move || {
                    use rayon::prelude::*;
                    missing
                        .into_par_iter()
                        .map(|r| {
                            let o = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                dec.open(&r)
                            }))
                            .unwrap_or_else(|_| {
                                Err(crate::decrypt::RecordError::new(&r, "could not be decoded"))
                            });
                            (r, o)
                        })
                        .collect::<Vec<_>>()
                })
                .await
                .map_err(|e| LokiError::internal(format!("decryption worker: {e}")))?;
            for (r, o) in opened {
                match o {
                    Ok(v) => {
                        res.decrypted += 1;
                        let v = Arc::new(v);
                        self.cache.insert(&cache_key(&r), v.clone());
                        out.push((r, v));
                    }
                    Err(e) => {
                        eprintln!("logflux serve: {e}");
                        res.warnings
                            .push(record_warning(&e, app_name(names, &r.application_id)));
                        res.failed += 1;
                    }
                }
            }
        }
        res.records = out
            .into_iter()
            .map(|(r, entries)| Opened {
                app: names
                    .get(&r.application_id)
                    .cloned()
                    .unwrap_or_else(|| Arc::from(r.application_id.as_str())),
                entries,
                min_ts: r.min_ts,
                max_ts: r.max_ts.max(r.min_ts),
                segment_id: r.segment_id,
                record_id: r.record_id,
            })
            .collect();
        Ok(res)
    }

    /// The tenant's applications, reused for [`APPS_TTL`].
    pub(crate) async fn applications(&self) -> Result<Arc<Vec<Application>>, LokiError> {
        let mut g = self.apps.lock().await;
        if let Some((at, apps)) = g.as_ref()
            && at.elapsed() < APPS_TTL
        {
            return Ok(apps.clone());
        }
        let apps = Arc::new(
            self.api
                .applications()
                .await
                .map_err(|e| LokiError::internal(format!("listing applications: {e:#}")))?,
        );
        *g = Some((Instant::now(), apps.clone()));
        Ok(apps)
    }

    /// What the server is asked for `scan`: the same application ids and blind tokens
    /// `logflux search` sends for the same conditions.
    pub(crate) async fn prepare(&self, scan: &Scan) -> Result<Prepared, LokiError> {
        let apps = self.applications().await?;
        let names: HashMap<String, Arc<str>> = apps
            .iter()
            .map(|a| (a.id.clone(), Arc::from(a.name.as_str())))
            .collect();
        let ids: Vec<String> = match &scan.apps {
            None => Vec::new(),
            Some(want) => apps
                .iter()
                .filter(|a| want.iter().any(|w| *w == a.name || *w == a.id))
                .map(|a| a.id.clone())
                .collect(),
        };
        let empty = scan.apps.is_some() && ids.is_empty();
        let token_apps: Vec<String> = if ids.is_empty() {
            apps.iter().map(|a| a.id.clone()).collect()
        } else {
            ids.clone()
        };
        let tokens = match &self.search_key {
            Some(key) if !scan.conditions.is_empty() => {
                let fields: Vec<Vec<(Field<'_>, String)>> = scan
                    .conditions
                    .iter()
                    .map(|alts| {
                        alts.iter()
                            .map(|(f, v)| {
                                let f = match f {
                                    FieldSpec::Level => Field::Level,
                                    FieldSpec::Type => Field::Type,
                                    FieldSpec::Source => Field::Source,
                                    FieldSpec::Meta(k) => Field::Meta(k),
                                    FieldSpec::Word => Field::Word,
                                };
                                (f, v.clone())
                            })
                            .collect()
                    })
                    .collect();
                crate::filter::token_groups(key, &token_apps, fields)
            }
            _ => Vec::new(),
        };
        Ok(Prepared {
            empty,
            ids,
            tokens,
            names: Arc::new(names),
        })
    }

    /// Starts fetching what `scan` asks for: the request `logflux search` sends (time
    /// bounds, applications, blind tokens), pages and all.
    pub(crate) async fn scan(self: &Arc<Self>, scan: &Scan) -> Result<Scanner, LokiError> {
        let p = self.prepare(scan).await?;
        let rx = if p.empty {
            None
        } else {
            Some(spawn_query(
                self.api.clone(),
                QueryRequest {
                    from: Some(TimeBound::Nanos(scan.from_ns)),
                    to: Some(TimeBound::Nanos(
                        scan.to_ns.saturating_add(SDK_SEND_SLACK_NS),
                    )),
                    applications: p.ids,
                    entry_types: scan.entry_types.clone(),
                    tokens: p.tokens,
                    // A first page smaller than the next ones: counting starts sooner, while
                    // the server lists the rest.
                    limit: Some(FIRST_PAGE_RECORDS),
                    order: Some(
                        if scan.newest_first {
                            "newest"
                        } else {
                            "oldest"
                        }
                        .into(),
                    ),
                    cursor: None,
                    // Set by `spawn_query`: listed without bodies, those the cache lacks
                    // fetched by id.
                    bodies: None,
                },
                Bodies::Fetched {
                    held: {
                        let service = self.clone();
                        Arc::new(move |l: &crate::api::Line| service.cache.contains(&cache_key(l)))
                    },
                },
            ))
        };
        Ok(Scanner {
            service: self.clone(),
            rx,
            names: p.names,
            records: 0,
            failed: 0,
            cache_hits: 0,
            decrypted: 0,
            warnings: Warnings::default(),
        })
    }
}

/// An application's name, else its id.
fn app_name<'a>(names: &'a HashMap<String, Arc<str>>, id: &'a str) -> &'a str {
    names.get(id).map_or(id, |n| n)
}

/// A record that failed to open, as a query's warning names it: its id, segment and
/// application, and why (an integrity failure in the contract's words), never its content.
fn record_warning(e: &crate::decrypt::RecordError, app: &str) -> String {
    let why = if e.reason.contains("integrity check failed") {
        "failed its integrity check".to_owned()
    } else {
        format!("could not be opened ({})", e.reason)
    };
    format!(
        "record {} of segment {} (application {app}) {why}: left out",
        e.record_id, e.segment_id
    )
}

/// A running service.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) token_file: PathBuf,
    /// The service's guard (its sessions and sign-in codes).
    pub(crate) guard: guard::Guard,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// The alert evaluator's task, when rules are configured.
    evaluating: Option<tokio::task::JoinHandle<std::convert::Infallible>>,
}

impl Running {
    /// Stops accepting and ends open connections.
    pub(crate) async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(e) = self.evaluating.take() {
            e.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

/// Checks the settings, reads the keys and the token, binds and starts serving (and
/// evaluating alerts, when rules are configured).
pub(crate) async fn start(settings: &Settings, args: &ServeArgs) -> anyhow::Result<Running> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(
            logflux_server::TlsFiles {
                cert_file: c.clone(),
                key_file: k.clone(),
            }
            .server_config()?,
        ),
        _ => None,
    };
    guard::check_listen(args.listen, tls.is_some())?;
    let token_file = match &args.token_file {
        Some(p) => p.clone(),
        None => default_token_file(settings)?,
    };
    let token = guard::load_or_create_token(&token_file)?;
    let parts = Parts::read(settings, args.cache_mb).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "listening on {} (another process has it? choose another address)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let url = format!("{scheme}://{host}");
    let alerting = match args.alerts.setup(settings, &url)? {
        Some(setup) => match alerting::Alerting::load(&setup) {
            Ok(a) => Some(Arc::new(a)),
            // Rules from the client config, already evaluated by another process (an
            // `alerts run`, another serve): this one serves without them rather than not at
            // all. Rules given here with --rules must run here.
            Err(e)
                if args.alerts.rules.is_none()
                    && e.downcast_ref::<logflux_config::dir_lock::LockError>()
                        .is_some_and(|l| {
                            matches!(l, logflux_config::dir_lock::LockError::Held { .. })
                        }) =>
            {
                eprintln!("logflux serve: not evaluating alerts here: {e:#}");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let guard = guard::Guard::new(token.clone(), addr, tls.is_some(), &args.allow_host)?;
    let service = Arc::new(parts.service(settings, guard.clone(), alerting.clone())?);
    let evaluating = alerting.map(|a| tokio::spawn(a.run(service.clone())));
    let app = http::router(service);
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, tls.clone(), app, stop_rx));
    Ok(Running {
        url,
        token,
        token_file,
        guard,
        stop: Some(stop_tx),
        task,
        evaluating,
    })
}

/// What a service is made of that comes from the settings: the server's API, the keys, the
/// cache.
struct Parts {
    api: Api,
    decryptor: Decryptor,
    search_key: Option<SearchKey>,
    cache_bytes: usize,
}

impl Parts {
    async fn read(settings: &Settings, cache_mb: u64) -> anyhow::Result<Parts> {
        anyhow::ensure!(cache_mb >= 1, "--cache-mb must be at least 1");
        let api = Api::new(settings)?;
        let private = keyfile::read_private_key(settings.private_key_file()?)?;
        let search_key = match &settings.search_key_file {
            Some(p) => Some(keyfile::read_search_key(p)?),
            None => {
                eprintln!(
                    "logflux serve: no search key configured (LOGFLUX_SEARCH_KEY_FILE): every record in a query's time range is fetched and filtered here"
                );
                None
            }
        };
        let me = api.me().await?;
        Ok(Parts {
            api,
            decryptor: Decryptor::new(private, me.tenant_id),
            search_key,
            cache_bytes: usize::try_from(cache_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX),
        })
    }

    fn service(
        self,
        settings: &Settings,
        guard: guard::Guard,
        alerting: Option<Arc<alerting::Alerting>>,
    ) -> anyhow::Result<Service> {
        Ok(Service {
            api: self.api,
            decryptor: Arc::new(self.decryptor),
            search_key: self.search_key,
            cache: Cache::new(self.cache_bytes),
            guard,
            store: crate::uistore::Store::new(crate::uistore::config_dir(settings)?),
            ui_lock: std::sync::Mutex::new(()),
            apps: Mutex::new(None),
            alerting,
        })
    }
}

/// `logflux alerts run`: the rules evaluated here over the live stream until a stop signal,
/// without serving anything (`logflux serve --rules` serves their status too).
pub(crate) async fn run_alerts(
    settings: &Settings,
    alerts: &AlertArgs,
    cache_mb: u64,
    base_url: &str,
) -> anyhow::Result<i32> {
    let setup = alerts
        .setup(settings, base_url)?
        .context("no rules: give --rules DIR (or `alert_rules:` in the client config)")?;
    let parts = Parts::read(settings, cache_mb).await?;
    let alerting = Arc::new(alerting::Alerting::load(&setup)?);
    // Nothing listens: the guard is never asked. It holds a token of its own, never written.
    let guard = guard::Guard::new(
        guard::random_hex()?,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        false,
        &[],
    )?;
    let service = Arc::new(parts.service(settings, guard, Some(alerting.clone()))?);
    let signals = stop_signals()?;
    println!(
        "alerts  {} rules from {}{}",
        alerting.rules(),
        setup.rules.display(),
        match &setup.receivers {
            Some(r) => format!(", sent as {} says", r.display()),
            None => " (no receivers: evaluated and logged only)".to_owned(),
        }
    );
    println!("evaluating (Ctrl-C stops)");
    // A run with rule files left out ends with an error status (they were reported).
    let all_loaded = alerting.problems().is_empty();
    let evaluating = tokio::spawn(alerting.run(service));
    signals.await;
    evaluating.abort();
    Ok(if all_loaded {
        crate::EXIT_OK
    } else {
        crate::EXIT_ERROR
    })
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: axum::Router,
    mut stop: oneshot::Receiver<()>,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (tcp, _peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            _ = &mut stop => break,
        };
        // Before authentication anyone local can connect: open connections are capped, and
        // one that does not send its request head in time is closed (HTTP/1).
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_CONNECTIONS {
            drop(tcp);
            continue;
        }
        let svc = TowerToHyperService::new(app.clone());
        let acceptor = acceptor.clone();
        conns.spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            match acceptor {
                None => {
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), svc)
                        .await;
                }
                Some(acc) => {
                    let Ok(Ok(s)) =
                        tokio::time::timeout(Duration::from_secs(10), acc.accept(tcp)).await
                    else {
                        return;
                    };
                    let _ = builder
                        .serve_connection_with_upgrades(TokioIo::new(s), svc)
                        .await;
                }
            }
        });
    }
    conns.shutdown().await;
}

/// `logflux serve`: until Ctrl-C or SIGTERM.
pub(crate) async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<i32> {
    let running = start(settings, &args).await?;
    let signals = stop_signals()?;
    print_settings(&running);
    println!("serving (Ctrl-C stops)");
    signals.await;
    running.shutdown().await;
    Ok(crate::EXIT_OK)
}

/// SIGTERM or SIGINT (Ctrl-C), registered when called — before the line scripts wait for is
/// printed, so a signal sent right after it is a graceful stop, not the default action.
pub(crate) fn stop_signals() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// The web UI's sign-in link, and what to paste into Grafana's Loki data source settings.
pub(crate) fn print_settings(r: &Running) {
    println!("serve   {}   (Loki's HTTP API, decrypted here)", r.url);
    println!(
        "ui      {}   (the web UI: open this sign-in link in a browser, or run logflux ui)",
        ui::login_link(&r.url, &r.token, None)
    );
    println!("Grafana: Connections → Data sources → Add → Loki:");
    println!("  URL                  {}", r.url);
    println!("  Authentication       Basic authentication: any user, password = the token");
    println!("                       (or HTTP header  Authorization: Bearer <token>)");
    println!("  token                in {}", r.token_file.display());
}
