//! `logflux ui`: opens the web UI in the browser — on the `logflux serve` already running at
//! the address (one `logflux up` started, say), else on one started here, which runs until
//! Ctrl-C. The link carries a one-time sign-in code, not the token: a command line, the
//! browser's history and its session store may be read by others, and a code is good once,
//! for five minutes. The link signs the browser in and lands on the explore page with the
//! query and range asked for.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::{ServeArgs, guard, ui};
use crate::config::Settings;

#[derive(Debug, Clone, Args)]
pub(crate) struct UiArgs {
    /// A query to open: LogQL (`{app="web"} |= "timeout"`) or plain words.
    pub(crate) query: Option<String>,
    /// The range shown, back from now: 15m, 1h, 24h, 7d, …
    #[arg(long, default_value = "1h", value_name = "DURATION", value_parser = since_arg)]
    pub(crate) since: String,
    /// Print the link only; do not start a browser.
    #[arg(long)]
    pub(crate) no_open: bool,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// The explore page's address (inside the UI) for `query` over the last `since`.
pub(crate) fn explore_path(query: Option<&str>, since: &str) -> String {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    const SET: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    let set = SET;
    let mut path = String::from("/ui/#/explore?");
    if let Some(query) = query.filter(|q| !q.trim().is_empty()) {
        path.push_str(&format!("q={}&", utf8_percent_encode(query, set)));
    }
    path.push_str(&format!("since={}", utf8_percent_encode(since, set)));
    path
}

/// Whether `since` is a duration the UI reads (digits and a unit, repeated: `1h30m`).
fn valid_since(since: &str) -> bool {
    let mut digits = false;
    let mut any = false;
    for c in since.chars() {
        match c {
            '0'..='9' => digits = true,
            's' | 'm' | 'h' | 'd' | 'w' if digits => {
                digits = false;
                any = true;
            }
            _ => return false,
        }
    }
    any && !digits
}

fn since_arg(s: &str) -> Result<String, String> {
    if valid_since(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a duration such as 15m, 1h, 24h or 7d"
        ))
    }
}

/// Whether the `logflux serve` at `url` holds `token` — asked without sending it: the service
/// must answer a fresh nonce with an HMAC of it under the token (`/ui/hello`), so whatever
/// else listens on the port (another user's process, say) is never handed the token.
async fn running_at(url: &str, token: &str) -> bool {
    let Ok(http) = client() else {
        return false;
    };
    let mut raw = [0u8; 32];
    if logflux_crypto::random_bytes(&mut raw).is_err() {
        return false;
    }
    let nonce = hex::encode(raw);
    let Ok(r) = http
        .get(format!("{url}/ui/hello"))
        .query(&[("nonce", &nonce)])
        .send()
        .await
    else {
        return false;
    };
    if !r.status().is_success() {
        return false;
    }
    let Ok(v) = r.json::<serde_json::Value>().await else {
        return false;
    };
    let want = guard::hello_proof(token, &nonce);
    v["proof"]
        .as_str()
        .is_some_and(|p| guard::constant_time_eq(p.as_bytes(), want.as_bytes()))
}

fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(2))
        .build()
}

/// A one-time sign-in code from the serve at `url` (which [`running_at`] showed holds
/// `token`).
async fn signin_code(url: &str, token: &str) -> anyhow::Result<String> {
    let r = client()?
        .post(format!("{url}/api/ui/signin-code"))
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("asking {url} for a sign-in code"))?;
    let status = r.status();
    let v: serde_json::Value = r
        .json()
        .await
        .with_context(|| format!("reading {url}'s sign-in code"))?;
    match v["code"].as_str() {
        Some(c) if status.is_success() => Ok(c.to_owned()),
        _ => anyhow::bail!("{url} gave no sign-in code ({status}): {v}"),
    }
}

/// Whether the token may travel to `url`: over HTTPS, or to this machine.
fn safe_to_send(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Starts the system's browser on `link`, where there is one to start.
fn open_browser(link: &str) -> bool {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        let display = ["DISPLAY", "WAYLAND_DISPLAY"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
        if !display {
            return false;
        }
        "xdg-open"
    };
    std::process::Command::new(program)
        .arg(link)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// A page of this user's only (mode 0600, in `$XDG_RUNTIME_DIR` or the temporary directory)
/// that sends the browser on to `link`: the browser is started on the file, so its command
/// line — which other users of the machine can read in /proc — names the file, not the
/// one-time code (Jupyter opens its token link the same way).
fn redirect_file(link: &str) -> anyhow::Result<std::path::PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("logflux-ui-{}.html", &guard::random_hex()?[..16]));
    let attr = link
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    write!(
        f,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"0;url={attr}\"><title>LogFlux</title></head>\
         <body><p><a href=\"{attr}\">Open the LogFlux UI</a></p></body></html>\n"
    )?;
    Ok(path)
}

