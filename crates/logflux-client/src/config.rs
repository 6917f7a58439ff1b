//! Where the client finds its server, token and keys.
//!
//! Sources, later ones winning: the config file's top-level settings, then the selected profile,
//! then environment variables (`LOGFLUX_SERVER`, `LOGFLUX_PAT`, `LOGFLUX_PRIVATE_KEY_FILE`,
//! `LOGFLUX_SEARCH_KEY_FILE`). The file is `--config`, else `$LOGFLUX_CONFIG`, else
//! `$XDG_CONFIG_HOME/logflux/config.yaml` (`~/.config/logflux/config.yaml`); a missing default
//! file is fine, a missing named one is an error. The profile is `--profile`, else
//! `$LOGFLUX_PROFILE`, else the file's `profile`.
//!
//! Keys not configured anywhere are looked for where `logflux keys generate` writes them:
//! `$XDG_CONFIG_HOME/logflux/keys/` (`~/.config/logflux/keys/`), `private_key.pem` and
//! `search.key`, when present (and, like any key file, readable by their owner only).
//!
//! ```yaml
//! profile: prod                 # the default profile
//! profiles:
//!   prod:
//!     server: https://logs.example.com
//!     token_file: ~/.config/logflux/prod.pat      # mode 0600; or $LOGFLUX_PAT
//!     private_key_file: ~/.config/logflux/keys/private_key.pem
//!     search_key_file: ~/.config/logflux/keys/search.key
//!     ca_file: /etc/ssl/corp-root.pem              # an extra trusted root, optional
//!     alert_rules: ~/.config/logflux/rules          # Loki ruler files (docs/alerts.md)
//!     alert_receivers: ~/.config/logflux/alertmanager.yml
//!   local:
//!     server: http://127.0.0.1:8080
//! ```
//!
//! Tokens are never printed: [`Secret`] hides them from `Debug`, and errors name the file or
//! variable they came from, not their value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use logflux_proto::Secret;
use serde::Deserialize;

/// One set of settings; every field optional so that profiles overlay the top level.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    /// The server's base URL.
    pub(crate) server: Option<String>,
    /// A file holding the personal access token (mode 0600).
    pub(crate) token_file: Option<PathBuf>,
    pub(crate) private_key_file: Option<PathBuf>,
    pub(crate) search_key_file: Option<PathBuf>,
    /// A PEM file of extra root certificates to trust.
    pub(crate) ca_file: Option<PathBuf>,
    /// A directory of alert rule files (`logflux alerts run`, `logflux serve`).
    pub(crate) alert_rules: Option<PathBuf>,
    /// The alerts' receivers file (Alertmanager's format, a subset).
    pub(crate) alert_receivers: Option<PathBuf>,
}

/// The `tui:` section: `logflux tui`'s scrollback and highlight rules (docs/tui.md).
///
/// ```yaml
/// tui:
///   scrollback: 100000            # entries kept in memory per pane
///   default_highlights: true      # numbers, IPs, UUIDs, URLs, quoted strings
///   highlight:                    # tried before the defaults
///     - regex: 'user=\w+'
///       color: magenta            # a name, #rrggbb or 0-255
///       bold: true
/// ```
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TuiConfig {
    /// Entries kept in memory per pane.
    pub(crate) scrollback: Option<usize>,
    /// Whether the default highlight rules apply (default: yes).
    pub(crate) default_highlights: Option<bool>,
    /// Highlight rules, tried in order before the defaults.
    #[serde(default)]
    pub(crate) highlight: Vec<crate::tui::highlight::RuleConfig>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    private_key_file: Option<PathBuf>,
    #[serde(default)]
    search_key_file: Option<PathBuf>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    alert_rules: Option<PathBuf>,
    #[serde(default)]
    alert_receivers: Option<PathBuf>,
    /// The profile used when none is named.
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
    /// `logflux tui`'s settings (for every profile).
    #[serde(default)]
    tui: TuiConfig,
}

