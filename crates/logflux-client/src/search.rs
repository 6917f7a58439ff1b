//! `logflux search`, `tail`, `export` and `stats`.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use logflux_proto::{EntryView, Level, timefmt};
use serde_json::json;

use crate::config::Settings;
use crate::fetch::{
    Bodies, Chunk, Mapper, Merger, OpenedRuns, Run, RunMerger, Session, note, spawn_query,
};
use crate::filter::{FilterArgs, parse_duration};
use crate::live::Live;
use crate::output::{Format, Printer, Style, Zone, chosen, render};
use crate::pager::Out;
use crate::{EXIT_ERROR, EXIT_NO_RESULTS, EXIT_OK};

/// Which way results run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Order {
    Newest,
    Oldest,
}

/// When to colour text output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Color {
    Auto,
    Always,
    Never,
}

impl Color {
    fn on(self) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        }
    }
}

/// How entries are shown: `search` and `tail`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// Output mode, with journalctl's names: short (= text), json (one object per line, as
    /// journalctl's; = ndjson), json-pretty, cat (the payload alone), verbose (every field);
    /// also text, ndjson, csv.
    #[arg(short = 'o', long = "output", value_enum, value_name = "MODE")]
    output: Option<Format>,
    /// Output format: text (default), json (one JSON array), ndjson, json-pretty, csv, cat,
    /// verbose.
    #[arg(long, value_enum, conflicts_with = "output")]
    format: Option<Format>,
    /// Colour levels in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
    /// Show times in UTC (default: local time, as journalctl, on a terminal or not; json,
    /// ndjson, json-pretty and csv are always RFC 3339 in UTC).
    #[arg(long)]
    utc: bool,
    /// Do not pipe output into a pager (on a terminal, output goes through $LOGFLUX_PAGER,
    /// else $PAGER, else `less`; never when piped).
    #[arg(long)]
    no_pager: bool,
}

impl ShowArgs {
    fn style(&self) -> Style {
        Style {
            format: chosen(self.output, self.format, Format::Text),
            color: self.color.on(),
            zone: Zone::new(self.utc),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct SearchArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Run the search saved (in the web UI) as NAME: its query (LogQL such as
    /// `{app="web", level="error"} |= "timeout"`, or plain words that must all occur) and its
    /// time range, unless --since or --until is given. Other filters narrow it further.
    #[arg(long, value_name = "NAME")]
    saved: Option<String>,
    /// Most entries to show (0: no limit): the newest N (with --order oldest, the oldest N).
    /// When more match, stderr says so.
    #[arg(short = 'n', long, visible_alias = "lines", default_value_t = 1000)]
    limit: u64,
    /// Newest first (by default the newest N are shown oldest first, as `journalctl -n`).
    #[arg(short = 'r', long, conflicts_with = "order")]
    reverse: bool,
    /// newest: the newest N, newest first (as -r); oldest: the oldest N, oldest first.
    /// Default: the newest N, oldest first.
    #[arg(long, value_enum)]
    order: Option<Order>,
    #[command(flatten)]
    show: ShowArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Keep printing entries as they arrive, until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// How many recent entries to show first.
    #[arg(short = 'n', long, default_value_t = 10)]
    lines: u64,
    #[command(flatten)]
    show: ShowArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// The file to write. It appears only once complete: until then the entries go to
    /// FILE.partial, which an interruption leaves behind, never FILE.
    #[arg(long, short = 'O')]
    output: PathBuf,
    /// Output mode, with journalctl's names (json: one object per line; see search -o).
    #[arg(short = 'o', value_enum, value_name = "MODE")]
    mode: Option<Format>,
    /// Output format: ndjson (default), json (one JSON array), csv, json-pretty, text, cat,
    /// verbose.
    #[arg(long, value_enum, conflicts_with = "mode")]
    format: Option<Format>,
    /// oldest (default) or newest first.
    #[arg(long, value_enum, default_value_t = Order::Oldest)]
    order: Order,
    /// Times of text and verbose output in UTC (default: local time).
    #[arg(long)]
    utc: bool,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// Output formats of `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum StatsFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct StatsArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// Bucket width (`5m`, `1h`, `1d`); default: about 30 buckets over the range.
    #[arg(long)]
    bucket: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = StatsFormat::Text)]
    format: StatsFormat,
    /// Buckets in UTC: aligned to UTC and shown in UTC (default: aligned to local time and,
    /// in text output, shown in local time; JSON always writes UTC).
    #[arg(long)]
    utc: bool,
}

/// Whether entries beyond a limit match.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// None: everything that matches was shown.
    #[default]
    None,
    /// At least one more matches.
    More,
    /// The limit was reached and [`PROBE_RECORDS`] more records held no match; later ones
    /// were not looked at.
    Unknown,
}

