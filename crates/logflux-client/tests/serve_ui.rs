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
    let (mut child, url, printed) = stack.own_serve(&token_file).await;
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

/// The UI's JSON API as the page calls it: the session cookie and `X-LogFlux-UI: 1`.
struct Api {
    ui: Ui,
    cookie: String,
}

impl Api {
    async fn new(stack: &Stack) -> Api {
        let ui = Ui::new(stack);
        let cookie = ui.sign_in().await;
        Api { ui, cookie }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .ui
            .http
            .request(method, format!("{}{path}", self.ui.url))
            .header("Cookie", &self.cookie)
            .header("X-LogFlux-UI", "1");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        secured(r.headers());
        let text = r.text().await.unwrap();
        let v = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: not JSON: {text}"))
        };
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
}

#[tokio::test]
async fn the_session_api_answers_signed_in_pages_only() {
    let stack = Stack::start().await;
    let api = Api::new(&stack).await;
    let (s, v) = api.get("/api/ui/session").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        std::path::Path::new(v["user_config"].as_str().unwrap()),
        stack.dir
    );
    let r = api.ui.get("/api/ui/session", None).await;
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("token"), "{v}");
    let (s, v) = api.get("/api/ui/nothing-here").await;
    assert_eq!(s, 404);
    assert!(v["error"].is_string());
    let (s, v) = api
        .call(reqwest::Method::POST, "/api/ui/session", None)
        .await;
    assert_eq!(s, 405, "{v}");
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn saved_searches_are_created_listed_renamed_and_deleted_in_a_private_file_that_outlives_serve()
 {
    use reqwest::Method;
    let stack = Stack::start().await;
    let api = Api::new(&stack).await;
    let (s, v) = api.get("/api/ui/saved").await;
    assert_eq!((s, v), (200, serde_json::json!({"searches": []})));
    let errors = serde_json::json!({
        "query": r#"{app="default", level="error"} |= "timeout""#,
        "range": {"since": "1h"}
    });
    let (s, v) = api
        .call(
            Method::PUT,
            "/api/ui/saved/web%20errors",
            Some(errors.clone()),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "web errors");
    let (s, _) = api
        .call(
            Method::PUT,
            "/api/ui/saved/a%20night",
            Some(serde_json::json!({
                "query": "timeout db-1",
                "range": {"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T06:00:00Z"}
            })),
        )
        .await;
    assert_eq!(s, 200);
    let (_, v) = api.get("/api/ui/saved").await;
    let names: Vec<&str> = v["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a night", "web errors"], "sorted by name");
    assert_eq!(v["searches"][1]["query"], errors["query"]);
    assert_eq!(v["searches"][0]["range"]["start"], "2026-11-01T00:00:00Z");
    let file = stack.dir.join("saved-searches.json");
    assert_eq!(common::mode(&file), 0o600);
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(on_disk["version"], 1);
    assert_eq!(on_disk["searches"], v["searches"]);

    // Rename: taken → 409, missing → 404, free → renamed.
    let rename = |to: &str| Some(serde_json::json!({ "to": to }));
    let (s, v) = api
        .call(
            Method::POST,
            "/api/ui/saved/a%20night/rename",
            rename("web errors"),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    let (s, _) = api
        .call(Method::POST, "/api/ui/saved/nothing/rename", rename("x"))
        .await;
    assert_eq!(s, 404);
    let (s, v) = api
        .call(
            Method::POST,
            "/api/ui/saved/a%20night/rename",
            rename("night of 1 Nov"),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "night of 1 Nov");

    // Bad names, bodies and fields.
    for bad in ["a%2Fb", "tab%09x", &"x".repeat(101)] {
        let (s, v) = api
            .call(
                Method::PUT,
                &format!("/api/ui/saved/{bad}"),
                Some(errors.clone()),
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, v) = api
        .call(
            Method::PUT,
            "/api/ui/saved/x",
            Some(serde_json::json!({"query": "a", "range": {"since": "1h"}, "colour": "red"})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("colour"), "{v}");
    let (s, v) = api
        .call(
            Method::PUT,
            "/api/ui/saved/x",
            Some(serde_json::json!({"query": "a", "range": {"since": "soon"}})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("range.since"), "{v}");

    // Delete: 204, then 404.
    let (s, _) = api
        .call(Method::DELETE, "/api/ui/saved/web%20errors", None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = api
        .call(Method::DELETE, "/api/ui/saved/web%20errors", None)
        .await;
    assert_eq!(s, 404);

    // Another serve on the same config reads what this one wrote.
    let (mut child, url, _) = stack.own_serve(&stack.dir.join("serve.token")).await;
    let r = api
        .ui
        .http
        .get(format!("{url}/api/ui/saved"))
        .bearer_auth(&api.ui.token)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = v["searches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["night of 1 Nov"]);
    child.kill().await.unwrap();
}

#[tokio::test]
async fn dashboards_are_validated_files_and_the_overview_is_built_in_until_saved() {
    use reqwest::Method;
    let stack = Stack::start().await;
    let api = Api::new(&stack).await;
    let (s, v) = api.get("/api/ui/dashboards").await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        serde_json::json!({"dashboards": [{"id": "overview", "title": "Overview", "panels": 5}]})
    );
    let (s, overview) = api.get("/api/ui/dashboards/overview").await;
    assert_eq!(s, 200);
    assert_eq!(overview["panels"][0]["type"], "timeseries");
    assert!(
        overview["panels"][0]["query"]
            .as_str()
            .unwrap()
            .contains("$__interval")
    );
    assert!(
        !stack.dir.join("dashboards").exists(),
        "nothing written by reading"
    );

    // A new dashboard.
    let mut web = overview.clone();
    web["id"] = "web".into();
    web["title"] = "Web".into();
    web["refresh"] = serde_json::Value::Null;
    web["panels"] = serde_json::json!([{
        "id": "p1", "title": "Errors by source", "type": "table",
        "query": r#"sum by (source) (count_over_time({app="default", level="error"}[$__range]))"#,
        "x": 0, "y": 0, "w": 12, "h": 4, "limit": 10
    }]);
    let (s, v) = api
        .call(Method::PUT, "/api/ui/dashboards/web", Some(web.clone()))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(common::mode(&stack.dir.join("dashboards")), 0o700);
    let file = stack.dir.join("dashboards/web.json");
    assert_eq!(common::mode(&file), 0o600);
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(on_disk, web, "the file is the dashboard as sent");
    let (_, got) = api.get("/api/ui/dashboards/web").await;
    assert_eq!(got, web);

    // Saving the Overview writes its file; the list shows both.
    let mut o = overview.clone();
    o["title"] = "Our overview".into();
    let (s, _) = api
        .call(Method::PUT, "/api/ui/dashboards/overview", Some(o))
        .await;
    assert_eq!(s, 200);
    let (_, v) = api.get("/api/ui/dashboards").await;
    assert_eq!(
        v,
        serde_json::json!({"dashboards": [
            {"id": "overview", "title": "Our overview", "panels": 5},
            {"id": "web", "title": "Web", "panels": 1}
        ]})
    );

    // Refused: unknown fields (named with their path), bad sizes, ids.
    let mut bad = web.clone();
    bad["panels"][0]["colour"] = "red".into();
    let (s, v) = api
        .call(Method::PUT, "/api/ui/dashboards/web", Some(bad))
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"].as_str().unwrap().contains("panels[0].colour"),
        "{v}"
    );
    let mut bad = web.clone();
    bad["panels"][0]["w"] = 13.into();
    let (s, v) = api
        .call(Method::PUT, "/api/ui/dashboards/web", Some(bad))
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].as_str().unwrap().contains("panels[0].w"), "{v}");
    let (s, v) = api
        .call(Method::PUT, "/api/ui/dashboards/other", Some(web.clone()))
        .await;
    assert_eq!(s, 400, "the body's id is not the path's: {v}");
    for id in ["Web", "a.b", "..", &"a".repeat(65)] {
        let (s, v) = api.get(&format!("/api/ui/dashboards/{id}")).await;
        assert!(s == 400 || s == 404, "{id}: {s} {v}");
        assert!(v["error"].is_string());
    }

    // Delete: the file goes; the Overview's deletion brings the built-in one back.
    let (s, _) = api
        .call(Method::DELETE, "/api/ui/dashboards/web", None)
        .await;
    assert_eq!(s, 204);
    assert!(!file.exists());
    let (s, _) = api.get("/api/ui/dashboards/web").await;
    assert_eq!(s, 404);
    let (s, _) = api
        .call(Method::DELETE, "/api/ui/dashboards/overview", None)
        .await;
    assert_eq!(s, 204);
    let (_, v) = api.get("/api/ui/dashboards/overview").await;
    assert_eq!(v["title"], "Overview");
    // Without the UI header, a change is refused (CSRF).
    let r = api
        .ui
        .http
        .delete(format!("{}/api/ui/dashboards/overview", api.ui.url))
        .header("Cookie", &api.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_record_that_fails_its_integrity_check_is_named_in_the_query_s_warnings_never_shown() {
    let stack = Stack::start().await;
    let selftest = stack.damage_selftest_record().await;

    let api = Api::new(&stack).await;
    let now = logflux_proto::timefmt::now_ns();
    let range = format!(
        "start={}&end={}",
        now - 3600 * 1_000_000_000,
        now + 60 * 1_000_000_000
    );
    for query in [
        "%7Bapp%3D~%22.%2B%22%7D",
        "sum(count_over_time(%7Bapp%3D~%22.%2B%22%7D%5B1h%5D))",
    ] {
        let (s, v) = api
            .get(&format!("/loki/api/v1/query_range?query={query}&{range}"))
            .await;
        assert_eq!(s, 200, "{v}");
        let warnings = v["warnings"].as_array().unwrap_or_else(|| panic!("{v}"));
        assert_eq!(warnings.len(), 1, "{v}");
        let w = warnings[0].as_str().unwrap();
        assert!(
            w.starts_with("record agent-")
                && w.contains(" of segment ")
                && w.contains("(application default)")
                && w.ends_with("failed its integrity check: left out"),
            "{w}"
        );
        let text = v.to_string();
        assert!(
            !text.contains(&selftest),
            "the damaged record's content: {text}"
        );
        if query.starts_with("%7B") {
            assert!(text.contains("an intact entry"), "{text}");
        } else {
            assert_eq!(v["data"]["result"][0]["values"][0][1], "1", "{v}");
        }
    }
    // A query that meets no damaged record has no warnings.
    let (_, v) = api
        .get(&format!(
            "/loki/api/v1/query_range?query=%7Bsource%3D%22t%22%7D&{range}"
        ))
        .await;
    assert!(v.get("warnings").is_none(), "{v}");
}

#[tokio::test]
async fn the_export_download_holds_what_logflux_export_writes_for_the_same_range() {
    let stack = Stack::start().await;
    let lines: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            serde_json::json!({
                "payload": format!("entry {i} with \"quotes\", commas and <b>markup</b>"),
                "source": if i % 3 == 0 { "worker" } else { "api" },
                "entryType": 1, "logLevel": (i % 8) + 1,
                "metadata": {"n": i.to_string()}
            })
        })
        .collect();
    stack.send_unix(&lines).await;
    stack.wait_for_entries(31).await;
    let api = Api::new(&stack).await;
    let now = logflux_proto::timefmt::now_ns();
    let (start, end) = (now - 3600 * 1_000_000_000, now + 60 * 1_000_000_000);
    let download = |query: &'static str, format: &'static str, limit: Option<u64>| {
        let api = &api;
        async move {
            let mut params = vec![
                ("query", query.to_owned()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("format", format.to_owned()),
            ];
            if let Some(l) = limit {
                params.push(("limit", l.to_string()));
            }
            let r = api
                .ui
                .http
                .get(format!("{}/api/ui/export", api.ui.url))
                .header("Cookie", &api.cookie)
                .query(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{query} {format}");
            secured(r.headers());
            let disposition = header(r.headers(), "content-disposition").to_owned();
            assert!(
                disposition.starts_with("attachment; filename=\"logflux-")
                    && disposition.ends_with(&format!(".{format}\"")),
                "{disposition}"
            );
            let ty = header(r.headers(), "content-type").to_owned();
            (ty, r.text().await.unwrap())
        }
    };
    let export = |format: &str, extra: &[&str]| {
        let file = stack
            .tmp
            .path()
            .join(format!("export-{format}-{}", extra.len()));
        let since = logflux_proto::timefmt::format_rfc3339(start);
        let until = logflux_proto::timefmt::format_rfc3339(end);
        let mut args = vec![
            "export",
            "-O",
            file.to_str().unwrap(),
            "--format",
            format,
            "--since",
            &since,
            "--until",
            &until,
            "--force",
        ];
        args.extend_from_slice(extra);
        let (code, _, err) = stack.run(&args);
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(&file).unwrap()
    };
    for (format, ty) in [
        ("ndjson", "application/x-ndjson"),
        ("csv", "text/csv; charset=utf-8"),
        ("json", "application/json"),
    ] {
        let (got_ty, got) = download(r#"{app=~".+"}"#, format, None).await;
        assert_eq!(got_ty, ty);
        assert_eq!(
            got,
            export(format, &[]),
            "{format}: the same bytes as logflux export"
        );
    }
    // A query's conditions, as export's flags.
    let (_, got) = download(r#"{app="default", source="worker"}"#, "ndjson", None).await;
    assert_eq!(got, export("ndjson", &["--source", "worker"]));
    assert_eq!(got.lines().count(), 10);
    // The limit: the oldest N.
    let (_, got) = download(r#"{app=~".+"}"#, "ndjson", Some(5)).await;
    let all = export("ndjson", &[]);
    let first: Vec<&str> = all.lines().take(5).collect();
    assert_eq!(got.lines().collect::<Vec<_>>(), first);
    // Refused: a metric query, a bad format or limit (before any download starts).
    for (query, format, limit) in [
        ("count_over_time({app=~\".+\"}[5m])", "ndjson", "10"),
        ("{app=~\".+\"}", "xml", "10"),
        ("{app=~\".+\"}", "ndjson", "1000001"),
    ] {
        let r = api
            .ui
            .http
            .get(format!("{}/api/ui/export", api.ui.url))
            .header("Cookie", &api.cookie)
            .query(&[("query", query), ("format", format), ("limit", limit)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query} {format} {limit}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["error"].is_string());
    }
}

/// The `ui      LINK` line `logflux ui` or `serve` printed.
fn ui_link(printed: &str) -> String {
    printed
        .lines()
        .find_map(|l| l.strip_prefix("ui      "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("a `ui      LINK` line in {printed:?}"))
        .to_owned()
}

/// Follows a sign-in link: where it lands, and the cookie it sets.
async fn follow(link: &str) -> (String, String) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http.get(link).send().await.unwrap();
    assert_eq!(r.status(), 303, "{link}");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (r.headers()["location"].to_str().unwrap().to_owned(), cookie)
}

#[tokio::test]
async fn logflux_ui_links_the_running_serve_with_the_query_or_starts_its_own() {
    let stack = Stack::start().await;
    let url = stack.var("LOGFLUX_SERVE_URL").to_owned();
    let query = r#"{app="web"} |= "a b""#;
    // `logflux up`'s serve answers at the address: the link is to it, and the command ends.
    let (code, out, err) = stack.run(&[
        "ui",
        "--no-open",
        "--listen",
        url.trim_start_matches("http://"),
        "--since",
        "24h",
        query,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let link = ui_link(&out);
    // A one-time code, not the token: the link may sit in a command line or a history.
    assert!(link.starts_with(&format!("{url}/ui/login?code=")), "{link}");
    assert!(!link.contains(stack.var("LOGFLUX_SERVE_TOKEN")), "{link}");
    let (landing, _) = follow(&link).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), 401, "a code signs in once");
    assert!(again.headers().get("set-cookie").is_none());
    assert!(again.text().await.unwrap().contains("used already"));
    let hash = landing
        .strip_prefix("/ui/#/explore?")
        .unwrap_or_else(|| panic!("lands on the explore page: {landing}"));
    let params: std::collections::HashMap<String, String> = hash
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (
                k.to_owned(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap()
                    .into_owned(),
            )
        })
        .collect();
    assert_eq!(params["q"], query);
    assert_eq!(params["since"], "24h");

    // Nothing at the address: it starts a serve of its own, which runs until stopped.
    let args = ["ui", "--no-open", "--listen", "127.0.0.1:0"].map(std::ffi::OsStr::new);
    let (mut child, printed) = stack.until_serving(&args).await;
    let printed = printed.join("\n");
    let link = ui_link(&printed);
    assert!(
        !link.starts_with(&format!("{url}/")) && link.contains("/ui/login?code="),
        "its own serve, a code: {link}"
    );
    let (landing, cookie) = follow(&link).await;
    assert_eq!(landing, "/ui/#/explore?since=1h");
    let base = link.split("/ui/login").next().unwrap();
    let page = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/ui/"))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    child.kill().await.unwrap();
}

#[test]
fn logflux_ui_refuses_a_range_that_is_not_a_duration() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_logflux"))
        .args(["ui", "--no-open", "--since", "yesterday"])
        .env("LOGFLUX_CONFIG", "/nonexistent/client.yaml")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a duration"), "{err}");
}

// Two threads: the squatter answers while the test's thread waits for `logflux ui`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logflux_ui_never_hands_the_token_to_another_process_on_the_port() {
    let stack = Stack::start().await;
    let token = stack.var("LOGFLUX_SERVE_TOKEN").to_owned();
    // A squatter on the port: it answers every request 200 with a made-up proof and keeps
    // what it was sent.
    let squatter = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = squatter.local_addr().unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let keep = heard.clone();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut c, _)) = squatter.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = c.read(&mut buf).await.unwrap_or(0);
            keep.lock().unwrap().extend_from_slice(&buf[..n]);
            let body = r#"{"proof":"00"}"#;
            let _ = c
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                )
                .await;
        }
    });
    let (code, out, err) = stack.run(&["ui", "--no-open", "--listen", &addr.to_string()]);
    // Not taken for a serve: `ui` tries to start its own there, and the port is taken.
    assert_ne!(code, 0, "{out}{err}");
    assert!(!out.contains("ui      "), "no link printed: {out}");
    let heard = String::from_utf8_lossy(&heard.lock().unwrap()).into_owned();
    assert!(heard.contains("GET /ui/hello?nonce="), "{heard}");
    assert!(
        !heard.contains(&token),
        "the token reached the squatter: {heard}"
    );
}

