#!/usr/bin/env node
// Measures the web UI's explore page in Debian's Chromium (playwright-core from
// crates/logflux-client/ui-tests/node_modules): time from navigation to the first results and
// to the drawn histogram, and the frame times while scrolling the result list over up to
// 100 000 rows (requestAnimationFrame deltas while the list is scrolled a screen per frame);
// plus the UI's asset size.
//
//   source logflux-up/up.env
//   node tools/ui-bench.mjs --fill 100000        # sends 100 000 entries over the last hour first
//   node tools/ui-bench.mjs --query '{app=~".+"}' --since 1h --rows 100000
//
// Reads LOGFLUX_SERVE_URL, LOGFLUX_SERVE_TOKEN and LOGFLUX_AGENT_SOCKET (up.env).
import { createRequire } from 'node:module';
import { readdirSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const uiDir = path.join(here, '../crates/logflux-client/ui');
const require = createRequire(path.join(here, '../crates/logflux-client/ui-tests/package.json'));
const { chromium } = require('playwright-core');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const url = process.env.LOGFLUX_SERVE_URL;
const token = process.env.LOGFLUX_SERVE_TOKEN;
if (!url || !token) {
  console.error('LOGFLUX_SERVE_URL and LOGFLUX_SERVE_TOKEN are not set: `source logflux-up/up.env` first');
  process.exit(2);
}

/** Sends `n` entries over the last hour to the agent's socket, then flushes. */
async function fill(n) {
  const socket = process.env.LOGFLUX_AGENT_SOCKET;
  if (!socket) throw new Error('LOGFLUX_AGENT_SOCKET is not set');
  const levels = [7, 7, 7, 6, 5, 4, 8, 8];
  const now = Date.now();
  const batch = 5000;
  for (let done = 0; done < n; done += batch) {
    const lines = [];
    for (let i = done; i < Math.min(n, done + batch); i++) {
      const ts = new Date(now - 3600000 + Math.floor((i * 3590000) / n)).toISOString();
      lines.push(JSON.stringify({ payload: `bench entry ${i} GET /items/${i % 977} took ${i % 300}ms`, source: `bench-${i % 7}`, entryType: 1, logLevel: levels[i % 8], timestamp: ts, metadata: { shard: String(i % 16) } }));
    }
    await new Promise((resolve, reject) => {
      const s = net.createConnection(socket);
      s.on('error', reject);
      s.on('close', resolve);
      s.resume();
      s.end(`${lines.join('\n')}\n`);
    });
  }
  await new Promise((resolve, reject) => {
    const s = net.createConnection(socket);
    s.on('error', reject);
    s.on('data', () => s.end());
    s.on('close', resolve);
    s.write('{"action":"flush"}\n');
  });
}

function size(dir) {
  let total = 0;
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    const st = statSync(p);
    total += st.isDirectory() ? size(p) : st.size;
  }
  return total;
}

const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

if (args.fill) {
  const t = Date.now();
  await fill(Number(args.fill));
  console.log(`sent ${args.fill} entries in ${((Date.now() - t) / 1000).toFixed(1)} s`);
}
const query = args.query || '{app=~".+"}';
const since = args.since || '1h';
const rows = Number(args.rows || 100000);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const next = `/ui/#/explore?${new URLSearchParams({ q: query, since })}`;
  // Signed in first, so the measured load is the page's own.
  await page.goto(`${url}/ui/login?token=${token}&next=${encodeURIComponent('/ui/')}`);
  await page.goto(`${url}${next}`);
  await page.reload();
  const t = await page.waitForFunction(() => window.__logfluxTimings?.results && window.__logfluxTimings?.histogram && window.__logfluxTimings, null, { timeout: 120000 });
  const first = await t.jsonValue();
  console.log(`load → first results (1 000 rows): ${first.results.toFixed(0)} ms; → histogram drawn: ${first.histogram.toFixed(0)} ms`);
  // The list at `rows` entries, then scrolled from top to bottom a screen per frame.
  await page.selectOption('.limit select', String(Math.min(rows, 100000)));
  const t0 = Date.now();
  await page.waitForFunction((n) => /^[\d,]+ entr/.test(document.querySelector('[data-testid=status]').textContent.trim()) && Number(document.querySelector('[data-testid=status]').textContent.trim().match(/^([\d,]+)/)[1].replace(/,/g, '')) >= n, Math.min(rows, 100000) * 0.99, { timeout: 600000 });
  const listed = await page.textContent('[data-testid=status]');
  console.log(`listed: ${listed.trim()} (${Date.now() - t0} ms from the limit change)`);
  const frames = await page.evaluate(
    () =>
      new Promise((resolve) => {
        const list = document.querySelector('[data-testid=results]');
        const deltas = [];
        let last = performance.now();
        const step = () => {
          const now = performance.now();
          deltas.push(now - last);
          last = now;
          list.scrollTop += list.clientHeight;
          if (list.scrollTop + list.clientHeight >= list.scrollHeight - 1 || deltas.length > 3000) resolve({ deltas: deltas.slice(1), dom: list.querySelectorAll('.row').length });
          else requestAnimationFrame(step);
        };
        requestAnimationFrame(step);
      }),
  );
  const d = [...frames.deltas].sort((a, b) => a - b);
  console.log(
    `scroll: ${d.length} frames, frame time p50 ${pct(d, 50).toFixed(1)} ms, p95 ${pct(d, 95).toFixed(1)} ms, max ${d[d.length - 1].toFixed(1)} ms; ${d.filter((x) => x > 20).length} over 20 ms; rows in the DOM ${frames.dom}`,
  );
} finally {
  await browser.close();
}
console.log(`assets: ${(size(uiDir) / 1024).toFixed(1)} KiB in crates/logflux-client/ui/ (uncompressed)`);
