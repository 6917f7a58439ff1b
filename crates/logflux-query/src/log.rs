//! Log queries: the stream selector, the pipeline, per-entry evaluation and pruning.

use std::borrow::Cow;
use std::fmt;

use logflux_proto::{EntryType, Level};
use regex::Regex;

use crate::lex::{parse_bytes, parse_go_duration_seconds};
use crate::words::exact_words;
use crate::{Labels, LogLine, Prune, Row};

/// A selector matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (fully anchored)
    Re,
    /// `!~` (fully anchored)
    Nre,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        })
    }
}

/// One `name op "value"` of a stream selector (or a string label filter).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    /// A matcher; for `=~` and `!~` the value is compiled as a fully anchored regex.
    pub(crate) fn new(name: String, op: MatchOp, value: String) -> Result<Self, String> {
        let re = match op {
            MatchOp::Re | MatchOp::Nre => Some(
                Regex::new(&format!("^(?s:{value})$"))
                    .map_err(|e| format!("bad regular expression {value:?}: {e}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            re,
        })
    }

    /// Whether a label value satisfies the matcher (a missing label is the empty value).
    pub fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (MatchOp::Eq, _) => v == self.value,
            (MatchOp::Ne, _) => v != self.value,
            (MatchOp::Re, Some(r)) => r.is_match(v),
            (MatchOp::Nre, Some(r)) => !r.is_match(v),
            _ => false,
        }
    }

    /// The values of `=` or of `=~ "a|b|c"` (literal alternatives only): exactly the values
    /// it matches.
    pub(crate) fn literal_set(&self) -> Option<Vec<String>> {
        match self.op {
            MatchOp::Eq => Some(vec![self.value.clone()]),
            MatchOp::Re => {
                const META: &[char] = &[
                    '\\', '.', '+', '*', '?', '(', ')', '[', ']', '{', '}', '^', '$',
                ];
                if self.value.contains(META) {
                    return None;
                }
                let mut v: Vec<String> = self.value.split('|').map(str::to_owned).collect();
                v.sort();
                v.dedup();
                Some(v)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op, self.value)
    }
}

/// What a selector label refers to in an entry.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    App,
    Source,
    /// `level` / `detected_level`: the allowed levels as a bit mask (bit = level number).
    Level(u16),
    /// `type`: the allowed types as a bit mask (bit = type number).
    Type(u16),
    /// Any other name: the metadata key of that name (`host` included).
    Meta,
}

/// The spellings a level answers to in selectors: Loki's name, and the short syslog name.
pub(crate) fn level_spellings(l: Level) -> &'static [&'static str] {
    match l {
        Level::Emergency => &["emergency", "emerg"],
        Level::Alert => &["alert"],
        Level::Critical => &["critical", "crit"],
        Level::Error => &["error", "err"],
        Level::Warning => &["warning", "warn"],
        Level::Notice => &["notice"],
        Level::Info => &["info"],
        Level::Debug => &["debug"],
    }
}

/// Labels a metadata key cannot take (the entry's own fields have them).
pub(crate) const RESERVED: [&str; 5] = ["app", "source", "level", "type", "detected_level"];

const ALL_LEVELS: u16 = 0b1_1111_1110;
const ALL_TYPES: u16 = 0b1111_1110;

