//! Fetching, decrypting and ordering entries: pages of sealed records stream in from the server
//! (the next page is fetched while the current one is decrypted), are opened in parallel,
//! filtered exactly, and merged into timestamp order.
//!
//! Ordering is exact: the server lists segments newest first by their newest entry (or oldest
//! first by their oldest entry) and gives each record a watermark that no later record
//! crosses; entries are held in a heap until a watermark passes them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use logflux_crypto::keyfile;
use logflux_proto::query::{
    MAX_RECORDS_PER_REQUEST, QueryRequest, RecordRef, RecordsRequest, TimeBound,
};
use logflux_proto::{EntryView, timefmt};
use tokio::sync::mpsc;

use crate::api::{Api, Line, Lines, RecordBody, StatusError};
use crate::config::Settings;
use crate::decrypt::{Decryptor, RecordError};
use crate::filter::{Filter, FilterArgs};

/// Records asked for in the first page (small, for a quick first result) and in later ones.
const FIRST_PAGE_RECORDS: usize = 16;
const PAGE_RECORDS: usize = 1000;
/// Records decrypted together (one parallel step). With a batch's plaintext bounded at
/// `limits::MAX_BATCH_PLAINTEXT_BYTES` (and `batch::MAX_ENTRIES` entries), this bounds what
/// one step can hold however hostile the records: 16 × 16 MiB of content (and their decoded
/// entries), where 64 × 256 MiB could be asked for before.
const CHUNK_RECORDS: usize = 16;
/// How much later than its entry an SDK part may be timestamped (queueing and retries).
const SDK_SEND_SLACK_NS: i64 = 5 * 60 * 1_000_000_000;
/// Entries held for ordering, at most; beyond it the earliest are let out (order may then be
/// approximate for entries whose records overlap by more than this).
const MAX_HELD: usize = 2_000_000;

/// Whether notices and record failures are written to stderr (the default). `logflux tui`
/// turns it off: the terminal is its screen, and it shows them in its status line instead
/// (failures reach it in [`Opened::errors`]).
static STDERR_NOTES: AtomicBool = AtomicBool::new(true);

/// Stops (or resumes) writing notices and record failures to stderr.
pub(crate) fn set_stderr_notes(on: bool) {
    STDERR_NOTES.store(on, Ordering::Relaxed);
}

/// Writes a notice to stderr unless [`set_stderr_notes`] turned that off.
pub(crate) fn note(message: std::fmt::Arguments<'_>) {
    if STDERR_NOTES.load(Ordering::Relaxed) {
        eprintln!("{message}");
    }
}

/// Everything a search needs: the server, the tenant's private key, the filter and its tokens.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) api: Api,
    pub(crate) decryptor: Arc<Decryptor>,
    pub(crate) filter: Arc<Filter>,
    /// Application ids for the server (empty: all).
    pub(crate) applications: Vec<String>,
    pub(crate) tokens: Vec<Vec<String>>,
    pub(crate) entry_types: Vec<u8>,
}

impl Session {
    /// Connects, learns the tenant, reads the keys and turns the filter into tokens.
    pub(crate) async fn open(settings: &Settings, args: &FilterArgs) -> anyhow::Result<Session> {
        Session::open_with(settings, args, None).await
    }

