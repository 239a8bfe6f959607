/**
 * bounce tests: DSNs composed from real queue files (written by CleanupSession) and checked
 * field by field after parsing the multipart/report (RFC 3464), plus who gets a notice
 * (sender, postmaster, nobody) and the log format's hostile input.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { setLogSink } from '../util/msg.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { DSN_NOTIFY, QF } from '../global/rec-type.ts';
import { makeEnv, listQueue, type Env } from '../../test/harness/qmgr-testkit.ts';
import { BounceService } from './bounce.ts';
import { wantsNotice } from '../global/bounce-client.ts';
import { cleanup } from '../master/master-clients.ts';
import { appendBounceLogs, parseBounceLog, readBounceLog, type BounceLogEntry } from '../global/bounce-log.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const envs: Env[] = [];
after(async () => { for (const e of envs) await e.close(); });

interface Part { headers: Map<string, string>; body: string }
/** Minimal RFC 2045/2046 parse: top header, then the parts of the multipart body. */
function parseReport(msg: string): { headers: Map<string, string>; parts: Part[] } {
  const split = (s: string): Part => {
    const i = s.indexOf('\n\n');
    const head = i < 0 ? s : s.slice(0, i);
    const headers = new Map<string, string>();
    for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
      const c = line.indexOf(':');
      if (c > 0) headers.set(line.slice(0, c).toLowerCase(), line.slice(c + 1).trim());
    }
    return { headers, body: i < 0 ? '' : s.slice(i + 2) };
  };
  const top = split(msg);
  const b = /boundary="([^"]+)"/.exec(top.headers.get('content-type') ?? '')![1]!;
  const chunks = top.body.split(`--${b}`);
  assert.equal(chunks.at(-1)!.trim(), '--', 'closing boundary');
  return { headers: top.headers, parts: chunks.slice(1, -1).map((c) => split(c.replace(/^\n/, ''))) };
}
/** RFC 3464 §2.1: groups of fields separated by blank lines (folded lines unfolded). */
function dsnGroups(body: string): Map<string, string>[] {
  return body.trim().split(/\n\n+/).map((g) => new Map(g.replace(/\n[ \t]+/g, ' ').split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string])));
}

async function setup(mainCf = ''): Promise<{ e: Env; bounce: BounceService }> {
  const e = await makeEnv(mainCf);
  envs.push(e);
  return { e, bounce: BounceService.fromConfig(e.config, e.queue, cleanup) };
}
async function openQf(e: Env, qid: string): Promise<QueueFile> { return QueueFile.open(e.queue.path('incoming', qid), qid); }
async function newMessages(e: Env, except: string[]): Promise<QueueFile[]> {
  const out: QueueFile[] = [];
  for (const id of await listQueue(e.queue, 'incoming')) if (!except.includes(id)) out.push(await openQf(e, id));
  return out;
}

const failed: BounceLogEntry = {
  recipient: 'bob@example.com', original: 'bobby@example.com', status: '5.1.1', action: 'failed',
  diagType: 'smtp', diagText: '550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown',
  mtaType: 'dns', mtaName: 'mx.example.com',
  reason: 'host mx.example.com[192.0.2.10] said: 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown (in reply to RCPT TO command)',
};

