//! Alerts evaluated on the user's machine, where the keys are (issue 15, `docs/alerts.md`).
//!
//! The server cannot read logs, so it cannot evaluate alerts: `logflux alerts run` and
//! `logflux serve` do, over the decrypted live stream.
//!
//! - [`rules`]: rule files in the Loki ruler format (`groups: - name, interval, rules: - alert,
//!   expr, for, labels, annotations`), checked with every problem's file, group, rule and
//!   position.
//! - [`eval`]: each rule's windows kept up to date as entries arrive (buckets per series, not
//!   repeated queries), evaluated on the group's interval, with Prometheus's alert states
//!   (inactive → pending → firing → resolved) persisted across restarts.
//! - [`notify`]: Alertmanager's routing and receivers (a subset of its configuration file):
//!   webhook (Alertmanager's JSON), Slack, e-mail, `exec`; grouping, repeat, resolved
//!   notifications, retries, a dead-letter log.
//!
//! [`Alert`] is what the evaluator hands to notification.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod eval;
pub mod notify;
pub mod rules;

/// An alert's labels: the rule's `alertname`, its `labels`, and the series' labels.
pub type LabelSet = BTreeMap<String, String>;

/// An alert as the evaluator hands it to notification (Alertmanager's model of one): sent
/// on every evaluation while it fires, once more when it resolves (`ends_at_ms` set, in the
/// past).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `alertname`, the rule's labels, the series' labels.
    pub labels: LabelSet,
    /// The rule's annotations, templated (`{{ $labels.x }}`, `{{ $value }}`).
    pub annotations: BTreeMap<String, String>,
    /// When it started firing (Unix ms).
    pub starts_at_ms: i64,
    /// When it resolved (Unix ms); `None` while it fires.
    pub ends_at_ms: Option<i64>,
    /// The value of the rule's expression for this series at the last evaluation.
    pub value: f64,
    /// Where to look: the explore page of `logflux serve` for the rule's query.
    pub generator_url: String,
    /// The last matching lines of the series, only when the rule asks (`include_lines: N`);
    /// empty otherwise, so by default no log content leaves the machine.
    pub lines: Vec<String>,
}

impl Alert {
    /// Whether it has resolved by `now_ms`.
    pub fn resolved(&self, now_ms: i64) -> bool {
        self.ends_at_ms.is_some_and(|e| e <= now_ms)
    }

    /// Alertmanager's fingerprint of the label set: a stable hex id (FNV-1a 64 over the sorted
    /// `name\xffvalue\xff` pairs, as Prometheus's `labels.Hash` idea; not the same numbers).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }
}

/// A stable hex id of a label set (see [`Alert::fingerprint`]).
pub fn fingerprint(labels: &LabelSet) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([0xff]).chain(v.bytes()).chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
