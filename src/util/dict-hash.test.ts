import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { HashIndex, encodeIndex, writeIndexFile } from './dict-hash.ts';
import { DictError } from './dict.ts';
import { HAVE_POSTMAP, postfixBuild, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';
import { main as postmapMain } from '../cli/postmap.ts';

const ctx = { configDir: '/nonexistent', configDirExplicit: false, command: 'map' };

async function build(spec: string): Promise<void> {
  const saved = process.stderr.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try { assert.equal(await postmapMain([spec], ctx), 0); } finally { process.stderr.write = saved; }
}

test('index format: exact lookups, unicode keys, entries in source order', () => {
  const entries: [string, string][] = [['a', '1'], ['b', '2'], ['тест@пример.рф', 'юникод'], ['', 'empty key']];
  const idx = new HashIndex('/x.pdb', encodeIndex(entries, true));
  for (const [k, v] of entries) assert.equal(idx.get(k), v);
  assert.equal(idx.get('c'), undefined);
  assert.equal(idx.get('тест@пример.р'), undefined);
  assert.deepEqual([...idx.entries()], entries);
});

test('index format: 100,000 entries, all found, misses not found', (t) => {
  const dir = tempDir(t);
  const entries: [string, string][] = [];
  for (let i = 0; i < 100_000; i++) entries.push([`user${i}@example.com`, `example.com/user${i}/`]);
  const p = join(dir, 'big.pdb');
  writeIndexFile(p, entries, true);
  const idx = HashIndex.load(p);
  assert.equal(idx.count, 100_000);
  for (let i = 0; i < 100_000; i += 997) assert.equal(idx.get(`user${i}@example.com`), `example.com/user${i}/`);
  assert.equal(idx.get('user100000@example.com'), undefined);
});

test('corrupt or foreign index file: config error telling to rebuild', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'x.pdb'), 'garbage');
  assert.throws(() => HashIndex.load(join(dir, 'x.pdb')), (e: unknown) => e instanceof DictError && /rebuild it/.test(e.message));
});

test('hash: built by postern map, keys folded, missing index as Postfix', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'vmailbox');
  writeFileSync(f, 'info@myoffice.space myoffice.space/info\nSales@MyOffice.space myoffice.space/sales/\n');
  await build(`hash:${f}`);
  const d = await dictOpen(`hash:${f}`);
  assert.equal(await d.lookup('INFO@myoffice.space'), 'myoffice.space/info');
  assert.equal(await d.lookup('sales@myoffice.space'), 'myoffice.space/sales/');
  assert.equal(await d.lookup('nobody@myoffice.space'), undefined);
  await assert.rejects(dictOpen(`hash:${join(dir, 'none')}`), { message: `open database ${join(dir, 'none')}.pdb: No such file or directory` });
  // btree: and lmdb: share the format.
  assert.equal(await (await dictOpen(`btree:${f}`)).lookup('info@myoffice.space'), 'myoffice.space/info');
  assert.equal(await (await dictOpen(`lmdb:${f}`)).lookup('info@myoffice.space'), 'myoffice.space/info');
});

test('hash: source newer than index gives Postfix\'s warning', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 't');
  writeFileSync(f, 'a b\n');
  await build(`hash:${f}`);
  // From the index's own time (set by the file system), not Date.now(): the process clock and
  // the file system's may disagree (a clock stepped back, or the test run under faketime).
  const later = new Date(statSync(`${f}.pdb`).mtimeMs + 10_000);
  utimesSync(f, later, later);
  const { warnings } = await posternQuery(`hash:${f}`, ['a']);
  assert.deepEqual(warnings, [`database ${f}.pdb is older than source file ${f}`]);
});

/** A hash: table built from "a old", open, answering "old". */
async function openOldTable(t: { after: (fn: () => void) => void }) {
  const f = join(tempDir(t), 't');
  writeFileSync(f, 'a old\n');
  await build(`hash:${f}`);
  const d = await dictOpen(`hash:${f}`, { warn: () => {} });
  assert.equal(await d.lookup('a'), 'old');
  return { f, d };
}

test('hash: a rebuilt index is picked up by an open table', async (t) => {
  const { f, d } = await openOldTable(t);
  writeFileSync(f, 'a new\n');
  await build(`hash:${f}`);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('a'), 'new');
});

test('hash: a rebuilt index is picked up a second later even when the wall clock was stepped back', async (t) => {
  const { f, d } = await openOldTable(t);
  const wall = Date.now;
  t.mock.method(Date, 'now', () => wall() - 3600_000);   // NTP, an administrator: an hour back
  writeFileSync(f, 'a new\n');
  await build(`hash:${f}`);
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('a'), 'new');
});

test('hash: same answers as real postmap on the same source (CRLF, dups, continuation, case)',
  { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
    const dir = tempDir(t);
    const f = join(dir, 'virtual');
    const src = 'postmaster@myoffice.space postmaster\r\nInfo@MyOffice.space joe\nlong first\n  second\nk1 a\nk1 b\nnovalue\n@myoffice.space catchall\n';
    writeFileSync(f, src);
    postfixBuild(dir, `hash:${f}`);
    await build(`hash:${f}`);
    assert.ok(readFileSync(`${f}.db`).length > 0, 'Postfix wrote its own .db; we did not touch it');
    const keys = ['postmaster@myoffice.space', 'info@myoffice.space', 'INFO@MYOFFICE.SPACE', 'long', 'k1', 'novalue', '@myoffice.space', 'x@myoffice.space'];
    assert.deepEqual((await posternQuery(`hash:${f}`, keys)).answers, postfixQuery(dir, `hash:${f}`, keys));
  });
