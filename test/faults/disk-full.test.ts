/**
 * Full disk (issue 8 item 2): the queue and the mailboxes live on one small tmpfs (8 MB,
 * mounted on the system's data directory before the first start, so queue_directory and
 * virtual_mailbox_base are both on it). A filler file takes most of it; 4 clients then send
 * 50 KB messages until the rest is full. smtpd must answer 4xx — never 250 for a message it
 * could not store, never 5xx; then the filler is removed, `postern queue flush`, and every
 * 250-acknowledged message is in the Maildir exactly once, the queue drains, Dovecot opens
 * the Maildir cleanly. Postfix answers MAIL FROM with "452 4.3.1 Insufficient system storage"
 * when the queue file system is (nearly) full (smtpd_check_queue) and end-of-DATA with
 * "451 4.3.0 Error: queue file write error" when cleanup could not write.
 * Needs root (mount -t tmpfs); skipped with the reason otherwise; always unmounted.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../harness/postern-system.ts';
import { countKinds, scanMaildir, sleep, startLoad, waitQueueEmpty, warmMaildirs, type Outcome } from '../harness/fault-kit.ts';
import { haveDoveadm, verifyMaildirs } from '../harness/dovecot-verify.ts';

const USER = 'postmaster@example.test';
const isRoot = process.getuid?.() === 0;
let sys: PosternSystem | undefined;
let data = '';
let mounted = false;
let skipReason = '';
let outcomes = new Map<string, Outcome>();
let fullReplies: string[] = [];

function freeBytes(): number { const s = statfsSync(data); return s.bavail * s.bsize; }

before(async () => {
  if (!isRoot) { skipReason = 'needs root to mount a tmpfs'; return; }
  sys = await PosternSystem.prepare();
  data = join(sys.configDir, 'data');
  mkdirSync(data, { recursive: true });
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=755', 'tmpfs', data], { encoding: 'utf8' });
  if (m.status !== 0) { skipReason = `mount -t tmpfs failed: ${m.stderr.trim()}`; return; }
  mounted = true;
  await PosternSystem.start(sys);
  // No mail may leave this host during the test (a bounce to a remote sender would need DNS).
  assert.equal((await sys.cli('conf', '-e', 'default_transport=error:no remote delivery in this test', 'relay_transport=error:no relay in this test')).status, 0);
  assert.equal((await sys.cli('reload')).status, 0);
  await sys.waitLog(/reload -- version/);
  await warmMaildirs(sys, [USER]);
});

after(async () => {
  await sys?.stop().catch(() => {});
  if (mounted) spawnSync('umount', ['-l', data]);
  if (sys) rmSync(sys.dir, { recursive: true, force: true });
});

interface Run { k: ReturnType<typeof countKinds>; texts: string[]; scan: ReturnType<typeof scanMaildir>; drained: string; aliveAfterFull: boolean }
let run: Run | undefined;

/** Fill the disk while sending, then free it and flush; the tests below judge the record. */
async function fillAndRecover(t: { diagnostic(s: string): void }): Promise<Run> {
  if (run) return run;
  const s = sys!;
  const filler = join(data, 'filler');
  writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes() - 1_500_000), 1));
  t.diagnostic(`tmpfs: ${(freeBytes() / 1024).toFixed(0)} KB free before the load`);
  outcomes = await startLoad({ port: s.ports.smtp, threads: 4, count: 30, tag: 'full', size: 50_000, rcpts: [USER], sender: USER }).done();
  const k = countKinds(outcomes);
  fullReplies = [...outcomes.values()].filter((o) => o.kind !== 'ACK').map((o) => o.detail);
  const texts = [...new Set(fullReplies)];
  t.diagnostic(`disk full: ${outcomes.size} messages tried, ${k.ACK} x 250, ${k.TEMP} x 4xx, ${k.PERM} x 5xx, ${k.DROP} connections lost; replies: ${JSON.stringify(texts)}; ${(freeBytes() / 1024).toFixed(0)} KB free`);
  const aliveAfterFull = (await s.cli('status')).status === 0;
  rmSync(filler);
  await s.cli('queue', 'flush');
  let drained = '';
  try { await waitQueueEmpty(s, 15_000); } catch (e) { drained = (e as Error).message.slice(0, 500); }
  await sleep(300);
  run = { k, texts, scan: scanMaildir(s.maildir(USER)), drained, aliveAfterFull };
  return run;
}

