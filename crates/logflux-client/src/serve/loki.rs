//! Loki's query endpoints over entries decrypted here: the query engine
//! (`logflux-query`) evaluates, this module fetches (pruned with blind tokens as `logflux
//! search` prunes) and writes Loki's JSON shapes.
//!
//! Shapes (Loki's HTTP API): `{"status":"success","data":{"resultType":…,"result":…,
//! "stats":…}}`. Streams: `{"stream":{labels},"values":[["<ns>","line"],…]}` — as Loki by
//! default, structured metadata and parsed labels are folded into the stream's labels; with
//! `X-Loki-Response-Encoding-Flags: categorize-labels` (as Loki 3) the stream holds the stream
//! labels only and each value is `["<ns>","line",{"structuredMetadata":{…},"parsed":{…}}]`.
//! Matrix: `{"metric":{…},"values":[[<seconds>,"<value>"],…]}`; vector:
//! `{"metric":{…},"value":[<seconds>,"<value>"]}`; scalar: `[<seconds>,"<value>"]`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use axum::response::{IntoResponse, Response};
use logflux_query::{InstantValue, Labels, LogLine, LogQuery, Prune, Query, Row, stream_labels};
use serde_json::{Map, Value, json};

use super::http::{
    DEFAULT_LABEL_SINCE_NS, DEFAULT_SINCE_NS, LokiError, NS, Req, sample_value, seconds, success,
};
use super::{FieldSpec, Opened, Scan, Service};
use crate::fetch::Merger;

/// Parses LogQL; an error is Loki's 400 (`parse error at line 1, col N: …`).
pub(crate) fn parse_query(q: &str) -> Result<Query, LokiError> {
    logflux_query::parse(q).map_err(|e| LokiError::bad(e.to_string()))
}

fn now_ns() -> i64 {
    logflux_proto::timefmt::now_ns()
}

/// The fetch a query's exact conditions allow; `None` when nothing can match (an empty set).
pub(crate) fn scan_for(p: &Prune, from_ns: i64, to_ns: i64, newest_first: bool) -> Option<Scan> {
    let mut scan = Scan {
        from_ns,
        to_ns,
        newest_first,
        ..Scan::default()
    };
    if let Some(apps) = &p.apps {
        if apps.is_empty() {
            return None;
        }
        scan.apps = Some(apps.clone());
    }
    if let Some(levels) = &p.levels {
        if levels.is_empty() {
            return None;
        }
        if levels.len() < 8 {
            scan.conditions.push(
                levels
                    .iter()
                    .map(|l| (FieldSpec::Level, l.number().to_string()))
                    .collect(),
            );
        }
    }
    if let Some(types) = &p.types {
        if types.is_empty() {
            return None;
        }
        if types.len() < 7 {
            scan.conditions.push(
                types
                    .iter()
                    .map(|t| (FieldSpec::Type, t.number().to_string()))
                    .collect(),
            );
            scan.entry_types = types.iter().map(|t| t.number()).collect();
        }
    }
    if let Some(sources) = &p.sources {
        if sources.is_empty() {
            return None;
        }
        scan.conditions.push(
            sources
                .iter()
                .map(|s| (FieldSpec::Source, s.clone()))
                .collect(),
        );
    }
    for (k, values) in &p.metadata {
        if values.is_empty() {
            return None;
        }
        scan.conditions.push(
            values
                .iter()
                .map(|v| (FieldSpec::Meta(k.clone()), v.clone()))
                .collect(),
        );
    }
    for w in &p.words {
        scan.conditions.push(vec![(FieldSpec::Word, w.clone())]);
    }
    Some(scan)
}

/// One prune for several log queries: theirs when all agree, else none (everything in the
/// window is fetched and each query filters here).
fn common_prune(queries: &[&LogQuery]) -> Prune {
    let mut it = queries.iter().map(|q| q.prune());
    let Some(first) = it.next() else {
        return Prune::default();
    };
    if it.all(|p| p == first) {
        first
    } else {
        Prune::default()
    }
}

/// The rows of `records` with timestamps in `(from, to]`.
pub(crate) fn rows(records: &[Opened], from_ns: i64, to_ns: i64) -> Vec<Row<'_>> {
    records
        .iter()
        .flat_map(|r| {
            r.entries
                .iter()
                .filter(move |e| e.timestamp_ns > from_ns && e.timestamp_ns <= to_ns)
                .map(move |e| Row {
                    app: &r.app,
                    entry: e,
                })
        })
        .collect()
}

/// What a query looked at, for Loki's `stats`, and what it left out (`warnings`).
#[derive(Debug, Default, Clone)]
struct Work {
    warnings: super::Warnings,
    records: u64,
    cache_hits: u64,
    decrypted: u64,
    lines: u64,
    bytes: u64,
    returned: u64,
}

fn stats(w: &Work, started: Instant) -> Value {
    let secs = started.elapsed().as_secs_f64();
    let per = |x: u64| {
        if secs > 0.0 {
            (x as f64 / secs) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per(w.bytes),
            "linesProcessedPerSecond": per(w.lines),
            "totalBytesProcessed": w.bytes,
            "totalLinesProcessed": w.lines,
            "execTime": secs,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": w.returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": w.returned,
            "totalStructuredMetadataBytesProcessed": 0,
        },
        "querier": {"store": {"totalChunksRef": w.records, "totalChunksDownloaded": w.records}},
        "ingester": {},
        "cache": {"chunk": {
            "entriesRequested": w.cache_hits + w.decrypted,
            "entriesFound": w.cache_hits,
            "entriesStored": w.decrypted,
        }},
    })
}

