//! Metric queries: range aggregations over log queries, vector aggregations, binary
//! operations; evaluated as Loki and Prometheus do (window `(t - range - offset, t - offset]`,
//! steps `start, start + step, …, <= end`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use logflux_proto::EntryView;
use rustc_hash::{FxHashMap, FxHasher};

use crate::log::{Cmp, Ctx, ERROR, ERROR_DETAILS, LogQuery};
use crate::{Labels, MAX_POINTS, Matrix, QueryError, Row, Series, Vector};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Count,
    Rate,
    Bytes,
    BytesRate,
    Sum,
    Avg,
    Max,
    Min,
}

impl RangeFn {
    pub(crate) fn from_name(n: &str) -> Option<RangeFn> {
        Some(match n {
            "count_over_time" => RangeFn::Count,
            "rate" => RangeFn::Rate,
            "bytes_over_time" => RangeFn::Bytes,
            "bytes_rate" => RangeFn::BytesRate,
            "sum_over_time" => RangeFn::Sum,
            "avg_over_time" => RangeFn::Avg,
            "max_over_time" => RangeFn::Max,
            "min_over_time" => RangeFn::Min,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            RangeFn::Count => "count_over_time",
            RangeFn::Rate => "rate",
            RangeFn::Bytes => "bytes_over_time",
            RangeFn::BytesRate => "bytes_rate",
            RangeFn::Sum => "sum_over_time",
            RangeFn::Avg => "avg_over_time",
            RangeFn::Max => "max_over_time",
            RangeFn::Min => "min_over_time",
        }
    }

    /// Whether the function adds its samples up (count, rate, bytes, sum): then a `sum` of its
    /// series is the function over all their samples, and the samples can be grouped as
    /// the sum groups them before any series is kept.
    pub(crate) fn adds_up(self) -> bool {
        matches!(
            self,
            RangeFn::Count | RangeFn::Rate | RangeFn::Bytes | RangeFn::BytesRate | RangeFn::Sum
        )
    }

    pub(crate) fn needs_unwrap(self) -> bool {
        matches!(
            self,
            RangeFn::Sum | RangeFn::Avg | RangeFn::Max | RangeFn::Min
        )
    }

    pub(crate) fn allows_unwrap(self) -> bool {
        self.needs_unwrap() || self == RangeFn::Rate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Count,
    Avg,
    Min,
    Max,
    Topk,
    Bottomk,
}

impl AggOp {
    pub(crate) fn from_name(n: &str) -> Option<AggOp> {
        Some(match n {
            "sum" => AggOp::Sum,
            "count" => AggOp::Count,
            "avg" => AggOp::Avg,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            AggOp::Sum => "sum",
            AggOp::Count => "count",
            AggOp::Avg => "avg",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Topk => "topk",
            AggOp::Bottomk => "bottomk",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Cmp(Cmp),
}

impl fmt::Display for BinOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Cmp(Cmp::Eq) => "==",
            BinOp::Cmp(Cmp::Ne) => "!=",
            BinOp::Cmp(Cmp::Gt) => ">",
            BinOp::Cmp(Cmp::Ge) => ">=",
            BinOp::Cmp(Cmp::Lt) => "<",
            BinOp::Cmp(Cmp::Le) => "<=",
        })
    }
}

impl BinOp {
    /// The arithmetic result, or for comparisons whether it holds (1/0).
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => a / b,
            BinOp::Mod => a % b,
            BinOp::Pow => a.powf(b),
            BinOp::Cmp(c) => {
                if c.holds(a, b) {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

/// `sum` without `by` or `without`: one group.
static ONE_GROUP: Grouping = Grouping::By(Vec::new());

impl Grouping {
    fn keeps(&self, name: &str) -> bool {
        match self {
            Grouping::By(n) => n.iter().any(|x| x == name),
            Grouping::Without(n) => !n.iter().any(|x| x == name),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RangeExpr {
    pub(crate) func: RangeFn,
    pub(crate) log: LogQuery,
    pub(crate) range_ns: i64,
    pub(crate) offset_ns: i64,
    pub(crate) grouping: Option<Grouping>,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Num(f64),
    Vector(f64),
    Range(Box<RangeExpr>),
    Agg {
        op: AggOp,
        param: Option<usize>,
        grouping: Option<Grouping>,
        expr: Box<Expr>,
    },
    Bin {
        op: BinOp,
        bool_mod: bool,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Neg(Box<Expr>),
}

impl Expr {
    pub(crate) fn is_scalar(&self) -> bool {
        match self {
            Expr::Num(_) => true,
            Expr::Neg(e) => e.is_scalar(),
            Expr::Bin { lhs, rhs, .. } => lhs.is_scalar() && rhs.is_scalar(),
            _ => false,
        }
    }

    /// The range aggregations, in evaluation order, each with the grouping its samples can be
    /// collected under: its own (`sum_over_time(… | unwrap x [1m]) by (a)`), or that of a
    /// `sum` right around it when the function adds up (`sum by (level) (count_over_time(…))`
    /// counts each level's entries: the series the sum merges need not be kept apart).
    pub(crate) fn ranges<'a>(&'a self, out: &mut Vec<(&'a RangeExpr, Option<&'a Grouping>)>) {
        match self {
            Expr::Num(_) | Expr::Vector(_) => {}
            Expr::Range(r) => out.push((r, r.grouping.as_ref())),
            Expr::Agg {
                op: AggOp::Sum,
                grouping,
                expr,
                ..
            } if matches!(&**expr, Expr::Range(r) if r.grouping.is_none() && r.func.adds_up()) => {
                if let Expr::Range(r) = &**expr {
                    out.push((r, Some(grouping.as_ref().unwrap_or(&ONE_GROUP))));
                }
            }
            Expr::Agg { expr, .. } | Expr::Neg(expr) => expr.ranges(out),
            Expr::Bin { lhs, rhs, .. } => {
                lhs.ranges(out);
                rhs.ranges(out);
            }
        }
    }
}

/// What a range aggregation reads of its window's samples (none empty): their sum, number,
/// largest and smallest. Values of functions that add up need only the first two.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) sum: f64,
    pub(crate) count: f64,
    pub(crate) max: f64,
    pub(crate) min: f64,
}

impl RangeExpr {
    /// Whether [`RangeExpr::value`] reads the samples' sum.
    pub(crate) fn reads_sum(&self) -> bool {
        match self.func {
            RangeFn::Count | RangeFn::Max | RangeFn::Min => false,
            RangeFn::Rate => self.log.has_unwrap(),
            RangeFn::Bytes | RangeFn::BytesRate | RangeFn::Sum | RangeFn::Avg => true,
        }
    }

    /// The function's value over a window of samples.
    pub(crate) fn value(&self, w: Window) -> f64 {
        let secs = self.range_ns as f64 / 1e9;
        match self.func {
            RangeFn::Count => w.count,
            RangeFn::Rate if self.log.has_unwrap() => w.sum / secs,
            RangeFn::Rate => w.count / secs,
            RangeFn::Bytes | RangeFn::Sum => w.sum,
            RangeFn::BytesRate => w.sum / secs,
            RangeFn::Avg => w.sum / w.count,
            RangeFn::Max => w.max,
            RangeFn::Min => w.min,
        }
    }
}

/// A metric query.
#[derive(Debug, Clone)]
pub struct MetricQuery {
    pub(crate) expr: Expr,
}

/// An instant query's result: Loki answers `resultType` `vector` or `scalar`.
#[derive(Debug, Clone, PartialEq)]
pub enum InstantValue {
    Vector(Vector),
    Scalar(f64),
}

/// A sorted label set, shared between steps.
pub(crate) type Lbls = Rc<Vec<(String, String)>>;
type Sample = (Lbls, f64);

#[derive(Debug, Clone)]
enum Value {
    Scalar(f64),
    Vector(Vec<(Lbls, f64)>),
}

#[derive(Debug)]
struct SeriesData {
    labels: Lbls,
    ts: Vec<i64>,
    vals: Vec<f64>,
    /// Set instead of samples when they were added up per step as they came.
    steps: Option<Steps>,
}

/// A series' samples added up per step of a range query: at step `k` (time `start + k ×
/// step`), the sum and number of the samples in that step's window. For functions that add
/// up, with windows no wider than a few steps (Grafana's `[$__auto]` is one step), this is
/// what each step reads, kept in place of every sample once a series has half as many
/// samples as steps (a cell costs what a sample does: never more than twice the samples'
/// memory). Sums are added in arrival order, not per series then summed: a float result
/// may differ from the general way's in its last digits (docs/logql.md).
#[derive(Debug, Clone)]
struct Steps {
    plan: StepPlan,
    cells: Vec<(f64, u64)>,
}

/// Most windows a sample may fall in for its series to be kept per step.
const STEPS_MAX_WINDOWS: i64 = 4;
/// Cells (steps × series) one range aggregation makes per step, at most (16 bytes each):
/// series beyond keep samples.
const STEPS_MAX_CELLS: usize = 2_000_000;

impl MetricQuery {
    pub(crate) fn new(expr: Expr) -> Self {
        MetricQuery { expr }
    }

    fn range_exprs(&self) -> Vec<&RangeExpr> {
        let mut out = Vec::new();
        self.expr.ranges(&mut out);
        out.into_iter().map(|(r, _)| r).collect()
    }

    /// The log queries inside the range aggregations (the caller fetches entries for each).
    pub fn log_queries(&self) -> Vec<&LogQuery> {
        self.range_exprs().into_iter().map(|r| &r.log).collect()
    }

    /// How far before `start` entries are needed: the largest range plus its offset (0 for
    /// queries without a range aggregation). With a negative offset, entries after `end` are
    /// needed too: use [`MetricQuery::fetch_window`].
    pub fn range_ns(&self) -> i64 {
        self.range_exprs()
            .iter()
            .map(|r| r.range_ns.saturating_add(r.offset_ns))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// The entries a range query from `start_ns` to `end_ns` reads: timestamps in
    /// `(from, to]`.
    pub fn fetch_window(&self, start_ns: i64, end_ns: i64) -> (i64, i64) {
        let r = self.range_exprs();
        let from = r
            .iter()
            .map(|r| {
                start_ns
                    .saturating_sub(r.offset_ns)
                    .saturating_sub(r.range_ns)
            })
            .min()
            .unwrap_or(start_ns);
        let to = r
            .iter()
            .map(|r| end_ns.saturating_sub(r.offset_ns))
            .max()
            .unwrap_or(end_ns);
        (from, to)
    }

    /// Whether the result is a scalar (no vector in the expression: `1 + 2`).
    pub fn is_scalar(&self) -> bool {
        self.expr.is_scalar()
    }

    /// Checks a range query's step and bounds (before any entry is read).
    fn check_range(start_ns: i64, end_ns: i64, step_ns: i64) -> Result<(), QueryError> {
        if step_ns <= 0 {
            return Err(QueryError::eval(format!(
                "the step must be positive, got {step_ns} ns"
            )));
        }
        if end_ns < start_ns {
            return Err(QueryError::eval(format!(
                "the end ({end_ns}) is before the start ({start_ns})"
            )));
        }
        let points = (i128::from(end_ns) - i128::from(start_ns)) / i128::from(step_ns) + 1;
        if points > i128::from(MAX_POINTS) {
            return Err(QueryError::eval(format!(
                "exceeded maximum resolution of {MAX_POINTS} points per time series: {points} points for this range and step; try a larger step"
            )));
        }
        Ok(())
    }

    /// Evaluates at `start_ns`, `start_ns + step_ns`, … up to `end_ns` (Loki's query_range).
    /// `rows` holds the entries fetched for [`MetricQuery::log_queries`] (any order; each
    /// range aggregation applies its own log query to them).
    pub fn eval_range(
        &self,
        rows: &[Row<'_>],
        start_ns: i64,
        end_ns: i64,
        step_ns: i64,
    ) -> Result<Matrix, QueryError> {
        Self::check_range(start_ns, end_ns, step_ns)?;
        let mut c = self.range_collector(start_ns, end_ns, step_ns);
        c.push_all(rows)?;
        c.eval_range(step_ns)
    }

    /// Evaluates at one instant (Loki's instant query); a scalar result is one sample with no
    /// labels.
    pub fn eval_instant(&self, rows: &[Row<'_>], at_ns: i64) -> Result<Vector, QueryError> {
        Ok(match self.eval_instant_value(rows, at_ns)? {
            InstantValue::Vector(v) => v,
            InstantValue::Scalar(s) => vec![(Labels::new(), s)],
        })
    }

    /// As [`MetricQuery::eval_instant`], telling a scalar from a vector.
    pub fn eval_instant_value(
        &self,
        rows: &[Row<'_>],
        at_ns: i64,
    ) -> Result<InstantValue, QueryError> {
        let mut c = self.collector(at_ns, at_ns);
        c.push_all(rows)?;
        c.eval_instant_value()
    }

    /// A collector of samples for a range query from `start_ns` to `end_ns` (an instant
    /// query: both the same), fed one entry at a time: entries need not be kept in memory,
    /// and workers decrypting in parallel can each fill one and [`Collector::merge`] them.
    pub fn collector(&self, start_ns: i64, end_ns: i64) -> Collector<'_> {
        // One point (an instant query): any step.
        let step = (start_ns == end_ns).then_some(1);
        self.collector_with(start_ns, end_ns, step)
    }

    /// A collector for a range query from `start_ns` by `step_ns` to `end_ns`: samples of
    /// functions that add up are added per step as they come ([`Collector::eval_range`] must
    /// then be given this step).
    pub fn range_collector(&self, start_ns: i64, end_ns: i64, step_ns: i64) -> Collector<'_> {
        self.collector_with(start_ns, end_ns, Some(step_ns))
    }

    fn collector_with(&self, start_ns: i64, end_ns: i64, step: Option<i64>) -> Collector<'_> {
        let mut ranges = Vec::new();
        self.expr.ranges(&mut ranges);
        Collector {
            query: self,
            start_ns,
            end_ns,
            ranges: ranges
                .iter()
                .map(|&(r, group)| RangeAcc {
                    too_many: false,
                    from: start_ns
                        .saturating_sub(r.offset_ns)
                        .saturating_sub(r.range_ns),
                    to: end_ns.saturating_sub(r.offset_ns),
                    sampler: Sampler::new(r, group),
                    plan: step.and_then(|st| StepPlan::new(r, start_ns, end_ns, st)),
                    cells: 0,
                    series: Vec::new(),
                })
                .collect(),
            exprs: ranges.into_iter().map(|(r, _)| r).collect(),
        }
    }
}

/// Samples of a metric query's range aggregations, collected entry by entry (see
/// [`MetricQuery::collector`]).
#[derive(Debug)]
pub struct Collector<'q> {
    query: &'q MetricQuery,
    exprs: Vec<&'q RangeExpr>,
    start_ns: i64,
    end_ns: i64,
    ranges: Vec<RangeAcc>,
}

#[derive(Debug)]
struct RangeAcc {
    /// Entries in `(from, to]` count.
    from: i64,
    to: i64,
    /// Which series an entry's sample goes to.
    sampler: Sampler,
    /// Set when samples are added up per step as they come.
    plan: Option<StepPlan>,
    /// Cells held per step, in all series.
    cells: usize,
    series: Vec<SeriesAcc>,
    /// More than [`MAX_SERIES`] label sets were met (by `merge`, which cannot fail).
    too_many: bool,
}

/// At most this many distinct label sets per range expression of a query, as Loki's
/// `max_query_series` (500 by default; ours is higher, its cost is the labels held): a label
/// per line (`| json` of a request id) would otherwise hold a series, labels and all, per
/// entry.
pub const MAX_SERIES: usize = 10_000;

fn too_many_series() -> QueryError {
    QueryError::eval(format!(
        "maximum number of series ({MAX_SERIES}) reached for a single query: the lines carry more distinct label sets than that; keep fewer labels on them (| keep app, level or | drop …) or filter the lines first"
    ))
}

#[derive(Debug)]
struct SeriesAcc {
    labels: Vec<(String, String)>,
    ts: Vec<i64>,
    vals: Vec<f64>,
    steps: Option<Steps>,
}

/// How a range aggregation's samples can be added up per step (see [`Steps`]).
#[derive(Debug, Clone, Copy)]
struct StepPlan {
    start: i64,
    step: i64,
    points: usize,
    range_ns: i64,
    offset_ns: i64,
}

impl StepPlan {
    /// For a range query from `start` by `step` to `end`, when the function adds up and a
    /// sample falls in at most [`STEPS_MAX_WINDOWS`] windows (an instant query's one point
    /// included); `None` keeps samples.
    fn new(r: &RangeExpr, start: i64, end: i64, step: i64) -> Option<StepPlan> {
        if !r.func.adds_up() || step <= 0 || end < start {
            return None;
        }
        let points = (i128::from(end) - i128::from(start)) / i128::from(step) + 1;
        let windows = (i128::from(r.range_ns) + i128::from(step) - 1) / i128::from(step);
        // The windows' bounds are computed without saturating (the sample way saturates at
        // the ends of time): far from them only.
        let far = |x: i128| x.abs() < i128::from(i64::MAX / 4);
        let ok = points <= i128::from(MAX_POINTS)
            && far(i128::from(step))
            && far(i128::from(r.range_ns))
            && windows.min(points) <= i128::from(STEPS_MAX_WINDOWS)
            && far(i128::from(start) - i128::from(r.range_ns) - i128::from(r.offset_ns).abs())
            && far(i128::from(end) + i128::from(r.offset_ns).abs());
        ok.then_some(StepPlan {
            start,
            step,
            points: points as usize,
            range_ns: r.range_ns,
            offset_ns: r.offset_ns,
        })
    }

    /// Empty steps.
    fn steps(self) -> Steps {
        Steps {
            plan: self,
            cells: vec![(0.0, 0); self.points],
        }
    }

    /// Samples a series keeps before they are added up per step.
    fn samples_kept(&self) -> usize {
        (self.points / 2).max(1)
    }
}

impl Steps {
    /// Adds a sample at `ts` to the steps whose window `(t - offset - range, t - offset]`
    /// holds it: `ts + offset <= t < ts + offset + range`. A sample outside every window
    /// (one the collector would not have taken) is ignored.
    fn add(&mut self, ts: i64, v: f64) {
        let p = self.plan;
        // The plan keeps start, end, step, range and offset within a quarter of i64 of zero
        // (`StepPlan::new`), so every window lies within it too: a sample farther out is in
        // none, and for the others nothing below overflows i64.
        if ts.unsigned_abs() >= (i64::MAX / 4).unsigned_abs() {
            return;
        }
        let lo = ts + p.offset_ns;
        let hi = lo + p.range_ns;
        let first = if lo <= p.start {
            0
        } else {
            (lo - p.start + p.step - 1) / p.step
        };
        let mut k = first;
        while k < p.points as i64 && p.start + k * p.step < hi {
            let c = &mut self.cells[k as usize];
            c.0 += v;
            c.1 += 1;
            k += 1;
        }
    }

    /// Adds another series' steps (of the same plan).
    fn add_steps(&mut self, other: &Steps) {
        for (a, b) in self.cells.iter_mut().zip(&other.cells) {
            a.0 += b.0;
            a.1 += b.1;
        }
    }
}

impl Collector<'_> {
    /// Adds one entry (each range aggregation applies its own log query to it). Fails on a
    /// pipeline error left in a sample (Loki's `__error__` rule).
    pub fn push(&mut self, row: &Row<'_>) -> Result<(), QueryError> {
        let mut ctx = Ctx::default();
        self.push_with(row, &mut ctx)
    }

    /// Adds entries, reusing one label buffer.
    pub fn push_all(&mut self, rows: &[Row<'_>]) -> Result<(), QueryError> {
        let mut ctx = Ctx::default();
        for row in rows {
            self.push_with(row, &mut ctx)?;
        }
        Ok(())
    }

    fn push_with<'r>(&mut self, row: &Row<'r>, ctx: &mut Ctx<'r>) -> Result<(), QueryError> {
        for (r, acc) in self.exprs.iter().zip(&mut self.ranges) {
            acc.push(r, row, ctx)?;
        }
        Ok(())
    }

    /// Adds the samples another collector of the same query and bounds gathered.
    pub fn merge(&mut self, other: Collector<'_>) {
        for (acc, o) in self.ranges.iter_mut().zip(other.ranges) {
            for s in o.series {
                let h = hash_labels(s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let bucket = acc.sampler.index.entry(h).or_default();
                match bucket
                    .iter()
                    .copied()
                    .find(|&i| acc.series[i].labels == s.labels)
                {
                    Some(i) => merge_series(&mut acc.series[i], s),
                    None => {
                        if let Some(st) = &s.steps {
                            acc.cells += st.cells.len();
                        }
                        bucket.push(acc.series.len());
                        acc.series.push(s);
                        acc.too_many |= acc.series.len() > MAX_SERIES;
                    }
                }
            }
        }
    }

    fn check_series(&self) -> Result<(), QueryError> {
        if self.ranges.iter().any(|r| r.too_many) {
            return Err(too_many_series());
        }
        Ok(())
    }

    fn finish(self) -> Vec<Vec<SeriesData>> {
        self.ranges
            .into_iter()
            .map(|acc| {
                acc.series
                    .into_iter()
                    .map(|mut s| {
                        if !s.ts.is_sorted() {
                            let mut pairs: Vec<(i64, f64)> =
                                s.ts.iter().copied().zip(s.vals.iter().copied()).collect();
                            pairs.sort_by_key(|p| p.0);
                            (s.ts, s.vals) = pairs.into_iter().unzip();
                        }
                        SeriesData {
                            labels: Rc::new(s.labels),
                            ts: s.ts,
                            vals: s.vals,
                            steps: s.steps,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// The range query's result, steps `start, start + step, … <= end`.
    pub fn eval_range(self, step_ns: i64) -> Result<Matrix, QueryError> {
        let (start_ns, end_ns, query) = (self.start_ns, self.end_ns, self.query);
        MetricQuery::check_range(start_ns, end_ns, step_ns)?;
        // Series kept per step are read at their plan's steps: those must be these.
        let other = self
            .ranges
            .iter()
            .flat_map(|r| &r.series)
            .filter_map(|s| s.steps.as_ref())
            .find(|st| {
                st.plan.start != start_ns || (st.plan.points > 1 && st.plan.step != step_ns)
            });
        if let Some(st) = other {
            return Err(QueryError::eval(format!(
                "this collector adds samples up from {} by a step of {} ns, not from {start_ns} by {step_ns}",
                st.plan.start, st.plan.step
            )));
        }
        self.check_series()?;
        let data = self.finish();
        let mut out: BTreeMap<Lbls, Vec<(i64, f64)>> = BTreeMap::new();
        let mut t = start_ns;
        loop {
            let mut next = 0;
            match eval(&query.expr, t, data.as_slice(), &mut next)? {
                Value::Scalar(v) => out.entry(Rc::default()).or_default().push((t, v)),
                Value::Vector(v) => {
                    for (l, x) in v {
                        out.entry(l).or_default().push((t, x));
                    }
                }
            }
            match t.checked_add(step_ns) {
                Some(n) if n <= end_ns => t = n,
                _ => break,
            }
        }
        Ok(out
            .into_iter()
            .map(|(l, points)| Series {
                labels: to_labels(&l),
                points,
            })
            .collect())
    }

    /// The instant query's result, at the collector's end.
    pub fn eval_instant_value(self) -> Result<InstantValue, QueryError> {
        self.check_series()?;
        let (at_ns, query) = (self.end_ns, self.query);
        let data = self.finish();
        instant(&query.expr, at_ns, data.as_slice())
    }
}

fn to_labels(l: &[(String, String)]) -> Labels {
    l.iter().cloned().collect()
}

/// A label set's hash (fast, not keyed: collisions are resolved by comparing, and the label
/// sets of one query are bounded by [`MAX_SERIES`]).
fn hash_labels<'a>(labels: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = FxHasher::default();
    for (k, v) in labels {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// Where a grouping label's value is on an entry.
#[derive(Debug, Clone, Copy)]
enum Field {
    App,
    Source,
    Level,
    Type,
    /// A metadata key (the label's own name).
    Meta,
}

/// Most labels read straight off an entry.
const DIRECT_MAX: usize = 8;

/// The labels a sample keeps, read straight off an entry: for a range aggregation whose
/// pipeline only filters lines (and drops or keeps labels by name) and whose samples are
/// grouped `by` names, the labels are those names' values on the entry. Nothing is built per
/// entry; the result is the one the pipeline gives (`direct_labels_equal_the_pipelines`).
#[derive(Debug)]
struct Direct {
    /// Names (sorted, as labels are) and where each value is.
    fields: Vec<(String, Field)>,
    /// Whether an entry's metadata keys must be looked at ([`Direct::plain`]): when a field
    /// is metadata, or when `__error__` is left (a metadata key of that name is an error).
    /// Not for the log volume query (`by (level, detected_level)`, `| drop __error__`).
    check_metadata: bool,
    /// Whether every field is the level or the type: a label set is then a number below
    /// [`SMALL_KEYS`], and its series is found in a table.
    small: bool,
}

/// Level and type numbers (each below 16) make a small key: `level + 16 × type`.
const SMALL_KEYS: usize = 256;

impl Direct {
    fn plan(r: &RangeExpr, group: Option<&Grouping>) -> Option<Direct> {
        let Some(Grouping::By(names)) = group else {
            return None;
        };
        if !r.log.only_line_filters() {
            return None;
        }
        let mut names: Vec<&String> = names.iter().filter(|n| r.log.leaves_label(n)).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() > DIRECT_MAX {
            return None;
        }
        let check_metadata = r.log.leaves_label(ERROR)
            || names.iter().any(|n| {
                !matches!(
                    n.as_str(),
                    "app" | "source" | "level" | "detected_level" | "type"
                )
            });
        let fields: Vec<(String, Field)> = names
            .into_iter()
            .map(|n| {
                let f = match n.as_str() {
                    "app" => Field::App,
                    "source" => Field::Source,
                    "level" | "detected_level" => Field::Level,
                    "type" => Field::Type,
                    _ => Field::Meta,
                };
                (n.clone(), f)
            })
            .collect();
        let small = fields
            .iter()
            .all(|(_, f)| matches!(f, Field::Level | Field::Type));
        Some(Direct {
            fields,
            check_metadata,
            small,
        })
    }

    /// Whether an entry's metadata becomes labels as their keys read: each key a label name
    /// as written (no `_` for other characters), none starting `__` (`__error__` is a
    /// pipeline error). Else the entry takes the pipeline's way. (A key named as one of the
    /// entry's own labels, `level`, is not a label either way.)
    fn plain(e: &EntryView) -> bool {
        e.metadata.keys().all(|k| {
            let b = k.as_bytes();
            !b.is_empty()
                && !b[0].is_ascii_digit()
                && !k.starts_with("__")
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        })
    }

    /// The small key of an entry's labels (for a plan whose fields are all small).
    fn small_key(e: &EntryView) -> usize {
        usize::from(e.level.number() & 15) + 16 * usize::from(e.entry_type.number() & 15)
    }

    /// The values of the fields on an entry (`None`: no such label), in `out`.
    fn values<'r>(&self, row: &Row<'r>, out: &mut [Option<&'r str>; DIRECT_MAX]) {
        let e = row.entry;
        for ((name, f), v) in self.fields.iter().zip(out.iter_mut()) {
            *v = match f {
                Field::App => Some(row.app),
                Field::Source => Some(e.source.as_str()),
                Field::Level => Some(e.level.name()),
                Field::Type => Some(e.entry_type.name()),
                Field::Meta => e.metadata.get(name),
            };
        }
    }
}

/// Applies a range aggregation's log query to entries and finds the series each sample
/// goes to: shared by [`Collector`] and [`crate::Sliding`], which keep samples differently.
#[derive(Debug)]
pub(crate) struct Sampler {
    /// The labels a sample keeps (see `Expr::ranges`).
    group: Option<Grouping>,
    /// Set when the labels kept can be read straight off an entry.
    direct: Option<Direct>,
    /// Small key → series (see [`Direct::small`]); empty until used.
    small: Vec<usize>,
    index: FxHashMap<u64, Vec<usize>>,
}

impl Sampler {
    pub(crate) fn new(r: &RangeExpr, group: Option<&Grouping>) -> Sampler {
        Sampler {
            group: group.cloned(),
            direct: Direct::plan(r, group),
            small: Vec::new(),
            index: FxHashMap::default(),
        }
    }

    /// Forgets which series are where (after the caller removed some): the next samples
    /// find or make theirs again.
    pub(crate) fn reindex<S: Keyed>(&mut self, series: &[S]) {
        self.small.clear();
        self.index.clear();
        for (i, s) in series.iter().enumerate() {
            let h = hash_labels(s.labels().iter().map(|(k, v)| (k.as_str(), v.as_str())));
            self.index.entry(h).or_default().push(i);
        }
    }

    /// The series (in `series`, made when new) and value of an entry's sample, or `None`
    /// when the log query drops the entry. Fails on a pipeline error left in a sample
    /// (Loki's `__error__` rule) and past [`MAX_SERIES`].
    pub(crate) fn sample<'r, S: Keyed>(
        &mut self,
        r: &RangeExpr,
        row: &Row<'r>,
        ctx: &mut Ctx<'r>,
        series: &mut Vec<S>,
    ) -> Result<Option<(usize, f64)>, QueryError> {
        if let Some(d) = &self.direct
            && (!d.check_metadata || Direct::plain(row.entry))
        {
            if !r.log.passes_line_filters(row) {
                return Ok(None);
            }
            let value = match r.func {
                RangeFn::Bytes | RangeFn::BytesRate => row.entry.payload.len() as f64,
                _ => 1.0,
            };
            let small = d.small.then(|| Direct::small_key(row.entry));
            if let Some(k) = small
                && let Some(&idx) = self.small.get(k)
                && idx != usize::MAX
            {
                return Ok(Some((idx, value)));
            }
            let mut values = [None; DIRECT_MAX];
            d.values(row, &mut values);
            let labels = || {
                d.fields
                    .iter()
                    .zip(values)
                    .filter_map(|((n, _), v)| Some((n.as_str(), v?)))
            };
            let idx = series_index(&mut self.index, series, labels)?;
            if let Some(k) = small {
                if self.small.is_empty() {
                    self.small = vec![usize::MAX; SMALL_KEYS];
                }
                self.small[k] = idx;
            }
            return Ok(Some((idx, value)));
        }
        if !r.log.run(row, ctx) {
            return Ok(None);
        }
        if let Some(err) = ctx.get(ERROR) {
            let details = ctx.get(ERROR_DETAILS).unwrap_or("");
            let labels: Vec<String> = ctx
                .labels
                .iter()
                .filter(|l| l.name != ERROR && l.name != ERROR_DETAILS)
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect();
            return Err(QueryError::eval(format!(
                "pipeline error: '{err}' ({details}) for series: '{{{}}}'. Use a label filter to intentionally skip this error (e.g. | __error__!=\"{err}\"), or | drop __error__; to skip all potential errors match empty errors (e.g. | __error__=\"\"); the label filter can also be given after unwrap (e.g. | unwrap latency | __error__=\"\")",
                labels.join(", ")
            )));
        }
        let value = match r.func {
            RangeFn::Bytes | RangeFn::BytesRate => ctx.line.len() as f64,
            _ => ctx.value.unwrap_or(1.0),
        };
        // The labels kept, sorted by name (a few: sorted in place, no allocation).
        let labels = &mut ctx.labels;
        if let Some(g) = &self.group {
            labels.retain(|l| g.keeps(&l.name));
        }
        labels.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        let labels = &*labels;
        let idx = series_index(&mut self.index, series, || {
            labels.iter().map(|l| (&*l.name, &*l.value))
        })?;
        Ok(Some((idx, value)))
    }
}

impl RangeAcc {
    fn push<'r>(
        &mut self,
        r: &RangeExpr,
        row: &Row<'r>,
        ctx: &mut Ctx<'r>,
    ) -> Result<(), QueryError> {
        let ts = row.entry.timestamp_ns;
        if ts <= self.from || ts > self.to {
            return Ok(());
        }
        if let Some((idx, value)) = self.sampler.sample(r, row, ctx, &mut self.series)? {
            self.record(idx, ts, value);
        }
        Ok(())
    }

    /// Keeps a sample of series `idx`: added to its steps, or kept (and the series' samples
    /// moved to steps once there are [`StepPlan::samples_kept`] of them).
    fn record(&mut self, idx: usize, ts: i64, value: f64) {
        let s = &mut self.series[idx];
        if let Some(st) = &mut s.steps {
            st.add(ts, value);
            return;
        }
        s.ts.push(ts);
        s.vals.push(value);
        if let Some(plan) = self.plan
            && s.ts.len() >= plan.samples_kept()
            && self.cells + plan.points <= STEPS_MAX_CELLS
        {
            self.cells += plan.points;
            to_steps(s, plan);
        }
    }
}

/// Moves a series' samples to steps.
fn to_steps(s: &mut SeriesAcc, plan: StepPlan) {
    let mut st = plan.steps();
    for (&t, &v) in s.ts.iter().zip(&s.vals) {
        st.add(t, v);
    }
    s.ts = Vec::new();
    s.vals = Vec::new();
    s.steps = Some(st);
}

/// Adds `other`'s samples to `mine` (the same labels, from collectors of the same query,
/// bounds and step; a series kept per step carries its plan).
fn merge_series(mine: &mut SeriesAcc, other: SeriesAcc) {
    if mine.steps.is_none()
        && let Some(o) = &other.steps
    {
        to_steps(mine, o.plan);
    }
    match (&mut mine.steps, other.steps) {
        (Some(m), Some(o)) => m.add_steps(&o),
        (Some(m), None) => {
            for (&t, &v) in other.ts.iter().zip(&other.vals) {
                m.add(t, v);
            }
        }
        (None, _) => {
            mine.ts.extend(other.ts);
            mine.vals.extend(other.vals);
        }
    }
}

/// What a series store holds per series: its labels, and how to make an empty one.
pub(crate) trait Keyed {
    fn labels(&self) -> &[(String, String)];
    fn with_labels(labels: Vec<(String, String)>) -> Self;
}

impl Keyed for SeriesAcc {
    fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    fn with_labels(labels: Vec<(String, String)>) -> Self {
        SeriesAcc {
            labels,
            ts: Vec::new(),
            vals: Vec::new(),
            steps: None,
        }
    }
}

/// The series of `labels` (sorted by name; called to hash, to compare, and to keep when
/// new), made when new.
fn series_index<'l, S: Keyed, I>(
    index: &mut FxHashMap<u64, Vec<usize>>,
    series: &mut Vec<S>,
    labels: impl Fn() -> I,
) -> Result<usize, QueryError>
where
    I: Iterator<Item = (&'l str, &'l str)>,
{
    let h = hash_labels(labels());
    let bucket = index.entry(h).or_default();
    let same = |s: &S| {
        let mut mine = s.labels().iter();
        let mut theirs = labels();
        loop {
            match (mine.next(), theirs.next()) {
                (None, None) => return true,
                (Some((n, v)), Some((m, w))) if n == m && v == w => {}
                _ => return false,
            }
        }
    };
    let idx = match bucket.iter().copied().find(|&i| same(&series[i])) {
        Some(i) => i,
        None => {
            if series.len() >= MAX_SERIES {
                return Err(too_many_series());
            }
            series.push(S::with_labels(
                labels()
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect(),
            ));
            bucket.push(series.len() - 1);
            series.len() - 1
        }
    };
    Ok(idx)
}

/// Where the evaluator reads a range aggregation's samples: a collector's series, or
/// [`crate::Sliding`]'s buckets.
pub(crate) trait RangeData {
    /// The `i`-th range aggregation's vector at `t`.
    fn range_at(&self, i: usize, r: &RangeExpr, t: i64) -> Vec<(Lbls, f64)>;
}

impl RangeData for [Vec<SeriesData>] {
    fn range_at(&self, i: usize, r: &RangeExpr, t: i64) -> Vec<(Lbls, f64)> {
        range_at(r, &self[i], t)
    }
}

/// A query's value at `t`, as an instant query answers (a vector sorted by labels).
pub(crate) fn instant<D: RangeData + ?Sized>(
    e: &Expr,
    t: i64,
    data: &D,
) -> Result<InstantValue, QueryError> {
    let mut next = 0;
    Ok(match eval(e, t, data, &mut next)? {
        Value::Scalar(s) => InstantValue::Scalar(s),
        Value::Vector(mut v) => {
            v.sort_by(|a, b| a.0.cmp(&b.0));
            InstantValue::Vector(v.into_iter().map(|(l, x)| (to_labels(&l), x)).collect())
        }
    })
}

fn eval<D: RangeData + ?Sized>(
    e: &Expr,
    t: i64,
    data: &D,
    next: &mut usize,
) -> Result<Value, QueryError> {
    Ok(match e {
        Expr::Num(n) => Value::Scalar(*n),
        Expr::Vector(v) => Value::Vector(vec![(Rc::default(), *v)]),
        Expr::Neg(inner) => match eval(inner, t, data, next)? {
            Value::Scalar(s) => Value::Scalar(-s),
            Value::Vector(v) => Value::Vector(v.into_iter().map(|(l, x)| (l, -x)).collect()),
        },
        Expr::Range(r) => {
            let i = *next;
            *next += 1;
            Value::Vector(data.range_at(i, r, t))
        }
        Expr::Agg {
            op,
            param,
            grouping,
            expr,
        } => {
            let v = match eval(expr, t, data, next)? {
                Value::Vector(v) => v,
                Value::Scalar(_) => {
                    return Err(QueryError::eval(format!(
                        "{} needs a vector, got a scalar (use vector(…))",
                        op.name()
                    )));
                }
            };
            Value::Vector(aggregate(*op, *param, grouping.as_ref(), v))
        }
        Expr::Bin {
            op,
            bool_mod,
            lhs,
            rhs,
        } => {
            let l = eval(lhs, t, data, next)?;
            let r = eval(rhs, t, data, next)?;
            binary(*op, *bool_mod, l, r)?
        }
    })
}

fn range_at(r: &RangeExpr, series: &[SeriesData], t: i64) -> Vec<(Lbls, f64)> {
    let hi = t.saturating_sub(r.offset_ns);
    let lo = hi.saturating_sub(r.range_ns);
    let mut out = Vec::new();
    for s in series {
        if let Some(st) = &s.steps {
            let off = i128::from(t) - i128::from(st.plan.start);
            let step = i128::from(st.plan.step);
            let cell = (off >= 0 && off % step == 0)
                .then(|| st.cells.get((off / step) as usize))
                .flatten();
            let Some(&(sum, n)) = cell else {
                continue;
            };
            if n == 0 {
                continue;
            }
            // Avg, max and min never kept per step (they do not add up).
            if !r.func.adds_up() {
                continue;
            }
            let v = r.value(Window {
                sum,
                count: n as f64,
                max: f64::NAN,
                min: f64::NAN,
            });
            out.push((s.labels.clone(), v));
            continue;
        }
        let a = s.ts.partition_point(|&x| x <= lo);
        let b = s.ts.partition_point(|&x| x <= hi);
        if a == b {
            continue;
        }
        let w = &s.vals[a..b];
        // Only what the function reads is computed.
        let extreme = |larger: bool| {
            w.iter().copied().fold(f64::NAN, |m, x| {
                if m.is_nan() || (larger && x > m) || (!larger && x < m) {
                    x
                } else {
                    m
                }
            })
        };
        let v = r.value(Window {
            sum: if r.reads_sum() {
                w.iter().sum::<f64>()
            } else {
                0.0
            },
            count: w.len() as f64,
            max: if r.func == RangeFn::Max {
                extreme(true)
            } else {
                f64::NAN
            },
            min: if r.func == RangeFn::Min {
                extreme(false)
            } else {
                f64::NAN
            },
        });
        out.push((s.labels.clone(), v));
    }
    out
}

fn group_key(labels: &[(String, String)], g: Option<&Grouping>) -> Vec<(String, String)> {
    match g {
        None => Vec::new(),
        Some(g) => labels.iter().filter(|(n, _)| g.keeps(n)).cloned().collect(),
    }
}

fn aggregate(
    op: AggOp,
    param: Option<usize>,
    g: Option<&Grouping>,
    v: Vec<(Lbls, f64)>,
) -> Vec<(Lbls, f64)> {
    if matches!(op, AggOp::Topk | AggOp::Bottomk) {
        let k = param.unwrap_or(1);
        let mut groups: BTreeMap<Vec<(String, String)>, Vec<Sample>> = BTreeMap::new();
        for (l, x) in v {
            groups.entry(group_key(&l, g)).or_default().push((l, x));
        }
        let mut out = Vec::new();
        for (_, mut members) in groups {
            // Largest (smallest) first; NaN last either way; ties by labels.
            members.sort_by(|a, b| {
                let ord = match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ if op == AggOp::Topk => b.1.total_cmp(&a.1),
                    _ => a.1.total_cmp(&b.1),
                };
                ord.then_with(|| a.0.cmp(&b.0))
            });
            members.truncate(k);
            out.extend(members);
        }
        return out;
    }
    // (value, count) per group, in first-seen order made deterministic by the BTreeMap.
    let mut groups: BTreeMap<Vec<(String, String)>, (f64, f64)> = BTreeMap::new();
    for (l, x) in v {
        let acc = groups.entry(group_key(&l, g)).or_insert((f64::NAN, 0.0));
        acc.1 += 1.0;
        acc.0 = match op {
            AggOp::Sum | AggOp::Avg => {
                if acc.1 == 1.0 {
                    x
                } else {
                    acc.0 + x
                }
            }
            AggOp::Count => acc.1,
            AggOp::Max => {
                if acc.0.is_nan() || x > acc.0 {
                    x
                } else {
                    acc.0
                }
            }
            AggOp::Min => {
                if acc.0.is_nan() || x < acc.0 {
                    x
                } else {
                    acc.0
                }
            }
            AggOp::Topk | AggOp::Bottomk => acc.0,
        };
    }
    groups
        .into_iter()
        .map(|(l, (x, n))| (Rc::new(l), if op == AggOp::Avg { x / n } else { x }))
        .collect()
}

fn binary(op: BinOp, bool_mod: bool, l: Value, r: Value) -> Result<Value, QueryError> {
    let is_cmp = matches!(op, BinOp::Cmp(_));
    // The value a comparison keeps (the vector's), or the result.
    let elem = |vec_value: f64, a: f64, b: f64| -> Option<f64> {
        let x = op.apply(a, b);
        if !is_cmp || bool_mod {
            Some(x)
        } else if x == 1.0 {
            Some(vec_value)
        } else {
            None
        }
    };
    Ok(match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => Value::Scalar(op.apply(a, b)),
        (Value::Vector(v), Value::Scalar(s)) => Value::Vector(
            v.into_iter()
                .filter_map(|(l, x)| elem(x, x, s).map(|y| (l, y)))
                .collect(),
        ),
        (Value::Scalar(s), Value::Vector(v)) => Value::Vector(
            v.into_iter()
                .filter_map(|(l, x)| elem(x, s, x).map(|y| (l, y)))
                .collect(),
        ),
        (Value::Vector(lv), Value::Vector(rv)) => {
            let mut right: HashMap<Lbls, f64> = HashMap::with_capacity(rv.len());
            for (l, x) in rv {
                if right.insert(l.clone(), x).is_some() {
                    return Err(duplicate(&l, "right"));
                }
            }
            let mut seen: HashMap<Lbls, ()> = HashMap::with_capacity(lv.len());
            let mut out = Vec::new();
            for (l, x) in lv {
                if seen.insert(l.clone(), ()).is_some() {
                    return Err(duplicate(&l, "left"));
                }
                if let Some(&y) = right.get(&l)
                    && let Some(z) = elem(x, x, y)
                {
                    out.push((l, z));
                }
            }
            Value::Vector(out)
        }
    })
}

fn duplicate(l: &[(String, String)], side: &str) -> QueryError {
    let s: Vec<String> = l.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    QueryError::eval(format!(
        "found duplicate series for the match group {{{}}} on the {side} hand-side of the operation; aggregate first (sum by (…))",
        s.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Query, parse};
    use logflux_proto::{Entry, Level};

    const S: i64 = 1_000_000_000;

    /// Series past the cell budget keep samples; collectors holding a series both ways merge
    /// into the result one collector that keeps every sample gives.
    #[test]
    fn series_beyond_the_cell_budget_keep_samples_and_merge_with_stepped_ones() {
        let Ok(Query::Metric(m)) = parse(r#"sum by (source) (count_over_time({app="web"}[1m]))"#)
        else {
            panic!()
        };
        let entries: Vec<EntryView> = (0..300)
            .map(|i| {
                Entry::new(
                    i * S,
                    Level::ALL[(i % 8) as usize],
                    ["a", "b", "c"][(i % 3) as usize],
                    "x",
                )
                .into()
            })
            .collect();
        let rows: Vec<Row<'_>> = entries
            .iter()
            .map(|e| Row {
                app: "web",
                entry: e,
            })
            .collect();
        let (start, end, step) = (60 * S, 300 * S, 30 * S);
        let mut whole = m.collector(start, end);
        whole.push_all(&rows).unwrap();
        assert!(whole.ranges[0].plan.is_none());
        let want = whole.eval_range(step).unwrap();
        assert_eq!(want.len(), 3);

        // Room for one series' steps in the first collector, none in the second.
        let mut a = m.range_collector(start, end, step);
        let points = a.ranges[0].plan.unwrap().points;
        a.ranges[0].cells = STEPS_MAX_CELLS - points;
        a.push_all(&rows[..150]).unwrap();
        let stepped = |c: &Collector<'_>| {
            c.ranges[0]
                .series
                .iter()
                .filter(|s| s.steps.is_some())
                .count()
        };
        assert_eq!(stepped(&a), 1);
        let mut b = m.range_collector(start, end, step);
        b.ranges[0].cells = STEPS_MAX_CELLS;
        b.push_all(&rows[150..]).unwrap();
        assert_eq!(stepped(&b), 0);
        // Either way round.
        let mut b2 = m.range_collector(start, end, step);
        b2.ranges[0].cells = STEPS_MAX_CELLS;
        b2.push_all(&rows[150..]).unwrap();
        let mut a2 = m.range_collector(start, end, step);
        a2.ranges[0].cells = STEPS_MAX_CELLS - points;
        a2.push_all(&rows[..150]).unwrap();
        a.merge(b);
        b2.merge(a2);
        assert_eq!(a.eval_range(step).unwrap(), want);
        assert_eq!(b2.eval_range(step).unwrap(), want);
    }

    #[test]
    fn a_stepped_collector_refuses_another_step() {
        let Ok(Query::Metric(m)) = parse(r#"count_over_time({app="web"}[1m])"#) else {
            panic!()
        };
        let entries: Vec<EntryView> = (0..600)
            .map(|i| Entry::new(i * S, Level::Info, "a", "x").into())
            .collect();
        let rows: Vec<Row<'_>> = entries
            .iter()
            .map(|e| Row {
                app: "web",
                entry: e,
            })
            .collect();
        let mut c = m.range_collector(0, 600 * S, 60 * S);
        c.push_all(&rows).unwrap();
        assert!(c.ranges[0].series[0].steps.is_some());
        let e = c.eval_range(30 * S).unwrap_err().to_string();
        assert!(e.contains("by a step of 60000000000 ns"), "{e}");
        // A collector that keeps samples takes any step, and merges stepped series in.
        let mut d = m.collector(0, 600 * S);
        let mut stepped = m.range_collector(0, 600 * S, 60 * S);
        stepped.push_all(&rows[..300]).unwrap();
        d.push_all(&rows[300..]).unwrap();
        d.merge(stepped);
        assert_eq!(
            d.eval_range(60 * S).unwrap(),
            m.eval_range(&rows, 0, 600 * S, 60 * S).unwrap()
        );
    }
}
