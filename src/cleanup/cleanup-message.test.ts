import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CleanupMessage, type HeaderClass } from './cleanup-message.ts';
import { setLogSink } from '../util/msg.ts';

setLogSink(() => {});

interface Run { out: string; headers: [HeaderClass, string][]; body: string[] }

/** Feed `msg` in chunks of `size` bytes; record what the handler saw. */
async function feed(msg: Buffer | string, size: number, o: { limit?: number; inspect?: boolean; add?: string } = {}): Promise<Run> {
  const out: Buffer[] = [];
  const headers: [HeaderClass, string][] = [];
  const body: string[] = [];
  const m = new CleanupMessage({
    queueId: 'Q',
    emit: async (b) => { out.push(Buffer.from(b)); },
    onHeadersEnd: () => Buffer.from(o.add ?? ''),
    header: async (h, _n, cls) => { headers.push([cls, h.toString('latin1')]); return h; },
    bodyLine: async (l) => { body.push(l.toString('latin1')); return l; },
  }, o.limit ?? 102400, 51200, o.inspect ?? true);
  const b = Buffer.isBuffer(msg) ? msg : Buffer.from(msg, 'latin1');
  for (let i = 0; i < b.length; i += size) await m.write(b.subarray(i, i + size));
  await m.end();
  return { out: Buffer.concat(out).toString('latin1'), headers, body };
}

const MIME = 'Subject: s\nContent-Type: multipart/mixed;\n boundary="outer"\n\npre\n--outer\nContent-Type: text/plain\n\nhello\n'
  + '--outer\nContent-Type: message/rfc822\n\nFrom: inner@example.org\nSubject: inner\n\ninner body\n--outer--\nepilogue\n';

test('MIME: primary, multipart part headers and attached-message headers are classified as Postfix does', async () => {
  for (const size of [1, 3, 7, 64, 100000]) {
    const r = await feed(MIME, size);
    assert.equal(r.out, MIME, `unchanged output (chunk ${size})`);
    assert.deepEqual(r.headers.map(([c, h]) => `${c}:${h.split(':')[0]}`), [
      'primary:Subject', 'primary:Content-Type', 'multipart:Content-Type', 'multipart:Content-Type', 'nested:From', 'nested:Subject',
    ], `chunk ${size}`);
    // Boundary lines are not body lines; the empty line after each header block is.
    assert.deepEqual(r.body, ['\n', 'pre\n', '\n', 'hello\n', '\n', '\n', 'inner body\n', 'epilogue\n']);
  }
});

test('the missing headers go at the end of the header block, also for a message without body or blank line', async () => {
  assert.equal((await feed('Subject: x\n\nbody\n', 4, { add: 'Date: d\n' })).out, 'Subject: x\nDate: d\n\nbody\n');
  assert.equal((await feed('Subject: x', 4, { add: 'Date: d\n' })).out, 'Subject: x\nDate: d\n');
  assert.equal((await feed('', 4, { add: 'Date: d\n' })).out, 'Date: d\n');
  assert.equal((await feed('not a header line\nSubject: x\n', 5, { add: 'Date: d\n' })).out, 'Date: d\nnot a header line\nSubject: x\n');
});

test('hostile content: CRLF, NUL, 8-bit and over-long lines survive; an over-long header is cut at header_size_limit', async () => {
  const raw = Buffer.concat([Buffer.from('Subject: \xe9\x00\r\n\r\nline\x00\xff\r\n', 'latin1'), Buffer.alloc(2_000_000, 0x61), Buffer.from('\n')]);
  const r = await feed(raw, 8192, { inspect: false });
  assert.equal(r.out, raw.toString('latin1'));
  const long = `X-Long: ${'b'.repeat(1_000_000)}\nSubject: after\n\nbody\n`;
  const t = await feed(long, 65536, { limit: 1000 });
  assert.equal(t.headers[0]![1].length, 1001, 'the first 1000 bytes of the line and its newline');
  assert.equal(t.headers[1]![1], 'Subject: after\n');
  assert.ok(t.out.endsWith('Subject: after\n\nbody\n'));
});

test('a long body line under body checks goes out in pieces (BODY_PIECE), byte for byte; a boundary after it still counts', async () => {
  const msg = `Subject: s\nContent-Type: multipart/mixed; boundary="b"\n\n--b\n\n${'z'.repeat(1_000_000)}\n--b\nContent-Type: text/plain\n\nx\n--b--\nend`;
  const r = await feed(msg, 8192);
  assert.equal(r.out, msg + '\n');
  // body_checks saw the first piece only (then body_checks_size_limit = 51200 was reached).
  const pieces = r.body.filter((l) => l.startsWith('z'));
  assert.ok(pieces.length === 1 && pieces[0]!.length <= 65536 + 8192, `pieces: ${pieces.map((p) => p.length).join(' ')}`);
  // The boundary after the long line opens the next part's header block.
  assert.deepEqual(r.headers.at(-1), ['multipart', 'Content-Type: text/plain\n']);
});
