//! Parse errors: each unsupported construct is refused with its byte position and its name.

#![allow(clippy::unwrap_used)]

use logflux_query::{ErrorKind, MAX_QUERY_BYTES, MAX_QUERY_NODES, Query, parse};
use proptest::prelude::*;

/// The error for `q`, asserting its position is where `at` first occurs in `q` and that the
/// message names `construct`.
fn refused(q: &str, at: &str, construct: &str) {
    let e = match parse(q) {
        Ok(parsed) => panic!("{q:?} parsed: {parsed:?}"),
        Err(e) => e,
    };
    let want = q.find(at).unwrap_or_else(|| panic!("{at:?} not in {q:?}"));
    assert_eq!(e.kind, ErrorKind::Parse);
    assert_eq!(e.pos, want, "{q:?}: {e}");
    assert!(e.message.contains(construct), "{q:?}: {e}");
    assert!(
        e.to_string()
            .starts_with(&format!("parse error at line 1, col {}: ", want + 1)),
        "{e}"
    );
}

#[test]
fn unsupported_constructs_are_named_at_their_position() {
    refused(
        r#"sum(rate({app="a"}[1m])) / on(level) sum(rate({app="b"}[1m]))"#,
        "on(",
        "on(",
    );
    refused(
        r#"sum(rate({app="a"}[1m])) * ignoring(level) vector(1)"#,
        "ignoring",
        "ignoring",
    );
    refused(
        r#"label_replace(rate({app="a"}[1m]), "x", "$1", "level", "(.*)")"#,
        "label_replace",
        "label_replace",
    );
    refused(r#"{app="a"} | pattern "<ip> <_>""#, "pattern", "| pattern");
    refused(r#"{app="a"} | regexp "(?P<x>.)""#, "regexp", "| regexp");
    refused(
        r#"quantile_over_time(0.99, {app="a"} | json | unwrap d [5m])"#,
        "quantile_over_time",
        "quantile_over_time",
    );
    refused(
        r#"absent_over_time({app="a"}[5m])"#,
        "absent_over_time",
        "absent_over_time",
    );
    refused(r#"count_over_time({app="a"}[5m:1m])"#, ":", "subqueries");
    refused(
        r#"rate({app="a"}[1m]) and rate({app="b"}[1m])"#,
        "and",
        "`and`",
    );
    refused(r#"{app="a"} |> "<_> x""#, "|>", "pattern line filters");
    refused(
        r#"{app="a"} | json a="b.c""#,
        "a=",
        "`| json` with parameters",
    );
    refused(r#"{app="a"} | unpack"#, "unpack", "| unpack");
    refused(
        r#"{app="a"} | line_format "{{ .a | upper }}""#,
        "\"{{",
        "line_format",
    );
    refused(
        r#"count_over_time({app="a"} | json | unwrap x [1m])"#,
        "count_over_time",
        "with unwrap",
    );
    refused(
        r#"sum_over_time({app="a"}[1m])"#,
        "sum_over_time",
        "without unwrap",
    );
    refused(
        r#"count_over_time({app="a"}[1m]) by (level)"#,
        "by",
        "grouping not allowed",
    );
    refused(r#"{app="a"} | json | unwrap x"#, "{", "unwrap");
    refused(r#"{app=~".*"}"#, "{", "empty-compatible");
    refused(r#"{app!="x"}"#, "{", "empty-compatible");
    refused(r#"{}"#, "{", "at least one matcher");
    refused(r#"{app="a"}[5m]"#, "[", "range aggregation");
    refused(r#"rate({app="a"} [$__auto])"#, "$", "$__auto");
    refused(r#"{app=~"("}"#, "\"(\"", "regular expression");
    refused(r#"1 > 2"#, ">", "bool");
    refused(r#"topk(0, rate({app="a"}[1m]))"#, "0", "topk");
    refused(r#"{app="a"} + 1"#, "+", "log query");
    refused(r#"{app="a"} | level > "x""#, ">", "compares numbers");
}

#[test]
fn the_supported_subset_parses() {
    for q in [
        r#"{app="web"}"#,
        r#"{source="api", region=~"eu-.*"} |= "x" != "y" |~ "a+" !~ "b""#,
        r#"{app="a"} |= "a" or "b""#,
        r#"{app="a"} | json | status >= 500 and user="alice", duration > 1s or size < 10KB"#,
        r#"{app="a"} | logfmt | (a="1" or b!="2") | line_format "{{.a}} {{ .b }} {{__line__}}""#,
        r#"{app="a"} | json | drop __error__, __error_details__ | keep level"#,
        r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__ [1m]))"#,
        r#"sum(count_over_time({app="a"}[5m] offset 1h)) by (level)"#,
        r#"topk(3, sum by (source) (rate({app="a"}[1m])))"#,
        r#"bottomk by (level) (2, bytes_rate({app="a"}[1m]))"#,
        r#"max_over_time({app="a"} | logfmt | unwrap duration(took) | __error__="" [5m]) by (source)"#,
        r#"avg_over_time({app="a"} | json | unwrap bytes(size) [5m])"#,
        r#"sum(rate({app="a"}[1m])) / sum(rate({app="b"}[1m])) * 100 > bool 5"#,
        r#"vector(1) + vector(1)"#,
        r#"-2 ^ 2 + 1 % 3 == bool 1"#,
        "# comment\n{app=\"a\"}",
    ] {
        if let Err(e) = parse(q) {
            panic!("{q:?}: {e}");
        }
    }
    assert!(matches!(parse(r#"{app="a"}"#), Ok(Query::Log(_))));
    assert!(matches!(parse(r#"vector(1)"#), Ok(Query::Metric(_))));
}

/// A tree too deep for a thread's stack (evaluated and dropped recursively) is refused while
/// parsing, whatever shape makes it deep: nesting, chains of operators, alternatives, signs.
/// Run on a thread with a tokio worker's stack (2 MiB), in a debug build (larger frames);
/// the deepest query accepted is parsed and evaluated there too.
#[test]
fn queries_too_deep_or_too_long_are_refused_not_a_stack_overflow() {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            // Each under MAX_QUERY_BYTES, so the node bound (not the length) refuses them.
            let n = 5_000;
            for q in [
                format!("{}1{}", "(".repeat(n), ")".repeat(n)),
                format!("1{}", "+1".repeat(n)),
                format!("{}1", "-".repeat(n)),
                format!("{{app=\"a\"}} | json | a=\"1\"{}", " or a=\"1\"".repeat(n)),
                format!("{{app=\"a\"}} | json | {}a=\"1\"{}", "(".repeat(n), ")".repeat(n)),
            ] {
                assert!(q.len() < MAX_QUERY_BYTES, "{}", q.len());
                let e = parse(&q).unwrap_err();
                assert_eq!(e.kind, ErrorKind::Parse);
                assert!(e.message.contains("too complex"), "{}", e.message);
            }
            let e = parse(&format!("{{app=\"{}\"}}", "a".repeat(MAX_QUERY_BYTES))).unwrap_err();
            assert!(e.message.contains(&format!("longer than {MAX_QUERY_BYTES} bytes")), "{}", e.message);
            // The deepest nesting accepted parses and evaluates; one more level is refused.
            let mut depth = 0;
            while parse(&format!("{}1{}", "-(".repeat(depth + 1), ")".repeat(depth + 1))).is_ok() {
                depth += 1;
            }
            assert!(depth >= MAX_QUERY_NODES / 8, "{depth}");
            let deepest = format!("{}1{}", "-(".repeat(depth), ")".repeat(depth));
            let Ok(Query::Metric(m)) = parse(&deepest) else {
                panic!("{deepest}")
            };
            let v = m.eval_instant(&[], 0).unwrap();
            assert_eq!(v.len(), 1);
            // What Grafana sends stays far below the bound.
            assert!(parse("sum by (level, detected_level) (count_over_time({app=\"web\"} | drop __error__ [1m]))").is_ok());
        })
        .unwrap()
        .join()
        .unwrap();
}

proptest! {
    /// Bad input is an error, never a panic: arbitrary text, and LogQL-looking text.
    #[test]
    fn parse_never_panics(
        s in ".{0,80}",
        t in r#"[{}()\[\]|=!~"`a-z_0-9 ,.+*/%^<>:$-]{0,80}"#,
    ) {
        let _ = parse(&s);
        let _ = parse(&t);
        let _ = parse(&format!("{{app=\"a\"}} {t}"));
        let _ = parse(&format!("sum(count_over_time({{app=\"a\"}} {t}"));
    }
}
