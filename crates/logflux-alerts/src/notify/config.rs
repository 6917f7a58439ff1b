//! Alertmanager's configuration file, the subset LogFlux speaks (`docs/alerts.md`, "Receivers
//! and routing"): parsed with unknown fields refused by their path, then checked as a whole so
//! every problem is reported at once.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
// Sections LogFlux ignores or refuses are only noted as present: their values (a PagerDuty
// key, say) are never kept, so never printed.
use serde::de::IgnoredAny;

use super::matchers::{self, Matcher};
use super::template::Template;

/// A value that must not be printed (`Debug` shows `Secret(***)`), wiped from memory on drop.
pub use logflux_proto::Secret;

/// A duration written as Prometheus writes them: `30s`, `5m`, `1h30m`, `500ms`, `1d`, `1w`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PromDuration(pub Duration);

impl fmt::Debug for PromDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s)
            .map(PromDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a Prometheus duration (`[0-9]+(ms|s|m|h|d|w|y)`, repeated from the largest unit down).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad =
        || format!("not a duration: {s:?} (write it as Prometheus does: 30s, 5m, 1h30m, 500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut last_unit = usize::MAX;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        // "ms" before "m", so the longer unit wins.
        let (i, (unit, ms)) = UNITS
            .iter()
            .enumerate()
            .filter(|(_, (u, _))| rest.starts_with(u))
            .max_by_key(|(_, (u, _))| u.len())
            .ok_or_else(bad)?;
        // Prometheus wants units from the largest down, each at most once.
        if last_unit != usize::MAX && i <= last_unit {
            return Err(bad());
        }
        last_unit = i;
        rest = &rest[unit.len()..];
        total = n
            .checked_mul(*ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total))
}

/// The receivers file: Alertmanager's `alertmanager.yml`, a subset.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiversConfig {
    /// Defaults for receivers.
    #[serde(default)]
    pub global: GlobalConfig,
    /// The routing tree's root.
    pub route: RouteConfig,
    /// Where notifications go.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Ignored with a warning: ignoring it can only mean more notifications, never fewer.
    #[serde(default)]
    inhibit_rules: Option<IgnoredAny>,
    /// Ignored with a warning (as `inhibit_rules`).
    #[serde(default)]
    time_intervals: Option<IgnoredAny>,
    /// Ignored with a warning (as `inhibit_rules`).
    #[serde(default)]
    mute_time_intervals: Option<IgnoredAny>,
    /// Refused: texts would depend on templates LogFlux does not run.
    #[serde(default)]
    templates: Option<IgnoredAny>,
}

/// `global`: defaults for receivers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalConfig {
    /// `host:port` of the SMTP server.
    pub smtp_smarthost: Option<String>,
    /// The sender's address.
    pub smtp_from: Option<String>,
    /// The name given in EHLO.
    pub smtp_hello: Option<String>,
    /// SMTP AUTH user.
    pub smtp_auth_username: Option<String>,
    /// SMTP AUTH password.
    pub smtp_auth_password: Option<Secret>,
    /// A file holding the SMTP AUTH password (read at each send).
    pub smtp_auth_password_file: Option<PathBuf>,
    /// Refuse to send mail unless the server offers STARTTLS (default true).
    pub smtp_require_tls: bool,
    /// Slack's incoming webhook URL.
    pub slack_api_url: Option<Secret>,
    /// A file holding Slack's incoming webhook URL.
    pub slack_api_url_file: Option<PathBuf>,
    /// An alert not refreshed for this long (and not resolved) counts as resolved (5m).
    pub resolve_timeout: PromDuration,
    /// LogFlux's own: how long a notification is retried before it goes to the dead-letter
    /// log (10m).
    pub retry_for: PromDuration,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            smtp_smarthost: None,
            smtp_from: None,
            smtp_hello: None,
            smtp_auth_username: None,
            smtp_auth_password: None,
            smtp_auth_password_file: None,
            smtp_require_tls: true,
            slack_api_url: None,
            slack_api_url_file: None,
            resolve_timeout: PromDuration(Duration::from_secs(300)),
            retry_for: PromDuration(Duration::from_secs(600)),
        }
    }
}

