// The alerts page (#/alerts): the alerts this `logflux serve` evaluates (docs/alerts.md), from
// its Prometheus-shaped `GET /api/v1/alerts` and `GET /api/v1/rules`. Firing and pending
// alerts first, then every rule by group with its health, state and query (a link opens the
// query's log part in Explore). Refreshed every 10 s and on demand. Everything from the API
// (names, labels, annotations, errors) is put into the page as text.
import { html } from './lib/html.js';
import { useEffect, useRef, useState } from './vendor/hooks.module.js';
import { get } from './lib/api.js';
import { localTime } from './lib/dash-model.js';
import {
  ago, durationText, exploreHrefOf, labelPairs, ruleCounts, ruleOf, sortAlerts, timeMs, tookText, valueText,
} from './lib/alerts-model.js';

/** How often the page asks again. */
export const REFRESH_MS = 10000;

/** Both lists, read together so they describe the same moment as nearly as two requests can. */
async function loadAlerts(signal) {
  const [rules, alerts] = await Promise.all([
    get('/api/v1/rules', {}, { signal }),
    get('/api/v1/alerts', {}, { signal }),
  ]);
  return {
    groups: rules.data?.groups ?? [],
    problems: rules.data?.problems ?? [],
    alerts: alerts.data?.alerts ?? [],
    at: Date.now(),
  };
}

/** A state as a badge: its word is the text (colour only repeats it). */
function StateBadge({ state }) {
  return html`<span class=${`lf-badge lf-state-${state}`}>${state}</span>`;
}

/** Label pairs as chips, in a list named `label` for screen readers. */
function Chips({ labels, label }) {
  const pairs = labelPairs(labels);
  if (!pairs.length) return html`<span class="lf-muted">none</span>`;
  return html`<ul class="lf-chips" aria-label=${label}>
    ${pairs.map(([k, v]) => html`<li class="lf-chip"><span class="lf-chip-k">${k}</span>=<span class="lf-chip-v">${v}</span></li>`)}
  </ul>`;
}

/** An instant as "12 s ago" with the local time beside it (and in a <time> element). */
function When({ ms, now }) {
  if (ms === null) return html`<span class="lf-muted">never</span>`;
  return html`<time datetime=${new Date(ms).toISOString()}>${ago(ms, now)} <span class="lf-muted">(${localTime(ms)})</span></time>`;
}

/** Annotations as a description list (summary and description first, then the others by name). */
function Annotations({ annotations, compact = false }) {
  const first = ['summary', 'description'];
  const entries = Object.entries(annotations || {}).sort(
    ([a], [b]) => (first.indexOf(a) + 1 || 9) - (first.indexOf(b) + 1 || 9) || (a < b ? -1 : a > b ? 1 : 0),
  );
  if (!entries.length) return compact ? html`<span class="lf-muted">none</span>` : null;
  return html`<dl class=${compact ? 'lf-annotations compact' : 'lf-annotations'}>
    ${entries.map(([k, v]) => html`<div><dt>${k}</dt><dd>${v}</dd></div>`)}
  </dl>`;
}

/** One firing or pending alert. */
function AlertItem({ alert, rule, now }) {
  const name = alert.labels?.alertname ?? '(no alertname)';
  const explore = rule ? exploreHrefOf(rule.query) : null;
  const since = timeMs(alert.activeAt);
  return html`<li class=${`lf-alert lf-alert-${alert.state}`} data-alertname=${name} data-state=${alert.state}>
    <h3 class="lf-alert-title"><${StateBadge} state=${alert.state} /> <span class="lf-alert-name">${name}</span></h3>
    <${Chips} labels=${alert.labels} label=${`Labels of ${name}`} />
    <${Annotations} annotations=${alert.annotations} />
    <dl class="lf-alert-facts">
      <div><dt>Active since</dt><dd><${When} ms=${since} now=${now} /></dd></div>
      <div><dt>Value</dt><dd class="lf-value">${valueText(alert.value)}</dd></div>
      ${explore && html`<div><dt>Entries</dt><dd><a href=${explore} aria-label=${`Explore the entries of ${name}`}>Explore the entries</a></dd></div>`}
    </dl>
  </li>`;
}

