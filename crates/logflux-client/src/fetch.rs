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
use crate::decrypt::{Decoded, Decryptor, RecordError};
use crate::filter::{Filter, FilterArgs};
use crate::output::{Style, render_into, render_ref_into};

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
        warm_random();
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
        let out = tokio::task::spawn_blocking(move || open_mapped(&dec, &filter, &records, &map))
            .await
            .context("decryption worker")?;
        for e in &out.errors {
            note(format_args!("logflux: error: {e}"));
        }
        Ok(out)
    }

    /// As [`Session::open_records`], each record's entries rendered in `style` into one
    /// buffer, in the order a [`RunMerger`] of `newest_first` takes them: what `logflux
    /// search` and `export` print. Agent entries in a JSON format are written straight from
    /// the decrypted batch.
    pub(crate) async fn open_runs(
        &self,
        records: Vec<Line>,
        style: Style,
        newest_first: bool,
    ) -> anyhow::Result<OpenedRuns> {
        self.decryptor.ensure_keys(&self.api, &records).await;
        let dec = self.decryptor.clone();
        let filter = self.filter.clone();
        let out = tokio::task::spawn_blocking(move || {
            open_rendered(&dec, &filter, &records, style, newest_first)
        })
        .await
        .context("decryption worker")?;
        // Records that failed are reported by the caller, when it shows the chunk.
        Ok(out)
    }
}

/// Seeds aws-lc's random generator on a thread of its own, now. Unwrapping the first data key
/// (RSA, blinded) needs it, and its first use in a process gathers CPU jitter entropy: ~30 ms
/// of a core (round 3's profile of a full listing: 6 % of its CPU), which otherwise waits for
/// the first page of records and delays the first result. Here it runs beside the requests
/// that come before. The thread is not waited for: a process that ends first just ends. Once
/// per process (the TUI opens a session per search).
fn warm_random() {
    static WARMED: std::sync::Once = std::sync::Once::new();
    WARMED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("logflux-random".into())
            .spawn(|| {
                let mut b = [0u8; 16];
                let _ = aws_lc_rs::rand::fill(&mut b);
            });
    });
}

/// Opens each of `records` with `open`, in parallel on the calling thread's pool: what opened,
/// in record order, and the records that failed. A bug that panics on one record's content
/// costs that record, not the run.
fn open_each<R: Send>(
    records: &[Line],
    open: impl Fn(&Line) -> Result<R, RecordError> + Sync,
) -> (Vec<R>, Vec<RecordError>) {
    use rayon::prelude::*;
    let results = records
        .par_iter()
        .map(|r| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| open(r)))
                .unwrap_or_else(|_| Err(RecordError::new(r, "could not be decoded")))
        })
        .collect::<Vec<_>>();
    let mut opened = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(x) => opened.push(x),
            Err(e) => errors.push(e),
        }
    }
    (opened, errors)
}

/// The work of [`Session::open_records`], in parallel on the calling thread's pool.
pub(crate) fn open_mapped<T: Send>(
    dec: &Decryptor,
    filter: &Filter,
    records: &[Line],
    map: &Mapper<T>,
) -> Opened<T> {
    let (opened, errors) = open_each(records, |r| {
        dec.open_where(r, &|e| filter.matches_ref(e)).map(|v| {
            v.into_iter()
                .filter(|e| filter.matches_in(e, &r.application_id))
                // Placed within its record's time range, which the server's watermarks are
                // about (an SDK entry's own `ts` may precede its part's timestamp by its
                // queueing time).
                .map(|e| (place(r, e.timestamp_ns), map(e)))
                .collect::<Vec<_>>()
        })
    });
    Opened {
        records: opened.len() as u64,
        entries: opened.into_iter().flatten().collect(),
        errors,
    }
}

/// An entry's time placed within its record's time range (what the merge orders by).
fn place(r: &Line, ts: i64) -> i64 {
    ts.clamp(r.min_ts, r.max_ts.max(r.min_ts))
}

/// The work of [`Session::open_runs`], in parallel on the calling thread's pool.
pub(crate) fn open_rendered(
    dec: &Decryptor,
    filter: &Filter,
    records: &[Line],
    style: Style,
    newest_first: bool,
) -> OpenedRuns {
    let (runs, errors) = open_each(records, |r| {
        render_record(dec, filter, r, style, newest_first)
    });
    OpenedRuns {
        records: runs.len() as u64,
        runs,
        errors,
    }
}

