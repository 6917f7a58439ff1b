//! The fast path of [`super::parse_line`]: a hand-written reader for the common line — one flat
//! object of strings, small non-negative integers, `null`, booleans, and flat `metadata` or
//! `labels` objects — that builds exactly the [`RawObject`] serde_json would.
//!
//! Anything it does not handle (a batch, a string with an escape the reader does not decode, a
//! negative or fractional number, a non-empty array, deeper nesting, a field given twice,
//! anything that is not valid JSON) makes it give up with `None`; the line is then read by
//! serde_json, which gives the same result or the error it always gave. So the reader never
//! decides that a line is invalid: it only accepts lines serde_json accepts, with the same
//! values. The property test `fast_path_reads_what_serde_reads` checks this against serde_json.

use std::borrow::Cow;

use super::{Any, RawObject};

/// Numbers of up to this many digits are read here (they fit in a `u64`); longer ones go to
/// serde_json, which turns too large integers into floats.
const MAX_DIGITS: usize = 18;

/// The line read into a [`RawObject`], or `None` when serde_json has to read it.
pub(super) fn raw_object(line: &[u8]) -> Option<RawObject<'_>> {
    // One UTF-8 check for the whole line: then every slice between two ASCII delimiters is a
    // valid `str` (serde_json refuses invalid UTF-8 inside strings; outside them the grammar
    // below only accepts ASCII).
    let text = std::str::from_utf8(line).ok()?;
    let mut r = Reader {
        text,
        bytes: line,
        pos: 0,
    };
    let mut raw = RawObject::default();
    r.ws();
    r.eat(b'{')?;
    r.ws();
    if r.peek() == Some(b'}') {
        r.pos += 1;
    } else {
        loop {
            let key = r.string()?;
            r.ws();
            r.eat(b':')?;
            r.ws();
            let slot = match &*key {
                "version" => Some(&mut raw.version),
                "action" => Some(&mut raw.action),
                "shared_secret" => Some(&mut raw.shared_secret),
                "payload" => Some(&mut raw.payload),
                "source" => Some(&mut raw.source),
                "timestamp" => Some(&mut raw.timestamp),
                "payloadType" => Some(&mut raw.payload_type),
                "entryType" => Some(&mut raw.entry_type),
                "logLevel" => Some(&mut raw.log_level),
                "metadata" => Some(&mut raw.metadata),
                "id" => Some(&mut raw.id),
                "message" => Some(&mut raw.message),
                "entry_type" => Some(&mut raw.entry_type_legacy),
                "level" => Some(&mut raw.level),
                "labels" => Some(&mut raw.labels),
                // A batch: serde_json reads it.
                "entries" => return None,
                _ => None,
            };
            match slot {
                // serde refuses a field given twice ("duplicate field"); it says so.
                Some(slot) if !slot.is_missing() => return None,
                Some(slot) => *slot = r.value(true)?,
                // Unknown fields are ignored, but must still be valid JSON. An object or
                // array goes to serde_json, which skips it without building it (a line of
                // ~1 MiB of pairs would otherwise be held as a map just to be dropped).
                None if matches!(r.peek(), Some(b'{' | b'[')) => return None,
                None => {
                    r.value(true)?;
                }
            }
            r.ws();
            match r.next()? {
                b',' => r.ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    r.ws();
    (r.pos == r.bytes.len()).then_some(raw)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    /// Skips JSON white space (only these four; serde_json refuses any other).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string at the cursor: borrowed when it has no escape, decoded when its escapes are
    /// the simple ones; `None` for a `\u` escape (serde_json decodes those, and judges
    /// surrogates) or anything invalid.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = self.string_end()?;
        if self.bytes[end] == b'"' {
            self.pos = end + 1;
            return Some(Cow::Borrowed(self.text.get(start..end)?));
        }
        // An escape: decode into an owned string.
        let mut out = String::with_capacity(end - start + 16);
        let mut from = start;
        let mut at = end;
        loop {
            out.push_str(self.text.get(from..at)?);
            if self.bytes[at] == b'"' {
                self.pos = at + 1;
                return Some(Cow::Owned(out));
            }
            // `at` is a backslash.
            let decoded = match *self.bytes.get(at + 1)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                _ => return None,
            };
            out.push(decoded);
            from = at + 2;
            self.pos = from;
            at = self.string_end()?;
        }
    }

    /// The index of the next `"` or `\` from the cursor; `None` at the end of the line or at a
    /// control character (serde_json refuses those inside strings).
    fn string_end(&self) -> Option<usize> {
        let rest = self.bytes.get(self.pos..)?;
        // Eight bytes at a time: a byte is flagged when it is `"`, `\` or below 0x20. The
        // lowest flag is exact (a borrow can only flag bytes above a true one).
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        let mut at = 0;
        while let Some(chunk) = rest.get(at..at + 8) {
            let w = u64::from_le_bytes(chunk.try_into().ok()?);
            let quote = w ^ (ONES * u64::from(b'"'));
            let backslash = w ^ (ONES * u64::from(b'\\'));
            let flags = (quote.wrapping_sub(ONES) & !quote
                | backslash.wrapping_sub(ONES) & !backslash
                | w.wrapping_sub(ONES * 0x20) & !w)
                & HIGH;
            if flags != 0 {
                at += (flags.trailing_zeros() / 8) as usize;
                break;
            }
            at += 8;
        }
        let i = at
            + rest
                .get(at..)?
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        (rest[i] >= 0x20).then_some(self.pos + i)
    }

    /// A value at the cursor. Objects are read only when `object` (the top level's values),
    /// and then only flat ones.
    fn value(&mut self, object: bool) -> Option<Any<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Any::Str),
            b'n' => self.literal(b"null", Any::Null),
            b't' => self.literal(b"true", Any::Bool(true)),
            b'f' => self.literal(b"false", Any::Bool(false)),
            b'0'..=b'9' => self.unsigned(),
            b'[' => {
                // Only `[]` (PHP's empty map); serde_json counts the elements of others.
                self.pos += 1;
                self.ws();
                self.eat(b']')?;
                Some(Any::Seq(0))
            }
            b'{' if object => self.map(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], v: Any<'a>) -> Option<Any<'a>> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            v
        })
    }

    /// A non-negative integer without fraction or exponent, as serde_json gives it (`u64`).
    fn unsigned(&mut self) -> Option<Any<'a>> {
        let start = self.pos;
        let digits = self.bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        // A leading zero is only valid alone ("0"); "01" is an error for serde_json.
        if digits > MAX_DIGITS || (digits > 1 && self.bytes[start] == b'0') {
            return None;
        }
        self.pos += digits;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let n = self.bytes[start..self.pos]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some(Any::UInt(n))
    }

    /// A flat object (its values are not objects), in the order given; repeated keys are kept,
    /// as serde_json gives them to the visitor.
    fn map(&mut self) -> Option<Any<'a>> {
        self.eat(b'{')?;
        self.ws();
        let mut pairs = Vec::new();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Some(Any::Map(pairs));
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let value = self.value(false)?;
            pairs.push((key, value));
            self.ws();
            match self.next()? {
                b',' => self.ws(),
                b'}' => return Some(Any::Map(pairs)),
                _ => return None,
            }
        }
    }
}
