import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAVE_POSTMAP, POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';

const POSTERN = join(import.meta.dirname, '../../bin/postern');

function postern(args: string[], input?: string) {
  const r = spawnSync(POSTERN, ['map', ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
function postfix(dir: string, args: string[], input?: string) {
  const r = spawnSync(POSTMAP, ['-c', dir, ...args], { input, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
const sorted = (s: string) => s.split('\n').filter(Boolean).sort().join('\n');

const SOURCE = 'info@myoffice.space myoffice.space/info\nsales@myoffice.space myoffice.space/sales/\n# comment\n@myoffice.space myoffice.space/catchall\n';

test('postern map FILE builds FILE.pdb (default type hash); -q prints the value', (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'vmailbox');
  writeFileSync(f, SOURCE);
  assert.equal(postern([f]).code, 0);
  assert.ok(existsSync(`${f}.pdb`));
  assert.ok(!existsSync(`${f}.db`), 'never writes Postfix\'s .db name');
  assert.deepEqual(postern(['-q', 'SALES@myoffice.space', `hash:${f}`]), { code: 0, out: 'myoffice.space/sales/\n', err: '' });
  assert.deepEqual(postern(['-q', 'nobody@myoffice.space', `hash:${f}`]), { code: 1, out: '', err: '' });
});

test('postern map: fatal errors and exit codes as postmap', (t) => {
  const dir = tempDir(t);
  const r = postern([join(dir, 'none')]);
  assert.deepEqual(r, { code: 1, out: '', err: `postmap: fatal: open ${join(dir, 'none')}: No such file or directory\n` });
  const q = postern(['-q', 'x', `hash:${join(dir, 'none')}`]);
  assert.equal(q.err, `postmap: fatal: open database ${join(dir, 'none')}.pdb: No such file or directory\n`);
  assert.equal(q.code, 1);
  assert.equal(postern(['-q', 'x', '-s', 'static:x']).err, 'postmap: fatal: specify only one of -s or -q or -d\n');
  assert.match(postern([]).err, /^postmap: fatal: usage: postmap /);
  assert.equal(postern(['-q', 'x', 'nosuch:type']).err, 'postmap: fatal: unsupported dictionary type: nosuch\n');
  assert.equal(postern([`regexp:${dir}/r`]).err, 'postmap: fatal: unsupported dictionary type: regexp does not support bulk-mode creation.\n');
});

test('postern map -i adds, -d deletes, -s dumps', (t) => {
  const dir = tempDir(t);
  const f = join(dir, 't');
  writeFileSync(f, 'a 1\nb 2\n');
  assert.equal(postern([`hash:${f}`]).code, 0);
  const i = postern(['-i', `hash:${f}`], 'a 9\nc 3\n');
  assert.equal(i.code, 0);
  assert.equal(i.err, `postmap: warning: ${f}.pdb: duplicate entry: "a"\n`);
  assert.equal(postern(['-d', 'A', `hash:${f}`]).code, 0);
  assert.equal(postern(['-d', 'zz', `hash:${f}`]).code, 1);
  assert.deepEqual(postern(['-s', `hash:${f}`]), { code: 0, out: 'b\t2\nc\t3\n', err: '' });
  assert.ok(postern(['-s', `regexp:${f}`]).err.endsWith(`postmap: fatal: table regexp:${f}: sequence operation is not supported\n`));
});

test('unreadable source file (as an unprivileged user; root reads everything)',
  { skip: process.getuid?.() !== 0 && 'needs root to switch to uid 65534' }, (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const f = join(dir, 'secret');
    writeFileSync(f, 'a b\n');
    chmodSync(f, 0o000);
    const r = spawnSync(POSTERN, ['map', '-q', 'a', `texthash:${f}`], { uid: 65534, gid: 65534, encoding: 'utf8' });
    assert.equal(r.stderr, `postmap: fatal: open database ${f}: Permission denied\n`);
    assert.equal(r.status, 1);
  });

test('postern map and real postmap give the same output: -q, -q -, -s, exit codes',
  { skip: !HAVE_POSTMAP && 'postmap not installed' }, (t) => {
    const dir = tempDir(t);
    const f = join(dir, 'vmailbox');
    writeFileSync(f, SOURCE + 'UPPER@Example.COM Value With Spaces\r\ndup 1\ndup 2\n');
    assert.equal(postfix(dir, [`hash:${f}`]).code, 0);
    assert.equal(postern([`hash:${f}`]).code, 0);
    for (const key of ['info@myoffice.space', 'upper@example.com', 'DUP', 'missing']) {
      const a = postfix(dir, ['-q', key, `hash:${f}`]);
      const b = postern(['-q', key, `hash:${f}`]);
      assert.deepEqual([b.code, b.out], [a.code, a.out], key);
    }
    const keys = 'info@myoffice.space\nmissing\nUPPER@example.com\n@myoffice.space\n\n';
    const a = postfix(dir, ['-q', '-', `hash:${f}`], keys);
    const b = postern(['-q', '-', `hash:${f}`], keys);
    assert.deepEqual([b.code, b.out], [a.code, a.out]);
    assert.equal(sorted(postern(['-s', `hash:${f}`]).out), sorted(postfix(dir, ['-s', `hash:${f}`]).out));
    const none = postfix(dir, ['-q', '-', `hash:${f}`], 'x\ny\n');
    assert.deepEqual(postern(['-q', '-', `hash:${f}`], 'x\ny\n').code, none.code);
  });
