//! The local access guard of `logflux serve`: it holds decryption keys on a port every local
//! user and every web page in a browser can reach, so every request must
//!
//! - name this service in `Host` (the listen address, `localhost:PORT`, `127.0.0.1:PORT`,
//!   `[::1]:PORT`, or a name given with `--allow-host`): a page that rebinds its own DNS name
//!   to 127.0.0.1 sends its own name, and is refused;
//! - not come from another origin: an `Origin` header other than this service's own, or
//!   `Sec-Fetch-Site: cross-site`, is refused — but for the browser opening a one-time
//!   sign-in code (`code_navigation`) — (and no CORS header is ever sent, so a browser
//!   never lets another page read an answer);
//! - carry the token: `Authorization: Bearer TOKEN`, or basic auth with any user name and
//!   the token as password (Grafana's data source settings), compared in constant time; or
//!   the web UI's session cookie (`logflux_session`, set by `/ui/login` for the token or a
//!   one-time sign-in code): 32 random bytes naming a session this serve holds in memory,
//!   so the cookie shows nothing of the token; a session ends after [`SESSION_IDLE`] unused,
//!   [`SESSION_LIFETIME`] after sign-in, on sign-out, or when serve stops;
//! - when authenticated by the cookie and not a GET or HEAD, carry `X-LogFlux-UI: 1`: a
//!   browser sends the cookie with a form another site posts here, but a page of another
//!   origin cannot add a custom header without a CORS preflight, which is never allowed.
//!
//! The token is made once (32 random bytes, hex) into a file of mode 0600; a file that group
//! or others can read is refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use aws_lc_rs::{digest, hmac};
use axum::http::{HeaderMap, Method, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// Why a request was refused: its status and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// The web UI's session cookie.
pub(crate) const SESSION_COOKIE: &str = "logflux_session";
/// The header the web UI sends on every request; required of cookie-authenticated requests
/// other than GET and HEAD (see the module's documentation).
pub(crate) const UI_HEADER: &str = "x-logflux-ui";

/// How a request proved it may be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// The token in `Authorization` (bearer or basic).
    Token,
    /// The web UI's session cookie.
    Cookie,
}

