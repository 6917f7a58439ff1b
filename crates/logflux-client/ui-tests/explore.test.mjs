// The explore page against the known entries (tests/ui_browser.rs sends them; see the fixtures):
// search, filter by a field value, brush-zoom, an entry's details, keyboard, live tail, export,
// a bookmarked address, and axe in both themes. Screenshots: explore-light, explore-dark,
// explore-entry, explore-live-tail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { agentEntry, axe, close, openPage, sendEntries, shot, ui, waitFor } from './harness.mjs';

const ms = (f) => Number(BigInt(f.ts_ns) / 1000000n);
const KNOWN = '{source=~"web-api|worker|billing"}';

/** The number of entries the status line reports once the search has finished. */
async function count(page) {
  const [n] = await waitFor(async () => {
    // The count of the search the page now asks for, not the one before it — and the page
    // asks for the query the address names (the address changes before the page renders it).
    const current = await page.$eval('[data-testid=status]', (el) => {
      const q = new URLSearchParams(location.hash.split('?')[1] || '').get('q') || '';
      const rendered = !q.startsWith('{') || el.dataset.want.startsWith(`${q}|`);
      return rendered && el.dataset.for === el.dataset.want;
    });
    if (!current) return null;
    const t = (await page.textContent('[data-testid=status]')).trim();
    const m = t.match(/^([\d,]+) entr(?:y|ies) in \d+ ms/);
    return m ? [Number(m[1].replace(/,/g, ''))] : null;
  }, 'the search finished');
  return n;
}

/** The explore address of `q` over `range` ({since} or {start, end} in ms). */
function explore(q, range = { since: '1h' }) {
  const p = new URLSearchParams({ q });
  if (range.since) p.set('since', range.since);
  else {
    p.set('start', new Date(range.start).toISOString());
    p.set('end', new Date(range.end).toISOString());
  }
  return `/explore?${p}`;
}

/** The explore page's q, start and end as the address has them now. */
function params(page) {
  const hash = new URL(page.url()).hash;
  return new URLSearchParams(hash.slice(hash.indexOf('?') + 1));
}

/** The texts of the rows in the list's DOM (the virtualised list holds the ones in view). */
async function rowTexts(page) {
  return page.$$eval('[data-testid=results] .row .line', (els) => els.map((e) => e.textContent));
}

test('a search for words finds the known entries and highlights the words', async () => {
  const p = await openPage(explore('checkout-timeout'));
  const { page } = p;
  const want = ui.fixtures.filter((f) => f.payload.includes('checkout-timeout'));
  assert.ok(want.length >= 5, 'the fixtures have checkout-timeout entries');
  assert.equal(await count(page), want.length);
  assert.equal(await page.textContent('[data-testid=logql]'), '{app=~".+"} |= "checkout-timeout"');
  const lines = await rowTexts(page);
  assert.equal(lines.length, want.length);
  // Newest first, exactly the fixtures' payloads.
  const newestFirst = [...want].sort((a, b) => ms(b) - ms(a)).map((f) => f.payload);
  assert.deepEqual(lines, newestFirst);
  const marks = await page.$$eval('[data-testid=results] mark', (els) => els.map((e) => e.textContent));
  assert.equal(marks.length, want.length);
  assert.ok(marks.every((m) => m === 'checkout-timeout'));
  await close(p);
});

test('clicking a field value filters by it; its ≠ button leaves it out', async () => {
  const p = await openPage(explore(KNOWN));
  const { page } = p;
  assert.equal(await count(page), ui.fixtures.length);
  await page.click('[data-field=source] button.value:has-text("worker")');
  await waitFor(() => (params(page).get('q') || '').includes('source="worker"'), 'the address has the filter');
  const workers = ui.fixtures.filter((f) => f.source === 'worker').length;
  assert.equal(await count(page), workers);
  assert.equal(await page.inputValue('#query'), '{source="worker"}');
  const sources = await page.$$eval('[data-testid=results] .row .source', (els) => [...new Set(els.map((e) => e.textContent))]);
  assert.deepEqual(sources, ['worker']);
  // Exclude a level through the sidebar's ≠ button.
  await page.click('[data-field=level] li:has(button.value:has-text("debug")) button.exclude');
  await waitFor(() => (params(page).get('q') || '').includes('level!="debug"'), 'the address has the exclusion');
  assert.equal(await count(page), ui.fixtures.filter((f) => f.source === 'worker' && f.level !== 'debug').length);
  // A metadata value becomes a label filter after the selector.
  await page.click('[data-field=region] button.value:has-text("eu-west")');
  await waitFor(() => (params(page).get('q') || '').includes('| region="eu-west"'), 'the address has the metadata filter');
  assert.equal(
    await count(page),
    ui.fixtures.filter((f) => f.source === 'worker' && f.level !== 'debug' && f.metadata.region === 'eu-west').length,
  );
  await close(p);
});

