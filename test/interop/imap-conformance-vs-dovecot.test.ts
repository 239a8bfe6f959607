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
import { readdirSync, readFileSync } from 'node:fs';
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
  /** The step `FETCH 1:* (MODSEQ)` whose answer names the mod-sequences (Differential.run). */
  modseqMap?: number;
  /** Also compare the message files on disk: contents and the ,S= and ,W= sizes. */
  disk?: boolean;
}

/** APPEND of a literal8 (RFC 3516): `~{n}`, synchronising, the bytes as they are. */
const append8 = (m: Buffer): Buffer => Buffer.concat([Buffer.from(`APPEND INBOX ~{${m.length}}\r\n`), m]);
const BIN_PART = Buffer.from([0, 1, 13, 10, 2, 0xff, 0, 10, 13]);
const BIN_MULTI = Buffer.concat([
  Buffer.from('MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n'),
  BIN_PART, Buffer.from('\r\n--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b--\r\n'),
]);
const BIN_SINGLE = Buffer.from('Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\nab\0cd\r\n', 'latin1');
const BIN_LONG = Buffer.concat([
  Buffer.from('Subject: big\r\nContent-Type: application/octet-stream\r\nContent-transfer-encoding: BINARY\r\nX-After: 1\r\n\r\n'),
  Buffer.from(Array.from({ length: 200 }, (_, i) => i)), Buffer.from('\r\n'),
]);
const BIN_EMPTY_PART = Buffer.from('Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Transfer-Encoding: binary\r\n\r\n\r\n--x--\r\n');

