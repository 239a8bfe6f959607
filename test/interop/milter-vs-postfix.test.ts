/**
 * Milters (Sendmail milter protocol 6) against real Postfix 3.7: a test milter written with
 * Debian's python3-milter (libmilter) talks to real Postfix's smtpd and to Postern's, configured
 * from the same main.cf lines. Each scenario runs the same SMTP dialogue against both and
 * compares what a user sees: every reply code and text, the events and headers the milter was
 * shown, and the queued message after the milter's edits (envelope and headers, body).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, TestMilter, type MilterPlan, type Side, type MilterEvent } from '../harness/milter-kit.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();

const milters: Partial<Record<Side, TestMilter>> = {};
let pair: MilterPair | undefined;
let hbc: string | undefined;

before(async () => {
  if (skip) return;
  milters.postfix = await TestMilter.start({});
  milters.postern = await TestMilter.start({});
  hbc = mkdtempSync(join(tmpdir(), 'postern-mhc-'));
  chmodSync(hbc, 0o755);
  writeFileSync(join(hbc, 'milter_header_checks'), '/^X-Milter-Bad:/ REJECT bad header from milter\n');
  pair = await MilterPair.start(`smtpd_discard_ehlo_keywords = etrn\nmilter_default_action = tempfail\nmilter_header_checks = regexp:${hbc}/milter_header_checks`, (side) => `smtpd_milters = ${milters[side]!.spec}`);
});

after(async () => {
  await pair?.stop();
  await milters.postfix?.stop();
  await milters.postern?.stop();
  if (hbc) rmSync(hbc, { recursive: true, force: true });
});

const MESSAGE = 'From: Sender <sender@example.org>\nTo: rcpt@example.net\nSubject: milter test\nX-Folded: one\n\ttwo\nX-Eight: caf\u00e9 \u00fc\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <mt@example.org>\nX-Del: one\nX-Del: two\n\nbody line 1\nbody line 2\n';

const ENVELOPE = ['EHLO client.example.org', 'MAIL FROM:<sender@example.org>', 'RCPT TO:<rcpt@example.net>', 'RCPT TO:<other@example.net>', 'DATA', '.'];

/** What the milter saw, without values that differ by design (queue IDs, dates, versions). */
function seen(ev: MilterEvent[]): string[] {
  return ev.filter((e) => e.ev !== 'close' && e.ev !== 'abort').map((e) => {
    if (e.ev === 'header') return `header ${String(e.name)}: ${String(e.value).replace(/\d\d:\d\d:\d\d [+-]\d{4}|[0-9A-F]{8,12}/g, 'X')}`;
    if (e.ev === 'body') return `body ${JSON.stringify(e.text)}`;
    if (e.ev === 'mail' || e.ev === 'rcpt') return `${e.ev} ${String(e.addr)} ${JSON.stringify(e.args)} ${JSON.stringify(pick(e.macros, ['{mail_addr}', '{mail_host}', '{mail_mailer}', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}']))}`;
    // Postern names 127.0.0.1 "localhost" without a DNS lookup; Postfix here has smtpd_peername_lookup = no.
    if (e.ev === 'connect') return `connect ${String(e.hostname).replace(/^(localhost|\[127\.0\.0\.1\])$/, 'CLIENT')} ${String(e.addr)} ${JSON.stringify(pick(e.macros, ['j', '{daemon_name}', '{client_addr}', '_'])).replace(/(localhost|unknown) \[/, 'CLIENT [')}`;
    if (e.ev === 'helo') return `helo ${String(e.name)}`;
    return e.ev;
  });
}

function pick(m: unknown, keys: string[]): Record<string, unknown> {
  const o = (m ?? {}) as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
}

/** Replies with queue IDs masked. */
function masked(r: string[]): string[] {
  return r.map((x) => x.replace(/queued as [0-9A-Za-z]+/, 'queued as QID').replace(/ESMTP Postfix.*/, 'ESMTP'));
}

/** The message as queued, minus the MTAs' own Received: header. */
function queuedView(content: string): string {
  return content.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/m, 'Received: (the MTA\'s own)\n');
}

async function both(plan: MilterPlan, commands = ENVELOPE, message = MESSAGE): Promise<Record<Side, { replies: string[]; seen: string[]; queueId?: string; queued?: { sender: string; recipients: string[]; content: string; queue: string } }>> {
  const out = {} as Record<Side, { replies: string[]; seen: string[]; queueId?: string; queued?: { sender: string; recipients: string[]; content: string; queue: string } }>;
  for (const side of ['postfix', 'postern'] as const) {
    const m = milters[side]!;
    m.setPlan(plan);
    const r = await pair!.dialogue(side, commands, message);
    const ev = await m.waitFor('close');
    // A discarded message has a queue ID in the reply and no queue file.
    const q = r.queueId ? await pair!.queued(side, r.queueId).catch(() => undefined) : undefined;
    out[side] = { replies: masked(r.replies), seen: seen(ev), queued: q && { ...q, content: queuedView(q.content) }, queueId: r.queueId };
  }
  return out;
}