/// What a request must show.
#[derive(Clone)]
pub(crate) struct Guard {
    token: String,
    /// The web UI's sessions and the sign-in codes not yet used, shared by every clone.
    signins: Arc<Mutex<Signins>>,
    /// Bumped each time a session is ended, so open live tails of it can close.
    ended: Arc<tokio::sync::watch::Sender<u64>>,
    /// Whether serve speaks HTTPS (the cookie is then `Secure`).
    tls: bool,
    /// `Host` values accepted (lower case, with the port).
    hosts: Vec<String>,
    /// `Origin` values accepted (this service's own).
    origins: Vec<String>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard for a service listening on `addr` (its actual port), over HTTPS when `tls`;
    /// `extra_hosts` are further names (`logs.example.net`, `logs.example.net:3100`, an IPv6
    /// address bare or in brackets: `fe80::1`, `[fe80::1]`, `[fe80::1]:3100`), normalised
    /// here to the form a `Host` header carries. A name that cannot be one is an error.
    pub(crate) fn new(
        token: String,
        addr: SocketAddr,
        tls: bool,
        extra_hosts: &[String],
    ) -> anyhow::Result<Guard> {
        let port = addr.port();
        let mut hosts = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
        ];
        if !addr.ip().is_unspecified() {
            hosts.push(addr.to_string());
        }
        for h in extra_hosts {
            hosts.push(allowed_host(h, port)?);
        }
        hosts.sort();
        hosts.dedup();
        let scheme = if tls { "https" } else { "http" };
        let origins = hosts.iter().map(|h| format!("{scheme}://{h}")).collect();
        Ok(Guard {
            token,
            signins: Arc::default(),
            ended: Arc::new(tokio::sync::watch::Sender::new(0)),
            tls,
            hosts,
            origins,
        })
    }

    /// The token (for [`hello_proof`]).
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// Whether `presented` is the token (constant time).
    pub(crate) fn is_token(&self, presented: &str) -> bool {
        constant_time_eq(presented.as_bytes(), self.token.as_bytes())
    }

    /// Starts a session and returns the `Set-Cookie` value that signs a browser in to it:
    /// HttpOnly (no script reads it), SameSite=Strict (no other site's page or link sends
    /// it), the whole service's path, kept by the browser for the session's lifetime,
    /// `Secure` over HTTPS.
    pub(crate) fn new_session(&self) -> anyhow::Result<String> {
        let id = random_hex()?;
        self.signins().start_session(digest_of(&id), Instant::now());
        Ok(format!(
            "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            SESSION_LIFETIME.as_secs(),
            self.secure()
        ))
    }

    /// Ends the session a request's cookie names (if any) and returns the `Set-Cookie` value
    /// that removes the cookie from the browser.
    pub(crate) fn end_session(&self, headers: &HeaderMap) -> String {
        if let Some(c) = session_cookie(headers)
            && self.signins().sessions.remove(&digest_of(&c)).is_some()
        {
            self.ended.send_modify(|n| *n += 1);
        }
        format!(
            "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
            self.secure()
        )
    }

    /// A new one-time sign-in code, good for [`CODE_LIFETIME`]: what `logflux ui` puts in the
    /// link it opens instead of the token, so the token never appears on a command line, in
    /// the browser's history or in its session store.
    pub(crate) fn new_code(&self) -> anyhow::Result<String> {
        let code = random_hex()?;
        self.signins().add_code(digest_of(&code), Instant::now());
        Ok(code)
    }

    /// Whether `presented` is a sign-in code still good; it is used up either way.
    pub(crate) fn take_code(&self, presented: &str) -> bool {
        self.signins()
            .take_code(&digest_of(presented), Instant::now())
    }

    /// The session a request authenticated by the session cookie (not by the token) is of:
    /// the key to ask [`Guard::session_is_live`] about later.
    pub(crate) fn cookie_session(&self, headers: &HeaderMap) -> Option<[u8; 32]> {
        if headers.contains_key(header::AUTHORIZATION) {
            return None;
        }
        session_cookie(headers).map(|c| digest_of(&c))
    }

    /// Whether the session is still live (a live one counts as used now).
    pub(crate) fn session_is_live(&self, key: &[u8; 32]) -> bool {
        self.signins().session_live(key, Instant::now())
    }

    /// Changes each time a session is ended (signed out).
    pub(crate) fn sessions_ended(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ended.subscribe()
    }

    fn secure(&self) -> &'static str {
        if self.tls { "; Secure" } else { "" }
    }

    fn signins(&self) -> std::sync::MutexGuard<'_, Signins> {
        // A panic while holding the lock leaves the maps consistent (each change is one
        // insert or remove), so a poisoned lock is taken as is.
        self.signins.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a request in full: [`Guard::check_site`], then [`Guard::check_auth`] (as the
    /// router does for every path but the UI's public ones).
    #[cfg(test)]
    pub(crate) fn check(
        &self,
        method: &Method,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Result<Auth, Refusal> {
        self.check_site(headers, authority, "/")?;
        self.check_auth(method, headers)
    }

    /// Checks where a request is sent and comes from: its host (`Host`, or over HTTP/2 the
    /// `:authority` the URI carries), then `Origin` and `Sec-Fetch-Site`. Every request
    /// passes this, the UI's sign-in page included.
    pub(crate) fn check_site(
        &self,
        headers: &HeaderMap,
        authority: Option<&str>,
        path_and_query: &str,
    ) -> Result<(), Refusal> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or(authority)
            .map(host_key);
        match host {
            Some(h) if self.hosts.contains(&h) => {}
            Some(h) => {
                return Err(refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "Host {h:?} is not this service (accepted: {}); give other names with --allow-host",
                        self.hosts.join(", ")
                    ),
                ));
            }
            None => {
                return Err(refuse(
                    StatusCode::BAD_REQUEST,
                    "a request without a Host header is refused",
                ));
            }
        }
        if let Some(o) = headers.get(header::ORIGIN) {
            let o = o.to_str().unwrap_or("").to_ascii_lowercase();
            if !self.origins.contains(&o) {
                return Err(refuse(
                    StatusCode::FORBIDDEN,
                    format!("cross-origin requests are refused (Origin {o:?})"),
                ));
            }
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
            && !code_navigation(headers, path_and_query)
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "cross-site requests are refused (Sec-Fetch-Site: cross-site)",
            ));
        }
        Ok(())
    }

    /// Checks a request's credentials: the token in `Authorization` (when that header is
    /// sent, it alone decides), else the session cookie, which for a method other than GET
    /// and HEAD needs `X-LogFlux-UI: 1` too.
    pub(crate) fn check_auth(&self, method: &Method, headers: &HeaderMap) -> Result<Auth, Refusal> {
        if let Some(v) = headers.get(header::AUTHORIZATION) {
            return match v.to_str().ok().and_then(presented_secret) {
                Some(p) if self.is_token(&p) => Ok(Auth::Token),
                _ => Err(refuse(
                    StatusCode::UNAUTHORIZED,
                    "wrong token (it is in serve.token in the client's config directory, or LOGFLUX_SERVE_TOKEN in up.env)",
                )),
            };
        }
        let cookie = session_cookie(headers);
        let live = cookie
            .as_deref()
            .is_some_and(|c| self.signins().session_live(&digest_of(c), Instant::now()));
        match cookie {
            Some(_) if live => {
                // The cookie is the UI's, taken from its own pages (and from what the user
                // opens): a page of another port of this host is same-site, and SameSite
                // lets the browser send it the cookie.
                if let Some(site) = headers.get("sec-fetch-site")
                    && !matches!(site.as_bytes(), b"same-origin" | b"none")
                {
                    return Err(refuse(
                        StatusCode::FORBIDDEN,
                        format!(
                            "the UI's session cookie is taken from serve's own pages only (Sec-Fetch-Site: {})",
                            String::from_utf8_lossy(site.as_bytes())
                        ),
                    ));
                }
                let safe = method == Method::GET || method == Method::HEAD;
                let marked = headers.get(UI_HEADER).is_some_and(|v| v.as_bytes() == b"1");
                if safe || marked {
                    Ok(Auth::Cookie)
                } else {
                    Err(refuse(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{method} with the UI's session cookie needs the header X-LogFlux-UI: 1 (the UI sends it; another site's page cannot)"
                        ),
                    ))
                }
            }
            Some(_) => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "the UI's session has ended (signed out, unused for a day, a week old, or serve restarted): open the UI again with `logflux ui`, or the link `logflux serve` printed",
            )),
            None => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "a token is required: Authorization: Bearer TOKEN, or basic auth with the token as password",
            )),
        }
    }
}

