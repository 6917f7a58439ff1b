// Time ranges: relative (`15m`, `1h`, `24h`, `7d`) or absolute (two instants), in ns as serve wants.

const UNIT_S = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds of a duration such as `15m`, `1h30m`, `7d`; null if it is not one. */
export function durationSeconds(text) {
  const s = String(text).trim();
  if (!/^(\d+[smhdw])+$/.test(s)) return null;
  let total = 0;
  for (const [, n, u] of s.matchAll(/(\d+)([smhdw])/g)) total += Number(n) * UNIT_S[u];
  return total > 0 ? total : null;
}

/** ns (BigInt) of a Date or ms number. */
export function nsOfMs(ms) {
  return BigInt(Math.round(ms)) * 1000000n;
}

/**
 * The [start, end] of a range `{since}` or `{start, end}` (RFC 3339 or ms) in ms, now being `now`.
 * Throws an Error saying what is wrong.
 */
export function resolveRange(range, now = Date.now()) {
  if (range.since) {
    const s = durationSeconds(range.since);
    if (s === null) throw new Error(`"${range.since}" is not a duration such as 15m, 1h, 24h or 7d`);
    return [now - s * 1000, now];
  }
  const start = typeof range.start === 'number' ? range.start : Date.parse(range.start);
  const end = typeof range.end === 'number' ? range.end : Date.parse(range.end);
  if (Number.isNaN(start)) throw new Error(`"${range.start}" is not a time`);
  if (Number.isNaN(end)) throw new Error(`"${range.end}" is not a time`);
  if (end <= start) throw new Error('the range ends before it starts');
  return [start, end];
}

/** A step (seconds) giving about `points` points over [start, end] ms. */
export function stepFor(startMs, endMs, points = 120) {
  const nice = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const want = (endMs - startMs) / 1000 / points;
  return nice.find((n) => n >= want) ?? Math.ceil(want / 86400) * 86400;
}
