import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Maps } from './maps.ts';
import { DictError } from '../util/dict.ts';
import { tempDir } from '../../test/harness/dict-testkit.ts';

const quiet = { warn: () => {} };

test('Maps: first table with the key wins, in the order of the parameter', async () => {
  const m = await Maps.open('inline:{a=first}, inline:{a=second, b=only-second}', quiet);
  assert.equal(await m.find('a'), 'first');
  assert.equal(await m.find('B'), 'only-second');
  assert.equal(await m.find('c'), undefined);
  assert.equal(await m.find(''), undefined);
  assert.equal(m.isEmpty, false);
  await m.close();
});

test('Maps: empty parameter is an empty list', async () => {
  const m = await Maps.open('', quiet);
  assert.equal(m.isEmpty, true);
  assert.equal(await m.find('a'), undefined);
});

test('Maps: an error stops the search and is rethrown, never "not found" (maps.c)', async (t) => {
  const dir = tempDir(t);
  const warnings: string[] = [];
  const m = await Maps.open(`inline:{a=1}, hash:${join(dir, 'missing')}, inline:{b=2}`,
    { paramName: 'virtual_alias_maps', warn: (w) => warnings.push(w) });
  assert.equal(await m.find('a'), '1');           // found before the broken table
  await assert.rejects(m.find('b'), (e: unknown) => e instanceof DictError && e.kind === 'config' &&
    e.message === `virtual_alias_maps: hash:${join(dir, 'missing')}: open database ${join(dir, 'missing')}.pdb: No such file or directory`);
  assert.equal(m.openErrors.length, 1);
  assert.equal(warnings.length, 1);
});

test('Maps: fixedOnly skips regexp/pcre tables (DICT_FLAG_FIXED)', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 're');
  writeFileSync(f, '/.*/ from-regexp\n');
  const m = await Maps.open(`regexp:${f} inline:{x=from-inline}`, quiet);
  assert.equal(await m.find('x'), 'from-regexp');
  assert.equal(await m.find('x', { fixedOnly: true }), 'from-inline');
  assert.equal(await m.find('y', { fixedOnly: true }), undefined);
});
