//! Where the client finds its server, token and keys.
//!
//! Sources, later ones winning: the config file's top-level settings, then the selected profile,
//! then environment variables (`LOGFLUX_SERVER`, `LOGFLUX_PAT`, `LOGFLUX_PRIVATE_KEY_FILE`,
//! `LOGFLUX_SEARCH_KEY_FILE`). The file is `--config`, else `$LOGFLUX_CONFIG`, else
//! `$XDG_CONFIG_HOME/logflux/config.yaml` (`~/.config/logflux/config.yaml`); a missing default
//! file is fine, a missing named one is an error. The profile is `--profile`, else
//! `$LOGFLUX_PROFILE`, else the file's `profile`.
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
    /// The profile used when none is named.
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The settings a command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) server: Option<String>,
    pub(crate) token: Option<Secret>,
    /// Where the token came from, for error messages.
    pub(crate) token_origin: String,
    pub(crate) private_key_file: Option<PathBuf>,
    pub(crate) search_key_file: Option<PathBuf>,
    pub(crate) ca_file: Option<PathBuf>,
    /// The config file read, if any.
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) profile: Option<String>,
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

/// The default config file: `$XDG_CONFIG_HOME/logflux/config.yaml` or
/// `~/.config/logflux/config.yaml`.
pub(crate) fn default_config_path(env: &dyn Env) -> Option<PathBuf> {
    if let Some(x) = env.var("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(x).join("logflux/config.yaml"));
    }
    env.var("HOME")
        .map(|h| PathBuf::from(h).join(".config/logflux/config.yaml"))
}

impl Settings {
    /// Resolves settings from flags, the environment and the config file.
    pub(crate) fn resolve(
        config_flag: Option<&Path>,
        profile_flag: Option<&str>,
        env: &dyn Env,
    ) -> anyhow::Result<Settings> {
        let named = config_flag
            .map(Path::to_path_buf)
            .or_else(|| env.var("LOGFLUX_CONFIG").map(PathBuf::from));
        let (file, path) = match named {
            Some(p) => {
                let f: ConfigFile = logflux_config::load(&p)
                    .with_context(|| format!("reading the client config {}", p.display()))?;
                (f, Some(p))
            }
            None => match default_config_path(env) {
                Some(p) if p.exists() => {
                    let f: ConfigFile = logflux_config::load(&p)
                        .with_context(|| format!("reading the client config {}", p.display()))?;
                    (f, Some(p))
                }
                _ => (ConfigFile::default(), None),
            },
        };
        let profile_name = profile_flag
            .map(str::to_owned)
            .or_else(|| env.var("LOGFLUX_PROFILE"))
            .or(file.profile.clone());
        let mut p = Profile {
            server: file.server,
            token_file: file.token_file,
            private_key_file: file.private_key_file,
            search_key_file: file.search_key_file,
            ca_file: file.ca_file,
        };
        if let Some(name) = &profile_name {
            let Some(over) = file.profiles.get(name) else {
                let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                bail!(
                    "no profile {name:?} in {} (profiles: {})",
                    path.as_deref()
                        .map_or("the configuration".into(), |p| p.display().to_string()),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            };
            let over = over.clone();
            p.server = over.server.or(p.server);
            p.token_file = over.token_file.or(p.token_file);
            p.private_key_file = over.private_key_file.or(p.private_key_file);
            p.search_key_file = over.search_key_file.or(p.search_key_file);
            p.ca_file = over.ca_file.or(p.ca_file);
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
            private_key_file: fix(p.private_key_file),
            search_key_file: fix(p.search_key_file),
            ca_file: fix(p.ca_file),
            config_file: path,
            profile: profile_name,
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
            logflux_crypto::keyfile::check_owner_only("token file", &f)?;
            let t = std::fs::read_to_string(&f)
                .with_context(|| format!("reading the token file {}", f.display()))?;
            s.token = Some(Secret::new(t.trim().to_owned()));
            s.token_origin = f.display().to_string();
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
        self.token
            .as_ref()
            .context("no access token: set LOGFLUX_PAT, or `token_file:` in the client config")
    }

    /// What `logflux config` prints: where each setting comes from, never the token.
    pub(crate) fn describe(&self) -> String {
        let p = |x: &Option<PathBuf>| x.as_ref().map_or("-".into(), |p| p.display().to_string());
        format!(
            "config file       {}\nprofile           {}\nserver            {}\ntoken             {}\nprivate_key_file  {}\nsearch_key_file   {}\nca_file           {}\n",
            p(&self.config_file),
            self.profile.as_deref().unwrap_or("-"),
            self.server.as_deref().unwrap_or("-"),
            if self.token.is_some() {
                format!("set (from {})", self.token_origin)
            } else {
                "-".into()
            },
            p(&self.private_key_file),
            p(&self.search_key_file),
            p(&self.ca_file),
        )
    }

    pub(crate) fn private_key_file(&self) -> anyhow::Result<&Path> {
        self.private_key_file.as_deref().context(
            "no private key: set LOGFLUX_PRIVATE_KEY_FILE, or `private_key_file:` in the client config",
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
        let e = Settings::resolve(Some(&cfg), None, &env).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("open.pat"), "{msg}");
        assert!(!msg.contains("lf_pat_secret"), "{msg}");
        let e = Settings::resolve(Some(&d.path().join("missing.yaml")), None, &env).unwrap_err();
        assert!(format!("{e:#}").contains("missing.yaml"), "{e:#}");
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
}
