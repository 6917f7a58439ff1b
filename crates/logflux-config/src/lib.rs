//! Configuration files: YAML, `${VAR}` and `${VAR:-default}` references to the environment
//! resolved in one place, and errors that name the file, the field's path and what was wrong
//! (unknown fields included, when the target type says `deny_unknown_fields`).
//!
//! ```
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config { listen: String }
//!
//! let c: Config = logflux_config::from_str("listen: ${NO_SUCH_VAR:-127.0.0.1:8080}", "inline").unwrap();
//! assert_eq!(c.listen, "127.0.0.1:8080");
//! ```
#![forbid(unsafe_code)]

pub mod tls;

use std::path::Path;

pub mod dir_lock;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    // The I/O error is in the message, not also a `source`: printed as a chain (`{:#}`) it
    // would say "No such file or directory" twice.
    #[error("cannot read config file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{origin}: line {line}: ${{{var}}} is not set (set it, or write ${{{var}:-default}})")]
    Env {
        origin: String,
        line: usize,
        var: String,
    },
    #[error("{origin}: line {line}: unterminated ${{…}} reference")]
    Reference { origin: String, line: usize },
    #[error("{origin}: {path}: {message}")]
    Field {
        origin: String,
        path: String,
        message: String,
    },
}

/// Replaces `${VAR}` and `${VAR:-default}` with the environment's values. `$$` is a literal `$`.
/// Values are inserted as they are; quote them in YAML if they may contain `:` or `#`.
pub fn expand_env(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    expand_env_or(text, origin, lookup, |_| None)
}

/// As [`expand_env`]; a variable that is unset and has no default becomes `unset(name)`
/// where that is `Some`, and is an error where it is `None`.
fn expand_env_or(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<String>,
    unset: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            if let Some(r) = after.strip_prefix('$') {
                out.push('$');
                rest = r;
            } else if let Some(r) = after.strip_prefix('{') {
                let end = r.find('}').ok_or_else(|| ConfigError::Reference {
                    origin: origin.to_owned(),
                    line: n + 1,
                })?;
                let inner = &r[..end];
                let (var, default) = match inner.split_once(":-") {
                    Some((v, d)) => (v, Some(d)),
                    None => (inner, None),
                };
                match (lookup(var), default) {
                    (Some(v), _) => out.push_str(&v),
                    (None, Some(d)) => out.push_str(d),
                    (None, None) if let Some(v) = unset(var) => out.push_str(&v),
                    (None, None) => {
                        return Err(ConfigError::Env {
                            origin: origin.to_owned(),
                            line: n + 1,
                            var: var.to_owned(),
                        });
                    }
                }
                rest = &r[end + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

/// Parses `text` (after expanding environment references). `origin` names it in errors.
pub fn from_str<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    let expanded = expand_env(text, origin, |v| std::env::var(v).ok())?;
    // An empty file is an empty mapping: every field takes its default.
    let expanded = if expanded.trim().is_empty() {
        "{}".to_owned()
    } else {
        expanded
    };
    parse_yaml(&expanded, origin)
}

/// Parses YAML `text` as it is (no `${VAR}` expansion: for files whose format does not expand,
/// as Alertmanager's): a field that does not fit is [`ConfigError::Field`] naming its path
/// (`route.routes[2].matchers`; `(top level)` for the document).
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let mut message = e.into_inner().to_string();
        // The YAML parser may start its message with a path of its own; keep just one.
        if let Some((own, rest)) = message.split_once(": ")
            && !own.contains(' ')
            && path.contains(own)
        {
            message = rest.to_owned();
        }
        ConfigError::Field {
            origin: origin.to_owned(),
            path: if path == "." {
                "(top level)".to_owned()
            } else {
                path
            },
            message,
        }
    })
}

/// Reads and parses the file at `path`.
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.display().to_string(),
        error,
    })?;
    from_str(&text, &path.display().to_string())
}

