//! Notifications: Alertmanager's routing, grouping and receivers, run on the user's machine
//! (`docs/alerts.md`, "Receivers and routing").
//!
//! The evaluator hands every evaluation's alerts to [`Notifier::send`]: firing ones again at
//! each evaluation, resolved ones once. The notifier does what Alertmanager does with them:
//! each alert goes down the routing tree to one or more routes; on each route, alerts with the
//! same `group_by` labels form an aggregation group. A new group waits `group_wait`, then
//! notifies its receiver; later it looks again every `group_interval` and notifies only when
//! the set of firing (or, with `send_resolved`, resolved) alerts changed, or when
//! `repeat_interval` passed. What was sent is kept in a notification log (a state file) so a
//! restarted evaluator, re-sending its firing alerts, does not notify them again.
//!
//! Each notification is retried (1 s doubling to 30 s, with jitter) until it is delivered or
//! `global.retry_for` (10 min) passes; then it is written to the dead-letter log and counted.
//!
//! ```no_run
//! # async fn example(alerts: Vec<logflux_alerts::Alert>) -> anyhow::Result<()> {
//! use logflux_alerts::notify::{Notifier, NotifierOptions, ReceiversConfig};
//! let loaded = ReceiversConfig::load("alertmanager.yml".as_ref())?;
//! let notifier = Notifier::new(&loaded.config, NotifierOptions {
//!     state_path: Some("state/notifications.json".into()),
//!     dead_letter_path: Some("state/dead-letters.jsonl".into()),
//!     external_url: "http://127.0.0.1:9090".into(),
//! })?;
//! notifier.send(alerts);
//! # Ok(()) }
//! ```

mod config;
mod integrations;
mod matchers;
mod metrics;
mod payload;
mod route;
mod state;
mod template;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, broadcast, watch};
use tokio::time::Instant;

pub use config::{
    EmailConfig, ExecConfig, GlobalConfig, LoadedReceivers, Problem, PromDuration, ReceiverConfig,
    ReceiversConfig, ReceiversConfigError, RouteConfig, Secret, SlackConfig, TlsConfig,
    WebhookConfig, parse_duration,
};
pub use integrations::IntegrationKind;
pub use metrics::{CountersSnapshot, IntegrationCounters, NotifyMetrics};

use crate::{Alert, LabelSet};
use integrations::{Integration, SendError};
use payload::Notification;
use route::{Route, render_labels};
use state::{Entry, NotificationLog};

/// Where the notifier keeps its files, and how it names itself.
#[derive(Debug, Clone, Default)]
pub struct NotifierOptions {
    /// The notification log (mode 0600, written whole at each change). `None`: kept in memory
    /// only, so a restart notifies firing alerts again.
    pub state_path: Option<PathBuf>,
    /// Notifications given up on, one JSON line each (mode 0600). `None`: only logged.
    pub dead_letter_path: Option<PathBuf>,
    /// `externalURL` of the webhook JSON: where the user's `logflux serve` is.
    pub external_url: String,
}

/// Why a notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The routing tree could not be built.
    #[error("receivers file: {0}")]
    Config(String),
    /// `Notifier::new` was called outside a Tokio runtime.
    #[error("the notifier needs a Tokio runtime (call Notifier::new inside one)")]
    NoRuntime,
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
}

/// What became of one group's flush for one integration (for tests and logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered, with this many firing and resolved alerts.
    Sent {
        /// Firing alerts in the message.
        firing: usize,
        /// Resolved alerts in the message.
        resolved: usize,
    },
    /// Nothing to say: the receiver already knows (or only resolved alerts it does not want).
    Unchanged,
    /// Given up on and written to the dead-letter log.
    DeadLettered,
}

/// One flush of one group for one integration.
#[derive(Debug, Clone)]
pub struct NotifyEvent {
    /// Alertmanager's group key: the route's matchers, then the group's labels.
    pub group_key: String,
    /// The receiver's name.
    pub receiver: String,
    /// Which kind of integration.
    pub integration: IntegrationKind,
    /// Its position among the receiver's integrations (webhooks, then Slack, e-mail, exec).
    pub index: usize,
    /// What happened.
    pub outcome: Outcome,
}

/// Routes, groups and sends alerts; see the module's documentation. Dropping it stops its
/// groups (a notification being retried is abandoned; it was not logged as sent, so it is
/// sent again after a restart).
#[derive(Debug)]
pub struct Notifier {
    inner: Arc<Inner>,
    // Dropped with the notifier, which ends every group's task.
    _shutdown: watch::Sender<bool>,
}

