/**
 * Golden comparison with real Dovecot 2.3.19: for every message of testdata/corpus/ our FETCH
 * answer (ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[1.MIME], BODY[HEADER.FIELDS (SUBJECT)],
 * BINARY.SIZE[1]) must equal Dovecot's byte for byte. Dovecot's answers are stored in
 * testdata/golden/ (UPDATE_GOLDEN=1 rewrites them); when Dovecot is installed a second test runs it
 * again and asserts the stored goldens are still what it says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseMime } from './mail-mime.ts';
import { imapBodyStructure, imapMessageEnvelope } from '../lib-imap/imap-bodystructure.ts';
import { applyPartial, extractBinary, extractSection } from './mail-section.ts';
import { UnknownCteError } from './mail-decode.ts';
import { imapFetchResponse, imapLiteral, imapLiteral8 } from '../lib-imap/imap-compose.ts';
import { ImapParser } from '../lib-imap/imap-parser.ts';
import { parseFetchArgs } from '../lib-imap/imap-fetch-args.ts';
import { dovecotAvailable, readCorpus, runDovecotSession, splitByTag } from '../../test/harness/dovecot-oracle.ts';

const HERE = import.meta.dirname;
const CORPUS = join(HERE, 'testdata', 'corpus');
const GOLDEN = join(HERE, 'testdata', 'golden');
/**
 * The FETCHes asked of Dovecot and of us; goldens are <message>.fetch and <message>.fetch2.
 * BINARY[] comes before BINARY.SIZE on purpose: Dovecot answers a BINARY[] that follows a
 * BINARY.SIZE from its binary cache and then always uses literal8 (index-mail-binary.c).
 */
const FETCHES: [suffix: string, command: string][] = [
  ['fetch', 'FETCH 1 (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY.PEEK[1.MIME] ' +
    'BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[1])'],
  ['fetch2', 'FETCH 1 (BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[2.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] ' +
    'BODY.PEEK[HEADER.FIELDS.NOT (FROM TO DATE)] BODY.PEEK[TEXT]<5.20> BODY.PEEK[1.1] BINARY.PEEK[1] BINARY.PEEK[]<0.30> ' +
    'BODY.PEEK[3] BINARY.SIZE[2] BODY.PEEK[1]<0.10>)'],
];

/** Our answer to a FETCH command line, through our parser and fetch-att grammar. */
function ourFetch(raw: Buffer, command: string): Buffer {
  const p = new ImapParser();
  p.push(Buffer.from(`t ${command}\r\n`));
  const ev = p.next();
  assert.ok(ev?.type === 'command');
  const { atts } = parseFetchArgs(ev.args);
  const msg = parseMime(raw);
  const items: [string, Buffer][] = [];
  // Dovecot writes RFC822.SIZE first (it comes from its index), the rest in the order asked.
  if (atts.some((a) => a.kind === 'simple' && a.name === 'RFC822.SIZE')) items.push(['RFC822.SIZE', Buffer.from(String(msg.data.length))]);
  for (const a of atts) {
    try {
      if (a.kind === 'simple') {
        if (a.name === 'ENVELOPE') items.push(['ENVELOPE', imapMessageEnvelope(msg)]);
        else if (a.name === 'BODYSTRUCTURE') items.push(['BODYSTRUCTURE', imapBodyStructure(msg, true)]);
        else if (a.name === 'BODY') items.push(['BODY', imapBodyStructure(msg, false)]);
      } else if (a.kind === 'body') {
        const data = extractSection(msg, a.section);
        items.push([a.responseName, imapLiteral(a.partial ? applyPartial(data, a.partial.origin, a.partial.octets) : data)]);
      } else if (a.kind === 'binary') {
        const b = extractBinary(msg, a.path);
        const data = a.partial ? applyPartial(b.data, a.partial.origin, a.partial.octets) : b.data;
        items.push([a.responseName, b.literal8 ? imapLiteral8(data) : imapLiteral(data)]);
      } else {
        items.push([a.responseName, Buffer.from(String(extractBinary(msg, a.path).data.length))]);
      }
    } catch (e) {
      // Dovecot ends the FETCH response at the failing item and answers NO [UNKNOWN-CTE]
      if (!(e instanceof UnknownCteError)) throw e;
      break;
    }
  }
  return imapFetchResponse(1, items);
}

function dovecotFetch(raw: Buffer, command: string): Buffer {
  const out = splitByTag(runDovecotSession([raw], [command])).get('t1');
  assert.ok(out, 'dovecot answered the FETCH');
  const s = out.toString('latin1');
  const tagged = s.lastIndexOf('t1 ');
  return Buffer.from(s.slice(0, tagged), 'latin1');
}

const corpus = readCorpus(CORPUS);

const golden = (name: string, suffix: string): string => join(GOLDEN, name.replace(/\.eml$/, '.' + suffix));

if (process.env.UPDATE_GOLDEN === '1' && dovecotAvailable()) {
  for (const m of corpus) for (const [suffix, cmd] of FETCHES) writeFileSync(golden(m.name, suffix), dovecotFetch(m.data, cmd));
}

for (const m of corpus) {
  for (const [suffix, cmd] of FETCHES) {
    test(`${suffix} of ${m.name} matches Dovecot 2.3 byte for byte`, () => {
      const gf = golden(m.name, suffix);
      assert.ok(existsSync(gf), `golden ${gf} missing: run with UPDATE_GOLDEN=1`);
      const ours = ourFetch(m.data, cmd).toString('latin1');
      const theirs = readFileSync(gf).toString('latin1');
      if (ours !== theirs) {
        let i = 0;
        while (ours[i] === theirs[i]) i++;
        const ctx = (s: string): string => JSON.stringify(s.slice(Math.max(0, i - 80), i + 80));
        assert.fail(`differs at byte ${i}:\n  ours:    ${ctx(ours)}\n  dovecot: ${ctx(theirs)}`);
      }
    });
  }
}

test('stored goldens still equal what the installed Dovecot answers', { skip: !dovecotAvailable() }, () => {
  for (const m of corpus) {
    for (const [suffix, cmd] of FETCHES) {
      assert.equal(dovecotFetch(m.data, cmd).toString('latin1'), readFileSync(golden(m.name, suffix)).toString('latin1'), m.name);
    }
  }
});