/// Most bytes reserved ahead for one record's rendering ([`render_record`]).
const MAX_PRESIZE: usize = 4 << 20;

/// One record's matching entries rendered, in merge order.
fn render_record(
    dec: &Decryptor,
    filter: &Filter,
    r: &Line,
    style: Style,
    newest_first: bool,
) -> Result<Run, RecordError> {
    let mut run = Run::default();
    let app = r.application_id.as_str();
    // The LogQL of a saved search tests owned entries; without it, the borrowed test is the
    // whole test.
    let borrowed_only = filter.logql.is_none();
    let presize = filter.keeps_every_entry();
    let entries = std::cell::Cell::new(0usize);
    let mut seen = 0usize;
    dec.visit_counted(r, &mut |n| entries.set(n), &mut |d| {
        seen += 1;
        // The record's first entry, kept: most likely all are (a listing).
        let first = seen == 1;
        let ts = match d {
            Decoded::Borrowed(e) => {
                if !filter.matches_ref(e) {
                    return;
                }
                if !(borrowed_only && render_ref_into(style, e, &mut run.bytes)) {
                    let v = EntryView::from(e);
                    if !filter.matches_in(&v, app) {
                        return;
                    }
                    render_into(style, &v, &mut run.bytes);
                }
                e.timestamp_ns
            }
            Decoded::Owned(v) => {
                if !filter.matches_in(&v, app) {
                    return;
                }
                render_into(style, &v, &mut run.bytes);
                v.timestamp_ns
            }
        };
        if first && presize {
            // Room for the rest at the first one's size and an eighth: growing a record's
            // ~120 KiB by doubling copied it twice over and faulted in fresh pages each time.
            // Bounded: past it (a huge first entry), the buffer grows as it needs. Only for a
            // listing: a filter that keeps a few entries would leave most of it unused.
            let rest = entries.get().saturating_sub(1);
            let want = run.bytes.len().saturating_mul(rest);
            let want = want.saturating_add(want / 8);
            run.bytes.reserve(want.min(MAX_PRESIZE));
            run.ends.reserve(rest.min(MAX_PRESIZE / 64));
        }
        run.ends.push((place(r, ts), run.bytes.len()));
    })?;
    run.put_in_order(newest_first);
    Ok(run)
}

/// One record's entries, rendered one after the other, in the order they are shown.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Run {
    /// The rendered entries.
    pub(crate) bytes: Vec<u8>,
    /// Per entry: its time (placed as [`Merger`] places it) and where its text ends in
    /// `bytes`.
    pub(crate) ends: Vec<(i64, usize)>,
}

impl Run {
    /// Where entry `i` begins in `bytes`.
    pub(crate) fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1].1 }
    }

    /// Puts the entries in the order a merge of `newest_first` takes them (newest or oldest
    /// first; equal times in the record's order). Records usually are in order already.
    fn put_in_order(&mut self, newest_first: bool) {
        let before = |a: i64, b: i64| if newest_first { a >= b } else { a <= b };
        if self.ends.windows(2).all(|w| before(w[0].0, w[1].0)) {
            return;
        }
        let mut order: Vec<usize> = (0..self.ends.len()).collect();
        // Stable: equal times keep their order.
        if newest_first {
            order.sort_by_key(|&i| Reverse(self.ends[i].0));
        } else {
            order.sort_by_key(|&i| self.ends[i].0);
        }
        let mut bytes = Vec::with_capacity(self.bytes.len());
        let mut ends = Vec::with_capacity(self.ends.len());
        for i in order {
            bytes.extend_from_slice(&self.bytes[self.start(i)..self.ends[i].1]);
            ends.push((self.ends[i].0, bytes.len()));
        }
        self.bytes = bytes;
        self.ends = ends;
    }
}

