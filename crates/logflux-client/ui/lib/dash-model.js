// Dashboards as data: the panel types, checks a person gets before anything is sent (serve
// validates again and has the last word), new ids, and moving/resizing panels on the 12-column
// grid without letting two panels overlap. No DOM here: the functions are pure so the pages
// stay small and the rules are in one place.

/** Columns of the grid; a panel's `w` is 1..COLUMNS. */
export const COLUMNS = 12;
/** Most rows a panel may span. */
export const MAX_H = 20;
/** The panel types serve accepts, with what a person reads in the type picker. */
export const PANEL_TYPES = [
  { type: 'timeseries', label: 'Time series (metric query over time)' },
  { type: 'table', label: 'Table (instant query, top N)' },
  { type: 'stat', label: 'Stat (instant query, one number)' },
  { type: 'logs', label: 'Logs (log query, newest first)' },
];
/** Default `limit` of the types that have one. */
export const DEFAULT_LIMIT = { table: 10, logs: 20 };
/** A query a new panel of each type starts with, so it shows something at once. */
export const EXAMPLE_QUERY = {
  timeseries: 'sum by (level) (count_over_time({app=~".+"}[$__interval]))',
  table: 'topk(10, sum by (source) (count_over_time({app=~".+"}[$__range])))',
  stat: 'sum(count_over_time({app=~".+"}[$__range]))',
  logs: '{app=~".+"}',
};
/** The relative ranges offered by the pickers. */
export const QUICK_RANGES = ['15m', '1h', '24h', '7d'];
/** The auto-refresh choices (null: off). */
export const REFRESH_CHOICES = [null, '10s', '30s', '1m', '5m'];

const ID_RE = /^[a-z0-9-]{1,64}$/;

/** Whether `id` is a dashboard id serve accepts (it names the file `<id>.json`). */
export function isDashboardId(id) {
  return typeof id === 'string' && ID_RE.test(id);
}

/** An id made from a title: lower case, runs of other characters as one `-`, at most 64. */
export function slugify(title) {
  const s = String(title)
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64)
    .replace(/-+$/, '');
  return s || 'dashboard';
}

/** A panel id not yet used in `panels` (`p1`, `p2`, …). */
export function newPanelId(panels) {
  const used = new Set(panels.map((p) => p.id));
  let n = panels.length + 1;
  while (used.has(`p${n}`)) n += 1;
  return `p${n}`;
}

/** The first free row under every panel. */
export function bottom(panels) {
  return panels.reduce((m, p) => Math.max(m, p.y + p.h), 0);
}

/**
 * What is wrong with a panel as a person typed it (a list of sentences; empty when fine).
 * Serve checks the same and more; this only spares a round trip for the obvious.
 */
export function panelProblems(p) {
  const out = [];
  if (!PANEL_TYPES.some((t) => t.type === p.type)) out.push(`the type must be one of ${PANEL_TYPES.map((t) => t.type).join(', ')}`);
  if (!String(p.title ?? '').trim()) out.push('give the panel a title');
  if (!String(p.query ?? '').trim()) out.push('give the panel a query');
  if (!Number.isInteger(p.w) || p.w < 1 || p.w > COLUMNS) out.push(`the width must be 1 to ${COLUMNS} columns`);
  if (!Number.isInteger(p.h) || p.h < 1 || p.h > MAX_H) out.push(`the height must be 1 to ${MAX_H} rows`);
  if (!Number.isInteger(p.x) || p.x < 0 || p.x + p.w > COLUMNS) out.push(`the panel must fit in the ${COLUMNS} columns (x + width ≤ ${COLUMNS})`);
  if (!Number.isInteger(p.y) || p.y < 0) out.push('the row must be 0 or more');
  if (p.limit !== undefined && (!Number.isInteger(p.limit) || p.limit < 1 || p.limit > 5000)) out.push('the limit must be 1 to 5000');
  return out;
}

/**
 * What is wrong with a file a person picked to import, before it is sent: it must be a JSON
 * object with a title and a list of panels. Serve then validates every field (unknown fields
 * refused, named by their path) and its answer is shown as it is.
 */
export function importProblems(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return ['the file is not a JSON object (a dashboard is {"version":1,"id":…,"title":…,"panels":[…]})'];
  const out = [];
  if (typeof value.title !== 'string' || !value.title.trim()) out.push('the dashboard has no "title"');
  if (!Array.isArray(value.panels)) out.push('the dashboard has no "panels" list');
  return out;
}

const overlaps = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/**
 * Panels laid out again after `movedId` took its new place: every panel it now covers is
 * pushed down below it, and so on for the panels those cover (the moved panel keeps its
 * place). Returns new objects; the order of the list is kept.
 */
export function settle(panels, movedId) {
  const out = panels.map((p) => ({ ...p }));
  const fixed = out.find((p) => p.id === movedId);
  if (!fixed) return out;
  const queue = [fixed];
  let guard = 0;
  while (queue.length && guard < 10000) {
    guard += 1;
    const a = queue.shift();
    for (const b of out) {
      if (b === a || b === fixed || !overlaps(a, b)) continue;
      b.y = a.y + a.h;
      queue.push(b);
    }
  }
  return out;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** Panels with `id` moved by (dx, dy) cells, kept inside the grid, others pushed out of its way. */
export function movePanel(panels, id, dx, dy) {
  const moved = panels.map((p) =>
    p.id === id ? { ...p, x: clamp(p.x + dx, 0, COLUMNS - p.w), y: Math.max(0, p.y + dy) } : p,
  );
  return settle(moved, id);
}

/** Panels with `id` resized by (dw, dh) cells (w 1..12 within the row, h 1..20). */
export function resizePanel(panels, id, dw, dh) {
  return setPanelSize(panels, id, (p) => ({ w: p.w + dw, h: p.h + dh }));
}

/** Panels with `id` given the size `size(p)` returns, clamped to the grid, others pushed down. */
export function setPanelSize(panels, id, size) {
  const sized = panels.map((p) => {
    if (p.id !== id) return p;
    const s = size(p);
    return { ...p, w: clamp(Math.round(s.w), 1, COLUMNS - p.x), h: clamp(Math.round(s.h), 1, MAX_H) };
  });
  return settle(sized, id);
}

/** A range as a person reads it: `last 1h`, or its two instants in local time. */
export function rangeText(range) {
  if (!range) return '';
  if (range.since) return `last ${range.since}`;
  return `${localTime(range.start)} → ${localTime(range.end)}`;
}

/** An instant (RFC 3339 text or ms) as local `YYYY-MM-DD HH:MM:SS`. */
export function localTime(t) {
  const d = new Date(typeof t === 'number' ? t : Date.parse(t));
  if (Number.isNaN(d.getTime())) return String(t);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The value of a `datetime-local` input for an instant (RFC 3339 or ms). */
export function toLocalInput(t) {
  return localTime(t).replace(' ', 'T');
}

/** RFC 3339 (UTC) of a `datetime-local` input's value; null when it is not a time. */
export function fromLocalInput(v) {
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/** A duration of the refresh choices in ms (`10s`, `1m`, …). */
export function refreshMs(text) {
  const m = /^(\d+)([sm])$/.exec(String(text ?? ''));
  if (!m) return null;
  return Number(m[1]) * (m[2] === 'm' ? 60000 : 1000);
}