test('dragging across the histogram narrows the range and the address', async () => {
  const p = await openPage(explore(KNOWN));
  const { page } = p;
  assert.equal(await count(page), ui.fixtures.length);
  const over = await page.waitForSelector('[data-testid=histogram] .u-over');
  const box = await over.boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 8 });
  await page.mouse.move(box.x + box.width * 0.6, y, { steps: 8 });
  await page.mouse.up();
  await waitFor(() => params(page).get('start') && params(page).get('end'), 'the address has start and end');
  const start = Date.parse(params(page).get('start'));
  const end = Date.parse(params(page).get('end'));
  assert.ok(end - start < 30 * 60000 && end - start > 5 * 60000, `a third of the hour: ${end - start} ms`);
  assert.equal(params(page).get('since'), null);
  const n = await count(page);
  // Entries are 40 s apart: only one within a second of an edge could go either way.
  const inside = (f, slack) => ms(f) >= start + slack && ms(f) < end - slack;
  const surely = ui.fixtures.filter((f) => inside(f, 1000)).length;
  const maybe = ui.fixtures.filter((f) => inside(f, -1000)).length;
  assert.ok(n >= surely && n <= maybe && n < ui.fixtures.length, `${n} entries, between ${surely} and ${maybe}`);
  await close(p);
});

test('an entry opens with its fields and pretty JSON; / j k Enter Esc work', async () => {
  const p = await openPage(explore('{source="worker"}'));
  const { page } = p;
  const workers = ui.fixtures.filter((f) => f.source === 'worker').sort((a, b) => ms(b) - ms(a));
  assert.equal(await count(page), workers.length);
  // Keyboard: / focuses the query; Esc leaves it; j j selects the second row; Enter opens it.
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'query');
  await page.keyboard.press('Escape');
  assert.notEqual(await page.evaluate(() => document.activeElement.id), 'query');
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('k');
  await page.keyboard.press('j');
  await page.keyboard.press('Enter');
  await page.waitForSelector('[data-testid=details]');
  const f = workers[1];
  const payload = await page.textContent('[data-testid=payload]');
  assert.deepEqual(JSON.parse(payload), JSON.parse(f.payload));
  assert.ok(payload.includes('\n  "job": "resize"'), `pretty-printed: ${payload}`);
  const table = await page.$$eval('[data-testid=details] table tbody tr', (trs) =>
    Object.fromEntries(trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])),
  );
  assert.equal(table.source, 'worker');
  assert.equal(table.level, f.level);
  assert.equal(table.app, f.app);
  assert.equal(table.region, f.metadata.region);
  assert.equal(table.request_id, f.metadata.request_id);
  await shot(page, 'explore-entry');
  await page.keyboard.press('Escape');
  await waitFor(async () => !(await page.$('[data-testid=details]')), 'Esc closes the details');
  // Show context: the same source around the entry's time.
  await page.click('[data-testid=results] .row[data-index="1"] .expand');
  await page.click('[data-testid=details] button:has-text("Show context")');
  await waitFor(() => params(page).get('q') === '{app="default", source="worker"}' && params(page).get('start'), 'context in the address');
  const start = Date.parse(params(page).get('start'));
  const end = Date.parse(params(page).get('end'));
  assert.ok(start < ms(f) && ms(f) < end && end - start === 10 * 60000);
  await count(page);
  await close(p);
});

test('the live tail shows an entry sent to the agent within 2 s', async () => {
  const marker = `tail-canary-${Math.random().toString(36).slice(2, 10)}`;
  const p = await openPage(explore(marker, { since: '15m' }));
  const { page } = p;
  assert.equal(await count(page), 0);
  await page.click('[data-testid=tail]');
  await page.waitForSelector('[data-testid=rate][data-connected=true]');
  const sent = Date.now();
  await sendEntries([agentEntry({ source: 'tail-test', level: 'warning', payload: `${marker} arrived` })]);
  await waitFor(async () => (await rowTexts(page)).some((t) => t === `${marker} arrived`), 'the tailed entry is listed', { timeout: 2000 - (Date.now() - sent), every: 25 });
  const took = Date.now() - sent;
  assert.ok(took <= 2000, `shown ${took} ms after it was sent`);
  await waitFor(async () => {
    const m = (await page.textContent('[data-testid=rate]')).match(/live · ([\d.]+) entries\/s/);
    return m && Number(m[1]) > 0;
  }, 'the rate counts it');
  // Paused: a new entry waits; resumed: it is listed.
  await page.click('button:has-text("Pause")');
  await sendEntries([agentEntry({ source: 'tail-test', level: 'info', payload: `${marker} while paused` })]);
  await waitFor(async () => (await page.textContent('.tail-controls')).includes('Resume (1 new)'), 'the paused entry is held');
  assert.ok(!(await rowTexts(page)).some((t) => t.includes('while paused')));
  await shot(page, 'explore-live-tail');
  await page.click('button:has-text("Resume")');
  await waitFor(async () => (await rowTexts(page))[0] === `${marker} while paused`, 'resumed: the held entry on top');
  await page.click('[data-testid=tail]');
  await close(p);
});

