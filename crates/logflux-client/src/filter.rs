//! Search filters: what the user asks for, turned into blind tokens for the server (which prunes
//! with them and learns nothing else) and into an exact test applied here after decryption.
//! `--contains` and `--regex` never leave this machine; words, levels, sources, types and
//! metadata leave only as HMAC tokens.

use std::ops::RangeInclusive;

use anyhow::{Context as _, bail};
use clap::Args;
use logflux_crypto::{Field, SearchKey, is_word_char};
use logflux_proto::batch::EntryRef;
use logflux_proto::{EntryType, EntryView, Level};

use crate::when::parse_when;

/// The server's limits on token groups (`POST /v1/query`).
const MAX_TOKEN_GROUPS: usize = 64;
const MAX_TOKENS_PER_GROUP: usize = 4096;

/// The filters shared by `search`, `tail`, `export` and `stats`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct FilterArgs {
    /// Words and phrases that must all appear in the payload, case-insensitive. An argument of
    /// letters, digits and `_` only is a WORD: a whole word of the payload. Any other argument
    /// (`10.10.34.11`, `/v2/servers`, `user@host`, `"connection refused"`) is a PHRASE: the
    /// payload must contain it as written, not starting or ending inside a word. Pruned on the
    /// server through the blind tokens of their words.
    #[arg(value_name = "WORD|PHRASE")]
    pub(crate) words: Vec<String>,
    /// LEVEL and everything more severe, or a range `err..warning`. Names (emerg, alert,
    /// crit, err, warning, notice, info, debug) or LogFlux numbers 1 (emerg) .. 8 (debug).
    #[arg(short = 'l', long, value_name = "LEVEL", conflicts_with = "priority")]
    pub(crate) level: Option<String>,
    /// As `journalctl -p`: PRIORITY and everything more severe, or a range `err..warning`.
    /// Names as --level, or syslog numbers 0 (emerg) .. 7 (debug), as journalctl numbers them.
    #[arg(short = 'p', long, value_name = "PRIORITY")]
    pub(crate) priority: Option<String>,
    /// Entries at or after WHEN: now, today, yesterday, a span back from now (`30m`,
    /// `1h30m`, "1 hour ago", "2 days ago"), a time of today (`10:42`, `10:42:30`), a date or
    /// a date and time (`2026-11-20`, "2026-11-20 10:42") — these in local time —,
    /// RFC 3339 (`2026-11-20T14:00:00Z`), or Unix seconds (`@1796026520`).
    #[arg(short = 'S', long, value_name = "WHEN", allow_hyphen_values = true)]
    pub(crate) since: Option<String>,
    /// Entries at or before WHEN (same forms as --since).
    #[arg(short = 'U', long, value_name = "WHEN", allow_hyphen_values = true)]
    pub(crate) until: Option<String>,
    /// A substring the payload must contain, exactly (case-sensitive); checked here only.
    #[arg(long, value_name = "TEXT")]
    pub(crate) contains: Option<String>,
    /// A regular expression the payload must match (case-sensitive); checked here only.
    #[arg(long, value_name = "RE")]
    pub(crate) regex: Option<String>,
    /// As `journalctl --grep`: a regular expression the payload must match; case-insensitive
    /// when the pattern has no upper-case letter (outside escapes such as `\S`), else
    /// case-sensitive. Checked here only.
    #[arg(short = 'g', long, value_name = "PATTERN")]
    pub(crate) grep: Option<String>,
    /// The entry's source, exactly.
    #[arg(long, value_name = "SOURCE")]
    pub(crate) source: Option<String>,
    /// Entry type: log, metric, trace, event, audit, telemetry, telemetry_managed (or 1..7).
    #[arg(short = 't', long = "type", value_name = "TYPE")]
    pub(crate) entry_type: Option<String>,
    /// Metadata KEY=VALUE, exactly; repeat for several (all must hold).
    #[arg(short = 'm', long, value_name = "KEY=VALUE")]
    pub(crate) meta: Vec<String>,
    /// Application name or id; repeat for several (default: all).
    #[arg(short = 'a', long, value_name = "APP")]
    pub(crate) app: Vec<String>,
}

