//! The four ways a notification leaves: Alertmanager's webhook, Slack's incoming webhook,
//! e-mail over SMTP (STARTTLS required by default) and a local command. Errors never carry a
//! URL or a password: they end up in logs and in the dead-letter log.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::config::{
    EmailConfig, ExecConfig, GlobalConfig, ReceiverConfig, Secret, SlackConfig, WebhookConfig,
    split_host_port,
};
use super::payload::Notification;
use super::template::Template;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which kind of integration (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntegrationKind {
    /// `webhook_configs`.
    Webhook,
    /// `slack_configs`.
    Slack,
    /// `email_configs`.
    Email,
    /// `exec_configs`.
    Exec,
}

impl IntegrationKind {
    /// The name used in metrics' labels and logs: `webhook`, `slack`, `email`, `exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Email => "email",
            Self::Exec => "exec",
        }
    }
}

/// Why a send failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub(crate) struct SendError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

impl SendError {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
    fn fatal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// A URL given in the file or read from a file at each send (so a rotated token is picked up).
#[derive(Debug, Clone)]
enum UrlSource {
    Inline(Secret),
    File(PathBuf),
}

impl UrlSource {
    async fn get(&self) -> Result<Secret, SendError> {
        match self {
            Self::Inline(s) => Ok(s.clone()),
            Self::File(p) => tokio::fs::read_to_string(p)
                .await
                .map(|s| Secret::new(s.trim()))
                .map_err(|e| SendError::retry(format!("cannot read {}: {e}", p.display()))),
        }
    }
}

#[derive(Debug)]
struct Webhook {
    url: UrlSource,
    max_alerts: usize,
    timeout: Duration,
}

#[derive(Debug)]
struct Slack {
    url: UrlSource,
    channel: Option<Template>,
    username: Option<Template>,
    icon_emoji: Option<String>,
    icon_url: Option<String>,
    title: Option<Template>,
    title_link: Option<Template>,
    text: Option<Template>,
    color: Option<Template>,
}

#[derive(Debug)]
struct Email {
    to: Option<String>,
    from: String,
    hello: Option<String>,
    host: String,
    port: u16,
    username: Option<String>,
    password: Option<Secret>,
    password_file: Option<PathBuf>,
    require_tls: bool,
    ca_file: Option<PathBuf>,
    server_name: Option<String>,
    headers: Vec<(String, Template)>,
    text: Option<Template>,
}

#[derive(Debug)]
struct Exec {
    argv: Vec<String>,
    timeout: Duration,
}

#[derive(Debug)]
enum Kind {
    Webhook(Webhook),
    Slack(Box<Slack>),
    Email(Box<Email>),
    Exec(Exec),
    /// The dispatcher's unit tests: hands each notification to the test, failing the first
    /// `failures` tries.
    #[cfg(test)]
    Capture {
        tx: tokio::sync::mpsc::UnboundedSender<Notification>,
        failures: std::sync::atomic::AtomicUsize,
    },
}

/// One configured integration of a receiver.
#[derive(Debug)]
pub(crate) struct Integration {
    kind: Kind,
    pub(crate) send_resolved: bool,
}

fn template(t: Option<&String>) -> Option<Template> {
    // Checked when the file was loaded.
    t.and_then(|t| Template::parse(t).ok())
}

fn url_source(inline: Option<&Secret>, file: Option<&PathBuf>) -> Option<UrlSource> {
    inline
        .cloned()
        .map(UrlSource::Inline)
        .or_else(|| file.cloned().map(UrlSource::File))
}

/// A receiver's integrations, in the file's order (webhook, Slack, e-mail, exec).
pub(crate) fn build(r: &ReceiverConfig, g: &GlobalConfig) -> Vec<Integration> {
    let mut out = Vec::new();
    for w in &r.webhook_configs {
        out.push(webhook(w));
    }
    for s in &r.slack_configs {
        out.push(slack(s, g));
    }
    for e in &r.email_configs {
        out.push(email(e, g));
    }
    for x in &r.exec_configs {
        out.push(exec(x));
    }
    out
}

fn webhook(w: &WebhookConfig) -> Integration {
    Integration {
        kind: Kind::Webhook(Webhook {
            url: url_source(w.url.as_ref(), w.url_file.as_ref())
                .unwrap_or_else(|| UrlSource::File(PathBuf::new())),
            max_alerts: w.max_alerts,
            timeout: w.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        }),
        send_resolved: w.send_resolved,
    }
}

fn slack(s: &SlackConfig, g: &GlobalConfig) -> Integration {
    let url = url_source(s.api_url.as_ref(), s.api_url_file.as_ref())
        .or_else(|| url_source(g.slack_api_url.as_ref(), g.slack_api_url_file.as_ref()))
        .unwrap_or_else(|| UrlSource::File(PathBuf::new()));
    Integration {
        kind: Kind::Slack(Box::new(Slack {
            url,
            channel: template(s.channel.as_ref()),
            username: template(s.username.as_ref()),
            icon_emoji: s.icon_emoji.clone(),
            icon_url: s.icon_url.clone(),
            title: template(s.title.as_ref()),
            title_link: template(s.title_link.as_ref()),
            text: template(s.text.as_ref()),
            color: template(s.color.as_ref()),
        })),
        send_resolved: s.send_resolved,
    }
}

fn email(e: &EmailConfig, g: &GlobalConfig) -> Integration {
    let smarthost = e
        .smarthost
        .clone()
        .or_else(|| g.smtp_smarthost.clone())
        .unwrap_or_default();
    // Checked when the file was loaded.
    let (host, port) = split_host_port(&smarthost).unwrap_or_default();
    let (password, password_file) = if e.auth_password.is_some() || e.auth_password_file.is_some() {
        (e.auth_password.clone(), e.auth_password_file.clone())
    } else {
        (
            g.smtp_auth_password.clone(),
            g.smtp_auth_password_file.clone(),
        )
    };
    Integration {
        kind: Kind::Email(Box::new(Email {
            to: e.to.clone(),
            from: e
                .from
                .clone()
                .or_else(|| g.smtp_from.clone())
                .unwrap_or_default(),
            hello: e.hello.clone().or_else(|| g.smtp_hello.clone()),
            host,
            port,
            username: e
                .auth_username
                .clone()
                .or_else(|| g.smtp_auth_username.clone()),
            password,
            password_file,
            require_tls: e.require_tls.unwrap_or(g.smtp_require_tls),
            ca_file: e.tls_config.ca_file.clone(),
            server_name: e.tls_config.server_name.clone(),
            headers: e
                .headers
                .iter()
                .filter_map(|(k, v)| Template::parse(v).ok().map(|t| (k.clone(), t)))
                .collect(),
            text: template(e.text.as_ref()),
        })),
        send_resolved: e.send_resolved,
    }
}

fn exec(x: &ExecConfig) -> Integration {
    Integration {
        kind: Kind::Exec(Exec {
            argv: x.command.clone(),
            timeout: x.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        }),
        send_resolved: x.send_resolved,
    }
}

impl Integration {
    #[cfg(test)]
    pub(crate) fn capture(
        tx: tokio::sync::mpsc::UnboundedSender<Notification>,
        failures: usize,
        send_resolved: bool,
    ) -> Self {
        Self {
            kind: Kind::Capture {
                tx,
                failures: failures.into(),
            },
            send_resolved,
        }
    }

