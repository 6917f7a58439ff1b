// The alerts page's pure rules, without a browser: a rule's explore link is the one its alerts'
// generatorURL carries (the log query cut as the rule loader cuts it, over the widest window),
// alerts are listed firing first, and values and times read as a person reads them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  logQueryText, widestWindowSeconds, durationText, exploreHrefOf, promDurationSeconds, timeMs, ago,
  valueText, sortAlerts, labelPairs, ruleOf, ruleCounts, tookText,
} from '../ui/lib/alerts-model.js';

test('the log query is cut from the expression as written (as the rule loader does)', () => {
  // The cases of crates/logflux-alerts/src/rules/tests.rs.
  assert.equal(logQueryText('sum by (source) (count_over_time({level="error"} |= "timeout" [5m])) > 10'), '{level="error"} |= "timeout"');
  assert.equal(logQueryText('sum(rate({a="[x"} |= "y[" [5m]))'), '{a="[x"} |= "y["');
  assert.equal(logQueryText('1 + 2'), null);
  assert.equal(logQueryText('sum(rate({a=`[x\\`} [1m]))'), '{a=`[x\\`}', 'no escapes in backquotes');
  assert.equal(logQueryText('sum(rate({a="x\\"["} [1m]))'), '{a="x\\"["}', 'an escaped quote');
});

test('the window is the widest range plus its offset, written as the evaluator writes it', () => {
  assert.equal(widestWindowSeconds('count_over_time({a="b"}[5m])'), 300);
  assert.equal(widestWindowSeconds('count_over_time({a="b"}[5m]) / count_over_time({a="b"}[1h] offset 30m)'), 5400);
  assert.equal(widestWindowSeconds('count_over_time({a="[9h]"}[1m])'), 60, 'a range inside a string is not one');
  assert.equal(widestWindowSeconds('vector(1)'), 0);
  assert.equal(durationText(5400), '1h30m');
  assert.equal(durationText(86400), '24h');
  assert.equal(durationText(45), '45s');
  assert.equal(promDurationSeconds('1d'), 86400);
  assert.equal(promDurationSeconds('1500ms'), 2);
  assert.equal(promDurationSeconds('5'), null);
});

test("a rule's explore link is its alerts' generatorURL without the host", () => {
  // crates/logflux-alerts/src/eval/tests.rs, the_generator_url_opens_the_rules_log_query:
  // http://127.0.0.1:3100/ui/#/explore?q=%7Bapp%3D%22web%22%7D+%7C%3D+%22timeout%22&since=1m
  assert.equal(
    exploreHrefOf('sum by (app) (count_over_time({app="web"} |= "timeout" [1m])) > 2'),
    '#/explore?q=%7Bapp%3D%22web%22%7D+%7C%3D+%22timeout%22&since=1m',
  );
  assert.equal(exploreHrefOf('vector(1) > 0'), null);
});

test('alerts are listed firing first, then pending, by name, the oldest first', () => {
  const a = (name, state, at) => ({ labels: { alertname: name }, state, activeAt: at });
  const sorted = sortAlerts([
    a('B', 'pending', '2026-11-30T10:00:00Z'),
    a('Z', 'firing', '2026-11-30T10:05:00Z'),
    a('A', 'firing', '2026-11-30T10:09:00Z'),
    a('A', 'firing', '2026-11-30T10:01:00Z'),
  ]);
  assert.deepEqual(sorted.map((x) => `${x.state} ${x.labels.alertname} ${x.activeAt.slice(11, 16)}`), [
    'firing A 10:01', 'firing A 10:09', 'firing Z 10:05', 'pending B 10:00',
  ]);
  assert.deepEqual(labelPairs({ source: 'x', alertname: 'A', env: 'p' }), [['env', 'p'], ['source', 'x']]);
});

test('an alert finds its rule by its labels, else by its name', () => {
  const groups = [{ rules: [
    { name: 'A', query: 'q1', alerts: [{ labels: { alertname: 'A', source: 'x' } }] },
    { name: 'A', query: 'q2', alerts: [{ labels: { alertname: 'A', source: 'y' } }] },
    { name: 'B', query: 'q3', alerts: [] },
  ] }];
  assert.equal(ruleOf({ labels: { alertname: 'A', source: 'y' } }, groups).query, 'q2');
  assert.equal(ruleOf({ labels: { alertname: 'B', source: 'z' } }, groups).query, 'q3');
  assert.equal(ruleOf({ labels: { alertname: 'C' } }, groups), null);
  assert.deepEqual(ruleCounts([{ rules: [{ state: 'firing', health: 'ok' }, { state: 'inactive', health: 'err' }] }]),
    { rules: 2, firing: 1, pending: 0, inactive: 1, err: 1 });
});

test('values and times as the page writes them', () => {
  assert.equal(valueText('1e+01'), '10');
  assert.equal(valueText('2.5e-01'), '0.25');
  assert.equal(valueText('NaN'), 'NaN');
  assert.equal(valueText('+Inf'), '+Inf');
  assert.equal(valueText('1e+21'), '1e+21');
  assert.equal(timeMs('0001-01-01T00:00:00Z'), null, "Prometheus's zero time: never");
  assert.equal(timeMs('2026-11-30T10:00:00Z'), Date.UTC(2026, 10, 30, 10));
  const now = Date.UTC(2026, 10, 30, 12);
  assert.equal(ago(now - 400, now), 'just now');
  assert.equal(ago(now - 12000, now), '12 s ago');
  assert.equal(ago(now - 3 * 60000, now), '3 min ago');
  assert.equal(ago(now - 125 * 60000, now), '2 h 5 min ago');
  assert.equal(ago(now - 49 * 3600000, now), '2 d ago');
  assert.equal(tookText(0.0000052), '5 µs');
  assert.equal(tookText(0.000234), '234 µs');
  assert.equal(tookText(0.0023), '2.3 ms');
  assert.equal(tookText(0.0456), '46 ms');
  assert.equal(tookText(1.5), '1.50 s');
});
