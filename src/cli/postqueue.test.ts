/**
 * postern queue tests: the listing compared with real Postfix's `postqueue -p` (a private
 * Postfix holding and deferring the same messages), and the postsuper/postcat operations on a
 * real queue written by cleanup.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { setLogSink } from '../util/msg.ts';
import { makeEnv, listQueue, type Env } from '../../test/harness/qmgr-testkit.ts';
import { appendBounceLogs } from '../global/bounce-log.ts';
import { queueCommand, formatShowqMessage, type ShowqMessage } from './postqueue.ts';
import { asctime } from '../util/asctime.ts';
import { qshape } from './qshape.ts';
import { RealPostfix } from '../../test/harness/real-postfix.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { LineChat } from '../../test/harness/line-chat.ts';

setLogSink(() => {});
const envs: Env[] = [];
after(async () => { for (const e of envs) await e.close(); });

async function run(e: Env, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await queueCommand(e.queue, args, { out: (s) => { out += s; }, err: (s) => { err += s; } });
  return { code, out, err };
}

/** A queue like the one real Postfix has in the comparison test: one held, one deferred message. */
async function heldAndDeferred(): Promise<{ e: Env; held: string; deferred: string }> {
  const e = await makeEnv();
  envs.push(e);
  const held = await e.submit('alice@example.org', ['held@example.com', 'other@example.net'], 'Subject: t\n\nhello\n');
  await e.queue.move(held, 'incoming', 'hold');
  const deferred = await e.submit('', ['x@example.net', 'y@example.net'], 'Subject: t2\n\nhello2\n');
  await e.queue.move(deferred, 'incoming', 'deferred');
  const r = (recipient: string) => ({ recipient, status: '4.7.1', action: 'delayed', reason: 'deferred transport' });
  await appendBounceLogs(e.queue, 'defer', deferred, [r('x@example.net'), r('y@example.net')]);
  return { e, held, deferred };
}

/** Mask what legitimately differs between two systems: queue IDs, sizes, arrival times, totals. */
function mask(listing: string): string {
  return listing.split('\n').map((l) => {
    const m = /^([0-9A-F]{6,})([*!]?)( +)(\d+) (.{20}) (.*)$/.exec(l);
    if (m) return `QID${m[2]}${' '.repeat(Math.max(1, 11 - 3 - m[2]!.length + 7 - m[4]!.length))}SIZE TIME ${m[6]}`;
    return l.replace(/^-- \d+ Kbytes in/, '-- N Kbytes in');
  }).join('\n');
}

test('listing layout: heading, ID! for hold, (reason) right-aligned, recipients at column 42, summary', async () => {
  const { e, held, deferred } = await heldAndDeferred();
  const { code, out } = await run(e, 'list');
  assert.equal(code, 0);
  const lines = out.split('\n');
  assert.equal(lines[0], '-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------');
  assert.match(lines[1]!, new RegExp(`^${deferred} +\\d+ .{20} MAILER-DAEMON$`));
  assert.equal(lines[2], `${' '.repeat(76 - 'deferred transport'.length)}(deferred transport)`);
  assert.equal(lines[3], `${' '.repeat(41)}x@example.net`);
  assert.equal(lines[4], `${' '.repeat(41)}y@example.net`);
  assert.equal(lines[5], '');
  assert.match(lines[6]!, new RegExp(`^${held}! +\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d  alice@example\\.org$`));
  assert.equal(lines[7], `${' '.repeat(41)}held@example.com`);
  assert.equal(lines[8], `${' '.repeat(41)}other@example.net`);
  assert.equal(lines[9], '');
  assert.equal(lines[10], '-- 0 Kbytes in 2 Requests.');
});

test('an empty queue says "Mail queue is empty"; asctime pads the day like C', async () => {
  const e = await makeEnv();
  envs.push(e);
  assert.equal((await run(e, 'list')).out, 'Mail queue is empty\n');
  assert.equal(asctime(new Date(2026, 10, 7, 9, 5, 3)), 'Sat Nov  7 09:05:03 2026');
  const m: ShowqMessage = { queue: 'active', qid: 'ABCDEF12345', arrival: new Date(2026, 10, 7, 9, 5, 3).getTime(), size: 1234567, sender: 's@x', recipients: [{ address: 'a@x', why: '' }] };
  assert.equal(formatShowqMessage(m), `ABCDEF12345* 1234567 Sat Nov  7 09:05:03  s@x\n${' '.repeat(41)}a@x\n`);
});