const M = 'Subject: x\r\n\r\nbody\r\n';
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
    name: 'the selected mailbox renamed or deleted by this or another session: the next command ends the session',
    steps: ['CREATE Box', 'CREATE Box2', 'CREATE a', 'CREATE a/b', [2, 'SELECT Box'], [3, 'SELECT a/b'], [4, 'SELECT Box2'],
      'RENAME Box Other', [2, 'NOOP'], [3, 'NOOP'], 'RENAME a c', [3, 'NOOP'], 'DELETE Box2', [4, 'NOOP'], 'SELECT Other', 'RENAME Other Box', 'NOOP'],
  },
  {
    name: 'METADATA without imap_metadata: disabled, as in Dovecot',
    steps: ['GETMETADATA INBOX /private/comment', 'SETMETADATA INBOX (/private/comment "x")', 'NOOP'],
  },
  {
    name: 'DELETE of the selected mailbox: OK, then BYE at the next command',
    steps: ['CREATE Doomed', 'SELECT Doomed', 'DELETE Doomed', 'NOOP'],
  },
  {
    name: 'RFC 3501 §6.4.4: address searches as Dovecot normalises addresses',
    steps: [...ADDRESS_MESSAGES.map((m) => append(m)), 'SELECT INBOX', ...ADDRESS_SEARCHES.map((s) => `SEARCH ${s}`)],
  },
  {
    name: 'SUBJECT searches count runs of white space in the header as one space (Dovecot), HEADER does not',
    steps: [
      append('Subject:   lead  and\t\tdouble  spaces\r\n\r\nb\r\n'),
      append('Subject: folded\r\n   line\r\nX-H: a  b\r\n\r\nb\r\n'),
      'SELECT INBOX',
      'SEARCH SUBJECT "lead and"',
      'SEARCH SUBJECT "and double"',
      'SEARCH SUBJECT "and  double"',
      'SEARCH SUBJECT " lead"',
      'SEARCH SUBJECT "folded line"',
      'SEARCH SUBJECT "folded   line"',
      'SEARCH HEADER X-H "a b"',
      'SEARCH HEADER X-H "a  b"',
      'SEARCH HEADER Subject "lead and"',
      'SEARCH TEXT "lead and"',
      'SEARCH SUBJECT "spaces "',
    ],
  },
  {
    name: 'RFC 8970 PREVIEW (and SNIPPET): the first text part, quoted lines left out, HTML as text, 200 characters',
    steps: [
      append("Subject: a\r\n\r\nHello   world,\r\n\r\nthis is\ta test.\r\n> quoted line\r\nafter quote\r\n"),
      append("Subject: b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nK=C3=B6ln caf=C3=A9 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"),
      append("Subject: c\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain part\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>html part</p>\r\n--b--\r\n"),
      append("Subject: d\r\nContent-Type: text/html\r\n\r\n<html><head><style>p{color:red}</style></head><body><p>Hello &amp; <b>bold</b>&nbsp;x</p><blockquote>quoted</blockquote><p>end</p></body></html>\r\n"),
      append("Subject: e\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/pdf\r\n\r\nxxx\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond part text\r\n--b--\r\n"),
      append("Subject: f\r\n\r\n"),
      append("Subject: g\r\n\r\n   \r\n\r\n  leading spaces and \"quotes\" and \\ backslash\r\n"),
      "SELECT INBOX",
      "FETCH 1:* (PREVIEW)",
      "FETCH 1 (PREVIEW (LAZY))",
      "FETCH 1 (SNIPPET (FUZZY))",
      "FETCH 1 PREVIEW (LAZY)",
      "CAPABILITY",
    ],
  },
  {
    name: 'PREVIEW: quoted-only text, the 200-character edge, empty and non-text parts, charsets, LAZY, modifiers',
    steps: [
      append("Subject: q\r\n\r\n> only quoted\r\n> more quoted\r\n"),
      append("Subject: long\r\n\r\nword word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word word \r\n"),
      append("Subject: long2\r\n\r\nabcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghi abcdefghij xyz\r\n"),
      append("Subject: empty first\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n   \r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--b--\r\n"),
      append("Subject: bom\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\ufeffbom text\r\n"),
      append("Subject: rfc822\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n"),
      append("Subject: html2\r\nContent-Type: text/html\r\n\r\n<!-- c --><div>a&#233;b&#x41;<br>c</div><script>x()</script>&unknown; &lt;tag&gt;\r\n"),
      append("Subject: quoted then text\r\n\r\n>q1\r\n>q2\r\n\r\nreal text\r\n"),
      append("Subject: gt mid\r\n\r\na > b\r\n>c\r\n"),
      append("Subject: b64\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\nS/ZsbiBjYWbp\r\n"),
      append("Subject: x\r\nContent-Type: image/png\r\n\r\nxxx\r\n"),
      append("Subject: spaces at 200\r\n\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b c\r\n"),
      append("Subject: exact\r\n\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b\r\n"),
      "SELECT INBOX",
      "FETCH 1:* (PREVIEW)",
      "UID FETCH 1:2 (UID PREVIEW (LAZY) FLAGS)",
      "FETCH 1 (PREVIEW (FOO))",
      "FETCH 1 SNIPPET",
      "FETCH 1 (SNIPPET (LAZY))",
      "FETCH 1 PREVIEW (LAZY) (CHANGEDSINCE 1)",
      "FETCH 1 (PREVIEW ())",
    ],
  },
  {
    name: 'RFC 3501 §2.3.2: APPENDed messages are \\Recent; EXAMINE and STATUS show them without taking them',
    steps: [
      append(M), append(M), 'STATUS INBOX (MESSAGES RECENT UNSEEN)', 'EXAMINE INBOX', 'FETCH 1:* FLAGS',
      'SEARCH RECENT', 'STATUS INBOX (RECENT)', [2, 'STATUS INBOX (RECENT)'], [2, 'EXAMINE INBOX'], 'SELECT INBOX',
      'FETCH 1:* FLAGS', 'SEARCH RECENT', [2, 'NOOP'], [2, 'STATUS INBOX (RECENT)'], append(M), 'NOOP',
      'FETCH 1:* FLAGS', [2, 'NOOP'], [2, 'SEARCH RECENT'], [3, 'SELECT INBOX'], 'CLOSE', 'STATUS INBOX (RECENT)',
      'EXAMINE INBOX', [3, 'LOGOUT'], 'UNSELECT', 'SELECT INBOX',
    ],
  },
  {
    name: 'RFC 3501 §2.3.2: an EXAMINE session sees a new message as \\Recent until a SELECT takes it',
    steps: [
      'CREATE box', append(M, 'box'), [2, 'SELECT box'], 'EXAMINE box', 'STATUS box (RECENT)', append(M, 'box'),
      [2, 'NOOP'], 'EXAMINE box', [3, 'EXAMINE box'], [2, 'CLOSE'], 'SELECT box',
    ],
  },
  {
    name: 'RFC 3501 §6.3.9: LSUB of subscribed children whose parents are not subscribed or do not exist',
    steps: [
      'CREATE a/b/c', 'CREATE x/y', 'SUBSCRIBE a/b/c', 'SUBSCRIBE x/y', 'LSUB "" *', 'LSUB "" %', 'LSUB "" a/%',
      'LSUB "" a/b/%', 'LSUB "" x/%', 'LSUB a/ %', 'DELETE x/y', 'LSUB "" *', 'LSUB "" %', 'LSUB "" x/%',
      'SUBSCRIBE a', 'LSUB "" %', 'LIST (SUBSCRIBED) "" %', 'LIST (SUBSCRIBED) "" *',
      'LIST (SUBSCRIBED) "" % RETURN (CHILDREN)', 'UNSUBSCRIBE a', 'LIST (SUBSCRIBED) "" %',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" %', 'LIST "" % RETURN (SUBSCRIBED)', 'SUBSCRIBE nonexist', 'CREATE p',
      'SUBSCRIBE p', 'DELETE p', 'LSUB "" *',
    ],
  },
  {
    name: 'RFC 5258 §3: RECURSIVEMATCH alone is BAD; (SUBSCRIBED RECURSIVEMATCH) answers CHILDINFO',
    steps: [
      'CREATE a/b/c', 'CREATE d/e', 'CREATE f', 'SUBSCRIBE a/b/c', 'SUBSCRIBE f', 'LIST (RECURSIVEMATCH) "" %',
      'LIST (RECURSIVEMATCH) "" *', 'LIST (REMOTE RECURSIVEMATCH) "" %', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" *', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" a/%',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" (% a/%)',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" (% a/%) RETURN (CHILDREN)', 'LIST (SUBSCRIBED) "" %',
      'LIST (SUBSCRIBED) "" % RETURN (CHILDREN)', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %/%',
      'LIST (SPECIAL-USE RECURSIVEMATCH) "" %', 'LIST (SUBSCRIBED REMOTE RECURSIVEMATCH) "" %',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN SUBSCRIBED)', 'LIST () "" %',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" ""', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" a', 'SUBSCRIBE d', 'DELETE d/e',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" *', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %',
    ],
  },
  {
    name: 'RFC 5258 §3.5: CHILDINFO with %, *, pattern lists and RETURN (CHILDREN), after DELETE and RENAME',
    steps: [
      'CREATE a/b/c', 'CREATE e', 'CREATE e/f', 'CREATE g/h/i', 'SUBSCRIBE a/b/c', 'SUBSCRIBE e', 'SUBSCRIBE e/f',
      'SUBSCRIBE g/h/i', 'LSUB "" %', 'LSUB "" *', 'LSUB "" e/%', 'LSUB "" g/%', 'LSUB "" g/%/%',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" %', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (CHILDREN)',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" * RETURN (CHILDREN)', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" g/%',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" (e g)',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" % RETURN (STATUS (MESSAGES))', 'LIST (SPECIAL-USE RECURSIVEMATCH) "" %',
      'LIST (SPECIAL-USE) "" *', 'LIST "" % RETURN (CHILDREN)', 'LIST "" % RETURN (SPECIAL-USE)',
      'UNSUBSCRIBE nonexist', 'UNSUBSCRIBE a', 'UNSUBSCRIBE g/h/i', 'DELETE e/f', 'LSUB "" *', 'LSUB "" e/%',
      'LIST (SUBSCRIBED) "" e/% RETURN (CHILDREN)', 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %', 'CREATE e/f',
      'RENAME e E2', 'LSUB "" *', 'LIST "" *', 'LIST (SUBSCRIBED) "" *', 'LSUB e *', 'LSUB "" INBOX',
      'SUBSCRIBE INBOX', 'LSUB "" inbox', 'LIST (SUBSCRIBED) "" INBOX',
      'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%" RETURN (SUBSCRIBED CHILDREN)',
    ],
  },
  {
    name: 'RFC 7162 §3.1.5 with RFC 4731: the ESEARCH MODSEQ is that of the messages returned',
    modseqMap: 9,
    steps: [
      append(M), append(M), append(M), append(M), 'SELECT INBOX', 'ENABLE CONDSTORE', 'STORE 2 +FLAGS (\\Flagged)',
      'STORE 4 +FLAGS (\\Seen)', 'STORE 1 +FLAGS ($x)', 'FETCH 1:* (MODSEQ)', 'SEARCH RETURN (MIN) MODSEQ 1',
      'SEARCH RETURN (MAX) MODSEQ 1', 'SEARCH RETURN (ALL) MODSEQ 1', 'SEARCH RETURN (COUNT) MODSEQ 1',
      'SEARCH RETURN (MIN MAX) MODSEQ 1', 'SEARCH RETURN (MIN COUNT) MODSEQ 1', 'SEARCH RETURN () MODSEQ 1',
      'UID SEARCH RETURN (MIN) MODSEQ 1', 'SEARCH RETURN (MIN) 3:4 MODSEQ 1', 'SEARCH RETURN (MAX) 1:3 MODSEQ 1',
      'SEARCH MODSEQ 1', 'SEARCH 1:2 MODSEQ 1', 'SEARCH RETURN (MIN) UNSEEN MODSEQ 1',
      'SEARCH RETURN (SAVE MIN) MODSEQ 1', 'SEARCH RETURN (MIN MAX) 2:3 MODSEQ 1',
      'SEARCH RETURN (ALL) FLAGGED MODSEQ 1', 'SEARCH RETURN (MIN) NOT ALL MODSEQ 1',
      'SEARCH RETURN (MIN) OR MODSEQ 1 SEEN',
    ],
  },
  {
    name: 'RFC 5267 §4: CONTEXT=SEARCH updates after STORE (also .SILENT), other sessions\' changes, arrivals and expunges',
    steps: [
      append(M), append(M), append(M), 'SELECT INBOX', 'SEARCH RETURN (UPDATE) UNSEEN', 'STORE 2 +FLAGS (\\Seen)',
      'NOOP', 'STORE 2 -FLAGS (\\Seen)', 'STORE 1:3 +FLAGS.SILENT (\\Seen)', 'STORE 1 -FLAGS (\\Seen)',
      [2, 'SELECT INBOX'], [2, 'STORE 3 -FLAGS (\\Seen)'], 'NOOP', [2, append(M)], 'NOOP',
      [2, 'STORE 2 +FLAGS (\\Deleted)'], [2, 'EXPUNGE'], 'NOOP', 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE',
      'FETCH 1:* FLAGS', 'SEARCH RETURN (UPDATE COUNT) UNSEEN', 'UID SEARCH RETURN (UPDATE MIN MAX) DELETED',
      [2, 'STORE 1 +FLAGS (\\Deleted)'], 'NOOP', [2, append(M)], [2, append(M)], 'NOOP', 'CANCELUPDATE "t4"',
      'STORE 2 +FLAGS (\\Seen)', 'NOOP',
    ],
  },
  {
    name: 'a flag change by another session back to what this session stored is reported',
    steps: [
      append(M), append(M), append(M), 'SELECT INBOX', 'STORE 1:3 +FLAGS.SILENT (\\Seen)', [2, 'SELECT INBOX'],
      [2, 'STORE 3 -FLAGS (\\Seen)'], 'NOOP', 'FETCH 1:* FLAGS',
    ],
  },
  {
    name: 'APPEND is saved as Dovecot saves it: LF line ends, ,S= the LF size, ,W= the CRLF size',
    disk: true,
    steps: [
      append('From: a@b.c\r\nSubject: crlf\r\n\r\nline1\r\nline2\r\n'), append('Subject: bare\r\n\r\nbare\rcr and\nlf\r\n'),
      `APPEND INBOX (\\Seen) ${lit('Subject: seen\r\n\r\nx')}`, 'SELECT INBOX', 'FETCH 1:* (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT]<1.8>)',
    ],
  },
  {
    name: 'RFC 3516: APPEND of literal8 with binary parts, FETCH BODY[n], BINARY[n], BINARY.SIZE[n] of binary and empty parts',
    disk: true,
    steps: [
      append8(BIN_MULTI), append8(Buffer.from('Subject: empty\r\n\r\n')), append8(BIN_SINGLE), append8(BIN_LONG), append8(BIN_EMPTY_PART),
      append8(Buffer.from('Subject: plain8\r\n\r\nab\0cd\r\n', 'latin1')), 'SELECT INBOX', 'FETCH 1:* (RFC822.SIZE BINARY.SIZE[1])',
      'FETCH 1 (BODYSTRUCTURE BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1])', 'FETCH 1 (BODY.PEEK[2] BINARY.PEEK[2] BINARY.SIZE[2])',
      'FETCH 2 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BINARY.SIZE[])', 'FETCH 3 (BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[])',
      'FETCH 1 BINARY.PEEK[1]<2.3>', 'FETCH 1 (BODY.PEEK[] BINARY.PEEK[] BINARY.SIZE[])', 'FETCH 3 (BINARY.PEEK[] BINARY.SIZE[] BINARY.PEEK[1]<0.2>)',
      'FETCH 4 (BODYSTRUCTURE BINARY.SIZE[1] BINARY.PEEK[1] BODY.PEEK[1])', 'FETCH 5 (BODYSTRUCTURE BODY.PEEK[1] BINARY.PEEK[1] BINARY.SIZE[1])',
      'FETCH 6 (BODYSTRUCTURE BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])', 'FETCH 1 BINARY.SIZE[1.2]', 'FETCH 1 BINARY.PEEK[3]',
      'SEARCH BODY ab', 'SEARCH TEXT AAENCgL', 'FETCH 2 BINARY.PEEK[]', 'FETCH 3 BODYSTRUCTURE',
    ],
    known: {
      22: 'BINARY[] of a message APPENDed as literal8: Dovecot remembers that and answers BINARY[] as ~{n}; Postern only when it decodes or finds NUL',
      23: 'BODYSTRUCTURE of a single-part message converted from binary: Dovecot reports "7bit", Postern the "base64" the header says',
    },
  },
  {
    name: 'hostile input to the new rules: long bracket runs, unclosed sections, NUL, NIL floods; another session is served meanwhile',
    steps: [
      append('From: ' + Array.from({ length: 2000 }, (_, i) => `"n${i}" <u${i}@h>`).join(', ') + '\r\nSubject: many\r\n\r\nb\r\n'),
      'SELECT INBOX', `SELECT ${'['.repeat(60_000)}`, [2, 'NOOP'], `LIST "" ${']'.repeat(60_000)}%`, `FETCH 1 BODY[${'('.repeat(5000)}`,
      [2, 'NOOP'], `FETCH 1 BODY[HEADER.FIELDS (${'X '.repeat(20_000)})`, `FETCH 1 BODY.PEEK[${'['.repeat(1000)}1${']'.repeat(1000)}`,
      Buffer.from('SELECT a[\0]'), Buffer.from('FETCH 1 BODY[\0]'), `SEARCH ${'NOT '.repeat(5000)}SUBJECT NIL`, `SEARCH FROM ${'<'.repeat(50_000)}`,
      'SEARCH FROM "u1999@h>"', 'SEARCH TO NIL', `SELECT ${'NIL/'.repeat(100)}NIL`, [2, 'NOOP'], 'NOOP',
    ],
  },
];

/** The message files of a Maildir: `,S=` and `,W=` and the content, one line each, sorted. */
function diskFiles(root: string): string {
  const out: string[] = [];
  for (const sub of ['cur', 'new']) {
    let names: string[] = [];
    try { names = readdirSync(join(root, sub)); } catch { continue; }
    for (const f of names) {
      const sizes = /,S=\d+,W=\d+/.exec(f)?.[0] ?? '(no sizes)';
      out.push(`${sizes} ${JSON.stringify(readFileSync(join(root, sub, f)).toString('latin1'))}`);
    }
  }
  return out.sort().join('\n');
}

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
    const a = await d.run(`case${i}@x.test`, c.steps, c.modseqMap !== undefined ? { modseqMap: c.modseqMap } : {});
    const diffs = differences(c.steps, a, (j) => c.known?.[j] !== undefined);
    if (c.disk) {
      const m = d.maildirs(`case${i}@x.test`);
      const mine = diskFiles(m.postern);
      const theirs = diskFiles(m.dovecot);
      if (mine !== theirs) diffs.push(`message files\n--- Dovecot\n${theirs}\n--- Postern\n${mine}`);
    }
    assert.equal(diffs.length, 0, diffs.join('\n'));
  });
}
