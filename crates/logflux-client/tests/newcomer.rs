//! A newcomer's first hour with the client: keys where `logflux keys generate` put them,
//! `logflux config` showing what is missing, error messages that say each thing once, and an
//! export that found nothing leaving no file.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, Stack};
use serde_json::json;

/// `logflux ARGS` with only what the test sets: no LOGFLUX_* or proxy variables of its own,
/// HOME `home`.
fn logflux(home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("LOGFLUX_")
            || k.starts_with("XDG_")
            || k.ends_with("_PROXY")
            || k.ends_with("_proxy")
        {
            c.env_remove(k);
        }
    }
    c.env("HOME", home).env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn config_marks_a_missing_token_file_and_server_and_commands_say_it_once() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("client.yaml");
    std::fs::write(
        &cfg,
        "profiles:\n  prod:\n    token_file: prod.pat\n  dev:\n    server: http://127.0.0.1:9\n    token_file: prod.pat\n",
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let pat = home.path().join("prod.pat");
    let token_problem = format!(
        "token file {p} does not exist: write the access token into it (chmod 600 {p}), or set LOGFLUX_PAT",
        p = pat.display()
    );

    // Regression: `logflux --profile prod config` failed on the missing token file.
    let (code, out, err) = logflux(
        home.path(),
        &[],
        &["--config", cfg_s, "--profile", "prod", "config"],
    );
    assert_eq!(code, 0, "{err}");
    let expected = format!(
        "config file       {cfg}\n\
         profile           prod\n\
         server            -  (!) missing: set LOGFLUX_SERVER, or `server:` in the client config\n\
         token             -  (!) {token_problem}\n\
         private_key_file  -  (!) missing: set LOGFLUX_PRIVATE_KEY_FILE, or `private_key_file:` in the client config (or run `logflux keys generate`)\n\
         search_key_file   -\n\
         ca_file           -\n\
         alert_rules       -\n\
         alert_receivers   -\n",
        cfg = cfg.display()
    );
    assert_eq!(out, expected);

    // Regression: "token file file …". Said once, with what to do.
    let (code, _, err) = logflux(
        home.path(),
        &[],
        &["--config", cfg_s, "--profile", "dev", "search", "x"],
    );
    assert_eq!(code, 2);
    assert_eq!(err, format!("logflux: error: {token_problem}\n"));

    // A token file others can read: named once, with the fix.
    std::fs::write(&pat, "lf_pat_secret\n").unwrap();
    std::fs::set_permissions(&pat, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (code, _, err) = logflux(
        home.path(),
        &[],
        &["--config", cfg_s, "--profile", "dev", "search", "x"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        err,
        format!(
            "logflux: error: token file {p} is accessible by group or others (mode 0644); fix it with: chmod 600 {p}\n",
            p = pat.display()
        )
    );
    assert!(!err.contains("lf_pat_secret"));

    // An invalid config file is still an error of `config`, naming the file once.
    std::fs::write(&cfg, "servr: x\n").unwrap();
    let (code, _, err) = logflux(home.path(), &[], &["--config", cfg_s, "config"]);
    assert_eq!(code, 2);
    assert_eq!(err.matches("client.yaml").count(), 1, "{err}");
    assert!(err.contains("servr"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn default_key_location_403_text_and_an_export_that_matched_nothing() {
    let stack = Stack::start().await;
    stack
        .send_unix(&[
            json!({"payload": "first hour", "source": "newcomer", "entryType": 1, "logLevel": 6}),
        ])
        .await;
    stack.wait_for_entries(2).await;

    // Keys where `logflux keys generate` writes them, and a config naming no key at all.
    let home = tempfile::tempdir().unwrap();
    let keys = home.path().join(".config/logflux/keys");
    std::fs::create_dir_all(keys.parent().unwrap()).unwrap();
    std::fs::create_dir(&keys).unwrap();
    for f in ["private_key.pem", "search.key"] {
        std::fs::copy(stack.dir.join("keys").join(f), keys.join(f)).unwrap();
        std::fs::set_permissions(
            keys.join(f),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
    }
    let cfg = home.path().join("client.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server: {}\ntoken_file: {}\n",
            stack.var("LOGFLUX_SERVER"),
            stack.dir.join("token").display()
        ),
    )
    .unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let (code, out, err) = logflux(home.path(), &[], &["--config", cfg_s, "config"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "private_key_file  {} (default location)\n",
            keys.join("private_key.pem").display()
        )) && out.contains(&format!(
            "search_key_file   {} (default location)\n",
            keys.join("search.key").display()
        )),
        "{out}"
    );
    assert!(!out.contains("(!)"), "{out}");
    let (code, out, err) = logflux(
        home.path(),
        &[],
        &[
            "--config", cfg_s, "search", "--format", "ndjson", "first", "hour",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        err.is_empty(),
        "the search key was found too (no warning): {err}"
    );

    // A 403, said once: no "…: HTTP status 403" after the message.
    let (code, token, err) = stack.run(&[
        "admin", "tokens", "create", "--name", "reader", "--scopes", "read",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = logflux(
        home.path(),
        &[("LOGFLUX_PAT", token.trim())],
        &["--config", cfg_s, "admin", "tokens", "list"],
    );
    assert_eq!(code, 2);
    assert_eq!(
        err,
        "logflux: error: /v1/admin/tokens: the server answered 403 Forbidden: this token's scopes (read) do not include admin (the token lacks the scope this needs)\n"
    );

    // Export: a sensible rate; nothing matched leaves no file.
    let out_file = home.path().join("out.ndjson");
    let out_s = out_file.to_str().unwrap();
    let (code, _, err) = logflux(
        home.path(),
        &[],
        &["--config", cfg_s, "export", "-O", out_s, "first"],
    );
    assert_eq!(code, 0, "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("exported 1 entries from ") && last.contains(&format!(" to {out_s} in ")),
        "{err}"
    );
    // Regression: the rate read "184,615.7835/s". Now: "N entries/s", one decimal at most.
    let rate = last
        .rsplit_once(" (")
        .and_then(|(_, r)| r.strip_suffix(" entries/s)"))
        .unwrap_or_else(|| panic!("no rate in {last:?}"));
    assert!(
        rate.split_once('.').is_none_or(|(_, d)| d.len() == 1),
        "{last}"
    );
    let nothing = home.path().join("nothing.ndjson");
    let nothing_s = nothing.to_str().unwrap();
    let (code, _, err) = logflux(
        home.path(),
        &[],
        &[
            "--config",
            cfg_s,
            "export",
            "-O",
            nothing_s,
            "--contains",
            "no-such-words-here",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        format!("logflux: nothing matched; {nothing_s} not written\n")
    );
    assert!(!nothing.exists(), "no empty file left");
    assert!(
        !home.path().join("nothing.ndjson.partial").exists(),
        "no .partial left"
    );
}