/// How long a UI session lasts without a request.
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);
/// How long a UI session lasts at most after sign-in.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a sign-in code is good for.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(300);
/// Sessions held at most: a new sign-in beyond it ends the least recently used session.
const MAX_SESSIONS: usize = 64;
/// Codes held at most: a new one beyond it drops the oldest.
const MAX_CODES: usize = 64;

/// A UI session: when it started and when it was last used.
#[derive(Debug, Clone, Copy)]
struct Session {
    started: Instant,
    used: Instant,
}

/// The UI's sessions and unused sign-in codes, each keyed by the SHA-256 of its secret: a
/// lookup compares digests, never the secret, so its timing tells nothing of a secret held.
#[derive(Debug, Default)]
struct Signins {
    sessions: HashMap<[u8; 32], Session>,
    /// Code digest → when it stops being good.
    codes: HashMap<[u8; 32], Instant>,
}

impl Signins {
    fn start_session(&mut self, key: [u8; 32], now: Instant) {
        self.sessions.retain(|_, s| s.live(now));
        if self.sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = self
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| *k)
        {
            self.sessions.remove(&oldest);
        }
        self.sessions.insert(
            key,
            Session {
                started: now,
                used: now,
            },
        );
    }

    /// Whether the session is live; a live one is marked used now, an ended one forgotten.
    fn session_live(&mut self, key: &[u8; 32], now: Instant) -> bool {
        match self.sessions.get_mut(key) {
            Some(s) if s.live(now) => {
                s.used = now;
                true
            }
            Some(_) => {
                self.sessions.remove(key);
                false
            }
            None => false,
        }
    }

    fn add_code(&mut self, key: [u8; 32], now: Instant) {
        self.codes.retain(|_, until| *until > now);
        if self.codes.len() >= MAX_CODES
            && let Some(oldest) = self.codes.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k)
        {
            self.codes.remove(&oldest);
        }
        self.codes.insert(key, now + CODE_LIFETIME);
    }

    fn take_code(&mut self, key: &[u8; 32], now: Instant) -> bool {
        self.codes.remove(key).is_some_and(|until| until > now)
    }
}

