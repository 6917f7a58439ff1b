#!/usr/bin/env node
// Measures the web UI's explore page in Debian's Chromium (playwright-core from
// crates/logflux-client/ui-tests/node_modules): time from navigation to the first results and
// to the drawn histogram; how the page keeps drawing while the result list fills to up to
// 100 000 rows; and the frame times while scrolling that list, plus the UI's asset size.
//
// Scrolling is measured in three runs of the same number of frames (--frames, 600 ≈ 10 s):
//   idle    nothing scrolls: the baseline of this machine and browser;
//   wheel   3 rows (72 px) per frame, about what a mouse wheel or a trackpad gives;
//   screen  a screen of rows per frame, the stress case (every frame all new rows).
// Each run is traced (Chromium's performance trace, as the DevTools Performance panel records
// it): the frame time is the interval between the page's frames (BeginMainThreadFrame events of
// its renderer: each runs the rAF callbacks, style, layout and paint of a frame), and the
// main-thread time per frame is the CPU time of that thread's tasks (script, style, layout and
// paint; thread time, so other work on the machine does not inflate it) over the run divided by
// its frames. The scroll runs' frame times are also given as ratios to the idle run's, which
// takes out how busy the machine is; requestAnimationFrame deltas inside the page are printed
// beside them as a cross-check. The fill is traced too: its longest main-thread task.
//
//   source logflux-up/up.env
//   node tools/ui-bench.mjs --fill 100000        # sends 100 000 entries over the last hour first
//   node tools/ui-bench.mjs --query '{app=~".+"}' --since 1h --rows 100000 [--frames 600]
//   [--ui-dir crates/logflux-client/ui]   # the UI's files from there, not serve's built-in ones
//
// Reads LOGFLUX_SERVE_URL, LOGFLUX_SERVE_TOKEN and LOGFLUX_AGENT_SOCKET (up.env).
import { createRequire } from 'node:module';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
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

/** p50, p95 and max of `xs`, and how many are over `over`. */
function spread(xs, over) {
  const d = [...xs].sort((a, b) => a - b);
  return { n: d.length, p50: pct(d, 50), p95: pct(d, 95), max: d[d.length - 1], over: d.filter((x) => x > over).length };
}

/** The trace categories read below: tasks (toplevel), frames and the timeline's phases. */
const CATEGORIES = ['toplevel', 'devtools.timeline', 'disabled-by-default-devtools.timeline.frame'];

/**
 * The page's figures in a trace: `frames` the intervals between its main-thread frames (ms),
 * `drawn` the frames its compositor drew, `busy` the main thread's CPU time (ms), `tasks` its
 * tasks' wall durations (ms), `phases` CPU ms per phase.
 */