/// What a run of a query produced.
#[derive(Debug, Default)]
pub(crate) struct Summary {
    pub(crate) entries: u64,
    pub(crate) records: u64,
    pub(crate) errors: u64,
    rest: Rest,
}

/// Records looked at past a limit for one more match, at most (a search whose matches are
/// rare past its limit would otherwise cost a full listing to say so).
const PROBE_RECORDS: usize = 2000;

/// Whether the query still holds a match: it reads on until one, the end, or
/// [`PROBE_RECORDS`] records. It only informs the notice: records past the limit that cannot
/// be opened are not the output's errors (they are not shown, and the search that shows them
/// reports them), and a failure while probing makes the answer "unknown", not the search's
/// error.
async fn probe_rest(
    session: &Session,
    rx: &mut tokio::sync::mpsc::Receiver<anyhow::Result<Chunk>>,
) -> Rest {
    let nothing: Mapper<()> = Arc::new(|_| ());
    let mut examined = 0;
    let mut unopened = false;
    while let Some(chunk) = rx.recv().await {
        let Ok(chunk) = chunk else {
            return Rest::Unknown;
        };
        examined += chunk.records.len();
        let Ok(opened) = session.open_records(chunk.records, &nothing).await else {
            return Rest::Unknown;
        };
        unopened |= !opened.errors.is_empty();
        if !opened.entries.is_empty() {
            return Rest::More;
        }
        if chunk.done {
            break;
        }
        if examined >= PROBE_RECORDS {
            return Rest::Unknown;
        }
    }
    if unopened { Rest::Unknown } else { Rest::None }
}

/// Whether an error is stdout having been closed (`logflux search | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Runs the session's query to the end (or `limit` entries, or until `emit` says stop), in
/// order; `progress` sees each decrypted step. At the limit, it finds out whether more match
/// ([`Summary::rest`]).
pub(crate) async fn run_query<T: Send + 'static>(
    session: &Session,
    newest_first: bool,
    limit: u64,
    map: Mapper<T>,
    mut emit: impl FnMut(T) -> anyhow::Result<bool>,
    mut progress: impl FnMut(&Summary) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut rx = spawn_query(
        session.api.clone(),
        session.query(newest_first),
        Bodies::Listed,
    );
    let mut merger = Merger::new(newest_first);
    let mut sum = Summary::default();
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        let opened = session.open_records(chunk.records, &map).await?;
        sum.records += opened.records;
        sum.errors += opened.errors.len() as u64;
        for (ts, item) in opened.entries {
            merger.push(ts, item);
        }
        while let Some(e) = merger.pop(chunk.watermark, chunk.done) {
            sum.entries += 1;
            if !emit(e)? {
                return Ok(sum);
            }
            if limit > 0 && sum.entries >= limit {
                // Entries held for ordering matched too.
                sum.rest = if !merger.is_empty() {
                    Rest::More
                } else if chunk.done {
                    Rest::None
                } else {
                    probe_rest(session, &mut rx).await
                };
                return Ok(sum);
            }
        }
        progress(&sum)?;
        if chunk.done {
            break;
        }
    }
    Ok(sum)
}

/// What `search` buffers of its output. A listing writes a record's entries (~120 KiB for
/// 500 entries) at once: `BufWriter` passes a write at least this large straight through
/// (what it holds first), where a larger buffer copied every byte once more; smaller writes
/// (single entries, small records) are gathered as before.
const OUT_BUFFER: usize = 64 * 1024;

