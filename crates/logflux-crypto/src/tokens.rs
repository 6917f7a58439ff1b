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

use aws_lc_rs::hkdf;
use logflux_proto::{Entry, order_bytes, same_bytes};
use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::fastmac::MacKey;

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
        /// HKDF output of the HMAC-SHA256 key length.
        struct KeyLen;
        impl hkdf::KeyType for KeyLen {
            fn len(&self) -> usize {
                TOKEN_KEY_LEN
            }
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(self.0.as_ref());
        let info = [application.as_bytes()];
        let okm = prk
            .expand(&info, KeyLen)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut key = Zeroizing::new([0u8; TOKEN_KEY_LEN]);
        okm.fill(key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        TokenKey(MacKey::new(key.as_ref()))
    }
}

/// Length of a token key: the HMAC-SHA256 output length, as `hmac::Key::from(Okm)` takes it.
const TOKEN_KEY_LEN: usize = 32;

/// One application's token key (kept as the HMAC's inner and outer SHA-256 states).
#[derive(Clone)]
pub struct TokenKey(MacKey);

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
        Token(self.0.mac64(input))
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

impl<'a> Words<'a> {
    /// The next word, and whether lower-casing may change it (it has an ASCII upper-case
    /// letter or a non-ASCII character): found in the same pass, so the token walk does not
    /// scan each word twice more to learn it.
    fn next_folding(&mut self) -> Option<(&'a str, bool)> {
        self.scan::<true>()
    }

