//! The LogQL parser: recursive descent over [`crate::lex`] tokens.

use regex::Regex;

use crate::lex::{Tok, Token, lex};
use crate::log::{
    Cmp, Conv, LabelFilter, LineFilter, LogQuery, MatchOp, Matcher, Needle, SelMatcher, Stage,
    Target, TplPart,
};
use crate::metric::{AggOp, BinOp, Expr, Grouping, MetricQuery, RangeExpr, RangeFn};
use crate::{Query, QueryError};

/// Parses a LogQL query of the supported subset (see `docs/logql.md`).
pub fn parse(q: &str) -> Result<Query, QueryError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(QueryError::parse(
            MAX_QUERY_BYTES,
            format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        ));
    }
    let mut p = Parser {
        t: lex(q)?,
        i: 0,
        nodes: 0,
    };
    let start = p.pos();
    let node = p.expr(0)?;
    if !matches!(p.peek(), Tok::Eof) {
        return Err(p.unexpected("the end of the query"));
    }
    match node {
        Node::Log(l) => {
            if l.has_unwrap() {
                return Err(QueryError::parse(
                    start,
                    "`| unwrap` is only allowed inside a range aggregation such as sum_over_time(… | unwrap x [5m])",
                ));
            }
            Ok(Query::Log(l))
        }
        Node::Expr(e) => Ok(Query::Metric(MetricQuery::new(e))),
    }
}

enum Node {
    Log(LogQuery),
    Expr(Expr),
}

/// Queries longer than this are refused.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// At most this many operators, parentheses and label-filter alternatives in one query. The
/// tree is evaluated (and dropped) recursively: its depth must stay far from what a thread's
/// stack holds, whatever a caller sends (`((((…))))`, `1+1+…+1`, `| a="1" or a="1" or …`).
pub const MAX_QUERY_NODES: usize = 128;

struct Parser {
    t: Vec<Token>,
    i: usize,
    /// Operators, parentheses and alternatives seen so far (see [`MAX_QUERY_NODES`]).
    nodes: usize,
}

const UNSUPPORTED_FNS: [&str; 19] = [
    "quantile_over_time",
    "absent_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "first_over_time",
    "last_over_time",
    "rate_counter",
    "label_replace",
    "stddev",
    "stdvar",
    "sort",
    "sort_desc",
    "count_values",
    "approx_topk",
    "absent",
    "scalar",
    "time",
    "timestamp",
    "histogram_quantile",
];

const SUPPORTED: &str = "count_over_time, rate, bytes_over_time, bytes_rate, sum_over_time, avg_over_time, max_over_time, min_over_time, sum, count, avg, min, max, topk, bottomk, vector";

const UNSUPPORTED_STAGES: [&str; 8] = [
    "pattern",
    "regexp",
    "unpack",
    "label_format",
    "decolorize",
    "distinct",
    "ip",
    "unwrap_",
];

impl Parser {
    /// Counts one more node of the tree; refuses the query past [`MAX_QUERY_NODES`].
    fn grow(&mut self) -> Result<(), QueryError> {
        self.nodes += 1;
        if self.nodes > MAX_QUERY_NODES {
            return Err(QueryError::parse(
                self.pos(),
                format!(
                    "the query is too complex: more than {MAX_QUERY_NODES} operators, parentheses and alternatives"
                ),
            ));
        }
        Ok(())
    }

