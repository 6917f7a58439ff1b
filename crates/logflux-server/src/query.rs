//! Queries: prune segments by time and Bloom filter in the catalog, then by each segment's
//! token index (footers cached), then range-read only the matching records and stream them.
//! Cost follows what matches, not what is stored.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot, watch};

use logflux_proto::frames;
use logflux_proto::query::{
    self, Cursor, QueryPlan, QueryRequest, RecordRef, RecordsRequest, TailRequest,
};

use crate::auth::Scope;
use crate::bloom;
use crate::catalog::{Segment, SegmentFilter};
use crate::http::{ApiError, JsonBody, Remote, SharedState};
use crate::metrics::{ReplyBroken, TailEnd};
use crate::segment::{self, Footer, opaque_token};
use crate::store::BlobStore;

/// Why a segment's footer could not be had.
#[derive(Debug)]
pub(crate) enum FooterError {
    /// The store did not answer (retry later).
    Store(String),
    /// The object is there but damaged: its records cannot be found. Queries report it and go
    /// on with the other segments.
    Damaged(String),
}

impl From<FooterError> for ApiError {
    fn from(e: FooterError) -> Self {
        match e {
            FooterError::Store(m) => ApiError::Unavailable(m),
            FooterError::Damaged(m) => ApiError::Internal(m),
        }
    }
}

/// The form of a query, records or tail response: NDJSON (for scripts, and what the OpenAPI
/// document describes) or the binary record stream (`logflux_proto::frames`), which a client
/// asks for in `Accept`. Both carry the same messages: a frame's header is the NDJSON line's
/// object without `body`, and the body follows it as raw bytes instead of base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Ndjson,
    Frames,
}

impl Form {
    /// The form a request's `Accept` asks for: the binary stream when it names
    /// [`frames::CONTENT_TYPE`] (with a quality above 0), NDJSON otherwise.
    pub(crate) fn of(headers: &HeaderMap) -> Form {
        let wants = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';');
                let kind = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                kind.eq_ignore_ascii_case(frames::CONTENT_TYPE) && !refused
            });
        if wants { Form::Frames } else { Form::Ndjson }
    }

    fn content_type(self) -> &'static str {
        match self {
            Form::Ndjson => frames::NDJSON,
            Form::Frames => frames::CONTENT_TYPE,
        }
    }

    /// What a response body begins with.
    fn preamble(self) -> Option<Bytes> {
        (self == Form::Frames).then(|| Bytes::from_static(&frames::MAGIC))
    }

    /// One message without a body, as one buffer.
    fn message(self, v: &Value) -> Bytes {
        let mut bytes = serde_json::to_vec(v).expect("JSON");
        match self {
            Form::Ndjson => {
                bytes.push(b'\n');
                bytes.into()
            }
            Form::Frames => frames::frame(&bytes, None).into(),
        }
    }

    /// A record message `v` and its `body`, as chunks to send in order: the body is sent as
    /// read from the store, without a copy, in the binary form.
    fn record(self, mut v: Value, body: Option<&Bytes>, out: &mut Vec<Bytes>) {
        match (self, body) {
            (Form::Frames, Some(body)) => {
                let header = serde_json::to_vec(&v).expect("JSON");
                out.push(frames::frame_head(&header, Some(body.len())).into());
                out.push(body.clone());
            }
            (Form::Ndjson, Some(body)) => {
                v["body"] = STANDARD.encode(body).into();
                out.push(self.message(&v));
            }
            (_, None) => out.push(self.message(&v)),
        }
    }

    /// A record message as one buffer (a live tail queues one buffer a message).
    fn record_bytes(self, v: Value, body: Option<&Bytes>) -> Bytes {
        let mut out = Vec::with_capacity(2);
        self.record(v, body, &mut out);
        match out.as_slice() {
            [one] => one.clone(),
            parts => parts.concat().into(),
        }
    }

    fn response(self, chunks: Vec<Bytes>) -> Response {
        self.streaming_reply(futures_util::stream::iter(
            chunks.into_iter().map(Ok::<_, std::convert::Infallible>),
        ))
    }

    /// A reply in this form: its preamble, then `body`'s chunks as they come.
    fn streaming_reply<S, E>(self, body: S) -> Response
    where
        S: futures_util::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<axum::BoxError> + Send + 'static,
    {
        let stream = futures_util::StreamExt::chain(
            futures_util::stream::iter(self.preamble().map(Ok)),
            body,
        );
        (
            [
                (header::CONTENT_TYPE, self.content_type()),
                (header::VARY, "accept"),
            ],
            Body::from_stream(stream),
        )
            .into_response()
    }
}

/// `{"type":"damaged",…}`: a segment skipped because it cannot be read, so the client can say
/// that part of the answer is missing instead of the whole query failing.
fn damaged_line(form: Form, seg: &Segment, message: &str) -> Bytes {
    tracing::error!(segment = seg.id, object = %seg.object_key, error = %message, "a damaged segment was skipped");
    form.message(&json!({
        "type": "damaged",
        "application_id": seg.application_id,
        "segment_id": seg.id,
        "message": message,
    }))
}

/// A parsed footer, its approximate size in memory, and the length and checksum it was read
/// and verified with.
#[derive(Debug, Clone)]
struct Cached {
    footer: Arc<Footer>,
    size: usize,
    footer_len: u32,
    crc: u32,
}

/// Parsed footers by object key, and keys in insertion order.
#[derive(Debug, Default)]
struct CacheMap {
    map: HashMap<String, Cached>,
    order: VecDeque<String>,
    bytes: usize,
}

/// Parsed footers by object key, bounded by an approximate memory budget (oldest inserted
/// evicted first). A footer is cached only as read from the store and verified against its
/// checksum. On a local store, where a disk can damage a segment after it was cached, every
/// use reads the stored footer again and compares its checksum (no parse), so damage is
/// reported by the first query after it, not after a restart. S3-compatible stores check
/// their objects themselves and segments are never rewritten: there the cache is trusted.
#[derive(Debug)]
pub(crate) struct FooterCache {
    budget: usize,
    inner: Mutex<CacheMap>,
}

impl FooterCache {
    /// A cache holding at most about `budget` bytes of parsed footers.
    pub(crate) fn new(budget: usize) -> Self {
        FooterCache {
            budget,
            inner: Mutex::new(CacheMap::default()),
        }
    }