/// The settings a command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) server: Option<String>,
    pub(crate) token: Option<Secret>,
    /// Where the token came from, for error messages.
    pub(crate) token_origin: String,
    /// Why the configured token file could not be used; [`Settings::token`] returns it.
    pub(crate) token_problem: Option<String>,
    pub(crate) private_key_file: Option<PathBuf>,
    pub(crate) search_key_file: Option<PathBuf>,
    pub(crate) ca_file: Option<PathBuf>,
    /// Alert rules and receivers (see [`Profile`]).
    pub(crate) alert_rules: Option<PathBuf>,
    pub(crate) alert_receivers: Option<PathBuf>,
    /// Whether the key files were found in the default key directory (nothing configured).
    pub(crate) private_key_default: bool,
    pub(crate) search_key_default: bool,
    /// The config file read, if any.
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) profile: Option<String>,
    /// The named profile is not in the config file (only with [`Settings::resolve_to_show`];
    /// [`Settings::resolve`] fails instead).
    pub(crate) profile_problem: Option<String>,
    /// The config file's `tui:` section.
    pub(crate) tui: TuiConfig,
}

/// An environment to resolve settings in (the process's, or a test's).
pub(crate) trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug)]
pub(crate) struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// `~` at the start of a path is the home directory.
fn expand_home(p: &Path, env: &dyn Env) -> PathBuf {
    match (p.strip_prefix("~"), env.var("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => p.to_path_buf(),
    }
}

/// The client's config directory: `$XDG_CONFIG_HOME/logflux` or `~/.config/logflux`.
pub(crate) fn config_dir(env: &dyn Env) -> Option<PathBuf> {
    if let Some(x) = env.var("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("logflux"));
    }
    env.var("HOME")
        .map(|h| PathBuf::from(h).join(".config/logflux"))
}

/// The default config file: `$XDG_CONFIG_HOME/logflux/config.yaml` or
/// `~/.config/logflux/config.yaml`.
pub(crate) fn default_config_path(env: &dyn Env) -> Option<PathBuf> {
    config_dir(env).map(|d| d.join("config.yaml"))
}

/// Where `logflux keys generate` writes by default, and where keys not configured are looked
/// for: `$XDG_CONFIG_HOME/logflux/keys` or `~/.config/logflux/keys`.
pub(crate) fn default_key_dir(env: &dyn Env) -> Option<PathBuf> {
    config_dir(env).map(|d| d.join("keys"))
}

/// What is wrong with a configured key file, if anything: absent, or open to others.
fn key_file_problem(what: &'static str, p: &Path) -> Option<String> {
    if !p.exists() {
        return Some(format!("{} does not exist", p.display()));
    }
    logflux_crypto::keyfile::check_owner_only(what, p)
        .err()
        .map(|e| e.to_string())
}

/// Reads a token file: it must exist, be readable by its owner only, and hold a token.
/// Errors say what to do; they never hold the file's content.
fn read_token_file(f: &Path) -> Result<Secret, String> {
    let shown = f.display();
    match std::fs::metadata(f) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "token file {shown} does not exist: write the access token into it (chmod 600 {shown}), or set LOGFLUX_PAT"
            ));
        }
        Err(e) => return Err(format!("token file {shown}: {e}")),
        Ok(_) => {}
    }
    // "token" (not "token file"): the error reads "token file PATH is accessible…".
    logflux_crypto::keyfile::check_owner_only("token", f).map_err(|e| e.to_string())?;
    let t = std::fs::read_to_string(f).map_err(|e| format!("token file {shown}: {e}"))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!(
            "token file {shown} is empty: write the access token into it, or set LOGFLUX_PAT"
        ));
    }
    Ok(Secret::new(t.to_owned()))
}

impl Settings {
    /// Resolves settings from flags, the environment and the config file.
    pub(crate) fn resolve(
        config_flag: Option<&Path>,
        profile_flag: Option<&str>,
        env: &dyn Env,
    ) -> anyhow::Result<Settings> {
        let s = Self::resolve_inner(config_flag, profile_flag, env)?;
        match &s.profile_problem {
            Some(p) => bail!("{p}"),
            None => Ok(s),
        }
    }

