/**
 * mail-mime-downgrade: 8bit → quoted-printable (RFC 6152, RFC 2045 §6.7). Every case is
 * checked twice: no 8-bit byte and no line over 76+1 characters in the result, and Python's
 * email package (an independent MIME decoder) gets back the original bytes of every part.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { downgradeTo7bit, hasEightBit } from './mail-mime-downgrade.ts';

/** Decoded payload of each leaf part, as Python's email package sees them (hex, in walk order). */
function pythonParts(msg: Buffer): string[] {
  const py = `
import sys, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.compat32)
for p in m.walk():
    if p.is_multipart() or p.get_content_type() == 'message/rfc822':
        continue
    print((p.get_payload(decode=True) or b'').hex())
`;
  return execFileSync('python3', ['-c', py], { input: msg }).toString().trim().split('\n');
}

function check7bit(out: Buffer): void {
  assert.ok(!hasEightBit(out), '8-bit byte left');
  for (const l of out.toString('latin1').split('\n')) assert.ok(l.length <= 998, 'line over 998');
}

test('single text part: CTE replaced by quoted-printable, decodes to the same bytes, lines ≤ 76', () => {
  const body = `Привет — ${'ü'.repeat(100)}\nline with = sign and trailing space \ntab\tinside\n.\n`;
  const msg = Buffer.from(`Subject: x\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${body}`);
  const out = downgradeTo7bit(msg);
  check7bit(out);
  const s = out.toString('latin1');
  assert.match(s, /^Subject: x\nMIME-Version: 1\.0\nContent-Type: text\/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n/);
  for (const l of s.slice(s.indexOf('\n\n') + 2).split('\n')) assert.ok(l.length <= 76, l);
  assert.match(s, /trailing space=20\n/);
  assert.deepEqual(pythonParts(out), [Buffer.from(body).toString('hex')]);
});

test('no MIME headers at all: Content-Transfer-Encoding and MIME-Version are added', () => {
  const msg = Buffer.from('From: a@b\nSubject: plain\n\nGrüße\n');
  const out = downgradeTo7bit(msg);
  check7bit(out);
  assert.equal(out.toString(), 'From: a@b\nSubject: plain\nContent-Transfer-Encoding: quoted-printable\nMIME-Version: 1.0\n\nGr=C3=BC=C3=9Fe\n');
});

test('7-bit messages and already-encoded parts are returned unchanged (same bytes)', () => {
  const seven = Buffer.from('Subject: x\n\nplain ascii\n');
  assert.equal(downgradeTo7bit(seven), seven);
  const b64 = Buffer.from('Subject: x\nContent-Transfer-Encoding: base64\n\nR3LDvMOfZQ==\n');
  assert.equal(downgradeTo7bit(b64).toString(), b64.toString());
});

test('multipart/mixed with an 8-bit text part, a base64 part and an 8-bit message/rfc822 part', () => {
  const inner = 'From: x@y\nSubject: inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nвложенное сообщение\n';
  const msg = Buffer.from([
    'From: a@b', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed;', '\tboundary="==b1=="', 'Content-Transfer-Encoding: 8bit', '',
    'preamble', '--==b1==', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '', 'Текст письма', '',
    '--==b1==', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', 'AAEC', '',
    '--==b1==', 'Content-Type: message/rfc822', 'Content-Transfer-Encoding: 8bit', '', inner, '--==b1==--', 'epilogue', '',
  ].join('\n'));
  const out = downgradeTo7bit(msg);
  check7bit(out);
  const s = out.toString('latin1');
  assert.match(s, /Content-Type: multipart\/mixed;\n\tboundary="==b1=="\nContent-Transfer-Encoding: 7bit\n/);
  assert.match(s, /Content-Type: message\/rfc822\nContent-Transfer-Encoding: 7bit\n/);
  assert.match(s, /\nAAEC\n/);
  assert.ok(s.includes('\npreamble\n--==b1==\n') && s.endsWith('--==b1==--\nepilogue\n'));
  assert.deepEqual(pythonParts(out), [
    Buffer.from('Текст письма\n').toString('hex'),
    '000102',
    Buffer.from('вложенное сообщение\n').toString('hex'),
  ]);
});

test('hostile input: deep nesting, a boundary that never closes, CRLF line ends, NUL — no crash, 7-bit out', () => {
  let deep = 'Subject: ü\n\nü\n';
  for (let i = 0; i < 60; i++) deep = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${deep}--b${i}--\n`;
  check7bit(downgradeTo7bit(Buffer.from(deep)));
  check7bit(downgradeTo7bit(Buffer.from('Content-Type: multipart/mixed; boundary=zz\n\n--zz\n\nüüü\n')));
  const crlf = downgradeTo7bit(Buffer.from('Subject: x\r\n\r\nGrüße\r\nzwei\0\r\n'));
  check7bit(crlf);
  assert.match(crlf.toString(), /Gr=C3=BC=C3=9Fe\nzwei=00\n$/);
  check7bit(downgradeTo7bit(Buffer.from('x'.repeat(200000) + 'ü\n')));
});