    /// The footer of `seg`, from the cache or the store (one range read of the segment's tail
    /// covers the trailer and, usually, the footer).
    pub(crate) async fn get(
        &self,
        store: &BlobStore,
        seg: &Segment,
    ) -> Result<Arc<Footer>, FooterError> {
        let cached = self
            .inner
            .lock()
            .expect("lock")
            .map
            .get(&seg.object_key)
            .cloned();
        if let Some(c) = cached {
            if !matches!(store, BlobStore::Local(_)) || still_intact(store, seg, &c).await? {
                return Ok(c.footer);
            }
            // Read it again from scratch: the parse says what is wrong.
            self.evict(&seg.object_key);
        }
        let size = seg.bytes as u64;
        let tail_len = size.min(64 * 1024);
        let tail = store
            .get_range(&seg.object_key, size - tail_len..size)
            .await
            .map_err(|e| FooterError::Store(e.to_string()))?;
        let corrupt = |e: segment::SegmentError| {
            FooterError::Damaged(format!("segment {} is unreadable: {e}", seg.object_key))
        };
        if tail.len() < segment::TRAILER_LEN {
            return Err(corrupt(segment::SegmentError::Short));
        }
        let (footer_len, crc) =
            segment::parse_trailer(&tail[tail.len() - segment::TRAILER_LEN..]).map_err(corrupt)?;
        let range = segment::footer_range(size, footer_len).map_err(corrupt)?;
        let footer_bytes: Bytes = if range.start >= size - tail_len {
            let off = (range.start - (size - tail_len)) as usize;
            tail.slice(off..off + footer_len as usize)
        } else {
            store
                .get_range(&seg.object_key, range)
                .await
                .map_err(|e| FooterError::Store(e.to_string()))?
        };
        let mut footer = Footer::parse(&footer_bytes, crc, size).map_err(corrupt)?;
        // Queries prune by the catalog's copy of the Bloom filter, never the footer's.
        footer.forget_bloom();
        let footer = Arc::new(footer);
        // Parsed records and postings take a few times the encoded size.
        let size = footer_bytes.len() * 4 + 256;
        let mut inner = self.inner.lock().expect("lock");
        if !inner.map.contains_key(&seg.object_key) && size <= self.budget {
            while inner.bytes + size > self.budget {
                let Some(old) = inner.order.pop_front() else {
                    break;
                };
                if let Some(c) = inner.map.remove(&old) {
                    inner.bytes -= c.size;
                }
            }
            inner.map.insert(
                seg.object_key.clone(),
                Cached {
                    footer: footer.clone(),
                    size,
                    footer_len,
                    crc,
                },
            );
            inner.order.push_back(seg.object_key.clone());
            inner.bytes += size;
        }
        Ok(footer)
    }

    fn evict(&self, key: &str) {
        let mut inner = self.inner.lock().expect("lock");
        if let Some(c) = inner.map.remove(key) {
            inner.bytes -= c.size;
            inner.order.retain(|k| k != key);
        }
    }
}

/// Whether the stored footer and trailer of `seg` are still those `cached` was parsed from:
/// one read of the segment's end and a checksum, no parse.
async fn still_intact(
    store: &BlobStore,
    seg: &Segment,
    cached: &Cached,
) -> Result<bool, FooterError> {
    let size = seg.bytes as u64;
    let Ok(range) = segment::footer_range(size, cached.footer_len) else {
        return Ok(false);
    };
    let end = store
        .get_range(&seg.object_key, range.start..size)
        .await
        .map_err(|e| FooterError::Store(e.to_string()))?;
    let Some(split) = end.len().checked_sub(segment::TRAILER_LEN) else {
        return Ok(false);
    };
    Ok(
        segment::parse_trailer(&end[split..]) == Ok((cached.footer_len, cached.crc))
            && crc32c::crc32c(&end[..split]) == cached.crc,
    )
}

/// Ciphertext bytes in one response, at most (a page holds at least one record).
const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;
/// What a record line without its body counts toward [`MAX_PAGE_BYTES`]: about the size of
/// the line itself (ids, key id, nonce, times), not the ciphertext the server does not read.
/// With at most `query::MAX_LIMIT` records a page of such lines counts at most 5 MiB, so the
/// count limit ends it first: a page without bodies is never cut by bytes, and its size is
/// bounded by its lines all the same.
const LISTED_RECORD_BYTES: u64 = 512;
/// Largest single range read when coalescing adjacent records.
const MAX_READ_BYTES: u64 = 8 * 1024 * 1024;

/// Segments listed from the catalog at a time.
const LISTING_BATCH: usize = 256;

/// A request's token groups as 64-bit tokens, within the limits.
fn token_groups(tokens: &[Vec<String>]) -> Result<Vec<Vec<u64>>, ApiError> {
    query::check_token_groups(tokens).map_err(ApiError::BadRequest)?;
    Ok(tokens
        .iter()
        .map(|g| g.iter().map(|t| opaque_token(t)).collect())
        .collect())
}

/// Application ids of the tenant for ids or names (404 for an unknown one).
async fn application_ids(
    s: &SharedState,
    tenant_id: &str,
    names: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::with_capacity(names.len());
    for a in names {
        ids.push(s.catalog.application(tenant_id, a).await?.id);
    }
    Ok(ids)
}

/// `POST /v1/query`: matching sealed records as NDJSON, one `{"type":"record",…}` line each,
/// then `{"type":"end","cursor":…}` (cursor `null` when nothing is left).
pub(crate) async fn query(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<QueryRequest>,
) -> Result<Response, ApiError> {
    let form = Form::of(&headers);
    let token = s.access_token(&headers, Scope::Read).await?;
    let tenant_id = token.tenant_id.clone();
    let QueryPlan {
        from,
        to,
        newest_first,
        limit,
        cursor,
        bodies,
    } = req.plan().map_err(ApiError::BadRequest)?;
    let groups = token_groups(&req.tokens)?;
    let app_ids = application_ids(&s, &tenant_id, &req.applications).await?;

    s.catalog
        .audit(
            &tenant_id,
            &format!("token:{}", token.id),
            "query",
            &req.applications.join(","),
            &remote,
            &json!({"from": from, "to": to, "token_groups": groups.len(), "limit": limit,
                "bodies": bodies})
            .to_string(),
        )
        .await?;

    // The page is read by a task and streamed as it is read: the task reads ahead of the
    // connection at most `STREAM_BUFFER_BYTES`, and the end line goes last.
    let job = QueryJob {
        s: s.clone(),
        tenant_id,
        app_ids,
        groups,
        entry_types: req.entry_types,
        from,
        to,
        newest_first,
        limit,
        cursor,
        bodies,
    };
    streamed(&s, form, move |sink| job.run(sink)).await
}

/// What one `/v1/query` page reads, run by [`streamed`]'s task.
struct QueryJob {
    s: SharedState,
    tenant_id: String,
    app_ids: Vec<String>,
    groups: Vec<Vec<u64>>,
    entry_types: Vec<u8>,
    from: i64,
    to: i64,
    newest_first: bool,
    limit: usize,
    cursor: Option<Cursor>,
    bodies: bool,
}

