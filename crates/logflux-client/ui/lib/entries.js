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
  const stats = new Map();
  const add = (name, meta, value) => {
    let f = stats.get(name);
    if (!f) stats.set(name, (f = { name, meta, counts: new Map(), present: 0 }));
    f.present++;
    f.counts.set(value, (f.counts.get(value) || 0) + 1);
  };
  for (const r of rows) {
    for (const name of FIELDS) if (r.labels[name] !== undefined && r.labels[name] !== '') add(name, false, r.labels[name]);
    for (const [k, v] of Object.entries(r.meta)) if (k !== 'detected_level') add(k, true, v);
  }
  const order = (a, b) => {
    const ia = FIELDS.indexOf(a.name);
    const ib = FIELDS.indexOf(b.name);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
    return a.name < b.name ? -1 : 1;
  };
  return [...stats.values()].sort(order).map((f) => ({
    name: f.name,
    meta: f.meta,
    present: f.present,
    distinct: f.counts.size,
    values: [...f.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top),
  }));
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
