//! Rule files in the Loki ruler format (Prometheus's alerting rules with a LogQL `expr`):
//!
//! ```yaml
//! groups:
//!   - name: api
//!     interval: 1m          # default 1m
//!     limit: 10             # optional: more alerts than this from one rule fail the rule
//!     rules:
//!       - alert: ApiTimeouts
//!         expr: sum by (source) (count_over_time({level="error"} |= "timeout" [5m])) > 10
//!         for: 2m           # default 0
//!         keep_firing_for: 5m
//!         labels: { severity: page }
//!         annotations: { summary: "{{ $labels.source }}: {{ $value }} timeouts" }
//!         include_lines: 0  # ours: the last N matching lines in the notification
//! ```
//!
//! [`check_files`] validates files (every problem with its file, group, rule and position);
//! [`load_dir`] loads a directory's `*.yaml`/`*.yml` and keeps the good files' rules when
//! others have errors.
//!
//! Positions: YAML errors (syntax, unknown fields, wrong types, bad durations, `record:`)
//! carry the parser's line and column. Problems found after parsing (an `expr` that is not a
//! metric query, a bad label name or template) are placed by a scan of the text for the
//! rule's key (`expr:`, `labels:`, …) among the lines of the rule's list item: exact for
//! block-style YAML (as rule files are written); a rule written in flow style (`{alert: …,
//! expr: …}`) is reported without a line.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use logflux_query::{MetricQuery, Query};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::LabelSet;

/// The default evaluation interval of a group.
pub const DEFAULT_INTERVAL_MS: i64 = 60_000;

/// The granularity of rules' sliding windows: ranges, offsets and intervals are whole
/// seconds, so every evaluation is exact (see `logflux_query::Sliding`).
pub const GRANULARITY_MS: i64 = 1_000;

/// Rules loaded from files, by group.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub groups: Vec<Group>,
    /// What was accepted but looks wrong (identical rules in a group).
    pub warnings: Vec<Problem>,
}

/// A group of rules evaluated together on its interval.
#[derive(Debug, Clone)]
pub struct Group {
    /// The file it came from.
    pub file: PathBuf,
    pub name: String,
    pub interval_ms: i64,
    /// More alerts than this from one rule fail the rule at that evaluation (0: no limit).
    pub limit: usize,
    pub rules: Vec<Rule>,
}

/// An alerting rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `alert`: the alert's name (`alertname`).
    pub name: String,
    /// The expression as written.
    pub expr: String,
    pub query: MetricQuery,
    /// The log query inside the expression, as written (for `generator_url`).
    pub log_query: String,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub labels: BTreeMap<String, Template>,
    pub annotations: BTreeMap<String, Template>,
    /// Matching lines kept per series and sent with the alert (0: none).
    pub include_lines: usize,
}

/// Whether a problem stops the file loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A problem in a rule file: where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    pub group: Option<String>,
    /// The rule's name (`alert`, or `record` for a recording rule) and index in its group.
    pub rule: Option<(String, usize)>,
    /// 1-based line and column in the file, when known.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        f.write_str(":")?;
        if self.severity == Severity::Warning {
            f.write_str(" warning:")?;
        }
        if let Some(g) = &self.group {
            write!(f, " group {g:?}")?;
            if let Some((name, i)) = &self.rule {
                write!(f, ", rule {} {name:?}", i + 1)?;
            }
            f.write_str(":")?;
        }
        write!(f, " {}", self.message)
    }
}

