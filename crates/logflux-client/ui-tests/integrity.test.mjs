// A record that fails its integrity check, as the explore page shows it: a warning (role=alert)
// naming the record, its segment and application, never the record's content; the other entries
// still listed. Run by tests/ui_browser.rs after the other files, once it has damaged the record
// of `logflux up`'s self-test entry (LOGFLUX_UI_DAMAGED is that entry's payload).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { close, openPage, ui, waitFor } from './harness.mjs';

const damaged = process.env.LOGFLUX_UI_DAMAGED;

test('a record that fails its integrity check is named in a warning, its content never shown', async () => {
  assert.ok(damaged, 'LOGFLUX_UI_DAMAGED is set (tests/ui_browser.rs damages the record first)');
  // Every entry of the last hour: the self-test entry's record is among those read.
  const p = await openPage(`/explore?${new URLSearchParams({ q: '{app=~".+"}', since: '1h' })}`);
  const { page } = p;
  // What serve answers the page, read again from the start.
  const answers = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/loki/')) answers.push(r.text().catch(() => ''));
  });
  await page.reload();
  const banner = await page.waitForSelector('[data-testid=warnings]', { timeout: 30000 });
  assert.equal(await banner.getAttribute('role'), 'alert');
  const warnings = await page.$$eval('[data-testid=warnings] li', (els) => els.map((e) => e.textContent));
  assert.equal(warnings.length, 1, `one damaged record: ${warnings}`);
  assert.match(warnings[0], /^record agent-\S+ of segment \S+ \(application default\) failed its integrity check: left out$/);
  // The other entries are listed: every known one (the status line counts them).
  const n = await waitFor(async () => {
    const t = (await page.textContent('[data-testid=status]')).trim();
    const m = t.match(/^([\d,]+) entr(?:y|ies) in \d+ ms/);
    return m && Number(m[1].replace(/,/g, ''));
  }, 'the search finished');
  assert.ok(n >= ui.fixtures.length, `${n} entries listed, the ${ui.fixtures.length} known ones among them`);
  const sources = await page.$$eval('[data-field=source] .v', (els) => els.map((e) => e.textContent));
  assert.ok(!sources.some((s) => s.includes('logflux-up')), `the damaged entry's source is not listed: ${sources}`);
  // Nowhere on the page (text or attribute), nor in what serve answered it.
  assert.ok(!(await page.content()).includes(damaged), "the damaged entry's payload is on the page");
  assert.ok(answers.length > 0, 'serve answered the page');
  for (const body of await Promise.all(answers)) assert.ok(!body.includes(damaged), "the damaged entry's payload is in serve's answer");
  await close(p);
});
