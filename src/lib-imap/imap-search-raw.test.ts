/**
 * The raw-bytes shortcut of SEARCH BODY must never change an answer: whenever it says "cannot
 * match", lib-mail's full matchBody() (Dovecot's decoding) must say no too. Each case below is
 * checked against matchBody, plus the cases where the shortcut must decline to decide.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rawBodyCannotMatch, rawNeedle } from './imap-search-raw.ts';
import { parseMime } from '../lib-mail/mail-mime.ts';
import { matchBody } from '../lib-mail/mail-search.ts';

const hdr = (ct: string, cte = '') => `From: a@example.org\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: ${ct}\r\n${cte ? `Content-Transfer-Encoding: ${cte}\r\n` : ''}\r\n`;

const cases: Array<{ what: string; msg: string | Buffer; needle: string; decides: boolean }> = [
  { what: 'plain ASCII, no needle', msg: hdr('text/plain; charset=utf-8') + 'alpha bravo\r\n', needle: 'needle', decides: true },
  { what: 'plain ASCII, needle in another case', msg: hdr('text/plain') + 'the NeEdLe is here\r\n', needle: 'needle', decides: false },
  { what: 'needle only in the header (BODY does not look there)', msg: hdr('text/plain') .replace('test', 'needle') + 'x\r\n', needle: 'needle', decides: false },
  { what: 'base64 body hiding the needle', msg: hdr('text/plain', 'base64') + Buffer.from('a needle here').toString('base64') + '\r\n', needle: 'needle', decides: false },
  { what: 'quoted-printable soft break inside the needle', msg: hdr('text/plain', 'quoted-printable') + 'a nee=\r\ndle here\r\n', needle: 'needle', decides: false },
  { what: 'UTF-16 text (ASCII bytes that are not ASCII text)', msg: Buffer.concat([Buffer.from(hdr('text/plain; charset=utf-16le')), Buffer.from('needle', 'utf16le')]), needle: 'needle', decides: false },
  { what: 'RFC 2231 charset parameter', msg: hdr("text/plain; charset*=us-ascii''utf-16") + 'x\r\n', needle: 'needle', decides: false },
  { what: 'ISO-2022-JP (7-bit escapes)', msg: hdr('text/plain; charset="ISO-2022-JP"') + 'x\r\n', needle: 'needle', decides: false },
  { what: 'non-ASCII text that folds to the needle (NFKD)', msg: hdr('text/plain; charset=utf-8') + 'caf\u00e9\r\n', needle: 'cafe', decides: false },
  { what: 'full-width letters', msg: hdr('text/plain; charset=utf-8') + '\uff4e\uff45\uff45\uff44\uff4c\uff45\r\n', needle: 'needle', decides: false },
  { what: 'multipart with ASCII-safe charsets, no needle', msg: 'Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nnothing\r\n--b\r\nContent-Type: text/html; charset="windows-1252"\r\n\r\n<p>none</p>\r\n--b--\r\n', needle: 'needle', decides: true },
  { what: 'bare LF message', msg: 'Subject: x\n\nline one\nline two\n', needle: 'one\u0020line', decides: true },
];

test('SEARCH BODY raw shortcut: "cannot match" only where the full decode agrees', () => {
  for (const c of cases) {
    const raw = Buffer.isBuffer(c.msg) ? c.msg : Buffer.from(c.msg, 'utf8');
    const n = rawNeedle(c.needle);
    assert.ok(n, c.what);
    const miss = rawBodyCannotMatch(raw, n);
    assert.equal(miss, c.decides, `${c.what}: decides`);
    if (miss) assert.equal(matchBody(parseMime(raw), c.needle), false, `${c.what}: the full evaluation agrees`);
  }
});

test('needles the raw test cannot judge are left to the full evaluation', () => {
  assert.equal(rawNeedle(''), undefined, 'empty matches every message');
  assert.equal(rawNeedle('caf\u00e9'), undefined, 'non-ASCII needle: NFKD folding');
  assert.equal(rawNeedle('a\r\nb'), undefined, 'CR/LF in the needle');
  const n = rawNeedle('a.b*(c)');
  assert.ok(n, 'regexp characters are escaped');
  assert.equal(rawBodyCannotMatch(Buffer.from(hdr('text/plain') + 'axb c\r\n'), n), true);
  assert.equal(rawBodyCannotMatch(Buffer.from(hdr('text/plain') + 'A.B*(C)\r\n'), n), false);
});