/// Checks rule files: all their rules, or every problem of every file.
pub fn check_files<P: AsRef<Path>>(paths: &[P]) -> Result<RuleSet, Vec<Problem>> {
    let mut set = RuleSet::default();
    let mut problems = Vec::new();
    for p in paths {
        let p = p.as_ref();
        match load_file(p) {
            Ok(mut s) => {
                set.groups.append(&mut s.groups);
                set.warnings.append(&mut s.warnings);
            }
            Err(mut e) => problems.append(&mut e),
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        problems.extend(set.warnings);
        Err(problems)
    }
}

/// The rule files of a directory: every `*.yaml` and `*.yml` file in it, in name order.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let ext = p.extension().and_then(|x| x.to_str());
        if matches!(ext, Some("yaml" | "yml")) && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads every `*.yaml` and `*.yml` file of a directory, in name order: the rules of the
/// files without errors, and the problems of the others (the run keeps going with the good
/// rules). A directory that cannot be read is one problem.
pub fn load_dir(dir: &Path) -> (RuleSet, Vec<Problem>) {
    let files = match rule_files(dir) {
        Ok(f) => f,
        Err(e) => {
            return (
                RuleSet::default(),
                vec![problem(
                    dir,
                    None,
                    None,
                    None,
                    format!("cannot read the rules directory: {e}"),
                )],
            );
        }
    };
    let mut set = RuleSet::default();
    let mut problems = Vec::new();
    for f in files {
        match load_file(&f) {
            Ok(mut s) => {
                set.groups.append(&mut s.groups);
                set.warnings.append(&mut s.warnings);
            }
            Err(mut e) => problems.append(&mut e),
        }
    }
    (set, problems)
}

/// Loads one rule file.
pub fn load_file(path: &Path) -> Result<RuleSet, Vec<Problem>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_rules(&text, path),
        Err(e) => Err(vec![problem(
            path,
            None,
            None,
            None,
            format!("cannot read the rule file: {e}"),
        )]),
    }
}

fn problem(
    file: &Path,
    group: Option<&str>,
    rule: Option<(&str, usize)>,
    pos: Option<(usize, usize)>,
    message: String,
) -> Problem {
    Problem {
        file: file.to_owned(),
        group: group.map(str::to_owned),
        rule: rule.map(|(n, i)| (n.to_owned(), i)),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        message,
        severity: Severity::Error,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<RawGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: String,
    #[serde(default)]
    interval: Option<PromDuration>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    alert: Option<String>,
    /// Refused (with the parser's position) when present: never read.
    #[serde(default)]
    #[allow(dead_code)]
    record: Option<Recording>,
    expr: String,
    #[serde(default, rename = "for")]
    for_: PromDuration,
    #[serde(default)]
    keep_firing_for: PromDuration,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    include_lines: usize,
}

/// A `record:` field: recording rules make series for Prometheus to store; there is no
/// such store here.
#[derive(Debug)]
struct Recording;

impl<'de> Deserialize<'de> for Recording {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(de::Error::custom(
            "recording rules (`record:`) are not supported: logflux evaluates alerting rules only (`alert:`); there is no metrics store to record into",
        ))
    }
}