    /// As [`Settings::resolve`], for `logflux config`: only an unreadable or invalid config
    /// file is an error; anything else missing or wrong is shown by [`Settings::describe`].
    pub(crate) fn resolve_to_show(
        config_flag: Option<&Path>,
        profile_flag: Option<&str>,
        env: &dyn Env,
    ) -> anyhow::Result<Settings> {
        Self::resolve_inner(config_flag, profile_flag, env)
    }

    fn resolve_inner(
        config_flag: Option<&Path>,
        profile_flag: Option<&str>,
        env: &dyn Env,
    ) -> anyhow::Result<Settings> {
        let named = config_flag
            .map(Path::to_path_buf)
            .or_else(|| env.var("LOGFLUX_CONFIG").map(PathBuf::from));
        let (file, path) = match named {
            Some(p) => {
                // Its errors name the file ("cannot read config file …", "FILE: field: …").
                let f: ConfigFile = logflux_config::load(&p)?;
                (f, Some(p))
            }
            None => match default_config_path(env) {
                Some(p) if p.exists() => {
                    let f: ConfigFile = logflux_config::load(&p)?;
                    (f, Some(p))
                }
                _ => (ConfigFile::default(), None),
            },
        };
        let profile_name = profile_flag
            .map(str::to_owned)
            .or_else(|| env.var("LOGFLUX_PROFILE"))
            .or(file.profile.clone());
        let tui = file.tui;
        let mut p = Profile {
            server: file.server,
            token_file: file.token_file,
            private_key_file: file.private_key_file,
            search_key_file: file.search_key_file,
            ca_file: file.ca_file,
            alert_rules: file.alert_rules,
            alert_receivers: file.alert_receivers,
        };
        let mut profile_problem = None;
        if let Some(name) = &profile_name
            && let Some(over) = file.profiles.get(name)
        {
            let over = over.clone();
            p.server = over.server.or(p.server);
            p.token_file = over.token_file.or(p.token_file);
            p.private_key_file = over.private_key_file.or(p.private_key_file);
            p.search_key_file = over.search_key_file.or(p.search_key_file);
            p.ca_file = over.ca_file.or(p.ca_file);
            p.alert_rules = over.alert_rules.or(p.alert_rules);
            p.alert_receivers = over.alert_receivers.or(p.alert_receivers);
        } else if let Some(name) = &profile_name {
            let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
            profile_problem = Some(format!(
                "no profile {name:?} in {} (profiles: {})",
                path.as_deref()
                    .map_or("the configuration".into(), |p| p.display().to_string()),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        }
        // Relative paths in a config file are relative to the file.
        let base = path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);
        let fix = |q: Option<PathBuf>| {
            q.map(|q| {
                let q = expand_home(&q, env);
                match &base {
                    Some(b) if q.is_relative() => b.join(q),
                    _ => q,
                }
            })
        };
        let mut s = Settings {
            server: p.server,
            token: None,
            token_origin: String::new(),
            token_problem: None,
            private_key_file: fix(p.private_key_file),
            search_key_file: fix(p.search_key_file),
            ca_file: fix(p.ca_file),
            alert_rules: fix(p.alert_rules),
            alert_receivers: fix(p.alert_receivers),
            private_key_default: false,
            search_key_default: false,
            config_file: path,
            profile: profile_name,
            profile_problem,
            tui,
        };
        let token_file = fix(p.token_file);
        if let Some(v) = env.var("LOGFLUX_SERVER") {
            s.server = Some(v);
        }
        if let Some(v) = env.var("LOGFLUX_PRIVATE_KEY_FILE") {
            s.private_key_file = Some(expand_home(Path::new(&v), env));
        }
        if let Some(v) = env.var("LOGFLUX_SEARCH_KEY_FILE") {
            s.search_key_file = Some(expand_home(Path::new(&v), env));
        }
        if let Some(v) = env.var("LOGFLUX_PAT") {
            s.token = Some(Secret::new(v.trim().to_owned()));
            s.token_origin = "$LOGFLUX_PAT".into();
        } else if let Some(f) = token_file {
            // A token file that cannot be used fails the commands that need the token (and is
            // shown by `logflux config`), not every command.
            match read_token_file(&f) {
                Ok(t) => s.token = Some(t),
                Err(problem) => s.token_problem = Some(problem),
            }
            s.token_origin = f.display().to_string();
        }
        // Keys configured nowhere: where `logflux keys generate` put them, if there.
        if let Some(dir) = default_key_dir(env) {
            let found = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
            if s.private_key_file.is_none()
                && let Some(p) = found(crate::keys::PRIVATE_KEY_FILE)
            {
                s.private_key_file = Some(p);
                s.private_key_default = true;
            }
            if s.search_key_file.is_none()
                && let Some(p) = found(crate::keys::SEARCH_KEY_FILE)
            {
                s.search_key_file = Some(p);
                s.search_key_default = true;
            }
        }
        if let Some(server) = &s.server {
            s.server = Some(server.trim_end_matches('/').to_owned());
        }
        Ok(s)
    }

    /// The server URL, or an error that says how to set it.
    pub(crate) fn server(&self) -> anyhow::Result<&str> {
        self.server.as_deref().context(
            "no server: set LOGFLUX_SERVER, or `server:` in the client config (see `logflux --help`)",
        )
    }

    /// The access token, or an error that says how to set it.
    pub(crate) fn token(&self) -> anyhow::Result<&Secret> {
        if let Some(problem) = &self.token_problem {
            bail!("{problem}");
        }
        self.token
            .as_ref()
            .context("no access token: set LOGFLUX_PAT, or `token_file:` in the client config")
    }

    /// What `logflux config` prints: each setting, where it comes from, and what is missing or
    /// wrong with it (marked `(!)`); never the token.
    pub(crate) fn describe(&self) -> String {
        const MARK: &str = "  (!) ";
        let mut out = String::new();
        let mut line = |name: &str, value: String, problem: Option<String>| {
            out.push_str(&format!("{name:<18}{value}"));
            if let Some(p) = problem {
                out.push_str(MARK);
                out.push_str(&p);
            }
            out.push('\n');
        };
        let shown =
            |p: &Option<PathBuf>| p.as_ref().map_or("-".into(), |p| p.display().to_string());
        line(
            "config file",
            self.config_file.as_ref().map_or(
                "- (none: built-in defaults and the environment)".into(),
                |p| p.display().to_string(),
            ),
            None,
        );
        line(
            "profile",
            self.profile.as_deref().unwrap_or("-").to_owned(),
            self.profile_problem.clone(),
        );
        line(
            "server",
            self.server.as_deref().unwrap_or("-").to_owned(),
            match &self.server {
                None => {
                    Some("missing: set LOGFLUX_SERVER, or `server:` in the client config".into())
                }
                Some(url) => match reqwest::Url::parse(url) {
                    Err(e) => Some(format!(
                        "not a URL ({e}): write it like https://logs.example.com"
                    )),
                    Ok(u) if !matches!(u.scheme(), "https" | "http") => Some(format!(
                        "must be https:// (or http:// on loopback), got {}://",
                        u.scheme()
                    )),
                    // As Api::new decides (LOGFLUX_ALLOW_HTTP is read there, from the process).
                    Ok(u) if u.scheme() == "http"
                        && !crate::api::is_loopback(&u)
                        && std::env::var_os("LOGFLUX_ALLOW_HTTP").is_none_or(|v| v != "1") =>
                    {
                        Some(
                            "plain http:// off loopback is refused (the token would travel in clear): use https://, or set LOGFLUX_ALLOW_HTTP=1 on a network you trust"
                                .into(),
                        )
                    }
                    Ok(_) => None,
                },
            },
        );
        let (token, token_problem) = match (&self.token, &self.token_problem) {
            (Some(_), _) => (format!("set (from {})", self.token_origin), None),
            (None, Some(p)) => ("-".to_owned(), Some(p.clone())),
            (None, None) => (
                "-".to_owned(),
                Some("missing: set LOGFLUX_PAT, or `token_file:` in the client config".into()),
            ),
        };
        line("token", token, token_problem);
        let key = |p: &Option<PathBuf>, default: bool, what: &'static str| {
            let mut value = shown(p);
            if default {
                value.push_str(" (default location)");
            }
            let problem = p.as_ref().and_then(|p| key_file_problem(what, p));
            (value, problem)
        };
        let (v, problem) = key(
            &self.private_key_file,
            self.private_key_default,
            "private key",
        );
        let problem = problem.or_else(|| {
            self.private_key_file.is_none().then(|| {
                "missing: set LOGFLUX_PRIVATE_KEY_FILE, or `private_key_file:` in the client config (or run `logflux keys generate`)".to_owned()
            })
        });
        line("private_key_file", v, problem);
        let (v, problem) = key(&self.search_key_file, self.search_key_default, "search key");
        line("search_key_file", v, problem);
        let missing = |p: &Option<PathBuf>| {
            p.as_ref()
                .filter(|p| !p.exists())
                .map(|p| format!("{} does not exist", p.display()))
        };
        line("ca_file", shown(&self.ca_file), missing(&self.ca_file));
        line(
            "alert_rules",
            shown(&self.alert_rules),
            missing(&self.alert_rules),
        );
        line(
            "alert_receivers",
            shown(&self.alert_receivers),
            missing(&self.alert_receivers),
        );
        out
    }