/// Feeds a metric query's collector with the entries of its window `(from, to]`, the
/// records come so far at a time (at most [`COLLECT_ENTRIES`] entries): decrypted records
/// are not held beyond that (the cache keeps what it can), only the samples, at most
/// [`max_samples`]. A range query's `step` lets the collectors add samples up per step as
/// they come.
async fn collect<'q>(
    s: &Arc<Service>,
    m: &'q logflux_query::MetricQuery,
    (start, end, step): (i64, i64, Option<i64>),
    work: &mut Work,
) -> Result<logflux_query::Collector<'q>, LokiError> {
    let collector = || match step {
        Some(step) => m.range_collector(start, end, step),
        None => m.collector(start, end),
    };
    let mut c = collector();
    let (from, to) = m.fetch_window(start, end);
    let qs = m.log_queries();
    if qs.is_empty() {
        return Ok(c);
    }
    let Some(scan) = scan_for(&common_prune(&qs), from, to, false) else {
        return Ok(c);
    };
    let max = max_samples(s);
    let mut scanner = s.scan(&scan).await?;
    let mut held: Vec<Opened> = Vec::new();
    let mut held_entries = 0;
    loop {
        let next = scanner.next().await?;
        let last = next.is_none();
        if let Some(b) = next {
            held_entries += b.records.iter().map(|r| r.entries.len()).sum::<usize>();
            held.extend(b.records);
        }
        // More records while they are here already; counted as soon as the next would be
        // waited for.
        if !last && held_entries < COLLECT_ENTRIES && scanner.ready() {
            continue;
        }
        // Counting is CPU work: off the async workers (block_in_place), spread over the
        // cores a few records at a time (each worker picks its rows out of its records),
        // the workers' collectors merged.
        let (part, lines, bytes) = tokio::task::block_in_place(|| {
            use rayon::prelude::*;
            held.par_chunks(COLLECT_RECORDS)
                .map(|records| {
                    let rows = rows(records, from, to);
                    let bytes = rows
                        .iter()
                        .map(|r| r.entry.payload.len() as u64)
                        .sum::<u64>();
                    let mut part = collector();
                    part.push_all(&rows)?;
                    Ok((part, rows.len() as u64, bytes))
                })
                .try_reduce_with(|(mut a, al, ab), (b, bl, bb)| {
                    a.merge(b);
                    Ok((a, al + bl, ab + bb))
                })
                .unwrap_or_else(|| Ok((collector(), 0, 0)))
                .map_err(|e: logflux_query::QueryError| LokiError::bad(e.to_string()))
        })?;
        held.clear();
        held_entries = 0;
        work.lines += lines;
        work.bytes += bytes;
        if work.lines > max {
            return Err(LokiError::bad(format!(
                "the query's window holds more than {max} entries (the limit, from --cache-mb): narrow the time range or the selector"
            )));
        }
        c.merge(part);
        if last {
            break;
        }
    }
    work.records += scanner.records;
    work.cache_hits += scanner.cache_hits;
    work.decrypted += scanner.decrypted;
    work.warnings.extend(std::mem::take(&mut scanner.warnings));
    Ok(c)
}

/// Entries held together before they are counted (more: fewer hand-overs to the workers;
/// fewer: less decrypted content held when the cache cannot keep it).
const COLLECT_ENTRIES: usize = 1 << 17;
/// Records one worker counts before taking more.
const COLLECT_RECORDS: usize = 4;

/// Entries one metric query may count: what the cache's bytes would hold as samples.
fn max_samples(s: &Service) -> u64 {
    (s.cache.capacity() / 24) as u64
}

