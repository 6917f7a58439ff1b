//! Starting and stopping the agent: spool, keys, identity, sealer, inputs, shipper, metrics.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::routing::get;
use logflux_crypto::keyfile;
use logflux_proto::{Metadata, Secret};
use serde_json::json;
use tokio::sync::{Notify, watch};

use crate::api;
use crate::config::AgentConfig;
use crate::keys::{Identity, KeyRing, Pin};
use crate::metrics::Metrics;
use crate::pipeline::{self, Intake, SealerConfig, Shared, Status};
use crate::ship::{self, ShipperConfig};
use crate::spool::{FsyncPolicy, Spool};

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    intake: Option<Intake>,
    sealer: tokio::task::JoinHandle<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics_addr: Option<std::net::SocketAddr>,
    tcp_addr: Option<std::net::SocketAddr>,
    http_addr: Option<std::net::SocketAddr>,
    shutdown_timeout: Duration,
    spool_max_bytes: u64,
    /// One agent per spool directory (`DIR/agent.lock`), held until the agent is dropped.
    _lock: logflux_config::dir_lock::DirLock,
}

/// How a shutdown went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Entries received but not spooled: the shutdown ran out of time (a full spool while
    /// the server is away). They are lost.
    pub not_spooled: u64,
    /// The bound the shutdown had (`shutdown_timeout_s`).
    pub timeout: Duration,
    /// The spool's size and limit when it ended, in bytes.
    pub spool_bytes: u64,
    pub spool_max_bytes: u64,
}

impl std::fmt::Display for ShutdownReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.not_spooled == 0 {
            return write!(f, "everything received is sealed and spooled");
        }
        write!(
            f,
            "{} entries received were not spooled within shutdown_timeout_s ({} s) and are lost; \
             the spool held {} of {} bytes (spool.max_bytes) and the server did not take records. \
             Raise spool.max_bytes or shutdown_timeout_s, or stop the agent while the server is up",
            self.not_spooled,
            self.timeout.as_secs(),
            self.spool_bytes,
            self.spool_max_bytes
        )
    }
}

fn http_client(cfg: &AgentConfig) -> anyhow::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.server.timeout_s))
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(90))
        .http2_adaptive_window(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    if let Some(ca) = &cfg.server.ca_file {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        b = b.add_root_certificate(
            reqwest::Certificate::from_pem(&pem).context("parsing the CA certificate")?,
        );
    }
    Ok(b.build()?)
}

