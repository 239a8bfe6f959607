/** file-sync: concurrent flushes all resolve, a failure reaches only its own caller; the fault point holds a group and logs each file. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncFile } from './file-sync.ts';

test('20 files flushed at once all resolve; a closed descriptor rejects only its own caller', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-filesync-'));
  try {
    const fds = Array.from({ length: 20 }, (_, i) => {
      const fd = openSync(join(dir, `f${i}`), 'wx', 0o600);
      writeSync(fd, Buffer.alloc(2048, 'x'));
      return fd;
    });
    const bad = openSync(join(dir, 'bad'), 'wx', 0o600);
    closeSync(bad);
    const results = await Promise.allSettled([...fds.map((fd, i) => syncFile(fd, `f${i}`)), syncFile(bad, 'bad')]);
    for (const r of results.slice(0, 20)) assert.equal(r.status, 'fulfilled');
    assert.equal(results[20]!.status, 'rejected');
    assert.equal(((results[20] as PromiseRejectedResult).reason as NodeJS.ErrnoException).code, 'EBADF');
    for (const fd of fds) closeSync(fd);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('POSTERN_FAULT_SYNC_HOLD_MS holds the files written together, logs each, then flushes them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-filesync-'));
  try {
    const script = `
      import { openSync, writeSync } from 'node:fs';
      import { syncFile } from ${JSON.stringify(join(import.meta.dirname, 'file-sync.ts'))};
      const t0 = performance.now();
      await Promise.all([0, 1, 2].map((i) => { const fd = openSync(${JSON.stringify(dir)} + '/f' + i, 'wx'); writeSync(fd, 'x'); return syncFile(fd, 'Q' + i); }));
      console.log('held ' + Math.round(performance.now() - t0));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, POSTERN_FAULT_SYNC_HOLD_MS: '300' }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const held = Number(/held (\d+)/.exec(r.stdout)?.[1]);
    assert.ok(held >= 290, `flushes waited for the hold (${held} ms)`);
    for (const [i, n] of [[0, 1], [1, 2], [2, 3]] as const) {
      assert.match(r.stderr, new RegExp(`postern/fault\\[\\d+\\]: fault point: file written, flush held \\(${n} waiting\\): Q${i}`));
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
