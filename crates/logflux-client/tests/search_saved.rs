//! `logflux search --saved NAME` end to end: a search saved by the web UI (its file in the
//! client's config directory) run from the command line — LogQL queries with exactly the
//! engine's result, plain words as `search WORDS`, its time range unless flags give one,
//! further flags narrowing it, and the errors that say what to do.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::Stack;
use serde_json::json;

fn payloads(v: &[serde_json::Value]) -> BTreeSet<String> {
    v.iter()
        .map(|e| e["payload"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_saved_search_runs_from_the_command_line_exactly_as_its_query_says() {
    let stack = Stack::start().await;
    // Levels: 4 = error, 7 = info (LogFlux numbers).
    stack
        .send_unix(&[
            json!({"payload": "upstream timeout after 30s", "source": "api", "entryType": 1, "logLevel": 4}),
            json!({"payload": "upstream timeout after 60s", "source": "api", "entryType": 1, "logLevel": 7}),
            json!({"payload": "db timeout", "source": "worker", "entryType": 1, "logLevel": 4}),
            json!({"payload": "connection refused", "source": "api", "entryType": 1, "logLevel": 4}),
        ])
        .await;
    stack.wait_for_entries(5).await;
    let file = json!({"version": 1, "searches": [
        {"name": "api errors", "query": r#"{app="default", level="error", source="api"} |= "timeout""#,
         "range": {"since": "1h"}},
        {"name": "words", "query": "timeout upstream", "range": {"since": "1h"}},
        {"name": "regex", "query": r#"{app="default"} |~ "timeout after [0-9]+s""#,
         "range": {"since": "1h"}},
        {"name": "not error", "query": r#"{app=~"def.*", level!="error"}"#, "range": {"since": "1h"}},
        {"name": "counts", "query": r#"count_over_time({app="default"}[5m])"#, "range": {"since": "1h"}},
        {"name": "long ago", "query": r#"{app="default"}"#,
         "range": {"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}},
        {"name": "elsewhere", "query": r#"{app="no-such-app"}"#, "range": {"since": "1h"}},
    ]});
    let path = stack.dir.join("saved-searches.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();

    let (code, v) = stack.search(&["--saved", "api errors"]);
    assert_eq!(code, 0);
    assert_eq!(payloads(&v), set(&["upstream timeout after 30s"]));
    // Plain words: each must occur, as `search WORDS`.
    let (_, v) = stack.search(&["--saved", "words"]);
    assert_eq!(
        payloads(&v),
        set(&["upstream timeout after 30s", "upstream timeout after 60s"])
    );
    let (_, plain) = stack.search(&["timeout", "upstream"]);
    assert_eq!(payloads(&plain), payloads(&v));
    // A regular expression no token can prune: the engine's test decides.
    let (_, v) = stack.search(&["--saved", "regex"]);
    assert_eq!(
        payloads(&v),
        set(&["upstream timeout after 30s", "upstream timeout after 60s"])
    );
    // Negative and regex matchers.
    let (_, v) = stack.search(&["--saved", "not error"]);
    let p = payloads(&v);
    assert!(p.contains("upstream timeout after 60s"), "{p:?}");
    assert_eq!(
        p.len(),
        2,
        "the info entry and the self-test's notice: {p:?}"
    );
    // Further flags narrow.
    let (_, v) = stack.search(&["--saved", "regex", "--level", "err"]);
    assert_eq!(payloads(&v), set(&["upstream timeout after 30s"]));
    let (code, v) = stack.search(&["--saved", "api errors", "--source", "worker"]);
    assert_eq!((code, v.len()), (1, 0));
    // The saved range applies unless flags give one.
    let (code, _) = stack.search(&["--saved", "long ago"]);
    assert_eq!(code, 1, "nothing in 2020");
    let (_, v) = stack.search(&["--saved", "long ago", "--since", "1h"]);
    assert_eq!(v.len(), 5);
    let (code, _) = stack.search(&["--saved", "elsewhere"]);
    assert_eq!(code, 1);

    // Errors that say what to do.
    let (code, _, err) = stack.run(&["search", "--saved", "counts"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("metric query") && err.contains("logflux ui"),
        "{err}"
    );
    let (code, _, err) = stack.run(&["search", "--saved", "nothing"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no saved search named \"nothing\"") && err.contains("\"api errors\""),
        "{err}"
    );
    std::fs::write(&path, r#"{"version":1,"searches":[],"extra":1}"#).unwrap();
    let (code, _, err) = stack.run(&["search", "--saved", "words"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("saved-searches.json") && err.contains("extra"),
        "{err}"
    );
}
