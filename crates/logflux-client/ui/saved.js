// The saved searches page (#/saved): every search saved in the client's config directory
// (`saved-searches.json`, which `logflux search --saved NAME` reads too) with its query and
// time range; open one in Explore, rename it in place, delete it, or save a new one. Also
// `SaveSearchButton`, which the explore page puts in its toolbar to save what it shows.
import { html } from './lib/html.js';
import { useEffect, useRef, useState } from './vendor/hooks.module.js';
import { json, request } from './lib/api.js';
import { Confirm, Modal } from './lib/dash-ui.js';
import { QUICK_RANGES, rangeText } from './lib/dash-model.js';

/** What is wrong with a name for a saved search (serve's rule: 1–100 characters, no `/`, no control characters); null if fine. */
export function nameProblem(name) {
  if (!name.length) return 'give the search a name';
  if ([...name].length > 100) return 'a name has at most 100 characters';
  if (name.includes('/')) return 'a name cannot contain "/"';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) return 'a name cannot contain control characters';
  return null;
}

const savedPath = (name) => `/api/ui/saved/${encodeURIComponent(name)}`;

/** The saved searches, sorted by name. */
export async function listSaved() {
  return (await json('/api/ui/saved')).searches;
}

/** A range as the file stores it: `{since}`, or `{start, end}` in RFC 3339 (the explore page may hold ms). */
export function storedRange(range) {
  if (!range || range.since) return { since: range?.since || '1h' };
  const iso = (v) => new Date(typeof v === 'number' ? v : Date.parse(v)).toISOString();
  return { start: iso(range.start), end: iso(range.end) };
}

/** Saves (creates or replaces) the search `name`. */
export async function putSaved(name, query, range) {
  await request(savedPath(name), { method: 'PUT', body: { query, range: storedRange(range) } });
}

/** The explore page's address for a saved search: `#/explore?q=…&since=…` (or `start`/`end`). */
export function exploreHref(search) {
  const p = new URLSearchParams({ q: search.query });
  if (search.range?.since) p.set('since', search.range.since);
  else if (search.range?.start) {
    p.set('start', search.range.start);
    p.set('end', search.range.end);
  }
  return `#/explore?${p.toString()}`;
}

/**
 * The dialog that asks a name and saves `{query, range}` under it; when the name is taken it
 * asks whether to replace that search. `onSaved(name)` after the save.
 */
function SaveDialog({ query, range, onClose, onSaved }) {
  const [name, setName] = useState('');
  const [error, setError] = useState(null);
  const [taken, setTaken] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    const n = name.trim();
    const problem = nameProblem(n);
    if (problem) return setError(problem);
    setBusy(true);
    setError(null);
    try {
      if (!taken && (await listSaved()).some((s) => s.name === n)) {
        setTaken(true);
        return;
      }
      await putSaved(n, query, range);
      onSaved(n);
    } catch (err) {
      setError(err.message);
    } finally {
      setBusy(false);
    }
  };
  return html`<${Modal} title="Save search" onClose=${onClose}>
    <form onSubmit=${submit}>
      <label class="lf-field">Name
        <input name="name" value=${name} maxlength="100" required autofocus
          onInput=${(e) => { setName(e.currentTarget.value); setTaken(false); }} />
      </label>
      <p class="lf-muted">Query: <code class="lf-query">${query}</code></p>
      <p class="lf-muted">Range: ${rangeText(storedRange(range))}</p>
      ${taken && html`<p class="warning" role="alert">A saved search named “${name.trim()}” exists already. Replace it?</p>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div class="lf-actions">
        <button type="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="primary" disabled=${busy}>${taken ? 'Replace' : 'Save'}</button>
      </div>
    </form>
  <//>`;
}

/**
 * A button for the explore toolbar: saves the search shown (`query` as run: LogQL or plain
 * words; `range` `{since}` or `{start, end}` in RFC 3339 or ms) under a name the person gives.
 */
export function SaveSearchButton({ query, range }) {
  const [open, setOpen] = useState(false);
  const [status, setStatus] = useState('');
  const empty = !String(query ?? '').trim();
  return html`<span class="lf-save-search">
    <button type="button" disabled=${empty} title=${empty ? 'Type a query first' : 'Save this search under a name'}
      onClick=${() => { setStatus(''); setOpen(true); }}>Save search…</button>
    <span class="lf-status" role="status">${status}</span>
    ${open && html`<${SaveDialog} query=${query} range=${range} onClose=${() => setOpen(false)}
      onSaved=${(n) => { setOpen(false); setStatus(`Saved as “${n}”.`); }} />`}
  </span>`;
}

