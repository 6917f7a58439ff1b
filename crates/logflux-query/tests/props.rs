//! The engine against an independent, straightforward predicate, and pruning soundness.
//!
//! The model mirrors `logflux search`'s exact filter (crates/logflux-client/src/filter.rs,
//! `Filter::matches`) for the constructs both have: `--source` (exact), `--level` (a set of
//! levels), `-m KEY=VALUE` (exact metadata), `--contains` (a case-sensitive substring of the
//! payload). LogQL's `|=` is that `--contains`, not search's WORD/PHRASE arguments (which are
//! whole-word and case-insensitive): like is compared with like. Pruning must be sound: an
//! entry the engine keeps satisfies every pruning set, and each pruning word is a whole word
//! (lower-cased, as `logflux search` tokenises) of its payload.

#![allow(clippy::unwrap_used)]

use logflux_proto::{EntryView, Level};
use logflux_query::{InstantValue, Labels, Query, Row, parse, words};
use proptest::prelude::*;

const SOURCES: [&str; 3] = ["api", "db", "Api"];
const HOSTS: [&str; 2] = ["h1", "h2"];
const VOCAB: [&str; 10] = [
    "disk", "disks", "full", "Full", "on", "ERROR", "timeout", "x_1", "größe", "10",
];
const SEPS: [&str; 6] = [" ", ".", "-", "/", ", ", ""];

fn payload() -> impl Strategy<Value = String> {
    prop::collection::vec((0..VOCAB.len(), 0..SEPS.len()), 0..8).prop_map(|v| {
        v.into_iter()
            .map(|(w, s)| format!("{}{}", VOCAB[w], SEPS[s]))
            .collect()
    })
}

#[derive(Debug, Clone)]
struct Ent {
    app: &'static str,
    source: &'static str,
    level: Level,
    host: Option<&'static str>,
    payload: String,
}

fn ent() -> impl Strategy<Value = Ent> {
    (
        prop::sample::select(vec!["web", "other"]),
        prop::sample::select(SOURCES.to_vec()),
        1i64..=8,
        prop::option::of(prop::sample::select(HOSTS.to_vec())),
        payload(),
    )
        .prop_map(|(app, source, l, host, payload)| Ent {
            app,
            source,
            level: Level::from_number(l).unwrap(),
            host,
            payload,
        })
}

fn view(e: &Ent) -> EntryView {
    let mut v: EntryView = logflux_proto::Entry::new(0, e.level, e.source, &e.payload).into();
    if let Some(h) = e.host {
        v.metadata.insert("host", h);
    }
    v
}

#[derive(Debug, Clone)]
enum SourceM {
    Eq(&'static str),
    Alt(&'static str, &'static str),
    Ne(&'static str),
}

#[derive(Debug, Clone)]
struct Spec {
    apps: Vec<&'static str>,
    source: Option<SourceM>,
    /// Allowed levels, written as a `=~` alternation of names (`err` spellings included).
    levels: Option<Vec<Level>>,
    host: Option<&'static str>,
    /// (needle, negated)
    filters: Vec<(String, bool)>,
}

fn needle() -> impl Strategy<Value = String> {
    prop_oneof![
        payload().prop_map(|p| p.chars().take(12).collect()),
        prop::sample::select(vec![
            "disk".to_owned(),
            "disk full".into(),
            " full ".into(),
            "full on".into(),
            "Full".into(),
            "größe".into(),
            "x_1.".into(),
            "".into(),
        ]),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        prop::sample::select(vec![vec!["web"], vec!["web", "other"]]),
        prop::option::of(prop_oneof![
            prop::sample::select(SOURCES.to_vec()).prop_map(SourceM::Eq),
            (
                prop::sample::select(SOURCES.to_vec()),
                prop::sample::select(SOURCES.to_vec())
            )
                .prop_map(|(a, b)| SourceM::Alt(a, b)),
            prop::sample::select(SOURCES.to_vec()).prop_map(SourceM::Ne),
        ]),
        prop::option::of(prop::collection::btree_set(1i64..=8, 1..4)),
        prop::option::of(prop::sample::select(HOSTS.to_vec())),
        prop::collection::vec((needle(), any::<bool>()), 0..3),
    )
        .prop_map(|(apps, source, levels, host, filters)| Spec {
            apps,
            source,
            levels: levels.map(|l| {
                l.into_iter()
                    .map(|n| Level::from_number(n).unwrap())
                    .collect()
            }),
            host,
            filters,
        })
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn level_spelling(l: Level) -> &'static str {
    match l {
        Level::Error => "err",
        Level::Warning => "warn",
        Level::Critical => "crit",
        Level::Emergency => "emerg",
        other => other.name(),
    }
}

fn logql(s: &Spec) -> String {
    let mut m = vec![format!("app=~{}", quote(&s.apps.join("|")))];
    match &s.source {
        Some(SourceM::Eq(x)) => m.push(format!("source={}", quote(x))),
        Some(SourceM::Alt(a, b)) => m.push(format!("source=~{}", quote(&format!("{a}|{b}")))),
        Some(SourceM::Ne(x)) => m.push(format!("source!={}", quote(x))),
        None => {}
    }
    if let Some(l) = &s.levels {
        let alt: Vec<&str> = l
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i % 2 == 0 {
                    l.name()
                } else {
                    level_spelling(*l)
                }
            })
            .collect();
        m.push(format!("level=~{}", quote(&alt.join("|"))));
    }
    if let Some(h) = s.host {
        m.push(format!("host={}", quote(h)));
    }
    let mut q = format!("{{{}}}", m.join(", "));
    for (n, neg) in &s.filters {
        q.push_str(if *neg { " != " } else { " |= " });
        q.push_str(&quote(n));
    }
    q
}

