/**
 * Read-only mail store (issue 8 item 2): the mailboxes' file system turns read-only (a bind
 * mount of virtual_mailbox_base remounted "ro": as root a chmod would not stop the writes).
 * Messages accepted meanwhile must be deferred — kept in the queue, `postern queue list`
 * and the log saying why — never bounced or lost; once the store is writable again,
 * `postern queue flush` delivers every one of them exactly once, and real Dovecot opens the
 * Maildir cleanly. Needs root (mount); skipped with the reason otherwise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { countKinds, scanMaildir, sleep, startLoad, waitQueueEmpty, warmMaildirs } from '../harness/fault-kit.ts';
import { haveDoveadm, verifyMaildirs } from '../harness/dovecot-verify.ts';

const USER = 'postmaster@example.test';
const isRoot = process.getuid?.() === 0;
let sys: PosternSystem;
let vmail = '';
let mounted = false;
let mountError = '';
let roRan = false;

function mount(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: r.stderr };
}
function umount(): void {
  if (mounted) { spawnSync('umount', [vmail]); mounted = false; }
}

before(async () => {
  sys = await PosternSystem.start();
  await warmMaildirs(sys, [USER]);
  vmail = join(sys.configDir, 'data', 'vmail');
  if (!isRoot) return;
  const b = mount('--bind', vmail, vmail);
  if (!b.ok) { mountError = b.err; return; }
  mounted = true;
});
after(async () => { umount(); await sys?.destroy(); });

test('a read-only store defers deliveries; after it is writable again a flush delivers them', async (t) => {
  if (!isRoot) { t.skip('needs root to remount the store read-only'); return; }
  if (!mounted) { t.skip(`bind mount failed: ${mountError}`); return; }
  try {
    const ro = mount('-o', 'remount,bind,ro', vmail);
    assert.ok(ro.ok, `remount ro: ${ro.err}`);
    roRan = true;
    const mark = sys.log.length;
    const out = await startLoad({ port: sys.ports.smtp, threads: 4, count: 5, tag: 'ro', rcpts: [USER] }).done();
    const k = countKinds(out);
    assert.equal(k.ACK, 20, `smtpd accepts (the queue is writable): ${JSON.stringify(k)}`);
    // every message deferred (not bounced), with the reason in the log
    const deferred = await sys.waitLog(/status=deferred \(([^)]*)\)/, 10_000);
    await sleep(500);
    const since = sys.log.slice(mark);
    const nDeferred = (since.match(/relay=virtual, .*status=deferred/g) ?? []).length;
    t.diagnostic(`read-only store: ${k.ACK} accepted, ${nDeferred} deferrals logged, reason "${deferred[1]}"`);
    assert.doesNotMatch(since, /status=(bounced|sent)/, 'nothing bounced or delivered while read-only');
    assert.ok(nDeferred >= 20, `every message deferred (${nDeferred})`);
    const q = (await sys.cli('queue', 'list')).stdout;
    assert.match(q, /-- \d+ Kbytes in 20 Requests\./, 'the 20 messages wait in the queue');
    assert.match(q, /\(maildir delivery failed: [^)]+\)/, 'the listing says why');
    assert.equal(scanMaildir(sys.maildir(USER)).copies.size, 1, 'only the warm-up message is in the Maildir');

    // writable again → flush → all delivered once
    const rw = mount('-o', 'remount,bind,rw', vmail);
    assert.ok(rw.ok, `remount rw: ${rw.err}`);
    assert.equal((await sys.cli('queue', 'flush')).status, 0);
    await waitQueueEmpty(sys, 20_000);
    const scan = scanMaildir(sys.maildir(USER));
    for (const tk of out.keys()) assert.equal(scan.copies.get(tk), 1, `${tk} delivered exactly once after the flush`);
    assert.deepEqual(scan.truncated, []);
    if (haveDoveadm) {
      const v = verifyMaildirs(vmail);
      t.diagnostic(`dovecot: ${v.maildirs.map((m) => `${m.user} ${m.messages} messages`).join(', ')}`);
      assert.deepEqual(v.problems, []);
    }
  } finally {
    umount();
  }
});

test('the deferral reason names the failing file and the system error, as Postfix does', {
}, async (t) => {
  if (!roRan) { t.skip('needs the read-only mount of the first test'); return; }
  assert.match(sys.log, /status=deferred \(maildir delivery failed: [^)]*(Read-only file system|EROFS)/);
});
