//! Blind search tokens (DESIGN.md, "Keys").
//!
//! - token key = HKDF-SHA256(IKM = the 32-byte search key, salt = `"logflux-tokens-v1"`,
//!   info = the application id in UTF-8, L = 32)
//! - token = the first 8 bytes, big-endian, of HMAC-SHA256(token key, field ‖ 0x00 ‖ value),
//!   written as 16 lower-case hex digits
//!
//! Fields and values, for an entry:
//!
//! | field | value |
//! |---|---|
//! | `level` | the level number, `1`..`8` |
//! | `type` | the entry type number, `1`..`7` |
//! | `source` | the source, exactly |
//! | `meta:KEY` | each metadata value, exactly |
//! | `word` | each word of the payload, lower-cased (see [`words`]) |
//!
//! A batch carries the deduplicated, sorted set of its tokens, without counts.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::{hkdf, hmac};
use logflux_proto::Entry;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// Length of a search key in bytes.
pub const SEARCH_KEY_LEN: usize = 32;
/// Words longer than this many bytes (after lower-casing) get no token: they are found by the
/// client's exact filter only.
pub const MAX_WORD_BYTES: usize = 64;

const HKDF_SALT: &[u8] = b"logflux-tokens-v1";

/// The customer's search key: agents and clients hold it, the server never does.
#[derive(Clone)]
pub struct SearchKey(Zeroizing<[u8; SEARCH_KEY_LEN]>);

impl fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SearchKey(***)")
    }
}

impl SearchKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; SEARCH_KEY_LEN]);
        crate::random_bytes(k.as_mut())?;
        Ok(SearchKey(k))
    }

    /// The key file's text form: 64 hex digits (white space around them ignored).
    pub fn from_text(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let mut k = Zeroizing::new([0u8; SEARCH_KEY_LEN]);
        hex::decode_to_slice(text, k.as_mut()).map_err(|_| {
            CryptoError::Key(format!(
                "a search key is {} hex digits (as `logflux keys generate` writes it), got {} characters",
                SEARCH_KEY_LEN * 2,
                text.len()
            ))
        })?;
        Ok(SearchKey(k))
    }

    /// The text form, 64 hex digits and a newline.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(hex::encode(self.0.as_ref()));
        s.push('\n');
        s
    }

    /// The token key of one application.
    pub fn token_key(&self, application: &str) -> TokenKey {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.0.as_ref());
        let info = [application.as_bytes()];
        let okm = prk
            .expand(&info, hmac::HMAC_SHA256)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        TokenKey(hmac::Key::from(okm))
    }
}

/// One application's token key.
#[derive(Clone)]
pub struct TokenKey(hmac::Key);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(***)")
    }
}

/// A field that tokens are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    Level,
    Type,
    Source,
    /// A metadata key.
    Meta(&'a str),
    /// A payload word.
    Word,
}

impl Field<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Field::Level => out.extend_from_slice(b"level"),
            Field::Type => out.extend_from_slice(b"type"),
            Field::Source => out.extend_from_slice(b"source"),
            Field::Meta(k) => {
                out.extend_from_slice(b"meta:");
                out.extend_from_slice(k.as_bytes());
            }
            Field::Word => out.extend_from_slice(b"word"),
        }
    }
}

impl TokenKey {
    /// The token of `field` = `value`. Words are lower-cased here, so callers pass them as
    /// written; `None` for a word that gets no token (empty, or longer than
    /// [`MAX_WORD_BYTES`]).
    pub fn token(&self, field: Field<'_>, value: &str) -> Option<Token> {
        let mut input = Vec::with_capacity(16 + value.len());
        field.write(&mut input);
        input.push(0);
        if field == Field::Word {
            let lower = lowercase(value);
            if lower.is_empty() || lower.len() > MAX_WORD_BYTES {
                return None;
            }
            input.extend_from_slice(lower.as_bytes());
        } else {
            input.extend_from_slice(value.as_bytes());
        }
        Some(self.mac(&input))
    }

    fn mac(&self, input: &[u8]) -> Token {
        let tag = hmac::sign(&self.0, input);
        Token(u64::from_be_bytes(
            tag.as_ref()[..8]
                .try_into()
                .expect("HMAC-SHA256 is 32 bytes"),
        ))
    }
}

