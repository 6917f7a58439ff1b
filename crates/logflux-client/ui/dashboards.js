// The dashboards pages: #/dashboards lists the dashboards of the client's config directory
// (one JSON file each, reviewable in git) with create, import, export and delete;
// #/dashboards/<id> shows one as a 12-column grid of panels (time series, table, stat, logs)
// under a shared time range and auto-refresh, and edits it (add, edit, remove, move, resize,
// save, discard). Each panel runs its own query and shows its own error, so one bad query
// breaks nothing else. Entry content is only ever text (Preact sets text nodes, never HTML).
import { html } from './lib/html.js';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from './vendor/hooks.module.js';
import { json, request } from './lib/api.js';
import { resolveRange } from './lib/time.js';
import { Confirm, Modal, download } from './lib/dash-ui.js';
import { TimeChart } from './lib/dash-chart.js';
import { formatValue, labelText, runPanel } from './lib/dash-query.js';
import {
  COLUMNS, DEFAULT_LIMIT, EXAMPLE_QUERY, MAX_H, PANEL_TYPES, QUICK_RANGES, REFRESH_CHOICES,
  bottom, fromLocalInput, importProblems, isDashboardId, localTime, movePanel, newPanelId,
  panelProblems, rangeText, refreshMs, resizePanel, setPanelSize, slugify, toLocalInput,
} from './lib/dash-model.js';

const dashPath = (id) => `/api/ui/dashboards/${encodeURIComponent(id)}`;

/** The dashboard as stored: the text serve answers (what export downloads, byte for byte). */
async function storedText(id) {
  return (await request(dashPath(id))).text();
}

/** Saves a dashboard (serve validates it and answers what is wrong, naming the field). */
async function putDashboard(d) {
  await request(dashPath(d.id), { method: 'PUT', body: d });
}

/** A panel with only the fields of the file format (`limit` only for the types that use it). */
function cleanPanel(p) {
  const out = { id: p.id, title: p.title, type: p.type, query: p.query, x: p.x, y: p.y, w: p.w, h: p.h };
  if (p.type in DEFAULT_LIMIT) out.limit = p.limit ?? DEFAULT_LIMIT[p.type];
  return out;
}

// ---------------------------------------------------------------------------------------
// The list (#/dashboards)

function CreateForm({ existing, onError }) {
  const [title, setTitle] = useState('');
  const [id, setId] = useState('');
  const [idEdited, setIdEdited] = useState(false);
  const shownId = idEdited ? id : slugify(title);
  const submit = async (e) => {
    e.preventDefault();
    if (!title.trim()) return onError('Give the new dashboard a title.');
    if (!isDashboardId(shownId)) return onError(`The id "${shownId}" is not usable: 1 to 64 characters among a–z, 0–9 and "-".`);
    if (existing.some((d) => d.id === shownId)) return onError(`A dashboard with the id "${shownId}" exists already: choose another id.`);
    try {
      await putDashboard({ version: 1, id: shownId, title: title.trim(), range: { since: '1h' }, refresh: null, panels: [] });
      location.hash = `#/dashboards/${shownId}?edit=1`;
    } catch (err) {
      onError(`The dashboard could not be created: ${err.message}`);
    }
  };
  return html`<form class="lf-toolbar" onSubmit=${submit} aria-labelledby="create-title">
    <h2 id="create-title" class="lf-h-inline">New dashboard</h2>
    <label class="lf-field">Title <input name="title" value=${title} onInput=${(e) => setTitle(e.currentTarget.value)} /></label>
    <label class="lf-field">Id (file name) <input name="id" value=${shownId} pattern=${'[a-z0-9\\-]{1,64}'}
      onInput=${(e) => { setIdEdited(true); setId(e.currentTarget.value); }} /></label>
    <button type="submit" class="primary">Create</button>
  </form>`;
}

