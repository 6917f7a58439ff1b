// The dashboards' pure rules, without a browser: the grid never lets panels overlap or leave
// the 12 columns, `$__interval`/`$__range` are replaced as documented, and Loki's answers
// become the rows and series the panels draw (sorted, limited, gaps kept as gaps).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { movePanel, resizePanel, settle, slugify, isDashboardId, newPanelId, panelProblems, importProblems } from '../ui/lib/dash-model.js';
import { substitute, vectorRows, matrixSeries, logEntries, labelText, formatValue, countsEntries } from '../ui/lib/dash-query.js';

const P = (id, x, y, w, h) => ({ id, title: id, type: 'stat', query: 'vector(1)', x, y, w, h });
const overlap = (a, b) => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
const noOverlap = (ps) => ps.every((a, i) => ps.every((b, j) => i === j || !overlap(a, b)));

test('moving a panel onto others pushes them down, never two in one cell', () => {
  const ps = [P('a', 0, 0, 6, 4), P('b', 6, 0, 6, 4), P('c', 0, 4, 12, 2)];
  const moved = movePanel(ps, 'a', 3, 0);
  assert.deepEqual(moved.find((p) => p.id === 'a'), { ...ps[0], x: 3 });
  assert.equal(moved.find((p) => p.id === 'b').y, 4, 'b is pushed under a');
  assert.equal(moved.find((p) => p.id === 'c').y, 8, 'and c under b');
  assert.ok(noOverlap(moved));
  assert.deepEqual(ps[0], P('a', 0, 0, 6, 4), 'the input is not changed');
});

test('a panel stays inside the 12 columns and above row 0', () => {
  const ps = [P('a', 10, 0, 2, 2)];
  assert.equal(movePanel(ps, 'a', 5, 0)[0].x, 10);
  assert.equal(movePanel(ps, 'a', 0, -3)[0].y, 0);
  assert.equal(resizePanel(ps, 'a', 4, 0)[0].w, 2, 'wider than the row allows at x=10');
  assert.equal(resizePanel([P('a', 0, 0, 1, 1)], 'a', -1, -1)[0].w, 1);
  assert.equal(resizePanel([P('a', 0, 0, 1, 20)], 'a', 0, 5)[0].h, 20);
});

test('resizing pushes what it now covers', () => {
  const ps = [P('a', 0, 0, 6, 2), P('b', 6, 0, 6, 2)];
  const r = resizePanel(ps, 'a', 1, 0);
  assert.equal(r[0].w, 7);
  assert.equal(r[1].y, 2);
  assert.ok(noOverlap(r));
  assert.ok(noOverlap(settle([P('a', 0, 0, 12, 3), P('b', 0, 0, 12, 3), P('c', 0, 1, 6, 1)], 'a')));
});

test('ids and checks', () => {
  assert.equal(slugify('  Web — errors & 5xx! '), 'web-errors-5xx');
  assert.equal(slugify('!!!'), 'dashboard');
  assert.ok(isDashboardId('a-1') && !isDashboardId('A') && !isDashboardId('a/b') && !isDashboardId('x'.repeat(65)));
  assert.equal(newPanelId([{ id: 'p1' }, { id: 'p3' }]), 'p4');
  assert.equal(newPanelId([]), 'p1');
  assert.deepEqual(panelProblems(P('a', 0, 0, 12, 20)), []);
  assert.ok(panelProblems({ ...P('a', 8, 0, 6, 2) }).some((m) => m.includes('fit')));
  assert.ok(panelProblems({ ...P('a', 0, 0, 6, 2), type: 'pie', title: ' ' }).length === 2);
  assert.deepEqual(importProblems({ title: 'x', panels: [] }), []);
  assert.equal(importProblems([]).length, 1);
  assert.equal(importProblems({ panels: {} }).length, 2);
});

test('$__interval is the step and $__range the whole range, in seconds', () => {
  assert.equal(
    substitute('sum(count_over_time({a="b"}[$__interval])) / sum(count_over_time({a="b"}[$__range]))', 30, 3600),
    'sum(count_over_time({a="b"}[30s])) / sum(count_over_time({a="b"}[3600s]))',
  );
  assert.equal(substitute('{app="x"} |= "$__auto"', 30, 60), '{app="x"} |= "$__auto"', 'serve replaces $__auto');
});

test('a vector becomes rows, largest first, at most limit', () => {
  const data = { resultType: 'vector', result: [
    { metric: { source: 'a' }, value: [1, '3'] }, { metric: { source: 'b' }, value: [1, '10'] }, { metric: { source: 'c' }, value: [1, '7'] },
  ] };
  assert.deepEqual(vectorRows(data, 2), [{ metric: { source: 'b' }, value: 10 }, { metric: { source: 'c' }, value: 7 }]);
  assert.deepEqual(vectorRows({ resultType: 'scalar', result: [1, '2'] }, 0), [{ metric: {}, value: 2 }]);
  assert.throws(() => vectorRows({ resultType: 'streams', result: [] }), /metric query/);
});

test('a matrix becomes aligned series with gaps as null', () => {
  const m = matrixSeries([
    { metric: { level: 'info' }, values: [[10, '1'], [20, '2']] },
    { metric: { level: 'error' }, values: [[20, '5'], [30, '6']] },
  ]);
  assert.deepEqual(m.xs, [10, 20, 30]);
  assert.deepEqual(m.series.map((s) => [s.label, s.values]), [['error', [null, 5, 6]], ['info', [1, 2, null]]]);
});

test('counts are drawn as 0 on every step without a point; other values keep their gaps', () => {
  const result = [{ metric: { level: 'info' }, values: [[25, '1'], [45, '3']] }];
  const filled = matrixSeries(result, { step: 10, start: 0, end: 50 }, 0);
  assert.deepEqual(filled.xs, [5, 15, 25, 35, 45], 'the steps on the answer\'s own alignment');
  assert.deepEqual(filled.series[0].values, [0, 0, 1, 0, 3]);
  assert.deepEqual(matrixSeries(result, { step: 10, start: 0, end: 50 }, null).series[0].values, [null, null, 1, null, 3]);
  assert.ok(countsEntries('sum by (level) (count_over_time({app=~".+"}[1m]))'));
  assert.ok(countsEntries('sum(rate({app="a"}[5m]))'));
  assert.ok(!countsEntries('avg_over_time({app="a"} | unwrap took_ms [5m])'));
});

test('log streams become entries, newest first, at most limit', () => {
  const e = logEntries([
    { stream: { app: 'a', level: 'error' }, values: [['3000000000000000001', 'third'], ['1000000000000000000', 'first']] },
    { stream: { app: 'b', level: 'info' }, values: [['2000000000000000000', 'second', { structuredMetadata: { k: 'v' } }]] },
  ], 2);
  assert.deepEqual(e.map((x) => x.line), ['third', 'second']);
  assert.deepEqual(e[1].metadata, { k: 'v' });
});

test('labels and values as text', () => {
  assert.equal(labelText({ level: 'error' }), 'error');
  assert.equal(labelText({ b: '2', a: '1' }), '{a="1", b="2"}');
  assert.equal(labelText({}), '{}');
  assert.equal(formatValue('42'), '42');
  assert.equal(formatValue('0.123456'), '0.1235');
});
