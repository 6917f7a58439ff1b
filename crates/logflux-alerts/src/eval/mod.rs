//! The evaluator: every rule's windows kept up to date as entries arrive
//! ([`logflux_query::Sliding`]), evaluated on its group's interval, with Prometheus's alert
//! states per series.
//!
//! - Entries are given to [`Evaluator::push`] as the stream delivers them (any order; those
//!   older than every window a later evaluation reads are dropped and counted).
//! - [`Evaluator::tick`] evaluates the groups that are due, at times aligned to their
//!   interval (a group of `interval: 1m` evaluates at each whole minute; evaluations missed
//!   while the caller was away are skipped and counted, as Prometheus does), and returns the
//!   alerts to notify: every firing one (again at each evaluation, as Prometheus re-sends)
//!   and those resolved in the last [`RESOLVED_RETENTION_MS`] (`ends_at_ms` set; kept in the
//!   persisted state, so a resolve is not lost to a restart).
//! - States, as Prometheus's ruler: a series in the result becomes *pending* (`activeAt`),
//!   *firing* once it has been pending for `for`, and is *resolved* at the first evaluation
//!   it is missing from (after `keep_firing_for` if set); a pending series that goes missing
//!   is forgotten without a notification.
//! - While the stream is interrupted ([`Evaluator::set_stream_ok`]), evaluations are
//!   skipped and no state changes: a gap is never read as a drop to zero.
//! - [`Evaluator::state`] is what survives a restart: label sets, `activeAt`, `firedAt`,
//!   last values. No log content.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use logflux_proto::timefmt::format_rfc3339;
use logflux_query::{InstantValue, Labels, LogQuery, Row, Sliding};
use serde::{Deserialize, Serialize};

use crate::rules::{GRANULARITY_MS, Rule, RuleSet, format_value};
use crate::{Alert, LabelSet};

/// Label sets of matching lines kept per rule for `include_lines`, at most: past this, the
/// least recently seen set is forgotten (a label per line, `| json` of a request id, would
/// otherwise hold one per entry).
pub const MAX_LINE_SETS: usize = 1_000;

/// How far after the evaluation clock (the latest `now` given to [`Evaluator::tick`]) an
/// entry may be dated: later ones are ignored and counted. Each second of a series is a
/// bucket until evaluations pass it, so entries from a clock far ahead (or a bad timestamp)
/// would otherwise hold memory without bound; an hour leaves room for skewed clocks.
pub const MAX_AHEAD_MS: i64 = 3_600_000;

/// Options of an evaluator.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where `logflux serve` is reached (`http://127.0.0.1:3100`): alerts' `generator_url`
    /// points at its explore page for the rule's log query.
    pub base_url: String,
}

/// How long a resolved alert is still handed to notification, at every evaluation (as
/// Prometheus re-sends resolved alerts to Alertmanager for 15 minutes): a resolve the
/// notifier had not sent yet when the process stopped is sent after the restart. The
/// notifier sends it once.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The version of [`PersistedState`] this code writes.
pub const STATE_VERSION: u32 = 1;

/// What survives a restart: per rule, its pending and firing alerts' label sets and times.
/// No log content (no lines, no annotations: those are made again at the next evaluation).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedState {
    pub version: u32,
    pub rules: Vec<PersistedRule>,
}

/// A rule's alerts; restored onto the rule of the same group, name and expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedRule {
    pub group: String,
    pub alert: String,
    pub expr: String,
    /// The last evaluation (Unix ms), if any.
    pub last_evaluation_ms: Option<i64>,
    pub alerts: Vec<PersistedAlert>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistedAlert {
    pub labels: LabelSet,
    /// The series' own labels (what templates read).
    pub series: LabelSet,
    pub state: AlertState,
    pub active_at_ms: i64,
    pub fired_at_ms: Option<i64>,
    pub keep_firing_since_ms: Option<i64>,
    /// The last value, as Prometheus prints one (`NaN` survives, unlike a JSON number).
    pub value: String,
    /// When it resolved (state `inactive`), for an alert resolved less than
    /// [`RESOLVED_RETENTION_MS`] ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at_ms: Option<i64>,
}

/// An alert's state, as Prometheus names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