impl Session {
    fn live(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.used) < SESSION_IDLE
            && now.saturating_duration_since(self.started) < SESSION_LIFETIME
    }
}

fn digest_of(secret: &str) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, secret.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// 32 random bytes, hex.
pub(crate) fn random_hex() -> anyhow::Result<String> {
    let mut raw = [0u8; 32];
    logflux_crypto::random_bytes(&mut raw)?;
    Ok(hex::encode(raw))
}

/// Whether a request is the browser opening a sign-in link with a one-time code
/// (`/ui/login?code=…`, a top-level navigation): `logflux ui` opens it through a local file
/// (so no command line shows the code), and a navigation from a `file:` page is cross-site.
/// Taking it is safe where taking another site's request is not: a code is made only for the
/// token, so a page that holds one could do anything already.
fn code_navigation(headers: &HeaderMap, path_and_query: &str) -> bool {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    path == "/ui/login"
        && query.split('&').any(|kv| kv.starts_with("code="))
        && headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v.as_bytes() == b"navigate")
        && headers
            .get("sec-fetch-dest")
            .is_none_or(|v| v.as_bytes() == b"document")
}

/// The value of the session cookie among a request's `Cookie` headers (the last one named so).
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name.trim() == SESSION_COOKIE).then(|| value.trim().trim_matches('"').to_owned())
        })
        .next_back()
}

/// An `--allow-host` value as a `Host` header carries it, lower case with the port (`port`
/// when it names none); an IPv6 address in brackets, in its canonical form.
fn allowed_host(name: &str, port: u16) -> anyhow::Result<String> {
    let h = name.trim().to_ascii_lowercase();
    let bad = |why: &str| {
        anyhow::anyhow!(
            "--allow-host {name:?}: {why}; give a name (logs.lan), a name and port \
             (logs.lan:3100), or an IPv6 address (fe80::1, [fe80::1] or [fe80::1]:3100)"
        )
    };
    if h.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(ip) = h.parse::<std::net::Ipv6Addr>() {
        return Ok(format!("[{ip}]:{port}"));
    }
    if let Some(rest) = h.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("no closing bracket"))?;
        let ip: std::net::Ipv6Addr = inner
            .parse()
            .map_err(|_| bad("not an IPv6 address in the brackets"))?;
        return match after {
            "" => Ok(format!("[{ip}]:{port}")),
            p => match p.strip_prefix(':').and_then(|p| p.parse::<u16>().ok()) {
                Some(p) => Ok(format!("[{ip}]:{p}")),
                None => Err(bad("not a port after the brackets")),
            },
        };
    }
    match h.split_once(':') {
        None => Ok(format!("{h}:{port}")),
        // The port as a number: `logs.lan:03100` is port 3100, as a `Host` header writes it.
        Some((host, p)) if !host.is_empty() => match p.parse::<u16>() {
            Ok(p) => Ok(format!("{host}:{p}")),
            Err(_) => Err(bad("not a name and a port")),
        },
        Some(_) => Err(bad("not a name and a port")),
    }
}

