//! The HTTP side of `logflux serve`: routes (Loki's paths), the access guard in front of all
//! of them, request parameters as Loki reads them (GET query string or POST form), Loki's
//! error answers, and the limits that keep a request from asking for absurd work.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use serde_json::{Value, json};

use super::Service;

/// Most lines a log query may ask for (Loki's `max_entries_limit_per_query` default).
pub(crate) const MAX_LIMIT: u64 = 5000;
/// Lines a log query returns when it names no limit (Loki's default).
pub(crate) const DEFAULT_LIMIT: u64 = 100;
/// Most points per series of a range query (Prometheus' and Loki's limit).
pub(crate) const MAX_POINTS: i64 = 11_000;
/// Longest time range of one query (Loki's `max_query_length` default: 721h).
pub(crate) const MAX_RANGE_NS: i64 = 721 * 3600 * NS;
/// The time range when a request names no start (Loki's default: an hour back from end).
pub(crate) const DEFAULT_SINCE_NS: i64 = 3600 * NS;
/// Label lookups without a start look this far back (Loki's default for labels and series).
pub(crate) const DEFAULT_LABEL_SINCE_NS: i64 = 6 * 3600 * NS;
pub(crate) const NS: i64 = 1_000_000_000;

/// An answer that is not a success: Loki answers 4xx with a plain-text body, which Grafana
/// shows as the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LokiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl LokiError {
    pub(crate) fn bad(message: impl Into<String>) -> LokiError {
        LokiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub(crate) fn internal(message: impl Into<String>) -> LokiError {
        LokiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }
}

impl IntoResponse for LokiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", self.message),
        )
            .into_response()
    }
}

impl From<anyhow::Error> for LokiError {
    fn from(e: anyhow::Error) -> Self {
        LokiError::internal(format!("{e:#}"))
    }
}

/// Request parameters: the query string, then (POST) the form body; repeated names kept.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(pub(crate) Vec<(String, String)>);

