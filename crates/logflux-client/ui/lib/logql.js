// LogQL as the explore page writes it: plain words turned into line filters, filters added by a
// click on a field value, and the words a query searches for (to highlight them).

/** The selector of every entry (a selector needs one matcher that is not empty). */
export const ALL = '{app=~".+"}';

/** The stream labels: a filter on one of them goes into the selector, any other into the pipeline. */
export const STREAM_LABELS = ['app', 'source', 'level', 'type', 'host'];

/** A LogQL string literal of `s`. */
export function quote(s) {
  return `"${String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** Whether `text` is LogQL (starts with a selector) rather than plain words. */
export function isLogql(text) {
  return text.trim().startsWith('{');
}

/** The words of plain text: runs without spaces, or "quoted phrases". */
export function plainWords(text) {
  const words = [];
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const w = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2];
    if (w) words.push(w);
  }
  return words;
}

/**
 * The LogQL of what was typed: LogQL as it is; plain words as `{app=~".+"} |= "w1" |= "w2"`
 * (every word must occur, case-sensitive as LogQL's `|=`); nothing as every entry.
 */
export function toLogql(text) {
  const t = (text || '').trim();
  if (!t) return ALL;
  if (isLogql(t)) return t;
  return [ALL, ...plainWords(t).map((w) => `|= ${quote(w)}`)].join(' ');
}

/** The end (index after `}`) of the selector `logql` starts with, quotes respected; -1 if none. */
export function selectorEnd(logql) {
  let i = logql.indexOf('{');
  if (i < 0) return -1;
  let inQuote = null;
  for (i += 1; i < logql.length; i++) {
    const c = logql[i];
    if (inQuote) {
      if (c === '\\') i++;
      else if (c === inQuote) inQuote = null;
    } else if (c === '"' || c === '`') inQuote = c;
    else if (c === '}') return i + 1;
  }
  return -1;
}

/** The text of each `|= "…"` line filter (the words to highlight), in order. */
export function searchedWords(logql) {
  const words = [];
  for (const m of logql.matchAll(/\|=\s*"((?:[^"\\]|\\.)*)"/g)) {
    const w = m[1].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    if (w) words.push(w);
  }
  return words;
}

/** A metadata key as a label name (as serve names it: other characters become `_`). */
export function labelName(key) {
  const n = String(key).replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

/**
 * `text` (plain words or LogQL) with the filter `key op value` added: in the selector for a
 * stream label (replacing a matcher of the same label and operator), else as a label filter
 * `| key="value"` after it (metadata). Returns LogQL.
 */
export function addFilter(text, key, value, op = '=') {
  const logql = toLogql(text);
  const name = labelName(key);
  const matcher = `${name}${op}${quote(value)}`;
  if (!STREAM_LABELS.includes(name)) return `${logql} | ${matcher}`;
  const end = selectorEnd(logql);
  const inside = logql.slice(logql.indexOf('{') + 1, end - 1);
  const rest = logql.slice(end);
  // An `=` decides the label: other matchers of it go; a `!=` replaces only the same one.
  const parts = splitMatchers(inside).filter((m) => {
    const mm = m.match(/^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/);
    if (!mm || mm[1] !== name) return true;
    if (op === '=') return false;
    return !(mm[2] === op && mm[3] === quote(value));
  });
  // `app=~".+"` only stood for "everything": an `=` matcher of a value makes it unnecessary
  // (a `!=` one cannot stand alone: a selector needs a matcher that is not empty).
  const replacesAll = op === '=' && value !== '';
  const kept = parts.filter((m) => !(replacesAll && m.replace(/\s/g, '') === 'app=~".+"'));
  return `{${[...kept.map((m) => m.trim()), matcher].join(', ')}}${rest}`;
}

/** The matchers of a selector's inside, split at commas outside quotes. */
function splitMatchers(inside) {
  const out = [];
  let cur = '';
  let inQuote = null;
  for (let i = 0; i < inside.length; i++) {
    const c = inside[i];
    if (inQuote) {
      cur += c;
      if (c === '\\') cur += inside[++i] ?? '';
      else if (c === inQuote) inQuote = null;
    } else if (c === '"' || c === '`') {
      inQuote = c;
      cur += c;
    } else if (c === ',') {
      if (cur.trim()) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur.trim()) out.push(cur);
  return out;
}

/**
 * What completion can offer at the caret of `before` (the text up to the caret):
 * `{kind:'name', prefix}` after `{` or `,` in a selector, `{kind:'value', label, prefix}` inside a
 * matcher's quotes, else `{kind:'recent', prefix: before}`.
 */
export function completionContext(before) {
  const open = before.lastIndexOf('{');
  const close = before.lastIndexOf('}');
  if (open >= 0 && open > close) {
    const v = before.match(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"([^"]*)$/);
    if (v) return { kind: 'value', label: v[1], prefix: v[2] };
    const n = before.match(/[{,]\s*([A-Za-z_][A-Za-z0-9_]*)?$/);
    if (n) return { kind: 'name', prefix: n[1] || '' };
    return { kind: 'none' };
  }
  return { kind: 'recent', prefix: before };
}