#[tokio::test]
async fn the_cookie_is_refused_to_requests_from_other_pages_of_the_same_site() {
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    let cookie = ui.sign_in().await;
    for (site, want) in [
        ("same-origin", 200),
        ("none", 200),
        ("same-site", 403),
        ("cross-site", 403),
    ] {
        let r = ui
            .http
            .get(format!("{}/loki/api/v1/labels", ui.url))
            .header("Cookie", &cookie)
            .header("Sec-Fetch-Site", site)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want, "Sec-Fetch-Site: {site}");
    }
    // The proof of the token answers anyone (it reveals nothing), a bad nonce is refused.
    let r = ui.get("/ui/hello?nonce=abc", None).await;
    assert_eq!(r.status(), 400);
    let r = ui
        .get(&format!("/ui/hello?nonce={}", "ab".repeat(32)), None)
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let proof = v["proof"].as_str().unwrap();
    assert_eq!(proof.len(), 64);
    assert!(!proof.contains(&ui.token));
    assert_ne!(format!("logflux_session={proof}"), cookie);
}

#[tokio::test]
async fn a_sign_in_code_is_given_for_the_token_only_and_signing_out_ends_that_session_only() {
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    let code_url = format!("{}/api/ui/signin-code", ui.url);
    let r = ui
        .http
        .post(&code_url)
        .bearer_auth(&ui.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    let code = v["code"].as_str().unwrap().to_owned();
    assert_eq!(v["expires_in_s"], 300);
    // A session cookie does not make codes (a page's script could otherwise mint one).
    let first = ui.sign_in().await;
    let r = ui
        .http
        .post(&code_url)
        .header("Cookie", &first)
        .header("X-LogFlux-UI", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The code signs a second browser in.
    let r = ui
        .http
        .get(format!("{}/ui/login", ui.url))
        .query(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let second = header(r.headers(), "set-cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(first, second);
    for c in [&first, &second] {
        assert_eq!(ui.get("/api/ui/session", Some(c)).await.status(), 200);
    }
    // Signing out needs the UI's header (a form of another site cannot sign the user out).
    let logout = format!("{}/api/ui/logout", ui.url);
    let r = ui
        .http
        .post(&logout)
        .header("Cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = ui
        .http
        .post(&logout)
        .header("Cookie", &first)
        .header("X-LogFlux-UI", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = header(r.headers(), "set-cookie");
    assert!(
        cleared.starts_with("logflux_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let r = ui.get("/api/ui/session", Some(&first)).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("session has ended"));
    assert_eq!(ui.get("/ui/", Some(&first)).await.status(), 401);
    assert_eq!(ui.get("/api/ui/session", Some(&second)).await.status(), 200);

    // `logflux ui` opens the code through a local file: the browser's navigation from a
    // file: page is cross-site, and is taken for a code (only a top-level navigation).
    let code = ui
        .http
        .post(&code_url)
        .bearer_auth(&ui.token)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = |mode: &'static str, what: (&'static str, String)| {
        ui.http
            .get(format!("{}/ui/login", ui.url))
            .query(&[what])
            .header("Sec-Fetch-Site", "cross-site")
            .header("Sec-Fetch-Mode", mode)
            .header("Sec-Fetch-Dest", "document")
            .send()
    };
    let r = login("cors", ("code", code.clone())).await.unwrap();
    assert_eq!(r.status(), 403, "a script's request is not a navigation");
    let r = login("navigate", ("token", ui.token.clone()))
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "the token is never taken from another site"
    );
    let r = login("navigate", ("code", code)).await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers().get("set-cookie").is_some());
}

#[tokio::test]
async fn signing_out_closes_the_live_tails_the_session_opened_and_no_other() {
    use futures_util::StreamExt as _;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let stack = Stack::start().await;
    let ui = Ui::new(&stack);
    let cookie = ui.sign_in().await;
    let url = format!(
        "{}/loki/api/v1/tail?query=%7Bapp%3D~%22.%2B%22%7D",
        ui.url.replacen("http://", "ws://", 1)
    );
    let open = |auth: (&'static str, String)| {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert(auth.0, auth.1.parse().unwrap());
        async move {
            let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
            assert_eq!(resp.status(), 101);
            ws
        }
    };
    let mut by_cookie = open(("cookie", cookie.clone())).await;
    let mut by_token = open(("authorization", format!("Bearer {}", ui.token))).await;
    let r = ui
        .http
        .post(format!("{}/api/ui/logout", ui.url))
        .header("Cookie", &cookie)
        .header("X-LogFlux-UI", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // The session's tail is closed at once (well before its next ping, 30 s on), with 1008
    // and why (bounded wait: the close is awaited).
    let close = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match by_cookie.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => break c,
                Some(Ok(_)) => continue,
                other => panic!("the tail ended without a close: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 10 s")
    .expect("a close frame");
    assert_eq!(u16::from(close.code), 1008);
    assert!(close.reason.contains("signed out"), "{}", close.reason);
    // The token's tail goes on: a new entry still comes.
    stack
        .send_unix(&[serde_json::json!({"payload": "after the sign-out", "source": "t", "entryType": 1, "logLevel": 6})])
        .await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match by_token.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))
                    if t.contains("after the sign-out") =>
                {
                    break t;
                }
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(c))) => {
                    panic!("the token's tail was closed: {c:?}")
                }
                Some(Ok(_)) => continue,
                other => panic!("the token's tail ended: {other:?}"),
            }
        }
    })
    .await
    .expect("the entry within 30 s");
    assert!(got.contains("after the sign-out"));
}