    pub(crate) fn private_key_file(&self) -> anyhow::Result<&Path> {
        self.private_key_file.as_deref().context(
            "no private key: set LOGFLUX_PRIVATE_KEY_FILE, or `private_key_file:` in the client config \
             (keys are also found in ~/.config/logflux/keys/, where `logflux keys generate` writes them)",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, String>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn profiles_overlay_the_top_level_and_env_overrides_both() {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "prod.pat", "lf_pat_prod\n", 0o600);
        let cfg = write(
            d.path(),
            "config.yaml",
            "server: http://top\nsearch_key_file: top.key\nprofile: prod\nprofiles:\n  prod:\n    server: https://prod\n    token_file: prod.pat\n  dev:\n    server: http://dev\n",
            0o600,
        );
        let env = MapEnv(HashMap::new());
        let s = Settings::resolve(Some(&cfg), None, &env).unwrap();
        assert_eq!(s.server.as_deref(), Some("https://prod"));
        assert_eq!(s.token.as_ref().unwrap().expose(), "lf_pat_prod");
        assert_eq!(s.search_key_file.unwrap(), d.path().join("top.key"));
        let s = Settings::resolve(Some(&cfg), Some("dev"), &env).unwrap();
        assert_eq!(s.server.as_deref(), Some("http://dev"));
        assert!(s.token.is_none());
        let env = MapEnv(HashMap::from([
            ("LOGFLUX_SERVER", "http://env/".to_owned()),
            ("LOGFLUX_PAT", "lf_pat_env".to_owned()),
            ("LOGFLUX_PROFILE", "dev".to_owned()),
        ]));
        let s = Settings::resolve(Some(&cfg), None, &env).unwrap();
        assert_eq!(s.server.as_deref(), Some("http://env"));
        assert_eq!(s.token.as_ref().unwrap().expose(), "lf_pat_env");
        assert_eq!(s.profile.as_deref(), Some("dev"));
        assert!(!format!("{s:?}").contains("lf_pat_env"), "token in Debug");
    }

    #[test]
    fn unknown_profiles_fields_and_open_token_files_are_errors() {
        let d = tempfile::tempdir().unwrap();
        let env = MapEnv(HashMap::new());
        let cfg = write(
            d.path(),
            "a.yaml",
            "profiles:\n  prod: {server: x}\n",
            0o600,
        );
        let e = Settings::resolve(Some(&cfg), Some("stage"), &env).unwrap_err();
        assert!(format!("{e:#}").contains("no profile \"stage\""), "{e:#}");
        assert!(format!("{e:#}").contains("prod"), "{e:#}");
        let cfg = write(
            d.path(),
            "b.yaml",
            "profiles:\n  prod: {server: x, tokn_file: y}\n",
            0o600,
        );
        let e = Settings::resolve(Some(&cfg), None, &env).unwrap_err();
        assert!(format!("{e:#}").contains("profiles.prod"), "{e:#}");
        write(d.path(), "open.pat", "lf_pat_secret", 0o644);
        let cfg = write(d.path(), "c.yaml", "token_file: open.pat\n", 0o600);
        let s = Settings::resolve(Some(&cfg), None, &env).unwrap();
        let e = s.token().unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.starts_with("token file "), "said once: {msg}");
        assert!(msg.contains("chmod 600"), "{msg}");
        assert!(msg.contains("open.pat"), "{msg}");
        assert!(!msg.contains("lf_pat_secret"), "{msg}");
        let e = Settings::resolve(Some(&d.path().join("missing.yaml")), None, &env).unwrap_err();
        assert!(format!("{e:#}").contains("missing.yaml"), "{e:#}");
    }

