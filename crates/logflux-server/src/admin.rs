//! The admin API, scoped to the caller's tenant: applications, API keys, access tokens, the
//! tenant public key, retention and the audit log. Every action is audited; credentials are
//! shown once, at creation, and stored only as hashes.
//!
//! Scopes: `read` lists applications and reads records; `write` also provisions ingest
//! (creates applications, sets their retention, creates, lists and revokes API keys);
//! `admin` also manages access tokens, the tenant public key, erasure and the audit log.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Scope};
use crate::catalog::{AccessToken, ApiKey, Application};
use crate::http::{ApiError, JsonBody, QueryParams, Remote, SharedState};

fn app_json(a: &Application) -> Value {
    json!({"id": a.id, "name": a.name, "retention_days": a.retention_days, "created_ns": a.created_ns})
}

fn api_key_json(k: &ApiKey) -> Value {
    json!({
        "id": k.id, "application_id": k.application_id, "name": k.name, "prefix": k.prefix,
        "signature_required": k.signature_required, "created_ns": k.created_ns,
        "revoked_ns": k.revoked_ns, "last_used_ns": k.last_used_ns,
    })
}

fn token_json(t: &AccessToken) -> Value {
    json!({
        "id": t.id, "name": t.name, "prefix": t.prefix,
        "scopes": t.scopes.split_whitespace().collect::<Vec<_>>(),
        "created_ns": t.created_ns, "expires_ns": t.expires_ns,
        "revoked_ns": t.revoked_ns, "last_used_ns": t.last_used_ns,
    })
}

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ApiError::BadRequest(format!(
            "{what} must be 1..64 characters of a-z, A-Z, 0-9, -, _ or ., got {name:?}"
        )));
    }
    Ok(())
}

/// An application name as the API accepts it, case-folded: 1..63 of `a-z 0-9 . _ -`,
/// starting with a letter or digit (so never `.` or `..`, and safe in a URL path), and not
/// starting with `app_`, the prefix of every application id, so a name never reads as an id.
/// Returns the folded name (`Web` and `web` are one name).
pub(crate) fn application_name(name: &str) -> Result<String, ApiError> {
    let folded = name.to_ascii_lowercase();
    let b = folded.as_bytes();
    let well_formed = (1..=63).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|&c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        });
    if !well_formed {
        return Err(ApiError::BadRequest(format!(
            "application name must be 1..63 characters of a-z, 0-9, ., _ or -, starting with a \
             letter or digit (case is ignored), got {:?}",
            name.chars().take(80).collect::<String>()
        )));
    }
    if folded.starts_with(APPLICATION_ID_PREFIX) {
        return Err(ApiError::BadRequest(format!(
            "application name must not start with {APPLICATION_ID_PREFIX:?}, which begins every \
             application id, got {name:?}"
        )));
    }
    Ok(folded)
}

/// Every application id starts with this; no application name does.
pub(crate) const APPLICATION_ID_PREFIX: &str = "app_";

/// `GET /v1/me` (any scope): who the token is — its tenant (the client binds decryption to
/// it), name, scopes and expiry. Never the token itself.
pub(crate) async fn me(
    State(s): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Read).await?;
    Ok(Json(json!({
        "tenant_id": t.tenant_id,
        "token_id": t.id,
        "token_name": t.name,
        "scopes": t.scopes.split_whitespace().collect::<Vec<_>>(),
        "expires_ns": t.expires_ns,
    })))
}

