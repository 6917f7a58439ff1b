// The histogram of counts by level over time: uPlot (the global `uPlot`, vendored), stacked
// bars in the level colours of the theme, drag to select a time span (brush-to-zoom).
/* global uPlot */

/** Levels from the most to the least severe, as serve names them. */
export const LEVELS = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];

/** A CSS custom property of the document (theme colours). */
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * The bars' data from a `sum by (level) (count_over_time(…[step]))` matrix: x = the start of each
 * step (seconds), and per level its counts. Points are stamped at the window's end (serve
 * evaluates at start, start + step, …), so a bar is drawn over the step before its stamp.
 */
export function histogramData(matrix, startMs, endMs, stepS) {
  const first = Math.floor(startMs / 1000);
  const n = Math.max(1, Math.ceil((endMs / 1000 - first) / stepS) + 1);
  const xs = Array.from({ length: n }, (_, i) => first + i * stepS - stepS / 2);
  const counts = Object.fromEntries(LEVELS.map((l) => [l, new Array(n).fill(0)]));
  for (const series of matrix || []) {
    const level = LEVELS.includes(series.metric?.level) ? series.metric.level : 'info';
    for (const [t, v] of series.values) {
      const i = Math.round((Number(t) - first) / stepS);
      if (i >= 0 && i < n) counts[level][i] += Number(v);
    }
  }
  return { xs, counts, total: LEVELS.reduce((a, l) => a + counts[l].reduce((x, y) => x + y, 0), 0) };
}

/**
 * Draws the histogram into `el` and returns the uPlot instance. `onSelect(startMs, endMs)` is
 * called when a span is dragged.
 */
export function drawHistogram(el, { xs, counts }, { stepS, onSelect, height = 140 }) {
  // Stacked: each level's series is its count plus the counts of the levels drawn below it;
  // drawn from the tallest down, each bar covers the one before it but its own part.
  const order = [...LEVELS].reverse(); // debug at the bottom, emergency on top
  const stacked = [];
  let acc = new Array(xs.length).fill(0);
  for (const l of order) {
    acc = acc.map((a, i) => a + counts[l][i]);
    stacked.push({ level: l, values: acc });
  }
  stacked.reverse(); // tallest (emergency's cumulative) first
  const fg = cssVar('--fg');
  const grid = cssVar('--border');
  const bars = uPlot.paths.bars({ size: [0.9, 80], align: 0 });
  const opts = {
    width: Math.max(200, el.clientWidth),
    height,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    select: { show: true },
    scales: { x: { time: true, range: [xs[0] - stepS / 2, xs[xs.length - 1] + stepS / 2] }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
      { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, size: 45 },
    ],
    series: [
      {},
      ...stacked.map(({ level }) => ({
        label: level,
        fill: cssVar(`--lvl-${level}`),
        stroke: cssVar(`--lvl-${level}`),
        width: 0,
        paths: bars,
        points: { show: false },
        value: (u, v, si, i) => (i === null || i === undefined ? '' : String(counts[level][i])),
      })),
    ],
    hooks: {
      setSelect: [
        (u) => {
          if (u.select.width < 3) return;
          const a = u.posToVal(u.select.left, 'x');
          const b = u.posToVal(u.select.left + u.select.width, 'x');
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onSelect(Math.round(a * 1000), Math.round(b * 1000));
        },
      ],
    },
  };
  return new uPlot(opts, [xs, ...stacked.map((s) => s.values)], el);
}

/** Saves the histogram's canvas as a PNG (on the theme's background), named `name`. */
export function downloadPng(plot, name) {
  const src = plot.ctx.canvas;
  const c = document.createElement('canvas');
  c.width = src.width;
  c.height = src.height;
  const ctx = c.getContext('2d');
  ctx.fillStyle = cssVar('--bg') || '#fff';
  ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(src, 0, 0);
  c.toBlob((blob) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }, 'image/png');
}
