import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dictOpen } from './dict-registry.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

test('static: returns its name for every key; braces allow spaces', async () => {
  assert.equal(await (await dictOpen('static:5000')).lookup('anything@example.com'), '5000');
  assert.equal(await (await dictOpen('static:{ text with spaces }')).lookup('x'), 'text with spaces');
});

test('static: errors as Postfix', async () => {
  await assert.rejects(dictOpen('static:{a'), /bad static:name syntax: missing '}' in "\{a"/);
  await assert.rejects(dictOpen('static:'), /expecting "type:name" form instead of "static:"/);
});

test('static: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  for (const spec of ['static:5000', 'static:{a b c}']) {
    const keys = ['x', 'Y@Example.COM'];
    assert.deepEqual((await posternQuery(spec, keys)).answers, postfixQuery(dir, spec, keys));
  }
});