/// Calls `f` on every row of `scan` in `(from, to]`, without holding records.
async fn each_row(
    s: &Arc<Service>,
    scan: Option<Scan>,
    work: &mut Work,
    mut f: impl FnMut(&Row<'_>),
) -> Result<(), LokiError> {
    let Some(scan) = scan else {
        return Ok(());
    };
    let (from, to) = (scan.from_ns, scan.to_ns);
    let mut scanner = s.scan(&scan).await?;
    while let Some(b) = scanner.next().await? {
        for r in rows(&b.records, from, to) {
            work.lines += 1;
            work.bytes += r.entry.payload.len() as u64;
            f(&r);
        }
    }
    work.records += scanner.records;
    work.cache_hits += scanner.cache_hits;
    work.decrypted += scanner.decrypted;
    work.warnings.extend(std::mem::take(&mut scanner.warnings));
    Ok(())
}

/// Calls `f` with each batch of records `scan` reads (their entries not yet cut to its
/// range), without holding them; integrity failures are logged and left out.
pub(crate) async fn each_record(
    s: &Arc<Service>,
    scan: Scan,
    f: &mut (dyn FnMut(&[super::Opened]) + Send),
) -> Result<(), LokiError> {
    let mut scanner = s.scan(&scan).await?;
    while let Some(b) = scanner.next().await? {
        f(&b.records);
    }
    if !scanner.warnings.is_empty() {
        tracing::warn!(
            warnings = %scanner.warnings.to_json(),
            "serve: records that failed their integrity check were left out"
        );
    }
    Ok(())
}

/// A log query's lines in `[start, end)`, newest (or oldest) first, at most `limit`;
/// `seen` is called with every record read (the tail tells by it what its live stream may
/// bring again).
pub(crate) async fn log_lines(
    s: &Arc<Service>,
    q: &LogQuery,
    start: i64,
    end: i64,
    limit: u64,
    newest_first: bool,
    seen: &mut (dyn FnMut(&super::Opened) + Send),
) -> Result<Vec<LogLine>, LokiError> {
    run_log(
        s,
        q,
        start,
        end,
        limit,
        newest_first,
        &mut Work::default(),
        seen,
    )
    .await
}

/// As [`log_lines`], counting the work.
#[allow(clippy::too_many_arguments)]
async fn run_log(
    s: &Arc<Service>,
    q: &LogQuery,
    start: i64,
    end: i64,
    limit: u64,
    newest_first: bool,
    work: &mut Work,
    seen: &mut (dyn FnMut(&super::Opened) + Send),
) -> Result<Vec<LogLine>, LokiError> {
    let Some(scan) = scan_for(&q.prune(), start, end, newest_first) else {
        return Ok(Vec::new());
    };
    let mut scanner = s.scan(&scan).await?;
    let mut merger: Merger<LogLine> = Merger::new(newest_first);
    let mut out = Vec::new();
    'outer: while let Some(b) = scanner.next().await? {
        for r in &b.records {
            seen(r);
            for e in r.entries.iter() {
                if e.timestamp_ns < start || (e.timestamp_ns >= end && end > start) {
                    continue;
                }
                work.lines += 1;
                work.bytes += e.payload.len() as u64;
                if let Some(line) = q.eval(&Row {
                    app: &r.app,
                    entry: e,
                }) {
                    merger.push(e.timestamp_ns.clamp(r.min_ts, r.max_ts), line);
                }
            }
        }
        while let Some(l) = merger.pop(b.watermark, b.done) {
            out.push(l);
            if out.len() as u64 >= limit {
                break 'outer;
            }
        }
        // Lines that can no longer make the limit are let go: memory follows `limit`.
        merger.keep_first((limit as usize).saturating_sub(out.len()));
        if b.done {
            break;
        }
    }
    while out.len() < limit as usize
        && let Some(l) = merger.pop(None, true)
    {
        out.push(l);
    }
    work.records += scanner.records;
    work.cache_hits += scanner.cache_hits;
    work.decrypted += scanner.decrypted;
    work.warnings.extend(std::mem::take(&mut scanner.warnings));
    // Within equal times the merger keeps arrival order; Loki's order is by time only.
    if newest_first {
        out.sort_by_key(|l| std::cmp::Reverse(l.ts_ns));
    } else {
        out.sort_by_key(|l| l.ts_ns);
    }
    Ok(out)
}

fn labels_json(l: &Labels) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Whether the request asks for Loki 3's categorized labels.
fn categorize(r: &Req) -> bool {
    r.headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|f| f == "categorize-labels"))
}

/// Lines as Loki's `streams` result (lines in the order given).
pub(crate) fn streams_json(lines: Vec<LogLine>, categorize: bool) -> Value {
    let mut streams: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
    for l in lines {
        let ts = l.ts_ns.to_string();
        if categorize {
            let mut extra = Map::new();
            if !l.structured_metadata.is_empty() {
                extra.insert(
                    "structuredMetadata".into(),
                    labels_json(&l.structured_metadata),
                );
            }
            if !l.parsed.is_empty() {
                extra.insert("parsed".into(), labels_json(&l.parsed));
            }
            let v = if extra.is_empty() {
                json!([ts, l.line])
            } else {
                json!([ts, l.line, extra])
            };
            streams.entry(l.labels).or_default().push(v);
        } else {
            let all = l.all_labels();
            streams.entry(all).or_default().push(json!([ts, l.line]));
        }
    }
    Value::Array(
        streams
            .into_iter()
            .map(|(labels, values)| json!({"stream": labels_json(&labels), "values": values}))
            .collect(),
    )
}