    /// As [`Session::open`], with a saved search's LogQL query besides the flags (`search
    /// --saved`): its conditions prune as the flags do, and it tests every entry exactly.
    pub(crate) async fn open_with(
        settings: &Settings,
        args: &FilterArgs,
        logql: Option<logflux_query::LogQuery>,
    ) -> anyhow::Result<Session> {
        let mut filter = Filter::from_args(args, timefmt::now_ns(), &chrono::Local)?;
        // Server and token first: without them nothing else matters.
        let api = crate::api::Api::new(settings)?;
        let private_path = settings.private_key_file()?;
        // keyfile's errors name the file ("private key file …: …"): no context of our own.
        let private = keyfile::read_private_key(private_path)?;
        let (me, apps) = tokio::try_join!(api.me(), api.applications())?;
        let mut app_ids = Vec::new();
        for want in &filter.apps {
            let Some(a) = apps.iter().find(|a| a.id == *want || a.name == *want) else {
                let known: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
                anyhow::bail!(
                    "no application {want:?} (applications: {})",
                    if known.is_empty() {
                        "none yet".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
            };
            app_ids.push(a.id.clone());
        }
        if let Some(query) = logql {
            let prune = query.prune();
            // The query's applications, when the flags name none (with --app, the flags'
            // applications are fetched and the query tests each entry: they narrow). Names
            // that do not exist are no error: nothing of them matches.
            if app_ids.is_empty()
                && let Some(want) = &prune.apps
            {
                app_ids = apps
                    .iter()
                    .filter(|a| want.contains(&a.name))
                    .map(|a| a.id.clone())
                    .collect();
            }
            filter.logql = Some(crate::filter::Logql {
                query,
                prune,
                names: apps
                    .iter()
                    .map(|a| (a.id.clone(), a.name.clone()))
                    .collect(),
            });
        }
        let token_apps: Vec<String> = if app_ids.is_empty() {
            apps.iter().map(|a| a.id.clone()).collect()
        } else {
            app_ids.clone()
        };
        let tokens = if filter.wants_tokens() {
            match &settings.search_key_file {
                Some(p) => {
                    let key = keyfile::read_search_key(p)?;
                    filter.token_groups(&key, &token_apps)
                }
                None => {
                    note(format_args!(
                        "logflux: no search key configured (LOGFLUX_SEARCH_KEY_FILE): every record in the time range is fetched and filtered here"
                    ));
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        Ok(Session {
            entry_types: filter.entry_types(),
            api,
            decryptor: Arc::new(Decryptor::new(private, me.tenant_id)),
            filter: Arc::new(filter),
            applications: app_ids,
            tokens,
        })
    }

    /// The query for this session's filter.
    pub(crate) fn query(&self, newest_first: bool) -> QueryRequest {
        QueryRequest {
            from: self.filter.since_ns.map(TimeBound::Nanos),
            // SDK parts are stored at the time the SDK sent them, which can follow the entry's
            // own time: records up to a little later are fetched, and entries filtered here.
            to: self
                .filter
                .until_ns
                .map(|u| TimeBound::Nanos(u.saturating_add(SDK_SEND_SLACK_NS))),
            applications: self.applications.clone(),
            entry_types: self.entry_types.clone(),
            tokens: self.tokens.clone(),
            limit: Some(FIRST_PAGE_RECORDS),
            order: Some(if newest_first { "newest" } else { "oldest" }.into()),
            cursor: None,
            bodies: None,
        }
    }

    /// Decrypts, filters and maps records (in parallel, off the async threads: `map` is where
    /// output is rendered), reporting records that fail on stderr.
    pub(crate) async fn open_records<T: Send + 'static>(
        &self,
        records: Vec<Line>,
        map: &Mapper<T>,
    ) -> anyhow::Result<Opened<T>> {
        self.decryptor.ensure_keys(&self.api, &records).await;
        let dec = self.decryptor.clone();
        let filter = self.filter.clone();
        let map = map.clone();
        let results = tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            records
                .par_iter()
                .map(|r| {
                    // A bug that panics on one record's content costs that record, not the run.
                    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        dec.open_where(r, &|e| filter.matches_ref(e))
                    }))
                    .unwrap_or_else(|_| Err(RecordError::new(r, "could not be decoded")));
                    opened.map(|v| {
                        v.into_iter()
                            .filter(|e| filter.matches_in(e, &r.application_id))
                            // Placed within its record's time range, which the server's
                            // watermarks are about (an SDK entry's own `ts` may precede its
                            // part's timestamp by its queueing time).
                            .map(|e| {
                                (
                                    e.timestamp_ns.clamp(r.min_ts, r.max_ts.max(r.min_ts)),
                                    map(e),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .context("decryption worker")?;
        let mut out = Opened {
            records: 0,
            entries: Vec::new(),
            errors: Vec::new(),
        };
        for r in results {
            match r {
                Ok(entries) => {
                    out.records += 1;
                    out.entries.extend(entries);
                }
                Err(e) => {
                    note(format_args!("logflux: error: {e}"));
                    out.errors.push(e);
                }
            }
        }
        Ok(out)
    }
}

/// What each decrypted entry becomes (its rendering, or the entry itself).
pub(crate) type Mapper<T> = Arc<dyn Fn(EntryView) -> T + Send + Sync>;

/// Entries of some records (timestamp and mapped entry), and the records that failed.
#[derive(Debug)]
pub(crate) struct Opened<T> {
    pub(crate) records: u64,
    pub(crate) entries: Vec<(i64, T)>,
    pub(crate) errors: Vec<RecordError>,
}

/// A slice of a query's reply.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) records: Vec<Line>,
    /// Entries beyond this (newer when newest first, older when oldest first) may be shown.
    pub(crate) watermark: Option<i64>,
    /// Whether the query is complete.
    pub(crate) done: bool,
}

/// Where the bodies of a query's records come from.
#[derive(Clone)]
pub(crate) enum Bodies {
    /// In the listing's record lines (`logflux search`, which keeps nothing).
    Listed,
    /// The listing comes without bodies (`bodies: false`, footers only on the server); records
    /// `held` says the caller already has are passed on without one, the others' bodies are
    /// fetched with `POST /v1/records`, one request per page (more only when the server's byte
    /// bound cuts an answer). Against a server older than `bodies`, bodies are listed.
    Fetched { held: HeldRecords },
}

/// Whether the caller already has a record's content (then its body is not fetched).
pub(crate) type HeldRecords = Arc<dyn Fn(&Line) -> bool + Send + Sync>;

impl std::fmt::Debug for Bodies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bodies::Listed => "Listed",
            Bodies::Fetched { .. } => "Fetched",
        })
    }
}

/// Set once a server refused `bodies: false` (a server older than the field): from then on
/// this process lists records with their bodies.
static BODIES_REFUSED: AtomicBool = AtomicBool::new(false);

/// Whether `e` is a server's refusal of the `bodies` field (400, unknown field).
fn refuses_bodies(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StatusError>()
            .is_some_and(|s| s.status == 400 && s.to_string().contains("unknown field `bodies`"))
    })
}

/// The lines of one page: streamed as they arrive, or read whole first (to fetch the bodies
/// it lacks in one request).
enum Page {
    Streamed(Lines),
    Read(std::vec::IntoIter<Line>),
}

impl Page {
    async fn next(&mut self) -> anyhow::Result<Line> {
        match self {
            Page::Streamed(lines) => next_line(lines).await,
            Page::Read(lines) => lines
                .next()
                .context("the server's reply ended without its end line"),
        }
    }