/// Reads only the top-level field `key` of the file at `path` (`None` when the file does not
/// have it): a command that needs one section (`logflux-agent status` needs `metrics`) does
/// not fail over an unset `${VAR}` elsewhere in the file. A reference inside the section
/// must still be set.
pub fn load_section<T: serde::de::DeserializeOwned>(
    path: &Path,
    key: &str,
) -> Result<Option<T>, ConfigError> {
    const UNSET: &str = "__logflux_unset_variable__";
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: origin.clone(),
        error,
    })?;
    // Unset references without a default become a marker, so the rest of the file still
    // parses; `${VAR:-default}` takes its default as `load` does.
    let expanded = expand_env_or(
        &text,
        &origin,
        |v| std::env::var(v).ok(),
        |v| Some(format!("{UNSET}{v}{UNSET}")),
    )?;
    let doc: serde_yaml_ng::Value = if expanded.trim().is_empty() {
        serde_yaml_ng::Value::Null
    } else {
        serde_yaml_ng::from_str(&expanded).map_err(|e| ConfigError::Field {
            origin: origin.clone(),
            path: "(top level)".to_owned(),
            message: e.to_string(),
        })?
    };
    let Some(section) = doc.get(key) else {
        return Ok(None);
    };
    let section_text = serde_yaml_ng::to_string(section).unwrap_or_default();
    if let Some(i) = section_text.find(UNSET) {
        let var = section_text[i + UNSET.len()..]
            .split(UNSET)
            .next()
            .unwrap_or("")
            .to_owned();
        // The line is that of the first reference to the variable in the file.
        let line = text
            .lines()
            .position(|l| l.contains(&format!("${{{var}")))
            .map_or(0, |n| n + 1);
        return Err(ConfigError::Env { origin, line, var });
    }
    serde_path_to_error::deserialize(section.clone())
        .map(Some)
        .map_err(|e| {
            let path = e.path().to_string();
            let mut message = e.into_inner().to_string();
            if let Some((own, rest)) = message.split_once(": ")
                && !own.contains(' ')
                && path.contains(own)
            {
                message = rest.to_owned();
            }
            ConfigError::Field {
                origin,
                path: if path == "." {
                    key.to_owned()
                } else {
                    format!("{key}.{path}")
                },
                message,
            }
        })
}

/// `path` with a leading `~/` (or a lone `~`) replaced by `$HOME`; other paths unchanged.
/// Config files name paths the way a shell user writes them; without this a path like
/// `~/.config/logflux/keys/public_key.pem` would be looked up in a directory named `~`.
pub fn expand_home(path: &Path) -> std::path::PathBuf {
    expand_home_with(path, std::env::var_os("HOME"))
}

fn expand_home_with(path: &Path, home: Option<std::ffi::OsString>) -> std::path::PathBuf {
    let Some(home) = home.filter(|h| !h.is_empty()) else {
        return path.to_path_buf();
    };
    if path == Path::new("~") {
        return home.into();
    }
    match path.strip_prefix("~") {
        // `strip_prefix` works on components: `~/x` matches, `~user/x` does not.
        Ok(rest) if path.as_os_str().as_encoded_bytes().starts_with(b"~/") => {
            Path::new(&home).join(rest)
        }
        _ => path.to_path_buf(),
    }
}