/// Records opened into [`Run`]s, and the records that failed.
#[derive(Debug)]
pub(crate) struct OpenedRuns {
    pub(crate) records: u64,
    pub(crate) runs: Vec<Run>,
    pub(crate) errors: Vec<RecordError>,
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

/// An entry's place in a merge's max-heap: newest first pops the latest time, oldest first
/// the earliest.
fn merge_key(newest_first: bool, ts: i64) -> i128 {
    if newest_first {
        i128::from(ts)
    } else {
        -i128::from(ts)
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
        merge_key(self.newest_first, ts)
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

/// The next entry of a run held by a [`RunMerger`]: ordered as [`Merger`] orders entries (by
/// time, then arrival: the run that came first, and within a run its order).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    key: i128,
    seq: Reverse<u64>,
    slot: usize,
}

/// [`Merger`] for [`Run`]s: the same order, watermarks and bound on what is held, but a run
/// is merged as a whole, not entry by entry. Its entries are already in order, so a heap of
/// the runs' next entries suffices, and entries that follow each other in the output leave
/// together as one span of their run's bytes (a whole record, when records do not overlap in
/// time).
pub(crate) struct RunMerger {
    newest_first: bool,
    heads: BinaryHeap<Head>,
    /// Runs held, with the index of each one's next entry.
    runs: Vec<(Run, usize)>,
    free: Vec<usize>,
    /// The run emptied by the last [`RunMerger::pop`], freed at the next.
    emptied: Option<usize>,
    held: usize,
    seq: u64,
    warned: bool,
}

impl std::fmt::Debug for RunMerger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMerger")
            .field("newest_first", &self.newest_first)
            .field("held", &self.held)
            .finish()
    }
}

/// Entries of one run leaving a [`RunMerger`] together.
#[derive(Debug)]
pub(crate) struct Span<'a> {
    pub(crate) run: &'a Run,
    pub(crate) from: usize,
    pub(crate) to: usize,
}

impl Span<'_> {
    pub(crate) fn len(&self) -> usize {
        self.to - self.from
    }
}

impl RunMerger {
    pub(crate) fn new(newest_first: bool) -> Self {
        RunMerger {
            newest_first,
            heads: BinaryHeap::new(),
            runs: Vec::new(),
            free: Vec::new(),
            emptied: None,
            held: 0,
            seq: 0,
            warned: false,
        }
    }

    fn key(&self, ts: i64) -> i128 {
        merge_key(self.newest_first, ts)
    }

    /// Holds `run`, whose entries must be in this merger's order (as [`Session::open_runs`]
    /// gives them).
    pub(crate) fn push(&mut self, run: Run) {
        let Some(&(ts, _)) = run.ends.first() else {
            return;
        };
        self.seq += 1;
        self.held += run.ends.len();
        let slot = match self.free.pop() {
            Some(s) => {
                self.runs[s] = (run, 0);
                s
            }
            None => {
                self.runs.push((run, 0));
                self.runs.len() - 1
            }
        };
        self.heads.push(Head {
            key: self.key(ts),
            seq: Reverse(self.seq),
            slot,
        });
    }

