//! The web UI in a real browser: a `logflux up` stack (its `serve` included) filled with known
//! entries, then the Node tests in `ui-tests/` (`node --test`, Debian's Chromium driven by
//! playwright-core) against it. The tests read where everything is from the environment (see
//! `ui-tests/harness.mjs`); this test asserts that Node exited 0 and prints what it wrote.
//! Then it damages the record of `up`'s self-test entry and runs `ui-tests/integrity.test.mjs`
//! (left out of the first run) against a fresh `logflux serve`: the page names the record that
//! failed its integrity check and never shows its content.
//!
//! Skipped with a message when `node`, `ui-tests/node_modules` (`npm ci` in `ui-tests/`) or
//! `/usr/bin/chromium` is missing; a failure instead with `LOGFLUX_REQUIRE_PROGRAMS=1` (CI).
//! `LOGFLUX_UI_UPDATE_SCREENSHOTS=1` writes the screenshots to `docs/screenshots/` (else a
//! temporary directory).
//!
//! The stack's own `serve` evaluates no alert rules (the alerts page shows how to configure
//! some); a second `logflux serve --rules` of the same client, started here over
//! [`ALERT_RULES`], is where `alerts.test.mjs` finds rules that fire, wait, stay quiet and fail.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Stack;
use serde_json::{Value, json};

/// The reason the test cannot run here, if one is missing: node, the npm packages, Chromium.
fn missing(ui_tests: &Path) -> Option<String> {
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node {
        return Some("node is not installed (Debian package nodejs)".into());
    }
    if !ui_tests.join("node_modules/playwright-core").is_dir()
        || !ui_tests.join("node_modules/axe-core").is_dir()
    {
        return Some(format!(
            "the test's npm packages are not installed: run `npm ci` in {}",
            ui_tests.display()
        ));
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("/usr/bin/chromium is missing (Debian package chromium)".into());
    }
    None
}

const LEVELS: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "info",
    "debug",
];

/// The known entries: 60 from 42 to 3 minutes ago (one every 40 s), from three sources, every
/// level, plain and JSON payloads, metadata `region` and `request_id`, some with a `host`.
/// Every sixth is an error of `billing` whose payload has the word `checkout-timeout`.
/// Returned as the agent's NDJSON lines and as the fixtures the Node tests read.
fn known_entries(now_ns: i64) -> (Vec<Value>, Vec<Value>) {
    let mut lines = Vec::new();
    let mut fixtures = Vec::new();
    for i in 0..60i64 {
        let ts_ns = now_ns - 42 * 60 * 1_000_000_000 + i * 40 * 1_000_000_000;
        let (source, level, payload) = if i % 6 == 3 {
            (
                "billing",
                "error",
                format!("checkout-timeout after 30s for order {i}"),
            )
        } else {
            match i % 3 {
                0 => (
                    "web-api",
                    ["info", "notice", "debug", "warning"][(i as usize / 3) % 4],
                    format!("GET /orders/{i} 200 in {}ms", i * 3),
                ),
                1 => (
                    "worker",
                    ["info", "warning", "critical", "debug"][(i as usize / 3) % 4],
                    json!({"job": "resize", "id": i, "ok": i % 2 == 0, "took_ms": i * 7})
                        .to_string(),
                ),
                _ => (
                    "billing",
                    ["info", "alert", "emergency", "notice"][(i as usize / 3) % 4],
                    format!("invoice {i} paid"),
                ),
            }
        };
        let mut metadata = json!({
            "region": if i % 2 == 0 { "eu-west" } else { "us-east" },
            "request_id": format!("r-{i}"),
        });
        if i % 5 == 0 {
            metadata["host"] = json!("db-1");
        }
        let level_no = LEVELS.iter().position(|l| *l == level).unwrap() + 1;
        lines.push(json!({
            "payload": payload,
            "source": source,
            "entryType": 1,
            "logLevel": level_no,
            "timestamp": logflux_proto::timefmt::format_rfc3339(ts_ns),
            "metadata": metadata,
        }));
        fixtures.push(json!({
            "ts_ns": ts_ns.to_string(),
            "app": "default",
            "source": source,
            "level": level,
            "payload": payload,
            "metadata": metadata,
        }));
    }
    (lines, fixtures)
}

