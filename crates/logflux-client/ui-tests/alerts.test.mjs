// The alerts page in a real browser, against the `logflux serve --rules` tests/ui_browser.rs
// starts beside the stack (its ALERT_RULES over the known entries): the firing alert is listed
// first with its labels, annotations, start and value, then the pending one; every rule is in
// its group's table with its state and health (a failing rule's error written out); a rule's
// Explore link opens its log query; the page refreshes by itself every 10 s and on the button,
// by keyboard too; an error reading the API is said plainly; the stack's own serve, which has
// no rules, says how to configure them; axe finds no serious or critical violation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ui, openPage, close, shot, axe, waitFor } from './harness.mjs';

/** The known entries the rule CheckoutTimeouts counts. */
const TIMEOUTS = ui.fixtures.filter((f) => f.source === 'billing' && f.payload.includes('checkout-timeout')).length;

/** A GET of the alerts serve's API with its token. */
async function api(path) {
  const r = await fetch(`${ui.alerts.url}${path}`, { headers: { Authorization: `Bearer ${ui.alerts.token}` } });
  assert.equal(r.status, 200, `${path} answered ${r.status}`);
  return (await r.json()).data;
}

/**
 * Waits until serve has evaluated every rule once after its backfill (the states the page
 * should show exist): CheckoutTimeouts firing, CheckoutTimeoutsSustained pending.
 */
async function evaluated() {
  await waitFor(async () => {
    const alerts = (await api('/api/v1/alerts')).alerts;
    const rules = (await api('/api/v1/rules')).groups.flatMap((g) => g.rules);
    return (
      alerts.some((a) => a.labels.alertname === 'CheckoutTimeouts' && a.state === 'firing') &&
      alerts.some((a) => a.labels.alertname === 'CheckoutTimeoutsSustained' && a.state === 'pending') &&
      rules.every((r) => r.health !== 'unknown')
    );
  }, 'serve evaluated the rules after its backfill', { timeout: 60000, every: 250 });
}

/** The alerts page of the serve with rules, shown once it lists the firing alert. */
async function openAlerts(opts = {}) {
  await evaluated();
  const s = await openPage('/alerts', { ...opts, link: ui.alerts.link });
  await s.page.locator('.lf-alert[data-alertname="CheckoutTimeouts"]').waitFor();
  return s;
}

const texts = (loc) => loc.evaluateAll((els) => els.map((e) => e.textContent.trim()));