fn streams_response(lines: Vec<LogLine>, r: &Req, work: Work, started: Instant) -> Response {
    let cat = categorize(r);
    let mut data = json!({
        "resultType": "streams",
        "result": streams_json(lines, cat),
        "stats": stats(&work, started),
    });
    if cat {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    answer(data, &work)
}

/// `{"status":"success","data":…}`, with Loki's top-level `warnings` when records were left
/// out (named, never their content: the UI shows them in a banner).
fn answer(data: Value, work: &Work) -> Response {
    let mut v = json!({"status": "success", "data": data});
    if !work.warnings.is_empty() {
        v["warnings"] = work.warnings.to_json();
    }
    axum::Json(v).into_response()
}

/// `$__auto` left in a query (Grafana substitutes it; a hand-written request may not): the
/// step, as Grafana would.
fn substitute_auto(q: &str, step_ns: i64) -> String {
    if q.contains("$__auto") {
        q.replace("$__auto", &format!("{}ms", (step_ns / 1_000_000).max(1)))
    } else {
        q.to_owned()
    }
}

/// `GET|POST /loki/api/v1/query_range`.
pub(crate) async fn query_range(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let started = Instant::now();
    let raw = r.params.query()?;
    let (start, end) = r.params.range(now_ns(), DEFAULT_SINCE_NS)?;
    let mut work = Work::default();
    // Checked before parsing only where they do not depend on the query's kind.
    let newest_first = r.params.newest_first()?;
    let limit = r.params.limit()?;
    let step = r.params.step(start, end)?;
    match parse_query(&substitute_auto(raw, step))? {
        Query::Log(q) => {
            let lines = run_log(
                s,
                &q,
                start,
                end,
                limit,
                newest_first,
                &mut work,
                &mut |_| {},
            )
            .await?;
            work.returned = lines.len() as u64;
            Ok(streams_response(lines, &r, work, started))
        }
        Query::Metric(m) => {
            check_fetch_window(&m, start, end)?;
            let c = collect(s, &m, (start, end, Some(step)), &mut work).await?;
            let matrix = c
                .eval_range(step)
                .map_err(|e| LokiError::bad(e.to_string()))?;
            let result: Vec<Value> = matrix
                .iter()
                .map(|s| {
                    json!({
                        "metric": labels_json(&s.labels),
                        "values": s.points.iter().map(|(t, v)| json!([seconds(*t), sample_value(*v)])).collect::<Vec<_>>(),
                    })
                })
                .collect();
            work.returned = result.len() as u64;
            let data = json!({
                "resultType": "matrix",
                "result": result,
                "stats": stats(&work, started),
            });
            Ok(answer(data, &work))
        }
    }
}

/// What a metric query fetches — its range plus its largest `[range]` and offset before it —
/// is held to the same limit as a query's range (`count_over_time(x[1y])` over an hour would
/// fetch and decrypt a year).
fn check_fetch_window(
    m: &logflux_query::MetricQuery,
    start: i64,
    end: i64,
) -> Result<(), LokiError> {
    let (from, to) = m.fetch_window(start, end);
    if to.saturating_sub(from) > super::http::MAX_RANGE_NS {
        return Err(LokiError::bad(format!(
            "the query time range exceeds the limit (query length: {}, limit: {})",
            super::http::human_duration(to.saturating_sub(from)),
            super::http::human_duration(super::http::MAX_RANGE_NS)
        )));
    }
    Ok(())
}

/// `GET|POST /loki/api/v1/query` (instant).
pub(crate) async fn query(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let started = Instant::now();
    let raw = r.params.query()?;
    let at = r.params.time("time", now_ns())?;
    let mut work = Work::default();
    match parse_query(raw)? {
        Query::Log(_) => Err(LokiError::bad(
            "log queries are not supported as an instant query type, please change your query to a range query type",
        )),
        Query::Metric(m) => {
            check_fetch_window(&m, at, at)?;
            let c = collect(s, &m, (at, at, None), &mut work).await?;
            let v = c
                .eval_instant_value()
                .map_err(|e| LokiError::bad(e.to_string()))?;
            let (kind, result) = match v {
                InstantValue::Scalar(x) => ("scalar", json!([seconds(at), sample_value(x)])),
                InstantValue::Vector(v) => (
                    "vector",
                    Value::Array(
                        v.iter()
                            .map(|(l, x)| {
                                json!({"metric": labels_json(l), "value": [seconds(at), sample_value(*x)]})
                            })
                            .collect(),
                    ),
                ),
            };
            let data = json!({
                "resultType": kind,
                "result": result,
                "stats": stats(&work, started),
            });
            Ok(answer(data, &work))
        }
    }
}

/// Lines grouped at a time by `patterns` (on two threads).
const PATTERN_BATCH: usize = 1 << 16;

/// `GET|POST /loki/api/v1/patterns`: the lines of `query` (a selector, with filters) in
/// `[start, end]` (default: the last hour) grouped by template (`logflux_query::patterns`,
/// over every line in range, here after decryption), each variable part `<_>` as Loki writes
/// them; one series per template and level with the lines per `step`:
/// `{"status":"success","data":[{"pattern":"…","level":"error","samples":[[<s>,<n>],…]},…]}`,
/// the templates with the most lines first.
pub(crate) async fn patterns(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    use logflux_query::patterns::{Config, Tally};
    let raw = r.params.query()?;
    let (start, end) = r.params.range(now_ns(), DEFAULT_SINCE_NS)?;
    let step = r.params.step(start, end)?;
    let Some(q) = selector(Some(raw))? else {
        return Err(LokiError::bad("query parameter is required: query=<LogQL>"));
    };
    // Steps on the epoch's grid, as Loki's samples.
    let mut tally = Tally::new(Config::default(), Some((0, step)));
    let mut batch: Vec<(i64, logflux_proto::Level, String)> = Vec::new();
    let mut work = Work::default();
    each_row(
        s,
        scan_for(&q.prune(), start.saturating_sub(1), end, false),
        &mut work,
        |row| {
            if let Some(line) = q.eval_line(row) {
                batch.push((row.entry.timestamp_ns, row.entry.level, line.into_owned()));
                if batch.len() >= PATTERN_BATCH {
                    tokio::task::block_in_place(|| tally.drain_owned(&mut batch));
                }
            }
        },
    )
    .await?;
    tokio::task::block_in_place(|| tally.drain_owned(&mut batch));
    let mut data = Vec::new();
    for t in tally.templates("<_>") {
        for level in logflux_proto::Level::ALL {
            let samples: Vec<Value> = t
                .stats
                .samples
                .range((level.number(), i64::MIN)..=(level.number(), i64::MAX))
                .map(|((_, at), n)| json!([at.div_euclid(NS), n]))
                .collect();
            if !samples.is_empty() {
                data.push(
                    json!({"pattern": t.template, "level": level.name(), "samples": samples}),
                );
            }
        }
    }
    Ok(answer(Value::Array(data), &work))
}

/// The selector a label/series/stats request names (`query`), as a log query.
fn selector(q: Option<&str>) -> Result<Option<LogQuery>, LokiError> {
    match q {
        None => Ok(None),
        Some(q) => match parse_query(q)? {
            Query::Log(l) => Ok(Some(l)),
            Query::Metric(_) => Err(LokiError::bad(format!(
                "a stream selector is expected here ({{app=\"web\"}}), not a metric query: {q}"
            ))),
        },
    }
}

/// Calls `f` with the stream labels of every entry in the request's range (default 6 h)
/// that the optional selector matches.
async fn each_stream(
    s: &Arc<Service>,
    r: &Req,
    selectors: &[LogQuery],
    mut f: impl FnMut(&Row<'_>, Labels),
) -> Result<Work, LokiError> {
    let (start, end) = r.params.range(now_ns(), DEFAULT_LABEL_SINCE_NS)?;
    let prune = match selectors {
        [one] => one.prune(),
        _ => Prune::default(),
    };
    let mut work = Work::default();
    each_row(
        s,
        scan_for(&prune, start.saturating_sub(1), end, true),
        &mut work,
        |row| {
            if selectors.is_empty() || selectors.iter().any(|q| q.matches_selector(row)) {
                f(row, stream_labels(row));
            }
        },
    )
    .await?;
    Ok(work)
}

/// `/loki/api/v1/labels`: the stream label names seen in the range.
pub(crate) async fn labels(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let sel: Vec<LogQuery> = selector(r.params.get("query"))?.into_iter().collect();
    let mut names = BTreeSet::new();
    each_stream(s, &r, &sel, |_, l| names.extend(l.into_keys())).await?;
    Ok(success(json!(names)))
}

/// `/loki/api/v1/label/{name}/values`.
pub(crate) async fn label_values(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let name = r.label_name.clone().unwrap_or_default();
    let sel: Vec<LogQuery> = selector(r.params.get("query"))?.into_iter().collect();
    let mut values = BTreeSet::new();
    each_stream(s, &r, &sel, |_, mut l| {
        if let Some(v) = l.remove(&name) {
            values.insert(v);
        }
    })
    .await?;
    Ok(success(json!(values)))
}

/// `/loki/api/v1/series`: the label sets of the streams `match[]` selects.
pub(crate) async fn series(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let mut sels = Vec::new();
    for m in r
        .params
        .all("match[]")
        .into_iter()
        .chain(r.params.all("match"))
    {
        if let Some(q) = selector(Some(m))? {
            sels.push(q);
        }
    }
    let mut set = BTreeSet::new();
    each_stream(s, &r, &sels, |_, l| {
        set.insert(l);
    })
    .await?;
    Ok(success(Value::Array(set.iter().map(labels_json).collect())))
}

/// `/loki/api/v1/index/stats`: streams, records ("chunks"), entries and bytes the selector
/// covers.
pub(crate) async fn index_stats(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let sel: Vec<LogQuery> = selector(Some(r.params.query()?))?.into_iter().collect();
    let mut streams = BTreeSet::new();
    let (mut entries, mut bytes) = (0u64, 0u64);
    let work = each_stream(s, &r, &sel, |row, l| {
        streams.insert(l);
        entries += 1;
        bytes += row.entry.payload.len() as u64;
    })
    .await?;
    Ok(axum::Json(json!({
        "streams": streams.len(),
        "chunks": work.records,
        "entries": entries,
        "bytes": bytes,
    }))
    .into_response())
}

/// How `index/volume` and `index/volume_range` group bytes (`aggregateBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VolumeBy {
    /// One series per label set: the target labels (`targetLabels`, else the selector's
    /// label names) of each stream.
    Series,
    /// One series per label name (`{name=""}`): every label of each stream, or the
    /// `targetLabels` only.
    Labels,
}

/// Distinct series one volume request may group into (Loki's `volume_max_series` answers
/// the same way, with its own default).
const MAX_VOLUME_SERIES: usize = logflux_query::MAX_SERIES;
/// (series, step) cells one `volume_range` request may hold.
const MAX_VOLUME_CELLS: usize = 1_000_000;

/// A series' bytes.
type Volume = (Labels, u64);

/// Bytes per series and bucket, the series interned: memory follows the cells, bounded.
#[derive(Debug, Default)]
struct VolumeAcc {
    series: Vec<Labels>,
    ids: std::collections::HashMap<Labels, u32>,
    cells: std::collections::HashMap<(i64, u32), u64>,
    error: Option<LokiError>,
}

impl VolumeAcc {
    fn add(&mut self, bucket: i64, key: Labels, bytes: u64) {
        if self.error.is_some() {
            return;
        }
        let id = match self.ids.get(&key) {
            Some(id) => *id,
            None => {
                if self.series.len() >= MAX_VOLUME_SERIES {
                    self.error = Some(LokiError::bad(format!(
                        "the query hit the max number of series limit (limit: {MAX_VOLUME_SERIES} series): narrow the selector or name fewer targetLabels"
                    )));
                    return;
                }
                let id = self.series.len() as u32;
                self.series.push(key.clone());
                self.ids.insert(key, id);
                id
            }
        };
        *self.cells.entry((bucket, id)).or_default() += bytes;
        if self.cells.len() > MAX_VOLUME_CELLS {
            self.error = Some(LokiError::bad(format!(
                "the volume holds more than {MAX_VOLUME_CELLS} (series, step) points: raise the step, narrow the range or the selector"
            )));
        }
    }

    /// Per bucket (in time order), its `limit` largest series, largest first (ties by
    /// labels), as Loki limits each step's volumes.
    fn top(self, limit: usize) -> Result<Vec<(i64, Vec<Volume>)>, LokiError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut buckets: BTreeMap<i64, Vec<(u32, u64)>> = BTreeMap::new();
        for ((b, id), bytes) in self.cells {
            buckets.entry(b).or_default().push((id, bytes));
        }
        let series = self.series;
        Ok(buckets
            .into_iter()
            .map(|(b, mut v)| {
                v.sort_by(|x, y| {
                    y.1.cmp(&x.1)
                        .then_with(|| series[x.0 as usize].cmp(&series[y.0 as usize]))
                });
                v.truncate(limit);
                (
                    b,
                    v.into_iter()
                        .map(|(id, bytes)| (series[id as usize].clone(), bytes))
                        .collect(),
                )
            })
            .collect())
    }
}

