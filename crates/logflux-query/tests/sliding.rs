//! `Sliding` against the instant query: for entries arriving in any order between
//! evaluations at grid-aligned instants that move forward, `eval_at(t)` equals
//! `eval_instant_value` over every entry pushed so far (the ones it dropped as too late
//! included: no later window reads them, so they must not matter).

#![allow(clippy::unwrap_used)]

use logflux_proto::{Entry, EntryView, Level};
use logflux_query::{InstantValue, MetricQuery, Query, Row, parse};
use proptest::prelude::*;

const S: i64 = 1_000_000_000;

#[derive(Debug, Clone)]
struct Ent {
    ts: i64,
    level: Level,
    source: &'static str,
    n: i64,
    msg: &'static str,
}

fn ent() -> impl Strategy<Value = Ent> {
    (
        // Within 0..120 s, often right on a bucket's edge.
        prop_oneof![0i64..120 * S, (0i64..120).prop_map(|s| s * S)],
        prop::sample::select(vec![Level::Error, Level::Info, Level::Warning]),
        prop::sample::select(vec!["api", "db"]),
        -50i64..100,
        prop::sample::select(vec!["x", "timeout"]),
    )
        .prop_map(|(ts, level, source, n, msg)| Ent {
            ts,
            level,
            source,
            n,
            msg,
        })
}

fn view(e: &Ent) -> EntryView {
    Entry::new(e.ts, e.level, e.source, &format!("n={} msg={}", e.n, e.msg)).into()
}

