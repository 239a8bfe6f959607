/**
 * SORT ordering (RFC 5256 §3, RFC 5957, Dovecot index-sort.c): keys built from raw messages,
 * REVERSE per key, ties by sequence number, criteria parsing errors, and large inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSortCriteria, SortCriteriaError, sortMessages, sortRecordFromMessage, sortKeyOf, type SortRecord } from './imap-sort.ts';

function msg(headers: string[], body = 'body\r\n'): Buffer {
  return Buffer.from(headers.join('\r\n') + '\r\n\r\n' + body, 'utf8');
}
const at = (s: number): Date => new Date(s * 1000);
const seqs = (rs: SortRecord[]): number[] => rs.map((r) => r.seq);

test('sortRecordFromMessage takes the FIRST header of each kind and decodes addresses', () => {
  const raw = msg([
    'From: =?ISO-8859-1?Q?J=F6rg?= <Jorg@G.example>', 'From: second@x.example',
    'To: undisclosed-recipients:;', 'Subject: Re: first', 'Subject: second',
    'Date: Mon, 1 Jan 2024 10:00:00 +0200', 'Date: Tue, 2 Jan 2024 10:00:00 +0000',
    'Message-ID: <a@b>', 'References: <r1@b> <r2@b>', 'In-Reply-To: <r2@b>',
  ]);
  const r = sortRecordFromMessage(raw, { seq: 3, uid: 7, internalDate: at(100) });
  assert.equal(r.seq, 3);
  assert.equal(r.uid, 7);
  assert.equal(r.size, raw.length);
  assert.equal(r.subject?.toString(), 'Re: first');
  assert.equal(r.sentDate?.toISOString(), '2024-01-01T08:00:00.000Z');
  assert.deepEqual(r.from, { mailbox: 'Jorg', domain: 'G.example', name: 'Jörg' });
  assert.deepEqual(r.to, { mailbox: 'undisclosed-recipients', domain: undefined, name: undefined });
  assert.equal(r.cc, undefined);
  assert.equal(r.messageId?.toString(), '<a@b>');
  assert.equal(sortKeyOf(r, 'FROM'), 'JORG');
  assert.equal(sortKeyOf(r, 'DISPLAYFROM'), 'JO\u0308RG');
  assert.equal(sortKeyOf(r, 'TO'), 'UNDISCLOSED-RECIPIENTS');
  assert.equal(sortKeyOf(r, 'DISPLAYTO'), 'UNDISCLOSED-RECIPIENTS');
  assert.equal(sortKeyOf(r, 'SUBJECT'), 'FIRST');
  // SIZE is the CRLF size: a bare-LF message counts one more byte per line.
  const lf = Buffer.from('Subject: x\n\nbody\n');
  assert.equal(sortRecordFromMessage(lf, { seq: 1, uid: 1, internalDate: at(0) }).size, lf.length + 3);
});

test('DISPLAYFROM falls back to mailbox@domain, DATE falls back to INTERNALDATE', () => {
  const a = sortRecordFromMessage(msg(['From: zed@a.example', 'Subject: a']), { seq: 1, uid: 1, internalDate: at(5000) });
  const b = sortRecordFromMessage(msg(['From: "Adam" <zzz@b.example>', 'Date: Thu, 1 Jan 1970 00:30:00 +0000']), { seq: 2, uid: 2, internalDate: at(1) });
  const c = sortRecordFromMessage(msg(['From: Bob <bob@c.example>', 'Date: garbage']), { seq: 3, uid: 3, internalDate: at(10) });
  assert.equal(sortKeyOf(a, 'DISPLAYFROM'), 'ZED@A.EXAMPLE');
  assert.equal(sortKeyOf(b, 'DISPLAYFROM'), 'ADAM');
  assert.deepEqual(seqs(sortMessages([a, b, c], parseSortCriteria(['DISPLAYFROM']))), [2, 3, 1]);
  assert.deepEqual(seqs(sortMessages([a, b, c], parseSortCriteria(['DATE']))), [3, 2, 1]);
  assert.deepEqual(seqs(sortMessages([a, b, c], parseSortCriteria(['ARRIVAL']))), [2, 3, 1]);
  // Missing headers sort as "" — first.
  assert.deepEqual(seqs(sortMessages([a, b, c], parseSortCriteria(['REVERSE', 'SUBJECT']))), [1, 2, 3]);
});

test('REVERSE flips one key; equal keys keep ascending sequence order even under REVERSE', () => {
  const rs = [5, 3, 5, 1, 3].map((size, i) => sortRecordFromMessage(msg(['Subject: s']), { seq: i + 1, uid: 10 + i, internalDate: at(0), size }));
  assert.deepEqual(seqs(sortMessages(rs, parseSortCriteria(['SIZE']))), [4, 2, 5, 1, 3]);
  assert.deepEqual(seqs(sortMessages(rs, parseSortCriteria(['REVERSE', 'SIZE']))), [1, 3, 2, 5, 4]);
  assert.deepEqual(seqs(sortMessages(rs, parseSortCriteria(['SUBJECT', 'REVERSE', 'SIZE']))), [1, 3, 2, 5, 4]);
  // The input array is not modified.
  assert.deepEqual(seqs(rs), [1, 2, 3, 4, 5]);
});

test('parseSortCriteria accepts RFC 5256/5957 keys and rejects bad programs', () => {
  assert.deepEqual(parseSortCriteria(['reverse', 'Date', 'displayfrom']), [
    { key: 'DATE', reverse: true }, { key: 'DISPLAYFROM', reverse: false }]);
  for (const bad of [[], ['REVERSE'], ['REVERSE', 'REVERSE', 'DATE'], ['SCORE'], ['DATE', 'REVERSE']]) {
    assert.throws(() => parseSortCriteria(bad), SortCriteriaError, JSON.stringify(bad));
  }
});

test('100,000 messages and 10 MB subjects sort in bounded time', () => {
  const rs: SortRecord[] = [];
  for (let i = 0; i < 100_000; i++) {
    rs.push({
      seq: i + 1, uid: i + 1, size: (i * 7919) % 1000, internalDate: at(i % 977), sentDate: undefined,
      subject: Buffer.from(`Re: subject ${(i * 31) % 5000}`), from: { mailbox: `u${i % 100}`, domain: 'x', name: undefined },
      to: undefined, cc: undefined, messageId: undefined, inReplyTo: undefined, references: undefined,
    });
  }
  let t0 = performance.now();
  const out = sortMessages(rs, parseSortCriteria(['SUBJECT', 'REVERSE', 'ARRIVAL', 'FROM']));
  assert.equal(out.length, 100_000);
  assert.ok(performance.now() - t0 < 15_000);
  const big = Buffer.from('Re: [x] ' + 'a'.repeat(10 * 1024 * 1024));
  const bigRs = [3, 2, 1].map((seq) => ({ ...rs[0]!, seq, subject: seq === 2 ? Buffer.from('b') : big }));
  t0 = performance.now();
  assert.deepEqual(seqs(sortMessages(bigRs, parseSortCriteria(['SUBJECT']))), [1, 3, 2]);
  assert.ok(performance.now() - t0 < 10_000);
});