/// A rule's health, as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

/// Counters of the evaluator itself (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Metrics {
    /// Rule evaluations done.
    pub evaluations: u64,
    /// Rule evaluations that failed (query error, too many series, over the group's limit).
    pub failures: u64,
    /// Group evaluations skipped: missed while the caller did not tick, or while the stream
    /// was interrupted.
    pub missed_evaluations: u64,
    /// Entries that came after every evaluation that could read them (summed over rules).
    pub entries_dropped_late: u64,
    /// Entries dated more than [`MAX_AHEAD_MS`] after the evaluation clock, ignored.
    pub entries_dropped_future: u64,
    /// Entries pushed.
    pub entries: u64,
    /// The newest entry's timestamp (Unix ns), for the lag behind the stream.
    pub newest_entry_ns: Option<i64>,
}

#[derive(Debug, Clone)]
struct Active {
    labels: LabelSet,
    series: LabelSet,
    annotations: BTreeMap<String, String>,
    state: AlertState,
    active_at_ms: i64,
    fired_at_ms: Option<i64>,
    keep_firing_since_ms: Option<i64>,
    value: f64,
}

#[derive(Debug)]
struct RuleState {
    rule: Rule,
    sliding: Result<Sliding, String>,
    /// The log queries of the expression (for `include_lines`).
    logs: Vec<LogQuery>,
    active: BTreeMap<LabelSet, Active>,
    /// Alerts resolved less than [`RESOLVED_RETENTION_MS`] ago, with when they resolved.
    resolved: BTreeMap<LabelSet, (Active, i64)>,
    /// A push error since the last evaluation: the next evaluation fails with it, as the
    /// instant query over those entries would.
    push_error: Option<String>,
    health: Health,
    last_error: Option<String>,
    last_evaluation_ms: Option<i64>,
    evaluation_secs: f64,
    /// Matching lines by their label set (`include_lines` only), with the set's last use.
    lines: HashMap<Labels, (u64, VecDeque<(i64, String)>)>,
    lines_clock: u64,
    generator_url: String,
    /// The widest window (range + offset) of the query, ns.
    window_ns: i64,
}

#[derive(Debug)]
struct GroupState {
    name: String,
    file: String,
    interval_ms: i64,
    limit: usize,
    /// When the group is next due (Unix ms); 0 before the first evaluation (due at once).
    next_due_ms: i64,
    last_evaluation_ms: Option<i64>,
    /// The last aligned time evaluated or skipped (stream down).
    last_slot_ms: Option<i64>,
    evaluation_secs: f64,
    rules: Vec<RuleState>,
}

/// Evaluates a [`RuleSet`] over the stream (see the module's documentation).
#[derive(Debug)]
pub struct Evaluator {
    groups: Vec<GroupState>,
    stream_ok: bool,
    /// Why the stream is interrupted, since when (Unix ms of the first skipped tick).
    interrupted_since_ms: Option<i64>,
    /// The latest `now` given to `tick`.
    clock_ms: Option<i64>,
    metrics: Metrics,
    /// Late entries counted by windows since forgotten ([`Evaluator::forget_entries`]).
    dropped_before: u64,
}

impl Evaluator {
    /// An evaluator for `rules`, with the alerts of `state` restored onto the rules of the
    /// same group, name and expression (a pending alert keeps its `activeAt`, so a restart
    /// in the middle of `for` fires on time).
    pub fn new(rules: RuleSet, state: Option<PersistedState>, options: &Options) -> Evaluator {
        let mut restored: HashMap<(String, String, String), PersistedRule> = state
            .map(|s| s.rules)
            .unwrap_or_default()
            .into_iter()
            .map(|r| ((r.group.clone(), r.alert.clone(), r.expr.clone()), r))
            .collect();
        let groups = rules
            .groups
            .into_iter()
            .map(|g| {
                let rules = g
                    .rules
                    .into_iter()
                    .map(|rule| {
                        let key = (g.name.clone(), rule.name.clone(), rule.expr.clone());
                        let saved = restored.remove(&key);
                        RuleState::new(rule, saved, options)
                    })
                    .collect();
                GroupState {
                    name: g.name,
                    file: g.file.display().to_string(),
                    interval_ms: g.interval_ms,
                    limit: g.limit,
                    next_due_ms: 0,
                    last_evaluation_ms: None,
                    last_slot_ms: None,
                    evaluation_secs: 0.0,
                    rules,
                }
            })
            .collect();
        Evaluator {
            groups,
            stream_ok: true,
            interrupted_since_ms: None,
            clock_ms: None,
            metrics: Metrics::default(),
            dropped_before: 0,
        }
    }