/// Chunks of records opened ahead of the one being printed, at most: opening overlaps with
/// merging and writing, and memory stays bounded by a few chunks.
const OPEN_AHEAD: usize = 2;

/// A chunk's opening task, aborted when dropped: a listing that stops (at its limit, on a
/// closed stdout, on an error) leaves no chunk being opened behind it.
struct OpenTask(tokio::task::JoinHandle<anyhow::Result<OpenedRuns>>);

impl Drop for OpenTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl OpenTask {
    /// The chunk's records opened, and those that could not be reported on stderr — here,
    /// where the chunk is consumed, so nothing is said about records never shown.
    async fn join(&mut self) -> anyhow::Result<OpenedRuns> {
        let opened = (&mut self.0).await.context("decryption task")??;
        for e in &opened.errors {
            note(format_args!("logflux: error: {e}"));
        }
        Ok(opened)
    }
}

/// A chunk being opened, in the order chunks came.
enum Opening {
    Open {
        task: OpenTask,
        records: usize,
        watermark: Option<i64>,
        done: bool,
    },
    /// The query failed here.
    Failed(anyhow::Error),
}

/// Starts opening each chunk of the session's query as soon as it arrives, at most
/// [`OPEN_AHEAD`] ahead of the receiver.
fn spawn_opening(
    session: &Session,
    newest_first: bool,
    style: Style,
) -> tokio::sync::mpsc::Receiver<Opening> {
    let (tx, rx) = tokio::sync::mpsc::channel(OPEN_AHEAD);
    let session = session.clone();
    tokio::spawn(async move {
        let mut chunks = spawn_query(
            session.api.clone(),
            session.query(newest_first),
            Bodies::Listed,
        );
        while let Some(chunk) = chunks.recv().await {
            // Room first, then the work: at most OPEN_AHEAD chunks opened ahead. The receiver
            // gone (the limit reached, stdout closed): nothing more to open.
            let Ok(permit) = tx.reserve().await else {
                return;
            };
            let (step, last) = match chunk {
                Err(e) => (Opening::Failed(e), true),
                Ok(chunk) => {
                    // Keys one chunk at a time, here: chunks opened side by side would each
                    // fetch and unwrap the same new key.
                    session
                        .decryptor
                        .ensure_keys(&session.api, &chunk.records)
                        .await;
                    let s = session.clone();
                    let records = chunk.records;
                    (
                        Opening::Open {
                            records: records.len(),
                            task: OpenTask(tokio::spawn(async move {
                                s.open_runs(records, style, newest_first).await
                            })),
                            watermark: chunk.watermark,
                            done: chunk.done,
                        },
                        chunk.done,
                    )
                }
            };
            permit.send(step);
            if last {
                return;
            }
        }
    });
    rx
}

/// [`run_query`] for printed output (`search`, `export`): each record's entries rendered in
/// `style` into one buffer where it is decrypted, records merged as runs rather than entry by
/// entry, and the next chunks opened while one is written. The same order, limit and
/// [`Summary::rest`]; `write` gets entries that follow each other in the output (a run and
/// the range of its entries), `progress` sees each chunk.
pub(crate) async fn run_listing(
    session: &Session,
    newest_first: bool,
    limit: u64,
    style: Style,
    mut write: impl FnMut(&Run, usize, usize) -> anyhow::Result<()>,
    mut progress: impl FnMut(&Summary) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut opening = spawn_opening(session, newest_first, style);
    let mut merger = RunMerger::new(newest_first);
    let mut sum = Summary::default();
    let room = |sum: &Summary| {
        if limit == 0 {
            usize::MAX
        } else {
            usize::try_from(limit - sum.entries).unwrap_or(usize::MAX)
        }
    };
    while let Some(step) = opening.recv().await {
        let (opened, watermark, done) = match step {
            Opening::Failed(e) => return Err(e),
            Opening::Open {
                mut task,
                watermark,
                done,
                ..
            } => (task.join().await?, watermark, done),
        };
        sum.records += opened.records;
        sum.errors += opened.errors.len() as u64;
        for run in opened.runs {
            merger.push(run);
        }
        while let Some(span) = merger.pop(watermark, done, room(&sum)) {
            sum.entries += span.len() as u64;
            write(span.run, span.from, span.to)?;
            if limit > 0 && sum.entries >= limit {
                // Entries held for ordering matched too.
                sum.rest = if !merger.is_empty() {
                    Rest::More
                } else if done {
                    Rest::None
                } else {
                    probe_opened(&mut opening).await
                };
                return Ok(sum);
            }
        }
        progress(&sum)?;
        if done {
            break;
        }
    }
    Ok(sum)
}

