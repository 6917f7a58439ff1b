//! Route matchers as Alertmanager writes them: `a="b"`, `a!="b"`, `a=~"x"`, `a!~"x"`, quoted or
//! not, one per string or several in `{…}` separated by commas. A label the alert lacks is the
//! empty string, and regular expressions are anchored at both ends.

use std::fmt;

use regex::Regex;

use crate::LabelSet;

/// How a matcher compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

/// One label matcher.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    name: String,
    op: Op,
    value: String,
    re: Option<Regex>,
}

impl Matcher {
    pub(crate) fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            op: Op::Eq,
            value: value.to_owned(),
            re: None,
        }
    }

    pub(crate) fn regex(name: &str, value: &str, negate: bool) -> Result<Self, String> {
        let re = Regex::new(&format!("^(?:{value})$"))
            .map_err(|e| format!("bad regular expression {value:?}: {e}"))?;
        Ok(Self {
            name: name.to_owned(),
            op: if negate { Op::NotRe } else { Op::Re },
            value: value.to_owned(),
            re: Some(re),
        })
    }

    pub(crate) fn matches(&self, labels: &LabelSet) -> bool {
        let v = labels.get(&self.name).map_or("", String::as_str);
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            (_, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        };
        write!(f, "{}{op}{}", self.name, quote(&self.value))
    }
}

/// A value in double quotes, with `\`, `"` and newlines escaped (as Go's `%q` for these).
pub(crate) fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Parses one `matchers:` entry (one matcher, or several in `{…}`).
pub(crate) fn parse(s: &str) -> Result<Vec<Matcher>, String> {
    let t = s.trim();
    let inner = match t.strip_prefix('{') {
        Some(r) => r
            .strip_suffix('}')
            .ok_or_else(|| format!("{s:?}: a `{{` without its `}}`"))?,
        None => t,
    };
    let mut out = Vec::new();
    for item in split_outside_quotes(inner)? {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        out.push(parse_one(item)?);
    }
    if out.is_empty() {
        return Err(format!(
            "{s:?} is not a matcher (write name=\"value\", name!=\"value\", name=~\"regex\" or \
             name!~\"regex\")"
        ));
    }
    Ok(out)
}

fn split_outside_quotes(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err(format!("{s:?}: a quote is not closed"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_one(item: &str) -> Result<Matcher, String> {
    let help = || {
        format!(
            "{item:?} is not a matcher (write name=\"value\", name!=\"value\", name=~\"regex\" \
             or name!~\"regex\")"
        )
    };
    let at = item.find(['=', '!']).ok_or_else(help)?;
    let name = item[..at].trim();
    let valid_name = name.chars().enumerate().all(|(i, c)| {
        c == '_' || c == ':' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
    });
    if name.is_empty() || !valid_name {
        return Err(help());
    }
    let rest = &item[at..];
    let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
        (Op::Re, v)
    } else if let Some(v) = rest.strip_prefix("!~") {
        (Op::NotRe, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (Op::Ne, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (Op::Eq, v)
    } else {
        return Err(help());
    };
    let value = unquote(value.trim()).map_err(|e| format!("{item:?}: {e}"))?;
    match op {
        Op::Eq | Op::Ne => Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            re: None,
        }),
        Op::Re | Op::NotRe => Matcher::regex(name, &value, op == Op::NotRe),
    }
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.contains('"') {
            return Err("a value with a quote inside must be quoted as a whole".into());
        }
        return Ok(v.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or("the value's quote is not closed")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                // Regular expressions keep their own escapes (`\.`, `\d`).
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => return Err("the value ends with a lone backslash".into()),
            },
            '"' => return Err("a quote inside the value must be escaped (\\\")".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn one(s: &str) -> Matcher {
        let mut v = parse(s).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn the_four_operators_quoted_or_not() {
        let l = labels(&[("severity", "critical"), ("team", "db-1")]);
        assert!(one(r#"severity="critical""#).matches(&l));
        assert!(one("severity = critical").matches(&l));
        assert!(!one(r#"severity!="critical""#).matches(&l));
        assert!(one(r#"team=~"db-\d""#).matches(&l));
        // Anchored: a partial match is no match.
        assert!(!one(r#"team=~"db""#).matches(&l));
        assert!(one(r#"team!~"web.*""#).matches(&l));
        // A missing label is the empty string.
        assert!(one(r#"owner="""#).matches(&l));
        assert!(one(r#"owner!~".+""#).matches(&l));
    }

    #[test]
    fn several_in_braces_and_commas_inside_quotes() {
        let m = parse(r#"{a="x,y", b!="z"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].to_string(), r#"a="x,y""#);
        assert_eq!(m[1].to_string(), r#"b!="z""#);
        assert_eq!(one(r#"a="q\"uote""#).to_string(), r#"a="q\"uote""#);
    }

    #[test]
    fn bad_matchers_say_how_to_write_them() {
        for bad in [
            "",
            "severity",
            "=x",
            "1a=b",
            r#"a="open"#,
            "a=~\"(\"",
            r#"{a="b""#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// What a matcher prints parses back to a matcher that matches the same way.
        #[test]
        fn printed_matchers_parse_back(
            name in "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
            op in 0..4usize,
            value in "[ -~\n]{0,12}",
            probe in "[ -~\n]{0,12}",
        ) {
            let m = match op {
                0 => Matcher::equal(&name, &value),
                1 => Matcher { op: Op::Ne, ..Matcher::equal(&name, &value) },
                // Regular expressions from arbitrary text may not compile: literal ones do.
                n => Matcher::regex(&name, &regex::escape(&value), n == 3).unwrap(),
            };
            let back = parse(&m.to_string()).unwrap();
            proptest::prop_assert_eq!(back.len(), 1);
            let l = labels(&[(&name, &probe)]);
            proptest::prop_assert_eq!(back[0].matches(&l), m.matches(&l));
            let l = labels(&[(&name, &value)]);
            proptest::prop_assert_eq!(back[0].matches(&l), m.matches(&l));
        }
    }
}
