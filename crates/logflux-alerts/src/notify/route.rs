//! The routing tree, as Alertmanager walks it: an alert goes down the first child that matches
//! (and on to later siblings only when that child says `continue`); a node none of whose
//! children match takes the alert itself. Children inherit what they do not set.

use std::time::Duration;

use super::config::RouteConfig;
use super::matchers::{self, Matcher, quote};
use crate::LabelSet;

/// Which labels make an aggregation group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupBy {
    /// `['...']`: every label, so one group per alert.
    All,
    Labels(Vec<String>),
}

/// A node of the tree with its inherited options resolved.
#[derive(Debug)]
pub(crate) struct Route {
    /// Alertmanager's route key: the matchers from the root down, `{}/{a="b"}`.
    pub(crate) key: String,
    pub(crate) receiver: String,
    pub(crate) group_by: GroupBy,
    pub(crate) group_wait: Duration,
    pub(crate) group_interval: Duration,
    pub(crate) repeat_interval: Duration,
    continue_matching: bool,
    matchers: Vec<Matcher>,
    routes: Vec<Route>,
}

impl Route {
    /// Builds the tree from a checked configuration (matchers were parsed by the check).
    pub(crate) fn build(c: &RouteConfig) -> Result<Self, String> {
        let root = Self {
            key: String::new(),
            receiver: String::new(),
            group_by: GroupBy::Labels(Vec::new()),
            group_wait: Duration::from_secs(30),
            group_interval: Duration::from_secs(300),
            repeat_interval: Duration::from_secs(4 * 3600),
            continue_matching: false,
            matchers: Vec::new(),
            routes: Vec::new(),
        };
        Self::node(c, &root, true)
    }

    fn node(c: &RouteConfig, parent: &Route, is_root: bool) -> Result<Self, String> {
        let mut ms = Vec::new();
        for m in &c.matchers {
            ms.extend(matchers::parse(m)?);
        }
        for (k, v) in &c.match_eq {
            ms.push(Matcher::equal(k, v));
        }
        for (k, v) in &c.match_re {
            ms.push(Matcher::regex(k, v, false)?);
        }
        let own = format!(
            "{{{}}}",
            ms.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let key = if is_root {
            own
        } else {
            format!("{}/{own}", parent.key)
        };
        let group_by = match &c.group_by {
            Some(g) if g.iter().any(|l| l == "...") => GroupBy::All,
            Some(g) => {
                let mut g = g.clone();
                g.sort();
                g.dedup();
                GroupBy::Labels(g)
            }
            None => parent.group_by.clone(),
        };
        let mut r = Self {
            key,
            receiver: c
                .receiver
                .clone()
                .unwrap_or_else(|| parent.receiver.clone()),
            group_by,
            group_wait: c.group_wait.map_or(parent.group_wait, |d| d.0),
            group_interval: c.group_interval.map_or(parent.group_interval, |d| d.0),
            repeat_interval: c.repeat_interval.map_or(parent.repeat_interval, |d| d.0),
            continue_matching: c.continue_matching,
            matchers: ms,
            routes: Vec::new(),
        };
        let mut children = Vec::with_capacity(c.routes.len());
        for child in &c.routes {
            children.push(Self::node(child, &r, false)?);
        }
        r.routes = children;
        Ok(r)
    }

    /// The routes that take an alert with these labels (at least the root's, for the root).
    pub(crate) fn matches(&self, labels: &LabelSet) -> Vec<&Route> {
        if !self.matchers.iter().all(|m| m.matches(labels)) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.routes {
            let m = child.matches(labels);
            let matched = !m.is_empty();
            all.extend(m);
            if matched && !child.continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// The alert's labels that name its group on this route.
    pub(crate) fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }

    /// Every route of the tree (for the longest repeat interval).
    pub(crate) fn walk(&self) -> Vec<&Route> {
        let mut v = vec![self];
        for c in &self.routes {
            v.extend(c.walk());
        }
        v
    }
}

/// `{a="b",c="d"}`, as Alertmanager prints a label set in group keys.
pub(crate) fn render_labels(l: &LabelSet) -> String {
    let pairs: Vec<String> = l.iter().map(|(k, v)| format!("{k}={}", quote(v))).collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> Route {
        let c: RouteConfig = serde_yaml_ng::from_str(yaml).unwrap();
        Route::build(&c).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const TREE: &str = r#"
receiver: default
group_by: [alertname]
group_wait: 10s
routes:
- matchers: ['severity="critical"']
  receiver: pager
  continue: true
  group_by: ['...']
- match: {team: db}
  receiver: db
  repeat_interval: 1h
  routes:
  - match_re: {env: "prod|staging"}
    receiver: db-prod
- matchers: ['team=~"db|web"']
  receiver: never-after-db
"#;

    #[test]
    fn first_match_wins_continue_goes_on_default_takes_the_rest() {
        let t = tree(TREE);
        let recv = |l: &[(&str, &str)]| -> Vec<String> {
            t.matches(&labels(l))
                .iter()
                .map(|r| r.receiver.clone())
                .collect()
        };
        assert_eq!(recv(&[("team", "web")]), ["never-after-db"]);
        assert_eq!(recv(&[("team", "db")]), ["db"]);
        assert_eq!(recv(&[("team", "db"), ("env", "prod")]), ["db-prod"]);
        assert_eq!(
            recv(&[("team", "db"), ("severity", "critical")]),
            ["pager", "db"]
        );
        assert_eq!(recv(&[("severity", "critical")]), ["pager"]);
        assert_eq!(recv(&[("team", "ops")]), ["default"]);
    }

    #[test]
    fn children_inherit_and_keys_name_the_path() {
        let t = tree(TREE);
        let l = labels(&[("team", "db"), ("env", "prod"), ("alertname", "A")]);
        let r = t.matches(&l)[0];
        assert_eq!(r.key, r#"{}/{team="db"}/{env=~"prod|staging"}"#);
        assert_eq!(r.group_wait, Duration::from_secs(10));
        assert_eq!(r.group_interval, Duration::from_secs(300));
        assert_eq!(r.repeat_interval, Duration::from_secs(3600));
        assert_eq!(render_labels(&r.group_labels(&l)), r#"{alertname="A"}"#);
        let crit = labels(&[("severity", "critical"), ("x", "1")]);
        assert_eq!(t.matches(&crit)[0].group_labels(&crit), crit);
    }
}
