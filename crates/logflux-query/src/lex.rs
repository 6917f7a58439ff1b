//! The LogQL lexer: tokens with their byte offsets.

use crate::QueryError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    /// A duration literal (`5m`, `1h30m`, `250ms`), in nanoseconds.
    Dur(i64),
    /// A byte-size literal (`10KB`, `1MiB`), in bytes.
    Bytes(f64),
    Punct(&'static str),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

const PUNCTS: [&str; 29] = [
    "|=", "|~", "|>", "!=", "!~", "!>", "=~", "==", ">=", "<=", "|", "{", "}", "(", ")", "[", "]",
    ",", "=", ">", "<", "+", "-", "*", "/", "%", "^", ":", "@",
];

pub(crate) fn lex(q: &str) -> Result<Vec<Token>, QueryError> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let pos = i;
        if c == b'$' {
            let end = q[i + 1..]
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .map_or(q.len(), |e| i + 1 + e);
            return Err(QueryError::parse(
                pos,
                format!(
                    "the variable `{}` must be substituted by the caller before parsing (Grafana's `$__auto` becomes a range such as `1m`)",
                    &q[pos..end]
                ),
            ));
        }
        if c == b'"' || c == b'`' {
            let (s, end) = lex_string(q, i)?;
            out.push(Token {
                tok: Tok::Str(s),
                pos,
            });
            i = end;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let (tok, end) = lex_number(q, i)?;
            out.push(Token { tok, pos });
            i = end;
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            out.push(Token {
                tok: Tok::Ident(q[i..j].to_owned()),
                pos,
            });
            i = j;
            continue;
        }
        match PUNCTS.iter().find(|p| q[i..].starts_with(**p)) {
            Some(p) => {
                out.push(Token {
                    tok: Tok::Punct(p),
                    pos,
                });
                i += p.len();
            }
            None => {
                let ch = q[i..].chars().next().unwrap_or('?');
                return Err(QueryError::parse(
                    pos,
                    format!("unexpected character {ch:?}"),
                ));
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: q.len(),
    });
    Ok(out)
}

/// A double-quoted string with Go escapes, or a back-quoted raw string.
fn lex_string(q: &str, start: usize) -> Result<(String, usize), QueryError> {
    let quote = q.as_bytes()[start];
    let mut out = String::new();
    let mut chars = q[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let at = start + 1 + off;
        if ch as u32 == u32::from(quote) {
            return Ok((out, at + 1));
        }
        if quote == b'"' && ch == '\\' {
            let Some((_, e)) = chars.next() else {
                break;
            };
            let simple = match e {
                'n' => Some('\n'),
                't' => Some('\t'),
                'r' => Some('\r'),
                '\\' => Some('\\'),
                '"' => Some('"'),
                '\'' => Some('\''),
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'v' => Some('\u{b}'),
                _ => None,
            };
            if let Some(s) = simple {
                out.push(s);
                continue;
            }
            let digits = match e {
                'u' => 4,
                'U' => 8,
                'x' => 2,
                _ => {
                    return Err(QueryError::parse(
                        at,
                        format!("unknown escape sequence \\{e} in a string"),
                    ));
                }
            };
            let mut v: u32 = 0;
            for _ in 0..digits {
                let d = chars
                    .next()
                    .and_then(|(_, h)| h.to_digit(16))
                    .ok_or_else(|| {
                        QueryError::parse(at, format!("bad \\{e} escape in a string"))
                    })?;
                v = v * 16 + d;
            }
            let c = char::from_u32(v).ok_or_else(|| {
                QueryError::parse(at, format!("\\{e} escape {v:#x} is not a character"))
            })?;
            out.push(c);
            continue;
        }
        out.push(ch);
    }
    Err(QueryError::parse(start, "unterminated string"))
}

