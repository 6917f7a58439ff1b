//! `logflux serve` holds decryption keys on a loopback port that every web page in a browser
//! can reach. A real browser (Debian's `chromium`, headless) loads a page of another origin
//! that knows the token — the worst case — and tries to read serve's answers by `fetch` (with
//! the token as bearer, without it, in `no-cors` mode) and by a WebSocket to the live tail.
//! None of it may reach the page. Skipped with a message where `chromium` is missing; a failure
//! with `LOGFLUX_REQUIRE_PROGRAMS=1` (CI).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::Stack;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn chromium() -> Option<&'static str> {
    for p in ["chromium", "chromium-browser"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(p);
        }
    }
    assert!(
        std::env::var("LOGFLUX_REQUIRE_PROGRAMS").as_deref() != Ok("1"),
        "chromium is required (LOGFLUX_REQUIRE_PROGRAMS=1; Debian package chromium)"
    );
    eprintln!("SKIPPED: chromium not found (Debian package chromium)");
    None
}

/// The attacker's page: every attempt writes what it got into `#result`.
fn page(serve: &str, token: &str) -> String {
    let ws = serve.replacen("http://", "ws://", 1);
    let api = format!("{serve}/loki/api/v1/query_range?query=%7Bsource%3D%22browser%22%7D");
    let tail = format!("{ws}/loki/api/v1/tail?query=%7Bsource%3D%22browser%22%7D");
    let tail_userinfo = tail.replacen("ws://", &format!("ws://grafana:{token}@"), 1);
    format!(
        r#"<!doctype html><html><head><title>attacker</title></head><body><pre id="result"></pre>
<script>
const out = [];
const note = (s) => {{ out.push(s); document.getElementById("result").textContent = out.join("\n"); }};
async function tryFetch(name, init) {{
  try {{
    const r = await fetch({api:?}, init);
    const t = await r.text();
    note(name + ": READ status=" + r.status + " type=" + r.type + " body=" + t.slice(0, 200));
  }} catch (e) {{
    note(name + ": blocked " + e.name);
  }}
}}
function tryWs(name, url) {{
  return new Promise((done) => {{
    let ws;
    try {{ ws = new WebSocket(url); }} catch (e) {{ note(name + ": blocked " + e.name); return done(); }}
    const timer = setTimeout(() => {{ note(name + ": no message"); try {{ ws.close(); }} catch (e) {{}} done(); }}, 3000);
    ws.onmessage = (m) => {{ clearTimeout(timer); note(name + ": READ " + String(m.data).slice(0, 200)); done(); }};
    ws.onerror = () => {{ clearTimeout(timer); note(name + ": blocked error"); done(); }};
  }});
}}
(async () => {{
  // The control: this page's own origin answers, so a "blocked" below is serve's doing and
  // the browser's rules, not a browser that cannot fetch at all.
  try {{
    const own = await (await fetch("/attack.html")).text();
    note("control: " + (own.includes("attacker") ? "READ own page" : "unexpected"));
  }} catch (e) {{
    note("control: failed " + e.name);
  }}
  await tryFetch("bearer", {{ headers: {{ Authorization: "Bearer {token}" }} }});
  await tryFetch("basic", {{ headers: {{ Authorization: "Basic " + btoa("grafana:{token}") }} }});
  await tryFetch("plain", {{}});
  await tryFetch("credentials", {{ credentials: "include" }});
  await tryFetch("no-cors", {{ mode: "no-cors", headers: {{ Authorization: "Bearer {token}" }} }});
  await tryWs("websocket", {tail:?});
  await tryWs("websocket-userinfo", {tail_userinfo:?});
  note("done");
}})();
</script></body></html>"#
    )
}

/// Serves `html` to every request on a loopback port of its own (another origin than serve's).
async fn page_server(html: String) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = c.write_all(head.as_bytes()).await;
                let _ = c.write_all(html.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_another_origin_in_chromium_cannot_read_serve_even_with_the_token() {
    let Some(browser) = chromium() else {
        return;
    };
    let stack = Stack::start().await;
    let canary = "browser-canary-7d41c2";
    stack
        .send_unix(&[
            json!({"payload": canary, "source": "browser", "entryType": 1, "logLevel": 6}),
        ])
        .await;
    stack.wait_for_entries(2).await;
    let serve = stack.var("LOGFLUX_SERVE_URL").to_owned();
    let token = stack.var("LOGFLUX_SERVE_TOKEN").to_owned();
    // The same request from a program (no Origin) does read the entry: the page's failure
    // below is the guard and the browser's rules, not a query that finds nothing.
    let direct = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{serve}/loki/api/v1/query_range"))
        .bearer_auth(&token)
        .query(&[("query", "{source=\"browser\"}")])
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status(), 200);
    assert!(direct.text().await.unwrap().contains(canary));

    let at = page_server(page(&serve, &token)).await;
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--virtual-time-budget=20000",
                "--dump-dom",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("http://{at}/attack.html"))
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium did not finish within 120 s")
    .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    // What the page's script wrote (the script's own text is in the DOM too).
    let dom = page
        .split_once("<pre id=\"result\">")
        .and_then(|(_, r)| r.split_once("</pre>"))
        .map(|(r, _)| r.to_owned())
        .unwrap_or_default();
    assert!(
        dom.lines().any(|l| l == "done"),
        "the page did not run to its end: {page}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        dom.lines().any(|l| l == "control: READ own page"),
        "the browser could not fetch its own page: {dom}"
    );
    for attempt in [
        "bearer",
        "basic",
        "plain",
        "credentials",
        "no-cors",
        "websocket",
        "websocket-userinfo",
    ] {
        assert!(
            dom.contains(&format!("{attempt}: ")),
            "{attempt} did not run: {dom}"
        );
    }
    eprintln!("what the page got:\n{dom}");
    assert!(
        !dom.contains(canary),
        "a cross-origin page read the log: {dom}"
    );
    // An opaque no-cors answer is "READ" with type=opaque and no body; anything else is a leak.
    for line in dom
        .lines()
        .filter(|l| l.contains(": READ") && !l.starts_with("control:"))
    {
        assert!(
            line.starts_with("no-cors: READ status=0 type=opaque body="),
            "a cross-origin page read an answer: {line}"
        );
    }
}
