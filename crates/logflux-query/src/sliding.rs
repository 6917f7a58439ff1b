//! A metric query kept up to date over a live stream: entries are added as they arrive, and
//! the query is evaluated at instants that move forward (an alerting rule's evaluations),
//! without keeping entries or querying them again.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::log::Ctx;
use crate::metric::{Keyed, Lbls, RangeData, RangeExpr, Sampler, Window, instant};
use crate::{InstantValue, MetricQuery, QueryError, Row};

/// One second: the default granularity of [`MetricQuery::sliding`].
pub const DEFAULT_GRANULARITY_NS: i64 = 1_000_000_000;

/// A metric query evaluated over a stream (see [`MetricQuery::sliding`]).
///
/// Each range aggregation keeps, per series, buckets of `granularity` holding the sum,
/// number, largest and smallest of the samples in `(k × g − g, k × g]`. When the instant and
/// every range and offset are multiples of the granularity (checked), a window is a whole
/// number of buckets and every function is exact: the result is the instant query's over the
/// same entries, up to the order in which floats were added.
///
/// Evaluations move forward: after [`Sliding::eval_at`] at `t`, buckets no later evaluation
/// can read (at or before `t − offset − range`) are forgotten, and entries that old are
/// dropped when they arrive ([`Sliding::dropped`] counts them). Series with no bucket left
/// are forgotten too, so labels that come and go do not pile up towards [`crate::MAX_SERIES`].
#[derive(Debug)]
pub struct Sliding {
    query: MetricQuery,
    granularity: i64,
    ranges: Vec<RangeBuckets>,
    /// The last evaluation's instant.
    last_at: Option<i64>,
    dropped: u64,
}

#[derive(Debug)]
struct RangeBuckets {
    expr: RangeExpr,
    sampler: Sampler,
    granularity: i64,
    series: Vec<SeriesBuckets>,
    /// Entries at or before this are read by no later evaluation.
    horizon: i64,
}

#[derive(Debug)]
struct SeriesBuckets {
    labels: Vec<(String, String)>,
    /// Bucket `k` → its samples' window; `k` holds `(k × g − g, k × g]`.
    cells: BTreeMap<i64, Window>,
}

impl Keyed for SeriesBuckets {
    fn labels(&self) -> &[(String, String)] {
        &self.labels
    }

    fn with_labels(labels: Vec<(String, String)>) -> Self {
        SeriesBuckets {
            labels,
            cells: BTreeMap::new(),
        }
    }
}

impl MetricQuery {
    /// This query kept up to date over a stream, in buckets of `granularity_ns` (see
    /// [`Sliding`]; [`DEFAULT_GRANULARITY_NS`] is one second). Refuses a granularity that
    /// does not divide every range and offset of the query, since windows would then cut
    /// buckets.
    pub fn sliding(&self, granularity_ns: i64) -> Result<Sliding, QueryError> {
        if granularity_ns <= 0 {
            return Err(QueryError::eval(format!(
                "the granularity must be positive, got {granularity_ns} ns"
            )));
        }
        let mut ranges = Vec::new();
        self.expr.ranges(&mut ranges);
        let g = format_duration(granularity_ns);
        for (r, _) in &ranges {
            if r.range_ns % granularity_ns != 0 {
                return Err(QueryError::eval(format!(
                    "the range [{}] of {} is not a multiple of the evaluation granularity {g}: use a range in whole units of {g}",
                    format_duration(r.range_ns),
                    r.func.name()
                )));
            }
            if r.offset_ns % granularity_ns != 0 {
                return Err(QueryError::eval(format!(
                    "the offset {} of {} is not a multiple of the evaluation granularity {g}: use an offset in whole units of {g}",
                    format_duration(r.offset_ns),
                    r.func.name()
                )));
            }
        }
        Ok(Sliding {
            query: self.clone(),
            granularity: granularity_ns,
            ranges: ranges
                .into_iter()
                .map(|(r, group)| RangeBuckets {
                    expr: r.clone(),
                    sampler: Sampler::new(r, group),
                    granularity: granularity_ns,
                    series: Vec::new(),
                    horizon: i64::MIN,
                })
                .collect(),
            last_at: None,
            dropped: 0,
        })
    }
}

impl Sliding {
    /// The query this evaluates.
    pub fn query(&self) -> &MetricQuery {
        &self.query
    }

    /// The bucket width, in ns.
    pub fn granularity_ns(&self) -> i64 {
        self.granularity
    }

    /// Entries dropped because they arrived after every evaluation that could read them
    /// (older than the last evaluation's window for some range aggregation).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Series held, in all range aggregations.
    pub fn series(&self) -> usize {
        self.ranges.iter().map(|r| r.series.len()).sum()
    }

