// The browser tests' shared harness: the stack's addresses (from tests/ui_browser.rs), a signed-in
// page in Debian's Chromium driven by playwright-core, the agent's socket to send more entries,
// screenshots and the axe-core accessibility check.
//
// Run through `cargo test -p logflux-client --test ui_browser`, which starts the stack, sends the
// known entries and sets the variables read below. By hand, against a running stack:
//   LOGFLUX_UI_URL=… LOGFLUX_UI_LINK=… LOGFLUX_SERVE_TOKEN=… LOGFLUX_UI_FIXTURES=… \
//   LOGFLUX_UI_SOCKET=… LOGFLUX_UI_SCREENSHOTS=/tmp/shots node --test --test-concurrency=1 .
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { after } from 'node:test';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through \`cargo test -p logflux-client --test ui_browser\``);
  return v;
}

/** Where the stack is and what it holds. */
export const ui = {
  /** serve's base URL, e.g. http://127.0.0.1:35159 */
  url: need('LOGFLUX_UI_URL').replace(/\/$/, ''),
  /** the sign-in link serve prints: URL/ui/login?token=TOKEN */
  link: need('LOGFLUX_UI_LINK'),
  /** serve's access token (for requests made outside the browser) */
  token: need('LOGFLUX_SERVE_TOKEN'),
  /** the entries sent before the tests: [{ts_ns, app, source, level, payload, metadata}] */
  fixtures: JSON.parse(readFileSync(need('LOGFLUX_UI_FIXTURES'), 'utf8')),
  /** the agent's Unix socket (NDJSON lines in the SDK's format) */
  socket: need('LOGFLUX_UI_SOCKET'),
  /** the directory screenshots go to */
  screenshots: need('LOGFLUX_UI_SCREENSHOTS'),
  /**
   * A second serve of the same client that evaluates alert rules (tests/ui_browser.rs's
   * ALERT_RULES): { url, link, token }, or null when the environment does not give one.
   */
  alerts: process.env.LOGFLUX_UI_ALERTS_URL
    ? {
        url: process.env.LOGFLUX_UI_ALERTS_URL.replace(/\/$/, ''),
        link: need('LOGFLUX_UI_ALERTS_LINK'),
        token: need('LOGFLUX_UI_ALERTS_TOKEN'),
      }
    : null,
};

/** The Chromium every test uses (Debian's package; Playwright's own browsers are not used). */
export const CHROMIUM = '/usr/bin/chromium';

/** Launches Chromium (headless, no sandbox: tests run as root in CI containers). */
// Every browser launched, closed when the file's tests end: a test that fails before its
// `close` would otherwise leave Chromium running, and node waits for it forever.
const launched = new Set();
after(async () => {
  await Promise.all([...launched].map((b) => b.close().catch(() => {})));
});

export async function launch() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  launched.add(browser);
  browser.on('disconnected', () => launched.delete(browser));
  return browser;
}

/**
 * A signed-in page at `#<hashPath>` of the UI: visits the sign-in link (`link`, by default the
 * stack's serve's) with `next=/ui/#<hashPath>` and waits for `#main`. Console errors, uncaught
 * exceptions and CSP violations are collected into `page.problems` (checked by `close`).
 */
export async function openPage(hashPath = '/explore', { viewport = { width: 1400, height: 900 }, colorScheme, link = ui.link } = {}) {
  const browser = await launch();
  try {
    const context = await browser.newContext({ viewport, colorScheme, acceptDownloads: true });
    const page = await context.newPage();
    await watch(page);
    const next = `/ui/#${hashPath}`;
    await page.goto(`${link}&next=${encodeURIComponent(next)}`);
    await page.waitForSelector('#main', { timeout: 15000 });
    return { browser, page };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Collects a page's console errors, uncaught exceptions and CSP violations into `page.problems`. */
export async function watch(page) {
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`uncaught: ${e.message}`));
  // Runs before the page's own scripts, outside its CSP (injected by the DevTools protocol).
  await page.exposeBinding('__logfluxProblem', (_src, text) => page.problems.push(text));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__logfluxProblem(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
}

/** Asserts the page had no console error, uncaught exception or CSP violation; closes the browser. */
export async function close({ browser, page }) {
  try {
    assert.deepEqual(page.problems, [], 'the page had console errors or CSP violations');
  } finally {
    await browser.close();
  }
}

/**
 * Writes `entries` (objects in the agent's format: payload, source, entryType, logLevel,
 * timestamp?, metadata?) as NDJSON lines to the agent's socket; resolves once the agent has
 * taken them all (it closes the socket) and then asked the server to store them (a flush), so
 * they are searchable right after.
 */
export async function sendEntries(entries) {
  await new Promise((resolve, reject) => {
    const s = net.createConnection(ui.socket);
    let reply = '';
    s.on('data', (d) => (reply += d));
    s.on('error', reject);
    s.on('close', () => (reply.trim() ? reject(new Error(`the agent refused entries: ${reply}`)) : resolve()));
    s.end(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
  });
  await new Promise((resolve, reject) => {
    const s = net.createConnection(ui.socket);
    let reply = '';
    s.on('data', (d) => {
      reply += d;
      if (reply.includes('\n')) s.end();
    });
    s.on('error', reject);
    s.on('close', () => (reply.includes('flushed') ? resolve() : reject(new Error(`flush answered ${reply}`))));
    s.write('{"action":"flush"}\n');
  });
}

/** Writes a full-page PNG to `${ui.screenshots}/${name}.png`. */
export async function shot(page, name) {
  mkdirSync(ui.screenshots, { recursive: true });
  await page.screenshot({ path: path.join(ui.screenshots, `${name}.png`), fullPage: true });
}

const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * Runs axe-core on the page (evaluated through the DevTools protocol, which the page's CSP does
 * not govern) and returns its serious and critical violations as
 * `[{id, impact, help, nodes: [selector…]}]`.
 */
export async function axe(page) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] })).violations);
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) }));
}

/** Polls `check` (sync or async) until it returns a truthy value; throws `what` after `timeout` ms. */
export async function waitFor(check, what, { timeout = 10000, every = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** A request to serve from the test itself (the bearer token, not the browser's cookie). */
export function serveFetch(pathAndQuery, init = {}) {
  return fetch(`${ui.url}${pathAndQuery}`, {
    ...init,
    headers: { Authorization: `Bearer ${ui.token}`, ...(init.headers || {}) },
  });
}

/** Level names as the UI and serve spell them, by the agent's `logLevel` number (1–8). */
export const LEVELS = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];

/** An entry in the agent's format from a fixture-like object {source, level, payload, metadata?, ts_ns?}. */
export function agentEntry({ source, level, payload, metadata, ts_ns }) {
  const e = { payload, source, entryType: 1, logLevel: LEVELS.indexOf(level) + 1 };
  if (metadata) e.metadata = metadata;
  if (ts_ns !== undefined) e.timestamp = new Date(Number(BigInt(ts_ns) / 1000000n)).toISOString();
  return e;
}
