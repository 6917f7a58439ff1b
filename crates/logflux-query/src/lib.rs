//! A LogQL subset over decrypted LogFlux entries, for `logflux serve` (a local
//! Loki-compatible query service). Pure: no I/O, no runtime. The subset, the label mapping
//! and pruning are described in `docs/logql.md`.
//!
//! - [`parse`] turns a query into a [`Query`]: a [`LogQuery`] (selector and pipeline) or a
//!   [`MetricQuery`]. Anything outside the subset is a [`QueryError`] naming the construct and
//!   its byte offset, never a silently different result.
//! - [`LogQuery::eval`] evaluates one entry at a time, so callers can stream entries as they
//!   are decrypted; [`LogQuery::prune`] says which exact conditions may become blind tokens.
//! - [`MetricQuery::eval_range`] and [`MetricQuery::eval_instant`] evaluate metric queries
//!   over the entries fetched for [`MetricQuery::log_queries`].
//! - [`MetricQuery::sliding`] keeps a metric query up to date over a live stream (alerting
//!   rules): entries pushed as they arrive, evaluated at instants that move forward.
//!
//! ```
//! use logflux_proto::{Entry, EntryView, Level};
//! use logflux_query::{Query, Row, parse};
//!
//! let e: EntryView = Entry::new(1_000, Level::Error, "api", "disk full on /var").into();
//! let Query::Log(q) = parse(r#"{source="api", level=~"err|warn"} |= "disk full on""#).unwrap()
//! else { unreachable!() };
//! let line = q.eval(&Row { app: "web", entry: &e }).unwrap();
//! assert_eq!(line.labels["level"], "error");
//! assert_eq!(q.prune().words, ["full"]);
//! ```

use std::collections::BTreeMap;
use std::fmt;

use logflux_proto::EntryView;

mod fields;
mod lex;
mod log;
mod metric;
mod parse;
pub mod patterns;
mod sliding;
mod words;

pub use fields::{
    DetectedField, EXACT_VALUES, FieldDetector, FieldType, LineFields, Parser, field_values,
    line_fields,
};
pub use log::{LogQuery, MatchOp, Matcher, stream_labels};
pub use metric::{Collector, InstantValue, MAX_SERIES, MetricQuery};
pub use parse::{MAX_QUERY_BYTES, MAX_QUERY_NODES, parse};
pub use sliding::{DEFAULT_GRANULARITY_NS, Sliding, format_duration};
pub use words::words;

/// Points per series a range query may ask for (Loki's limit).
pub const MAX_POINTS: i64 = 11_000;

/// One entry to evaluate, with the application it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub app: &'a str,
    pub entry: &'a EntryView,
}

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Query {
    Log(LogQuery),
    Metric(MetricQuery),
}

/// A label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One result line of a log query.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub ts_ns: i64,
    /// The line: the payload, or what `| line_format` made of it.
    pub line: String,
    /// Stream labels: `app`, `source`, `level`, `type`, `host` (when the entry has one).
    pub labels: Labels,
    /// Structured metadata: `detected_level` and the entry's other metadata keys.
    pub structured_metadata: Labels,
    /// Labels extracted by `| json` / `| logfmt`, and `__error__` / `__error_details__`.
    pub parsed: Labels,
}

impl LogLine {
    /// All labels in one set, as Loki shows them without `categorize-labels`: stream labels,
    /// then structured metadata, then parsed labels.
    pub fn all_labels(&self) -> Labels {
        let mut all = self.labels.clone();
        all.extend(
            self.structured_metadata
                .iter()
                .chain(&self.parsed)
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        all
    }
}

/// What a query allows, as sets that can become blind tokens. Each `Some` (and each
/// `metadata` entry) is a set of allowed values (any of them); all of them hold together
/// (AND), and each word must be a word of the payload. Only exact constructs contribute:
/// an entry that fails any of these cannot match the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prune {
    pub apps: Option<Vec<String>>,
    pub sources: Option<Vec<String>>,
    pub levels: Option<Vec<logflux_proto::Level>>,
    pub types: Option<Vec<logflux_proto::EntryType>>,
    /// Metadata key (as stored) and its allowed values.
    pub metadata: Vec<(String, Vec<String>)>,
    /// Lower-cased words (as `logflux search` tokenises), each at most 64 bytes.
    pub words: Vec<String>,
}

/// One series of a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// `(timestamp ns, value)`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// A range query's result: series sorted by labels.
pub type Matrix = Vec<Series>;
/// An instant query's result: samples sorted by labels.
pub type Vector = Vec<(Labels, f64)>;

/// Whether the error came from parsing the query or from evaluating it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Parse,
    Eval,
}

/// A query that cannot be parsed or evaluated: where (byte offset in the query) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct QueryError {
    /// Byte offset in the query (0 for evaluation errors).
    pub pos: usize,
    pub message: String,
    pub kind: ErrorKind,
}

impl QueryError {
    pub(crate) fn parse(pos: usize, message: impl Into<String>) -> Self {
        QueryError {
            pos,
            message: message.into(),
            kind: ErrorKind::Parse,
        }
    }

    pub(crate) fn eval(message: impl Into<String>) -> Self {
        QueryError {
            pos: 0,
            message: message.into(),
            kind: ErrorKind::Eval,
        }
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::Parse => write!(
                f,
                "parse error at line 1, col {}: {}",
                self.pos + 1,
                self.message
            ),
            ErrorKind::Eval => f.write_str(&self.message),
        }
    }
}
