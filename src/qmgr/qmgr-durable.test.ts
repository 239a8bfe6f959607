/**
 * qmgr and RecipientResult.durable (virtual(8)'s grouped fsync of new/, util/dir-sync.ts):
 * a delivery reported 'sent' whose last step is still reaching the disk never lets the queue
 * file go (nor its D record be written) before that step is done, and a step that fails makes
 * the recipient deferred and delivered again: at most a duplicate, never a loss.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setLogSink } from '../util/msg.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { readBounceLog } from '../global/bounce-log.ts';
import { makeEnv, listQueue, until, type Env } from '../../test/harness/qmgr-testkit.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const envs: Env[] = [];
after(async () => { for (const e of envs) await e.close(); });
async function env(mainCf = ''): Promise<Env> { const e = await makeEnv(mainCf); envs.push(e); return e; }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the queue file stays in active until the delivery is durable, then goes', async () => {
  const e = await env();
  let release!: () => void;
  const durable = new Promise<void>((r) => { release = r; });
  e.agent.decide = () => ({ status: 'sent', dsn: '2.0.0', text: 'delivered to maildir', durable });
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['rcpt@example.net']);
  await until(() => e.agent.to('rcpt@example.net').length === 1, 5000, 'delivery');
  await sleep(200);
  assert.ok(existsSync(e.queue.path('active', qid)), 'still in active while the delivery is not on disk');
  release();
  await until(() => !existsSync(e.queue.path('active', qid)), 5000, 'removal');
  assert.ok(logs.some((l) => l.includes(`${qid}: removed`)));
});

test('a delivery that cannot be made durable is deferred and delivered again; nothing is marked done', async () => {
  const e = await env('minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s');
  e.agent.decide = (_r, _req, n) => (n === 1
    ? { status: 'sent', dsn: '2.0.0', text: 'delivered to maildir', durable: Promise.reject(new Error('fsync(/m/new): Input/output error')) }
    : { status: 'sent', dsn: '2.0.0', text: 'delivered to maildir' });
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['rcpt@example.net']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid), 5000, 'deferred');
  const qf = await QueueFile.open(e.queue.path('deferred', qid), qid);
  assert.deepEqual(qf.recipients.map((r) => [r.address, !!r.done]), [['rcpt@example.net', false]]);
  const defer = await readBounceLog(e.queue, 'defer', qid);
  assert.deepEqual(defer.map((d) => [d.recipient, d.status]), [['rcpt@example.net', '4.3.0']]);
  assert.match(defer[0]!.reason, /Input\/output error/);
  assert.ok(logs.some((l) => l.includes(`${qid}: to=<rcpt@example.net>: delivered, but not known to be on disk`)));
  await until(() => e.agent.to('rcpt@example.net').length === 2, 6000, 'second delivery');
  await until(async () => (await listQueue(e.queue, 'deferred')).length === 0 && !existsSync(e.queue.path('active', qid)), 5000, 'removal');
});

test('several entries: a durable result is awaited before its D record; a failed one stays undone, the other is done', async () => {
  const e = await env('minimal_backoff_time = 60s\nmaximal_backoff_time = 60s');
  e.agent.decide = (r) => (r.address === 'bad@example.com'
    ? { status: 'sent', dsn: '2.0.0', text: 'delivered to maildir', durable: sleep(100).then((): void => { throw new Error('fsync failed'); }) }
    : { status: 'sent', dsn: '2.0.0', text: 'delivered to maildir', durable: sleep(100).then(() => undefined) });
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['good@example.net', 'bad@example.com']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid), 5000, 'deferred');
  const qf = await QueueFile.open(e.queue.path('deferred', qid), qid);
  assert.deepEqual(qf.recipients.map((r) => [r.address, !!r.done]), [['good@example.net', true], ['bad@example.com', false]]);
  const defer = await readBounceLog(e.queue, 'defer', qid);
  assert.deepEqual(defer.map((d) => d.recipient), ['bad@example.com']);
});
