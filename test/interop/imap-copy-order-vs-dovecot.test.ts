/**
 * COPY/MOVE destination UID order (RFC 4315 §3, RFC 6851 §4.3), each case a differential test
 * against real Dovecot 2.3 (test/harness/imap-differential.ts): the destination UIDs follow the
 * order of the source set, so the COPYUID response code and the order of the copies in the
 * destination (FETCH UID and Subject) are Dovecot's, for
 *   COPY 1:N, a scattered sequence set given out of order, MOVE, UID COPY, UID MOVE (with UIDs
 *   beyond the last), into a mailbox that already holds messages;
 *   flags and keywords travelling with each copy;
 *   MULTIAPPEND (RFC 3502): APPENDUID and the order of the appended messages.
 * UIDVALIDITY is normalised. Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';

const N = 30;
const msg = (i: number): string => `Subject: m${i}\r\nMessage-ID: <m${i}@x.test>\r\n\r\n${'body '.repeat(i + 1)}\r\n`;
const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
/** One MULTIAPPEND of messages m1..mN (RFC 3502). */
const multiappend = (box: string, from: number, to: number): string => {
  const parts: string[] = [];
  for (let i = from; i <= to; i++) parts.push(lit(msg(i)));
  return `APPEND ${box} ${parts.join(' ')}`;
};
const fill: Step[] = [multiappend('INBOX', 1, N), 'CREATE Dest', 'APPEND Dest {16+}\r\nSubject: old\r\n\r\n', 'SELECT INBOX'];
const listDest: Step[] = ['SELECT Dest', 'FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])'];

const CASES: Array<{ name: string; steps: Step[] }> = [
  { name: `COPY 1:${N}`, steps: [...fill, `COPY 1:${N} Dest`, ...listDest] },
  { name: 'COPY of a scattered set given out of order', steps: [...fill, 'COPY 29,3,17:12,5,1,25:27,30 Dest', ...listDest] },
  { name: `MOVE 1:${N}`, steps: [...fill, `MOVE 1:${N} Dest`, 'FETCH 1:* (UID)', ...listDest] },
  { name: 'MOVE of a scattered set', steps: [...fill, 'MOVE 20:22,2,9,4:6,28 Dest', 'FETCH 1:* (UID)', ...listDest] },
  { name: 'UID COPY of a scattered set with UIDs beyond the last', steps: [...fill, 'UID COPY 40,7,19:11,2,30:* Dest', ...listDest] },
  { name: 'UID MOVE of a scattered set', steps: [...fill, 'UID MOVE 13,1:3,26:24,8 Dest', 'UID FETCH 1:* (UID)', ...listDest] },
  {
    name: 'flags and keywords travel with each copy',
    steps: [...fill, 'STORE 3,7 +FLAGS (\\Flagged $Label1)', 'STORE 4 +FLAGS (\\Seen \\Answered)', 'STORE 9 +FLAGS ($Label2)', 'COPY 1:12 Dest', ...listDest],
  },
  { name: 'MULTIAPPEND keeps the order of the messages', steps: ['CREATE Dest', 'APPEND Dest {16+}\r\nSubject: old\r\n\r\n', multiappend('Dest', 1, N), ...listDest] },
];

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `order${i}@x.test`));
});

after(async () => {
  if (d) await d.stop();
});

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const a = await d.run(`order${i}@x.test`, c.steps);
    const diffs = differences(c.steps, a);
    assert.equal(diffs.length, 0, diffs.join('\n'));
    // the copies are in source order (what the comparison above checks, said plainly)
    const subjects = [...a.postern[a.postern.length - 1]!.matchAll(/Subject: (m\d+)/g)].map((m) => Number(m[1]!.slice(1)));
    if (!c.name.startsWith('MULTI')) assert.deepEqual(subjects, [...subjects].sort((x, y) => x - y));
    else assert.deepEqual(subjects, Array.from({ length: N }, (_, k) => k + 1));
  });
}
