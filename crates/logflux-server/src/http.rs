//! The HTTP surface: shared state, the one place errors become responses, authentication, and
//! the router.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use serde_json::json;
use tokio::sync::watch;

use crate::auth::{self, Scope};
use crate::catalog::{AccessToken, ApiKey, Catalog, CatalogError};
use crate::commit::{CommitError, Committer};
use crate::metrics::{Metrics, RouteStatus};
use crate::query::{FooterCache, TailConfig, TailStreams};
use crate::ratelimit::RateLimiter;
use crate::store::BlobStore;
use crate::{admin, ingest, query};

/// Limits and settings the handlers need.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Region reported by `/info` and used in new API keys.
    pub region: String,
    /// Largest request body, bytes.
    pub max_request_bytes: usize,
    /// Largest part (one record), bytes.
    pub max_part_bytes: usize,
    /// Most parts in one request.
    pub max_parts: usize,
    /// Requests per second per API key (0: unlimited), and the burst allowed.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Days a new personal access token stays valid unless told otherwise.
    pub token_expiry_days: i64,
    /// Refuse records whose first entry is older than this many days (`None`: any age, the
    /// default, so archives can be imported with their own times).
    pub max_backfill_days: Option<i64>,
    /// Limits of live tails.
    pub tail: TailConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            region: "eu".into(),
            max_request_bytes: 64 * 1024 * 1024,
            max_part_bytes: 8 * 1024 * 1024,
            max_parts: 1000,
            rate_limit_per_second: 1000,
            rate_limit_burst: 2000,
            token_expiry_days: 90,
            max_backfill_days: None,
            tail: TailConfig::default(),
        }
    }
}

/// Everything handlers share.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) catalog: Catalog,
    pub(crate) store: BlobStore,
    pub(crate) committer: Committer,
    pub(crate) commits: Arc<watch::Sender<u64>>,
    /// Becomes true when the server begins to shut down (long-lived streams end then).
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: HttpConfig,
    pub(crate) footers: FooterCache,
    pub(crate) limiter: RateLimiter,
    pub(crate) tails: TailStreams,
    api_keys: Mutex<HashMap<Vec<u8>, CachedKey>>,
    usage: Mutex<HashMap<String, CachedUsage>>,
    data_keys: Mutex<HashMap<(String, String), (String, Instant)>>,
}

pub(crate) type SharedState = Arc<AppState>;

/// A tenant's quota, the bytes it stores, and when they were looked up.
type CachedUsage = (Option<i64>, i64, Instant);

/// Largest handshake body (a wrapped key and an API key in JSON).
pub(crate) const MAX_HANDSHAKE_BODY_BYTES: usize = 64 * 1024;

/// Largest JSON body of the other routes: axum's default limit, which [`JsonBody`] applies.
const MAX_JSON_BODY_BYTES: usize = 2 * 1024 * 1024;

/// A looked-up API key (or its absence) and when it was looked up.
type CachedKey = (Option<ApiKey>, Instant);

/// How long a looked-up API key is trusted before asking the catalog again (revocations on
/// another server take effect within this time; on this server at once).
const CREDENTIAL_CACHE_TTL: Duration = Duration::from_secs(10);

