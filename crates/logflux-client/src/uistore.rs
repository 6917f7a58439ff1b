//! The web UI's files in the client's config directory: saved searches
//! (`saved-searches.json`) and dashboards (`dashboards/<id>.json`), their formats, validation
//! and writes. Plain JSON the user can read, review in git and edit; every file mode 0600,
//! the dashboards directory 0700, every write whole (a temporary file renamed into place), so
//! a crash never leaves half a file. `logflux serve` edits them for the UI; `logflux search
//! --saved NAME` reads a saved search.
//!
//! Validation refuses unknown fields naming their path (`panels[2].colour: unknown field …`):
//! a file written by a newer or mistyped editor is refused, not silently trimmed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Settings;
use crate::private_files::{private_dir, write_atomic};

/// The saved searches' file name, in the config directory.
pub(crate) const SAVED_FILE: &str = "saved-searches.json";
/// The dashboards' directory, in the config directory.
pub(crate) const DASHBOARDS_DIR: &str = "dashboards";
/// The one format version written and read.
pub(crate) const VERSION: u32 = 1;
/// Longest query kept (the query engine's own limit is larger; a saved one this long is a
/// mistake).
const MAX_QUERY_CHARS: usize = 16 * 1024;
/// Most saved searches, panels of a dashboard, dashboards listed.
const MAX_SEARCHES: usize = 1000;
const MAX_PANELS: usize = 100;
/// The default Overview dashboard, shown while no `overview.json` exists.
pub(crate) const OVERVIEW_JSON: &str = include_str!("../ui-defaults/overview.json");

/// The client's config directory: the config file's directory, else the default one
/// (`$XDG_CONFIG_HOME/logflux` or `~/.config/logflux`). `serve.token` lives there too.
pub(crate) fn config_dir(settings: &Settings) -> anyhow::Result<PathBuf> {
    if let Some(dir) = settings.config_file.as_deref().and_then(|c| c.parent()) {
        return Ok(if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir.to_path_buf()
        });
    }
    crate::config::config_dir(&crate::config::ProcessEnv)
        .context("no home directory for the client's config directory: set HOME or XDG_CONFIG_HOME, or give --config")
}

/// A time range: `{"since":"1h"}` (relative to now) or `{"start":RFC3339,"end":RFC3339}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Range {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) end: Option<String>,
}

impl Range {
    fn check(&self, at: &str) -> Result<(), String> {
        match (&self.since, &self.start, &self.end) {
            (Some(s), None, None) => {
                if crate::when::parse_span(s).is_none_or(|ns| ns <= 0) {
                    return Err(format!(
                        "{at}.since: {s:?} is not a span: give one such as 15m, 1h, 7d"
                    ));
                }
                Ok(())
            }
            (None, Some(s), Some(e)) => {
                let parse = |name: &str, v: &str| {
                    logflux_proto::timefmt::parse_rfc3339(v).map_err(|_| {
                        format!("{at}.{name}: {v:?} is not an RFC 3339 time (2026-11-30T12:00:00Z)")
                    })
                };
                if parse("start", s)? > parse("end", e)? {
                    return Err(format!("{at}: start is after end"));
                }
                Ok(())
            }
            _ => Err(format!(
                "{at}: give either since (\"1h\") or both start and end (RFC 3339)"
            )),
        }
    }
}

/// One saved search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Saved {
    pub(crate) name: String,
    pub(crate) query: String,
    pub(crate) range: Range,
}

/// `saved-searches.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedFile {
    pub(crate) version: u32,
    pub(crate) searches: Vec<Saved>,
}

/// The body of `PUT /api/ui/saved/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SavedBody {
    pub(crate) query: String,
    pub(crate) range: Range,
}

/// The body of `POST /api/ui/saved/{name}/rename`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameBody {
    pub(crate) to: String,
}

/// A panel's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PanelType {
    Timeseries,
    Table,
    Stat,
    Logs,
}

/// A dashboard panel: its place on a grid of 12 columns, its query and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Panel {
    pub(crate) id: String,
    pub(crate) title: String,
    #[serde(rename = "type")]
    pub(crate) kind: PanelType,
    pub(crate) query: String,
    pub(crate) x: u32,
    pub(crate) y: u32,
    pub(crate) w: u32,
    pub(crate) h: u32,
    /// Rows of a table or logs panel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<u32>,
}

