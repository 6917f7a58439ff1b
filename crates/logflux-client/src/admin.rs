//! `logflux admin …`: everything the server's admin API offers, for the token's tenant.
//! Tenants themselves are created by the server's operator (`logflux-server tenants create`);
//! `admin tenant` shows the one this token belongs to.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::EXIT_OK;
use crate::api::Api;
use crate::config::Settings;
use crate::when::parse_when;

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// The token's tenant: id, token name, scopes, expiry, public key fingerprint.
    Tenant,
    /// Applications.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Ingest API keys (per application).
    #[command(name = "api-keys", subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Personal access tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The tenant public key that agents and SDKs wrap data keys to.
    #[command(name = "public-key", subcommand)]
    PublicKey(PublicKeyCommand),
    /// Set an application's retention.
    Retention {
        /// Application name or id.
        app: String,
        /// Days to keep entries; `none` keeps them until erased.
        days: String,
    },
    /// Erase every record of an application overlapping a time range (whole records).
    Erase {
        /// Application name or id.
        #[arg(long)]
        app: String,
        /// Start of the range (duration back from now, RFC 3339 or date).
        #[arg(long)]
        since: String,
        /// End of the range (default: now).
        #[arg(long, default_value = "now")]
        until: String,
        /// Confirms the erasure (it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
    /// The audit log, newest first.
    Audit {
        /// Most events to show.
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: u32,
        /// Events before this event id (for paging).
        #[arg(long)]
        before: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AppsCommand {
    List,
    Create { name: String },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ApiKeysCommand {
    List,
    /// Create a key; it is printed once, on standard output.
    Create {
        /// Application name or id.
        #[arg(long)]
        app: String,
        /// A name for the key (who uses it).
        #[arg(long)]
        name: String,
        /// Region prefix of the key (eu, us, ca, au, ap).
        #[arg(long)]
        region: Option<String>,
        /// Refuse requests from this key unless signed (X-LF-Signature).
        #[arg(long)]
        signature_required: bool,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokensCommand {
    List,
    /// Create a token; it is printed once, on standard output.
    Create {
        #[arg(long)]
        name: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read")]
        scopes: String,
        /// Days until it expires (default: the server's, 90).
        #[arg(long)]
        expires_in_days: Option<i64>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PublicKeyCommand {
    /// Print the tenant public key (PEM) and its fingerprint.
    Get,
    /// Upload a PEM public key (e.g. public_key.pem from `logflux keys generate`).
    Set { file: PathBuf },
}

/// A path segment, percent-encoded (names may hold any character).
fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn ns_text(v: &Value) -> String {
    v.as_i64()
        .map(crate::output::short_time)
        .unwrap_or_else(|| "-".into())
}

fn s(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Prints rows as aligned columns.
fn table(headers: &[&str], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(
        out,
        "{}",
        line(headers.iter().map(|h| h.to_uppercase()).collect())
    )?;
    for r in rows {
        writeln!(out, "{}", line(r))?;
    }
    Ok(())
}

pub(crate) async fn run(settings: &Settings, cmd: AdminCommand) -> anyhow::Result<i32> {
    let api = Api::new(settings)?;
    match cmd {
        AdminCommand::Tenant => {
            let me = api.me().await?;
            let key = api.call(Method::GET, "/v1/admin/public-key", None).await;
            println!("tenant       {}", me.tenant_id);
            println!("token        {}", me.token_name);
            println!("scopes       {}", me.scopes.join(" "));
            println!("expires      {}", crate::output::short_time(me.expires_ns));
            match key {
                Ok(k) => println!("public key   {}", s(&k["fingerprint"])),
                Err(e) => println!("public key   ({e:#})"),
            }
        }
        AdminCommand::Apps(AppsCommand::List) => {
            let v = api.get_json("/v1/admin/applications").await?;
            let rows = v["applications"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|a| {
                    vec![
                        s(&a["id"]),
                        s(&a["name"]),
                        a["retention_days"]
                            .as_i64()
                            .map_or("forever".into(), |d| format!("{d} d")),
                        ns_text(&a["created_ns"]),
                    ]
                })
                .collect();
            table(&["id", "name", "retention", "created"], rows)?;
        }
        AdminCommand::Apps(AppsCommand::Create { name }) => {
            let v = api
                .call(
                    Method::POST,
                    "/v1/admin/applications",
                    Some(&json!({"name": name})),
                )
                .await?;
            println!("created application {} ({})", s(&v["name"]), s(&v["id"]));
        }
        AdminCommand::ApiKeys(ApiKeysCommand::List) => {
            let v = api.get_json("/v1/admin/api-keys").await?;
            let rows = v["api_keys"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|k| {
                    vec![
                        s(&k["id"]),
                        s(&k["name"]),
                        s(&k["application_id"]),
                        format!("{}…", s(&k["prefix"])),
                        if k["signature_required"] == true {
                            "yes"
                        } else {
                            "no"
                        }
                        .into(),
                        ns_text(&k["last_used_ns"]),
                        if k["revoked_ns"].is_null() {
                            "active".into()
                        } else {
                            "revoked".into()
                        },
                    ]
                })
                .collect();
            table(
                &[
                    "id",
                    "name",
                    "application",
                    "prefix",
                    "signed",
                    "last used",
                    "state",
                ],
                rows,
            )?;
        }
        AdminCommand::ApiKeys(ApiKeysCommand::Create {
            app,
            name,
            region,
            signature_required,
        }) => {
            let mut body =
                json!({"application": app, "name": name, "signature_required": signature_required});
            if let Some(r) = region {
                body["region"] = json!(r);
            }
            let v = api
                .call(Method::POST, "/v1/admin/api-keys", Some(&body))
                .await?;
            eprintln!(
                "created API key {} for {}; it is shown once, here:",
                s(&v["id"]),
                s(&v["application_id"])
            );
            println!("{}", s(&v["api_key"]));
        }
        AdminCommand::ApiKeys(ApiKeysCommand::Revoke { id }) => {
            api.call(
                Method::DELETE,
                &format!("/v1/admin/api-keys/{}", seg(&id)),
                None,
            )
            .await?;
            println!("revoked API key {id}");
        }
        AdminCommand::Tokens(TokensCommand::List) => {
            let v = api.get_json("/v1/admin/tokens").await?;
            let rows = v["tokens"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|t| {
                    vec![
                        s(&t["id"]),
                        s(&t["name"]),
                        t["scopes"]
                            .as_array()
                            .map(|a| a.iter().map(s).collect::<Vec<_>>().join(","))
                            .unwrap_or_default(),
                        ns_text(&t["expires_ns"]),
                        ns_text(&t["last_used_ns"]),
                        if t["revoked_ns"].is_null() {
                            "active".into()
                        } else {
                            "revoked".into()
                        },
                    ]
                })
                .collect();
            table(
                &["id", "name", "scopes", "expires", "last used", "state"],
                rows,
            )?;
        }
        AdminCommand::Tokens(TokensCommand::Create {
            name,
            scopes,
            expires_in_days,
        }) => {
            let scopes: Vec<&str> = scopes.split(',').map(str::trim).collect();
            let mut body = json!({"name": name, "scopes": scopes});
            if let Some(d) = expires_in_days {
                body["expires_in_days"] = json!(d);
            }
            let v = api
                .call(Method::POST, "/v1/admin/tokens", Some(&body))
                .await?;
            eprintln!(
                "created token {} (expires {}); it is shown once, here:",
                s(&v["id"]),
                ns_text(&v["expires_ns"])
            );
            println!("{}", s(&v["token"]));
        }
        AdminCommand::Tokens(TokensCommand::Revoke { id }) => {
            api.call(
                Method::DELETE,
                &format!("/v1/admin/tokens/{}", seg(&id)),
                None,
            )
            .await?;
            println!("revoked token {id}");
        }
        AdminCommand::PublicKey(PublicKeyCommand::Get) => {
            let v = api.get_json("/v1/admin/public-key").await?;
            eprintln!("fingerprint {}", s(&v["fingerprint"]));
            print!("{}", s(&v["public_key_pem"]));
        }
        AdminCommand::PublicKey(PublicKeyCommand::Set { file }) => {
            let pem = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            // Checked here first: a private key must never be sent.
            let key = logflux_crypto::PublicKey::from_pem(&pem)
                .with_context(|| format!("{} is not a PEM public key", file.display()))?;
            let v = api
                .call(
                    Method::PUT,
                    "/v1/admin/public-key",
                    Some(&json!({"public_key_pem": key.to_pem()})),
                )
                .await?;
            println!("public key set: {}", s(&v["fingerprint"]));
        }
        AdminCommand::Retention { app, days } => {
            let days: Value = if days == "none" {
                Value::Null
            } else {
                json!(days.parse::<i64>().context("days: a number, or none")?)
            };
            let v = api
                .call(
                    Method::PUT,
                    &format!("/v1/admin/applications/{}/retention", seg(&app)),
                    Some(&json!({"days": days})),
                )
                .await?;
            println!(
                "{}: retention {}",
                s(&v["name"]),
                v["retention_days"]
                    .as_i64()
                    .map_or("forever".into(), |d| format!("{d} days"))
            );
        }
        AdminCommand::Erase {
            app,
            since,
            until,
            yes,
        } => {
            let now = logflux_proto::timefmt::now_ns();
            let from = parse_when(&since, now, &chrono::Local).context("--since")?;
            let to = parse_when(&until, now, &chrono::Local).context("--until")?;
            if !yes {
                anyhow::bail!(
                    "erasing {app} from {} to {} cannot be undone: add --yes to confirm",
                    crate::output::short_time(from),
                    crate::output::short_time(to)
                );
            }
            let v = api
                .call(
                    Method::POST,
                    "/v1/admin/erase",
                    Some(&json!({"application": app, "from": from, "to": to})),
                )
                .await?;
            println!(
                "erased {} records ({} segments deleted, {} rewritten)",
                s(&v["records_erased"]),
                s(&v["segments_deleted"]),
                s(&v["segments_rewritten"])
            );
        }
        AdminCommand::Audit { limit, before } => {
            let mut path = format!("/v1/admin/audit?limit={limit}");
            if let Some(b) = before {
                path.push_str(&format!("&before={b}"));
            }
            let v = api.get_json(&path).await?;
            let rows = v["events"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|e| {
                    vec![
                        s(&e["id"]),
                        ns_text(&e["at_ns"]),
                        s(&e["actor"]),
                        s(&e["action"]),
                        s(&e["target"]),
                        s(&e["remote"]),
                    ]
                })
                .collect();
            table(&["id", "at", "actor", "action", "target", "from"], rows)?;
            if let Some(n) = v["next_before"].as_i64() {
                eprintln!("more: --before {n}");
            }
        }
    }
    Ok(EXIT_OK)
}
