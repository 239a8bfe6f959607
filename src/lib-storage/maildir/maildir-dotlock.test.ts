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

test('a lock held by another task of this process is never overridden, however old; a leftover with our pid is, once watched unchanged for staleSecs', async () => {
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
    // A lock file with our pid that no task of ours holds: an earlier process's leftover (or
    // a worker thread's: the next test). Its age is not trusted; watched unchanged for
    // staleSecs, it is taken.
    writeFileSync(first.lockPath, `${process.pid}:${hostname()}`);
    utimesSync(first.lockPath, old, old);
    const t0 = Date.now();
    const taken = await dotlockCreate(file, { staleSecs: 1, timeoutSecs: 10 });
    assert.ok(taken.held);
    assert.ok(Date.now() - t0 >= 1000, 'watched for staleSecs before it was taken');
    await taken.release();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with our clock ahead of the file system\'s, concurrent tasks of this process still hold the lock one at a time', async () => {
  // A file system whose clock is behind ours (or npm run test:clock moving the calendar ahead)
  // makes every lock look old: a task that finds the lock between another task's link() and
  // its bookkeeping must still see it held here, not an earlier process's leftover.
  const dir = mkdtempSync(join(tmpdir(), 'postern-dotlock-skew-'));
  const ahead = Date.now() + 400 * 86_400_000;
  try {
    const path = join(dir, 'dovecot-uidlist');
    writeFileSync(path, '');
    let inside = 0;
    let most = 0;
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 30 }, async () => {
        const lock = await dotlockCreate(path, { now: () => ahead + performance.now() });
        inside++; most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 1));
        inside--;
        await lock.release();
      }));
    }
    assert.equal(most, 1, 'two tasks held the lock at once');
    assert.ok(!existsSync(path + '.lock'));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a lock a worker thread of this process holds (same pid, looking old) is waited for, not overridden', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dotlock-thread-'));
  try {
    const file = join(dir, 'dovecot-uidlist');
    writeFileSync(file, '');
    const script = join(dir, 'holder.mjs');
    writeFileSync(script, `
import { parentPort, workerData } from 'node:worker_threads';
import { utimesSync } from 'node:fs';
const { dotlockCreate } = await import(workerData.module);
const lock = await dotlockCreate(workerData.file);
const old = new Date(Date.now() - 3600_000);
utimesSync(lock.lockPath, old, old);   // as a file system whose clock is an hour behind
parentPort.postMessage('held');
await new Promise((r) => setTimeout(r, 1500));
parentPort.postMessage('releasing');
await lock.release();
`);
    const { Worker } = await import('node:worker_threads');
    const events: string[] = [];
    const w = new Worker(script, { workerData: { file, module: new URL('./maildir-dotlock.ts', import.meta.url).href } });
    const exited = new Promise((r) => w.once('exit', r));
    await new Promise<void>((resolve, reject) => {
      w.on('message', (m) => { events.push(m); if (m === 'held') resolve(); });
      w.on('error', reject);
    });
    const lock = await dotlockCreate(file, { timeoutSecs: 10 });
    events.push('main took it');
    await lock.release();
    await exited;
    assert.deepEqual(events, ['held', 'releasing', 'main took it']);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