impl AppState {
    pub(crate) fn new(
        catalog: Catalog,
        store: BlobStore,
        committer: Committer,
        commits: Arc<watch::Sender<u64>>,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
        config: HttpConfig,
    ) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        AppState {
            catalog,
            store,
            committer,
            commits,
            shutdown,
            metrics,
            config,
            footers: FooterCache::new(256 * 1024 * 1024),
            limiter,
            tails: TailStreams::new(),
            api_keys: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            data_keys: Mutex::new(HashMap::new()),
        }
    }

    /// The active API key presented as `Authorization: Bearer <key>`.
    pub(crate) async fn api_key(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        let presented = bearer(headers)?;
        if !auth::is_api_key_shape(presented) {
            return Err(ApiError::Unauthorized(
                "an ingest API key (<region>-lf_…) is required".into(),
            ));
        }
        let hash = auth::hash(presented);
        let cached = {
            let cache = self.api_keys.lock().expect("lock");
            cache
                .get(&hash)
                .filter(|(_, at)| at.elapsed() < CREDENTIAL_CACHE_TTL)
                .map(|(k, _)| k.clone())
        };
        let key = match cached {
            Some(k) => k,
            None => {
                let k = self.catalog.api_key_by_hash(&hash).await?;
                let mut cache = self.api_keys.lock().expect("lock");
                if cache.len() > 100_000 {
                    cache.clear();
                }
                cache.insert(hash, (k.clone(), Instant::now()));
                if let Some(k) = &k {
                    // Best effort; a failure here must not refuse the request.
                    let catalog = self.catalog.clone();
                    let id = k.id.clone();
                    tokio::spawn(async move {
                        let _ = catalog
                            .touch_api_key(&id, logflux_proto::timefmt::now_ns())
                            .await;
                    });
                }
                k
            }
        };
        match key {
            Some(k) if k.revoked_ns.is_none() => Ok(k),
            _ => Err(ApiError::Unauthorized("invalid or revoked API key".into())),
        }
    }

    /// Refuses `incoming` bytes when they would take the tenant past its storage quota. Usage
    /// is looked up at most every 10 s per tenant and counted up in between.
    pub(crate) async fn check_quota(
        &self,
        tenant_id: &str,
        incoming: usize,
    ) -> Result<(), ApiError> {
        let cached = self
            .usage
            .lock()
            .expect("lock")
            .get(tenant_id)
            .filter(|(_, _, at)| at.elapsed() < CREDENTIAL_CACHE_TTL)
            .map(|(q, u, _)| (*q, *u));
        let (quota, used) = match cached {
            Some(c) => c,
            None => {
                let quota = self.catalog.tenant(tenant_id).await?.quota_bytes;
                let used = if quota.is_some() {
                    self.catalog.tenant_usage(tenant_id).await?
                } else {
                    0
                };
                self.usage
                    .lock()
                    .expect("lock")
                    .insert(tenant_id.to_owned(), (quota, used, Instant::now()));
                (quota, used)
            }
        };
        if let Some(q) = quota {
            if used + incoming as i64 > q {
                return Err(ApiError::QuotaExceeded(format!(
                    "the tenant stores {used} of its {q} bytes; this request needs {incoming} more"
                )));
            }
            if let Some(e) = self.usage.lock().expect("lock").get_mut(tenant_id) {
                e.1 += incoming as i64;
            }
        }
        Ok(())
    }

    /// Forgets cached credentials (after a revocation through this server).
    pub(crate) fn forget_credentials(&self) {
        self.api_keys.lock().expect("lock").clear();
    }

    /// Whether `key_id` is a data key of this tenant and application.
    pub(crate) async fn check_data_key(&self, key: &ApiKey, key_id: &str) -> Result<(), ApiError> {
        let cache_key = (key.tenant_id.clone(), key_id.to_owned());
        if let Some((app, _)) = self.data_keys.lock().expect("lock").get(&cache_key) {
            return if *app == key.application_id {
                Ok(())
            } else {
                Err(ApiError::BadRequest(format!(
                    "unknown key id {key_id:?}; run the handshake again"
                )))
            };
        }
        match self.catalog.data_key(&key.tenant_id, key_id).await {
            Ok(dk) if dk.application_id == key.application_id => {
                let mut cache = self.data_keys.lock().expect("lock");
                if cache.len() > 100_000 {
                    cache.clear();
                }
                cache.insert(cache_key, (dk.application_id, Instant::now()));
                Ok(())
            }
            Ok(_) | Err(CatalogError::NotFound(_)) => Err(ApiError::BadRequest(format!(
                "unknown key id {key_id:?}; run the handshake again"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the request carries a valid credential of either kind (an active API key, or
    /// an access token neither expired nor revoked, whatever its scopes).
    async fn authenticated(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if auth::is_api_key_shape(bearer(headers)?) {
            self.api_key(headers).await.map(drop)
        } else {
            self.valid_access_token(headers).await.map(drop)
        }
    }

    /// The personal access token presented, checked for expiry, revocation and `scope`.
    pub(crate) async fn access_token(
        &self,
        headers: &HeaderMap,
        scope: Scope,
    ) -> Result<AccessToken, ApiError> {
        let token = self.valid_access_token(headers).await?;
        if !auth::grants(&token.scopes, scope) {
            return Err(ApiError::Forbidden(format!(
                "this token's scopes ({}) do not include {}",
                token.scopes,
                scope.name()
            )));
        }
        let now = logflux_proto::timefmt::now_ns();
        if token.last_used_ns.is_none_or(|t| now - t > 60_000_000_000) {
            let catalog = self.catalog.clone();
            let id = token.id.clone();
            tokio::spawn(async move {
                let _ = catalog.touch_access_token(&id, now).await;
            });
        }
        Ok(token)
    }

    /// The personal access token presented, checked for expiry and revocation only.
    async fn valid_access_token(&self, headers: &HeaderMap) -> Result<AccessToken, ApiError> {
        let presented = bearer(headers)?;
        if !auth::is_access_token_shape(presented) {
            return Err(ApiError::Unauthorized(
                "a personal access token (lf_pat_…) is required".into(),
            ));
        }
        let token = self
            .catalog
            .access_token_by_hash(&auth::hash(presented))
            .await?
            .ok_or_else(|| ApiError::Unauthorized("invalid access token".into()))?;
        let now = logflux_proto::timefmt::now_ns();
        if token.revoked_ns.is_some() {
            return Err(ApiError::Unauthorized("access token revoked".into()));
        }
        if token.expires_ns <= now {
            return Err(ApiError::Unauthorized("access token expired".into()));
        }
        Ok(token)
    }

    /// The largest body the route at `path` (a matched route pattern) reads.
    fn body_limit(&self, path: &str) -> usize {
        match path {
            "/v1/ingest" => self.config.max_request_bytes,
            "/v1/handshake/init" | "/v1/handshake/complete" => MAX_HANDSHAKE_BODY_BYTES,
            _ => MAX_JSON_BODY_BYTES,
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer header".into()))?
        .to_str()
        .map_err(|_| ApiError::Unauthorized("malformed Authorization header".into()))?;
    let (scheme, cred) = value.split_once(' ').ok_or_else(|| {
        ApiError::Unauthorized("Authorization must be Bearer <credential>".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") || cred.trim().is_empty() {
        return Err(ApiError::Unauthorized(
            "Authorization must be Bearer <credential>".into(),
        ));
    }
    Ok(cred.trim())
}

/// The client's address, for the audit log.
#[derive(Debug, Clone)]
pub(crate) struct Remote(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for Remote {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Remote(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string()),
        ))
    }
}

/// A JSON request body. A body that is not JSON, has no JSON content type, or does not fit
/// the request's shape is a documented 400 with the usual error body (axum's own rejections
/// are plain-text 415 and 422).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => Err(ApiError::BadRequest(r.body_text())),
        }
    }
}

/// Query-string parameters, refused the same way as [`JsonBody`].
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(QueryParams(v)),
            Err(r) => Err(ApiError::BadRequest(r.body_text())),
        }
    }
}

/// Every error a handler returns; turned into PROTOCOL.md's error body in one place.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    /// A request signature's timestamp is outside the window (401, code `clock_skew`, with the
    /// server's clock in `X-LF-Server-Time`).
    ClockSkew {
        message: String,
        server_time: i64,
    },
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    TooLarge(String),
    RateLimited {
        retry_after: u64,
        limit: u32,
        reset: u64,
    },
    /// Too many live tails open for this token, its tenant or this server (429, code
    /// `too_many_streams`).
    TooManyStreams(String),
    /// Something an administrator must set up first (shown to the caller; retried later).
    NotConfigured(String),
    /// The tenant's storage quota is used up (507).
    QuotaExceeded(String),
    Unavailable(String),
    Internal(String),
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            CatalogError::Conflict(what) => ApiError::Conflict(format!("{what} already exists")),
            CatalogError::Ambiguous(message) => ApiError::Conflict(message),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl From<CommitError> for ApiError {
    fn from(e: CommitError) -> Self {
        ApiError::Unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = ulid::Ulid::new().to_string().to_lowercase();
        let (status, code, message, retry_after) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m.clone(), None),
            ApiError::Unauthorized(m) => {
                (StatusCode::UNAUTHORIZED, "unauthorized", m.clone(), None)
            }
            ApiError::ClockSkew { message, .. } => (
                StatusCode::UNAUTHORIZED,
                "clock_skew",
                message.clone(),
                None,
            ),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone(), None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m.clone(), None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone(), None),
            ApiError::TooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                m.clone(),
                None,
            ),
            ApiError::RateLimited { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("rate limit exceeded; retry after {retry_after} s"),
                Some(*retry_after),
            ),
            ApiError::TooManyStreams(m) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                m.clone(),
                Some(5),
            ),
            ApiError::QuotaExceeded(m) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "quota_exceeded",
                m.clone(),
                None,
            ),
            ApiError::NotConfigured(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                m.clone(),
                Some(30),
            ),
            ApiError::Unavailable(m) => {
                tracing::warn!(request_id, error = %m, "service unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "temporarily unavailable; retry".to_owned(),
                    Some(1),
                )
            }
            ApiError::Internal(m) => {
                tracing::error!(request_id, error = %m, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error".to_owned(),
                    None,
                )
            }
        };
        let mut error = json!({"code": code, "message": message});
        if let Some(r) = retry_after {
            error["retry_after"] = r.into();
        }
        let body = json!({"status": "error", "error": error, "request_id": request_id});
        let mut resp = (status, axum::Json(body)).into_response();
        let h = resp.headers_mut();
        if let Some(r) = retry_after {
            h.insert("retry-after", HeaderValue::from(r));
        }
        if let ApiError::ClockSkew { server_time, .. } = self {
            h.insert("x-lf-server-time", HeaderValue::from(server_time));
        }
        if let ApiError::RateLimited { limit, reset, .. } = self {
            h.insert("x-ratelimit-limit", HeaderValue::from(limit));
            h.insert("x-ratelimit-remaining", HeaderValue::from(0));
            h.insert("x-ratelimit-reset", HeaderValue::from(reset));
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            h.insert("x-request-id", v);
        }
        resp
    }
}

