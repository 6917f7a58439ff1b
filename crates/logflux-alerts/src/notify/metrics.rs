//! Counters of notifications per integration, for `serve`'s `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::integrations::IntegrationKind;

/// One integration kind's counters.
#[derive(Debug, Default)]
pub struct IntegrationCounters {
    /// Requests made (every try, retries included).
    pub attempted: AtomicU64,
    /// Requests that failed (each failed try).
    pub failed: AtomicU64,
    /// Notifications given up on and written to the dead-letter log.
    pub dead_lettered: AtomicU64,
}

/// A snapshot of one kind's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountersSnapshot {
    /// See [`IntegrationCounters::attempted`].
    pub attempted: u64,
    /// See [`IntegrationCounters::failed`].
    pub failed: u64,
    /// See [`IntegrationCounters::dead_lettered`].
    pub dead_lettered: u64,
}

/// The notifier's counters, one set per integration kind.
#[derive(Debug, Default)]
pub struct NotifyMetrics {
    /// `webhook_configs`.
    pub webhook: IntegrationCounters,
    /// `slack_configs`.
    pub slack: IntegrationCounters,
    /// `email_configs`.
    pub email: IntegrationCounters,
    /// `exec_configs`.
    pub exec: IntegrationCounters,
}

impl NotifyMetrics {
    /// The counters of one kind.
    pub fn of(&self, kind: IntegrationKind) -> &IntegrationCounters {
        match kind {
            IntegrationKind::Webhook => &self.webhook,
            IntegrationKind::Slack => &self.slack,
            IntegrationKind::Email => &self.email,
            IntegrationKind::Exec => &self.exec,
        }
    }

    /// Every kind's counters, with the kind's name (`webhook`, `slack`, `email`, `exec`).
    pub fn snapshot(&self) -> Vec<(&'static str, CountersSnapshot)> {
        [
            IntegrationKind::Webhook,
            IntegrationKind::Slack,
            IntegrationKind::Email,
            IntegrationKind::Exec,
        ]
        .into_iter()
        .map(|k| {
            let c = self.of(k);
            (
                k.as_str(),
                CountersSnapshot {
                    attempted: c.attempted.load(Ordering::Relaxed),
                    failed: c.failed.load(Ordering::Relaxed),
                    dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                },
            )
        })
        .collect()
    }
}