/// `logflux search`'s exact test, for the equivalent filters.
fn model(s: &Spec, e: &Ent) -> bool {
    s.apps.contains(&e.app)
        && match &s.source {
            Some(SourceM::Eq(x)) => e.source == *x,
            Some(SourceM::Alt(a, b)) => e.source == *a || e.source == *b,
            Some(SourceM::Ne(x)) => e.source != *x,
            None => true,
        }
        && s.levels.as_ref().is_none_or(|l| l.contains(&e.level))
        && s.host.is_none_or(|h| e.host == Some(h))
        && s.filters
            .iter()
            .all(|(n, neg)| e.payload.contains(n.as_str()) != *neg)
}

fn lower_words(p: &str) -> Vec<String> {
    words(p).map(str::to_lowercase).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn engine_matches_the_search_filter_and_pruning_is_sound(s in spec(), ents in prop::collection::vec(ent(), 1..20)) {
        let q = logql(&s);
        let Ok(Query::Log(lq)) = parse(&q) else { panic!("{q}") };
        let prune = lq.prune();
        for e in &ents {
            let v = view(e);
            let got = lq.eval(&Row { app: e.app, entry: &v }).is_some();
            prop_assert_eq!(got, model(&s, e), "{} on {:?}", q, e);
            if got {
                prop_assert!(prune.apps.as_ref().is_none_or(|a| a.iter().any(|x| x == e.app)), "{q} {prune:?}");
                prop_assert!(prune.sources.as_ref().is_none_or(|a| a.iter().any(|x| x == e.source)), "{q} {prune:?}");
                prop_assert!(prune.levels.as_ref().is_none_or(|a| a.contains(&e.level)), "{q} {prune:?}");
                for (k, vals) in &prune.metadata {
                    prop_assert!(v.metadata.get(k).is_some_and(|x| vals.iter().any(|w| w == x)), "{q} {prune:?}");
                }
                let pw = lower_words(&e.payload);
                for w in &prune.words {
                    prop_assert!(pw.contains(w), "{q}: prune word {w:?} not a word of {:?}", e.payload);
                }
            }
        }
    }

    /// Any substring of a payload, used as `|=` needle, prunes only with whole words of it.
    #[test]
    fn needle_words_are_whole_words_of_every_match(p in payload(), a in 0usize..40, len in 0usize..40) {
        let chars: Vec<char> = p.chars().collect();
        let a = a.min(chars.len());
        let b = (a + len).min(chars.len());
        let needle: String = chars[a..b].iter().collect();
        let q = format!("{{app=\"web\"}} |= {}", quote(&needle));
        let Ok(Query::Log(lq)) = parse(&q) else { panic!("{q}") };
        let pw = lower_words(&p);
        for w in lq.prune().words {
            prop_assert!(pw.contains(&w), "{q}: {w:?} not a word of {p:?}");
        }
    }
}

#[test]
fn the_needle_rule_on_a_known_case() {
    let Ok(Query::Log(q)) = parse(r#"{app="web"} |= "sdisk full on""#) else {
        panic!()
    };
    // `sdisk` may be the tail of `xsdisk`: only `full` is certain.
    assert_eq!(q.prune().words, ["full"]);
}

/// Metadata keys an entry may carry: plain ones, ones the pipeline renames (`region-1` is the
/// label `region_1`), one named as an entry label, `__error__`, and `n`, a number to unwrap.
const META_KEYS: [&str; 7] = [
    "host",
    "region",
    "region-1",
    "region_1",
    "level",
    "__error__",
    "n",
];