    /// Reads a page listed without bodies to its end line and fills in the bodies of the
    /// records `held` does not hold.
    async fn read(mut lines: Lines, api: &Api, held: &HeldRecords) -> anyhow::Result<Page> {
        let mut page = Vec::new();
        loop {
            let l = next_line(&mut lines).await?;
            let end = l.kind == "end";
            page.push(l);
            if end {
                break;
            }
        }
        fill_bodies(api, &mut page, |l| held(l)).await?;
        Ok(Page::Read(page.into_iter()))
    }
}

/// The next line of a query's reply, parsed (it ends with an end line). An `error` line (the
/// server failed after its reply began; the reply is cut after it) is an error.
async fn next_line(lines: &mut Lines) -> anyhow::Result<Line> {
    let Some(line) = lines.next().await? else {
        anyhow::bail!("the server's reply ended without its end line");
    };
    let l = line
        .parse()
        .map_err(|e| anyhow::anyhow!("a malformed line from the server: {e}"))?;
    if l.kind == "error" {
        anyhow::bail!("the server's reply broke off: {}", l.message);
    }
    Ok(l)
}

/// Fetches, with `POST /v1/records`, the bodies of the record lines in `lines` that have none
/// and that `skip` does not exclude, and puts them in place. A record the server no longer
/// has (erased or expired since it was listed) is left without a body: opening it reports it.
pub(crate) async fn fill_bodies(
    api: &Api,
    lines: &mut [Line],
    skip: impl Fn(&Line) -> bool,
) -> anyhow::Result<()> {
    let wanted: Vec<RecordRef> = lines
        .iter()
        .filter(|l| l.kind == "record" && l.body.is_none() && !skip(l))
        .map(|l| RecordRef {
            segment_id: l.segment_id,
            record_id: l.record_id.clone(),
        })
        .collect();
    let mut bodies: HashMap<(i64, String), RecordBody> = HashMap::new();
    for chunk in wanted.chunks(MAX_RECORDS_PER_REQUEST) {
        let mut ask = chunk.to_vec();
        while !ask.is_empty() {
            let mut reply = api
                .stream(
                    "/v1/records",
                    &RecordsRequest {
                        records: std::mem::take(&mut ask),
                    },
                )
                .await?;
            let mut got = 0usize;
            loop {
                let l = next_line(&mut reply).await.context("/v1/records")?;
                match l.kind.as_str() {
                    "record" => {
                        if let Some(b) = l.body {
                            got += 1;
                            bodies.insert((l.segment_id, l.record_id), b);
                        }
                    }
                    "end" => {
                        ask = l.more;
                        break;
                    }
                    _ => {}
                }
            }
            // Each answer carries at least one record when any is left: never loop idle.
            anyhow::ensure!(
                ask.is_empty() || got > 0,
                "/v1/records: the server sent no record and {} to ask for again",
                ask.len()
            );
        }
    }
    for l in lines.iter_mut() {
        if l.kind == "record" && l.body.is_none() {
            l.body = bodies.remove(&(l.segment_id, l.record_id.clone()));
        }
    }
    Ok(())
}

/// Runs a query page after page in a task, sending chunks of records as they arrive.
pub(crate) fn spawn_query(
    api: Api,
    mut req: QueryRequest,
    bodies: Bodies,
) -> mpsc::Receiver<anyhow::Result<Chunk>> {
    // Listed bodies stream in: two chunks ahead bound what is held. A page listed without
    // bodies is read whole before its chunks go out, so a page's worth of chunks may wait:
    // the next page is then asked for while the caller works through this one.
    let ahead = match bodies {
        Bodies::Listed => 2,
        Bodies::Fetched { .. } => PAGE_RECORDS.div_ceil(CHUNK_RECORDS) + 1,
    };
    let (tx, rx) = mpsc::channel(ahead);
    tokio::spawn(async move {
        let newest_first = req.order.as_deref() != Some("oldest");
        // Every watermark the server sends holds for all later records: keep the one that
        // lets the most out (the oldest time when newest first, the newest when oldest first).
        let widen = |w: Option<i64>, new: Option<i64>| match (w, new) {
            (Some(a), Some(b)) => Some(if newest_first { a.min(b) } else { a.max(b) }),
            (a, b) => a.or(b),
        };
        let mut watermark = None;
        loop {
            let held = match &bodies {
                Bodies::Fetched { held } if !BODIES_REFUSED.load(Ordering::Relaxed) => Some(held),
                _ => None,
            };
            req.bodies = held.map(|_| false);
            let page = match api.stream("/v1/query", &req).await {
                Ok(l) => match held {
                    Some(held) => Page::read(l, &api, held).await,
                    None => Ok(Page::Streamed(l)),
                },
                Err(e) if held.is_some() && refuses_bodies(&e) => {
                    if !BODIES_REFUSED.swap(true, Ordering::Relaxed) {
                        note(format_args!(
                            "logflux: the server does not know `bodies: false` (it is older than \
                             this client): records are listed with their bodies from now on"
                        ));
                    }
                    continue;
                }
                Err(e) => Err(e),
            };
            let mut lines = match page {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let mut records = Vec::new();
            let end = loop {
                let l = match lines.next().await {
                    Ok(l) => l,
                    Err(e) => break Err(e),
                };
                match l.kind.as_str() {
                    "record" => {
                        watermark = widen(watermark, l.watermark);
                        records.push(l);
                        if records.len() == CHUNK_RECORDS {
                            let chunk = Chunk {
                                records: std::mem::take(&mut records),
                                watermark,
                                done: false,
                            };
                            if tx.send(Ok(chunk)).await.is_err() {
                                return;
                            }
                        }
                    }
                    // A segment the server could not read travels with the records, to be
                    // reported as their failures are.
                    "damaged" => records.push(l),
                    "end" => break Ok(l),
                    _ => {}
                }
            };
            let end = match end {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            watermark = widen(watermark, end.watermark);
            let done = end.cursor.is_none();
            if tx
                .send(Ok(Chunk {
                    records,
                    watermark,
                    done,
                }))
                .await
                .is_err()
                || done
            {
                return;
            }
            req.cursor = end.cursor;
            req.limit = Some(PAGE_RECORDS);
        }
    });
    rx
}

struct Held<T> {
    key: i128,
    seq: Reverse<u64>,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.key, self.seq) == (o.key, o.seq)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.key, self.seq).cmp(&(o.key, o.seq))
    }
}