/// The bytes of the streams a selector names in the request's range, grouped as
/// `aggregateBy` asks, per `bucket_of` an entry's timestamp.
async fn volume(
    s: &Arc<Service>,
    r: &Req,
    bucket_of: impl Fn(i64) -> i64,
) -> Result<(VolumeAcc, Work), LokiError> {
    let q = selector(Some(r.params.query()?))?;
    let by = match r.params.get("aggregateBy") {
        None | Some("series") => VolumeBy::Series,
        Some("labels") => VolumeBy::Labels,
        Some(_) => return Err(LokiError::bad("invalid aggregation option")),
    };
    let given: Vec<String> = r
        .params
        .get("targetLabels")
        .map(|t| t.split(',').map(|x| x.trim().to_owned()).collect())
        .unwrap_or_default();
    let target: Vec<String> = match by {
        VolumeBy::Series if given.is_empty() => q
            .iter()
            .flat_map(|q| q.selector_labels().iter().map(|m| m.name.clone()))
            .collect(),
        _ => given,
    };
    let sel: Vec<LogQuery> = q.into_iter().collect();
    let mut acc = VolumeAcc::default();
    let work = each_stream(s, r, &sel, |row, l| {
        let bytes = row.entry.payload.len() as u64;
        let bucket = bucket_of(row.entry.timestamp_ns);
        let wanted = |k: &String| target.is_empty() || target.contains(k);
        match by {
            VolumeBy::Series => {
                let key: Labels = l.into_iter().filter(|(k, _)| wanted(k)).collect();
                acc.add(bucket, key, bytes);
            }
            VolumeBy::Labels => {
                for (k, _) in l {
                    if wanted(&k) {
                        acc.add(bucket, Labels::from([(k, String::new())]), bytes);
                    }
                }
            }
        }
    })
    .await?;
    Ok((acc, work))
}

