//! Levels found in a line's text, only where logs write them: the first words after the
//! timestamp (bare, bracketed or followed by `:`), a `level=`/`lvl=`/`severity=` key, klog's
//! first letter, Android's single letters after the pid and tid, Windows CBS's `Info` after the
//! timestamp and comma. A level word in the middle of a message is never taken ("0 errors").

use logflux_proto::Level;

/// A level word (any case): the spellings of the common loggers (log4j, Python, syslog,
/// Serilog's three letters, java.util.logging's `SEVERE`).
pub fn word(w: &[u8]) -> Option<Level> {
    if w.len() > 13 || w.is_empty() {
        return None;
    }
    // slog's levels between the named ones (`ERROR+2`, `INFO-4`): the named one.
    let w = match w.iter().position(|&c| c == b'+' || c == b'-') {
        Some(k) if k > 0 && w.len() > k + 1 && w[k + 1..].iter().all(u8::is_ascii_digit) => &w[..k],
        _ => w,
    };
    let mut buf = [0u8; 13];
    let lower = &mut buf[..w.len()];
    lower.copy_from_slice(w);
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"trace" | b"trc" | b"debug" | b"dbg" | b"verbose" | b"vrb" | b"finest" | b"finer"
        | b"fine" | b"trace1" | b"trace2" | b"trace3" | b"trace4" | b"trace5" | b"trace6"
        | b"trace7" | b"trace8" => Level::Debug,
        b"info" | b"inf" | b"information" | b"informational" => Level::Info,
        b"notice" => Level::Notice,
        b"warn" | b"warning" | b"wrn" => Level::Warning,
        b"error" | b"err" | b"eror" | b"severe" => Level::Error,
        b"fatal" | b"ftl" | b"crit" | b"critical" | b"failure" | b"dpanic" => Level::Critical,
        b"alert" => Level::Alert,
        b"emerg" | b"emergency" | b"panic" => Level::Emergency,
        _ => return None,
    })
}

/// A level named by one letter (klog/glog, Android).
pub fn letter(c: u8) -> Option<Level> {
    Some(match c {
        b'V' | b'D' => Level::Debug,
        b'I' => Level::Info,
        b'W' => Level::Warning,
        b'E' => Level::Error,
        b'F' | b'A' => Level::Critical,
        _ => return None,
    })
}

/// A bare word in capitals (`INFO`), or capitalised as Windows and .NET write levels (`Info`,
/// `Warning`, `Error`): a capitalised `Alert`, `Critical` or `Fatal` starts a sentence more
/// often than it names a level.
fn cased(w: &[u8]) -> bool {
    if w.iter().all(u8::is_ascii_uppercase) {
        return true;
    }
    const TITLES: [&[u8]; 8] = [
        b"Info",
        b"Information",
        b"Warning",
        b"Warn",
        b"Error",
        b"Debug",
        b"Trace",
        b"Verbose",
    ];
    TITLES.contains(&w)
}

/// How many words after the timestamp may come before the level (HDFS's pid, BGL's node,
/// `RAS KERNEL`).
const WORDS: usize = 5;

/// The level of a line from its words after `from` (the end of its timestamp, or 0).
pub fn after(line: &str, from: usize) -> Option<Level> {
    scan(line, from, false)
}

/// The level among the words before a line's timestamp (`head`: the text before it), where a
/// capitalised `Critical` (Windows Event Viewer's export, `Critical<TAB>11/30/2026 …`) is the
/// level too: a sentence does not end in a timestamp.
pub fn before_time(head: &str) -> Option<Level> {
    scan(head, 0, true)
}

/// Bytes between words.
fn gap(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'|')
}

/// The level in a bracketed header token's inside: `WARN `, `error`, Apache 2.4's
/// `module:level` (`core:error`, `ssl:warn`, `core:trace3`), MySQL's `Note` and `System`
/// (its information levels).
fn bracketed(inner: &[u8]) -> Option<Level> {
    if let Some(l) = word(inner) {
        return Some(l);
    }
    if inner == b"Note" || inner == b"System" {
        return Some(Level::Info);
    }
    let colon = inner.iter().rposition(|&c| c == b':')?;
    let module = &inner[..colon];
    if module
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
    {
        let lv = &inner[colon + 1..];
        if lv.iter().all(u8::is_ascii_lowercase) || lv.starts_with(b"trace") {
            return word(lv);
        }
    }
    None
}

