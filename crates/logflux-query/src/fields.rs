//! The fields of log lines, as Loki's `detected_fields` reports them: structured metadata,
//! the labels the query's own parsers extracted, and what `| json` (else `| logfmt`) reads
//! from each line — named exactly as this engine's `| json` / `| logfmt` name them, so a
//! field it reports is one a query can filter on. Pure and bounded: a field keeps at most
//! [`EXACT_VALUES`] value hashes, then a HyperLogLog sketch.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};

use crate::LogLine;
use crate::lex::parse_go_duration_seconds;
use crate::log::{
    Ctx, ERROR, ERROR_DETAILS, Kind, Label, json_stage, logfmt_pairs, parse_go_float, sanitize,
};

/// A field's type, as Loki's `determineType` infers it from one value: the first of int,
/// float, boolean, duration, bytes that parses (Go's `strconv` and `time.ParseDuration`,
/// go-humanize's `ParseBytes`), else string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FieldType {
    String,
    Int,
    Float,
    Boolean,
    Duration,
    Bytes,
}

impl FieldType {
    /// The name Loki's JSON carries.
    pub fn name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Boolean => "boolean",
            FieldType::Duration => "duration",
            FieldType::Bytes => "bytes",
        }
    }

    /// The type of one value.
    pub fn of(v: &str) -> FieldType {
        if v.parse::<i64>().is_ok() {
            FieldType::Int
        } else if is_go_float(v) {
            FieldType::Float
        } else if matches!(
            v,
            "1" | "t"
                | "T"
                | "TRUE"
                | "true"
                | "True"
                | "0"
                | "f"
                | "F"
                | "FALSE"
                | "false"
                | "False"
        ) {
            FieldType::Boolean
        } else if parse_go_duration_seconds(v).is_some() {
            FieldType::Duration
        } else if is_humanize_bytes(v) {
            FieldType::Bytes
        } else {
            FieldType::String
        }
    }
}

/// Go's `strconv.ParseFloat(v, 64)` succeeds: a float literal (or Inf/NaN) within range —
/// `1e400` is out of range there, not infinity (hexadecimal floats are not read).
fn is_go_float(v: &str) -> bool {
    match parse_go_float(v) {
        Some(x) if x.is_infinite() => {
            let lower = v.to_ascii_lowercase();
            matches!(lower.trim_start_matches(['+', '-']), "inf" | "infinity")
        }
        Some(_) => true,
        None => false,
    }
}

/// go-humanize's `ParseBytes` succeeds: leading digits, `.` and `,` (commas dropped) that
/// make a float, then an optional SI or IEC unit (`kb`, `KiB`, `m`, … any case, spaces
/// around it), below 2^64 bytes.
fn is_humanize_bytes(v: &str) -> bool {
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(v.len());
    let num: String = v[..end].chars().filter(|&c| c != ',').collect();
    let Some(n) = parse_go_float(&num).filter(|_| !num.is_empty()) else {
        return false;
    };
    let unit = v[end..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024f64.powi(2),
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return false,
    };
    n * mult < u64::MAX as f64
}

/// The parser that read a line's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Parser {
    Json,
    Logfmt,
}

impl Parser {
    pub fn name(self) -> &'static str {
        match self {
            Parser::Json => "json",
            Parser::Logfmt => "logfmt",
        }
    }
}

/// The fields one result line holds besides its stream labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LineFields {
    /// Structured metadata (`detected_level` and the entry's metadata keys).
    pub metadata: Vec<(String, String)>,
    /// The labels the query's parsers extracted, and what `| json` (when the line is a JSON
    /// object) or else `| logfmt` (pairs with a value; a syntax error ends the reading, as
    /// in `| logfmt`) reads from the line. A name may come twice with different values.
    pub parsed: Vec<(String, String)>,
    /// Which parser read the line: `None` when neither read anything.
    pub parser: Option<Parser>,
}

