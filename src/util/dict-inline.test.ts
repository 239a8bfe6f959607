import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dictOpen } from './dict-registry.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

test('inline: key=value pairs, { key = value with spaces }, keys folded', async () => {
  const d = await dictOpen('inline:{ a=b, { c = d e }, User@Example.com=x }');
  assert.equal(await d.lookup('a'), 'b');
  assert.equal(await d.lookup('C'), 'd e');
  assert.equal(await d.lookup('user@example.com'), 'x');
  assert.equal(await d.lookup('zz'), undefined);
});

test('inline: syntax errors with Postfix wording', async () => {
  await assert.rejects(dictOpen('inline:{a=b,c}'),
    { message: 'missing \'=\' after attribute name: "inline:{a=b,c}"; need "inline:{name=value...}"' });
  await assert.rejects(dictOpen('inline:a=b'), /need "inline:\{name=value...\}"/);
  await assert.rejects(dictOpen('inline:{}'), /empty table/);
});

test('inline: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const spec = 'inline:{ a=b, { c = d e }, X=Y }';
  const keys = ['a', 'A', 'c', 'x', 'missing'];
  assert.deepEqual((await posternQuery(spec, keys)).answers, postfixQuery(dir, spec, keys));
});
