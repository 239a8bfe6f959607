/** dir-sync: grouped directory fsyncs resolve for every caller; a failure reaches each caller of that directory only; the table empties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirSyncsInFlight, syncDirGrouped, syncDirNow } from './dir-sync.ts';

test('many concurrent requests over a few directories all resolve; a missing directory rejects only its own callers', async () => {
  const base = mkdtempSync(join(tmpdir(), 'postern-dirsync-'));
  try {
    const dirs = Array.from({ length: 5 }, (_, i) => join(base, `u${i}`, 'new'));
    for (const d of dirs) mkdirSync(d, { recursive: true });
    const missing = join(base, 'gone', 'new');
    const calls = Array.from({ length: 200 }, (_, i) => (i % 50 === 7 ? missing : dirs[i % dirs.length]!));
    const results = await Promise.allSettled(calls.map((d) => syncDirGrouped(d)));
    results.forEach((r, i) => {
      if (calls[i] === missing) {
        assert.equal(r.status, 'rejected');
        assert.equal(((r as PromiseRejectedResult).reason as NodeJS.ErrnoException).code, 'ENOENT');
      } else assert.equal(r.status, 'fulfilled', `call ${i}`);
    });
    // Later requests start new syncs; nothing stays in the table.
    await syncDirGrouped(dirs[0]!);
    await new Promise((r) => setImmediate(r));
    assert.equal(dirSyncsInFlight(), 0);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a gathering sync waits for company, but a caller that needs it now gets it now, even if it queued behind a running one', async () => {
  const base = mkdtempSync(join(tmpdir(), 'postern-dirsync-'));
  try {
    const t0 = Date.now();
    // Alone, with a long gather and nobody in a hurry: it waits (checked by racing a short timer).
    const gathered = syncDirGrouped(base, 60_000);
    const first = await Promise.race([gathered.then(() => 'synced'), new Promise((r) => setTimeout(() => r('waiting'), 200))]);
    assert.equal(first, 'waiting');
    syncDirNow(base);
    await gathered;
    // One running (no gather), one queued behind it with a long gather, then "now".
    const running = syncDirGrouped(base, 0);
    const queued = syncDirGrouped(base, 60_000);
    syncDirNow(base);
    await running;
    await queued;
    assert.ok(Date.now() - t0 < 20_000, `took ${Date.now() - t0} ms`);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
