/**
 * The index path of SEARCH BODY/TEXT against the plain scan, on the bit-sliced index
 * (fts-slices.ts) through FtsIndex.update(): on a random corpus (fixed seed) every message the
 * scan matches is a candidate, for needles cut from the messages' own texts; the slices keep
 * exactly the messages the per-message test keeps. Hostile cases: a 1 MB needle, a message and
 * a needle of 10,000 distinct trigrams, a file damaged in the middle of a record, deliveries and
 * expunges by another "process" (a second object on the same file) while searches run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMime } from '../lib-mail/mail-mime.ts';
import { matchBody, matchText, walkSearchText } from '../lib-mail/mail-search.ts';
import { cannotMatch, compileQuery, messageSignature, type FtsQuery } from './fts-signature.ts';
import { FtsIndex, ftsIndexAt, setFtsLog, setFtsMemoryMax } from './fts-index.ts';
import { FtsSlices } from './fts-slices.ts';

setFtsLog({ warn: () => {} });

function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => { x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; x = (x ^ (x >>> 12)) >>> 0; return x / 2 ** 32; };
}

const WORDS = ['Grüße', 'naïve', 'Straße', 'café', 'ÉCOLE', 'ﬁnance', 'привет', '日本語', 'emoji😀', 'fox', 'dog', 'lazy', 'quokka', 'zebra', 'tab\tx', 'q=E9', 'marker', 'ab', 'x', 'Ω'];

/** A random message: plain, base64, quoted-printable, multipart or embedded; random words. */
function randomMessage(r: () => number, i: number): Buffer {
  const w = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]!).join(r() < 0.2 ? '' : ' ');
  const hdr = `From: =?utf-8?b?${Buffer.from(w(2)).toString('base64')}?= <s${i}@example.org>\r\nSubject: ${w(3)}\r\nMIME-Version: 1.0\r\n`;
  const text = `${w(8)}\r\n${w(8)}\r\n`;
  switch (Math.floor(r() * 5)) {
    case 0: return Buffer.from(`${hdr}Content-Type: text/plain; charset=utf-8\r\n\r\n${text}`);
    case 1: return Buffer.from(`${hdr}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(text).toString('base64')}\r\n`);
    case 2: return Buffer.from(`${hdr}Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 ${w(3).replace(/[^\x20-\x7e]/g, 'e')}=\r\nsoft ${i}\r\n`);
    case 3: return Buffer.from(`${hdr}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>${text}</p>\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n${w(4)}\r\n--b--\r\n`);
    default: return Buffer.from(`${hdr}Content-Type: message/rfc822\r\n\r\nSubject: inner ${w(2)}\r\n\r\n${text}`);
  }
}

/** Needles cut from the texts SEARCH compares (random offset and length, case changed now and then). */
function needlesFrom(raws: Buffer[], r: () => number, n: number): string[] {
  const texts: string[] = [];
  for (const raw of raws) walkSearchText(parseMime(raw), true, (t) => { if (t.length > 0) texts.push(t); return false; });
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const t = texts[Math.floor(r() * texts.length)]!;
    const a = Math.floor(r() * t.length), len = 1 + Math.floor(r() * 14);
    let s = t.slice(a, a + len);
    if (r() < 0.3) s = s.toUpperCase(); else if (r() < 0.3) s = s.toLowerCase();
    out.push(s);
  }
  return out.concat(['nothing-like-this', 'QUOKKA', 'straße', 'strasse', 'cafe', 'finance']);
}

function reader(msgs: Map<number, Buffer>, count?: { n: number }) {
  return async (uids: readonly number[], each: (i: number, c: Buffer) => void) => {
    uids.forEach((u, i) => { const b = msgs.get(u); if (b) { if (count) count.n++; each(i, b); } });
  };
}

const parsed = new WeakMap<Buffer, ReturnType<typeof parseMime>>();

function scan(msgs: Map<number, Buffer>, uids: readonly number[], needle: string, body: boolean): number[] {
  return uids.filter((u) => {
    const raw = msgs.get(u)!;
    let m = parsed.get(raw);
    if (!m) { m = parseMime(raw); parsed.set(raw, m); }
    return body ? matchBody(m, needle) : matchText(m, needle);
  });
}

/** Every UID the scan matches is a candidate of the index; returns the candidates. */
async function assertNarrowsOnly(f: FtsIndex, uv: number, msgs: Map<number, Buffer>, uids: number[], needles: string[]): Promise<void> {
  const qs: { q: FtsQuery; needle: string }[] = [];
  for (const needle of needles) for (const body of [true, false]) { const q = compileQuery(needle, body); if (q) qs.push({ q, needle }); }
  const lists = await f.update(uv, uids, reader(msgs), uids.length, qs.map((x) => x.q));
  assert.ok(lists, 'the index answered');
  qs.forEach(({ q, needle }, i) => {
    const cand = new Set(lists[i]);
    for (const u of scan(msgs, uids, needle, q.body)) assert.ok(cand.has(u), `${q.body ? 'BODY' : 'TEXT'} ${JSON.stringify(needle)}: uid ${u} missed`);
  });
}