test('export downloads the current result', async () => {
  const p = await openPage(explore('checkout-timeout'));
  const { page } = p;
  const want = ui.fixtures.filter((f) => f.payload.includes('checkout-timeout'));
  assert.equal(await count(page), want.length);
  for (const format of ['ndjson', 'csv', 'json']) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(`[data-testid=export-${format}]`)]);
    assert.match(download.suggestedFilename(), new RegExp(`^logflux-.*\\.${format}$`));
    const body = readFileSync(await download.path(), 'utf8');
    if (format === 'ndjson') {
      const lines = body.trim().split('\n').map((l) => JSON.parse(l));
      assert.equal(lines.length, want.length);
      // Oldest first, the payloads as sent.
      assert.deepEqual(lines.map((l) => l.payload), [...want].sort((a, b) => ms(a) - ms(b)).map((f) => f.payload));
    } else if (format === 'csv') {
      const lines = body.trim().split('\n');
      assert.equal(lines.length, want.length + 1, 'a header and one line per entry');
      for (const f of want) assert.ok(body.includes(f.payload), `${f.payload} in the csv`);
    } else {
      const v = JSON.parse(body);
      assert.equal(v.length, want.length);
    }
  }
  await close(p);
});

test('a bookmarked address restores the query and the range', async () => {
  const now = Date.now();
  const range = { start: now - 40 * 60000, end: now - 10 * 60000 };
  const q = '{source="billing"} |= "invoice"';
  const p = await openPage(explore(q, range));
  const { page } = p;
  const want = ui.fixtures.filter((f) => f.source === 'billing' && f.payload.includes('invoice') && ms(f) >= range.start && ms(f) < range.end);
  assert.equal(await count(page), want.length);
  assert.equal(await page.inputValue('#query'), q);
  assert.equal(await page.getAttribute('.timepicker button:has-text("1h")', 'aria-pressed'), 'false');
  // A reload (the bookmark opened again) gives the same.
  await page.reload();
  assert.equal(await count(page), want.length);
  assert.equal(await page.inputValue('#query'), q);
  // A relative range in the address is pressed in the picker.
  await page.click('.timepicker button:has-text("24h")');
  await waitFor(() => params(page).get('since') === '24h' && !params(page).get('start'), 'the address has since=24h');
  // The page renders the range the address now names (the address changes first).
  await waitFor(async () => (await page.getAttribute('.timepicker button:has-text("24h")', 'aria-pressed')) === 'true', '24h pressed');
  await count(page);
  await close(p);
});

test('completion offers label names, values and recent queries', async () => {
  const p = await openPage(explore('checkout-timeout'));
  const { page } = p;
  await count(page);
  await page.fill('#query', '');
  await page.type('#query', '{sou');
  await page.waitForSelector('#query-options li:has-text("source")');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#query'), '{source="');
  await page.type('#query', 'wo');
  await page.waitForSelector('#query-options li:has-text("worker")');
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#query'), '{source="worker"');
  await page.type('#query', '}');
  await page.keyboard.press('Enter');
  // The status line still shows the previous search until this one ends: wait for its count.
  const workers = ui.fixtures.filter((f) => f.source === 'worker').length;
  await waitFor(async () => (await count(page)) === workers, `the ${workers} worker entries are listed`);
  // The recent query typed before is offered.
  await page.fill('#query', '');
  await page.type('#query', 'checkout');
  await page.waitForSelector('#query-options li:has-text("checkout-timeout")');
  await close(p);
});

for (const colorScheme of ['light', 'dark']) {
  test(`axe finds no serious or critical violation (${colorScheme})`, async () => {
    const p = await openPage(explore(KNOWN), { colorScheme });
    const { page } = p;
    await count(page);
    await page.waitForSelector('[data-testid=histogram] canvas');
    await shot(page, `explore-${colorScheme}`);
    assert.deepEqual(await axe(page), []);
    await page.click('[data-testid=results] .row[data-index="0"] .expand');
    await page.waitForSelector('[data-testid=details]');
    assert.deepEqual(await axe(page), [], 'with an entry open');
    await close(p);
  });
}