/// A node of the routing tree; unset fields are inherited from the parent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The receiver's name.
    pub receiver: Option<String>,
    /// Labels to group by; `['...']` groups by all labels.
    pub group_by: Option<Vec<String>>,
    /// How long a new group waits before its first notification (30s).
    pub group_wait: Option<PromDuration>,
    /// How long a group waits before notifying about changes (5m).
    pub group_interval: Option<PromDuration>,
    /// How long before an unchanged firing group is notified again (4h).
    pub repeat_interval: Option<PromDuration>,
    /// Keep matching siblings after this route matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Child routes.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// `a="b"`, `a!="b"`, `a=~"x"`, `a!~"x"`.
    #[serde(default)]
    pub matchers: Vec<String>,
    /// Older form: label = value.
    #[serde(default, rename = "match")]
    pub match_eq: BTreeMap<String, String>,
    /// Older form: label = regular expression.
    #[serde(default)]
    pub match_re: BTreeMap<String, String>,
    /// Ignored with a warning (muting can only mean fewer notifications).
    #[serde(default)]
    mute_time_intervals: Option<IgnoredAny>,
    /// Ignored with a warning.
    #[serde(default)]
    active_time_intervals: Option<IgnoredAny>,
}

/// A named receiver: its integrations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Routes name it.
    pub name: String,
    /// Alertmanager's webhook.
    #[serde(default)]
    pub webhook_configs: Vec<WebhookConfig>,
    /// Slack's incoming webhook.
    #[serde(default)]
    pub slack_configs: Vec<SlackConfig>,
    /// E-mail over SMTP.
    #[serde(default)]
    pub email_configs: Vec<EmailConfig>,
    /// LogFlux's own: run a command with the webhook JSON on stdin.
    #[serde(default)]
    pub exec_configs: Vec<ExecConfig>,
    // Alertmanager's other integrations: refused by name, since alerts routed to them would
    // otherwise go nowhere.
    #[serde(default)]
    discord_configs: Option<IgnoredAny>,
    #[serde(default)]
    incidentio_configs: Option<IgnoredAny>,
    #[serde(default)]
    jira_configs: Option<IgnoredAny>,
    #[serde(default)]
    msteams_configs: Option<IgnoredAny>,
    #[serde(default)]
    msteamsv2_configs: Option<IgnoredAny>,
    #[serde(default)]
    opsgenie_configs: Option<IgnoredAny>,
    #[serde(default)]
    pagerduty_configs: Option<IgnoredAny>,
    #[serde(default)]
    pushover_configs: Option<IgnoredAny>,
    #[serde(default)]
    rocketchat_configs: Option<IgnoredAny>,
    #[serde(default)]
    sns_configs: Option<IgnoredAny>,
    #[serde(default)]
    telegram_configs: Option<IgnoredAny>,
    #[serde(default)]
    victorops_configs: Option<IgnoredAny>,
    #[serde(default)]
    webex_configs: Option<IgnoredAny>,
    #[serde(default)]
    wechat_configs: Option<IgnoredAny>,
}

fn yes() -> bool {
    true
}

/// `webhook_configs[]`: Alertmanager's webhook JSON, POSTed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST (a secret: it often carries a token).
    pub url: Option<Secret>,
    /// A file holding the URL (read at each send).
    pub url_file: Option<PathBuf>,
    /// Notify about resolved alerts (default true).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// At most this many alerts per message (0 = all); the rest are counted in
    /// `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// Each request's timeout (default 30s).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
    #[serde(default)]
    http_config: Option<IgnoredAny>,
}

/// `slack_configs[]`: Slack's incoming webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The incoming webhook URL (default: `global.slack_api_url`).
    pub api_url: Option<Secret>,
    /// A file holding it.
    pub api_url_file: Option<PathBuf>,
    /// `#channel` (incoming webhooks have one of their own; this overrides it where allowed).
    pub channel: Option<String>,
    /// The bot's name.
    pub username: Option<String>,
    /// The bot's icon.
    pub icon_emoji: Option<String>,
    /// The bot's icon.
    pub icon_url: Option<String>,
    /// The attachment's title (templated).
    pub title: Option<String>,
    /// Where the title links to (templated).
    pub title_link: Option<String>,
    /// The attachment's text (templated).
    pub text: Option<String>,
    /// The attachment's colour (templated; default: red while firing, green resolved).
    pub color: Option<String>,
    /// Notify about resolved alerts (default false).
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default)]
    http_config: Option<IgnoredAny>,
}