/// A duration in Prometheus's syntax (`30s`, `5m`, `1h30m`, `0`), in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PromDuration(i64);

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PromDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m or 1h30m")
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<PromDuration, E> {
                parse_duration(s).map(PromDuration).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PromDuration, E> {
                if n == 0 {
                    Ok(PromDuration(0))
                } else {
                    Err(E::custom(format!(
                        "{n} has no unit: write a duration such as {n}s or {n}m"
                    )))
                }
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PromDuration, E> {
                match u64::try_from(n) {
                    Ok(n) => self.visit_u64(n),
                    Err(_) => Err(E::custom(format!("a duration cannot be negative: {n}"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The longest duration: what i64 nanoseconds hold, as Prometheus's (so times plus
/// durations never overflow).
const MAX_DURATION_MS: i64 = i64::MAX / 1_000_000 / 2;

/// Parses a Prometheus duration: `[0-9]+(y|w|d|h|m|s|ms)` terms, largest unit first, each
/// unit once (`1h30m`, `90s`, `0`), in ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let bad = || format!("{s:?} is not a duration: write one such as 30s, 5m or 1h30m");
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut rest = s;
    let mut total: i64 = 0;
    // Index in UNITS of the last unit used: each next one must be smaller.
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // `ms` before `m`.
        let (i, unit) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        if last.is_some_and(|l| i <= l) {
            return Err(format!(
                "{s:?} is not a duration: units must go from largest to smallest, each once"
            ));
        }
        last = Some(i);
        rest = &rest[unit.0.len()..];
        total = n
            .checked_mul(unit.1)
            .and_then(|x| total.checked_add(x))
            .filter(|&t| t <= MAX_DURATION_MS)
            .ok_or_else(|| format!("{s:?} is too long a duration (at most 292 years)"))?;
    }
    Ok(total)
}

/// An annotation or label value with `{{ $labels.name }}`, `{{ $value }}` (or Go's
/// `{{ .Labels.name }}`, `{{ .Value }}`) in it. Only these two forms: anything else between
/// `{{` and `}}` is refused when the file is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Label(String),
    Value,
}

impl Template {
    /// Parses a template.
    pub fn parse(s: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without `}}}}` in {s:?}"))?;
            let inner = after[..close].trim();
            let label = inner
                .strip_prefix("$labels.")
                .or_else(|| inner.strip_prefix(".Labels."));
            pieces.push(match (inner, label) {
                ("$value" | ".Value", _) => Piece::Value,
                (_, Some(name)) if valid_label_name(name) => Piece::Label(name.to_owned()),
                _ => {
                    return Err(format!(
                        "unsupported template `{{{{ {inner} }}}}` in {s:?}: only {{{{ $labels.NAME }}}} and {{{{ $value }}}} (or {{{{ .Labels.NAME }}}} and {{{{ .Value }}}}) are supported"
                    ));
                }
            });
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template {
            source: s.to_owned(),
            pieces,
        })
    }

    /// The text with the series' labels and value in it (a missing label is empty, as in
    /// Prometheus).
    pub fn render(&self, labels: &LabelSet, value: f64) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Label(n) => out.push_str(labels.get(n).map_or("", String::as_str)),
                Piece::Value => out.push_str(&format_value(value)),
            }
        }
        out
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it has no `{{ }}` (its text is the value).
    pub fn is_plain(&self) -> bool {
        self.pieces.iter().all(|p| matches!(p, Piece::Text(_)))
    }
}

/// A value as Prometheus prints one (Go's `%v` / `strconv.FormatFloat(v, 'g', -1, 64)`):
/// `11`, `0.5`, `1e+21`, `NaN`, `+Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e21).contains(&a) {
        let s = format!("{v:e}");
        // Rust writes `1e21` and `1e-7`; Go writes `1e+21` and `1e-07`.
        if let Some((m, e)) = s.split_once('e') {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            return format!("{m}e{sign}{digits:0>2}");
        }
        return s;
    }
    format!("{v}")
}

/// Prometheus's label name rule: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_label_name(n: &str) -> bool {
    let mut b = n.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The log query inside a metric expression as written: from the first `{` (outside
/// strings) to the range's `[`, trimmed. The explore page takes it as a log query.
fn log_query_text(expr: &str) -> Option<String> {
    let b = expr.as_bytes();
    let start = expr.find('{')?;
    let mut i = start;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == b'\\' && q != b'`' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if matches!(c, b'"' | b'`') => quote = Some(c),
            None if c == b'[' => return Some(expr[start..i].trim().to_owned()),
            None => {}
        }
        i += 1;
    }
    None
}

