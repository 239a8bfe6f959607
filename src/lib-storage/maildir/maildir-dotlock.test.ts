/**
 * maildir-dotlock: a lock held by this very process (another async task of ours) is waited
 * for, however old it looks; one naming our pid that we do not hold is a leftover of an
 * earlier process with that pid and is overridden once 2 s old (Dovecot's check_lock()).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dotlockCreate } from './maildir-dotlock.ts';
import { MailError } from '../mail-error.ts';

test('a lock held by another task of this process is never overridden, however old; a leftover with our pid is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dotlock-'));
  try {
    const file = join(dir, 'dovecot-uidlist');
    writeFileSync(file, '');
    const first = await dotlockCreate(file);
    // Held for a while (a slow disk, a big mailbox): the lock file looks 10 s old to this
    // process (set from its own clock, which the lock rules read, so that a file system clock
    // that disagrees changes nothing).
    const old = new Date(Date.now() - 10_000);
    utimesSync(first.lockPath, old, old);
    await assert.rejects(dotlockCreate(file, { timeoutSecs: 1 }), (e: MailError) => e.code === 'TEMP', 'the second task waits and times out');
    assert.ok(first.held && existsSync(first.lockPath), 'the first still holds its lock');
    await first.release();
    const again = await dotlockCreate(file, { timeoutSecs: 1 });
    await again.release();
    // A lock file with our pid that no task of ours holds: an earlier process's leftover.
    writeFileSync(first.lockPath, `${process.pid}:${hostname()}`);
    utimesSync(first.lockPath, old, old);
    const taken = await dotlockCreate(file, { timeoutSecs: 1 });
    assert.ok(taken.held);
    await taken.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