/// `email_configs[]`: SMTP, STARTTLS required by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Recipients, comma-separated.
    pub to: Option<String>,
    /// The sender (default: `global.smtp_from`).
    pub from: Option<String>,
    /// EHLO name (default: `global.smtp_hello`).
    pub hello: Option<String>,
    /// `host:port` (default: `global.smtp_smarthost`); port 465 is TLS from the start.
    pub smarthost: Option<String>,
    /// SMTP AUTH user.
    pub auth_username: Option<String>,
    /// SMTP AUTH password.
    pub auth_password: Option<Secret>,
    /// A file holding it (read at each send).
    pub auth_password_file: Option<PathBuf>,
    /// Require STARTTLS (default: `global.smtp_require_tls`, itself true by default).
    pub require_tls: Option<bool>,
    /// The server's certificate: a CA file and the name to check.
    #[serde(default)]
    pub tls_config: TlsConfig,
    /// Extra headers; `Subject`, `To` and `From` replace the defaults (templated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The plain-text body (templated; default: every alert's labels and annotations).
    pub text: Option<String>,
    /// Notify about resolved alerts (default false).
    #[serde(default)]
    pub send_resolved: bool,
    #[serde(default)]
    html: Option<IgnoredAny>,
    #[serde(default)]
    auth_identity: Option<IgnoredAny>,
    #[serde(default)]
    auth_secret: Option<IgnoredAny>,
}

/// `tls_config` of an e-mail receiver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM CA certificates to trust besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The name the certificate must carry (default: the smarthost's host).
    pub server_name: Option<String>,
}

/// `exec_configs[]` (LogFlux's own): run `command` with the webhook JSON on stdin; a non-zero
/// exit is a failure.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecConfig {
    /// argv: the program and its arguments (no shell).
    pub command: Vec<String>,
    /// Notify about resolved alerts (default true, as the webhook).
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Killed after this long (default 30s).
    #[serde(default)]
    pub timeout: Option<PromDuration>,
}

/// A problem found in the file, with the field's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `route.routes[0].matchers[1]`.
    pub path: String,
    /// What is wrong, and what to do.
    pub message: String,
}

