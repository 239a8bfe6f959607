/**
 * Found by the crash suite: after a SIGKILL, deliveries to a Maildir stopped for minutes. A
 * crash between creating dovecot-uidlist.lock (open O_EXCL) and writing "pid:host" into it
 * (src/lib-storage/maildir/maildir-dotlock.ts dotlockCreate: two separate async steps) leaves
 * an EMPTY lock; without a pid it can only be judged stale by age (120 s, Dovecot's
 * MAILDIR_UIDLIST_LOCK_STALE_TIMEOUT), so every delivery to that Maildir — and every message
 * with a recipient there — waits. The lock left by the killed master is simulated here by
 * writing the empty file while the system is stopped; a lock naming a dead pid must be
 * overridden at once (that case already works: measured too).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { startLoad, warmMaildirs } from '../harness/fault-kit.ts';

const USER = 'postmaster@example.test';
let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); await warmMaildirs(sys, [USER]); });
after(async () => { await sys?.kill(); await sys?.destroy(); });   // kill: a delivery may be waiting on the lock

async function deliveryAfterLock(content: string, tag: string): Promise<number | undefined> {
  await sys.kill();
  writeFileSync(join(sys.maildir(USER), 'dovecot-uidlist.lock'), content);
  await PosternSystem.start(sys);
  const start = Date.now();
  const out = await startLoad({ port: sys.ports.smtp, threads: 1, count: 1, tag, rcpts: [USER] }).done();
  const qid = out.get(`${tag}-0-0`)?.qid;
  assert.ok(qid);
  try {
    await sys.waitLog(new RegExp(`${qid}: to=<[^>]+>, relay=virtual, .*status=sent`), 10_000);
    return Date.now() - start;
  } catch {
    return undefined;
  }
}

test('a lock naming a dead pid (the killed master) is overridden at once', async (t) => {
  const ms = await deliveryAfterLock(`999999:${hostname()}`, 'deadpid');
  t.diagnostic(`delivered ${ms === undefined ? 'not within 10 s' : `after ${ms} ms`}`);
  assert.ok(ms !== undefined && ms < 5000);
});

test('an empty lock left by a crash does not stall deliveries for 120 s', {
}, async (t) => {
  const ms = await deliveryAfterLock('', 'emptylock');
  t.diagnostic(`delivered ${ms === undefined ? 'not within 10 s' : `after ${ms} ms`}`);
  assert.ok(ms !== undefined && ms < 5000);
});
