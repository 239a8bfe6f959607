/**
 * Flag searches answered from the in-memory view (src/imapd/cmd-search-index.ts) and STORE
 * answers, as a differential test against real Dovecot 2.3 (test/harness/imap-differential.ts):
 * the same steps on a fresh user of each, every answer compared. Covers every flag key and its
 * UN- form, KEYWORD/UNKEYWORD, RECENT/OLD/NEW seen from two sessions, LARGER/SMALLER, sequence
 * and UID sets, `$` (SEARCHRES), NOT and OR nested, and a STORE that changes nothing (Dovecot
 * answers no FETCH for a message whose flags did not change). Hostile input: deep NOT/OR
 * nesting and over-long programs.
 * Skipped, with the reason, when real Dovecot cannot run.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { RealDovecot } from '../harness/real-dovecot.ts';
import { Differential, differences, type Step } from '../harness/imap-differential.ts';

const lit = (m: string): string => `{${Buffer.byteLength(m)}+}\r\n${m}`;
const msg = (i: number): string => `Subject: m${i}\r\nFrom: a@x.test\r\n\r\n${'body line\r\n'.repeat(i)}`;
const append = (i: number, flags = ''): string => `APPEND INBOX (${flags}) ${lit(msg(i))}`;

interface Case {
  name: string;
  steps: Step[];
  /** Steps whose answers knowingly differ, with the reason. */
  known?: Record<number, string>;
  /** Text taken out of both answers before they are compared. */
  strip?: [RegExp, string];
}

const SEARCHES = [
  'ALL', 'SEEN', 'UNSEEN', 'FLAGGED', 'UNFLAGGED', 'ANSWERED', 'UNANSWERED', 'DELETED', 'UNDELETED', 'DRAFT', 'UNDRAFT',
  'KEYWORD $Work', 'UNKEYWORD $Work', 'KEYWORD $work', 'RECENT', 'OLD', 'NEW',
  'NOT SEEN', 'NOT NOT SEEN', 'OR SEEN FLAGGED', 'OR (SEEN DELETED) (FLAGGED NOT ANSWERED)', 'NOT OR SEEN DRAFT',
  'SEEN FLAGGED', 'SEEN NOT FLAGGED', '2:4 UNSEEN', 'NOT 2:4', 'OR 1 5 SEEN', 'UID 3:* FLAGGED', 'NOT UID 1:2',
  'LARGER 60', 'SMALLER 60', 'OR LARGER 80 DELETED', '*', '1,3,5 NOT DELETED', 'OR KEYWORD $Work KEYWORD $Other',
  'NOT KEYWORD $Work SEEN', 'UNKEYWORD $Work UNSEEN UNDELETED',
];