impl QueryJob {
    async fn run(self, mut sink: Sink) -> Result<(), Failed> {
        let QueryJob {
            s,
            tenant_id,
            app_ids,
            groups,
            entry_types,
            from,
            to,
            newest_first,
            limit,
            cursor,
            bodies,
        } = self;
        let form = sink.form;
        let mut returned = 0usize;
        let mut page_bytes = 0u64;
        let mut scanned = 0usize;
        let mut pruned = 0usize;
        let mut next_cursor = None;
        let order_key = |seg: &Segment| if newest_first { seg.max_ts } else { seg.min_ts };
        let mut position = cursor.map(|c| (c.ts, c.segment_id));
        // The first listing after a cursor includes the cursor's own segment.
        let mut include = cursor.is_some();
        let mut resume = cursor;
        'pages: loop {
            let batch = s
                .catalog
                .segments(&SegmentFilter {
                    tenant_id: &tenant_id,
                    application_ids: &app_ids,
                    from_ns: from,
                    to_ns: to,
                    newest_first,
                    after: position,
                    include_after: include,
                    limit: LISTING_BATCH as i64,
                })
                .await
                .map_err(ApiError::from)?;
            include = false;
            if batch.is_empty() {
                break;
            }
            for (n, seg) in batch.iter().enumerate() {
                position = Some((order_key(seg), seg.id));
                // Every later segment of the listing has an order key at or beyond the next
                // one's; after the last segment of a short listing there is none.
                let later = match batch.get(n + 1) {
                    Some(next) => order_key(next),
                    None if batch.len() < LISTING_BATCH => {
                        if newest_first {
                            i64::MIN
                        } else {
                            i64::MAX
                        }
                    }
                    None => order_key(seg),
                };
                let start = match resume.take() {
                    Some(c) if c.segment_id == seg.id => c.next,
                    _ => 0,
                };
                if !groups.is_empty() && !bloom::may_match(&seg.bloom, &groups) {
                    pruned += 1;
                    continue;
                }
                scanned += 1;
                let footer = match s.footers.get(&s.store, seg).await {
                    Ok(f) => f,
                    Err(FooterError::Damaged(m)) => {
                        sink.send_one(damaged_line(form, seg, &m)).await?;
                        continue;
                    }
                    Err(e) => return Err(ApiError::from(e).into()),
                };
                let mut selected = select(&footer, from, to, &groups, &entry_types);
                if newest_first {
                    selected.reverse();
                }
                // watermarks[p]: no record after position p (in this segment or a later one)
                // holds an entry beyond it — newer when newest first, older when oldest first.
                let mut watermarks = vec![later; selected.len()];
                let mut bound = later;
                for p in (0..selected.len()).rev() {
                    watermarks[p] = bound;
                    let m = &footer.records[selected[p]].meta;
                    bound = if newest_first {
                        bound.max(m.max_ts)
                    } else {
                        bound.min(m.min_ts)
                    };
                }
                // The records this page takes from this segment, within the count and byte
                // limits.
                let mut take = Vec::new();
                let mut stop_at = None;
                for (pos, &i) in selected.iter().enumerate().skip(start) {
                    let i = (i, watermarks[pos]);
                    let len = if bodies {
                        footer.records[i.0].range.end - footer.records[i.0].range.start
                    } else {
                        LISTED_RECORD_BYTES
                    };
                    if returned + take.len() == limit
                        || (page_bytes + len > MAX_PAGE_BYTES && (returned + take.len()) > 0)
                    {
                        stop_at = Some(pos);
                        break;
                    }
                    page_bytes += len;
                    take.push(i);
                }
                if bodies {
                    stream_bodies(&s, &mut sink, seg, &footer, &take).await?;
                } else {
                    // Footers only: no record byte is read.
                    let mut out = Vec::with_capacity(take.len());
                    for &(i, w) in &take {
                        form.record(
                            record_line(seg, &footer.records[i], Some(w)),
                            None,
                            &mut out,
                        );
                    }
                    sink.send(out).await?;
                }
                returned += take.len();
                if let Some(pos) = stop_at {
                    next_cursor = Some(Cursor {
                        ts: order_key(seg),
                        segment_id: seg.id,
                        next: pos,
                    });
                    break 'pages;
                }
            }
        }
        s.metrics.query_segments_scanned.inc_by(scanned as u64);
        s.metrics.query_segments_pruned.inc_by(pruned as u64);
        s.metrics.query_records_returned.inc_by(returned as u64);
        let end = json!({
            "type": "end",
            "cursor": next_cursor.map(|c| c.encode()),
            // No record after this page holds an entry newer (newest first) or older (oldest
            // first) than this: a client may emit its merged entries up to it.
            "watermark": next_cursor.map(|c| c.ts),
            "records": returned,
            "segments_scanned": scanned,
            "segments_pruned": pruned,
        });
        sink.finish(form.message(&end)).await
    }
}

/// Bytes of a `/v1/query` reply read ahead of its connection, at most (a single record larger
/// than this is still sent, alone). `/v1/records` is not streamed: it reads its answer whole.
/// In NDJSON form a run's raw bytes count too while their base64 is made (see
/// [`NDJSON_READ_BYTES`]).
const STREAM_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// Largest single range read of a streamed NDJSON reply: the run's raw bytes and their base64
/// (4/3 as many) exist together while its lines are made, and both count in
/// [`STREAM_BUFFER_BYTES`]; at this size they take at most 2/3 of it. (Frames send slices of
/// the raw run, so they read up to [`MAX_READ_BYTES`].)
const NDJSON_READ_BYTES: u64 = 4 * 1024 * 1024;
/// What a record's message without its body counts in [`STREAM_BUFFER_BYTES`], about its size.
const MESSAGE_BYTES: usize = 512;

/// Why a reply's task stopped before its end line.
enum Failed {
    /// The catalog or the store failed: the reply ends with an `error` message and is cut.
    Error(ApiError),
    /// The connection went away: nothing more to send.
    Gone,
}

impl From<ApiError> for Failed {
    fn from(e: ApiError) -> Self {
        Failed::Error(e)
    }
}

/// One step of a reply, from its task to its body.
enum Piece {
    /// Chunks to send in order, holding their share of the read-ahead buffer; `last` when they
    /// end with the end line.
    Chunks {
        chunks: Vec<Bytes>,
        last: bool,
        _room: OwnedSemaphorePermit,
    },
    Failed(ApiError),
}

/// The task's side of a streamed reply: sends chunks in order, waiting while the connection
/// has [`STREAM_BUFFER_BYTES`] of them unsent.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Piece>,
    room: Arc<Semaphore>,
    form: Form,
}

impl Sink {
    /// Room for about `bytes` more bytes (the whole buffer for a larger piece).
    async fn room(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Failed> {
        let n = u32::try_from(bytes.clamp(1, STREAM_BUFFER_BYTES)).expect("the buffer is small");
        self.room
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| Failed::Gone)
    }

    async fn put(
        &mut self,
        chunks: Vec<Bytes>,
        room: OwnedSemaphorePermit,
        last: bool,
    ) -> Result<(), Failed> {
        self.tx
            .send(Piece::Chunks {
                chunks,
                last,
                _room: room,
            })
            .await
            .map_err(|_| Failed::Gone)
    }

    /// Sends chunks, once there is room for them.
    async fn send(&mut self, chunks: Vec<Bytes>) -> Result<(), Failed> {
        if chunks.is_empty() {
            return Ok(());
        }
        let room = self.room(chunks.iter().map(Bytes::len).sum()).await?;
        self.put(chunks, room, false).await
    }

    async fn send_one(&mut self, chunk: Bytes) -> Result<(), Failed> {
        self.send(vec![chunk]).await
    }

    /// Sends the end line: the reply is complete.
    async fn finish(mut self, end: Bytes) -> Result<(), Failed> {
        let room = self.room(end.len()).await?;
        self.put(vec![end], room, true).await
    }
}

