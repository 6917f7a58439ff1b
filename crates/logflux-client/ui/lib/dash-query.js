// A dashboard panel's query: `$__interval` and `$__range` replaced (serve substitutes only
// `$__auto`), sent to serve's Loki API, and its answer turned into what the panel draws.
// Errors are serve's own message (Loki's plain-text 400 such as `parse error at line 1, col 5: …`).
import { get, queryRange } from './api.js';
import { nsOfMs, stepFor } from './time.js';
import { DEFAULT_LIMIT } from './dash-model.js';

/** The query with `$__interval` → the step and `$__range` → the whole range, both in seconds (`60s`). */
export function substitute(query, stepSeconds, rangeSeconds) {
  return query.replaceAll('$__interval', `${stepSeconds}s`).replaceAll('$__range', `${rangeSeconds}s`);
}

/** A series' labels as text: the one label's value, else `{a="1", b="2"}`; `{}` for none. */
export function labelText(metric) {
  const keys = Object.keys(metric || {}).sort();
  if (keys.length === 1) return String(metric[keys[0]]);
  return `{${keys.map((k) => `${k}="${metric[k]}"`).join(', ')}}`;
}

/** A sample value as text: integers whole, others to 4 significant digits. */
export function formatValue(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(4)));
}

/**
 * Whether a query counts entries or bytes (`count_over_time`, `rate`, `bytes_over_time`,
 * `bytes_rate`): a step without a point then means none were there, so it is drawn as 0.
 * Other queries (averages, quantiles, unwrapped values) keep their gaps: there is no value.
 */
export function countsEntries(query) {
  return /\b(count_over_time|rate|bytes_over_time|bytes_rate)\s*\(/.test(query) && !/\b(avg|min|max|stddev|stdvar|quantile)_over_time\b/.test(query);
}

/**
 * A matrix as uPlot data: one x array (seconds, sorted) and per series its label and values.
 * With `grid` ({step, start, end} in seconds) the x array is every step of the range on the
 * answer's own alignment and missing points are `fill` (0 for counts, else null: a gap).
 */
export function matrixSeries(result, grid = null, fill = null) {
  const key = (t) => Math.round(Number(t) * 1000);
  let xs = [...new Set(result.flatMap((s) => s.values.map((v) => key(v[0]))))].sort((a, b) => a - b);
  if (grid && xs.length && grid.step > 0) {
    const stepMs = grid.step * 1000;
    const first = xs[0] - Math.floor((xs[0] - grid.start * 1000) / stepMs) * stepMs;
    const steps = Math.floor((grid.end * 1000 - first) / stepMs) + 1;
    if (steps > 0 && steps <= 11000) {
      const all = new Set(xs);
      for (let i = 0; i < steps; i += 1) all.add(first + i * stepMs);
      xs = [...all].sort((a, b) => a - b);
    }
  }
  const at = new Map(xs.map((x, i) => [x, i]));
  const series = result.map((s) => {
    const ys = new Array(xs.length).fill(fill);
    for (const [t, v] of s.values) ys[at.get(key(t))] = Number(v);
    return { label: labelText(s.metric), metric: s.metric, values: ys };
  });
  series.sort((a, b) => a.label.localeCompare(b.label));
  return { xs: xs.map((x) => x / 1000), series };
}

/** An instant answer (vector or scalar) as rows `{metric, value}`, largest value first, at most `limit`. */
export function vectorRows(data, limit) {
  let rows;
  if (data.resultType === 'scalar') rows = [{ metric: {}, value: Number(data.result[1]) }];
  else if (data.resultType === 'vector') rows = data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
  else throw new Error(`an instant query answered "${data.resultType}"; a table or stat panel needs a metric query`);
  rows.sort((a, b) => b.value - a.value || labelText(a.metric).localeCompare(labelText(b.metric)));
  return limit ? rows.slice(0, limit) : rows;
}

/** The streams of a log answer as entries `{ns (BigInt), line, labels, metadata}`, newest first, at most `limit`. */
export function logEntries(result, limit) {
  const out = [];
  for (const s of result) {
    for (const v of s.values) {
      const extra = v[2] || {};
      out.push({ ns: BigInt(v[0]), line: v[1], labels: s.stream || {}, metadata: { ...(extra.structuredMetadata || {}), ...(extra.parsed || {}) } });
    }
  }
  out.sort((a, b) => (a.ns < b.ns ? 1 : a.ns > b.ns ? -1 : 0));
  return out.slice(0, limit);
}

/**
 * Runs a panel's query over [startMs, endMs] and answers `{query, warnings, …}` with, by type:
 * timeseries `{xs, series}`, table `{rows}`, stat `{rows}` (the first row is the number), logs
 * `{entries}`. Throws serve's error (ApiError) or an Error saying what the panel needs.
 */
export async function runPanel(panel, [startMs, endMs], { signal } = {}) {
  const rangeSeconds = Math.max(1, Math.round((endMs - startMs) / 1000));
  const step = stepFor(startMs, endMs);
  const query = substitute(panel.query, step, rangeSeconds);
  const start = nsOfMs(startMs).toString();
  const end = nsOfMs(endMs).toString();
  const limit = panel.limit ?? DEFAULT_LIMIT[panel.type];
  let answer;
  switch (panel.type) {
    case 'timeseries': {
      answer = await queryRange({ query, start, end, step }, { signal });
      if (answer.data.resultType !== 'matrix') {
        throw new Error('a time series panel needs a metric query, such as sum by (level) (count_over_time({app=~".+"}[$__interval]))');
      }
      const grid = { step, start: startMs / 1000, end: endMs / 1000 };
      const fill = countsEntries(query) ? 0 : null;
      return { query, step, warnings: answer.warnings || [], ...matrixSeries(answer.data.result, grid, fill) };
    }
    case 'table':
    case 'stat': {
      answer = await get('/loki/api/v1/query', { query, time: end }, { signal });
      return { query, warnings: answer.warnings || [], rows: vectorRows(answer.data, panel.type === 'table' ? limit : 0) };
    }
    case 'logs': {
      answer = await queryRange({ query, start, end, limit, direction: 'backward' }, { signal });
      if (answer.data.resultType !== 'streams') {
        throw new Error('a logs panel needs a log query, such as {app=~".+", level="error"} |= "timeout"');
      }
      return { query, warnings: answer.warnings || [], entries: logEntries(answer.data.result, limit) };
    }
    default:
      throw new Error(`unknown panel type "${panel.type}"`);
  }
}