    /// The next entries that can be shown given `watermark` (or everything, once
    /// `complete`), at most `max` (at least one): those of one run that come next in order.
    pub(crate) fn pop(
        &mut self,
        watermark: Option<i64>,
        complete: bool,
        max: usize,
    ) -> Option<Span<'_>> {
        if let Some(s) = self.emptied.take() {
            self.runs[s] = (Run::default(), 0);
            self.free.push(s);
        }
        let wm = watermark.map(|w| self.key(w));
        // As Merger::pop, entry by entry: shown once past the watermark, or when more than
        // MAX_HELD are held.
        let ready =
            |key: i128, held: usize| complete || held > MAX_HELD || wm.is_some_and(|w| key > w);
        let top = self.heads.peek()?;
        if !ready(top.key, self.held) {
            return None;
        }
        if self.held > MAX_HELD && !self.warned {
            self.warned = true;
            note(format_args!(
                "logflux: more than {MAX_HELD} entries overlap in time; from here the order is approximate"
            ));
        }
        let head = self.heads.pop()?;
        let next_best = self.heads.peek().map(|h| (h.key, h.seq));
        let newest_first = self.newest_first;
        let key = |ts: i64| {
            if newest_first {
                i128::from(ts)
            } else {
                -i128::from(ts)
            }
        };
        let (run, pos) = &mut self.runs[head.slot];
        let from = *pos;
        let mut to = from + 1;
        let stop = from.saturating_add(max.max(1)).min(run.ends.len());
        while to < stop {
            let k = key(run.ends[to].0);
            if !ready(k, self.held - (to - from)) || next_best.is_some_and(|nb| (k, head.seq) < nb)
            {
                break;
            }
            to += 1;
        }
        *pos = to;
        self.held -= to - from;
        if to < run.ends.len() {
            let k = key(run.ends[to].0);
            self.heads.push(Head {
                key: k,
                seq: head.seq,
                slot: head.slot,
            });
        } else {
            self.emptied = Some(head.slot);
        }
        Some(Span {
            run: &self.runs[head.slot].0,
            from,
            to,
        })
    }

    /// Whether no entry is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.held == 0
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

    /// Records of agent batches (versions 2 and 1) whose entries overlap in time, repeat
    /// times and are out of order within a record, sealed under one key.
    fn sealed_records(dec: &Decryptor, seed: u64) -> Vec<Line> {
        use base64::Engine as _;
        use logflux_crypto::{BatchSealer, Dek, RecordBinding, SealingKey};
        let dek = Dek::generate().unwrap();
        let key = SealingKey::new(&dek);
        let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 33) % n
        };
        let mut lines = Vec::new();
        for r in 0..10u64 {
            let v1 = next(3) == 0;
            let mut sealer = BatchSealer::new(1).with_format(if v1 { 1 } else { 2 });
            let base = 1_000_000 + r as i64 * 50 - next(120) as i64;
            let entries: Vec<Entry> = (0..1 + next(40))
                .map(|i| {
                    let ts = base + next(150) as i64;
                    let level = Level::from_number(1 + next(8) as i64).unwrap();
                    let mut e = Entry::new(
                        ts,
                        level,
                        ["api", "web \u{1b}[31m"][next(2) as usize],
                        &format!(
                            "line {r}.{i} \"quoted\"{}{}",
                            ["", " needle", "\n  at x.rs:1", "\tcol"][next(4) as usize],
                            ["", " =formula"][next(2) as usize]
                        ),
                    );
                    e.metadata.insert("host", "h1");
                    if next(2) == 0 {
                        e.metadata.insert(
                            ["a", "zone", "read_time"][next(3) as usize],
                            format!("v {i}"),
                        );
                    }
                    e
                })
                .collect();
            let record_id = format!("r{seed}-{r}");
            let binding = RecordBinding {
                tenant: "tenant",
                application: "app",
                key_id: "k1",
                record_id: &record_id,
            };
            let sealed = sealer.seal(&key, &binding, &entries).unwrap();
            let mut l: Line = serde_json::from_value(serde_json::json!({
                "type": "record",
                "application_id": "app",
                "record_id": format!("agent-{record_id}"),
                "key_id": "k1",
                "payload_type": 4,
                "nonce": base64::engine::general_purpose::STANDARD.encode(sealed.nonce),
                "min_ts": sealed.time_range.0,
                "max_ts": sealed.time_range.1,
            }))
            .unwrap();
            l.body = Some(RecordBody::Raw(sealed.ciphertext.into()));
            lines.push(l);
        }
        dec.insert_key("k1", key);
        lines
    }

    /// What `search` printed before runs: entries opened one by one into a [`Merger`], each
    /// rendered alone.
    fn print_by_entries(
        dec: &Decryptor,
        filter: &Filter,
        chunks: &[(&[Line], Option<i64>, bool)],
        style: Style,
        newest_first: bool,
        limit: u64,
    ) -> (Vec<u8>, u64) {
        let map: Mapper<String> = Arc::new(move |e| crate::output::render(style, &e));
        let mut merger = Merger::new(newest_first);
        let mut p = crate::output::Printer::new(Vec::new(), style);
        p.begin().unwrap();
        let mut n = 0;
        'all: for (records, watermark, done) in chunks {
            let opened = open_mapped(dec, filter, records, &map);
            for (ts, r) in opened.entries {
                merger.push(ts, r);
            }
            while let Some(r) = merger.pop(*watermark, *done) {
                p.rendered(r.as_bytes()).unwrap();
                n += 1;
                if limit > 0 && n >= limit {
                    break 'all;
                }
            }
        }
        p.finish().unwrap();
        (p.into_inner(), n)
    }

    /// The same through runs.
    fn print_by_runs(
        dec: &Decryptor,
        filter: &Filter,
        chunks: &[(&[Line], Option<i64>, bool)],
        style: Style,
        newest_first: bool,
        limit: u64,
    ) -> (Vec<u8>, u64) {
        let mut merger = RunMerger::new(newest_first);
        let mut p = crate::output::Printer::new(Vec::new(), style);
        p.begin().unwrap();
        let mut n = 0u64;
        'all: for (records, watermark, done) in chunks {
            let opened = open_rendered(dec, filter, records, style, newest_first);
            for run in opened.runs {
                merger.push(run);
            }
            let room = |n: u64| {
                if limit == 0 {
                    usize::MAX
                } else {
                    (limit - n) as usize
                }
            };
            while let Some(s) = merger.pop(*watermark, *done, room(n)) {
                p.rendered_many(&s.run.bytes, s.run.start(s.from), &s.run.ends[s.from..s.to])
                    .unwrap();
                n += s.len() as u64;
                if limit > 0 && n >= limit {
                    break 'all;
                }
            }
        }
        p.finish().unwrap();
        (p.into_inner(), n)
    }

    #[test]
    fn runs_print_exactly_what_entries_printed() {
        use crate::output::{Format, Zone};
        let dec = Decryptor::new(
            logflux_crypto::PrivateKey::generate(2048).unwrap(),
            "tenant".into(),
        );
        let logql = |q: &str| {
            let Ok(logflux_query::Query::Log(query)) = logflux_query::parse(q) else {
                panic!("{q}");
            };
            crate::filter::Logql {
                prune: query.prune(),
                query,
                names: [("app".to_owned(), "web".to_owned())].into(),
            }
        };
        let filters = [
            Filter::default(),
            Filter {
                levels: Some(1..=4),
                ..Filter::default()
            },
            Filter {
                words: vec!["needle".into()],
                ..Filter::default()
            },
            Filter {
                logql: Some(logql(r#"{app="web"} |= "quoted" != "needle""#)),
                ..Filter::default()
            },
        ];
        let formats = [
            Format::Text,
            Format::Json,
            Format::Ndjson,
            Format::JsonPretty,
            Format::Csv,
            Format::Cat,
            Format::Verbose,
        ];
        let mut compared = 0;
        for seed in 0..6u64 {
            let records = sealed_records(&dec, seed);
            // Watermarks anywhere (even ones a server would not send): both merges follow
            // the same rule whatever they are.
            let chunks: Vec<(&[Line], Option<i64>, bool)> = vec![
                (&records[0..3], Some(1_000_100 + seed as i64 * 37), false),
                (&records[3..4], None, false),
                (&records[4..8], Some(1_000_300), false),
                (&records[8..], Some(1_000_200), true),
            ];
            for (fi, filter) in filters.iter().enumerate() {
                for &format in &formats {
                    for newest_first in [false, true] {
                        for limit in [0, 1, 7, 60] {
                            let style = Style {
                                format,
                                color: seed % 2 == 0,
                                zone: Zone::Fixed(3600 * seed as i32 - 7200),
                            };
                            let a =
                                print_by_entries(&dec, filter, &chunks, style, newest_first, limit);
                            let b =
                                print_by_runs(&dec, filter, &chunks, style, newest_first, limit);
                            assert_eq!(
                                String::from_utf8_lossy(&a.0),
                                String::from_utf8_lossy(&b.0),
                                "seed {seed}, filter {fi}, {format:?}, newest first {newest_first}, limit {limit}"
                            );
                            assert_eq!(a.1, b.1);
                            compared += a.1;
                        }
                    }
                }
            }
        }
        assert!(compared > 10_000, "{compared}");
    }

    #[test]
    fn run_merger_lets_out_what_the_watermark_passed_in_order() {
        let run = |ts: &[i64]| Run {
            bytes: ts
                .iter()
                .flat_map(|t| format!("{t}\n").into_bytes())
                .collect(),
            ends: {
                let mut end = 0;
                ts.iter()
                    .map(|t| {
                        end += format!("{t}\n").len();
                        (*t, end)
                    })
                    .collect()
            },
        };
        let mut m = RunMerger::new(false);
        m.push(run(&[1, 3, 5]));
        m.push(run(&[2, 3, 4]));
        let mut out = String::new();
        while let Some(s) = m.pop(Some(4), false, usize::MAX) {
            out.push_str(
                std::str::from_utf8(&s.run.bytes[s.run.start(s.from)..s.run.ends[s.to - 1].1])
                    .unwrap(),
            );
        }
        // Older than 4 only; equal times: the run that came first.
        assert_eq!(out, "1\n2\n3\n3\n");
        assert!(!m.is_empty());
        while let Some(s) = m.pop(None, true, 1) {
            assert_eq!(s.len(), 1);
            out.push_str(
                std::str::from_utf8(&s.run.bytes[s.run.start(s.from)..s.run.ends[s.from].1])
                    .unwrap(),
            );
        }
        assert_eq!(out, "1\n2\n3\n3\n4\n5\n");
        assert!(m.is_empty());
    }

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