impl Params {
    pub(crate) fn from_request(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Params {
        let mut p = Vec::new();
        if let Some(q) = uri.query() {
            p.extend(form_pairs(q));
        }
        let form = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if form {
            p.extend(form_pairs(&String::from_utf8_lossy(body)));
        }
        Params(p)
    }

    /// The last value of `name` (a non-empty one).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `query` parameter, required.
    pub(crate) fn query(&self) -> Result<&str, LokiError> {
        self.get("query")
            .ok_or_else(|| LokiError::bad("query parameter is required: query=<LogQL>"))
    }

    /// `name` as a time (Loki's forms), or `default`.
    pub(crate) fn time(&self, name: &str, default: i64) -> Result<i64, LokiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_time(v).ok_or_else(|| {
                LokiError::bad(format!(
                    "invalid {name} {v:?}: give Unix nanoseconds, Unix seconds (float), or RFC 3339"
                ))
            }),
        }
    }

    /// `start` and `end` (end defaults to now, start to `since` before end), checked.
    pub(crate) fn range(&self, now: i64, since: i64) -> Result<(i64, i64), LokiError> {
        let end = self.time("end", now)?;
        let start = self.time("start", end.saturating_sub(since))?;
        if end < start {
            return Err(LokiError::bad(
                "end timestamp must not be before or equal to start time",
            ));
        }
        if end.saturating_sub(start) > MAX_RANGE_NS {
            return Err(LokiError::bad(format!(
                "the query time range exceeds the limit (query length: {}, limit: {})",
                human_duration(end.saturating_sub(start)),
                human_duration(MAX_RANGE_NS)
            )));
        }
        Ok((start, end))
    }

    /// `limit`: at most [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
    pub(crate) fn limit(&self) -> Result<u64, LokiError> {
        self.lines("limit", DEFAULT_LIMIT)
    }

    /// A number of lines (`limit`, `line_limit`): at most [`MAX_LIMIT`], Loki's message.
    pub(crate) fn lines(&self, name: &str, default: u64) -> Result<u64, LokiError> {
        let n = self.positive(name, default)?;
        if n > MAX_LIMIT {
            return Err(LokiError::bad(format!(
                "max entries limit per query exceeded, limit > max_entries_limit ({n} > {MAX_LIMIT})"
            )));
        }
        Ok(n)
    }

    /// A positive whole number, or `default`.
    pub(crate) fn positive(&self, name: &str, default: u64) -> Result<u64, LokiError> {
        let Some(v) = self.get(name) else {
            return Ok(default);
        };
        let n: u64 = v
            .parse()
            .map_err(|_| LokiError::bad(format!("invalid {name} {v:?}: give a whole number")))?;
        if n == 0 {
            // Loki's message for `limit`, naming the parameter given.
            return Err(LokiError::bad(format!("{name} must be a positive value")));
        }
        Ok(n)
    }

    /// `direction`: backward (default, newest first) or forward.
    pub(crate) fn newest_first(&self) -> Result<bool, LokiError> {
        match self.get("direction") {
            None => Ok(true),
            Some(d) if d.eq_ignore_ascii_case("backward") => Ok(true),
            Some(d) if d.eq_ignore_ascii_case("forward") => Ok(false),
            Some(d) => Err(LokiError::bad(format!(
                "invalid direction {d:?}: backward or forward"
            ))),
        }
    }

    /// `step` for a range of `end - start`: a duration (`15s`, `500ms`, `1m`) or seconds; by
    /// default as Loki chooses (about 250 points, at least 1 s). At most [`MAX_POINTS`] points.
    pub(crate) fn step(&self, start: i64, end: i64) -> Result<i64, LokiError> {
        let step = match self.get("step") {
            None => ((end - start) / NS / 250).max(1) * NS,
            Some(v) => parse_step(v).ok_or_else(|| {
                LokiError::bad(format!(
                    "invalid step {v:?}: give a duration (15s, 500ms, 1m) or seconds"
                ))
            })?,
        };
        if step <= 0 {
            return Err(LokiError::bad(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        // Loki's rule (steps, not points): Grafana's safe step, ceil(range / 11000), can make
        // exactly 11 000 steps, which Loki answers.
        if (end - start) / step > MAX_POINTS {
            return Err(LokiError::bad(format!(
                "exceeded maximum resolution of {MAX_POINTS} points per timeseries. Try increasing the value of the step parameter"
            )));
        }
        Ok(step)
    }
}

/// `a=b&c=d` pairs, percent-decoded (`+` is a space).
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A time as Loki reads one: with a `.`, float seconds; an integer of up to 10 digits,
/// seconds; a longer one, nanoseconds; else RFC 3339.
pub(crate) fn parse_time(v: &str) -> Option<i64> {
    let v = v.trim();
    if v.contains('.')
        && let Ok(f) = v.parse::<f64>()
    {
        if !f.is_finite() || f.abs() > 9.2e9 {
            return None;
        }
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round() / 1000.0;
        return Some(secs as i64 * NS + (frac * NS as f64) as i64);
    }
    if let Ok(n) = v.parse::<i64>() {
        let digits = v.trim_start_matches('-').len();
        return if digits <= 10 {
            n.checked_mul(NS)
        } else {
            Some(n)
        };
    }
    logflux_proto::timefmt::parse_rfc3339(v).ok()
}

/// A step: a Prometheus duration (`1h30m`, `15s`, `500ms`) or (float) seconds.
pub(crate) fn parse_step(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(f) = v.parse::<f64>() {
        if !f.is_finite() || f.abs() > 1e9 {
            return None;
        }
        return Some((f * NS as f64) as i64);
    }
    parse_prom_duration(v)
}

/// `1h30m`, `15s`, `500ms`, `2d`, `1w`, `1y` in nanoseconds, as Prometheus's
/// `model.ParseDuration` reads them; also nanoseconds (`ns`) and microseconds as `us`, `µs`
/// (the micro sign) or `μs` (the Greek mu), units of Go's `time.ParseDuration` that
/// Prometheus's parser lacks (accepted all the same: a step that small is harmless).
pub(crate) fn parse_prom_duration(v: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut rest = v;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len: usize = rest
            .chars()
            .take_while(|c| c.is_alphabetic())
            .map(char::len_utf8)
            .sum();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let mul: i64 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => NS,
            "m" => 60 * NS,
            "h" => 3600 * NS,
            "d" => 86_400 * NS,
            "w" => 7 * 86_400 * NS,
            "y" => 365 * 86_400 * NS,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(mul)?)?;
    }
    Some(total)
}