    /// Feeds one entry to every rule (each rule's log queries decide whether it counts).
    pub fn push(&mut self, row: &Row<'_>) {
        let ts = row.entry.timestamp_ns;
        self.metrics.entries += 1;
        if let Some(c) = self.clock_ms
            && ts > c.saturating_add(MAX_AHEAD_MS).saturating_mul(1_000_000)
        {
            self.metrics.entries_dropped_future += 1;
            return;
        }
        self.metrics.newest_entry_ns = Some(self.metrics.newest_entry_ns.map_or(ts, |n| n.max(ts)));
        for g in &mut self.groups {
            for r in &mut g.rules {
                r.push(row);
            }
        }
    }

    /// Tells whether the stream is flowing. While it is not, [`Evaluator::tick`] evaluates
    /// nothing and changes no state; the rules' health says why. Entries missed during the
    /// gap should be pushed (a backfill) before the next tick after it comes back.
    pub fn set_stream_ok(&mut self, ok: bool) {
        self.stream_ok = ok;
        if ok {
            self.interrupted_since_ms = None;
        }
    }

    /// How far back the rules read (the widest range plus offset, ms): at start, and after
    /// the stream comes back, entries from that long before the next evaluation should be
    /// pushed (the backfill) so no window starts empty.
    pub fn lookback_ms(&self) -> i64 {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            // Whole seconds (checked with the rule).
            .map(|r| r.window_ns / 1_000_000)
            .max()
            .unwrap_or(0)
    }

    /// When [`Evaluator::tick`] next has something to do (Unix ms; `None` without rules).
    pub fn next_due_ms(&self) -> Option<i64> {
        self.groups.iter().map(|g| g.next_due_ms).min()
    }

