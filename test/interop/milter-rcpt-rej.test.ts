/**
 * SMFIP_RCPT_REJ: a milter that asks for rejected recipients too is shown the recipients smtpd's
 * own restrictions refused, with {rcpt_mailer} = error, {rcpt_host} = the enhanced status and
 * {rcpt_addr} = the reply text (Postfix smtpd_milter.c); a milter that did not ask is not.
 * Real Postfix 3.7 and Postern (its real restrictions) with the same main.cf and the
 * python3-milter test milter.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, TestMilter, type Side } from '../harness/milter-kit.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();
const m: Partial<Record<Side, TestMilter>> = {};
let pair: MilterPair | undefined;

before(async () => {
  if (skip) return;
  m.postfix = await TestMilter.start({});
  m.postern = await TestMilter.start({});
  pair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn\nsmtpd_recipient_restrictions = check_recipient_access inline:{ refused@example.net=REJECT }, permit_mynetworks, reject',
    (side) => `smtpd_milters = ${m[side]!.spec}`, true);
});
after(async () => {
  await pair?.stop();
  await m.postfix?.stop();
  await m.postern?.stop();
});

async function rcpts(plan: Record<string, unknown>): Promise<Record<Side, { replies: string[]; rcpt: unknown[] }>> {
  const out = {} as Record<Side, { replies: string[]; rcpt: unknown[] }>;
  for (const side of ['postfix', 'postern'] as const) {
    m[side]!.setPlan(plan);
    const r = await pair!.dialogue(side, ['EHLO client.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<refused@example.net>', 'RCPT TO:<ok@example.net>']);
    const ev = await m[side]!.waitFor('close');
    out[side] = {
      replies: r.replies.slice(2),
      rcpt: ev.filter((e) => e.ev === 'rcpt').map((e) => {
        const mac = e.macros as Record<string, string>;
        return [e.addr, mac['{rcpt_addr}'], mac['{rcpt_host}'], mac['{rcpt_mailer}']];
      }),
    };
  }
  return out;
}

test('a milter with SMFIP_RCPT_REJ sees the refused recipient with Postfix\'s macros', { skip }, async () => {
  const r = await rcpts({ rcpt_rej: true });
  assert.deepEqual(r.postern, r.postfix);
  assert.match(r.postern.replies[1]!, /^554 5\.7\.1 <refused@example\.net>: Recipient address rejected/);
  assert.equal(r.postern.rcpt.length, 2);
  assert.equal((r.postern.rcpt[0] as string[])[3], 'error');
});

test('a milter without it sees only the accepted recipient', { skip }, async () => {
  const r = await rcpts({});
  assert.deepEqual(r.postern, r.postfix);
  assert.deepEqual(r.postern.rcpt.map((x) => (x as string[])[0]), ['<ok@example.net>']);
});
