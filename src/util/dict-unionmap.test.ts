import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { DictError } from './dict.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

test('unionmap: all results joined with commas; not found when none has the key', async () => {
  const d = await dictOpen('unionmap:{inline:{a=1}, inline:{a=2,b=5}, static:3}');
  assert.equal(await d.lookup('a'), '1,2,3');
  const e = await dictOpen('unionmap:{inline:{a=1},inline:{b=2}}');
  assert.equal(await e.lookup('z'), undefined);
});

test('pipemap: the result of one table is the key of the next', async () => {
  const d = await dictOpen('pipemap:{inline:{a=B}, inline:{b=x}}');
  assert.equal(await d.lookup('a'), 'x');
  assert.equal(await d.lookup('b'), undefined);
});

test('unionmap/pipemap: syntax errors and member errors', async () => {
  await assert.rejects(dictOpen('unionmap:{}'), { message: 'bad syntax: "unionmap:{}"; need "unionmap:{type:name...}"' });
  await assert.rejects(dictOpen('pipemap:inline:{a=1}'), /need "pipemap:\{type:name...\}"/);
  await assert.rejects(dictOpen('unionmap:{inline:{a=1}, hash:/nonexistent/x}'), (e: unknown) =>
    e instanceof DictError && e.message === 'open database /nonexistent/x.pdb: No such file or directory');
});

test('unionmap and pipemap: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'r');
  writeFileSync(f, '/^(.*)@old\\.example$/ $1@new.example\n');
  const keys = ['a', 'b', 'z', 'joe@old.example'];
  for (const spec of [
    'unionmap:{inline:{a=1}, inline:{a=2,b=5}, static:3}',
    `pipemap:{regexp:${f}, inline:{joe@new.example=joe@mailbox}}`,
    'pipemap:{inline:{a=B}, inline:{b=x}}',
  ]) {
    assert.deepEqual((await posternQuery(spec, keys)).answers, postfixQuery(dir, spec, keys), spec);
  }
});