/// `/loki/api/v1/index/volume`: bytes per label set (`targetLabels`, else the selector's
/// label names) or per label name (`aggregateBy=labels`), largest first, at most `limit`;
/// a `vector` at `end`.
pub(crate) async fn index_volume(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let limit = r.params.limit()?;
    let (_, end) = r.params.range(now_ns(), DEFAULT_LABEL_SINCE_NS)?;
    let (acc, _) = volume(s, &r, |_| 0).await?;
    let v = acc
        .top(limit as usize)?
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_default();
    Ok(success(json!({
        "resultType": "vector",
        "result": v.iter().map(|(l, b)| json!({"metric": labels_json(l), "value": [seconds(end - end % NS), b.to_string()]})).collect::<Vec<_>>(),
    })))
}

/// `/loki/api/v1/index/volume_range`: as `index/volume`, per `step` (a `matrix`). As Loki,
/// steps are aligned to the Unix epoch, each point stamped with the end of its step (the
/// step's last millisecond, the request's `end` for the last one), each step holds its own
/// `limit` largest series, and a series has points only for steps where it has bytes.
/// Series are ordered by their first point, largest first.
pub(crate) async fn index_volume_range(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let started = Instant::now();
    let limit = r.params.limit()?;
    let (start, end) = r.params.range(now_ns(), DEFAULT_LABEL_SINCE_NS)?;
    let step = r.params.step(start, end)?;
    let (acc, mut work) = volume(s, &r, |ts| ts.div_euclid(step)).await?;
    let ms = 1_000_000;
    let stamp = |b: i64| {
        let t = (b + 1).saturating_mul(step).saturating_sub(ms).min(end);
        t - t.rem_euclid(ms)
    };
    let mut series: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    for (b, v) in acc.top(limit as usize)? {
        for (l, bytes) in v {
            series.entry(l).or_default().push((stamp(b), bytes));
        }
    }
    let mut series: Vec<(Labels, Vec<(i64, u64)>)> = series.into_iter().collect();
    series.sort_by(|a, b| b.1[0].1.cmp(&a.1[0].1).then_with(|| a.0.cmp(&b.0)));
    work.returned = series.len() as u64;
    let result: Vec<Value> = series
        .iter()
        .map(|(l, points)| {
            json!({
                "metric": labels_json(l),
                "values": points.iter().map(|(t, b)| json!([seconds(*t), b.to_string()])).collect::<Vec<_>>(),
            })
        })
        .collect();
    let data = json!({
        "resultType": "matrix",
        "result": result,
        "stats": stats(&work, started),
    });
    Ok(answer(data, &work))
}