fn query() -> impl Strategy<Value = String> {
    let plain = prop::sample::select(vec![
        "count_over_time",
        "rate",
        "bytes_over_time",
        "bytes_rate",
    ]);
    let unwrapped = prop::sample::select(vec![
        "sum_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "rate",
    ]);
    let selector = prop::sample::select(vec![
        r#"{app="web"}"#,
        r#"{app="web", level=~"error|warn"}"#,
        r#"{app="web"} |= "timeout""#,
        r#"{app="web"} | logfmt | msg="x""#,
    ]);
    let range = prop::sample::select(vec!["1s", "5s", "30s", "1m"]);
    let offset = prop::sample::select(vec!["", " offset 5s", " offset 1m", " offset -10s"]);
    let range_expr = prop_oneof![
        (plain, selector.clone(), range.clone(), offset.clone())
            .prop_map(|(f, s, r, o)| format!("{f}({s} [{r}]{o})")),
        (unwrapped, selector, range, offset, any::<bool>()).prop_map(|(f, s, r, o, by)| {
            let by = if by { " by (source)" } else { "" };
            format!("{f}({s} | logfmt | unwrap n [{r}]{o}){by}")
        }),
    ];
    let wrap = prop::sample::select(vec![
        "{}",
        "sum by (source) ({})",
        "sum({})",
        "max by (level) ({})",
        "{} > 2",
        "count({}) >= 1",
        "sum by (level) ({}) / 2",
    ]);
    prop_oneof![
        3 => (wrap, range_expr.clone()).prop_map(|(w, r)| w.replace("{}", &r)),
        1 => (range_expr.clone(), range_expr)
            .prop_map(|(a, b)| format!("sum({a}) - sum({b})")),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

fn same(a: &InstantValue, b: &InstantValue) -> bool {
    match (a, b) {
        (InstantValue::Scalar(x), InstantValue::Scalar(y)) => close(*x, *y),
        (InstantValue::Vector(x), InstantValue::Vector(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((l, v), (m, w))| l == m && close(*v, *w))
        }
        _ => false,
    }
}

fn metric(q: &str) -> MetricQuery {
    match parse(q) {
        Ok(Query::Metric(m)) => m,
        other => panic!("{q}: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn sliding_equals_the_instant_query(
        q in query(),
        ents in prop::collection::vec(ent(), 0..80),
        // Arrival order: a permutation, cut into batches before each evaluation.
        order in any::<u64>(),
        steps in prop::collection::vec(0i64..40, 1..8),
        half_second in any::<bool>(),
    ) {
        let m = metric(&q);
        let g = if half_second { S / 2 } else { S };
        let mut sliding = m.sliding(g).unwrap();
        let views: Vec<EntryView> = ents.iter().map(view).collect();
        // A deterministic shuffle from the drawn seed.
        let mut idx: Vec<usize> = (0..views.len()).collect();
        let mut seed = order | 1;
        for i in (1..idx.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            idx.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        let mut pushed: Vec<Row<'_>> = Vec::new();
        let mut next = 0;
        let mut t = 0;
        for (k, dt) in steps.iter().enumerate() {
            t += dt * g * 3;
            let upto = idx.len() * (k + 1) / steps.len();
            for &i in &idx[next..upto] {
                let row = Row { app: "web", entry: &views[i] };
                sliding.push(&row).unwrap();
                pushed.push(row);
            }
            next = upto;
            let got = sliding.eval_at(t).unwrap();
            let want = m.eval_instant_value(&pushed, t).unwrap();
            prop_assert!(same(&got, &want), "{q} at {t}: sliding {got:?}, instant {want:?}");
        }
    }
}

#[test]
fn ranges_and_instants_off_the_grid_are_refused() {
    let m = metric(r#"count_over_time({app="web"} [1500ms])"#);
    let e = m.sliding(S).unwrap_err().to_string();
    assert!(
        e.contains("[1s500ms]") && e.contains("granularity 1s"),
        "{e}"
    );
    let e = metric(r#"count_over_time({app="web"} [1m] offset 10ms)"#)
        .sliding(S)
        .unwrap_err()
        .to_string();
    assert!(e.contains("offset 10ms"), "{e}");
    let mut s = metric(r#"count_over_time({app="web"} [1m])"#)
        .sliding(S)
        .unwrap();
    assert!(s.eval_at(S + 1).is_err());
    s.eval_at(10 * S).unwrap();
    let e = s.eval_at(9 * S).unwrap_err().to_string();
    assert!(e.contains("move forward"), "{e}");
}

#[test]
fn late_entries_are_dropped_and_counted_and_old_series_forgotten() {
    let mut s = metric(r#"sum by (source) (count_over_time({app="web"} [10s]))"#)
        .sliding(S)
        .unwrap();
    let e = |ts: i64, src: &str| -> EntryView { Entry::new(ts, Level::Info, src, "x").into() };
    let (a, b) = (e(5 * S, "api"), e(15 * S, "db"));
    for v in [&a, &b] {
        s.push(&Row {
            app: "web",
            entry: v,
        })
        .unwrap();
    }
    assert_eq!(s.series(), 2);
    // At 20 s the window is (10 s, 20 s]: api's entry can never be read again.
    let InstantValue::Vector(v) = s.eval_at(20 * S).unwrap() else {
        panic!()
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0["source"], "db");
    assert_eq!(s.series(), 1);
    let late = e(10 * S, "api");
    s.push(&Row {
        app: "web",
        entry: &late,
    })
    .unwrap();
    assert_eq!(s.dropped(), 1);
    assert_eq!(s.series(), 1);
}

#[test]
fn sliding_is_send() {
    fn send<T: Send>() {}
    send::<logflux_query::Sliding>();
}

#[test]
fn series_are_bounded_with_a_clear_error() {
    let mut s = metric(r#"count_over_time({app="web"} [1m])"#)
        .sliding(S)
        .unwrap();
    let views: Vec<EntryView> = (0..=logflux_query::MAX_SERIES)
        .map(|i| {
            let mut e = Entry::new(S, Level::Info, "api", "x");
            e.metadata.insert("host", format!("h{i}"));
            e.into()
        })
        .collect();
    let (last, first) = views.split_last().unwrap();
    for v in first {
        s.push(&Row {
            app: "web",
            entry: v,
        })
        .unwrap();
    }
    let e = s
        .push(&Row {
            app: "web",
            entry: last,
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("maximum number of series (10000)"), "{e}");
    // Once their entries are out of every window, the series are forgotten: room again.
    s.eval_at(120 * S).unwrap();
    assert_eq!(s.series(), 0);
    let later: EntryView = Entry::new(121 * S, Level::Info, "api", "x").into();
    s.push(&Row {
        app: "web",
        entry: &later,
    })
    .unwrap();
}
