//! The web UI's JSON API under `/api/ui/`: the session check, saved searches and dashboards
//! (files in the client's config directory, [`crate::uistore`]). Bodies are JSON; errors are
//! `{"error":"…"}` with a 4xx status (500 when a file cannot be read or written).
//!
//! File work runs off the async threads, one operation at a time (a read-modify-write of the
//! saved searches' file must not interleave with another).

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Service;
use super::guard::{Auth, CODE_LIFETIME};
use crate::fetch::Merger;
use crate::output::{Format, Printer, Style, Zone, render};
use crate::uistore::{Dashboard, RenameBody, SavedBody, Store, StoreError, from_json};

/// An answer of the API that is not a success: `{"error": message}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Missing(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type Answer = Result<Response, ApiError>;

/// Runs `f` on the store off the async threads, one at a time.
async fn with_store<T, F>(s: &Arc<Service>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let s = s.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _one = s
            .ui_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&s.store)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the UI store's worker failed: {e}"),
        )
    })?;
    Ok(done?)
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    from_json(bytes).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body: {e}")))
}

/// `GET /api/ui/session`: answered only when signed in, so the page can tell.
pub(crate) async fn session(State(s): State<Arc<Service>>) -> Response {
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "user_config": s.store.dir().display().to_string(),
    }))
    .into_response()
}

/// `POST /api/ui/signin-code`, with the token (not the session cookie): a one-time sign-in
/// code for the link `logflux ui` opens (`/ui/login?code=…`), good once, for five minutes.
pub(crate) async fn signin_code(
    State(s): State<Arc<Service>>,
    Extension(auth): Extension<Auth>,
) -> Answer {
    if auth != Auth::Token {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a sign-in code is given for the token only (Authorization: Bearer TOKEN)",
        ));
    }
    let code = s
        .guard
        .new_code()
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    Ok(Json(json!({"code": code, "expires_in_s": CODE_LIFETIME.as_secs()})).into_response())
}

/// `POST /api/ui/logout`: ends the session of the request's cookie and clears the cookie.
pub(crate) async fn logout(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let cleared = s.guard.end_session(&headers);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&cleared) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /api/ui/saved`.
pub(crate) async fn saved_list(State(s): State<Arc<Service>>) -> Answer {
    let v = with_store(&s, |st| st.saved()).await?;
    Ok(Json(json!({ "searches": v })).into_response())
}

/// `PUT /api/ui/saved/{name}`: creates or replaces.
pub(crate) async fn saved_put(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Answer {
    let b: SavedBody = body(&bytes)?;
    let v = with_store(&s, move |st| st.put_saved(&name, b)).await?;
    Ok(Json(v).into_response())
}

/// `POST /api/ui/saved/{name}/rename` with `{"to":"…"}`.
pub(crate) async fn saved_rename(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Answer {
    let b: RenameBody = body(&bytes)?;
    let v = with_store(&s, move |st| st.rename_saved(&name, &b.to)).await?;
    Ok(Json(v).into_response())
}

/// `DELETE /api/ui/saved/{name}`: 204, or 404.
pub(crate) async fn saved_delete(
    State(s): State<Arc<Service>>,
    Path(name): Path<String>,
) -> Answer {
    with_store(&s, move |st| st.delete_saved(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/ui/dashboards`: id, title and number of panels of each; a file that cannot be
/// read is listed with its error.
pub(crate) async fn dashboards_list(State(s): State<Arc<Service>>) -> Answer {
    let all = with_store(&s, |st| st.dashboards()).await?;
    let list: Vec<serde_json::Value> = all
        .into_iter()
        .map(|d| match d {
            Ok(d) => json!({"id": d.id, "title": d.title, "panels": d.panels.len()}),
            Err((id, e)) => json!({"id": id, "title": id, "panels": 0, "error": e}),
        })
        .collect();
    Ok(Json(json!({ "dashboards": list })).into_response())
}

/// `GET /api/ui/dashboards/{id}`.
pub(crate) async fn dashboard_get(State(s): State<Arc<Service>>, Path(id): Path<String>) -> Answer {
    let d = with_store(&s, move |st| st.dashboard(&id)).await?;
    Ok(Json(d).into_response())
}

/// `PUT /api/ui/dashboards/{id}`: validated, unknown fields refused with their path.
pub(crate) async fn dashboard_put(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let d: Dashboard = body(&bytes)?;
    let d = with_store(&s, move |st| st.put_dashboard(&id, d)).await?;
    Ok(Json(d).into_response())
}

/// `DELETE /api/ui/dashboards/{id}`: 204, or 404.
pub(crate) async fn dashboard_delete(
    State(s): State<Arc<Service>>,
    Path(id): Path<String>,
) -> Answer {
    with_store(&s, move |st| st.delete_dashboard(&id)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Any other path under `/api/ui/`.
pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("{} is not an API of the UI", uri.path()),
    )
}

/// A method a path of `/api/ui/` does not take.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this method is not allowed here (see docs/serve.md, the UI's API)",
    )
}

/// Entries an export holds when the request names no `limit`, and the most it may ask for.
const EXPORT_DEFAULT_LIMIT: u64 = 100_000;
const EXPORT_MAX_LIMIT: u64 = 1_000_000;
/// Rendered bytes gathered before they are sent on (a chunk of the download).
const EXPORT_CHUNK: usize = 256 * 1024;