/// Reads the bodies of `footer`'s records `take` (index, watermark) and sends their messages
/// in that order. Adjacent records lie next to each other: a run of them (ascending or
/// descending) is read at once, up to [`MAX_READ_BYTES`] a read ([`NDJSON_READ_BYTES`] in
/// NDJSON form), and only once the connection has room for it: for its messages and, in NDJSON
/// form, for the raw run too until its lines are made. Beyond that room, while one record's
/// line is made its base64 exists twice (as a string, then in the line): at most 4/3 of the
/// largest record more.
async fn stream_bodies(
    s: &SharedState,
    sink: &mut Sink,
    seg: &Segment,
    footer: &Footer,
    take: &[(usize, i64)],
) -> Result<(), Failed> {
    let form = sink.form;
    let mut k = 0;
    while k < take.len() {
        let max = match form {
            Form::Frames => MAX_READ_BYTES,
            Form::Ndjson => NDJSON_READ_BYTES,
        };
        let (lo, hi, j) = run_of(footer, take.len(), |n| take[n].0, k, max);
        let body_bytes = (hi - lo) as usize;
        // What the messages take, and what the raw run takes besides them while they are made.
        let (wire, raw) = match form {
            Form::Frames => (body_bytes, 0),
            Form::Ndjson => (body_bytes.div_ceil(3) * 4, body_bytes),
        };
        let messages = wire + (j - k) * MESSAGE_BYTES;
        let mut room = sink.room(messages + raw).await?;
        let run = s
            .store
            .get_range(&seg.object_key, lo..hi)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        s.metrics.query_record_bytes.inc_by(hi - lo);
        let mut out = Vec::with_capacity(2 * (j - k));
        for &(i, w) in &take[k..j] {
            let r = &footer.records[i];
            let body = run.slice((r.range.start - lo) as usize..(r.range.end - lo) as usize);
            form.record(record_line(seg, r, Some(w)), Some(&body), &mut out);
        }
        // NDJSON lines hold copies: the raw run goes, and with it its share of the room.
        drop(run);
        if raw > 0 && room.num_permits() > messages {
            drop(room.split(room.num_permits() - messages));
        }
        sink.put(out, room, false).await?;
        k = j;
    }
    Ok(())
}

/// The run of adjacent records starting at position `k` of a list of `len` record indices
/// (`index(n)` the n-th): its byte range `lo..hi` in the segment and the position after it.
fn run_of(
    footer: &Footer,
    len: usize,
    index: impl Fn(usize) -> usize,
    k: usize,
    max: u64,
) -> (u64, u64, usize) {
    let first = &footer.records[index(k)].range;
    let (mut lo, mut hi) = (first.start, first.end);
    let mut j = k + 1;
    while j < len && index(j).abs_diff(index(j - 1)) == 1 {
        let r = &footer.records[index(j)].range;
        if hi.max(r.end) - lo.min(r.start) > max {
            break;
        }
        lo = lo.min(r.start);
        hi = hi.max(r.end);
        j += 1;
    }
    (lo, hi, j)
}

/// An `{"type":"error",…}` message: the reply broke off after it began, and is incomplete.
fn error_message(form: Form, e: &ApiError) -> Bytes {
    let request_id = ulid::Ulid::new().to_string().to_lowercase();
    let code = match e {
        ApiError::Unavailable(m) => {
            tracing::warn!(request_id, error = %m, "a reply broke off: the catalog or the store failed");
            "unavailable"
        }
        other => {
            tracing::error!(request_id, error = ?other, "a reply broke off");
            "internal"
        }
    };
    form.message(&json!({
        "type": "error",
        "code": code,
        "message": "the server could not read the rest of this reply; it is incomplete: retry",
        "request_id": request_id,
    }))
}

/// A reply whose messages a task produces as it reads them (`produce` gets the [`Sink`]).
/// The answer waits for the task's first chunk: a failure before it is an ordinary error
/// answer (503 for a store that failed). After it, the status is sent: a failure ends the
/// body with an `{"type":"error",…}` message and then cuts it (no end line, and the chunked
/// body is not terminated), so no reader can take the part for a complete reply.
///
/// The task lives only as long as someone waits for it: the handler until the first chunk,
/// then the body. Both hold a [`ReadAhead`], which aborts the task when the last of them is
/// dropped (the client went away), so a scan that finds little to send does not read on to
/// its end for nobody.
async fn streamed<F, Fut>(s: &SharedState, form: Form, produce: F) -> Result<Response, ApiError>
where
    F: FnOnce(Sink) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failed>> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(64);
    let sink = Sink {
        tx: tx.clone(),
        room: Arc::new(Semaphore::new(STREAM_BUFFER_BYTES)),
        form,
    };
    let work = produce(sink);
    let running = Running::new(s);
    let reader = ReadAhead(tokio::spawn(async move {
        let _running = running;
        if let Err(Failed::Error(e)) = work.await {
            let _ = tx.send(Piece::Failed(e)).await;
        }
    }));
    let first = match rx.recv().await {
        Some(Piece::Failed(e)) => return Err(e),
        Some(p) => p,
        None => return Err(ApiError::Internal("a reply's task stopped".into())),
    };
    let body = Outflow {
        rx,
        form,
        chunks: Vec::new().into_iter(),
        room: None,
        state: Flow::Open,
        s: s.clone(),
        _reader: reader,
    };
    let stream = futures_util::stream::unfold((body, Some(first)), |(mut b, first)| async move {
        if let Some(p) = first {
            b.take(p);
        }
        let next = b.next().await?;
        Some((next, (b, None)))
    });
    Ok(form.streaming_reply(stream))
}

/// A reply's task: aborted when dropped (a task that already ended is not affected).
struct ReadAhead(tokio::task::JoinHandle<()>);

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts a reply's task in `query_readers` while the task (its future) exists: until it
/// ends or, aborted, is dropped.
struct Running(Arc<crate::metrics::Metrics>);

