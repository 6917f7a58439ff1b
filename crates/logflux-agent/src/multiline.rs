//! Joining the lines of one event (a stack trace) into one entry.
//!
//! A line **continues** the current entry when it matches `continuation` (or, with only `start`
//! given, when it does not match `start`); otherwise it starts a new one. An entry with no new
//! line for `timeout_ms` is complete. Presets cover Java, Python and Go traces:
//!
//! ```yaml
//! multiline: {preset: java}                      # or python, go
//! multiline: {start: '^\d{4}-\d{2}-\d{2}', timeout_ms: 1000}
//! multiline: {continuation: '^\s', timeout_ms: 500}
//! ```

use regex::Regex;
use serde::Deserialize;

/// Most lines joined into one entry; beyond it the entry is cut (and counted as complete).
const MAX_LINES: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MultilinePreset {
    /// The exception's class line (`java.lang.IllegalStateException: …`), `\tat …`,
    /// `Caused by: …`, `\t... 12 more`, `Suppressed: …` continue.
    Java,
    /// `Traceback (most recent call last):`, indented frames, `During handling…`, and the final
    /// `SomeError: …` line continue.
    Python,
    /// `goroutine N [..]:`, `created by …`, function and `\tfile:line` frames, blank lines
    /// continue a `panic:`.
    Go,
}

impl MultilinePreset {
    fn continuation(self) -> &'static str {
        match self {
            MultilinePreset::Java => {
                r"^(\s+at\s|\s+\.\.\.\s+\d+\s+(more|common frames omitted)|\s*Caused by:|\s*Suppressed:|\t|([a-z_$][\w$]*\.)+[A-Z][\w$]*(Exception|Error|Throwable)(: .*)?$)"
            }
            MultilinePreset::Python => concat!(
                r"^(Traceback \(most recent call last\):|\s+|During handling of the above exception",
                r"|The above exception was the direct cause|[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)(:.*)?$)"
            ),
            MultilinePreset::Go => {
                r"^(\s*$|goroutine \d+ \[|created by |\t|[\w./*()\[\]-]+\(.*\)$|exit status \d+$)"
            }
        }
    }
}

/// The `multiline` settings of a file input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineConfig {
    #[serde(default)]
    pub preset: Option<MultilinePreset>,
    /// A line matching this starts a new entry.
    #[serde(default)]
    pub start: Option<String>,
    /// A line matching this continues the current entry.
    #[serde(default)]
    pub continuation: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_timeout() -> u64 {
    1000
}

/// Compiled rules.
#[derive(Debug, Clone)]
pub struct Rules {
    start: Option<Regex>,
    continuation: Option<Regex>,
    pub timeout: std::time::Duration,
}

impl Rules {
    pub fn new(c: &MultilineConfig) -> anyhow::Result<Rules> {
        let re = |p: &str, what: &str| {
            Regex::new(p).map_err(|e| anyhow::anyhow!("multiline.{what} {p:?}: {e}"))
        };
        let continuation = match (&c.continuation, c.preset) {
            (Some(p), _) => Some(re(p, "continuation")?),
            (None, Some(preset)) => Some(re(preset.continuation(), "preset")?),
            (None, None) => None,
        };
        let start = c.start.as_deref().map(|p| re(p, "start")).transpose()?;
        if start.is_none() && continuation.is_none() {
            anyhow::bail!("multiline: set preset, start or continuation");
        }
        Ok(Rules {
            start,
            continuation,
            timeout: std::time::Duration::from_millis(c.timeout_ms),
        })
    }

    fn continues(&self, line: &str) -> bool {
        if let Some(s) = &self.start
            && s.is_match(line)
        {
            return false;
        }
        match &self.continuation {
            Some(c) => c.is_match(line),
            None => true,
        }
    }
}

/// The entry being gathered for one file, with the offset just past its last line.
#[derive(Debug, Default)]
pub struct Joiner {
    lines: Vec<String>,
    end: u64,
}

impl Joiner {
    /// Adds a line; returns the previous entry (text, end offset) when this line starts a new
    /// one (or the entry reached its line limit).
    pub fn push(&mut self, rules: &Rules, line: String, end: u64) -> Option<(String, u64)> {
        let done = if !self.lines.is_empty()
            && (!rules.continues(&line) || self.lines.len() >= MAX_LINES)
        {
            self.take()
        } else {
            None
        };
        self.lines.push(line);
        self.end = end;
        done
    }

    /// The entry gathered so far, if any.
    pub fn take(&mut self) -> Option<(String, u64)> {
        if self.lines.is_empty() {
            return None;
        }
        let text = std::mem::take(&mut self.lines).join("\n");
        Some((text, self.end))
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(preset: Option<MultilinePreset>, start: Option<&str>, text: &str) -> Vec<String> {
        let rules = Rules::new(&MultilineConfig {
            preset,
            start: start.map(str::to_owned),
            continuation: None,
            timeout_ms: 1000,
        })
        .unwrap();
        let mut j = Joiner::default();
        let mut out = Vec::new();
        for (i, l) in text.lines().enumerate() {
            if let Some((t, _)) = j.push(&rules, l.to_owned(), i as u64) {
                out.push(t);
            }
        }
        out.extend(j.take().map(|(t, _)| t));
        out
    }

    #[test]
    fn java_python_and_go_traces_become_one_entry_each() {
        let java = "2026-11-21 10:00:00 ERROR request failed\n\
java.lang.IllegalStateException: boom\n\
\tat com.example.Foo.bar(Foo.java:10)\n\
\tat com.example.Main.main(Main.java:5)\n\
Caused by: java.io.IOException: disk\n\
\tat com.example.Disk.read(Disk.java:3)\n\
\t... 2 more\n\
2026-11-21 10:00:01 INFO next";
        let got = join(Some(MultilinePreset::Java), None, java);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("2026-11-21 10:00:00 ERROR request failed\njava.lang."));
        assert!(got[0].ends_with("\t... 2 more"));
        assert_eq!(got[1], "2026-11-21 10:00:01 INFO next");

        let py = concat!(
            "ERROR:root:failed\n",
            "Traceback (most recent call last):\n",
            "  File \"app.py\", line 3, in <module>\n",
            "    main()\n",
            "ValueError: bad value\n",
            "INFO:root:next"
        );
        let got = join(Some(MultilinePreset::Python), None, py);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("ERROR:root:failed\nTraceback"));
        assert!(got[0].ends_with("ValueError: bad value"));

        let go = "panic: runtime error: index out of range\n\
\n\
goroutine 1 [running]:\n\
main.main()\n\
\t/src/main.go:5 +0x1d\n\
exit status 2\n\
starting again";
        let got = join(Some(MultilinePreset::Go), None, go);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("panic:") && got[0].ends_with("exit status 2"));

        let dated = "2026-11-21 a\nmore\n  more\n2026-11-22 b";
        let got = join(None, Some(r"^\d{4}-\d{2}-\d{2}"), dated);
        assert_eq!(got, ["2026-11-21 a\nmore\n  more", "2026-11-22 b"]);
    }
}