/// Lines Loki's `detected_fields` looks at when the request names no `line_limit`
/// (`defaultQueryLimit` in Loki's `pkg/loghttp/params.go`).
const DEFAULT_FIELD_LINES: u64 = 100;
/// Fields (or values) answered when the request names no `limit` (Loki's default).
const DEFAULT_FIELD_LIMIT: u64 = 1000;
/// Most fields (or values) one request may ask for: each field holds up to
/// [`logflux_query::EXACT_VALUES`] value hashes or a 4 KiB sketch.
const MAX_FIELD_LIMIT: u64 = 5000;

/// The newest `line_limit` lines of `query` in `[start, end)` and the `limit` of a
/// `detected_fields` or `detected_field/{name}/values` request, read as Loki reads them.
async fn field_lines(s: &Arc<Service>, r: &Req) -> Result<(Vec<LogLine>, usize), LokiError> {
    let raw = r.params.query()?;
    let (start, end) = r.params.range(now_ns(), DEFAULT_SINCE_NS)?;
    let line_limit = r.params.lines("line_limit", DEFAULT_FIELD_LINES)?;
    // `limit`, or (before Loki 3.4) `field_limit`.
    let name = if r.params.get("limit").is_some() {
        "limit"
    } else {
        "field_limit"
    };
    let limit = r.params.positive(name, DEFAULT_FIELD_LIMIT)?;
    if limit > MAX_FIELD_LIMIT {
        return Err(LokiError::bad(format!(
            "{name} {limit} is above the most fields or values served ({MAX_FIELD_LIMIT})"
        )));
    }
    // Loki checks the step of these requests too.
    r.params.step(start, end)?;
    let Some(q) = selector(Some(raw))? else {
        return Err(LokiError::bad("query parameter is required: query=<LogQL>"));
    };
    let lines = run_log(
        s,
        &q,
        start,
        end,
        line_limit,
        true,
        &mut Work::default(),
        &mut |_| {},
    )
    .await?;
    Ok((lines, limit as usize))
}

/// `/loki/api/v1/detected_fields`: the fields of the newest `line_limit` lines (default
/// 100) the query selects — structured metadata (`parsers: null`) and what the query's
/// parsers and `| json` (else `| logfmt`) read from each line — with Loki's type and the
/// number of distinct values (exact up to 1024, a HyperLogLog estimate above), sorted by
/// name, at most `limit` (default 1000). As Loki, `fields` and `limit` are left out when
/// nothing is found.
pub(crate) async fn detected_fields(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let (lines, limit) = field_lines(s, &r).await?;
    let fields = tokio::task::block_in_place(|| {
        let mut d = logflux_query::FieldDetector::new(limit);
        for l in &lines {
            d.add(l);
        }
        d.fields()
    });
    let mut body = Map::new();
    if !fields.is_empty() {
        body.insert(
            "fields".into(),
            Value::Array(
                fields
                    .iter()
                    .map(|f| {
                        json!({
                            "label": f.label,
                            "type": f.field_type.name(),
                            "cardinality": f.cardinality,
                            "parsers": f.parsers.as_ref().map(|p| p.iter().map(|p| p.name()).collect::<Vec<_>>()),
                        })
                    })
                    .collect(),
            ),
        );
        body.insert("limit".into(), json!(limit));
    }
    Ok(axum::Json(Value::Object(body)).into_response())
}

/// `/loki/api/v1/detected_field/{name}/values`: the distinct values the field takes in the
/// newest `line_limit` lines, sorted; as Loki, lines stop being read once `limit` values are
/// found. `{"values":[…],"limit":N}`, or `{}` when there are none.
pub(crate) async fn detected_field_values(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let name = r.label_name.clone().unwrap_or_default();
    let (lines, limit) = field_lines(s, &r).await?;
    let values = tokio::task::block_in_place(|| distinct_values(&lines, &name, limit));
    if values.is_empty() {
        return Ok(axum::Json(json!({})).into_response());
    }
    Ok(axum::Json(json!({"values": values, "limit": limit})).into_response())
}