impl Running {
    fn new(s: &SharedState) -> Self {
        s.metrics.query_readers.inc();
        Running(s.metrics.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.query_readers.dec();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Open,
    /// The end line was taken.
    Complete,
    /// The error message was taken; the body is cut next.
    Failed,
    Done,
}

/// The body's side of a streamed reply.
struct Outflow {
    rx: tokio::sync::mpsc::Receiver<Piece>,
    form: Form,
    chunks: std::vec::IntoIter<Bytes>,
    /// The share of the read-ahead buffer the chunks being sent hold.
    room: Option<OwnedSemaphorePermit>,
    state: Flow,
    s: SharedState,
    /// The task: aborted when the body is dropped (by then it has nobody to send to).
    _reader: ReadAhead,
}

impl Outflow {
    fn broken(&self, reason: &str) {
        self.s
            .metrics
            .query_replies_broken
            .get_or_create(&ReplyBroken {
                reason: reason.into(),
            })
            .inc();
    }
}

impl Drop for Outflow {
    fn drop(&mut self) {
        // Dropped before it ended (the end line sent, or an error message taken: counted
        // already) the client went away.
        let ended = matches!(self.state, Flow::Done | Flow::Failed)
            || (self.state == Flow::Complete && self.chunks.as_slice().is_empty());
        if !ended {
            self.broken("disconnected");
        }
    }
}

impl Outflow {
    fn take(&mut self, p: Piece) {
        match p {
            Piece::Chunks {
                chunks,
                last,
                _room,
            } => {
                self.chunks = chunks.into_iter();
                self.room = Some(_room);
                if last {
                    self.state = Flow::Complete;
                }
            }
            Piece::Failed(e) => {
                self.broken(match e {
                    ApiError::Unavailable(_) => "unavailable",
                    _ => "internal",
                });
                self.chunks = vec![error_message(self.form, &e)].into_iter();
                self.room = None;
                self.state = Flow::Failed;
            }
        }
    }

    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        loop {
            if let Some(c) = self.chunks.next() {
                return Some(Ok(c));
            }
            self.room = None;
            match self.state {
                Flow::Open => match self.rx.recv().await {
                    Some(p) => self.take(p),
                    None => {
                        // The task stopped without its end line (it panicked).
                        self.take(Piece::Failed(ApiError::Internal(
                            "a reply's task stopped before its end".into(),
                        )));
                    }
                },
                Flow::Complete | Flow::Done => return None,
                Flow::Failed => {
                    // Let the connection write the error message out before the body is cut.
                    tokio::task::yield_now().await;
                    self.state = Flow::Done;
                    return Some(Err(std::io::Error::other(
                        "the reply broke off: the server could not read the rest",
                    )));
                }
            }
        }
    }
}

/// Reads the bodies of `footer`'s records `indices` and hands each to `emit` in that order.
/// Adjacent records lie next to each other: a run of them (ascending or descending) is read at
/// once, up to [`MAX_READ_BYTES`] a read.
async fn read_bodies(
    s: &SharedState,
    seg: &Segment,
    footer: &Footer,
    indices: &[usize],
    mut emit: impl FnMut(usize, Bytes),
) -> Result<(), ApiError> {
    let mut k = 0;
    while k < indices.len() {
        let (lo, hi, j) = run_of(footer, indices.len(), |n| indices[n], k, MAX_READ_BYTES);
        let run = s
            .store
            .get_range(&seg.object_key, lo..hi)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        s.metrics.query_record_bytes.inc_by(hi - lo);
        for &i in &indices[k..j] {
            let r = &footer.records[i].range;
            emit(i, run.slice((r.start - lo) as usize..(r.end - lo) as usize));
        }
        k = j;
    }
    Ok(())
}

/// `POST /v1/records`: records by segment and id, with their bodies, as NDJSON: one
/// `{"type":"record",…}` line (the shape of `/v1/query`'s, without a watermark) per record
/// found, in the request's order, then `{"type":"end","records":n,"missing":[ids],"more":[…]}`.
/// `missing` names the requested record ids that are not there: not in the segment, or the
/// segment is not one of the token's tenant (deleted, or another tenant's: the answer is the
/// same, so it reveals nothing). A segment that cannot be read gets a `damaged` line and its
/// records are missing. The bodies of one answer count at most [`MAX_PAGE_BYTES`] (at least
/// one record is sent): the records found but not sent are listed in `more`, as `{segment_id,
/// record_id}` in the request's order, to be asked for again.
pub(crate) async fn records(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<RecordsRequest>,
) -> Result<Response, ApiError> {
    let form = Form::of(&headers);
    let token = s.access_token(&headers, Scope::Read).await?;
    let tenant_id = token.tenant_id.clone();
    req.check().map_err(ApiError::BadRequest)?;
    s.catalog
        .audit(
            &tenant_id,
            &format!("token:{}", token.id),
            "records",
            "",
            &remote,
            &json!({"records": req.records.len()}).to_string(),
        )
        .await?;

    let mut ids: Vec<i64> = req.records.iter().map(|r| r.segment_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<Bytes> = Vec::new();
    // The tenant's readable segments named by the request, with their footers.
    let mut segments: HashMap<i64, (Segment, Arc<Footer>)> = HashMap::new();
    for seg in s.catalog.tenant_segments(&tenant_id, &ids).await? {
        match s.footers.get(&s.store, &seg).await {
            Ok(f) => {
                segments.insert(seg.id, (seg, f));
            }
            Err(FooterError::Damaged(m)) => out.push(damaged_line(form, &seg, &m)),
            Err(e) => return Err(e.into()),
        }
    }
    // Where each wanted record lies in its segment.
    let mut wanted: HashMap<i64, HashMap<&str, usize>> = HashMap::new();
    for r in &req.records {
        if segments.contains_key(&r.segment_id) {
            wanted
                .entry(r.segment_id)
                .or_default()
                .insert(r.record_id.as_str(), usize::MAX);
        }
    }
    for (id, names) in &mut wanted {
        let footer = &segments[id].1;
        for (i, e) in footer.records.iter().enumerate() {
            if let Some(slot) = names.get_mut(e.meta.record_id.as_str()) {
                *slot = i;
            }
        }
    }
    let locate = |r: &RecordRef| {
        wanted
            .get(&r.segment_id)
            .and_then(|m| m.get(r.record_id.as_str()))
            .copied()
            .filter(|&i| i != usize::MAX)
    };
    // What this answer sends, in the request's order, within the byte bound.
    let mut send: Vec<(i64, usize)> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut more: Vec<&RecordRef> = Vec::new();
    let mut page_bytes = 0u64;
    for r in &req.records {
        let Some(i) = locate(r) else {
            missing.push(&r.record_id);
            continue;
        };
        let range = &segments[&r.segment_id].1.records[i].range;
        let len = range.end - range.start;
        if !more.is_empty() || (page_bytes + len > MAX_PAGE_BYTES && !send.is_empty()) {
            more.push(r);
            continue;
        }
        page_bytes += len;
        send.push((r.segment_id, i));
    }
    // Read each segment's records in their stored order, adjacent ones together.
    let mut bodies: HashMap<(i64, usize), Bytes> = HashMap::new();
    let mut by_segment: HashMap<i64, Vec<usize>> = HashMap::new();
    for &(id, i) in &send {
        by_segment.entry(id).or_default().push(i);
    }
    for (id, mut indices) in by_segment {
        indices.sort_unstable();
        indices.dedup();
        let (seg, footer) = &segments[&id];
        read_bodies(&s, seg, footer, &indices, |i, body| {
            bodies.insert((id, i), body);
        })
        .await?;
    }
    for &(id, i) in &send {
        let (seg, footer) = &segments[&id];
        form.record(
            record_line(seg, &footer.records[i], None),
            Some(&bodies[&(id, i)]),
            &mut out,
        );
    }
    s.metrics.query_records_returned.inc_by(send.len() as u64);
    out.push(form.message(&json!({
        "type": "end",
        "records": send.len(),
        "missing": missing,
        "more": more,
    })));
    Ok(form.response(out))
}

/// The records of `footer` in `[from, to]` matching every token group, of the wanted SDK entry
/// types (agent batches, type 0, always pass).
fn select(
    footer: &Footer,
    from: i64,
    to: i64,
    groups: &[Vec<u64>],
    entry_types: &[u8],
) -> Vec<usize> {
    footer
        .select(from, to, groups)
        .into_iter()
        .filter(|&i| {
            let t = footer.records[i].meta.entry_type;
            entry_types.is_empty() || t == 0 || entry_types.contains(&t)
        })
        .collect()
}

/// One `{"type":"record",…}` message without its body (see [`Form::record`]).
fn record_line(seg: &Segment, r: &segment::RecordEntry, watermark: Option<i64>) -> Value {
    let m = &r.meta;
    let mut line = json!({
        "type": "record",
        "application_id": seg.application_id,
        "segment_id": seg.id,
        "record_id": m.record_id,
        "key_id": m.key_id,
        "payload_type": m.payload,
        "entry_type": m.entry_type,
        "nonce": m.nonce.map(|n| STANDARD.encode(n)),
        "crlf_stripped": m.crlf_stripped,
        "min_ts": m.min_ts,
        "max_ts": m.max_ts,
        "count": m.count,
        "received_ns": m.received_ns,
    });
    if let Some(w) = watermark {
        line["watermark"] = w.into();
    }
    line
}

/// How often an idle tail sends a heartbeat line.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How often a tail looks for segments other servers committed.
const TAIL_POLL: Duration = Duration::from_millis(500);
/// Segments listed from the catalog at a time by a tail.
const TAIL_LISTING: usize = 64;

/// Limits of live tails (`tail:` in the configuration file).
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Bytes of lines one stream holds ready ahead of its reader. A record line larger than
    /// this is still sent, alone.
    pub buffer_bytes: usize,
    /// How long a stream with a full buffer waits for its reader to take a line before it
    /// ends with `slow_consumer`.
    pub slow_consumer_timeout: Duration,
    /// Open streams per access token; one more gets 429 `too_many_streams`.
    pub max_streams_per_token: usize,
    /// Open streams of one tenant, all its tokens together.
    pub max_streams_per_tenant: usize,
    /// Open streams on this server, all tenants together.
    pub max_streams: usize,
    /// How often an open stream checks that its token is neither revoked nor deleted (expiry
    /// ends it at the exact time, and a revocation through this server at once).
    pub credential_check: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig {
            buffer_bytes: 256 * 1024,
            slow_consumer_timeout: Duration::from_secs(30),
            max_streams_per_token: 8,
            max_streams_per_tenant: 64,
            max_streams: 256,
            credential_check: Duration::from_secs(5),
        }
    }
}

