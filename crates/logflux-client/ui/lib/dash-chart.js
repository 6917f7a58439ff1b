// A time series chart (uPlot, loaded by index.html as the global `uPlot`) that fills its box,
// follows the box's size, and takes its colours from the theme: levels in their level colour,
// other series from a palette readable on both backgrounds.
import { html } from './html.js';
import { useEffect, useRef, useState } from '../vendor/hooks.module.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#59a14f', '#b07aa1', '#76b7b2', '#edc948', '#ff9da7', '#9c755f', '#8c8c8c'];
const LEVELS = ['emergency', 'alert', 'critical', 'error', 'warning', 'notice', 'info', 'debug'];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** The colour of a series: its level's when it is a series of one level, else the palette's i-th. */
export function seriesColour(metric, i) {
  const keys = Object.keys(metric || {});
  if (keys.length === 1 && keys[0] === 'level' && LEVELS.includes(metric.level)) return cssVar(`--lvl-${metric.level}`) || PALETTE[i % PALETTE.length];
  return PALETTE[i % PALETTE.length];
}

/** Bumps when the system's colour scheme changes, so charts redraw in the theme's colours. */
function useScheme() {
  const [n, setN] = useState(0);
  useEffect(() => {
    const mq = window.matchMedia('(prefers-color-scheme: dark)');
    const on = () => setN((v) => v + 1);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return n;
}

/**
 * A uPlot chart of `{xs, series}` (xs in seconds) over `span` ([start, end] in ms: the x axis
 * shows the whole range even where there is no point) in a box that has a height from its CSS.
 */
export function TimeChart({ data, span, label }) {
  const box = useRef(null);
  const scheme = useScheme();
  useEffect(() => {
    const el = box.current;
    const fg = cssVar('--muted') || '#57606a';
    const grid = cssVar('--border') || '#d0d7de';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts = {
      width: Math.max(100, el.clientWidth),
      height: Math.max(60, el.clientHeight),
      series: [{}, ...data.series.map((s, i) => ({ label: s.label, stroke: seriesColour(s.metric, i), width: 1.5 }))],
      scales: { x: { time: true, range: () => [span[0] / 1000, span[1] / 1000] } },
      axes: [axis, { ...axis, size: 50 }],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    const plot = new window.uPlot(opts, [data.xs, ...data.series.map((s) => s.values)], el);
    const fit = () => {
      const legend = plot.root.querySelector('.u-legend');
      const lh = legend ? legend.offsetHeight : 0;
      plot.setSize({ width: Math.max(100, el.clientWidth), height: Math.max(60, el.clientHeight - lh - 4) });
    };
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [data, span, scheme]);
  return html`<div class="lf-chart" ref=${box} role="img" aria-label=${label}></div>`;
}
