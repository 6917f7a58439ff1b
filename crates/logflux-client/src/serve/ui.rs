//! The web UI's pages: every file under `crates/logflux-client/ui/` compiled into the binary
//! (rust-embed, in debug builds too, so a moved binary serves the same UI) and served under
//! `/ui/`; the sign-in link (`/ui/login?token=…` or `?code=…`) that trades the token or a
//! one-time code for a session cookie; the page a browser without the cookie sees.
//!
//! Every answer of serve carries the UI's Content-Security-Policy (see [`security_headers`]):
//! scripts, styles and connections from this origin only, no inline script or style, no
//! framing. Assets are `Cache-Control: no-cache` with an ETag (the file's SHA-256), so a
//! browser revalidates each load and gets 304 when the binary has not changed.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rust_embed::RustEmbed;

use super::Service;
use super::http::form_pairs;

/// The UI's files, compiled in.
#[derive(RustEmbed)]
#[folder = "ui/"]
struct Assets;

/// The Content-Security-Policy of every answer (the UI contract's, issue 14).
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; manifest-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the sign-in link sends a browser when it names no (acceptable) `next`.
const HOME: &str = "/ui/";

/// Paths answered without credentials (they still pass the Host and Origin checks): the
/// redirect to the UI, the sign-in link, which checks the token itself, and the proof that
/// this service holds the token ([`hello`]), which reveals nothing of it.
pub(crate) fn is_public(path: &str) -> bool {
    path == "/" || path == "/ui/login" || path == "/ui/hello"
}

/// Whether `path` is one of the UI's pages (answered in HTML when refused).
pub(crate) fn is_page(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// Headers every answer carries: the CSP, no type sniffing, no referrer (the sign-in link's
/// token must not leave in a `Referer`), no framing by older browsers.
pub(crate) fn security_headers(h: &mut HeaderMap) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// `/` and `/ui`: 303 to the UI.
pub(crate) async fn to_ui() -> Response {
    see_other(HOME)
}

fn see_other(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static(HOME)),
        )],
    )
        .into_response()
}

/// A file of the UI: `/ui/` is `index.html`.
pub(crate) async fn asset(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path().strip_prefix("/ui/").unwrap_or("");
    let path = if path.is_empty() { "index.html" } else { path };
    let Some(file) = Assets::get(path) else {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("The LogFlux UI has no file {}.", html_escape(path)),
        );
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let etag_value = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\""));
    let cache = HeaderValue::from_static("no-cache");
    if if_none_match(&headers, &etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            ),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// Whether `If-None-Match` names `etag` (or `*`); weak tags compare as strong ones do.
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// The Content-Type of a UI file, by its extension.
fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "webmanifest" => "application/manifest+json",
        // README.md, LICENSE files of the vendored libraries.
        _ => "text/plain; charset=utf-8",
    }
}

/// `GET /ui/login?token=T&next=/ui/…` (the link serve prints) or `?code=C&next=…` (the link
/// `logflux ui` opens: a one-time code from `POST /api/ui/signin-code`): the right token or a
/// code still good starts a session, sets its cookie and sends the browser on (303, so the
/// secret leaves the address bar); anything else is a 401 page saying how to open the UI.
pub(crate) async fn login(State(s): State<Arc<Service>>, uri: Uri) -> Response {
    let params = form_pairs(uri.query().unwrap_or(""));
    let get = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let by_token = get("token").is_some_and(|t| s.guard.is_token(t));
    let by_code = !by_token && get("code").is_some_and(|c| s.guard.take_code(c));
    if !by_token && !by_code {
        let why = if get("code").is_some() {
            "This sign-in link was used already or is more than five minutes old: run \
             <code>logflux ui</code> again."
        } else {
            "This sign-in link's token is not this serve's: use the link <code>logflux serve</code> \
             (or <code>logflux up</code>) printed last, or run <code>logflux ui</code>."
        };
        return unauthorized_page(why);
    }
    let next = get("next")
        .and_then(safe_next)
        .unwrap_or_else(|| HOME.into());
    let cookie = match s.guard.new_session() {
        Ok(c) => c,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("starting a session: {e:#}"),
            )
                .into_response();
        }
    };
    let mut resp = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /ui/hello?nonce=N` (N: 32 to 128 hex digits): `{"proof": HMAC-SHA256(token,
/// "logflux serve hello v1:" + N)}`, so `logflux ui` can tell that the service at an address
/// holds its token before it hands a browser the token — a process of another user squatting
/// the port learns nothing. The prefix keeps a proof from ever being the session cookie's
/// value (an HMAC of another message).
pub(crate) async fn hello(State(s): State<Arc<Service>>, uri: Uri) -> Response {
    let params = form_pairs(uri.query().unwrap_or(""));
    let nonce = params
        .iter()
        .find(|(k, _)| k == "nonce")
        .map(|(_, v)| v.as_str())
        .filter(|n| (32..=128).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_hexdigit()));
    let Some(nonce) = nonce else {
        return (
            StatusCode::BAD_REQUEST,
            "nonce: 32 to 128 hexadecimal digits, fresh each time",
        )
            .into_response();
    };
    axum::Json(serde_json::json!({"proof": super::guard::hello_proof(s.guard.token(), nonce)}))
        .into_response()
}

/// What a `Location` may carry as is: the rest (spaces, quotes, non-ASCII …) is
/// percent-encoded; `%` is kept, so escapes already there stay as they are.
const LOCATION: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'|')
    .add(b'^');

