// The dashboards pages in a real browser against a `logflux serve` filled with the known
// entries: the Overview's panels show those entries' numbers, a dashboard built here keeps
// its panel across a reload, a panel resized stays resized, export downloads the stored
// JSON, import stores it under another id, and axe finds no serious or critical violation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ui, openPage, close, shot, axe, waitFor, serveFetch } from './harness.mjs';

const LEVEL_RE = /level\s*(=~|=)\s*"([^"]*)"/;

/** Polls `fn` until it returns a truthy value (the harness's waitFor, with a longer deadline). */
const until = (fn, what) => waitFor(fn, what, { timeout: 15000 });

/** A GET of serve's UI API from the test (bearer token): `{status, text}`. */
async function api(path) {
  const r = await serveFetch(path);
  return { status: r.status, text: await r.text() };
}

/**
 * Runs `fn`, whose requests may fail on purpose (a 404 of a dashboard deleted, a 400 of a bad
 * query): the browser logs each as a console error, which `close` would count as a problem.
 * Only those lines are dropped; any other problem stays.
 */
async function expectingFailedRequests(page, fn) {
  const n = page.problems.length;
  const out = await fn();
  const added = page.problems.splice(n).filter((p) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(p));
  page.problems.push(...added);
  return out;
}

/** Deletes a dashboard if it exists, so a rerun starts clean (serve answers 204 or 404). */
async function remove(id) {
  const r = await serveFetch(`/api/ui/dashboards/${id}`, { method: 'DELETE' });
  assert.ok([204, 404].includes(r.status), `DELETE ${id} answered ${r.status}`);
}

/** The fixtures of the last `hours` hours (the range a test shows), a minute of margin at its start. */
function inLast(hours) {
  const now = BigInt(Date.now()) * 1000000n;
  const from = now - BigInt(hours) * 3600n * 1000000000n + 60n * 1000000000n;
  return ui.fixtures.filter((e) => BigInt(e.ts_ns) >= from && BigInt(e.ts_ns) <= now);
}
const inLastWeek = () => inLast(7 * 24);

/** The fixtures a query's `level` matcher selects (`level="x"` or `level=~"a|b"`); all when it has none. */
function byLevelOf(query, entries) {
  const m = LEVEL_RE.exec(query);
  if (!m) return entries;
  const re = m[1] === '=~' ? new RegExp(`^(?:${m[2]})$`) : null;
  return entries.filter((e) => (re ? re.test(e.level) : e.level === m[2]));
}

const panel = (page, title) => page.locator('section.lf-panel').filter({ has: page.getByRole('heading', { name: title, exact: true }) });

test('the Overview renders its panels with the known entries', async () => {
  // The Overview's own range: the fixtures are all of the last hour.
  const s = await openPage('/dashboards/overview?since=1h');
  const { page } = s;
  try {
    const stored = JSON.parse((await api('/api/ui/dashboards/overview')).text);
    const byType = (t) => stored.panels.find((p) => p.type === t);
    for (const p of stored.panels) await panel(page, p.title).waitFor();
    const entries = inLast(1);
    assert.ok(entries.length > 0, 'the fixtures hold entries of the last hour');

    // The stat: the count of the entries its query's level matcher selects.
    const stat = byType('stat');
    const wantErrors = byLevelOf(stat.query, entries).length;
    assert.ok(wantErrors > 0, 'the fixtures hold error-level entries');
    const statText = await until(async () => {
      const t = await panel(page, stat.title).locator('.lf-stat-value').textContent({ timeout: 1000 });
      return t;
    }, 'the stat panel');
    assert.equal(Number(statText), wantErrors, `${stat.title} counts the error-level fixtures`);

    // The table: counts by source, largest first.
    const table = byType('table');
    const rows = await until(async () => {
      const r = await panel(page, table.title).locator('tbody tr').allTextContents();
      return r.length ? r : null;
    }, 'the table rows');
    const counts = {};
    for (const e of entries) counts[e.source] = (counts[e.source] || 0) + 1;
    const cells = await panel(page, table.title).locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const values = cells.map((c) => Number(c[c.length - 1]));
    assert.deepEqual(values, [...values].sort((a, b) => b - a), 'the table is sorted, largest first');
    for (const c of cells) if (c[0] in counts) assert.equal(Number(c[c.length - 1]), counts[c[0]], `the count of source ${c[0]}`);
    assert.ok(rows.length >= Math.min(10, Object.keys(counts).length), 'every fixture source is listed (up to 10)');

    // The logs panel: newest first, the newest error-level entry on top, shown as text.
    const logs = byType('logs');
    const wantLogs = byLevelOf(logs.query, entries).sort((a, b) => (BigInt(b.ts_ns) > BigInt(a.ts_ns) ? 1 : -1));
    const first = await until(() => panel(page, logs.title).locator('.lf-logs li .lf-line').first().textContent({ timeout: 1000 }), 'the logs panel');
    assert.equal(first, wantLogs[0].payload);

    // The time series: a chart whose legend names the levels of the entries.
    const ts = stored.panels.filter((p) => p.type === 'timeseries');
    assert.ok(ts.length >= 1);
    const byLevel = ts.find((p) => /by \(level\)/.test(p.query)) || ts[0];
    await panel(page, byLevel.title).locator('canvas').waitFor();
    const legend = await panel(page, byLevel.title).locator('.u-legend .u-series th').allTextContents();
    for (const level of new Set(entries.map((e) => e.level))) {
      assert.ok(legend.some((l) => l.includes(level)), `the legend shows level ${level} (legend: ${legend.join(', ')})`);
    }
    assert.equal(await page.locator('.lf-panel-error').count(), 0, 'no panel shows an error');
    await shot(page, 'dashboards-overview');

    // Edit mode shows every panel's layout controls; leaving it unchanged asks nothing.
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    assert.equal(await page.locator('.lf-tools').count(), stored.panels.length);
    await shot(page, 'dashboard-editing');
    await page.getByRole('button', { name: 'Discard changes' }).click();
    await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();
    assert.equal(await page.locator('.lf-tools').count(), 0);
  } finally {
    await close(s);
  }
});