/// A saved search's LogQL (`logflux search --saved NAME`): its stream selector and line
/// filters prune on the server as `search`'s own filters do (blind tokens of the same
/// fields), and every decrypted entry is tested with the query engine, so the result is
/// exactly the query's.
#[derive(Debug, Clone)]
pub(crate) struct Logql {
    pub(crate) query: logflux_query::LogQuery,
    pub(crate) prune: logflux_query::Prune,
    /// Application id → name (the query names applications by name).
    pub(crate) names: std::collections::HashMap<String, String>,
}

impl Logql {
    /// The query's conditions as token fields (as `serve` turns a query into a scan).
    fn fields(&self) -> Vec<Vec<(Field<'_>, String)>> {
        let p = &self.prune;
        let mut fields: Vec<Vec<(Field<'_>, String)>> = Vec::new();
        if let Some(levels) = &p.levels
            && levels.len() < 8
        {
            fields.push(
                levels
                    .iter()
                    .map(|l| (Field::Level, l.number().to_string()))
                    .collect(),
            );
        }
        if let Some(types) = &p.types
            && types.len() < 7
        {
            fields.push(
                types
                    .iter()
                    .map(|t| (Field::Type, t.number().to_string()))
                    .collect(),
            );
        }
        if let Some(sources) = &p.sources {
            fields.push(sources.iter().map(|s| (Field::Source, s.clone())).collect());
        }
        for (k, values) in &p.metadata {
            fields.push(values.iter().map(|v| (Field::Meta(k), v.clone())).collect());
        }
        for w in &p.words {
            fields.push(vec![(Field::Word, w.clone())]);
        }
        fields
    }

    /// Whether the entry, of the application `app_id`, matches the query.
    fn matches(&self, e: &EntryView, app_id: &str) -> bool {
        let app = self.names.get(app_id).map_or(app_id, String::as_str);
        self.query
            .eval(&logflux_query::Row { app, entry: e })
            .is_some()
    }
}

/// A parsed filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// A saved search's LogQL, besides the flags.
    pub(crate) logql: Option<Logql>,
    pub(crate) levels: Option<RangeInclusive<u8>>,
    pub(crate) since_ns: Option<i64>,
    pub(crate) until_ns: Option<i64>,
    pub(crate) contains: Option<String>,
    /// Lower-cased positional WORDs.
    pub(crate) words: Vec<String>,
    /// Positional arguments that are phrases.
    pub(crate) phrases: Vec<Phrase>,
    pub(crate) regex: Option<regex::Regex>,
    pub(crate) grep: Option<regex::Regex>,
    pub(crate) source: Option<String>,
    pub(crate) entry_type: Option<EntryType>,
    pub(crate) meta: Vec<(String, String)>,
    pub(crate) apps: Vec<String>,
}

/// `err` → err and more severe; `err..warning` (either order) → that range.
pub(crate) fn parse_levels(s: &str) -> anyhow::Result<RangeInclusive<u8>> {
    if let Some((a, b)) = s.split_once("..") {
        let a: Level = a.parse()?;
        let b: Level = b.parse()?;
        let (lo, hi) = (a.number().min(b.number()), a.number().max(b.number()));
        return Ok(lo..=hi);
    }
    let l: Level = s.parse()?;
    Ok(1..=l.number())
}

/// A duration like `90s`, `15m`, `1h30m`, `7d`, `2w`, `"1 hour"`, in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    crate::when::parse_span(s)
}

/// `journalctl -p`: as [`parse_levels`], but numbers are syslog's 0 (emerg) .. 7 (debug).
pub(crate) fn parse_priority(s: &str) -> anyhow::Result<RangeInclusive<u8>> {
    let one = |x: &str| -> anyhow::Result<Level> {
        let x = x.trim();
        if let Ok(n) = x.parse::<u8>() {
            if n > 7 {
                bail!("priority {n}: syslog numbers are 0 (emerg) .. 7 (debug)");
            }
            return Ok(Level::ALL[usize::from(n)]);
        }
        if x.bytes().all(|b| b.is_ascii_digit()) {
            bail!("priority {x:?}: syslog numbers are 0 (emerg) .. 7 (debug)");
        }
        Ok(x.parse()?)
    };
    if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (one(a)?.number(), one(b)?.number());
        return Ok(a.min(b)..=a.max(b));
    }
    Ok(1..=one(s)?.number())
}