/// What Loki's `detected_fields` finds in one result line (`parseEntry` there): names
/// clash-renamed (`x_extracted`) as this engine's parsers rename them, `__error__` and
/// `__error_details__` left out.
pub fn line_fields(line: &LogLine) -> LineFields {
    let mut ctx = Ctx::default();
    for (k, v) in &line.labels {
        ctx.labels.push(Label {
            name: Cow::Borrowed(k),
            value: Cow::Borrowed(v),
            kind: Kind::Stream,
        });
    }
    for (k, v) in &line.structured_metadata {
        ctx.labels.push(Label {
            name: Cow::Borrowed(k),
            value: Cow::Borrowed(v),
            kind: Kind::Meta,
        });
    }
    let base = ctx.labels.len();
    ctx.line = Cow::Borrowed(&line.line);
    json_stage(&mut ctx);
    let mut parser = Some(Parser::Json);
    if ctx.get(ERROR).is_some() {
        ctx.labels.truncate(base);
        parser = Some(Parser::Logfmt);
        let text = std::mem::take(&mut ctx.line);
        // Read as `| logfmt` reads it (what was read before a syntax error is kept; a key
        // given twice keeps its last value, empty or not); as Loki's detection
        // (`NewLogfmtParser(strict=false, keepEmpty=false)`), a key left without a value is
        // not a field (below).
        let _ = logfmt_pairs(&text, |k, v| {
            ctx.set_parsed(sanitize(k).into_owned(), Cow::Owned(v));
        });
    }
    let mut parsed: Vec<(String, String)> = ctx.labels[base..]
        .iter()
        .filter(|l| parser != Some(Parser::Logfmt) || !l.value.is_empty())
        .map(|l| (l.name.to_string(), l.value.to_string()))
        .collect();
    if parsed.is_empty() {
        parser = None;
    }
    parsed.extend(
        line.parsed
            .iter()
            .filter(|(k, _)| k.as_str() != ERROR && k.as_str() != ERROR_DETAILS)
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    LineFields {
        metadata: line
            .structured_metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        parsed,
        parser,
    }
}

/// Distinct values kept exactly (as hashes) per field; beyond, a HyperLogLog sketch counts.
pub const EXACT_VALUES: usize = 1024;

/// HyperLogLog registers: 2^12 (4 KiB per field, standard error about 1.6 %).
const HLL_BITS: u32 = 12;

fn hash(v: &str) -> u64 {
    // SipHash with fixed keys: the same value always hashes the same.
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

/// Distinct values: exact up to [`EXACT_VALUES`], then estimated.
#[derive(Debug, Clone)]
enum Distinct {
    Exact(HashSet<u64>),
    Sketch(Box<[u8]>),
}

impl Distinct {
    fn insert(&mut self, v: &str) {
        let h = hash(v);
        match self {
            Distinct::Exact(set) => {
                set.insert(h);
                if set.len() > EXACT_VALUES {
                    let mut regs = vec![0u8; 1 << HLL_BITS].into_boxed_slice();
                    for h in set.iter() {
                        hll_add(&mut regs, *h);
                    }
                    *self = Distinct::Sketch(regs);
                }
            }
            Distinct::Sketch(regs) => hll_add(regs, h),
        }
    }

    fn count(&self) -> u64 {
        match self {
            Distinct::Exact(set) => set.len() as u64,
            // More than EXACT_VALUES were seen: an estimate below that is known wrong.
            Distinct::Sketch(regs) => hll_estimate(regs).max(EXACT_VALUES as u64 + 1),
        }
    }
}

fn hll_add(regs: &mut [u8], h: u64) {
    let idx = (h >> (64 - HLL_BITS)) as usize;
    let rest = (h << HLL_BITS) | (1 << (HLL_BITS - 1));
    let rank = rest.leading_zeros() as u8 + 1;
    if regs[idx] < rank {
        regs[idx] = rank;
    }
}

fn hll_estimate(regs: &[u8]) -> u64 {
    let m = regs.len() as f64;
    let alpha = 0.7213 / (1.0 + 1.079 / m);
    let sum: f64 = regs.iter().map(|&r| 2f64.powi(-i32::from(r))).sum();
    let raw = alpha * m * m / sum;
    let zeros = regs.iter().filter(|&&r| r == 0).count();
    let est = if raw <= 2.5 * m && zeros > 0 {
        m * (m / zeros as f64).ln()
    } else {
        raw
    };
    est.round() as u64
}

/// One detected field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectedField {
    pub label: String,
    pub field_type: FieldType,
    /// Distinct values: exact up to [`EXACT_VALUES`], a HyperLogLog estimate above.
    pub cardinality: u64,
    /// `None` for structured metadata no parser read (Loki's `null`).
    pub parsers: Option<Vec<Parser>>,
}

#[derive(Debug, Clone)]
struct Field {
    field_type: FieldType,
    parsers: Vec<Parser>,
    distinct: Distinct,
}

/// Loki's `detected_fields` over lines fed one at a time (newest first, as Loki reads
/// them): at most `limit` fields, the first met; a field's type is the type of its value in
/// the last line that has it (Loki re-detects it line by line).
#[derive(Debug, Clone)]
pub struct FieldDetector {
    limit: usize,
    fields: BTreeMap<String, Field>,
}

impl FieldDetector {
    pub fn new(limit: usize) -> FieldDetector {
        FieldDetector {
            limit,
            fields: BTreeMap::new(),
        }
    }

    fn field(&mut self, name: &str) -> Option<&mut Field> {
        if !self.fields.contains_key(name) {
            if self.fields.len() >= self.limit {
                return None;
            }
            self.fields.insert(
                name.to_owned(),
                Field {
                    field_type: FieldType::String,
                    parsers: Vec::new(),
                    distinct: Distinct::Exact(HashSet::new()),
                },
            );
        }
        self.fields.get_mut(name)
    }

    /// Adds one result line.
    pub fn add(&mut self, line: &LogLine) {
        let lf = line_fields(line);
        for (k, v) in &lf.metadata {
            if let Some(f) = self.field(k) {
                f.field_type = FieldType::of(v);
                f.distinct.insert(v);
            }
        }
        let mut typed: HashSet<&str> = HashSet::new();
        for (k, v) in &lf.parsed {
            if let Some(f) = self.field(k) {
                if let Some(p) = lf.parser
                    && !f.parsers.contains(&p)
                {
                    f.parsers.push(p);
                }
                // Loki types a field by the first of its values in a line.
                if typed.insert(k) {
                    f.field_type = FieldType::of(v);
                }
                f.distinct.insert(v);
            }
        }
    }

    /// The fields, sorted by name.
    pub fn fields(&self) -> Vec<DetectedField> {
        self.fields
            .iter()
            .map(|(k, f)| DetectedField {
                label: k.clone(),
                field_type: f.field_type,
                cardinality: f.distinct.count(),
                parsers: (!f.parsers.is_empty()).then(|| f.parsers.clone()),
            })
            .collect()
    }
}

/// The values `name` takes in one line (Loki's `detected_field/{name}/values`): as
/// structured metadata, or as a field the parsers read.
pub fn field_values(line: &LogLine, name: &str) -> Vec<String> {
    let lf = line_fields(line);
    lf.metadata
        .into_iter()
        .chain(lf.parsed)
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labels;

    fn line(text: &str, sm: &[(&str, &str)], parsed: &[(&str, &str)]) -> LogLine {
        let mut labels = Labels::new();
        labels.insert("app".into(), "web".into());
        labels.insert("level".into(), "info".into());
        let to = |x: &[(&str, &str)]| -> Labels {
            x.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        LogLine {
            ts_ns: 1,
            line: text.into(),
            labels,
            structured_metadata: to(sm),
            parsed: to(parsed),
        }
    }

    #[test]
    fn types_are_inferred_as_lokis_determine_type() {
        for (v, t) in [
            ("42", FieldType::Int),
            ("-7", FieldType::Int),
            ("9223372036854775808", FieldType::Float),
            ("1.5", FieldType::Float),
            ("1e3", FieldType::Float),
            ("NaN", FieldType::Float),
            ("1e400", FieldType::String),
            ("true", FieldType::Boolean),
            ("F", FieldType::Boolean),
            ("yes", FieldType::String),
            ("1.5s", FieldType::Duration),
            ("2h45m", FieldType::Duration),
            ("300ms", FieldType::Duration),
            ("5d", FieldType::String),
            ("10KB", FieldType::Bytes),
            ("1.5 MiB", FieldType::Bytes),
            ("1,024 kb", FieldType::Bytes),
            ("3k", FieldType::Bytes),
            ("4 ", FieldType::Bytes),
            ("5m", FieldType::Duration),
            ("GET", FieldType::String),
            ("", FieldType::String),
        ] {
            assert_eq!(FieldType::of(v), t, "{v:?}");
        }
    }

    #[test]
    fn json_lines_then_logfmt_lines_and_metadata_are_read() {
        let j = line(
            r#"{"status":200,"user":{"id":"u1"},"tags":["a"],"level":"warn"}"#,
            &[("region", "eu")],
            &[],
        );
        let f = line_fields(&j);
        assert_eq!(f.parser, Some(Parser::Json));
        assert_eq!(f.metadata, [("region".to_owned(), "eu".to_owned())]);
        let mut p = f.parsed.clone();
        p.sort();
        // `level` is a stream label: the extracted one is renamed, as `| json` renames it;
        // arrays are not read.
        assert_eq!(
            p,
            [
                ("level_extracted".to_owned(), "warn".to_owned()),
                ("status".to_owned(), "200".to_owned()),
                ("user_id".to_owned(), "u1".to_owned()),
            ]
        );

        let l = line(r#"user_id=42 took=1.5s logged in msg="a b""#, &[], &[]);
        let f = line_fields(&l);
        assert_eq!(f.parser, Some(Parser::Logfmt));
        assert_eq!(
            f.parsed,
            [
                ("user_id".to_owned(), "42".to_owned()),
                ("took".to_owned(), "1.5s".to_owned()),
                ("msg".to_owned(), "a b".to_owned()),
            ]
        );

        // Plain text: no field, no parser; a JSON array is not an object.
        for text in ["connection refused by db-1", "[1,2]"] {
            let f = line_fields(&line(text, &[], &[]));
            assert_eq!(f.parser, None, "{text}");
            assert!(f.parsed.is_empty(), "{text}");
        }

        // The query's own parsed labels count, its errors do not.
        let q = line(
            "plain",
            &[],
            &[("code", "7"), ("__error__", "JSONParserErr")],
        );
        let f = line_fields(&q);
        assert_eq!(f.parsed, [("code".to_owned(), "7".to_owned())]);
        assert_eq!(f.parser, None);
    }

    #[test]
    fn the_detector_counts_types_parsers_and_respects_its_limit() {
        let mut d = FieldDetector::new(10);
        d.add(&line(
            r#"{"status":200,"path":"/a"}"#,
            &[("region", "eu")],
            &[],
        ));
        d.add(&line(
            r#"{"status":404,"path":"/a"}"#,
            &[("region", "us")],
            &[],
        ));
        d.add(&line("status=500 dur=2s", &[("region", "eu")], &[]));
        let got = d.fields();
        let by = |n: &str| got.iter().find(|f| f.label == n).unwrap().clone();
        assert_eq!(got.len(), 4);
        let status = by("status");
        assert_eq!(status.field_type, FieldType::Int);
        assert_eq!(status.cardinality, 3);
        assert_eq!(status.parsers, Some(vec![Parser::Json, Parser::Logfmt]));
        assert_eq!(by("path").cardinality, 1);
        assert_eq!(by("dur").field_type, FieldType::Duration);
        let region = by("region");
        assert_eq!(region.parsers, None);
        assert_eq!(region.cardinality, 2);

        // The type follows the last line that has the field.
        d.add(&line(r#"{"status":"ok"}"#, &[], &[]));
        assert_eq!(
            d.fields()
                .iter()
                .find(|f| f.label == "status")
                .unwrap()
                .field_type,
            FieldType::String
        );

        // At most `limit` fields: the first met.
        let mut small = FieldDetector::new(2);
        small.add(&line("a=1 b=2 c=3", &[], &[]));
        let names: Vec<String> = small.fields().into_iter().map(|f| f.label).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn cardinality_is_exact_then_estimated_within_a_few_percent() {
        let mut d = FieldDetector::new(1);
        for i in 0..EXACT_VALUES {
            d.add(&line(&format!("id={i}"), &[], &[]));
        }
        assert_eq!(d.fields()[0].cardinality, EXACT_VALUES as u64);
        let n = 50_000u64;
        for i in EXACT_VALUES as u64..n {
            d.add(&line(&format!("id={i}"), &[], &[]));
        }
        // Repeats do not count.
        for i in 0..1000 {
            d.add(&line(&format!("id={i}"), &[], &[]));
        }
        let est = d.fields()[0].cardinality as f64;
        let err = (est - n as f64).abs() / n as f64;
        assert!(err < 0.05, "estimate {est} for {n}");
    }

    #[test]
    fn values_of_one_field() {
        let l = line(r#"{"status":200}"#, &[("region", "eu")], &[]);
        assert_eq!(field_values(&l, "status"), ["200"]);
        assert_eq!(field_values(&l, "region"), ["eu"]);
        assert!(field_values(&l, "app").is_empty());
    }
}