/// [`probe_rest`] over the chunks [`spawn_opening`] opens.
async fn probe_opened(opening: &mut tokio::sync::mpsc::Receiver<Opening>) -> Rest {
    let mut examined = 0;
    let mut unopened = false;
    while let Some(step) = opening.recv().await {
        let Opening::Open {
            mut task,
            records,
            done,
            ..
        } = step
        else {
            return Rest::Unknown;
        };
        examined += records;
        let Ok(opened) = task.join().await else {
            return Rest::Unknown;
        };
        unopened |= !opened.errors.is_empty();
        if opened.runs.iter().any(|r| !r.ends.is_empty()) {
            return Rest::More;
        }
        if done {
            break;
        }
        if examined >= PROBE_RECORDS {
            return Rest::Unknown;
        }
    }
    if unopened { Rest::Unknown } else { Rest::None }
}

pub(crate) fn status(sum: &Summary) -> i32 {
    if sum.errors > 0 {
        EXIT_ERROR
    } else if sum.entries == 0 {
        EXIT_NO_RESULTS
    } else {
        EXIT_OK
    }
}

/// What stderr says when the limit cut the output.
fn limit_notice(rest: Rest, shown: u64, oldest: bool) -> Option<String> {
    let end = if oldest { "oldest" } else { "newest" };
    match rest {
        Rest::None => None,
        Rest::More => Some(format!(
            "logflux: showing the {end} {shown} entries; more match — use -n N for more, or -n 0 for all"
        )),
        Rest::Unknown => Some(format!(
            "logflux: showing the {end} {shown} entries; more may match (the next {PROBE_RECORDS} records held none) — use -n 0 for all"
        )),
    }
}

/// How `search` lists: which end the limit keeps, the order the server lists in, and
/// whether entries are held to be shown the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    oldest_end: bool,
    newest_first: bool,
    hold: bool,
}

impl Plan {
    fn new(order: Option<Order>, reverse: bool, limit: u64) -> Plan {
        let (oldest_end, newest_first, hold) = match (order, reverse) {
            (Some(Order::Oldest), _) => (true, false, false),
            (Some(Order::Newest), _) | (None, true) => (false, true, false),
            // Without a limit, everything oldest first is a listing oldest first.
            (None, false) if limit == 0 => (false, false, false),
            // The newest N, shown oldest first (`journalctl -n`): listed newest first, held,
            // shown reversed.
            (None, false) => (false, true, true),
        };
        Plan {
            oldest_end,
            newest_first,
            hold,
        }
    }
}

/// Applies the saved search `name` to `f`: its time range (unless --since or --until is
/// given) and plain words; a LogQL query is returned, for the session to prune with and test
/// every entry against.
fn apply_saved(
    settings: &Settings,
    name: &str,
    f: &mut FilterArgs,
) -> anyhow::Result<Option<logflux_query::LogQuery>> {
    let store = crate::uistore::Store::new(crate::uistore::config_dir(settings)?);
    let saved = store
        .saved_one(name)
        .map_err(|e| anyhow::anyhow!("--saved {name:?}: {e}"))?;
    if f.since.is_none() && f.until.is_none() {
        let r = saved.range;
        match (r.since, r.start, r.end) {
            (Some(since), _, _) => f.since = Some(since),
            (None, start, end) => {
                f.since = start;
                f.until = end;
            }
        }
    }
    let q = saved.query.trim();
    let parsed = logflux_query::parse(q);
    // Plain words: anything not starting with `{` — unless it is a metric query (a saved
    // chart), which is said plainly rather than searched for as words.
    if !q.starts_with('{') && !matches!(parsed, Ok(logflux_query::Query::Metric(_))) {
        f.words.extend(q.split_whitespace().map(str::to_owned));
        return Ok(None);
    }
    match parsed {
        Ok(logflux_query::Query::Log(l)) => Ok(Some(l)),
        Ok(logflux_query::Query::Metric(_)) => bail!(
            "--saved {name:?} is a metric query ({q}): search shows log lines; open it in the UI (logflux ui '{q}')"
        ),
        Err(e) => bail!("--saved {name:?}: its query is not LogQL this logflux reads: {e}"),
    }
}