test('the firing alert comes first with its labels and annotations, then every rule by group', async (t) => {
  if (!ui.alerts) return t.skip('no serve with rules (LOGFLUX_UI_ALERTS_URL): run through tests/ui_browser.rs');
  const s = await openAlerts();
  const { page } = s;
  try {
    assert.equal(await page.getByRole('link', { name: 'Alerts', exact: true }).getAttribute('aria-current'), 'page');
    await page.getByRole('heading', { name: 'Alerts', level: 1 }).waitFor();
    assert.equal(await page.getByTestId('alerts-summary').textContent(), '1 firing, 1 pending; 4 rules in 2 groups, 1 failing.');
    // The rule file serve left out is named, with what is wrong.
    const problems = await page.getByTestId('rule-problems').textContent();
    assert.ok(problems.includes('zz-broken.yaml') && problems.includes('left out'), problems);

    // Firing first, then pending; the quiet rule has no alert.
    const active = page.getByRole('list', { name: 'Firing and pending' }).locator(':scope > li');
    assert.deepEqual(await active.evaluateAll((els) => els.map((e) => `${e.dataset.state} ${e.dataset.alertname}`)), [
      'firing CheckoutTimeouts',
      'pending CheckoutTimeoutsSustained',
    ]);
    const firing = active.first();
    assert.equal(await firing.getByRole('heading', { level: 3 }).textContent(), 'firing CheckoutTimeouts');
    assert.deepEqual(await texts(firing.getByRole('list', { name: 'Labels of CheckoutTimeouts' }).locator('li')), [
      'severity=page',
      'source=billing',
      'team=payments',
    ]);
    const fact = async (item, name) => item.locator('dt', { hasText: new RegExp(`^${name}$`) }).locator('xpath=following-sibling::dd').textContent();
    assert.equal(await fact(firing, 'summary'), `billing: ${TIMEOUTS} checkout timeouts in the last hour`);
    assert.equal(await fact(firing, 'description'), 'Orders time out at checkout; see the billing runbook.');
    assert.equal(await fact(firing, 'Value'), String(TIMEOUTS));
    // Active since: how long ago, and the local time of serve's activeAt.
    const { alerts } = await api('/api/v1/alerts');
    const activeAt = Date.parse(alerts.find((a) => a.labels.alertname === 'CheckoutTimeouts').activeAt);
    const since = await fact(firing, 'Active since');
    assert.match(since, /^(just now|\d+ s ago|\d+ min ago) \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$/, since);
    assert.equal(await firing.locator('time').getAttribute('datetime'), new Date(activeAt).toISOString());
    assert.equal(await fact(active.nth(1), 'summary'), 'more than 5 checkout timeouts an hour, for an hour');

    // Every rule in its group's table: state, health, query, `for`.
    const group = page.getByRole('region', { name: 'checkout', exact: true });
    assert.match(await group.locator('.lf-group-facts').textContent(), /file .*checkout\.yaml.*every 1s.*last evaluation/);
    const table = group.getByRole('table', { name: 'Rules of the group checkout' });
    const row = (name) => table.locator(`tr[data-rule="${name}"]`);
    const cells = async (name) => texts(row(name).locator('th, td'));
    assert.deepEqual(
      await table.locator('tbody tr').evaluateAll((els) => els.map((e) => `${e.dataset.rule} ${e.dataset.state} ${e.dataset.health}`)),
      ['CheckoutTimeouts firing ok', 'CheckoutTimeoutsSustained pending ok', 'NoSuchWord inactive ok'],
    );
    const quiet = await cells('NoSuchWord');
    assert.equal(quiet[0], 'NoSuchWord');
    assert.equal(quiet[1], 'inactive');
    assert.match(quiet[2], /^ok\s*evaluated (just now|\d+ s ago)/);
    assert.match(quiet[3], /^sum by \(source\) \(count_over_time\(\{source="billing"\} \|= "no-such-word" \[1h\]\)\) > 0\s*Explore$/);
    assert.equal(quiet[4], '0s');
    assert.equal(quiet[5], 'none');
    assert.equal(quiet[6], 'summarynever fires');
    assert.equal((await cells('CheckoutTimeoutsSustained'))[4], '1h');

    // The failing rule: its health and serve's reason, as text.
    const limited = page.getByRole('region', { name: 'limited', exact: true });
    const failing = limited.locator('tr[data-rule="EverySource"]');
    assert.equal(await failing.getAttribute('data-health'), 'err');
    const lastError = (await api('/api/v1/rules')).groups.find((g) => g.name === 'limited').rules[0].lastError;
    assert.ok(lastError, 'serve gives the failing rule a lastError');
    assert.equal(await failing.locator('.lf-health').textContent(), 'error');
    assert.equal(await failing.locator('.lf-rule-error').textContent(), lastError);
    assert.match(await limited.locator('.lf-group-facts').textContent(), /at most 1 alert per rule/);

    await shot(page, 'alerts');

    // A rule's Explore link: its log query over its window, the link its alerts' generatorURL carries.
    const link = row('CheckoutTimeouts').getByRole('link', { name: 'Explore the log query of CheckoutTimeouts' });
    const href = await link.getAttribute('href');
    const p = new URLSearchParams(href.replace(/^#\/explore\?/, ''));
    assert.equal(p.get('q'), '{source="billing"} |= "checkout-timeout"');
    assert.equal(p.get('since'), '1h');
    assert.equal(
      await firing.getByRole('link', { name: 'Explore the entries of CheckoutTimeouts' }).getAttribute('href'),
      href,
    );
    await link.click();
    await waitFor(() => page.evaluate(() => location.hash.startsWith('#/explore?')), 'the explore page');
    assert.equal(await page.evaluate(() => location.hash), href);
  } finally {
    await close(s);
  }
});

test('the page refreshes by itself every 10 s, and with the button (by keyboard too)', async (t) => {
  if (!ui.alerts) return t.skip('no serve with rules (LOGFLUX_UI_ALERTS_URL)');
  const s = await openAlerts();
  const { page } = s;
  try {
    const requests = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/v1/alerts')) requests.push(Date.now());
    });
    const opened = Date.now();
    // By itself: the next request within the 10 s period (and some slack for a slow machine).
    await waitFor(() => requests.length >= 1, 'a refresh by itself', { timeout: 13000, every: 100 });
    assert.ok(requests[0] - opened <= 12000, `refreshed after ${requests[0] - opened} ms`);

    // The button, reached with Tab and pressed with Enter.
    await page.locator('body').focus();
    let reached = false;
    for (let i = 0; i < 20 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.textContent === 'Refresh now');
    }
    assert.ok(reached, 'Tab reaches "Refresh now"');
    const before = requests.length;
    await page.keyboard.press('Enter');
    await waitFor(() => requests.length > before, 'a refresh on Enter');

    // And Tab goes on to the alerts' and rules' Explore links.
    let explore = false;
    for (let i = 0; i < 20 && !explore; i++) {
      await page.keyboard.press('Tab');
      explore = await page.evaluate(() => (document.activeElement?.getAttribute('aria-label') || '').startsWith('Explore the'));
    }
    assert.ok(explore, 'Tab reaches an Explore link');
  } finally {
    await close(s);
  }
});