/// Puts items into timestamp order (newest or oldest first; equal times keep arrival order).
pub(crate) struct Merger<T> {
    newest_first: bool,
    heap: BinaryHeap<Held<T>>,
    seq: u64,
    warned: bool,
}

impl<T> std::fmt::Debug for Merger<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merger")
            .field("newest_first", &self.newest_first)
            .field("held", &self.heap.len())
            .finish()
    }
}

impl<T> Merger<T> {
    pub(crate) fn new(newest_first: bool) -> Self {
        Merger {
            newest_first,
            heap: BinaryHeap::new(),
            seq: 0,
            warned: false,
        }
    }

    fn key(&self, ts: i64) -> i128 {
        if self.newest_first {
            i128::from(ts)
        } else {
            -i128::from(ts)
        }
    }

    pub(crate) fn push(&mut self, ts: i64, item: T) {
        self.seq += 1;
        self.heap.push(Held {
            key: self.key(ts),
            seq: Reverse(self.seq),
            item,
        });
    }

    /// The next item that can be shown given `watermark` (or everything, once `complete`).
    pub(crate) fn pop(&mut self, watermark: Option<i64>, complete: bool) -> Option<T> {
        let top = self.heap.peek()?;
        let full = self.heap.len() > MAX_HELD;
        let ready = complete || full || watermark.is_some_and(|w| top.key > self.key(w));
        if full && !self.warned {
            self.warned = true;
            note(format_args!(
                "logflux: more than {MAX_HELD} entries overlap in time; from here the order is approximate"
            ));
        }
        if ready {
            self.heap.pop().map(|h| h.item)
        } else {
            None
        }
    }