/// A dashboard, one file each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dashboard {
    pub(crate) version: u32,
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) range: Range,
    /// Auto-refresh interval (`30s`), or null for none.
    pub(crate) refresh: Option<String>,
    pub(crate) panels: Vec<Panel>,
}

/// JSON read into `T`, an error naming the field's path (`panels[0].colour: unknown field
/// …`, `.: missing field …` at the top).
pub(crate) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })?;
    de.end().map_err(|e| e.to_string())?;
    Ok(v)
}

/// A saved search's name: 1–100 characters, no `/`, no control character.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let n = name.chars().count();
    if n == 0 || n > 100 {
        return Err(format!(
            "a saved search's name has 1 to 100 characters ({n} given)"
        ));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(format!(
            "{name:?}: a saved search's name has no '/' and no control character"
        ));
    }
    if name.trim() != name {
        return Err(format!(
            "{name:?}: a saved search's name does not start or end with a space"
        ));
    }
    Ok(())
}

/// A dashboard's id: `[a-z0-9-]{1,64}` (it names its file).
pub(crate) fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a dashboard id: 1 to 64 of a-z, 0-9 and -"
        ))
    }
}

fn check_query(q: &str, at: &str) -> Result<(), String> {
    if q.trim().is_empty() {
        return Err(format!("{at}: the query is empty"));
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(format!(
            "{at}: the query is longer than {MAX_QUERY_CHARS} characters"
        ));
    }
    Ok(())
}

impl Saved {
    /// Checks a saved search; `at` names it in messages.
    pub(crate) fn check(&self, at: &str) -> Result<(), String> {
        check_name(&self.name).map_err(|e| format!("{at}.name: {e}"))?;
        check_query(&self.query, &format!("{at}.query"))?;
        if self.query.trim_start().starts_with('{') {
            logflux_query::parse(&self.query)
                .map_err(|e| format!("{at}.query: not a LogQL query: {e}"))?;
        }
        self.range.check(&format!("{at}.range"))
    }
}

impl SavedFile {
    fn check(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "version: {} is not a version this logflux reads ({VERSION})",
                self.version
            ));
        }
        if self.searches.len() > MAX_SEARCHES {
            return Err(format!("searches: more than {MAX_SEARCHES}"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.searches.iter().enumerate() {
            s.check(&format!("searches[{i}]"))?;
            if !names.insert(s.name.as_str()) {
                return Err(format!("searches[{i}].name: {:?} is there twice", s.name));
            }
        }
        Ok(())
    }
}

impl Dashboard {
    /// Checks a dashboard: ids, sizes and places on the grid, range, refresh.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "version: {} is not a version this logflux reads ({VERSION})",
                self.version
            ));
        }
        check_id(&self.id).map_err(|e| format!("id: {e}"))?;
        let t = self.title.trim().chars().count();
        if t == 0 || self.title.chars().count() > 200 {
            return Err("title: 1 to 200 characters".into());
        }
        self.range.check("range")?;
        if let Some(r) = &self.refresh
            && crate::serve::http::parse_prom_duration(r)
                .is_none_or(|ns| ns < crate::serve::http::NS)
        {
            return Err(format!(
                "refresh: {r:?} is not an interval of a second or more (30s, 1m), or null"
            ));
        }
        if self.panels.len() > MAX_PANELS {
            return Err(format!("panels: more than {MAX_PANELS}"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, p) in self.panels.iter().enumerate() {
            let at = format!("panels[{i}]");
            if p.id.is_empty() || p.id.len() > 64 || p.id.chars().any(char::is_control) {
                return Err(format!("{at}.id: 1 to 64 characters"));
            }
            if !ids.insert(p.id.as_str()) {
                return Err(format!("{at}.id: {:?} is there twice", p.id));
            }
            if p.title.chars().count() > 200 {
                return Err(format!("{at}.title: at most 200 characters"));
            }
            check_query(&p.query, &format!("{at}.query"))?;
            if !(1..=12).contains(&p.w) {
                return Err(format!("{at}.w: {} is not 1 to 12 columns", p.w));
            }
            if !(1..=20).contains(&p.h) {
                return Err(format!("{at}.h: {} is not 1 to 20 rows", p.h));
            }
            if p.x + p.w > 12 {
                return Err(format!(
                    "{at}.x: {} + w {} is past the grid's 12 columns",
                    p.x, p.w
                ));
            }
            if p.y > 1000 {
                return Err(format!("{at}.y: {} is past row 1000", p.y));
            }
            if let Some(l) = p.limit
                && !(1..=5000).contains(&l)
            {
                return Err(format!("{at}.limit: {l} is not 1 to 5000"));
            }
        }
        Ok(())
    }
}

