//! Every metric function and aggregation against numbers worked out by hand on a small
//! fixed dataset.
//!
//! The dataset (application `web`; payload length in bytes after the `/`):
//!
//! | row | ts  | level | source | payload       | bytes |
//! |-----|-----|-------|--------|---------------|-------|
//! | 1   | 10s | info  | api    | `took=3 a`    | 8     |
//! | 2   | 20s | error | api    | `took=5 bb`   | 9     |
//! | 3   | 40s | info  | db     | `took=10 c`   | 9     |
//! | 4   | 70s | info  | api    | `took=2 dddd` | 11    |
//! | 5   | 100s| error | db     | `took=7 e`    | 8     |
//!
//! Range queries run from 60s to 120s with a 60s step and `[1m]` ranges, so the windows are
//! `(0s, 60s]` = rows 1, 2, 3 and `(60s, 120s]` = rows 4, 5.

#![allow(clippy::unwrap_used)]

use logflux_proto::{EntryView, Level};
use logflux_query::{InstantValue, Labels, MetricQuery, Query, Row, parse};

const S: i64 = 1_000_000_000;

fn data() -> Vec<EntryView> {
    [
        (10, Level::Info, "api", "took=3 a"),
        (20, Level::Error, "api", "took=5 bb"),
        (40, Level::Info, "db", "took=10 c"),
        (70, Level::Info, "api", "took=2 dddd"),
        (100, Level::Error, "db", "took=7 e"),
    ]
    .into_iter()
    .map(|(t, l, s, p)| logflux_proto::Entry::new(t * S, l, s, p).into())
    .collect()
}

fn metric(q: &str) -> MetricQuery {
    match parse(q) {
        Ok(Query::Metric(m)) => m,
        other => panic!("{q}: {other:?}"),
    }
}

/// The range result as `labels => [(t seconds, value)]` lines, labels shown as `k=v,…` of the
/// label names in `show` only.
fn range(q: &str, show: &[&str]) -> Vec<String> {
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let m = metric(q)
        .eval_range(&rows, 60 * S, 120 * S, 60 * S)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    m.into_iter()
        .map(|s| {
            let pts: Vec<String> = s
                .points
                .iter()
                .map(|(t, v)| format!("{}:{}", t / S, fmt(*v)))
                .collect();
            format!("{{{}}} {}", show_labels(&s.labels, show), pts.join(" "))
        })
        .collect()
}