/** The import dialog: the picked file's dashboard, the id to store it under, then serve's answer. */
function ImportDialog({ value, fileName, existing, onClose, onDone }) {
  const [id, setId] = useState(isDashboardId(value.id) ? value.id : slugify(value.title || fileName.replace(/\.json$/i, '')));
  const [taken, setTaken] = useState(false);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    if (!isDashboardId(id)) return setError(`The id "${id}" is not usable: 1 to 64 characters among a–z, 0–9 and "-".`);
    if (!taken && existing.some((d) => d.id === id)) return setTaken(true);
    try {
      await putDashboard({ ...value, id });
      onDone(id);
    } catch (err) {
      setTaken(false);
      setError(`Serve refused the dashboard: ${err.message}`);
    }
  };
  return html`<${Modal} title="Import dashboard" onClose=${onClose}>
    <form onSubmit=${submit}>
      <p>File <strong>${fileName}</strong>: “${value.title}”, ${value.panels.length} panel${value.panels.length === 1 ? '' : 's'}.</p>
      <label class="lf-field">Store under the id
        <input name="import-id" value=${id} onInput=${(e) => { setId(e.currentTarget.value); setTaken(false); }} />
      </label>
      ${taken && html`<p class="warning" role="alert">A dashboard with the id “${id}” exists. Replace it?</p>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div class="lf-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary">${taken ? 'Replace' : 'Import'}</button>
      </div>
    </form>
  <//>`;
}