/// The first `limit` distinct values field `name` takes in `lines` (in their order), sorted.
/// A line may give more than one value: the limit is held all the same.
fn distinct_values(lines: &[LogLine], name: &str, limit: usize) -> BTreeSet<String> {
    let mut values = BTreeSet::new();
    for l in lines {
        for v in logflux_query::field_values(l, name) {
            if values.len() >= limit {
                return values;
            }
            values.insert(v);
        }
    }
    values
}

/// `/loki/api/v1/detected_labels`: stream labels and how many values each has.
pub(crate) async fn detected_labels(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let sel: Vec<LogQuery> = selector(r.params.get("query"))?.into_iter().collect();
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    each_stream(s, &r, &sel, |_, l| {
        for (k, v) in l {
            seen.entry(k).or_default().insert(v);
        }
    })
    .await?;
    Ok(axum::Json(json!({
        "detectedLabels": seen.iter().map(|(k, v)| json!({"label": k, "cardinality": v.len()})).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use logflux_proto::{EntryType, Level};

    #[test]
    fn detected_field_values_are_held_to_the_limit_when_a_line_gives_two() {
        let line = |sm: &str, parsed: &str| {
            let one = |v: &str| -> Labels { [("region".to_owned(), v.to_owned())].into() };
            LogLine {
                ts_ns: 1,
                line: "x".into(),
                labels: Labels::new(),
                structured_metadata: one(sm),
                parsed: one(parsed),
            }
        };
        // The second line brings two new values with one left under the limit.
        let lines = [line("eu", "eu"), line("us", "ap"), line("sa", "af")];
        let got = distinct_values(&lines, "region", 2);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains("eu"), "the first found are kept: {got:?}");
        assert_eq!(distinct_values(&lines, "region", 10).len(), 5);
        assert!(distinct_values(&lines, "zone", 10).is_empty());
    }

    #[test]
    fn the_engines_exact_sets_become_the_scans_token_conditions() {
        let Query::Log(q) = parse_query(
            r#"{app="web", source="api", level=~"error|warning", region="eu"} |= "disk full on""#,
        )
        .unwrap() else {
            panic!("a log query")
        };
        let scan = scan_for(&q.prune(), 1, 2, true).unwrap();
        assert_eq!(scan.apps, Some(vec!["web".to_owned()]));
        assert!(scan.conditions.contains(&vec![
            (FieldSpec::Level, Level::Error.number().to_string()),
            (FieldSpec::Level, Level::Warning.number().to_string()),
        ]));
        assert!(
            scan.conditions
                .contains(&vec![(FieldSpec::Source, "api".to_owned())])
        );
        assert!(
            scan.conditions
                .contains(&vec![(FieldSpec::Meta("region".into()), "eu".to_owned())])
        );
        // `|= "disk full on"`: "full" is bounded inside the needle, so it is a whole word of
        // any match; "disk" and "on" are not ("xdisk full one" matches).
        assert!(
            scan.conditions
                .contains(&vec![(FieldSpec::Word, "full".to_owned())])
        );
        assert!(
            !scan
                .conditions
                .iter()
                .any(|c| c[0].0 == FieldSpec::Word && c[0].1 != "full")
        );
        // An impossible set fetches nothing.
        let none = Prune {
            types: Some(Vec::<EntryType>::new()),
            ..Prune::default()
        };
        assert!(scan_for(&none, 1, 2, true).is_none());
    }

    #[test]
    fn volume_keeps_each_steps_largest_series_and_bounds_its_series() {
        let l = |v: &str| Labels::from([("level".to_owned(), v.to_owned())]);
        let mut acc = VolumeAcc::default();
        acc.add(1, l("info"), 5);
        acc.add(0, l("info"), 10);
        acc.add(0, l("error"), 30);
        acc.add(0, l("debug"), 10);
        acc.add(1, l("info"), 1);
        let top = acc.top(2).unwrap();
        assert_eq!(
            top,
            vec![
                (0, vec![(l("error"), 30), (l("debug"), 10)]),
                (1, vec![(l("info"), 6)]),
            ]
        );
        let mut acc = VolumeAcc::default();
        for i in 0..=MAX_VOLUME_SERIES {
            acc.add(0, l(&i.to_string()), 1);
        }
        let e = acc.top(1).unwrap_err();
        assert!(e.message.contains("max number of series"), "{}", e.message);
    }

    #[test]
    fn streams_are_folded_by_default_and_categorized_on_request() {
        let mut labels = Labels::new();
        labels.insert("app".into(), "web".into());
        let mut sm = Labels::new();
        sm.insert("region".into(), "eu".into());
        let line = LogLine {
            ts_ns: 5,
            line: "hello".into(),
            labels,
            structured_metadata: sm,
            parsed: Labels::new(),
        };
        let folded = streams_json(vec![line.clone()], false);
        assert_eq!(
            folded,
            json!([{"stream": {"app": "web", "region": "eu"}, "values": [["5", "hello"]]}])
        );
        let cat = streams_json(vec![line], true);
        assert_eq!(
            cat,
            json!([{"stream": {"app": "web"}, "values": [["5", "hello", {"structuredMetadata": {"region": "eu"}}]]}])
        );
    }
}