/// `GET /v1/applications` (read scope) and `GET /v1/admin/applications`.
pub(crate) async fn list_applications(
    State(s): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Read).await?;
    let apps = s.catalog.applications(&t.tenant_id).await?;
    Ok(Json(
        json!({"applications": apps.iter().map(app_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApplication {
    name: String,
}

pub(crate) async fn create_application(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<CreateApplication>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = s.access_token(&headers, Scope::Write).await?;
    let name = application_name(&req.name)?;
    let app = s
        .catalog
        .create_application(&auth::new_id(APPLICATION_ID_PREFIX), &t.tenant_id, &name)
        .await
        .map_err(|e| match e {
            crate::catalog::CatalogError::Conflict(_) => ApiError::Conflict(format!(
                "an application named {name:?} (ignoring case) already exists, or the name is \
                 another application's id"
            )),
            other => other.into(),
        })?;
    crate::recovery::publish_application(&s.catalog, &s.store, &t.tenant_id, &app.id)
        .await
        .map_err(unavailable)?;
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "application.create",
            &app.id,
            &remote,
            &json!({"name": name}).to_string(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(app_json(&app))))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetRetention {
    /// Days to keep; `null` keeps forever.
    days: Option<i64>,
}

pub(crate) async fn set_retention(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    Path(app): Path<String>,
    JsonBody(req): JsonBody<SetRetention>,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Write).await?;
    if req.days.is_some_and(|d| !(1..=36_500).contains(&d)) {
        return Err(ApiError::BadRequest(
            "days must be 1..36500, or null to keep forever".into(),
        ));
    }
    let app = s.catalog.application(&t.tenant_id, &app).await?;
    s.catalog
        .set_retention(&t.tenant_id, &app.id, req.days)
        .await?;
    crate::recovery::publish_application(&s.catalog, &s.store, &t.tenant_id, &app.id)
        .await
        .map_err(unavailable)?;
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "application.retention",
            &app.id,
            &remote,
            &json!({"days": req.days}).to_string(),
        )
        .await?;
    let app = s.catalog.application(&t.tenant_id, &app.id).await?;
    Ok(Json(app_json(&app)))
}

pub(crate) async fn list_api_keys(
    State(s): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Write).await?;
    let keys = s.catalog.api_keys(&t.tenant_id).await?;
    Ok(Json(
        json!({"api_keys": keys.iter().map(api_key_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateApiKey {
    application: String,
    name: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    signature_required: bool,
}

pub(crate) async fn create_api_key(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = s.access_token(&headers, Scope::Write).await?;
    check_name("name", &req.name)?;
    let region = req.region.unwrap_or_else(|| s.config.region.clone());
    if !auth::REGIONS.contains(&region.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "region must be one of {}, got {region:?}",
            auth::REGIONS.join(", ")
        )));
    }
    let app = s
        .catalog
        .application(&t.tenant_id, &req.application)
        .await?;
    let (key, prefix) = auth::new_api_key(&region);
    let record = s
        .catalog
        .create_api_key(
            &auth::new_id("key_"),
            &t.tenant_id,
            &app.id,
            &req.name,
            &auth::hash(&key),
            &prefix,
            req.signature_required,
        )
        .await?;
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "api_key.create",
            &record.id,
            &remote,
            &json!({"application": app.id}).to_string(),
        )
        .await?;
    let mut body = api_key_json(&record);
    body["api_key"] = key.into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub(crate) async fn revoke_api_key(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = s.access_token(&headers, Scope::Write).await?;
    s.catalog.revoke_api_key(&t.tenant_id, &id).await?;
    s.forget_credentials();
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "api_key.revoke",
            &id,
            &remote,
            "{}",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn list_tokens(
    State(s): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    let tokens = s.catalog.access_tokens(&t.tenant_id).await?;
    Ok(Json(
        json!({"tokens": tokens.iter().map(token_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

pub(crate) async fn create_token(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    check_name("name", &req.name)?;
    if req.scopes.is_empty() || req.scopes.iter().any(|sc| Scope::parse(sc).is_none()) {
        return Err(ApiError::BadRequest(
            "scopes must be a non-empty list of read, write, admin".into(),
        ));
    }
    let days = req.expires_in_days.unwrap_or(s.config.token_expiry_days);
    if !(1..=3650).contains(&days) {
        return Err(ApiError::BadRequest(
            "expires_in_days must be 1..3650".into(),
        ));
    }
    let (token, prefix) = auth::new_access_token();
    let expires_ns = logflux_proto::timefmt::now_ns() + days * 86_400 * 1_000_000_000;
    let record = s
        .catalog
        .create_access_token(
            &auth::new_id("pat_"),
            &t.tenant_id,
            &req.name,
            &auth::hash(&token),
            &prefix,
            &req.scopes.join(" "),
            expires_ns,
        )
        .await?;
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "token.create",
            &record.id,
            &remote,
            &json!({"scopes": req.scopes}).to_string(),
        )
        .await?;
    let mut body = token_json(&record);
    body["token"] = token.into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub(crate) async fn revoke_token(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    s.catalog.revoke_access_token(&t.tenant_id, &id).await?;
    // Live tails of this server check their token now; other servers' within
    // `tail.credential_check_s`.
    s.tails.credentials_changed();
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "token.revoke",
            &id,
            &remote,
            "{}",
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn get_public_key(
    State(s): State<SharedState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Read).await?;
    let tenant = s.catalog.tenant(&t.tenant_id).await?;
    let pem = tenant
        .public_key_pem
        .ok_or_else(|| ApiError::NotFound("the tenant has no public key yet".into()))?;
    let fp = logflux_crypto::PublicKey::from_pem(&pem)
        .map(|k| k.fingerprint().to_string())
        .map_err(|e| ApiError::Internal(format!("stored public key unreadable: {e}")))?;
    Ok(Json(json!({"public_key_pem": pem, "fingerprint": fp})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutPublicKey {
    public_key_pem: String,
}

pub(crate) async fn put_public_key(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<PutPublicKey>,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    let key = logflux_crypto::PublicKey::from_pem(&req.public_key_pem)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let pem = key.to_pem();
    s.catalog.set_public_key(&t.tenant_id, &pem).await?;
    crate::recovery::publish_tenant(&s.catalog, &s.store, &t.tenant_id)
        .await
        .map_err(unavailable)?;
    let fp = key.fingerprint().to_string();
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "public_key.set",
            &fp,
            &remote,
            "{}",
        )
        .await?;
    Ok(Json(json!({"public_key_pem": pem, "fingerprint": fp})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

pub(crate) async fn audit(
    State(s): State<SharedState>,
    headers: HeaderMap,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1..1000, got {limit}"
        )));
    }
    let events = s
        .catalog
        .audit_events(&t.tenant_id, q.before, limit)
        .await?;
    let next = if events.len() as i64 == limit {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Json(json!({
        "events": events.iter().map(|e| json!({
            "id": e.id, "at_ns": e.at_ns, "actor": e.actor, "action": e.action,
            "target": e.target, "remote": e.remote, "details": e.details,
        })).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EraseRequest {
    application: String,
    from: logflux_proto::query::TimeBound,
    to: logflux_proto::query::TimeBound,
}

/// `POST /v1/admin/erase`: erases every record of an application that overlaps `[from, to]`.
pub(crate) async fn erase(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<EraseRequest>,
) -> Result<Json<Value>, ApiError> {
    let t = s.access_token(&headers, Scope::Admin).await?;
    let from = req.from.ns("from").map_err(ApiError::BadRequest)?;
    let to = req.to.ns("to").map_err(ApiError::BadRequest)?;
    if from > to {
        return Err(ApiError::BadRequest("from is after to".into()));
    }
    let app = s
        .catalog
        .application(&t.tenant_id, &req.application)
        .await?;
    let erased = crate::erase::erase(&s.catalog, &s.store, &t.tenant_id, &app.id, from, to)
        .await
        .map_err(|e| ApiError::Unavailable(format!("erasure: {e:#}")))?;
    let details = json!({"from": from, "to": to, "result": erased}).to_string();
    s.catalog
        .audit(
            &t.tenant_id,
            &format!("token:{}", t.id),
            "records.erase",
            &app.id,
            &remote,
            &details,
        )
        .await?;
    Ok(Json(json!({
        "application_id": app.id,
        "segments_deleted": erased.segments_deleted,
        "segments_rewritten": erased.segments_rewritten,
        "records_erased": erased.records_erased,
    })))
}

/// A store failure while describing a change in the store (see `recovery`): the change is in
/// the catalog, and the next housekeeping pass writes a description that is missing.
fn unavailable(e: anyhow::Error) -> ApiError {
    ApiError::Unavailable(format!("storing the change's description: {e:#}"))
}