/// A positional argument that is not a single word: its text must appear in the payload as
/// written (case-insensitive), not starting or ending inside a word.
#[derive(Debug, Clone)]
pub(crate) struct Phrase {
    /// The argument, lower-cased.
    text: String,
    /// Its words as written (they prune, as words do; the token lower-cases each).
    words: Vec<String>,
    /// Whether it starts (ends) with a word character: then the payload's character before
    /// (after) it must not be one.
    word_start: bool,
    word_end: bool,
}

impl Phrase {
    fn new(arg: &str) -> Phrase {
        let text = arg.to_lowercase();
        Phrase {
            // The words of the argument as written, as the producer split its payload before
            // lower-casing each word (the token does that): lower-casing the whole text first
            // can give other words (`İ` becomes `i` and a combining dot; a final sigma), whose
            // tokens no record has — the server would prune away entries that match.
            words: logflux_crypto::words(arg).map(str::to_owned).collect(),
            word_start: text.chars().next().is_some_and(is_word_char),
            word_end: text.chars().next_back().is_some_and(is_word_char),
            text,
        }
    }

    /// Whether `lower` (a lower-cased payload) contains the phrase.
    /// Every occurrence is tried, overlapping ones included: in `110.10.10.5`, `10.10` is
    /// refused at the first (inside `110`) and found at the next (`.10.10.`).
    fn found_in(&self, lower: &str) -> bool {
        let Some(first) = self.text.chars().next() else {
            return false;
        };
        let mut from = 0;
        while let Some(k) = lower[from..].find(self.text.as_str()) {
            let i = from + k;
            let before_ok =
                !self.word_start || !lower[..i].chars().next_back().is_some_and(is_word_char);
            let after_ok = !self.word_end
                || !lower[i + self.text.len()..]
                    .chars()
                    .next()
                    .is_some_and(is_word_char);
            if before_ok && after_ok {
                return true;
            }
            from = i + first.len_utf8();
        }
        false
    }
}

/// Whether a `--grep` pattern asks for case-sensitive matching: it has an upper-case letter
/// outside an escape (`\S`, `\W`, `\D` are classes, not letters).
fn has_upper_case(pattern: &str) -> bool {
    let mut escaped = false;
    for c in pattern.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c.is_uppercase() {
            return true;
        }
    }
    false
}

/// An entry type by name or number.
pub(crate) fn parse_type(s: &str) -> anyhow::Result<EntryType> {
    if let Ok(n) = s.parse::<i64>() {
        return EntryType::from_number(n).context("an entry type number is 1..7");
    }
    Ok(s.parse()?)
}

