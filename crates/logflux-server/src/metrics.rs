//! Prometheus metrics (`GET /metrics`). Labels never carry tenant names, keys or tokens.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteStatus {
    pub(crate) route: String,
    pub(crate) status: u16,
}

/// Why a live tail was ended by the server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TailEnd {
    pub(crate) reason: String,
}

/// Why a streamed reply was cut after it began (its status, 200, already sent).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReplyBroken {
    pub(crate) reason: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RouteStatus, Counter>,
    pub(crate) request_seconds: Family<RouteStatus, Histogram>,
    pub(crate) records_stored: Counter,
    pub(crate) records_duplicate: Counter,
    pub(crate) bytes_stored: Counter,
    pub(crate) segments_committed: Counter,
    pub(crate) commit_seconds: Histogram,
    pub(crate) commit_failures: Counter,
    pub(crate) query_segments_scanned: Counter,
    pub(crate) query_segments_pruned: Counter,
    pub(crate) query_records_returned: Counter,
    pub(crate) query_record_bytes: Counter,
    pub(crate) query_readers: Gauge,
    pub(crate) query_replies_broken: Family<ReplyBroken, Counter>,
    pub(crate) unknown_segments: Gauge,
    pub(crate) segments_quarantined: Counter,
    pub(crate) segments_in_quarantine: Gauge,
    pub(crate) quarantine_deleted: Counter,
    pub(crate) housekeeping_passes: Counter,
    pub(crate) tail_streams: Gauge,
    pub(crate) tail_ended: Family<TailEnd, Counter>,
    pub(crate) tail_refused: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("logflux_server");
        let requests = Family::<RouteStatus, Counter>::default();
        let request_seconds = Family::<RouteStatus, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let records_stored = Counter::default();
        let records_duplicate = Counter::default();
        let bytes_stored = Counter::default();
        let segments_committed = Counter::default();
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let commit_failures = Counter::default();
        let query_segments_scanned = Counter::default();
        let query_segments_pruned = Counter::default();
        let query_records_returned = Counter::default();
        let query_record_bytes = Counter::default();
        let query_readers = Gauge::default();
        let query_replies_broken = Family::<ReplyBroken, Counter>::default();
        let unknown_segments = Gauge::default();
        let segments_quarantined = Counter::default();
        let segments_in_quarantine = Gauge::default();
        let quarantine_deleted = Counter::default();
        let housekeeping_passes = Counter::default();
        let tail_streams = Gauge::default();
        let tail_ended = Family::<TailEnd, Counter>::default();
        let tail_refused = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_seconds",
            "HTTP request latency by route and status",
            request_seconds.clone(),
        );
        registry.register("records_stored", "Records stored", records_stored.clone());
        registry.register(
            "records_duplicate",
            "Records acknowledged as already stored",
            records_duplicate.clone(),
        );
        registry.register("bytes_stored", "Record bytes stored", bytes_stored.clone());
        registry.register(
            "segments_committed",
            "Segments committed",
            segments_committed.clone(),
        );
        registry.register(
            "commit_seconds",
            "Group commit latency, from a batch's preparation to its catalog commit (objects durable, records looked up, the wait for earlier batches' transactions, its own)",
            commit_seconds.clone(),
        );
        registry.register(
            "commit_failures",
            "Group commits that failed (nothing of their requests stored)",
            commit_failures.clone(),
        );
        registry.register(
            "query_segments_scanned",
            "Segments whose footer a query read",
            query_segments_scanned.clone(),
        );
        registry.register(
            "query_segments_pruned",
            "Segments a query skipped by their Bloom filter",
            query_segments_pruned.clone(),
        );
        registry.register(
            "query_records_returned",
            "Records returned by queries",
            query_records_returned.clone(),
        );
        registry.register(
            "query_record_bytes",
            "Record bytes (ciphertext) read from the store to answer /v1/query and /v1/records \
             (a query with bodies: false reads none)",
            query_record_bytes.clone(),
        );
        registry.register(
            "query_readers",
            "Tasks reading a /v1/query page ahead of its connection now (one a reply being \
             produced; stopped when the client goes away)",
            query_readers.clone(),
        );
        registry.register(
            "query_replies_broken",
            "/v1/query replies cut after they began (counted 200 in http_requests), by reason: \
             unavailable or internal (the server ended the reply with an error message), \
             disconnected (the client went away before the end line)",
            query_replies_broken.clone(),
        );
        registry.register(
            "unknown_segments",
            "Segments in the store that the catalog does not name (older than an hour, not yet \
             quarantined, whatever their age); after a catalog loss, run `logflux-server catalog \
             rebuild`",
            unknown_segments.clone(),
        );
        registry.register(
            "segments_quarantined",
            "Segments no catalog named, moved to _quarantine/ after the orphan grace",
            segments_quarantined.clone(),
        );
        registry.register(
            "segments_in_quarantine",
            "Segments in _quarantine/ now (deleted after the quarantine period; `logflux-server \
             catalog rebuild` moves them back)",
            segments_in_quarantine.clone(),
        );
        registry.register(
            "quarantine_deleted",
            "Quarantined segments deleted after the quarantine period",
            quarantine_deleted.clone(),
        );
        registry.register(
            "housekeeping_passes",
            "Completed housekeeping passes (retention, orphans, store metadata)",
            housekeeping_passes.clone(),
        );
        registry.register("tail_streams", "Live tails open", tail_streams.clone());
        registry.register(
            "tail_ended",
            "Live tails the server ended, by reason (token_revoked, token_expired, \
             slow_consumer, shutdown, unavailable)",
            tail_ended.clone(),
        );
        registry.register(
            "tail_refused",
            "Live tails refused with 429 too_many_streams",
            tail_refused.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            records_stored,
            records_duplicate,
            bytes_stored,
            segments_committed,
            commit_seconds,
            commit_failures,
            query_segments_scanned,
            query_segments_pruned,
            query_records_returned,
            query_record_bytes,
            query_readers,
            query_replies_broken,
            unknown_segments,
            segments_quarantined,
            segments_in_quarantine,
            quarantine_deleted,
            housekeeping_passes,
            tail_streams,
            tail_ended,
            tail_refused,
        }
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String");
        out
    }
}