pub(crate) async fn search(settings: &Settings, mut args: SearchArgs) -> anyhow::Result<i32> {
    let logql = match args.saved.take() {
        Some(name) => apply_saved(settings, &name, &mut args.filter)?,
        None => None,
    };
    let session = Session::open_with(settings, &args.filter, logql).await?;
    let style = args.show.style();
    let Plan {
        oldest_end,
        newest_first,
        hold,
    } = Plan::new(args.order, args.reverse, args.limit);
    let (writer, pager) = Out::open(args.show.no_pager, true).split();
    let printer = std::cell::RefCell::new(Printer::new(
        std::io::BufWriter::with_capacity(OUT_BUFFER, writer),
        style,
    ));
    let mut held: Vec<String> = Vec::new();
    let r: anyhow::Result<Summary> = async {
        printer.borrow_mut().begin()?;
        let sum = if hold {
            run_query(
                &session,
                newest_first,
                args.limit,
                Arc::new(move |e| render(style, &e)),
                |r| {
                    held.push(r);
                    Ok(true)
                },
                |_| Ok(()),
            )
            .await
        } else {
            run_listing(
                &session,
                newest_first,
                args.limit,
                style,
                |run, from, to| {
                    printer.borrow_mut().rendered_many(
                        &run.bytes,
                        run.start(from),
                        &run.ends[from..to],
                    )?;
                    Ok(())
                },
                // Whatever a step decrypted is shown at once (a flush per chunk of records,
                // not per entry), on a terminal or down a pipe.
                |_| {
                    printer.borrow_mut().flush()?;
                    Ok(())
                },
            )
            .await
        };
        // Entries held to be shown oldest first are shown even when the query failed part
        // way, as streamed ones are.
        for r in held.iter().rev() {
            printer.borrow_mut().rendered(r.as_bytes())?;
        }
        let sum = sum?;
        printer.borrow_mut().finish()?;
        Ok(sum)
    }
    .await;
    // The pager's input is closed, then the user leaves it; what stderr says comes after.
    drop(printer);
    if let Some(p) = pager {
        p.wait();
    }
    match r {
        Ok(sum) => {
            if let Some(n) = limit_notice(sum.rest, sum.entries, oldest_end) {
                eprintln!("{n}");
            }
            Ok(status(&sum))
        }
        Err(e) if is_broken_pipe(&e) => Ok(EXIT_OK),
        Err(e) => Err(e),
    }
}