/// Token groups for the server's `POST /v1/query` and `POST /v1/tail`, shared by every reader
/// (`search`, `tail`, `serve`): each element of `fields` is one condition, met by any of its
/// (field, value) alternatives. A record matches when it has a token of every group. Each
/// group holds the tokens of every application searched (tokens are per application) and the
/// reserved token of records without tokens (SDK entries), which are then filtered here.
pub(crate) fn token_groups(
    key: &SearchKey,
    app_ids: &[String],
    fields: Vec<Vec<(Field<'_>, String)>>,
) -> Vec<Vec<String>> {
    let keys: Vec<_> = app_ids.iter().map(|a| key.token_key(a)).collect();
    let mut groups = Vec::new();
    for alternatives in fields {
        let mut g: Vec<String> = Vec::new();
        let mut all_tokenless = true;
        for k in &keys {
            for (field, value) in &alternatives {
                if let Some(t) = k.token(*field, value) {
                    g.push(t.to_string());
                    all_tokenless = false;
                }
            }
        }
        // A word too long for a token cannot prune: it is checked here only.
        if all_tokenless {
            continue;
        }
        g.push(logflux_proto::UNTOKENIZED.to_owned());
        g.sort_unstable();
        g.dedup();
        // Groups only prune: beyond the server's limits they are left out, and the exact
        // test here still applies.
        if g.len() <= MAX_TOKENS_PER_GROUP && groups.len() < MAX_TOKEN_GROUPS {
            groups.push(g);
        }
    }
    groups
}

impl Filter {
    /// Parses the arguments; times relative to `now_ns`, local times in `tz`.
    pub(crate) fn from_args<Tz: chrono::TimeZone>(
        a: &FilterArgs,
        now_ns: i64,
        tz: &Tz,
    ) -> anyhow::Result<Filter> {
        let mut words = Vec::new();
        let mut phrases = Vec::new();
        for w in &a.words {
            if w.is_empty() {
                bail!("an empty search word: give a word (timeout) or a phrase (\"db-1 down\")");
            }
            if w.chars().all(is_word_char) {
                words.push(w.to_lowercase());
            } else {
                // `10.10.34.11` is not the four words 10, 10, 34, 11 anywhere: it is a phrase.
                phrases.push(Phrase::new(w));
            }
        }
        let meta = a
            .meta
            .iter()
            .map(|m| {
                m.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .with_context(|| format!("--meta {m:?}: expected KEY=VALUE"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let f = Filter {
            logql: None,
            levels: match (&a.level, &a.priority) {
                (Some(l), _) => Some(parse_levels(l).context("--level")?),
                (None, Some(p)) => Some(parse_priority(p).context("--priority")?),
                (None, None) => None,
            },
            since_ns: a
                .since
                .as_deref()
                .map(|s| parse_when(s, now_ns, tz))
                .transpose()
                .context("--since")?,
            until_ns: a
                .until
                .as_deref()
                .map(|s| parse_when(s, now_ns, tz))
                .transpose()
                .context("--until")?,
            contains: a.contains.clone(),
            words,
            phrases,
            regex: a
                .regex
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .context("--regex")?,
            grep: a
                .grep
                .as_deref()
                .map(|g| {
                    regex::RegexBuilder::new(g)
                        .case_insensitive(!has_upper_case(g))
                        .build()
                })
                .transpose()
                .context("--grep")?,
            source: a.source.clone(),
            entry_type: a.entry_type.as_deref().map(parse_type).transpose()?,
            meta,
            apps: a.app.clone(),
        };
        if let (Some(s), Some(u)) = (f.since_ns, f.until_ns)
            && s > u
        {
            bail!("--since is after --until");
        }
        Ok(f)
    }

    /// Whether any filter asks for tokens (so the search key is needed to prune).
    pub(crate) fn wants_tokens(&self) -> bool {
        self.levels.as_ref().is_some_and(|l| *l != (1..=8))
            || !self.words.is_empty()
            || self.phrases.iter().any(|p| !p.words.is_empty())
            || self.source.is_some()
            || self.entry_type.is_some()
            || !self.meta.is_empty()
            || self.logql.as_ref().is_some_and(|l| !l.fields().is_empty())
    }

    /// This filter's token groups for the server (see [`token_groups`]).
    pub(crate) fn token_groups(&self, key: &SearchKey, app_ids: &[String]) -> Vec<Vec<String>> {
        let mut fields: Vec<Vec<(Field<'_>, String)>> = Vec::new();
        if let Some(l) = &self.levels
            && *l != (1..=8)
        {
            fields.push(l.clone().map(|n| (Field::Level, n.to_string())).collect());
        }
        if let Some(t) = self.entry_type {
            fields.push(vec![(Field::Type, t.number().to_string())]);
        }
        if let Some(s) = &self.source {
            fields.push(vec![(Field::Source, s.clone())]);
        }
        for (k, v) in &self.meta {
            fields.push(vec![(Field::Meta(k), v.clone())]);
        }
        let mut words: Vec<&String> = self.words.iter().collect();
        words.extend(self.phrases.iter().flat_map(|p| &p.words));
        words.sort_unstable();
        words.dedup();
        for w in words {
            fields.push(vec![(Field::Word, w.clone())]);
        }
        if let Some(l) = &self.logql {
            fields.extend(l.fields());
        }
        token_groups(key, app_ids, fields)
    }

    /// SDK entry types for the server (agent batches always pass: they are filtered by their
    /// type tokens).
    pub(crate) fn entry_types(&self) -> Vec<u8> {
        if let Some(t) = self.entry_type {
            return vec![t.number()];
        }
        match self.logql.as_ref().and_then(|l| l.prune.types.as_ref()) {
            Some(types) if types.len() < 7 => types.iter().map(|t| t.number()).collect(),
            _ => Vec::new(),
        }
    }

    /// As [`Filter::matches`], for an entry of the application `app_id`: a saved search's
    /// LogQL is tested too.
    pub(crate) fn matches_in(&self, e: &EntryView, app_id: &str) -> bool {
        self.matches(e) && self.logql.as_ref().is_none_or(|l| l.matches(e, app_id))
    }

    /// Whether every query word is a word of `payload` (case-insensitive), without allocating
    /// for ASCII words.
    fn has_words(&self, payload: &str) -> bool {
        let mut found = vec![false; self.words.len()];
        let mut missing = self.words.len();
        for w in logflux_crypto::words(payload) {
            for (i, q) in self.words.iter().enumerate() {
                if found[i] {
                    continue;
                }
                let same = if w.is_ascii() {
                    w.eq_ignore_ascii_case(q)
                } else {
                    w.to_lowercase() == *q
                };
                if same {
                    found[i] = true;
                    missing -= 1;
                    if missing == 0 {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// The exact test, after decryption.
    pub(crate) fn matches(&self, e: &EntryView) -> bool {
        self.test(e)
    }

    /// [`Filter::matches`] on an entry still borrowed from its decrypted batch, so that only
    /// the entries that match are copied out of it.
    /// Whether every entry of a record in the time range is kept: no test of the content, the
    /// level, the source, the type or the metadata (a listing). Only a hint for sizing buffers.
    pub(crate) fn keeps_every_entry(&self) -> bool {
        self.logql.is_none()
            && self.levels.is_none()
            && self.contains.is_none()
            && self.words.is_empty()
            && self.phrases.is_empty()
            && self.regex.is_none()
            && self.grep.is_none()
            && self.source.is_none()
            && self.entry_type.is_none()
            && self.meta.is_empty()
    }

    pub(crate) fn matches_ref(&self, e: &EntryRef<'_, '_>) -> bool {
        self.test(e)
    }

    fn test<E: Fields>(&self, e: &E) -> bool {
        if let Some(l) = &self.levels
            && !l.contains(&e.level().number())
        {
            return false;
        }
        if self.since_ns.is_some_and(|s| e.timestamp_ns() < s)
            || self.until_ns.is_some_and(|u| e.timestamp_ns() > u)
        {
            return false;
        }
        if self.entry_type.is_some_and(|t| t != e.entry_type()) {
            return false;
        }
        if self.source.as_ref().is_some_and(|s| *s != e.source()) {
            return false;
        }
        if !self
            .meta
            .iter()
            .all(|(k, v)| e.metadata(k).is_some_and(|x| x == v))
        {
            return false;
        }
        let payload = e.payload();
        if self
            .contains
            .as_ref()
            .is_some_and(|c| !payload.contains(c.as_str()))
        {
            return false;
        }
        if !self.words.is_empty() && !self.has_words(payload) {
            return false;
        }
        if !self.phrases.is_empty() {
            let lower = if payload.is_ascii() {
                payload.to_ascii_lowercase()
            } else {
                payload.to_lowercase()
            };
            if !self.phrases.iter().all(|p| p.found_in(&lower)) {
                return false;
            }
        }
        if self.regex.as_ref().is_some_and(|r| !r.is_match(payload)) {
            return false;
        }
        if self.grep.as_ref().is_some_and(|r| !r.is_match(payload)) {
            return false;
        }
        true
    }
}

/// What [`Filter::matches`] reads of an entry, owned or borrowed.
trait Fields {
    fn level(&self) -> Level;
    fn timestamp_ns(&self) -> i64;
    fn entry_type(&self) -> EntryType;
    fn source(&self) -> &str;
    fn metadata(&self, key: &str) -> Option<&str>;
    fn payload(&self) -> &str;
}

impl Fields for EntryView {
    fn level(&self) -> Level {
        self.level
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }
    fn entry_type(&self) -> EntryType {
        self.entry_type
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key)
    }
    fn payload(&self) -> &str {
        &self.payload
    }
}

impl Fields for EntryRef<'_, '_> {
    fn level(&self) -> Level {
        self.level
    }
    fn timestamp_ns(&self) -> i64 {
        self.timestamp_ns
    }
    fn entry_type(&self) -> EntryType {
        self.entry_type
    }
    fn source(&self) -> &str {
        self.source
    }
    fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata_value(key)
    }
    fn payload(&self) -> &str {
        self.payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    #[test]
    fn levels_are_a_threshold_or_a_range() {
        assert_eq!(parse_levels("err").unwrap(), 1..=4);
        assert_eq!(parse_levels("4").unwrap(), 1..=4);
        assert_eq!(parse_levels("debug").unwrap(), 1..=8);
        assert_eq!(parse_levels("err..warning").unwrap(), 4..=5);
        assert_eq!(parse_levels("warning..err").unwrap(), 4..=5);
        assert!(parse_levels("loud").is_err());
    }

    #[test]
    fn priority_is_journalctls_with_syslog_numbers() {
        assert_eq!(parse_priority("err").unwrap(), 1..=4);
        assert_eq!(parse_priority("3").unwrap(), 1..=4, "syslog 3 is err");
        assert_eq!(parse_priority("0").unwrap(), 1..=1);
        assert_eq!(parse_priority("7").unwrap(), 1..=8);
        assert_eq!(parse_priority("err..warning").unwrap(), 4..=5);
        assert_eq!(parse_priority("4..3").unwrap(), 4..=5);
        let e = parse_priority("8").unwrap_err().to_string();
        assert!(e.contains("0 (emerg) .. 7 (debug)"), "{e}");
        assert!(parse_priority("loud").is_err());
        // -p and --level are one filter: both at once is refused by the parser; the filter
        // takes whichever is given.
        let f = Filter::from_args(
            &FilterArgs {
                priority: Some("warning".into()),
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap();
        assert_eq!(f.levels, Some(1..=5));
    }

    fn utc() -> chrono::FixedOffset {
        chrono::FixedOffset::east_opt(0).unwrap()
    }

    fn words(args: &[&str]) -> Filter {
        Filter::from_args(
            &FilterArgs {
                words: args.iter().map(|a| (*a).to_owned()).collect(),
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap()
    }

    #[test]
    fn an_argument_with_separators_is_a_phrase_matched_as_written() {
        // The address of the report: its words 10, 10, 34, 11 anywhere are not a match.
        let ip = words(&["10.10.34.11"]);
        assert!(ip.words.is_empty());
        assert_eq!(ip.phrases.len(), 1);
        for yes in [
            "accepted from 10.10.34.11",
            "10.10.34.11:443 reset",
            "peer=10.10.34.11, retry",
            "(10.10.34.11)",
        ] {
            assert!(ip.matches(&entry(Level::Info, yes)), "{yes}");
        }
        for no in [
            "10.10.34.12 said 11",
            "from 10.10.34.110",
            "from 110.10.34.11",
            "10 10 34 11",
            "11.34.10.10",
            "10-10-34-11",
            "10.10.34.1",
        ] {
            assert!(!ip.matches(&entry(Level::Info, no)), "{no}");
        }
        let path = words(&["/v2/servers"]);
        assert!(path.matches(&entry(Level::Info, "GET /v2/servers/12 200")));
        assert!(path.matches(&entry(Level::Info, "GET /V2/Servers 200")));
        assert!(!path.matches(&entry(Level::Info, "GET /v2/serversX 200")));
        assert!(!path.matches(&entry(Level::Info, "GET /v2/other/servers")));
        let mail = words(&["alice@example.com"]);
        assert!(mail.matches(&entry(Level::Info, "mail to <Alice@Example.com> sent")));
        assert!(!mail.matches(&entry(Level::Info, "mail to malice@example.com")));
        assert!(!mail.matches(&entry(Level::Info, "alice at example.com")));
        let uuid = words(&["3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708192"]);
        assert!(uuid.matches(&entry(
            Level::Info,
            "job 3F2A9C1E-7B4D-4E1A-9C3B-2D5E6F708192 done"
        )));
        assert!(!uuid.matches(&entry(
            Level::Info,
            "job 3f2a9c1e-7b4d-4e1a-9c3b-2d5e6f708193 done"
        )));
        let spaced = words(&["connection refused", "db"]);
        assert_eq!(spaced.words, ["db"]);
        assert!(spaced.matches(&entry(Level::Info, "Connection refused by db")));
        assert!(!spaced.matches(&entry(Level::Info, "refused connection by db")));
        assert!(!spaced.matches(&entry(Level::Info, "connection was refused by db")));
        // An occurrence refused (inside `110`) does not hide the next, overlapping one.
        let overlap = words(&["10.10"]);
        assert!(overlap.matches(&entry(Level::Info, "from 110.10.10.5")));
        assert!(!overlap.matches(&entry(Level::Info, "from 110.10.105")));
        // The words that prune are the producer's: split first, then lower-cased (the token
        // lower-cases each word), never the words of the lower-cased whole.
        let dotted = words(&["İstanbul-1"]);
        assert_eq!(dotted.phrases[0].words, ["İstanbul", "1"]);
        let sigma = words(&["ΟΔΟΣ.Α"]);
        assert_eq!(sigma.phrases[0].words, ["ΟΔΟΣ", "Α"]);
        // Non-ASCII case folding, as for words.
        let koeln = words(&["grüße-köln"]);
        assert!(koeln.matches(&entry(Level::Info, "GRÜSSE? no: Grüße-Köln!")));
        // A word is still a whole word, anywhere.
        let w = words(&["timeout"]);
        assert!(w.phrases.is_empty());
        assert!(w.matches(&entry(Level::Info, "upstream TIMEOUT, retrying")));
        assert!(!w.matches(&entry(Level::Info, "timeouts")));
    }

    #[test]
    fn a_phrase_prunes_with_the_tokens_of_its_words() {
        let key = SearchKey::from_text(&"22".repeat(32)).unwrap();
        let apps = vec!["app_a".to_owned()];
        let f = words(&["10.10.34.11", "user@host"]);
        assert!(f.wants_tokens());
        let g = f.token_groups(&key, &apps);
        // 10, 34, 11, user, host: each once.
        assert_eq!(g.len(), 5);
        let k = key.token_key("app_a");
        for w in ["10", "34", "11", "user", "host"] {
            let t = k.token(Field::Word, w).unwrap().to_string();
            assert!(g.iter().any(|g| g.contains(&t)), "{w}");
        }
        // A phrase without a word cannot prune; it is checked here.
        let dots = words(&["..."]);
        assert!(!dots.wants_tokens());
        assert!(dots.matches(&entry(Level::Info, "wait...")));
        assert!(!dots.matches(&entry(Level::Info, "wait.")));
        let e = Filter::from_args(
            &FilterArgs {
                words: vec![String::new()],
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("empty search word"), "{e}");
    }

    #[test]
    fn grep_is_case_insensitive_when_all_lower_case() {
        let g = |p: &str| {
            Filter::from_args(
                &FilterArgs {
                    grep: Some(p.into()),
                    ..Default::default()
                },
                NOW,
                &utc(),
            )
            .unwrap()
        };
        let lower = g(r"time.?out\s+after");
        assert!(lower.matches(&entry(Level::Info, "upstream TIMEOUT after 30s")));
        assert!(lower.matches(&entry(Level::Info, "time-out after 1s")));
        let upper = g("Timeout");
        assert!(upper.matches(&entry(Level::Info, "Timeout after 30s")));
        assert!(!upper.matches(&entry(Level::Info, "timeout after 30s")));
        // Escapes are not letters: \S keeps it case-insensitive.
        let esc = g(r"took \S+ms");
        assert!(esc.matches(&entry(Level::Info, "TOOK 35ms")));
        assert!(has_upper_case("A"));
        assert!(!has_upper_case(r"\W\D\S"));
        assert!(has_upper_case(r"\\A"));
        let bad = Filter::from_args(
            &FilterArgs {
                grep: Some("(".into()),
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap_err();
        assert!(format!("{bad:#}").contains("--grep"), "{bad:#}");
    }

    fn entry(level: Level, payload: &str) -> EntryView {
        let mut e = logflux_proto::Entry::new(NOW, level, "api", payload);
        e.metadata.insert("env", "prod");
        e.into()
    }

    #[test]
    fn the_exact_test_applies_every_filter() {
        let args = FilterArgs {
            words: vec!["Connection".into(), "refused".into()],
            level: Some("warning".into()),
            contains: Some("db-1".into()),
            meta: vec!["env=prod".into()],
            source: Some("api".into()),
            ..Default::default()
        };
        let f = Filter::from_args(&args, NOW, &utc()).unwrap();
        assert!(f.matches(&entry(Level::Error, "connection REFUSED by db-1")));
        assert!(!f.matches(&entry(Level::Info, "connection refused by db-1")));
        assert!(!f.matches(&entry(Level::Error, "connection refused by db-2")));
        assert!(!f.matches(&entry(Level::Error, "connections refused by db-1")));
        let mut other = entry(Level::Error, "connection refused by db-1");
        other.metadata.insert("env", "dev");
        assert!(!f.matches(&other));
        let re = Filter::from_args(
            &FilterArgs {
                regex: Some(r"took \d+ms".into()),
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap();
        assert!(re.matches(&entry(Level::Info, "request took 35ms")));
        assert!(!re.matches(&entry(Level::Info, "request took long")));
    }

    /// The test on an entry borrowed from its batch decides as the test on its copy, with the
    /// metadata every entry of the batch shares (batch v2's common pairs) included.
    #[test]
    fn the_test_on_borrowed_entries_is_the_exact_test() {
        let payloads = [
            "connection REFUSED by db-1",
            "connection refused by db-2",
            "connections refused by db-1",
            "request took 35ms",
        ];
        let mut entries = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            for level in [Level::Error, Level::Info] {
                let mut e = logflux_proto::Entry::new(NOW + i as i64, level, "api", p);
                e.metadata.insert("env", "prod");
                if i % 2 == 1 {
                    e.metadata.insert("zone", "b");
                    e.source = "web".into();
                }
                entries.push(e);
            }
        }
        let mut buf = Vec::new();
        logflux_proto::batch::encode(&entries, &mut buf);
        let view = logflux_proto::batch::BatchView::parse(&buf).unwrap();
        assert_eq!(view.common(), &[("env", "prod")]);
        let filters = [
            FilterArgs {
                words: vec!["Connection".into(), "refused".into()],
                level: Some("warning".into()),
                contains: Some("db-1".into()),
                meta: vec!["env=prod".into()],
                source: Some("api".into()),
                ..Default::default()
            },
            FilterArgs {
                meta: vec!["zone=b".into()],
                ..Default::default()
            },
            FilterArgs {
                meta: vec!["env=dev".into()],
                ..Default::default()
            },
            FilterArgs {
                regex: Some(r"took \d+ms".into()),
                ..Default::default()
            },
            FilterArgs::default(),
        ];
        let mut kept = Vec::new();
        for args in &filters {
            let f = Filter::from_args(args, NOW, &utc()).unwrap();
            let mut n = 0;
            for (r, e) in view.iter().zip(&entries) {
                let owned: EntryView = e.clone().into();
                assert_eq!(f.matches_ref(&r), f.matches(&owned), "{args:?} on {e:?}");
                n += usize::from(f.matches(&owned));
            }
            kept.push(n);
        }
        assert_eq!(kept, [1, 4, 0, 2, 8]);
    }

    #[test]
    fn token_groups_cover_every_application_and_keep_untokenized_records() {
        let key = SearchKey::from_text(&"22".repeat(32)).unwrap();
        let f = Filter::from_args(
            &FilterArgs {
                words: vec!["timeout".into()],
                level: Some("err".into()),
                ..Default::default()
            },
            NOW,
            &utc(),
        )
        .unwrap();
        let apps = vec!["app_a".to_owned(), "app_b".to_owned()];
        let g = f.token_groups(&key, &apps);
        assert_eq!(g.len(), 2);
        // Levels 1..4 for two applications, plus the reserved token.
        assert_eq!(g[0].len(), 9);
        assert_eq!(g[1].len(), 3);
        let expected = key
            .token_key("app_b")
            .token(Field::Word, "TIMEOUT")
            .unwrap()
            .to_string();
        assert!(g[1].contains(&expected));
        assert!(
            g.iter()
                .all(|g| g.iter().any(|t| t == logflux_proto::UNTOKENIZED))
        );
        // Nothing in clear.
        assert!(!format!("{g:?}").contains("timeout"));
        let none = Filter::from_args(&FilterArgs::default(), NOW, &utc()).unwrap();
        assert!(none.token_groups(&key, &apps).is_empty());
        assert!(!none.wants_tokens());
    }
}
