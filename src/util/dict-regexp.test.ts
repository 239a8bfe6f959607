import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

const REGEXP = [
  '# header_checks / virtual regexp style rules',
  '/^(.*)@example\\.com$/ user=$1 ${1}x $$',
  '/[a-/ bad pattern: reported, rule skipped',
  'if /^list-/',
  '/^list-(.*)@lists\\.example\\.org$/ ${1}@mailman',
  'endif',
  '!/^[[:alnum:]._-]+@/ REJECT not an address',
  '/^Bob@/i case-sensitive-bob',
  '/^(a)(b)/ $3',
  '/^nosub@/',
  '/^(x+)(y*)@/ x=$1 y=$2',
  '/^del\\./ dot',
  '/^alt(a|ab)(c|bcd)@/ $1-$2',
  '',
].join('\n');
const KEYS = ['joe@EXAMPLE.com', 'list-dev@lists.example.org', 'list-dev@other.org', 'no-at-sign', 'Bob@x', 'bob@x',
  'ab@x', 'nosub@x', 'xxx@y', 'del.a@x', 'delXa@x', 'plain@nowhere'];

test('regexp: first match wins, $n substitution, if/endif, negation, flags', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'r');
  writeFileSync(f, REGEXP);
  const { answers, warnings } = await posternQuery(`regexp:${f}`, KEYS);
  assert.equal(answers.get('joe@EXAMPLE.com'), 'user=joe joex $');
  assert.equal(answers.get('list-dev@lists.example.org'), 'dev@mailman');
  assert.equal(answers.get('no-at-sign'), 'REJECT not an address');
  assert.equal(answers.get('Bob@x'), 'case-sensitive-bob');
  assert.equal(answers.has('bob@x'), false);
  assert.equal(answers.get('nosub@x'), '');
  assert.equal(answers.get('xxx@y'), 'x=xxx y=');
  assert.equal(answers.has('delXa@x'), false);
  // The bad pattern is reported with file and line, the other rules still work.
  assert.match(warnings[0]!, new RegExp(`^regexp map ${f}, line 3: bad regular expression "\\[a-": .*skipping this rule$`));
  assert.ok(warnings.includes(`regexp map ${f}, line 9: out of range replacement index "3": skipping this rule`));
  assert.ok(warnings.includes(`regexp map ${f}, line 10: no replacement text: using empty string`));
});

test('regexp: hostile input — 10 MB line, NUL byte, CRLF, unbalanced if/endif, missing file', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'r');
  writeFileSync(f, `/^big/ ${'v'.repeat(10 * 1024 * 1024)}\r\n/^nul/ a\0b\r\n/^crlf/ ok\r\nendif\r\nif /^z/\r\n/^zz/ inside\r\n`);
  const { answers, warnings } = await posternQuery(`regexp:${f}`, ['big', 'nul', 'crlf', 'zz', 'y']);
  assert.equal(answers.get('big')!.length, 10 * 1024 * 1024);
  assert.equal(answers.get('nul'), 'a');
  assert.equal(answers.get('crlf'), 'ok');
  assert.equal(answers.get('zz'), 'inside');
  assert.equal(answers.has('y'), false);
  assert.ok(warnings.includes(`regexp map ${f}, line 4: ignoring ENDIF without matching IF`));
  assert.ok(warnings.includes(`regexp map ${f}, line 5: IF has no matching ENDIF`));
  await assert.rejects(dictOpen(`regexp:${join(dir, 'missing')}`), { message: `open ${join(dir, 'missing')}: No such file or directory` });
});

test('regexp: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'r');
  writeFileSync(f, REGEXP);
  assert.deepEqual((await posternQuery(`regexp:${f}`, KEYS)).answers, postfixQuery(dir, `regexp:${f}`, KEYS));
});

const PCRE = [
  '/^(?P<user>[^@]+)@example\\.com$/ user=$1',
  '/^ x y z $/x extended',
  '/^CaSe$/ case-insensitive-by-default',
  '/^Exact$/i exact-case',
  '/^\\Qa.b\\E$/ quoted',
  '/^(?i)mixed(?-i)CASE$/i inline-options',
  '/^lazy(a+?)/ lazy=$1',
  '/^greedy(a+)/U ungreedy=$1',
  '/^(?:x|y)\\d{2,3}\\z/ digits',
  '/^atomic(?>a)/ unsupported',
  '/(unbalanced/ bad',
  '/^s.t$/s dotall',
  '/^\\w+\\s\\w+$/ words',
  'if !/\\.org$/',
  '/^only-non-org/ non-org',
  'endif',
  '/^named-(?<n>\\d+)$/ n=${1}',
  '',
].join('\n');
const PCRE_KEYS = ['joe@example.com', 'xyz', 'case', 'Exact', 'exact', 'a.b', 'axb', 'MIXEDCASE', 'mixedcase',
  'lazyaaa', 'greedyaaa', 'x12', 'y1234', 'atomica', 's\nt', 'only-non-org.com', 'only-non-org.org', 'named-42', 'two words'];

test('pcre: PCRE syntax translated, unsupported features reported with file:line', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'p');
  writeFileSync(f, PCRE);
  const { answers, warnings } = await posternQuery(`pcre:${f}`, PCRE_KEYS);
  assert.equal(answers.get('joe@example.com'), 'user=joe');
  assert.equal(answers.get('xyz'), 'extended');
  assert.equal(answers.get('a.b'), 'quoted');
  assert.equal(answers.has('axb'), false);
  assert.equal(answers.get('lazyaaa'), 'lazy=a');
  assert.equal(answers.get('greedyaaa'), 'ungreedy=a');
  assert.equal(answers.get('named-42'), 'n=42');
  assert.ok(warnings.some((w) => w.startsWith(`pcre map ${f}, line 10: `) && /atomic/.test(w)));
  assert.ok(warnings.some((w) => w.startsWith(`pcre map ${f}, line 11: `)));
});

test('pcre: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'p');
  // Real PCRE supports atomic groups; leave that rule out of the comparison.
  writeFileSync(f, PCRE.split('\n').filter((l) => !l.includes('atomic')).join('\n'));
  const keys = PCRE_KEYS.filter((k) => !k.includes('\n') && k !== 'atomica');
  assert.deepEqual((await posternQuery(`pcre:${f}`, keys)).answers, postfixQuery(dir, `pcre:${f}`, keys));
});