pub(crate) async fn tail(settings: &Settings, args: TailArgs) -> anyhow::Result<i32> {
    if args.follow && args.filter.until.is_some() {
        bail!("--until and --follow do not go together");
    }
    let session = Session::open(settings, &args.filter).await?;
    // The live stream is opened first, so nothing committed between the two is missed; what
    // both return is shown once (by record id).
    let mut live = if args.follow {
        Some(Live::open(&session).await?)
    } else {
        None
    };
    // A pager for what is shown once, never for what keeps coming.
    let (writer, mut pager) = Out::open(args.show.no_pager || args.follow, !args.follow).split();
    let mut printer = Printer::new(writer, args.show.style());
    let mut recent = Vec::new();
    let identity: Mapper<EntryView> = Arc::new(|e| e);
    let r: anyhow::Result<i32> = async {
        let sum = if args.lines > 0 {
            let mut rx = spawn_query(session.api.clone(), session.query(true), Bodies::Listed);
            let mut merger = Merger::new(true);
            let mut sum = Summary::default();
            'outer: while let Some(chunk) = rx.recv().await {
                let chunk = chunk?;
                if let Some(live) = live.as_mut() {
                    live.listed(chunk.records.iter().map(|r| r.record_id.as_str()));
                }
                let opened = session.open_records(chunk.records, &identity).await?;
                sum.errors += opened.errors.len() as u64;
                for (ts, e) in opened.entries {
                    merger.push(ts, e);
                }
                while let Some(e) = merger.pop(chunk.watermark, chunk.done) {
                    recent.push(e);
                    if recent.len() as u64 >= args.lines {
                        break 'outer;
                    }
                }
                if chunk.done {
                    break;
                }
            }
            sum.entries = recent.len() as u64;
            sum
        } else {
            Summary::default()
        };
        printer.begin()?;
        for e in recent.iter().rev() {
            printer.entry(e)?;
        }
        printer.flush()?;
        let Some(mut live) = live.take() else {
            printer.finish()?;
            return Ok(status(&sum));
        };
        eprintln!("logflux: following new entries (Ctrl-C stops)");
        let mut errors = sum.errors;
        let mut notice = |m: String| eprintln!("logflux: {m}");
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        loop {
            let opened = tokio::select! {
                _ = &mut interrupted => break,
                o = live.next(&mut notice) => o?,
            };
            errors += opened.errors.len() as u64;
            for (_, e) in &opened.entries {
                printer.entry(e)?;
            }
            printer.flush()?;
        }
        printer.finish()?;
        Ok(if errors > 0 { EXIT_ERROR } else { EXIT_OK })
    }
    .await;
    // The pager's input is closed, then the user leaves it (also after an error: logflux must
    // not print its error and exit while the pager holds the terminal).
    drop(printer);
    if let Some(p) = pager.take() {
        p.wait();
    }
    match r {
        Err(e) if is_broken_pipe(&e) => Ok(EXIT_OK),
        other => other,
    }
}

pub(crate) async fn export(settings: &Settings, args: ExportArgs) -> anyhow::Result<i32> {
    if args.output.exists() && !args.force {
        bail!("{} exists; --force replaces it", args.output.display());
    }
    let mut partial = args.output.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let session = Session::open(settings, &args.filter).await?;
    // Decrypted logs: readable by this user only.
    let file = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("creating {}", partial.display()))?
    };
    let style = Style {
        format: chosen(args.mode, args.format, Format::Ndjson),
        color: false,
        zone: Zone::new(args.utc),
    };
    let mut printer = Printer::new(std::io::BufWriter::with_capacity(1 << 20, file), style);
    printer.begin()?;
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} entries ({rate}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
        .with_key(
            "rate",
            |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&crate::output::rate(s.per_sec()));
            },
        ),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let run = run_listing(
        &session,
        args.order == Order::Newest,
        0,
        style,
        |run, from, to| {
            printer.rendered_many(&run.bytes, run.start(from), &run.ends[from..to])?;
            bar.inc((to - from) as u64);
            Ok(())
        },
        |s| {
            bar.set_message(format!("from {} records", s.records));
            Ok(())
        },
    );
    let outcome = tokio::select! {
        r = run => Some(r),
        _ = tokio::signal::ctrl_c() => None,
    };
    bar.finish_and_clear();
    let written = printer.count();
    let Some(outcome) = outcome else {
        let _ = printer.flush();
        eprintln!(
            "logflux: interrupted after {written} entries: {} was not written; {} holds the entries exported so far",
            args.output.display(),
            partial.display()
        );
        return Ok(EXIT_ERROR);
    };
    let sum = match outcome {
        Ok(s) => s,
        Err(e) => {
            let _ = printer.flush();
            return Err(e.context(format!(
                "export stopped after {written} entries: {} was not written ({} holds them)",
                args.output.display(),
                partial.display()
            )));
        }
    };
    if sum.entries == 0 && sum.errors == 0 {
        // Nothing to keep: no empty file left behind.
        drop(printer);
        std::fs::remove_file(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
        eprintln!(
            "logflux: nothing matched; {} not written",
            args.output.display()
        );
        return Ok(EXIT_NO_RESULTS);
    }
    printer.finish()?;
    let file = printer
        .into_inner()
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    // The query ran to its end: the file holds every entry that could be opened, and records
    // that could not were each named above (one bad record costs only itself).
    std::fs::rename(&partial, &args.output)?;
    if sum.errors > 0 {
        eprintln!(
            "logflux: exported {} entries from {} records to {}; {} records could not be opened (listed above) and are missing from it",
            sum.entries,
            sum.records,
            args.output.display(),
            sum.errors,
        );
        return Ok(EXIT_ERROR);
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "exported {} entries from {} records to {} in {secs:.1} s ({})",
        sum.entries,
        sum.records,
        args.output.display(),
        crate::output::rate(sum.entries as f64 / secs.max(1e-3))
    );
    Ok(EXIT_OK)
}

