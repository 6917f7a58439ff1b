// Entries as the explore page holds them: one row per entry of serve's streams, newest first.

/**
 * The rows of a `streams` result (labels categorized): `{key, ts, ms, line, labels, meta,
 * parsed}`, `ts` the ns timestamp as a string, `meta` the structured metadata.
 */
export function rowsOf(streams) {
  const rows = [];
  for (const s of streams || []) {
    for (const v of s.values) {
      const [ts, line, extra] = v;
      const meta = { ...(extra?.structuredMetadata || {}) };
      rows.push({
        ts,
        ms: Number(BigInt(ts) / 1000000n),
        line,
        labels: s.stream || {},
        meta,
        parsed: extra?.parsed || {},
      });
    }
  }
  rows.sort(newestFirst);
  return rows;
}

/** Compares two rows' ns timestamps (decimal strings), the newer first. */
export function newestFirst(a, b) {
  if (a.ts.length !== b.ts.length) return b.ts.length - a.ts.length;
  return a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0;
}

/** A key telling an entry from another (for removing the ones two pages share). */
export function entryKey(r) {
  return `${r.ts}\u0000${r.labels.source}\u0000${r.line}`;
}

/** The fields the sidebar lists, in this order, then the metadata keys by name. */
const FIELDS = ['level', 'source', 'app', 'host', 'type'];

/**
 * The sidebar's fields over `rows`: `[{name, meta, values: [[value, count]…] (top `top`),
 * distinct, present}]`. `meta` tells metadata (filtered after the selector) from stream labels.
 */
export function fieldStats(rows, top = 5) {
  const c = new FieldCounter();
  c.update(rows);
  return c.stats(top);
}

/**
 * The sidebar's field counts kept up to date as the list grows: a search appends a page at a
 * time and the live tail puts entries in front (dropping the oldest past its cap), so `update`
 * counts only the rows that came or went instead of all of them again (100 000 rows take about
 * 50 ms to count, a frame's budget three times over, once per page of 5 000).
 */
export class FieldCounter {
  constructor() {
    this.fields = new Map();
    this.rows = [];
  }

  /** Counts `rows`, the list as it is now; returns this. */
  update(rows) {
    const prev = this.rows;
    this.rows = rows;
    if (prev === rows) return this;
    if (prev.length && rows.length >= prev.length && rows[0] === prev[0] && rows[prev.length - 1] === prev[prev.length - 1]) {
      // Appended (the next page of a search).
      for (let i = prev.length; i < rows.length; i++) this.count(rows[i], 1);
      return this;
    }
    // Put in front, the oldest possibly dropped (the tail): `rows` is `added ++ prev[..kept]`.
    const added = prev.length ? rows.indexOf(prev[0]) : -1;
    const kept = rows.length - added;
    if (added > 0 && kept <= prev.length && rows[rows.length - 1] === prev[kept - 1]) {
      for (let i = 0; i < added; i++) this.count(rows[i], 1);
      for (let i = kept; i < prev.length; i++) this.count(prev[i], -1);
      return this;
    }
    this.fields = new Map();
    for (const r of rows) this.count(r, 1);
    return this;
  }

  /** Adds (`by` 1) or takes away (-1) a row's fields. */
  count(r, by) {
    for (const name of FIELDS) {
      const v = r.labels[name];
      if (v !== undefined && v !== '') this.bump(name, false, v, by);
    }
    for (const k in r.meta) if (k !== 'detected_level') this.bump(k, true, r.meta[k], by);
  }

  bump(name, meta, value, by) {
    let f = this.fields.get(name);
    if (!f) this.fields.set(name, (f = { name, meta, counts: new Map(), present: 0 }));
    f.present += by;
    const n = (f.counts.get(value) || 0) + by;
    if (n > 0) f.counts.set(value, n);
    else f.counts.delete(value);
    if (f.present <= 0) this.fields.delete(name);
  }

  /** The fields as `fieldStats` returns them. */
  stats(top = 5) {
    const order = (a, b) => {
      const ia = FIELDS.indexOf(a.name);
      const ib = FIELDS.indexOf(b.name);
      if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      return a.name < b.name ? -1 : 1;
    };
    return [...this.fields.values()].sort(order).map((f) => ({
      name: f.name,
      meta: f.meta,
      present: f.present,
      distinct: f.counts.size,
      values: topValues(f.counts, top),
    }));
  }
}

/** The `top` most frequent values, ties by value; without sorting every distinct value (ids). */
function topValues(counts, top) {
  const before = (a, b) => a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]);
  const best = [];
  for (const e of counts) {
    if (best.length === top && !before(e, best[top - 1])) continue;
    let i = Math.min(best.length, top - 1);
    best[i] = e;
    while (i > 0 && before(best[i], best[i - 1])) {
      [best[i], best[i - 1]] = [best[i - 1], best[i]];
      i--;
    }
  }
  return best;
}

/** The line as pretty JSON when it is a JSON object or array, else null. */
export function prettyJson(line) {
  const t = line.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

/** An entry as one JSON object (copied by "Copy"): time, labels, metadata, payload. */
export function entryJson(r) {
  return JSON.stringify({ timestamp: new Date(r.ms).toISOString(), ts_ns: r.ts, ...r.labels, metadata: r.meta, payload: r.line });
}

/**
 * `text` split into pieces, each `[piece, isMatch]`, at every occurrence of any of `words`
 * (case-sensitive, as LogQL's `|=`). The caller renders matches as `<mark>` elements.
 */
export function splitMatches(text, words) {
  const ws = words.filter((w) => w);
  if (!ws.length) return [[text, false]];
  const out = [];
  let i = 0;
  let start = 0;
  while (i < text.length) {
    let hit = null;
    for (const w of ws) if (text.startsWith(w, i) && (!hit || w.length > hit.length)) hit = w;
    if (hit) {
      if (i > start) out.push([text.slice(start, i), false]);
      out.push([hit, true]);
      i += hit.length;
      start = i;
    } else i++;
  }
  if (start < text.length) out.push([text.slice(start), false]);
  return out;
}
