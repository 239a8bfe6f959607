/**
 * mapSliced (fs-batch.ts): results in order, each item once; the event loop gets turns during
 * a long batch; a batch whose every call is slow (a disk really being waited for) moves to the
 * async form, while a few slow calls among fast ones (preemption) do not; it comes back to the
 * synchronous form once the calls are fast again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapSliced, SLOW_OP_MS } from './fs-batch.ts';

const spin = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end) { /* busy */ } };

test('results in item order, every item exactly once, the event loop keeps turning', async () => {
  const items = Array.from({ length: 3000 }, (_, i) => i);
  let turns = 0;
  const tick = setInterval(() => { turns++; }, 1);
  const seen = new Set<number>();
  const out = await mapSliced(items, (x) => { assert.ok(!seen.has(x)); seen.add(x); spin(0.02); return x * 2; }, async () => { throw new Error('not expected'); });
  clearInterval(tick);
  assert.deepEqual(out, items.map((x) => x * 2));
  assert.ok(turns > 0, 'timers ran while the batch was working (it yields between slices)');
});

test('every call slow: the rest of the batch goes to the async form; occasional slow calls do not', async () => {
  const items = Array.from({ length: 40 }, (_, i) => i);
  const how: string[] = [];
  const out = await mapSliced(items, (x) => { how[x] = 'sync'; spin(SLOW_OP_MS * 3); return x; }, async (x) => { how[x] = 'async'; return x; });
  assert.deepEqual(out, items);
  assert.ok(how.includes('async'), 'fell back to the thread-pool form');
  assert.equal(how[0], 'sync');

  const many = Array.from({ length: 2000 }, (_, i) => i);
  const how2: string[] = [];
  await mapSliced(many, (x) => { how2[x] = 'sync'; if (x % 200 === 0) spin(SLOW_OP_MS * 12); return x; }, async (x) => { how2[x] = 'async'; return x; });
  assert.ok(how2.every((h) => h === 'sync'), 'a few slow calls among fast ones stay synchronous');
});

test('after a stretch on the thread pool the synchronous form is tried again (the disk recovered)', async () => {
  const items = Array.from({ length: 200 }, (_, i) => i);
  const how: string[] = [];
  await mapSliced(items, (x) => { how[x] = 'sync'; if (x < 20) spin(SLOW_OP_MS * 3); return x; },
    async (x) => { how[x] = 'async'; await new Promise((r) => setTimeout(r, 20)); return x; });
  const firstAsync = how.indexOf('async');
  assert.ok(firstAsync > 0, 'slow at first: moved to the pool');
  assert.ok(how.lastIndexOf('sync') > firstAsync, 'fast again: back to synchronous calls');
});

test('an exception stops the batch and is passed on', async () => {
  await assert.rejects(mapSliced([1, 2, 3], (x) => { if (x === 2) throw new Error('boom'); return x; }, async (x) => x), /boom/);
});
