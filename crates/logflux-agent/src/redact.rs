//! Redaction: secrets removed from entries before they are sealed, so they never reach the
//! spool, the server, or anyone who later holds the private key.
//!
//! Rules come from the config's `filters` list, in order, in the format of the product
//! documentation —
//!
//! ```yaml
//! filters:
//!   - type: regex
//!     pattern: "password[=:]\\s*\\S+"
//!     replacement: "password=***REDACTED***"
//!   - type: preset
//!     name: card_numbers        # passwords, bearer_tokens, api_keys, card_numbers, emails
//! ```
//!
//! — and apply to the payload and to every metadata value. Each rule counts the entries it
//! changed (`logflux_agent_redactions_total{rule="…"}`).

use std::borrow::Cow;

use anyhow::Context as _;
use logflux_proto::Entry;
use prometheus_client::metrics::counter::Counter;
use regex::{Captures, Regex};
use serde::Deserialize;

/// One entry of the config's `filters` list.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FilterConfig {
    /// A regular expression and its replacement (`$1`, `${name}` refer to groups).
    Regex {
        pattern: String,
        #[serde(default = "default_replacement")]
        replacement: String,
        /// A name for the metrics (default: the pattern).
        #[serde(default)]
        name: Option<String>,
    },
    /// A built-in rule.
    Preset { name: Preset },
}

fn default_replacement() -> String {
    "***REDACTED***".into()
}

/// Built-in rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// `password=…`, `passwd: …`, `"password":"…"`, `pwd=…`, `secret=…`.
    Passwords,
    /// `Authorization: Bearer …`, `bearer …`.
    BearerTokens,
    /// `api_key=…`, `token: …`, `"access_key":"…"`, AWS access key ids, LogFlux keys and
    /// tokens.
    ApiKeys,
    /// Payment card numbers (13–19 digits, spaces or dashes allowed) that pass the Luhn check.
    CardNumbers,
    /// E-mail addresses.
    Emails,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::Passwords => "passwords",
            Preset::BearerTokens => "bearer_tokens",
            Preset::ApiKeys => "api_keys",
            Preset::CardNumbers => "card_numbers",
            Preset::Emails => "emails",
        }
    }

    fn pattern(self) -> &'static str {
        match self {
            Preset::Passwords => {
                r#"(?i)(\b(?:password|passwd|pwd|passphrase|secret)\b"?\s*[=:]\s*"?)[^\s",;&}]+"#
            }
            Preset::BearerTokens => r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*",
            Preset::ApiKeys => concat!(
                r#"(?i)(\b(?:api[_-]?key|apikey|access[_-]?key|secret[_-]?key|auth[_-]?token|access[_-]?token|token|x-api-key)\b"?\s*[=:]\s*"?)[^\s",;&}]+"#,
                r"|()\bAKIA[0-9A-Z]{16}\b",
                r"|()\b(?:eu|us|ca|au|ap)-lf_[A-Za-z0-9]{16,}",
                r"|()\blf_pat_[A-Za-z0-9]{16,}",
            ),
            Preset::CardNumbers => r"\b\d(?:[ -]?\d){12,18}\b",
            Preset::Emails => r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b",
        }
    }
}

enum Replace {
    /// A replacement template.
    Template(String),
    /// Keep group 1 (the key), then this text.
    KeepPrefix(&'static str),
    /// Card numbers: replaced only when the Luhn check passes.
    Luhn,
}

struct Rule {
    name: String,
    re: Regex,
    replace: Replace,
    hits: Counter,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule").field("name", &self.name).finish()
    }
}

/// The configured rules, ready to apply.
#[derive(Debug, Default)]
pub struct Redactor {
    rules: Vec<Rule>,
}