fn show(link: &str, no_open: bool) {
    println!("ui      {link}");
    const ONCE: &str = "(the link signs in once, within five minutes; `logflux ui` makes another)";
    if no_open {
        println!("{ONCE}");
        return;
    }
    let opened = match redirect_file(link) {
        Ok(file) => open_browser(&file.to_string_lossy()),
        Err(e) => {
            eprintln!("logflux ui: {e:#}");
            false
        }
    };
    if opened {
        println!("opened in the browser");
    } else {
        println!("no browser to start here (no display): open the link above in one {ONCE}");
    }
}

pub(crate) async fn run(settings: &Settings, args: UiArgs) -> anyhow::Result<i32> {
    let next = explore_path(args.query.as_deref(), &args.since);
    let token_file = match &args.serve.token_file {
        Some(f) => f.clone(),
        None => super::default_token_file(settings)?,
    };
    // A serve already running (`logflux up`'s, or another terminal's): its link.
    let scheme = if args.serve.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let existing = std::env::var("LOGFLUX_SERVE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("{scheme}://{}", args.serve.listen));
    let existing = existing.trim_end_matches('/').to_owned();
    if token_file.exists() && safe_to_send(&existing) {
        let token = guard::load_or_create_token(&token_file)?;
        if running_at(&existing, &token).await {
            let code = signin_code(&existing, &token).await?;
            show(&ui::code_link(&existing, &code, Some(&next)), args.no_open);
            return Ok(crate::EXIT_OK);
        }
    }
    let mut serve = args.serve.clone();
    serve.token_file = Some(token_file);
    let running = super::start(settings, &serve)
        .await
        .with_context(|| format!("starting logflux serve on {}", serve.listen))?;
    let signals = super::stop_signals()?;
    show(
        &ui::code_link(&running.url, &running.guard.new_code()?, Some(&next)),
        args.no_open,
    );
    println!("serving (Ctrl-C stops)");
    signals.await;
    running.shutdown().await;
    Ok(crate::EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_explore_path_carries_the_query_and_range_encoded() {
        assert_eq!(explore_path(None, "1h"), "/ui/#/explore?since=1h");
        assert_eq!(
            explore_path(Some("{app=\"web\"} |= \"a b\""), "15m"),
            "/ui/#/explore?q=%7Bapp%3D%22web%22%7D%20%7C%3D%20%22a%20b%22&since=15m"
        );
        assert_eq!(explore_path(Some("  "), "7d"), "/ui/#/explore?since=7d");
    }

    #[test]
    fn the_token_goes_over_https_or_to_this_machine_only() {
        for ok in [
            "http://127.0.0.1:3100",
            "http://localhost:3100",
            "http://[::1]:3100",
            "http://127.0.0.2",
            "https://logs.example.net:3100",
        ] {
            assert!(safe_to_send(ok), "{ok}");
        }
        for bad in [
            "http://logs.example.net:3100",
            "http://192.168.1.5:3100",
            "http://127.0.0.1.example.net",
            "ftp://127.0.0.1",
        ] {
            assert!(!safe_to_send(bad), "{bad}");
        }
    }

    #[test]
    fn the_browser_is_started_on_an_owner_only_page_that_redirects_to_the_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let link = "http://127.0.0.1:3100/ui/login?code=ab12&next=/ui/%23/explore";
        let f = redirect_file(link).unwrap();
        let html = std::fs::read_to_string(&f).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            html.contains("content=\"0;url=http://127.0.0.1:3100/ui/login?code=ab12&amp;next=/ui/%23/explore\""),
            "{html}"
        );
        assert!(!f.to_string_lossy().contains("ab12"));
        std::fs::remove_file(f).unwrap();
    }

    #[test]
    fn since_takes_durations_only() {
        for ok in ["15m", "1h", "24h", "7d", "1h30m", "2w"] {
            assert!(valid_since(ok), "{ok}");
        }
        for bad in ["", "h", "1", "1x", "-1h", "1h2", "1 h"] {
            assert!(!valid_since(bad), "{bad}");
        }
    }
}