/// `GET /api/ui/export?query=<LogQL log query>&start=&end=&format=ndjson|csv|json&limit=`:
/// the entries the query matches in `[start, end)`, oldest first, at most `limit`, written as
/// `logflux export` writes them (the client's output code), as a download. Streamed: records
/// are fetched a page at a time and each page's entries sent on, through a small bounded
/// channel, so memory follows a page (and the entries a page's watermark holds back), not the
/// export; a slow download slows the fetching. A failure part way ends the download with an
/// error (the browser shows it failed), never a file that looks complete. Records that fail to
/// open are left out and named on serve's standard error, as in query answers.
pub(crate) async fn export(State(s): State<Arc<Service>>, uri: Uri) -> Answer {
    use super::http::{DEFAULT_SINCE_NS, Params, form_pairs};
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
    let params = Params(form_pairs(uri.query().unwrap_or("")));
    let raw = params
        .get("query")
        .ok_or_else(|| bad("query parameter is required: a LogQL log query".into()))?;
    let q = match logflux_query::parse(raw) {
        Ok(logflux_query::Query::Log(q)) => q,
        Ok(logflux_query::Query::Metric(_)) => {
            return Err(bad(
                "export takes a log query ({app=\"web\"} |= \"timeout\"), not a metric query"
                    .into(),
            ));
        }
        Err(e) => return Err(bad(e.to_string())),
    };
    let (start, end) = params
        .range(logflux_proto::timefmt::now_ns(), DEFAULT_SINCE_NS)
        .map_err(|e| bad(e.message))?;
    let limit = match params.get("limit") {
        None => EXPORT_DEFAULT_LIMIT,
        Some(v) => match v.parse::<u64>() {
            Ok(n) if (1..=EXPORT_MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(bad(format!(
                    "invalid limit {v:?}: a whole number from 1 to {EXPORT_MAX_LIMIT}"
                )));
            }
        },
    };
    let (format, ext, content_type) = match params.get("format").unwrap_or("ndjson") {
        "ndjson" => (Format::Ndjson, "ndjson", "application/x-ndjson"),
        "csv" => (Format::Csv, "csv", "text/csv; charset=utf-8"),
        "json" => (Format::Json, "json", "application/json"),
        other => {
            return Err(bad(format!(
                "invalid format {other:?}: ndjson, csv or json"
            )));
        }
    };
    let style = Style {
        format,
        color: false,
        zone: Zone::new(true),
    };
    // Started before the answer's head: what the server refuses is a 4xx/5xx, not a broken
    // download.
    let scanner = match super::loki::scan_for(&q.prune(), start, end, false) {
        Some(scan) => Some(
            s.scan(&scan)
                .await
                .map_err(|e| ApiError::new(e.status, e.message))?,
        ),
        None => None,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(stream_export(scanner, q, (start, end, limit), style, tx));
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let disposition = format!("attachment; filename=\"logflux-{stamp}.{ext}\"");
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

/// A writer whose bytes are taken out a chunk at a time (the printer writes into it).
#[derive(Debug, Default, Clone)]
struct Chunks(Arc<std::sync::Mutex<Vec<u8>>>);

impl Chunks {
    fn take(&self) -> Vec<u8> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn len(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

impl std::io::Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The export's body: pages of records, their matching entries ordered by the scan's
/// watermarks, rendered and sent on until `limit`; ends early when the download is
/// abandoned (the channel closes).
async fn stream_export(
    scanner: Option<super::Scanner>,
    q: logflux_query::LogQuery,
    (start, end, limit): (i64, i64, u64),
    style: Style,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let out = Chunks::default();
    let mut printer = Printer::new(out.clone(), style);
    let send = |bytes: Vec<u8>| {
        let tx = tx.clone();
        async move { bytes.is_empty() || tx.send(Ok(Bytes::from(bytes))).await.is_ok() }
    };
    // Writes to `Chunks` cannot fail.
    let _ = printer.begin();
    let mut written: u64 = 0;
    if let Some(mut scanner) = scanner {
        let mut merger: Merger<String> = Merger::new(false);
        'pages: loop {
            let batch = match scanner.next().await {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("logflux serve: an export stopped: {}", e.message);
                    let _ = tx
                        .send(Err(std::io::Error::other(format!(
                            "the export stopped: {}",
                            e.message
                        ))))
                        .await;
                    return;
                }
            };
            for r in &batch.records {
                for e in r.entries.iter() {
                    if e.timestamp_ns < start || (e.timestamp_ns >= end && end > start) {
                        continue;
                    }
                    let row = logflux_query::Row {
                        app: &r.app,
                        entry: e,
                    };
                    if q.eval(&row).is_some() {
                        merger.push(e.timestamp_ns.clamp(r.min_ts, r.max_ts), render(style, e));
                    }
                }
            }
            while let Some(line) = merger.pop(batch.watermark, batch.done) {
                let _ = printer.rendered(line.as_bytes());
                written += 1;
                if written >= limit {
                    break 'pages;
                }
                if out.len() >= EXPORT_CHUNK && !send(out.take()).await {
                    return;
                }
            }
            merger.keep_first(usize::try_from(limit - written).unwrap_or(usize::MAX));
            if !send(out.take()).await {
                return;
            }
            if batch.done {
                break;
            }
        }
        while written < limit
            && let Some(line) = merger.pop(None, true)
        {
            let _ = printer.rendered(line.as_bytes());
            written += 1;
            if out.len() >= EXPORT_CHUNK && !send(out.take()).await {
                return;
            }
        }
    }
    let _ = printer.finish();
    send(out.take()).await;
}
