//! Prometheus metrics of the agent, served on a loopback port with `/status` and `/healthz`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct InputLabel {
    pub(crate) input: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RuleLabel {
    pub(crate) rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FileEventLabel {
    pub(crate) input: &'static str,
    pub(crate) event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TargetLabel {
    pub(crate) target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub(crate) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ConnStateLabel {
    pub(crate) state: &'static str,
}

/// Every metric the agent exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// Use [`Metrics::received`], which also keeps `received_all`.
    entries_received: Family<InputLabel, Counter>,
    /// The sum of `entries_received` over every input (for `/status`; not exported).
    received_all: Counter,
    pub(crate) entries_rejected: Family<ReasonLabel, Counter>,
    pub(crate) batches_sealed: Counter,
    pub(crate) entries_sealed: Counter,
    pub(crate) entries_restamped: Counter,
    /// Entries with more distinct words than one record may carry tokens for.
    pub(crate) entries_tokens_truncated: Counter,
    /// Times found in lines that were not believed (before 1990, or in the future).
    pub(crate) timestamps_implausible: Family<InputLabel, Counter>,
    pub(crate) spooled_bytes: Counter,
    pub(crate) spool_bytes: Gauge,
    pub(crate) spool_records: Gauge,
    pub(crate) records_shipped: Counter,
    pub(crate) entries_shipped: Counter,
    pub(crate) retries: Counter,
    pub(crate) entries_dropped: Counter,
    pub(crate) records_dead_lettered: Counter,
    pub(crate) spool_damaged_bytes: Counter,
    pub(crate) delivery_seconds: Histogram,
    pub(crate) redactions: Family<RuleLabel, Counter>,
    pub(crate) file_events: Family<FileEventLabel, Counter>,
    pub(crate) forwarded: Family<TargetLabel, Counter>,
    pub(crate) forward_dropped: Family<TargetLabel, Counter>,
    pub(crate) tcp_connections_refused: Family<ReasonLabel, Counter>,
    pub(crate) tcp_connections: Family<ConnStateLabel, Gauge>,
    pub(crate) connections_idle_closed: Family<InputLabel, Counter>,
    pub(crate) http_requests_refused: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut r = Registry::with_prefix("logflux_agent");
        let m = Metrics {
            entries_received: Family::default(),
            received_all: Counter::default(),
            entries_rejected: Family::default(),
            batches_sealed: Counter::default(),
            entries_sealed: Counter::default(),
            entries_restamped: Counter::default(),
            entries_tokens_truncated: Counter::default(),
            timestamps_implausible: Family::default(),
            spooled_bytes: Counter::default(),
            spool_bytes: Gauge::default(),
            spool_records: Gauge::default(),
            records_shipped: Counter::default(),
            entries_shipped: Counter::default(),
            retries: Counter::default(),
            entries_dropped: Counter::default(),
            records_dead_lettered: Counter::default(),
            spool_damaged_bytes: Counter::default(),
            delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 18)),
            redactions: Family::default(),
            file_events: Family::default(),
            forwarded: Family::default(),
            forward_dropped: Family::default(),
            tcp_connections_refused: Family::default(),
            tcp_connections: Family::default(),
            connections_idle_closed: Family::default(),
            http_requests_refused: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "entries_received",
            "Entries accepted from inputs",
            m.entries_received.clone(),
        );
        r.register(
            "entries_rejected",
            "Entries refused, by reason",
            m.entries_rejected.clone(),
        );
        r.register("batches_sealed", "Batches sealed", m.batches_sealed.clone());
        r.register("entries_sealed", "Entries sealed", m.entries_sealed.clone());
        r.register(
            "entries_restamped",
            "Entries stamped with their arrival time: their own was more than 5 minutes ahead of the agent's clock (kept in metadata logflux_original_time)",
            m.entries_restamped.clone(),
        );
        r.register(
            "entries_tokens_truncated",
            "Entries alone in their record with more distinct words than a record carries blind tokens for (8192): some of their words do not find them",
            m.entries_tokens_truncated.clone(),
        );
        r.register(
            "timestamps_implausible",
            "Times found in lines that were not believed (before 1990, or more than 5 minutes ahead of the read time): the entry has the read time (the found one in metadata logflux_original_time)",
            m.timestamps_implausible.clone(),
        );
        r.register(
            "spooled_bytes",
            "Bytes written to the spool",
            m.spooled_bytes.clone(),
        );
        r.register(
            "spool_bytes",
            "Bytes in the spool awaiting delivery",
            m.spool_bytes.clone(),
        );
        r.register(
            "spool_records",
            "Records in the spool awaiting delivery",
            m.spool_records.clone(),
        );
        r.register(
            "records_shipped",
            "Records the server acknowledged",
            m.records_shipped.clone(),
        );
        r.register(
            "entries_shipped",
            "Entries the server acknowledged",
            m.entries_shipped.clone(),
        );
        r.register(
            "retries",
            "Shipping attempts that will be retried",
            m.retries.clone(),
        );
        r.register(
            "entries_dropped",
            "Entries dropped because the spool was full (when_full: drop_newest)",
            m.entries_dropped.clone(),
        );
        r.register(
            "records_dead_lettered",
            "Records the server refused for good (400/401/413), kept in the dead-letter directory",
            m.records_dead_lettered.clone(),
        );
        r.register(
            "spool_damaged_bytes",
            "Bytes of torn or corrupt spool frames removed at start-up (the records in them are lost)",
            m.spool_damaged_bytes.clone(),
        );
        r.register(
            "delivery_seconds",
            "From sealing to the server's acknowledgement",
            m.delivery_seconds.clone(),
        );
        r.register(
            "redactions",
            "Entries changed by each redaction rule",
            m.redactions.clone(),
        );
        r.register(
            "file_events",
            "File inputs: lines, bytes, long lines split or skipped, invalid UTF-8, truncations, rotations",
            m.file_events.clone(),
        );
        r.register(
            "forwarded",
            "Entries forwarded as syslog, by target",
            m.forwarded.clone(),
        );
        r.register(
            "forward_dropped",
            "Forwarded copies dropped because the target's queue was full, by target",
            m.forward_dropped.clone(),
        );
        r.register(
            "tcp_connections_refused",
            "TCP local API connections closed before being served, by reason: auth_timeout, \
             auth_failed, pre_auth_line_too_long, evicted (oldest unauthenticated, to make room), \
             per_peer_limit, max_connections",
            m.tcp_connections_refused.clone(),
        );
        r.register(
            "tcp_connections",
            "Open TCP local API connections, by state (authenticated, unauthenticated)",
            m.tcp_connections.clone(),
        );
        r.register(
            "connections_idle_closed",
            "Local API connections closed after sending nothing for idle_timeout_s, by input",
            m.connections_idle_closed.clone(),
        );
        r.register(
            "http_requests_refused",
            "HTTP input requests refused before their body was read or while it was read, by \
             reason: unauthorized, too_large, body_timeout, bad_body (the connection failed), busy",
            m.http_requests_refused.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Counts `n` entries an input took in (`entries_received{input}`, and the total).
    pub(crate) fn received(&self, input: &'static str, n: u64) {
        self.entries_received
            .get_or_create(&InputLabel { input })
            .inc_by(n);
        self.received_all.inc_by(n);
    }

    /// Entries received by every input together.
    pub(crate) fn received_total(&self) -> u64 {
        self.received_all.get()
    }

    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("write to String");
        out
    }
}