test('a full queue file system: smtpd answers 4xx (never 5xx), keeps serving, and the system keeps running', async (t) => {
  if (skipReason) { t.skip(skipReason); return; }
  const r = await fillAndRecover(t);
  assert.ok(r.k.TEMP > 0, 'the file system did fill up and smtpd said so with 4xx');
  assert.equal(r.k.PERM, 0, 'a full disk is a temporary condition: never 5xx');
  assert.equal(r.k.DROP, 0, 'smtpd kept answering (no crash, no dropped sessions)');
  assert.ok(r.aliveAfterFull, 'postern status is 0 while the disk is full');
  const refused = [...outcomes].filter(([tk, o]) => o.kind !== 'ACK' && (r.scan.copies.get(tk) ?? 0) > 0).map(([tk]) => tk);
  assert.deepEqual(refused, [], 'a message answered 4xx is not delivered');
  if (haveDoveadm) assert.deepEqual(verifyMaildirs(join(data, 'vmail')).problems, [], 'Dovecot opens the Maildir cleanly');
});

test('no truncated message is delivered to a Maildir on a full disk', {
}, async (t) => {
  if (skipReason) { t.skip(skipReason); return; }
  const r = await fillAndRecover(t);
  t.diagnostic(`${r.scan.truncated.length} truncated file(s) in the Maildir`);
  assert.deepEqual(r.scan.truncated, []);
});

test('smtpd never answers 250 for a message it could not store completely', {
}, async (t) => {
  if (skipReason) { t.skip(skipReason); return; }
  await fillAndRecover(t);
  const acked = new Set([...outcomes.values()].filter((o) => o.kind === 'ACK').map((o) => o.qid));
  const corrupt = [...sys!.log.matchAll(/saving corrupt file "(\w+)"/g)].map((m) => m[1]!).filter((q) => acked.has(q));
  t.diagnostic(`${corrupt.length} acknowledged message(s) moved to the corrupt queue`);
  assert.deepEqual(corrupt, []);
});

test('after space is freed and the queue flushed, every 250-acknowledged message is delivered exactly once', {
}, async (t) => {
  if (skipReason) { t.skip(skipReason); return; }
  const r = await fillAndRecover(t);
  const lost = [...outcomes].filter(([tk, o]) => o.kind === 'ACK' && r.scan.copies.get(tk) !== 1).map(([tk, o]) => `${tk} ${o.qid}: ${r.scan.copies.get(tk) ?? 0} copies`);
  const bounced = (sys!.log.match(/status=bounced.*/g) ?? []);
  const removedAfterDefer = [...sys!.log.matchAll(/ (\w+): to=<[^>]+>, .*status=deferred/g)].map((m) => m[1]!)
    .filter((q) => new RegExp(`${q}: removed`).test(sys!.log) && !new RegExp(`${q}: to=<[^>]+>, .*status=sent`).test(sys!.log));
  t.diagnostic(`after freeing space: ${r.k.ACK} acknowledged, ${lost.length} not delivered exactly once, ${bounced.length} bounced, ${removedAfterDefer.length} removed from the queue after a deferral without delivery; queue drained: ${r.drained ? 'no' : 'yes'}`);
  assert.deepEqual(removedAfterDefer, [], 'a deferred message is never removed from the queue');
  assert.deepEqual(bounced, [], 'no delivery bounced because the disk was full');
  assert.deepEqual(lost, [], 'every 250-acknowledged message delivered exactly once');
  assert.equal(r.drained, '', 'the queue drains');
});

test('smtpd gives Postfix\'s reply texts for a full queue file system', {
}, async (t) => {
  if (skipReason) { t.skip(skipReason); return; }
  await fillAndRecover(t);
  assert.ok(fullReplies.length > 0);
  assert.ok(fullReplies.every((x) => /^(452 4\.3\.1 Insufficient system storage|451 4\.3\.0 Error: queue file write error)$/.test(x)), `replies: ${JSON.stringify([...new Set(fullReplies)])}`);
  assert.ok(fullReplies.some((x) => /^452 4\.3\.1 Insufficient system storage$/.test(x)), 'MAIL FROM is refused once the disk is full');
});
