/**
 * idle-gc: a quiet thread whose heap grew is collected once and its garbage given back; a busy
 * thread is never interrupted; 0 turns it off. Times are counted in seconds of a quiet or busy
 * event loop of this thread, never in machine speed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapStatistics } from 'node:v8';
import { idleCollections, idleMemoryRelease } from './idle-gc.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

/** Leave `mb` MB of garbage in the old generation (kept across a few turns, then dropped). */
async function makeGarbage(mb: number): Promise<void> {
  let keep: string[][] | undefined = [];
  for (let i = 0; i < mb; i++) keep.push(Array.from({ length: 8192 }, (_, j) => `x${i}-${j}-`.padEnd(100, 'y')));
  await sleep(50);
  keep = undefined;
  void keep;
}

test('a quiet thread whose heap grew gets one memory-reducing collection, then none until it grows again', async () => {
  await makeGarbage(40);
  const before = getHeapStatistics().total_physical_size;
  const n0 = idleCollections;
  idleMemoryRelease(1000);
  try {
    for (let i = 0; i < 100 && idleCollections === n0; i++) await sleep(100);
    assert.equal(idleCollections, n0 + 1, 'one collection after a second of quiet');
    const after = getHeapStatistics().total_physical_size;
    assert.ok(after < before - 5 * MB, `heap in memory ${(before / MB).toFixed(1)} MB -> ${(after / MB).toFixed(1)} MB`);
    await sleep(3000);   // quiet, but nothing new: not collected again
    assert.equal(idleCollections, n0 + 1);
  } finally {
    idleMemoryRelease(0);
  }
});

test('a busy event loop is never collected, and 0 turns the release off', async () => {
  await makeGarbage(20);
  const n0 = idleCollections;
  idleMemoryRelease(1000);
  try {
    // Three seconds of a loop that is always busy (work chained by setImmediate).
    const end = Date.now() + 3000;
    await new Promise<void>((resolve) => {
      const spin = () => {
        const t = Date.now() + 20;
        while (Date.now() < t) { /* busy */ }
        if (Date.now() < end) setImmediate(spin); else resolve();
      };
      spin();
    });
    assert.equal(idleCollections, n0, 'no collection while the loop was busy');
  } finally {
    idleMemoryRelease(0);
  }
  await sleep(2500);
  assert.equal(idleCollections, n0, 'none after it was turned off');
});