/// Level shapes that open a line that has no time: Python logging's default
/// `LEVEL:logger:message` (`ERROR:root:…`), logrus's terminal `INFO[0003]` (seconds since
/// start), .NET's console `fail: Category[id]`.
fn line_opening(tok: &[u8], next: u8) -> Option<Level> {
    if let Some(colon) = tok.iter().position(|&c| c == b':')
        && colon + 1 < tok.len()
        && tok[..colon].iter().all(u8::is_ascii_uppercase)
        && let Some(l) = word(&tok[..colon])
    {
        return Some(l);
    }
    if let Some(open) = tok.iter().position(|&c| c == b'[')
        && open == 4
        && tok.ends_with(b"]")
        && tok[5..tok.len() - 1].iter().all(u8::is_ascii_digit)
    {
        return Some(match &tok[..4] {
            b"TRAC" | b"DEBU" => Level::Debug,
            b"INFO" => Level::Info,
            b"WARN" => Level::Warning,
            b"ERRO" => Level::Error,
            b"FATA" => Level::Critical,
            b"PANI" => Level::Emergency,
            _ => return None,
        });
    }
    if next == b' ' {
        return match tok {
            b"trce:" | b"dbug:" => Some(Level::Debug),
            b"info:" => Some(Level::Info),
            b"warn:" => Some(Level::Warning),
            b"fail:" => Some(Level::Error),
            b"crit:" => Some(Level::Critical),
            _ => None,
        };
    }
    None
}

/// A word that starts the message: capitalised (`Starting`, `Connection`), which header
/// fields (ids, hosts, loggers, `RAS KERNEL`) are not.
fn sentence_start(w: &[u8]) -> bool {
    w.len() >= 3 && w[0].is_ascii_uppercase() && w[1..].iter().all(u8::is_ascii_lowercase)
}

/// A word of prose: lower-case letters only (`up`, `with`).
fn prose(w: &[u8]) -> bool {
    w.len() >= 2 && w.iter().all(u8::is_ascii_lowercase)
}

fn scan(line: &str, from: usize, titled: bool) -> Option<Level> {
    let b = line.as_bytes();
    let mut i = from.min(b.len());
    let mut numeric_run = 0;
    let mut seen = 0;
    let mut prose_run = 0;
    while i < b.len() && seen < WORDS {
        // A closing bracket right after the time (`[2026-…,123][WARN ]`) is between words.
        while i < b.len() && (gap(b[i]) || (b[i] == b']' && seen == 0)) {
            i += 1;
        }
        let start = i;
        // A bracketed token may hold spaces: `[QuorumPeer[myid=1]/0:0:0:2181]`, `[ERROR ]`.
        if matches!(b.get(i), Some(b'[' | b'(' | b'<')) {
            let close = match b[i] {
                b'[' => b']',
                b'(' => b')',
                _ => b'>',
            };
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b[start] {
                    depth += 1;
                } else if b[i] == close {
                    depth -= 1;
                    if depth == 0 {
                        i += 1;
                        break;
                    }
                }
                i += 1;
            }
            let inner_end = if b.get(i.wrapping_sub(1)) == Some(&close) {
                i - 1
            } else {
                i
            };
            let inner = b[start + 1..inner_end.max(start + 1)].trim_ascii();
            if let Some(l) = bracketed(inner) {
                return Some(l);
            }
            // `[main] ERROR`, `[pid 12:tid 3] [error]`: a bracket is a word; Envoy's
            // `[1][info][main]` are words without spaces between.
            while i < b.len() && !gap(b[i]) && b[i] != b'[' {
                i += 1;
            }
            seen += 1;
            numeric_run = 0;
            prose_run = 0;
            continue;
        }
        while i < b.len() && !gap(b[i]) {
            i += 1;
        }
        let tok = &b[start..i];
        if tok.is_empty() {
            break;
        }
        // Punctuation alone (`-`, `,`, `]`, `:`) is not a word.
        if !tok.iter().any(u8::is_ascii_alphanumeric) {
            continue;
        }
        seen += 1;
        if seen == 1
            && from == 0
            && start == 0
            && let Some(l) = line_opening(tok, b.get(i).copied().unwrap_or(b' '))
        {
            return Some(l);
        }
        // Serilog's `[10:42:00 INF]`: the bracket opened before the time closes after the level.
        let tok = match tok.strip_suffix(b"]") {
            Some(t) if !t.contains(&b'[') => t,
            _ => tok,
        };
        let ends_colon = tok.last() == Some(&b':');
        let w = tok
            .strip_prefix(b",")
            .unwrap_or(tok)
            .strip_suffix(b":")
            .or_else(|| tok.strip_suffix(b","))
            .unwrap_or(tok);
        if w.len() == 1 {
            // Android threadtime: `pid tid D Tag:`.
            if numeric_run >= 2 {
                return letter(w[0]);
            }
        } else if w.len() > 2 && w[1] == b'/' && w[0].is_ascii_uppercase() {
            // Android brief: `D/Tag( 123):`.
            if let Some(l) = letter(w[0]) {
                return Some(l);
            }
        } else if let Some(l) = word(w)
            // `ERROR:` anywhere in the header; a lower-case `error:` only as its first word
            // (`… after error: reset` is the message's).
            && (cased(w) || (ends_colon && seen == 1) || (titled && seen == 1))
        {
            return Some(l);
        } else if ends_colon && w == b"LOG" {
            // PostgreSQL's `LOG:` (its informational messages).
            return Some(Level::Info);
        } else if let Some(l) = key_value(w) {
            return Some(l);
        }
        prose_run = if prose(w) { prose_run + 1 } else { 0 };
        if ends_colon || sentence_start(w) || prose_run >= 2 {
            // `prog[pid]:`, `Logger:`, `Starting up`: the message begins (sshd's `error:` after
            // `sshd[12]:`, "Starting up with level INFO" are words of it).
            return None;
        }
        numeric_run = if w.iter().all(u8::is_ascii_digit) {
            numeric_run + 1
        } else {
            0
        };
    }
    None
}

