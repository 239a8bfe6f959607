/**
 * Two milters in smtpd_milters, in order, against real Postfix 3.7 and Postern with the same
 * main.cf: the second milter sees the message as the first left it (an added header, a changed
 * Subject, a replaced body), and a decision of the first ends the round for the second.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, TestMilter, type MilterEvent, type MilterPlan, type Side } from '../harness/milter-kit.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();
const first: Partial<Record<Side, TestMilter>> = {};
const second: Partial<Record<Side, TestMilter>> = {};
let pair: MilterPair | undefined;

before(async () => {
  if (skip) return;
  for (const side of ['postfix', 'postern'] as const) {
    first[side] = await TestMilter.start({});
    second[side] = await TestMilter.start({});
  }
  pair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn', (side) => `smtpd_milters = ${first[side]!.spec}, ${second[side]!.spec}`);
});

after(async () => {
  await pair?.stop();
  for (const m of [...Object.values(first), ...Object.values(second)]) await m?.stop();
});

const MESSAGE = 'From: a@example.org\nTo: b@example.net\nSubject: original\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <chain@example.org>\n\noriginal body\n';
const DIALOGUE = ['EHLO client.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>', 'DATA', '.'];

function seen(ev: MilterEvent[]): string[] {
  return ev.filter((e) => ['mail', 'header', 'body', 'eom'].includes(e.ev)).map((e) =>
    e.ev === 'header' ? `header ${String(e.name)}: ${String(e.value)}` : e.ev === 'body' ? `body ${JSON.stringify(e.text)}` : e.ev);
}

async function both(p1: MilterPlan, p2: MilterPlan) {
  const out = {} as Record<Side, { replies: string[]; second: string[]; content?: string }>;
  for (const side of ['postfix', 'postern'] as const) {
    first[side]!.setPlan(p1);
    second[side]!.setPlan(p2);
    const r = await pair!.dialogue(side, DIALOGUE, MESSAGE);
    await first[side]!.waitFor('close');
    const ev = await second[side]!.waitFor('close');
    const q = r.queueId ? await pair!.queued(side, r.queueId).catch(() => undefined) : undefined;
    out[side] = {
      replies: r.replies.map((x) => x.replace(/queued as \S+/, 'queued as QID')),
      second: seen(ev),
      content: q?.content.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/m, ''),
    };
  }
  return out;
}

test('the second milter sees the first one\'s edits', { skip }, async () => {
  const r = await both({ edits: [['addheader', 'X-First', 'was here'], ['chgheader', 'Subject', 1, 'changed by first'], ['replacebody', 'first body\r\n']] },
    { edits: [['addheader', 'X-Second', 'too']] });
  assert.deepEqual(r.postern, r.postfix);
  assert.ok(r.postern.second.includes('header X-First: was here'), JSON.stringify(r.postern.second));
  assert.ok(r.postern.second.includes('body "first body\\r\\n"'));
  assert.match(r.postern.content ?? '', /X-First: was here\nX-Second: too\n\nfirst body\n$/);
});

test('a rejection by the first milter: the second sees no more of the transaction', { skip }, async () => {
  const r = await both({ mail: 'reject' }, {});
  assert.deepEqual(r.postern, r.postfix);
  assert.deepEqual(r.postern.second, []);
});
