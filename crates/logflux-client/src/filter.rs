//! Search filters: what the user asks for, turned into blind tokens for the server (which prunes
//! with them and learns nothing else) and into an exact test applied here after decryption.
//! `--contains` and `--regex` never leave this machine; words, levels, sources, types and
//! metadata leave only as HMAC tokens.

use std::ops::RangeInclusive;

use anyhow::{Context as _, bail};
use clap::Args;
use logflux_crypto::{Field, SearchKey};
use logflux_proto::{EntryType, EntryView, Level, timefmt};

/// The server's limits on token groups (`POST /v1/query`).
const MAX_TOKEN_GROUPS: usize = 64;
const MAX_TOKENS_PER_GROUP: usize = 4096;

/// The filters shared by `search`, `tail`, `export` and `stats`.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct FilterArgs {
    /// Whole words that must all appear in the payload (case-insensitive); pruned on the
    /// server through blind tokens.
    #[arg(value_name = "WORD")]
    pub(crate) words: Vec<String>,
    /// LEVEL and everything more severe (like `journalctl -p`), or a range `err..warning`.
    /// Names (emerg, alert, crit, err, warning, notice, info, debug) or numbers 1..8.
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub(crate) level: Option<String>,
    /// Entries at or after: a duration back from now (`30s`, `15m`, `1h`, `7d`, `2w`,
    /// `1h30m`), an RFC 3339 time, or a date (`2026-11-20`, UTC).
    #[arg(short = 'S', long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Entries at or before (same forms as --since).
    #[arg(short = 'U', long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// A substring the payload must contain, exactly (case-sensitive); checked here only.
    #[arg(long, value_name = "TEXT")]
    pub(crate) contains: Option<String>,
    /// A regular expression the payload must match; checked here only.
    #[arg(long, value_name = "RE")]
    pub(crate) regex: Option<String>,
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

/// A parsed filter.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub(crate) levels: Option<RangeInclusive<u8>>,
    pub(crate) since_ns: Option<i64>,
    pub(crate) until_ns: Option<i64>,
    pub(crate) contains: Option<String>,
    /// Lower-cased words.
    pub(crate) words: Vec<String>,
    pub(crate) regex: Option<regex::Regex>,
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

/// A duration like `90s`, `15m`, `1h30m`, `7d`, `2w`, in nanoseconds.
pub(crate) fn parse_duration(s: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit: i64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?.checked_mul(1_000_000_000)?)?;
        any = true;
    }
    (num.is_empty() && any).then_some(total)
}

/// A point in time: `now`, a duration back from `now_ns`, an RFC 3339 time, or a date (UTC).
pub(crate) fn parse_when(s: &str, now_ns: i64) -> anyhow::Result<i64> {
    let s = s.trim();
    if s == "now" {
        return Ok(now_ns);
    }
    if let Some(d) = parse_duration(s) {
        return Ok(now_ns.saturating_sub(d));
    }
    if let Ok(t) = timefmt::parse_rfc3339(s) {
        return Ok(t);
    }
    if s.len() == 10
        && let Ok(t) = timefmt::parse_rfc3339(&format!("{s}T00:00:00Z"))
    {
        return Ok(t);
    }
    bail!(
        "{s:?} is not a time: use a duration back from now (30m, 1h, 7d), an RFC 3339 time \
         (2026-11-20T14:00:00Z) or a date (2026-11-20)"
    )
}

/// An entry type by name or number.
pub(crate) fn parse_type(s: &str) -> anyhow::Result<EntryType> {
    if let Ok(n) = s.parse::<i64>() {
        return EntryType::from_number(n).context("an entry type number is 1..7");
    }
    Ok(s.parse()?)
}