/** A rule's row in its group's table. */
function RuleRow({ rule, now }) {
  const explore = exploreHrefOf(rule.query);
  return html`<tr data-rule=${rule.name} data-state=${rule.state} data-health=${rule.health}>
    <th scope="row" class="lf-rule-name">${rule.name}</th>
    <td><${StateBadge} state=${rule.state} />${rule.alerts?.length ? html` <span class="lf-muted">${rule.alerts.length} alert${rule.alerts.length === 1 ? '' : 's'}</span>` : null}</td>
    <td>
      <span class=${`lf-health lf-health-${rule.health}`}>${rule.health === 'err' ? 'error' : rule.health}</span>
      ${rule.lastError && html`<p class="lf-rule-error">${rule.lastError}</p>`}
      <div class="lf-muted lf-small">evaluated <${When} ms=${timeMs(rule.lastEvaluation)} now=${now} />${timeMs(rule.lastEvaluation) !== null ? `, took ${tookText(rule.evaluationTime)}` : ''}</div>
    </td>
    <td>
      <code class="lf-query">${rule.query}</code>
      ${explore && html`<div><a href=${explore} aria-label=${`Explore the log query of ${rule.name}`}>Explore</a></div>`}
    </td>
    <td class="num">${durationText(rule.duration)}${rule.keepFiringFor ? html`<div class="lf-muted lf-small">keeps firing ${durationText(rule.keepFiringFor)}</div>` : null}</td>
    <td><${Chips} labels=${rule.labels} label=${`Labels of the rule ${rule.name}`} /></td>
    <td><${Annotations} annotations=${rule.annotations} compact /></td>
  </tr>`;
}

/** A group of rules: its file, interval and last evaluation, then a table of its rules. */
function Group({ group, index, now }) {
  const id = `alerts-group-${index}`;
  const last = timeMs(group.lastEvaluation);
  return html`<section class="lf-rule-group" aria-labelledby=${id} data-group=${group.name}>
    <h3 id=${id}>${group.name}</h3>
    <p class="lf-muted lf-group-facts">
      <span>file <code>${group.file}</code></span>
      <span>every ${durationText(group.interval)}</span>
      <span>last evaluation <${When} ms=${last} now=${now} /></span>
      ${last !== null && html`<span>took ${tookText(group.evaluationTime)}</span>`}
      ${group.limit ? html`<span>at most ${group.limit} alert${group.limit === 1 ? '' : 's'} per rule</span>` : null}
    </p>
    <table class="lf-table lf-rules">
      <caption class="lf-sr">Rules of the group ${group.name}</caption>
      <thead><tr>
        <th scope="col">Rule</th><th scope="col">State</th><th scope="col">Health</th><th scope="col">Query</th>
        <th scope="col" class="num">For</th><th scope="col">Labels</th><th scope="col">Annotations</th>
      </tr></thead>
      <tbody>${(group.rules || []).map((r, i) => html`<${RuleRow} key=${`${r.name}-${i}`} rule=${r} now=${now} />`)}</tbody>
    </table>
  </section>`;
}

/** What the page says when serve evaluates no rules: how to give it some. */
function NoRules() {
  return html`<div class="lf-empty-state" data-testid="no-rules">
    <h2>No alert rules</h2>
    <p>This <code>logflux serve</code> evaluates no alert rules. Start it with a directory of
      rule files (Loki ruler format) and, to be notified, a receivers file (Alertmanager's format):</p>
    <pre class="lf-command"><code>logflux serve --rules DIR --receivers FILE</code></pre>
    <p>or set <code>alert_rules:</code> and <code>alert_receivers:</code> in the client config. A rule file:</p>
    <pre class="lf-command"><code>${`groups:
  - name: api
    interval: 1m
    rules:
      - alert: ApiTimeouts
        expr: sum by (source) (count_over_time({level="error"} |= "timeout" [5m])) > 10
        for: 2m
        annotations:
          summary: "{{ $labels.source }}: {{ $value }} timeouts in 5 minutes"`}</code></pre>
    <p>Check one with <code>logflux alerts check FILE</code>. The details are in <code>docs/alerts.md</code>.</p>
  </div>`;
}

