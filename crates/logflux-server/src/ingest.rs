//! Ingest (PROTOCOL.md §2): the handshake that hands out the tenant's public key and registers
//! wrapped data keys, and `/v1/ingest`, which stores SDK parts and agent batches unread.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use bytes::Bytes;
use logflux_proto::multipart::{self, IngestPart, MultipartError, PartPayload};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::catalog::ApiKey;
use crate::commit::Incoming;
use crate::http::{ApiError, MAX_HANDSHAKE_BODY_BYTES, Remote, SharedState};
use crate::segment::{RecordMeta, opaque_token};

#[derive(Debug, Deserialize)]
pub(crate) struct InitRequest {
    #[serde(default)]
    api_key: Option<String>,
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

/// Authenticates the API key, applies its rate limit, reads the body (up to `limit`) and checks
/// the request signature when the key requires one or the request carries one.
async fn authenticated_body(
    s: &SharedState,
    headers: &HeaderMap,
    body: Body,
    path: &str,
    limit: usize,
) -> Result<(ApiKey, Bytes), ApiError> {
    let key = s.api_key(headers).await?;
    s.limiter.check(&key.id)?;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::TooLarge(format!("request body is larger than {limit} bytes")))?;
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    match (header("x-lf-signature"), header("x-lf-signature-timestamp")) {
        (Some(sig), Some(ts)) => {
            let bearer = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .map_or("", |(_, c)| c.trim());
            let now = logflux_proto::timefmt::now_ns() / 1_000_000_000;
            logflux_crypto::verify_request(
                &logflux_crypto::signing_key(bearer),
                "POST",
                path,
                ts,
                sig,
                &bytes,
                now,
            )
            .map_err(|e| match e {
                // Told apart from a wrong signature, with the server's time, so a signer whose
                // clock drifted can correct itself and retry instead of giving up.
                logflux_crypto::SignatureError::Skew(_) => ApiError::ClockSkew {
                    message: e.to_string(),
                    server_time: now,
                },
                other => ApiError::Unauthorized(other.to_string()),
            })?;
        }
        (None, None) if !key.signature_required => {}
        _ => {
            return Err(ApiError::Unauthorized(
                logflux_crypto::SignatureError::Missing.to_string(),
            ));
        }
    }
    Ok((key, bytes))
}

fn check_body_key(headers: &HeaderMap, body_key: Option<&str>) -> Result<(), ApiError> {
    // SDKs send the key both in the header and in the body; they must agree.
    if let Some(k) = body_key {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, c)| c.trim());
        if header != Some(k) {
            return Err(ApiError::Unauthorized(
                "api_key in the body differs from the Authorization header".into(),
            ));
        }
    }
    Ok(())
}