/** One row of the list: shows the search, or, while renaming, an input for the new name. */
function SavedRow({ search, onRenamed, onDelete }) {
  const [renaming, setRenaming] = useState(false);
  const [to, setTo] = useState(search.name);
  const [error, setError] = useState(null);
  const input = useRef(null);
  useEffect(() => {
    if (renaming && input.current) input.current.select();
  }, [renaming]);
  const rename = async (e) => {
    e.preventDefault();
    const n = to.trim();
    if (n === search.name) return setRenaming(false);
    const problem = nameProblem(n);
    if (problem) return setError(problem);
    try {
      await request(`${savedPath(search.name)}/rename`, { method: 'POST', body: { to: n } });
      setRenaming(false);
      setError(null);
      onRenamed(n);
    } catch (err) {
      setError(err.status === 409 ? `A saved search named “${n}” exists already: choose another name, or delete that one first.` : err.message);
    }
  };
  const cancel = () => {
    setRenaming(false);
    setTo(search.name);
    setError(null);
  };
  return html`<tr data-name=${search.name}>
    <td>${renaming
      ? html`<form class="lf-inline" onSubmit=${rename}>
          <label class="lf-sr" for=${`rename-${search.name}`}>New name for ${search.name}</label>
          <input id=${`rename-${search.name}`} ref=${input} value=${to} maxlength="100"
            onInput=${(e) => setTo(e.currentTarget.value)} onKeyDown=${(e) => e.key === 'Escape' && cancel()} />
          <button type="submit" class="primary">Save name</button>
          <button type="button" onClick=${cancel}>Cancel</button>
          ${error && html`<p class="error" role="alert">${error}</p>`}
        </form>`
      : html`<a href=${exploreHref(search)} class="lf-name">${search.name}</a>`}</td>
    <td><code class="lf-query">${search.query}</code></td>
    <td>${rangeText(search.range)}</td>
    <td class="lf-row-actions">
      <a class="lf-button" href=${exploreHref(search)} aria-label=${`Open ${search.name} in Explore`}>Open</a>
      <button type="button" aria-label=${`Rename ${search.name}`} onClick=${() => setRenaming(true)} disabled=${renaming}>Rename</button>
      <button type="button" class="danger" aria-label=${`Delete ${search.name}`} onClick=${() => onDelete(search)}>Delete</button>
    </td>
  </tr>`;
}

/** The form at the foot of the page: saves a query typed here (no need to run it in Explore first). */
function NewSearchForm({ onSaved }) {
  const [query, setQuery] = useState('');
  const [since, setSince] = useState('1h');
  const [open, setOpen] = useState(false);
  const submit = (e) => {
    e.preventDefault();
    if (query.trim()) setOpen(true);
  };
  return html`<form class="lf-newsearch" onSubmit=${submit}>
    <h2>Save a new search</h2>
    <label class="lf-field grow">Query (LogQL or plain words)
      <input name="query" value=${query} placeholder='{app="web", level="error"} |= "timeout"' onInput=${(e) => setQuery(e.currentTarget.value)} />
    </label>
    <label class="lf-field">Range
      <select name="since" value=${since} onChange=${(e) => setSince(e.currentTarget.value)}>
        ${QUICK_RANGES.map((r) => html`<option value=${r}>last ${r}</option>`)}
      </select>
    </label>
    <button type="submit" disabled=${!query.trim()}>Save…</button>
    ${open && html`<${SaveDialog} query=${query.trim()} range=${{ since }} onClose=${() => setOpen(false)}
      onSaved=${(n) => { setOpen(false); setQuery(''); onSaved(n); }} />`}
  </form>`;
}

/** The page. */
export function SavedPage() {
  const [searches, setSearches] = useState(null);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState('');
  const [deleting, setDeleting] = useState(null);
  const load = async () => {
    try {
      setSearches(await listSaved());
      setError(null);
    } catch (err) {
      setError(`The saved searches could not be read: ${err.message}`);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const remove = async () => {
    const s = deleting;
    setDeleting(null);
    try {
      await request(savedPath(s.name), { method: 'DELETE' });
      setStatus(`Deleted “${s.name}”.`);
    } catch (err) {
      setError(`“${s.name}” could not be deleted: ${err.message}`);
    }
    load();
  };
  return html`<section class="lf-page" aria-labelledby="saved-title">
    <h1 id="saved-title">Saved searches</h1>
    <p class="lf-muted">Stored in your config directory (<code>saved-searches.json</code>); run one from a shell with <code>logflux search --saved NAME</code>.</p>
    <p class="lf-status" role="status">${status}</p>
    ${error && html`<p class="error" role="alert">${error}</p>`}
    ${searches === null && !error && html`<p class="loading">Loading…</p>`}
    ${searches && searches.length === 0 && html`<p class="lf-empty">No saved search yet. Save one from Explore (“Save search…”) or below.</p>`}
    ${searches && searches.length > 0 && html`<table class="lf-table lf-saved">
      <thead><tr><th scope="col">Name</th><th scope="col">Query</th><th scope="col">Range</th><th scope="col"><span class="lf-sr">Actions</span></th></tr></thead>
      <tbody>${searches.map((s) => html`<${SavedRow} key=${s.name} search=${s}
        onRenamed=${(n) => { setStatus(`Renamed “${s.name}” to “${n}”.`); load(); }}
        onDelete=${setDeleting} />`)}</tbody>
    </table>`}
    <${NewSearchForm} onSaved=${(n) => { setStatus(`Saved “${n}”.`); load(); }} />
    ${deleting && html`<${Confirm} title="Delete saved search" danger confirmLabel="Delete"
      message=${`Delete the saved search “${deleting.name}”? This cannot be undone.`}
      onConfirm=${remove} onCancel=${() => setDeleting(null)} />`}
  </section>`;
}
