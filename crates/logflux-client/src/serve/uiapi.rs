//! The web UI's JSON API under `/api/ui/`: the session check, saved searches and dashboards
//! (files in the client's config directory, [`crate::uistore`]). Bodies are JSON; errors are
//! `{"error":"…"}` with a 4xx status (500 when a file cannot be read or written).
//!
//! File work runs off the async threads, one operation at a time (a read-modify-write of the
//! saved searches' file must not interleave with another).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Service;
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