/// Parses a file's text; `origin` names it in problems.
pub fn parse_rules(text: &str, origin: &Path) -> Result<RuleSet, Vec<Problem>> {
    let raw: RawFile = if text.trim().is_empty() {
        RawFile { groups: Vec::new() }
    } else {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        match serde_path_to_error::deserialize(de) {
            Ok(r) => r,
            Err(e) => return Err(vec![yaml_problem(text, origin, e)]),
        }
    };
    let mut scan = Scan::new(text);
    // Items the scan did not see (flow style) would shift every later position: none then.
    if scan.groups.len() != raw.groups.len() {
        scan.groups.clear();
    }
    if scan.rules.len() != raw.groups.iter().map(|g| g.rules.len()).sum::<usize>() {
        scan.rules.clear();
    }
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut groups = Vec::new();
    let mut names = BTreeSet::new();
    let mut rule_no = 0;
    for (gi, g) in raw.groups.iter().enumerate() {
        let gname = g.name.as_str();
        let gpos = scan.group(gi);
        let mut err = |rule: Option<(&str, usize)>, pos: Option<(usize, usize)>, m: String| {
            problems.push(problem(origin, Some(gname), rule, pos, m));
        };
        if gname.is_empty() {
            err(None, gpos, "a group needs a name".to_owned());
        }
        if !names.insert(gname) {
            err(
                None,
                gpos,
                format!(
                    "a group named {gname:?} is already in this file: group names must be unique in a file"
                ),
            );
        }
        let interval_ms = g.interval.map_or(DEFAULT_INTERVAL_MS, |d| d.0);
        if interval_ms <= 0 || interval_ms % GRANULARITY_MS != 0 {
            err(
                None,
                scan.key_in_group(gi, "interval").or(gpos),
                format!(
                    "the interval must be a positive whole number of seconds, got {}",
                    logflux_query::format_duration(interval_ms.saturating_mul(1_000_000))
                ),
            );
        }
        let mut rules = Vec::new();
        let mut seen: Vec<(&RawRule, usize)> = Vec::new();
        for (ri, r) in g.rules.iter().enumerate() {
            let global = rule_no;
            rule_no += 1;
            let name = r.alert.as_deref().unwrap_or("");
            let at = |key: &str| scan.key_in_rule(global, key).or(scan.rule(global));
            // This rule's problems, moved to `problems` after its checks.
            let mut mine: Vec<(Option<(usize, usize)>, String)> = Vec::new();
            let mut err = |pos: Option<(usize, usize)>, m: String| mine.push((pos, m));
            if !valid_label_name(name) {
                err(
                    at("alert"),
                    if name.is_empty() {
                        "a rule needs `alert:` (its name)".to_owned()
                    } else {
                        format!(
                            "the alert name {name:?} is not a valid label value for alertname: use letters, digits and _"
                        )
                    },
                );
            }
            let query = match logflux_query::parse(&r.expr) {
                Ok(Query::Metric(m)) if m.fetch_window(0, 0).1 > 0 => {
                    err(at("expr"), "expr: a negative offset reads entries after the evaluation time: an alerting rule reads the past only".to_owned());
                    None
                }
                Ok(Query::Metric(m)) if !m.is_scalar() => {
                    match m.sliding(GRANULARITY_MS * 1_000_000) {
                        Ok(_) => Some(m),
                        Err(e) => {
                            err(at("expr"), format!("expr: {e}"));
                            None
                        }
                    }
                }
                Ok(Query::Metric(_)) => {
                    err(at("expr"), "expr: the expression is a scalar: an alerting rule needs a vector, such as count_over_time({…}[5m]) > 10".to_owned());
                    None
                }
                Ok(Query::Log(_)) => {
                    err(at("expr"), "expr: a log query is not an alerting expression: wrap it in a range aggregation, such as sum(count_over_time({…}[5m])) > 10".to_owned());
                    None
                }
                Err(e) => {
                    let (msg, pos) = match e.kind {
                        logflux_query::ErrorKind::Parse => (
                            format!("expr: at byte {} of the expression: {}", e.pos, e.message),
                            scan.expr_at(global, &r.expr, e.pos).or_else(|| at("expr")),
                        ),
                        logflux_query::ErrorKind::Eval => {
                            (format!("expr: {}", e.message), at("expr"))
                        }
                    };
                    err(pos, msg);
                    None
                }
            };
            let mut labels = BTreeMap::new();
            for (k, v) in &r.labels {
                if !valid_label_name(k) || k.starts_with("__") {
                    err(
                        at("labels"),
                        format!(
                            "labels: {k:?} is not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __"
                        ),
                    );
                }
                match Template::parse(v) {
                    Ok(t) => {
                        labels.insert(k.clone(), t);
                    }
                    Err(m) => err(at("labels"), format!("labels.{k}: {m}")),
                }
            }
            let mut annotations = BTreeMap::new();
            for (k, v) in &r.annotations {
                if !valid_label_name(k) {
                    err(
                        at("annotations"),
                        format!(
                            "annotations: {k:?} is not a valid annotation name: use [a-zA-Z_][a-zA-Z0-9_]*"
                        ),
                    );
                }
                match Template::parse(v) {
                    Ok(t) => {
                        annotations.insert(k.clone(), t);
                    }
                    Err(m) => err(at("annotations"), format!("annotations.{k}: {m}")),
                }
            }
            if !mine.is_empty() {
                problems.extend(
                    mine.into_iter()
                        .map(|(pos, m)| problem(origin, Some(gname), Some((name, ri)), pos, m)),
                );
                continue;
            }
            let Some(query) = query else { continue };
            if let Some((_, first)) = seen.iter().find(|(o, _)| same_rule(o, r)) {
                let mut w = problem(
                    origin,
                    Some(gname),
                    Some((name, ri)),
                    scan.rule(global),
                    format!(
                        "this rule is identical to rule {} of the group: both will fire together",
                        first + 1
                    ),
                );
                w.severity = Severity::Warning;
                warnings.push(w);
            }
            seen.push((r, ri));
            rules.push(Rule {
                name: name.to_owned(),
                log_query: log_query_text(&r.expr).unwrap_or_else(|| r.expr.clone()),
                expr: r.expr.clone(),
                query,
                for_ms: r.for_.0,
                keep_firing_for_ms: r.keep_firing_for.0,
                labels,
                annotations,
                include_lines: r.include_lines,
            });
        }
        groups.push(Group {
            file: origin.to_owned(),
            name: g.name.clone(),
            interval_ms,
            limit: g.limit,
            rules,
        });
    }
    if problems.is_empty() {
        Ok(RuleSet { groups, warnings })
    } else {
        Err(problems)
    }
}