test('same layout as real Postfix postqueue -p for the same held and deferred messages', async (t) => {
  const why = RealPostfix.unavailable();
  if (why) { t.skip(why); return; }
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: [
      'smtpd_recipient_restrictions = check_recipient_access inline:{held@example.com=HOLD}, permit',
      'relay_domains = example.com, example.net',
      'defer_transports = smtp, relay',
    ].join('\n'),
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
  let real: string;
  try {
    const c = await LineChat.open(port);
    await c.reply();
    const say = async (cmd: string, want: RegExp) => { c.send(cmd + '\r\n'); const r = await c.reply(); assert.match(r, want, `${cmd} → ${r}`); };
    await say('EHLO client.example', /^250/);
    await say('MAIL FROM:<alice@example.org>', /^250/);
    await say('RCPT TO:<held@example.com>', /^250/);
    await say('RCPT TO:<other@example.net>', /^250/);
    await say('DATA', /^354/);
    await say('Subject: t\r\n\r\nhello\r\n.', /^250/);
    await say('MAIL FROM:<>', /^250/);
    await say('RCPT TO:<x@example.net>', /^250/);
    await say('RCPT TO:<y@example.net>', /^250/);
    await say('DATA', /^354/);
    await say('Subject: t2\r\n\r\nhello2\r\n.', /^250/);
    c.send('QUIT\r\n');
    const deadline = Date.now() + 10_000;
    for (;;) {
      real = execFileSync('/usr/sbin/postqueue', ['-c', pf.configDir, '-p']).toString();
      // Wait until qmgr has moved the message to deferred with both reasons logged.
      if ((real.includes('(deferred transport)') && !/^[0-9A-F]+\*/m.test(real)) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await pf.stop();
  }
  const { e } = await heldAndDeferred();
  const ours = (await run(e, 'list')).out;
  assert.equal(mask(ours), mask(real), `ours:\n${ours}\nreal Postfix:\n${real}`);
  // Byte for byte: the heading line and every recipient/reason line are identical.
  const fixed = (s: string) => s.split('\n').filter((l) => !/^[0-9A-F]{6,}/.test(l) && !l.startsWith('-- '));
  assert.deepEqual(fixed(ours), fixed(real));
});

test('hold, release, requeue, delete, deliver, flush: postsuper semantics and messages', async () => {
  const e = await makeEnv();
  envs.push(e);
  const a = await e.submit('a@example.org', ['x@example.com']);
  const b = await e.submit('a@example.org', ['y@example.com']);
  let r = await run(e, 'hold', a);
  assert.equal(r.err, 'postern: Placed on hold: 1 message\n');
  assert.deepEqual(await listQueue(e.queue, 'hold'), [a]);
  assert.match((await run(e, 'list')).out, new RegExp(`^${a}!`, 'm'));
  r = await run(e, 'release', 'ALL');
  assert.equal(r.err, 'postern: Released from hold: 1 message\n');
  assert.deepEqual(await listQueue(e.queue, 'deferred'), [a]);
  assert.ok(statSync(e.queue.path('deferred', a)).mtimeMs <= Date.now() + 1000, 'eligible now');
  r = await run(e, 'deliver', a);
  assert.equal(r.code, 0);
  assert.ok((await listQueue(e.queue, 'incoming')).includes(a));
  await e.queue.move(b, 'incoming', 'deferred');
  r = await run(e, 'requeue', 'ALL', 'deferred');
  assert.equal(r.err, 'postern: Requeued: 1 message\n');
  assert.deepEqual((await listQueue(e.queue, 'incoming')).sort(), [a, b].sort());
  await e.queue.move(b, 'incoming', 'deferred');
  const past = new Date(Date.now() + 3600_000);
  const { utimesSync } = await import('node:fs');
  utimesSync(e.queue.path('deferred', b), past, past);
  await run(e, 'flush');
  assert.ok(statSync(e.queue.path('deferred', b)).mtimeMs <= Date.now(), 'flush made it due');
  assert.ok(existsSync(`${e.dir}/public/qmgr.trigger`), 'qmgr triggered');
  r = await run(e, 'delete', b);
  assert.equal(r.err, `postern: ${b}: removed\npostern: Deleted: 1 message\n`);
  r = await run(e, 'delete', 'ALL');
  assert.equal(r.err, 'postern: Deleted: 1 message\n');
  assert.equal((await run(e, 'list')).out, 'Mail queue is empty\n');
});

test('hostile arguments: ../ and junk queue IDs, unknown queue names, unknown operations', async () => {
  const e = await makeEnv();
  envs.push(e);
  let r = await run(e, 'delete', '../../../etc/passwd');
  assert.equal(r.err, 'postern: warning: invalid mail queue id: ../../../etc/passwd\npostern: Deleted: 0 messages\n');
  r = await run(e, 'show', 'ABC\0DEF');
  assert.equal(r.code, 1);
  assert.match(r.err, /invalid mail queue id/);
  await assert.rejects(run(e, 'delete', 'ALL', 'bogus'), /invalid queue name "bogus": use one of maildrop, hold, incoming, active, deferred/);
  await assert.rejects(run(e, 'hold', 'ALL', '../x'), /invalid queue name/);
  r = await run(e, 'frobnicate');
  assert.equal(r.code, 64);
  assert.match(r.err, /unknown operation "frobnicate"/);
  r = await run(e, 'deliver', 'ABCDEF999');
  assert.equal(r.code, 1);
  assert.match(r.err, /ABCDEF999: no such message in queue deferred/);
});

test('show: postcat -q style envelope, content and end marker', async () => {
  const e = await makeEnv();
  envs.push(e);
  const qid = await e.submit('a@example.org', [{ address: 'b@example.com', orig: 'B@Example.com' }], 'Subject: s\n\nbody line\n', { client_name: 'localhost' });
  const { out, code } = await run(e, 'show', qid);
  assert.equal(code, 0);
  const lines = out.split('\n');
  assert.equal(lines[0], `*** ENVELOPE RECORDS incoming/${qid} ***`);
  assert.match(lines[1]!, /^message_size: +\d+ +\d+ +1 +\d+ +\d+ +\d+$/);   // Postfix's six fields
  assert.match(lines[2]!, /^message_arrival_time: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
  assert.ok(lines.includes('sender: a@example.org'));
  assert.ok(lines.includes('named_attribute: client_name=localhost'));
  assert.ok(lines.includes('original_recipient: B@Example.com'));
  assert.ok(lines.includes('recipient: b@example.com'));
  assert.ok(lines.includes(`*** MESSAGE CONTENTS incoming/${qid} ***`));
  assert.ok(lines.includes('body line'));
  assert.equal(lines.at(-2), `*** MESSAGE FILE END incoming/${qid} ***`);
});

test('qshape: recipients by domain and age bucket', async () => {
  const e = await makeEnv();
  envs.push(e);
  await e.submit('a@example.org', ['1@big.example', '2@big.example', '3@small.example']);
  await e.submit('a@example.org', ['4@big.example']);
  const out = await qshape(e.queue, ['incoming']);
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^ +T +5 +10 +20 +40 +80 +160 +320 +640 +1280 +1280\+$/);
  assert.match(lines[1]!, /^ *TOTAL +4 +4( +0){9}$/);
  assert.match(lines[2]!, /^ *big\.example +3 +3( +0){9}$/);
  assert.match(lines[3]!, /^ *small\.example +1 +1( +0){9}$/);
  const later = await qshape(e.queue, ['incoming'], Date.now() + 30 * 60_000);
  assert.match(later.split('\n')[1]!, /^ *TOTAL +4 +0 +0 +0 +4( +0){6}$/, 'all 30 minutes old → the 40 bucket');
});