function readTrace(buf) {
  const t = JSON.parse(buf.toString());
  const events = t.traceEvents || t;
  // The page's renderer: the process whose main thread ran animation frames (one page open).
  const mains = new Map();
  for (const e of events) if (e.name === 'thread_name' && e.args?.name === 'CrRendererMain') mains.set(e.pid, e.tid);
  const count = new Map();
  for (const e of events) if (e.name === 'FireAnimationFrame' && mains.get(e.pid) === e.tid) count.set(e.pid, (count.get(e.pid) || 0) + 1);
  const pid = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? [...mains.keys()][0];
  const tid = mains.get(pid);
  // A frame of the page is its main thread's: BeginMainThreadFrame starts each (rAF callbacks,
  // style, layout, paint); the compositor draws (DrawFrame) only when something changed, so an
  // idle page has main-thread frames (its rAF loop asks for them) but few draws.
  const draws = events.filter((e) => e.name === 'BeginMainThreadFrame' && e.pid === pid).map((e) => e.ts).sort((a, b) => a - b);
  const frames = draws.slice(1).map((ts, i) => (ts - draws[i]) / 1000);
  const drawn = events.filter((e) => e.name === 'DrawFrame' && e.pid === pid).length;
  const phaseOf = { FunctionCall: 'script', FireAnimationFrame: 'script', EventDispatch: 'script', RunMicrotasks: 'script', UpdateLayoutTree: 'style', Layout: 'layout', PrePaint: 'paint', Paint: 'paint', Layerize: 'paint', Commit: 'paint' };
  const phases = { script: 0, style: 0, layout: 0, paint: 0 };
  const tasks = [];
  const first = draws[0] ?? 0;
  const lastDraw = draws[draws.length - 1] ?? Infinity;
  // Events nest (a FunctionCall inside FireAnimationFrame inside a task, or a layout that
  // script forced inside the script): a task is an outermost event (a scheduler task, or a
  // microtask checkpoint, which the trace puts beside them), and a phase gets its events' own
  // time, less what the phase events inside them took.
  let taskEnd = 0;
  let busy = 0;
  const open = []; // the phase events the current one is inside: {end, phase}
  const main = events.filter((e) => e.pid === pid && e.tid === tid && e.ph === 'X' && e.dur && e.ts >= first && e.ts <= lastDraw);
  for (const e of main.sort((a, b) => a.ts - b.ts || b.dur - a.dur)) {
    // Thread time (tdur: on the CPU) where the trace has it, so a machine busy with other work
    // does not count as the page's; wall time otherwise.
    const cpu = (e.tdur ?? e.dur) / 1000;
    if (e.ts >= taskEnd) {
      tasks.push(e.dur / 1000);
      busy += cpu;
      taskEnd = e.ts + e.dur;
    }
    const ph = phaseOf[e.name];
    if (!ph) continue;
    while (open.length && open[open.length - 1].end <= e.ts) open.pop();
    const parent = open[open.length - 1];
    if (parent?.phase === ph) continue; // the same phase inside itself: counted already
    phases[ph] += cpu;
    if (parent) phases[parent.phase] -= cpu;
    open.push({ end: e.ts + e.dur, phase: ph });
  }
  return { frames, drawn, busy, tasks, phases };
}