/// Redis's level mark after its time (`1:M 30 Nov 2026 10:42:00.123 * Ready…`): `.` debug,
/// `-` verbose, `*` notice, `#` warning; taken only after Redis's `pid:role ` prefix (`head`,
/// the text before the time) and from the mark right after the time (`tail`).
pub fn redis_mark(head: &str, tail: &str) -> Option<Level> {
    let h = head.as_bytes();
    let n = h.len();
    if n < 4
        || h[n - 1] != b' '
        || !matches!(h[n - 2], b'M' | b'C' | b'S' | b'X')
        || h[n - 3] != b':'
        || !h[..n - 3].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    match tail.as_bytes() {
        [b' ', m, b' ', ..] => Some(match m {
            b'.' | b'-' => Level::Debug,
            b'*' => Level::Notice,
            b'#' => Level::Warning,
            _ => return None,
        }),
        _ => None,
    }
}

/// The severity of a syslog PRI that opens the line (`<34>1 2026-…`, `<13>Nov 30 …`: a file
/// written in RFC 5424 or with the PRI kept): PRI mod 8.
pub fn pri(line: &str) -> Option<Level> {
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let close = b.iter().take(5).position(|&c| c == b'>')?;
    let digits = &b[1..close];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v: u32 = line[1..close].parse().ok()?;
    if v > 191 || !b.get(close + 1)?.is_ascii_alphanumeric() {
        return None;
    }
    Level::from_number(i64::from(v % 8) + 1)
}

/// `level=error`, `lvl=warn`, `severity=ERROR` (quotes allowed).
fn key_value(w: &[u8]) -> Option<Level> {
    let eq = w.iter().position(|&c| c == b'=')?;
    let key = &w[..eq];
    if !(key.eq_ignore_ascii_case(b"level")
        || key.eq_ignore_ascii_case(b"lvl")
        || key.eq_ignore_ascii_case(b"severity")
        || key.eq_ignore_ascii_case(b"loglevel"))
    {
        return None;
    }
    let v = &w[eq + 1..];
    let v = v.strip_prefix(b"\"").unwrap_or(v);
    let v = v.strip_suffix(b"\"").unwrap_or(v);
    word(v)
}

/// A `level=` key anywhere among the line's first words (logfmt-like text lines whose time is
/// not first).
pub fn key_anywhere(line: &str) -> Option<Level> {
    let head = &line.as_bytes()[..line.len().min(300)];
    head.split(|&c| c == b' ').find_map(key_value)
}