test('non-delivery DSN: RFC 3464 multipart/report, Postfix wording, every field', async () => {
  const { e, bounce } = await setup('smtputf8_enable = yes');
  const body = 'From: alice@example.org\nTo: bob@example.com\nSubject: lunch\nMessage-Id: <m1@example.org>\n\nsee you at noon\n';
  const qid = await e.submit('alice@example.org', ['bob@example.com'], body, { dsn_envid: 'ENV-42' });
  const qf = await openQf(e, qid);
  assert.equal(await bounce.notify(qf, 'failure', [failed]), true);
  const [dsn] = await newMessages(e, [qid]);
  assert.ok(dsn, 'a DSN was queued');
  assert.equal(dsn.sender, '', 'sent with the null sender');
  assert.deepEqual(dsn.recipients.map((r) => r.address), ['alice@example.org']);
  const r = parseReport((await dsn.content()).toString());
  // Postfix 3.7 writes "Mail Delivery System <MAILER-DAEMON@$myorigin>" (not the older
  // "MAILER-DAEMON@$myhostname (Mail Delivery System)"; test/interop/bounce-vs-postfix.test.ts).
  assert.equal(r.headers.get('from'), 'Mail Delivery System <MAILER-DAEMON@example.test>');
  assert.equal(r.headers.get('subject'), 'Undelivered Mail Returned to Sender');
  assert.equal(r.headers.get('to'), 'alice@example.org');
  assert.equal(r.headers.get('auto-submitted'), 'auto-replied');
  assert.equal(r.headers.get('mime-version'), '1.0');
  assert.match(r.headers.get('content-type')!, new RegExp(`^multipart/report; report-type=delivery-status; boundary="${qid}\\.\\d+/mx\\.example\\.test"$`));
  assert.ok(r.headers.get('message-id'), 'cleanup added Message-Id');
  assert.ok(r.headers.get('date'), 'bounce wrote Date: (first, as Postfix post_mail.c)');
  assert.match((await dsn.content()).toString(), /^(?:Received: [^\n]*\n\t[^\n]*\n)?Date: [^\n]+\nFrom: /);
  // smtputf8_enable = yes (Postfix 3.7's default at compatibility_level 3.6): the whole notice is 8bit.
  assert.equal(r.headers.get('content-transfer-encoding'), '8bit');
  assert.equal(r.parts.length, 3);
  const [text, status, orig] = r.parts as [Part, Part, Part];
  assert.equal(text.headers.get('content-description'), 'Notification');
  // With smtputf8_enable = yes Postfix 3.7 labels the text utf-8, 8bit (was us-ascii).
  assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal(text.headers.get('content-transfer-encoding'), '8bit');
  assert.ok(text.body.startsWith('This is the mail system at host mx.example.test.\n\nI\'m sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It\'s attached below.\n\nFor further assistance, please send mail to postmaster.\n'));
  const sig = '                   The mail system\n\n';
  const para = text.body.slice(text.body.indexOf(sig) + sig.length).trimEnd().split('\n');
  assert.ok(para[0]!.startsWith('<bob@example.com> (expanded from <bobby@example.com>): host'), para[0]);
  // Postfix line_wrap(): lines of at most 79 columns, continuation lines indented by 4.
  assert.ok(para.length > 1 && para.every((l, i) => l.length <= 79 && (i === 0 || l.startsWith('    '))), para.join('|'));
  assert.equal(para.map((l) => l.trim()).join(' '), `<bob@example.com> (expanded from <bobby@example.com>): ${failed.reason}`);
  assert.equal(status.headers.get('content-description'), 'Delivery report');
  assert.equal(status.headers.get('content-type'), 'message/delivery-status');
  const [msgFields, rcpt] = dsnGroups(status.body) as [Map<string, string>, Map<string, string>];
  assert.equal(msgFields.get('Reporting-MTA'), 'dns; mx.example.test');
  assert.equal(msgFields.get('X-Postfix-Queue-ID'), qid);
  assert.equal(msgFields.get('X-Postfix-Sender'), 'rfc822; alice@example.org');
  assert.equal(msgFields.get('Original-Envelope-Id'), 'ENV-42');
  assert.match(msgFields.get('Arrival-Date')!, /^\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}/);
  assert.deepEqual([...rcpt.keys()], ['Final-Recipient', 'Original-Recipient', 'Action', 'Status', 'Remote-MTA', 'Diagnostic-Code']);
  assert.equal(rcpt.get('Final-Recipient'), 'rfc822; bob@example.com');
  assert.equal(rcpt.get('Original-Recipient'), 'rfc822;bobby@example.com');
  assert.equal(rcpt.get('Action'), 'failed');
  assert.equal(rcpt.get('Status'), '5.1.1');
  assert.equal(rcpt.get('Remote-MTA'), 'dns; mx.example.com');
  assert.equal(rcpt.get('Diagnostic-Code'), 'smtp; 550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown');
  assert.equal(orig.headers.get('content-description'), 'Undelivered Message');
  assert.equal(orig.headers.get('content-type'), 'message/rfc822');
  // Postfix bounce_original() puts the envelope sender back as Return-Path: first.
  assert.equal(orig.body, 'Return-Path: <alice@example.org>\n' + (await qf.content()).toString() + '\n', 'RET default: the full original');
  assert.ok(orig.body.includes('see you at noon'));
  assert.ok(logs.some((l) => l.includes(`${qid}: sender non-delivery notification: ${dsn.queueId}`)));
});