/// Why the server ended a tail stream: the `reason` of its `end` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    TokenRevoked,
    TokenExpired,
    SlowConsumer,
    Shutdown,
    Unavailable,
}

impl EndReason {
    pub(crate) fn name(self) -> &'static str {
        match self {
            EndReason::TokenRevoked => "token_revoked",
            EndReason::TokenExpired => "token_expired",
            EndReason::SlowConsumer => "slow_consumer",
            EndReason::Shutdown => "shutdown",
            EndReason::Unavailable => "unavailable",
        }
    }
}

/// Open tail streams, per token, per tenant and in all.
#[derive(Debug)]
pub(crate) struct TailStreams {
    open: Mutex<OpenStreams>,
    /// Bumped when a token is revoked through this server, so its streams check at once.
    revocations: watch::Sender<u64>,
}

impl TailStreams {
    pub(crate) fn new() -> Self {
        TailStreams {
            open: Mutex::new(OpenStreams::default()),
            revocations: watch::Sender::new(0),
        }
    }

    /// Makes every open stream check its token now (after a revocation).
    pub(crate) fn credentials_changed(&self) {
        self.revocations.send_modify(|n| *n += 1);
    }

    fn release(&self, tenant_id: &str, token_id: &str) {
        let mut guard = self.open.lock().expect("lock");
        let open = &mut *guard;
        open.all -= 1;
        for (map, key) in [
            (&mut open.per_token, token_id),
            (&mut open.per_tenant, tenant_id),
        ] {
            if let Some(n) = map.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(key);
                }
            }
        }
    }
}

#[derive(Debug, Default)]
struct OpenStreams {
    all: usize,
    per_token: HashMap<String, usize>,
    per_tenant: HashMap<String, usize>,
}

/// One open stream's place in [`TailStreams`], given back as soon as the server ends the
/// stream or its reader goes away, whether or not its connection ever takes the `end` line.
struct Slot {
    s: SharedState,
    tenant_id: String,
    token_id: String,
}