fn luhn(digits: &str) -> bool {
    let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&ds.len()) {
        return false;
    }
    let sum: u32 = ds
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Redactor {
    /// Compiles the rules; a bad pattern is an error naming its position in `filters`.
    pub fn new(filters: &[FilterConfig]) -> anyhow::Result<Redactor> {
        let mut rules = Vec::new();
        for (i, f) in filters.iter().enumerate() {
            let rule = match f {
                FilterConfig::Regex {
                    pattern,
                    replacement,
                    name,
                } => Rule {
                    name: name.clone().unwrap_or_else(|| pattern.clone()),
                    re: Regex::new(pattern)
                        .with_context(|| format!("filters[{i}].pattern {pattern:?}"))?,
                    replace: Replace::Template(replacement.clone()),
                    hits: Counter::default(),
                },
                FilterConfig::Preset { name } => Rule {
                    name: name.name().to_owned(),
                    re: Regex::new(name.pattern()).expect("built-in patterns compile"),
                    replace: match name {
                        Preset::CardNumbers => Replace::Luhn,
                        Preset::Emails => Replace::Template("***@***".into()),
                        _ => Replace::KeepPrefix("***REDACTED***"),
                    },
                    hits: Counter::default(),
                },
            };
            rules.push(rule);
        }
        Ok(Redactor { rules })
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Counts each rule's hits in the counter `counter(rule name)` gives (the metrics' own).
    pub(crate) fn bind_counters(&mut self, counter: impl Fn(&str) -> Counter) {
        for r in &mut self.rules {
            r.hits = counter(&r.name);
        }
    }

    /// Per-rule counters.
    #[cfg(test)]
    pub(crate) fn counters(&self) -> Vec<(String, Counter)> {
        self.rules
            .iter()
            .map(|r| (r.name.clone(), r.hits.clone()))
            .collect()
    }

    fn apply<'a>(rule: &Rule, text: &'a str) -> Cow<'a, str> {
        match &rule.replace {
            Replace::Template(t) => rule.re.replace_all(text, t.as_str()),
            Replace::KeepPrefix(r) => rule.re.replace_all(text, |c: &Captures<'_>| {
                // Whichever alternative matched: its group 1 (the key) is kept.
                let prefix = (1..c.len())
                    .filter_map(|g| c.get(g))
                    .map(|m| m.as_str())
                    .next()
                    .unwrap_or("");
                format!("{prefix}{r}")
            }),
            Replace::Luhn => rule.re.replace_all(text, |c: &Captures<'_>| {
                let m = &c[0];
                if luhn(m) {
                    "****-****-****-****".to_owned()
                } else {
                    m.to_owned()
                }
            }),
        }
    }

    /// Applies every rule to the payload and the metadata values, in order.
    pub fn redact(&self, e: &mut Entry) {
        for rule in &self.rules {
            let mut hit = false;
            if let Cow::Owned(s) = Self::apply(rule, &e.payload)
                && s != e.payload
            {
                e.payload = s;
                hit = true;
            }
            for v in e.metadata.values_mut() {
                if let Cow::Owned(s) = Self::apply(rule, v)
                    && *v != s
                {
                    *v = s.into();
                    hit = true;
                }
            }
            if hit {
                rule.hits.inc();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::Level;

    fn presets() -> Redactor {
        Redactor::new(
            &[
                Preset::Passwords,
                Preset::BearerTokens,
                Preset::ApiKeys,
                Preset::CardNumbers,
                Preset::Emails,
            ]
            .map(|name| FilterConfig::Preset { name }),
        )
        .unwrap()
    }

    fn red(r: &Redactor, s: &str) -> String {
        let mut e = Entry::new(0, Level::Info, "t", s);
        r.redact(&mut e);
        e.payload
    }

    #[test]
    fn each_preset_removes_its_secret_and_keeps_the_rest() {
        let r = presets();
        for (input, secret, kept) in [
            ("login ok password=hunter2 user=bob", "hunter2", "user=bob"),
            (
                r#"{"user":"bob","password":"s3cr3t!"}"#,
                "s3cr3t!",
                r#""user":"bob""#,
            ),
            ("db passwd: Tr0ub4dor&3 ok", "Tr0ub4dor", "ok"),
            (
                "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig-_x",
                "eyJhbGciOi",
                "Authorization",
            ),
            (
                "call with api_key=abcd1234efgh5678",
                "abcd1234efgh5678",
                "call with",
            ),
            (
                r#"{"access_token":"ya29.a0AfH6S"}"#,
                "ya29.a0AfH6S",
                "access_token",
            ),
            (
                "aws AKIAIOSFODNN7EXAMPLE used",
                "AKIAIOSFODNN7EXAMPLE",
                "used",
            ),
            (
                "key eu-lf_0123456789abcdef0123 leaked",
                "0123456789abcdef0123",
                "leaked",
            ),
            (
                "paid with 4111 1111 1111 1111 today",
                "4111 1111 1111 1111",
                "today",
            ),
            ("card 5500-0000-0000-0004.", "5500-0000-0000-0004", "card"),
            (
                "mail alice.smith+logs@example.co.uk now",
                "alice.smith",
                "now",
            ),
        ] {
            let out = red(&r, input);
            assert!(!out.contains(secret), "{input:?} → {out:?}");
            assert!(out.contains(kept), "{input:?} → {out:?}");
        }
        // Not secrets: left alone.
        for plain in [
            "order 1234567890123 shipped",
            "took 30ms, 4111 retries",
            "password policy updated",
        ] {
            assert_eq!(red(&r, plain), plain);
        }
    }

    #[test]
    fn regex_rules_apply_in_order_to_payload_and_metadata_and_count() {
        let r = Redactor::new(&[
            FilterConfig::Regex {
                pattern: r"password[=:]\s*\S+".into(),
                replacement: "password=***REDACTED***".into(),
                name: Some("pw".into()),
            },
            FilterConfig::Regex {
                pattern: r"\b\d{4}[\s-]?\d{4}[\s-]?\d{4}[\s-]?\d{4}\b".into(),
                replacement: "****-****-****-****".into(),
                name: None,
            },
        ])
        .unwrap();
        let mut e = Entry::new(0, Level::Info, "t", "password=abc card 1234-5678-9012-3456");
        e.metadata.insert("q", "password: xyz");
        r.redact(&mut e);
        assert_eq!(
            e.payload,
            "password=***REDACTED*** card ****-****-****-****"
        );
        assert_eq!(e.metadata["q"], "password=***REDACTED***");
        let c = r.counters();
        assert_eq!(c[0].0, "pw");
        assert_eq!(c[0].1.get(), 1, "one entry changed by the first rule");
        assert_eq!(c[1].1.get(), 1);
        let bad = Redactor::new(&[FilterConfig::Regex {
            pattern: "(".into(),
            replacement: String::new(),
            name: None,
        }])
        .unwrap_err();
        assert!(format!("{bad:#}").contains("filters[0].pattern"), "{bad:#}");
    }
}