const CASES: Case[] = [
  {
    name: 'flag, keyword, size and set searches, with NOT and OR, after STOREs; UID SEARCH; SEARCHRES',
    steps: [
      append(1), append(2, '\\Seen'), append(3, '\\Seen \\Flagged'), append(4, '\\Answered $Work'), append(5, '\\Deleted \\Draft'),
      append(6, '$Other \\Seen'), append(7), 'SELECT INBOX',
      'STORE 1 +FLAGS (\\Flagged)', 'STORE 7 +FLAGS.SILENT ($Work \\Seen)', 'STORE 3 -FLAGS (\\Draft)',
      ...SEARCHES.map((k) => `SEARCH ${k}`), ...SEARCHES.slice(0, 12).map((k) => `UID SEARCH ${k}`),
      'SEARCH RETURN (SAVE) FLAGGED', 'SEARCH $', 'SEARCH NOT $', 'SEARCH OR $ DRAFT', 'SEARCH RETURN (COUNT MIN MAX) UNSEEN',
      'UID SEARCH RETURN (ALL) NOT SEEN', 'NOOP', 'SEARCH OR KEYWORD Nope SEEN', 'SEARCH UNKEYWORD Nope', 'NOOP',
    ],
    // Dovecot adds a keyword that is only searched for to the mailbox's keyword list (a new
    // `* FLAGS` line); Postern does not: the results are compared, not the FLAGS lines
    strip: [/^\* (FLAGS|OK \[PERMANENTFLAGS) .*\r?\n/gm, ''],
  },
  {
    name: 'RECENT, OLD and NEW from two sessions; flags changed by the other session are seen by the next search',
    steps: [
      [2, 'SELECT INBOX'], append(1), append(2, '\\Seen'), append(3), 'SELECT INBOX', 'SEARCH RECENT', 'SEARCH NEW', 'SEARCH OLD',
      [2, 'NOOP'], [2, 'SEARCH RECENT'], [2, 'SEARCH OLD'], [2, 'STORE 1 +FLAGS.SILENT (\\Flagged)'], 'NOOP', 'SEARCH FLAGGED', 'SEARCH NOT FLAGGED',
      [2, 'STORE 2:3 +FLAGS.SILENT (\\Deleted)'], [2, 'EXPUNGE'], 'NOOP', 'SEARCH ALL', 'SEARCH NOT RECENT', 'SEARCH NEW', 'NOOP',
    ],
  },
  {
    name: 'STORE that changes nothing: no FETCH for messages whose flags stay the same',
    steps: [
      append(1, '\\Seen'), append(2), append(3, '\\Flagged $Work'), 'SELECT INBOX',
      'STORE 1 +FLAGS (\\Seen)', 'STORE 1:3 +FLAGS (\\Seen)', 'STORE 1:3 +FLAGS (\\Seen)', 'STORE 2 -FLAGS (\\Draft)',
      'STORE 3 FLAGS (\\Flagged $Work \\Seen)', 'STORE 3 FLAGS (\\Seen \\Flagged $Work)', 'STORE 1:3 -FLAGS (\\Answered)',
      'UID STORE 1:* +FLAGS (\\Seen)', 'UID STORE 2 -FLAGS (\\Answered)', 'STORE 1:3 +FLAGS ($Work)', 'STORE 1:3 +FLAGS ($Work)',
      'STORE 1:3 -FLAGS.SILENT ($Work)', 'STORE 1:3 -FLAGS ($Work)', 'FETCH 1:3 FLAGS', 'NOOP',
    ],
  },
  {
    name: 'STORE that changes nothing, with CONDSTORE (MODSEQ answers) and UNCHANGEDSINCE',
    steps: [
      append(1, '\\Seen'), append(2), 'ENABLE CONDSTORE', 'SELECT INBOX', 'FETCH 1:* (MODSEQ)',
      'STORE 1 +FLAGS (\\Seen)', 'STORE 1:2 +FLAGS.SILENT (\\Seen)', 'STORE 1:2 +FLAGS.SILENT (\\Seen)',
      'STORE 1:2 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)', 'UID STORE 1:2 +FLAGS (\\Seen)', 'NOOP',
    ],
  },
  {
    name: 'hostile search programs: deep nesting, long key lists, bad keys',
    steps: [
      append(1), append(2, '\\Seen'), 'SELECT INBOX',
      `SEARCH ${'NOT '.repeat(200)}SEEN`, `SEARCH ${'OR SEEN '.repeat(100)}FLAGGED`, `SEARCH ${'SEEN '.repeat(2000)}`,
      `SEARCH ${'('.repeat(50)}SEEN${')'.repeat(50)}`, 'SEARCH NOT', 'SEARCH OR SEEN', 'SEARCH KEYWORD', 'SEARCH UID', 'SEARCH 0', 'SEARCH 1:0',
      'SEARCH UID 4294967296', 'SEARCH LARGER -1', 'SEARCH LARGER 99999999999999999999', 'NOOP',
    ],
    // the texts of BAD differ (lib-imap's parser words them its own way); BAD or not must agree
    strip: [/ BAD .*$/gm, ' BAD'],
  },
];

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `sf${i}@x.test`));
});

after(async () => {
  if (d) await d.stop();
});

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const raw = await d.run(`sf${i}@x.test`, c.steps);
    const strip = (x: string[]): string[] => (c.strip ? x.map((t) => t.replace(c.strip![0], c.strip![1])) : x);
    const a = { dovecot: strip(raw.dovecot), postern: strip(raw.postern) };
    const diffs = differences(c.steps, a, (j) => c.known?.[j] !== undefined);
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