/// The rules `alerts.test.mjs` reads, over the known entries (all within the last hour, 10 of
/// them `checkout-timeout` errors of `billing`). Evaluated every second, so each has a state
/// as soon as the backfill is done: `CheckoutTimeouts` fires (`for: 0`), `CheckoutTimeoutsSustained`
/// stays pending (`for: 1h`), `NoSuchWord` stays inactive, and in the group `limited` (at
/// most one alert per rule) `EverySource` fails: its three sources exceed the limit.
const ALERT_RULES: &str = r#"groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutTimeouts
        expr: sum by (source) (count_over_time({source="billing"} |= "checkout-timeout" [1h])) > 0
        labels:
          severity: page
          team: payments
        annotations:
          summary: '{{ $labels.source }}: {{ $value }} checkout timeouts in the last hour'
          description: Orders time out at checkout; see the billing runbook.
      - alert: CheckoutTimeoutsSustained
        expr: sum by (source) (count_over_time({source="billing"} |= "checkout-timeout" [1h])) > 5
        for: 1h
        labels:
          severity: ticket
        annotations:
          summary: more than 5 checkout timeouts an hour, for an hour
      - alert: NoSuchWord
        expr: sum by (source) (count_over_time({source="billing"} |= "no-such-word" [1h])) > 0
        annotations:
          summary: never fires
  - name: limited
    interval: 1s
    limit: 1
    rules:
      - alert: EverySource
        expr: sum by (source) (count_over_time({source=~"web-api|worker|billing"} [1h])) > 0
"#;

/// A `logflux serve --rules` of the stack's client on a free port, with [`ALERT_RULES`] and no
/// receivers (alerts are only listed): the process (killed on drop), its URL and token.
async fn serve_with_rules(stack: &Stack) -> (tokio::process::Child, String, String) {
    let base = stack.tmp.path().join("alerting");
    let rules = base.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("checkout.yaml"), ALERT_RULES).unwrap();
    // A file with an error: left out, and named on the page.
    std::fs::write(
        rules.join("zz-broken.yaml"),
        "groups:\n  - name: broken\n    rules:\n      - alert: Broken\n        expr: '{source=\"x\"}'\n",
    )
    .unwrap();
    let token_file = base.join("serve.token");
    let state = base.join("state");
    let (child, url, _) = stack
        .own_serve_with(
            &token_file,
            &[
                "--rules".as_ref(),
                rules.as_os_str(),
                "--alerts-state".as_ref(),
                state.as_os_str(),
            ],
        )
        .await;
    let token = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_owned();
    (child, url, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_ui_in_chromium() {
    let ui_tests = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ui-tests");
    if let Some(why) = missing(&ui_tests) {
        assert!(
            std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
            "the browser tests cannot run (LOGFLUX_REQUIRE_PROGRAMS=1): {why}"
        );
        eprintln!("SKIPPED: {why}");
        return;
    }
    let stack = Stack::start().await;
    let (lines, fixtures) = known_entries(logflux_proto::timefmt::now_ns());
    stack.send_unix(&lines).await;
    // `logflux up`'s own self-test entry is there too.
    stack.wait_for_entries(lines.len() + 1).await;

    let serve = stack.var("LOGFLUX_SERVE_URL").to_owned();
    let token = stack.var("LOGFLUX_SERVE_TOKEN").to_owned();
    let (_alerts_serve, alerts_url, alerts_token) = serve_with_rules(&stack).await;
    let fixtures_file = stack.tmp.path().join("ui-fixtures.json");
    std::fs::write(
        &fixtures_file,
        serde_json::to_vec_pretty(&fixtures).unwrap(),
    )
    .unwrap();
    let shots = if std::env::var("LOGFLUX_UI_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        stack.tmp.path().join("screenshots")
    };

    let env = NodeEnv {
        dir: &ui_tests,
        url: &serve,
        token: &token,
        fixtures: &fixtures_file,
        socket: stack.var("LOGFLUX_AGENT_SOCKET"),
        screenshots: &shots,
        alerts_url: &alerts_url,
        alerts_token: &alerts_token,
        damaged: None,
    };
    // The files given (`LOGFLUX_UI_TESTS=explore.test.mjs`), else every `*.test.mjs`; the
    // integrity file runs on its own after them, once a record is damaged.
    let (after_damage, files): (Vec<String>, Vec<String>) = match std::env::var("LOGFLUX_UI_TESTS")
    {
        Ok(only) => only.split_whitespace().map(str::to_owned).collect(),
        Err(_) => {
            let mut all: Vec<String> = std::fs::read_dir(&ui_tests)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".test.mjs"))
                .collect();
            all.sort();
            all
        }
    }
    .into_iter()
    .partition(|f| f == INTEGRITY);
    if !files.is_empty() {
        run_node(&env, &files).await;
    }
    if after_damage.is_empty() {
        return;
    }

    // A record that fails its integrity check: damaged now, since every later search meets it.
    // Read through a serve of its own: up's has the record's entries cached from the searches
    // above and answers from that cache, without a warning (records are taken never to change).
    let damaged = stack.damage_oldest_segment();
    let token_file = stack.tmp.path().join("own/serve.token");
    let (_own, own_url, _) = stack.own_serve(&token_file).await;
    let own_token = std::fs::read_to_string(&token_file).unwrap();
    run_node(
        &NodeEnv {
            url: &own_url,
            token: own_token.trim(),
            damaged: Some(&damaged),
            ..env
        },
        &after_damage,
    )
    .await;
}