test('RET=HDRS returns headers only; bounce_size_limit cuts the original on a line boundary', async () => {
  const { e, bounce } = await setup('bounce_size_limit = 400');
  const body = 'Subject: big\n\n' + 'x'.repeat(100) + '\n' + 'y'.repeat(100) + '\n' + 'z'.repeat(100) + '\n' + 'w'.repeat(100) + '\n';
  const q1 = await e.submit('a@example.org', ['b@example.com'], body, { dsn_ret: 'HDRS' });
  const q2 = await e.submit('a@example.org', ['b@example.com'], body);
  await bounce.notify(await openQf(e, q1), 'failure', [failed]);
  const [d1] = await newMessages(e, [q1, q2]);
  const p1 = parseReport((await d1!.content()).toString()).parts[2]!;
  assert.equal(p1.headers.get('content-description'), 'Undelivered Message Headers');
  assert.equal(p1.headers.get('content-type'), 'text/rfc822-headers');
  assert.ok(!p1.body.includes('xxxx'));
  assert.match(p1.body, /^Return-Path: <a@example\.org>\nSubject: big\n/);
  await bounce.notify(await openQf(e, q2), 'failure', [failed]);
  const [d2] = await newMessages(e, [q1, q2, d1!.queueId]);
  const p2 = parseReport((await d2!.content()).toString()).parts[2]!;
  assert.equal(p2.headers.get('content-type'), 'message/rfc822');
  assert.ok(p2.body.length <= 401 + 'Return-Path: <a@example.org>\n'.length, `cut at 400: ${p2.body.length}`);
  assert.match(p2.body, /\n\nx{100}\ny{100}\n\n$/);
});

test('null sender: no DSN back to <>; with 2bounce in notify_classes a copy goes to postmaster', async () => {
  const { e, bounce } = await setup();
  const q = await e.submit('', ['b@example.com']);
  assert.equal(await bounce.notify(await openQf(e, q), 'failure', [failed]), true);
  assert.deepEqual(await newMessages(e, [q]), [], 'discarded: default notify_classes lacks 2bounce');

  const { e: f, bounce: b2 } = await setup('notify_classes = 2bounce');
  const q2 = await f.submit('', ['b@example.com']);
  await b2.notify(await openQf(f, q2), 'failure', [failed]);
  const [pm] = await newMessages(f, [q2]);
  assert.ok(pm);
  // Postfix mail_addr_double_bounce(): double_bounce_sender@$myhostname (was @$myorigin).
  assert.equal(pm.sender, 'double-bounce@mx.example.test');
  assert.deepEqual(pm.recipients.map((r) => r.address), ['postmaster@example.test']);
  const r = parseReport((await pm.content()).toString());
  assert.equal(r.headers.get('subject'), 'Postmaster Copy: Undelivered Mail');
  // Postfix 3.7's 2bounce copy returns the whole message and names the null sender
  // MAILER-DAEMON@$myhostname (test/interop/bounce-vs-postfix.test.ts); was headers, MAILER-DAEMON.
  assert.equal(r.parts[2]!.headers.get('content-type'), 'message/rfc822');
  assert.match(r.parts[2]!.body, /^Return-Path: <MAILER-DAEMON@mx\.example\.test>\n/);
  assert.equal(dsnGroups(r.parts[1]!.body)[0]!.get('X-Postfix-Sender'), 'rfc822; MAILER-DAEMON@mx.example.test');

  // A postmaster notice that bounces is never bounced again (no loop).
  // A notice queued by an older version (from double-bounce@$myorigin) is still recognised.
  const q3 = await f.submit('double-bounce@example.test', ['postmaster@example.test']);
  const before = (await listQueue(f.queue, 'incoming')).length;
  assert.equal(await b2.notify(await openQf(f, q3), 'failure', [failed]), true);
  assert.equal((await listQueue(f.queue, 'incoming')).length, before);
  assert.ok(logs.some((l) => l.includes(`warning: ${q3}: undeliverable postmaster notification discarded`)));
});