fn meta_ent() -> impl Strategy<Value = (Ent, i64, Vec<(usize, usize)>)> {
    (
        ent(),
        0i64..600,
        prop::collection::vec((0..META_KEYS.len(), 0..3usize), 0..3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// A `sum` of an adding range function collects its samples grouped as the sum groups
    /// them, reading the labels straight off the entries where the pipeline only filters
    /// lines, and (a range query) adds them up per step as they come, in collectors merged
    /// like serve's workers merge theirs: the result equals the general way's (the same
    /// query with `* 1` between the sum and the range function, which collects every series
    /// as the pipeline labels it, in one collector that keeps every sample).
    #[test]
    fn grouped_collection_equals_the_general_way(
        ents in prop::collection::vec(meta_ent(), 1..40),
        func in prop::sample::select(vec!["count_over_time", "rate", "bytes_over_time", "bytes_rate", "sum_over_time", "rate_unwrap"]),
        by in prop::sample::subsequence(vec!["app", "source", "level", "detected_level", "type", "host", "region", "region_1", "nope"], 0..4),
        without in any::<bool>(),
        needle in prop::option::of(prop::sample::select(VOCAB.to_vec())),
        drop in prop::option::of(prop::sample::select(vec!["level", "host", "region", "__error__"])),
        keep in prop::option::of(prop::sample::select(vec!["level", "host, source", "region, level, __error__"])),
        range in prop::sample::select(vec!["30s", "1m", "90s", "2m", "5m"]),
        offset in prop::sample::select(vec!["", " offset 1m", " offset -30s"]),
        split in 0usize..40,
        step_s in prop::sample::select(vec![30i64, 60]),
    ) {
        let views: Vec<(&str, EntryView)> = ents
            .iter()
            .map(|(e, t, meta)| {
                let mut v = view(e);
                v.timestamp_ns = t * 1_000_000_000;
                for &(k, val) in meta {
                    let vals = if META_KEYS[k] == "n" { ["1", "2.5", "7"] } else { ["a", "b", ""] };
                    v.metadata.insert(META_KEYS[k], vals[val]);
                }
                (e.app, v)
            })
            .collect();
        let rows: Vec<Row<'_>> = views.iter().map(|(app, entry)| Row { app, entry }).collect();
        let grouping = format!("{} ({})", if without { "without" } else { "by" }, by.join(", "));
        let mut inner = r#"{app=~"web|other"}"#.to_owned();
        if let Some(n) = needle {
            inner += &format!(" |= {}", quote(n));
        }
        if let Some(d) = drop {
            inner += &format!(" | drop {d}");
        }
        if let Some(k) = keep {
            inner += &format!(" | keep {k}");
        }
        let func = match func {
            "sum_over_time" => {
                inner += " | unwrap n";
                "sum_over_time"
            }
            "rate_unwrap" => {
                inner += " | unwrap n";
                "rate"
            }
            f => f,
        };
        let fast = format!("sum {grouping} ({func}({inner} [{range}]{offset}))");
        let general = format!("sum {grouping} ({func}({inner} [{range}]{offset}) * 1)");
        let (Ok(Query::Metric(f)), Ok(Query::Metric(g))) = (parse(&fast), parse(&general)) else {
            panic!("{fast}")
        };
        let s = 1_000_000_000;
        let (start, end, step) = (60 * s, 600 * s, step_s * s);
        let split = split.min(rows.len());
        let a = (|| {
            let mut c = f.range_collector(start, end, step);
            c.push_all(&rows[..split])?;
            let mut d = f.range_collector(start, end, step);
            d.push_all(&rows[split..])?;
            c.merge(d);
            c.eval_range(step)
        })()
        .map_err(|e| e.to_string());
        let b = (|| {
            // Start ≠ end: a collector that keeps every sample.
            let mut c = g.collector(start, end);
            c.push_all(&rows)?;
            c.eval_range(step)
        })()
        .map_err(|e| e.to_string());
        // Rates are sums of quotients one way, a quotient of the sum the other.
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        // An instant query at `end` (one point, added up as it comes) is the general way's
        // last point.
        let at = (|| {
            let mut c = f.collector(end, end);
            c.push_all(&rows[..split])?;
            let mut d = f.collector(end, end);
            d.push_all(&rows[split..])?;
            c.merge(d);
            c.eval_instant_value()
        })()
        .map_err(|e| e.to_string());
        match (&at, &b) {
            (Ok(InstantValue::Vector(v)), Ok(b)) => {
                let last: Vec<(&Labels, f64)> = b
                    .iter()
                    .filter_map(|s| s.points.iter().find(|p| p.0 == end).map(|p| (&s.labels, p.1)))
                    .collect();
                prop_assert_eq!(v.len(), last.len(), "{}: {:?} vs {:?}", fast, v, last);
                for ((l, x), (m, y)) in v.iter().zip(&last) {
                    prop_assert!(l == *m && close(*x, *y), "{}: {:?} vs {:?}", fast, v, last);
                }
            }
            // The instant's window is one of the range's: an error there is one here (not
            // the other way round).
            (_, Err(_)) => {}
            (x, y) => prop_assert!(false, "{}: {:?} vs {:?}", fast, x, y),
        }
        match (a, b) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a.len(), b.len(), "{}", fast);
                for (x, y) in a.iter().zip(&b) {
                    prop_assert_eq!(&x.labels, &y.labels, "{}", fast);
                    prop_assert_eq!(x.points.len(), y.points.len(), "{}", fast);
                    for (p, q) in x.points.iter().zip(&y.points) {
                        prop_assert!(p.0 == q.0 && close(p.1, q.1), "{}: {:?} vs {:?}", fast, x, y);
                    }
                }
            }
            (a, b) => prop_assert_eq!(a.err(), b.err(), "{}", fast),
        }
    }
}