impl Target {
    pub(crate) fn of(m: &Matcher) -> Target {
        match m.name.as_str() {
            "app" => Target::App,
            "source" => Target::Source,
            "level" | "detected_level" => {
                let mut mask = 0;
                for l in Level::ALL {
                    // `=~`/`=` hold when any spelling matches; `!~`/`!=` when none does.
                    let any = level_spellings(l).iter().any(|s| match m.op {
                        MatchOp::Eq | MatchOp::Ne => *s == m.value,
                        MatchOp::Re | MatchOp::Nre => m.re.as_ref().is_some_and(|r| r.is_match(s)),
                    });
                    let ok = if matches!(m.op, MatchOp::Eq | MatchOp::Re) {
                        any
                    } else {
                        !any
                    };
                    if ok {
                        mask |= 1 << l.number();
                    }
                }
                Target::Level(mask)
            }
            "type" => {
                let mut mask = 0;
                for t in EntryType::ALL {
                    if m.matches(t.name()) {
                        mask |= 1 << t.number();
                    }
                }
                Target::Type(mask)
            }
            _ => Target::Meta,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct SelMatcher {
    pub(crate) target: Target,
    pub(crate) m: Matcher,
}

/// A string a line filter looks for, with its searcher built once: memchr's vectorised
/// substring search, where `str::contains` sets one up again for every line.
#[derive(Clone)]
pub(crate) struct Needle {
    text: String,
    finder: memchr::memmem::Finder<'static>,
}

impl Needle {
    pub(crate) fn new(text: &str) -> Needle {
        Needle {
            text: text.to_owned(),
            finder: memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    fn in_line(&self, line: &str) -> bool {
        self.finder.find(line.as_bytes()).is_some()
    }
}

impl std::fmt::Debug for Needle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text.fmt(f)
    }
}

/// A line filter: `|= "a"`, `!= "a"`, `|~ "re"`, `!~ "re"`, each with `or` alternatives.
#[derive(Debug, Clone)]
pub(crate) enum LineFilter {
    Contains(Vec<Needle>),
    NotContains(Vec<Needle>),
    Re(Vec<Regex>),
    NotRe(Vec<Regex>),
}

impl LineFilter {
    fn keep(&self, line: &str) -> bool {
        match self {
            LineFilter::Contains(n) => n.iter().any(|n| n.in_line(line)),
            LineFilter::NotContains(n) => !n.iter().any(|n| n.in_line(line)),
            LineFilter::Re(r) => r.iter().any(|r| r.is_match(line)),
            LineFilter::NotRe(r) => !r.iter().any(|r| r.is_match(line)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Cmp {
    pub(crate) fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
        }
    }
}

/// How a label value becomes a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Float,
    /// A Go duration (`1.5s`), in seconds.
    Duration,
    /// A size (`10KB`), in bytes.
    Bytes,
}

impl Conv {
    fn apply(self, v: &str) -> Result<f64, String> {
        match self {
            Conv::Float => parse_go_float(v)
                .ok_or_else(|| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax")),
            Conv::Duration => {
                parse_go_duration_seconds(v).ok_or_else(|| format!("time: invalid duration {v:?}"))
            }
            Conv::Bytes => parse_bytes(v).ok_or_else(|| format!("invalid byte size {v:?}")),
        }
    }
}

/// Go's `strconv.ParseFloat`: also `NaN`, `Inf`, `+Inf`, `-Inf` (any case), no spaces.
pub(crate) fn parse_go_float(v: &str) -> Option<f64> {
    if v.is_empty() || v.starts_with(char::is_whitespace) || v.ends_with(char::is_whitespace) {
        return None;
    }
    let lower = v.to_ascii_lowercase();
    match lower.trim_start_matches(['+', '-']) {
        "inf" | "infinity" | "nan" => {}
        other if other.starts_with(|c: char| c.is_ascii_alphabetic()) => return None,
        _ => {}
    }
    v.parse().ok()
}

#[derive(Debug, Clone)]
pub(crate) enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    Str(Matcher),
    Num {
        name: String,
        cmp: Cmp,
        value: f64,
        conv: Conv,
    },
}

impl LabelFilter {
    fn keep(&self, ctx: &mut Ctx<'_>) -> bool {
        match self {
            LabelFilter::And(a, b) => a.keep(ctx) && b.keep(ctx),
            LabelFilter::Or(a, b) => {
                let l = a.keep(ctx);
                let r = b.keep(ctx);
                l || r
            }
            LabelFilter::Str(m) => m.matches(ctx.get(&m.name).unwrap_or("")),
            LabelFilter::Num {
                name,
                cmp,
                value,
                conv,
            } => {
                // As Loki: once a line has an error only string filters can remove it.
                if ctx.get(ERROR).is_some() {
                    return true;
                }
                let Some(v) = ctx.get(name) else {
                    return false;
                };
                match conv.apply(v) {
                    Ok(x) => cmp.holds(x, *value),
                    Err(details) => {
                        ctx.set_error("LabelFilterErr", details);
                        true
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum TplPart {
    Lit(String),
    Label(String),
    Line,
}

#[derive(Debug, Clone)]
pub(crate) enum Stage {
    Line(LineFilter),
    Json,
    Logfmt,
    Label(LabelFilter),
    LineFormat(Vec<TplPart>),
    Drop(Vec<String>),
    Keep(Vec<String>),
    Unwrap { name: String, conv: Conv },
}

/// A stream selector and its pipeline.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub(crate) selector: Vec<SelMatcher>,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) stages: Vec<Stage>,
}

pub(crate) const ERROR: &str = "__error__";
pub(crate) const ERROR_DETAILS: &str = "__error_details__";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Stream,
    Meta,
    Parsed,
}

#[derive(Debug, Clone)]
pub(crate) struct Label<'r> {
    pub(crate) name: Cow<'r, str>,
    pub(crate) value: Cow<'r, str>,
    pub(crate) kind: Kind,
}

/// The state of one entry going through a pipeline; reused from entry to entry.
#[derive(Debug, Default)]
pub(crate) struct Ctx<'r> {
    pub(crate) labels: Vec<Label<'r>>,
    pub(crate) line: Cow<'r, str>,
    base: bool,
    pub(crate) value: Option<f64>,
}

impl<'r> Ctx<'r> {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|l| l.name == name)
            .map(|l| &*l.value)
    }

    fn set(&mut self, name: Cow<'r, str>, value: Cow<'r, str>, kind: Kind) {
        match self.labels.iter_mut().find(|l| l.name == name) {
            Some(l) => {
                l.value = value;
                l.kind = kind;
            }
            None => self.labels.push(Label { name, value, kind }),
        }
    }

    fn set_error(&mut self, err: &'static str, details: String) {
        self.set(ERROR.into(), err.into(), Kind::Parsed);
        self.set(ERROR_DETAILS.into(), details.into(), Kind::Parsed);
    }

    /// A parsed label, renamed `NAME_extracted` when a stream label or metadata has the name.
    pub(crate) fn set_parsed(&mut self, name: String, value: Cow<'r, str>) {
        let clash = self
            .labels
            .iter()
            .any(|l| l.kind != Kind::Parsed && l.name == name.as_str());
        let name = if clash {
            format!("{name}_extracted")
        } else {
            name
        };
        self.set(name.into(), value, Kind::Parsed);
    }

    fn ensure_base(&mut self, row: &Row<'r>) {
        if self.base {
            return;
        }
        self.base = true;
        let e = row.entry;
        let mut push = |name: Cow<'r, str>, value: Cow<'r, str>, kind| {
            self.labels.push(Label { name, value, kind });
        };
        push("app".into(), row.app.into(), Kind::Stream);
        push("source".into(), e.source.as_str().into(), Kind::Stream);
        push("level".into(), e.level.name().into(), Kind::Stream);
        push("type".into(), e.entry_type.name().into(), Kind::Stream);
        for (k, v) in &e.metadata {
            let name = sanitize(k);
            if RESERVED.contains(&&*name) {
                continue;
            }
            let kind = if name == "host" {
                Kind::Stream
            } else {
                Kind::Meta
            };
            push(name, v.into(), kind);
        }
        push("detected_level".into(), e.level.name().into(), Kind::Meta);
    }
}

/// A metadata key or extracted field as a label name: characters other than ASCII letters,
/// digits and `_` become `_`, and a leading digit gets a `_` in front (as Loki does).
pub(crate) fn sanitize(k: &str) -> Cow<'_, str> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if !k.is_empty() && k.chars().all(ok) && !k.starts_with(|c: char| c.is_ascii_digit()) {
        return k.into();
    }
    let mut s = String::with_capacity(k.len() + 1);
    if k.is_empty() || k.starts_with(|c: char| c.is_ascii_digit()) {
        s.push('_');
    }
    s.extend(k.chars().map(|c| if ok(c) { c } else { '_' }));
    s.into()
}

/// The stream labels of an entry, as log query results and the series API show them: `app`,
/// `source`, `level` (Loki's name), `type`, and `host` when the entry has that metadata.
pub fn stream_labels(row: &Row<'_>) -> Labels {
    let mut l = Labels::new();
    l.insert("app".into(), row.app.into());
    l.insert("source".into(), row.entry.source.clone());
    l.insert("level".into(), row.entry.level.name().into());
    l.insert("type".into(), row.entry.entry_type.name().into());
    if let Some(h) = row.entry.metadata.get("host") {
        l.insert("host".into(), h.to_owned());
    }
    l
}

impl LogQuery {
    /// The selector's matchers, as written (for the series and label APIs).
    pub fn selector_labels(&self) -> &[Matcher] {
        &self.matchers
    }

    /// Whether the entry's labels satisfy the stream selector (the pipeline aside).
    pub fn matches_selector(&self, row: &Row<'_>) -> bool {
        let e = row.entry;
        self.selector.iter().all(|s| match &s.target {
            Target::App => s.m.matches(row.app),
            Target::Source => s.m.matches(&e.source),
            Target::Level(mask) => mask & (1 << e.level.number()) != 0,
            Target::Type(mask) => mask & (1 << e.entry_type.number()) != 0,
            Target::Meta => s.m.matches(e.metadata.get(&s.m.name).unwrap_or("")),
        })
    }

    /// Whether the pipeline only filters lines and drops or keeps labels by name: a sample's
    /// labels are then the entry's own (less those dropped), known without building them.
    pub(crate) fn only_line_filters(&self) -> bool {
        self.stages
            .iter()
            .all(|s| matches!(s, Stage::Line(_) | Stage::Drop(_) | Stage::Keep(_)))
    }

    /// Whether a label named `name` is left by the pipeline's `drop` and `keep` stages.
    pub(crate) fn leaves_label(&self, name: &str) -> bool {
        self.stages.iter().all(|s| match s {
            Stage::Drop(names) => !names.iter().any(|n| n == name),
            Stage::Keep(names) => names.iter().any(|n| n == name),
            _ => true,
        })
    }

    /// The selector and the line filters (for a pipeline of [`LogQuery::only_line_filters`],
    /// whether the entry passes).
    pub(crate) fn passes_line_filters(&self, row: &Row<'_>) -> bool {
        self.matches_selector(row)
            && self.stages.iter().all(|s| match s {
                Stage::Line(f) => f.keep(&row.entry.payload),
                _ => true,
            })
    }

    /// Whether the pipeline ends with `| unwrap` (metric queries only).
    pub(crate) fn has_unwrap(&self) -> bool {
        self.stages
            .iter()
            .any(|s| matches!(s, Stage::Unwrap { .. }))
    }

    /// Runs the selector and pipeline over one entry; `false` = filtered out.
    pub(crate) fn run<'r>(&self, row: &Row<'r>, ctx: &mut Ctx<'r>) -> bool {
        ctx.labels.clear();
        ctx.base = false;
        ctx.value = None;
        ctx.line = Cow::Borrowed(row.entry.payload.as_str());
        if !self.matches_selector(row) {
            return false;
        }
        for stage in &self.stages {
            if let Stage::Line(f) = stage {
                if !f.keep(&ctx.line) {
                    return false;
                }
                continue;
            }
            ctx.ensure_base(row);
            match stage {
                Stage::Line(_) => {}
                Stage::Json => json_stage(ctx),
                Stage::Logfmt => logfmt_stage(ctx),
                Stage::Label(f) => {
                    if !f.keep(ctx) {
                        return false;
                    }
                }
                Stage::LineFormat(parts) => {
                    let mut s = String::new();
                    for p in parts {
                        match p {
                            TplPart::Lit(t) => s.push_str(t),
                            TplPart::Label(n) => s.push_str(ctx.get(n).unwrap_or("")),
                            TplPart::Line => s.push_str(&ctx.line),
                        }
                    }
                    ctx.line = Cow::Owned(s);
                }
                Stage::Drop(names) => ctx.labels.retain(|l| !names.iter().any(|n| *n == l.name)),
                Stage::Keep(names) => ctx.labels.retain(|l| names.iter().any(|n| *n == l.name)),
                Stage::Unwrap { name, conv } => {
                    let v = match ctx.get(name) {
                        None | Some("") => return false,
                        Some(v) => conv.apply(v),
                    };
                    let v = v.unwrap_or_else(|details| {
                        ctx.set_error("SampleExtractionErr", details);
                        0.0
                    });
                    ctx.labels.retain(|l| l.name != name.as_str());
                    ctx.value = Some(v);
                }
            }
        }
        ctx.ensure_base(row);
        true
    }

    /// Evaluates one entry: the result line, or `None` when the query filters it out.
    pub fn eval(&self, row: &Row<'_>) -> Option<LogLine> {
        let mut ctx = Ctx::default();
        if !self.run(row, &mut ctx) {
            return None;
        }
        let mut line = LogLine {
            ts_ns: row.entry.timestamp_ns,
            line: String::new(),
            labels: Labels::new(),
            structured_metadata: Labels::new(),
            parsed: Labels::new(),
        };
        for l in ctx.labels.drain(..) {
            let map = match l.kind {
                Kind::Stream => &mut line.labels,
                Kind::Meta => &mut line.structured_metadata,
                Kind::Parsed => &mut line.parsed,
            };
            map.insert(l.name.into_owned(), l.value.into_owned());
        }
        line.line = std::mem::take(&mut ctx.line).into_owned();
        Some(line)
    }

    /// The line the query returns for one entry, without building its labels (what
    /// `patterns` needs), or `None` when the query filters it out; the payload itself when
    /// the pipeline only filters lines.
    pub fn eval_line<'r>(&self, row: &Row<'r>) -> Option<std::borrow::Cow<'r, str>> {
        if self.only_line_filters() {
            return self
                .passes_line_filters(row)
                .then_some(std::borrow::Cow::Borrowed(row.entry.payload.as_str()));
        }
        self.eval(row).map(|l| std::borrow::Cow::Owned(l.line))
    }

    /// The exact conditions of the query that may become blind tokens (see [`Prune`]).
    pub fn prune(&self) -> Prune {
        let mut p = Prune::default();
        let mut levels = ALL_LEVELS;
        let mut types = ALL_TYPES;
        let intersect = |slot: &mut Option<Vec<String>>, set: Vec<String>| {
            *slot = Some(match slot.take() {
                None => set,
                Some(old) => old.into_iter().filter(|v| set.contains(v)).collect(),
            });
        };
        for s in &self.selector {
            match &s.target {
                Target::Level(m) => levels &= m,
                Target::Type(m) => types &= m,
                Target::App => {
                    if let Some(set) = s.m.literal_set() {
                        intersect(&mut p.apps, set);
                    }
                }
                Target::Source => {
                    if let Some(set) = s.m.literal_set() {
                        intersect(&mut p.sources, set);
                    }
                }
                Target::Meta => {
                    // An empty value also matches entries without the key: no token for that.
                    if let Some(set) = s.m.literal_set()
                        && !set.iter().any(String::is_empty)
                    {
                        p.metadata.push((s.m.name.clone(), set));
                    }
                }
            }
        }
        if levels != ALL_LEVELS {
            p.levels = Some(
                Level::ALL
                    .into_iter()
                    .filter(|l| levels & (1 << l.number()) != 0)
                    .collect(),
            );
        }
        if types != ALL_TYPES {
            p.types = Some(
                EntryType::ALL
                    .into_iter()
                    .filter(|t| types & (1 << t.number()) != 0)
                    .collect(),
            );
        }
        for stage in &self.stages {
            match stage {
                // After line_format the line is no longer the payload.
                Stage::LineFormat(_) => break,
                Stage::Line(LineFilter::Contains(n)) if n.len() == 1 => {
                    p.words.extend(exact_words(n[0].as_str()));
                }
                _ => {}
            }
        }
        p.words.sort();
        p.words.dedup();
        p
    }
}