test('notify_classes = bounce sends the postmaster a headers-only copy besides the sender DSN', async () => {
  const { e, bounce } = await setup('notify_classes = bounce\nbounce_notice_recipient = hostmaster');
  const q = await e.submit('a@example.org', ['b@example.com']);
  await bounce.notify(await openQf(e, q), 'failure', [failed]);
  const got = await newMessages(e, [q]);
  assert.deepEqual(got.map((m) => `${m.sender}>${m.recipients[0]!.address}`).sort(), ['>a@example.org', 'double-bounce@mx.example.test>hostmaster@example.test']);
  const copy = parseReport((await got.find((m) => m.sender !== '')!.content()).toString());
  assert.equal(copy.headers.get('subject'), 'Postmaster Copy: Undelivered Mail');
  assert.equal(copy.parts[2]!.headers.get('content-type'), 'text/rfc822-headers', 'headers only');
  // Postfix 3.7: no Postmaster-Subject: header, Auto-Submitted: auto-generated, no template text.
  assert.equal(copy.headers.get('postmaster-subject'), undefined);
  assert.equal(copy.headers.get('auto-submitted'), 'auto-generated');
  assert.equal(copy.headers.get('to'), 'hostmaster@example.test');
  assert.match(copy.parts[0]!.body, /^\n<bob@example\.com>/);
  const pmRcpt = got.find((m) => m.sender !== '')!.recipients[0]!;
  assert.equal(pmRcpt.orig, 'hostmaster', 'the original recipient as configured');
});

test('long Diagnostic-Code folds at 79 columns as Postfix bounce_print_wrap(); smtputf8_enable = no keeps us-ascii', async () => {
  const { e, bounce } = await setup('smtputf8_enable = no');
  const q = await e.submit('a@example.org', ['b@example.com']);
  const long = { ...failed, diagText: `550 5.1.1 ${'refused '.repeat(30)}end` };
  await bounce.notify(await openQf(e, q), 'failure', [long]);
  const [d] = await newMessages(e, [q]);
  const raw = (await d!.content()).toString();
  const dc = /\nDiagnostic-Code: [^\n]*(?:\n    [^\n]*)*/.exec(raw)![0].slice(1).split('\n');
  assert.ok(dc.length > 1 && dc.every((l) => l.length <= 79), dc.join('|'));
  assert.equal(dc.map((l) => l.trim()).join(' '), `Diagnostic-Code: smtp; ${long.diagText}`);
  const r = parseReport(raw);
  assert.equal(r.parts[0]!.headers.get('content-type'), 'text/plain; charset=us-ascii');
  assert.equal(r.headers.get('content-transfer-encoding'), '7bit');
});

test('hostile originals (NUL, over-long line, broken MIME, 8-bit junk) still yield a complete notice', async () => {
  const { e, bounce } = await setup();
  const body = 'Subject: \xff\xfe bad\nContent-Type: multipart/mixed; boundary=\nMIME-Version: 1.0\n\n--\nContent-Type: text/plain\n\nnul:\0:here\n' + 'L'.repeat(20000) + '\n--never-closed\n';
  const q = await e.submit('a@example.org', ['b@example.com'], body);
  const qf = await openQf(e, q);
  assert.equal(await bounce.notify(qf, 'failure', [failed]), true);
  const [d] = await newMessages(e, [q]);
  const r = parseReport((await d!.content()).toString('latin1'));
  assert.equal(r.parts.length, 3);
  assert.equal(r.parts[2]!.headers.get('content-type'), 'message/rfc822');
  assert.ok(r.parts[2]!.body.includes('nul:\0:here'), 'the original as queued');
  assert.ok(r.parts[2]!.body.includes('L'.repeat(20000)));
});

