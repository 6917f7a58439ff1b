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
    let mut buf = [0u8; 13];
    let lower = &mut buf[..w.len()];
    lower.copy_from_slice(w);
    lower.make_ascii_lowercase();
    Some(match &*lower {
        b"trace" | b"trc" | b"debug" | b"dbg" | b"verbose" | b"vrb" | b"finest" | b"finer"
        | b"fine" => Level::Debug,
        b"info" | b"inf" | b"information" | b"informational" => Level::Info,
        b"notice" => Level::Notice,
        b"warn" | b"warning" | b"wrn" => Level::Warning,
        b"error" | b"err" | b"eror" | b"severe" => Level::Error,
        b"fatal" | b"ftl" | b"crit" | b"critical" | b"failure" => Level::Critical,
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
    let b = line.as_bytes();
    let mut i = from.min(b.len());
    let mut numeric_run = 0;
    let mut seen = 0;
    while i < b.len() && seen < WORDS {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'|') {
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
            if let Some(l) = word(inner) {
                return Some(l);
            }
            // `[main] ERROR`, `[pid 12:tid 3] [error]`: a bracket is a word.
            while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'|') {
                i += 1;
            }
            seen += 1;
            numeric_run = 0;
            continue;
        }
        while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'|') {
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
            && (cased(w) || ends_colon)
        {
            return Some(l);
        } else if let Some(l) = key_value(w) {
            return Some(l);
        }
        if ends_colon {
            // `prog[pid]:`, `Logger:`: the message begins (sshd's `error:` after it is words).
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
