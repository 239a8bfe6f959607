/**
 * qmgr tests: messages written by the real CleanupSession into a temp queue, resolved by the
 * real trivial-rewrite, delivered through test agents and the real discard/error agents.
 * Retry timing uses small real backoff times (1-2 s), no fake clock.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setLogSink } from '../util/msg.ts';
import { DSN_NOTIFY } from '../global/rec-type.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { readBounceLog } from '../global/bounce-log.ts';
import { makeEnv, listQueue, until, TEST_MASTER_CF, type Env } from '../../test/harness/qmgr-testkit.ts';
import { queueCommand } from '../cli/postqueue.ts';
import { backoffDelay } from './qmgr-active.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const envs: Env[] = [];
after(async () => { for (const e of envs) await e.close(); });
async function env(mainCf = ''): Promise<Env> { const e = await makeEnv(mainCf); envs.push(e); return e; }
const logFor = (qid: string) => logs.filter((l) => l.includes(`${qid}:`));

test('delivers through the agent of the master.cf transport, grouped by nexthop, then removes the file', async () => {
  const e = await env();
  await e.qmgr.start();
  const qid = await e.submit('alice@example.org', ['b@example.com', 'c@example.com', 'd@example.net']);
  await e.qmgr.idle();
  const got = e.agent.deliveries.map((d) => `${d.transport}:${d.nexthop} ${d.rcpts.join(',')}`).sort();
  assert.deepEqual(got, ['test:example.com b@example.com,c@example.com', 'test:example.net d@example.net']);
  assert.deepEqual(await listQueue(e.queue, 'active'), []);
  assert.deepEqual(await listQueue(e.queue, 'incoming'), []);
  assert.equal(e.agent.deliveries[0]!.sender, 'alice@example.org');
  assert.match(e.agent.deliveries[0]!.content, /^Subject: test\n/);
  const l = logFor(qid);
  assert.ok(l.some((x) => x.includes(`${qid}: from=<alice@example.org>, size=`) && x.includes('nrcpt=3 (queue active)')));
  assert.equal(l.filter((x) => /postern\/test\[\d+\]: .*to=<.*status=sent \(delivered\)/.test(x)).length, 3);
  assert.ok(l.at(-1)!.endsWith(`${qid}: removed`));
});

test('<transport>_destination_recipient_limit splits one destination into batches', async () => {
  const e = await env('test_destination_recipient_limit = 2');
  await e.qmgr.start();
  await e.submit('a@example.org', ['1@example.com', '2@example.com', '3@example.com', '4@example.com', '5@example.com']);
  await e.qmgr.idle();
  assert.deepEqual(e.agent.deliveries.map((d) => d.rcpts.length).sort(), [1, 2, 2]);
});

test('maxproc (master.cf) bounds a transport; <transport>_destination_concurrency_limit bounds a destination', async () => {
  const e = await env();
  e.agent.delayMs = 40;
  await e.qmgr.start();
  for (let i = 0; i < 12; i++) await e.submit('a@example.org', [`u@d${i}.example.com`]);
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 12);
  assert.ok(e.agent.maxRunning <= 4, `maxproc 4 exceeded: ${e.agent.maxRunning}`);
  assert.ok(e.agent.maxRunning >= 2, 'deliveries ran in parallel');

  const f = await env('test_destination_concurrency_limit = 1');
  f.agent.delayMs = 30;
  await f.qmgr.start();
  for (let i = 0; i < 6; i++) await f.submit('a@example.org', [`u${i}@same.example.com`]);
  await f.qmgr.idle();
  assert.equal(f.agent.deliveries.length, 6);
  assert.equal(f.agent.maxRunning, 1);
});

test('the active queue stays within qmgr_message_active_limit however much is queued', async () => {
  const e = await env('qmgr_message_active_limit = 5');
  e.agent.delayMs = 5;
  for (let i = 0; i < 60; i++) await e.submit('a@example.org', [`u${i}@d${i % 7}.example.com`]);
  assert.equal((await listQueue(e.queue, 'incoming')).length, 60);
  await e.qmgr.start();
  let peakFiles = 0;
  const t = setInterval(() => { void listQueue(e.queue, 'active').then((a) => { peakFiles = Math.max(peakFiles, a.length); }); }, 3);
  await e.qmgr.idle();
  clearInterval(t);
  assert.equal(e.agent.deliveries.length, 60);
  assert.ok(e.qmgr.peakActive <= 5, `peak in memory ${e.qmgr.peakActive}`);
  assert.ok(peakFiles <= 5, `peak files in active/ ${peakFiles}`);
});

test('backoff: time in queue clamped to [minimal_backoff_time, maximal_backoff_time]', () => {
  const s = { minimalBackoffTime: 300, maximalBackoffTime: 4000 };
  assert.equal(backoffDelay(1_000_000, 1_000_000 + 10_000, s), 300);
  assert.equal(backoffDelay(1_000_000, 1_000_000 + 1000_000, s), 1000);
  assert.equal(backoffDelay(1_000_000, 1_000_000 + 9000_000, s), 4000);
});

test('a deferred recipient is retried after minimal_backoff_time; a delivered one is never delivered again', async () => {
  const e = await env('minimal_backoff_time = 1s\nmaximal_backoff_time = 2s\nqueue_run_delay = 1s');
  e.agent.decide = (r, _req, n) => (r.address === 'slow@example.com' && n === 1
    ? { status: 'deferred', dsn: '4.4.1', text: 'connect to mx.example.com[192.0.2.1]:25: Connection refused' }
    : { status: 'sent', dsn: '2.0.0', text: 'delivered' });
  await e.qmgr.start();
  const t0 = Date.now();
  const qid = await e.submit('a@example.org', ['fast@example.net', 'slow@example.com']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid), 5000, 'deferred');
  // Retry time = mtime of the deferred file, in the future by the backoff.
  const st = statSync(e.queue.path('deferred', qid));
  assert.ok(st.mtimeMs > Date.now() - 200 && st.mtimeMs <= t0 + 3000, `mtime ${st.mtimeMs - t0}`);
  const defer = await readBounceLog(e.queue, 'defer', qid);
  assert.deepEqual(defer.map((d) => [d.recipient, d.status, d.action]), [['slow@example.com', '4.4.1', 'delayed']]);
  const qf = await QueueFile.open(e.queue.path('deferred', qid), qid);
  assert.deepEqual(qf.recipients.map((r) => [r.address, !!r.done]), [['fast@example.net', true], ['slow@example.com', false]]);
  assert.ok(logs.some((l) => l.includes(`${qid}: to=<slow@example.com>`) && l.includes('status=deferred (connect to mx.example.com[192.0.2.1]:25: Connection refused)')));
  await until(() => e.agent.to('slow@example.com').length === 2, 6000, 'retry');
  await e.qmgr.idle();
  assert.ok(Date.now() - t0 >= 900, 'retry waited for the backoff');
  assert.equal(e.agent.to('fast@example.net').length, 1);
  assert.equal(e.agent.to('slow@example.com').length, 2);
  assert.deepEqual(await listQueue(e.queue, 'deferred'), []);
  assert.ok(!existsSync(e.queue.path('defer', qid)), 'defer log removed');
});

test('flush() delivers deferred mail before its retry time', async () => {
  const e = await env('minimal_backoff_time = 1h\nmaximal_backoff_time = 2h');
  e.agent.decide = (_r, _q, n) => (n === 1 ? { status: 'deferred', dsn: '4.4.1', text: 'try later' } : { status: 'sent', dsn: '2.0.0', text: 'ok' });
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['x@example.com']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid));
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 1);
  e.qmgr.wakeup();
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 1, 'not before its time');
  e.qmgr.flush();
  await until(() => e.agent.deliveries.length === 2);
  await e.qmgr.idle();
  assert.deepEqual(await listQueue(e.queue, 'deferred'), []);
});

test('an unknown transport defers with "mail transport unavailable"', async () => {
  const e = await env('transport_maps = inline:{ {nowhere.example=nowhere:}, {gone.example=missing:} }');
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['u@nowhere.example', 'v@gone.example']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid));
  const l = logFor(qid).filter((x) => x.includes('status=deferred (mail transport unavailable)'));
  assert.equal(l.length, 2);
  assert.ok(l.every((x) => x.includes('dsn=4.3.0')));
});

test('hold queue is never scheduled; active/ left by a crash is recovered at start', async () => {
  const e = await env();
  const held = await e.submit('a@example.org', ['held@example.com']);
  await e.queue.move(held, 'incoming', 'hold');
  const crashed = await e.submit('a@example.org', ['crashed@example.com']);
  await e.queue.move(crashed, 'incoming', 'active');
  await e.qmgr.start();
  await e.qmgr.idle();
  assert.deepEqual(e.agent.deliveries.map((d) => d.rcpts[0]), ['crashed@example.com']);
  assert.deepEqual(await listQueue(e.queue, 'hold'), [held]);
});

test('a corrupt queue file goes to the corrupt queue, never delivered, never deleted', async () => {
  const e = await env();
  const qid = await e.submit('a@example.org', ['x@example.com']);
  const p = e.queue.path('incoming', qid);
  const b = readFileSync(p);
  mkdirSync(join(e.dir, 'tmpx'), { recursive: true });
  copyFileSync(p, join(e.dir, 'tmpx', 'orig'));
  // Truncate away the E record.
  const { truncateSync } = await import('node:fs');
  truncateSync(p, b.length - 2);
  await e.qmgr.start();
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 0);
  assert.deepEqual(await listQueue(e.queue, 'corrupt'), [qid]);
  assert.ok(logs.some((l) => l.includes(`saving corrupt file "${qid}"`)));
});

test('discard: and error: transports, relocated_maps: sent (discarded) / bounced 5.1.6 "User has moved to"', async () => {
  const e = await env([
    'transport_maps = inline:{ {junk.example=discard:}, {dead.example=error:5.7.1 this domain is closed}, {later.example=retry:4.7.0 come back later} }',
    'relocated_maps = inline:{ {old@example.com=new@example.net} }',
    'minimal_backoff_time = 1h', 'maximal_backoff_time = 2h',
  ].join('\n'));
  await e.qmgr.start();
  const qid = await e.submit('sender@example.org', ['x@junk.example', 'y@dead.example', 'old@example.com', 'z@later.example']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid));
  await e.qmgr.idle();
  const l = logFor(qid);
  assert.ok(l.some((x) => /postern\/discard\[\d+\]: .*to=<x@junk\.example>, relay=none, .*dsn=2\.0\.0, status=sent \(junk\.example\)/.test(x)), l.join('\n'));
  assert.ok(l.some((x) => /postern\/error\[\d+\]: .*to=<y@dead\.example>, relay=none, .*dsn=5\.7\.1, status=bounced \(this domain is closed\)/.test(x)));
  assert.ok(l.some((x) => /to=<old@example\.com>, relay=none, .*dsn=5\.1\.6, status=bounced \(User has moved to new@example\.net\)/.test(x)));
  assert.ok(l.some((x) => /postern\/retry\[\d+\]: .*to=<z@later\.example>, .*dsn=4\.7\.0, status=deferred \(come back later\)/.test(x)));
  // One DSN for the two bounced recipients went to the sender (delivered by the test agent).
  const dsn = e.agent.to('sender@example.org');
  assert.equal(dsn.length, 1);
  assert.equal(dsn[0]!.sender, '');
  assert.match(dsn[0]!.content, /Final-Recipient: rfc822; y@dead\.example\nOriginal-Recipient: rfc822;y@dead\.example\nAction: failed\nStatus: 5\.7\.1\n/);
  assert.match(dsn[0]!.content, /Final-Recipient: rfc822; old@example\.com\n.*\nAction: failed\nStatus: 5\.1\.6\nDiagnostic-Code: X-Postfix; User has moved to new@example\.net\n/);
  assert.ok(!dsn[0]!.content.includes('x@junk.example'));
  // The message stays deferred for z@later.example only.
  const qf = await QueueFile.open(e.queue.path('deferred', qid), qid);
  assert.deepEqual(qf.undone.map((r) => r.address), ['z@later.example']);
});

test('no DSN for a null-sender message, nor for NOTIFY=NEVER; NOTIFY=SUCCESS gets a success report', async () => {
  const e = await env();
  e.agent.decide = (r) => (r.address.startsWith('bad') ? { status: 'bounced', dsn: '5.1.1', text: 'user unknown' } : { status: 'sent', dsn: '2.0.0', text: 'ok' });
  await e.qmgr.start();
  const q1 = await e.submit('', ['bad1@example.com']);
  const q2 = await e.submit('s2@example.org', [{ address: 'bad2@example.com', orig: 'bad2@example.com', notify: DSN_NOTIFY.NEVER }]);
  const q3 = await e.submit('s3@example.org', [{ address: 'good@example.com', orig: 'good@example.com', notify: DSN_NOTIFY.SUCCESS | DSN_NOTIFY.FAILURE, orcpt: 'rfc822;Good@Example.COM' }]);
  await e.qmgr.idle();
  await until(() => e.agent.to('s3@example.org').length === 1);
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.filter((d) => d.sender === '' && d.qid !== q1).length, 1, 'only the success report');
  assert.equal(e.agent.to('s2@example.org').length, 0);
  const rep = e.agent.to('s3@example.org')[0]!.content;
  assert.match(rep, /^Subject: Successful Mail Delivery Report$/m);
  assert.match(rep, /Final-Recipient: rfc822; good@example\.com\nOriginal-Recipient: rfc822;Good@Example\.COM\nAction: delivered\nStatus: 2\.0\.0\n/);
  for (const q of [q1, q2, q3]) assert.ok(logs.some((l) => l.endsWith(`${q}: removed`)));
  // Admitted from cleanup's trigger (no look-up of old logs): the logs this attempt wrote are
  // removed with the message all the same.
  for (const name of ['bounce', 'defer', 'trace'] as const) assert.deepEqual(await listQueue(e.queue, name), [], `${name} logs left`);
});

test('maximal_queue_lifetime: still deferred after it → "status=expired, returned to sender" with the defer reasons', async () => {
  const e = await env('maximal_queue_lifetime = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nqueue_run_delay = 1s');
  e.agent.decide = (r) => (r.address.startsWith('u') ? { status: 'deferred', dsn: '4.4.1', text: 'connect to mx.example.com[192.0.2.1]:25: Connection refused' } : { status: 'sent', dsn: '2.0.0', text: 'ok' });
  await e.qmgr.start();
  const qid = await e.submit('owner@example.org', ['u@example.com']);
  await until(() => logs.some((l) => l.includes(`${qid}: from=<owner@example.org>, status=expired, returned to sender`)), 8000, 'expiry');
  await until(() => e.agent.to('owner@example.org').length === 1, 5000, 'DSN');
  await e.qmgr.idle();
  const dsn = e.agent.to('owner@example.org')[0]!.content;
  assert.match(dsn, /^Subject: Undelivered Mail Returned to Sender$/m);
  assert.match(dsn, /Final-Recipient: rfc822; u@example\.com\n.*\nAction: failed\nStatus: 4\.4\.1\n/);
  assert.match(dsn, /\n\n<u@example\.com>: connect to mx\.example\.com\[192\.0\.2\.1\]:25: Connection refused\n\n/);
  assert.deepEqual(await listQueue(e.queue, 'deferred'), []);
  assert.ok(logs.some((l) => l.endsWith(`${qid}: removed`)));
});

test('delay_warning_time: one delay notice, then none', async () => {
  const e = await env('delay_warning_time = 1s\nminimal_backoff_time = 1s\nmaximal_backoff_time = 1s\nqueue_run_delay = 1s');
  e.agent.decide = (r) => (r.address === 'stuck@example.com' ? { status: 'deferred', dsn: '4.4.2', text: 'conversation timed out' } : { status: 'sent', dsn: '2.0.0', text: 'ok' });
  await e.qmgr.start();
  await e.submit('w@example.org', ['stuck@example.com']);
  await until(() => e.agent.to('stuck@example.com').length >= 4, 10_000, 'several attempts');
  await e.qmgr.idle();
  const notes = e.agent.to('w@example.org');
  assert.equal(notes.length, 1);
  assert.match(notes[0]!.content, /^Subject: Delayed Mail \(still being retried\)$/m);
  assert.match(notes[0]!.content, /Action: delayed\nStatus: 4\.4\.2\n/);
  assert.match(notes[0]!.content, /Will-Retry-Until: /);
  assert.match(notes[0]!.content, /Content-Type: text\/rfc822-headers/);
});

test('without any in-process notify: mail renamed into incoming by another process is seen (fs.watch), and `postern queue flush` reaches the running qmgr', async () => {
  const e = await makeEnv('minimal_backoff_time = 1h\nmaximal_backoff_time = 2h', TEST_MASTER_CF, { watch: true, notify: false });
  envs.push(e);
  e.agent.decide = (_r, _q, n) => (n === 1 ? { status: 'deferred', dsn: '4.4.1', text: 'later' } : { status: 'sent', dsn: '2.0.0', text: 'ok' });
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['w@example.com']);
  await until(async () => (await listQueue(e.queue, 'deferred')).includes(qid), 5000, 'first attempt via the directory watch');
  const io = { out: () => {}, err: () => {} };
  assert.equal(await queueCommand(e.queue, ['flush'], io), 0);
  await until(() => e.agent.deliveries.length === 2, 5000, 'flush trigger');
  await e.qmgr.idle();
  assert.deepEqual(await listQueue(e.queue, 'deferred'), []);
});

test('the master.cf service: qmgr started from a config directory delivers new mail it sees in incoming; master.cf is the context\'s, given to each agent factory, never read from disk', async () => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { MainConfig } = await import('../global/mail-conf.ts');
  const { CleanupSession } = await import('../cleanup/cleanup.ts');
  const { qmgrService, queueFromConfig } = await import('./qmgr.ts');
  const { openRewrite, bounce } = await import('../master/master-clients.ts');
  const { parseMasterCf } = await import('../global/master-cf.ts');
  let given: unknown;
  const service = qmgrService({ discard: async (_c, masterCf) => { given = masterCf; return (await import('../discard/discard.ts')).createDiscardAgent(); } }, { openRewrite, bounce });
  const { logger } = await import('../util/msg.ts');
  const dir = mkdtempSync(join(tmpdir(), 'postern-qmgr-svc-'));
  try {
    writeFileSync(join(dir, 'main.cf'), `queue_directory = ${dir}/queue\nmyhostname = mx.example.test\nmydestination = localhost\ninet_interfaces = loopback-only\ntransport_maps = inline:{ {example.com=discard:dropped} }\n`);
    // No master.cf in the directory: the master parsed it and passes the entries down.
    const masterCf = parseMasterCf('qmgr unix n - n 300 1 qmgr\ndiscard unix - - n - - discard\n', join(dir, 'master.cf'));
    const config = MainConfig.load(dir);
    const queue = queueFromConfig(config);
    queue.ensureDirs();
    const running = await service.start({ config, entry: masterCf[0]!, masterCf, dovecot: undefined as never, log: logger('qmgr'), listeners: [], failed: (e) => { throw e; } });
    const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, queue, { sender: 's@example.org', attrs: {}, addMissingHeaders: false });
    c.addRecipient({ address: 'x@example.com' });
    await c.write(Buffer.from('Subject: s\n\nb\n'));
    const r = await c.finish();
    assert.ok('queueId' in r);
    await until(() => logs.some((l) => l.includes(`${r.queueId}: removed`)), 5000, 'delivery by the service');
    assert.ok(logs.some((l) => l.includes(`${r.queueId}: to=<x@example.com>`) && l.includes('status=sent (dropped)')));
    assert.equal(given, masterCf);
    await running.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a redirect from an agent (local(8) mailbox_transport) is delivered at once through the named transport', async () => {
  const e = await env();
  e.agent.decide = (_r, req) => req.transport === 'local'
    ? { status: 'deferred', dsn: '4.3.0', text: 'mail transport redirect to test:lmtp-host', redirect: { transport: 'test', nexthop: 'lmtp-host' } } as never
    : { status: 'sent', dsn: '2.0.0', text: 'delivered' };
  await e.qmgr.start();
  const qid = await e.submit('a@example.org', ['joe@mx.example.test']);
  await e.qmgr.idle();
  assert.deepEqual(e.agent.deliveries.map((d) => `${d.transport}:${d.nexthop}`), ['local:mx.example.test', 'test:lmtp-host']);
  assert.deepEqual(await listQueue(e.queue, 'deferred'), [], 'not deferred');
  assert.ok(logFor(qid).some((l) => /to=<joe@mx\.example\.test>.*status=sent/.test(l)));

  const f = await env();
  f.agent.decide = () => ({ status: 'deferred', dsn: '4.3.0', text: 'loop', redirect: { transport: 'local', nexthop: 'x' } } as never);
  await f.qmgr.start();
  const q2 = await f.submit('a@example.org', ['joe@mx.example.test']);
  await f.qmgr.idle();
  assert.deepEqual(await listQueue(f.queue, 'deferred'), [q2], 'a redirect to the same transport is a configuration loop: deferred');
  assert.ok(logs.some((l) => l.includes('mail transport redirect loop via local')));
});

test('dead destination: an smtp delivery that reaches no server suspends the destination; the rest is deferred without an attempt until queue flush', async () => {
  const masterCf = TEST_MASTER_CF.replace(/^test .*$/m, 'test      unix  -       -       n       -       1       smtp');
  const e = await makeEnv('', masterCf);
  envs.push(e);
  let down = true;
  e.agent.decide = () => (down
    ? { status: 'deferred', dsn: '4.4.1', text: 'connect to mx.example.com[192.0.2.1]:25: Connection refused', relay: 'none' }
    : { status: 'sent', dsn: '2.0.0', text: '250 2.0.0 Ok', relay: 'mx.example.com[192.0.2.1]:25' });
  const qids: string[] = [];
  for (let i = 0; i < 5; i++) qids.push(await e.submit('a@example.org', [`u${i}@example.com`]));
  await e.qmgr.start();
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 1, 'one connection attempt, not five');
  assert.equal((await listQueue(e.queue, 'deferred')).length, 5);
  const suspended = logs.filter((l) => qids.some((q) => l.includes(`${q}: to=<`)) && l.includes('status=deferred (delivery temporarily suspended: connect to mx.example.com[192.0.2.1]:25: Connection refused)'));
  assert.equal(suspended.length, 4);
  const defer = await readBounceLog(e.queue, 'defer', qids.find((q) => e.agent.deliveries[0]!.qid !== q)!);
  assert.equal(defer[0]!.status, '4.4.1');
  // the relay comes back: postqueue -f revives the dead destination
  down = false;
  e.qmgr.flush();
  await e.qmgr.idle();
  assert.equal(e.agent.deliveries.length, 6, 'flush revives the destination: every message tried');
  assert.deepEqual(await listQueue(e.queue, 'deferred'), []);
});

test('content filter route (qmgr_message_resolve()): transport:nexthop, then default_filter_nexthop, the recipient domain, myhostname', async () => {
  const { filterDestination } = await import('./qmgr-message.ts');
  const f = (filter: string, defaultNexthop = '') => (rcpt: string) => filterDestination({ filter, defaultNexthop, myhostname: 'mx.example.test' }, rcpt);
  assert.deepEqual(f('scan:[127.0.0.1]:10024')('a@example.org'), { transport: 'scan', nexthop: '[127.0.0.1]:10024' });
  assert.deepEqual(f('scan:')('a@example.org'), { transport: 'scan', nexthop: 'example.org' });
  assert.deepEqual(f('scan')('a@example.org'), { transport: 'scan', nexthop: 'example.org' });
  assert.deepEqual(f('scan:', '[127.0.0.1]:10026')('a@example.org'), { transport: 'scan', nexthop: '[127.0.0.1]:10026' });
  assert.deepEqual(f('scan:')('postmaster'), { transport: 'scan', nexthop: 'mx.example.test' });
});