/** Runs `fn` in the browser with the page traced; returns fn's result and the trace's figures. */
async function traced(browser, page, fn, arg) {
  await browser.startTracing(page, { categories: CATEGORIES });
  const result = await page.evaluate(fn, arg).catch(async (e) => {
    await browser.stopTracing();
    throw e;
  });
  return { result, trace: readTrace(await browser.stopTracing()) };
}

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
  if (args['ui-dir']) {
    // The UI's files from a directory instead of those built into serve (serve's headers kept):
    // a UI change measured without rebuilding the binary.
    await page.route(`${url}/ui/**`, async (route) => {
      const rel = new URL(route.request().url()).pathname.slice('/ui/'.length) || 'index.html';
      const file = path.join(args['ui-dir'], rel);
      if (!existsSync(file) || statSync(file).isDirectory()) return route.continue();
      return route.fulfill({ response: await route.fetch(), body: readFileSync(file) });
    });
  }
  const next = `/ui/#/explore?${new URLSearchParams({ q: query, since })}`;
  // Signed in first, so the measured load is the page's own.
  await page.goto(`${url}/ui/login?token=${token}&next=${encodeURIComponent('/ui/')}`);
  await page.goto(`${url}${next}`);
  await page.reload();
  const t = await page.waitForFunction(() => window.__logfluxTimings?.results && window.__logfluxTimings?.histogram && window.__logfluxTimings, null, { timeout: 120000 });
  const first = await t.jsonValue();
  console.log(`load → first results (1 000 rows): ${first.results.toFixed(0)} ms; → histogram drawn: ${first.histogram.toFixed(0)} ms`);
  // The list at `rows` entries; the page drawing frames meanwhile is part of the measure.
  const want = Math.min(rows, 100000);
  const t0 = Date.now();
  await browser.startTracing(page, { categories: CATEGORIES });
  await page.evaluate(() => {
    window.__benchFill = [];
    let last = performance.now();
    const step = () => {
      const now = performance.now();
      window.__benchFill.push(now - last);
      last = now;
      if (window.__benchFill) requestAnimationFrame(step);
    };
    requestAnimationFrame(step);
  });
  await page.selectOption('.limit select', String(want));
  await page.waitForFunction(
    (n) => {
      const t = document.querySelector('[data-testid=status]').textContent.trim();
      const m = t.match(/^([\d,]+) entr(?:y|ies) in \d+ ms/);
      return m && Number(m[1].replace(/,/g, '')) >= n;
    },
    want * 0.99,
    { timeout: 600000 },
  );
  const fillDeltas = await page.evaluate(() => {
    const d = window.__benchFill.slice(1);
    window.__benchFill = null;
    return d;
  });
  const fillTrace = readTrace(await browser.stopTracing());
  const listed = await page.textContent('[data-testid=status]');
  console.log(`listed: ${listed.trim()} (${Date.now() - t0} ms from the limit change)`);
  const fr = spread(fillDeltas, 50);
  const ft = spread(fillTrace.tasks, 50);
  console.log(
    `while filling: rAF frame p50 ${fr.p50.toFixed(1)} ms, max ${fr.max.toFixed(1)} ms, ${fr.over} of ${fr.n} frames over 50 ms; main-thread tasks (trace): longest ${ft.max.toFixed(1)} ms, ${ft.over} over 50 ms`,
  );

  const frames = Number(args.frames || 600);
  const runs = {};
  for (const [name, perFrame] of [['idle', 0], ['wheel', 3 * 24], ['screen', -1]]) {
    await page.evaluate(() => (document.querySelector('[data-testid=results]').scrollTop = 0));
    // Two frames to settle the scroll position before the run.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const { result, trace } = await traced(
      browser,
      page,
      ({ frames, perFrame }) =>
        new Promise((resolve) => {
          const list = document.querySelector('[data-testid=results]');
          const deltas = [];
          let last = performance.now();
          const step = () => {
            const now = performance.now();
            deltas.push(now - last);
            last = now;
            if (perFrame) list.scrollTop += perFrame < 0 ? list.clientHeight : perFrame;
            if (deltas.length > frames) resolve({ deltas: deltas.slice(1), dom: list.querySelectorAll('.row').length, at: Math.round(list.scrollTop / 24) });
            else requestAnimationFrame(step);
          };
          requestAnimationFrame(step);
        }),
      { frames, perFrame },
    );
    runs[name] = { raf: spread(result.deltas, 20), frame: spread(trace.frames, 20), busy: trace.busy / Math.max(1, trace.frames.length), phases: trace.phases, frames: trace.frames.length, drawn: trace.drawn, dom: result.dom, at: result.at };
  }
  const idle = runs.idle;
  for (const [name, r] of Object.entries(runs)) {
    const ratio = name === 'idle' ? '' : ` (×${(r.frame.p50 / idle.frame.p50).toFixed(2)}, ×${(r.frame.p95 / idle.frame.p95).toFixed(2)} of idle)`;
    const per = (v) => (v / Math.max(1, r.frames)).toFixed(2);
    console.log(
      `${name.padEnd(6)} frame time (trace, main-thread frame intervals): p50 ${r.frame.p50.toFixed(1)} ms, p95 ${r.frame.p95.toFixed(1)} ms, max ${r.frame.max.toFixed(1)} ms${ratio}; ${r.frame.over} of ${r.frame.n} over 20 ms; ${r.drawn} drawn`,
    );
    console.log(
      `       main thread CPU ${r.busy.toFixed(2)} ms/frame (script ${per(r.phases.script)}, style ${per(r.phases.style)}, layout ${per(r.phases.layout)}, paint ${per(r.phases.paint)}); rAF deltas p50 ${r.raf.p50.toFixed(1)} ms, p95 ${r.raf.p95.toFixed(1)} ms, max ${r.raf.max.toFixed(1)} ms; to row ${r.at}, ${r.dom} rows in the DOM`,
    );
  }
} finally {
  await browser.close();
}
console.log(`assets: ${(size(uiDir) / 1024).toFixed(1)} KiB in crates/logflux-client/ui/ (uncompressed)`);