/// [`expand_home`] for a path kept as text (a glob pattern, a `unix:///…` address's path).
pub fn expand_home_str(path: &str) -> String {
    if path == "~" || path.starts_with("~/") {
        expand_home(Path::new(path)).to_string_lossy().into_owned()
    } else {
        path.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        port: u16,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        inner: Inner,
        #[serde(default)]
        list: Vec<Inner>,
    }

    fn env(v: &str) -> Option<String> {
        match v {
            "HOST" => Some("db.local".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn env_references() {
        assert_eq!(
            expand_env("a: ${HOST}\n", "t", env).unwrap(),
            "a: db.local\n"
        );
        assert_eq!(expand_env("a: ${NOPE:-x:y}", "t", env).unwrap(), "a: x:y");
        assert_eq!(expand_env("a: ${EMPTY:-d}", "t", env).unwrap(), "a: ");
        assert_eq!(
            expand_env("price: $$5 and $x", "t", env).unwrap(),
            "price: $5 and $x"
        );
        let e = expand_env("a: 1\nb: ${NOPE}\n", "f.yaml", env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.yaml: line 2: ${NOPE} is not set (set it, or write ${NOPE:-default})"
        );
        let e = expand_env("a: ${OPEN", "f.yaml", env).unwrap_err();
        assert!(e.to_string().contains("unterminated"), "{e}");
    }

    #[test]
    fn unknown_and_wrong_fields_name_their_path() {
        let e = from_str::<Outer>("name: x\ninner: {port: 1, colour: red}\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "c.yaml: inner.colour: unknown field `colour`, expected `port` or `tags`"
            ),
            "{e}"
        );
        let e = from_str::<Outer>(
            "name: x\ninner: {port: 1}\nlist: [{port: 2}, {port: http}]\n",
            "c.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("c.yaml: list[1].port: invalid type"), "{e}");
        let e = from_str::<Outer>("name: x\ninner: {port: 70000}\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml: inner.port:"), "{e}");
        let e = from_str::<Outer>("name: x\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `inner`"), "{e}");
        let e = from_str::<Outer>("name: [unclosed\n", "c.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.yaml:"), "{e}");
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory() {
        let home = Some(std::ffi::OsString::from("/home/ada"));
        let e = |p: &str| expand_home_with(Path::new(p), home.clone());
        assert_eq!(
            e("~/.config/logflux/keys/public_key.pem"),
            Path::new("/home/ada/.config/logflux/keys/public_key.pem")
        );
        assert_eq!(e("~"), Path::new("/home/ada"));
        assert_eq!(e("/etc/~/x"), Path::new("/etc/~/x"));
        assert_eq!(e("~bob/x"), Path::new("~bob/x"));
        assert_eq!(e("relative/x"), Path::new("relative/x"));
        assert_eq!(
            expand_home_with(Path::new("~/x"), None),
            Path::new("~/x"),
            "no HOME: left as written"
        );
    }

    #[test]
    fn a_missing_file_says_why_once() {
        let dir = tempfile::tempdir().unwrap();
        let e = load::<Inner>(&dir.path().join("missing.yaml")).unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
    }

    #[test]
    fn one_section_is_read_without_the_rest_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.yaml");
        std::fs::write(
            &p,
            "server: {urls: [https://x], api_key: ${LOGFLUX_TEST_SURELY_UNSET_1}}\n\
             inner: {port: 9}\n",
        )
        .unwrap();
        assert_eq!(
            load_section::<Inner>(&p, "inner").unwrap(),
            Some(Inner {
                port: 9,
                tags: vec![]
            })
        );
        assert_eq!(load_section::<Inner>(&p, "other").unwrap(), None);
        std::fs::write(&p, "a: 1\ninner: {port: ${LOGFLUX_TEST_SURELY_UNSET_2}}\n").unwrap();
        let e = load_section::<Inner>(&p, "inner").unwrap_err().to_string();
        assert!(
            e.contains("line 2: ${LOGFLUX_TEST_SURELY_UNSET_2} is not set"),
            "{e}"
        );
        // A default applies here as in `load`.
        std::fs::write(&p, "inner: {port: ${LOGFLUX_TEST_SURELY_UNSET_3:-7}}\n").unwrap();
        assert_eq!(load_section::<Inner>(&p, "inner").unwrap().unwrap().port, 7);
        std::fs::write(&p, "inner: {port: http}\n").unwrap();
        let e = load_section::<Inner>(&p, "inner").unwrap_err().to_string();
        assert!(e.contains("inner.port: invalid type"), "{e}");
    }

    #[test]
    fn files_and_empty_files() {
        #[derive(Debug, Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        struct AllDefault {
            a: u8,
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.yaml");
        std::fs::write(&p, "# only a comment\n").unwrap();
        assert_eq!(load::<AllDefault>(&p).unwrap().a, 0);
        let e = load::<AllDefault>(&dir.path().join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.yaml"), "{e}");
    }
}
