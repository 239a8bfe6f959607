import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flushLazyWriters, LazyWriter } from './lazy-writer.ts';

test('lazy-writer: changes coalesce into one write, writes never overlap, cancel forgets', async () => {
  let writes = 0;
  let active = 0;
  let overlapped = false;
  const w = new LazyWriter({
    delayMs: 60_000,
    write: async () => { if (active++ > 0) overlapped = true; writes++; await new Promise((r) => setTimeout(r, 20)); active--; },
    writeSync: () => { writes++; },
  });
  w.mark(); w.mark(); w.mark();
  assert.equal(w.dirty, true);
  await flushLazyWriters();
  assert.equal(writes, 1, 'three changes, one write');
  assert.equal(w.dirty, false);
  await w.flush();
  assert.equal(writes, 1, 'nothing changed since: no write');
  w.mark();
  const a = w.flush();
  w.mark();   // changed during the write: written again after it, never at the same time
  await Promise.all([a, w.flush()]);
  assert.equal(writes, 3);
  assert.equal(overlapped, false);
  w.mark();
  w.cancel();
  await flushLazyWriters();
  assert.equal(writes, 3, 'a cancelled change is never written');
});