/// A `Host` header (or `:authority`) as it is compared: lower case, an IPv6 address in its
/// canonical form (`[FE80:0::1]:3100` is `[fe80::1]:3100`), the port as a number
/// (`:03100` is `:3100`).
fn host_key(host: &str) -> String {
    let h = host.to_ascii_lowercase();
    let port = |p: &str| p.parse::<u16>().ok();
    if let Some((inner, after)) = h.strip_prefix('[').and_then(|r| r.split_once(']'))
        && let Ok(ip) = inner.parse::<std::net::Ipv6Addr>()
    {
        return match after.strip_prefix(':').and_then(port) {
            Some(p) => format!("[{ip}]:{p}"),
            None => format!("[{ip}]{after}"),
        };
    }
    if let Some((name, p)) = h.split_once(':')
        && let Some(p) = port(p)
    {
        return format!("{name}:{p}");
    }
    h
}

/// The secret of an `Authorization` header: a bearer token, or a basic-auth password.
fn presented_secret(v: &str) -> Option<String> {
    let (scheme, rest) = v.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = B64.decode(rest).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// Whether `a == b`, in time that depends on their lengths only.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    std::hint::black_box(diff) == 0
}

/// Refuses a listen address off loopback without TLS: the token and decrypted logs would
/// travel in clear.
pub(crate) fn check_listen(addr: SocketAddr, tls: bool) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() && !tls {
        bail!(
            "refusing to serve decrypted logs on {addr} without TLS: listen on 127.0.0.1 (the default), or give --tls-cert and --tls-key"
        );
    }
    Ok(())
}

/// What `GET /ui/hello?nonce=N` answers: HMAC-SHA256 keyed with the token over
/// `logflux serve hello v1:N`, hex.
pub(crate) fn hello_proof(token: &str, nonce: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    hex::encode(hmac::sign(
        &key,
        format!("logflux serve hello v1:{nonce}").as_bytes(),
    ))
}