pub(crate) fn json_stage(ctx: &mut Ctx<'_>) {
    let line = std::mem::take(&mut ctx.line);
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(serde_json::Value::Object(m)) => flatten(ctx, "", &m),
        Ok(_) => ctx.set_error("JSONParserErr", "the line is not a JSON object".into()),
        Err(e) => ctx.set_error("JSONParserErr", e.to_string()),
    }
    ctx.line = line;
}

fn flatten(ctx: &mut Ctx<'_>, prefix: &str, m: &serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    for (k, v) in m {
        let key = if prefix.is_empty() {
            sanitize(k).into_owned()
        } else {
            format!("{prefix}_{}", sanitize(k))
        };
        match v {
            Value::Object(inner) => flatten(ctx, &key, inner),
            // As Loki: arrays are not extracted.
            Value::Array(_) => {}
            Value::String(s) => ctx.set_parsed(key, Cow::Owned(s.clone())),
            Value::Number(n) => ctx.set_parsed(key, Cow::Owned(n.to_string())),
            Value::Bool(b) => ctx.set_parsed(key, Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Null => ctx.set_parsed(key, Cow::Borrowed("")),
        }
    }
}

/// logfmt as go-logfmt reads it: `key=value`, `key="quoted \"value\""`, bare `key` (empty
/// value); `=` or `"` inside an unquoted value, a key starting with `=`, or an unterminated
/// quote is an error (`LogfmtParserErr`, labels read before it are kept).
fn logfmt_stage(ctx: &mut Ctx<'_>) {
    let line = std::mem::take(&mut ctx.line);
    if let Err(e) = logfmt_pairs(&line, |k, v| {
        ctx.set_parsed(sanitize(k).into_owned(), Cow::Owned(v))
    }) {
        ctx.set_error("LogfmtParserErr", e);
    }
    ctx.line = line;
}

