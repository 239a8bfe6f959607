import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

const SOURCE = [
  '# virtual(5) as in the seed document',
  'postmaster@stud12.myoffice.space postmaster',
  'Info@stud12.myoffice.space   joe',
  'sales@stud12.myoffice.space\tjane, Bob@Example.com',
  'multi first',
  '  second line',
  'crlf value\r',
  'lonely',
  'info@stud12.myoffice.space duplicate-ignored',
  '',
].join('\n');
const KEYS = ['postmaster@stud12.myoffice.space', 'INFO@stud12.myoffice.space', 'sales@stud12.myoffice.space',
  'multi', 'crlf', 'lonely', 'nobody@stud12.myoffice.space', '@stud12.myoffice.space'];

test('texthash: postmap source read into memory, first duplicate wins with a warning', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'virtual');
  writeFileSync(f, SOURCE);
  const { answers, warnings } = await posternQuery(`texthash:${f}`, KEYS);
  assert.equal(answers.get('INFO@stud12.myoffice.space'), 'joe');
  assert.equal(answers.get('sales@stud12.myoffice.space'), 'jane, Bob@Example.com');
  assert.equal(answers.get('multi'), 'first  second line');
  assert.equal(answers.get('crlf'), 'value');
  assert.equal(answers.has('lonely'), false);
  assert.deepEqual(warnings, [
    `${f}, line 8: expected format: key whitespace value -- ignoring this line`,
    `${f}, line 9: duplicate entry: "info@stud12.myoffice.space"`,
  ]);
});

test('texthash: -f (no folding) keeps case', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 't');
  writeFileSync(f, 'Key v\n');
  assert.equal((await posternQuery(`texthash:${f}`, ['Key'], false)).answers.get('Key'), 'v');
  assert.equal((await posternQuery(`texthash:${f}`, ['key'], false)).answers.get('key'), undefined);
});

test('texthash: missing file fails like Postfix', async () => {
  await assert.rejects(dictOpen('texthash:/nonexistent/t'), { message: 'open database /nonexistent/t: No such file or directory' });
});

test('texthash: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'virtual');
  writeFileSync(f, SOURCE);
  assert.deepEqual((await posternQuery(`texthash:${f}`, KEYS)).answers, postfixQuery(dir, `texthash:${f}`, KEYS));
});