/// The tenant key and identity: cached from an earlier run, or from the server's handshake
/// (retried until a server answers), always checked against the pin.
async fn identity(
    http: &reqwest::Client,
    cfg: &AgentConfig,
    signer: &crate::ship::Signer,
    pin: &Pin,
    dir: &std::path::Path,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<Identity> {
    if let Some(id) = Identity::load(dir)? {
        id.verify(pin)?;
        return Ok(id);
    }
    let mut backoff = Duration::from_millis(200);
    for attempt in 0usize.. {
        let base = &cfg.server.urls[attempt % cfg.server.urls.len()];
        let body = json!({"api_key": cfg.server.api_key}).to_string();
        let req = http
            .post(format!("{}/v1/handshake/init", base.trim_end_matches('/')))
            .bearer_auth(&cfg.server.api_key)
            .header("content-type", "application/json");
        let r = signer
            .apply(req, "/v1/handshake/init", body.as_bytes())
            .body(body)
            .send()
            .await;
        if let Ok(r) = &r
            && signer.learn_clock(r) == Some(true)
        {
            continue;
        }
        match r {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await?;
                let d = &v["data"];
                let id = Identity {
                    tenant_id: d["tenant_id"]
                        .as_str()
                        .context("handshake: no tenant_id")?
                        .to_owned(),
                    application_id: d["application_id"]
                        .as_str()
                        .context("handshake: no application_id")?
                        .to_owned(),
                    public_key_pem: d["public_key"]
                        .as_str()
                        .context("handshake: no public_key")?
                        .to_owned(),
                };
                id.verify(pin)?;
                id.save(dir)?;
                tracing::info!(tenant = %id.tenant_id, application = %id.application_id, "identity and tenant key received and pinned");
                return Ok(id);
            }
            Ok(r) if matches!(r.status().as_u16(), 400 | 401 | 403) => {
                bail!(
                    "the server refused the API key at handshake: {}",
                    r.status()
                );
            }
            Ok(r) => {
                let status = r.status();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
                tracing::warn!(endpoint = %base, %status, %message, "handshake failed; retrying");
            }
            Err(e) => {
                let error = logflux_config::tls::explain_send_error(&e);
                tracing::warn!(endpoint = %base, %error, "server unreachable for the first handshake; retrying")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => bail!("stopped before the first handshake"),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    unreachable!()
}

impl Agent {
    /// Starts everything the configuration enables.
    pub async fn start(mut cfg: AgentConfig) -> anyhow::Result<Agent> {
        cfg.expand_home();
        cfg.validate()?;
        let dir = cfg.spool.dir.clone();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the spool directory {}", dir.display()))?;
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).ok();
        }
        // Two agents on one spool would append to the same segment while each counts only its
        // own frames, and each would then ship the other's records in place of its own: every
        // record would wait for the next append to be delivered.
        let lock = logflux_config::dir_lock::lock_dir(
            &dir,
            "agent.lock",
            "the spool directory",
            "stop that agent first, or give this one another spool.dir",
        )?;
        let pin = match (&cfg.keys.public_key_file, &cfg.keys.public_key_fingerprint) {
            (Some(f), _) => Pin::Key(keyfile::read_public_key(f).context("keys.public_key_file")?),
            (None, Some(fp)) => Pin::Fingerprint(fp.parse()?),
            (None, None) => bail!("keys: set public_key_file or public_key_fingerprint"),
        };
        let search_key =
            keyfile::read_search_key(&cfg.keys.search_key_file).context("keys.search_key_file")?;
        let (stop, stop_rx) = watch::channel(false);
        let http = http_client(&cfg)?;
        let signer = crate::ship::Signer::new(&cfg.server.api_key, cfg.server.sign_requests);
        let id = identity(&http, &cfg, &signer, &pin, &dir, &mut stop_rx.clone()).await?;
        let public_key = id.verify(&pin)?;

        let spool_cfg = cfg.spool.spool_config();
        let spool_dir = dir.clone();
        let spool =
            tokio::task::spawn_blocking(move || Spool::open(&spool_dir, spool_cfg)).await??;
        let metrics = Metrics::new();
        metrics.spool_damaged_bytes.inc_by(spool.damaged_bytes());
        let mut redactor = crate::redact::Redactor::new(&cfg.filters)?;
        redactor.bind_counters(|rule| {
            metrics
                .redactions
                .get_or_create(&crate::metrics::RuleLabel { rule: rule.into() })
                .clone()
        });
        let redactor = Arc::new(redactor);
        let head = spool.head();
        let shared = Arc::new(Shared {
            metrics,
            spool: Mutex::new(spool),
            appended: Notify::new(),
            status: Mutex::new(Status::default()),
            shipped: watch::channel(0).0,
            abandon: watch::channel(false).0,
            unspooled: std::sync::atomic::AtomicU64::new(0),
            head: watch::channel(head).0,
            connections: Arc::default(),
        });
        shared.update_spool_gauges();

        let keys = KeyRing::new(
            &dir,
            public_key,
            Duration::from_secs(cfg.rotation.max_age_s),
            cfg.rotation.max_batches,
        )?;
        let agent_id = cfg.agent_id.clone().unwrap_or_else(hostname);
        let mut enrich = Metadata::from(&cfg.labels);
        if cfg.enrich {
            enrich.insert_if_absent("host", || hostname().into());
            enrich.insert_if_absent("agent_id", || agent_id.into());
        }
        let mut tasks = Vec::new();
        let mut forwarders = Vec::new();
        for f in &cfg.forward {
            let target = crate::metrics::TargetLabel {
                target: f.address.clone(),
            };
            let sent = shared.metrics.forwarded.get_or_create(&target).clone();
            let dropped = shared
                .metrics
                .forward_dropped
                .get_or_create(&target)
                .clone();
            let (fwd, task) =
                crate::forward::start(f.clone(), hostname(), sent, dropped, stop_rx.clone())?;
            forwarders.push(fwd);
            tasks.push(task);
        }
        let (intake, sealer) = pipeline::start(
            shared.clone(),
            keys,
            search_key.token_key(&id.application_id),
            SealerConfig {
                max_wait: Duration::from_millis(cfg.batch.max_wait_ms),
                max_entries: cfg.batch.max_entries,
                max_bytes: cfg.batch.max_bytes,
                zstd_level: cfg.batch.zstd_level,
                batch_format: cfg.batch.format,
                time_granularity_ns: cfg.batch.time_granularity_ms as i64 * 1_000_000,
                tenant_id: id.tenant_id.clone(),
                application_id: id.application_id.clone(),
                when_full: cfg.spool.when_full,
                enrich,
                intake_budget_kib: pipeline::intake_budget_kib(cfg.spool.max_bytes),
                redactor,
                forwarders,
            },
        );

        if let FsyncPolicy::Interval(every) = spool_cfg.fsync {
            let (s, mut sd) = (shared.clone(), stop_rx.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        _ = sd.changed() => return,
                    }
                    let s2 = s.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || s2.spool.lock().expect("lock").sync())
                            .await;
                }
            }));
        }
        if let Some(u) = &cfg.inputs.unix_socket {
            let mode = u32::from_str_radix(u.mode.trim_start_matches("0o"), 8)
                .context("inputs.unix_socket.mode")?;
            let listener = api::bind_unix(&u.path, mode).await?;
            tasks.push(tokio::spawn(api::serve_unix(
                listener,
                u.clone(),
                shared.clone(),
                intake.clone(),
                stop_rx.clone(),
            )));
            tracing::info!(path = %u.path.display(), "local API on the unix socket");
        }
        let mut tcp_addr = None;
        if let Some(t) = &cfg.inputs.tcp {
            let listener = tokio::net::TcpListener::bind(t.listen)
                .await
                .with_context(|| format!("binding {}", t.listen))?;
            tcp_addr = Some(listener.local_addr()?);
            tasks.push(tokio::spawn(api::serve_tcp(
                listener,
                t.clone(),
                shared.clone(),
                intake.clone(),
                stop_rx.clone(),
            )));
            tracing::info!(addr = %tcp_addr.expect("set"), "local API on TCP");
        }
        for (fcfg, kind) in cfg.inputs.file_inputs() {
            tracing::info!(paths = ?fcfg.paths, format = ?fcfg.format, "file input");
            tasks.push(tokio::spawn(crate::files::run(
                fcfg,
                kind,
                dir.clone(),
                shared.clone(),
                intake.clone(),
                stop_rx.clone(),
            )));
        }
        for sy in &cfg.inputs.syslog {
            tasks.push(
                crate::syslog::run(sy.clone(), shared.clone(), intake.clone(), stop_rx.clone())
                    .await?,
            );
            tracing::info!(listen = %sy.listen, "syslog input");
        }
        if let Some(j) = &cfg.inputs.journald {
            tasks.push(tokio::spawn(crate::journald::run(
                j.clone(),
                dir.clone(),
                shared.clone(),
                intake.clone(),
                stop_rx.clone(),
            )));
        }
        let mut http_addr = None;
        if let Some(h) = &cfg.inputs.http {
            let (addr, task) =
                crate::http_input::run(h.clone(), shared.clone(), intake.clone(), stop_rx.clone())
                    .await?;
            http_addr = Some(addr);
            tasks.push(task);
            tracing::info!(%addr, "http input");
        }
        let mut metrics_addr = None;
        // A busy metrics port (another exporter on it) costs the metrics, not the logs.
        let metrics_listener = match cfg.metrics.listen {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(
                        %addr,
                        error = %e,
                        "cannot listen for metrics; the agent runs on without /metrics, /status and \
                         /healthz (and `logflux-agent status`): set metrics.listen to a free \
                         loopback port, or `metrics: {{listen: null}}` to turn them off"
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(listener) = metrics_listener {
            metrics_addr = Some(listener.local_addr()?);
            let s = shared.clone();
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    get({
                        let s = s.clone();
                        move || async move { s.metrics.encode() }
                    }),
                )
                .route("/healthz", get(|| async { "OK" }))
                .route(
                    "/status",
                    get(move || async move { axum::Json(status_json(&s)) }),
                );
            let mut sd = stop_rx.clone();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = sd.changed().await;
                    })
                    .await;
            }));
        }
        tasks.push(tokio::spawn(ship::run(
            shared.clone(),
            http,
            ShipperConfig {
                urls: cfg.server.urls.clone(),
                api_key: Secret::new(cfg.server.api_key.clone()),
                max_records: cfg.shipper.max_records_per_request,
                max_bytes: cfg.shipper.max_request_bytes,
                backoff_initial: Duration::from_millis(cfg.shipper.backoff_initial_ms),
                backoff_max: Duration::from_millis(cfg.shipper.backoff_max_ms),
                spool_dir: dir,
                signer,
            },
            stop_rx,
        )));
        Ok(Agent {
            shared,
            stop,
            intake: Some(intake),
            sealer,
            tasks,
            metrics_addr,
            tcp_addr,
            http_addr,
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_s),
            spool_max_bytes: cfg.spool.max_bytes,
            _lock: lock,
        })
    }

    /// The bound address of the HTTP input.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    /// The bound metrics address (useful with port 0).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_addr
    }

    /// The bound TCP address of the local API.
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tcp_addr
    }

    /// The agent's metrics, as Prometheus text.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.encode()
    }

    /// Entries the server has acknowledged since start.
    pub fn shipped_count(&self) -> u64 {
        *self.shared.shipped.borrow()
    }

    /// Waits until the server has acknowledged at least `n` entries since start.
    pub async fn wait_shipped(&self, n: u64) {
        let mut rx = self.shared.shipped.subscribe();
        let _ = rx.wait_for(|&v| v >= n).await;
    }

    /// What `/status` shows.
    pub fn status(&self) -> serde_json::Value {
        status_json(&self.shared)
    }

    /// Stops accepting, seals and spools everything received, stops shipping (what is not yet
    /// delivered stays in the spool for the next start). Fails, saying how many entries, when
    /// some could not be spooled within `shutdown_timeout_s` (see [`Agent::shutdown_report`]).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let report = self.shutdown_report().await?;
        if report.not_spooled > 0 {
            bail!("{report}");
        }
        Ok(())
    }

    /// Like [`Agent::shutdown`], bounded by `shutdown_timeout_s`: inputs and the shipper get
    /// until then to stop, and the sealer to spool what it holds. When time is up (the spool
    /// is full and the server away, so nothing can make room), what is left is counted as
    /// not spooled, and the agent stops anyway.
    pub async fn shutdown_report(mut self) -> anyhow::Result<ShutdownReport> {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let _ = self.stop.send(true);
        let mut late = Vec::new();
        for mut t in std::mem::take(&mut self.tasks) {
            if !late.is_empty() || tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
                late.push(t);
            }
        }
        let timed_out = !late.is_empty();
        for t in late {
            let _ = t.await;
        }
        // The inputs are gone; dropping the last intake lets the sealer finish.
        self.intake.take();
        let sealer = &mut self.sealer;
        let done = if timed_out {
            None
        } else {
            tokio::time::timeout_at(deadline, &mut *sealer).await.ok()
        };
        let done = match done {
            Some(r) => r,
            None => {
                tracing::warn!(
                    timeout_s = self.shutdown_timeout.as_secs(),
                    "shutdown_timeout_s reached: what is not spooled yet is given up"
                );
                let _ = self.shared.abandon.send(true);
                sealer.await
            }
        };
        done.context("sealer task")?;
        let st = self.shared.spool.lock().expect("lock").stats();
        Ok(ShutdownReport {
            not_spooled: self
                .shared
                .unspooled
                .load(std::sync::atomic::Ordering::Relaxed),
            timeout: self.shutdown_timeout,
            spool_bytes: st.bytes,
            spool_max_bytes: self.spool_max_bytes,
        })
    }
}

fn status_json(s: &Shared) -> serde_json::Value {
    let st = s.spool.lock().expect("lock").stats();
    let status = s.status.lock().expect("lock").clone();
    let now = logflux_proto::timefmt::now_ns();
    json!({
        "spool": {
            "records": st.records,
            "bytes": st.bytes,
            "oldest_record_age_s": st.oldest_ts.map(|t| (now - t) as f64 / 1e9),
        },
        "last_delivery": status.last_delivery_ns.map(logflux_proto::timefmt::format_rfc3339),
        "last_delivery_age_s": status.last_delivery_ns.map(|t| (now - t) as f64 / 1e9),
        "last_error": status.last_error,
        "endpoint": status.endpoint,
        "entries_received": s.metrics.received_total(),
        "entries_shipped": s.metrics.entries_shipped.get(),
        "records_dead_lettered": s.metrics.records_dead_lettered.get(),
        "entries_dropped": s.metrics.entries_dropped.get(),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Where the default configuration lives.
pub fn default_config_path() -> PathBuf {
    PathBuf::from("/etc/logflux-agent/agent.yaml")
}