pub(crate) fn logfmt_pairs(line: &str, mut f: impl FnMut(&str, String)) -> Result<(), String> {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] <= b' ' {
            i += 1;
            continue;
        }
        let ks = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' {
            if b[i] == b'"' {
                return Err(format!(
                    "logfmt syntax error at pos {}: unexpected '\"'",
                    i + 1
                ));
            }
            i += 1;
        }
        if i == ks {
            return Err(format!(
                "logfmt syntax error at pos {}: unexpected '='",
                i + 1
            ));
        }
        let key = &line[ks..i];
        if i >= b.len() || b[i] != b'=' {
            f(key, String::new());
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = String::new();
            let mut closed = false;
            let mut chars = line[i..].char_indices();
            while let Some((off, c)) = chars.next() {
                match c {
                    '"' => {
                        i += off + 1;
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => v.push('\n'),
                        Some((_, 't')) => v.push('\t'),
                        Some((_, 'r')) => v.push('\r'),
                        Some((_, e)) => v.push(e),
                        None => break,
                    },
                    c => v.push(c),
                }
            }
            if !closed {
                return Err("logfmt syntax error: unterminated quoted value".into());
            }
            f(key, v);
        } else {
            let vs = i;
            while i < b.len() && b[i] > b' ' {
                if b[i] == b'=' || b[i] == b'"' {
                    return Err(format!(
                        "logfmt syntax error at pos {}: invalid value",
                        i + 1
                    ));
                }
                i += 1;
            }
            f(key, line[vs..i].to_owned());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
        let mut v = Vec::new();
        logfmt_pairs(s, |k, x| v.push((k.to_owned(), x)))?;
        Ok(v)
    }

    #[test]
    fn logfmt_reads_pairs_and_refuses_bad_syntax() {
        assert_eq!(
            pairs(r#"a=1 b="x \"y\"" flag c="#).unwrap(),
            [
                ("a".into(), "1".into()),
                ("b".into(), "x \"y\"".into()),
                ("flag".into(), String::new()),
                ("c".into(), String::new())
            ]
        );
        assert!(pairs("a=b=c").is_err());
        assert!(pairs("=x").is_err());
        assert!(pairs(r#"a="open"#).is_err());
    }

    #[test]
    fn label_names_are_sanitized() {
        assert_eq!(sanitize("k8s.pod"), "k8s_pod");
        assert_eq!(sanitize("2fa"), "_2fa");
        assert_eq!(sanitize("ok_1"), "ok_1");
    }

    #[test]
    fn go_floats() {
        assert_eq!(parse_go_float("1e3"), Some(1000.0));
        assert!(parse_go_float("NaN").unwrap().is_nan());
        assert_eq!(parse_go_float(" 1"), None);
        assert_eq!(parse_go_float("abc"), None);
    }
}
