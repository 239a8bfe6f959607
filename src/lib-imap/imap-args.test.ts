/** FETCH / SEARCH / STORE / STATUS / LIST / APPEND argument grammars, through the real parser. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImapParser, ImapParseError, type ImapArg } from './imap-parser.ts';
import { parseFetchArgs } from './imap-fetch-args.ts';
import { parseSearchArgs, type SearchKey } from './imap-search-args.ts';
import { parseStoreArgs, parseStatusItems, parseListArgs, parseAppendArgs } from './imap-command-args.ts';

function args(line: string | Buffer, maxLineLength?: number): ImapArg[] {
  const p = new ImapParser(maxLineLength ? { maxLineLength } : {});
  p.push(Buffer.concat([Buffer.from('t CMD '), typeof line === 'string' ? Buffer.from(line) : line, Buffer.from('\r\n')]));
  for (let ev = p.next(); ev; ev = p.next()) {
    if (ev.type === 'literal') { p.acceptLiteral(); continue; }
    if (ev.type === 'command') return ev.args;
    throw new Error(`parse error: ${JSON.stringify(ev)}`);
  }
  throw new Error('incomplete');
}

test('FETCH macros and attributes', () => {
  const f = parseFetchArgs(args('1:* ALL'));
  assert.deepEqual(f.atts.map((a) => a.kind === 'simple' && a.name), ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE']);
  assert.equal(parseFetchArgs(args('1 FULL')).atts.length, 5);
  assert.equal(parseFetchArgs(args('1 FAST')).atts.length, 3);
  const g = parseFetchArgs(args('1,2 (UID BODY.PEEK[HEADER.FIELDS (From "Subject")]<10.20> BODY[1.2.MIME] BINARY[1]<0.5> BINARY.SIZE[2] RFC822.HEADER MODSEQ)'));
  const b = g.atts[1]!;
  assert.ok(b.kind === 'body');
  assert.equal(b.peek, true);
  assert.deepEqual(b.section, { path: [], text: 'HEADER.FIELDS', fields: ['From', 'Subject'] });
  assert.deepEqual(b.partial, { origin: 10, octets: 20 });
  assert.equal(b.responseName, 'BODY[HEADER.FIELDS (From Subject)]<10>');
  const m = g.atts[2]!;
  assert.ok(m.kind === 'body' && m.responseName === 'BODY[1.2.MIME]' && !m.peek);
  const bin = g.atts[3]!;
  assert.ok(bin.kind === 'binary' && bin.responseName === 'BINARY[1]<0>');
  assert.ok(g.atts[4]!.kind === 'binary.size');
});

test('FETCH modifiers CHANGEDSINCE / VANISHED (RFC 7162)', () => {
  const f = parseFetchArgs(args('1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)'), { qresync: true });
  assert.equal(f.changedSince, 12345n);
  assert.equal(f.vanished, true);
  assert.ok(f.atts.some((a) => a.kind === 'simple' && a.name === 'MODSEQ'), 'CHANGEDSINCE implies MODSEQ');
  assert.throws(() => parseFetchArgs(args('1 FLAGS (VANISHED)'), { qresync: true }), ImapParseError);
  assert.throws(() => parseFetchArgs(args('1 FLAGS (CHANGEDSINCE 1 VANISHED)')), /QRESYNC/);
});

test('FETCH errors are clear', () => {
  for (const bad of ['1 (FLAGS ALL)', '1 BODY[MIME]', '1 BODY[1.HEADER.FIELDS]', '1 BODY[0]', '1 BODY[TEXT]<1.0>',
    '1 FOO', 'x FLAGS', '1 BINARY[TEXT]', '1 BINARY.SIZE[1]<0.1>', '1 ()', '1', '1 BODY[HEADER.FIELDS ()]']) {
    assert.throws(() => parseFetchArgs(args(bad)), ImapParseError, bad);
  }
});

function show(k: SearchKey): string {
  switch (k.op) {
    case 'and': return `(${k.keys.map(show).join(' ')})`;
    case 'or': return `OR(${show(k.a)},${show(k.b)})`;
    case 'not': return `NOT(${show(k.key)})`;
    case 'flag': return `${k.set ? '' : '!'}${k.flag}`;
    case 'recent': return `${k.set ? '' : '!'}recent`;
    case 'header': return `${k.field}~${k.value}`;
    case 'date': return `${k.field}.${k.cmp}.${k.date.toISOString().slice(0, 10)}`;
    case 'seqset': return `${k.uid ? 'uid' : 'seq'}`;
    case 'modseq': return `modseq${k.modseq}${k.entry ? `/${k.entry.name}/${k.entry.type}` : ''}`;
    default: return k.op + ('value' in k ? `~${k.value}` : '') + ('size' in k ? k.size : '') + ('seconds' in k ? k.seconds : '');
  }
}

test('SEARCH keys into a tree: every RFC 3501 key and the extensions', () => {
  const p = parseSearchArgs(args('OR FROM a (TO b NOT SUBJECT c) UNSEEN KEYWORD $Junk SINCE 1-Feb-1994 SENTBEFORE 2-Feb-1994 ' +
    'LARGER 10 SMALLER 20 UID 1:5 2,4 HEADER X-Spam yes BODY x TEXT y NEW OLD RECENT ANSWERED DELETED DRAFT FLAGGED SEEN ' +
    'UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD k ALL BCC z CC w ON 3-Mar-2000 BEFORE 4-Mar-2000 SENTON 5-Mar-2000 ' +
    'SENTSINCE 6-Mar-2000 MODSEQ "/flags/\\\\draft" all 620162338 OLDER 60 YOUNGER 30 SAVEDBEFORE 1-Jan-2020 SAVEDATESUPPORTED $'));
  const s = show(p.key);
  assert.match(s, /^\(OR\(From~a,\(To~b NOT\(Subject~c\)\)\) !\\Seen \$Junk internal\.since\.1994-02-01 sent\.before\.1994-02-02 size10 size20 uid seq X-Spam~yes body~x text~y new !recent recent \\Answered/);
  assert.match(s, /modseq620162338\/\/flags\/\\draft\/all age60 age30 saved\.before\.2020-01-01 savedatesupported seq\)$/);
  assert.equal(p.charset, 'US-ASCII');
});

test('SEARCH CHARSET and RETURN; unknown charset → NO [BADCHARSET (UTF-8 US-ASCII)]', () => {
  const p = parseSearchArgs(args('RETURN (MIN COUNT SAVE) CHARSET UTF-8 SUBJECT {6}\r\ngrüß'), { esearch: true });
  assert.deepEqual(p.returnOpts, ['MIN', 'COUNT', 'SAVE']);
  assert.equal(show(p.key), 'Subject~grüß');
  const k = parseSearchArgs(args(Buffer.from('CHARSET KOI8-R BODY {2}\r\n\xf0\xd2', 'latin1')));
  assert.equal(show(k.key), 'body~Пр', 'KOI8-R string converted to UTF-8');
  assert.throws(() => parseSearchArgs(args('CHARSET X-FOO BODY x')),
    (e: unknown) => e instanceof ImapParseError && e.response === 'NO' && e.code === 'BADCHARSET (UTF-8 US-ASCII)');
  assert.throws(() => parseSearchArgs(args(Buffer.from('CHARSET US-ASCII BODY {2}\r\n\xc3\xa4', 'latin1'))), ImapParseError);
});

test('SEARCH syntax errors', () => {
  for (const bad of ['', 'FOO', 'NOT', 'OR ALL', 'FROM', 'SINCE 32-Jan-2000', 'LARGER x', '()', 'UID', 'MODSEQ x',
    'OLDER 0', 'HEADER "a b" x', 'RETURN (ALL) ALL', 'KEYWORD']) {
    assert.throws(() => parseSearchArgs(args(bad)), ImapParseError, bad);
  }
});

test('SEARCH: 20,000 nested NOTs and ORs parse iteratively', () => {
  const p = parseSearchArgs(args('NOT '.repeat(20000) + 'ALL', 1 << 20));
  let depth = 0;
  for (let k: SearchKey = p.key; k.op === 'not'; k = k.key) depth++;
  assert.equal(depth, 20000);
  const q = parseSearchArgs(args('OR ALL '.repeat(10000) + 'ALL', 1 << 20));
  assert.equal(q.key.op, 'or');
});

test('STORE variants', () => {
  assert.deepEqual(parseStoreArgs(args('1:3 +FLAGS.SILENT (\\seen $Label)')),
    { set: { kind: 'ranges', ranges: [[1, 3]] }, mode: 'add', silent: true, flags: ['\\Seen', '$Label'] });
  const s = parseStoreArgs(args('2 (UNCHANGEDSINCE 5) -FLAGS \\Deleted'));
  assert.equal(s.unchangedSince, 5n);
  assert.equal(s.mode, 'remove');
  assert.deepEqual(s.flags, ['\\Deleted']);
  assert.equal(parseStoreArgs(args('1 FLAGS ()')).flags.length, 0);
  for (const bad of ['1 +FLAGZ x', '1 FLAGS (\\Recent)', '1 FLAGS (\\Bogus)', '1 (FOO 1) FLAGS x', 'x FLAGS y', '1 FLAGS']) {
    assert.throws(() => parseStoreArgs(args(bad)), ImapParseError, bad);
  }
});

test('STATUS items', () => {
  assert.deepEqual(parseStatusItems(args('(messages UIDNEXT HIGHESTMODSEQ SIZE)')[0]), ['MESSAGES', 'UIDNEXT', 'HIGHESTMODSEQ', 'SIZE']);
  assert.throws(() => parseStatusItems(args('(FOO)')[0]), ImapParseError);
  assert.throws(() => parseStatusItems(args('()')[0]), ImapParseError);
});

test('LIST and LIST-EXTENDED (RFC 5258, 5819, 6154)', () => {
  const l = parseListArgs(args('"" %'));
  assert.equal(l.extended, false);
  assert.equal(l.patterns[0]!.toString(), '%');
  const x = parseListArgs(args('(SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Sent/*") RETURN (CHILDREN STATUS (MESSAGES UNSEEN) SPECIAL-USE)'));
  assert.deepEqual(x.selection, ['SUBSCRIBED', 'RECURSIVEMATCH']);
  assert.equal(x.patterns.length, 2);
  assert.deepEqual(x.returnOpts, { subscribed: false, children: true, specialUse: true, status: ['MESSAGES', 'UNSEEN'] });
  for (const bad of ['(RECURSIVEMATCH) "" *', '(FOO) "" *', '"" * RETURN FOO', '""', '"" ()']) {
    assert.throws(() => parseListArgs(args(bad)), ImapParseError, bad);
  }
});

test('APPEND with MULTIAPPEND and CATENATE', () => {
  const a = parseAppendArgs(args('INBOX (\\Seen) "01-Jan-2020 10:00:00 +0100" {3}\r\nabc {2}\r\nde CATENATE (URL "/INBOX;UID=1" TEXT {1}\r\nx)'));
  assert.equal(a.mailbox.toString(), 'INBOX');
  assert.equal(a.messages.length, 3);
  assert.deepEqual(a.messages[0]!.flags, ['\\Seen']);
  assert.equal(a.messages[0]!.internalDate?.date.toISOString(), '2020-01-01T09:00:00.000Z');
  assert.equal(a.messages[1]!.message?.value.toString(), 'de');
  assert.deepEqual(a.messages[2]!.catenate?.map((p) => p.kind), ['url', 'text']);
  for (const bad of ['INBOX', 'INBOX (\\Seen)', 'INBOX "bad date" {1}\r\nx', 'INBOX CATENATE ()', 'INBOX CATENATE (FOO x)']) {
    assert.throws(() => parseAppendArgs(args(bad)), ImapParseError, bad);
  }
});

test('fuzz: random token sequences only ever raise ImapParseError', () => {
  let seed = 99;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const toks = ['1', '*', '1:*', '$', '0', 'ALL', 'NOT', 'OR', 'FROM', 'HEADER', 'BODY', '"x"', 'NIL', '(', ')', 'SINCE',
    '1-Jan-2000', 'LARGER', 'UID', 'MODSEQ', 'CHARSET', 'UTF-8', 'RETURN', 'FLAGS', '+FLAGS.SILENT', '\\Seen', 'BODY[1.MIME]',
    'BODY.PEEK[HEADER.FIELDS (A)]<0.1>', 'BINARY[1]', 'CHANGEDSINCE', 'VANISHED', 'UNCHANGEDSINCE', 'CATENATE', 'URL', 'TEXT',
    '{1}\r\nx', '"01-Jan-2020 10:00:00 +0000"', 'SUBSCRIBED', 'STATUS', 'MESSAGES', 'FULL', 'KEYWORD', 'OLDER', '5'];
  const parsers = [
    (a: ImapArg[]) => parseSearchArgs(a, { esearch: true }), (a: ImapArg[]) => parseFetchArgs(a, { qresync: true }),
    parseStoreArgs, parseListArgs, parseAppendArgs, (a: ImapArg[]) => parseStatusItems(a[0]),
  ];
  for (let i = 0; i < 4000; i++) {
    let depth = 0;
    const parts: string[] = [];
    for (let n = 1 + rnd(10); n > 0; n--) {
      let t = toks[rnd(toks.length)]!;
      if (t === ')' && depth === 0) t = 'ALL';
      if (t === '(') depth++;
      if (t === ')') depth--;
      parts.push(t);
    }
    while (depth-- > 0) parts.push(')');
    const line = parts.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')');
    let a: ImapArg[];
    try { a = args(line); } catch { continue; }
    for (const parse of parsers) {
      try { parse(a); } catch (e) { assert.ok(e instanceof ImapParseError, `${line}: ${String(e)}`); }
    }
  }
});
