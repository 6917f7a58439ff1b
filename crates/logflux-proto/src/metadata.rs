//! [`Metadata`]: an entry's flat string map, kept as one sorted vector of short strings.
//!
//! An entry carries one to eight pairs as a rule (`file`, `host`, a parsed field or two). A
//! `BTreeMap<String, String>` costs a node allocation plus two string allocations per entry for
//! them, and the agent frees those on another thread (the spool writer's), where glibc's caches
//! do not help. Here the pairs live in one vector, sorted by key, and keys and values of up to
//! 24 bytes are stored inline ([`CompactString`]), so a typical entry's metadata is one
//! allocation. `get` and `contains_key` scan up to eight pairs for equal bytes, and search
//! beyond; inserts binary search, and with so few pairs an insert's shift is a few words.
//! Many pairs at once (a line's parsed fields) go through `extend` or `collect`, which append
//! and sort once.

use std::collections::BTreeMap;
use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Pairs reserved when the first one is inserted: most entries carry one or two.
const FIRST_RESERVE: usize = 2;

/// Up to this many pairs a lookup scans rather than searches (see `Metadata::position`).
const SCAN_PAIRS: usize = 8;

/// A flat map of strings, iterated in key order (byte order of the keys, as `BTreeMap<String,
/// String>` orders them), so encodings that walk it are deterministic.
///
/// ```
/// use logflux_proto::Metadata;
///
/// let mut m = Metadata::new();
/// m.insert("host", "web-1");
/// m.insert("file", "/var/log/app.log");
/// assert_eq!(m.insert("host", "web-2").as_deref(), Some("web-1"));
/// assert_eq!(m.get("host"), Some("web-2"));
/// assert_eq!(m.keys().collect::<Vec<_>>(), ["file", "host"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Metadata {
    /// Sorted by key, keys unique.
    pairs: Vec<(CompactString, CompactString)>,
}

impl Metadata {
    /// An empty map; it allocates nothing until the first insert.
    pub const fn new() -> Self {
        Metadata { pairs: Vec::new() }
    }

