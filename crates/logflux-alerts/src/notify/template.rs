//! The few Go-template expressions Slack titles, texts and e-mail headers may use: enough to
//! name the group, not a template language. Anything else is refused when the file is loaded,
//! so a text never goes out with a raw `{{ … }}` in it.

use crate::LabelSet;

/// What templates read: the notification's group, not the logs.
#[derive(Debug)]
pub(crate) struct TemplateData<'a> {
    pub(crate) status: &'a str,
    pub(crate) receiver: &'a str,
    pub(crate) external_url: &'a str,
    pub(crate) group_labels: &'a LabelSet,
    pub(crate) common_labels: &'a LabelSet,
    pub(crate) common_annotations: &'a LabelSet,
    pub(crate) firing: usize,
    pub(crate) resolved: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Status { upper: bool },
    Receiver,
    ExternalUrl,
    GroupLabel(String),
    CommonLabel(String),
    CommonAnnotation(String),
    Count(Which),
    GroupValues,
}

#[derive(Debug, Clone, Copy)]
enum Which {
    All,
    Firing,
    Resolved,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template(Vec<Part>);

const SUPPORTED: &str = ".Status, .Status | toUpper, .Receiver, .ExternalURL, .GroupLabels.NAME, \
                         .CommonLabels.NAME, .CommonAnnotations.NAME, .GroupLabels.Values, \
                         len .Alerts, .Alerts.Firing | len, .Alerts.Resolved | len";

impl Template {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("a `{{{{` without its `}}}}` in {s:?}"))?;
            let expr = after[..close]
                .trim_start_matches('-')
                .trim_end_matches('-')
                .trim();
            parts.push(parse_expr(expr).ok_or_else(|| {
                format!(
                    "template expression `{{{{ {expr} }}}}` is not supported (LogFlux knows: \
                     {SUPPORTED})"
                )
            })?);
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    pub(crate) fn render(&self, d: &TemplateData<'_>) -> String {
        let mut out = String::new();
        let get = |m: &LabelSet, k: &str| m.get(k).cloned().unwrap_or_default();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Status { upper: false } => out.push_str(d.status),
                Part::Status { upper: true } => out.push_str(&d.status.to_uppercase()),
                Part::Receiver => out.push_str(d.receiver),
                Part::ExternalUrl => out.push_str(d.external_url),
                Part::GroupLabel(k) => out.push_str(&get(d.group_labels, k)),
                Part::CommonLabel(k) => out.push_str(&get(d.common_labels, k)),
                Part::CommonAnnotation(k) => out.push_str(&get(d.common_annotations, k)),
                Part::Count(w) => out.push_str(
                    &match w {
                        Which::All => d.firing + d.resolved,
                        Which::Firing => d.firing,
                        Which::Resolved => d.resolved,
                    }
                    .to_string(),
                ),
                Part::GroupValues => {
                    let v: Vec<&str> = d.group_labels.values().map(String::as_str).collect();
                    out.push_str(&v.join(" "));
                }
            }
        }
        out
    }
}

fn parse_expr(e: &str) -> Option<Part> {
    let words: Vec<&str> = e.split_whitespace().collect();
    let count = |target: &str| match target {
        ".Alerts" => Some(Part::Count(Which::All)),
        ".Alerts.Firing" => Some(Part::Count(Which::Firing)),
        ".Alerts.Resolved" => Some(Part::Count(Which::Resolved)),
        _ => None,
    };
    match words.as_slice() {
        [".Status"] => Some(Part::Status { upper: false }),
        [".Status", "|", "toUpper"] | ["toUpper", ".Status"] => Some(Part::Status { upper: true }),
        [".Receiver"] => Some(Part::Receiver),
        [".ExternalURL"] => Some(Part::ExternalUrl),
        [".GroupLabels.Values"] | [".GroupLabels.SortedPairs.Values", "|", "join", "\" \""] => {
            Some(Part::GroupValues)
        }
        ["len", t] | [t, "|", "len"] => count(t),
        [one] => {
            let field = |prefix: &str| {
                one.strip_prefix(prefix)
                    .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
                    .map(str::to_owned)
            };
            field(".GroupLabels.")
                .map(Part::GroupLabel)
                .or_else(|| field(".CommonLabels.").map(Part::CommonLabel))
                .or_else(|| field(".CommonAnnotations.").map(Part::CommonAnnotation))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_supported_expressions() {
        let g: LabelSet = [("alertname".into(), "HighErrors".into())].into();
        let c: LabelSet = [
            ("alertname".into(), "HighErrors".into()),
            ("env".into(), "prod".into()),
        ]
        .into();
        let a: LabelSet = [("summary".into(), "too many".into())].into();
        let d = TemplateData {
            status: "firing",
            receiver: "team",
            external_url: "http://localhost:9090",
            group_labels: &g,
            common_labels: &c,
            common_annotations: &a,
            firing: 2,
            resolved: 1,
        };
        let t = Template::parse(
            "[{{ .Status | toUpper }}:{{ .Alerts.Firing | len }}/{{ len .Alerts }}] {{ .GroupLabels.alertname }} in {{.CommonLabels.env}}: {{ .CommonAnnotations.summary }}{{ .CommonLabels.none }} ({{ .Receiver }})",
        )
        .unwrap();
        assert_eq!(
            t.render(&d),
            "[FIRING:2/3] HighErrors in prod: too many (team)"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "{{ template \"slack.default.title\" . }}",
            "{{ range .Alerts }}x{{ end }}",
            "{{ .Labels.x }}",
            "open {{ .Status",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
