/**
 * queue-content: LF text → Postfix's N/L records → the same bytes, whatever the chunking, line
 * lengths (2048 is the cut), an unterminated last line, pointer records, and a reader window
 * smaller than a record; and Postfix's errors for malformed records.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentEncoder, ContentReader, pointerRecord, readContent } from './queue-content.ts';
import { encodeRecord, recordAt, RecordError } from './record.ts';

function encode(text: Buffer, cuts: number[]): Buffer {
  const e = new ContentEncoder();
  const out: Buffer[] = [];
  let at = 0;
  for (const c of [...cuts, text.length]) { out.push(e.encode(text.subarray(at, c))); at = c; }
  out.push(e.end());
  return Buffer.concat(out);
}

const X = encodeRecord('X', '');
const TEXTS = [
  Buffer.from(''),
  Buffer.from('\n'),
  Buffer.from('a\nb\n\nc\n'),
  Buffer.from('no line end at all'),
  Buffer.from('last line without end\nhere'),
  Buffer.from('x'.repeat(2048) + '\n' + 'y'.repeat(2049) + '\n' + 'z'.repeat(4096) + '\n' + 'w'.repeat(5000)),
  Buffer.from('8-bit \u00e9t\u00e9 \0 NUL and \r CR stay\n'),
];

test('round trip: any chunking, long lines cut at 2048 as L pieces, an unterminated last line', () => {
  for (const t of TEXTS) {
    for (const cuts of [[], [1], [3, 7], [2047, 2048, 2049], [Math.floor(t.length / 2)]].map((c) => c.filter((n) => n <= t.length))) {
      const recs = encode(t, cuts);
      const file = Buffer.concat([recs, X]);
      assert.ok(readContent(file, 0).equals(t), `${JSON.stringify(t.subarray(0, 30).toString())} cut at ${cuts}`);
    }
  }
  // The cut is Postfix's: a 4096-byte line is L(2048) N(2048).
  const recs = encode(Buffer.from('z'.repeat(4096) + '\n'), []);
  const r1 = recordAt(recs, 0);
  const r2 = recordAt(recs, r1.dataOffset + r1.data.length);
  assert.deepEqual([r1.type, r1.data.length, r2.type, r2.data.length], ['L', 2048, 'N', 2048]);
});

test('pointer records are followed (0 = placeholder); the streaming reader gives the same bytes with a small window', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qcontent-'));
  try {
    const head = Buffer.from('Added: first\n');
    const body = Buffer.from('Subject: s\n\n' + 'line '.repeat(3000) + '\nend\n');
    // [p → H] [body records] X [H records] [p → after the first pointer]
    const bodyRecs = encode(body, []);
    const hAt = 17 + bodyRecs.length + X.length;
    const file = Buffer.concat([pointerRecord(hAt), bodyRecs, X, encode(head, []), pointerRecord(17)]);
    const want = Buffer.concat([head, body]);
    assert.ok(readContent(file, 0).equals(want));
    assert.ok(readContent(Buffer.concat([pointerRecord(0), bodyRecs, X]), 0).equals(body), 'placeholder');
    const f = join(dir, 'qf');
    writeFileSync(f, file);
    const fd = openSync(f, 'r');
    try {
      for (const window of [16, 100, 65536]) {
        const r = new ContentReader(fd, 0, file.length, window);
        const got: Buffer[] = [];
        for (let b = await r.next(); b; b = await r.next()) got.push(b);
        assert.ok(Buffer.concat(got).equals(want), `window ${window}`);
      }
    } finally { closeSync(fd); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('malformed records: Postfix\'s texts', () => {
  const bits = Buffer.from([0x4e, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.throws(() => recordAt(bits, 0), /^RecordError: too many length bits, record type 78$/);
  assert.throws(() => readContent(Buffer.concat([encodeRecord('N', 'a'), encodeRecord('E', '')]), 0), /unexpected record type 'E' in message content/);
  assert.throws(() => readContent(encodeRecord('N', 'a'), 0), /missing end record/);
  assert.throws(() => recordAt(Buffer.from([0x4e, 0x05, 0x61]), 0), (e: unknown) => e instanceof RecordError && /unexpected EOF in data, record type 78 length 5/.test(e.message));
  // A pointer into the middle of a record, and one that points at itself (a loop, not a hang).
  const back = Buffer.concat([encodeRecord('N', 'x'), pointerRecord(1)]); // p → offset 1 (inside N): garbage
  assert.throws(() => readContent(back, 0), RecordError);
  const self = Buffer.concat([encodeRecord('w', ''), pointerRecord(0)]);
  self.write('2'.padStart(15, ' '), 4, 'latin1'); // p at 2 → 2: jumps to itself
  assert.throws(() => readContent(self, 0), /too many reverse jump records/);
});
