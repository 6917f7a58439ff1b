//! Alerts evaluated here, where the keys are (docs/alerts.md): the rules of a directory run
//! over every entry of the live stream ([`super::feed`]), on their groups' intervals, and
//! their alerts go to the receivers. Run by `logflux alerts run` and, when rules are
//! configured, inside `logflux serve`, which then answers `/api/v1/rules`, `/api/v1/alerts`
//! (and Loki's `/prometheus/api/v1/…` for Grafana) and `/metrics`.
//!
//! What is kept, in the alerts' state directory (mode 0700): `alerts-state.json` (the
//! evaluator's pending and firing alerts: label sets, times, values — no log line, though a
//! label a rule extracts from lines with `| json` or `| logfmt` carries what it extracted),
//! `notifications.json` (what was sent to which receiver) and `dead-letter.ndjson`
//! (notifications given up on), each mode 0600.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use logflux_alerts::eval::{Evaluator, Options, PersistedState};
use logflux_alerts::notify::{Notifier, NotifierOptions, ReceiversConfig};
use logflux_alerts::rules;

use super::Service;

/// The state file's name in the state directory.
const STATE_FILE: &str = "alerts-state.json";
/// How long to wait before feeding again after a feed ended.
const FEED_RETRY: Duration = Duration::from_secs(30);
/// How long evaluations may stay paused before a warning is logged.
const PAUSE_WARNING: Duration = Duration::from_secs(120);

/// A task stopped when this is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What alerting runs with: where the rules and receivers are, where its state goes.
#[derive(Debug, Clone)]
pub(crate) struct Setup {
    pub(crate) rules: PathBuf,
    pub(crate) receivers: Option<PathBuf>,
    pub(crate) state_dir: PathBuf,
    /// Where the user's `logflux serve` answers (alerts link to its explore page).
    pub(crate) base_url: String,
}

/// A running evaluator and its notifier.
pub(crate) struct Alerting {
    /// One process evaluates a state directory's alerts (two would notify twice).
    _lock: logflux_config::dir_lock::DirLock,
    evaluator: Mutex<Evaluator>,
    notifier: Option<Notifier>,
    /// Whether what the feed brings is the present (see [`super::feed`]).
    current: Arc<AtomicBool>,
    state_file: PathBuf,
    /// The state as last written, so an unchanged one is not written again.
    written: Mutex<Vec<u8>>,
    /// Rule files that could not be loaded (their problems), and whether the feed gave up.
    problems: Vec<String>,
    rules_count: usize,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting")
            .field("state_file", &self.state_file)
            .field("rules", &self.rules_count)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The alerts' state directory by default: `alerts/` in the client's config directory.
pub(crate) fn default_state_dir(settings: &crate::config::Settings) -> anyhow::Result<PathBuf> {
    crate::uistore::config_dir(settings)
        .map(|d| d.join("alerts"))
        .context("no place for the alerts' state: give --alerts-state")
}

impl Alerting {
    /// Loads the rules (a file with errors is reported on stderr and left out; the others
    /// run), the receivers (an error there is fatal: alerts nobody receives are worse than a
    /// refusal to start) and the saved state. Must be called inside a Tokio runtime.
    pub(crate) fn load(setup: &Setup) -> anyhow::Result<Alerting> {
        let (set, problems) = rules::load_dir(&setup.rules);
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        for p in &problems {
            eprintln!("logflux alerts: {p}");
        }
        for w in &set.warnings {
            eprintln!("logflux alerts: {w}");
        }
        let rules_count = set.groups.iter().map(|g| g.rules.len()).sum();
        crate::private_files::private_dir(&setup.state_dir, true)?;
        let lock = logflux_config::dir_lock::lock_dir(
            &setup.state_dir,
            "alerts.lock",
            &format!("the alerts' state directory {}", setup.state_dir.display()),
            "another logflux serve or logflux alerts run evaluates these alerts (two would notify \
             twice): stop it, or give this one --alerts-state DIR",
        )?;
        let state_file = setup.state_dir.join(STATE_FILE);
        let state = read_state(&state_file)?;
        let evaluator = Evaluator::new(
            set,
            state,
            &Options {
                base_url: setup.base_url.clone(),
            },
        );
        let notifier = match &setup.receivers {
            None => None,
            Some(path) => {
                let loaded = ReceiversConfig::load(path)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("the receivers file {}", path.display()))?;
                for w in &loaded.warnings {
                    eprintln!("logflux alerts: {}: {w}", path.display());
                }
                Some(Notifier::new(
                    &loaded.config,
                    NotifierOptions {
                        state_path: Some(setup.state_dir.join("notifications.json")),
                        dead_letter_path: Some(setup.state_dir.join("dead-letter.ndjson")),
                        external_url: setup.base_url.clone(),
                    },
                )?)
            }
        };
        Ok(Alerting {
            _lock: lock,
            evaluator: Mutex::new(evaluator),
            notifier,
            current: Arc::new(AtomicBool::new(false)),
            state_file,
            written: Mutex::new(Vec::new()),
            problems,
            rules_count,
        })
    }