fn same_rule(a: &RawRule, b: &RawRule) -> bool {
    a.alert == b.alert
        && a.expr.trim() == b.expr.trim()
        && a.for_ == b.for_
        && a.keep_firing_for == b.keep_firing_for
        && a.labels == b.labels
        && a.annotations == b.annotations
}

/// A YAML error: its position, and the group and rule its path names (read leniently from
/// the text again, for their names).
fn yaml_problem(
    text: &str,
    origin: &Path,
    e: serde_path_to_error::Error<serde_yaml_ng::Error>,
) -> Problem {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let pos = inner.location().map(|l| (l.line(), l.column()));
    let mut message = inner.to_string();
    // The position is reported apart; the parser's own path prefix too.
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    if let Some((own, rest)) = message.split_once(": ")
        && !own.contains(' ')
        && (path.contains(own) || own.starts_with("groups"))
    {
        message = rest.to_owned();
    }
    let indices = path_indices(&path);
    let value: Option<serde_yaml_ng::Value> = serde_yaml_ng::from_str(text).ok();
    let group = indices.first().map(|&gi| {
        value
            .as_ref()
            .and_then(|v| {
                v.get("groups")?
                    .get(gi)?
                    .get("name")?
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("#{}", gi + 1))
    });
    let rule = match indices.as_slice() {
        [gi, ri, ..] if path.contains(".rules[") => {
            let r = value
                .as_ref()
                .and_then(|v| v.get("groups")?.get(*gi)?.get("rules")?.get(*ri));
            let name = r
                .and_then(|r| r.get("alert").or_else(|| r.get("record"))?.as_str())
                .unwrap_or("");
            Some((name.to_owned(), *ri))
        }
        _ => None,
    };
    let field = if path == "." {
        String::new()
    } else {
        format!("{path}: ")
    };
    Problem {
        file: origin.to_owned(),
        group,
        rule,
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        message: format!("{field}{message}"),
        severity: Severity::Error,
    }
}

/// The `[n]` indices of a serde path (`groups[0].rules[2].for` → 0, 2).
fn path_indices(path: &str) -> Vec<usize> {
    path.split('[')
        .skip(1)
        .filter_map(|p| p.split(']').next()?.parse().ok())
        .collect()
}

/// Where groups, rules and their keys are in a rule file's text (see the module's note on
/// positions): list items `- key:` whose key is a group's key start a group, a rule's key
/// start a rule; a key of an item is a `key:` line at the item's key indentation before
/// the next item at or above it.
struct Scan {
    /// Every `key:` line outside block scalars, in order.
    keys: Vec<ScanKey>,
    /// The keys (indices in `keys`) that start each group's and each rule's list item.
    groups: Vec<usize>,
    rules: Vec<usize>,
}

struct ScanKey {
    /// 1-based.
    line: usize,
    /// The key's 0-based column.
    indent: usize,
    key: String,
    /// The value written on the key's line, and its 1-based column (for an expression's
    /// error column).
    value: String,
    value_column: usize,
    /// Whether the line starts a list item (`- key:`).
    item: bool,
}

const GROUP_KEYS: [&str; 4] = ["name", "interval", "limit", "rules"];
const RULE_KEYS: [&str; 3] = ["alert", "record", "expr"];

impl Scan {
    fn new(text: &str) -> Scan {
        let mut keys = Vec::new();
        let mut in_block: Option<usize> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            // Lines of a block scalar (`expr: |`) are text, not keys.
            if let Some(b) = in_block {
                if indent > b {
                    continue;
                }
                in_block = None;
            }
            let (item, body, col) = match trimmed.strip_prefix("- ") {
                Some(b) => {
                    let b2 = b.trim_start();
                    (true, b2, indent + 2 + (b.len() - b2.len()))
                }
                None => (false, trimmed, indent),
            };
            let Some((k, v)) = body.split_once(':') else {
                continue;
            };
            if k.is_empty() || !k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
                continue;
            }
            let value = v.trim();
            if value.starts_with('|') || value.starts_with('>') {
                in_block = Some(indent);
            }
            keys.push(ScanKey {
                line: i + 1,
                indent: col,
                key: k.to_owned(),
                item,
                value: value.to_owned(),
                value_column: col + k.len() + 1 + (v.len() - v.trim_start().len()) + 1,
            });
        }
        let mut groups = Vec::new();
        let mut rules = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if !k.item {
                continue;
            }
            // An item's keys: this one and the following ones at its indentation.
            let item_keys = || {
                std::iter::once(k).chain(
                    keys[i + 1..]
                        .iter()
                        .take_while(|o| o.indent >= k.indent && !(o.item && o.indent == k.indent))
                        .filter(|o| o.indent == k.indent),
                )
            };
            if item_keys().any(|o| RULE_KEYS.contains(&o.key.as_str())) {
                rules.push(i);
            } else if item_keys().any(|o| GROUP_KEYS.contains(&o.key.as_str())) {
                groups.push(i);
            }
        }
        Scan {
            keys,
            groups,
            rules,
        }
    }

    fn pos(&self, i: usize) -> (usize, usize) {
        (self.keys[i].line, self.keys[i].indent + 1)
    }

    fn group(&self, g: usize) -> Option<(usize, usize)> {
        self.groups.get(g).map(|&i| self.pos(i))
    }

    fn rule(&self, r: usize) -> Option<(usize, usize)> {
        self.rules.get(r).map(|&i| self.pos(i))
    }

    /// Where byte `pos` of a rule's expression is: on the `expr:` line when the
    /// expression is written whole on it (plain, or quoted without escapes before `pos`),
    /// else the key's position.
    fn expr_at(&self, r: usize, expr: &str, pos: usize) -> Option<(usize, usize)> {
        let j = self.key_index(*self.rules.get(r)?, "expr")?;
        let k = &self.keys[j];
        let v = k.value.as_str();
        let col = if v == expr {
            Some(k.value_column + pos)
        } else if (v.starts_with('"') || v.starts_with('\''))
            && v.get(1..)
                .is_some_and(|inner| expr.get(..pos).is_some_and(|head| inner.starts_with(head)))
        {
            Some(k.value_column + 1 + pos)
        } else {
            None
        };
        Some((k.line, col.unwrap_or(k.indent + 1)))
    }

    fn key_in(&self, start: usize, key: &str) -> Option<(usize, usize)> {
        self.key_index(start, key).map(|j| self.pos(j))
    }

    fn key_index(&self, start: usize, key: &str) -> Option<usize> {
        let k = &self.keys[start];
        std::iter::once(start)
            .chain(
                (start + 1..self.keys.len())
                    .take_while(|&j| {
                        let o = &self.keys[j];
                        o.indent >= k.indent && !(o.item && o.indent == k.indent)
                    })
                    .filter(|&j| self.keys[j].indent == k.indent),
            )
            .find(|&j| self.keys[j].key == key)
    }

    fn key_in_group(&self, g: usize, key: &str) -> Option<(usize, usize)> {
        self.key_in(*self.groups.get(g)?, key)
    }

    fn key_in_rule(&self, r: usize, key: &str) -> Option<(usize, usize)> {
        self.key_in(*self.rules.get(r)?, key)
    }
}

#[cfg(test)]
mod tests;
