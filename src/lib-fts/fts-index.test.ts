/**
 * The full-text index against the plain scan (lib-mail matchBody/matchText, which SEARCH uses
 * without an index): on a varied corpus the signature never rules out a message the scan
 * matches, and rules out most that it does not. Then the file: built, followed, compacted, and
 * rebuilt when deleted, truncated, garbage or of another UIDVALIDITY; not read when far too
 * large; kept in memory where it cannot be written; a symbolic link in its place never followed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMime } from '../lib-mail/mail-mime.ts';
import { matchBody, matchText } from '../lib-mail/mail-search.ts';
import { cannotMatch, compileQuery, messageSignature } from './fts-signature.ts';
import { FtsIndex, setFtsLog } from './fts-index.ts';
import { ftsCorpus, NEEDLES } from '../../test/harness/fts-corpus.ts';

setFtsLog({ warn: () => {} });

test('the signature never rules out a message the scan matches (BODY and TEXT)', () => {
  const corpus = ftsCorpus();
  let ruledOut = 0, nonMatches = 0;
  for (const raw of corpus) {
    const sig = messageSignature(raw);
    let msg;
    try { msg = parseMime(raw); } catch { assert.equal(sig.length, 0); continue; }
    for (const n of NEEDLES) {
      for (const body of [true, false]) {
        const hit = body ? matchBody(msg, n) : matchText(msg, n);
        const q = compileQuery(n, body);
        const out = q !== undefined && cannotMatch(sig, q);
        if (hit) assert.equal(out, false, `${body ? 'BODY' : 'TEXT'} ${JSON.stringify(n)} ruled out in ${raw.toString('latin1').slice(0, 200)}`);
        else if (q) { nonMatches++; if (out) ruledOut++; }
      }
    }
  }
  assert.ok(ruledOut / nonMatches > 0.8, `only ${ruledOut} of ${nonMatches} non-matches ruled out`);
});

test('a needle shorter than three code units, or a 1 MB one, is bounded', () => {
  assert.equal(compileQuery('ab', true), undefined);
  const q = compileQuery('x'.repeat(1 << 20), false)!;
  assert.ok(q.hAll.length <= 32);
});

function store(msgs: Map<number, Buffer>) {
  return async (uids: readonly number[], each: (i: number, c: Buffer) => void) => {
    uids.forEach((u, i) => { const b = msgs.get(u); if (b) each(i, b); });
  };
}

test('the index file: built, followed, compacted, rebuilt when deleted, damaged or foreign', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-'));
  try {
    const corpus = ftsCorpus();
    const msgs = new Map<number, Buffer>(corpus.map((b, i) => [i + 1, b]));
    const uids = [...msgs.keys()];
    const path = join(dir, 'postern-fts');
    const a = new FtsIndex(path);
    await a.update(7, uids, store(msgs));
    for (const u of uids) assert.ok(a.signature(u), `uid ${u} indexed`);
    const size1 = statSync(path).size;
    // a second process reads the same file without indexing anything
    let reads = 0;
    const counting = (m: Map<number, Buffer>) => async (us: readonly number[], each: (i: number, c: Buffer) => void) => { reads += us.length; await store(m)(us, each); };
    const b = new FtsIndex(path);
    await b.update(7, uids, counting(msgs));
    assert.equal(reads, 0);
    assert.deepEqual(Buffer.from(b.signature(5)!), Buffer.from(a.signature(5)!));
    // delivery appends; the other process follows the tail
    msgs.set(100, Buffer.from('Subject: new\r\n\r\nfreshly delivered walrus\r\n'));
    a.noteSaved(7, 100, () => msgs.get(100));
    assert.ok(statSync(path).size > size1);
    await b.update(7, [...uids, 100], counting(msgs));
    assert.equal(reads, 0, 'the delivered message came from the file');
    assert.equal(cannotMatch(b.signature(100)!, compileQuery('walrus', true)!), false);
    // COPY reuses the signature
    const c = new FtsIndex(join(dir, 'other-fts'));
    await c.update(9, [], counting(msgs));
    c.noteCopied(b, 7, 100, 9, 1);
    await c.update(9, [1], counting(msgs));
    assert.equal(reads, 0);
    assert.deepEqual(Buffer.from(c.signature(1)!), Buffer.from(b.signature(100)!));
    // truncated mid-record: the torn record is re-indexed, the rest kept
    truncateSync(path, statSync(path).size - 5);
    const d = new FtsIndex(path);
    reads = 0;
    await d.update(7, [...uids, 100], counting(msgs));
    assert.equal(reads, 1);
    // damage followed by more data: rewritten from the valid records
    const raw = readFileSync(path);
    raw[raw.length >> 1] ^= 0xff;
    writeFileSync(path, raw);
    const e = new FtsIndex(path);
    reads = 0;
    await e.update(7, [...uids, 100], counting(msgs));
    assert.ok(reads > 0 && reads < uids.length);
    for (const u of uids) assert.ok(e.signature(u));
    reads = 0;
    await new FtsIndex(path).update(7, [...uids, 100], counting(msgs));
    assert.equal(reads, 0, 'repaired on disk');
    // garbage, deleted, another UIDVALIDITY: rebuilt whole
    const spoils: Array<[() => void, number]> = [[() => writeFileSync(path, 'garbage'.repeat(100)), 7], [() => rmSync(path), 7], [() => appendFileSync(path, ''), 8]];
    for (const [spoil, uv] of spoils) {
      spoil();
      reads = 0;
      await new FtsIndex(path).update(uv, [...uids, 100], counting(msgs));
      assert.equal(reads, uids.length + 1);
      await new FtsIndex(path).update(7, [...uids, 100], counting(msgs)); // back to 7 for the next
    }
    // expunged UIDs are compacted away once they are most of the file
    const big = new Map<number, Buffer>();
    for (let u = 1; u <= 3000; u++) big.set(u, Buffer.from(`Subject: ${u}\r\n\r\nbody ${u}\r\n`));
    const f = new FtsIndex(join(dir, 'big-fts'));
    await f.update(1, [...big.keys()], store(big));
    const before = statSync(join(dir, 'big-fts')).size;
    // a search over part of the mailbox (CONTEXT=SEARCH) does not compact
    await new FtsIndex(join(dir, 'big-fts')).update(1, [1, 2, 3], store(big), 3000);
    assert.equal(statSync(join(dir, 'big-fts')).size, before);
    await f.update(1, [1, 2, 3], store(big));
    assert.ok(statSync(join(dir, 'big-fts')).size < before / 100);
    assert.ok(f.signature(2) && !f.signature(2000));
    // a file far larger than an index of the mailbox can be is not read, but replaced
    writeFileSync(join(dir, 'huge-fts'), Buffer.alloc(16));
    truncateSync(join(dir, 'huge-fts'), 4 << 30);
    const h = new FtsIndex(join(dir, 'huge-fts'));
    reads = 0;
    await h.update(7, [1, 2], counting(msgs));
    assert.equal(reads, 2);
    assert.ok(statSync(join(dir, 'huge-fts')).size < 4096);
    // a place where the file cannot be written: the index lives in memory, each message read once
    const m = new FtsIndex(join(dir, 'missing-dir', 'postern-fts'));
    reads = 0;
    await m.update(7, uids, counting(msgs));
    await m.update(7, uids, counting(msgs));
    assert.equal(reads, uids.length);
    assert.ok(m.signature(1));
    // a directory in the file's place: the same (it cannot be replaced by a file)
    const dirIdx = join(dir, 'dir-fts');
    mkdirSync(join(dirIdx, 'x'), { recursive: true });
    const di = new FtsIndex(dirIdx);
    reads = 0;
    await di.update(7, uids, counting(msgs));
    await di.update(7, uids, counting(msgs));
    assert.equal(reads, uids.length);
    // a symbolic link in its place is never followed: replaced, its target untouched
    const target = join(dir, 'target');
    writeFileSync(target, 'precious');
    const link = join(dir, 'link-fts');
    symlinkSync(target, link);
    const l = new FtsIndex(link);
    l.noteSaved(7, 1, () => msgs.get(1));
    await l.update(7, uids, store(msgs));
    assert.equal(readFileSync(target, 'utf8'), 'precious');
    assert.ok(!lstatSync(link).isSymbolicLink() && l.signature(1));
    // rebuild: a fresh file
    const n = await new FtsIndex(path).rebuild(7, [...uids, 100], store(msgs));
    assert.equal(n, uids.length + 1);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