/// A bucket width giving about 30 buckets over `span_ns`, rounded to a familiar one.
fn auto_bucket(span_ns: i64) -> i64 {
    const S: i64 = 1_000_000_000;
    let steps = [
        S,
        5 * S,
        10 * S,
        30 * S,
        60 * S,
        5 * 60 * S,
        10 * 60 * S,
        15 * 60 * S,
        30 * 60 * S,
        3600 * S,
        3 * 3600 * S,
        6 * 3600 * S,
        12 * 3600 * S,
        86_400 * S,
        7 * 86_400 * S,
    ];
    let want = span_ns / 30;
    steps
        .iter()
        .copied()
        .find(|&s| s >= want)
        .unwrap_or(7 * 86_400 * S)
}

fn human_width(ns: i64) -> String {
    const S: i64 = 1_000_000_000;
    match ns {
        n if n % (86_400 * S) == 0 => format!("{}d", n / (86_400 * S)),
        n if n % (3600 * S) == 0 => format!("{}h", n / (3600 * S)),
        n if n % (60 * S) == 0 => format!("{}m", n / (60 * S)),
        n => format!("{}s", n / S),
    }
}

pub(crate) async fn stats(settings: &Settings, mut args: StatsArgs) -> anyhow::Result<i32> {
    if args.filter.since.is_none() {
        args.filter.since = Some("24h".into());
    }
    // Counted entries all fall in a bucket: the range is closed at both ends.
    if args.filter.until.is_none() {
        args.filter.until = Some("now".into());
    }
    let session = Session::open(settings, &args.filter).await?;
    let since = session.filter.since_ns.unwrap_or(0);
    let until = session.filter.until_ns.unwrap_or_else(timefmt::now_ns);
    let width = match &args.bucket {
        Some(b) => parse_duration(b)
            .filter(|&w| w > 0)
            .with_context(|| format!("--bucket {b:?}: a duration like 5m, 1h or 1d"))?,
        None => auto_bucket(until - since),
    };
    // Buckets start on whole widths of local time (of UTC with --utc): the local offset at
    // `since` is the one used.
    let zone = Zone::new(args.utc);
    let offset_ns = i64::from(zone.offset(since).unwrap_or(0)) * 1_000_000_000;
    let start = since - (since + offset_ns).rem_euclid(width);
    let n = usize::try_from((until - start) / width + 1).unwrap_or(usize::MAX);
    if n > 10_000 {
        bail!("{n} buckets: choose a wider --bucket or a shorter range");
    }
    let mut counts = vec![[0u64; 8]; n];
    let sum = run_query(
        &session,
        false,
        0,
        Arc::new(|e: EntryView| (e.timestamp_ns, e.level)),
        |(ts, level)| {
            if let Some(c) = counts.get_mut(((ts - start) / width) as usize) {
                c[usize::from(level.number() - 1)] += 1;
            }
            Ok(true)
        },
        |_| Ok(()),
    )
    .await?;
    let mut by_level = [0u64; 8];
    for c in &counts {
        for (t, v) in by_level.iter_mut().zip(c) {
            *t += v;
        }
    }
    let out = std::io::stdout();
    let mut out = out.lock();
    match args.format {
        StatsFormat::Json => {
            let levels = |c: &[u64; 8]| {
                Level::ALL
                    .iter()
                    .zip(c)
                    .filter(|(_, n)| **n > 0)
                    .map(|(l, n)| (l.name().to_owned(), json!(n)))
                    .collect::<serde_json::Map<_, _>>()
            };
            let doc = json!({
                "since": timefmt::format_rfc3339(since),
                "until": timefmt::format_rfc3339(until),
                "bucket_seconds": width / 1_000_000_000,
                "total": sum.entries,
                "levels": levels(&by_level),
                "buckets": counts.iter().enumerate().map(|(i, c)| json!({
                    "start": timefmt::format_rfc3339(start + i as i64 * width),
                    "total": c.iter().sum::<u64>(),
                    "levels": levels(c),
                })).collect::<Vec<_>>(),
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        StatsFormat::Text => {
            let shown: Vec<usize> = (0..8).filter(|&i| by_level[i] > 0).collect();
            let max = counts
                .iter()
                .map(|c| c.iter().sum::<u64>())
                .max()
                .unwrap_or(0)
                .max(1);
            writeln!(
                out,
                "{} entries from {} to {}, by {}",
                sum.entries,
                crate::output::zoned_time(since, zone),
                crate::output::zoned_time(until, zone),
                human_width(width)
            )?;
            let col = crate::output::zoned_time(start, zone).len();
            let mut header = format!("{:<col$} {:>8}", "bucket start", "total");
            for &i in &shown {
                header.push_str(&format!(" {:>8}", Level::ALL[i].name()));
            }
            writeln!(out, "{header}")?;
            for (i, c) in counts.iter().enumerate() {
                let total: u64 = c.iter().sum();
                let mut row = format!(
                    "{:<col$} {total:>8}",
                    crate::output::zoned_time(start + i as i64 * width, zone)
                );
                for &l in &shown {
                    row.push_str(&format!(" {:>8}", c[l]));
                }
                let bar = (total * 40).div_ceil(max) as usize;
                row.push_str("  ");
                row.push_str(&"█".repeat(bar));
                writeln!(out, "{}", row.trim_end())?;
            }
        }
    }
    out.flush()?;
    Ok(status(&sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_n_are_shown_oldest_first_unless_reversed() {
        let plan = |o, r, n| {
            let p = Plan::new(o, r, n);
            (p.oldest_end, p.newest_first, p.hold)
        };
        assert_eq!(plan(None, false, 1000), (false, true, true));
        assert_eq!(plan(None, false, 0), (false, false, false));
        assert_eq!(plan(None, true, 1000), (false, true, false));
        assert_eq!(plan(Some(Order::Newest), false, 5), (false, true, false));
        assert_eq!(plan(Some(Order::Oldest), false, 5), (true, false, false));
    }

    #[test]
    fn the_limit_notice_says_which_end_and_whether_more_match() {
        assert_eq!(limit_notice(Rest::None, 1000, false), None);
        assert_eq!(
            limit_notice(Rest::More, 1000, false).unwrap(),
            "logflux: showing the newest 1000 entries; more match — use -n N for more, or -n 0 for all"
        );
        assert!(
            limit_notice(Rest::More, 7, true)
                .unwrap()
                .contains("the oldest 7 entries; more match")
        );
        let maybe = limit_notice(Rest::Unknown, 10, false).unwrap();
        assert!(
            maybe.contains("the newest 10 entries; more may match"),
            "{maybe}"
        );
        assert!(maybe.contains("-n 0"), "{maybe}");
    }

    #[test]
    fn buckets_are_familiar_widths() {
        const S: i64 = 1_000_000_000;
        assert_eq!(auto_bucket(24 * 3600 * S), 3600 * S);
        assert_eq!(auto_bucket(3600 * S), 5 * 60 * S);
        assert_eq!(auto_bucket(10 * S), S);
        assert_eq!(auto_bucket(365 * 86_400 * S), 7 * 86_400 * S);
        assert_eq!(human_width(3600 * S), "1h");
        assert_eq!(human_width(90 * S), "90s");
    }
}