/// `POST /v1/handshake/init`: the tenant's public key and the limits. Exactly 200 on success
/// (the Java SDK fails on 201). Limits appear both under `data` (Swift) and in `data.limits`
/// (JavaScript, Java).
pub(crate) async fn handshake_init(
    State(s): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (key, bytes) = authenticated_body(
        &s,
        &headers,
        body,
        "/v1/handshake/init",
        MAX_HANDSHAKE_BODY_BYTES,
    )
    .await?;
    let req: InitRequest = parse_json(&bytes)?;
    check_body_key(&headers, req.api_key.as_deref())?;
    let tenant = s.catalog.tenant(&key.tenant_id).await?;
    let pem = tenant.public_key_pem.ok_or_else(|| {
        ApiError::NotConfigured(
            "the tenant has no public key yet; an administrator uploads it with PUT /v1/admin/public-key".into(),
        )
    })?;
    let c = &s.config;
    Ok(Json(json!({
        "status": "success",
        "data": {
            "public_key": pem,
            "supports_multipart": true,
            "max_batch_size": c.max_parts,
            "max_payload_size": c.max_part_bytes,
            "max_request_size": c.max_request_bytes,
            "limits": {
                "max_batch_size": c.max_parts,
                "max_payload_size": c.max_part_bytes,
                "max_request_size": c.max_request_bytes,
            },
            "tenant_id": key.tenant_id,
            "application_id": key.application_id,
        }
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CompleteRequest {
    #[serde(default)]
    api_key: Option<String>,
    encrypted_secret: String,
    /// A key id chosen by the producer (`ak_` and 32 hex digits), so an agent can seal before
    /// it reaches the server and register the key later. Registering the same id and key
    /// again is idempotent.
    #[serde(default)]
    key_id: Option<String>,
}

fn is_agent_key_id(id: &str) -> bool {
    id.strip_prefix("ak_")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// `POST /v1/handshake/complete`: registers a wrapped data key and returns its id (as `key_id`,
/// `data.key_id`, and `key_uuid` for older SDKs).
pub(crate) async fn handshake_complete(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let (key, bytes) = authenticated_body(
        &s,
        &headers,
        body,
        "/v1/handshake/complete",
        MAX_HANDSHAKE_BODY_BYTES,
    )
    .await?;
    let req: CompleteRequest = parse_json(&bytes)?;
    check_body_key(&headers, req.api_key.as_deref())?;
    let secret = req.encrypted_secret.trim();
    let wrapped = STANDARD
        .decode(secret)
        .or_else(|_| URL_SAFE.decode(secret))
        .map_err(|_| ApiError::BadRequest("encrypted_secret must be base64".into()))?;
    // RSA-2048 to RSA-8192 ciphertexts.
    if !(256..=1024).contains(&wrapped.len()) {
        return Err(ApiError::BadRequest(format!(
            "encrypted_secret is {} bytes; an RSA-OAEP wrapped key is 256..1024 bytes",
            wrapped.len()
        )));
    }
    let key_id = match req.key_id {
        None => crate::auth::new_id("k_"),
        Some(id) if !is_agent_key_id(&id) => {
            return Err(ApiError::BadRequest(
                "key_id must be ak_ followed by 32 lower-case hex digits".into(),
            ));
        }
        Some(id) => match s.catalog.data_key(&key.tenant_id, &id).await {
            Ok(existing)
                if existing.application_id == key.application_id && existing.wrapped == wrapped =>
            {
                return Ok(Json(json!({
                    "status": "success",
                    "key_id": id,
                    "key_uuid": id,
                    "data": {"key_id": id, "key_uuid": id},
                })));
            }
            Ok(_) => {
                return Err(ApiError::Conflict(format!(
                    "key id {id} is already registered with another key"
                )));
            }
            Err(crate::catalog::CatalogError::NotFound(_)) => id,
            Err(e) => return Err(e.into()),
        },
    };
    // The store first: every key the catalog knows (and records can name) is then in the
    // store too, so the catalog can be rebuilt from it.
    crate::recovery::publish_data_key(
        &s.store,
        &crate::catalog::DataKey {
            id: key_id.clone(),
            tenant_id: key.tenant_id.clone(),
            application_id: key.application_id.clone(),
            wrapped: wrapped.clone(),
            created_ns: logflux_proto::timefmt::now_ns(),
        },
    )
    .await
    .map_err(|e| ApiError::Unavailable(format!("storing the data key: {e:#}")))?;
    match s
        .catalog
        .create_data_key(&key_id, &key.tenant_id, &key.application_id, &wrapped)
        .await
    {
        Ok(_) => {}
        Err(crate::catalog::CatalogError::Db(ref d))
            if d.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            // A concurrent registration of the same id won. This request's object may have
            // landed after the winner's: write the winner's again, so the store holds the key
            // the catalog has.
            if let Ok(winner) = s.catalog.data_key(&key.tenant_id, &key_id).await
                && let Err(e) = crate::recovery::publish_data_key(&s.store, &winner).await
            {
                tracing::warn!(key_id = %key_id, error = %e, "could not rewrite a data key object");
            }
            return Err(ApiError::Conflict(format!(
                "key id {key_id} is already registered"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    s.catalog
        .audit(
            &key.tenant_id,
            &format!("api_key:{}", key.id),
            "data_key.register",
            &key_id,
            &remote,
            "{}",
        )
        .await?;
    Ok(Json(json!({
        "status": "success",
        "key_id": key_id,
        "key_uuid": key_id,
        "data": {"key_id": key_id, "key_uuid": key_id},
    })))
}

fn multipart_error(e: MultipartError) -> ApiError {
    match e {
        MultipartError::TooManyParts(_) => ApiError::TooLarge(e.to_string()),
        MultipartError::Part { ref what, .. } if what.contains("larger than") => {
            ApiError::TooLarge(e.to_string())
        }
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// The record id of an SDK part: SDKs send none, so it is derived from what a byte-identical
/// retry repeats (the JavaScript SDK resends the same bytes; the nonce alone is unique).
///
/// A part that carries its own time (`X-LF-Time-Range`'s start, else `X-LF-Timestamp`; both
/// are repeated by a byte-identical retry) gets a **v2** id: its time in milliseconds since the
/// epoch as 6 big-endian bytes (times before 1970 as 0), then the first 10 bytes of SHA-256
/// over the key id, payload and entry type, the nonce with its length, the exact time and the
/// body. Ids, and so the catalog's record keys, then grow with time, and each commit's claims
/// land at the end of the key B-tree instead of on as many random pages as it has parts
/// (docs/benchmarks.md, "Issue 18, round 5"). A part without a time of its own keeps the
/// **v1** id (the first 16 bytes of SHA-256 over the key id, nonce and body): the server's
/// clock is not repeated by a retry. Both are `sdk-` and 32 hex digits (docs/formats.md,
/// "SDK record ids").
fn sdk_record_id(
    key_id: &str,
    payload: u8,
    entry_type: u8,
    nonce: Option<&[u8; 12]>,
    body: &[u8],
    part_time_ns: Option<i64>,
) -> String {
    use aws_lc_rs::digest;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut id = [0u8; 16];
    match part_time_ns {
        Some(ns) => {
            ctx.update(b"logflux-sdk-record-v2\0");
            ctx.update(key_id.as_bytes());
            ctx.update(&[0, payload, entry_type]);
            // The nonce's length first: no nonce and a body that starts with 12 bytes must not
            // meet a nonce of those 12 bytes and the rest of the body.
            ctx.update(&[nonce.map_or(0, |n| n.len() as u8)]);
            ctx.update(nonce.map_or(&[][..], |n| &n[..]));
            ctx.update(&ns.to_be_bytes());
            ctx.update(body);
            // Times before 1970 as 0; the latest i64 nanosecond (2262) is 9.2·10¹² ms, well
            // inside 48 bits (the assertion below).
            let ms = u64::try_from(ns.div_euclid(1_000_000)).unwrap_or(0);
            id[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
            id[6..].copy_from_slice(&ctx.finish().as_ref()[..10]);
        }
        None => {
            ctx.update(b"logflux-sdk-record-v1\0");
            ctx.update(key_id.as_bytes());
            ctx.update(&[0]);
            ctx.update(nonce.map_or(&[][..], |n| &n[..]));
            ctx.update(body);
            id.copy_from_slice(&ctx.finish().as_ref()[..16]);
        }
    }
    format!("sdk-{}", hex::encode(id))
}

/// Every millisecond an i64 of nanoseconds spells fits the 6 bytes of a v2 SDK record id.
const _: () = assert!(((i64::MAX / 1_000_000) as u64) < 1 << 48);

/// Length of the AES-GCM tag that ends every encrypted part's body.
const GCM_TAG_BYTES: usize = 16;

/// Fewest bytes one entry can take in a batch v1 (docs/formats.md), even with every string
/// empty: a one-byte timestamp, level and type, three one-byte string lengths (source,
/// payload type, payload) and a one-byte metadata count.
const MIN_BATCH_ENTRY_BYTES: usize = 7;

/// Most entries one record may declare (`X-LF-Count`): as many of the smallest entries as fit
/// in the largest batch a client opens. A larger count cannot be true.
const MAX_RECORD_ENTRIES: u32 =
    (logflux_proto::limits::MAX_BATCH_PLAINTEXT_BYTES / MIN_BATCH_ENTRY_BYTES) as u32;

/// What ingest checks against the server's clock.
#[derive(Debug, Clone, Copy)]
struct TimeBounds {
    /// The server's clock when the request arrived.
    now: i64,
    /// Records whose first entry is older than this are refused (`ingest.max_backfill_days`).
    oldest: Option<i64>,
}

/// Checks every cleartext field of a part that the server stores and later selects records
/// by, beyond what the multipart parser already bounds (payload and entry type numbers, key id
/// and record id shapes, nonce length, token count), and returns the record's time range.
/// A record that breaks a rule would be fetched by queries it does not belong to (the reserved
/// token, a range of centuries) or could never be opened (an empty body), so it is refused
/// with a 400 that names the part and the rule; docs/formats.md lists every rule.
fn check_part(
    part: &IngestPart<'_>,
    index: usize,
    body_len: usize,
    t: TimeBounds,
) -> Result<(i64, i64), ApiError> {
    use logflux_proto::limits::{MAX_FUTURE_NS, MAX_RECORD_SPAN_NS};
    use logflux_proto::multipart::headers;
    let refuse = |what: String| ApiError::BadRequest(format!("part {index}: {what}"));
    let fmt = logflux_proto::timefmt::format_rfc3339;
    // Bodies: an encrypted part is a ciphertext and its tag; a tag alone seals nothing.
    if part.payload.is_encrypted() && body_len <= GCM_TAG_BYTES {
        return Err(refuse(format!(
            "body is {body_len} bytes; an encrypted part is its ciphertext and a \
             {GCM_TAG_BYTES}-byte GCM tag, so at least {} bytes",
            GCM_TAG_BYTES + 1
        )));
    }
    if body_len == 0 {
        return Err(refuse("body is empty".into()));
    }
    if part.payload == PartPayload::AgentBatch {
        if let Some(t) = part.entry_type {
            return Err(refuse(format!(
                "{} is {}; an agent batch mixes entry types and carries none",
                headers::ENTRY_TYPE,
                t.number()
            )));
        }
        for token in &part.search_tokens {
            if token.len() != 16 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(refuse(format!(
                    "{}: an agent token is 16 hex digits, got {:?}",
                    headers::SEARCH_TOKENS,
                    token.chars().take(32).collect::<String>()
                )));
            }
            if opaque_token(token) == opaque_token(logflux_proto::UNTOKENIZED) {
                return Err(refuse(format!(
                    "{}: {} is reserved for records without tokens and cannot be sent",
                    headers::SEARCH_TOKENS,
                    logflux_proto::UNTOKENIZED
                )));
            }
        }
    }
    match (part.payload, part.count) {
        (_, Some(c)) if c > MAX_RECORD_ENTRIES => {
            return Err(refuse(format!(
                "{} is {c}; a record holds at most {MAX_RECORD_ENTRIES} entries",
                headers::COUNT
            )));
        }
        (PartPayload::SdkEncrypted | PartPayload::SdkGzip, Some(c)) if c != 1 => {
            return Err(refuse(format!(
                "{} is {c}; an SDK part is one entry",
                headers::COUNT
            )));
        }
        _ => {}
    }
    let latest = t.now.saturating_add(MAX_FUTURE_NS);
    if let Some(ts) = part.timestamp_ns
        && ts > latest
    {
        return Err(refuse(format!(
            "{} {} is more than {} minutes ahead of the server's clock ({})",
            headers::TIMESTAMP,
            fmt(ts),
            MAX_FUTURE_NS / 60_000_000_000,
            fmt(t.now)
        )));
    }
    let (min_ts, max_ts) = match (part.time_range, part.timestamp_ns) {
        (Some(r), _) => r,
        (None, Some(ts)) => (ts, ts),
        (None, None) => (t.now, t.now),
    };
    if min_ts > max_ts {
        return Err(refuse(format!(
            "{} starts after it ends",
            headers::TIME_RANGE
        )));
    }
    if max_ts.saturating_sub(min_ts) > MAX_RECORD_SPAN_NS {
        return Err(refuse(format!(
            "{} {} spans more than {} s, the widest a record may cover",
            headers::TIME_RANGE,
            logflux_proto::multipart::format_time_range(min_ts, max_ts),
            MAX_RECORD_SPAN_NS / 1_000_000_000
        )));
    }
    if max_ts > latest {
        return Err(refuse(format!(
            "{} ends at {}, more than {} minutes ahead of the server's clock ({})",
            headers::TIME_RANGE,
            fmt(max_ts),
            MAX_FUTURE_NS / 60_000_000_000,
            fmt(t.now)
        )));
    }
    if let Some(oldest) = t.oldest
        && min_ts < oldest
    {
        return Err(refuse(format!(
            "the record starts at {}, before {} (this server refuses records older than its \
             ingest.max_backfill_days)",
            fmt(min_ts),
            fmt(oldest)
        )));
    }
    Ok((min_ts, max_ts))
}

/// `POST /v1/ingest`: stores every part of a multipart body, or none of them.
pub(crate) async fn ingest(
    State(s): State<SharedState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // From here until it is queued (or refused), a batch being formed lingers for it.
    let arriving = s.committer.arriving();
    let (key, body) =
        authenticated_body(&s, &headers, body, "/v1/ingest", s.config.max_request_bytes).await?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multipart::boundary_from_content_type(content_type)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?
        .to_owned();
    let limits = multipart::Limits {
        max_parts: s.config.max_parts,
        max_part_bytes: s.config.max_part_bytes,
        ..multipart::Limits::default()
    };
    let raw_parts = multipart::parse(&body, &boundary, &limits).map_err(multipart_error)?;
    s.check_quota(&key.tenant_id, body.len()).await?;
    let received_ns = logflux_proto::timefmt::now_ns();
    let bounds = TimeBounds {
        now: received_ns,
        oldest: s
            .config
            .max_backfill_days
            .map(|d| received_ns.saturating_sub(d.saturating_mul(86_400 * 1_000_000_000))),
    };
    let mut records = Vec::with_capacity(raw_parts.len());
    for (i, raw) in raw_parts.iter().enumerate() {
        let part = IngestPart::from_raw(raw, i).map_err(multipart_error)?;
        let (min_ts, max_ts) = check_part(&part, i, part.body.len(), bounds)?;
        if let Some(k) = part.key_id {
            s.check_data_key(&key, k).await?;
        }
        let part_body = body.slice(part.body.clone());
        let record_id = match (part.payload, part.record_id) {
            (PartPayload::AgentBatch, Some(id)) => format!("agent-{id}"),
            _ => sdk_record_id(
                part.key_id.unwrap_or(""),
                part.payload.number(),
                part.entry_type.map_or(0, |t| t.number()),
                part.nonce.as_ref(),
                &part_body,
                part.time_range
                    .map(|(start, _)| start)
                    .or(part.timestamp_ns),
            ),
        };
        let mut tokens: Vec<u64> = part.search_tokens.iter().map(|t| opaque_token(t)).collect();
        if part.payload != PartPayload::AgentBatch {
            tokens.push(opaque_token(logflux_proto::UNTOKENIZED));
        }
        // Agents send their tokens sorted and distinct; only others need sorting.
        if !tokens.is_sorted_by(|a, b| a < b) {
            tokens.sort_unstable();
            tokens.dedup();
        }
        records.push(Incoming {
            meta: RecordMeta {
                record_id,
                key_id: part.key_id.unwrap_or("").to_owned(),
                payload: part.payload.number(),
                entry_type: part.entry_type.map_or(0, |t| t.number()),
                nonce: part.nonce,
                crlf_stripped: part.crlf_stripped,
                min_ts,
                max_ts,
                count: part.count.unwrap_or(1),
                received_ns,
                tokens,
                filter: None,
            },
            body: part_body,
        });
    }
    let n = records.len();
    let outcome = s
        .committer
        .submit(Some(arriving), &key.tenant_id, &key.application_id, records)
        .await?;
    tracing::debug!(tenant = %key.tenant_id, parts = n, stored = outcome.stored, duplicates = outcome.duplicates, "ingested");
    Ok((
        StatusCode::ACCEPTED,
        Json(
            json!({"status": "accepted", "accepted": outcome.stored, "duplicates": outcome.duplicates}),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::limits::{MAX_FUTURE_NS, MAX_RECORD_SPAN_NS};

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn agent_part(range: (i64, i64), count: u32) -> IngestPart<'static> {
        IngestPart {
            payload: PartPayload::AgentBatch,
            entry_type: None,
            timestamp_ns: None,
            key_id: Some("ak_x"),
            nonce: Some([0; 12]),
            search_tokens: vec!["00000000000000ff"],
            record_id: Some("r"),
            count: Some(count),
            time_range: Some(range),
            body: 0..100,
            crlf_stripped: false,
        }
    }

    fn check(
        part: &IngestPart<'_>,
        body_len: usize,
        oldest: Option<i64>,
    ) -> Result<(i64, i64), String> {
        check_part(part, 0, body_len, TimeBounds { now: NOW, oldest }).map_err(|e| match e {
            ApiError::BadRequest(m) => m,
            other => panic!("not a 400: {other:?}"),
        })
    }

    #[test]
    fn sdk_record_ids_v1_without_a_part_time_v2_with_one() {
        let nonce = [1u8; 12];
        let id = |key: &str, nonce: Option<&[u8; 12]>, body: &[u8], t: Option<i64>| {
            sdk_record_id(key, 1, 1, nonce, body, t)
        };
        // Golden values, computed apart from this code (Python's hashlib): v1 is the first
        // 16 bytes of SHA-256("logflux-sdk-record-v1\0" key "\0" nonce body), so a retry that
        // spans an upgrade keeps its id; v2 is the part's millisecond, then 10 bytes of
        // SHA-256("logflux-sdk-record-v2\0" key "\0" payload type, entry type, nonce length,
        // nonce, time in ns as i64 big-endian, body).
        assert_eq!(
            id("ak_x", Some(&nonce), b"hello", None),
            "sdk-a573e6f8c2b21f3e366a439fa6b6d308"
        );
        let ns = 1_800_000_000_123_456_789;
        assert_eq!(
            id("ak_x", Some(&nonce), b"hello", Some(ns)),
            "sdk-01a3185c507bf50b95dc4a00f3403e35"
        );
        assert_eq!(
            sdk_record_id("ak_x", 3, 7, None, b"hello", Some(ns)),
            "sdk-01a3185c507bfb26fdf1bc1777bc9b1a"
        );
        // A retry repeats the id; any other key, payload or entry type, nonce, body or time
        // (even within the millisecond) is another record.
        let base = id("ak_x", Some(&nonce), b"hello", Some(ns));
        assert_eq!(id("ak_x", Some(&nonce), b"hello", Some(ns)), base);
        let mut body_with_nonce = nonce.to_vec();
        body_with_nonce.extend_from_slice(b"hello");
        for other in [
            id("ak_x", Some(&[2; 12]), b"hello", Some(ns)),
            id("ak_x", Some(&nonce), b"hellp", Some(ns)),
            id("ak_y", Some(&nonce), b"hello", Some(ns)),
            id("ak_x", Some(&nonce), b"hello", Some(ns + 1)),
            id("ak_x", Some(&nonce), b"hello", Some(ns + 1_000_000)),
            // No nonce and the nonce's bytes leading the body: not the same part.
            id("ak_x", None, &body_with_nonce, Some(ns)),
            sdk_record_id("ak_x", 3, 1, Some(&nonce), b"hello", Some(ns)),
            sdk_record_id("ak_x", 1, 2, Some(&nonce), b"hello", Some(ns)),
        ] {
            assert_ne!(other, base);
            assert_eq!(other.len(), base.len());
        }
        // Times before 1970 count as 0; the latest i64 time fits (9 223 372 036 854 ms).
        let early = id("ak_x", Some(&nonce), b"hello", Some(-5));
        assert!(early.starts_with("sdk-000000000000"), "{early}");
        let late = id("ak_x", Some(&nonce), b"hello", Some(i64::MAX));
        assert!(late.starts_with("sdk-08637bd05af6"), "{late}");
        // Later parts get larger catalog keys: claims append to the key B-tree.
        let keys: Vec<Vec<u8>> = (0..50)
            .map(|i| {
                let id = id("ak_x", Some(&[i as u8; 12]), b"x", Some(ns + i * 1_000_000));
                crate::catalog::record_key(&id)
            })
            .collect();
        assert!(keys.is_sorted(), "v2 keys are not in time order");
        assert!(keys.iter().all(|k| k.len() == 17 && k[0] == 1));
    }

    #[test]
    fn bounds_are_inclusive_and_one_past_is_refused() {
        let end = NOW + MAX_FUTURE_NS;
        let widest = (end - MAX_RECORD_SPAN_NS, end);
        assert_eq!(check(&agent_part(widest, 1), 17, None), Ok(widest));
        let e = check(&agent_part((widest.0 - 1, end), 1), 17, None).unwrap_err();
        assert!(
            e.starts_with("part 0: X-LF-Time-Range") && e.contains("3600 s"),
            "{e}"
        );
        let e = check(&agent_part((NOW, end + 1), 1), 17, None).unwrap_err();
        assert!(e.contains("15 minutes ahead"), "{e}");
        assert!(check(&agent_part((NOW, NOW), MAX_RECORD_ENTRIES), 17, None).is_ok());
        let e = check(&agent_part((NOW, NOW), MAX_RECORD_ENTRIES + 1), 17, None).unwrap_err();
        assert!(e.contains("X-LF-Count"), "{e}");
        let mut typed = agent_part((NOW, NOW), 1);
        typed.entry_type = Some(logflux_proto::EntryType::Metric);
        let e = check(&typed, 17, None).unwrap_err();
        assert!(e.contains("X-LF-Entry-Type is 2"), "{e}");
        let e = check(&agent_part((NOW, NOW), 1), 16, None).unwrap_err();
        assert!(e.contains("body is 16 bytes"), "{e}");
        // Old times: any age, unless a backfill limit is set.
        let old = (0, 1);
        assert!(check(&agent_part(old, 1), 17, None).is_ok());
        assert!(check(&agent_part(old, 1), 17, Some(0)).is_ok());
        assert!(check(&agent_part(old, 1), 17, Some(1)).is_err());
    }

    #[test]
    fn the_reserved_token_is_refused_in_either_case_and_sdk_parts_get_it() {
        let mut p = agent_part((NOW, NOW), 1);
        p.search_tokens = vec!["00000000000000ff", logflux_proto::UNTOKENIZED];
        assert!(check(&p, 17, None).unwrap_err().contains("reserved"));
        let mut sdk = agent_part((NOW, NOW), 1);
        sdk.payload = PartPayload::SdkEncrypted;
        sdk.time_range = None;
        sdk.timestamp_ns = Some(NOW - 200 * 365 * 86_400 * 1_000_000_000);
        sdk.search_tokens = vec![logflux_proto::UNTOKENIZED];
        assert!(check(&sdk, 17, None).is_ok(), "SDK parts carry it anyway");
        sdk.timestamp_ns = Some(NOW + MAX_FUTURE_NS + 1);
        assert!(
            check(&sdk, 17, None)
                .unwrap_err()
                .contains("X-LF-Timestamp")
        );
    }
}