    #[test]
    fn the_tui_section_is_read_and_its_unknown_fields_are_errors_with_their_path() {
        let d = tempfile::tempdir().unwrap();
        let env = MapEnv(HashMap::new());
        let cfg = write(
            d.path(),
            "t.yaml",
            "tui:\n  scrollback: 500\n  default_highlights: false\n  highlight:\n    - {regex: 'user=\\w+', color: magenta, bold: true}\n",
            0o600,
        );
        let s = Settings::resolve(Some(&cfg), None, &env).unwrap();
        assert_eq!(s.tui.scrollback, Some(500));
        assert_eq!(s.tui.default_highlights, Some(false));
        assert_eq!(s.tui.highlight[0].regex, "user=\\w+");
        assert!(s.tui.highlight[0].bold);
        let cfg = write(
            d.path(),
            "u.yaml",
            "tui:\n  highlight:\n    - {regex: x, colour: red}\n",
            0o600,
        );
        let e = Settings::resolve(Some(&cfg), None, &env).unwrap_err();
        assert!(format!("{e:#}").contains("tui.highlight[0]"), "{e:#}");
    }

    #[test]
    fn no_config_file_at_all_is_fine_and_errors_say_what_to_set() {
        let d = tempfile::tempdir().unwrap();
        let env = MapEnv(HashMap::from([("HOME", d.path().display().to_string())]));
        let s = Settings::resolve(None, None, &env).unwrap();
        assert!(s.config_file.is_none());
        assert!(format!("{:#}", s.server().unwrap_err()).contains("LOGFLUX_SERVER"));
        assert!(format!("{:#}", s.token().unwrap_err()).contains("LOGFLUX_PAT"));
    }