test('a bad query shows its error in its panel only', async () => {
  const s = await openPage('/dashboards');
  const { page } = s;
  try {
    await remove('broken-one');
    const put = (await serveFetch('/api/ui/dashboards/broken-one', {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ version: 1, id: 'broken-one', title: 'Broken one', range: { since: '7d' }, refresh: null, panels: [
        { id: 'p1', title: 'Bad', type: 'stat', query: 'sum(count_over_time({app=~".+"[5m]))', x: 0, y: 0, w: 6, h: 4 },
        { id: 'p2', title: 'Good', type: 'stat', query: 'sum(count_over_time({app=~".+"}[$__range]))', x: 6, y: 0, w: 6, h: 4 },
      ] }),
    })).status;
    assert.ok(put >= 200 && put < 300, `PUT answered ${put}`);
    await page.goto(`${ui.url}/ui/#/dashboards/broken-one`);
    const err = await expectingFailedRequests(page, () =>
      until(() => panel(page, 'Bad').locator('.lf-panel-error').textContent({ timeout: 1000 }), 'the bad panel\'s error'));
    assert.match(err, /parse error/, 'serve\'s own message is shown');
    const good = await until(() => panel(page, 'Good').locator('.lf-stat-value').textContent({ timeout: 1000 }), 'the good panel');
    assert.ok(Number(good) >= inLastWeek().length, 'the other panel still shows its number');
    await remove('broken-one');
  } finally {
    await close(s);
  }
});