async fn health() -> &'static str {
    "OK"
}

async fn info(State(s): State<SharedState>) -> axum::Json<serde_json::Value> {
    let c = &s.config;
    axum::Json(json!({
        "name": "logflux-server",
        "version": env!("CARGO_PKG_VERSION"),
        "region": c.region,
        "limits": {
            "max_batch_size": c.max_parts,
            "max_payload_size": c.max_part_bytes,
            "max_request_size": c.max_request_bytes,
        },
        "features": ["multipart", "client_side_encryption", "search_tokens", "agent_batches", "idempotency"],
    }))
}

async fn readyz(State(s): State<SharedState>) -> Result<&'static str, ApiError> {
    s.catalog.ping().await?;
    Ok("ready")
}

async fn metrics(State(s): State<SharedState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

/// Counts every request by route (the matched pattern, never the raw path, which may carry
/// ids) and status, with its latency.
async fn observe(
    State(s): State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    let labels = RouteStatus {
        route,
        status: resp.status().as_u16(),
    };
    s.metrics.requests.get_or_create(&labels).inc();
    s.metrics
        .request_seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    resp
}

/// Answers from the headers alone, before any body byte is read: a request that carries a body
/// gets 401 unless its credential is valid (every route that reads a body needs one, so an
/// unauthenticated client costs no more than its headers), and one that declares a body larger
/// than its route reads gets 413. Bodies without a declared length are still cut at the limit
/// while they are read.
async fn early_limits(
    State(s): State<SharedState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let has_body = declared.is_some_and(|n| n > 0)
        || req
            .headers()
            .contains_key(axum::http::header::TRANSFER_ENCODING);
    if has_body && let Err(e) = s.authenticated(req.headers()).await {
        return e.into_response();
    }
    if let Some(len) = declared {
        let limit = req
            .extensions()
            .get::<axum::extract::MatchedPath>()
            .map_or(MAX_JSON_BODY_BYTES, |p| s.body_limit(p.as_str()));
        if len > limit as u64 {
            return ApiError::TooLarge(format!(
                "request body of {len} bytes declared; this endpoint reads at most {limit} bytes"
            ))
            .into_response();
        }
    }
    next.run(req).await
}

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// The router, without the path normalisation that [`crate::serve`] wraps around it.
pub(crate) fn router(state: SharedState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/readyz", get(readyz))
        .route("/info", get(info))
        .route("/version", get(info))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/v1/handshake/init", post(ingest::handshake_init))
        .route("/v1/handshake/complete", post(ingest::handshake_complete))
        .route("/v1/ingest", post(ingest::ingest))
        .route("/v1/query", post(query::query))
        .route("/v1/records", post(query::records))
        .route("/v1/tail", post(query::tail))
        .route("/v1/keys/{key_id}", get(query::data_key))
        .route("/v1/me", get(admin::me))
        .route("/v1/applications", get(admin::list_applications))
        .route(
            "/v1/admin/applications",
            get(admin::list_applications).post(admin::create_application),
        )
        .route(
            "/v1/admin/applications/{app}/retention",
            put(admin::set_retention),
        )
        .route(
            "/v1/admin/api-keys",
            get(admin::list_api_keys).post(admin::create_api_key),
        )
        .route("/v1/admin/api-keys/{id}", delete(admin::revoke_api_key))
        .route(
            "/v1/admin/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route(
            "/v1/admin/public-key",
            get(admin::get_public_key).put(admin::put_public_key),
        )
        .route("/v1/admin/audit", get(admin::audit))
        .route("/v1/admin/erase", post(admin::erase))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            early_limits,
        ))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