/// The built-in Overview.
pub(crate) fn overview() -> Dashboard {
    // Checked by a test: the file compiled in is a valid dashboard.
    from_json(OVERVIEW_JSON.as_bytes()).unwrap_or_else(|e| {
        unreachable!("ui-defaults/overview.json is a valid dashboard (tested): {e}")
    })
}

/// A dashboard as listed: read, or its id and why it could not be.
pub(crate) type Listed = Result<Dashboard, (String, String)>;

/// The UI's store in one config directory.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    dir: PathBuf,
}

/// Why a store operation failed: the request's fault (4xx) or the files' (500).
#[derive(Debug)]
pub(crate) enum StoreError {
    /// Not found (404).
    Missing(String),
    /// Taken (409).
    Conflict(String),
    /// Bad input (400).
    Invalid(String),
    /// Reading or writing a file failed (500).
    Io(anyhow::Error),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Missing(m) | StoreError::Conflict(m) | StoreError::Invalid(m) => {
                f.write_str(m)
            }
            StoreError::Io(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        StoreError::Io(e)
    }
}

impl Store {
    pub(crate) fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn saved_path(&self) -> PathBuf {
        self.dir.join(SAVED_FILE)
    }

    fn dashboards_dir(&self) -> PathBuf {
        self.dir.join(DASHBOARDS_DIR)
    }