    /// Adds one entry at its own timestamp (entries may come in any order). Fails on a
    /// pipeline error left in a sample (Loki's `__error__` rule, as an instant query would)
    /// and past [`crate::MAX_SERIES`] series in one range aggregation.
    pub fn push(&mut self, row: &Row<'_>) -> Result<(), QueryError> {
        let ts = row.entry.timestamp_ns;
        let g = self.granularity;
        let mut ctx = Ctx::default();
        let mut late = false;
        for rb in &mut self.ranges {
            if ts <= rb.horizon {
                late = true;
                continue;
            }
            let Some((idx, v)) = rb.sampler.sample(&rb.expr, row, &mut ctx, &mut rb.series)? else {
                continue;
            };
            // Bucket k holds (k·g − g, k·g]: k = ⌈ts / g⌉.
            let k = ts.div_euclid(g) + i64::from(ts.rem_euclid(g) != 0);
            rb.series[idx]
                .cells
                .entry(k)
                .and_modify(|w| {
                    w.sum += v;
                    w.count += 1.0;
                    // As the instant query's fold: a NaN so far gives way.
                    if w.max.is_nan() || v > w.max {
                        w.max = v;
                    }
                    if w.min.is_nan() || v < w.min {
                        w.min = v;
                    }
                })
                .or_insert(Window {
                    sum: v,
                    count: 1.0,
                    max: v,
                    min: v,
                });
        }
        if late {
            self.dropped += 1;
        }
        Ok(())
    }

    /// The query's value at `at_ns` (a multiple of the granularity, not before the last
    /// evaluation), as [`MetricQuery::eval_instant_value`] would give over the entries
    /// pushed; then forgets what no later evaluation can read.
    pub fn eval_at(&mut self, at_ns: i64) -> Result<InstantValue, QueryError> {
        let g = self.granularity;
        if at_ns % g != 0 {
            return Err(QueryError::eval(format!(
                "the evaluation time {at_ns} ns is not a multiple of the granularity {g} ns"
            )));
        }
        if let Some(last) = self.last_at
            && at_ns < last
        {
            return Err(QueryError::eval(format!(
                "evaluations move forward: {at_ns} ns is before the last one, {last} ns"
            )));
        }
        let value = instant(&self.query.expr, at_ns, self.ranges.as_slice())?;
        self.last_at = Some(at_ns);
        for rb in &mut self.ranges {
            let lo = window(&rb.expr, at_ns).0;
            rb.horizon = rb.horizon.max(lo);
            // Buckets k with k·g <= lo hold only entries at or before lo.
            let keep_from = lo.div_euclid(g).saturating_add(1);
            let before = rb.series.len();
            rb.series.retain_mut(|s| {
                s.cells = s.cells.split_off(&keep_from);
                !s.cells.is_empty()
            });
            if rb.series.len() != before {
                rb.sampler.reindex(&rb.series);
            }
        }
        Ok(value)
    }
}

/// A range aggregation's window at `t`: `(lo, hi]`.
fn window(r: &RangeExpr, t: i64) -> (i64, i64) {
    let hi = t.saturating_sub(r.offset_ns);
    (hi.saturating_sub(r.range_ns), hi)
}

impl RangeData for [RangeBuckets] {
    fn range_at(&self, i: usize, r: &RangeExpr, t: i64) -> Vec<(Lbls, f64)> {
        let rb = &self[i];
        let (lo, hi) = window(r, t);
        let g = rb.granularity;
        // Buckets wholly inside (lo, hi]: lo/g + 1 ..= hi/g (both multiples of g).
        let (first, last) = (lo.div_euclid(g).saturating_add(1), hi.div_euclid(g));
        let mut out = Vec::new();
        if first > last {
            return out;
        }
        for s in &rb.series {
            let mut acc: Option<Window> = None;
            for w in s.cells.range(first..=last).map(|(_, w)| *w) {
                acc = Some(match acc {
                    None => w,
                    Some(a) => Window {
                        sum: a.sum + w.sum,
                        count: a.count + w.count,
                        max: if a.max.is_nan() || w.max > a.max {
                            w.max
                        } else {
                            a.max
                        },
                        min: if a.min.is_nan() || w.min < a.min {
                            w.min
                        } else {
                            a.min
                        },
                    },
                });
            }
            if let Some(w) = acc {
                out.push((Rc::new(s.labels.clone()), r.value(w)));
            }
        }
        out
    }
}

/// A duration as LogQL writes it (`1h30m`, `90s`, `1500ms`; ns below a millisecond).
pub fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let mut rest = ns.unsigned_abs();
    const MS: u64 = 1_000_000;
    if !rest.is_multiple_of(MS) {
        out.push_str(&format!("{rest}ns"));
        return out;
    }
    for (unit, width) in [
        ("h", 3_600_000 * MS),
        ("m", 60_000 * MS),
        ("s", 1_000 * MS),
        ("ms", MS),
    ] {
        if rest >= width {
            out.push_str(&format!("{}{unit}", rest / width));
            rest %= width;
        }
    }
    out
}