    /// Keeps only the `n` items that would be popped first (when more than twice as many are
    /// held): a query that wants `n` more results never needs the others, whatever comes
    /// later (what is pushed later can only come before them). Bounds a limited query's
    /// memory by its limit, not by how many entries match.
    pub(crate) fn keep_first(&mut self, n: usize) {
        if self.heap.len() <= n.saturating_mul(2).max(1024) {
            return;
        }
        let mut v = std::mem::take(&mut self.heap).into_sorted_vec();
        // Ascending: the heap pops from the end.
        let drop = v.len() - n;
        v.drain(..drop);
        self.heap = BinaryHeap::from(v);
    }

    /// Whether no item is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_refusal_of_the_bodies_field_turns_bodies_back_on() {
        let refusal = |status, m: &str| {
            anyhow::Error::new(StatusError::for_test(status, m)).context("listing records")
        };
        // What this server's JsonBody answers when it does not know a field.
        let old = "/v1/query: the server answered 400 Bad Request: Failed to deserialize the \
                   JSON body into the target type: unknown field `bodies`, expected one of \
                   `from`, `to`, `applications` at line 1 column 26";
        assert!(refuses_bodies(&refusal(400, old)));
        assert!(!refuses_bodies(&refusal(401, old)));
        assert!(!refuses_bodies(&refusal(
            400,
            "/v1/query: the server answered 400 Bad Request: limit must be 1..10000, got 0"
        )));
        assert!(!refuses_bodies(&anyhow::anyhow!("unknown field `bodies`")));
    }

    /// A reply the server cut after an `error` line (it failed after the reply began) is an
    /// error carrying the server's message, in both forms, not records and a missing end.
    #[tokio::test]
    async fn an_error_line_fails_the_reply() {
        let record = br#"{"type":"record","record_id":"r1"}"#;
        let error = br#"{"type":"error","code":"unavailable","message":"it is incomplete: retry"}"#;
        for binary in [false, true] {
            let bytes = if binary {
                let mut b = logflux_proto::frames::MAGIC.to_vec();
                b.extend(logflux_proto::frames::frame(record, Some(b"ct")));
                b.extend(logflux_proto::frames::frame(error, None));
                b
            } else {
                [&record[..], b"\n", &error[..], b"\n"].concat()
            };
            let stream =
                futures_util::stream::iter([Ok::<_, reqwest::Error>(bytes::Bytes::from(bytes))]);
            let mut lines = Lines::new(Box::pin(stream), binary);
            assert_eq!(next_line(&mut lines).await.unwrap().record_id, "r1");
            let e = next_line(&mut lines).await.unwrap_err().to_string();
            assert!(
                e.contains("broke off") && e.contains("it is incomplete: retry"),
                "{e}"
            );
        }
    }

    #[test]
    fn keep_first_keeps_what_would_be_popped_first() {
        for newest_first in [true, false] {
            let mut m = Merger::new(newest_first);
            let mut all: Vec<i64> = (0..5000).map(|i| (i * 7919) % 5000).collect();
            for &t in &all {
                m.push(t, t);
            }
            m.keep_first(10);
            // More arrive after the trim; some belong among the first.
            for t in [-1, 5001, 2500] {
                m.push(t, t);
                all.push(t);
            }
            let mut got = Vec::new();
            while let Some(t) = m.pop(None, true) {
                got.push(t);
            }
            all.sort_unstable();
            if newest_first {
                all.reverse();
            }
            assert_eq!(got[..10], all[..10], "newest_first={newest_first}");
            assert!(got.len() <= 13);
        }
    }
    use logflux_proto::{Entry, Level};

    fn e(ts: i64, p: &str) -> (i64, EntryView) {
        (ts, Entry::new(ts, Level::Info, "s", p).into())
    }

    #[test]
    fn merger_holds_entries_until_the_watermark_passes_them() {
        let mut m = Merger::new(true);
        for (ts, p) in [(5, "a"), (9, "b"), (7, "c"), (9, "d")] {
            let (t, v) = e(ts, p);
            m.push(t, v);
        }
        let mut out = Vec::new();
        while let Some(x) = m.pop(Some(7), false) {
            out.push(x.payload);
        }
        // Newer than 7 only; equal times in arrival order.
        assert_eq!(out, ["b", "d"]);
        let (t, v) = e(8, "late");
        m.push(t, v);
        while let Some(x) = m.pop(None, true) {
            out.push(x.payload);
        }
        assert_eq!(out, ["b", "d", "late", "c", "a"]);
        assert!(m.is_empty());

        let mut m = Merger::new(false);
        for (ts, p) in [(5, "a"), (i64::MIN, "min"), (7, "c")] {
            let (t, v) = e(ts, p);
            m.push(t, v);
        }
        let first = m.pop(Some(6), false).unwrap();
        assert_eq!(first.payload, "min");
        assert_eq!(m.pop(Some(6), false).unwrap().payload, "a");
        assert!(m.pop(Some(6), false).is_none());
        assert_eq!(m.pop(None, true).unwrap().payload, "c");
    }
}
