// The alerts page's pure rules: the explore link of a rule (its log query over its widest
// window, as the alerts' generatorURL builds it in crates/logflux-alerts), the order alerts are
// listed in, and times and values as the page writes them.

/** Seconds of a Prometheus duration (`30s`, `5m`, `1h30m`, `1d`, `2w`, `1y`, `500ms`); null if it is not one. */
export function promDurationSeconds(text) {
  const s = String(text).trim();
  if (!/^(\d+(ms|y|w|d|h|m|s))+$/.test(s)) return null;
  const unitMs = { y: 365 * 86400000, w: 604800000, d: 86400000, h: 3600000, m: 60000, s: 1000, ms: 1 };
  let ms = 0;
  for (const [, n, u] of s.matchAll(/(\d+)(ms|y|w|d|h|m|s)/g)) ms += Number(n) * unitMs[u];
  return Math.ceil(ms / 1000);
}

/**
 * Walks `expr` outside its string literals ("…" with escapes, `…` without), calling
 * `visit(i)` at each other character; stops when `visit` returns true.
 */
function scanOutsideStrings(expr, visit) {
  let quote = null;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\' && quote !== '`') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === '`') quote = c;
    else if (visit(i)) return;
  }
}

/**
 * The log query inside a metric expression as written: from the first `{` to the range's
 * `[` (outside strings), trimmed; null when there is none. The same cut as the rule loader's
 * (`log_query_text` in crates/logflux-alerts/src/rules/mod.rs), so the link opens what the
 * alert's generatorURL opens.
 */
export function logQueryText(expr) {
  const start = expr.indexOf('{');
  if (start < 0) return null;
  let end = -1;
  scanOutsideStrings(expr.slice(start), (i) => {
    if (expr[start + i] === '[') {
      end = start + i;
      return true;
    }
    return false;
  });
  return end < 0 ? null : expr.slice(start, end).trim();
}

/**
 * The widest window an expression reads, in seconds: the largest range (`[5m]`) plus the
 * offset after it (`[5m] offset 1h`), as the evaluator's look-back; 0 when it has none.
 */
export function widestWindowSeconds(expr) {
  let widest = 0;
  scanOutsideStrings(expr, (i) => {
    if (expr[i] !== '[') return false;
    const m = /^\[\s*([0-9a-z]+)\s*\](?:\s*offset\s+([0-9a-z]+))?/.exec(expr.slice(i));
    const range = m ? promDurationSeconds(m[1]) : null;
    if (range !== null) widest = Math.max(widest, range + ((m[2] && promDurationSeconds(m[2])) || 0));
    return false;
  });
  return widest;
}

/** Seconds written as the evaluator writes durations: `1h30m`, `5m`, `45s`. */
export function durationText(seconds) {
  if (!seconds) return '0s';
  let rest = Math.round(seconds);
  let out = '';
  for (const [unit, width] of [['h', 3600], ['m', 60], ['s', 1]]) {
    if (rest >= width) {
      out += `${Math.floor(rest / width)}${unit}`;
      rest %= width;
    }
  }
  return out;
}

/**
 * The explore page's address for a rule's expression: `#/explore?q=<log query>&since=<widest
 * window>`; null when the expression has no log query (nothing to explore).
 */
export function exploreHrefOf(expr) {
  const q = logQueryText(expr);
  if (!q) return null;
  const p = new URLSearchParams({ q });
  const window = widestWindowSeconds(expr);
  if (window > 0) p.set('since', durationText(window));
  return `#/explore?${p.toString()}`;
}

/** Prometheus's time for "never" (a rule not evaluated yet). */
const NEVER = '0001-01-01T00:00:00Z';

/** Ms of an RFC 3339 time from the API; null for Prometheus's zero time or no time. */
export function timeMs(text) {
  if (!text || text === NEVER || text.startsWith('0001-')) return null;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? null : ms;
}

/** How long ago `ms` was, relative to `now`: `just now`, `12 s ago`, `3 min ago`, `2 h 5 min ago`, `4 d ago`. */
export function ago(ms, now = Date.now()) {
  const s = Math.round((now - ms) / 1000);
  if (s < 0) return `in ${-s} s`;
  if (s < 1) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min ago` : `${h} h ago`;
  return `${Math.floor(h / 24)} d ago`;
}

/** An evaluation's duration (seconds, as the API gives it) in µs, ms or s, to two or three figures. */
export function tookText(seconds) {
  if (!(seconds > 0)) return '0 µs';
  if (seconds < 0.001) return `${Math.max(1, Math.round(seconds * 1e6))} µs`;
  if (seconds < 1) {
    const ms = seconds * 1000;
    return `${ms < 10 ? ms.toPrecision(2) : Math.round(ms)} ms`;
  }
  return `${seconds.toFixed(2)} s`;
}

/**
 * An alert's value as a person reads it: the API writes Go's `%e` (`1e+01`, `2.5e-01`); a
 * number that is a whole number or a short decimal is written plainly (`10`, `0.25`), others
 * as given (`NaN`, `+Inf`, `1e+21`).
 */
export function valueText(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Math.abs(n) >= 1e15 || (n !== 0 && Math.abs(n) < 1e-6)) return String(v);
  return String(Number(n.toPrecision(12)));
}

const STATE_ORDER = { firing: 0, pending: 1, inactive: 2 };

/** Alerts in the order the page lists them: firing, then pending; then by name; the oldest first. */
export function sortAlerts(alerts) {
  return [...alerts].sort(
    (a, b) =>
      (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3) ||
      String(a.labels?.alertname ?? '').localeCompare(String(b.labels?.alertname ?? '')) ||
      (timeMs(a.activeAt) ?? 0) - (timeMs(b.activeAt) ?? 0),
  );
}

/** An alert's labels without `alertname` (shown as its title), sorted by name. */
export function labelPairs(labels) {
  return Object.entries(labels || {})
    .filter(([k]) => k !== 'alertname')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const sameLabels = (a, b) => {
  const x = labelPairs(a);
  const y = labelPairs(b);
  return a?.alertname === b?.alertname && x.length === y.length && x.every(([k, v], i) => y[i][0] === k && y[i][1] === v);
};

/**
 * The rule an alert of `/api/v1/alerts` comes from, among the groups of `/api/v1/rules`: the
 * rule that lists an alert with the same labels, else the first rule of its name.
 */
export function ruleOf(alert, groups) {
  const rules = (groups || []).flatMap((g) => g.rules || []);
  return (
    rules.find((r) => (r.alerts || []).some((a) => sameLabels(a.labels, alert.labels))) ||
    rules.find((r) => r.name === alert.labels?.alertname) ||
    null
  );
}

/** Counts of rules by state and health over all groups: {rules, firing, pending, inactive, err}. */
export function ruleCounts(groups) {
  const c = { rules: 0, firing: 0, pending: 0, inactive: 0, err: 0 };
  for (const g of groups || []) {
    for (const r of g.rules || []) {
      c.rules += 1;
      if (r.state in STATE_ORDER) c[r.state] += 1;
      if (r.health === 'err') c.err += 1;
    }
  }
  return c;
}