fn fmt(v: f64) -> String {
    if v.fract() == 0.0 && v.is_finite() {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

fn show_labels(l: &Labels, show: &[&str]) -> String {
    l.iter()
        .filter(|(k, _)| show.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn instant(q: &str, at: i64, show: &[&str]) -> Vec<String> {
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    metric(q)
        .eval_instant(&rows, at * S)
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .into_iter()
        .map(|(l, v)| format!("{{{}}} {}", show_labels(&l, show), fmt(v)))
        .collect()
}

#[test]
fn range_functions() {
    let lv = &["level"];
    let src = &["source"];
    // Rows 1, 3 are info and row 2 error at 60s; row 4 info, row 5 error at 120s.
    assert_eq!(
        range(r#"sum by (level) (count_over_time({app="web"}[1m]))"#, lv),
        ["{level=error} 60:1 120:1", "{level=info} 60:2 120:1"]
    );
    // count_over_time keeps every label: one series per source and level.
    assert_eq!(
        range(r#"count_over_time({app="web"}[1m])"#, &["level", "source"]),
        [
            "{level=error,source=api} 60:1",
            "{level=error,source=db} 120:1",
            "{level=info,source=api} 60:1 120:1",
            "{level=info,source=db} 60:1",
        ]
    );
    // rate = count / 60s: 2/60 = 0.0333, 1/60 = 0.0167.
    assert_eq!(
        range(r#"sum by (level) (rate({app="web"}[1m]))"#, lv),
        [
            "{level=error} 60:0.0167 120:0.0167",
            "{level=info} 60:0.0333 120:0.0167"
        ]
    );
    // bytes: api 8 + 9 = 17 and db 9 at 60s; api 11 and db 8 at 120s.
    assert_eq!(
        range(r#"sum by (source) (bytes_over_time({app="web"}[1m]))"#, src),
        ["{source=api} 60:17 120:11", "{source=db} 60:9 120:8"]
    );
    // bytes_rate: 17/60 = 0.2833, 11/60 = 0.1833, 9/60 = 0.15, 8/60 = 0.1333.
    assert_eq!(
        range(r#"sum by (source) (bytes_rate({app="web"}[1m]))"#, src),
        [
            "{source=api} 60:0.2833 120:0.1833",
            "{source=db} 60:0.1500 120:0.1333"
        ]
    );
    let took = r#"{app="web"} | logfmt | unwrap took"#;
    // sum: api 3 + 5 = 8, db 10; api 2, db 7.
    assert_eq!(
        range(&format!("sum_over_time({took} [1m]) by (source)"), src),
        ["{source=api} 60:8 120:2", "{source=db} 60:10 120:7"]
    );
    // avg: api (3 + 5) / 2 = 4, db 10; api 2, db 7.
    assert_eq!(
        range(&format!("avg_over_time({took} [1m]) by (source)"), src),
        ["{source=api} 60:4 120:2", "{source=db} 60:10 120:7"]
    );
    // max by level: info max(3, 10) = 10, error 5; info 2, error 7.
    assert_eq!(
        range(&format!("max_over_time({took} [1m]) by (level)"), lv),
        ["{level=error} 60:5 120:7", "{level=info} 60:10 120:2"]
    );
    // min by level: info min(3, 10) = 3, error 5; info 2, error 7.
    assert_eq!(
        range(&format!("min_over_time({took} [1m]) by (level)"), lv),
        ["{level=error} 60:5 120:7", "{level=info} 60:3 120:2"]
    );
    // rate of an unwrapped value = sum / 60s: api 8/60 = 0.1333, db 10/60 = 0.1667.
    assert_eq!(
        range(&format!("rate({took} [1m]) by (source)"), src),
        [
            "{source=api} 60:0.1333 120:0.0333",
            "{source=db} 60:0.1667 120:0.1167"
        ]
    );
    // The unwrapped label is not a label of the result.
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let m = metric(&format!(
        "sum_over_time({took} | drop a, bb, c, dddd, e [1m])"
    ))
    .eval_range(&rows, 60 * S, 60 * S, S)
    .unwrap();
    assert!(m.iter().all(|s| !s.labels.contains_key("took")), "{m:?}");
    // offset 1m: at 120s the window is (0s, 60s] again, 3 rows.
    assert_eq!(
        range(r#"sum(count_over_time({app="web"}[1m] offset 1m))"#, lv),
        ["{} 120:3"],
        "at 60s the window (-60s, 0s] is empty: no point"
    );
    // A longer range: at 60s (-60s, 60s] = 3 rows; at 120s (0s, 120s] = 5 rows.
    assert_eq!(
        range(r#"sum(count_over_time({app="web"}[2m]))"#, lv),
        ["{} 60:3 120:5"]
    );
}

/// Per-series values at 60s of `sum_over_time(… | unwrap took [1m]) by (source, level)`:
/// api/info 3, api/error 5, db/info 10.
const PER_SERIES: &str =
    r#"sum_over_time({app="web"} | logfmt | unwrap took [1m]) by (source, level)"#;

#[test]
fn aggregations() {
    let sl = &["source", "level"];
    let at = |agg: &str| instant(&agg.replace("X", PER_SERIES), 60, sl);
    // sum by source: api 3 + 5 = 8, db 10.
    assert_eq!(
        at("sum by (source) (X)"),
        ["{source=api} 8", "{source=db} 10"]
    );
    // Grouping after the expression is the same.
    assert_eq!(
        at("sum(X) by (source)"),
        ["{source=api} 8", "{source=db} 10"]
    );
    // without (level): the source remains.
    assert_eq!(
        at("sum without (level) (X)"),
        ["{source=api} 8", "{source=db} 10"]
    );
    // count: 3 series; avg: (3 + 5 + 10) / 3 = 6; min 3; max 10.
    assert_eq!(at("count(X)"), ["{} 3"]);
    assert_eq!(at("avg(X)"), ["{} 6"]);
    assert_eq!(at("min(X)"), ["{} 3"]);
    assert_eq!(at("max(X)"), ["{} 10"]);
    // count by level: info 2 (api, db), error 1; avg by level: info (3 + 10) / 2 = 6.5.
    assert_eq!(
        at("count by (level) (X)"),
        ["{level=error} 1", "{level=info} 2"]
    );
    assert_eq!(
        at("avg by (level) (X)"),
        ["{level=error} 5", "{level=info} 6.5000"]
    );
    // topk(2): 10 (db/info) and 5 (api/error), original labels kept.
    assert_eq!(
        at("topk(2, X)"),
        ["{level=error,source=api} 5", "{level=info,source=db} 10"]
    );
    // bottomk(1): 3 (api/info).
    assert_eq!(at("bottomk(1, X)"), ["{level=info,source=api} 3"]);
    // topk by source (1): api max(3, 5) = 5, db 10.
    assert_eq!(
        at("topk by (source) (1, X)"),
        ["{level=error,source=api} 5", "{level=info,source=db} 10"]
    );
}

#[test]
fn binary_operations_and_scalars() {
    let lv = &["level"];
    let counts = r#"sum by (level) (count_over_time({app="web"}[1m]))"#;
    // At 60s info 2, error 1; at 120s info 1, error 1.
    // * 2 + 1: info 2*2+1 = 5, error 1*2+1 = 3; at 120s 3 and 3.
    assert_eq!(
        range(&format!("{counts} * 2 + 1"), lv),
        ["{level=error} 60:3 120:3", "{level=info} 60:5 120:3"]
    );
    // Precedence: 1 + 2 * 3 ^ 2 = 1 + 2 * 9 = 19; -2 ^ 2 = -(2^2) = -4; 7 % 4 = 3.
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let scalar = |q: &str| match metric(q).eval_instant_value(&rows, 60 * S).unwrap() {
        InstantValue::Scalar(s) => s,
        v => panic!("{q}: {v:?}"),
    };
    assert_eq!(scalar("1 + 2 * 3 ^ 2"), 19.0);
    assert_eq!(scalar("-2 ^ 2"), -4.0);
    assert_eq!(scalar("7 % 4"), 3.0);
    assert_eq!(scalar("2 ^ 3 ^ 2"), 512.0, "^ is right-associative: 2^9");
    assert_eq!(scalar("1 > bool 2"), 0.0);
    assert!(scalar("0 / 0").is_nan());
    assert_eq!(scalar("1 / 0"), f64::INFINITY);
    // vector(1) + vector(1) = 2, a vector with no labels.
    assert_eq!(instant("vector(1) + vector(1)", 60, lv), ["{} 2"]);
    // Comparison filters: at 60s only info (2) is > 1; at 120s nothing.
    assert_eq!(range(&format!("{counts} > 1"), lv), ["{level=info} 60:2"]);
    // With bool: 1 where it holds, else 0.
    assert_eq!(
        range(&format!("{counts} > bool 1"), lv),
        ["{level=error} 60:0 120:0", "{level=info} 60:1 120:0"]
    );
    // Scalar on the left keeps the vector's value: 1 < 2 (info at 60s) only.
    assert_eq!(range(&format!("1 < {counts}"), lv), ["{level=info} 60:2"]);
    // Vector / vector on identical label sets: counts / counts = 1 each.
    assert_eq!(
        range(&format!("{counts} / {counts}"), lv),
        ["{level=error} 60:1 120:1", "{level=info} 60:1 120:1"]
    );
    // Vector - vector with different label sets: no match, no result.
    assert!(
        range(
            &format!("{counts} - sum by (source) (count_over_time({{app=\"web\"}}[1m]))"),
            lv
        )
        .is_empty()
    );
    // Division by zero: 2 / 0 = +Inf.
    assert_eq!(
        range(&format!("{counts} / 0"), lv)[1],
        "{level=info} 60:inf 120:inf"
    );
}

#[test]
fn grafana_log_volume_query() {
    // detected_level is on every row, so grouping by it works: info 2 / error 1 at 60s.
    assert_eq!(
        range(
            r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__ [1m]))"#,
            &["level", "detected_level"]
        ),
        [
            "{detected_level=error,level=error} 60:1 120:1",
            "{detected_level=info,level=info} 60:2 120:1"
        ]
    );
}

#[test]
fn pipeline_errors_fail_metric_queries_unless_filtered() {
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let e = metric(r#"sum(count_over_time({app="web"} | json [1m]))"#)
        .eval_range(&rows, 60 * S, 120 * S, 60 * S)
        .unwrap_err();
    assert!(e.to_string().contains("JSONParserErr"), "{e}");
    // Keeping the error label keeps the error.
    assert!(
        metric(r#"sum(count_over_time({app="web"} | json | __error__="JSONParserErr" [1m]))"#)
            .eval_range(&rows, 60 * S, 120 * S, 60 * S)
            .is_err()
    );
    let dropped = metric(
        r#"sum(count_over_time({app="web"} | json | drop __error__, __error_details__ [1m]))"#,
    )
    .eval_range(&rows, 60 * S, 120 * S, 60 * S)
    .unwrap();
    assert_eq!(dropped[0].points, [(60 * S, 3.0), (120 * S, 2.0)]);
    let none = metric(r#"sum(count_over_time({app="web"} | json | __error__="" [1m]))"#)
        .eval_range(&rows, 60 * S, 120 * S, 60 * S)
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn bounds_and_limits() {
    let m =
        metric(r#"sum(count_over_time({app="web"}[5m] offset 1m)) + sum(rate({app="web"}[1m]))"#);
    assert_eq!(m.range_ns(), 360 * S);
    assert_eq!(m.fetch_window(1000 * S, 2000 * S), (640 * S, 2000 * S));
    assert_eq!(m.log_queries().len(), 2);
    assert!(m.eval_range(&[], 0, 100, 0).is_err());
    assert!(
        m.eval_range(&[], 0, 20_000, 1)
            .unwrap_err()
            .to_string()
            .contains("11000")
    );
    // No entries: no series (absent, not 0).
    assert!(m.eval_range(&[], 0, 10 * S, S).unwrap().is_empty());
}

#[test]
fn collectors_fed_in_parts_and_merged_equal_one_pass() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MetricQuery>();
    send_sync::<logflux_query::LogQuery>();
    fn send<T: Send>() {}
    send::<logflux_query::Collector<'static>>();
    let entries = data();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    for q in [
        r#"sum by (level) (count_over_time({app="web"}[1m]))"#,
        r#"max_over_time({app="web"} | logfmt | unwrap took [1m]) by (source) / sum by (source) (bytes_rate({app="web"}[1m]))"#,
    ] {
        let m = metric(q);
        let whole = m.eval_range(&rows, 60 * S, 120 * S, 60 * S).unwrap();
        // Two workers, entries in reverse order, then merged.
        let mut a = m.collector(60 * S, 120 * S);
        let mut b = m.collector(60 * S, 120 * S);
        for (i, r) in rows.iter().rev().enumerate() {
            if i % 2 == 0 {
                a.push(r).unwrap()
            } else {
                b.push(r).unwrap()
            }
        }
        a.merge(b);
        assert_eq!(a.eval_range(60 * S).unwrap(), whole, "{q}");
        let mut c = m.collector(60 * S, 60 * S);
        c.push_all(&rows).unwrap();
        assert_eq!(
            c.eval_instant_value().unwrap(),
            m.eval_instant_value(&rows, 60 * S).unwrap()
        );
    }
}

/// A label per line (here each entry its own source) would hold a series per entry: past
/// `MAX_SERIES` distinct label sets the query is refused, with the limit named; with fewer
/// labels kept on the lines, the same entries are one series.
#[test]
fn a_query_with_more_series_than_the_limit_is_refused() {
    let n = logflux_query::MAX_SERIES;
    let entries: Vec<EntryView> = (0..=n)
        .map(|i| logflux_proto::Entry::new(10 * S, Level::Info, &format!("s{i}"), "x").into())
        .collect();
    let rows: Vec<Row<'_>> = entries
        .iter()
        .map(|e| Row {
            app: "web",
            entry: e,
        })
        .collect();
    let e = metric(r#"count_over_time({app="web"}[1m])"#)
        .eval_range(&rows, 60 * S, 60 * S, 60 * S)
        .unwrap_err();
    assert!(
        e.message
            .contains(&format!("maximum number of series ({n})")),
        "{e}"
    );
    // Fewer labels on the lines (`| keep`), the same entries are one series.
    let one = metric(r#"count_over_time({app="web"} | keep app [1m])"#)
        .eval_range(&rows, 60 * S, 60 * S, 60 * S)
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].points, [(60 * S, (n + 1) as f64)]);
    let exactly: Vec<Row<'_>> = rows[..n].to_vec();
    let m = metric(r#"count_over_time({app="web"}[1m])"#)
        .eval_range(&exactly, 60 * S, 60 * S, 60 * S)
        .unwrap();
    assert_eq!(m.len(), n);
}