function same(r: Awaited<ReturnType<typeof both>>, what: string, opts: { queue?: boolean } = {}): void {
  if (process.env.MILTER_DEBUG) console.log(what, JSON.stringify(r, null, 1), logs.filter((l) => /warning|milter/.test(l)).join('\n'));
  assert.deepEqual(r.postern.replies, r.postfix.replies, `${what}: replies (Postern vs Postfix)`);
  assert.deepEqual(r.postern.seen, r.postfix.seen, `${what}: what the milter saw (Postern vs Postfix)`);
  if (r.postfix.queued) {
    const { queue: _q1, ...theirs } = r.postfix.queued;
    const { queue: _q2, ...mine } = r.postern.queued!;
    assert.deepEqual(mine, theirs, `${what}: queued message (Postern vs Postfix)`);
    if (opts.queue) assert.equal(r.postern.queued!.queue, 'hold');
  }
}

test('continue at every stage: the events, macros, headers and body the milter sees', { skip }, async () => {
  const r = await both({});
  same(r, 'continue');
  assert.ok(r.postern.seen.includes('eom'));
  assert.match(r.postern.replies[6]!, /^250 2\.0\.0 Ok: queued as QID/);
});

test('every header edit: add, insert at 0 and 1, change, change a missing header, delete', { skip }, async () => {
  const r = await both({
    edits: [['addheader', 'X-Added', 'added value'], ['insheader', 0, 'X-Top', 'top'], ['insheader', 1, 'X-Second', 'second'],
      ['chgheader', 'Subject', 1, 'changed subject'], ['chgheader', 'X-Missing', 1, 'was missing'], ['delheader', 'X-Del', 2],
      ['addheader', 'X-Multi', 'line one\n\tline two']],
  });
  same(r, 'header edits');
  assert.match(r.postern.queued!.content, /X-Added: added value/);
});

test('header edits with SMFIP_HDR_LEADSPC: the milter sees and writes the leading space', { skip }, async () => {
  const r = await both({ leadspace: true, edits: [['addheader', 'X-Lead', '  two spaces'], ['chgheader', 'Subject', 1, ' spaced']] });
  same(r, 'leading space');
});

test('body replacement, envelope edits: change sender, add recipient with ESMTP args, delete recipient', { skip }, async () => {
  const r = await both({
    edits: [['replacebody', 'new body\r\nsecond line\r\n'], ['chgfrom', '<new-sender@example.org>', 'RET=HDRS ENVID=env+2Did'],
      ['addrcpt', '<added@example.net>', 'NOTIFY=NEVER'], ['addrcpt', '<plain@example.net>'], ['delrcpt', '<other@example.net>']],
  });
  same(r, 'body and envelope');
  assert.deepEqual(r.postern.queued!.recipients.sort(), ['added@example.net', 'plain@example.net', 'rcpt@example.net']);
  assert.equal(r.postern.queued!.sender, 'new-sender@example.org');
  const attrs = await pair!.posternAttrs(r.postern.queueId!);
  assert.equal(attrs.get('dsn_ret'), 'HDRS');
  assert.equal(attrs.get('dsn_envid'), 'env-id');
});

test('quarantine: the message goes to the hold queue', { skip }, async () => {
  const r = await both({ edits: [['quarantine', 'looks odd'], ['progress']] });
  same(r, 'quarantine', { queue: true });
  assert.ok(logs.some((l) => /milter-hold: END-OF-MESSAGE from .*: looks odd;/.test(l)), 'hold logged');
});

for (const [stage, what] of [['connect', 'reject'], ['connect', 'tempfail'], ['helo', 'reject'], ['mail', 'reject'], ['mail', 'tempfail'],
  ['data', 'reject'], ['eoh', 'reject'], ['body', 'tempfail'], ['eom', 'reject'], ['eom', 'tempfail'], ['eom', 'discard'],
  ['header', 'discard'], ['mail', 'accept'], ['eom', 'accept'], ['connect', 'accept'],
  ['mail', 'reply:550 5.7.0 custom sender refusal'], ['eom', 'reply:451 4.7.5 come back later'],
  ['eom', 'reply:554 5.7.1 line one\nline two'], ['connect', 'reply:421 4.7.0 go away']] as const) {
  test(`${what} at ${stage}: the same replies as Postfix`, { skip }, async () => {
    const r = await both({ [stage]: what });
    same(r, `${what} at ${stage}`);
  });
}

