/**
 * RFC 7162 CONDSTORE HIGHESTMODSEQ as a differential test against real Dovecot 2.3
 * (test/harness/imap-differential.ts): SELECT (CONDSTORE), STORE (UNCHANGEDSINCE), then STATUS
 * (HIGHESTMODSEQ) of the selected mailbox in the same session, from a second session before and
 * after its NOOP, and through LIST-STATUS (RFC 5819). Answers are compared with mod-sequence
 * numbers normalised (the two servers count from different bases), and their ORDER is checked on
 * the raw answers of each server: RFC 7162 §3.1.1/§3.1.2.1 HIGHESTMODSEQ is the highest
 * mod-sequence of the mailbox, so a STATUS after a STORE is never below the MODSEQ it answered.
 * Hostile input: malformed and out-of-range UNCHANGEDSINCE values.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, normalise, runSteps, type Step } from '../harness/imap-differential.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const append = (m: string): string => `APPEND INBOX ${lit(m)}`;
const msg = (n: string): string => append(`Subject: ${n}\r\n\r\nbody ${n}\r\n`);

interface Case {
  name: string;
  steps: Step[];
  /** Steps whose answers knowingly differ, with the reason. */
  known?: Record<number, string>;
  /** Order checks on one server's raw answers (its own modseq numbers). */
  order(raw: string[], server: string): void;
}

