import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, readFileSync, truncateSync, statSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue, isQueueId } from './mail-queue.ts';
import { QueueFile, QueueFileError } from './queue-file-reader.ts';
import { QueueFileWriter } from './queue-file-writer.ts';
import { newQueueId } from './queue-file.ts';
import { ATTR, DSN_NOTIFY } from './rec-type.ts';

function tmpQueue(): { q: MailQueue; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'postern-q-'));
  const q = new MailQueue(dir);
  q.ensureDirs();
  return { q, dir };
}

async function writeOne(q: MailQueue, body: Buffer, rcpts = ['a@example.test', 'b@example.test']): Promise<string> {
  const w = await QueueFileWriter.create(q);
  w.setSender('sender@example.org');
  w.addAttr('client_address', '127.0.0.1');
  for (const r of rcpts) w.addRecipient({ address: r, orig: r.toUpperCase(), notify: DSN_NOTIFY.FAILURE | DSN_NOTIFY.DELAY, orcpt: `rfc822;${r}` });
  await w.writeContent(body);
  return w.commit();
}

test('a committed queue file reads back byte for byte, with its envelope', async () => {
  const { q, dir } = tmpQueue();
  try {
    const body = Buffer.concat([Buffer.from('Subject: t\n\n8bit: \xe9\x00 NUL\n', 'latin1'), Buffer.alloc(200_000, 0x41)]);
    const qid = await writeOne(q, body);
    assert.ok(isQueueId(qid), qid);
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [qid], 'only the final name remains in incoming');
    const qf = await QueueFile.open(q.path('incoming', qid), qid);
    assert.equal(qf.sender, 'sender@example.org');
    assert.equal(qf.attrs.get('client_address'), '127.0.0.1');
    assert.deepEqual(qf.recipients.map((r) => [r.address, r.orig, r.notify, r.orcpt, r.done]), [
      ['a@example.test', 'A@EXAMPLE.TEST', 12, 'rfc822;a@example.test', false],
      ['b@example.test', 'B@EXAMPLE.TEST', 12, 'rfc822;b@example.test', false],
    ]);
    assert.ok(Buffer.compare(await qf.content(), body) === 0);
    const chunks: Buffer[] = [];
    for await (const c of qf.contentStream()) chunks.push(c as Buffer);
    assert.ok(Buffer.compare(Buffer.concat(chunks), body) === 0);
    assert.ok(Math.abs(qf.arrival - Date.now()) < 5000);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('markDone survives re-opening: a delivered recipient is never delivered again', async () => {
  const { q, dir } = tmpQueue();
  try {
    const qid = await writeOne(q, Buffer.from('x\n'));
    const qf = await QueueFile.open(q.path('incoming', qid), qid);
    await qf.markDone(qf.recipients[1]!);
    const again = await QueueFile.open(q.path('incoming', qid), qid);
    assert.deepEqual(again.recipients.map((r) => r.done), [false, true]);
    assert.deepEqual(again.undone.map((r) => r.address), ['a@example.test']);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('queue IDs are unique across many concurrent commits (group commit shares directory fsyncs)', async () => {
  const { q, dir } = tmpQueue();
  try {
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => writeOne(q, Buffer.from(`msg ${i}\n`))));
    assert.equal(new Set(ids).size, 200);
    const listed: string[] = [];
    for await (const id of q.list('incoming')) listed.push(id);
    assert.deepEqual(listed.sort(), [...ids].sort());
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('moves between queues use hashed subdirectories for deferred', async () => {
  const { q, dir } = tmpQueue();
  try {
    const qid = await writeOne(q, Buffer.from('x\n'));
    await q.move(qid, 'incoming', 'active');
    await q.move(qid, 'active', 'deferred');
    assert.ok(statSync(join(dir, 'deferred', qid[0]!, qid)).isFile());
    const listed: string[] = [];
    for await (const id of q.list('deferred')) listed.push(id);
    assert.deepEqual(listed, [qid]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a truncated, garbage or empty queue file is reported as corrupt, never half-read', async () => {
  const { q, dir } = tmpQueue();
  try {
    const qid = await writeOne(q, Buffer.alloc(5000, 0x42));
    const p = q.path('incoming', qid);
    const full = readFileSync(p);
    for (const len of [0, 1, 5, 100, full.length - 1]) {
      writeFileSync(p, full.subarray(0, len));
      await assert.rejects(QueueFile.open(p, qid), QueueFileError, `truncated to ${len}`);
    }
    writeFileSync(p, Buffer.from('garbage\0\xff\xff\xff\xff\xff\xff\xff\xffmore', 'latin1'));
    await assert.rejects(QueueFile.open(p, qid), QueueFileError);
    writeFileSync(p, full);
    truncateSync(p, full.length);
    await QueueFile.open(p, qid);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('abort leaves nothing behind; a file with no recipients cannot be committed', async () => {
  const { q, dir } = tmpQueue();
  try {
    const w = await QueueFileWriter.create(q);
    await w.writeContent(Buffer.from('x'));
    await w.abort();
    const w2 = await QueueFileWriter.create(q);
    await assert.rejects(w2.commit(), /no recipients/);
    await w2.abort();
    assert.deepEqual(readdirSync(join(dir, 'incoming')), []);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a new queue file has its final name at once: mode 0600 while written, 0700 once committed', async () => {
  const { q, dir } = tmpQueue();
  try {
    const w = await QueueFileWriter.create(q);
    const p = q.path('incoming', w.queueId);
    assert.equal(statSync(p).mode & 0o777, 0o600, 'qmgr must not take a file being written');
    w.setSender('s@example.org');
    w.addRecipient({ address: 'r@example.test' });
    await w.writeContent(Buffer.from('Subject: t\n\nbody\n'));
    assert.equal(await w.commit(), w.queueId);
    assert.equal(statSync(p).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [w.queueId]);
    assert.equal((await QueueFile.open(p, w.queueId)).recipients[0]!.address, 'r@example.test');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a file diverted to hold never shows as committed (0700) in incoming, where qmgr would take it', async () => {
  const { q, dir } = tmpQueue();
  const seen: string[] = [];
  // qmgr is woken by exactly this watch (its chmod event) and admits 0700 files.
  const watcher = watch(join(dir, 'incoming'), (_ev, name) => {
    if (!name) return;
    try { if ((statSync(join(dir, 'incoming', name)).mode & 0o777) === 0o700) seen.push(name); } catch { /* gone */ }
  });
  try {
    for (let i = 0; i < 20; i++) {
      const w = await QueueFileWriter.create(q);
      w.setSender('s@example.org');
      w.addRecipient({ address: 'r@example.test' });
      await w.writeContent(Buffer.from('Subject: held\n\nbody\n'));
      w.setTarget('hold');
      const id = await w.commit();
      assert.equal(statSync(q.path('hold', id)).mode & 0o777, 0o700);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.deepEqual(seen, [], 'committed files seen in incoming on their way to hold');
    assert.deepEqual(readdirSync(join(dir, 'incoming')), []);
  } finally { watcher.close(); rmSync(dir, { recursive: true, force: true }); }
});

test('queue IDs are valid, distinct and increasing within a process, and carry the process ID', () => {
  const ids = Array.from({ length: 5000 }, () => newQueueId());
  assert.equal(new Set(ids).size, ids.length, 'IDs created in the same microsecond still differ');
  for (const id of ids) assert.ok(isQueueId(id), id);
  assert.ok(ids.every((id) => id.endsWith(process.pid.toString(16).toUpperCase())));
  // seconds then microseconds: the creation order
  const key = (id: string) => id.slice(5, 13) + id.slice(0, 5);
  assert.deepEqual([...ids].sort((a, b) => (key(a) < key(b) ? -1 : 1)), ids);
});

test('abort while a commit is in flight: the commit fails, nothing is left, other queue files are untouched', async () => {
  const { q, dir } = tmpQueue();
  try {
    for (let i = 0; i < 20; i++) {
      const w = await QueueFileWriter.create(q);
      w.setSender('s@example.org');
      w.addRecipient({ address: 'r@example.test' });
      await w.writeContent(Buffer.alloc(100_000 + i * 997, 0x41)); // > 64 KiB: written before commit
      await w.writeContent(Buffer.from('tail\n'));
      const committing = w.commit();
      const aborting = w.abort();
      const other = writeOne(q, Buffer.from(`other ${i}\n`)); // opens a descriptor meanwhile
      await assert.rejects(committing, /aborted/);
      await aborting;
      const id = await other;
      const qf = await QueueFile.open(q.path('incoming', id), id);
      assert.equal((await qf.content()).toString(), `other ${i}\n`);
    }
    assert.equal(readdirSync(join(dir, 'incoming')).length, 20, 'only the 20 other files remain');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a queue file removed while still being written (0600) is never committed: no 250 for data that went nowhere', async () => {
  const { q, dir } = tmpQueue();
  try {
    const w = await QueueFileWriter.create(q);
    w.setSender('sender@example.org');
    w.addRecipient({ address: 'a@example.test', orig: 'a@example.test' });
    await w.writeContent(Buffer.from('Subject: x\n\nbody\n'));
    // What a qmgr restarting in another process does with a 0600 file older than itself.
    for (const f of readdirSync(join(dir, 'incoming'))) rmSync(join(dir, 'incoming', f));
    await assert.rejects(w.commit(), /queue file was removed while being written/);
    await w.abort();
    // The next one commits normally.
    const qid = await writeOne(q, Buffer.from('Subject: y\n\nbody\n'));
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [qid]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('ATTR.PREPEND_HEADERS: headers added after the content are given first by content() and contentStream(), small and large files alike', async () => {
  const { q, dir } = tmpQueue();
  try {
    const added = 'Authentication-Results: mx.example.test;\n\tspf=pass smtp.mailfrom=a@example.org\n';
    for (const body of [Buffer.from('Subject: small\n\nbody\n'), Buffer.concat([Buffer.from('Subject: large\n\n'), Buffer.alloc(300_000, 0x42)])]) {
      const w = await QueueFileWriter.create(q);
      w.setSender('a@example.org');
      w.addRecipient({ address: 'r@example.test' });
      await w.writeContent(body);
      w.addTrailingAttr(ATTR.PREPEND_HEADERS, added);
      const qid = await w.commit();
      const qf = await QueueFile.open(q.path('incoming', qid), qid, { keepContent: true });
      assert.equal(qf.attr(ATTR.PREPEND_HEADERS), undefined, 'the added headers are content records reached by a pointer, not an attribute');
      const want = Buffer.concat([Buffer.from(added), body]);
      assert.ok((await qf.content()).equals(want));
      const chunks: Buffer[] = [];
      for await (const c of qf.contentStream()) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(want));
      assert.equal(qf.recipients.length, 1);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * A file in the layout older Postern versions wrote (the content as one M record with a 6-byte
 * padded length, a five-field C record, Postern's attribute names, a prepend_headers attribute):
 * a queue left by an upgrade is still read and delivered, and markDone() works on it.
 */
function legacyFile(content: Buffer, prepend: string): Buffer {
  const rec = (t: string, v: string | Buffer): Buffer => {
    const d = typeof v === 'string' ? Buffer.from(v) : v;
    const len: number[] = [];
    let n = d.length;
    do { let b = n % 128; n = Math.floor(n / 128); if (n) b |= 0x80; len.push(b); } while (n);
    return Buffer.concat([Buffer.from([t.charCodeAt(0), ...len]), d]);
  };
  const sizeRec = (f: number[]) => rec('C', f.map((x) => String(x).padStart(15)).join(' '));
  const env = Buffer.concat([rec('T', '1795808616 447000'), rec('S', 'a@example.org'), rec('A', 'dsn_envid=E1'), rec('A', 'dsn_ret=HDRS'),
    rec('O', 'B@example.test'), rec('n', '6'), rec('R', 'b@example.test'), rec('R', 'c@example.test')]);
  const mlen = Buffer.alloc(6);
  for (let i = 0, n = content.length; i < 6; i++) { mlen[i] = (n % 128) | (i < 5 ? 0x80 : 0); n = Math.floor(n / 128); }
  const c0 = sizeRec([0, 0, 0, 0, 0]);
  const contentOffset = c0.length + env.length + 1 + 6;
  const tail = Buffer.concat([rec('X', ''), rec('A', `prepend_headers=${prepend}`), rec('E', '')]);
  return Buffer.concat([sizeRec([contentOffset, content.length, 2, 1, 0]), env, Buffer.from('M'), mlen, content, tail]);
}

test('a queue file of an older Postern version (one M record, five-field C record) is still read and delivered', async () => {
  const { q, dir } = tmpQueue();
  try {
    for (const content of [Buffer.from('Subject: old\n\nbody\n'), Buffer.alloc(200_000, 0x41)]) {
      const id = newQueueId();
      const added = 'Authentication-Results: mx; none\n';
      writeFileSync(q.path('incoming', id), legacyFile(content, added));
      const qf = await QueueFile.open(q.path('incoming', id), id, { keepContent: true });
      assert.equal(qf.legacy, true);
      assert.equal(qf.sender, 'a@example.org');
      assert.deepEqual(qf.recipients.map((r) => [r.address, r.orig, r.notify ?? 0]), [['b@example.test', 'B@example.test', 6], ['c@example.test', 'c@example.test', 0]]);
      assert.equal(qf.attr(ATTR.DSN_ENVID), 'E1');
      assert.equal(qf.attr(ATTR.DSN_RET), 'HDRS');
      const want = Buffer.concat([Buffer.from(added), content]);
      assert.ok((await qf.content()).equals(want), 'content with the prepended header');
      const chunks: Buffer[] = [];
      for await (const c of qf.contentStream()) chunks.push(c as Buffer);
      assert.ok(Buffer.concat(chunks).equals(want));
      await qf.markDone(qf.recipients[0]!);
      const again = await QueueFile.open(q.path('incoming', id), id);
      assert.deepEqual(again.recipients.map((r) => r.done), [true, false]);
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
