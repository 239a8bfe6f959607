import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataDecoder, dotStuff } from './smtp-data-stream.ts';

function decode(input: string | Buffer, chunkSize = 0, forbid = false) {
  const out: Buffer[] = [];
  let bare = 0;
  const d = new DataDecoder({ out: (b) => out.push(Buffer.from(b)), forbidBareLf: forbid, onBareLf: () => { bare++; } });
  const buf = typeof input === 'string' ? Buffer.from(input, 'latin1') : input;
  let consumed = 0;
  if (chunkSize <= 0) consumed = d.feed(buf);
  else {
    for (let i = 0; i < buf.length && !d.done; i += chunkSize) consumed = i + d.feed(buf.subarray(i, i + chunkSize));
  }
  return { content: Buffer.concat(out).toString('latin1'), done: d.done, rest: buf.subarray(consumed).toString('latin1'), bare, size: d.size };
}

test('CRLF content becomes LF, dots are unstuffed, CRLF.CRLF ends the data', () => {
  for (const cs of [0, 1, 2, 3, 7]) {
    const r = decode('Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n', cs);
    assert.equal(r.content, 'Subject: x\n\n.leading dot\n', `chunk ${cs}`);
    assert.equal(r.done, true);
    if (cs === 0) assert.equal(r.rest, 'QUIT\r\n');
  }
});

test('SMTP smuggling: <LF>.<LF>, <LF>.<CR><LF> and <CR><LF>.<LF> never end the data', () => {
  for (const seq of ['x\n.\nMAIL FROM:<a@b>\r\n', 'x\n.\r\nMAIL FROM:<a@b>\r\n', 'x\r\n.\nMAIL FROM:<a@b>\r\n', 'x\r.\rMAIL\r\n']) {
    const r = decode(seq);
    assert.equal(r.done, false, JSON.stringify(seq));
  }
  const r = decode('x\n.\r\n', 0, true);
  assert.equal(r.bare, 1, 'bare LF reported once when forbidden');
  assert.equal(r.done, false);
});

test('bare CR is data; 8-bit and NUL bytes pass unchanged', () => {
  const body = Buffer.from([0x61, 0x0d, 0x62, 0x00, 0xff, 0xe9, 0x0d, 0x0a]);
  const r = decode(Buffer.concat([body, Buffer.from('.\r\n')]));
  assert.equal(r.done, true);
  assert.deepEqual(Buffer.from(r.content, 'latin1'), Buffer.from([0x61, 0x0d, 0x62, 0x00, 0xff, 0xe9, 0x0a]));
});

test('a 1 MB line without LF is passed on in pieces and stays intact', () => {
  const long = 'A'.repeat(1 << 20);
  const r = decode('.' + long + '\r\n.\r\n', 4096);
  assert.equal(r.done, true);
  assert.equal(r.content, long + '\n');
});

test('dotStuff is the inverse of the decoder', () => {
  const samples = ['a\n.b\n..c\n.\n', 'no final newline', '', '.\n', 'x\r\ny\n'];
  for (const s of samples) {
    const wire = dotStuff(Buffer.from(s));
    const r = decode(wire);
    assert.equal(r.done, true);
    const expect = s.replace(/\r\n/g, '\n') + (s.length && !s.endsWith('\n') ? '\n' : '');
    assert.equal(r.content, expect, JSON.stringify(s));
  }
});

test('discard (past message_size_limit): nothing more comes out, a long line is not kept, the end of data is still found', () => {
  const out: Buffer[] = [];
  const d = new DataDecoder({ out: (b) => out.push(Buffer.from(b)), forbidBareLf: false });
  d.feed(Buffer.from('Subject: x\r\n\r\nkept\r\n'));
  d.discard = true;
  const block = Buffer.alloc(1 << 20, 0x79);
  for (let i = 0; i < 20; i++) assert.equal(d.feed(block), block.length);
  d.feed(Buffer.from('\r\nmore\r\n..\r\n'));
  assert.equal(d.done, false);
  const tail = Buffer.from('.\r\nQUIT\r\n');
  assert.equal(d.feed(tail), 3);
  assert.equal(d.done, true);
  assert.equal(Buffer.concat(out).toString(), 'Subject: x\n\nkept\n');
});
