/**
 * milter_protocol per milter ({ inet:..., { protocol = N } }): with protocol 2 and 3 the DATA
 * event does not exist and is not sent, 4 and 6 send it, "6 no_header_reply" does not wait for
 * a reply per header; the python3-milter (libmilter 8.17) test milter sees the same events from
 * real Postfix 3.7 and from Postern with the same main.cf.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, TestMilter, type Side } from '../harness/milter-kit.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();
const m: Partial<Record<Side, TestMilter>> = {};

before(async () => {
  if (skip) return;
  m.postfix = await TestMilter.start({});
  m.postern = await TestMilter.start({});
});
after(async () => {
  await m.postfix?.stop();
  await m.postern?.stop();
});

const MESSAGE = 'From: a@example.org\nTo: b@example.net\nSubject: versions\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <v@example.org>\n\nbody\n';

for (const [proto, data] of [['2', false], ['3', false], ['4', true], ['6 no_header_reply', true]] as const) {
  test(`milter_protocol ${proto}: the events of that version, as Postfix sends them`, { skip }, async () => {
    const pair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn', (side) => `smtpd_milters = { ${m[side]!.spec}, { protocol = ${proto} } }`);
    try {
      const seen = {} as Record<Side, string[]>;
      const replies = {} as Record<Side, string[]>;
      for (const side of ['postfix', 'postern'] as const) {
        m[side]!.clear();
        const r = await pair.dialogue(side, ['EHLO x', 'MAIL FROM:<a@example.org>', 'RCPT TO:<b@example.net>', 'DATA', '.'], MESSAGE);
        replies[side] = r.replies.slice(2).map((x) => x.replace(/queued as \S+/, 'queued as QID'));
        seen[side] = (await m[side]!.waitFor('close')).map((e) => e.ev);
      }
      assert.deepEqual(replies.postern, replies.postfix);
      assert.deepEqual(seen.postern, seen.postfix);
      assert.equal(seen.postern.includes('data'), data);
    } finally {
      await pair.stop();
    }
  });
}