    /// How many rules run.
    pub(crate) fn rules(&self) -> usize {
        self.rules_count
    }

    /// Rule files left out, each with its problem.
    pub(crate) fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Runs until the process ends (or this future is dropped, which stops the feed too):
    /// the feed into the evaluator, and the evaluations.
    pub(crate) async fn run(self: Arc<Self>, s: Arc<Service>) -> Infallible {
        let _feeder = AbortOnDrop(tokio::spawn(self.clone().feed(s)));
        // Since when evaluations are paused, and whether that was said.
        let mut paused: Option<(i64, bool)> = None;
        loop {
            let now = now_ms();
            let due = lock(&self.evaluator).next_due_ms();
            let Some(due) = due else {
                // No rules: nothing is ever due.
                return std::future::pending().await;
            };
            if due > now {
                tokio::time::sleep(Duration::from_millis((due - now) as u64)).await;
            }
            let now = now_ms();
            // A stream that stays away is said once, loudly (the rules' health says it too).
            paused = match paused {
                _ if self.current.load(Ordering::Acquire) => None,
                None => Some((now, false)),
                Some((since, false)) if now - since >= PAUSE_WARNING.as_millis() as i64 => {
                    tracing::warn!(
                        paused_s = (now - since) / 1000,
                        "alerts: evaluations paused: the live stream is away or catching up"
                    );
                    Some((since, true))
                }
                p => p,
            };
            self.evaluate(now).await;
        }
    }

    /// One tick: evaluate what is due, keep the state, hand the alerts to the notifier.
    async fn evaluate(&self, now: i64) {
        let (alerts, state) = {
            let mut ev = lock(&self.evaluator);
            ev.set_stream_ok(self.current.load(Ordering::Acquire));
            let alerts = ev.tick(now);
            (alerts, ev.state())
        };
        if let Err(e) = self.keep(&state).await {
            tracing::error!(error = %format!("{e:#}"), "alerts: the state could not be written");
        }
        if let Some(n) = &self.notifier
            && !alerts.is_empty()
        {
            n.send(alerts);
        }
    }