/** The page. */
export function AlertsPage() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const inFlight = useRef(null);
  const load = async () => {
    // A refresh while one is running replaces it (the newer answer is the one to show).
    inFlight.current?.abort();
    const ctl = new AbortController();
    inFlight.current = ctl;
    setBusy(true);
    try {
      const d = await loadAlerts(ctl.signal);
      if (ctl.signal.aborted) return;
      setData(d);
      setError(null);
    } catch (e) {
      if (ctl.signal.aborted) return;
      setError(e.message);
    } finally {
      if (inFlight.current === ctl) {
        inFlight.current = null;
        setBusy(false);
      }
    }
  };
  useEffect(() => {
    load();
    const t = setInterval(load, REFRESH_MS);
    return () => {
      clearInterval(t);
      inFlight.current?.abort();
    };
  }, []);

  const now = data?.at ?? Date.now();
  const groups = data?.groups ?? [];
  const active = sortAlerts((data?.alerts ?? []).filter((a) => a.state === 'firing' || a.state === 'pending'));
  const counts = ruleCounts(groups);
  const firing = active.filter((a) => a.state === 'firing').length;
  return html`<section class="lf-page lf-alerts" aria-labelledby="alerts-title" aria-busy=${busy ? 'true' : 'false'}>
    <div class="lf-dash-head">
      <h1 id="alerts-title">Alerts</h1>
      <div class="lf-toolbar">
        <span class="lf-muted lf-updated">${data ? `Updated ${localTime(data.at)}; refreshed every ${REFRESH_MS / 1000} s` : ''}</span>
        <button type="button" onClick=${load}>Refresh now</button>
      </div>
    </div>
    ${error && html`<p class="error" role="alert">The alerts could not be read: ${error}${data ? ` (showing what was read at ${localTime(data.at)})` : ''}</p>`}
    ${data === null && !error && html`<p class="loading">Loading…</p>`}
    ${data?.problems?.length > 0 && html`<section class="error" aria-label="Rule files left out" data-testid="rule-problems">
      <strong>Rule files left out (their rules are not evaluated):</strong>
      <ul>${data.problems.map((p, i) => html`<li key=${i}>${p}</li>`)}</ul>
    </section>`}
    ${data && groups.length === 0 && html`<${NoRules} />`}
    ${data && groups.length > 0 && html`
      <p class="lf-summary" data-testid="alerts-summary">${firing} firing, ${active.length - firing} pending; ${counts.rules} rule${counts.rules === 1 ? '' : 's'} in ${groups.length} group${groups.length === 1 ? '' : 's'}${counts.err ? `, ${counts.err} failing` : ''}.</p>
      <section aria-labelledby="alerts-active-title">
        <h2 id="alerts-active-title">Firing and pending</h2>
        ${active.length === 0
          ? html`<p class="lf-empty">No alert is firing or pending.</p>`
          : html`<ul class="lf-alert-list" aria-labelledby="alerts-active-title">
              ${active.map((a, i) => html`<${AlertItem} key=${i} alert=${a} rule=${ruleOf(a, groups)} now=${now} />`)}
            </ul>`}
      </section>
      <section aria-labelledby="alerts-rules-title">
        <h2 id="alerts-rules-title">Rules</h2>
        ${groups.map((g, i) => html`<${Group} key=${`${g.file}-${g.name}`} group=${g} index=${i} now=${now} />`)}
      </section>`}
  </section>`;
}
