// The explore page: a query bar (plain words or LogQL, with completion), a time picker, the
// histogram of counts by level (drag to zoom), the field sidebar (click a value to filter),
// the virtualised result list with an entry's details, the live tail and exports.
//
// Its state is the address: #/explore?q=TEXT&since=1h, or &start=T&end=T where T is RFC 3339
// (what the page writes) or Unix milliseconds. Content is only ever put into the page as text
// (Preact text nodes and <mark> elements): never as HTML.
import { html, Component } from './lib/html.js';
import { useCallback, useEffect, useMemo, useRef, useState } from './vendor/hooks.module.js';
import { get, queryRange } from './lib/api.js';
import { nsOfMs, resolveRange, stepFor } from './lib/time.js';
import { addFilter, completionContext, isLogql, searchedWords, toLogql } from './lib/logql.js';
import { drawHistogram, downloadPng, histogramData } from './lib/histogram.js';
import { entryJson, entryKey, FieldCounter, newestFirst, prettyJson, rowsOf, splitMatches } from './lib/entries.js';
import { navigate } from './lib/nav.js';
import { SaveSearchButton } from './saved.js';

/** Height of a row of the result list, in px (fixed: rows are positioned by index). */
const ROW_H = 24;
/** Most entries serve answers per request: bigger results are read in pages. */
const PAGE = 5000;
const RELATIVE = ['15m', '1h', '24h', '7d'];
const LIMITS = [1000, 5000, 20000, 100000];
const RECENT_KEY = 'logflux.recentQueries';

/** The range the address gives: `{since}` or `{start, end}` (ms or RFC 3339), default 1 h. */
export function rangeOf(params) {
  const start = params.get('start');
  const end = params.get('end');
  if (start && end) {
    const t = (v) => (/^\d+$/.test(v) ? Number(v) : v);
    return { start: t(start), end: t(end) };
  }
  return { since: params.get('since') || '1h' };
}

/** Address parameters of a range (absolute ends as RFC 3339). */
function rangeParams(range) {
  if (range.since) return { since: range.since };
  const iso = (v) => new Date(typeof v === 'number' ? v : Date.parse(v)).toISOString();
  return { start: iso(range.start), end: iso(range.end) };
}