test('an error reading the alerts is said plainly, and goes with the next good answer', async (t) => {
  if (!ui.alerts) return t.skip('no serve with rules (LOGFLUX_UI_ALERTS_URL)');
  const s = await openAlerts();
  const { page } = s;
  try {
    await page.route('**/api/v1/rules', (r) =>
      r.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ status: 'error', error: 'the evaluator is restarting' }) }),
    );
    const n = page.problems.length;
    await page.getByRole('button', { name: 'Refresh now' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.textContent(), /^The alerts could not be read: the evaluator is restarting \(showing what was read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$/);
    // What was read before stays listed.
    assert.equal(await page.locator('.lf-alert[data-alertname="CheckoutTimeouts"]').count(), 1);
    await page.unroute('**/api/v1/rules');
    await page.getByRole('button', { name: 'Refresh now' }).click();
    await waitFor(async () => (await page.getByRole('alert').count()) === 0, 'the error to go');
    // The browser logs the 503s it was made to answer; nothing else may be logged.
    page.problems.push(...page.problems.splice(n).filter((p) => !/status of 503/.test(p)));
  } finally {
    await close(s);
  }
});

test('without rules the page says how to configure them', async () => {
  const s = await openPage('/alerts');
  const { page } = s;
  try {
    const empty = page.getByTestId('no-rules');
    await empty.waitFor();
    assert.equal(await empty.getByRole('heading', { level: 2 }).textContent(), 'No alert rules');
    const text = await empty.textContent();
    assert.ok(text.includes('logflux serve --rules DIR --receivers FILE'), text);
    assert.ok(text.includes('docs/alerts.md'), text);
    assert.ok(text.includes('alert_rules:'), text);
    assert.equal(await page.getByRole('table').count(), 0);
    assert.deepEqual(await axe(page), [], 'axe: the page without rules');
  } finally {
    await close(s);
  }
});

for (const scheme of ['light', 'dark']) {
  test(`axe: no serious or critical violations on the alerts page (${scheme})`, async (t) => {
    if (!ui.alerts) return t.skip('no serve with rules (LOGFLUX_UI_ALERTS_URL)');
    const s = await openAlerts({ colorScheme: scheme });
    const { page } = s;
    try {
      assert.deepEqual(await axe(page), []);
    } finally {
      await close(s);
    }
  });
}
