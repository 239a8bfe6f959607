/**
 * imap-append-save: the saved form of APPENDed messages (Dovecot's mail_save_crlf = no and its
 * binary converter for literal8, RFC 3516 §4.4); compared with real Dovecot's files in
 * test/interop/imap-conformance-vs-dovecot.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertBinaryParts, crlfToLf, saveForm } from './imap-append-save.ts';

test('CRLF becomes LF; bare CR and bare LF stay', () => {
  assert.equal(crlfToLf(Buffer.from('a\r\nb\rc\nd\r\n\r\n')).toString(), 'a\nb\rc\nd\n\n');
  const same = Buffer.from('no line ends');
  assert.equal(crlfToLf(same), same);
  assert.equal(crlfToLf(Buffer.from('\r\r\n')).toString(), '\r\n');
});

test('binary parts become base64 in 76-character lines; bare LFs inside binary data are data', () => {
  const bin = Buffer.from([0, 10, 13, 10, 0xff, 10]);
  const msg = Buffer.concat([
    Buffer.from('Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: Binary\r\nX: 1\r\n\r\n'),
    bin, Buffer.from('\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n'),
  ]);
  const out = convertBinaryParts(msg).toString('latin1');
  assert.equal(out, `Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\nX: 1\r\n\r\n${bin.toString('base64')}\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n`);
  const long = Buffer.alloc(200, 0xab);
  const single = convertBinaryParts(Buffer.concat([Buffer.from('Content-Transfer-Encoding: binary\r\n\r\n'), long])).toString('latin1');
  const lines = single.split('\r\n\r\n')[1]!.split('\r\n');
  assert.deepEqual(lines.map((l) => l.length), [76, 76, 76, 40]);
  assert.equal(Buffer.from(lines.join(''), 'base64').equals(long), true);
});

test('without literal8 or without binary parts nothing is converted; saveForm ends in LF form', () => {
  const m = Buffer.from('Content-Transfer-Encoding: binary\r\n\r\nx\0y\r\n', 'latin1');
  assert.equal(saveForm(m, { literal8: false }).toString('latin1'), 'Content-Transfer-Encoding: binary\n\nx\0y\n');
  assert.equal(saveForm(m, { literal8: true }).toString('latin1'), `Content-Transfer-Encoding: base64\n\n${Buffer.from('x\0y\r\n', 'latin1').toString('base64')}`);
  const q = Buffer.from('Content-Transfer-Encoding: quoted-printable\r\n\r\n=41\r\n');
  assert.equal(convertBinaryParts(q), q);
});

test('hostile: 5,000 binary parts, nesting, and a missing end boundary are converted or left alone, bounded', () => {
  const parts = Array.from({ length: 5000 }, () => '--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\r\n').join('');
  const big = Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${parts}`, 'latin1');
  const t0 = performance.now();
  const out = convertBinaryParts(big);
  assert.ok(performance.now() - t0 < 5000);
  assert.ok(out.toString('latin1').includes('Content-Transfer-Encoding: base64'));
  const nested = Buffer.from('Content-Type: message/rfc822\r\n\r\nContent-Transfer-Encoding: binary\r\n\r\n\0\0\r\n', 'latin1');
  assert.match(convertBinaryParts(nested).toString('latin1'), /\r\n\r\nContent-Transfer-Encoding: base64\r\n\r\nAAANCg==$/);
});