    #[test]
    fn keys_not_configured_are_found_where_keys_generate_writes_them() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().display().to_string();
        let env = MapEnv(HashMap::from([("HOME", home.clone())]));
        let s = Settings::resolve(None, None, &env).unwrap();
        assert!(s.private_key_file.is_none() && s.search_key_file.is_none());
        let keys = d.path().join(".config/logflux/keys");
        std::fs::create_dir_all(&keys).unwrap();
        let private = write(&keys, "private_key.pem", "x", 0o600);
        let search = write(&keys, "search.key", "x", 0o600);
        let s = Settings::resolve(None, None, &env).unwrap();
        assert_eq!(s.private_key_file.as_deref(), Some(private.as_path()));
        assert_eq!(s.search_key_file.as_deref(), Some(search.as_path()));
        assert!(s.private_key_default && s.search_key_default);
        let shown = s.describe();
        assert!(
            shown.contains(&format!(
                "private_key_file  {} (default location)\n",
                private.display()
            )),
            "{shown}"
        );
        // Configured anywhere (here: the environment) wins over the default location.
        let env = MapEnv(HashMap::from([
            ("HOME", home.clone()),
            ("LOGFLUX_PRIVATE_KEY_FILE", "/elsewhere/k.pem".to_owned()),
        ]));
        let s = Settings::resolve(None, None, &env).unwrap();
        assert_eq!(s.private_key_file.unwrap(), Path::new("/elsewhere/k.pem"));
        assert!(!s.private_key_default && s.search_key_default);
        // $XDG_CONFIG_HOME moves the default directory, as it does for `keys generate`.
        let env = MapEnv(HashMap::from([
            ("HOME", home),
            (
                "XDG_CONFIG_HOME",
                d.path().join("xdg").display().to_string(),
            ),
        ]));
        let s = Settings::resolve(None, None, &env).unwrap();
        assert!(s.private_key_file.is_none());
        // A key open to others is found, and marked.
        std::fs::set_permissions(&search, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let env = MapEnv(HashMap::from([("HOME", d.path().display().to_string())]));
        let shown = Settings::resolve(None, None, &env).unwrap().describe();
        let line = shown
            .lines()
            .find(|l| l.starts_with("search_key_file"))
            .unwrap();
        assert!(
            line.contains("(!) search key file") && line.contains("chmod 600"),
            "{line}"
        );
    }

