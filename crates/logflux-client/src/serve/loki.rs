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
fn rows(records: &[Opened], from_ns: i64, to_ns: i64) -> Vec<Row<'_>> {
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

/// What a query looked at, for Loki's `stats`.
#[derive(Debug, Default, Clone, Copy)]
struct Work {
    records: u64,
    cache_hits: u64,
    decrypted: u64,
    lines: u64,
    bytes: u64,
    returned: u64,
}

fn stats(w: Work, started: Instant) -> Value {
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

/// Feeds a metric query's collector with the entries of its window `(from, to]`, a chunk of
/// records at a time: decrypted records are not held (the cache keeps what it can), only the
/// samples, at most [`max_samples`]. A range query's `step` lets the collectors add samples
/// up per step as they come.
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
    while let Some(b) = scanner.next().await? {
        let rows = rows(&b.records, from, to);
        work.lines += rows.len() as u64;
        work.bytes += rows
            .iter()
            .map(|r| r.entry.payload.len() as u64)
            .sum::<u64>();
        if work.lines > max {
            return Err(LokiError::bad(format!(
                "the query's window holds more than {max} entries (the limit, from --cache-mb): narrow the time range or the selector"
            )));
        }
        // Counting is CPU work: off the async workers (block_in_place), spread over the
        // cores in chunks whose collectors are merged.
        tokio::task::block_in_place(|| {
            use rayon::prelude::*;
            let parts: Vec<_> = rows
                .par_chunks(COLLECT_CHUNK)
                .map(|chunk| {
                    let mut part = collector();
                    part.push_all(chunk).map(|()| part)
                })
                .collect();
            for p in parts {
                c.merge(p.map_err(|e| LokiError::bad(e.to_string()))?);
            }
            Ok::<(), LokiError>(())
        })?;
    }
    work.records += scanner.records;
    work.cache_hits += scanner.cache_hits;
    work.decrypted += scanner.decrypted;
    Ok(c)
}

/// Entries one worker counts before its collector is merged.
const COLLECT_CHUNK: usize = 2048;

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
    Ok(())
}

/// A log query's lines in `[start, end)`, newest (or oldest) first, at most `limit`;
/// `seen` gets the ids of the records read.
pub(crate) async fn log_lines(
    s: &Arc<Service>,
    q: &LogQuery,
    start: i64,
    end: i64,
    limit: u64,
    newest_first: bool,
    seen: &mut std::collections::HashSet<String>,
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
    seen: &mut std::collections::HashSet<String>,
) -> Result<Vec<LogLine>, LokiError> {
    let Some(scan) = scan_for(&q.prune(), start, end, newest_first) else {
        return Ok(Vec::new());
    };
    let mut scanner = s.scan(&scan).await?;
    let mut merger: Merger<LogLine> = Merger::new(newest_first);
    let mut out = Vec::new();
    'outer: while let Some(b) = scanner.next().await? {
        for r in &b.records {
            seen.insert(r.record_id.clone());
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
        "stats": stats(work, started),
    });
    if cat {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    success(data)
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
            let mut seen = std::collections::HashSet::new();
            let lines =
                run_log(s, &q, start, end, limit, newest_first, &mut work, &mut seen).await?;
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
            Ok(success(json!({
                "resultType": "matrix",
                "result": result,
                "stats": stats(work, started),
            })))
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
            Ok(success(json!({
                "resultType": kind,
                "result": result,
                "stats": stats(work, started),
            })))
        }
    }
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

/// `/loki/api/v1/index/volume`: bytes per label set (`targetLabels`, else the selector's
/// label names), largest first, at most `limit`.
pub(crate) async fn index_volume(s: &Arc<Service>, r: Req) -> Result<Response, LokiError> {
    let q = selector(Some(r.params.query()?))?;
    let target: Vec<String> = match r.params.get("targetLabels") {
        Some(t) => t.split(',').map(|x| x.trim().to_owned()).collect(),
        None => q
            .iter()
            .flat_map(|q| q.selector_labels().iter().map(|m| m.name.clone()))
            .collect(),
    };
    let limit = r.params.limit()?;
    let (_, end) = r.params.range(now_ns(), DEFAULT_LABEL_SINCE_NS)?;
    let sel: Vec<LogQuery> = q.into_iter().collect();
    let mut volume: BTreeMap<Labels, u64> = BTreeMap::new();
    each_stream(s, &r, &sel, |row, l| {
        let key: Labels = l
            .into_iter()
            .filter(|(k, _)| target.is_empty() || target.contains(k))
            .collect();
        *volume.entry(key).or_default() += row.entry.payload.len() as u64;
    })
    .await?;
    let mut v: Vec<(Labels, u64)> = volume.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(limit as usize);
    Ok(success(json!({
        "resultType": "vector",
        "result": v.iter().map(|(l, b)| json!({"metric": labels_json(l), "value": [seconds(end - end % NS), b.to_string()]})).collect::<Vec<_>>(),
    })))
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