/// A blind token: 64 bits of HMAC, written as 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Token {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CryptoError::Format(format!(
                "a token is 16 hex digits, got {:?}",
                s.chars().take(40).collect::<String>()
            )));
        }
        u64::from_str_radix(s, 16)
            .map(Token)
            .map_err(|_| CryptoError::Format("bad token".into()))
    }
}

fn lowercase(word: &str) -> std::borrow::Cow<'_, str> {
    if word.is_ascii() {
        if word.bytes().any(|b| b.is_ascii_uppercase()) {
            word.to_ascii_lowercase().into()
        } else {
            word.into()
        }
    } else {
        word.to_lowercase().into()
    }
}

/// The words of a text: maximal runs of letters, digits (Unicode alphanumerics) and `_`.
/// Everything else separates words. `user_id=42 GET /api/v1` gives `user_id`, `42`, `GET`,
/// `api`, `v1`. Words are returned as written; tokens lower-case them.
pub fn words(text: &str) -> Words<'_> {
    Words { text, pos: 0 }
}

/// Iterator returned by [`words`].
#[derive(Debug, Clone)]
pub struct Words<'a> {
    text: &'a str,
    pos: usize,
}

/// A character of a word of [`words`]: a Unicode alphanumeric or `_`.
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let mut start = None;
        let mut i = self.pos;
        while i < bytes.len() {
            let b = bytes[i];
            let (is_word, width) = if b < 0x80 {
                (b.is_ascii_alphanumeric() || b == b'_', 1)
            } else {
                let c = self.text[i..].chars().next().expect("char boundary");
                (is_word_char(c), c.len_utf8())
            };
            match (is_word, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    self.pos = i + width;
                    return Some(&self.text[s..i]);
                }
                _ => {}
            }
            i += width;
        }
        self.pos = bytes.len();
        start.map(|s| &self.text[s..])
    }
}

/// The deduplicated token set of a batch, built entry by entry. Each distinct field/value pair
/// is MAC'd once, at [`TokenSet::finish`].
#[derive(Debug)]
pub struct TokenSet {
    inputs: HashSet<Box<[u8]>, foldhash::fast::RandomState>,
    scratch: Vec<u8>,
    lower: String,
}

impl Default for TokenSet {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenSet {
    /// An empty set.
    pub fn new() -> Self {
        TokenSet {
            inputs: HashSet::default(),
            scratch: Vec::with_capacity(128),
            lower: String::new(),
        }
    }

    /// Number of distinct field/value pairs so far (an upper bound on the tokens).
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    fn add(&mut self, field: Field<'_>, value: &str) {
        self.scratch.clear();
        field.write(&mut self.scratch);
        self.scratch.push(0);
        self.scratch.extend_from_slice(value.as_bytes());
        if !self.inputs.contains(self.scratch.as_slice()) {
            self.inputs.insert(self.scratch.as_slice().into());
        }
    }

    fn add_word(&mut self, word: &str) {
        let mut buf = std::mem::take(&mut self.lower);
        buf.clear();
        let lower: &str = if !word.is_ascii() {
            // The same rule as `lowercase`, so entry and query tokens agree.
            buf.push_str(&word.to_lowercase());
            &buf
        } else if word.bytes().any(|b| b.is_ascii_uppercase()) {
            buf.push_str(word);
            buf.make_ascii_lowercase();
            &buf
        } else {
            word
        };
        if !lower.is_empty() && lower.len() <= MAX_WORD_BYTES {
            self.add(Field::Word, lower);
        }
        self.lower = buf;
    }

    /// Adds the tokens of one entry.
    pub fn add_entry(&mut self, entry: &Entry) {
        let mut num = [0u8; 1];
        num[0] = b'0' + entry.level.number();
        self.add(Field::Level, std::str::from_utf8(&num).expect("digit"));
        num[0] = b'0' + entry.entry_type.number();
        self.add(Field::Type, std::str::from_utf8(&num).expect("digit"));
        self.add(Field::Source, &entry.source);
        for (k, v) in &entry.metadata {
            self.add(Field::Meta(k), v);
        }
        for w in words(&entry.payload) {
            self.add_word(w);
        }
    }