/// A duration as Go prints one (`721h0m0s`, `1h30m0s`, `15s`).
pub(crate) fn human_duration(ns: i64) -> String {
    let s = ns / NS;
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Seconds as a JSON number, as Loki writes sample times (`1700000000`, `1700000000.5`).
pub(crate) fn seconds(ns: i64) -> Value {
    if ns % NS == 0 {
        json!(ns / NS)
    } else {
        json!(ns as f64 / NS as f64)
    }
}

/// A sample value as Prometheus writes it.
pub(crate) fn sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// `{"status":"success","data":…}`.
pub(crate) fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Every request passes the guard first: the Host and Origin checks always, then the
/// credentials (token or the UI's session cookie) except on the UI's public paths (the
/// redirect to it and the sign-in link, which checks the token itself).
async fn guard(State(s): State<Arc<Service>>, req: Request, next: Next) -> Response {
    use super::ui;
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    let path = req.uri().path().to_owned();
    let checked = s
        .guard
        .check_site(
            req.headers(),
            authority.as_deref(),
            req.uri().path_and_query().map_or("/", |p| p.as_str()),
        )
        .and_then(|()| {
            if ui::is_public(&path) {
                Ok(None)
            } else {
                s.guard.check_auth(req.method(), req.headers()).map(Some)
            }
        });
    let mut req = req;
    let mut resp = match checked {
        Ok(auth) => {
            if let Some(a) = auth {
                req.extensions_mut().insert(a);
            }
            next.run(req).await
        }
        // No `WWW-Authenticate` challenge: a browser would prompt for the token and keep it
        // for the origin. Grafana sends its basic auth without being asked.
        Err(r) if r.status == StatusCode::UNAUTHORIZED && ui::is_page(&path) => {
            ui::unauthorized_page(&r.message)
        }
        Err(r) if path.starts_with("/api/ui/") => {
            (r.status, axum::Json(json!({"error": r.message}))).into_response()
        }
        Err(r) => LokiError {
            status: r.status,
            message: r.message,
        }
        .into_response(),
    };
    private(&mut resp);
    resp
}

/// Decrypted answers are not kept by a browser's cache (on disk): `no-store` unless the
/// handler chose (the UI's assets: `no-cache` with an ETag). Every answer carries the
/// security headers ([`super::ui::security_headers`]).
fn private(resp: &mut Response) {
    let h = resp.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(header::HeaderValue::from_static("no-store"));
    super::ui::security_headers(h);
}

/// A request as the handlers see it.
pub(crate) struct Req {
    pub(crate) params: Params,
    pub(crate) headers: HeaderMap,
    /// `{name}` of `/loki/api/v1/label/{name}/values` and of
    /// `/loki/api/v1/detected_field/{name}/values`.
    pub(crate) label_name: Option<String>,
}

async fn read(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Result<Req, LokiError> {
    if method != Method::GET && method != Method::POST {
        return Err(LokiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: format!("{method} is not allowed: GET or POST"),
        });
    }
    let path = uri.path();
    let label_name = path
        .strip_prefix("/loki/api/v1/label/")
        .or_else(|| path.strip_prefix("/loki/api/v1/detected_field/"))
        .and_then(|p| p.strip_suffix("/values"))
        .map(|n| {
            percent_encoding::percent_decode_str(n)
                .decode_utf8_lossy()
                .into_owned()
        });
    Ok(Req {
        params: Params::from_request(&uri, &headers, &body),
        headers,
        label_name,
    })
}

macro_rules! route {
    ($f:path) => {
        any(
            |State(s): State<Arc<Service>>,
             method: Method,
             uri: Uri,
             headers: HeaderMap,
             body: Bytes| async move {
                match read(method, uri, headers, body).await {
                    Ok(r) => match $f(&s, r).await {
                        Ok(resp) => resp,
                        Err(e) => e.into_response(),
                    },
                    Err(e) => e.into_response(),
                }
            },
        )
    };
}

async fn ready(_s: &Service, _r: Req) -> Result<Response, LokiError> {
    Ok("ready\n".into_response())
}

async fn buildinfo(_s: &Service, _r: Req) -> Result<Response, LokiError> {
    Ok(axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
    .into_response())
}

/// `GET /api/v1/rules` (and Loki's `/prometheus/api/v1/rules`): the alert rules evaluated
/// here, in Prometheus's shape; no groups when no rules are configured. `type=record` lists
/// none (recording rules are not run here).
async fn rules(s: &Service, r: Req) -> Result<Response, LokiError> {
    let data = match &s.alerting {
        Some(a) if r.params.get("type") != Some("record") => a.rules_json(),
        _ => json!({"groups": []}),
    };
    Ok(success(data))
}

/// `GET /api/v1/alerts` (and `/prometheus/api/v1/alerts`): pending and firing alerts.
async fn alerts(s: &Service, _r: Req) -> Result<Response, LokiError> {
    let data = match &s.alerting {
        Some(a) => a.alerts_json(),
        None => json!({"alerts": []}),
    };
    Ok(success(data))
}

/// `GET /metrics`: the alert evaluator's and notifier's metrics (Prometheus's text format),
/// behind the token like everything else.
async fn metrics(s: &Service, _r: Req) -> Result<Response, LokiError> {
    let mut out = String::new();
    out.push_str(
        "# HELP logflux_serve_cache_bytes Decrypted records held in memory.
# TYPE logflux_serve_cache_bytes gauge
",
    );
    out.push_str(&format!(
        "logflux_serve_cache_bytes {}
",
        s.cache.used()
    ));
    if let Some(a) = &s.alerting {
        a.metrics_text(&mut out);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

async fn v2_tail(_s: &Service, _r: Req) -> Result<Response, LokiError> {
    Err(LokiError::bad(
        "/loki/api/v2alpha/tail is not served: use /loki/api/v1/tail",
    ))
}

/// The router: Loki's paths, each behind the guard. No CORS headers, ever.
pub(crate) fn router(s: Arc<Service>) -> Router {
    use super::{loki, uiapi};
    Router::new()
        .route("/ready", route!(ready))
        .route("/loki/api/v1/status/buildinfo", route!(buildinfo))
        .route("/loki/api/v1/query", route!(loki::query))
        .route("/loki/api/v1/query_range", route!(loki::query_range))
        .route("/loki/api/v1/labels", route!(loki::labels))
        .route("/loki/api/v1/label", route!(loki::labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            route!(loki::label_values),
        )
        .route("/loki/api/v1/series", route!(loki::series))
        .route("/loki/api/v1/index/stats", route!(loki::index_stats))
        .route("/loki/api/v1/index/volume", route!(loki::index_volume))
        .route(
            "/loki/api/v1/index/volume_range",
            route!(loki::index_volume_range),
        )
        .route("/loki/api/v1/patterns", route!(loki::patterns))
        .route(
            "/loki/api/v1/detected_labels",
            route!(loki::detected_labels),
        )
        .route(
            "/loki/api/v1/detected_fields",
            route!(loki::detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            route!(loki::detected_field_values),
        )
        .route("/loki/api/v1/tail", get(super::ws::tail))
        .route("/api/v1/rules", route!(rules))
        .route("/api/v1/alerts", route!(alerts))
        .route("/prometheus/api/v1/rules", route!(rules))
        .route("/prometheus/api/v1/alerts", route!(alerts))
        .route("/metrics", route!(metrics))
        .route("/loki/api/v2alpha/tail", route!(v2_tail))
        .route("/", get(super::ui::to_ui))
        .route("/ui", get(super::ui::to_ui))
        .route("/ui/login", get(super::ui::login))
        .route("/ui/hello", get(super::ui::hello))
        .route("/ui/", get(super::ui::asset))
        .route("/ui/{*path}", get(super::ui::asset))
        .route(
            "/api/ui/session",
            get(uiapi::session).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/signin-code",
            post(uiapi::signin_code).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/logout",
            post(uiapi::logout).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/saved",
            get(uiapi::saved_list).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/saved/{name}",
            put(uiapi::saved_put)
                .delete(uiapi::saved_delete)
                .fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/saved/{name}/rename",
            post(uiapi::saved_rename).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/dashboards",
            get(uiapi::dashboards_list).fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/dashboards/{id}",
            get(uiapi::dashboard_get)
                .put(uiapi::dashboard_put)
                .delete(uiapi::dashboard_delete)
                .fallback(uiapi::method_not_allowed),
        )
        .route(
            "/api/ui/export",
            get(uiapi::export).fallback(uiapi::method_not_allowed),
        )
        .route("/api/ui", any(uiapi::not_found))
        .route("/api/ui/", any(uiapi::not_found))
        .route("/api/ui/{*rest}", any(uiapi::not_found))
        .fallback(|uri: Uri| async move {
            LokiError {
                status: StatusCode::NOT_FOUND,
                message: format!("404 page not found: {} is not served here", uri.path()),
            }
        })
        .layer(axum::middleware::from_fn_with_state(s.clone(), guard))
        .with_state(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params(form_pairs(q))
    }

    #[test]
    fn times_are_read_as_loki_reads_them() {
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000 * NS));
        assert_eq!(
            parse_time("1700000000123456789"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_time("1700000000.5"),
            Some(1_700_000_000 * NS + NS / 2)
        );
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Some(1_700_000_000 * NS));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("1e300.0"), None);
    }

    #[test]
    fn form_values_are_percent_decoded() {
        let p = params("query=%7Bapp%3D%22a%22%7D+%7C%3D+%22x%22&match%5B%5D=a&match%5B%5D=b&e=%");
        assert_eq!(p.get("query"), Some("{app=\"a\"} |= \"x\""));
        assert_eq!(p.all("match[]"), ["a", "b"]);
        assert_eq!(p.get("e"), Some("%"));
    }

    #[test]
    fn absurd_limits_ranges_and_steps_are_refused_naming_the_limit() {
        let e = params("limit=100000").limit().unwrap_err();
        assert!(e.message.contains("5000"), "{}", e.message);
        assert_eq!(params("").limit().unwrap(), 100);
        let e = params("start=0&end=1700000000").range(0, 0).unwrap_err();
        assert!(e.message.contains("721h0m0s"), "{}", e.message);
        // Extreme times are refused, not overflowed.
        let e = params("start=-9223372036854775808&end=9223372036854775807")
            .range(0, 0)
            .unwrap_err();
        assert!(e.message.contains("721h0m0s"), "{}", e.message);
        let day = 86_400 * NS;
        let e = params("step=1s").step(0, day).unwrap_err();
        assert!(e.message.contains("11000"), "{}", e.message);
        // As Loki: 11 000 steps pass (Grafana's safe step can make exactly that), 11 001 do not.
        assert!(params("step=1").step(0, 11_000 * NS).is_ok());
        assert!(params("step=1").step(0, 11_001 * NS).is_err());
        assert_eq!(params("step=60000ms").step(0, day).unwrap(), 60 * NS);
        assert_eq!(params("step=15").step(0, day).unwrap(), 15 * NS);
        assert_eq!(params("").step(0, day).unwrap(), 345 * NS);
        assert!(params("step=0s").step(0, day).is_err());
        assert_eq!(params("").lines("line_limit", 100).unwrap(), 100);
        assert!(params("line_limit=5001").lines("line_limit", 100).is_err());
        let zero = params("field_limit=0")
            .positive("field_limit", 1)
            .unwrap_err();
        assert_eq!(zero.message, "field_limit must be a positive value");
        assert_eq!(
            params("limit=0").limit().unwrap_err().message,
            "limit must be a positive value"
        );
        assert!(params("field_limit=x").positive("field_limit", 1).is_err());
        assert!(params("direction=sideways").newest_first().is_err());
        assert!(!params("direction=FORWARD").newest_first().unwrap());
    }

    #[test]
    fn durations_are_read_as_prometheus_reads_them_with_go_s_ns_and_micro_units_too() {
        assert_eq!(parse_prom_duration("1h30m"), Some(5400 * NS));
        assert_eq!(parse_prom_duration("1ns"), Some(1));
        assert_eq!(parse_prom_duration("15us"), Some(15_000));
        // U+00B5 MICRO SIGN and U+03BC GREEK SMALL LETTER MU, as Go's time.ParseDuration
        // accepts both (Prometheus's model.ParseDuration has no microseconds at all).
        assert_eq!(parse_prom_duration("15\u{b5}s"), Some(15_000));
        assert_eq!(parse_prom_duration("15\u{3bc}s"), Some(15_000));
        assert_eq!(parse_prom_duration("1ms500\u{b5}s"), Some(1_500_000));
        assert_eq!(parse_prom_duration("1\u{3bc}"), None);
        assert_eq!(parse_prom_duration("1\u{e9}s"), None);
        assert_eq!(parse_prom_duration("s"), None);
        assert_eq!(parse_prom_duration(""), None);
        assert_eq!(
            params("step=500\u{3bc}s").step(0, NS).unwrap(),
            500_000,
            "a step in microseconds"
        );
    }

    #[test]
    fn values_are_written_as_prometheus_writes_them() {
        assert_eq!(sample_value(2.0), "2");
        assert_eq!(sample_value(0.25), "0.25");
        assert_eq!(sample_value(f64::NAN), "NaN");
        assert_eq!(sample_value(f64::INFINITY), "+Inf");
        assert_eq!(seconds(4 * NS), json!(4));
        assert_eq!(seconds(4 * NS + NS / 2), json!(4.5));
        assert_eq!(human_duration(721 * 3600 * NS), "721h0m0s");
    }
}