test('build a dashboard with a panel, save, reload, resize, export and import it', async () => {
  const s = await openPage('/dashboards');
  const { page } = s;
  try {
    for (const id of ['ui-test-board', 'ui-test-board-copy']) await remove(id);
    await page.reload();
    await page.getByRole('heading', { name: 'Dashboards', level: 1 }).waitFor();

    // Create: the id follows the title.
    await page.getByLabel('Title', { exact: true }).fill('UI test board');
    assert.equal(await page.getByLabel('Id (file name)').inputValue(), 'ui-test-board');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('button', { name: 'Add panel' }).waitFor();
    await page.getByLabel('Time range').selectOption('7d');

    // Add a stat panel counting the error entries.
    await page.getByRole('button', { name: 'Add panel' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Type').selectOption('stat');
    await dialog.getByLabel('Title').fill('Errors here');
    await dialog.getByLabel(/^Query/).fill('sum(count_over_time({app=~".+", level="error"}[$__range]))');
    await dialog.getByLabel(/^Width/).fill('4');
    await dialog.getByLabel(/^Height/).fill('3');
    await dialog.getByRole('button', { name: 'Add' }).click();
    await panel(page, 'Errors here').waitFor();
    assert.deepEqual(await axe(page), [], 'axe: the dashboard being edited');
    await page.getByRole('button', { name: 'Save dashboard' }).click();
    await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();

    // Reload: the panel is there, with data.
    await page.reload();
    const want = inLastWeek().filter((e) => e.level === 'error').length;
    const value = await until(() => panel(page, 'Errors here').locator('.lf-stat-value').textContent({ timeout: 1000 }), 'the saved panel\'s number');
    assert.equal(Number(value), want);
    const stored = JSON.parse((await api('/api/ui/dashboards/ui-test-board')).text);
    assert.equal(stored.panels.length, 1);
    assert.deepEqual({ w: stored.panels[0].w, h: stored.panels[0].h, type: stored.panels[0].type }, { w: 4, h: 3, type: 'stat' });
    assert.deepEqual(stored.range, { since: '7d' });

    // Resize with the keyboard-reachable buttons: two columns wider, one row taller.
    const before = await panel(page, 'Errors here').boundingBox();
    await page.getByRole('button', { name: 'Edit', exact: true }).click();
    const wider = page.getByRole('button', { name: 'Wider: Errors here' });
    await wider.focus();
    await page.keyboard.press('Enter');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Taller: Errors here' }).click();
    await page.getByRole('button', { name: 'Save dashboard' }).click();
    await page.getByRole('button', { name: 'Edit', exact: true }).waitFor();
    await page.reload();
    await panel(page, 'Errors here').locator('.lf-stat-value').waitFor();
    const after = await panel(page, 'Errors here').boundingBox();
    assert.ok(after.width > before.width * 1.3, `wider: ${before.width} → ${after.width}`);
    assert.ok(after.height > before.height, `taller: ${before.height} → ${after.height}`);
    const resized = JSON.parse((await api('/api/ui/dashboards/ui-test-board')).text);
    assert.deepEqual({ w: resized.panels[0].w, h: resized.panels[0].h }, { w: 6, h: 4 });

    // Export from the list: the download equals the stored dashboard.
    await page.goto(`${ui.url}/ui/#/dashboards`);
    const row = page.locator('tr[data-id="ui-test-board"]');
    const [dl] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Export UI test board' }).click()]);
    assert.equal(dl.suggestedFilename(), 'ui-test-board.json');
    const file = await dl.path();
    const exported = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(exported, resized);

    // Import the file under another id.
    await page.getByLabel('Import a dashboard (JSON file)').setInputFiles({ name: 'ui-test-board.json', mimeType: 'application/json', buffer: fs.readFileSync(file) });
    const imp = page.getByRole('dialog', { name: 'Import dashboard' });
    await imp.getByLabel('Store under the id').fill('ui-test-board');
    await imp.getByRole('button', { name: 'Import' }).click();
    await imp.getByText('exists. Replace it?').waitFor();
    await imp.getByLabel('Store under the id').fill('ui-test-board-copy');
    await imp.getByRole('button', { name: 'Import' }).click();
    await page.locator('tr[data-id="ui-test-board-copy"]').waitFor();
    const copy = JSON.parse((await api('/api/ui/dashboards/ui-test-board-copy')).text);
    assert.deepEqual(copy, { ...resized, id: 'ui-test-board-copy' });

    // Delete the copy, after the confirmation.
    await page.locator('tr[data-id="ui-test-board-copy"]').getByRole('button', { name: /^Delete/ }).click();
    await page.getByRole('dialog', { name: 'Delete dashboard' }).getByRole('button', { name: 'Delete' }).click();
    await until(async () => (await page.locator('tr[data-id="ui-test-board-copy"]').count()) === 0, 'the deleted row to go');
    assert.equal((await api('/api/ui/dashboards/ui-test-board-copy')).status, 404);
  } finally {
    await close(s);
  }
});

test('an import serve refuses shows serve\'s answer', async () => {
  const s = await openPage('/dashboards');
  const { page } = s;
  try {
    await page.getByRole('heading', { name: 'Dashboards', level: 1 }).waitFor();
    const bad = { version: 1, id: 'ui-test-bad', title: 'Bad', range: { since: '1h' }, refresh: null, panels: [{ id: 'p1', title: 'x', type: 'stat', query: 'vector(1)', x: 0, y: 0, w: 4, h: 4, colour: 'red' }] };
    await page.getByLabel('Import a dashboard (JSON file)').setInputFiles({ name: 'bad.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(bad)) });
    const imp = page.getByRole('dialog', { name: 'Import dashboard' });
    const msg = await expectingFailedRequests(page, async () => {
      await imp.getByRole('button', { name: 'Import' }).click();
      return imp.getByRole('alert').textContent();
    });
    assert.match(msg, /colour/, 'the unknown field is named');
    await imp.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await api('/api/ui/dashboards/ui-test-bad')).status, 404);

    await page.getByLabel('Import a dashboard (JSON file)').setInputFiles({ name: 'notjson.json', mimeType: 'application/json', buffer: Buffer.from('{"title": ') });
    assert.match(await page.getByRole('alert').textContent(), /notjson\.json is not JSON/);
  } finally {
    await close(s);
  }
});

for (const scheme of ['light', 'dark']) {
  test(`axe: no serious or critical violations on the dashboards pages (${scheme})`, async () => {
    const s = await openPage('/dashboards');
    const { page } = s;
    try {
      await page.emulateMedia({ colorScheme: scheme });
      await page.locator('table.lf-dashlist').waitFor();
      assert.deepEqual(await axe(page), [], 'the list');
      await page.goto(`${ui.url}/ui/#/dashboards/overview?since=7d`);
      await page.locator('.lf-stat-value').waitFor();
      await until(async () => (await page.locator('section.lf-panel[aria-busy="true"]').count()) === 0, 'every panel loaded');
      assert.deepEqual(await axe(page), [], 'the Overview');
    } finally {
      await close(s);
    }
  });
}