/// `next` when it is a path of the UI on this site: it starts with `/ui/`, has no `//` and no
/// backslash (which some browsers read as `/`), and no control character. Anything else (a
/// full URL, `//evil.example`, `/\evil.example`) would make the sign-in link an open redirect.
fn safe_next(next: &str) -> Option<String> {
    let ok = next.starts_with("/ui/")
        && !next.contains("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then(|| utf8_percent_encode(next, LOCATION).to_string())
}

/// The page a browser without the session cookie gets for a UI path (401, not a redirect:
/// nothing to loop on).
pub(crate) fn unauthorized_page(why: &str) -> Response {
    page(
        StatusCode::UNAUTHORIZED,
        "Sign in to LogFlux",
        &format!(
            "{why}</p>\n<p>The UI opens with a sign-in link that carries serve's token: run \
             <code>logflux ui</code> (it starts <code>logflux serve</code> when none runs and \
             opens the link), or open the <code>ui</code> link <code>logflux serve</code> \
             printed: <code>http://127.0.0.1:3100/ui/login?token=…</code>. The token is in \
             <code>serve.token</code> beside the client's configuration."
        ),
    )
}

/// A small HTML page (no script, no style: the CSP allows none inline).
fn page(status: StatusCode, title: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"color-scheme\" content=\"light dark\">\n<title>{title}</title>\n</head>\n\
         <body>\n<h1>{title}</h1>\n<p>{body_html}</p>\n</body>\n</html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The sign-in link of a serve at `url` with `token`, opening `next` (a path under `/ui/`).
pub(crate) fn login_link(url: &str, token: &str, next: Option<&str>) -> String {
    signin_link(url, "token", token, next)
}

/// The sign-in link of a serve at `url` with a one-time `code`, opening `next`.
pub(crate) fn code_link(url: &str, code: &str, next: Option<&str>) -> String {
    signin_link(url, "code", code, next)
}

fn signin_link(url: &str, name: &str, secret: &str, next: Option<&str>) -> String {
    const QUERY: &AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    let mut link = format!(
        "{url}/ui/login?{name}={}",
        utf8_percent_encode(secret, QUERY)
    );
    if let Some(n) = next {
        link.push_str("&next=");
        link.push_str(&utf8_percent_encode(n, QUERY).to_string());
    }
    link
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_of_the_ui_on_this_site_are_followed_after_sign_in() {
        assert_eq!(safe_next("/ui/").as_deref(), Some("/ui/"));
        assert_eq!(
            safe_next("/ui/#/explore?q=%7Bapp%3D%22a%22%7D&since=1h").as_deref(),
            Some("/ui/#/explore?q=%7Bapp%3D%22a%22%7D&since=1h")
        );
        assert_eq!(
            safe_next("/ui/#/explore?q={app=\"a\"} é").as_deref(),
            Some("/ui/#/explore?q=%7Bapp=%22a%22%7D%20%C3%A9")
        );
        for bad in [
            "//evil.example",
            "https://evil.example/ui/",
            "/ui//evil.example",
            "/ui/\\evil.example",
            "/\\evil.example",
            "/loki/api/v1/labels",
            "/ui",
            "/ui/\n",
            "",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn every_ui_file_is_embedded_with_a_known_type() {
        let index = Assets::get("index.html").expect("ui/index.html is embedded");
        assert!(String::from_utf8_lossy(&index.data).contains("<html"));
        let mut total = 0;
        for f in Assets::iter() {
            total += Assets::get(&f).unwrap().data.len();
            if f.ends_with(".js") {
                assert_eq!(content_type(&f), "text/javascript; charset=utf-8");
            }
        }
        assert!(total < 500 * 1024, "the whole UI is under 500 KB: {total}");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(
            content_type("vendor/LICENSE.preact"),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn the_sign_in_link_carries_the_token_and_next_encoded() {
        assert_eq!(
            login_link("http://127.0.0.1:3100", "ab12", None),
            "http://127.0.0.1:3100/ui/login?token=ab12"
        );
        assert_eq!(
            login_link(
                "http://127.0.0.1:3100",
                "ab12",
                Some("/ui/#/explore?q=%7B%7D&since=1h")
            ),
            "http://127.0.0.1:3100/ui/login?token=ab12&next=/ui/%23/explore%3Fq%3D%257B%257D%26since%3D1h"
        );
        let etag = "\"abc\"";
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(if_none_match(&h, etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"x\""));
        assert!(!if_none_match(&h, etag));
    }
}
