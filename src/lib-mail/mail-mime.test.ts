/** MIME tree: structure, sizes in CRLF form, and hostile input (deep nesting, many parts, fuzz). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMime, toCrlf, crlfSize, countLines, MIME_MAX_PARTS } from './mail-mime.ts';
import { imapBodyStructure, imapMessageEnvelope } from '../lib-imap/imap-bodystructure.ts';
import { extractSection, extractBinary, findPart } from './mail-section.ts';
import { matchBody, matchText, matchHeader } from './mail-search.ts';
import { UnknownCteError } from './mail-decode.ts';

const CORPUS = join(import.meta.dirname, 'testdata', 'corpus');

test('LF-only files: sizes are the CRLF (virtual, Maildir W=) sizes', () => {
  const lf = Buffer.from('Subject: x\n\nline1\nline2\n');
  assert.equal(crlfSize(lf), lf.length + 4);
  assert.equal(toCrlf(lf).toString(), 'Subject: x\r\n\r\nline1\r\nline2\r\n');
  const crlf = Buffer.from('a\r\nb\r\n');
  assert.equal(toCrlf(crlf), crlf, 'already CRLF: no copy');
  const m = parseMime(lf);
  assert.equal(m.data.length, crlfSize(lf));
  assert.equal(countLines(m.data, m.root.bodyStart, m.root.bodyEnd), 2);
});

test('multipart parts, nested message/rfc822 and section numbers', () => {
  const m = parseMime(readFileSync(join(CORPUS, '04-nested-rfc822.eml')));
  assert.equal(m.root.children.length, 3);
  assert.equal(findPart(m, [2])!.message!.children.length, 2);
  assert.equal(extractSection(m, { path: [2, 1] }).toString(), 'Caf=E9 cr=E8me');
  assert.equal(extractSection(m, { path: [2, 2], text: 'MIME' }).toString(),
    'Content-Type: text/html; charset=iso-8859-1\r\n\r\n');
  assert.equal(extractSection(m, { path: [3], text: 'HEADER' }).toString(), 'Subject: bare inner\r\n\r\n');
  assert.equal(extractSection(m, { path: [3], text: 'TEXT' }).toString(), 'just a body');
  assert.equal(extractBinary(m, [2, 1]).data.toString('latin1'), 'Caf\xe9 cr\xe8me');
  assert.equal(extractSection(m, { path: [9] }).length, 0, 'missing part → empty');
});

test('unknown Content-Transfer-Encoding: BINARY throws the typed error', () => {
  const m = parseMime(readFileSync(join(CORPUS, '08-bad-content-type.eml')));
  assert.throws(() => extractBinary(m, [1]), UnknownCteError);
});

function nestedMultipart(depth: number): Buffer {
  const parts: string[] = ['Subject: deep\r\nContent-Type: multipart/mixed; boundary="b0"\r\n\r\n'];
  for (let i = 0; i < depth; i++) parts.push(`--b${i}\r\nContent-Type: multipart/mixed; boundary="b${i + 1}"\r\n\r\n`);
  parts.push(`--b${depth}\r\n\r\nleaf\r\n--b${depth}--\r\n`);
  for (let i = depth - 1; i >= 0; i--) parts.push(`--b${i}--\r\n`);
  return Buffer.from(parts.join(''));
}

test('10,000-deep multipart nesting: no recursion, cut at Dovecot\'s depth 100, fast', () => {
  const t0 = performance.now();
  const m = parseMime(nestedMultipart(10_000));
  const bs = imapBodyStructure(m, true);
  let depth = 0;
  for (let p = m.root; p.children.length > 0; p = p.children[0]!) depth++;
  assert.equal(depth, 99);
  assert.match(bs.toString(), /"application" "octet-stream" \("boundary" "b99"\)/);
  assert.ok(performance.now() - t0 < 5000, 'bounded time');
});

test('10,000-deep message/rfc822 nesting: no recursion', () => {
  const m = parseMime(Buffer.from('Content-Type: message/rfc822\r\n\r\n'.repeat(10_000) + 'body\r\n'));
  const bs = imapBodyStructure(m, true).toString();
  assert.match(bs, /"application" "octet-stream"/);
  assert.ok(matchBody(m, 'body'));
  assert.equal(imapMessageEnvelope(m).toString(), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
});

test('more than 10,000 parts: capped, memory bounded', () => {
  const body = '--b\r\n\r\nx\r\n'.repeat(30_000);
  const m = parseMime(Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${body}--b--\r\n`));
  assert.ok(m.partCount <= MIME_MAX_PARTS);
  assert.ok(m.root.children.length < MIME_MAX_PARTS);
});

test('hostile headers: 1 MB header line, NUL bytes, no colon, lone CRs', () => {
  const long = Buffer.concat([Buffer.from('Subject: '), Buffer.alloc(1 << 20, 0x61), Buffer.from('\r\nX\0Y: a\0b\r\nnocolon\r\nFrom: a\rb@c\r\n\r\nbody')]);
  const m = parseMime(long);
  assert.equal(m.root.headers.length, 4);
  assert.ok(imapMessageEnvelope(m).length > 1 << 20);
  assert.ok(matchHeader(m, 'Subject', 'aaaa'));
  assert.equal(extractSection(m, { path: [], text: 'TEXT' }).toString(), 'body');
});

test('fuzz: mutated corpus messages never throw anything but UnknownCteError, never hang', () => {
  const corpus = readdirSync(CORPUS).filter((f) => f.endsWith('.eml')).map((f) => readFileSync(join(CORPUS, f)));
  let seed = 4242;
  const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  const tokens = ['--', '\r\n', '\n', ':', ';', '"', '=?', '?=', 'boundary=', 'Content-Type: multipart/mixed; boundary=x\r\n',
    'Content-Type: message/rfc822\r\n', '--x\r\n', '--x--', '(', ')', '<', '>', '@', ',', '\0', '\xff', '=', 'base64', '\r\n\r\n'];
  const t0 = performance.now();
  for (let iter = 0; iter < 1500; iter++) {
    let b = Buffer.from(corpus[rnd(corpus.length)]!);
    for (let k = 1 + rnd(8); k > 0; k--) {
      const at = rnd(b.length + 1);
      const op = rnd(3);
      if (op === 0) b = Buffer.concat([b.subarray(0, at), Buffer.from(tokens[rnd(tokens.length)]!, 'latin1'), b.subarray(at)]);
      else if (op === 1) b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + rnd(20)))]);
      else if (b.length > 0) b[rnd(b.length)] = rnd(256);
    }
    const m = parseMime(b);
    imapBodyStructure(m, true);
    imapBodyStructure(m, false);
    imapMessageEnvelope(m);
    matchText(m, 'x');
    for (const path of [[], [1], [2], [1, 1], [2, 1, 1]]) {
      extractSection(m, { path, ...(path.length ? { text: 'MIME' as const } : { text: 'HEADER.FIELDS' as const, fields: ['From'] }) });
      try { extractBinary(m, path); } catch (e) { if (!(e instanceof UnknownCteError)) throw e; }
    }
  }
  assert.ok(performance.now() - t0 < 20_000);
});