    /// An empty map with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Self {
        Metadata {
            pairs: Vec::with_capacity(n),
        }
    }

    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The number of pairs it has room for without allocating.
    pub fn capacity(&self) -> usize {
        self.pairs.capacity()
    }

    /// Gives back the room beyond its pairs.
    pub fn shrink_to_fit(&mut self) {
        self.pairs.shrink_to_fit();
    }

    /// What it holds on the heap, estimated: its vector, and each key or value too long to be
    /// stored inline (each allocation rounded up to the allocator's 16 bytes, plus 16).
    pub fn heap_size(&self) -> usize {
        let alloc = |n: usize| if n == 0 { 0 } else { n.div_ceil(16) * 16 + 16 };
        let strings: usize = self
            .pairs
            .iter()
            .flat_map(|(k, v)| [k, v])
            .filter(|s| s.is_heap_allocated())
            .map(|s| alloc(s.capacity()))
            .sum();
        alloc(self.pairs.capacity() * std::mem::size_of::<(CompactString, CompactString)>())
            + strings
    }

    /// Makes room for exactly `additional` more pairs (no rounding up).
    pub fn reserve_exact(&mut self, additional: usize) {
        self.pairs.reserve_exact(additional);
    }

    /// Removes every pair, keeping the room.
    pub fn clear(&mut self) {
        self.pairs.clear();
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.pairs
            .binary_search_by(|(k, _)| crate::order_bytes(k.as_bytes(), key.as_bytes()))
    }

    /// Where `key` is. A few pairs (the rule) are scanned for equal bytes, which costs no
    /// call into the C library's `memcmp`; more are searched.
    fn position(&self, key: &str) -> Option<usize> {
        if self.pairs.len() <= SCAN_PAIRS {
            self.pairs
                .iter()
                .position(|(k, _)| crate::same_bytes(k.as_bytes(), key.as_bytes()))
        } else {
            self.find(key).ok()
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).map(|i| self.pairs[i].1.as_str())
    }

    /// The value of `key`, to change in place.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut CompactString> {
        self.position(key).map(|i| &mut self.pairs[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Sets `key` to `value`; the value it replaces, if any.
    pub fn insert(
        &mut self,
        key: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<CompactString> {
        let key = key.into();
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.pairs[i].1, value.into())),
            Err(i) => {
                self.reserve_first();
                self.pairs.insert(i, (key, value.into()));
                None
            }
        }
    }

    /// Sets `key` to `value` unless it has a value already (`entry(k).or_insert(v)`); whether
    /// it did. `value` is only built when it is needed.
    pub fn insert_if_absent(&mut self, key: &str, value: impl FnOnce() -> CompactString) -> bool {
        match self.find(key) {
            Ok(_) => false,
            Err(i) => {
                self.reserve_first();
                self.pairs.insert(i, (key.into(), value()));
                true
            }
        }
    }

    fn reserve_first(&mut self) {
        if self.pairs.capacity() == 0 {
            self.pairs.reserve_exact(FIRST_RESERVE);
        }
    }

    /// Removes `key`; its value, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<CompactString> {
        self.find(key).ok().map(|i| self.pairs.remove(i).1)
    }

    /// Keeps the pairs for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut CompactString) -> bool) {
        self.pairs.retain_mut(|(k, v)| keep(k, v));
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.pairs.iter(),
        }
    }

    /// The pairs in key order, values mutable.
    pub fn iter_mut(&mut self) -> impl DoubleEndedIterator<Item = (&str, &mut CompactString)> + '_ {
        self.pairs.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    /// The values in key order, mutable.
    pub fn values_mut(&mut self) -> impl DoubleEndedIterator<Item = &mut CompactString> + '_ {
        self.pairs.iter_mut().map(|(_, v)| v)
    }

    /// The keys in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The values in key order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator + '_ {
        self.pairs.iter().map(|(_, v)| v.as_str())
    }

    /// The pairs as a `BTreeMap` of owned strings (for APIs and views that keep one).
    pub fn to_btree(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// The pairs of a [`Metadata`] in key order, as `(&str, &str)`.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, (CompactString, CompactString)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner
            .next_back()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Metadata {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Metadata {
    type Item = (CompactString, CompactString);
    type IntoIter = std::vec::IntoIter<(CompactString, CompactString)>;

    /// The pairs in key order.
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.into_iter()
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>> Extend<(K, V)> for Metadata {
    /// Adds the pairs (a later value of a key replaces an earlier one, as for a `BTreeMap`).
    /// Pairs appended past the last key in key order cost nothing more; otherwise the whole is
    /// sorted once, O(n log n), never an insert's shift per pair (an input's line may carry
    /// thousands of fields, in any order).
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        let start = self.pairs.len();
        let iter = iter.into_iter();
        if start == 0 {
            // Exactly: `reserve` would round a map of one to three pairs up to four.
            self.pairs.reserve_exact(iter.size_hint().0);
        }
        self.pairs.extend(iter.map(|(k, v)| (k.into(), v.into())));
        let in_order = self.pairs[start.saturating_sub(1)..]
            .windows(2)
            .all(|w| w[0].0 < w[1].0);
        if !in_order {
            sort_keeping_last(&mut self.pairs);
        }
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for Metadata {
    /// The map of the pairs (a later value of a key replaces an earlier one, as for a
    /// `BTreeMap`).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = Metadata::new();
        m.extend(iter);
        m
    }
}

/// Sorts `pairs` by key and keeps, of each key, the pair given last.
fn sort_keeping_last(pairs: &mut Vec<(CompactString, CompactString)>) {
    // Reversed, then sorted stably: of equal keys the last given comes first, and is the one
    // `dedup_by` keeps. (Pairs already sorted become one descending run, which the sort
    // reverses in one pass.)
    pairs.reverse();
    pairs.sort_by(|a, b| crate::order_bytes(a.0.as_bytes(), b.0.as_bytes()));
    pairs.dedup_by(|later, kept| later.0 == kept.0);
}

impl<const N: usize, K: Into<CompactString>, V: Into<CompactString>> From<[(K, V); N]>
    for Metadata
{
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<BTreeMap<String, String>> for Metadata {
    fn from(m: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Metadata {
            pairs: m.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }
}

impl From<&BTreeMap<String, String>> for Metadata {
    fn from(m: &BTreeMap<String, String>) -> Self {
        Metadata {
            pairs: m
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
                .collect(),
        }
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(m: Metadata) -> Self {
        m.pairs
            .into_iter()
            .map(|(k, v)| (k.into_string(), v.into_string()))
            .collect()
    }
}

impl std::ops::Index<&str> for Metadata {
    type Output = CompactString;

    /// The value of `key`.
    ///
    /// # Panics
    ///
    /// When `key` has no value, as `BTreeMap`'s index does.
    fn index(&self, key: &str) -> &CompactString {
        match self.find(key) {
            Ok(i) => &self.pairs[i].1,
            Err(_) => panic!("no metadata value for key {key:?}"),
        }
    }
}

impl PartialEq<BTreeMap<String, String>> for Metadata {
    fn eq(&self, other: &BTreeMap<String, String>) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((k, v), (x, y))| k == x && v == y)
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Metadata;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Metadata, A::Error> {
                let mut pairs = Vec::with_capacity(a.size_hint().unwrap_or(0).min(16));
                while let Some(pair) = a.next_entry::<CompactString, CompactString>()? {
                    pairs.push(pair);
                }
                if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
                    sort_keeping_last(&mut pairs);
                }
                pairs.shrink_to_fit();
                Ok(Metadata { pairs })
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reserves_two_pairs_at_the_first_insert() {
        let mut m = Metadata::new();
        assert_eq!(m.pairs.capacity(), 0);
        m.insert("a", "1");
        assert_eq!(m.pairs.capacity(), FIRST_RESERVE);
        let mut m = Metadata::with_capacity(5);
        m.insert("a", "1");
        assert_eq!(m.pairs.capacity(), 5);
    }

    #[test]
    fn collected_and_read_maps_hold_no_spare_room() {
        let m: Metadata = [("a", "1")].into_iter().collect();
        assert_eq!(m.capacity(), 1);
        let m: Metadata = [("c", "3"), ("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(m.capacity(), 3);
        let m: Metadata = serde_json::from_str(r#"{"b":"2","a":"1"}"#).unwrap();
        assert_eq!(
            (m.capacity(), m.keys().collect::<Vec<_>>()),
            (2, vec!["a", "b"])
        );
        let mut m = Metadata::new();
        m.extend([("a", "1")]);
        assert_eq!(m.capacity(), 1);
    }

    #[test]
    fn short_strings_are_inline() {
        let mut m = Metadata::new();
        m.insert("read_time", "2026-11-30T12:00:00Z");
        let (k, v) = &m.pairs[0];
        assert!(!k.is_heap_allocated() && !v.is_heap_allocated());
        m.insert("file", "/var/log/a-long-directory/app.log");
        assert!(m.pairs[0].1.is_heap_allocated());
    }

    #[test]
    fn serde_is_a_map_in_key_order() {
        let m: Metadata = [("b", "2"), ("a", "1")].into();
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"1","b":"2"}"#);
        let back: Metadata = serde_json::from_str(r#"{"b":"2","a":"0","a":"1"}"#).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<Metadata>(r#"{"a":1}"#).is_err());
        assert!(serde_json::from_str::<Metadata>(r#"["a"]"#).is_err());
        assert_eq!(format!("{m:?}"), r#"{"a": "1", "b": "2"}"#);
    }

    #[test]
    fn btree_conversions_round_trip() {
        let b: BTreeMap<String, String> = [
            ("x".into(), "1".into()),
            ("é".into(), "2".into()),
            ("B".into(), "3".into()),
        ]
        .into();
        let m = Metadata::from(&b);
        assert_eq!(m, Metadata::from(b.clone()));
        assert_eq!(m.to_btree(), b);
        assert_eq!(BTreeMap::from(m), b);
    }

    /// Many pairs, given in descending key order, over one already there: one sort, not an
    /// insert's shift per pair (which would move ~10^12 bytes here: minutes, not milliseconds).
    #[test]
    fn many_pairs_out_of_order_are_sorted_once() {
        let n = 200_000;
        let pairs: Vec<(String, String)> = (0..n)
            .rev()
            .map(|i| (format!("k{i:06}"), i.to_string()))
            .collect();
        let check = |m: &Metadata| {
            assert_eq!(m.len(), n);
            assert_eq!(m.get("k000005"), Some("5"));
            assert_eq!(m.get("k199999"), Some("199999"));
            assert!(m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b));
        };
        let mut m = Metadata::new();
        m.insert("k000005", "replaced");
        m.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        check(&m);
        let collected: Metadata = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(collected, m);
        let mut json = String::from("{");
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&format!("{k:?}:{v:?}"));
        }
        json.push('}');
        let read: Metadata = serde_json::from_str(&json).unwrap();
        assert_eq!(read, m);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, String),
        InsertIfAbsent(String, String),
        Remove(String),
        Retain(u8),
        Extend(Vec<(String, String)>),
        GetMut(String),
        IterMut,
        ValuesMut,
    }

    fn key() -> impl Strategy<Value = String> {
        // Few distinct keys (so operations meet), some beyond the inline length, some not ASCII.
        prop_oneof![
            "[a-e]{0,2}",
            "[a-c]{25,26}",
            "[éa]{1,2}",
            Just("Z".to_owned()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (key(), ".{0,30}").prop_map(|(k, v)| Op::Insert(k, v)),
            1 => (key(), ".{0,4}").prop_map(|(k, v)| Op::InsertIfAbsent(k, v)),
            2 => key().prop_map(Op::Remove),
            1 => any::<u8>().prop_map(Op::Retain),
            1 => proptest::collection::vec((key(), ".{0,4}"), 0..12).prop_map(Op::Extend),
            1 => key().prop_map(Op::GetMut),
            1 => Just(Op::IterMut),
            1 => Just(Op::ValuesMut),
        ]
    }

    proptest! {
        /// Every operation gives what it gives on a `BTreeMap<String, String>`, and leaves the
        /// same pairs in the same order.
        #[test]
        fn behaves_as_a_btree_map(ops in proptest::collection::vec(op(), 0..40), probe in key()) {
            let mut m = Metadata::new();
            let mut b: BTreeMap<String, String> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let got = m.insert(k.as_str(), v.as_str()).map(CompactString::into_string);
                        prop_assert_eq!(got, b.insert(k, v));
                    }
                    Op::InsertIfAbsent(k, v) => {
                        let did = m.insert_if_absent(&k, || v.as_str().into());
                        let absent = !b.contains_key(&k);
                        b.entry(k).or_insert(v);
                        prop_assert_eq!(did, absent);
                    }
                    Op::Remove(k) => {
                        let got = m.remove(&k).map(CompactString::into_string);
                        prop_assert_eq!(got, b.remove(&k));
                    }
                    Op::Retain(bits) => {
                        let keep = |k: &str, v: &str| (k.len() + v.len()) as u8 & bits == 0;
                        m.retain(|k, v| keep(k, v));
                        b.retain(|k, v| keep(k, v));
                    }
                    Op::Extend(pairs) => {
                        m.extend(pairs.clone());
                        b.extend(pairs);
                    }
                    Op::GetMut(k) => {
                        prop_assert_eq!(m.get_mut(&k).map(|v| v.push('!')), b.get_mut(&k).map(|v| v.push('!')));
                    }
                    Op::IterMut => {
                        for (k, v) in m.iter_mut().rev() {
                            v.push_str(k);
                        }
                        for (k, v) in b.iter_mut().rev() {
                            v.push_str(k);
                        }
                    }
                    Op::ValuesMut => {
                        m.values_mut().filter(|v| v.len() % 2 == 1).for_each(|v| v.clear());
                        b.values_mut().filter(|v| v.len() % 2 == 1).for_each(String::clear);
                    }
                }
                prop_assert_eq!(m.len(), b.len());
                prop_assert_eq!(m.is_empty(), b.is_empty());
                let got: Vec<(&str, &str)> = m.iter().collect();
                let want: Vec<(&str, &str)> = b.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(m.get(&probe), b.get(&probe).map(String::as_str));
                prop_assert_eq!(m.contains_key(&probe), b.contains_key(&probe));
            }
            prop_assert!(m.keys().eq(b.keys().map(String::as_str)));
            prop_assert!(m.values().eq(b.values().map(String::as_str)));
            prop_assert!(m.iter().rev().eq(b.iter().rev().map(|(k, v)| (k.as_str(), v.as_str()))));
            prop_assert_eq!(&m.to_btree(), &b);
            prop_assert_eq!(&Metadata::from(b.clone()), &m);
            let collected: Metadata = b.clone().into_iter().rev().collect();
            prop_assert_eq!(&collected, &m);
            prop_assert_eq!(serde_json::to_string(&m).unwrap(), serde_json::to_string(&b).unwrap());
            let owned: Vec<(String, String)> =
                m.into_iter().map(|(k, v)| (k.into_string(), v.into_string())).collect();
            prop_assert_eq!(owned, b.into_iter().collect::<Vec<_>>());
        }

        /// A JSON object with repeated keys reads as it does into a `BTreeMap`: the last value
        /// of each key.
        #[test]
        fn deserializes_as_a_btree_map(pairs in proptest::collection::vec((key(), ".{0,6}"), 0..20)) {
            let body: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), serde_json::to_string(v).unwrap()))
                .collect();
            let json = format!("{{{}}}", body.join(","));
            let m: Metadata = serde_json::from_str(&json).unwrap();
            let b: BTreeMap<String, String> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(m.to_btree(), b);
        }

        /// Collecting pairs with repeated keys keeps the last value of each, as a `BTreeMap`.
        #[test]
        fn from_iter_keeps_the_last_value(pairs in proptest::collection::vec((key(), ".{0,4}"), 0..20)) {
            let m: Metadata = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let b: BTreeMap<String, String> = pairs.into_iter().collect();
            prop_assert_eq!(m.to_btree(), b);
        }
    }
}