/// The test file that runs after a record is damaged (left out of the first run).
const INTEGRITY: &str = "integrity.test.mjs";

/// What the Node tests read from their environment (see `ui-tests/harness.mjs`).
#[derive(Clone, Copy)]
struct NodeEnv<'a> {
    dir: &'a Path,
    url: &'a str,
    token: &'a str,
    fixtures: &'a Path,
    socket: &'a str,
    screenshots: &'a Path,
    /// The `logflux serve --rules` the alerts page is tested against ([`serve_with_rules`]).
    alerts_url: &'a str,
    alerts_token: &'a str,
    /// The payload of the entry whose record fails its integrity check, which must never show.
    damaged: Option<&'a str>,
}

/// Runs `node --test` on `files` in `env.dir`; asserts that it exited 0 and prints its output.
async fn run_node(env: &NodeEnv<'_>, files: &[String]) {
    let mut node = tokio::process::Command::new("node");
    // A test (and a test file, which node times as one) that hangs fails by name after 5
    // minutes, instead of the whole run stopping at the limit below.
    node.args(["--test", "--test-concurrency=1", "--test-timeout=300000"])
        .args(files)
        .current_dir(env.dir)
        .env("LOGFLUX_UI_URL", env.url)
        .env(
            "LOGFLUX_UI_LINK",
            format!("{}/ui/login?token={}", env.url, env.token),
        )
        .env("LOGFLUX_SERVE_TOKEN", env.token)
        .env("LOGFLUX_UI_FIXTURES", env.fixtures)
        .env("LOGFLUX_UI_SOCKET", env.socket)
        .env("LOGFLUX_UI_SCREENSHOTS", env.screenshots)
        .env("LOGFLUX_UI_ALERTS_URL", env.alerts_url)
        .env(
            "LOGFLUX_UI_ALERTS_LINK",
            format!("{}/ui/login?token={}", env.alerts_url, env.alerts_token),
        )
        .env("LOGFLUX_UI_ALERTS_TOKEN", env.alerts_token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group: node runs each test file in a child process, and each
        // starts a Chromium; a hang must take all of them down, not node alone.
        .process_group(0)
        .kill_on_drop(true);
    if let Some(payload) = env.damaged {
        node.env("LOGFLUX_UI_DAMAGED", payload);
    }
    let child = node.spawn().unwrap();
    let group = child.id().expect("node's pid");
    let out = match tokio::time::timeout(Duration::from_secs(600), child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{group}")])
                .status();
            panic!(
                "the browser tests did not finish within 10 minutes (node, its test processes and their Chromium were killed)"
            );
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "node --test {files:?} failed ({}): see its output above",
        out.status
    );
}