    /// Writes the state when it changed (off the async threads: it syncs to disk).
    async fn keep(&self, state: &PersistedState) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(state)?;
        bytes.push(b'\n');
        if *lock(&self.written) == bytes {
            return Ok(());
        }
        let path = self.state_file.clone();
        let kept = bytes.clone();
        tokio::task::spawn_blocking(move || crate::private_files::write_atomic(&path, &kept))
            .await??;
        *lock(&self.written) = bytes;
        Ok(())
    }

    /// Feeds every entry into the evaluator for ever: from the rules' look-back before now,
    /// then the live stream. Should a feed end (an error, a panic), evaluations pause, the
    /// entries fed so far are forgotten (the next feed brings them again) and a new feed
    /// starts.
    async fn feed(self: Arc<Self>, s: Arc<Service>) {
        let mut first = true;
        loop {
            if !first {
                lock(&self.evaluator).forget_entries();
            }
            first = false;
            let attempt = tokio::spawn(self.clone().feed_once(s.clone()));
            let why = match attempt.await {
                Ok(e) => e.message,
                Err(e) => format!("the feed stopped: {e}"),
            };
            self.current.store(false, Ordering::Release);
            tracing::error!(
                error = %why,
                retry_in_s = FEED_RETRY.as_secs(),
                "alerts: the live stream failed; evaluations are paused"
            );
            tokio::time::sleep(FEED_RETRY).await;
        }
    }

    async fn feed_once(self: Arc<Self>, s: Arc<Service>) -> super::http::LokiError {
        let lookback = lock(&self.evaluator).lookback_ms();
        let start = (now_ms() - lookback).saturating_mul(1_000_000);
        let ev = &self.evaluator;
        let mut sink = |rows: &[logflux_query::Row<'_>]| {
            let mut ev = lock(ev);
            for r in rows {
                ev.push(r);
            }
        };
        match super::feed::feed(&s, start, self.current.clone(), &mut sink).await {
            Err(e) => e,
        }
    }

    /// `data` of `GET /api/v1/rules`; with `problems` (ours: the rule files left out, each
    /// with what is wrong) when there are any.
    pub(crate) fn rules_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(lock(&self.evaluator).rules_status()).unwrap_or_default();
        if !self.problems.is_empty()
            && let Some(o) = v.as_object_mut()
        {
            o.insert("problems".into(), self.problems.clone().into());
        }
        v
    }

    /// `data` of `GET /api/v1/alerts`.
    pub(crate) fn alerts_json(&self) -> serde_json::Value {
        serde_json::to_value(lock(&self.evaluator).active_alerts()).unwrap_or_default()
    }

    /// The evaluator's and the notifier's metrics, in Prometheus's text format.
    pub(crate) fn metrics_text(&self, out: &mut String) {
        let (m, status) = {
            let ev = lock(&self.evaluator);
            (ev.metrics(), ev.active_alerts())
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            out,
            "logflux_alerts_rules",
            "Alert rules evaluated.",
            self.rules_count as f64,
        );
        gauge(
            out,
            "logflux_alerts_rule_files_failed",
            "Rule files left out for their errors.",
            self.problems.len() as f64,
        );
        counter(
            out,
            "logflux_alerts_evaluations_total",
            "Rule evaluations.",
            m.evaluations,
        );
        counter(
            out,
            "logflux_alerts_evaluation_failures_total",
            "Rule evaluations that failed.",
            m.failures,
        );
        counter(
            out,
            "logflux_alerts_evaluations_missed_total",
            "Group evaluations skipped (late, or the stream interrupted).",
            m.missed_evaluations,
        );
        counter(
            out,
            "logflux_alerts_entries_total",
            "Entries fed to the evaluator.",
            m.entries,
        );
        let _ = writeln!(
            out,
            "# HELP logflux_alerts_entries_dropped_total Entries no evaluation could count.\n\
             # TYPE logflux_alerts_entries_dropped_total counter\n\
             logflux_alerts_entries_dropped_total{{reason=\"late\"}} {}\n\
             logflux_alerts_entries_dropped_total{{reason=\"future\"}} {}",
            m.entries_dropped_late, m.entries_dropped_future
        );
        gauge(
            out,
            "logflux_alerts_stream_current",
            "1 while the evaluator sees the present of the stream, 0 while it is interrupted or catching up.",
            if self.current.load(Ordering::Acquire) {
                1.0
            } else {
                0.0
            },
        );
        if let Some(newest) = m.newest_entry_ns {
            let lag = (now_ms() as f64 / 1e3 - newest as f64 / 1e9).max(0.0);
            gauge(
                out,
                "logflux_alerts_stream_lag_seconds",
                "Now minus the newest entry's time.",
                lag,
            );
        }
        let (mut pending, mut firing) = (0u64, 0u64);
        for a in &status.alerts {
            match a.state {
                logflux_alerts::eval::AlertState::Pending => pending += 1,
                logflux_alerts::eval::AlertState::Firing => firing += 1,
                logflux_alerts::eval::AlertState::Inactive => {}
            }
        }
        let _ = writeln!(
            out,
            "# HELP logflux_alerts_active Alerts pending or firing.\n# TYPE logflux_alerts_active gauge\n\
             logflux_alerts_active{{state=\"pending\"}} {pending}\nlogflux_alerts_active{{state=\"firing\"}} {firing}"
        );
        if let Some(n) = &self.notifier {
            let snap = n.metrics().snapshot();
            for (name, help, get) in [
                (
                    "logflux_alerts_notifications_total",
                    "Notification attempts (retries included).",
                    0,
                ),
                (
                    "logflux_alerts_notification_failures_total",
                    "Notification attempts that failed.",
                    1,
                ),
                (
                    "logflux_alerts_notifications_dead_lettered_total",
                    "Notifications given up on (written to the dead-letter log).",
                    2,
                ),
            ] {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (integration, c) in &snap {
                    let v = match get {
                        0 => c.attempted,
                        1 => c.failed,
                        _ => c.dead_lettered,
                    };
                    let _ = writeln!(out, "{name}{{integration=\"{integration}\"}} {v}");
                }
            }
        }
    }
}

/// The saved state, if any; a damaged one is moved aside (alerting starts afresh rather than
/// not at all).
fn read_state(path: &Path) -> anyhow::Result<Option<PersistedState>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    match serde_json::from_slice::<PersistedState>(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(".damaged");
            let _ = std::fs::rename(path, &aside);
            eprintln!(
                "logflux alerts: {} could not be read ({e}); moved aside, starting without it",
                path.display()
            );
            Ok(None)
        }
    }
}

fn now_ms() -> i64 {
    logflux_proto::timefmt::now_ns() / 1_000_000
}