    /// Evaluates every group that is due at `now_ms`, at the last time aligned to its
    /// interval at or before `now_ms`; returns the alerts to notify.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Alert> {
        let mut out = Vec::new();
        self.clock_ms = Some(self.clock_ms.map_or(now_ms, |c| c.max(now_ms)));
        let stream_ok = self.stream_ok;
        let since = if stream_ok {
            0
        } else {
            *self.interrupted_since_ms.get_or_insert(now_ms)
        };
        for g in &mut self.groups {
            if g.next_due_ms > now_ms {
                continue;
            }
            let at = align(now_ms, g.interval_ms);
            if g.last_slot_ms.is_some_and(|l| at <= l) {
                // The clock went back: wait for the next aligned time after the last one.
                g.next_due_ms = g.last_slot_ms.unwrap_or(at) + g.interval_ms;
                continue;
            }
            if let Some(last) = g.last_slot_ms {
                let missed = (at - last) / g.interval_ms - 1;
                self.metrics.missed_evaluations += missed.max(0) as u64;
            }
            g.last_slot_ms = Some(at);
            g.next_due_ms = at + g.interval_ms;
            if !stream_ok {
                self.metrics.missed_evaluations += 1;
                for r in &mut g.rules {
                    r.health = Health::Err;
                    r.last_error = Some(format!(
                        "the log stream is interrupted: evaluations paused since {}, alert states held",
                        format_rfc3339(since.saturating_mul(1_000_000))
                    ));
                }
                continue;
            }
            let started = Instant::now();
            for r in &mut g.rules {
                self.metrics.evaluations += 1;
                match r.eval(at, g.limit, &mut out) {
                    Ok(()) => {}
                    Err(()) => self.metrics.failures += 1,
                }
            }
            g.evaluation_secs = started.elapsed().as_secs_f64();
            g.last_evaluation_ms = Some(at);
        }
        out
    }

    /// The evaluator's counters.
    pub fn metrics(&self) -> Metrics {
        let mut m = self.metrics;
        m.entries_dropped_late = self.dropped_before + self.dropped_now();
        m
    }

    fn dropped_now(&self) -> u64 {
        self.groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| r.sliding.as_ref().ok())
            .map(Sliding::dropped)
            .sum()
    }

    /// Forgets every entry pushed (the windows and the lines kept for `include_lines`),
    /// keeping the alerts' states: for a caller that must feed the entries again from an
    /// earlier point (its stream failed and restarts from the look-back), which would
    /// otherwise count the ones still in a window twice.
    pub fn forget_entries(&mut self) {
        self.dropped_before += self.dropped_now();
        for r in self.groups.iter_mut().flat_map(|g| g.rules.iter_mut()) {
            r.sliding = r
                .rule
                .query
                .sliding(GRANULARITY_MS * 1_000_000)
                .map_err(|e| e.to_string());
            r.lines.clear();
            r.push_error = None;
        }
    }

    /// What to persist: every rule's pending and firing alerts.
    pub fn state(&self) -> PersistedState {
        PersistedState {
            version: STATE_VERSION,
            rules: self
                .groups
                .iter()
                .flat_map(|g| g.rules.iter().map(move |r| (g, r)))
                .map(|(g, r)| PersistedRule {
                    group: g.name.clone(),
                    alert: r.rule.name.clone(),
                    expr: r.rule.expr.clone(),
                    last_evaluation_ms: r.last_evaluation_ms,
                    alerts: r
                        .active
                        .values()
                        .map(|a| PersistedAlert {
                            labels: a.labels.clone(),
                            series: a.series.clone(),
                            state: a.state,
                            active_at_ms: a.active_at_ms,
                            fired_at_ms: a.fired_at_ms,
                            keep_firing_since_ms: a.keep_firing_since_ms,
                            value: format_value(a.value),
                            resolved_at_ms: None,
                        })
                        .chain(r.resolved.values().map(|(a, at)| PersistedAlert {
                            labels: a.labels.clone(),
                            series: a.series.clone(),
                            state: AlertState::Inactive,
                            active_at_ms: a.active_at_ms,
                            fired_at_ms: a.fired_at_ms,
                            keep_firing_since_ms: None,
                            value: format_value(a.value),
                            resolved_at_ms: Some(*at),
                        }))
                        .collect(),
                })
                .collect(),
        }
    }

    /// The groups and rules as Prometheus's `GET /api/v1/rules` lists them (`data`).
    pub fn rules_status(&self) -> RulesStatus {
        RulesStatus {
            groups: self
                .groups
                .iter()
                .map(|g| GroupStatus {
                    name: g.name.clone(),
                    file: g.file.clone(),
                    interval: g.interval_ms as f64 / 1e3,
                    limit: g.limit,
                    last_evaluation: rfc3339_ms(g.last_evaluation_ms),
                    evaluation_time: g.evaluation_secs,
                    rules: g.rules.iter().map(RuleState::status).collect(),
                })
                .collect(),
        }
    }

    /// The pending and firing alerts as Prometheus's `GET /api/v1/alerts` lists them
    /// (`data`).
    pub fn active_alerts(&self) -> AlertsStatus {
        AlertsStatus {
            alerts: self
                .groups
                .iter()
                .flat_map(|g| &g.rules)
                .flat_map(|r| r.active.values())
                .filter(|a| a.state != AlertState::Inactive)
                .map(alert_status)
                .collect(),
        }
    }
}

/// The last multiple of `interval` at or before `t`.
fn align(t: i64, interval: i64) -> i64 {
    t.div_euclid(interval) * interval
}

fn rfc3339_ms(ms: Option<i64>) -> String {
    // Prometheus's zero time for a rule never evaluated.
    ms.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |ms| format_rfc3339(ms.saturating_mul(1_000_000)),
    )
}