/** The number of `re`'s first group in `answer` (BigInt: modseqs are 63-bit). */
function num(answer: string, re: RegExp, what: string): bigint {
  const m = re.exec(answer);
  assert.ok(m, `${what}: not found in\n${answer}`);
  return BigInt(m[1]!);
}
const statusOf = (a: string, what: string): bigint => num(a, /^\* STATUS \S+ \([^)]*HIGHESTMODSEQ (\d+)/m, what);
const storeOf = (a: string, what: string): bigint => num(a, /^\* \d+ FETCH \(.*MODSEQ \((\d+)\)/m, what);
const okOf = (a: string, what: string): bigint => num(a, /^\* OK \[HIGHESTMODSEQ (\d+)\]/m, what);
function ge(a: bigint, b: bigint, what: string): void { assert.ok(a >= b, `${what}: ${a} < ${b}`); }

/** Postern delivers another session's pending changes after any command; Dovecot after STATUS
 * waits for the next NOOP (RFC 3501 §7 allows both). */
const PUSH_AFTER_STATUS = 'Postern sends pending updates after STATUS, Dovecot at the next NOOP';

const CASES: Case[] = [
  {
    name: 'STATUS (HIGHESTMODSEQ) after STORE (UNCHANGEDSINCE): same session, second session before and after NOOP, LIST-STATUS',
    steps: [
      msg('a'), msg('b'), msg('c'),                                         // 0-2
      [2, 'SELECT INBOX (CONDSTORE)'],                                      // 3
      'SELECT INBOX (CONDSTORE)',                                           // 4
      'STORE 1 (UNCHANGEDSINCE 9223372036854775807) +FLAGS (\\Seen)',       // 5
      'STATUS INBOX (HIGHESTMODSEQ)',                                       // 6
      [2, 'STATUS INBOX (HIGHESTMODSEQ)'],                                  // 7
      [2, 'NOOP'],                                                          // 8
      [2, 'STATUS INBOX (HIGHESTMODSEQ)'],                                  // 9
      'LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ))',                      // 10
      [2, 'LIST "" INBOX RETURN (STATUS (MESSAGES HIGHESTMODSEQ))'],        // 11
      'STORE 2 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)',                      // 12
      'UID STORE 3 (UNCHANGEDSINCE 9223372036854775807) +FLAGS.SILENT (\\Answered)', // 13
      'STATUS INBOX (MESSAGES HIGHESTMODSEQ)',                              // 14
      'NOOP',                                                               // 15
      'FETCH 1:* (MODSEQ)',                                                 // 16
      [2, 'NOOP'],                                                          // 17
      [2, 'STATUS INBOX (HIGHESTMODSEQ)'],                                  // 18
      'STORE 1 (UNCHANGEDSINCE -1) +FLAGS (\\Seen)',                        // 19
      'STORE 1 (UNCHANGEDSINCE abc) +FLAGS (\\Seen)',                       // 20
      'STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Seen)',                           // 21
      'STORE 1 (UNCHANGEDSINCE 1 UNCHANGEDSINCE 2) +FLAGS (\\Seen)',        // 22
      `STORE 1 (UNCHANGEDSINCE ${'9'.repeat(5000)}) +FLAGS (\\Seen)`,      // 23
      'STATUS INBOX (HIGHESTMODSEQ HIGHESTMODSEQ)',                         // 24
      'NOOP',                                                               // 25
    ],
    known: { 7: PUSH_AFTER_STATUS, 8: PUSH_AFTER_STATUS },
    order(raw, server) {
      const selected = okOf(raw[4]!, `${server} SELECT`);
      const stored = storeOf(raw[5]!, `${server} STORE`);
      ge(stored, selected + 1n, `${server} STORE MODSEQ above SELECT's HIGHESTMODSEQ`);
      ge(statusOf(raw[6]!, 'x'), stored, `${server} STATUS right after the STORE, same session`);
      const before = statusOf(raw[7]!, 'x');
      ge(okOf(raw[3]!, 'x'), 1n, `${server} second session's SELECT`);
      ge(before, okOf(raw[3]!, 'x'), `${server} second session's STATUS before its NOOP`);
      ge(statusOf(raw[9]!, 'x'), stored, `${server} second session's STATUS after its NOOP`);
      ge(statusOf(raw[10]!, 'x'), stored, `${server} LIST-STATUS, same session`);
      ge(statusOf(raw[11]!, 'x'), stored, `${server} LIST-STATUS, second session after NOOP`);
      const after = statusOf(raw[14]!, 'x');
      ge(after, stored + 1n, `${server} STATUS after the .SILENT UID STORE`);
      // §3.1.1: the highest mod-sequence of all messages (no expunge here)
      const all = [...raw[16]!.matchAll(/MODSEQ \((\d+)\)/g)].map((m) => BigInt(m[1]!));
      assert.equal(all.length, 3, `${server} FETCH MODSEQ`);
      assert.equal(after, all.reduce((x, y) => (y > x ? y : x)), `${server} STATUS = highest message MODSEQ`);
      ge(statusOf(raw[18]!, 'x'), after, `${server} second session after the next NOOP`);
    },
  },
  {
    name: 'HIGHESTMODSEQ without CONDSTORE enabled: STORE, then STATUS or LIST-STATUS enabling it while selected; SELECT of a CONDSTORE-used mailbox',
    steps: [
      msg('a'), msg('b'),                                                   // 0-1
      'SELECT INBOX',                                                       // 2
      'STORE 1 +FLAGS (\\Seen)',                                            // 3
      'STATUS INBOX (HIGHESTMODSEQ)',                                       // 4
      'FETCH 1:* (MODSEQ)',                                                 // 5
      [2, 'SELECT INBOX'],                                                  // 6
      [2, 'STORE 2 +FLAGS (\\Flagged)'],                                   // 7
      [2, 'LIST "" INBOX RETURN (STATUS (HIGHESTMODSEQ))'],                 // 8
      [2, 'FETCH 1:* (MODSEQ)'],                                            // 9
      [3, 'EXAMINE INBOX'],                                                 // 10
      [3, 'STATUS INBOX (HIGHESTMODSEQ)'],                                  // 11
    ],
    known: {
      // Dovecot 2.3 sends [HIGHESTMODSEQ] at SELECT/EXAMINE to every session once the mailbox's
      // index has mod-sequences enabled (any session used CONDSTORE on it: step 4 here); Postern
      // keeps mod-sequences for every mailbox and sends it only where the session enabled
      // CONDSTORE (RFC 7162 §3.1.2.1 requires no more); matching would need a per-mailbox
      // "used with CONDSTORE" mark on disk.
      6: 'HIGHESTMODSEQ at SELECT without CONDSTORE', 10: 'HIGHESTMODSEQ at EXAMINE without CONDSTORE',
    },
    order(raw, server) {
      const enabled = okOf(raw[4]!, `${server} HIGHESTMODSEQ sent when STATUS enabled CONDSTORE`);
      const status = statusOf(raw[4]!, `${server} STATUS`);
      assert.equal(enabled, status, `${server} the untagged OK and the STATUS agree`);
      const mine = storeOf(raw[5]!.split('\n').find((l) => l.startsWith('* 1 '))!, `${server} FETCH 1 MODSEQ`);
      ge(status, mine, `${server} STATUS after a STORE without CONDSTORE`);
      const second = storeOf(raw[9]!.split('\n').find((l) => l.startsWith('* 2 '))!, `${server} FETCH 2 MODSEQ`);
      ge(second, mine + 1n, `${server} the later STORE's MODSEQ`);
      ge(statusOf(raw[8]!, 'x'), second, `${server} LIST-STATUS after the second session's STORE`);
      ge(statusOf(raw[11]!, 'x'), second, `${server} third session's STATUS`);
    },
  },
];

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `cs${i}@x.test`));
});

after(async () => {
  if (d) await d.stop();
});

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const user = `cs${i}@x.test`;
    const dovecot = await runSteps(d.dc.ports.imap!, user, c.steps);
    const postern = await runSteps(d.fx.port, user, c.steps);
    c.order(dovecot, 'Dovecot');
    c.order(postern, 'Postern');
    const diffs = differences(c.steps, { dovecot: dovecot.map(normalise), postern: postern.map(normalise) }, (j) => c.known?.[j] !== undefined);
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
