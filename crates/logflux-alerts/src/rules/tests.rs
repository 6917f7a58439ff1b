#![allow(clippy::unwrap_used)]

use super::*;

fn parse(yaml: &str) -> Result<RuleSet, Vec<Problem>> {
    parse_rules(yaml, Path::new("r.yaml"))
}

fn problems(yaml: &str) -> Vec<String> {
    parse(yaml)
        .unwrap_err()
        .into_iter()
        .map(|p| p.to_string())
        .collect()
}

const GOOD: &str = r#"
groups:
  - name: api
    rules:
      - alert: Timeouts
        expr: sum by (source) (count_over_time({level="error"} |= "timeout" [5m])) > 10
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.source }}: {{ .Value }}"
  - name: db
    interval: 30s
    limit: 5
    rules:
      - alert: Slow
        expr: |
          max by (source) (max_over_time({source="db"} | logfmt | unwrap took [1m] offset 1m)) > 1
        for: 1h30m
        keep_firing_for: 5m
        include_lines: 3
"#;

#[test]
fn a_good_file_with_its_defaults() {
    let set = parse(GOOD).unwrap();
    assert!(set.warnings.is_empty());
    let [api, db] = set.groups.as_slice() else {
        panic!()
    };
    assert_eq!(api.name, "api");
    assert_eq!(api.interval_ms, 60_000);
    assert_eq!(api.limit, 0);
    let r = &api.rules[0];
    assert_eq!(r.name, "Timeouts");
    assert_eq!(r.for_ms, 0);
    assert_eq!(r.keep_firing_for_ms, 0);
    assert_eq!(r.include_lines, 0);
    assert_eq!(r.log_query, r#"{level="error"} |= "timeout""#);
    assert_eq!(r.labels["severity"].source(), "page");
    let labels: LabelSet = [("source".to_owned(), "api".to_owned())].into();
    assert_eq!(r.annotations["summary"].render(&labels, 12.0), "api: 12");
    assert_eq!(db.interval_ms, 30_000);
    assert_eq!(db.limit, 5);
    let r = &db.rules[0];
    assert_eq!(r.for_ms, 5_400_000);
    assert_eq!(r.keep_firing_for_ms, 300_000);
    assert_eq!(r.include_lines, 3);
    assert_eq!(r.log_query, r#"{source="db"} | logfmt | unwrap took"#);
    assert!(parse("").unwrap().groups.is_empty());
}

#[test]
fn durations_in_prometheus_syntax() {
    assert_eq!(parse_duration("30s"), Ok(30_000));
    assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
    assert_eq!(parse_duration("1d2h"), Ok(93_600_000));
    assert_eq!(parse_duration("1m500ms"), Ok(60_500));
    assert_eq!(parse_duration("0"), Ok(0));
    assert_eq!(parse_duration("2w"), Ok(14 * 86_400_000));
    for bad in [
        "",
        "5",
        "1m1h",
        "1h1h",
        "m",
        "1.5h",
        "-1m",
        "1x",
        "300y",
        "99999999999999999999s",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn yaml_errors_name_the_group_rule_and_position() {
    let p = problems(
        r#"groups:
  - name: api
    rules:
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 1
      - alert: B
        expr: count_over_time({app="x"}[1m]) > 1
        for: 5
"#,
    );
    assert_eq!(
        p,
        [
            r#"r.yaml:8:14: group "api", rule 2 "B": groups[0].rules[1].for: 5 has no unit: write a duration such as 5s or 5m"#
        ]
    );
    let p = problems(
        r#"groups:
  - name: api
    rules:
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 1
        severity: page
"#,
    );
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(r#"r.yaml:6:9: group "api", rule 1 "A": groups[0].rules[0].severity: unknown field `severity`"#),
        "{}",
        p[0]
    );
    let p = problems("groups:\n  - name: [unclosed\n");
    assert!(p[0].starts_with("r.yaml:"), "{}", p[0]);
}

#[test]
fn recording_rules_are_refused_with_their_position() {
    let p = problems(
        r#"groups:
  - name: api
    rules:
      - record: job:errors:rate5m
        expr: sum(rate({app="x"}[5m]))
"#,
    );
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(r#"r.yaml:4:9: group "api", rule 1 "job:errors:rate5m": groups[0].rules[0].record: recording rules (`record:`) are not supported"#),
        "{}",
        p[0]
    );
}

#[test]
fn every_expression_problem_with_the_expr_line_and_byte_offset() {
    let p = problems(
        r#"groups:
  - name: api
    rules:
      - alert: Bad
        labels:
          severity: page
        expr: sum(count_over_time({app="x"} |~ [5m]))
      - alert: Log
        expr: '{app="x"} |= "timeout"'
      - alert: Scalar
        expr: 1 + 2
      - alert: Ok
        expr: count_over_time({app="x"}[1m]) > 1
      - alert: Grid
        expr: count_over_time({app="x"}[1500ms]) > 1
      - alert: Future
        expr: count_over_time({app="x"}[1m] offset -1m) > 1
"#,
    );
    assert_eq!(p.len(), 5, "{p:#?}");
    assert!(
        p[4].starts_with(r#"r.yaml:17:9: group "api", rule 6 "Future": expr: a negative offset"#),
        "{}",
        p[4]
    );
    assert!(
        p[0].starts_with(r#"r.yaml:7:48: group "api", rule 1 "Bad": expr: at byte 33 of the expression: syntax error: unexpected `[`"#),
        "{}",
        p[0]
    );
    assert!(
        p[1].starts_with(r#"r.yaml:9:9: group "api", rule 2 "Log": expr: a log query"#),
        "{}",
        p[1]
    );
    assert!(
        p[2].starts_with(
            r#"r.yaml:11:9: group "api", rule 3 "Scalar": expr: the expression is a scalar"#
        ),
        "{}",
        p[2]
    );
    assert!(
        p[3].starts_with(r#"r.yaml:15:9: group "api", rule 5 "Grid": expr: the range [1s500ms]"#),
        "{}",
        p[3]
    );
}

#[test]
fn names_templates_and_groups_are_checked() {
    let p = problems(
        r#"groups:
  - name: api
    interval: 1500ms
    rules:
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 1
        labels:
          bad-name: x
          __reserved: y
        annotations:
          summary: "{{ $labels.source | toUpper }}"
          open: "{{ $value"
      - alert: "not a name"
        expr: count_over_time({app="x"}[1m]) > 1
  - name: api
    rules: []
"#,
    );
    let want = [
        r#"r.yaml:3:5: group "api": the interval must be a positive whole number of seconds, got 1s500ms"#,
        r#"r.yaml:7:9: group "api", rule 1 "A": labels: "__reserved" is not a valid label name"#,
        r#"r.yaml:7:9: group "api", rule 1 "A": labels: "bad-name" is not a valid label name"#,
        r#"r.yaml:10:9: group "api", rule 1 "A": annotations.open: `{{` without `}}`"#,
        r#"r.yaml:10:9: group "api", rule 1 "A": annotations.summary: unsupported template `{{ $labels.source | toUpper }}`"#,
        r#"r.yaml:13:9: group "api", rule 2 "not a name": the alert name "not a name" is not a valid"#,
        r#"r.yaml:15:5: group "api": a group named "api" is already in this file"#,
    ];
    assert_eq!(p.len(), want.len(), "{p:#?}");
    for (got, want) in p.iter().zip(want) {
        assert!(got.starts_with(want), "{got}\n  wanted {want}");
    }
}

#[test]
fn identical_rules_are_warned_not_refused() {
    let set = parse(
        r#"groups:
  - name: api
    rules:
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 1
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 2
      - alert: A
        expr: count_over_time({app="x"}[1m]) > 1
"#,
    )
    .unwrap();
    assert_eq!(set.groups[0].rules.len(), 3);
    let w: Vec<String> = set.warnings.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        w,
        [
            r#"r.yaml:8:9: warning: group "api", rule 3 "A": this rule is identical to rule 1 of the group: both will fire together"#
        ]
    );
}

#[test]
fn flow_style_rules_are_reported_without_a_line() {
    let p = parse(
        r#"groups:
  - name: api
    rules: [{alert: A, expr: "count_over_time({app=\"x\"}[1m]"}]
"#,
    )
    .unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, None);
    assert_eq!(p[0].rule, Some(("A".to_owned(), 0)));
}

#[test]
fn a_directory_loads_its_good_files_and_reports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yml"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "groups:\n  - name: broken\n    rules:\n      - alert: X\n        expr: nope(\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    let (set, problems) = load_dir(dir.path());
    assert_eq!(set.groups.len(), 2);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].file, dir.path().join("a.yaml"));
    assert_eq!(problems[0].group.as_deref(), Some("broken"));
    assert_eq!(problems[0].line, Some(5));

    let all = check_files(&[dir.path().join("b.yml"), dir.path().join("a.yaml")]).unwrap_err();
    assert_eq!(all.len(), 1);
    assert!(check_files(&[dir.path().join("b.yml")]).is_ok());
    let missing = check_files(&[dir.path().join("none.yaml")]).unwrap_err();
    assert!(
        missing[0].message.contains("cannot read"),
        "{:?}",
        missing[0]
    );
}

#[test]
fn templates_render_labels_and_values() {
    let t =
        Template::parse("{{$labels.a}}/{{ .Labels.b }}/{{ $labels.missing }}={{$value}}").unwrap();
    let l: LabelSet = [("a", "1"), ("b", "2")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(t.render(&l, 0.5), "1/2/=0.5");
    assert!(Template::parse("plain").unwrap().is_plain());
    assert!(Template::parse("{{ humanize $value }}").is_err());
    assert_eq!(format_value(11.0), "11");
    assert_eq!(format_value(1e21), "1e+21");
    assert_eq!(format_value(1.5e-7), "1.5e-07");
    assert_eq!(format_value(f64::INFINITY), "+Inf");
}

#[test]
fn the_log_query_is_cut_from_the_expression_as_written() {
    assert_eq!(
        log_query_text(r#"sum(rate({a="[x"} |= "y[" [5m]))"#).as_deref(),
        Some(r#"{a="[x"} |= "y[""#)
    );
    assert_eq!(log_query_text("1 + 2"), None);
}
