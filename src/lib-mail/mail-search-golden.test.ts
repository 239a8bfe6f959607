/**
 * SEARCH compared with real Dovecot 2.3.19 on the corpus: for each query the set of matching
 * messages must be the one Dovecot returns (stored in testdata/golden/search.txt; UPDATE_GOLDEN=1
 * rewrites it, and when Dovecot is installed a test re-runs it and checks the file still holds).
 * Queries go through our own parser (ImapParser + parseSearchArgs) and the lib-mail matchers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMime, type MimeMessage } from './mail-mime.ts';
import { matchBody, matchHeader, matchText, messageSentDate } from './mail-search.ts';
import { ImapParser, ImapParseError } from '../lib-imap/imap-parser.ts';
import { parseSearchArgs, type SearchKey } from '../lib-imap/imap-search-args.ts';
import { resolveSeqSet, seqSetHas, numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import { dovecotAvailable, readCorpus, runDovecotSession } from '../../test/harness/dovecot-oracle.ts';

const HERE = import.meta.dirname;
const corpus = readCorpus(join(HERE, 'testdata', 'corpus'));
const GOLDEN = join(HERE, 'testdata', 'golden', 'search.txt');

const lit = (s: string): string => `{${Buffer.byteLength(s)}+}\r\n${s}`;
const QUERIES = [
  'HEADER Subject "Alternative"', 'BODY "pizza"', 'TEXT "bob"',
  `CHARSET UTF-8 FROM ${lit('Jörg')}`, `CHARSET UTF-8 FROM ${lit('müller')}`, `CHARSET UTF-8 SUBJECT ${lit('grüße')}`,
  `CHARSET UTF-8 BODY ${lit('straße')}`, `CHARSET UTF-8 BODY ${lit('café')}`, 'BODY "cafe"', 'BODY "strasse"',
  'TEXT "Searchable word"', 'HEADER To "undisclosed"', 'FROM "alice"', 'TO "pirard"', 'CC "friends"',
  'SUBJECT "folded over several"', 'HEADER Message-ID "folded@"', 'HEADER X-Nothing ""', 'HEADER Content-Type ""',
  'BODY "innermost"', 'BODY "euro"', 'LARGER 500', 'SMALLER 200', 'SENTBEFORE 10-Feb-1994', 'SENTON 8-Feb-1994',
  'SENTSINCE 11-Feb-1994', 'NOT BODY "body"', 'OR SUBJECT plain SUBJECT digest', 'HEADER Content-Type multipart',
  'CHARSET KOI8-R BODY x', 'FROM "Keith"', 'CC "Keith Moore"', 'SUBJECT "HTML only"', 'BODY "uuml"', 'TEXT "Subject"',
  'BODY "report.pdf"', 'TEXT "report.pdf"', 'BODY "aGVsbG8"', 'BODY "hello world"', 'BCC "route1"', 'FROM "example.de"',
  'TO "Andr"', `CHARSET UTF-8 TO ${lit('André')}`, `CHARSET UTF-8 FROM ${lit('andré')}`, 'SUBJECT "caf"',
  'BODY "Epilogue"', 'BODY "preamble"', 'BODY "multi-part message"', 'TEXT "bare inner"', 'BODY "inner body"',
  'HEADER SUBJECT "inner subject"', 'BODY "inner subject"', 'SUBJECT ""', 'BODY ""', 'HEADER From "Folded Name"',
  'SENTBEFORE 1-Jan-2000', '(OR FROM alice FROM bob) NOT SUBJECT Fwd', '1:3,7 BODY "part"', 'CHARSET X-UNKNOWN BODY x',
];

function dovecotAnswers(): string[] {
  const cmds = QUERIES.map((q) => `SEARCH RETURN (ALL) ${q}`);
  const lines = runDovecotSession(corpus.map((m) => m.data), cmds).toString('latin1').split('\r\n');
  return QUERIES.map((_, i) => {
    const tag = `t${i + 1}`;
    const done = lines.find((l) => l.startsWith(tag + ' '))!;
    if (!done.startsWith(`${tag} OK`)) return done.replace(/^\S+ (\S+ (?:\[[^\]]*\])?).*$/, '$1').trim();
    const es = lines.find((l) => l.startsWith(`* ESEARCH (TAG "${tag}")`))!;
    return es.replace(/^\* ESEARCH \(TAG "\w+"\)( ALL)? ?/, '') || '(none)';
  });
}

function matches(key: SearchKey, msg: MimeMessage, seq: number, max: number): boolean {
  // iterative evaluation is not needed here: corpus queries are shallow
  switch (key.op) {
    case 'all': return true;
    case 'header': return matchHeader(msg, key.field, key.value);
    case 'body': return matchBody(msg, key.value);
    case 'text': return matchText(msg, key.value);
    case 'size': return key.cmp === 'larger' ? msg.data.length > key.size : msg.data.length < key.size;
    case 'date': {
      assert.equal(key.field, 'sent');
      const d = messageSentDate(msg)?.day.getTime() ?? 0;
      const t = key.date.getTime();
      return key.cmp === 'before' ? d < t : key.cmp === 'on' ? d === t : d >= t;
    }
    case 'seqset': return seqSetHas(resolveSeqSet(key.set, max), seq);
    case 'not': return !matches(key.key, msg, seq, max);
    case 'or': return matches(key.a, msg, seq, max) || matches(key.b, msg, seq, max);
    case 'and': return key.keys.every((k) => matches(k, msg, seq, max));
    default: throw new Error(`key ${key.op} not used in the corpus queries`);
  }
}

function ourAnswer(q: string, msgs: MimeMessage[]): string {
  const p = new ImapParser();
  p.push(Buffer.from(`t SEARCH RETURN (ALL) ${q}\r\n`));
  let ev = p.next();
  while (ev?.type === 'literal') { p.acceptLiteral(); ev = p.next(); }
  assert.ok(ev?.type === 'command', `parsed ${q}`);
  try {
    const prog = parseSearchArgs(ev.args, { esearch: true });
    const hits: number[] = [];
    msgs.forEach((m, i) => { if (matches(prog.key, m, i + 1, msgs.length)) hits.push(i + 1); });
    return hits.length > 0 ? numbersToSeqSet(hits) : '(none)';
  } catch (e) {
    if (e instanceof ImapParseError) return `${e.response} [${e.code?.split(' ')[0] ?? ''}]`;
    throw e;
  }
}

if (process.env.UPDATE_GOLDEN === '1' && dovecotAvailable()) {
  const ans = dovecotAnswers();
  writeFileSync(GOLDEN, QUERIES.map((q, i) => `${JSON.stringify(q)}\t${ans[i]}`).join('\n') + '\n');
}

const golden = new Map(readFileSync(GOLDEN, 'utf8').trim().split('\n').map((l) => {
  const [q, a] = l.split('\t');
  return [JSON.parse(q!) as string, a!];
}));
const parsed = corpus.map((m) => parseMime(m.data));

for (const q of QUERIES) {
  test(`SEARCH ${q.replace(/\r\n/g, ' ')} gives Dovecot's result`, () => {
    assert.ok(golden.has(q), 'golden answer recorded (UPDATE_GOLDEN=1)');
    assert.equal(ourAnswer(q, parsed), golden.get(q));
  });
}

test('stored SEARCH goldens still equal the installed Dovecot answers', { skip: !dovecotAvailable() }, () => {
  const ans = dovecotAnswers();
  QUERIES.forEach((q, i) => assert.equal(ans[i], golden.get(q), q));
});
