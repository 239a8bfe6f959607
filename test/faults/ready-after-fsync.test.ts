/**
 * The order of a queue file's commit (src/global/queue-file-writer.ts): the file is marked
 * ready for qmgr (mode 0700) only after its fsync returned, and the client's 250 comes after
 * that. With the file-sync fault point (POSTERN_FAULT_SYNC_HOLD_MS, src/util/file-sync.ts)
 * holding the queue file's flush, a message sent by a real client (swaks) is looked at while
 * held: its queue file is still mode 0600 ("being written"), qmgr has not taken it (no
 * "queue active" line, the file is still in incoming/), nothing is in the Maildir, and the
 * client has no answer yet. Once the flush runs: 250, and the message is delivered once.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { sleep, warmMaildirs } from '../harness/fault-kit.ts';

const HOLD_MS = 4000;
let sys: PosternSystem;

before(async () => {
  sys = await PosternSystem.prepare();
  sys.env = { POSTERN_FAULT_SYNC_HOLD_MS: String(HOLD_MS) };
  await PosternSystem.start(sys);
  await warmMaildirs(sys, ['postmaster@example.test']);
});
after(async () => { await sys?.destroy(); });

function newMessages(maildir: string): string[] {
  return readdirSync(join(maildir, 'new')).concat(readdirSync(join(maildir, 'cur')));
}

test('a queue file is not ready for qmgr (mode 0700) before its fsync returns: while the flush is held, no delivery and no 250', async () => {
  const maildir = sys.maildir('postmaster@example.test');
  const before = newMessages(maildir).length;
  const mark = sys.log.length;
  const body = 'Subject: held\n\nwaits for its flush\n';
  const client = spawn('swaks', ['--server', '127.0.0.1', '--port', String(sys.ports.smtp), '--from', 'alice@example.org',
    '--to', 'postmaster@example.test', '--data', body, '--timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  client.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((r) => client.on('exit', (c) => r(c)));
  let done = false;
  void exited.then(() => { done = true; });
  // The queue file's flush is held (its label is the queue ID, which has no '/').
  let qid = '';
  const end = Date.now() + 30_000;
  while (!qid && Date.now() < end) {
    const m = /fault point: file written, flush held \(\d+ waiting\): ([0-9A-F]+)$/m.exec(sys.log.slice(mark));
    if (m) qid = m[1]!;
    else await sleep(5);
  }
  assert.ok(qid, 'the log showed the queue file waiting for its flush');
  const t0 = Date.now();
  const incoming = join(sys.configDir, 'data', 'queue', 'incoming', qid);
  // Look several times while the flush is held (HOLD_MS from the file's write).
  let looks = 0;
  while (Date.now() - t0 < HOLD_MS / 2) {
    const st = statSync(incoming, { throwIfNoEntry: false });
    assert.ok(st, 'the file is still in incoming (qmgr did not take it)');
    assert.equal(st.mode & 0o777, 0o600, 'not marked ready while its flush is held');
    assert.ok(!new RegExp(`${qid}: from=<`).test(sys.log.slice(mark)), 'qmgr did not admit it');
    assert.equal(newMessages(maildir).length, before, 'nothing delivered');
    assert.equal(done, false, 'the client has no answer yet');
    assert.doesNotMatch(out, /<~\s+250 2\.0\.0 Ok: queued/);
    looks++;
    await sleep(100);
  }
  assert.ok(looks >= 3, `looked ${looks} times while held`);
  const code = await exited;
  assert.equal(code, 0, out);
  assert.match(out, new RegExp(`250 2\\.0\\.0 Ok: queued as ${qid}`));
  await sys.waitLog(new RegExp(`${qid}: removed`), 30_000);
  assert.equal(newMessages(maildir).length, before + 1, 'delivered once after the flush');
});