    #[test]
    fn config_shows_every_setting_and_marks_what_is_missing_or_wrong() {
        let d = tempfile::tempdir().unwrap();
        let env = MapEnv(HashMap::from([("HOME", d.path().display().to_string())]));
        let cfg = write(
            d.path(),
            "config.yaml",
            "profiles:\n  prod:\n    token_file: prod.pat\n    ca_file: corp.pem\n  dev:\n    server: ftp://x\n",
            0o600,
        );
        // The profile's token file and server are missing: shown, not an error.
        let s = Settings::resolve_to_show(Some(&cfg), Some("prod"), &env).unwrap();
        let shown = s.describe();
        let line = |name: &str| {
            shown
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {shown}"))
                .to_owned()
        };
        assert_eq!(line("profile"), "profile           prod");
        assert_eq!(
            line("server"),
            "server            -  (!) missing: set LOGFLUX_SERVER, or `server:` in the client config"
        );
        let pat = d.path().join("prod.pat");
        assert_eq!(
            line("token"),
            format!(
                "token             -  (!) token file {p} does not exist: write the access token into it (chmod 600 {p}), or set LOGFLUX_PAT",
                p = pat.display()
            )
        );
        assert!(line("private_key_file").contains("(!) missing"), "{shown}");
        assert_eq!(line("search_key_file"), "search_key_file   -");
        assert!(
            line("ca_file").ends_with("corp.pem does not exist"),
            "{shown}"
        );
        // The same settings fail a command that needs the token, with the same words.
        let e = Settings::resolve(Some(&cfg), Some("prod"), &env)
            .unwrap()
            .token()
            .unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "token file {p} does not exist: write the access token into it (chmod 600 {p}), or set LOGFLUX_PAT",
                p = pat.display()
            )
        );
        let shown = Settings::resolve_to_show(Some(&cfg), Some("dev"), &env)
            .unwrap()
            .describe();
        assert!(shown.contains("(!) must be https://"), "{shown}");
        let cfg_http = write(
            d.path(),
            "http.yaml",
            "server: http://logs.example.com\n",
            0o600,
        );
        let shown = Settings::resolve_to_show(Some(&cfg_http), None, &env)
            .unwrap()
            .describe();
        if std::env::var_os("LOGFLUX_ALLOW_HTTP").is_none() {
            assert!(
                shown
                    .contains("http://logs.example.com  (!) plain http:// off loopback is refused"),
                "{shown}"
            );
        }
        // An unknown profile is marked by `config`, and an error for every other command.
        let shown = Settings::resolve_to_show(Some(&cfg), Some("stage"), &env)
            .unwrap()
            .describe();
        assert!(shown.contains("stage  (!) no profile \"stage\""), "{shown}");
        assert!(Settings::resolve(Some(&cfg), Some("stage"), &env).is_err());
        // An invalid config file is still an error, said once.
        let bad = write(d.path(), "bad.yaml", "servr: x\n", 0o600);
        let e = Settings::resolve_to_show(Some(&bad), None, &env).unwrap_err();
        let msg = format!("{e:#}");
        assert_eq!(msg.matches("bad.yaml").count(), 1, "{msg}");
    }
}
