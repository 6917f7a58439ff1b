// Security of the UI in the browser: entry content that holds HTML and script is shown as text
// and runs nothing (XSS), and a page of another origin — in the same browser, which has the
// session cookie — can neither read serve's answers nor change anything through /api/ui/*
// (CSRF).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { agentEntry, close, openPage, sendEntries, serveFetch, ui, waitFor } from './harness.mjs';

test('HTML and script in payload, source and metadata are shown as text and never run', async () => {
  const probe = `xssprobe${Math.random().toString(36).slice(2, 8)}`;
  const img = (what) => `<img src=x onerror="document.title='pwned-${what}';window.__pwned='${what}'">`;
  const hostile = [
    { source: 'xss-test', level: 'error', payload: `${probe} payload ${img('payload')} <script>window.__pwned='script'</script>` },
    { source: `${img('source')}<b>src</b>`, level: 'warning', payload: `${probe} source` },
    { source: 'xss-test', level: 'info', payload: `${probe} metadata`, metadata: { note: img('metadata'), '<svg onload=alert(1)>': 'key' } },
    { source: 'xss-test', level: 'notice', payload: JSON.stringify({ probe, html: img('json') }) },
  ];
  await sendEntries(hostile.map(agentEntry));
  const p = await openPage(`/explore?${new URLSearchParams({ q: probe, since: '15m' })}`);
  const { page } = p;
  await waitFor(async () => (await page.textContent('[data-testid=status]')).trim().startsWith(`${hostile.length} entries in`), 'the hostile entries are listed', { timeout: 20000 });
  const lines = await page.$$eval('[data-testid=results] .row .line', (els) => els.map((e) => e.textContent));
  assert.ok(lines.some((l) => l.includes(img('payload'))), 'the payload is shown as the text it is');
  const sources = await page.$$eval('[data-testid=results] .row .source', (els) => els.map((e) => e.textContent));
  assert.ok(sources.includes(`${img('source')}<b>src</b>`), 'the source is shown as text');
  // Open every entry: the details render labels, metadata and the (pretty JSON) payload too.
  for (let i = 0; i < hostile.length; i++) {
    await page.click(`[data-testid=results] .row[data-index="${i}"] .expand`);
    await page.waitForSelector('[data-testid=details]');
    assert.equal(await page.$$eval('[data-testid=details] img, [data-testid=details] script, [data-testid=details] svg, [data-testid=details] b', (e) => e.length), 0);
  }
  const details = await page.textContent('[data-testid=details]');
  assert.ok(details.length > 0);
  // The field sidebar lists the metadata key and value as text.
  assert.ok((await page.textContent('aside.fields')).includes('<svg onload=alert(1)>') || (await page.textContent('aside.fields')).includes('_svg_onload_alert_1__'));
  const injected = await page.$$eval('#main img, #main script, #main svg, #main b', (e) => e.map((x) => x.outerHTML));
  assert.deepEqual(injected, [], 'no element was made from content');
  assert.equal(await page.title(), 'LogFlux');
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  await close(p); // no CSP violation either: nothing even tried to run
});