    /// The next word; with `FOLD`, and whether lower-casing may change it (without, `false`:
    /// the plain iterator does not pay for the flag).
    #[inline(always)]
    fn scan<const FOLD: bool>(&mut self) -> Option<(&'a str, bool)> {
        let bytes = self.text.as_bytes();
        let mut start = None;
        let mut folds = false;
        let mut i = self.pos;
        while i < bytes.len() {
            let b = bytes[i];
            let (is_word, width, fold) = if b < 0x80 {
                (
                    b.is_ascii_alphanumeric() || b == b'_',
                    1,
                    FOLD && b.is_ascii_uppercase(),
                )
            } else {
                let c = self.text[i..].chars().next().expect("char boundary");
                (is_word_char(c), c.len_utf8(), FOLD)
            };
            match (is_word, start) {
                (true, None) => {
                    start = Some(i);
                    folds = fold;
                }
                (true, Some(_)) => folds |= fold,
                (false, Some(s)) => {
                    self.pos = i + width;
                    return Some((&self.text[s..i], folds));
                }
                (false, None) => {}
            }
            i += width;
        }
        self.pos = bytes.len();
        start.map(|s| (&self.text[s..], folds))
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        self.scan::<false>().map(|(w, _)| w)
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

    /// Adds the tokens of one entry.
    pub fn add_entry(&mut self, entry: &Entry) {
        let inputs = &mut self.inputs;
        visit_inputs(entry, &mut self.scratch, &mut self.lower, |input| {
            if !inputs.contains(input) {
                inputs.insert(input.into());
            }
        });
    }

    /// The sorted tokens, and the set emptied for reuse.
    pub fn finish(&mut self, key: &TokenKey) -> Vec<Token> {
        let mut out: Vec<Token> = self.inputs.drain().map(|i| key.mac(&i)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Calls `f` with the MAC input (`field ‖ 0x00 ‖ value`) of every token of `entry`, duplicates
/// included, reusing `scratch` and `lower` (no allocation once they have grown).
fn visit_inputs(entry: &Entry, scratch: &mut Vec<u8>, lower: &mut String, f: impl FnMut(&[u8])) {
    visit_inputs_after(entry, None, None, scratch, lower, f);
}

/// Where an entry's payload words are, as byte ranges of the payload, in order.
type WordRanges = Vec<(usize, usize)>;

/// [`visit_inputs`], leaving out the inputs that `prev` (the entry visited just before, in the
/// same set, with its words' ranges) gave too: its level, type, source and metadata pairs, and
/// each word equal to its word at the same place. Most entries repeat most of their
/// predecessor's, and a set holds each input once. The ranges of `entry`'s words go to
/// `ranges` (for the next entry).
fn visit_inputs_after(
    entry: &Entry,
    prev: Option<(&Entry, &[(usize, usize)])>,
    mut ranges: Option<&mut WordRanges>,
    scratch: &mut Vec<u8>,
    lower: &mut String,
    mut f: impl FnMut(&[u8]),
) {
    let mut put = |field: Field<'_>, value: &[u8], f: &mut dyn FnMut(&[u8])| {
        scratch.clear();
        field.write(scratch);
        scratch.push(0);
        scratch.extend_from_slice(value);
        f(scratch);
    };
    let (prev, prev_words) = match prev {
        Some((p, w)) => (Some(p), w),
        None => (None, &[][..]),
    };
    if prev.is_none_or(|p| p.level != entry.level) {
        put(Field::Level, &[b'0' + entry.level.number()], &mut f);
    }
    if prev.is_none_or(|p| p.entry_type != entry.entry_type) {
        put(Field::Type, &[b'0' + entry.entry_type.number()], &mut f);
    }
    if prev.is_none_or(|p| !same_bytes(p.source.as_bytes(), entry.source.as_bytes())) {
        put(Field::Source, entry.source.as_bytes(), &mut f);
    }
    // Both maps are sorted by key: the previous entry's pairs are walked alongside.
    let mut before = prev.map(|p| p.metadata.iter().peekable());
    for (k, v) in &entry.metadata {
        if let Some(b) = before.as_mut() {
            while b
                .next_if(|(pk, _)| order_bytes(pk.as_bytes(), k.as_bytes()).is_lt())
                .is_some()
            {}
            if b.peek().is_some_and(|(pk, pv)| {
                same_bytes(pk.as_bytes(), k.as_bytes()) && same_bytes(pv.as_bytes(), v.as_bytes())
            }) {
                continue;
            }
        }
        put(Field::Meta(k), v.as_bytes(), &mut f);
    }
    if let Some(r) = ranges.as_deref_mut() {
        r.clear();
    }
    let payload = entry.payload.as_str();
    let prev_payload = prev.map_or("", |p| p.payload.as_str());
    let mut payload_words = words(payload);
    for i in 0.. {
        let Some((w, folds)) = payload_words.next_folding() else {
            break;
        };
        if let Some(r) = ranges.as_deref_mut() {
            // `w` is a slice of `payload`.
            let start = w.as_ptr() as usize - payload.as_ptr() as usize;
            r.push((start, start + w.len()));
        }
        if prev_words.get(i).is_some_and(|&(a, b)| {
            prev_payload
                .as_bytes()
                .get(a..b)
                .is_some_and(|p| same_bytes(p, w.as_bytes()))
        }) {
            continue;
        }
        let lower_word: &str = if !folds {
            w
        } else if !w.is_ascii() {
            // The same rule as `lowercase`, so entry and query tokens agree.
            lower.clear();
            lower.push_str(&w.to_lowercase());
            lower.as_str()
        } else {
            lower.clear();
            lower.push_str(w);
            lower.make_ascii_lowercase();
            lower.as_str()
        };
        if !lower_word.is_empty() && lower_word.len() <= MAX_WORD_BYTES {
            put(Field::Word, lower_word.as_bytes(), &mut f);
        }
    }
}

/// Entries a [`CachedTokenSet`] remembers by default: about 1 MiB of memory, at most ~2.5 MiB
/// (inputs over 96 bytes are not cached).
pub const DEFAULT_TOKEN_CACHE: usize = 16 * 1024;

/// Longer MAC inputs are not cached (they are MAC'd each time they occur): a word is at most
/// `word` ‖ 0 ‖ 64 bytes, and typical metadata (`meta:file` ‖ 0 ‖ a path) fits, while unique
/// long values (URLs, user agents) would otherwise fill the cache with kilobytes each and push
/// the common words out.
pub(crate) const MAX_CACHED_INPUT: usize = 96;

/// Sets of a [`CachedTokenSet`]'s front cache, each of [`FRONT_WAYS`] slots (4 Ki slots of 56
/// bytes, about 224 KiB: within a core's L2 cache).
const FRONT_SETS: usize = 2048;
/// Slots per set of the front cache.
const FRONT_WAYS: usize = 2;

/// Bits of a [`CachedTokenSet`]'s first-sight filter (16 KiB: within a core's L1/L2 cache).
const DOOR_BITS: usize = 1 << 17;
/// The filter starts over (with the large table) once new inputs have set this many of its
/// bits, so that at most about one input in six new to it is taken for one seen before (the
/// front's inputs, whose bits a start-over sets again, are not counted: with them at most
/// `DOOR_FILL` + the front's slots of the `DOOR_BITS` are set, 15.6 %).
const DOOR_FILL: usize = DOOR_BITS / 8;
// The front's bits, set again at each start-over, stay a small part of the filter.
const _: () = assert!(FRONT_SETS * FRONT_WAYS <= DOOR_FILL / 2);

/// The first-sight filter's word and bit of an input's hash (its high half; the front's set
/// comes from the low half).
fn door_bit(hash: u64) -> (usize, u64) {
    let bit = (hash >> 32) as usize % DOOR_BITS;
    (bit / 64, 1u64 << (bit % 64))
}

/// Inputs up to this many bytes are kept inside the cache's table (one memory access per
/// lookup instead of two); most are (`word` ‖ 0 ‖ a word of a few letters).
const SHORT_INPUT: usize = 30;

/// A MAC input as the cache keeps it. A given input always takes the same form (short ones
/// zero-padded), so equality and hashing agree with those of the bytes (`Borrow<[u8]>`).
#[derive(Clone, PartialEq, Eq)]
enum Input {
    Short { len: u8, bytes: [u8; SHORT_INPUT] },
    Long(Box<[u8]>),
}

impl Input {
    fn new(input: &[u8]) -> Self {
        if input.len() <= SHORT_INPUT {
            let mut bytes = [0u8; SHORT_INPUT];
            bytes[..input.len()].copy_from_slice(input);
            Input::Short {
                len: input.len() as u8,
                bytes,
            }
        } else {
            Input::Long(input.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Input::Short { len, bytes } => &bytes[..usize::from(*len)],
            Input::Long(b) => b,
        }
    }
}

impl std::hash::Hash for Input {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for Input {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

/// A slot of [`CachedTokenSet`]'s front cache.
#[derive(Clone)]
struct FrontSlot {
    hash: u64,
    input: Input,
    token: Token,
    /// The last batch that listed the token.
    seen: u64,
}

/// A batch's token set bound to one token key, with a bounded cache of MAC inputs → tokens
/// kept across batches: a token depends only on the key and its input, so a word seen in an
/// earlier batch is not MAC'd again. The cache lives in memory only; it is emptied when it is
/// full and when the key changes ([`CachedTokenSet::set_key`]). Gives exactly the tokens of
/// [`TokenSet`] under the same key.
pub struct CachedTokenSet {
    key: TokenKey,
    /// Input → its token and the last batch (`batch`) that held it.
    cache: std::collections::HashMap<Input, (Token, u64), foldhash::fast::RandomState>,
    capacity: usize,
    batch: u64,
    /// A small two-way set-associative cache in front of `cache` (a few hundred KiB, so it
    /// stays in the core's own caches): the inputs repeated in nearly every entry — level,
    /// type, source, metadata values, common words — are found there without a walk into the
    /// large table. An input enters it only when found in the large table (seen before), so
    /// values unique to one entry (order numbers, fractions of seconds) do not push the
    /// recurring ones out. Each slot: the input's hash, input, token, last batch that listed
    /// it.
    front: Box<[Option<FrontSlot>]>,
    front_hasher: foldhash::fast::RandomState,
    /// First-sight filter in front of both caches: a bit per input hash, looked at first. An
    /// input whose bit is clear was not seen since the last start-over, so it is in neither
    /// cache and is MAC'd without a look into them; only an input seen before (or sharing a
    /// bit with one) is looked up, and remembered in `cache`. Values new in every entry
    /// (fractions of seconds, order numbers) so cost a bit and a MAC, and do not push the
    /// recurring ones out. Every input of `cache` and of `front` has its bit set (a start-over
    /// sets the front's again).
    door: Box<[u64]>,
    /// Bits set in `door`.
    door_set: usize,
    /// Times the first-sight filter started over (full).
    door_restarts: u64,
    out: Vec<Token>,
    scratch: Vec<u8>,
    lower: String,
}

impl fmt::Debug for CachedTokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedTokenSet")
            .field("cached", &self.cache.len())
            .field("capacity", &self.capacity)
            .field("pending", &self.out.len())
            .finish_non_exhaustive()
    }
}

impl CachedTokenSet {
    /// An empty set for `key`, remembering up to `capacity` tokens (at least 1).
    pub fn new(key: TokenKey, capacity: usize) -> Self {
        CachedTokenSet {
            key,
            cache: std::collections::HashMap::default(),
            capacity: capacity.max(1),
            batch: 0,
            front: vec![None; FRONT_SETS * FRONT_WAYS].into_boxed_slice(),
            front_hasher: foldhash::fast::RandomState::default(),
            door: vec![0; DOOR_BITS / 64].into_boxed_slice(),
            door_set: 0,
            door_restarts: 0,
            out: Vec::new(),
            scratch: Vec::with_capacity(128),
            lower: String::new(),
        }
    }

    /// Uses `key` from now on; forgets every cached token and what was added so far.
    pub fn set_key(&mut self, key: TokenKey) {
        self.key = key;
        self.cache.clear();
        self.front.fill(None);
        self.door.fill(0);
        self.door_set = 0;
        self.out.clear();
    }

    /// Times the first-sight filter, full, started over (with the table behind it).
    pub fn first_sight_restarts(&self) -> u64 {
        self.door_restarts
    }

    /// Tokens remembered across batches.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Adds the tokens of one entry.
    pub fn add_entry(&mut self, entry: &Entry) {
        self.add_entry_after(entry, None, None);
    }

    /// Adds the tokens of `entry`, but those of the inputs it shares with `prev` (with its
    /// words' ranges), added just before it (so already in this batch's list); its own words'
    /// ranges go to `ranges`.
    fn add_entry_after(
        &mut self,
        entry: &Entry,
        prev: Option<(&Entry, &[(usize, usize)])>,
        ranges: Option<&mut WordRanges>,
    ) {
        let (key, cache, capacity, batch, out) = (
            &self.key,
            &mut self.cache,
            self.capacity,
            self.batch,
            &mut self.out,
        );
        let (front, hasher) = (&mut self.front, &self.front_hasher);
        let (door, door_set, restarts) =
            (&mut self.door, &mut self.door_set, &mut self.door_restarts);
        visit_inputs_after(
            entry,
            prev,
            ranges,
            &mut self.scratch,
            &mut self.lower,
            |input| {
                use std::hash::BuildHasher as _;
                if input.len() > MAX_CACHED_INPUT {
                    // A duplicate within the batch is removed by `finish`.
                    out.push(key.mac(input));
                    return;
                }
                let hash = hasher.hash_one(input);
                // First seen since the last start-over (its bit is clear): MAC'd, its bit set,
                // nothing else remembered, and neither cache touched. Every input of the front
                // and of the large table has its bit set, so nothing is missed; most inputs
                // new to a line (fractions of seconds, order numbers) end here, on the filter's
                // 16 KiB instead of a miss into the front's 224 KiB.
                let (word, mask) = door_bit(hash);
                if door[word] & mask == 0 {
                    if *door_set >= DOOR_FILL {
                        // Start over: the filter and the large table it stands in front of. The
                        // front's inputs keep their bits (they recur: that is how they got
                        // there); those bits do not count toward `DOOR_FILL`, so the filter
                        // starts over after as many new inputs as when the front came first.
                        door.fill(0);
                        *door_set = 0;
                        *restarts += 1;
                        cache.clear();
                        for slot in front.iter().flatten() {
                            let (w, m) = door_bit(slot.hash);
                            door[w] |= m;
                        }
                    }
                    if door[word] & mask == 0 {
                        door[word] |= mask;
                        *door_set += 1;
                        out.push(key.mac(input));
                        return;
                    }
                }
                let set = (hash as usize % FRONT_SETS) * FRONT_WAYS;
                let ways = &mut front[set..set + FRONT_WAYS];
                for slot in ways.iter_mut().flatten() {
                    if slot.hash == hash && same_bytes(slot.input.as_slice(), input) {
                        if slot.seen != batch {
                            slot.seen = batch;
                            out.push(slot.token);
                        }
                        return;
                    }
                }
                // Seen before (probably): the large table (its own mark may lag the front's; a
                // token listed twice in a batch is removed by `finish`).
                let t = match cache.get_mut(input) {
                    // Already in this batch's list.
                    Some((t, seen)) if *seen == batch => *t,
                    Some((t, seen)) => {
                        *seen = batch;
                        out.push(*t);
                        *t
                    }
                    None => {
                        // Seen for the second time (or forgotten): MAC'd, remembered in the large
                        // table only.
                        let t = key.mac(input);
                        if cache.len() >= capacity {
                            // Bounded: start over (what this batch listed stays listed; a
                            // duplicate is removed by `finish`). The filter's bits stay: a bit
                            // set for an input not in the table costs a lookup, not a token.
                            cache.clear();
                        }
                        cache.insert(Input::new(input), (t, batch));
                        out.push(t);
                        return;
                    }
                };
                // Seen before: into the front, the newest first in its set.
                ways.rotate_right(1);
                ways[0] = Some(FrontSlot {
                    hash,
                    input: Input::new(input),
                    token: t,
                    seen: batch,
                });
            },
        );
    }

    /// Adds the tokens of `entries`, in order: the same as [`CachedTokenSet::add_entry`] of
    /// each, with fewer lookups (what an entry repeats of the one before it is not looked up
    /// again).
    pub fn add_entries(&mut self, entries: &[Entry]) {
        let mut prev = None;
        let (mut prev_words, mut words) = (WordRanges::new(), WordRanges::new());
        for e in entries {
            self.add_entry_after(
                e,
                prev.map(|p| (p, prev_words.as_slice())),
                Some(&mut words),
            );
            std::mem::swap(&mut prev_words, &mut words);
            prev = Some(e);
        }
    }

    /// Adds the token of one metadata pair, `meta:KEY` = `value`: for a pair that a batch's
    /// entries get at encoding ([`logflux_proto::batch::encode_with`], the agent's enrichment),
    /// added once for the batch instead of once per entry. MAC'd each time (once a batch).
    pub fn add_metadata(&mut self, key: &str, value: &str) {
        self.scratch.clear();
        Field::Meta(key).write(&mut self.scratch);
        self.scratch.push(0);
        self.scratch.extend_from_slice(value.as_bytes());
        self.out.push(self.key.mac(&self.scratch));
    }

    /// The sorted, deduplicated tokens of what was added since the last call; the cache is
    /// kept.
    pub fn finish(&mut self) -> Vec<Token> {
        let mut out = std::mem::take(&mut self.out);
        out.sort_unstable();
        out.dedup();
        self.batch += 1;
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

    proptest::proptest! {
        /// The words are the maximal runs of word characters, as a plain split finds them.
        #[test]
        fn words_are_the_runs_of_word_characters(text in "([a-zA-Z0-9_ .=/:-]|[éÉß東京—\u{00A0}\u{2028}\u{1F600}٣]){0,40}") {
            let want: Vec<&str> = text.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).collect();
            proptest::prop_assert_eq!(words(&text).collect::<Vec<_>>(), want);
        }

        /// The same on any string.
        #[test]
        fn words_of_any_text(text in proptest::prelude::any::<String>()) {
            let want: Vec<&str> = text.split(|c: char| !is_word_char(c)).filter(|w| !w.is_empty()).collect();
            proptest::prop_assert_eq!(words(&text).collect::<Vec<_>>(), want);
        }

        /// The walk's flag is set exactly for the words with an ASCII upper-case letter or a
        /// non-ASCII character, so a word without it is its own lower case.
        #[test]
        fn the_folding_flag_marks_the_words_lower_casing_may_change(
            text in proptest::prop_oneof![
                "([a-zA-Z0-9_ .=/:-]|[éÉß東京—\u{00A0}\u{1F600}İΣ]){0,40}",
                proptest::prelude::any::<String>(),
            ]
        ) {
            let mut it = words(&text);
            while let Some((w, folds)) = it.next_folding() {
                let want = !w.is_ascii() || w.bytes().any(|b| b.is_ascii_uppercase());
                proptest::prop_assert_eq!(folds, want, "{:?}", w);
                if !folds {
                    let lower = lowercase(w);
                    proptest::prop_assert_eq!(lower.as_ref(), w);
                }
            }
        }
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
        e.metadata.insert("host", "Web-1");
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

    fn sample_batches() -> Vec<Vec<Entry>> {
        (0..6)
            .map(|b| {
                (0..50)
                    .map(|i| {
                        let mut e = Entry::new(
                            i,
                            if i % 3 == 0 {
                                Level::Error
                            } else {
                                Level::Info
                            },
                            if b % 2 == 0 { "api" } else { "Worker" },
                            &format!(
                                "GET /Orders/{} took {}ms user=U{} Größe x {}",
                                b * 50 + i,
                                i % 7,
                                i % 5,
                                // Inputs longer than the cache keeps inline.
                                "abcdefghij".repeat(1 + (i % 3) as usize)
                            ),
                        );
                        e.metadata.insert("host", format!("web-{}", i % 3));
                        // Keys before and after it that come and go, values that repeat or
                        // change, a source that changes within the batch.
                        if i % 4 < 2 {
                            e.metadata.insert("app", format!("a{}", i % 5 / 3));
                        }
                        if i % 3 != 1 {
                            e.metadata.insert("zone", "z1");
                        }
                        // Words that shift place, change case, are too long for a token,
                        // or are missing.
                        match i % 6 {
                            5 => e.payload.insert_str(0, "Größe get "),
                            4 => e.payload.push_str(&format!(" {}", "w".repeat(70))),
                            3 if i % 4 == 3 => e.payload.clear(),
                            _ => {}
                        }
                        if i % 7 == 3 {
                            e.source = "other".into();
                            e.entry_type = EntryType::Metric;
                        }
                        e
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn cached_set_gives_the_tokens_of_the_plain_set_batch_after_batch() {
        let k = key();
        // A tiny cache is emptied mid-batch again and again; a large one keeps everything.
        for capacity in [1, 7, 40, DEFAULT_TOKEN_CACHE] {
            let mut cached = CachedTokenSet::new(k.clone(), capacity);
            // The same, a batch at a time (an entry's repeats of the one before it skipped).
            let mut whole = CachedTokenSet::new(k.clone(), capacity);
            for batch in sample_batches() {
                let mut plain = TokenSet::new();
                for e in &batch {
                    plain.add_entry(e);
                    cached.add_entry(e);
                }
                whole.add_entries(&batch);
                let want = plain.finish(&k);
                assert_eq!(cached.finish(), want, "capacity {capacity}");
                assert_eq!(whole.finish(), want, "capacity {capacity}, whole batches");
                assert!(cached.cached() <= capacity);
            }
        }
        let mut empty = CachedTokenSet::new(k, 10);
        assert!(empty.finish().is_empty());
    }

    /// Many more inputs seen once than the first-sight filter takes before it starts over,
    /// mixed with recurring ones, and a key change in the middle: every batch still gets
    /// exactly the plain set's tokens.
    #[test]
    fn cached_set_gives_the_plain_tokens_across_first_sight_filter_start_overs() {
        let mut k = key();
        let mut cached = CachedTokenSet::new(k.clone(), 5_000);
        let mut n = 0u64;
        for b in 0..100 {
            if b == 60 {
                k = SearchKey::from_text(&"22".repeat(32))
                    .unwrap()
                    .token_key("app");
                cached.set_key(k.clone());
            }
            let batch: Vec<Entry> = (0..200)
                .map(|i| {
                    n += 1;
                    Entry::new(
                        0,
                        Level::Info,
                        "s",
                        &format!("order {n} again {} and {} took {}ms", n * 7, n % 50, i % 13),
                    )
                })
                .collect();
            let mut plain = TokenSet::new();
            for e in &batch {
                plain.add_entry(e);
            }
            cached.add_entries(&batch);
            assert_eq!(cached.finish(), plain.finish(&k), "batch {b}");
        }
        // Values new in every entry filled the filter: it started over.
        assert!(
            cached.first_sight_restarts() >= 1,
            "{}",
            cached.first_sight_restarts()
        );
    }

    #[test]
    fn a_pair_added_once_gives_the_tokens_of_entries_that_carry_it() {
        let k = key();
        let mut cached = CachedTokenSet::new(k.clone(), DEFAULT_TOKEN_CACHE);
        for batch in sample_batches() {
            let mut plain = TokenSet::new();
            for e in &batch {
                let mut enriched = e.clone();
                enriched.metadata.insert("agent_id", "a-1");
                plain.add_entry(&enriched);
                cached.add_entry(e);
            }
            // Without it, the batch's tokens differ.
            let mut without = CachedTokenSet::new(k.clone(), DEFAULT_TOKEN_CACHE);
            for e in &batch {
                without.add_entry(e);
            }
            let want = plain.finish(&k);
            assert_ne!(without.finish(), want);
            cached.add_metadata("agent_id", "a-1");
            assert_eq!(cached.finish(), want);
        }
    }

    #[test]
    fn cached_set_forgets_everything_when_the_key_changes() {
        let (a, b) = (
            key(),
            SearchKey::from_text(&"33".repeat(32))
                .unwrap()
                .token_key("app"),
        );
        let batches = sample_batches();
        let mut cached = CachedTokenSet::new(a.clone(), DEFAULT_TOKEN_CACHE);
        for e in &batches[0] {
            cached.add_entry(e);
        }
        let under_a = cached.finish();
        assert!(cached.cached() > 0);
        cached.set_key(b.clone());
        assert_eq!(cached.cached(), 0);
        let mut plain = TokenSet::new();
        for e in &batches[0] {
            cached.add_entry(e);
            plain.add_entry(e);
        }
        let under_b = cached.finish();
        assert_eq!(under_b, plain.finish(&b));
        assert_ne!(under_a, under_b);
    }
}
