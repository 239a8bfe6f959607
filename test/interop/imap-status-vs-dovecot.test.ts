/**
 * LIST-STATUS (RFC 5819), STATUS=SIZE (RFC 8438) and SAVEDATE (RFC 8514), already announced by
 * both servers, as a differential test against real Dovecot 2.3 (test/harness/imap-differential.ts):
 * the same steps on a fresh user of each, every answer compared. Dates of SAVEDATE are replaced
 * by DATE (the two servers save at different instants) after checking they are today.
 * Hostile input: over-long and malformed STATUS item lists in STATUS and LIST RETURN.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const append = (m: string, box = 'INBOX'): string => `APPEND ${box} ${lit(m)}`;

interface Case {
  name: string;
  steps: Step[];
  /** Steps whose answers knowingly differ, with the reason. */
  known?: Record<number, string>;
}

const LF = 'Subject: lf\n\nline one\nline two\n';
const CRLF = 'Subject: crlf\r\n\r\nline one\r\nline two\r\n';

const CASES: Case[] = [
  {
    name: 'RFC 8438 STATUS=SIZE: sizes of LF and CRLF messages, empty and selected mailboxes, with other items',
    steps: [
      'STATUS INBOX (SIZE)', append(LF), append(CRLF), append('x'), 'STATUS INBOX (SIZE)', 'STATUS INBOX (MESSAGES SIZE UNSEEN)',
      'STATUS INBOX (SIZE SIZE)', 'STATUS INBOX (SIZE UNSEEN UIDVALIDITY UIDNEXT RECENT MESSAGES)', 'CREATE Empty', 'STATUS Empty (SIZE MESSAGES)', 'SELECT INBOX', 'STATUS INBOX (SIZE)',
      'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE', 'STATUS Empty (SIZE)', 'CLOSE', 'STATUS INBOX (SIZE RECENT)', 'STATUS Nope (SIZE)',
      'STATUS INBOX (size)', 'STATUS INBOX (SIZE BOGUS)', `STATUS INBOX (${'MESSAGES '.repeat(2000)}SIZE)`,
      'STATUS INBOX (SIZE "MESSAGES")', 'STATUS INBOX (SIZE (MESSAGES))', 'STATUS INBOX (SIZE NIL)', 'STATUS INBOX (HIGHESTMODSEQ)', 'STATUS INBOX ()', 'STATUS INBOX SIZE', 'NOOP',
    ],
  },
  {
    name: 'RFC 5819 LIST-STATUS: patterns, \\Noselect parents, subscriptions, children, special-use',
    steps: [
      append(CRLF), 'CREATE a/b/c', 'CREATE Box', append(LF, 'Box'), 'SUBSCRIBE Box', 'SUBSCRIBE Gone',
      'LIST "" * RETURN (STATUS (MESSAGES UNSEEN SIZE))',
      'LIST "" % RETURN (CHILDREN STATUS (MESSAGES RECENT UIDNEXT))',
      'LIST (SUBSCRIBED) "" * RETURN (STATUS (MESSAGES))',
      'LIST (SPECIAL-USE) "" * RETURN (STATUS (MESSAGES))',
      'LIST "" (INBOX Box) RETURN (STATUS (UIDVALIDITY HIGHESTMODSEQ))',
      'LIST "" Nope RETURN (STATUS (MESSAGES))',
      'LIST "" a/% RETURN (STATUS (MESSAGES) CHILDREN)',
      'SELECT Box', 'LIST "" Box RETURN (STATUS (MESSAGES))', 'CLOSE',
      'LIST "" * RETURN (STATUS ())', 'LIST "" * RETURN (STATUS)', 'LIST "" * RETURN (STATUS (MESSAGES) STATUS (UNSEEN))',
      'LIST "" * RETURN (STATUS (NOPE))', 'LIST "" * RETURN (STATUS MESSAGES)', 'NOOP',
    ],
  },
  {
    name: 'RFC 8514 SAVEDATE: FETCH, search keys, after COPY',
    steps: [
      append(CRLF), append(LF), 'SELECT INBOX', 'FETCH 1:* (SAVEDATE)', 'UID FETCH 2 (SAVEDATE FLAGS)',
      'SEARCH SAVEDATESUPPORTED', 'SEARCH SAVEDSINCE 1-Jan-2000', 'SEARCH SAVEDBEFORE 1-Jan-2000', 'SEARCH SAVEDON 1-Jan-2000',
      'SEARCH NOT SAVEDBEFORE 1-Jan-2000', 'SEARCH SAVEDSINCE 1-Jan-2999', 'SEARCH SAVEDBEFORE 1-Jan-2999',
      'CREATE Copy', 'COPY 1 Copy', 'SELECT Copy', 'FETCH 1 (SAVEDATE)', 'SEARCH SAVEDSINCE 1-Jan-2000',
      'SEARCH SAVEDSINCE 32-Jan-2000', 'SEARCH SAVEDSINCE', 'SEARCH SINCE 30-Feb-2020', 'SEARCH SAVEDBEFORE 0-Jan-2000',
      'SEARCH SAVEDSINCE 99-Dec-2999', 'SEARCH SAVEDON 7-Foo-2000', 'SEARCH SAVEDON 1-Jan-20000', 'FETCH 1 (SAVEDATE SAVEDATE)', 'NOOP',
    ],
    known: {
      // impossible days: Dovecot's answers are not consistent (SAVEDSINCE 32-Jan-2000 matches every
      // message, SINCE 30-Feb-2020 none); Postern refuses them with Dovecot's BAD text
      17: 'impossible day', 19: 'impossible day', 20: 'impossible day', 21: 'impossible day',
    },
  },
];

/** SAVEDATE values: the servers saved at different instants. */
function dates(s: string): string {
  return s.replace(/SAVEDATE "[^"]*"/g, 'SAVEDATE DATE');
}

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `st${i}@x.test`));
});

after(async () => {
  if (d) await d.stop();
});

/** Now as the file system stamps files (statx is not moved by libfaketime). */
function fileSystemNow(): number {
  const f = join(tmpdir(), `postern-fsnow-${process.pid}`);
  writeFileSync(f, '');
  const t = statSync(f).mtimeMs;
  rmSync(f, { force: true });
  return t;
}

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const a = await d.run(`st${i}@x.test`, c.steps);
    for (const x of [...a.dovecot, ...a.postern]) {
      for (const m of x.matchAll(/SAVEDATE "(\d+)-(\w+)-(\d+) /g)) {
        const day = new Date(`${m[2]} ${m[1]} ${m[3]}`).getTime();
        // Today by our clock or by the file system's (a Maildir's save date is its file's ctime;
        // the two differ under npm run test:clock, which moves only the processes' calendar).
        const near = (t: number) => Math.abs(day - t) < 2 * 86_400_000;
        assert.ok(near(Date.now()) || near(fileSystemNow()), `SAVEDATE not today: ${m[0]}`);
      }
    }
    const diffs = differences(c.steps, { dovecot: a.dovecot.map(dates), postern: a.postern.map(dates) }, (j) => c.known?.[j] !== undefined);
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
