/** dir-sync: grouped directory fsyncs resolve for every caller; a failure reaches each caller of that directory only; the table empties. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirSyncsInFlight, syncDirGrouped } from './dir-sync.ts';

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