test('random corpus (fixed seed): the index path finds every message the scan finds, and keeps what the per-message test keeps', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-prop-'));
  try {
    const r = rng(20261208);
    const raws = Array.from({ length: 400 }, (_, i) => randomMessage(r, i));
    const msgs = new Map(raws.map((b, i) => [i + 1, b]));
    const uids = [...msgs.keys()];
    const needles = needlesFrom(raws, r, 300);
    const f = new FtsIndex(join(dir, 'postern-fts'));
    await assertNarrowsOnly(f, 1, msgs, uids, needles);
    // the same through a second object reading the file (another process)
    await assertNarrowsOnly(new FtsIndex(join(dir, 'postern-fts')), 1, msgs, uids, needles);
    // the slices keep exactly the messages the per-message signature test keeps
    const sl = new FtsSlices();
    const sigs = raws.map((b) => messageSignature(b));
    sigs.forEach((s, i) => sl.set(i + 1, s));
    let narrowed = 0;
    for (const needle of needles) {
      for (const body of [true, false]) {
        const q = compileQuery(needle, body);
        if (!q) continue;
        const want = uids.filter((u) => !cannotMatch(sigs[u - 1]!, q));
        assert.deepEqual([...sl.candidates(q)], want, `${body ? 'BODY' : 'TEXT'} ${JSON.stringify(needle)}`);
        if (want.length < uids.length) narrowed++;
      }
    }
    assert.ok(narrowed > needles.length, `the index narrowed only ${narrowed} searches`);
    for (const u of [1, 77, 400]) assert.deepEqual(Buffer.from(sl.signature(u)!), Buffer.from(sigs[u - 1]!));
    // added in bulk (as a file is loaded), in two parts, with UIDs indexed twice: the same sets
    const bulk = new FtsSlices();
    bulk.setMany(uids.slice(0, 150), sigs.slice(0, 150));
    bulk.setMany([...uids.slice(100), 5, 5], [...sigs.slice(100), sigs[9]!, sigs[4]!]);
    for (const needle of needles.slice(0, 100)) {
      const q = compileQuery(needle, false);
      if (q) assert.deepEqual([...bulk.candidates(q)], [...sl.candidates(q)], `bulk: TEXT ${JSON.stringify(needle)}`);
    }
    assert.equal(bulk.size, uids.length);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('hostile: a 1 MB needle, a message and a needle of 10,000 distinct trigrams', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-hostile-'));
  try {
    const r = rng(7);
    // 30,000 random letters: far more than 10,000 distinct trigrams
    const letters = Array.from({ length: 30_000 }, () => String.fromCharCode(97 + Math.floor(r() * 26))).join('');
    const mega = 'x'.repeat(1 << 20);
    const msgs = new Map<number, Buffer>([
      [1, Buffer.from(`Subject: many\r\n\r\n${letters.replace(/.{70}/g, '$&\r\n')}\r\n`)],
      [2, Buffer.from(`Subject: mega\r\n\r\n${mega}\r\n`)],
      [3, Buffer.from('Subject: small\r\n\r\nnothing much\r\n')],
    ]);
    const grams = new Set<string>();
    for (let i = 0; i + 3 <= letters.length; i++) grams.add(letters.slice(i, i + 3));
    assert.ok(grams.size > 10_000);
    const sig = messageSignature(msgs.get(1)!);
    assert.ok(sig.length > 0 && sig.length <= 8192, `signature of ${sig.length} bytes`);
    // a needle of 10,000 distinct trigrams (its first 70 chars stay on one line of the message)
    const long = letters.slice(0, 70);
    const q = compileQuery(letters.slice(0, 10_002), false)!;
    assert.ok(q.hAll.length <= 32);
    const f = new FtsIndex(join(dir, 'postern-fts'));
    const t0 = performance.now();
    await assertNarrowsOnly(f, 1, msgs, [1, 2, 3], [long, letters.slice(100, 170), mega, 'x'.repeat(5000), letters.slice(0, 10_002)]);
    const [c] = (await f.update(1, [1, 2, 3], reader(msgs), 3, [compileQuery(mega, true)!]))!;
    assert.ok(c!.includes(2) && !c!.includes(3));
    assert.ok(performance.now() - t0 < 60_000);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('hostile: a file damaged in the middle of a record is repaired; no match is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-dmg-'));
  try {
    const r = rng(99);
    const raws = Array.from({ length: 300 }, (_, i) => randomMessage(r, i));
    const msgs = new Map(raws.map((b, i) => [i + 1, b]));
    const uids = [...msgs.keys()];
    const needles = needlesFrom(raws, r, 60);
    const path = join(dir, 'postern-fts');
    await new FtsIndex(path).update(5, uids, reader(msgs));
    // walk the records (u32 length, payload, u32 CRC) to the 150th and flip a byte inside it
    const b = readFileSync(path);
    let off = 16;
    for (let i = 0; i < 149; i++) off += 8 + b.readUInt32LE(off);
    const n = b.readUInt32LE(off);
    b[off + 4 + (n >> 1)] ^= 0x5a;
    writeFileSync(path, b);
    const count = { n: 0 };
    const f = new FtsIndex(path);
    await f.update(5, uids, reader(msgs, count));
    assert.equal(count.n, 151, 'the damaged record and those after it are indexed again');
    await assertNarrowsOnly(f, 5, msgs, uids, needles);
    // repaired on disk: another process reads it without indexing anything
    count.n = 0;
    await new FtsIndex(path).update(5, uids, reader(msgs, count));
    assert.equal(count.n, 0);
    // a length field damaged (a record claiming to run past the end): the same
    const c = readFileSync(path);
    c.writeUInt32LE(0x7ffffff0, 16 + 40 * 0);
    writeFileSync(path, c);
    const g = new FtsIndex(path);
    await assertNarrowsOnly(g, 5, msgs, uids, needles);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('deliveries and expunges by another process while searches run: no match is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-conc-'));
  try {
    const r = rng(4242);
    const msgs = new Map<number, Buffer>();
    for (let u = 1; u <= 200; u++) msgs.set(u, randomMessage(r, u));
    let view = [...msgs.keys()];
    const needles = needlesFrom([...msgs.values()], r, 25);
    const path = join(dir, 'postern-fts');
    const searcher = new FtsIndex(path), searcher2 = new FtsIndex(path), deliverer = new FtsIndex(path);
    await searcher.update(3, view, reader(msgs));
    let next = 201;
    for (let round = 0; round < 30; round++) {
      // the other process delivers (appends to the file) and expunges, between and during searches
      const deliveries = Array.from({ length: 1 + Math.floor(r() * 20) }, () => {
        const u = next++;
        msgs.set(u, randomMessage(r, u));
        return u;
      });
      const searches = [
        assertNarrowsOnly(searcher, 3, msgs, [...view], needles.slice(0, 12)),
        (async () => { for (const u of deliveries) { deliverer.noteSaved(3, u, () => msgs.get(u)); await Promise.resolve(); } })(),
        assertNarrowsOnly(searcher2, 3, msgs, [...view], needles.slice(12)),
      ];
      await Promise.all(searches);
      view.push(...deliveries);
      // expunge a random part (most of it now and then: the file is compacted)
      const share = round % 10 === 9 ? 0.7 : 0.1;
      view = view.filter(() => r() >= share);
      if (round % 7 === 3) {
        // a torn append (a crash in the middle of a write): detected by its length and checksum
        const rec = Buffer.alloc(20);
        rec.writeUInt32LE(12, 0);
        writeFileSync(path, Buffer.concat([readFileSync(path), rec.subarray(0, 9)]));
      }
    }
    await assertNarrowsOnly(searcher, 3, msgs, view, needles);
    assert.ok(statSync(path).size > 16);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('an index pushed out of memory while its catch-up reads messages does not narrow that search', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fts-lru-'));
  try {
    const r = rng(5);
    const msgs = new Map<number, Buffer>();
    for (let u = 1; u <= 50; u++) msgs.set(u, randomMessage(r, u));
    const a = ftsIndexAt(join(dir, 'a-fts')), b = ftsIndexAt(join(dir, 'b-fts'));
    await a.update(1, [...msgs.keys()].slice(0, 40), reader(msgs));
    setFtsMemoryMax(1);
    try {
      // while a reads its 10 new messages, b is searched: over the limit, a is unloaded
      const q = compileQuery('quokka', false)!;
      const lists = await a.update(1, [...msgs.keys()], async (uids, each) => {
        await b.update(1, [...msgs.keys()], reader(msgs));
        await reader(msgs)(uids, each);
      }, 50, [q]);
      assert.equal(lists, undefined);
      // the next search loads the file again and answers
      await assertNarrowsOnly(a, 1, msgs, [...msgs.keys()], ['quokka', 'zebra', 'caf']);
    } finally { setFtsMemoryMax(512 * 1024 * 1024); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