impl Slot {
    fn take(s: &SharedState, tenant_id: &str, token_id: &str) -> Result<Slot, ApiError> {
        let limits = &s.config.tail;
        {
            let mut open = s.tails.open.lock().expect("lock");
            let of_token = open.per_token.get(token_id).copied().unwrap_or(0);
            let of_tenant = open.per_tenant.get(tenant_id).copied().unwrap_or(0);
            let refused = if open.all >= limits.max_streams {
                Some(format!(
                    "this server has {} live tails open, its limit; retry later",
                    open.all
                ))
            } else if of_tenant >= limits.max_streams_per_tenant {
                Some(format!(
                    "this tenant has {of_tenant} live tails open, the most allowed \
                     (tail.max_streams_per_tenant); close one first"
                ))
            } else {
                (of_token >= limits.max_streams_per_token).then(|| {
                    format!(
                        "this token has {of_token} live tails open, the most allowed \
                         (tail.max_streams_per_token); close one first"
                    )
                })
            };
            if let Some(m) = refused {
                drop(open);
                s.metrics.tail_refused.inc();
                return Err(ApiError::TooManyStreams(m));
            }
            open.all += 1;
            *open.per_token.entry(token_id.to_owned()).or_default() += 1;
            *open.per_tenant.entry(tenant_id.to_owned()).or_default() += 1;
        }
        s.metrics.tail_streams.inc();
        Ok(Slot {
            s: s.clone(),
            tenant_id: tenant_id.to_owned(),
            token_id: token_id.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.s.tails.release(&self.tenant_id, &self.token_id);
        self.s.metrics.tail_streams.dec();
    }
}

/// A line ready for the reader. It holds its share of the stream's buffer until it is handed
/// to the connection.
struct Ready {
    line: Bytes,
    /// The `after_segment` a reconnect may give once the reader has this line.
    resume: i64,
    _room: OwnedSemaphorePermit,
}

/// What the producer has ready and how the stream ended, shared with the reader.
#[derive(Default)]
struct Outbox {
    state: Mutex<OutboxState>,
    /// Wakes the reader.
    ready: Notify,
}

#[derive(Default)]
struct OutboxState {
    lines: VecDeque<Ready>,
    end: Option<(EndReason, String)>,
}

impl Outbox {
    fn push(&self, ready: Ready) {
        self.state.lock().expect("lock").lines.push_back(ready);
        self.ready.notify_one();
    }

    /// Ends the stream: what was not taken yet is dropped (the reader resumes from what it
    /// really got), and the `end` line comes next.
    fn end(&self, reason: EndReason, message: String) {
        let dropped = {
            let mut st = self.state.lock().expect("lock");
            st.end = Some((reason, message));
            std::mem::take(&mut st.lines)
        };
        drop(dropped);
        self.ready.notify_one();
    }
}

/// How a producer stopped.
enum Stop {
    End(EndReason, String),
    /// The reader is gone (the connection closed).
    Gone,
}

fn unavailable(e: impl std::fmt::Debug) -> Stop {
    tracing::warn!(error = ?e, "a tail stopped: the catalog or the store failed");
    Stop::End(
        EndReason::Unavailable,
        "the server could not read the catalog or the store; reconnect with after_segment".into(),
    )
}

/// Reads matching records of newly committed segments from the store, one line at a time and
/// only as the reader makes room, so a stream holds at most its buffer whatever is committed.
struct Producer {
    s: SharedState,
    tenant_id: String,
    app_ids: Vec<String>,
    groups: Vec<Vec<u64>>,
    entry_types: Vec<u8>,
    /// Every segment up to this one was queued whole.
    position: i64,
    commits: watch::Receiver<u64>,
    room: Arc<Semaphore>,
    outbox: Arc<Outbox>,
    last_sent: Instant,
    /// Whether the client gave `after_segment` (then a `caught_up` line follows its first poll).
    resumed: bool,
    form: Form,
}

impl Producer {
    async fn run(mut self) -> Stop {
        // The first line says where the stream starts, so a client that loses the connection
        // before anything happens can resume from there without a gap.
        if let Err(stop) = self.heartbeat().await {
            return stop;
        }
        let mut resuming = self.resumed;
        loop {
            if let Err(stop) = self.poll().await {
                return stop;
            }
            // A resumed stream says when its first poll has sent everything committed while
            // its client was away: the client knows the gap is filled (the alert evaluator
            // judges nothing until it is).
            if resuming {
                resuming = false;
                if let Err(stop) = self.mark("caught_up").await {
                    return stop;
                }
            }
            if self.last_sent.elapsed() >= HEARTBEAT
                && let Err(stop) = self.heartbeat().await
            {
                return stop;
            }
            // Woken at once by this server's commits; other servers' commits (scale-out) are
            // found by polling the catalog.
            tokio::select! {
                r = self.commits.changed() => if r.is_err() {
                    return Stop::End(EndReason::Shutdown, "the server is shutting down".into());
                },
                () = tokio::time::sleep(TAIL_POLL) => {}
            }
        }
    }

    /// Room for a line of about `bytes` (the whole buffer for a larger one), waiting for the
    /// reader at most the slow-consumer timeout.
    async fn reserve(&self, bytes: usize) -> Result<OwnedSemaphorePermit, Stop> {
        let limits = &self.s.config.tail;
        let n = u32::try_from(bytes.clamp(1, limits.buffer_bytes)).unwrap_or(u32::MAX);
        match tokio::time::timeout(
            limits.slow_consumer_timeout,
            self.room.clone().acquire_many_owned(n),
        )
        .await
        {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::End(
                EndReason::SlowConsumer,
                format!(
                    "the reader took nothing for {} ms while {} bytes waited for it; reconnect \
                     with after_segment",
                    limits.slow_consumer_timeout.as_millis(),
                    limits.buffer_bytes - self.room.available_permits()
                ),
            )),
        }
    }

    fn send(&mut self, line: Bytes, resume: i64, room: OwnedSemaphorePermit) {
        self.outbox.push(Ready {
            line,
            resume,
            _room: room,
        });
        self.last_sent = Instant::now();
    }

    async fn heartbeat(&mut self) -> Result<(), Stop> {
        self.mark("heartbeat").await
    }

    /// A line `{"type":KIND,"after_segment":POSITION}`.
    async fn mark(&mut self, kind: &str) -> Result<(), Stop> {
        let line = self
            .form
            .message(&json!({"type": kind, "after_segment": self.position}));
        let room = self.reserve(line.len()).await?;
        self.send(line, self.position, room);
        Ok(())
    }

    /// Queues the matching records of segments committed after `position`.
    async fn poll(&mut self) -> Result<(), Stop> {
        loop {
            let segs = self
                .s
                .catalog
                .segments_after(&self.tenant_id, self.position, TAIL_LISTING as i64)
                .await
                .map_err(unavailable)?;
            for seg in &segs {
                self.queue_segment(seg).await?;
                self.position = seg.id;
            }
            if segs.len() < TAIL_LISTING {
                return Ok(());
            }
        }
    }

    async fn queue_segment(&mut self, seg: &Segment) -> Result<(), Stop> {
        if !self.app_ids.is_empty() && !self.app_ids.contains(&seg.application_id) {
            return Ok(());
        }
        if !self.groups.is_empty() && !bloom::may_match(&seg.bloom, &self.groups) {
            return Ok(());
        }
        // A reconnect after this line resumes one segment back: the reader may get some of
        // this segment twice (clients drop repeats by record id), never miss any.
        let resume = seg.id - 1;
        let footer = match self.s.footers.get(&self.s.store, seg).await {
            Ok(f) => f,
            Err(FooterError::Damaged(m)) => {
                let line = damaged_line(self.form, seg, &m);
                let room = self.reserve(line.len()).await?;
                self.send(line, resume, room);
                return Ok(());
            }
            Err(e @ FooterError::Store(_)) => return Err(unavailable(e)),
        };
        for i in select(&footer, i64::MIN, i64::MAX, &self.groups, &self.entry_types) {
            let r = &footer.records[i];
            // Room first, then the read: a stalled reader holds no record beyond its buffer.
            let len = (r.range.end - r.range.start) as usize;
            let room = self.reserve(len.div_ceil(3) * 4 + 1024).await?;
            let body = self
                .s
                .store
                .get_range(&seg.object_key, r.range.clone())
                .await
                .map_err(unavailable)?;
            let line = self
                .form
                .record_bytes(record_line(seg, r, None), Some(&body));
            self.send(line, resume, room);
        }
        Ok(())
    }
}

/// Ends the stream when its token is revoked, deleted or expires, or the server shuts down.
async fn watch_credential(s: SharedState, token_hash: Vec<u8>, expires_ns: i64) -> Stop {
    let left =
        u64::try_from(expires_ns.saturating_sub(logflux_proto::timefmt::now_ns())).unwrap_or(0);
    // Far enough for any token (at most ten years), near enough not to overflow.
    let expiry = tokio::time::Instant::now()
        + Duration::from_nanos(left).min(Duration::from_secs(20 * 365 * 86_400));
    let mut shutdown = s.shutdown.clone();
    let mut revocations = s.tails.revocations.subscribe();
    let mut check = tokio::time::interval(s.config.tail.credential_check);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    check.tick().await;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(expiry) => {
                return Stop::End(EndReason::TokenExpired, "the access token expired".into());
            }
            _ = shutdown.wait_for(|stopping| *stopping) => {
                return Stop::End(
                    EndReason::Shutdown,
                    "the server is shutting down; reconnect with after_segment".into(),
                );
            }
            _ = check.tick() => {}
            _ = revocations.changed() => {}
        }
        match s.catalog.access_token_by_hash(&token_hash).await {
            Ok(Some(t)) if t.revoked_ns.is_none() => {
                if t.expires_ns <= logflux_proto::timefmt::now_ns() {
                    return Stop::End(EndReason::TokenExpired, "the access token expired".into());
                }
            }
            Ok(_) => {
                return Stop::End(
                    EndReason::TokenRevoked,
                    "the access token was revoked".into(),
                );
            }
            Err(e) => return unavailable(e),
        }
    }
}