/** Serves `html` on a loopback port of its own: another origin than serve's (same site: the worst case for the cookie). */
async function attackerServer(html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${server.address().port}/attack.html` };
}

test('a page of another origin cannot read serve nor change anything with the browser’s cookie', async () => {
  // A saved search the attacker will try to delete, rename and overwrite.
  const victim = `csrf-victim-${Math.random().toString(36).slice(2, 8)}`;
  const put = await serveFetch(`/api/ui/saved/${victim}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'X-LogFlux-UI': '1' },
    body: JSON.stringify({ query: '{source="billing"}', range: { since: '1h' } }),
  });
  assert.ok(put.ok, `the victim search was saved (${put.status} ${await put.text()})`);
  const serve = ui.url;
  const attack = `<!doctype html><html><head><title>attacker</title></head><body><pre id="out"></pre>
<form id="f1" method="POST" action="${serve}/api/ui/saved/${victim}/rename" enctype="text/plain" target="sink"><input name='{"to":"pwned","x":"' value='"}'></form>
<iframe name="sink" title="sink"></iframe>
<script>
const out = [];
const note = (s) => { out.push(s); document.getElementById('out').textContent = out.join('\\n'); };
async function attempt(name, path, init) {
  try {
    const r = await fetch(${JSON.stringify(serve)} + path, { credentials: 'include', ...init });
    let body = '';
    try { body = await r.text(); } catch (e) {}
    note(name + ': ' + (r.type === 'opaque' ? 'opaque' : 'READ ' + r.status + ' ' + body.slice(0, 100)));
  } catch (e) {
    note(name + ': blocked ' + e.name);
  }
}
(async () => {
  await attempt('read-session', '/api/ui/session', {});
  await attempt('read-saved', '/api/ui/saved', {});
  await attempt('read-loki', '/loki/api/v1/query_range?query=%7Bapp%3D~%22.%2B%22%7D', {});
  await attempt('put-cors', '/api/ui/saved/pwned', { method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-LogFlux-UI': '1' }, body: '{"query":"x","range":{"since":"1h"}}' });
  await attempt('delete-cors', '/api/ui/saved/${victim}', { method: 'DELETE', headers: { 'X-LogFlux-UI': '1' } });
  await attempt('post-no-cors', '/api/ui/saved/${victim}/rename', { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body: '{"to":"pwned"}' });
  await attempt('logout-no-cors', '/api/ui/logout', { method: 'POST', mode: 'no-cors' });
  await attempt('code-no-cors', '/api/ui/signin-code', { method: 'POST', mode: 'no-cors' });
  document.getElementById('f1').submit();
  note('done');
})();
</script></body></html>`;
  const { server, url } = await attackerServer(attack);
  const p = await openPage('/explore'); // signed in: the browser holds the session cookie
  const { page } = p;
  try {
    const evil = await page.context().newPage();
    await evil.goto(url);
    await evil.waitForFunction(() => document.getElementById('out').textContent.includes('done'), null, { timeout: 20000 });
    // Let the form's navigation in the iframe finish (its answer, whatever it is, is not readable).
    await evil.waitForLoadState('load');
    const got = await evil.textContent('#out');
    for (const name of ['read-session', 'read-saved', 'read-loki', 'put-cors', 'delete-cors', 'post-no-cors', 'logout-no-cors', 'code-no-cors']) {
      const line = got.split('\n').find((l) => l.startsWith(`${name}: `));
      assert.ok(line, `${name} ran: ${got}`);
      assert.ok(!line.includes('READ'), `another origin read serve's answer: ${line}`);
    }
    await evil.close();
    // The user is still signed in: the other origin could not sign them out.
    assert.equal(await page.evaluate(async () => (await fetch('/api/ui/session')).status), 200);
    // Nothing changed: the victim is there as saved, no "pwned" search exists.
    const saved = await waitFor(async () => {
      const r = await serveFetch('/api/ui/saved');
      return r.ok ? r.json() : null;
    }, 'the saved searches are listed');
    const names = saved.searches.map((s) => s.name);
    assert.ok(names.includes(victim), `the victim search is still there: ${names}`);
    assert.ok(!names.includes('pwned'), 'no search was made or renamed by the other origin');
    assert.equal(saved.searches.find((s) => s.name === victim).query, '{source="billing"}');
  } finally {
    server.close();
    await serveFetch(`/api/ui/saved/${victim}`, { method: 'DELETE', headers: { 'X-LogFlux-UI': '1' } });
  }
  await close(p);
});

test('Sign out ends the session: the UI then shows the sign-in page and answers nothing', async () => {
  const p = await openPage('/explore');
  const { page } = p;
  assert.equal(await page.evaluate(async () => (await fetch('/api/ui/session')).status), 200);
  await page.click('[data-testid=sign-out]');
  await page.waitForFunction(() => document.querySelector('h1')?.textContent === 'Sign in to LogFlux', null, { timeout: 15000 });
  const cookies = await page.context().cookies();
  assert.ok(!cookies.some((c) => c.name === 'logflux_session'), `the cookie is cleared: ${JSON.stringify(cookies)}`);
  const r = await page.evaluate(async () => {
    const a = await fetch('/loki/api/v1/labels');
    return a.status;
  });
  assert.equal(r, 401, 'a signed-out browser reads nothing');
  // The sign-in link signs it in again.
  await page.goto(`${ui.link}&next=${encodeURIComponent('/ui/#/explore')}`);
  await page.waitForSelector('[data-testid=sign-out]', { timeout: 15000 });
  assert.equal(await page.evaluate(async () => (await fetch('/api/ui/session')).status), 200);
  // The 401s asked for above are logged by Chromium as failed loads; nothing else may be.
  page.problems = page.problems.filter((m) => !/status of 401/.test(m));
  await close(p);
});