/// The token in `path`, made (32 random bytes, hex, mode 0600) when absent. A file that group
/// or others can read is refused.
pub(crate) fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::metadata(path) {
        Ok(m) => {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                bail!(
                    "{} is readable by others (mode {mode:04o}): run chmod 600 {} (and consider deleting it so a new token is made)",
                    path.display(),
                    path.display()
                );
            }
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let t = t.trim().to_owned();
            if t.len() < 32 {
                bail!(
                    "{} holds no usable token (at least 32 characters): delete it and a new one is made",
                    path.display()
                );
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let token = random_hex()?;
            // Written whole to a file of our own, then linked into place: two first starts at
            // once cannot see each other's half-written file, and the one that loses the
            // race reads the winner's token.
            let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
            // A leftover of ours is removed; a new file is made (never an existing one or a
            // symlink followed), so its mode is ours.
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            f.write_all(format!("{token}\n").as_bytes())?;
            f.sync_all()?;
            drop(f);
            let linked = std::fs::hard_link(&tmp, path);
            let _ = std::fs::remove_file(&tmp);
            match linked {
                Ok(()) => Ok(token),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    load_or_create_token(path)
                }
                Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn guard() -> Guard {
        Guard::new(TOKEN.into(), "127.0.0.1:3100".parse().unwrap(), false, &[]).unwrap()
    }

    impl Guard {
        fn check_h(&self, h: &HeaderMap) -> Result<Auth, Refusal> {
            self.check(&Method::GET, h, None)
        }
    }

    #[test]
    fn an_http2_request_names_its_host_in_the_authority() {
        // HTTP/2 has no Host header: `:authority` arrives in the URI (Grafana's Go client
        // speaks HTTP/2 over TLS).
        let g = guard();
        let bearer = format!("Bearer {TOKEN}");
        let h = headers(&[("authorization", &bearer)]);
        assert!(g.check(&Method::GET, &h, Some("127.0.0.1:3100")).is_ok());
        assert_eq!(
            g.check(&Method::GET, &h, Some("evil.example:3100"))
                .unwrap_err()
                .status,
            StatusCode::MISDIRECTED_REQUEST
        );
        assert_eq!(
            g.check(&Method::GET, &h, None).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_is_required_as_bearer_or_basic_password() {
        let g = guard();
        assert_eq!(
            g.check_h(&headers(&[("host", "127.0.0.1:3100")]))
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        let bearer = format!("Bearer {TOKEN}");
        assert!(
            g.check_h(&headers(&[
                ("host", "localhost:3100"),
                ("authorization", &bearer)
            ]))
            .is_ok()
        );
        let basic = format!("Basic {}", B64.encode(format!("grafana:{TOKEN}")));
        assert!(
            g.check_h(&headers(&[
                ("host", "127.0.0.1:3100"),
                ("authorization", &basic)
            ]))
            .is_ok()
        );
        let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
        assert_eq!(
            g.check_h(&headers(&[
                ("host", "127.0.0.1:3100"),
                ("authorization", &wrong)
            ]))
            .unwrap_err()
            .status,
            StatusCode::UNAUTHORIZED
        );
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"abc", b"abc"));
    }

    #[test]
    fn another_host_or_origin_is_refused_before_the_token_is_looked_at() {
        let g = guard();
        let bearer = format!("Bearer {TOKEN}");
        // DNS rebinding: the page's own name.
        let e = g
            .check_h(&headers(&[
                ("host", "evil.example:3100"),
                ("authorization", &bearer),
            ]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
        assert!(e.message.contains("evil.example:3100"), "{}", e.message);
        // Another port is another service.
        assert!(
            g.check_h(&headers(&[
                ("host", "127.0.0.1:3101"),
                ("authorization", &bearer)
            ]))
            .is_err()
        );
        let e = g
            .check_h(&headers(&[
                ("host", "127.0.0.1:3100"),
                ("origin", "https://evil.example"),
                ("authorization", &bearer),
            ]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let e = g
            .check_h(&headers(&[
                ("host", "127.0.0.1:3100"),
                ("sec-fetch-site", "cross-site"),
                ("authorization", &bearer),
            ]))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        // Its own origin (a UI served here) is fine.
        assert!(
            g.check_h(&headers(&[
                ("host", "127.0.0.1:3100"),
                ("origin", "http://127.0.0.1:3100"),
                ("sec-fetch-site", "same-origin"),
                ("authorization", &bearer),
            ]))
            .is_ok()
        );
        let named = Guard::new(
            TOKEN.into(),
            "0.0.0.0:3100".parse().unwrap(),
            true,
            &["Logs.Example.net".into()],
        )
        .unwrap();
        assert!(
            named
                .check_h(&headers(&[
                    ("host", "logs.example.net:3100"),
                    ("origin", "https://logs.example.net:3100"),
                    ("authorization", &bearer),
                ]))
                .is_ok()
        );
    }

    #[test]
    fn an_allow_host_port_with_leading_zeros_matches_the_port() {
        let bearer = format!("Bearer {TOKEN}");
        let ok = |g: &Guard, host: &str| {
            g.check_h(&headers(&[("host", host), ("authorization", &bearer)]))
                .is_ok()
        };
        for given in ["logs.lan:03100", "[fe80::1]:03100"] {
            let g = Guard::new(
                TOKEN.into(),
                "0.0.0.0:3100".parse().unwrap(),
                true,
                &[given.into()],
            )
            .unwrap();
            let host = given.replace(":03100", ":3100");
            assert!(ok(&g, &host), "--allow-host {given}, Host: {host}");
            assert!(ok(&g, given), "--allow-host {given}, Host: {given}");
            assert!(!ok(&g, &given.replace(":03100", ":3101")), "{given}");
        }
        let bad = Guard::new(
            TOKEN.into(),
            "0.0.0.0:3100".parse().unwrap(),
            true,
            &["logs.lan:99999".into()],
        )
        .unwrap_err();
        assert!(bad.to_string().contains("not a name and a port"), "{bad}");
    }

    #[test]
    fn an_ipv6_allow_host_matches_its_host_header_bare_or_bracketed() {
        let bearer = format!("Bearer {TOKEN}");
        let ok = |g: &Guard, host: &str| {
            g.check_h(&headers(&[("host", host), ("authorization", &bearer)]))
                .is_ok()
        };
        for given in [
            "fe80::1",
            "FE80::1",
            "[fe80::1]",
            "[fe80:0:0::1]",
            "[fe80::1]:3100",
        ] {
            let g = Guard::new(
                TOKEN.into(),
                "0.0.0.0:3100".parse().unwrap(),
                true,
                &[given.into()],
            )
            .unwrap();
            assert!(ok(&g, "[fe80::1]:3100"), "--allow-host {given}");
            // The same address however the client writes it.
            assert!(ok(&g, "[FE80:0000::1]:3100"), "--allow-host {given}");
            assert!(!ok(&g, "[fe80::2]:3100"), "--allow-host {given}");
            assert!(!ok(&g, "[fe80::1]:3101"), "--allow-host {given}");
            // Its own origin is the same address.
            assert!(
                g.check_h(&headers(&[
                    ("host", "[fe80::1]:3100"),
                    ("origin", "https://[fe80::1]:3100"),
                    ("authorization", &bearer),
                ]))
                .is_ok(),
                "--allow-host {given}"
            );
        }
        let g = Guard::new(
            TOKEN.into(),
            "[::]:3100".parse().unwrap(),
            true,
            &[
                "::1".into(),
                "[fe80::1]:3200".into(),
                "logs.lan:3300".into(),
            ],
        )
        .unwrap();
        assert!(ok(&g, "[::1]:3100"));
        assert!(ok(&g, "[fe80::1]:3200"));
        assert!(!ok(&g, "[fe80::1]:3100"));
        assert!(ok(&g, "logs.lan:3300"));
        // What cannot be a Host is refused at start, naming the value and the forms.
        for bad in [
            "",
            "[fe80::1",
            "[logs.lan]",
            "[fe80::1]x",
            "fe80::1%eth0",
            "logs.lan:x",
            ":3100",
        ] {
            let e = Guard::new(
                TOKEN.into(),
                "127.0.0.1:3100".parse().unwrap(),
                false,
                &[bad.into()],
            )
            .unwrap_err()
            .to_string();
            assert!(
                e.contains("--allow-host") && e.contains("[fe80::1]:3100"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn a_session_cookie_names_a_random_session_and_needs_the_ui_header_to_change_things() {
        let g = guard();
        let set = g.new_session().unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
            "{set}"
        );
        assert!(set.contains("Max-Age=604800"), "a week at most: {set}");
        assert!(!set.contains("Secure"), "plain HTTP on loopback: {set}");
        let value = cookie_value(&set);
        assert_eq!(value.len(), 64);
        assert!(!value.contains(TOKEN) && !TOKEN.contains(&value));
        // Each sign-in is a session of its own; another guard (a restarted serve) knows none.
        assert_ne!(cookie_value(&g.new_session().unwrap()), value);
        let cookie = format!("theme=dark; logflux_session={value}");
        let h = headers(&[("host", "127.0.0.1:3100"), ("cookie", &cookie)]);
        assert_eq!(g.check(&Method::GET, &h, None), Ok(Auth::Cookie));
        assert_eq!(
            guard().check(&Method::GET, &h, None).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(g.check(&Method::HEAD, &h, None), Ok(Auth::Cookie));
        let e = g.check(&Method::POST, &h, None).unwrap_err();
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        assert!(e.message.contains("X-LogFlux-UI"), "{}", e.message);
        let marked = headers(&[
            ("host", "127.0.0.1:3100"),
            ("cookie", &cookie),
            ("x-logflux-ui", "1"),
        ]);
        assert_eq!(g.check(&Method::PUT, &marked, None), Ok(Auth::Cookie));
        // The token itself is no cookie, nor is another value.
        for bad in [TOKEN, &value.replace('a', "b").replace('0', "1")] {
            let c = format!("logflux_session={bad}");
            let h = headers(&[("host", "127.0.0.1:3100"), ("cookie", &c)]);
            assert_eq!(
                g.check(&Method::GET, &h, None).unwrap_err().status,
                StatusCode::UNAUTHORIZED
            );
        }
        // Another origin is refused with the cookie too.
        let h = headers(&[
            ("host", "127.0.0.1:3100"),
            ("cookie", &cookie),
            ("origin", "http://evil.example"),
            ("x-logflux-ui", "1"),
        ]);
        assert_eq!(
            g.check(&Method::POST, &h, None).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        // Signing out ends the session and clears the cookie.
        let cleared = g.end_session(&marked);
        assert!(cleared.starts_with("logflux_session=;") && cleared.contains("Max-Age=0"));
        assert_eq!(
            g.check(&Method::GET, &h_of(&cookie), None)
                .unwrap_err()
                .status,
            StatusCode::UNAUTHORIZED
        );
        // Over HTTPS the cookie is Secure.
        let tls = Guard::new(TOKEN.into(), "127.0.0.1:3100".parse().unwrap(), true, &[]).unwrap();
        assert!(tls.new_session().unwrap().ends_with("; Secure"));
        assert!(tls.end_session(&HeaderMap::new()).ends_with("; Secure"));
    }

    fn cookie_value(set: &str) -> String {
        set.strip_prefix("logflux_session=")
            .and_then(|r| r.split(';').next())
            .unwrap()
            .to_owned()
    }

    fn h_of(cookie: &str) -> HeaderMap {
        headers(&[("host", "127.0.0.1:3100"), ("cookie", cookie)])
    }

    #[test]
    fn a_session_ends_a_day_unused_or_a_week_after_sign_in() {
        let mut s = Signins::default();
        let t0 = Instant::now();
        let key = [1u8; 32];
        s.start_session(key, t0);
        let hour = Duration::from_secs(3600);
        // Used every 23 hours it lives until its week is over.
        let mut t = t0;
        while t + 23 * hour < t0 + SESSION_LIFETIME {
            t += 23 * hour;
            assert!(s.session_live(&key, t), "{:?}", t - t0);
        }
        assert!(!s.session_live(&key, t0 + SESSION_LIFETIME));
        assert!(s.sessions.is_empty(), "an ended session is forgotten");
        // A day without a request ends it.
        s.start_session(key, t0);
        assert!(s.session_live(&key, t0 + 23 * hour));
        assert!(!s.session_live(&key, t0 + 23 * hour + SESSION_IDLE));
        // Beyond MAX_SESSIONS the least recently used ends.
        for i in 0..MAX_SESSIONS as u8 {
            s.start_session([i + 10; 32], t0 + Duration::from_secs(u64::from(i)));
        }
        assert!(s.session_live(&[10; 32], t0 + hour));
        s.start_session([255; 32], t0 + hour);
        assert_eq!(s.sessions.len(), MAX_SESSIONS);
        assert!(s.session_live(&[10; 32], t0 + hour), "used last: kept");
        assert!(
            !s.session_live(&[11; 32], t0 + hour),
            "least recently used: ended"
        );
    }

    #[test]
    fn a_sign_in_code_is_good_once_and_for_five_minutes() {
        let g = guard();
        let code = g.new_code().unwrap();
        assert_eq!(code.len(), 64);
        assert!(!g.take_code(TOKEN));
        assert!(g.take_code(&code));
        assert!(!g.take_code(&code), "used up");
        let mut s = Signins::default();
        let t0 = Instant::now();
        s.add_code([7; 32], t0);
        assert!(!s.take_code(&[7; 32], t0 + CODE_LIFETIME), "expired");
        assert!(s.codes.is_empty());
        for i in 0..=MAX_CODES as u8 {
            s.add_code([i; 32], t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(s.codes.len(), MAX_CODES);
        assert!(!s.take_code(&[0; 32], t0), "the oldest made way");
        assert!(s.take_code(&[MAX_CODES as u8; 32], t0));
    }

    #[test]
    fn off_loopback_needs_tls() {
        assert!(check_listen("127.0.0.1:3100".parse().unwrap(), false).is_ok());
        assert!(check_listen("[::1]:3100".parse().unwrap(), false).is_ok());
        let e = check_listen("0.0.0.0:3100".parse().unwrap(), false).unwrap_err();
        assert!(e.to_string().contains("--tls-cert"), "{e}");
        assert!(check_listen("0.0.0.0:3100".parse().unwrap(), true).is_ok());
    }

    #[test]
    fn the_token_file_is_made_once_owner_only_and_a_readable_one_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/serve.token");
        let t = load_or_create_token(&p).unwrap();
        assert_eq!(t.len(), 64);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(load_or_create_token(&p).unwrap(), t);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = load_or_create_token(&p).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("0644"),
            "{e}"
        );
    }
}