    /// The sorted tokens, and the set emptied for reuse.
    pub fn finish(&mut self, key: &TokenKey) -> Vec<Token> {
        let mut out: Vec<Token> = self.inputs.drain().map(|i| key.mac(&i)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::{EntryType, Level};

    fn key() -> TokenKey {
        SearchKey::from_text(&"11".repeat(32))
            .unwrap()
            .token_key("app")
    }

    #[test]
    fn words_split_on_non_word_characters() {
        let w: Vec<_> = words("user_id=42 GET /api/v1 — Größe: ÉTÉ, 東京!").collect();
        assert_eq!(
            w,
            ["user_id", "42", "GET", "api", "v1", "Größe", "ÉTÉ", "東京"]
        );
        assert_eq!(words("").count(), 0);
        assert_eq!(words("  ...  ").count(), 0);
        assert_eq!(words("tail").collect::<Vec<_>>(), ["tail"]);
    }

    #[test]
    fn entry_tokens_match_query_tokens() {
        let k = key();
        let mut e = Entry::new(0, Level::Error, "Api-Gw", "Disk FULL on /var (Größe)");
        e.entry_type = EntryType::Audit;
        e.metadata.insert("host".into(), "Web-1".into());
        let mut set = TokenSet::new();
        set.add_entry(&e);
        let got = set.finish(&k);
        let mut want: Vec<Token> = [
            k.token(Field::Level, "4"),
            k.token(Field::Type, "5"),
            k.token(Field::Source, "Api-Gw"),
            k.token(Field::Meta("host"), "Web-1"),
            k.token(Field::Word, "disk"),
            k.token(Field::Word, "FULL"),
            k.token(Field::Word, "On"),
            k.token(Field::Word, "var"),
            k.token(Field::Word, "GRÖßE"),
        ]
        .into_iter()
        .map(Option::unwrap)
        .collect();
        want.sort();
        assert_eq!(got, want);
        // Source and metadata are exact, not lower-cased.
        assert_ne!(
            k.token(Field::Source, "api-gw"),
            k.token(Field::Source, "Api-Gw")
        );
        assert!(set.is_empty(), "finish empties the set for reuse");
    }

    #[test]
    fn duplicates_are_counted_once_and_long_words_skipped() {
        let k = key();
        let long = "a".repeat(MAX_WORD_BYTES + 1);
        let e = Entry::new(0, Level::Info, "s", &format!("x x X {long} x"));
        let mut set = TokenSet::new();
        set.add_entry(&e);
        set.add_entry(&e);
        // level, type, source, word x.
        assert_eq!(set.finish(&k).len(), 4);
        assert_eq!(k.token(Field::Word, &long), None);
        assert_eq!(k.token(Field::Word, ""), None);
        assert!(k.token(Field::Word, &"a".repeat(MAX_WORD_BYTES)).is_some());
    }

    #[test]
    fn keys_separate_applications_and_fields() {
        let sk = SearchKey::from_text(&"22".repeat(32)).unwrap();
        let a = sk.token_key("a");
        let b = sk.token_key("b");
        assert_ne!(a.token(Field::Word, "x"), b.token(Field::Word, "x"));
        assert_ne!(a.token(Field::Word, "x"), a.token(Field::Source, "x"));
        assert_ne!(
            a.token(Field::Meta("k"), "v"),
            a.token(Field::Meta("v"), "k")
        );
    }

    #[test]
    fn token_text_round_trips() {
        let t = Token(0x0123_4567_89ab_cdef);
        assert_eq!(t.to_string(), "0123456789abcdef");
        assert_eq!("0123456789abcdef".parse::<Token>().unwrap(), t);
        assert!("0123".parse::<Token>().is_err());
        assert!("0123456789abcdeg".parse::<Token>().is_err());
    }

    #[test]
    fn search_key_text_form() {
        let k = SearchKey::generate().unwrap();
        let text = k.to_text();
        assert_eq!(text.len(), 65);
        let again = SearchKey::from_text(&text).unwrap();
        assert_eq!(
            again.token_key("x").token(Field::Word, "w"),
            k.token_key("x").token(Field::Word, "w")
        );
        let e = SearchKey::from_text("abc").unwrap_err().to_string();
        assert!(e.contains("64 hex digits"), "{e}");
        assert_eq!(format!("{k:?}"), "SearchKey(***)");
    }
}