test('a message that came with SMTPUTF8 gets the RFC 6533 types (Postfix bounce_notify_util.c)', async () => {
  const { e, bounce } = await setup('smtputf8_enable = yes');
  const q1 = await e.submit('a@example.org', ['b@example.com'], 'Subject: Grüße\n\nbody\n');
  const q2 = await e.submit('a@example.org', ['b@example.com'], 'Subject: Grüße\n\nbody\n', { dsn_ret: 'HDRS' });
  for (const q of [q1, q2]) {
    const qf = await openQf(e, q);
    qf.flags |= QF.SMTPUTF8;   // as smtpd records MAIL FROM ... SMTPUTF8
    await bounce.notify(qf, 'failure', [failed]);
  }
  const [d1] = await newMessages(e, [q1, q2]);
  const r1 = parseReport((await d1!.content()).toString());
  assert.equal(r1.parts[1]!.headers.get('content-type'), 'message/global-delivery-status');
  assert.equal(r1.parts[1]!.headers.get('content-transfer-encoding'), '8bit');
  assert.equal(r1.parts[2]!.headers.get('content-type'), 'message/global');
  const [d2] = await newMessages(e, [q1, q2, d1!.queueId]);
  assert.equal(parseReport((await d2!.content()).toString()).parts[2]!.headers.get('content-type'), 'message/global-headers');
});

test('NOTIFY filters (RFC 3461 §4.1)', () => {
  const { NEVER, SUCCESS, FAILURE, DELAY } = DSN_NOTIFY;
  assert.equal(wantsNotice(0, 'failure'), true);
  assert.equal(wantsNotice(0, 'delay'), true);
  assert.equal(wantsNotice(0, 'success'), false);
  assert.equal(wantsNotice(NEVER, 'failure'), false);
  assert.equal(wantsNotice(SUCCESS, 'failure'), false);
  assert.equal(wantsNotice(SUCCESS | DELAY, 'delay'), true);
  assert.equal(wantsNotice(FAILURE, 'delay'), false);
  assert.equal(wantsNotice(SUCCESS, 'success'), true);
});

test('bounce logs: round trip; newlines and NUL in values cannot forge records; junk is skipped', async () => {
  const { e } = await setup();
  const evil: BounceLogEntry = { recipient: 'x@example.com', status: '5.0.0', action: 'failed', reason: 'line1\nrecipient=forged@example.com\n\nrecipient=again\0' };
  await appendBounceLogs(e.queue, 'bounce', 'ABCDEF123', [evil, failed]);
  const back = await readBounceLog(e.queue, 'bounce', 'ABCDEF123');
  assert.deepEqual(back.map((b) => b.recipient), ['x@example.com', 'bob@example.com']);
  assert.equal(back[1]!.diagText, failed.diagText);
  assert.deepEqual(await readBounceLog(e.queue, 'bounce', 'FFFFFF999'), [], 'missing log = no records');
  assert.deepEqual(parseBounceLog('garbage\n\x00\n=\nstatus=5.0.0\n\n' + 'x'.repeat(100000)), []);
  await assert.rejects(readBounceLog(e.queue, 'bounce', '../../../etc/passwd'), /not a queue ID/);
  await assert.rejects(appendBounceLogs(e.queue, 'defer', 'ABC/../../x', [failed]), /not a queue ID/);
  writeFileSync(e.queue.path('bounce', 'ABCDEF125'), Buffer.from([0, 0xff, 10, 10, 0x72]));
  assert.deepEqual(await readBounceLog(e.queue, 'bounce', 'ABCDEF125'), [], 'binary junk');
});
