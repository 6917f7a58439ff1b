//! Detected fields against the engine's own parsers: every field `line_fields` reports as read
//! by `| json` or `| logfmt` is a label that parser gives the same line, with the same value —
//! so a field Grafana is shown can be filtered on. And no input makes it panic.

#![allow(clippy::unwrap_used)]

use logflux_proto::{EntryView, Level};
use logflux_query::{FieldType, LogQuery, Parser, Query, Row, line_fields, parse};
use proptest::prelude::*;

/// Pieces of logfmt-like lines, good and bad: pairs, quoted values, bare keys, empty values,
/// keys needing sanitising, a stream label's and a metadata key's name, syntax errors.
const PIECES: [&str; 14] = [
    "a=1",
    "b=\"x y\"",
    "level=warn",
    "region=us",
    "flag",
    "c=",
    "k8s.pod=p-1",
    "2fa=on",
    "took=1.5s",
    "a=2",
    "=x",
    "d=e=f",
    "q=\"open",
    "size=10KB",
];

fn logfmt_line() -> impl Strategy<Value = String> {
    prop::collection::vec(0..PIECES.len(), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|i| PIECES[i])
            .collect::<Vec<_>>()
            .join(" ")
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "[a-z0-9 ]{0,6}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec!["id", "level", "user.name", "x", "1st"]),
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        logfmt_line(),
        json_value().prop_map(|v| v.to_string()),
        ".{0,40}",
    ]
}

fn log_query(q: &str) -> LogQuery {
    match parse(q).unwrap() {
        Query::Log(l) => l,
        Query::Metric(_) => unreachable!("a log query"),
    }
}

proptest! {
    #[test]
    fn reported_fields_are_what_the_engines_parser_extracts(text in line()) {
        let mut e: EntryView = logflux_proto::Entry::new(0, Level::Info, "api", &text).into();
        e.metadata.insert("region", "eu");
        let row = Row { app: "web", entry: &e };
        let plain = log_query(r#"{app="web"}"#).eval(&row).unwrap();
        let f = line_fields(&plain);
        prop_assert_eq!(&f.metadata, &vec![
            ("detected_level".to_owned(), "info".to_owned()),
            ("region".to_owned(), "eu".to_owned()),
        ]);
        let Some(parser) = f.parser else {
            prop_assert!(f.parsed.is_empty());
            return Ok(());
        };
        let q = match parser {
            Parser::Json => log_query(r#"{app="web"} | json"#),
            Parser::Logfmt => log_query(r#"{app="web"} | logfmt"#),
        };
        let parsed = q.eval(&row).unwrap().parsed;
        for (k, v) in &f.parsed {
            prop_assert_eq!(parsed.get(k), Some(v), "{} in {:?}: {:?}", k, text, parsed);
            prop_assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{}", k);
        }
    }

    #[test]
    fn any_text_is_read_without_panicking(text in ".{0,60}") {
        let _ = FieldType::of(&text);
        let e: EntryView = logflux_proto::Entry::new(0, Level::Info, "api", &text).into();
        let row = Row { app: "web", entry: &e };
        let line = log_query(r#"{app="web"}"#).eval(&row).unwrap();
        let _ = line_fields(&line);
    }
}
