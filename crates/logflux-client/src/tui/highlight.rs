//! Highlight rules: regular expressions and the colour of what they match, applied to the
//! rows on screen only. The defaults are tailspin's kind: numbers, IP addresses, UUIDs, URLs,
//! quoted strings; the config file's `tui.highlight` adds rules (tried first), and
//! `tui.default_highlights: false` drops the defaults. Rules are compiled once.

use std::ops::Range;

use anyhow::Context as _;
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// A rule as the config file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleConfig {
    /// The regular expression.
    pub(crate) regex: String,
    /// A colour name (`red`, `light-blue`, …), `#rrggbb`, or an index 0–255.
    pub(crate) color: String,
    /// Bold as well.
    #[serde(default)]
    pub(crate) bold: bool,
}

/// A compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    re: regex::Regex,
    style: Style,
}

/// The rules in force.
#[derive(Debug, Clone)]
pub(crate) struct Highlighter {
    rules: Vec<Rule>,
}

/// The defaults, tailspin-like: (name, regex, colour).
const DEFAULTS: &[(&str, &str, Color)] = &[
    (
        "url",
        r#"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+"#,
        Color::Blue,
    ),
    (
        "uuid",
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        Color::Magenta,
    ),
    (
        "ipv4",
        r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b",
        Color::LightRed,
    ),
    (
        "ipv6",
        r"\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b",
        Color::LightRed,
    ),
    ("quoted", r#""[^"\n]*"|'[^'\n]*'"#, Color::Yellow),
    ("number", r"\b\d+(?:\.\d+)?\b", Color::Cyan),
];

impl Highlighter {
    /// Compiles the configured rules (first) and, unless turned off, the defaults. Errors
    /// name the rule: `tui.highlight[2].color: …`.
    pub(crate) fn new(rules: &[RuleConfig], defaults: bool) -> anyhow::Result<Highlighter> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let re =
                regex::Regex::new(&r.regex).with_context(|| format!("tui.highlight[{i}].regex"))?;
            let color: Color = r
                .color
                .parse()
                .map_err(|_| anyhow::anyhow!("tui.highlight[{i}].color: unknown colour {:?} (a name such as red or light-blue, #rrggbb, or 0-255)", r.color))?;
            let mut style = Style::new().fg(color);
            if r.bold {
                style = style.add_modifier(Modifier::BOLD);
            }
            out.push(Rule { re, style });
        }
        if defaults {
            for (name, re, color) in DEFAULTS {
                let re = regex::Regex::new(re)
                    .with_context(|| format!("the default highlight rule {name}"))?;
                out.push(Rule {
                    re,
                    style: Style::new().fg(*color),
                });
            }
        }
        Ok(Highlighter { rules: out })
    }

    /// No rules at all.
    pub(crate) fn none() -> Highlighter {
        Highlighter { rules: Vec::new() }
    }

    /// The styled ranges of `text`, in order, not overlapping: an earlier rule wins over a
    /// later one where they overlap. `text` is escaped screen text: nothing inside an escape
    /// (`\u{7}`) is styled (its digits are not a number). Each match costs a lookup in the
    /// ranges taken so far (a B-tree by start), not a pass over them.
    pub(crate) fn spans(&self, text: &str) -> Vec<(Range<usize>, Style)> {
        static ESCAPE: std::sync::LazyLock<Option<regex::Regex>> =
            std::sync::LazyLock::new(|| regex::Regex::new(r"\\u\{[0-9a-f]{1,6}\}").ok());
        // start → (end, style); escapes are taken with no style.
        let mut taken: std::collections::BTreeMap<usize, (usize, Option<Style>)> =
            std::collections::BTreeMap::new();
        if text.contains("\\u{")
            && let Some(esc) = ESCAPE.as_ref()
        {
            for m in esc.find_iter(text) {
                taken.insert(m.start(), (m.end(), None));
            }
        }
        for r in &self.rules {
            for m in r.re.find_iter(text) {
                let range = m.range();
                if range.is_empty() {
                    continue;
                }
                // The last range starting before this one ends must end before it starts.
                let free = taken
                    .range(..range.end)
                    .next_back()
                    .is_none_or(|(_, (end, _))| *end <= range.start);
                if free {
                    taken.insert(range.start, (range.end, Some(r.style)));
                }
            }
        }
        taken
            .into_iter()
            .filter_map(|(start, (end, style))| style.map(|s| (start..end, s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(h: &Highlighter, text: &str) -> Vec<String> {
        h.spans(text)
            .into_iter()
            .map(|(r, _)| text[r].to_owned())
            .collect()
    }

    #[test]
    fn nothing_inside_an_escape_is_highlighted() {
        let h = Highlighter::new(&[], true).unwrap();
        assert_eq!(matched(&h, r"bell \u{7} code 42 \u{1b}[31m"), ["42"]);
        // The same digits outside an escape are a number.
        assert_eq!(matched(&h, "bell {7}"), ["7"]);
    }

    #[test]
    fn defaults_find_numbers_addresses_ids_urls_and_quotes() {
        let h = Highlighter::new(&[], true).unwrap();
        let text = r#"GET https://x.io/a?b=1 from 10.0.0.7:443 id 123e4567-e89b-12d3-a456-426614174000 took 35.5 ms user "bob smith""#;
        assert_eq!(
            matched(&h, text),
            [
                "https://x.io/a?b=1",
                "10.0.0.7:443",
                "123e4567-e89b-12d3-a456-426614174000",
                "35.5",
                "\"bob smith\""
            ]
        );
    }

    #[test]
    fn configured_rules_come_first_and_errors_name_the_rule() {
        let rule = |re: &str, color: &str| RuleConfig {
            regex: re.into(),
            color: color.into(),
            bold: false,
        };
        let h = Highlighter::new(&[rule(r"user=\w+", "green")], true).unwrap();
        assert_eq!(matched(&h, "user=42 took 3"), ["user=42", "3"]);
        let e = Highlighter::new(&[rule("a", "red"), rule("(", "red")], true).unwrap_err();
        assert!(
            format!("{e:#}").starts_with("tui.highlight[1].regex"),
            "{e:#}"
        );
        let e = Highlighter::new(&[rule("a", "reddish")], true).unwrap_err();
        assert!(format!("{e:#}").contains("tui.highlight[0].color"), "{e:#}");
        assert!(
            Highlighter::new(&[], false)
                .unwrap()
                .spans("1 2")
                .is_empty()
        );
    }
}