fn lex_number(q: &str, start: usize) -> Result<(Tok, usize), QueryError> {
    let b = q.as_bytes();
    let mut j = start;
    while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.') {
        j += 1;
    }
    // An exponent: 1e3, 2.5E-2.
    if j < b.len()
        && (b[j] == b'e' || b[j] == b'E')
        && (b.get(j + 1).is_some_and(u8::is_ascii_digit)
            || (matches!(b.get(j + 1), Some(b'+' | b'-'))
                && b.get(j + 2).is_some_and(u8::is_ascii_digit)))
    {
        j += 2;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let text = &q[start..j];
        return text
            .parse::<f64>()
            .map(|v| (Tok::Num(v), j))
            .map_err(|_| QueryError::parse(start, format!("bad number {text:?}")));
    }
    let num_end = j;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'.' || b[j] == b'_') {
        j += 1;
    }
    // µs
    while q[j..].starts_with('µ') {
        j += 'µ'.len_utf8();
        while j < b.len() && b[j].is_ascii_alphanumeric() {
            j += 1;
        }
    }
    let text = &q[start..j];
    if j == num_end {
        return text
            .parse::<f64>()
            .map(|v| (Tok::Num(v), j))
            .map_err(|_| QueryError::parse(start, format!("bad number {text:?}")));
    }
    if let Some(ns) = parse_duration_literal(text) {
        return Ok((Tok::Dur(ns), j));
    }
    if let Some(bytes) = parse_bytes(text) {
        return Ok((Tok::Bytes(bytes), j));
    }
    Err(QueryError::parse(
        start,
        format!(
            "bad number, duration or size {text:?} (durations: 5m, 1h30m, 250ms; sizes: 10KB, 1MiB)"
        ),
    ))
}

fn unit_ns(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        "d" => 86_400e9,
        "w" => 7.0 * 86_400e9,
        "y" => 365.0 * 86_400e9,
        _ => return None,
    })
}

/// `5m`, `1h30m`, `1.5s`, `250ms`: a sequence of number-unit pairs (Go's and Prometheus's
/// units together), in nanoseconds.
pub(crate) fn parse_duration_literal(text: &str) -> Option<i64> {
    parse_duration_units(text).map(|f| f as i64)
}

fn parse_duration_units(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n_end == 0 {
            return None;
        }
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = &rest[n_end..];
        let u_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = unit_ns(&rest[..u_end])?;
        total += n * unit;
        rest = &rest[u_end..];
    }
    Some(total)
}

/// A Go duration as a label value (`time.ParseDuration`: `1.5s`, `-2m`, `300ms`, `0`), in
/// seconds.
pub(crate) fn parse_go_duration_seconds(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body == "0" {
        return Some(0.0);
    }
    if body.contains(['d', 'w', 'y']) {
        return None;
    }
    let ns = parse_duration_units(body)?;
    Some(if neg { -ns } else { ns } / 1e9)
}

/// A byte size as humanize.ParseBytes reads it: `42`, `10KB`, `1.5 MiB`, `3gb`.
pub(crate) fn parse_bytes(s: &str) -> Option<f64> {
    let s = s.trim();
    let n_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if n_end == 0 {
        return None;
    }
    let n: f64 = s[..n_end].parse().ok()?;
    let unit = s[n_end..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        _ => return None,
    };
    Some(n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration_literal("5m"), Some(300_000_000_000));
        assert_eq!(parse_duration_literal("1h30m"), Some(5_400_000_000_000));
        assert_eq!(parse_duration_literal("250ms"), Some(250_000_000));
        assert_eq!(parse_duration_literal("5x"), None);
        assert_eq!(parse_go_duration_seconds("1.5s"), Some(1.5));
        assert_eq!(parse_go_duration_seconds("-2m"), Some(-120.0));
        assert_eq!(parse_go_duration_seconds("300ms"), Some(0.3));
        assert_eq!(parse_go_duration_seconds("12"), None);
        assert_eq!(parse_bytes("10KB"), Some(10_000.0));
        assert_eq!(parse_bytes("1 MiB"), Some(1_048_576.0));
        assert_eq!(parse_bytes("42"), Some(42.0));
        assert_eq!(parse_bytes("x"), None);
    }

    #[test]
    fn tokens_carry_positions() {
        let t = lex(r#"{app="a\"b"} |= `x\y` [5m]"#).unwrap();
        assert_eq!(t[0].tok, Tok::Punct("{"));
        assert_eq!(t[3].tok, Tok::Str("a\"b".into()));
        assert_eq!(t[5].tok, Tok::Punct("|="));
        assert_eq!(t[5].pos, 13);
        assert_eq!(t[6].tok, Tok::Str("x\\y".into()));
        assert_eq!(t[8].tok, Tok::Dur(300_000_000_000));
        let e = lex("{a=\"x\"}[$__auto]").unwrap_err();
        assert_eq!(e.pos, 8);
        assert!(e.message.contains("$__auto"), "{e}");
    }
}