/// A value as Prometheus's API prints alert values (Go's `FormatFloat(v, 'e', -1, 64)`):
/// `1e+01`, `2.5e-01`, `NaN`, `+Inf`.
pub fn format_value_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let s = format!("{v:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// `data` of `GET /api/v1/rules`.
#[derive(Debug, Clone, Serialize)]
pub struct RulesStatus {
    pub groups: Vec<GroupStatus>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupStatus {
    pub name: String,
    pub file: String,
    /// Seconds.
    pub interval: f64,
    pub limit: usize,
    pub last_evaluation: String,
    /// Seconds.
    pub evaluation_time: f64,
    pub rules: Vec<RuleStatus>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleStatus {
    /// The most severe state of its alerts.
    pub state: AlertState,
    pub name: String,
    pub query: String,
    /// `for`, seconds.
    pub duration: f64,
    /// Seconds.
    pub keep_firing_for: f64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub alerts: Vec<AlertStatus>,
    pub health: Health,
    /// Empty when none, as Prometheus omits it.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub last_evaluation: String,
    /// Seconds.
    pub evaluation_time: f64,
}

/// `data` of `GET /api/v1/alerts`.
#[derive(Debug, Clone, Serialize)]
pub struct AlertsStatus {
    pub alerts: Vec<AlertStatus>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    pub labels: LabelSet,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub active_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_firing_since: Option<String>,
    pub value: String,
}

fn alert_status(a: &Active) -> AlertStatus {
    AlertStatus {
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        state: a.state,
        active_at: rfc3339_ms(Some(a.active_at_ms)),
        keep_firing_since: a.keep_firing_since_ms.map(|t| rfc3339_ms(Some(t))),
        value: format_value_e(a.value),
    }
}

impl RuleState {
    fn new(rule: Rule, saved: Option<PersistedRule>, options: &Options) -> RuleState {
        let sliding = rule
            .query
            .sliding(GRANULARITY_MS * 1_000_000)
            .map_err(|e| e.to_string());
        let window_ns = rule.query.range_ns();
        let since = logflux_query::format_duration(window_ns);
        let q: String = form_urlencoded::byte_serialize(rule.log_query.as_bytes()).collect();
        let generator_url = format!(
            "{}/ui/#/explore?q={q}&since={since}",
            options.base_url.trim_end_matches('/')
        );
        let logs = if rule.include_lines > 0 {
            rule.query.log_queries().into_iter().cloned().collect()
        } else {
            Vec::new()
        };
        let mut active = BTreeMap::new();
        let mut resolved = BTreeMap::new();
        let mut last_evaluation_ms = None;
        if let Some(s) = saved {
            last_evaluation_ms = s.last_evaluation_ms;
            for a in s.alerts {
                let value = a.value.parse().unwrap_or(f64::NAN);
                let annotations = render_all(&rule.annotations, &a.series, value);
                let restored = Active {
                    labels: a.labels.clone(),
                    series: a.series,
                    annotations,
                    state: a.state,
                    active_at_ms: a.active_at_ms,
                    fired_at_ms: a.fired_at_ms,
                    keep_firing_since_ms: a.keep_firing_since_ms,
                    value,
                };
                match (a.state, a.resolved_at_ms) {
                    (AlertState::Inactive, Some(at)) => {
                        resolved.insert(a.labels, (restored, at));
                    }
                    (AlertState::Inactive, None) => {}
                    _ => {
                        active.insert(a.labels, restored);
                    }
                }
            }
        }
        let health = if sliding.is_ok() {
            Health::Unknown
        } else {
            Health::Err
        };
        let last_error = sliding.as_ref().err().cloned();
        RuleState {
            rule,
            sliding,
            logs,
            active,
            resolved,
            push_error: None,
            health,
            last_error,
            last_evaluation_ms,
            evaluation_secs: 0.0,
            lines: HashMap::new(),
            lines_clock: 0,
            generator_url,
            window_ns,
        }
    }

    fn push(&mut self, row: &Row<'_>) {
        let Ok(s) = &mut self.sliding else { return };
        if let Err(e) = s.push(row)
            && self.push_error.is_none()
        {
            self.push_error = Some(e.to_string());
        }
        if self.rule.include_lines == 0 {
            return;
        }
        for q in &self.logs {
            let Some(line) = q.eval(row) else { continue };
            self.lines_clock += 1;
            let clock = self.lines_clock;
            let key = line.all_labels();
            if !self.lines.contains_key(&key) && self.lines.len() >= MAX_LINE_SETS {
                // Forget the set seen least recently.
                if let Some(old) = self
                    .lines
                    .iter()
                    .min_by_key(|(_, (c, _))| *c)
                    .map(|(k, _)| k.clone())
                {
                    self.lines.remove(&old);
                }
            }
            let (c, q) = self.lines.entry(key).or_default();
            *c = clock;
            // Kept in time order: an entry older than the newest goes to its place.
            let at = q.partition_point(|(t, _)| *t <= line.ts_ns);
            q.insert(at, (line.ts_ns, line.line));
            while q.len() > self.rule.include_lines {
                q.pop_front();
            }
        }
    }

    /// The last `include_lines` matching lines of a series in the window read at `at_ns`:
    /// lines whose labels include the series' labels.
    fn lines_for(&self, series: &LabelSet, at_ns: i64) -> Vec<String> {
        let n = self.rule.include_lines;
        if n == 0 {
            return Vec::new();
        }
        let lo = at_ns.saturating_sub(self.window_ns);
        let mut all: Vec<&(i64, String)> = self
            .lines
            .iter()
            .filter(|(labels, _)| series.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .flat_map(|(_, (_, q))| q.iter())
            .filter(|(t, _)| *t > lo && *t <= at_ns)
            .collect();
        all.sort_by_key(|(t, _)| *t);
        let skip = all.len().saturating_sub(n);
        all.into_iter().skip(skip).map(|(_, l)| l.clone()).collect()
    }

    /// One evaluation at `at_ms`: the state machine, and the alerts to notify in `out`.
    /// `Err` when the evaluation failed (the state is then left as it was).
    fn eval(&mut self, at_ms: i64, limit: usize, out: &mut Vec<Alert>) -> Result<(), ()> {
        let started = Instant::now();
        let at_ns = at_ms.saturating_mul(1_000_000);
        let result = self.query(at_ns);
        self.evaluation_secs = started.elapsed().as_secs_f64();
        self.last_evaluation_ms = Some(at_ms);
        let vector = match result {
            Ok(v) => v,
            Err(e) => {
                self.health = Health::Err;
                self.last_error = Some(e);
                return Err(());
            }
        };
        // Each sample's alert: its labels (series', rule's templated, alertname).
        let mut seen: BTreeMap<LabelSet, (LabelSet, f64)> = BTreeMap::new();
        for (series, value) in vector {
            let mut labels = series.clone();
            for (k, t) in &self.rule.labels {
                labels.insert(k.clone(), t.render(&series, value));
            }
            labels.insert("alertname".to_owned(), self.rule.name.clone());
            if seen.insert(labels, (series, value)).is_some() {
                self.health = Health::Err;
                self.last_error = Some("vector contains metrics with the same labelset after applying alert labels: the rule's labels hide a label that tells series apart".to_owned());
                return Err(());
            }
        }
        // Prometheus counts the alerts kept (pending and firing) against the limit.
        let mut next = BTreeMap::new();
        let mut resolved = Vec::new();
        for (labels, (series, value)) in &seen {
            let annotations = render_all(&self.rule.annotations, series, *value);
            let a = match self.active.get(labels) {
                Some(a) if a.state != AlertState::Inactive => Active {
                    series: series.clone(),
                    annotations,
                    value: *value,
                    keep_firing_since_ms: None,
                    ..a.clone()
                },
                _ => Active {
                    labels: labels.clone(),
                    series: series.clone(),
                    annotations,
                    state: AlertState::Pending,
                    active_at_ms: at_ms,
                    fired_at_ms: None,
                    keep_firing_since_ms: None,
                    value: *value,
                },
            };
            next.insert(labels.clone(), a);
        }
        for (labels, a) in &self.active {
            if seen.contains_key(labels) {
                continue;
            }
            // Missing from the result: a firing alert may be kept firing for
            // keep_firing_for; else a firing one resolves and a pending one is forgotten.
            if a.state == AlertState::Firing && self.rule.keep_firing_for_ms > 0 {
                let since = a.keep_firing_since_ms.unwrap_or(at_ms);
                if at_ms - since < self.rule.keep_firing_for_ms {
                    next.insert(
                        labels.clone(),
                        Active {
                            keep_firing_since_ms: Some(since),
                            ..a.clone()
                        },
                    );
                    continue;
                }
            }
            if a.state == AlertState::Firing {
                resolved.push(a.clone());
            }
        }
        for a in next.values_mut() {
            if a.state == AlertState::Pending && at_ms - a.active_at_ms >= self.rule.for_ms {
                a.state = AlertState::Firing;
                a.fired_at_ms = Some(at_ms);
            }
        }
        if limit > 0 && next.len() > limit {
            // Prometheus's rule: over the limit, the rule fails and forgets its alerts.
            let n = next.len();
            self.active.clear();
            self.health = Health::Err;
            self.last_error = Some(format!(
                "exceeded the group's limit of {limit} alerts with {n} alerts: raise `limit` or aggregate further"
            ));
            return Err(());
        }
        // Resolved alerts are handed on for a while (RESOLVED_RETENTION_MS); one that comes
        // back is a new alert, pending again.
        for a in resolved {
            self.resolved.insert(a.labels.clone(), (a, at_ms));
        }
        self.resolved.retain(|labels, (_, at)| {
            at_ms - *at < RESOLVED_RETENTION_MS && !next.contains_key(labels)
        });
        self.active = next;
        self.health = Health::Ok;
        // Lines no window reads any more go, with their label sets.
        let lo = at_ns.saturating_sub(self.window_ns);
        self.lines.retain(|_, (_, q)| {
            while q.front().is_some_and(|(t, _)| *t <= lo) {
                q.pop_front();
            }
            !q.is_empty()
        });
        self.last_error = None;
        for a in self.active.values() {
            if a.state == AlertState::Firing {
                out.push(self.alert(a, None, at_ns));
            }
        }
        for (a, at) in self.resolved.values() {
            out.push(self.alert(a, Some(*at), at_ns));
        }
        Ok(())
    }

    fn query(&mut self, at_ns: i64) -> Result<Vec<(LabelSet, f64)>, String> {
        let s = self.sliding.as_mut().map_err(|e| e.clone())?;
        // Evaluated even after a push error, so the windows move on and forget.
        let v = s.eval_at(at_ns);
        if let Some(e) = self.push_error.take() {
            return Err(e);
        }
        match v.map_err(|e| e.to_string())? {
            InstantValue::Vector(v) => Ok(v),
            InstantValue::Scalar(_) => {
                Err("the expression gives a scalar, not a vector".to_owned())
            }
        }
    }

    fn alert(&self, a: &Active, ends_at_ms: Option<i64>, at_ns: i64) -> Alert {
        Alert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at_ms: a.fired_at_ms.unwrap_or(a.active_at_ms),
            ends_at_ms,
            value: a.value,
            generator_url: self.generator_url.clone(),
            lines: self.lines_for(&a.series, at_ns),
        }
    }

    fn status(&self) -> RuleStatus {
        let plain = |m: &BTreeMap<String, crate::rules::Template>| {
            m.iter()
                .map(|(k, t)| (k.clone(), t.source().to_owned()))
                .collect()
        };
        RuleStatus {
            state: self
                .active
                .values()
                .map(|a| a.state)
                .max()
                .unwrap_or(AlertState::Inactive),
            name: self.rule.name.clone(),
            query: self.rule.expr.clone(),
            duration: self.rule.for_ms as f64 / 1e3,
            keep_firing_for: self.rule.keep_firing_for_ms as f64 / 1e3,
            labels: plain(&self.rule.labels),
            annotations: plain(&self.rule.annotations),
            alerts: self
                .active
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .map(alert_status)
                .collect(),
            health: self.health,
            last_error: self.last_error.clone().unwrap_or_default(),
            kind: "alerting",
            last_evaluation: rfc3339_ms(self.last_evaluation_ms),
            evaluation_time: self.evaluation_secs,
        }
    }
}

fn render_all(
    templates: &BTreeMap<String, crate::rules::Template>,
    series: &LabelSet,
    value: f64,
) -> BTreeMap<String, String> {
    templates
        .iter()
        .map(|(k, t)| (k.clone(), t.render(series, value)))
        .collect()
}

#[cfg(test)]
mod tests;