#[derive(Debug)]
struct Inner {
    route: Route,
    receivers: HashMap<String, Vec<Integration>>,
    resolve_timeout: Duration,
    retry_for: Duration,
    groups: Mutex<HashMap<String, Arc<Group>>>,
    nflog: Mutex<NotificationLog>,
    state_path: Option<PathBuf>,
    // Serializes writes of the state file, so an older snapshot never lands after a newer one.
    state_writer: tokio::sync::Mutex<()>,
    dead_letter_path: Option<PathBuf>,
    retention_ms: i64,
    metrics: Arc<NotifyMetrics>,
    events: broadcast::Sender<NotifyEvent>,
    clock: Clock,
    http: reqwest::Client,
    external_url: String,
    runtime: tokio::runtime::Handle,
    shutdown: watch::Receiver<bool>,
    next_version: AtomicU64,
}

/// Wall-clock milliseconds that advance with Tokio's clock, so paused time in tests moves the
/// notification log's timestamps too.
#[derive(Debug)]
struct Clock {
    wall0_ms: i64,
    inst0: Instant,
}

impl Clock {
    fn new() -> Self {
        let wall0_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self {
            wall0_ms,
            inst0: Instant::now(),
        }
    }
    fn now_ms(&self) -> i64 {
        self.wall0_ms + i64::try_from(self.inst0.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

#[derive(Debug)]
struct Group {
    key: String,
    labels: LabelSet,
    receiver: String,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    alerts: Mutex<BTreeMap<String, Stored>>,
    flushed: AtomicBool,
    wake: Notify,
}

#[derive(Debug, Clone)]
struct Stored {
    alert: Alert,
    received_ms: i64,
    // Changes at every update, so a flush removes a resolved alert only if it did not change
    // (fire again) while the flush was sending.
    version: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Notifier {
    /// Starts a notifier for a checked receivers file (see [`ReceiversConfig::load`]), restoring
    /// the notification log from `options.state_path`. Must be called inside a Tokio runtime.
    pub fn new(config: &ReceiversConfig, options: NotifierOptions) -> Result<Self, NotifyError> {
        let receivers = config
            .receivers
            .iter()
            .map(|r| (r.name.clone(), integrations::build(r, &config.global)))
            .collect();
        Self::with_integrations(config, options, receivers)
    }

    fn with_integrations(
        config: &ReceiversConfig,
        options: NotifierOptions,
        receivers: HashMap<String, Vec<Integration>>,
    ) -> Result<Self, NotifyError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let route = Route::build(&config.route).map_err(NotifyError::Config)?;
        let nflog = match &options.state_path {
            None => NotificationLog::default(),
            Some(p) => NotificationLog::load(p).unwrap_or_else(|e| {
                // Alerting must go on: a damaged log costs repeated notifications, not silence.
                let mut aside = p.as_os_str().to_owned();
                aside.push(".damaged");
                let _ = std::fs::rename(p, &aside);
                tracing::warn!(error = %e, moved_to = ?aside, "notification log unreadable; starting empty");
                NotificationLog::default()
            }),
        };
        let longest_repeat = route
            .walk()
            .iter()
            .map(|r| r.repeat_interval)
            .max()
            .unwrap_or_default();
        let http = reqwest::Client::builder()
            .user_agent(concat!("logflux-alerts/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifyError::Http(e.to_string()))?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let inner = Inner {
            route,
            receivers,
            resolve_timeout: config.global.resolve_timeout.0,
            retry_for: config.global.retry_for.0,
            groups: Mutex::new(HashMap::new()),
            nflog: Mutex::new(nflog),
            state_path: options.state_path,
            state_writer: tokio::sync::Mutex::new(()),
            dead_letter_path: options.dead_letter_path,
            // As Alertmanager (120 h), or longer when a repeat interval is.
            retention_ms: ms(longest_repeat.max(Duration::from_secs(120 * 3600))),
            metrics: Arc::new(NotifyMetrics::default()),
            events: broadcast::channel(1024).0,
            clock: Clock::new(),
            http,
            external_url: options.external_url,
            runtime,
            shutdown,
            next_version: AtomicU64::new(0),
        };
        Ok(Self {
            inner: Arc::new(inner),
            _shutdown: shutdown_tx,
        })
    }

    /// Takes one evaluation's alerts: firing ones (sent at every evaluation) and resolved
    /// ones. Returns at once; groups notify on their own timers.
    pub fn send(&self, alerts: Vec<Alert>) {
        let inner = &self.inner;
        let now = inner.clock.now_ms();
        let mut groups = lock(&inner.groups);
        for alert in alerts {
            let fp = alert.fingerprint();
            for route in inner.route.matches(&alert.labels) {
                let labels = route.group_labels(&alert.labels);
                let key = format!("{}:{}", route.key, render_labels(&labels));
                let mut new_group = false;
                let group = groups
                    .entry(key.clone())
                    .or_insert_with(|| {
                        new_group = true;
                        Arc::new(Group {
                            key,
                            labels,
                            receiver: route.receiver.clone(),
                            group_wait: route.group_wait,
                            group_interval: route.group_interval,
                            repeat_interval: route.repeat_interval,
                            alerts: Mutex::new(BTreeMap::new()),
                            flushed: AtomicBool::new(false),
                            wake: Notify::new(),
                        })
                    })
                    .clone();
                // As Alertmanager: an alert that started longer than group_wait ago (an
                // evaluator restarted, say) does not wait again before the first flush.
                if !group.flushed.load(Ordering::Acquire)
                    && alert.starts_at_ms.saturating_add(ms(group.group_wait)) < now
                {
                    group.wake.notify_one();
                }
                let version = inner.next_version.fetch_add(1, Ordering::Relaxed);
                lock(&group.alerts).insert(
                    fp.clone(),
                    Stored {
                        alert: alert.clone(),
                        received_ms: now,
                        version,
                    },
                );
                // Started once its first alert is in: with `group_wait: 0s` its first flush
                // could otherwise find it empty and wait a whole group_interval.
                if new_group {
                    inner
                        .runtime
                        .spawn(Inner::run_group(Arc::clone(inner), group));
                }
            }
        }
    }

    /// The counters of attempts, failures and dead letters per integration kind.
    pub fn metrics(&self) -> Arc<NotifyMetrics> {
        Arc::clone(&self.inner.metrics)
    }

    /// Every flush's outcome per integration, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<NotifyEvent> {
        self.inner.events.subscribe()
    }

    /// How many aggregation groups hold alerts.
    pub fn group_count(&self) -> usize {
        lock(&self.inner.groups).len()
    }
}

/// Alertmanager's `DedupStage.needsUpdate`: whether a flush has something new to tell.
fn needs_update(
    entry: Option<&Entry>,
    firing: &BTreeSet<String>,
    resolved: &BTreeSet<String>,
    send_resolved: bool,
    repeat_ms: i64,
    now_ms: i64,
) -> bool {
    let Some(e) = entry else {
        // Never notified: only firing alerts are news.
        return !firing.is_empty();
    };
    if !firing.iter().all(|f| e.firing.contains(f)) {
        return true;
    }
    if firing.is_empty() {
        // All resolved: log it (even without send_resolved, so the log forgets them) unless
        // the receiver never heard of them firing.
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.iter().all(|r| e.resolved.contains(r)) {
        return true;
    }
    e.at_ms < now_ms - repeat_ms
}

impl Inner {
    async fn run_group(self: Arc<Self>, g: Arc<Group>) {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(g.group_wait) => {}
            () = g.wake.notified() => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
        loop {
            g.flushed.store(true, Ordering::Release);
            let next = Instant::now() + g.group_interval;
            tokio::select! {
                () = self.flush(&g) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
            if self.remove_if_empty(&g) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }

    fn remove_if_empty(&self, g: &Arc<Group>) -> bool {
        let mut groups = lock(&self.groups);
        if !lock(&g.alerts).is_empty() {
            return false;
        }
        if groups.get(&g.key).is_some_and(|x| Arc::ptr_eq(x, g)) {
            groups.remove(&g.key);
        }
        true
    }

    async fn flush(self: &Arc<Self>, g: &Group) {
        let now = self.clock.now_ms();
        let snapshot: Vec<(String, Stored)> = lock(&g.alerts)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut alerts = Vec::with_capacity(snapshot.len());
        let (mut firing, mut resolved) = (BTreeSet::new(), BTreeSet::new());
        for (fp, s) in &snapshot {
            let mut a = s.alert.clone();
            // Not refreshed for resolve_timeout: the evaluator stopped saying it fires.
            let timeout_end = s.received_ms.saturating_add(ms(self.resolve_timeout));
            if a.ends_at_ms.is_none() && timeout_end <= now {
                a.ends_at_ms = Some(timeout_end);
            }
            if a.resolved(now) {
                resolved.insert(fp.clone());
            } else {
                firing.insert(fp.clone());
            }
            alerts.push(a);
        }
        alerts.sort_by(|a, b| a.labels.cmp(&b.labels));
        let Some(integrations) = self.receivers.get(&g.receiver) else {
            return;
        };
        let results = futures_util::future::join_all(
            integrations
                .iter()
                .enumerate()
                .map(|(idx, i)| self.flush_one(g, idx, i, &alerts, &firing, &resolved, now)),
        )
        .await;
        if results.iter().all(|ok| *ok) {
            // Resolved alerts the receivers were told about (or did not want) are done with.
            let mut map = lock(&g.alerts);
            for (fp, s) in &snapshot {
                if resolved.contains(fp) && map.get(fp).is_some_and(|c| c.version == s.version) {
                    map.remove(fp);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn flush_one(
        &self,
        g: &Group,
        idx: usize,
        integration: &Integration,
        alerts: &[Alert],
        firing: &BTreeSet<String>,
        resolved: &BTreeSet<String>,
        now: i64,
    ) -> bool {
        let kind = integration.kind();
        let key = state::key(&g.key, &g.receiver, kind.as_str(), idx);
        let entry = lock(&self.nflog).get(&key).cloned();
        let event = |outcome| {
            let _ = self.events.send(NotifyEvent {
                group_key: g.key.clone(),
                receiver: g.receiver.clone(),
                integration: kind,
                index: idx,
                outcome,
            });
        };
        let send_resolved = integration.send_resolved;
        if !needs_update(
            entry.as_ref(),
            firing,
            resolved,
            send_resolved,
            ms(g.repeat_interval),
            now,
        ) {
            event(Outcome::Unchanged);
            return true;
        }
        let mut record = Entry {
            group_key: g.key.clone(),
            receiver: g.receiver.clone(),
            integration: kind.as_str().to_owned(),
            idx,
            firing: firing.iter().cloned().collect(),
            resolved: resolved.iter().cloned().collect(),
            at_ms: now,
        };
        let to_send: Vec<Alert> = alerts
            .iter()
            .filter(|a| send_resolved || !a.resolved(now))
            .cloned()
            .collect();
        if to_send.is_empty() {
            self.record(record).await;
            event(Outcome::Unchanged);
            return true;
        }
        let n = Notification {
            receiver: g.receiver.clone(),
            group_key: g.key.clone(),
            group_labels: g.labels.clone(),
            alerts: to_send,
            now_ms: now,
            external_url: self.external_url.clone(),
        };
        match self.deliver(integration, &n).await {
            Ok(()) => {
                let firing_n = n.firing();
                let resolved_n = n.alerts.len() - firing_n;
                tracing::info!(
                    receiver = %g.receiver,
                    integration = kind.as_str(),
                    group = %g.key,
                    firing = firing_n,
                    resolved = resolved_n,
                    "notification sent"
                );
                // The time it was logged, as Alertmanager: repeat_interval counts from there.
                record.at_ms = self.clock.now_ms();
                self.record(record).await;
                event(Outcome::Sent {
                    firing: firing_n,
                    resolved: resolved_n,
                });
                true
            }
            Err(e) => {
                self.metrics
                    .of(kind)
                    .dead_lettered
                    .fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    receiver = %g.receiver,
                    integration = kind.as_str(),
                    group = %g.key,
                    error = %e.message,
                    "notification given up on; written to the dead-letter log"
                );
                self.dead_letter(&n, kind, &e).await;
                event(Outcome::DeadLettered);
                false
            }
        }
    }

    /// Tries until delivered, a failure retrying cannot fix, or `retry_for` passed.
    async fn deliver(&self, integration: &Integration, n: &Notification) -> Result<(), SendError> {
        let counters = self.metrics.of(integration.kind());
        let deadline = Instant::now() + self.retry_for;
        let mut delay = Duration::from_secs(1);
        loop {
            counters.attempted.fetch_add(1, Ordering::Relaxed);
            let Err(e) = integration.send(n, &self.http).await else {
                return Ok(());
            };
            counters.failed.fetch_add(1, Ordering::Relaxed);
            let left = deadline.saturating_duration_since(Instant::now());
            if !e.retryable || left.is_zero() {
                return Err(e);
            }
            // Jitter, so groups that failed together do not retry together.
            let wait = delay.mul_f64(0.8 + 0.4 * fastrand::f64()).min(left);
            tracing::warn!(
                receiver = %n.receiver,
                integration = integration.kind().as_str(),
                group = %n.group_key,
                error = %e.message,
                retry_in_ms = wait.as_millis(),
                "notification failed; will retry"
            );
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn record(&self, e: Entry) {
        let Some(path) = &self.state_path else {
            lock(&self.nflog).set(e);
            return;
        };
        let _writer = self.state_writer.lock().await;
        let bytes = {
            let mut log = lock(&self.nflog);
            log.set(e);
            log.prune(self.clock.now_ms(), self.retention_ms);
            log.encode()
        };
        let path = path.clone();
        match tokio::task::spawn_blocking(move || state::write_private(&path, &bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the notification log"),
            Err(e) => tracing::warn!(error = %e, "cannot write the notification log"),
        }
    }

    async fn dead_letter(&self, n: &Notification, kind: IntegrationKind, e: &SendError) {
        let Some(path) = self.dead_letter_path.clone() else {
            return;
        };
        let line = n.dead_letter_line(kind.as_str(), &e.message, self.clock.now_ms());
        match tokio::task::spawn_blocking(move || state::append_line(&path, &line)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot write the dead-letter log"),
            Err(e) => tracing::error!(error = %e, "cannot write the dead-letter log"),
        }
    }
}

#[cfg(test)]
mod tests;