test('recipient decisions: one refused with a custom reply, one accepted', { skip }, async () => {
  const r = await both({ rcpt: { 'other@example.net': 'reply:550 5.1.1 no such user here', '*': 'continue' } });
  same(r, 'rcpt reply');
  assert.match(r.postern.replies[4]!, /^550 5\.1\.1 no such user here/);
});

test('a header added by the milter is checked by milter_header_checks', { skip }, async () => {
  const r = await both({ edits: [['addheader', 'X-Milter-Bad', 'yes']] });
  same(r, 'milter_header_checks');
  assert.match(r.postern.replies[6]!, /^550 5\.7\.1 bad header from milter/);
});

test('SMFIR_SKIP after the first body chunk: no more body chunks, as Postfix', { skip }, async () => {
  const big = MESSAGE + 'x'.repeat(100).concat('\n').repeat(1500);
  const r = await both({ body: 'skip' }, ENVELOPE, big);
  same(r, 'body skip');
  assert.equal(r.postern.seen.filter((e) => e.startsWith('body ')).length, 1);
});

test('SMFIP_NR_HDR (no reply per header): headers are sent without waiting, as Postfix', { skip }, async () => {
  const r = await both({ noreply: true, eom: 'reply:550 5.7.1 seen all headers' });
  same(r, 'no header reply');
  assert.match(r.postern.replies[6]!, /^550 5\.7\.1 seen all headers/);
  assert.equal(r.postern.seen.filter((e) => e.startsWith('header ')).length, 9);
});

test('a milter that refused the connection refuses VRFY too (milter_other_event), as Postfix', { skip }, async () => {
  const r = await both({ connect: 'tempfail' }, ['EHLO client.example.org', 'VRFY rcpt@example.net', 'MAIL FROM:<sender@example.org>']);
  same(r, 'vrfy after connect tempfail');
  assert.match(r.postern.replies[2]!, /^451 4\.7\.1 /);
});

test('a milter that asks for its own MAIL macros (SMFIR_SETSYMLIST) gets exactly those, as from Postfix', { skip }, async () => {
  const macrosAtMail = async (side: Side) => {
    const m = milters[side]!;
    m.setPlan({ symlist_mail: ['{client_addr}', 'j'] });
    await pair!.dialogue(side, ENVELOPE, MESSAGE);
    const ev = await m.waitFor('close');
    return ev.find((e) => e.ev === 'mail')!.macros as Record<string, string>;
  };
  const keys = ['{client_addr}', 'j', '{mail_addr}', 'i', '{auth_type}'];
  const theirs = pick(await macrosAtMail('postfix'), keys);
  const mine = pick(await macrosAtMail('postern'), keys);
  assert.deepEqual(mine, theirs);
  // {client_addr} is in no default list: it came from the milter's own list; {mail_addr} (default) did not.
  assert.deepEqual(mine, { '{client_addr}': '127.0.0.1', j: 'mx.example.test' });
});

test('an unknown command: the milter sees it, and its 4xx replaces the 5xx, as Postfix', { skip }, async () => {
  const r = await both({ unknown: 'reply:421 4.7.0 unknown commands not welcome here' }, ['EHLO client.example.org', 'MAIL FROM:<sender@example.org>', 'XYZZY plugh']);
  assert.deepEqual(r.postern.replies.slice(0, 4), r.postfix.replies.slice(0, 4));
  assert.match(r.postern.replies[3]!, /^421 4\.7\.0 unknown commands not welcome here/);
});

test('decisions are logged as Postfix logs them (milter-reject at MAIL and at END-OF-MESSAGE, milter-discard)', { skip }, async () => {
  const norm = (l: string) => l.replace(/^.*?: (NOQUEUE|[0-9A-F]{8,}): /, 'QID: ').replace(/(localhost|unknown)\[127\.0\.0\.1\]/, 'CLIENT');
  for (const [plan, re] of [[{ mail: 'reply:550 5.7.0 not you' }, /milter-reject: MAIL from/], [{ eom: 'reject' }, /milter-reject: END-OF-MESSAGE from/],
    [{ eom: 'discard' }, /milter-discard: END-OF-MESSAGE from/]] as const) {
    const pfBefore = pair!.log().length;
    logs.length = 0;
    await both(plan);
    const theirs = pair!.log().slice(pfBefore).split('\n').filter((l) => re.test(l)).map(norm);
    const mine = logs.filter((l) => re.test(l)).map(norm);
    assert.equal(mine.length, 1, logs.join('\n'));
    assert.deepEqual(mine, theirs);
  }
});
