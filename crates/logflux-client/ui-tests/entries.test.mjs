// The explore page's field counts, without a browser: counted a page or a tail message at a time
// (FieldCounter), they equal the counts of the whole list taken again (fieldStats).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FieldCounter, fieldStats } from '../ui/lib/entries.js';

/** Entry `i`: two levels, seven sources, a host on two in three, metadata on three in four. */
const entry = (i) => ({
  ts: String(1_700_000_000_000_000_000n + BigInt(i)),
  labels: { app: 'a', source: `s${i % 7}`, level: i % 2 ? 'error' : 'info', host: i % 3 ? 'h' : '' },
  meta: i % 4 ? { shard: String(i % 16), request_id: `r${i}`, detected_level: 'x' } : {},
});

test('a search read a page at a time counts as the whole list counted once', () => {
  const c = new FieldCounter();
  let rows = [];
  for (let p = 0; p < 20000; p += 5000) {
    rows = rows.concat(Array.from({ length: 5000 }, (_, i) => entry(p + i)));
    assert.deepEqual(c.update(rows).stats(), fieldStats(rows));
  }
  const request = c.stats().find((f) => f.name === 'request_id');
  assert.equal(request.distinct, 15000);
  assert.deepEqual(request.values.map(([, n]) => n), [1, 1, 1, 1, 1], 'the top five of distinct ids');
  assert.ok(!c.stats().some((f) => f.name === 'detected_level'), 'detected_level is not a field');
});

test('the tail putting entries in front, past its cap, counts the ones it dropped out', () => {
  const c = new FieldCounter();
  let rows = Array.from({ length: 1000 }, (_, i) => entry(i));
  c.update(rows);
  for (let k = 0; k < 5; k++) {
    const added = Array.from({ length: 300 }, (_, i) => entry(5000 + k * 300 + i));
    rows = added.concat(rows).slice(0, 1000);
    assert.deepEqual(c.update(rows).stats(), fieldStats(rows));
  }
});

test('another search, a smaller list or none are counted afresh', () => {
  const c = new FieldCounter();
  const rows = Array.from({ length: 100 }, (_, i) => entry(i));
  c.update(rows);
  const other = Array.from({ length: 10 }, (_, i) => entry(500 + i));
  assert.deepEqual(c.update(other).stats(), fieldStats(other));
  assert.deepEqual(c.update(rows.slice(0, 7)).stats(), fieldStats(rows.slice(0, 7)));
  assert.deepEqual(c.update([]).stats(), []);
});
