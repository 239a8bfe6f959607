/**
 * Fuzz regressions of the queue-file target (src/global/queue-file-reader.ts).
 *
 * 1. A queue file whose size record gives an empty content
 * segment (content length 0) made QueueFile.contentStream() throw a RangeError from
 * fs.createReadStream({ start: 1, end: 0 }) — Node 24 refuses start > end — instead of
 * returning an empty stream. Found by `npm run fuzz -- queue-file`; the input below is the
 * fuzzer's, a real queue file with its size record edited to "240 0". An empty message body
 * written by QueueFileWriter reaches the same line.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QueueFile, QueueFileError } from '../../../src/global/queue-file-reader.ts';
import { QueueFileWriter } from '../../../src/global/queue-file-writer.ts';
import { MailQueue } from '../../../src/global/mail-queue.ts';

const INPUT = 'Q08gICAgICAgICAgICAyNDAgICAgICAgICAgICAgICAwICAgICAgICAgICAgICAgMiAgICAgICAgICAgICAgIDAgICAgICAgICAgICAgICAwVBExNzk1ODA4NjE2IDQ0NzAwMFMAQQtsb2dfaWRlbnQ9eE8OQUBFWEFNUExFLlRFU1RuAjEybxVyZmM4MjI7YUBleGFtcGxlLnRlc3REDmFAZXhhbXBsZS50ZXN0Tw5CQEVYQU1QTEUuVEVTVG4CMTJvFXJmYzgyMjtiQGV4YW1wbGUudGVzdFIOYkBleGFtcGxlLnRlc3RNgICAgIAARQA=';

test('a queue file with an empty content segment streams no bytes (or is refused with QueueFileError)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-reg-'));
  try {
    const f = join(dir, 'qf');
    writeFileSync(f, Buffer.from(INPUT, 'base64'));
    let qf: QueueFile;
    try {
      qf = await QueueFile.open(f, 'FUZZ');
    } catch (e) {
      assert.ok(e instanceof QueueFileError, `only QueueFileError, got ${String(e)}`);
      return;
    }
    assert.equal(qf.contentLength, 0);
    assert.equal((await qf.content()).length, 0);
    const chunks: Buffer[] = [];
    for await (const c of qf.contentStream()) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).length, 0);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

/**
 * Fuzz regression (target queue-file): a size record with a negative content length passed the
 * sanity check in QueueFile.open() (contentOffset + contentLength <= size holds), and the read
 * of the tail at offset contentOffset + contentLength < 0 threw RangeError ("position" out of
 * range) instead of QueueFileError; content() would do the same with Buffer.alloc(-n).
 */
test('a size record with a negative content length is refused with QueueFileError', {
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-reg-'));
  try {
    const q = new MailQueue(dir);
    q.ensureDirs();
    const w = await QueueFileWriter.create(q);
    w.setSender('sender@example.org');
    w.addRecipient({ address: 'a@example.test', orig: 'a@example.test', notify: 0, orcpt: '' });
    await w.writeContent(Buffer.from('Subject: x\n\nbody\n'));
    const qid = await w.commit();
    const raw = readFileSync(q.path('incoming', qid));
    // the size record's fields are fixed-width: replace the content length with -1781, padded the same
    const text = raw.toString('latin1');
    const m = /^(..\s*\d+)(\s+)(\d+)/.exec(text)!;
    const field = m[2]! + m[3]!;
    const neg = '-1781'.padStart(field.length, ' ');
    const bad = Buffer.from(text.slice(0, m[1]!.length) + neg + text.slice(m[0].length), 'latin1');
    assert.equal(bad.length, raw.length);
    const f = join(dir, 'qf');
    writeFileSync(f, bad);
    await assert.rejects(QueueFile.open(f, 'FUZZ'), (e) => e instanceof QueueFileError);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
