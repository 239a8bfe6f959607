/**
 * dotStuff(content, { keepCr: true }): what the smtp/lmtp client puts on the wire for a queue
 * file's content (and dotStuff() without it, for pop3d), checked
 * against the DATA decoder smtpd uses (the receiving side must get back exactly what was queued).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataDecoder, dotStuff } from './smtp-data-stream.ts';

const smtpDotStuff = (b: Buffer): Buffer => dotStuff(b, { keepCr: true });

function receive(wire: Buffer): string {
  const out: Buffer[] = [];
  const d = new DataDecoder({ out: (b) => out.push(Buffer.from(b)), forbidBareLf: false, onBareLf: () => {} });
  d.feed(wire);
  assert.equal(d.done, true, 'the data ends with <CRLF>.<CRLF>');
  return Buffer.concat(out).toString('latin1');
}

test('LF lines become CRLF lines; a leading dot is doubled (RFC 5321 §4.5.2); ".\\r\\n" ends the data', () => {
  assert.equal(smtpDotStuff(Buffer.from('a\n.b\n..c\n.\n')).toString('latin1'), 'a\r\n..b\r\n...c\r\n..\r\n.\r\n');
  assert.equal(smtpDotStuff(Buffer.from('')).toString('latin1'), '.\r\n');
  assert.equal(smtpDotStuff(Buffer.from('no final newline')).toString('latin1'), 'no final newline\r\n.\r\n');
});

test('a CR right before the LF is message content and is sent as it is (as Postfix): "x\\r\\n" → "x\\r\\r\\n"', () => {
  assert.equal(smtpDotStuff(Buffer.from('x\r\ny\n')).toString('latin1'), 'x\r\r\ny\r\n.\r\n');
  assert.equal(smtpDotStuff(Buffer.from('ends in CR\r')).toString('latin1'), 'ends in CR\r\r\n.\r\n');
});

test('for pop3d (Maildir files may have CRLF already), a CR before the LF is dropped', () => {
  assert.equal(dotStuff(Buffer.from('x\r\n.y\r\n')).toString('latin1'), 'x\r\n..y\r\n.\r\n');
});

test('what the receiver decodes is what was queued', () => {
  for (const s of ['a\n.b\n..c\n.\n', 'x\r\ny\n', 'cr\r\r\n.\r\n', 'bare\rcr\n', '\n\n.\n']) {
    assert.equal(receive(smtpDotStuff(Buffer.from(s, 'latin1'))), s, JSON.stringify(s));
  }
});