    pub(crate) fn kind(&self) -> IntegrationKind {
        match self.kind {
            #[cfg(test)]
            Kind::Capture { .. } => IntegrationKind::Webhook,
            Kind::Webhook(_) => IntegrationKind::Webhook,
            Kind::Slack(_) => IntegrationKind::Slack,
            Kind::Email(_) => IntegrationKind::Email,
            Kind::Exec(_) => IntegrationKind::Exec,
        }
    }

    /// One attempt.
    pub(crate) async fn send(
        &self,
        n: &Notification,
        http: &reqwest::Client,
    ) -> Result<(), SendError> {
        match &self.kind {
            Kind::Webhook(w) => {
                let url = w.url.get().await?;
                post_json(http, &url, &n.webhook_json(w.max_alerts), w.timeout).await
            }
            Kind::Slack(s) => {
                let url = s.url.get().await?;
                post_json(http, &url, &slack_body(s, n), DEFAULT_TIMEOUT).await
            }
            Kind::Email(e) => send_email(e, n).await,
            Kind::Exec(x) => run(x, n).await,
            #[cfg(test)]
            Kind::Capture { tx, failures } => {
                use std::sync::atomic::Ordering;
                if failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                    .is_ok()
                {
                    return Err(SendError::retry("the receiver is down"));
                }
                let _ = tx.send(n.clone());
                Ok(())
            }
        }
    }
}

async fn post_json(
    http: &reqwest::Client,
    url: &Secret,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(), SendError> {
    let resp = http
        .post(url.expose())
        .timeout(timeout)
        .json(body)
        .send()
        .await
        // reqwest's message would carry the URL, which is a secret.
        .map_err(|e| SendError::retry(format!("request failed: {}", e.without_url())))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let msg = format!("the receiver answered {status}");
    // As Alertmanager: a 4xx other than 408 and 429 will not get better by retrying.
    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        Err(SendError::fatal(msg))
    } else {
        Err(SendError::retry(msg))
    }
}

fn slack_body(s: &Slack, n: &Notification) -> serde_json::Value {
    n.with_template_data(|d| {
        let title = s
            .title
            .as_ref()
            .map_or_else(|| n.default_title(), |t| t.render(d));
        let mut text = s
            .text
            .as_ref()
            .map_or_else(|| n.default_text(), |t| t.render(d));
        text.push_str(&n.lines_text());
        let color = s.color.as_ref().map_or_else(
            || {
                if n.firing() > 0 {
                    "danger".to_owned()
                } else {
                    "good".to_owned()
                }
            },
            |t| t.render(d),
        );
        let mut attachment = json!({
            "title": title,
            "text": text,
            "fallback": title,
            "color": color,
            "mrkdwn_in": ["text"],
        });
        if let (Some(t), Some(o)) = (&s.title_link, attachment.as_object_mut()) {
            o.insert("title_link".into(), json!(t.render(d)));
        }
        let mut body = json!({ "attachments": [attachment] });
        if let Some(o) = body.as_object_mut() {
            if let Some(c) = &s.channel {
                o.insert("channel".into(), json!(c.render(d)));
            }
            if let Some(u) = &s.username {
                o.insert("username".into(), json!(u.render(d)));
            }
            if let Some(i) = &s.icon_emoji {
                o.insert("icon_emoji".into(), json!(i));
            }
            if let Some(i) = &s.icon_url {
                o.insert("icon_url".into(), json!(i));
            }
        }
        body
    })
}

async fn send_email(e: &Email, n: &Notification) -> Result<(), SendError> {
    let (subject, to, from, extra, body) = n.with_template_data(|d| {
        let mut subject = n.default_title();
        let mut to = e.to.clone().unwrap_or_default();
        let mut from = e.from.clone();
        let mut extra = Vec::new();
        for (k, t) in &e.headers {
            let v = t.render(d);
            match k.to_ascii_lowercase().as_str() {
                "subject" => subject = v,
                "to" => to = v,
                "from" => from = v,
                _ => extra.push((k.clone(), v)),
            }
        }
        let mut body = e
            .text
            .as_ref()
            .map_or_else(|| n.default_text(), |t| t.render(d));
        body.push_str(&n.lines_text());
        (subject, to, from, extra, body)
    });
    let bad = |what: &str, e: &dyn std::fmt::Display| SendError::fatal(format!("{what}: {e}"));
    let from: Mailbox = from.parse().map_err(|x| bad("bad from address", &x))?;
    let to: Mailboxes = to.parse().map_err(|x| bad("bad to address", &x))?;
    let mut m = Message::builder()
        .from(from)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for mb in to {
        m = m.to(mb);
    }
    for (k, v) in extra {
        let name = HeaderName::new_from_ascii(k.clone()).map_err(|x| bad("bad header name", &x))?;
        m = m.raw_header(HeaderValue::new(name, v));
    }
    let msg = m.body(body).map_err(|x| bad("cannot build the mail", &x))?;

    let mut tls = TlsParameters::builder(e.server_name.clone().unwrap_or_else(|| e.host.clone()));
    if let Some(ca) = &e.ca_file {
        let pem = tokio::fs::read(ca)
            .await
            .map_err(|x| SendError::retry(format!("cannot read {}: {x}", ca.display())))?;
        let cert = Certificate::from_pem(&pem).map_err(|x| bad("bad tls_config.ca_file", &x))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls
        .build_rustls()
        .map_err(|x| bad("cannot set up TLS", &x))?;
    let tls = if e.port == 465 {
        Tls::Wrapper(tls)
    } else if e.require_tls {
        Tls::Required(tls)
    } else {
        Tls::Opportunistic(tls)
    };
    let mut t = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(e.host.clone())
        .port(e.port)
        .tls(tls)
        .timeout(Some(DEFAULT_TIMEOUT));
    if let Some(h) = &e.hello {
        t = t.hello_name(ClientId::Domain(h.clone()));
    }
    if let Some(user) = &e.username {
        let password = match (&e.password, &e.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => tokio::fs::read_to_string(f)
                .await
                .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
                .map_err(|x| SendError::retry(format!("cannot read {}: {x}", f.display())))?,
            (None, None) => Secret::new(""),
        };
        t = t.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    match t.build().send(msg).await {
        Ok(_) => Ok(()),
        Err(x) if x.is_permanent() => Err(SendError::fatal(format!("SMTP: {x}"))),
        Err(x) => Err(SendError::retry(format!("SMTP: {x}"))),
    }
}

async fn run(x: &Exec, n: &Notification) -> Result<(), SendError> {
    let body = serde_json::to_vec(&n.webhook_json(0))
        .map_err(|e| SendError::fatal(format!("cannot encode: {e}")))?;
    let mut child = tokio::process::Command::new(&x.argv[0])
        .args(&x.argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| SendError::retry(format!("cannot run {}: {e}", x.argv[0])))?;
    let stdin = child.stdin.take();
    // Written while the command runs and its stderr is read, so a command that writes much
    // before it reads cannot block both sides.
    let write = async move {
        if let Some(mut s) = stdin {
            // A command that does not read its input is its own business: not a failure.
            let _ = s.write_all(&body).await;
        }
    };
    let work = async move { tokio::join!(write, child.wait_with_output()).1 };
    match tokio::time::timeout(x.timeout, work).await {
        Err(_) => Err(SendError::retry(format!(
            "{} did not finish within {:?} (killed)",
            x.argv[0], x.timeout
        ))),
        Ok(Err(e)) => Err(SendError::retry(format!("{}: {e}", x.argv[0]))),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            tracing::debug!(
                command = %x.argv[0],
                stderr = %String::from_utf8_lossy(&out.stderr).chars().take(500).collect::<String>(),
                "notification command failed"
            );
            Err(SendError::retry(format!(
                "{} exited with {}",
                x.argv[0], out.status
            )))
        }
    }
}
