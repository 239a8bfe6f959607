/**
 * Tests for db-passwd-file's lookups by user (PasswdFileText): the line scan used before the
 * index is ready and the index used after must both answer exactly what parsing the whole file
 * (parsePasswdFile) answers, for every user of a file full of the odd lines administrators'
 * files hold (CRLF, comments, duplicates with a broken first line, upper case, ':' in extra
 * fields, names that are prefixes of others, non-ASCII whose lower case is longer), and for
 * names that are not users (prefixes, suffixes, hostile bytes). A file changed on disk is
 * seen by the next lookup.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../util/msg.ts';
import { PASSWD_INDEX_DELAY_MS, PasswdFileSource, PasswdFileText, parsePasswdFile, type PasswdFileUser } from './db-passwd-file.ts';

const LINES = [
  '# a comment: alice:x',
  'alice@x.test:{PLAIN}a1::::::userdb_mail=maildir:~/Mail quota=1G',
  'Bob@X.Test:{PLAIN}b1:1000:1000:Bob:/home/bob:/bin/sh:a=1',
  'al@x.test:{PLAIN}al',
  'alice@x.test.evil:{PLAIN}no',
  'carol@x.test:{PLAIN}c1:bad uid::::',
  'carol@x.test:{PLAIN}c2',
  'dave@x.test:{PLAIN}d1\r',
  'erin@x.test\r',
  'frank@x.test',
  '   ',
  ':{PLAIN}noname',
  'sp ace@x.test:{PLAIN}s',
  'gina@x.test:{PLAIN}g1',
  'gina@x.test:{PLAIN}g2',
  'nul\0@x.test:{PLAIN}n',
  'hal@x.test:{PLAIN}h:::::rel/home',
  '',
  'last@x.test:{PLAIN}z',
];
const ASKED = ['alice@x.test', 'ALICE@x.test', 'bob@x.test', 'al@x.test', 'alice@x.test.evil', 'alice@x', 'lice@x.test', 'carol@x.test',
  'dave@x.test', 'erin@x.test', 'frank@x.test', 'gina@x.test', 'hal@x.test', 'last@x.test', 'sp ace@x.test', 'nul\0@x.test', '',
  '#', '# a comment', 'alice@x.test:', 'a\nalice@x.test', 'alice@x.test\r', 'nobody@x.test', ':{plain}noname', 'x'.repeat(300)];

function same(a: PasswdFileUser | undefined, b: PasswdFileUser | undefined, who: string): void {
  const strip = (u: PasswdFileUser | undefined) => (u ? { ...u, line: undefined } : u);
  assert.deepEqual(strip(a), strip(b), JSON.stringify(who));
}

/** Until the index of `f` is built (it starts PASSWD_INDEX_DELAY_MS after the first lookup). */
async function indexReady(f?: PasswdFileText): Promise<void> {
  const end = Date.now() + 20_000;
  await new Promise((r) => setTimeout(r, PASSWD_INDEX_DELAY_MS + 20));
  while (f && !f.indexed && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  if (f) assert.ok(f.indexed, 'index built');
}

test('lookups by scan and by index answer what parsing the whole file answers', async () => {
  setLogSink(() => {});
  for (const eol of ['\n', '\r\n']) {
    const text = LINES.join(eol) + eol;
    const whole = parsePasswdFile(text, 'f');
    const scan = new PasswdFileText(text, 'f');
    for (const u of ASKED) same(scan.find(u), whole.users.get(u.toLowerCase()), `scan ${u}`);
    assert.equal(scan.indexed, false);
    await indexReady(scan);
    for (const u of ASKED) same(scan.find(u), whole.users.get(u.toLowerCase()), `index ${u}`);
    assert.deepEqual([...scan.users()].map((u) => u.user), [...whole.users.values()].map((u) => u.user));
    assert.deepEqual(scan.warnings(), whole.warnings);
  }
});

test('a file whose lower case changes its length (non-ASCII) is indexed at once', () => {
  setLogSink(() => {});
  const text = 'İnci@x.test:{PLAIN}i\nzed@x.test:{PLAIN}z\n';
  const f = new PasswdFileText(text, 'f');
  const whole = parsePasswdFile(text, 'f');
  for (const u of ['i̇nci@x.test', 'zed@x.test', 'inci@x.test']) same(f.find(u), whole.users.get(u.toLowerCase()), u);
});

test('a large file: every user found, before and after the index is built', async () => {
  setLogSink(() => {});
  const n = 20_000;
  let text = '';
  for (let i = 1; i <= n; i++) text += `u${i}@x.test:{PLAIN}pw${i}\n`;
  const f = new PasswdFileText(text, 'f');
  for (const i of [1, 2, 10, 11, 100, 19_999, n]) assert.equal(f.find(`u${i}@x.test`)?.password, `{PLAIN}pw${i}`);
  assert.equal(f.find(`u${n + 1}@x.test`), undefined);
  assert.equal(f.find('u1@x.tes'), undefined);
  await indexReady(f);
  for (let i = 1; i <= n; i += 997) assert.equal(f.find(`U${i}@X.TEST`)?.password, `{PLAIN}pw${i}`);
  assert.equal(f.find(`u${n + 1}@x.test`), undefined);
});

test('a changed file is seen by the next lookup; a file replaced while its index is built', async () => {
  setLogSink(() => {});
  const dir = mkdtempSync(join(tmpdir(), 'postern-pwfile-'));
  try {
    const p = join(dir, 'users');
    let text = '';
    for (let i = 1; i <= 30_000; i++) text += `u${i}@x.test:{PLAIN}one\n`;
    writeFileSync(p, text);
    const src = new PasswdFileSource(p);
    assert.equal((await src.find('u30000@x.test'))?.password, '{PLAIN}one');
    writeFileSync(p, text.replace('u30000@x.test:{PLAIN}one', 'u30000@x.test:{PLAIN}two') + 'new@x.test:{PLAIN}n\n');
    utimesSync(p, new Date(), new Date(Date.now() + 5000));
    assert.equal((await src.find('u30000@x.test'))?.password, '{PLAIN}two');
    assert.equal((await src.find('new@x.test'))?.password, '{PLAIN}n');
    await indexReady();
    assert.equal((await src.find('u1@x.test'))?.password, '{PLAIN}one');
    const all: string[] = [];
    for await (const u of src.iterate()) all.push(u);
    assert.equal(all.length, 30_001);
    // concurrent first lookups share one read
    writeFileSync(p, 'a@x.test:{PLAIN}a\n');
    utimesSync(p, new Date(), new Date(Date.now() + 10_000));
    const got = await Promise.all(Array.from({ length: 20 }, () => src.find('a@x.test')));
    assert.ok(got.every((u) => u?.password === '{PLAIN}a'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
