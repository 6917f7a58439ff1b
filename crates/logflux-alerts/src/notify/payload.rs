//! What a notification says: Alertmanager's webhook JSON (version 4), and the plain texts of
//! Slack and e-mail. Only labels, annotations, times, counts and — where the rule asked for
//! them with `include_lines` — the alert's lines.

use serde_json::{Value, json};

use super::template::TemplateData;
use crate::{Alert, LabelSet};

/// Go's zero time, which Alertmanager sends as `endsAt` of a firing alert.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One message to one integration: a group's alerts at a flush.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    pub(crate) receiver: String,
    pub(crate) group_key: String,
    pub(crate) group_labels: LabelSet,
    /// Sorted by labels; resolved ones have `ends_at_ms` at or before `now_ms`.
    pub(crate) alerts: Vec<Alert>,
    pub(crate) now_ms: i64,
    pub(crate) external_url: String,
}

/// RFC 3339 in UTC with milliseconds when there are any (as Go prints times in JSON).
pub(crate) fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_owned())
}

impl Notification {
    pub(crate) fn is_resolved(&self, a: &Alert) -> bool {
        a.resolved(self.now_ms)
    }

    pub(crate) fn firing(&self) -> usize {
        self.alerts.iter().filter(|a| !self.is_resolved(a)).count()
    }

    pub(crate) fn status(&self) -> &'static str {
        if self.firing() > 0 {
            "firing"
        } else {
            "resolved"
        }
    }

    pub(crate) fn common_labels(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.labels))
    }

    pub(crate) fn common_annotations(&self) -> LabelSet {
        common(self.alerts.iter().map(|a| &a.annotations))
    }

    /// Alertmanager's webhook body; `max_alerts` > 0 keeps the first that many and counts the
    /// rest in `truncatedAlerts`.
    pub(crate) fn webhook_json(&self, max_alerts: usize) -> Value {
        let keep = if max_alerts == 0 {
            self.alerts.len()
        } else {
            max_alerts.min(self.alerts.len())
        };
        let alerts: Vec<Value> = self.alerts[..keep]
            .iter()
            .map(|a| {
                let resolved = self.is_resolved(a);
                let mut v = json!({
                    "status": if resolved { "resolved" } else { "firing" },
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at_ms),
                    "endsAt": match a.ends_at_ms {
                        Some(e) if resolved => rfc3339(e),
                        _ => ZERO_TIME.to_owned(),
                    },
                    "generatorURL": a.generator_url,
                    "fingerprint": a.fingerprint(),
                });
                // LogFlux's extra field, present only when the rule asked for lines.
                if !a.lines.is_empty()
                    && let Some(o) = v.as_object_mut()
                {
                    o.insert("lines".into(), json!(a.lines));
                }
                v
            })
            .collect();
        json!({
            "receiver": self.receiver,
            "status": self.status(),
            "alerts": alerts,
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels(),
            "commonAnnotations": self.common_annotations(),
            "externalURL": self.external_url,
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": self.alerts.len() - keep,
        })
    }

    /// Runs `f` with the data templates read.
    pub(crate) fn with_template_data<R>(&self, f: impl FnOnce(&TemplateData<'_>) -> R) -> R {
        let common_labels = self.common_labels();
        let common_annotations = self.common_annotations();
        let firing = self.firing();
        f(&TemplateData {
            status: self.status(),
            receiver: &self.receiver,
            external_url: &self.external_url,
            group_labels: &self.group_labels,
            common_labels: &common_labels,
            common_annotations: &common_annotations,
            firing,
            resolved: self.alerts.len() - firing,
        })
    }

    /// `[FIRING:2] HighErrors api`: Alertmanager's default title.
    pub(crate) fn default_title(&self) -> String {
        let mut t = format!("[{}", self.status().to_uppercase());
        if self.firing() > 0 {
            t.push_str(&format!(":{}", self.firing()));
        }
        t.push(']');
        for v in self.group_labels.values() {
            t.push(' ');
            t.push_str(v);
        }
        t
    }

    /// Every alert's status, labels and annotations, one block each.
    pub(crate) fn default_text(&self) -> String {
        let mut s = String::new();
        for a in &self.alerts {
            let name = a.labels.get("alertname").map_or("alert", String::as_str);
            let status = if self.is_resolved(a) {
                "resolved"
            } else {
                "firing"
            };
            s.push_str(&format!(
                "{name} ({status}) since {}\n",
                rfc3339(a.starts_at_ms)
            ));
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("  labels: {}\n", labels.join(", ")));
            for (k, v) in &a.annotations {
                s.push_str(&format!("  {k}: {v}\n"));
            }
            if !a.generator_url.is_empty() {
                s.push_str(&format!("  source: {}\n", a.generator_url));
            }
            s.push('\n');
        }
        s
    }

    /// The dead-letter log's line for this notification: labels and annotations only (no
    /// lines, no URL, no credentials).
    pub(crate) fn dead_letter_line(&self, integration: &str, error: &str, now_ms: i64) -> Value {
        let alerts: Vec<_> = self
            .alerts
            .iter()
            .map(|a| {
                json!({
                    "status": if self.is_resolved(a) { "resolved" } else { "firing" },
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at_ms),
                    "fingerprint": a.fingerprint(),
                })
            })
            .collect();
        json!({
            "at": rfc3339(now_ms),
            "receiver": self.receiver,
            "integration": integration,
            "groupKey": self.group_key,
            "status": self.status(),
            "alerts": alerts,
            "error": error,
        })
    }

    /// The alerts' lines (only those whose rule asked for them), or nothing.
    pub(crate) fn lines_text(&self) -> String {
        let mut s = String::new();
        for a in self.alerts.iter().filter(|a| !a.lines.is_empty()) {
            let name = a.labels.get("alertname").map_or("alert", String::as_str);
            s.push_str(&format!("\nlast lines of {name} {:?}:\n", a.labels));
            for l in &a.lines {
                s.push_str("  ");
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut c = first.clone();
    for s in sets {
        c.retain(|k, v| s.get(k) == Some(v));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
