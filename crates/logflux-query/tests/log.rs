//! Log queries over single entries: label mapping, line filters, parsers, label filters,
//! line_format, drop/keep, and the pruning sets.

#![allow(clippy::unwrap_used)]

use logflux_proto::{EntryType, EntryView, Level};
use logflux_query::{LogQuery, Prune, Query, Row, parse};

fn entry(level: Level, source: &str, payload: &str, meta: &[(&str, &str)]) -> EntryView {
    let mut e: EntryView = logflux_proto::Entry::new(1_000, level, source, payload).into();
    for (k, v) in meta {
        e.metadata.insert(*k, *v);
    }
    e
}

fn log(q: &str) -> LogQuery {
    match parse(q) {
        Ok(Query::Log(l)) => l,
        other => panic!("{q}: {other:?}"),
    }
}

fn keeps(q: &str, e: &EntryView) -> bool {
    log(q)
        .eval(&Row {
            app: "web",
            entry: e,
        })
        .is_some()
}

#[test]
fn labels_map_to_stream_labels_and_structured_metadata() {
    let e = entry(
        Level::Warning,
        "api",
        "slow",
        &[
            ("host", "h1"),
            ("region", "eu-1"),
            ("k8s.pod", "p"),
            ("level", "x"),
        ],
    );
    let l = log(r#"{app="web"}"#)
        .eval(&Row {
            app: "web",
            entry: &e,
        })
        .unwrap();
    assert_eq!(l.ts_ns, 1_000);
    assert_eq!(l.line, "slow");
    let pairs = |m: &logflux_query::Labels| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(
        pairs(&l.labels),
        "app=web,host=h1,level=warning,source=api,type=log"
    );
    // A metadata key named like an entry field is not a label; others are structured
    // metadata, with invalid characters replaced.
    assert_eq!(
        pairs(&l.structured_metadata),
        "detected_level=warning,k8s_pod=p,region=eu-1"
    );
    assert!(l.parsed.is_empty());
}

#[test]
fn selectors_match_fields_and_metadata() {
    let e = entry(Level::Error, "api", "x", &[("region", "eu-1")]);
    for yes in [
        r#"{source="api"}"#,
        r#"{level="error"}"#,
        r#"{level="err"}"#,
        r#"{level=~"err|warn"}"#,
        r#"{level=~"error|warning"}"#,
        r#"{detected_level="error"}"#,
        r#"{level!="info", app="web"}"#,
        r#"{type="log", region=~"eu-.*"}"#,
        r#"{source="api", host=""}"#,
        r#"{source="api", region!~"us-.*"}"#,
    ] {
        assert!(keeps(yes, &e), "{yes}");
    }
    for no in [
        r#"{source="ap"}"#,
        r#"{source=~"a"}"#,
        r#"{level="warning"}"#,
        r#"{source="api", level!~"err"}"#,
        r#"{app="other"}"#,
        r#"{type="metric"}"#,
        r#"{region="eu"}"#,
        r#"{source="api", host!=""}"#,
    ] {
        assert!(!keeps(no, &e), "{no}");
    }
    let mut audit = e.clone();
    audit.entry_type = EntryType::TelemetryManaged;
    assert!(keeps(r#"{type="telemetry_managed"}"#, &audit));
}

#[test]
fn line_filters_are_case_sensitive_and_chain() {
    let e = entry(Level::Info, "api", "GET /v1/users 200 took 35ms", &[]);
    assert!(keeps(r#"{app="web"} |= "users" != "500""#, &e));
    assert!(!keeps(r#"{app="web"} |= "USERS""#, &e));
    assert!(keeps(r#"{app="web"} |~ "took \\d+ms""#, &e));
    assert!(keeps(r#"{app="web"} |~ `took \d+ms`"#, &e));
    assert!(!keeps(r#"{app="web"} !~ "\\d{3}""#, &e));
    assert!(keeps(r#"{app="web"} |= "nope" or "users""#, &e));
    assert!(!keeps(r#"{app="web"} != "nope" or "users""#, &e));
}

#[test]
fn json_extracts_labels_and_marks_errors() {
    let e = entry(
        Level::Info,
        "api",
        r#"{"status":503,"user":{"name":"alice"},"level":"hi","tags":[1],"ok":true}"#,
        &[],
    );
    let l = log(r#"{app="web"} | json"#)
        .eval(&Row {
            app: "web",
            entry: &e,
        })
        .unwrap();
    assert_eq!(l.parsed["status"], "503");
    assert_eq!(l.parsed["user_name"], "alice");
    assert_eq!(l.parsed["level_extracted"], "hi");
    assert_eq!(l.parsed["ok"], "true");
    assert!(!l.parsed.contains_key("tags"));
    assert!(keeps(
        r#"{app="web"} | json | status >= 500 and user_name="alice""#,
        &e
    ));
    assert!(!keeps(r#"{app="web"} | json | status < 500"#, &e));
    assert!(keeps(
        r#"{app="web"} | json | status < 500 or ok="true""#,
        &e
    ));
    assert!(keeps(
        r#"{app="web"} | json | status == 503, user_name=~"al.*""#,
        &e
    ));
    // A missing label fails a numeric filter.
    assert!(!keeps(r#"{app="web"} | json | missing > 1"#, &e));
    let bad = entry(Level::Info, "api", "not json", &[]);
    let l = log(r#"{app="web"} | json"#)
        .eval(&Row {
            app: "web",
            entry: &bad,
        })
        .unwrap();
    assert_eq!(l.parsed["__error__"], "JSONParserErr");
    assert!(!keeps(r#"{app="web"} | json | __error__="""#, &bad));
    assert!(keeps(r#"{app="web"} | json | __error__!="""#, &bad));
    let dropped = log(r#"{app="web"} | json | drop __error__, __error_details__"#)
        .eval(&Row {
            app: "web",
            entry: &bad,
        })
        .unwrap();
    assert!(dropped.parsed.is_empty());
}

#[test]
fn logfmt_durations_sizes_and_label_filter_errors() {
    let e = entry(
        Level::Info,
        "api",
        r#"method=GET took=1.5s size=12KB msg="all good" n=abc"#,
        &[],
    );
    assert!(keeps(r#"{app="web"} | logfmt | took > 1s"#, &e));
    assert!(!keeps(r#"{app="web"} | logfmt | took > 2s"#, &e));
    assert!(keeps(r#"{app="web"} | logfmt | size > 10KB"#, &e));
    assert!(keeps(r#"{app="web"} | logfmt | msg="all good""#, &e));
    // As Loki: a value that is not a number marks the line instead of dropping it.
    let l = log(r#"{app="web"} | logfmt | n > 1"#)
        .eval(&Row {
            app: "web",
            entry: &e,
        })
        .unwrap();
    assert_eq!(l.parsed["__error__"], "LabelFilterErr");
    let bad = entry(Level::Info, "api", r#"a="open"#, &[]);
    let l = log(r#"{app="web"} | logfmt"#)
        .eval(&Row {
            app: "web",
            entry: &bad,
        })
        .unwrap();
    assert_eq!(l.parsed["__error__"], "LogfmtParserErr");
}

#[test]
fn line_format_keep_and_drop() {
    let e = entry(Level::Error, "api", "user=bob code=7", &[("host", "h")]);
    let l = log(r#"{app="web"} | logfmt | line_format "{{.user}} failed ({{ .code }}) on {{.host}}: {{__line__}} {{.none}}!""#)
        .eval(&Row { app: "web", entry: &e })
        .unwrap();
    assert_eq!(l.line, "bob failed (7) on h: user=bob code=7 !");
    // Line filters after line_format see the new line.
    assert!(keeps(
        r#"{app="web"} | logfmt | line_format "{{.user}}" |= "bob" != "code""#,
        &e
    ));
    let kept = log(r#"{app="web"} | logfmt | keep user, level"#)
        .eval(&Row {
            app: "web",
            entry: &e,
        })
        .unwrap();
    assert_eq!(kept.labels.keys().collect::<Vec<_>>(), ["level"]);
    assert_eq!(kept.parsed.keys().collect::<Vec<_>>(), ["user"]);
    let dropped = log(r#"{app="web"} | drop host, detected_level"#)
        .eval(&Row {
            app: "web",
            entry: &e,
        })
        .unwrap();
    assert!(!dropped.labels.contains_key("host"));
    assert!(dropped.structured_metadata.is_empty());
}

#[test]
fn prune_takes_only_exact_conditions() {
    let p = log(
        r#"{app=~"web|api", source="s1", level=~"err|warning", type!="metric", host="h1", region=~"eu-.*", zone=~"a|b", x=""} |= "disk full on" |= "Timeout" != "x y z" |~ "a b c" | json"#,
    )
    .prune();
    assert_eq!(
        p,
        Prune {
            apps: Some(vec!["api".into(), "web".into()]),
            sources: Some(vec!["s1".into()]),
            levels: Some(vec![Level::Error, Level::Warning]),
            types: Some(
                EntryType::ALL
                    .into_iter()
                    .filter(|t| *t != EntryType::Metric)
                    .collect()
            ),
            metadata: vec![
                ("host".into(), vec!["h1".into()]),
                ("zone".into(), vec!["a".into(), "b".into()]),
            ],
            words: vec!["full".into()],
        }
    );
    // Alone, a needle cannot prune: `disk` is inside `disks`.
    assert_eq!(
        log(r#"{app="a"} |= "disk""#).prune().words,
        Vec::<String>::new()
    );
    assert_eq!(
        log(r#"{app="a"} |= " Disk ""#).prune().words,
        ["disk"],
        "separators at both ends make it a whole word"
    );
    // `or` alternatives and filters after line_format do not prune.
    assert!(
        log(r#"{app="a"} |= " a " or " b ""#)
            .prune()
            .words
            .is_empty()
    );
    assert!(
        log(r#"{app="a"} | line_format "x" |= " a ""#)
            .prune()
            .words
            .is_empty()
    );
    assert_eq!(
        log(r#"{app=~"a|b", app="b"}"#).prune().apps,
        Some(vec!["b".into()])
    );
    assert_eq!(log(r#"{app=~"a.*"}"#).prune().apps, None);
}

#[test]
fn eval_line_is_evals_line_without_the_labels() {
    let e = entry(
        Level::Error,
        "api",
        "disk full on sda1",
        &[("region", "eu")],
    );
    let row = Row {
        app: "web",
        entry: &e,
    };
    for q in [
        r#"{source="api"} |= "disk""#,
        r#"{source="api"} != "disk""#,
        r#"{source="db"}"#,
        r#"{source="api"} | line_format "{{.region}}: {{__line__}}""#,
        r#"{source="api"} | logfmt | drop __error__"#,
    ] {
        let q = log(q);
        assert_eq!(
            q.eval_line(&row).map(|l| l.into_owned()),
            q.eval(&row).map(|l| l.line),
            "{q:?}"
        );
    }
    let borrowed = log(r#"{source="api"} |= "disk""#).eval_line(&row).unwrap();
    assert!(matches!(borrowed, std::borrow::Cow::Borrowed(_)));
}