    /// The saved searches (none when the file does not exist yet), sorted by name.
    pub(crate) fn saved(&self) -> Result<Vec<Saved>, StoreError> {
        let path = self.saved_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(StoreError::Io(
                    anyhow::Error::new(e).context(format!("reading {}", path.display())),
                ));
            }
        };
        let file: SavedFile = from_json(&bytes)
            .and_then(|f: SavedFile| f.check().map(|()| f))
            .map_err(|e| {
                StoreError::Io(anyhow::anyhow!(
                    "{} is not a saved-searches file: {e} (correct or remove it)",
                    path.display()
                ))
            })?;
        let mut s = file.searches;
        s.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(s)
    }

    /// One saved search by name; when missing, the error names those there are.
    pub(crate) fn saved_one(&self, name: &str) -> Result<Saved, StoreError> {
        let all = self.saved()?;
        if let Some(s) = all.iter().find(|s| s.name == name) {
            return Ok(s.clone());
        }
        let names: Vec<String> = all.iter().map(|s| format!("{:?}", s.name)).collect();
        Err(StoreError::Missing(format!(
            "no saved search named {name:?} in {} (saved: {}); the UI saves searches there",
            self.saved_path().display(),
            if names.is_empty() {
                "none yet".to_owned()
            } else {
                names.join(", ")
            }
        )))
    }

    fn write_saved(&self, mut searches: Vec<Saved>) -> Result<(), StoreError> {
        searches.sort_by(|a, b| a.name.cmp(&b.name));
        let file = SavedFile {
            version: VERSION,
            searches,
        };
        file.check().map_err(StoreError::Invalid)?;
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
        write_atomic(&self.saved_path(), &bytes)?;
        Ok(())
    }

    /// Creates or replaces the saved search `name`.
    pub(crate) fn put_saved(&self, name: &str, body: SavedBody) -> Result<Saved, StoreError> {
        let new = Saved {
            name: name.to_owned(),
            query: body.query,
            range: body.range,
        };
        new.check("search").map_err(StoreError::Invalid)?;
        let mut all = self.saved()?;
        all.retain(|s| s.name != name);
        all.push(new.clone());
        self.write_saved(all)?;
        Ok(new)
    }

    /// Renames `from` to `to`: 404 when `from` is missing, 409 when `to` is taken.
    pub(crate) fn rename_saved(&self, from: &str, to: &str) -> Result<Saved, StoreError> {
        check_name(to).map_err(|e| StoreError::Invalid(format!("to: {e}")))?;
        let mut all = self.saved()?;
        let Some(i) = all.iter().position(|s| s.name == from) else {
            return Err(StoreError::Missing(format!(
                "no saved search named {from:?}"
            )));
        };
        if from == to {
            return Ok(all.swap_remove(i));
        }
        if all.iter().any(|s| s.name == to) {
            return Err(StoreError::Conflict(format!(
                "a saved search named {to:?} exists: delete or rename it first"
            )));
        }
        all[i].name = to.to_owned();
        let renamed = all[i].clone();
        self.write_saved(all)?;
        Ok(renamed)
    }

    /// Deletes the saved search `name` (404 when missing).
    pub(crate) fn delete_saved(&self, name: &str) -> Result<(), StoreError> {
        let mut all = self.saved()?;
        let before = all.len();
        all.retain(|s| s.name != name);
        if all.len() == before {
            return Err(StoreError::Missing(format!(
                "no saved search named {name:?}"
            )));
        }
        self.write_saved(all)
    }

    fn dashboard_path(&self, id: &str) -> PathBuf {
        self.dashboards_dir().join(format!("{id}.json"))
    }

    /// The dashboard `id`: its file, or the built-in Overview for `overview` without one.
    pub(crate) fn dashboard(&self, id: &str) -> Result<Dashboard, StoreError> {
        check_id(id).map_err(StoreError::Invalid)?;
        let path = self.dashboard_path(id);
        match std::fs::read(&path) {
            Ok(bytes) => from_json::<Dashboard>(&bytes)
                .and_then(|d| d.check().map(|()| d))
                .map_err(|e| {
                    StoreError::Io(anyhow::anyhow!(
                        "{} is not a dashboard: {e} (correct or remove it)",
                        path.display()
                    ))
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if id == "overview" {
                    Ok(overview())
                } else {
                    Err(StoreError::Missing(format!("no dashboard {id:?}")))
                }
            }
            Err(e) => Err(StoreError::Io(
                anyhow::Error::new(e).context(format!("reading {}", path.display())),
            )),
        }
    }

    /// Every dashboard: `(id, title, panels)`, or for a file that cannot be read its error;
    /// the built-in Overview while no file replaces it. Sorted by id.
    pub(crate) fn dashboards(&self) -> Result<Vec<Listed>, StoreError> {
        let dir = self.dashboards_dir();
        let mut ids = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(rd) => {
                for e in rd {
                    let e = e.map_err(|e| {
                        anyhow::Error::new(e).context(format!("listing {}", dir.display()))
                    })?;
                    let name = e.file_name();
                    let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                        continue;
                    };
                    if check_id(id).is_ok() {
                        ids.push(id.to_owned());
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::Io(
                    anyhow::Error::new(e).context(format!("listing {}", dir.display())),
                ));
            }
        }
        if !ids.iter().any(|i| i == "overview") {
            ids.push("overview".into());
        }
        ids.sort();
        Ok(ids
            .into_iter()
            .map(|id| self.dashboard(&id).map_err(|e| (id, e.to_string())))
            .collect())
    }

    /// Writes the dashboard `id` (its body's id must be `id`).
    pub(crate) fn put_dashboard(&self, id: &str, d: Dashboard) -> Result<Dashboard, StoreError> {
        check_id(id).map_err(StoreError::Invalid)?;
        if d.id != id {
            return Err(StoreError::Invalid(format!(
                "id: {:?} is not the dashboard's id in the path ({id:?})",
                d.id
            )));
        }
        d.check().map_err(StoreError::Invalid)?;
        let mut bytes = serde_json::to_vec_pretty(&d).map_err(anyhow::Error::from)?;
        bytes.push(b'\n');
        // Narrowed when more open: its file names are the user's dashboards.
        private_dir(&self.dashboards_dir(), true)?;
        write_atomic(&self.dashboard_path(id), &bytes)?;
        Ok(d)
    }

    /// Deletes the dashboard file `id` (404 when there is none; deleting `overview.json`
    /// brings the built-in Overview back).
    pub(crate) fn delete_dashboard(&self, id: &str) -> Result<(), StoreError> {
        check_id(id).map_err(StoreError::Invalid)?;
        let path = self.dashboard_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::Missing(if id == "overview" {
                    "the Overview shown is the built-in one: there is no file to delete".into()
                } else {
                    format!("no dashboard {id:?}")
                }))
            }
            Err(e) => Err(StoreError::Io(
                anyhow::Error::new(e).context(format!("deleting {}", path.display())),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn body(q: &str) -> SavedBody {
        SavedBody {
            query: q.into(),
            range: Range {
                since: Some("1h".into()),
                start: None,
                end: None,
            },
        }
    }

    #[test]
    fn the_built_in_overview_is_a_valid_dashboard_with_the_five_panels() {
        let d = overview();
        d.check().unwrap();
        assert_eq!(d.id, "overview");
        let kinds: Vec<PanelType> = d.panels.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PanelType::Timeseries,
                PanelType::Timeseries,
                PanelType::Table,
                PanelType::Stat,
                PanelType::Logs
            ]
        );
    }

    #[test]
    fn unknown_fields_are_refused_naming_their_path() {
        let mut v: serde_json::Value = serde_json::from_str(OVERVIEW_JSON).unwrap();
        v["panels"][2]["colour"] = "red".into();
        let e = from_json::<Dashboard>(v.to_string().as_bytes()).unwrap_err();
        assert!(
            e.starts_with("panels[2].colour: unknown field `colour`"),
            "{e}"
        );
        let e = from_json::<SavedBody>(br#"{"query":"x","range":{"since":"1h","until":"2h"}}"#)
            .unwrap_err();
        assert!(e.starts_with("range.until: unknown field `until`"), "{e}");
        let e = from_json::<SavedBody>(br#"{"query":"x"}"#).unwrap_err();
        assert!(e.contains("missing field `range`"), "{e}");
    }

    #[test]
    fn saved_searches_are_created_renamed_and_deleted_in_a_private_file() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("conf"));
        assert!(s.saved().unwrap().is_empty());
        s.put_saved("web errors", body(r#"{app="web"} |= "timeout""#))
            .unwrap();
        s.put_saved("a words", body("timeout db-1")).unwrap();
        let names: Vec<String> = s.saved().unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a words", "web errors"]);
        assert_eq!(mode(&d.path().join("conf").join(SAVED_FILE)), 0o600);
        assert!(matches!(
            s.rename_saved("a words", "web errors"),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.rename_saved("nope", "x"),
            Err(StoreError::Missing(_))
        ));
        s.rename_saved("a words", "b words").unwrap();
        s.delete_saved("b words").unwrap();
        assert!(matches!(
            s.delete_saved("b words"),
            Err(StoreError::Missing(_))
        ));
        assert_eq!(s.saved().unwrap().len(), 1);
        for bad in ["", "a/b", "tab\there", " padded", &"x".repeat(101)] {
            assert!(
                matches!(s.put_saved(bad, body("x")), Err(StoreError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            s.put_saved("bad logql", body("{app=")),
            Err(StoreError::Invalid(_))
        ));
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(d.path().join("conf")).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn dashboards_are_files_in_a_private_directory_and_the_overview_is_built_in() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().to_path_buf());
        let listed = s.dashboards().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].as_ref().unwrap().id, "overview");
        let mut o = s.dashboard("overview").unwrap();
        o.title = "My overview".into();
        // A dashboards directory others may list (made by hand) is narrowed on the first write.
        std::fs::create_dir(d.path().join(DASHBOARDS_DIR)).unwrap();
        std::fs::set_permissions(
            d.path().join(DASHBOARDS_DIR),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        s.put_dashboard("overview", o.clone()).unwrap();
        assert_eq!(mode(&d.path().join(DASHBOARDS_DIR)), 0o700);
        assert_eq!(mode(&d.path().join("dashboards/overview.json")), 0o600);
        assert_eq!(s.dashboard("overview").unwrap().title, "My overview");
        o.id = "other".into();
        assert!(matches!(
            s.put_dashboard("overview", o.clone()),
            Err(StoreError::Invalid(_))
        ));
        o.panels[0].w = 13;
        assert!(matches!(
            s.put_dashboard("other", o.clone()),
            Err(StoreError::Invalid(m)) if m.contains("panels[0].w")
        ));
        assert!(matches!(s.dashboard("Bad.Id"), Err(StoreError::Invalid(_))));
        assert!(matches!(s.dashboard("none"), Err(StoreError::Missing(_))));
        s.delete_dashboard("overview").unwrap();
        assert_eq!(s.dashboard("overview").unwrap().title, "Overview");
        assert!(matches!(
            s.delete_dashboard("overview"),
            Err(StoreError::Missing(_))
        ));
    }
}