/// The `{"type":"end",…}` line of a tail the server ended.
fn tail_end_line(form: Form, reason: EndReason, message: &str, after_segment: i64) -> Bytes {
    form.message(&json!({
        "type": "end",
        "reason": reason.name(),
        "message": message,
        "after_segment": after_segment,
    }))
}

/// The response body's side of a tail: takes ready lines in order and, once the stream ended,
/// the `end` line instead of anything still queued.
struct Reader {
    outbox: Arc<Outbox>,
    form: Form,
    resume: i64,
    done: bool,
    /// Dropped with the reader: tells the producer the connection is gone.
    _gone: oneshot::Sender<()>,
}

impl Reader {
    async fn next(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        loop {
            let ready = {
                let mut st = self.outbox.state.lock().expect("lock");
                if let Some((reason, message)) = st.end.take() {
                    self.done = true;
                    return Some(tail_end_line(self.form, reason, &message, self.resume));
                }
                st.lines.pop_front()
            };
            if let Some(r) = ready {
                self.resume = self.resume.max(r.resume);
                return Some(r.line);
            }
            self.outbox.ready.notified().await;
        }
    }
}

/// `POST /v1/tail`: an endless NDJSON stream of matching records as they are committed (pushed
/// as soon as their commit completes), with `{"type":"heartbeat","after_segment":N}` lines
/// first and when idle; reconnect with `after_segment` to resume without gaps (a resumed
/// stream sends `{"type":"caught_up","after_segment":N}` once it has sent what was committed
/// while the client was away). The server ends
/// a stream with `{"type":"end","reason":…,"after_segment":N}` (see [`EndReason`]).
pub(crate) async fn tail(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Remote(remote): Remote,
    JsonBody(req): JsonBody<TailRequest>,
) -> Result<Response, ApiError> {
    let form = Form::of(&headers);
    let token = s.access_token(&headers, Scope::Read).await?;
    let token_hash = crate::auth::hash(crate::http::bearer(&headers)?);
    let tenant_id = token.tenant_id.clone();
    req.check().map_err(ApiError::BadRequest)?;
    let groups = token_groups(&req.tokens)?;
    let app_ids = application_ids(&s, &tenant_id, &req.applications).await?;
    let slot = Slot::take(&s, &tenant_id, &token.id)?;
    // Subscribe before reading the position, so no commit falls between them.
    let commits = s.commits.subscribe();
    let position = match req.after_segment {
        Some(p) => p,
        None => s.catalog.last_segment_id(&tenant_id).await?,
    };
    s.catalog
        .audit(
            &tenant_id,
            &format!("token:{}", token.id),
            "tail",
            &req.applications.join(","),
            &remote,
            "{}",
        )
        .await?;
    let outbox = Arc::new(Outbox::default());
    let producer = Producer {
        s: s.clone(),
        tenant_id,
        app_ids,
        groups,
        entry_types: req.entry_types,
        position,
        commits,
        room: Arc::new(Semaphore::new(s.config.tail.buffer_bytes)),
        outbox: outbox.clone(),
        last_sent: Instant::now(),
        resumed: req.after_segment.is_some(),
        form,
    };
    let (gone_tx, gone) = oneshot::channel::<()>();
    let watcher = watch_credential(s.clone(), token_hash, token.expires_ns);
    let metrics = s.metrics.clone();
    let ends = outbox.clone();
    // The slot lives with the producer: a stream the server ended gives its place back at
    // once, even when its reader never takes the end line and its connection lingers.
    tokio::spawn(async move {
        let _slot = slot;
        let stop = tokio::select! {
            stop = producer.run() => stop,
            stop = watcher => stop,
            _ = gone => Stop::Gone,
        };
        if let Stop::End(reason, message) = stop {
            metrics
                .tail_ended
                .get_or_create(&TailEnd {
                    reason: reason.name().to_owned(),
                })
                .inc();
            ends.end(reason, message);
        }
    });
    let reader = Reader {
        outbox,
        form,
        resume: position,
        done: false,
        _gone: gone_tx,
    };
    let lines = futures_util::stream::unfold(reader, |mut r| async move {
        let line = r.next().await?;
        Some((Ok::<_, std::convert::Infallible>(line), r))
    });
    Ok(form.streaming_reply(lines))
}

/// `GET /v1/keys/{key_id}`: a wrapped data key of the caller's tenant.
pub(crate) async fn data_key(
    State(s): State<SharedState>,
    headers: HeaderMap,
    Path(key_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let token = s.access_token(&headers, Scope::Read).await?;
    let dk = s.catalog.data_key(&token.tenant_id, &key_id).await?;
    Ok(Json(json!({
        "key_id": dk.id,
        "application_id": dk.application_id,
        "wrapped_key": STANDARD.encode(&dk.wrapped),
        "created_ns": dk.created_ns,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn footer_cache_stays_within_its_budget() {
        use crate::segment::{RecordMeta, SegmentWriter};
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(dir.path()).unwrap();
        let mut segs = Vec::new();
        for n in 0..3 {
            let mut w = SegmentWriter::new();
            for i in 0..50 {
                w.add(
                    RecordMeta {
                        record_id: format!("r{n}-{i}"),
                        key_id: "k".into(),
                        payload: 4,
                        entry_type: 0,
                        nonce: None,
                        crlf_stripped: false,
                        min_ts: i,
                        max_ts: i,
                        count: 1,
                        received_ns: 0,
                        tokens: (0..20).map(|t| t * 1000 + i as u64).collect(),
                        filter: None,
                    },
                    b"body",
                );
            }
            let (bytes, summary) = w.finish();
            let key = format!("t/a/{n}.lfs");
            store.put(&key, bytes.into()).await.unwrap();
            segs.push(Segment {
                id: n,
                tenant_id: "t".into(),
                application_id: "a".into(),
                object_key: key,
                min_ts: summary.min_ts,
                max_ts: summary.max_ts,
                records: 50,
                entries: 50,
                bytes: summary.bytes as i64,
                bloom: vec![],
                max_received_ns: 0,
                created_ns: 0,
            });
        }
        let one = {
            let c = FooterCache::new(usize::MAX);
            c.get(&store, &segs[0]).await.unwrap();
            c.inner.lock().unwrap().bytes
        };
        let cache = FooterCache::new(one + one / 2);
        for seg in &segs {
            let f = cache.get(&store, seg).await.unwrap();
            assert_eq!(f.records.len(), 50);
        }
        let inner = cache.inner.lock().unwrap();
        assert_eq!(inner.map.len(), 1, "only the newest fits");
        assert!(inner.bytes <= one + one / 2);
        assert!(inner.map.contains_key("t/a/2.lfs"));
    }
}
