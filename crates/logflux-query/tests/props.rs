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
use logflux_query::{Query, Row, parse, words};
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
        v.metadata.insert("host".into(), h.into());
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
                    prop_assert!(v.metadata.get(k).is_some_and(|x| vals.contains(x)), "{q} {prune:?}");
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