function recentQueries() {
  try {
    const v = JSON.parse(localStorage.getItem(RECENT_KEY) || '[]');
    return Array.isArray(v) ? v.filter((s) => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

function remember(text) {
  if (!text.trim()) return;
  const list = [text, ...recentQueries().filter((q) => q !== text)].slice(0, 20);
  try {
    localStorage.setItem(RECENT_KEY, JSON.stringify(list));
  } catch {
    // storage full or disabled: recent queries are a convenience
  }
}

/** Local time of a row, to the millisecond. */
function timeText(ms, withDate) {
  const d = new Date(ms);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const t = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${t}` : t;
}

/** `datetime-local` value of ms (local time). */
function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

/**
 * Reads a log query's entries, newest first, in pages of at most PAGE, up to `limit`.
 * Calls `onPage(rows so far, warnings)` after each page.
 */
async function readEntries(logql, startMs, endMs, limit, signal, onPage) {
  let rows = [];
  const warnings = new Set();
  let end = nsOfMs(endMs);
  const start = nsOfMs(startMs);
  const seen = new Set();
  while (rows.length < limit) {
    // The entries already read at the page's end instant come again: asked for on top, so the
    // last page still fills the limit (without them, 100 000 stopped at 99 999).
    const want = Math.min(PAGE, limit - rows.length + seen.size);
    const r = await queryRange({ query: logql, start: String(start), end: String(end), limit: want, direction: 'backward' }, { signal });
    for (const w of [...(r.warnings || []), ...(r.data?.warnings || [])]) warnings.add(w);
    if (r.data?.resultType !== 'streams') throw new Error('this is a metric query: the explore page lists entries (use a log query, or a dashboard panel for metrics)');
    const got = rowsOf(r.data.result);
    const page = got.filter((x) => !seen.has(entryKey(x))).slice(0, limit - rows.length);
    if (!page.length) break;
    rows = rows.concat(page);
    onPage(rows, [...warnings]);
    // Fewer than asked: the range has no more (the count before the overlap is taken out).
    if (got.length < want) break;
    // The next page ends at the oldest entry read (inclusive, so entries sharing its ns are not
    // lost); the ones already read at that instant are skipped.
    const oldest = rows[rows.length - 1].ts;
    seen.clear();
    for (let i = rows.length - 1; i >= 0 && rows[i].ts === oldest; i--) seen.add(entryKey(rows[i]));
    end = BigInt(oldest) + 1n;
  }
  return { rows, warnings: [...warnings] };
}

export function ExplorePage({ route }) {
  const q = route.params.get('q') || '';
  const range = rangeOf(route.params);
  const rangeKey = JSON.stringify(range);
  const [text, setText] = useState(q);
  const [runId, setRunId] = useState(0);
  const [limit, setLimit] = useState(1000);
  const [rows, setRows] = useState([]);
  const [state, setState] = useState({ loading: false, error: null, warnings: [], took: null });
  const [hist, setHist] = useState(null);
  const [histError, setHistError] = useState(null);
  const [span, setSpan] = useState(null); // [startMs, endMs] of the last search
  const [selected, setSelected] = useState(-1);
  const [expanded, setExpanded] = useState(null); // the row shown in the details panel
  const [tail, setTail] = useState({ on: false, paused: false, rate: 0, buffered: 0, error: null });
  const inputRef = useRef();
  const listRef = useRef();
  const logql = toLogql(q);
  const words = useMemo(() => searchedWords(logql), [logql]);

  useEffect(() => setText(q), [q]);

  // The search: entries and histogram, again whenever the address or a run asks for it.
  useEffect(() => {
    if (tail.on) return undefined;
    let r;
    try {
      r = resolveRange(range);
    } catch (e) {
      setState({ loading: false, error: e.message, warnings: [], took: null });
      return undefined;
    }
    const [startMs, endMs] = r;
    setSpan([startMs, endMs]);
    remember(q);
    const ctl = new AbortController();
    const t0 = performance.now();
    // What the status line's count is for (tests wait until it is the search asked for).
    const searchKey = `${logql}|${rangeKey}|${limit}`;
    setState((s) => ({ ...s, loading: true, error: null }));
    setSelected(-1);
    setExpanded(null);
    readEntries(logql, startMs, endMs, limit, ctl.signal, (got, warnings) => {
      setRows(got);
      setState({ loading: true, error: null, warnings, took: null });
    })
      .then(({ rows: got, warnings }) => {
        setRows(got);
        setState({ loading: false, error: null, warnings, took: Math.round(performance.now() - t0), for: searchKey });
        window.__logfluxTimings = { ...(window.__logfluxTimings || {}), results: performance.now() };
      })
      .catch((e) => {
        if (e.name === 'AbortError') return;
        setRows([]);
        setState({ loading: false, error: e.message, warnings: [], took: null });
      });
    const step = stepFor(startMs, endMs, 100);
    const metric = `sum by (level) (count_over_time(${logql} [${step}s]))`;
    setHistError(null);
    queryRange({ query: metric, start: String(nsOfMs(startMs)), end: String(nsOfMs(endMs)), step: String(step) }, { signal: ctl.signal })
      .then((m) => {
        const ws = [...(m.warnings || []), ...(m.data?.warnings || [])];
        if (ws.length) setState((s) => ({ ...s, warnings: [...new Set([...s.warnings, ...ws])] }));
        setHist({ ...histogramData(m.data.result, startMs, endMs, step), step, startMs, endMs });
      })
      .catch((e) => {
        if (e.name === 'AbortError') return;
        setHist(null);
        setHistError(e.message);
      });
    return () => ctl.abort();
  }, [logql, rangeKey, runId, limit, tail.on]);

  const run = useCallback(
    (nextText = text, nextRange = range) => {
      remember(nextText);
      if (!navigate('/explore', { q: nextText, ...rangeParams(nextRange) })) setRunId((n) => n + 1);
    },
    [text, rangeKey],
  );

  const filter = useCallback((key, value, op) => run(addFilter(q, key, value, op)), [q, run]);

  const zoom = useCallback((a, b) => run(q, { start: a, end: b }), [q, run]);

  const showContext = useCallback(
    (r) => {
      const sel = `{app=${JSON.stringify(r.labels.app || '')}, source=${JSON.stringify(r.labels.source || '')}}`;
      setText(sel);
      run(sel, { start: r.ms - 5 * 60000, end: r.ms + 5 * 60000 });
    },
    [run],
  );

  // Keyboard: / focuses the query, Esc closes and blurs, j/k move the selection, Enter opens.
  // The handler reads the latest rows and selection through a ref (keys come faster than renders).
  const keyState = useRef();
  keyState.current = { rows, selected };
  useEffect(() => {
    const onKey = (e) => {
      const inField = e.target.closest?.('input, textarea, select');
      if (e.key === 'Escape') {
        if (inField) e.target.blur();
        setExpanded(null);
        return;
      }
      if (inField || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '/') {
        e.preventDefault();
        inputRef.current?.focus();
      } else if (e.key === 'j' || e.key === 'k') {
        e.preventDefault();
        const { rows: rs, selected: i } = keyState.current;
        const n = e.key === 'j' ? Math.min(rs.length - 1, i + 1) : Math.max(0, i - 1);
        keyState.current.selected = n;
        setSelected(n);
        scrollToRow(listRef.current, n);
      } else if (e.key === 'Enter' && !e.target.closest?.('button, a')) {
        const { rows: rs, selected: i } = keyState.current;
        if (i < 0 || !rs[i]) return;
        e.preventDefault();
        setExpanded(rs[i]);
      }
    };
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, []);

  // Counted as the rows come (a page, or the tail's new entries), not all again each time.
  const counter = useRef();
  if (!counter.current) counter.current = new FieldCounter();
  const fields = useMemo(() => counter.current.update(rows).stats(), [rows]);

  return html`<div class="explore">
    <h1 class="visually-hidden">Explore</h1>
    <${QueryBar} text=${text} setText=${setText} run=${run} inputRef=${inputRef} span=${span} />
    ${!isLogql(text) && text.trim()
      ? html`<p class="logql-shown">LogQL: <code data-testid="logql">${toLogql(text)}</code></p>`
      : null}
    <div class="toolbar">
      <${TimePicker} range=${range} span=${span} onRange=${(r) => run(text, r)} />
      <label class="limit">Entries
        <select value=${limit} onChange=${(e) => setLimit(Number(e.target.value))}>
          ${LIMITS.map((n) => html`<option value=${n}>${n.toLocaleString('en')}</option>`)}
        </select>
      </label>
      <${TailControls} tail=${tail} setTail=${setTail} />
      <${Exports} logql=${logql} span=${span} />
      <${SaveSearchButton} query=${q} range=${range} />
    </div>
    ${state.warnings.length
      ? html`<div class="warning" role="alert" data-testid="warnings">
          <strong>Some records failed their integrity check and were left out:</strong>
          <ul>${state.warnings.map((w) => html`<li>${w}</li>`)}</ul>
        </div>`
      : null}
    ${state.error ? html`<div class="error" role="alert">${state.error}</div>` : null}
    <${Histogram} hist=${hist} error=${histError} onZoom=${zoom} />
    <div class="explore-body">
      <${Fields} fields=${fields} total=${rows.length} onFilter=${filter} />
      <section class="results-pane" aria-label="Results">
        <p class="status" aria-live="polite" data-testid="status" data-for=${state.for || ''} data-want=${`${logql}|${rangeKey}|${limit}`}>
          ${state.loading ? 'Searching… ' : ''}${rows.length.toLocaleString('en')} ${rows.length === 1 ? 'entry' : 'entries'}${
            state.took !== null ? ` in ${state.took} ms` : ''
          }${rows.length >= limit && !tail.on ? ` (the newest ${limit.toLocaleString('en')}: narrow the range or raise the limit)` : ''}
        </p>
        <${ResultList} rows=${rows} words=${words} selected=${selected} setSelected=${setSelected}
          onOpen=${setExpanded} expanded=${expanded} listRef=${listRef} />
        ${expanded ? html`<${Details} row=${expanded} onClose=${() => setExpanded(null)} onFilter=${filter} onContext=${showContext} />` : null}
      </section>
    </div>
    ${tail.on ? html`<${Tail} logql=${logql} tail=${tail} setTail=${setTail} setRows=${setRows} listRef=${listRef} />` : null}
  </div>`;
}

function scrollToRow(list, i) {
  if (!list || i < 0) return;
  const top = i * ROW_H;
  if (top < list.scrollTop) list.scrollTop = top;
  else if (top + ROW_H > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW_H - list.clientHeight;
}

/** The query input with completion of label names, label values and recent queries. */
function QueryBar({ text, setText, run, inputRef, span }) {
  const [options, setOptions] = useState([]);
  const [active, setActive] = useState(-1);
  const ctx = useRef({ kind: 'none' });
  const names = useRef(null);
  const values = useRef(new Map());

  const rangeQs = () => (span ? { start: String(nsOfMs(span[0])), end: String(nsOfMs(span[1])) } : {});

  const seq = useRef(0);
  const suggest = async (value, caret) => {
    const mine = ++seq.current; // a slower look-up for an earlier keystroke must not win
    const before = value.slice(0, caret);
    const c = completionContext(before);
    ctx.current = { ...c, caret };
    let list = [];
    try {
      if (c.kind === 'name') {
        if (!names.current) names.current = (await get('/loki/api/v1/labels', rangeQs())).data || [];
        list = names.current.filter((n) => n.startsWith(c.prefix) && !n.startsWith('__'));
      } else if (c.kind === 'value') {
        if (!values.current.has(c.label)) {
          values.current.set(c.label, (await get(`/loki/api/v1/label/${encodeURIComponent(c.label)}/values`, rangeQs())).data || []);
        }
        list = values.current.get(c.label).filter((v) => v.startsWith(c.prefix));
      } else if (c.kind === 'recent') {
        list = recentQueries().filter((r) => r !== value && r.includes(c.prefix));
      }
    } catch {
      list = []; // completion is a help: a failed look-up offers nothing
    }
    if (mine !== seq.current) return;
    setOptions(list.slice(0, 12));
    setActive(-1);
  };

  const accept = (opt) => {
    const c = ctx.current;
    const el = inputRef.current;
    let next;
    let caret;
    if (c.kind === 'name') {
      const head = text.slice(0, c.caret - c.prefix.length);
      next = `${head}${opt}="${text.slice(c.caret)}`;
      caret = head.length + opt.length + 2;
    } else if (c.kind === 'value') {
      const head = text.slice(0, c.caret - c.prefix.length);
      const tail = text.slice(c.caret).replace(/^[^"]*"?/, '');
      const esc = opt.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
      next = `${head}${esc}"${tail}`;
      caret = head.length + esc.length + 1;
    } else {
      next = opt;
      caret = opt.length;
    }
    // The field gets the text and the caret at once (not after a render), so keys typed right
    // after land where the completion ended.
    el.value = next;
    el.focus();
    el.setSelectionRange(caret, caret);
    setText(next);
    setOptions([]);
  };

  const onKeyDown = (e) => {
    if (options.length) {
      if (e.key === 'ArrowDown') {
        e.preventDefault();
        setActive((a) => (a + 1) % options.length);
        return;
      }
      if (e.key === 'ArrowUp') {
        e.preventDefault();
        setActive((a) => (a <= 0 ? options.length - 1 : a - 1));
        return;
      }
      if ((e.key === 'Enter' || e.key === 'Tab') && active >= 0) {
        e.preventDefault();
        accept(options[active]);
        return;
      }
      if (e.key === 'Escape') {
        e.stopPropagation();
        setOptions([]);
        return;
      }
    }
    if (e.key === 'Enter') {
      e.preventDefault();
      setOptions([]);
      run(text);
    }
  };

  const open = options.length > 0;
  return html`<form class="querybar" role="search" onSubmit=${(e) => { e.preventDefault(); setOptions([]); run(text); }}>
    <label for="query" class="visually-hidden">Query (plain words or LogQL)</label>
    <div class="combo">
      <input id="query" ref=${inputRef} type="text" autocomplete="off" spellcheck="false"
        placeholder='Words to find, or LogQL such as {source="web"} |= "timeout"  (press / to focus)'
        role="combobox" aria-expanded=${open ? 'true' : 'false'} aria-controls="query-options" aria-autocomplete="list"
        aria-activedescendant=${active >= 0 ? `query-option-${active}` : undefined}
        value=${text}
        onInput=${(e) => { setText(e.target.value); suggest(e.target.value, e.target.selectionStart); }}
        onFocus=${(e) => suggest(e.target.value, e.target.selectionStart)}
        onBlur=${() => setTimeout(() => setOptions([]), 150)}
        onKeyDown=${onKeyDown} />
      <ul id="query-options" role="listbox" aria-label="Suggestions" class=${open ? 'options' : 'options hidden'}>
        ${options.map((o, i) => html`<li id=${`query-option-${i}`} role="option" aria-selected=${i === active ? 'true' : 'false'}
          class=${i === active ? 'active' : ''} onMouseDown=${(e) => { e.preventDefault(); accept(o); }}>${o}</li>`)}
      </ul>
    </div>
    <button type="submit" class="primary">Search</button>
  </form>`;
}

/** Relative ranges as buttons, and an absolute from/to. */
function TimePicker({ range, span, onRange }) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  useEffect(() => {
    if (span) {
      setFrom(localInput(span[0]));
      setTo(localInput(span[1]));
    }
  }, [span && span[0], span && span[1]]);
  return html`<div class="timepicker" role="group" aria-label="Time range">
    ${RELATIVE.map((r) => html`<button type="button" aria-pressed=${range.since === r ? 'true' : 'false'} onClick=${() => onRange({ since: r })}>${r}</button>`)}
    <label>From <input type="datetime-local" value=${from} onInput=${(e) => setFrom(e.target.value)} /></label>
    <label>To <input type="datetime-local" value=${to} onInput=${(e) => setTo(e.target.value)} /></label>
    <button type="button" onClick=${() => {
      const a = new Date(from).getTime();
      const b = new Date(to).getTime();
      if (!Number.isNaN(a) && !Number.isNaN(b) && b > a) onRange({ start: a, end: b });
    }}>Apply</button>
  </div>`;
}

/** The histogram (uPlot), redrawn on new data, a resize or a theme change. */
function Histogram({ hist, error, onZoom }) {
  const el = useRef();
  const plot = useRef(null);
  const zoomRef = useRef(onZoom);
  zoomRef.current = onZoom;
  const [theme, setTheme] = useState(0);
  useEffect(() => {
    const mq = matchMedia('(prefers-color-scheme: dark)');
    const on = () => setTheme((n) => n + 1);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  useEffect(() => {
    if (!hist || !el.current) return undefined;
    el.current.textContent = '';
    plot.current = drawHistogram(el.current, hist, { stepS: hist.step, onSelect: (a, b) => zoomRef.current(a, b) });
    window.__logfluxTimings = { ...(window.__logfluxTimings || {}), histogram: performance.now() };
    const ro = new ResizeObserver(() => plot.current?.setSize({ width: Math.max(200, el.current.clientWidth), height: 140 }));
    ro.observe(el.current);
    return () => {
      ro.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [hist, theme]);
  return html`<section class="histogram-pane" aria-label="Entries by level over time">
    <div class="histogram-head">
      <h2>Entries by level${hist ? ` — ${hist.total.toLocaleString('en')}` : ''}</h2>
      <span class="hint">drag across the chart to zoom in</span>
      <button type="button" disabled=${!hist} onClick=${() => plot.current && downloadPng(plot.current, `logflux-histogram-${new Date().toISOString().replace(/[:.]/g, '-')}.png`)}>Save PNG</button>
    </div>
    ${error ? html`<div class="error" role="alert">Histogram: ${error}</div>` : null}
    <div class="histogram" ref=${el} data-testid="histogram"></div>
  </section>`;
}

/** Each field's top values in the result; a value filters (`=`), its ≠ button excludes. */
function Fields({ fields, total, onFilter }) {
  return html`<aside class="fields" aria-label="Fields">
    <h2>Fields</h2>
    ${fields.length === 0 ? html`<p class="muted">No entries.</p>` : null}
    ${fields.map((f) => html`<section class="field" data-field=${f.name}>
      <h3>${f.name} <span class="muted">${f.distinct} value${f.distinct === 1 ? '' : 's'}</span></h3>
      <ul>
        ${f.values.map(([v, n]) => html`<li>
          <button type="button" class="value" title=${`Show only ${f.name}=${v}`}
            onClick=${() => onFilter(f.name, v, '=')}>
            <span class="v"><span class="visually-hidden">Show only ${f.name} = </span>${v === '' ? '(empty)' : v}</span>
            <span class="bar"><span class="fill" style=${{ width: `${Math.round((100 * n) / Math.max(1, total))}%` }}></span></span>
            <span class="n">${n}<span class="visually-hidden"> of ${total}</span></span>
          </button>
          <button type="button" class="exclude" aria-label=${`Leave out ${f.name} = ${v}`} title=${`Leave out ${f.name}=${v}`}
            onClick=${() => onFilter(f.name, v, '!=')}>≠</button>
        </li>`)}
      </ul>
    </section>`)}
  </aside>`;
}

/**
 * Rows kept in the DOM beyond the visible ones on each side, so a wheel step shows drawn rows.
 * Few: painting a frame costs in proportion to the rows in the DOM (measured with
 * tools/ui-bench.mjs: 40 a side took half again the paint time of 10).
 */
const OVERSCAN = 10;

/**
 * The virtualised list: only the rows in view (and OVERSCAN around) are in the DOM. Scrolling
 * re-renders the list, but a row already on screen is kept as it is (Row skips the render unless
 * its entry, selection or highlight changed), so a frame builds only the rows that came into view.
 * One click handler on the list serves every row (no handlers per row).
 */
function ResultList({ rows, words, selected, setSelected, onOpen, expanded, listRef }) {
  const [topRow, setTopRow] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = listRef.current;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  // The first row in view (an unchanged one does not re-render). The browser sends scroll events
  // once a frame, before drawing it, and the render follows in the same frame.
  const onScroll = (e) => setTopRow(Math.floor(e.currentTarget.scrollTop / ROW_H));
  const onClick = (e) => {
    const el = e.target.closest('.row');
    if (!el) return;
    const i = Number(el.dataset.index);
    const r = rows[i];
    if (!r) return;
    setSelected(i);
    // The ▸ button toggles the details; anywhere else on the row opens them.
    onOpen(e.target.closest('.expand') && expanded === r ? null : r);
  };
  const first = Math.max(0, topRow - OVERSCAN);
  const last = Math.min(rows.length, topRow + Math.ceil(height / ROW_H) + 1 + OVERSCAN);
  const visible = [];
  for (let i = first; i < last; i++) {
    visible.push(html`<${Row} key=${i} index=${i} row=${rows[i]} words=${words} selected=${i === selected} open=${expanded === rows[i]} />`);
  }
  return html`<div class="results" ref=${listRef} onScroll=${onScroll} onClick=${onClick} tabindex="0" role="region" aria-label="Entries, newest first (j and k move, Enter opens)" data-testid="results">
    <div class="spacer" style=${{ height: `${rows.length * ROW_H}px` }}>${visible}</div>
  </div>`;
}

/** A row of the list; rendered again only when what it shows changed. */
class Row extends Component {
  shouldComponentUpdate(next) {
    const p = this.props;
    return next.row !== p.row || next.selected !== p.selected || next.open !== p.open || next.words !== p.words || next.index !== p.index;
  }

  render({ index: i, row: r, words, selected, open }) {
    const level = r.labels.level || 'info';
    return html`<div class=${`row lvl-${level}${selected ? ' selected' : ''}${open ? ' open' : ''}`} style=${{ top: `${i * ROW_H}px` }} data-index=${i}>
      <button type="button" class="expand" aria-expanded=${open ? 'true' : 'false'} aria-label=${`Details of the entry at ${timeText(r.ms, true)}`}>${open ? '▾' : '▸'}</button>
      <span class="time">${timeText(r.ms)}</span>
      <span class=${`level lvl-${level}`}>${level}</span>
      <span class="source">${r.labels.source}</span>
      <span class="line">${highlight(r.line, words)}</span>
    </div>`;
  }
}

/** Text with the searched words as <mark> elements (text nodes: content is never HTML). */
function highlight(text, words) {
  if (!words.length) return text;
  return splitMatches(text, words).map(([t, m]) => (m ? html`<mark>${t}</mark>` : t));
}

/** An entry's fields, its payload (pretty JSON when it is JSON), copy, context and filters. */
function Details({ row, onClose, onFilter, onContext }) {
  const [copied, setCopied] = useState('');
  const pretty = prettyJson(row.line);
  const panel = useRef();
  useEffect(() => panel.current?.focus(), [row]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(entryJson(row));
      setCopied('Copied');
    } catch {
      setCopied('The browser did not allow copying');
    }
  };
  const fieldRows = [
    ...Object.entries(row.labels).map(([k, v]) => [k, v, 'label']),
    ...Object.entries(row.meta).map(([k, v]) => [k, v, 'metadata']),
    ...Object.entries(row.parsed).map(([k, v]) => [k, v, 'parsed']),
  ];
  return html`<section class="details" aria-label="Entry details" tabindex="-1" ref=${panel} data-testid="details">
    <div class="details-head">
      <h2>${timeText(row.ms, true)} <span class="muted">${new Date(row.ms).toISOString()} · ${row.ts} ns</span></h2>
      <button type="button" onClick=${copy}>Copy</button>
      <button type="button" onClick=${() => onContext(row)}>Show context</button>
      <button type="button" onClick=${onClose} aria-label="Close details">Close</button>
      <span class="muted" aria-live="polite">${copied}</span>
    </div>
    <table class="kv">
      <caption class="visually-hidden">Fields of the entry</caption>
      <thead><tr><th scope="col">Field</th><th scope="col">Value</th><th scope="col">Kind</th><th scope="col"><span class="visually-hidden">Filter</span></th></tr></thead>
      <tbody>
        ${fieldRows.map(([k, v, kind]) => html`<tr>
          <th scope="row">${k}</th><td>${v}</td><td class="muted">${kind}</td>
          <td>${kind !== 'parsed' && k !== 'detected_level'
            ? html`<button type="button" class="small" aria-label=${`Show only ${k} = ${v}`} onClick=${() => onFilter(k, v, '=')}>=</button>
                <button type="button" class="small" aria-label=${`Leave out ${k} = ${v}`} onClick=${() => onFilter(k, v, '!=')}>≠</button>`
            : null}</td>
        </tr>`)}
      </tbody>
    </table>
    <h3>Payload${pretty ? ' (JSON)' : ''}</h3>
    <pre class="payload" data-testid="payload">${pretty ?? row.line}</pre>
  </section>`;
}

/** Live tail on/off, pause/resume, auto-scroll and the rate. */
function TailControls({ tail, setTail }) {
  return html`<div class="tail-controls" role="group" aria-label="Live tail">
    <button type="button" aria-pressed=${tail.on ? 'true' : 'false'} data-testid="tail"
      onClick=${() => setTail((t) => ({ ...t, on: !t.on, paused: false, rate: 0, buffered: 0, error: null, connected: false }))}>
      ${tail.on ? '■ Stop live tail' : '▶ Live tail'}
    </button>
    ${tail.on
      ? html`<button type="button" aria-pressed=${tail.paused ? 'true' : 'false'} onClick=${() => setTail((t) => ({ ...t, paused: !t.paused }))}>
            ${tail.paused ? `Resume${tail.buffered ? ` (${tail.buffered} new)` : ''}` : 'Pause'}
          </button>
          <label class="check"><input type="checkbox" checked=${tail.autoScroll !== false}
            onChange=${(e) => setTail((t) => ({ ...t, autoScroll: e.target.checked }))} /> Auto-scroll</label>
          <span class="rate" data-testid="rate" data-connected=${tail.connected ? 'true' : 'false'}>
            ${tail.connected ? `live · ${tail.rate.toFixed(1)} entries/s` : 'connecting…'}</span>`
      : null}
    ${tail.error ? html`<span class="error-inline" role="alert">${tail.error}</span>` : null}
  </div>`;
}

/** The tail's WebSocket (no markup): streams new entries into the list while it is mounted. */
function Tail({ logql, tail, setTail, setRows, listRef }) {
  const buffer = useRef([]);
  const arrivals = useRef([]);
  const state = useRef(tail);
  state.current = tail;
  const push = (rows) => {
    setRows((prev) => {
      const next = rows.sort(newestFirst).concat(prev);
      return next.length > 100000 ? next.slice(0, 100000) : next;
    });
    const list = listRef.current;
    if (!list) return;
    if (state.current.autoScroll !== false) requestAnimationFrame(() => (list.scrollTop = 0));
    else list.scrollTop += rows.length * ROW_H;
  };
  useEffect(() => {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const qs = new URLSearchParams({ query: logql, limit: '100', start: String(nsOfMs(Date.now())) });
    const ws = new WebSocket(`${proto}://${location.host}/loki/api/v1/tail?${qs}`);
    let closedByUs = false;
    ws.onopen = () => setTail((t) => ({ ...t, connected: true }));
    ws.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      const rows = rowsOf(msg.streams);
      const now = performance.now();
      for (let i = 0; i < rows.length; i++) arrivals.current.push(now);
      if (state.current.paused) {
        buffer.current.push(...rows);
        setTail((t) => ({ ...t, buffered: buffer.current.length }));
      } else push(rows);
    };
    ws.onclose = (e) => {
      if (!closedByUs) setTail((t) => ({ ...t, on: false, error: `The live tail ended: ${e.reason || `code ${e.code}`}` }));
    };
    const timer = setInterval(() => {
      const now = performance.now();
      arrivals.current = arrivals.current.filter((t) => now - t < 5000);
      setTail((t) => ({ ...t, rate: arrivals.current.length / 5 }));
    }, 1000);
    return () => {
      closedByUs = true;
      clearInterval(timer);
      ws.close(1000);
    };
  }, [logql]);
  useEffect(() => {
    if (!tail.paused && buffer.current.length) {
      push(buffer.current);
      buffer.current = [];
      setTail((t) => ({ ...t, buffered: 0 }));
    }
  }, [tail.paused]);
  return null;
}

/** Download links of the current result (serve streams them) in each format. */
function Exports({ logql, span }) {
  if (!span) return null;
  const href = (format) =>
    `/api/ui/export?${new URLSearchParams({ query: logql, start: String(nsOfMs(span[0])), end: String(nsOfMs(span[1])), format })}`;
  return html`<div class="exports" role="group" aria-label="Export the result">
    <span>Export</span>
    ${['ndjson', 'csv', 'json'].map((f) => html`<a class="button" href=${href(f)} download="" data-testid=${`export-${f}`}>${f}</a>`)}
  </div>`;
}