    fn peek(&self) -> &Tok {
        &self.t[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.t[(self.i + n).min(self.t.len() - 1)].tok
    }

    fn pos(&self) -> usize {
        self.t[self.i].pos
    }

    fn bump(&mut self) -> Token {
        let t = self.t[self.i].clone();
        if self.i + 1 < self.t.len() {
            self.i += 1;
        }
        t
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(x) if *x == p)
    }

    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(x) if x == s)
    }

    fn describe(t: &Tok) -> String {
        match t {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Dur(_) => "a duration".into(),
            Tok::Bytes(_) => "a byte size".into(),
            Tok::Punct(p) => format!("`{p}`"),
            Tok::Eof => "the end of the query".into(),
        }
    }

    fn unexpected(&self, wanted: &str) -> QueryError {
        QueryError::parse(
            self.pos(),
            format!(
                "syntax error: unexpected {}, expecting {wanted}",
                Self::describe(self.peek())
            ),
        )
    }

    fn expect_punct(&mut self, p: &str) -> Result<usize, QueryError> {
        if self.is_punct(p) {
            Ok(self.bump().pos)
        } else {
            Err(self.unexpected(&format!("`{p}`")))
        }
    }

    fn ident(&mut self, wanted: &str) -> Result<(String, usize), QueryError> {
        match self.peek().clone() {
            Tok::Ident(s) => Ok((s, self.bump().pos)),
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn string(&mut self, wanted: &str) -> Result<(String, usize), QueryError> {
        match self.peek().clone() {
            Tok::Str(s) => Ok((s, self.bump().pos)),
            _ => Err(self.unexpected(wanted)),
        }
    }

    // ---- metric expressions ----

    fn binop(&self) -> Option<(BinOp, u8)> {
        let op = match self.peek() {
            Tok::Punct("^") => BinOp::Pow,
            Tok::Punct("*") => BinOp::Mul,
            Tok::Punct("/") => BinOp::Div,
            Tok::Punct("%") => BinOp::Mod,
            Tok::Punct("+") => BinOp::Add,
            Tok::Punct("-") => BinOp::Sub,
            Tok::Punct("==") => BinOp::Cmp(Cmp::Eq),
            Tok::Punct("!=") => BinOp::Cmp(Cmp::Ne),
            Tok::Punct(">") => BinOp::Cmp(Cmp::Gt),
            Tok::Punct(">=") => BinOp::Cmp(Cmp::Ge),
            Tok::Punct("<") => BinOp::Cmp(Cmp::Lt),
            Tok::Punct("<=") => BinOp::Cmp(Cmp::Le),
            _ => return None,
        };
        let prec = match op {
            BinOp::Pow => 6,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Cmp(_) => 3,
        };
        Some((op, prec))
    }

    fn expr(&mut self, min_prec: u8) -> Result<Node, QueryError> {
        self.grow()?;
        let mut lhs = self.unary()?;
        loop {
            self.grow()?;
            if let Tok::Ident(w) = self.peek()
                && matches!(w.as_str(), "and" | "or" | "unless")
            {
                return Err(QueryError::parse(
                    self.pos(),
                    format!("the set operator `{w}` is not supported"),
                ));
            }
            let Some((op, prec)) = self.binop() else {
                break;
            };
            if prec < min_prec {
                break;
            }
            let op_pos = self.bump().pos;
            let mut bool_mod = false;
            if self.is_ident("bool") {
                if !matches!(op, BinOp::Cmp(_)) {
                    return Err(QueryError::parse(
                        self.pos(),
                        "the `bool` modifier is only allowed on comparisons",
                    ));
                }
                self.bump();
                bool_mod = true;
            }
            if let Tok::Ident(w) = self.peek()
                && matches!(w.as_str(), "on" | "ignoring" | "group_left" | "group_right")
            {
                return Err(QueryError::parse(
                    self.pos(),
                    format!(
                        "vector matching with `{w}(…)` is not supported: binary operations match series with identical label sets only"
                    ),
                ));
            }
            let next = if op == BinOp::Pow { prec } else { prec + 1 };
            let rhs = self.expr(next)?;
            lhs = Node::Expr(Self::combine(lhs, op, bool_mod, rhs, op_pos)?);
        }
        Ok(lhs)
    }

    fn combine(
        lhs: Node,
        op: BinOp,
        bool_mod: bool,
        rhs: Node,
        pos: usize,
    ) -> Result<Expr, QueryError> {
        let (Node::Expr(l), Node::Expr(r)) = (lhs, rhs) else {
            return Err(QueryError::parse(
                pos,
                format!(
                    "a log query cannot be an operand of `{op}`: wrap it in a range aggregation such as count_over_time({{…}} [5m])"
                ),
            ));
        };
        if matches!(op, BinOp::Cmp(_)) && !bool_mod && l.is_scalar() && r.is_scalar() {
            return Err(QueryError::parse(
                pos,
                "comparisons between scalars must use the bool modifier (`1 > bool 0`)",
            ));
        }
        Ok(Expr::Bin {
            op,
            bool_mod,
            lhs: Box::new(l),
            rhs: Box::new(r),
        })
    }

    fn unary(&mut self) -> Result<Node, QueryError> {
        if self.is_punct("-") || self.is_punct("+") {
            let t = self.bump();
            let inner = self.expr(6)?;
            let Node::Expr(e) = inner else {
                return Err(QueryError::parse(
                    t.pos,
                    "a log query cannot be negated: wrap it in a range aggregation",
                ));
            };
            return Ok(Node::Expr(if t.tok == Tok::Punct("-") {
                Expr::Neg(Box::new(e))
            } else {
                e
            }));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, QueryError> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Num(n) => {
                self.bump();
                Ok(Node::Expr(Expr::Num(n)))
            }
            Tok::Punct("(") => {
                self.bump();
                let inner = self.expr(0)?;
                self.expect_punct(")")?;
                if self.is_punct("[") {
                    return Err(QueryError::parse(
                        self.pos(),
                        "a range `[…]` after a parenthesised expression (a subquery) is not supported",
                    ));
                }
                Ok(inner)
            }
            Tok::Punct("{") => {
                let log = self.log_query()?;
                if self.is_punct("[") {
                    return Err(QueryError::parse(
                        self.pos(),
                        "a range `[…]` needs a range aggregation around it, such as count_over_time({…} [5m])",
                    ));
                }
                Ok(Node::Log(log))
            }
            Tok::Ident(name) => {
                if name == "vector" {
                    self.bump();
                    self.expect_punct("(")?;
                    let v = self.number("a number")?;
                    self.expect_punct(")")?;
                    return Ok(Node::Expr(Expr::Vector(v)));
                }
                if let Some(f) = RangeFn::from_name(&name) {
                    self.bump();
                    return self.range_agg(f, pos).map(Node::Expr);
                }
                if let Some(op) = AggOp::from_name(&name) {
                    self.bump();
                    return self.vector_agg(op, pos).map(Node::Expr);
                }
                if UNSUPPORTED_FNS.contains(&name.as_str()) {
                    return Err(QueryError::parse(
                        pos,
                        format!("the function `{name}` is not supported (supported: {SUPPORTED})"),
                    ));
                }
                Err(QueryError::parse(
                    pos,
                    format!(
                        "syntax error: unexpected `{name}`, expecting a stream selector `{{…}}`, a number or a function ({SUPPORTED})"
                    ),
                ))
            }
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn number(&mut self, wanted: &str) -> Result<f64, QueryError> {
        let neg = if self.is_punct("-") {
            self.bump();
            true
        } else {
            false
        };
        match self.peek().clone() {
            Tok::Num(n) => {
                self.bump();
                Ok(if neg { -n } else { n })
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn duration(&mut self, wanted: &str) -> Result<i64, QueryError> {
        match self.peek().clone() {
            Tok::Dur(d) => {
                self.bump();
                Ok(d)
            }
            _ => Err(self.unexpected(wanted)),
        }
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, QueryError> {
        let by = if self.is_ident("by") {
            true
        } else if self.is_ident("without") {
            false
        } else {
            return Ok(None);
        };
        self.bump();
        self.expect_punct("(")?;
        let mut names = Vec::new();
        while !self.is_punct(")") {
            names.push(self.ident("a label name")?.0);
            if !self.is_punct(")") {
                self.expect_punct(",")?;
            }
        }
        self.bump();
        Ok(Some(if by {
            Grouping::By(names)
        } else {
            Grouping::Without(names)
        }))
    }

    fn range_agg(&mut self, func: RangeFn, pos: usize) -> Result<Expr, QueryError> {
        self.expect_punct("(")?;
        if !self.is_punct("{") {
            return Err(self.unexpected("a stream selector `{…}`"));
        }
        let mut log = self.log_query()?;
        let range_pos = self.expect_punct("[")?;
        let range_ns = self.duration("a range such as `5m`")?;
        if self.is_punct(":") {
            return Err(QueryError::parse(
                self.pos(),
                "subqueries `[range:step]` are not supported",
            ));
        }
        self.expect_punct("]")?;
        if range_ns <= 0 {
            return Err(QueryError::parse(range_pos, "the range must be positive"));
        }
        // A pipeline may also follow the range: `count_over_time({…}[5m] | json)`.
        self.pipeline(&mut log)?;
        let mut offset_ns = 0;
        if self.is_ident("offset") {
            self.bump();
            let neg = if self.is_punct("-") {
                self.bump();
                true
            } else {
                false
            };
            offset_ns = self.duration("a duration such as `1h`")?;
            if neg {
                offset_ns = -offset_ns;
            }
        }
        if self.is_punct("@") {
            return Err(QueryError::parse(
                self.pos(),
                "the `@` modifier is not supported",
            ));
        }
        self.expect_punct(")")?;
        let unwrap = log.has_unwrap();
        if func.needs_unwrap() && !unwrap {
            return Err(QueryError::parse(
                pos,
                format!(
                    "invalid aggregation {} without unwrap: add `| unwrap FIELD` to the pipeline",
                    func.name()
                ),
            ));
        }
        if !func.allows_unwrap() && unwrap {
            return Err(QueryError::parse(
                pos,
                format!("invalid aggregation {} with unwrap", func.name()),
            ));
        }
        let grouping_pos = self.pos();
        let grouping = self.grouping()?;
        if grouping.is_some() && !unwrap {
            return Err(QueryError::parse(
                grouping_pos,
                format!(
                    "grouping not allowed for {} aggregation (only for unwrapped ones): put `sum by (…)` around it",
                    func.name()
                ),
            ));
        }
        Ok(Expr::Range(Box::new(RangeExpr {
            func,
            log,
            range_ns,
            offset_ns,
            grouping,
        })))
    }

    fn vector_agg(&mut self, op: AggOp, pos: usize) -> Result<Expr, QueryError> {
        let mut grouping = self.grouping()?;
        self.expect_punct("(")?;
        let mut param = None;
        if matches!(op, AggOp::Topk | AggOp::Bottomk) {
            let ppos = self.pos();
            let k = self.number("the number of series k")?;
            if k < 1.0 || k.fract() != 0.0 || k > 1e9 {
                return Err(QueryError::parse(
                    ppos,
                    format!(
                        "invalid parameter {k} for {}: a whole number > 0",
                        op.name()
                    ),
                ));
            }
            param = Some(k as usize);
            self.expect_punct(",")?;
        }
        let inner_pos = self.pos();
        let inner = self.expr(0)?;
        self.expect_punct(")")?;
        let Node::Expr(inner) = inner else {
            return Err(QueryError::parse(
                inner_pos,
                format!(
                    "{} needs a metric expression: wrap the log query in a range aggregation such as count_over_time({{…}} [5m])",
                    op.name()
                ),
            ));
        };
        let after = self.grouping()?;
        if after.is_some() {
            if grouping.is_some() {
                return Err(QueryError::parse(
                    pos,
                    "grouping given twice (before and after the expression)",
                ));
            }
            grouping = after;
        }
        Ok(Expr::Agg {
            op,
            param,
            grouping,
            expr: Box::new(inner),
        })
    }

    // ---- log queries ----

    fn log_query(&mut self) -> Result<LogQuery, QueryError> {
        let open = self.expect_punct("{")?;
        let mut matchers = Vec::new();
        while !self.is_punct("}") {
            let (name, _) = self.ident("a label name")?;
            let op = match self.peek() {
                Tok::Punct("=") => MatchOp::Eq,
                Tok::Punct("!=") => MatchOp::Ne,
                Tok::Punct("=~") => MatchOp::Re,
                Tok::Punct("!~") => MatchOp::Nre,
                _ => return Err(self.unexpected("`=`, `!=`, `=~` or `!~`")),
            };
            self.bump();
            let (value, vpos) = self.string("a quoted label value")?;
            let m = Matcher::new(name, op, value).map_err(|e| QueryError::parse(vpos, e))?;
            matchers.push(m);
            if !self.is_punct("}") {
                self.expect_punct(",")?;
            }
        }
        self.bump();
        if matchers.is_empty() {
            return Err(QueryError::parse(
                open,
                "a stream selector needs at least one matcher, such as {app=\"web\"}",
            ));
        }
        if !matchers
            .iter()
            .any(|m| matches!(m.op, MatchOp::Eq | MatchOp::Re) && !m.matches(""))
        {
            return Err(QueryError::parse(
                open,
                "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will",
            ));
        }
        let selector = matchers
            .iter()
            .map(|m| SelMatcher {
                target: Target::of(m),
                m: m.clone(),
            })
            .collect();
        let mut q = LogQuery {
            selector,
            matchers,
            stages: Vec::new(),
        };
        self.pipeline(&mut q)?;
        Ok(q)
    }

    fn pipeline(&mut self, q: &mut LogQuery) -> Result<(), QueryError> {
        loop {
            let pos = self.pos();
            let filter = match self.peek() {
                Tok::Punct("|=") => Some(0),
                Tok::Punct("!=") if matches!(self.peek_at(1), Tok::Str(_)) => Some(1),
                Tok::Punct("|~") => Some(2),
                Tok::Punct("!~") => Some(3),
                Tok::Punct("|>") | Tok::Punct("!>") => {
                    return Err(QueryError::parse(
                        pos,
                        "pattern line filters `|>` / `!>` are not supported",
                    ));
                }
                Tok::Punct("|") => None,
                _ => return Ok(()),
            };
            if q.has_unwrap() && !matches!(self.peek_at(1), Tok::Ident(_) | Tok::Punct("(")) {
                return Err(QueryError::parse(
                    pos,
                    "only label filters and `| drop` may follow `| unwrap`",
                ));
            }
            self.bump();
            if let Some(kind) = filter {
                q.stages.push(Stage::Line(self.line_filter(kind)?));
                continue;
            }
            let stage_pos = self.pos();
            let name = match self.peek() {
                Tok::Ident(s) => s.clone(),
                Tok::Punct("(") => String::new(),
                _ => return Err(self.unexpected("a pipeline stage (json, logfmt, a label filter, line_format, drop, keep, unwrap)")),
            };
            let after_unwrap = q.has_unwrap();
            let stage = match name.as_str() {
                "json" | "logfmt" | "line_format" | "keep" | "unwrap" if after_unwrap => {
                    return Err(QueryError::parse(
                        stage_pos,
                        format!(
                            "`| {name}` cannot follow `| unwrap`: only label filters and `| drop` may"
                        ),
                    ));
                }
                "json" => {
                    self.bump();
                    if matches!(self.peek(), Tok::Ident(_))
                        && matches!(self.peek_at(1), Tok::Punct("="))
                    {
                        return Err(QueryError::parse(
                            self.pos(),
                            "`| json` with parameters (`| json a=\"x.y\"`) is not supported: use `| json` and the flattened names (`x_y`)",
                        ));
                    }
                    Stage::Json
                }
                "logfmt" => {
                    self.bump();
                    if self.is_punct("-") {
                        return Err(QueryError::parse(
                            self.pos(),
                            "`| logfmt` flags (--strict, --keep-empty) are not supported",
                        ));
                    }
                    if matches!(self.peek(), Tok::Ident(_))
                        && matches!(self.peek_at(1), Tok::Punct("="))
                    {
                        return Err(QueryError::parse(
                            self.pos(),
                            "`| logfmt` with parameters is not supported",
                        ));
                    }
                    Stage::Logfmt
                }
                "line_format" => {
                    self.bump();
                    let (t, tpos) = self.string("a quoted template")?;
                    Stage::LineFormat(template(&t, tpos)?)
                }
                "drop" | "keep" => {
                    self.bump();
                    let mut names = Vec::new();
                    loop {
                        names.push(self.ident("a label name")?.0);
                        if matches!(self.peek(), Tok::Punct("=" | "!=" | "=~" | "!~")) {
                            return Err(QueryError::parse(
                                self.pos(),
                                format!(
                                    "`| {name}` with matchers (`{name} a=\"x\"`) is not supported: list label names"
                                ),
                            ));
                        }
                        if !self.is_punct(",") {
                            break;
                        }
                        self.bump();
                    }
                    if name == "drop" {
                        Stage::Drop(names)
                    } else {
                        Stage::Keep(names)
                    }
                }
                "unwrap" => {
                    self.bump();
                    let (first, _) = self.ident("a label name")?;
                    let conv = match first.as_str() {
                        "bytes" if self.is_punct("(") => Some(Conv::Bytes),
                        "duration" | "duration_seconds" if self.is_punct("(") => {
                            Some(Conv::Duration)
                        }
                        _ if self.is_punct("(") => {
                            return Err(QueryError::parse(
                                self.pos(),
                                format!(
                                    "unknown unwrap conversion `{first}(…)`: bytes(…), duration(…) or duration_seconds(…)"
                                ),
                            ));
                        }
                        _ => None,
                    };
                    let (name, conv) = match conv {
                        Some(c) => {
                            self.bump();
                            let (n, _) = self.ident("a label name")?;
                            self.expect_punct(")")?;
                            (n, c)
                        }
                        None => (first, Conv::Float),
                    };
                    Stage::Unwrap { name, conv }
                }
                n if UNSUPPORTED_STAGES.contains(&n) => {
                    return Err(QueryError::parse(
                        stage_pos,
                        format!(
                            "the pipeline stage `| {n}` is not supported (supported: json, logfmt, label filters, line_format, drop, keep, unwrap)"
                        ),
                    ));
                }
                _ => Stage::Label(self.label_or()?),
            };
            q.stages.push(stage);
        }
    }

    fn line_filter(&mut self, kind: u8) -> Result<LineFilter, QueryError> {
        let mut needles = Vec::new();
        loop {
            if self.is_ident("ip") {
                return Err(QueryError::parse(
                    self.pos(),
                    "the `ip(…)` line filter is not supported",
                ));
            }
            needles.push(self.string("a quoted string")?);
            if self.is_ident("or") && matches!(self.peek_at(1), Tok::Str(_)) {
                self.bump();
                continue;
            }
            break;
        }
        let regexes = |n: &[(String, usize)]| -> Result<Vec<Regex>, QueryError> {
            n.iter()
                .map(|(s, p)| {
                    Regex::new(s).map_err(|e| {
                        QueryError::parse(*p, format!("bad regular expression {s:?}: {e}"))
                    })
                })
                .collect()
        };
        let texts = || needles.iter().map(|(s, _)| Needle::new(s)).collect();
        Ok(match kind {
            0 => LineFilter::Contains(texts()),
            1 => LineFilter::NotContains(texts()),
            2 => LineFilter::Re(regexes(&needles)?),
            _ => LineFilter::NotRe(regexes(&needles)?),
        })
    }

    fn label_or(&mut self) -> Result<LabelFilter, QueryError> {
        self.grow()?;
        let mut l = self.label_and()?;
        while self.is_ident("or") {
            self.grow()?;
            self.bump();
            let r = self.label_and()?;
            l = LabelFilter::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn label_and(&mut self) -> Result<LabelFilter, QueryError> {
        let mut l = self.label_atom()?;
        while self.is_ident("and") || self.is_punct(",") {
            self.grow()?;
            self.bump();
            let r = self.label_atom()?;
            l = LabelFilter::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }

    fn label_atom(&mut self) -> Result<LabelFilter, QueryError> {
        if self.is_punct("(") {
            self.bump();
            let f = self.label_or()?;
            self.expect_punct(")")?;
            return Ok(f);
        }
        let (name, _) = self.ident("a label filter such as `status >= 500`")?;
        let op_pos = self.pos();
        let op = match self.peek() {
            Tok::Punct(p @ ("=" | "!=" | "=~" | "!~" | "==" | ">" | ">=" | "<" | "<=")) => *p,
            _ => return Err(self.unexpected("a comparison (=, !=, =~, !~, ==, >, >=, <, <=)")),
        };
        self.bump();
        let neg = if self.is_punct("-") {
            self.bump();
            true
        } else {
            false
        };
        let vpos = self.pos();
        let (value, conv) = match self.peek().clone() {
            Tok::Str(s) if !neg => {
                self.bump();
                let mop = match op {
                    "=" | "==" => MatchOp::Eq,
                    "!=" => MatchOp::Ne,
                    "=~" => MatchOp::Re,
                    "!~" => MatchOp::Nre,
                    _ => {
                        return Err(QueryError::parse(
                            op_pos,
                            format!("`{op}` compares numbers: the value {s:?} is a string"),
                        ));
                    }
                };
                let m = Matcher::new(name, mop, s).map_err(|e| QueryError::parse(vpos, e))?;
                return Ok(LabelFilter::Str(m));
            }
            Tok::Num(n) => (n, Conv::Float),
            Tok::Dur(d) => (d as f64 / 1e9, Conv::Duration),
            Tok::Bytes(b) => (b, Conv::Bytes),
            _ => {
                return Err(self.unexpected("a quoted string, a number, a duration or a byte size"));
            }
        };
        self.bump();
        let cmp = match op {
            "=" | "==" => Cmp::Eq,
            "!=" => Cmp::Ne,
            ">" => Cmp::Gt,
            ">=" => Cmp::Ge,
            "<" => Cmp::Lt,
            "<=" => Cmp::Le,
            _ => {
                return Err(QueryError::parse(
                    op_pos,
                    format!("`{op}` needs a quoted regular expression"),
                ));
            }
        };
        Ok(LabelFilter::Num {
            name,
            cmp,
            value: if neg { -value } else { value },
            conv,
        })
    }
}

/// A `line_format` template: text with `{{.label}}` (or `{{ .label }}`) and `{{__line__}}`.
fn template(t: &str, pos: usize) -> Result<Vec<TplPart>, QueryError> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(TplPart::Lit(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(QueryError::parse(pos, "line_format: `{{` without `}}`"));
        };
        let inner = after[..close].trim();
        if inner == "__line__" {
            parts.push(TplPart::Line);
        } else if let Some(name) = inner.strip_prefix('.')
            && !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            parts.push(TplPart::Label(name.to_owned()));
        } else {
            return Err(QueryError::parse(
                pos,
                format!(
                    "line_format: `{{{{{inner}}}}}` is not supported; only `{{{{.label}}}}` and `{{{{__line__}}}}` substitutions are"
                ),
            ));
        }
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(TplPart::Lit(rest.to_owned()));
    }
    Ok(parts)
}