/// Why a receivers file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiversConfigError {
    /// The file could not be read.
    #[error("cannot read receivers file {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The file has problems (each with its field's path).
    #[error("{}", render_problems(origin, problems))]
    Invalid {
        /// The file's name.
        origin: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn render_problems(origin: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{origin}: {}: {}", p.path, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A receivers file, checked: what the notifier runs on, and what was ignored.
#[derive(Debug, Clone)]
pub struct LoadedReceivers {
    /// The file as written.
    pub config: ReceiversConfig,
    /// Fields accepted but ignored (each a sentence naming the field).
    pub warnings: Vec<String>,
}

impl ReceiversConfig {
    /// Reads and checks the receivers file at `path`.
    pub fn load(path: &Path) -> Result<LoadedReceivers, ReceiversConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ReceiversConfigError::Read {
            path: path.display().to_string(),
            error,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and checks a receivers file's text; `origin` names it in errors. `${VAR}` is
    /// not expanded: Alertmanager does not expand it either, and `$` is common in passwords.
    pub fn parse(text: &str, origin: &str) -> Result<LoadedReceivers, ReceiversConfigError> {
        let invalid = |problems| ReceiversConfigError::Invalid {
            origin: origin.to_owned(),
            problems,
        };
        let config: ReceiversConfig =
            logflux_config::parse_yaml(text, origin).map_err(|e| match e {
                logflux_config::ConfigError::Field { path, message, .. } => {
                    invalid(vec![Problem { path, message }])
                }
                other => invalid(vec![Problem {
                    path: "(top level)".to_owned(),
                    message: other.to_string(),
                }]),
            })?;
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        config.check(&mut problems, &mut warnings);
        if problems.is_empty() {
            for w in &warnings {
                tracing::warn!(file = origin, "{w}");
            }
            Ok(LoadedReceivers { config, warnings })
        } else {
            Err(invalid(problems))
        }
    }

    fn check(&self, problems: &mut Vec<Problem>, warnings: &mut Vec<String>) {
        let mut bad = |path: String, message: String| problems.push(Problem { path, message });
        if self.templates.is_some() {
            bad(
                "templates".into(),
                "not supported: LogFlux does not run Alertmanager's template files; write the \
                 text in the receiver's `title`/`text` (see docs/alerts.md)"
                    .into(),
            );
        }
        for (field, v) in [
            ("inhibit_rules", &self.inhibit_rules),
            ("time_intervals", &self.time_intervals),
            ("mute_time_intervals", &self.mute_time_intervals),
        ] {
            if v.is_some() {
                warnings.push(format!(
                    "{field}: not supported, ignored (every alert is notified as if it were absent)"
                ));
            }
        }
        let names: Vec<&str> = self.receivers.iter().map(|r| r.name.as_str()).collect();
        for (i, r) in self.receivers.iter().enumerate() {
            let at = format!("receivers[{i}]");
            if r.name.is_empty() {
                bad(format!("{at}.name"), "must not be empty".into());
            }
            if names.iter().filter(|n| **n == r.name).count() > 1 {
                bad(
                    format!("{at}.name"),
                    format!("receiver {:?} is defined more than once", r.name),
                );
            }
            r.check(&at, &self.global, &mut bad);
        }
        if self.route.receiver.is_none() {
            bad(
                "route.receiver".into(),
                "the root route must name a receiver".into(),
            );
        }
        if !self.route.matchers.is_empty()
            || !self.route.match_eq.is_empty()
            || !self.route.match_re.is_empty()
        {
            bad(
                "route".into(),
                "the root route matches every alert; it must not have matchers".into(),
            );
        }
        check_route(&self.route, "route", &names, &mut bad, warnings);
    }
}

fn check_route(
    r: &RouteConfig,
    at: &str,
    receivers: &[&str],
    bad: &mut impl FnMut(String, String),
    warnings: &mut Vec<String>,
) {
    if let Some(name) = &r.receiver
        && !receivers.contains(&name.as_str())
    {
        bad(
            format!("{at}.receiver"),
            format!(
                "no receiver is named {name:?} (receivers: {})",
                receivers.join(", ")
            ),
        );
    }
    if let Some(g) = &r.group_by
        && g.iter().any(|l| l == "...")
        && g.len() > 1
    {
        bad(
            format!("{at}.group_by"),
            "'...' (group by all labels) must be alone".into(),
        );
    }
    for (field, d) in [
        ("group_interval", r.group_interval),
        ("repeat_interval", r.repeat_interval),
    ] {
        if d.is_some_and(|d| d.0.is_zero()) {
            bad(format!("{at}.{field}"), "must be more than 0".into());
        }
    }
    for (i, m) in r.matchers.iter().enumerate() {
        if let Err(e) = matchers::parse(m) {
            bad(format!("{at}.matchers[{i}]"), e);
        }
    }
    for (k, v) in &r.match_re {
        if let Err(e) = Matcher::regex(k, v, false) {
            bad(format!("{at}.match_re.{k}"), e);
        }
    }
    for (field, v) in [
        ("mute_time_intervals", &r.mute_time_intervals),
        ("active_time_intervals", &r.active_time_intervals),
    ] {
        if v.is_some() {
            warnings.push(format!(
                "{at}.{field}: not supported, ignored (notifications are sent at all times)"
            ));
        }
    }
    for (i, c) in r.routes.iter().enumerate() {
        check_route(c, &format!("{at}.routes[{i}]"), receivers, bad, warnings);
    }
}

impl ReceiverConfig {
    fn check(&self, at: &str, global: &GlobalConfig, bad: &mut impl FnMut(String, String)) {
        for (field, v) in [
            ("discord_configs", &self.discord_configs),
            ("incidentio_configs", &self.incidentio_configs),
            ("jira_configs", &self.jira_configs),
            ("msteams_configs", &self.msteams_configs),
            ("msteamsv2_configs", &self.msteamsv2_configs),
            ("opsgenie_configs", &self.opsgenie_configs),
            ("pagerduty_configs", &self.pagerduty_configs),
            ("pushover_configs", &self.pushover_configs),
            ("rocketchat_configs", &self.rocketchat_configs),
            ("sns_configs", &self.sns_configs),
            ("telegram_configs", &self.telegram_configs),
            ("victorops_configs", &self.victorops_configs),
            ("webex_configs", &self.webex_configs),
            ("wechat_configs", &self.wechat_configs),
        ] {
            if v.is_some() {
                bad(
                    format!("{at}.{field}"),
                    "not supported: LogFlux sends webhook_configs, slack_configs, email_configs \
                     and exec_configs (a webhook_configs receiver can forward to Alertmanager \
                     itself)"
                        .into(),
                );
            }
        }
        let http_config = "not supported: LogFlux sends without extra HTTP settings (put a \
                           token in the URL, or use exec_configs)";
        for (i, w) in self.webhook_configs.iter().enumerate() {
            let at = format!("{at}.webhook_configs[{i}]");
            if w.http_config.is_some() {
                bad(format!("{at}.http_config"), http_config.into());
            }
            match (&w.url, &w.url_file) {
                (Some(_), Some(_)) => bad(at, "set url or url_file, not both".into()),
                (None, None) => bad(format!("{at}.url"), "missing (or set url_file)".into()),
                (Some(u), None) => {
                    if let Err(e) = check_url(u.expose()) {
                        bad(format!("{at}.url"), e);
                    }
                }
                (None, Some(_)) => {}
            }
        }
        for (i, s) in self.slack_configs.iter().enumerate() {
            let at = format!("{at}.slack_configs[{i}]");
            if s.http_config.is_some() {
                bad(format!("{at}.http_config"), http_config.into());
            }
            let url = s.api_url.as_ref().or(global.slack_api_url.as_ref());
            let file = s
                .api_url_file
                .as_ref()
                .or(global.slack_api_url_file.as_ref());
            if url.is_none() && file.is_none() {
                bad(
                    format!("{at}.api_url"),
                    "missing (set it, api_url_file, or global.slack_api_url)".into(),
                );
            }
            if let Some(u) = url
                && let Err(e) = check_url(u.expose())
            {
                bad(format!("{at}.api_url"), e);
            }
            for (field, t) in [
                ("title", &s.title),
                ("title_link", &s.title_link),
                ("text", &s.text),
                ("color", &s.color),
                ("channel", &s.channel),
                ("username", &s.username),
            ] {
                if let Some(t) = t
                    && let Err(e) = Template::parse(t)
                {
                    bad(format!("{at}.{field}"), e);
                }
            }
        }
        for (i, e) in self.email_configs.iter().enumerate() {
            let at = format!("{at}.email_configs[{i}]");
            for (field, v) in [
                ("html", &e.html),
                ("auth_identity", &e.auth_identity),
                ("auth_secret", &e.auth_secret),
            ] {
                if v.is_some() {
                    bad(
                        format!("{at}.{field}"),
                        "not supported: LogFlux sends plain-text mail with AUTH PLAIN/LOGIN \
                         (username and password)"
                            .into(),
                    );
                }
            }
            if e.to.as_deref().is_none_or(|t| t.trim().is_empty())
                && !e.headers.keys().any(|k| k.eq_ignore_ascii_case("to"))
            {
                bad(
                    format!("{at}.to"),
                    "missing: who should receive the mail?".into(),
                );
            }
            if e.from.is_none() && global.smtp_from.is_none() {
                bad(
                    format!("{at}.from"),
                    "missing (set it, or global.smtp_from)".into(),
                );
            }
            match e.smarthost.as_ref().or(global.smtp_smarthost.as_ref()) {
                None => bad(
                    format!("{at}.smarthost"),
                    "missing (set it, or global.smtp_smarthost)".into(),
                ),
                Some(h) => {
                    if let Err(m) = split_host_port(h) {
                        bad(format!("{at}.smarthost"), m);
                    }
                }
            }
            if e.auth_password.is_some() && e.auth_password_file.is_some() {
                bad(
                    format!("{at}.auth_password"),
                    "set auth_password or auth_password_file, not both".into(),
                );
            }
            for (k, v) in &e.headers {
                if let Err(m) = Template::parse(v) {
                    bad(format!("{at}.headers.{k}"), m);
                }
            }
            if let Some(t) = &e.text
                && let Err(m) = Template::parse(t)
            {
                bad(format!("{at}.text"), m);
            }
        }
        for (i, x) in self.exec_configs.iter().enumerate() {
            let at = format!("{at}.exec_configs[{i}]");
            if x.command.first().is_none_or(String::is_empty) {
                bad(
                    format!("{at}.command"),
                    "missing: the program and its arguments, as a list".into(),
                );
            }
            if x.timeout.is_some_and(|d| d.0.is_zero()) {
                bad(format!("{at}.timeout"), "must be more than 0".into());
            }
        }
    }
}

fn check_url(u: &str) -> Result<(), String> {
    // The URL is a secret: the message says what is wrong without repeating it.
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
        Ok(_) => Err("must be an http:// or https:// URL".into()),
        Err(e) => Err(format!("not a URL ({e})")),
    }
}

/// `host:port` → (host, port).
pub(crate) fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} has no port (write host:port, e.g. smtp.example.com:587)"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: the port is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> String {
        match ReceiversConfig::parse(text, "r.yml") {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn durations_as_prometheus_writes_them() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(2 * 86_400)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "5", "m", "30m1h", "1.5h", "5 m", "1h1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let c = ReceiversConfig::parse(
            "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs: [{url: 'http://x/'}]\n  slack_configs: [{api_url: 'https://hooks.example/x'}]\n  email_configs: [{to: a@b, from: c@d, smarthost: 'h:25'}]\n",
            "r.yml",
        )
        .unwrap()
        .config;
        assert!(c.global.smtp_require_tls);
        assert_eq!(c.global.resolve_timeout.0, Duration::from_secs(300));
        assert_eq!(c.global.retry_for.0, Duration::from_secs(600));
        let r = &c.receivers[0];
        assert!(r.webhook_configs[0].send_resolved);
        assert!(!r.slack_configs[0].send_resolved);
        assert!(!r.email_configs[0].send_resolved);
        assert_eq!(r.email_configs[0].require_tls, None);
    }

    #[test]
    fn unknown_fields_are_refused_with_their_path() {
        let e = errors(
            "route:\n  receiver: r\n  routes:\n  - receiver: r\n    group_byy: [a]\nreceivers: [{name: r}]\n",
        );
        assert!(
            e.starts_with("r.yml: route.routes[0].group_byy: unknown field `group_byy`"),
            "{e}"
        );
        let e = errors(
            "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs: [{url: 'http://x', sendresolved: true}]\n",
        );
        assert!(
            e.starts_with(
                "r.yml: receivers[0].webhook_configs[0].sendresolved: unknown field `sendresolved`"
            ),
            "{e}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let e = errors(
            "route:\n  receiver: nobody\n  routes:\n  - matchers: ['a=~\"(\"']\n    group_by: ['...', a]\nreceivers:\n- name: r\n  pagerduty_configs: [{routing_key: x}]\n  email_configs: [{to: a@b}]\ntemplates: ['x.tmpl']\n",
        );
        for want in [
            "r.yml: templates: not supported",
            "r.yml: receivers[0].pagerduty_configs: not supported",
            "r.yml: receivers[0].email_configs[0].from: missing",
            "r.yml: receivers[0].email_configs[0].smarthost: missing",
            "r.yml: route.receiver: no receiver is named \"nobody\"",
            "r.yml: route.routes[0].matchers[0]: ",
            "r.yml: route.routes[0].group_by: '...'",
        ] {
            assert!(e.contains(want), "{want:?} not in:\n{e}");
        }
    }

    #[test]
    fn ignored_sections_are_warned_about() {
        let l = ReceiversConfig::parse(
            "route: {receiver: r, mute_time_intervals: [night]}\nreceivers: [{name: r}]\ninhibit_rules:\n- source_matchers: [a=b]\n  target_matchers: [c=d]\ntime_intervals: []\n",
            "r.yml",
        )
        .unwrap();
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(l.warnings[0].starts_with("inhibit_rules: not supported, ignored"));
        assert!(l.warnings[2].starts_with("route.mute_time_intervals"));
    }

    #[test]
    fn a_numeric_password_is_a_password_and_never_echoed() {
        let l = ReceiversConfig::parse(
            "global: {smtp_auth_password: 123456}\nroute: {receiver: r}\nreceivers: [{name: r}]\n",
            "r.yml",
        )
        .unwrap();
        assert_eq!(
            l.config
                .global
                .smtp_auth_password
                .as_ref()
                .map(Secret::expose),
            Some("123456")
        );
        let e = errors(
            "global: {smtp_auth_password: [987654]}\nroute: {receiver: r}\nreceivers: [{name: r}]\n",
        );
        assert!(!e.contains("987654"), "{e}");
        assert!(e.contains("global.smtp_auth_password"), "{e}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let l = ReceiversConfig::parse(
            "global: {smtp_auth_password: hunter2, slack_api_url: 'https://hooks.example/T0/SECRETPATH'}\nroute: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs: [{url: 'http://x/tok3n'}]\n",
            "r.yml",
        )
        .unwrap();
        let dbg = format!("{:?}", l.config);
        for s in ["hunter2", "SECRETPATH", "tok3n"] {
            assert!(!dbg.contains(s), "{s} in {dbg}");
        }
        let e = errors(
            "route: {receiver: r}\nreceivers:\n- name: r\n  webhook_configs: [{url: 'ftp://x/tok3n'}]\n",
        );
        assert!(!e.contains("tok3n"), "{e}");
    }
}