impl Filter {
    /// Parses the arguments; times relative to `now_ns`.
    pub(crate) fn from_args(a: &FilterArgs, now_ns: i64) -> anyhow::Result<Filter> {
        let mut words = Vec::new();
        for w in &a.words {
            // A positional argument is split the way payloads are, so `user_id=42` asks for
            // the two words `user_id` and `42`.
            for part in logflux_crypto::words(w) {
                words.push(part.to_lowercase());
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
            levels: a.level.as_deref().map(parse_levels).transpose()?,
            since_ns: a
                .since
                .as_deref()
                .map(|s| parse_when(s, now_ns))
                .transpose()
                .context("--since")?,
            until_ns: a
                .until
                .as_deref()
                .map(|s| parse_when(s, now_ns))
                .transpose()
                .context("--until")?,
            contains: a.contains.clone(),
            words,
            regex: a
                .regex
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .context("--regex")?,
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
            || self.source.is_some()
            || self.entry_type.is_some()
            || !self.meta.is_empty()
    }

    /// Token groups for the server: a record matches when it has a token of every group. Each
    /// group holds the tokens of every application searched (tokens are per application) and
    /// the reserved token of records without tokens (SDK entries), which are then filtered
    /// here.
    pub(crate) fn token_groups(&self, key: &SearchKey, app_ids: &[String]) -> Vec<Vec<String>> {
        let keys: Vec<_> = app_ids.iter().map(|a| key.token_key(a)).collect();
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
        for w in &self.words {
            fields.push(vec![(Field::Word, w.clone())]);
        }
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

    /// SDK entry types for the server (agent batches always pass: they are filtered by their
    /// type tokens).
    pub(crate) fn entry_types(&self) -> Vec<u8> {
        self.entry_type
            .map(|t| vec![t.number()])
            .unwrap_or_default()
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
        if let Some(l) = &self.levels
            && !l.contains(&e.level.number())
        {
            return false;
        }
        if self.since_ns.is_some_and(|s| e.timestamp_ns < s)
            || self.until_ns.is_some_and(|u| e.timestamp_ns > u)
        {
            return false;
        }
        if self.entry_type.is_some_and(|t| t != e.entry_type) {
            return false;
        }
        if self.source.as_ref().is_some_and(|s| *s != e.source) {
            return false;
        }
        if !self
            .meta
            .iter()
            .all(|(k, v)| e.metadata.get(k).is_some_and(|x| x == v))
        {
            return false;
        }
        if self
            .contains
            .as_ref()
            .is_some_and(|c| !e.payload.contains(c.as_str()))
        {
            return false;
        }
        if !self.words.is_empty() && !self.has_words(&e.payload) {
            return false;
        }
        if self.regex.as_ref().is_some_and(|r| !r.is_match(&e.payload)) {
            return false;
        }
        true
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
    fn times_are_durations_rfc3339_or_dates() {
        let s = 1_000_000_000;
        assert_eq!(parse_when("30m", NOW).unwrap(), NOW - 1800 * s);
        assert_eq!(parse_when("1h30m", NOW).unwrap(), NOW - 5400 * s);
        assert_eq!(parse_when("7d", NOW).unwrap(), NOW - 7 * 86_400 * s);
        assert_eq!(parse_when("now", NOW).unwrap(), NOW);
        assert_eq!(
            parse_when("2026-11-20T14:00:00Z", NOW).unwrap(),
            timefmt::parse_rfc3339("2026-11-20T14:00:00Z").unwrap()
        );
        assert_eq!(
            parse_when("2026-11-20", NOW).unwrap(),
            timefmt::parse_rfc3339("2026-11-20T00:00:00Z").unwrap()
        );
        for bad in ["", "1x", "h", "yesterday", "12"] {
            assert!(parse_when(bad, NOW).is_err(), "{bad}");
        }
    }

    fn entry(level: Level, payload: &str) -> EntryView {
        let mut e = logflux_proto::Entry::new(NOW, level, "api", payload);
        e.metadata.insert("env".into(), "prod".into());
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
        let f = Filter::from_args(&args, NOW).unwrap();
        assert!(f.matches(&entry(Level::Error, "connection REFUSED by db-1")));
        assert!(!f.matches(&entry(Level::Info, "connection refused by db-1")));
        assert!(!f.matches(&entry(Level::Error, "connection refused by db-2")));
        assert!(!f.matches(&entry(Level::Error, "connections refused by db-1")));
        let mut other = entry(Level::Error, "connection refused by db-1");
        other.metadata.insert("env".into(), "dev".into());
        assert!(!f.matches(&other));
        let re = Filter::from_args(
            &FilterArgs {
                regex: Some(r"took \d+ms".into()),
                ..Default::default()
            },
            NOW,
        )
        .unwrap();
        assert!(re.matches(&entry(Level::Info, "request took 35ms")));
        assert!(!re.matches(&entry(Level::Info, "request took long")));
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
        let none = Filter::from_args(&FilterArgs::default(), NOW).unwrap();
        assert!(none.token_groups(&key, &apps).is_empty());
        assert!(!none.wants_tokens());
    }
}