function DashboardList() {
  const [list, setList] = useState(null);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState('');
  const [deleting, setDeleting] = useState(null);
  const [importing, setImporting] = useState(null);
  const load = async () => {
    try {
      setList((await json('/api/ui/dashboards')).dashboards);
    } catch (err) {
      setError(`The dashboards could not be listed: ${err.message}`);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const exportOne = async (id) => {
    try {
      download(`${id}.json`, await storedText(id));
      setStatus(`Exported “${id}” as ${id}.json.`);
    } catch (err) {
      setError(`“${id}” could not be exported: ${err.message}`);
    }
  };
  const pick = async (e) => {
    const input = e.currentTarget;
    const file = input.files && input.files[0];
    input.value = '';
    if (!file) return;
    setError(null);
    let value;
    try {
      value = JSON.parse(await file.text());
    } catch (err) {
      return setError(`${file.name} is not JSON: ${err.message}`);
    }
    const problems = importProblems(value);
    if (problems.length) return setError(`${file.name} is not a dashboard: ${problems.join('; ')}.`);
    setImporting({ value, fileName: file.name });
  };
  const remove = async () => {
    const d = deleting;
    setDeleting(null);
    try {
      await request(dashPath(d.id), { method: 'DELETE' });
      setStatus(d.id === 'overview' ? 'Deleted your Overview: the default one is shown again.' : `Deleted “${d.title}”.`);
    } catch (err) {
      setError(`“${d.title}” could not be deleted: ${err.message}`);
    }
    load();
  };
  return html`<section class="lf-page" aria-labelledby="dash-title">
    <h1 id="dash-title">Dashboards</h1>
    <p class="lf-muted">One JSON file each in your config directory (<code>dashboards/ID.json</code>): export one to review it in git, import it on another machine.</p>
    <p class="lf-status" role="status">${status}</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${list === null && !error && html`<p class="loading">Loading…</p>`}
    ${list && html`<table class="lf-table lf-dashlist">
      <thead><tr><th scope="col">Title</th><th scope="col">Id</th><th scope="col">Panels</th><th scope="col"><span class="lf-sr">Actions</span></th></tr></thead>
      <tbody>${list.map((d) => html`<tr key=${d.id} data-id=${d.id}>
        <td><a href=${`#/dashboards/${d.id}`}>${d.title}</a></td>
        <td><code>${d.id}</code></td>
        <td>${d.panels}</td>
        <td class="lf-row-actions">
          <button type="button" aria-label=${`Export ${d.title}`} onClick=${() => exportOne(d.id)}>Export</button>
          <button type="button" class="danger" aria-label=${`Delete ${d.title}`} onClick=${() => setDeleting(d)}>Delete</button>
        </td>
      </tr>`)}</tbody>
    </table>`}
    <${CreateForm} existing=${list || []} onError=${setError} />
    <div class="lf-toolbar">
      <label class="lf-field">Import a dashboard (JSON file)
        <input type="file" name="import" accept=".json,application/json" onChange=${pick} />
      </label>
    </div>
    ${importing && html`<${ImportDialog} ...${importing} existing=${list || []} onClose=${() => setImporting(null)}
      onDone=${(id) => { setImporting(null); setStatus(`Imported as “${id}”.`); load(); }} />`}
    ${deleting && html`<${Confirm} title="Delete dashboard" danger confirmLabel="Delete"
      message=${deleting.id === 'overview'
        ? 'Delete your Overview? The default Overview is shown again afterwards.'
        : `Delete the dashboard “${deleting.title}” (${deleting.id}.json)? This cannot be undone.`}
      onConfirm=${remove} onCancel=${() => setDeleting(null)} />`}
  </section>`;
}

// ---------------------------------------------------------------------------------------
// One dashboard (#/dashboards/<id>)

/** The shared time range: a quick relative range or two instants. */
function RangePicker({ range, onChange }) {
  const custom = !range.since;
  const [open, setOpen] = useState(custom);
  const [from, setFrom] = useState(() => toLocalInput(custom ? range.start : Date.now() - 3600000));
  const [to, setTo] = useState(() => toLocalInput(custom ? range.end : Date.now()));
  const [error, setError] = useState(null);
  const choose = (e) => {
    const v = e.currentTarget.value;
    if (v === 'absolute') return setOpen(true);
    setOpen(false);
    setError(null);
    onChange({ since: v });
  };
  const apply = (e) => {
    e.preventDefault();
    const start = fromLocalInput(from);
    const end = fromLocalInput(to);
    if (!start || !end) return setError('Give both instants.');
    if (Date.parse(end) <= Date.parse(start)) return setError('The range ends before it starts.');
    setError(null);
    onChange({ start, end });
  };
  const known = range.since && QUICK_RANGES.includes(range.since);
  return html`<div class="lf-range">
    <label class="lf-field">Time range
      <select name="range" value=${open ? 'absolute' : range.since} onChange=${choose}>
        ${QUICK_RANGES.map((r) => html`<option value=${r}>Last ${r}</option>`)}
        ${range.since && !known && html`<option value=${range.since}>Last ${range.since}</option>`}
        <option value="absolute">Absolute…</option>
      </select>
    </label>
    ${open && html`<form class="lf-inline" onSubmit=${apply}>
      <label class="lf-field">From <input type="datetime-local" step="1" name="from" value=${from} onInput=${(e) => setFrom(e.currentTarget.value)} /></label>
      <label class="lf-field">To <input type="datetime-local" step="1" name="to" value=${to} onInput=${(e) => setTo(e.currentTarget.value)} /></label>
      <button type="submit">Apply</button>
      ${error && html`<span class="error" role="alert">${error}</span>`}
    </form>`}
  </div>`;
}

function TablePanelBody({ panel, result }) {
  const cols = [];
  for (const r of result.rows) for (const k of Object.keys(r.metric)) if (!cols.includes(k)) cols.push(k);
  if (!result.rows.length) return html`<p class="lf-nodata">No data in this range.</p>`;
  return html`<div class="lf-scroll" tabindex="0" role="region" aria-label=${`${panel.title}: table`}>
    <table class="lf-table lf-compact">
      <thead><tr>${cols.map((c) => html`<th scope="col">${c}</th>`)}<th scope="col" class="num">Value</th></tr></thead>
      <tbody>${result.rows.map((r) => html`<tr>${cols.map((c) => html`<td>${r.metric[c] ?? ''}</td>`)}<td class="num">${formatValue(r.value)}</td></tr>`)}</tbody>
    </table>
  </div>`;
}

function StatPanelBody({ result }) {
  if (!result.rows.length) return html`<p class="lf-nodata">No data in this range.</p>`;
  const first = result.rows[0];
  return html`<div class="lf-stat">
    <span class="lf-stat-value">${formatValue(first.value)}</span>
    ${result.rows.length > 1 && html`<span class="lf-muted">${labelText(first.metric)}: the largest of ${result.rows.length} series</span>`}
  </div>`;
}

function LogsPanelBody({ panel, result, range }) {
  if (!result.entries.length) return html`<p class="lf-nodata">No entries in this range.</p>`;
  const explore = new URLSearchParams({ q: panel.query });
  if (range.since) explore.set('since', range.since);
  else {
    explore.set('start', range.start);
    explore.set('end', range.end);
  }
  return html`<div class="lf-scroll" tabindex="0" role="region" aria-label=${`${panel.title}: entries, newest first`}>
    <ol class="lf-logs">${result.entries.map((e) => html`<li>
      <time datetime=${new Date(Number(e.ns / 1000000n)).toISOString()}>${localTime(Number(e.ns / 1000000n))}</time>
      ${' '}<span class=${`lf-lvl lf-lvl-${e.labels.level}`}>${e.labels.level}</span>
      ${' '}<span class="lf-src">${e.labels.source || e.labels.app}</span>
      ${' '}<span class="lf-line">${e.line}</span>
    </li>`)}</ol>
    <a class="lf-more" href=${`#/explore?${explore.toString()}`}>Open in Explore</a>
  </div>`;
}

/** A panel's query state: runs it again when its query, type, limit, the range or the tick change. */
function usePanelData(panel, span) {
  const [state, setState] = useState({ loading: true, result: null, error: null });
  useEffect(() => {
    const ac = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    runPanel(panel, span, { signal: ac.signal }).then(
      (result) => setState({ loading: false, result, error: null }),
      (err) => {
        if (err.name !== 'AbortError') setState({ loading: false, result: null, error: err.message });
      },
    );
    return () => ac.abort();
  }, [panel.query, panel.type, panel.limit, span]);
  return state;
}

/** The pointer handle at a panel's corner: drag to resize by whole cells (the buttons do the same from the keyboard). */
function ResizeHandle({ panel, onSize }) {
  const down = (e) => {
    const grid = e.currentTarget.closest('.lf-grid');
    const cell = e.currentTarget.closest('.lf-panel');
    if (!grid || !cell) return;
    e.preventDefault();
    const gap = parseFloat(getComputedStyle(grid).columnGap) || 0;
    const colW = (grid.clientWidth - gap * (COLUMNS - 1)) / COLUMNS + gap;
    const rowH = parseFloat(getComputedStyle(grid).gridAutoRows) + (parseFloat(getComputedStyle(grid).rowGap) || 0);
    const x0 = e.clientX;
    const y0 = e.clientY;
    const { w, h } = panel;
    const move = (m) => onSize({ w: w + (m.clientX - x0) / colW, h: h + (m.clientY - y0) / rowH });
    const up = () => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  };
  return html`<div class="lf-resize" aria-hidden="true" title="Drag to resize" onPointerDown=${down}></div>`;
}

function PanelTools({ panel, onEdit, onRemove, onMove, onResize }) {
  // The short sign is hidden from assistive technology, which reads the words instead (the
  // visible text stays out of the accessible name, so no label/content mismatch).
  const b = (label, text, fn) => html`<button type="button" class="lf-tool" title=${label} onClick=${fn}>
    <span aria-hidden="true">${text}</span><span class="lf-sr">${label}: ${panel.title}</span>
  </button>`;
  return html`<div class="lf-tools" role="group" aria-label=${`Layout of ${panel.title}`}>
    ${b('Move left', '←', () => onMove(-1, 0))}${b('Move right', '→', () => onMove(1, 0))}
    ${b('Move up', '↑', () => onMove(0, -1))}${b('Move down', '↓', () => onMove(0, 1))}
    ${b('Narrower', 'W−', () => onResize(-1, 0))}${b('Wider', 'W+', () => onResize(1, 0))}
    ${b('Shorter', 'H−', () => onResize(0, -1))}${b('Taller', 'H+', () => onResize(0, 1))}
    ${b('Edit panel', 'Edit', onEdit)}${b('Remove panel', 'Remove', onRemove)}
  </div>`;
}

function Panel({ panel, span, range, actions }) {
  const editing = Boolean(actions);
  const { loading, result, error } = usePanelData(panel, span);
  const headingId = `panel-${panel.id}-title`;
  let body;
  if (error) body = html`<p class="error lf-panel-error" role="alert">${error}</p>`;
  else if (!result) body = html`<p class="loading">Loading…</p>`;
  else if (panel.type === 'timeseries') {
    body = result.series.length
      ? html`<${TimeChart} data=${result} span=${span} label=${`${panel.title}: ${result.series.length} series over ${rangeText(range)} (step ${result.step}s)`} />`
      : html`<p class="lf-nodata">No data in this range.</p>`;
  } else if (panel.type === 'table') body = html`<${TablePanelBody} panel=${panel} result=${result} />`;
  else if (panel.type === 'stat') body = html`<${StatPanelBody} result=${result} />`;
  else body = html`<${LogsPanelBody} panel=${panel} result=${result} range=${range} />`;
  return html`<section class=${`lf-panel lf-panel-${panel.type}${editing ? ' editing' : ''}`} data-panel=${panel.id}
      aria-labelledby=${headingId} aria-busy=${loading ? 'true' : 'false'}
      style=${{ gridColumn: `${panel.x + 1} / span ${panel.w}`, gridRow: `${panel.y + 1} / span ${panel.h}` }}>
    <header class="lf-panel-head">
      <h2 id=${headingId}>${panel.title}</h2>
      ${loading && result && html`<span class="lf-muted lf-updating">updating…</span>`}
      ${editing && html`<span class="lf-muted lf-geom">${panel.w}×${panel.h} at ${panel.x},${panel.y}</span>`}
    </header>
    ${editing && html`<${PanelTools} panel=${panel} ...${actions} />`}
    ${result && result.warnings.length > 0 && html`<ul class="warning lf-warnings" role="status">${result.warnings.map((w) => html`<li>${w}</li>`)}</ul>`}
    <div class="lf-panel-body">${body}</div>
    ${editing && html`<${ResizeHandle} panel=${panel} onSize=${actions.onSize} />`}
  </section>`;
}

/** The dialog that adds or edits a panel. */
function PanelEditor({ panel, onSave, onClose }) {
  const [p, setP] = useState(() => ({ ...panel, limit: panel.limit ?? DEFAULT_LIMIT[panel.type] }));
  const [problems, setProblems] = useState([]);
  const set = (k, num = false) => (e) => setP({ ...p, [k]: num ? Number(e.currentTarget.value) : e.currentTarget.value });
  const setType = (e) => {
    const type = e.currentTarget.value;
    const query = !p.query.trim() || p.query === EXAMPLE_QUERY[p.type] ? EXAMPLE_QUERY[type] : p.query;
    setP({ ...p, type, query, limit: p.limit ?? DEFAULT_LIMIT[type] });
  };
  const submit = (e) => {
    e.preventDefault();
    const out = cleanPanel({ ...p, title: p.title.trim(), query: p.query.trim(), x: Math.min(p.x, COLUMNS - p.w) });
    const found = panelProblems(out);
    setProblems(found);
    if (!found.length) onSave(out);
  };
  const hasLimit = p.type in DEFAULT_LIMIT;
  return html`<${Modal} title=${panel.isNew ? 'Add panel' : `Edit panel “${panel.title}”`} onClose=${onClose} wide>
    <form class="lf-panel-form" onSubmit=${submit}>
      <label class="lf-field">Type
        <select name="type" value=${p.type} onChange=${setType}>${PANEL_TYPES.map((t) => html`<option value=${t.type}>${t.label}</option>`)}</select>
      </label>
      <label class="lf-field">Title <input name="title" value=${p.title} onInput=${set('title')} /></label>
      <label class="lf-field">Query (LogQL; <code>$__interval</code> is the step, <code>$__range</code> the whole range)
        <textarea name="query" rows="3" spellcheck="false" value=${p.query} onInput=${set('query')}></textarea>
      </label>
      <div class="lf-row">
        <label class="lf-field">Width (columns, 1–${COLUMNS}) <input type="number" name="w" min="1" max=${COLUMNS} value=${p.w} onInput=${set('w', true)} /></label>
        <label class="lf-field">Height (rows, 1–${MAX_H}) <input type="number" name="h" min="1" max=${MAX_H} value=${p.h} onInput=${set('h', true)} /></label>
        ${hasLimit && html`<label class="lf-field">${p.type === 'table' ? 'Rows shown (top N)' : 'Entries shown'} <input type="number" name="limit" min="1" max="5000" value=${p.limit} onInput=${set('limit', true)} /></label>`}
      </div>
      ${problems.length > 0 && html`<ul class="error" role="alert">${problems.map((x) => html`<li>${x}</li>`)}</ul>`}
      <div class="lf-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary">${panel.isNew ? 'Add' : 'Apply'}</button>
      </div>
    </form>
  <//>`;
}

/** The range and refresh of the address (`?since=1h`, `?start=…&end=…`, `&refresh=30s`), else null. */
function routeView(params) {
  let range = null;
  if (params.get('since')) range = { since: params.get('since') };
  else if (params.get('start') && params.get('end')) range = { start: params.get('start'), end: params.get('end') };
  const r = params.get('refresh');
  return { range, refresh: r === null ? undefined : r === 'off' ? null : r };
}

function DashboardView({ id, params }) {
  const [dash, setDash] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [draft, setDraft] = useState(null);
  const [range, setRange] = useState(null);
  const [refresh, setRefresh] = useState(null);
  const [tick, setTick] = useState(0);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState('');
  const [editor, setEditor] = useState(null);
  const [removing, setRemoving] = useState(null);
  const [discarding, setDiscarding] = useState(false);
  const wantEdit = useRef(params.get('edit') === '1');

  useEffect(() => {
    json(dashPath(id)).then(
      (d) => {
        const fromRoute = routeView(params);
        setDash(d);
        setRange(fromRoute.range || d.range || { since: '1h' });
        setRefresh(fromRoute.refresh !== undefined ? fromRoute.refresh : d.refresh ?? null);
        if (wantEdit.current) setDraft(structuredClone(d));
      },
      (err) => setLoadError(err.status === 404 ? `There is no dashboard "${id}".` : `The dashboard could not be read: ${err.message}`),
    );
  }, [id]);

  // The address follows the range and refresh, so a view can be bookmarked and reloaded.
  // A layout effect: the address changes before the page is painted, so a reload right after
  // a save (the Edit button shown) never reopens the dashboard in edit mode from `edit=1`.
  useLayoutEffect(() => {
    if (!range) return;
    const p = new URLSearchParams(range.since ? { since: range.since } : { start: range.start, end: range.end });
    if (refresh) p.set('refresh', refresh);
    if (draft) p.set('edit', '1');
    history.replaceState(null, '', `#/dashboards/${id}?${p.toString()}`);
  }, [range, refresh, draft !== null]);

  useEffect(() => {
    const ms = refreshMs(refresh);
    if (!ms) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), ms);
    return () => clearInterval(t);
  }, [refresh]);

  const span = useMemo(() => {
    if (!range) return null;
    try {
      return resolveRange(range);
    } catch {
      return resolveRange({ since: '1h' });
    }
  }, [range, tick]);

  if (loadError) return html`<section class="lf-page"><h1>Dashboard</h1><p class="error" role="alert">${loadError}</p><p><a href="#/dashboards">All dashboards</a></p></section>`;
  if (!dash || !span) return html`<p class="loading">Loading dashboard…</p>`;

  const shown = draft || dash;
  const editing = draft !== null;
  const changed = editing && JSON.stringify(draft) !== JSON.stringify(dash);
  const updatePanels = (f) => setDraft((d) => ({ ...d, panels: f(d.panels) }));

  const save = async () => {
    const out = { ...draft, version: 1, id, range, refresh, panels: draft.panels.map(cleanPanel) };
    try {
      await putDashboard(out);
      setDash(out);
      setDraft(null);
      setError(null);
      setStatus('Saved.');
    } catch (err) {
      setError(`Not saved: ${err.message}`);
    }
  };
  const exportIt = async () => {
    try {
      download(`${id}.json`, await storedText(id));
      setStatus(`Exported as ${id}.json (the stored version${changed ? ', without the changes not saved' : ''}).`);
    } catch (err) {
      setError(`Not exported: ${err.message}`);
    }
  };
  const addPanel = () =>
    setEditor({ isNew: true, id: newPanelId(draft.panels), title: 'New panel', type: 'timeseries', query: EXAMPLE_QUERY.timeseries, x: 0, y: bottom(draft.panels), w: 6, h: 6 });
  const applyPanel = (p) => {
    setEditor(null);
    updatePanels((ps) => movePanel(ps.some((q) => q.id === p.id) ? ps.map((q) => (q.id === p.id ? p : q)) : [...ps, p], p.id, 0, 0));
  };

  return html`<section class="lf-page lf-dashboard" aria-labelledby="dashboard-title">
    <div class="lf-dash-head">
      ${editing
        ? html`<label class="lf-field lf-title-edit">Dashboard title <input name="dashboard-title" value=${draft.title} onInput=${(e) => setDraft({ ...draft, title: e.currentTarget.value })} /></label>
            <h1 id="dashboard-title" class="lf-sr">Editing ${draft.title}</h1>`
        : html`<h1 id="dashboard-title">${dash.title}</h1>`}
      <div class="lf-toolbar">
        <${RangePicker} range=${range} onChange=${setRange} />
        <label class="lf-field">Auto-refresh
          <select name="refresh" value=${refresh ?? 'off'} onChange=${(e) => setRefresh(e.currentTarget.value === 'off' ? null : e.currentTarget.value)}>
            ${REFRESH_CHOICES.map((r) => html`<option value=${r ?? 'off'}>${r ? `Every ${r}` : 'Off'}</option>`)}
          </select>
        </label>
        <button type="button" onClick=${() => setTick((n) => n + 1)}>Refresh now</button>
        ${editing
          ? html`<button type="button" onClick=${addPanel}>Add panel</button>
              <button type="button" class="primary" onClick=${save}>Save dashboard</button>
              <button type="button" onClick=${() => (changed ? setDiscarding(true) : setDraft(null))}>Discard changes</button>`
          : html`<button type="button" onClick=${() => { setStatus(''); setDraft(structuredClone(dash)); }}>Edit</button>
              <button type="button" onClick=${exportIt}>Export JSON</button>`}
      </div>
    </div>
    <p class="lf-muted lf-range-text">${rangeText(range)}: ${localTime(span[0])} → ${localTime(span[1])}${refresh ? `, refreshed every ${refresh}` : ''}${editing ? ' · editing: the range and refresh shown are saved with the dashboard' : ''}</p>
    <p class="lf-status" role="status">${status}</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${shown.panels.length === 0 && html`<p class="lf-empty">${editing ? 'No panel yet: “Add panel” adds one.' : 'This dashboard has no panel yet: “Edit”, then “Add panel”.'}</p>`}
    <div class="lf-grid">
      ${shown.panels.map((p) => html`<${Panel} key=${p.id} panel=${p} span=${span} range=${range}
        actions=${editing ? {
          onEdit: () => setEditor({ ...p }),
          onRemove: () => setRemoving(p),
          onMove: (dx, dy) => updatePanels((ps) => movePanel(ps, p.id, dx, dy)),
          onResize: (dw, dh) => updatePanels((ps) => resizePanel(ps, p.id, dw, dh)),
          onSize: (size) => updatePanels((ps) => setPanelSize(ps, p.id, () => size)),
        } : null} />`)}
    </div>
    ${editor && html`<${PanelEditor} panel=${editor} onSave=${applyPanel} onClose=${() => setEditor(null)} />`}
    ${removing && html`<${Confirm} title="Remove panel" danger confirmLabel="Remove"
      message=${`Remove the panel “${removing.title}”? (Nothing is stored until you save the dashboard.)`}
      onConfirm=${() => { updatePanels((ps) => ps.filter((q) => q.id !== removing.id)); setRemoving(null); }}
      onCancel=${() => setRemoving(null)} />`}
    ${discarding && html`<${Confirm} title="Discard changes" danger confirmLabel="Discard"
      message="Discard the changes made since you started editing?"
      onConfirm=${() => { setDraft(null); setDiscarding(false); setStatus('Changes discarded.'); }}
      onCancel=${() => setDiscarding(false)} />`}
  </section>`;
}

/** The entry point the router calls for #/dashboards and #/dashboards/<id>. */
export function DashboardsPage({ route }) {
  const id = route.path.replace(/^\/dashboards\/?/, '').split('/')[0];
  if (!id) return html`<${DashboardList} />`;
  return html`<${DashboardView} key=${id} id=${decodeURIComponent(id)} params=${route.params} />`;
}
