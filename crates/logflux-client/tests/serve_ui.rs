//! The web UI's side of `logflux serve` (issue 14) against a real stack: its files served
//! with the CSP and their types, the sign-in link (cookie, redirect, no open redirect), the
//! session cookie as credentials for the Loki API, and the CSRF rules.
#![allow(clippy::unwrap_used)]

mod common;

use common::Stack;
use reqwest::header::HeaderMap;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Ui {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Ui {
    fn new(stack: &Stack) -> Ui {
        Ui {
            // Redirects are looked at, not followed.
            http: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            url: stack.var("LOGFLUX_SERVE_URL").to_owned(),
            token: stack.var("LOGFLUX_SERVE_TOKEN").to_owned(),
        }
    }

    /// Signs in with the link and returns the `Cookie` header value the browser would send.
    async fn sign_in(&self) -> String {
        let r = self
            .http
            .get(format!("{}/ui/login", self.url))
            .query(&[("token", &self.token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        set.split(';').next().unwrap().to_owned()
    }

    async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(c) = cookie {
            req = req.header("Cookie", c);
        }
        req.send().await.unwrap()
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header in {h:?}"))
        .to_str()
        .unwrap()
}

fn secured(h: &HeaderMap) {
    assert_eq!(header(h, "content-security-policy"), CSP);
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert_eq!(header(h, "referrer-policy"), "no-referrer");
    assert!(h.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_ui_is_served_with_its_csp_types_and_etags_to_a_signed_in_browser_only() {
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    // `/` leads to the UI.
    let r = ui.get("/", None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(header(r.headers(), "location"), "/ui/");
    // Without the cookie: a page saying how to sign in, not a redirect (nothing to loop on).
    let r = ui.get("/ui/", None).await;
    assert_eq!(r.status(), 401);
    secured(r.headers());
    assert!(header(r.headers(), "content-type").starts_with("text/html"));
    let body = r.text().await.unwrap();
    assert!(body.contains("logflux ui"), "{body}");
    assert!(!body.contains(&ui.token));
    assert_eq!(ui.get("/ui/app.js", None).await.status(), 401);

    let cookie = ui.sign_in().await;
    let r = ui.get("/ui/", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    secured(&h);
    assert_eq!(header(&h, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&h, "cache-control"), "no-cache");
    let etag = header(&h, "etag").to_owned();
    let index = r.text().await.unwrap();
    assert_eq!(
        index,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/ui/index.html")).unwrap(),
        "ui/index.html as it is in the sources"
    );
    // Revalidation: the same file is 304 without a body.
    let r = ui
        .http
        .get(format!("{}/ui/", ui.url))
        .header("Cookie", &cookie)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(header(r.headers(), "etag"), etag);
    assert!(r.bytes().await.unwrap().is_empty());
    for (path, ty) in [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        (
            "/ui/vendor/preact.module.js",
            "text/javascript; charset=utf-8",
        ),
    ] {
        let r = ui.get(path, Some(&cookie)).await;
        assert_eq!(r.status(), 200, "{path}");
        secured(r.headers());
        assert_eq!(header(r.headers(), "content-type"), ty, "{path}");
        // Another file, another tag.
        assert_ne!(header(r.headers(), "etag"), etag, "{path}");
    }
    let r = ui.get("/ui/no-such-file.js", Some(&cookie)).await;
    assert_eq!(r.status(), 404);
    secured(r.headers());
    let r = ui.get("/ui/../Cargo.toml", Some(&cookie)).await;
    assert_eq!(r.status(), 404);
    // The decrypted API's answers stay out of the browser's cache.
    let r = ui.get("/loki/api/v1/labels", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
    secured(r.headers());
}

#[tokio::test]
async fn the_sign_in_link_sets_an_httponly_strict_cookie_that_is_not_the_token_and_refuses_open_redirects()
 {
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    let login = format!("{}/ui/login", ui.url);
    let next = "/ui/#/explore?q=%7Bapp%3D%22default%22%7D&since=1h";
    let r = ui
        .http
        .get(&login)
        .query(&[("token", ui.token.as_str()), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    secured(r.headers());
    assert_eq!(header(r.headers(), "location"), next);
    let set = header(r.headers(), "set-cookie").to_owned();
    let attrs: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{set}");
    assert!(attrs.contains(&"SameSite=Strict"), "{set}");
    assert!(attrs.contains(&"Path=/"), "{set}");
    let value = attrs[0].strip_prefix("logflux_session=").unwrap();
    assert!(value.len() >= 32, "{set}");
    assert!(
        !set.contains(&ui.token),
        "the cookie is not the token: {set}"
    );
    assert!(!ui.token.contains(value));

    // A wrong token: 401, no cookie.
    let r = ui
        .http
        .get(&login)
        .query(&[("token", "0".repeat(64).as_str()), ("next", next)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("logflux serve"));
    let r = ui.get("/ui/login", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());

    // Open redirects: anything but a path of the UI goes to the UI's home.
    for bad in [
        "//evil.example",
        "https://evil",
        "https://evil.example/ui/",
        "/ui//evil.example",
        "/\\evil.example",
        "/ui/\\\\evil.example",
        "/loki/api/v1/labels",
    ] {
        let r = ui
            .http
            .get(&login)
            .query(&[("token", ui.token.as_str()), ("next", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{bad}");
        assert_eq!(header(r.headers(), "location"), "/ui/", "next={bad}");
    }

    // Another site's link to the sign-in page is refused (login CSRF), token or not.
    let r = ui
        .http
        .get(&login)
        .query(&[("token", ui.token.as_str())])
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn the_cookie_works_for_the_loki_api_but_not_to_change_things_without_the_ui_header_nor_from_another_origin()
 {
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    let cookie = ui.sign_in().await;
    let labels = format!("{}/loki/api/v1/labels", ui.url);
    let r = ui.get("/loki/api/v1/labels", Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success");
    assert!(
        v["data"].as_array().unwrap().iter().any(|l| l == "app"),
        "{v}"
    );
    // The token itself as the cookie, or another value: refused.
    for bad in [
        format!("logflux_session={}", ui.token),
        "logflux_session=00".into(),
    ] {
        let r = ui.get("/loki/api/v1/labels", Some(&bad)).await;
        assert_eq!(r.status(), 401, "{bad}");
    }
    // A POST (Loki takes queries as forms) with the cookie but without X-LogFlux-UI: what a
    // form on another site would send. Refused.
    let form = "query=%7Bapp%3D%22default%22%7D";
    let query_range = format!("{}/loki/api/v1/query_range", ui.url);
    let r = ui
        .http
        .post(&query_range)
        .header("Cookie", &cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("X-LogFlux-UI"));
    let r = ui
        .http
        .put(&labels)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // With the header (the UI's own fetch): answered.
    let r = ui
        .http
        .post(&query_range)
        .header("Cookie", &cookie)
        .header("X-LogFlux-UI", "1")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Another origin is refused even with the cookie and the header.
    for (h, v) in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = ui
            .http
            .post(&query_range)
            .header("Cookie", &cookie)
            .header("X-LogFlux-UI", "1")
            .header(h, v)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{h}: {v}");
        let r = ui
            .http
            .get(&labels)
            .header("Cookie", &cookie)
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{h}: {v}");
    }
}

#[tokio::test]
async fn serve_prints_the_ui_link_and_the_link_signs_in() {
    let stack = Stack::start().await;
    let token_file = stack.tmp.path().join("own/serve.token");
    let mut child = tokio::process::Command::from(stack.command())
        .args(["serve", "--listen", "127.0.0.1:0", "--token-file"])
        .arg(&token_file)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    loop {
        let l = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
            .await
            .expect("serve printed its settings within 60 s")
            .unwrap()
            .expect("serve printed its settings");
        if l.starts_with("serving") {
            break;
        }
        printed.push(l);
    }
    let url = printed
        .iter()
        .find_map(|l| l.strip_prefix("serve   "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_owned();
    let link = printed
        .iter()
        .find_map(|l| l.strip_prefix("ui      "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("a `ui      LINK` line: {printed:?}"))
        .to_owned();
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(link, format!("{url}/ui/login?token={}", token.trim()));
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_some());
    child.kill().await.unwrap();
}
