/**
 * sieve-regex tests: the linear-time POSIX ERE matcher against GNU grep -E (POSIX extended
 * syntax, leftmost-longest), pattern by pattern over the same subject lines: whether each line
 * matches (also with -i for i;ascii-casemap) and the first match's text (grep -o), which is
 * Sieve's ${0}; and the errors of invalid patterns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { compileSieveRegex, REGEX_MAX_PROGRAM } from './sieve-regex.ts';

const SUBJECTS = [
  'order 123456', 'Order 12345', 'hello world', 'Hello, World!', 'aaaaab', 'abcabcabc', 'foo.bar@baz.example',
  'x', '', '[Work] status report', 'Re: Re: FW: thing', 'price: $100', 'a+b=c', 'tab\there', 'ünïcödé ok',
  'mississippi', 'abab', 'The quick brown fox', '2026-12-07', 'AbC', 'path/to/file.txt', '((nested))',
];

const PATTERNS = [
  'order [0-9]+', '^order [0-9]{6}$', 'o+', 'l{2}', 'l{2,}o', 'x{0}y?', '^$', '^', 'world$', '[[:upper:]][[:lower:]]+',
  '[[:digit:]]{4}-[[:digit:]]{2}', '(ab)+', '(a|ab)(c|bcd)', 'a*b', '(a*)*b', '(a+)+$', 'iss(iss)?', 's+i', 'p{2}i$',
  '\\[([A-Za-z]+)\\]', '^(Re|FW): ', '(Re: )+', '\\$[0-9]+', 'a\\+b', '[^a-z ]+', '[]a]', '[a-]', 'fo[xo]', '\\bfox\\b',
  '\\<quick', 'brown\\>', '\\w+@\\w+', '\\s', '\\S+$', '.', '.*', 'b.*b', 'h.llo', '(^|,) *World', 'abc|xyz|foo',
  'ab?c?', '(x|y|z)?$', '[.]txt$', 'to/', '\\(\\(', 'c{1,2}', '(a|b)*c', '[[:punct:]]', '[[:space:]][[:alpha:]]',
];

const haveGrep = existsSync('/usr/bin/grep') || existsSync('/bin/grep');

function grep(pattern: string, icase: boolean, only: boolean): Map<number, string> {
  const r = spawnSync('grep', ['-E', '-n', '-a', ...(icase ? ['-i'] : []), ...(only ? ['-o'] : []), '--', pattern], {
    input: SUBJECTS.join('\n') + '\n', encoding: 'utf8', env: { LC_ALL: 'C' },
  });
  const out = new Map<number, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+):(.*)$/s.exec(line);
    if (m && !out.has(Number(m[1]) - 1)) out.set(Number(m[1]) - 1, m[2]!);
  }
  return out;
}

test('matches and ${0} agree with GNU grep -E (POSIX ERE), with and without -i', { skip: haveGrep ? undefined : 'grep missing' }, () => {
  const diffs: string[] = [];
  for (const p of PATTERNS) {
    for (const icase of [false, true]) {
      const r = compileSieveRegex(p, icase);
      assert.ok(!('error' in r), `${p}: ${'error' in r ? r.error : ''}`);
      const lines = grep(p, icase, false);
      const first = grep(p, icase, true);
      SUBJECTS.forEach((s, i) => {
        if (/[^\x00-\x7f]/.test(s)) return; // grep runs in the C locale: bytes, not characters
        const m = r.exec(s);
        if ((m !== null) !== lines.has(i)) diffs.push(`${p}${icase ? ' (i)' : ''} on ${JSON.stringify(s)}: ours ${m !== null}, grep ${lines.has(i)}`);
        else if (m && first.has(i) && m[0] !== first.get(i)) diffs.push(`${p}${icase ? ' (i)' : ''} on ${JSON.stringify(s)}: \${0} ours ${JSON.stringify(m[0])}, grep ${JSON.stringify(first.get(i))}`);
      });
    }
  }
  assert.deepEqual(diffs, []);
});

test('groups: ${1}.. of the chosen match', () => {
  const r = compileSieveRegex('^\\[([a-z]+)\\] (.*)$', true);
  assert.ok(!('error' in r));
  assert.deepEqual(r.exec('[Work] status report'), ['[Work] status report', 'Work', 'status report']);
  const o = compileSieveRegex('(x)?y', false);
  assert.ok(!('error' in o));
  assert.deepEqual(o.exec('y'), ['y', undefined]);
});

test('invalid patterns: glibc regerror() wording', () => {
  const err = (p: string) => { const r = compileSieveRegex(p, false); return 'error' in r ? r.error : 'ok'; };
  assert.equal(err('(b'), 'unmatched ( or \\(');
  assert.equal(err('b)'), 'unmatched ) or \\)');
  assert.equal(err('[abc'), 'unmatched [, [^, [:, [., or [=');
  assert.equal(err('a{3,1}'), 'invalid content of \\{\\}');
  assert.equal(err('[[:nope:]]'), 'invalid character class name');
  assert.equal(err('z-a]'), 'ok');
  assert.equal(err('[z-a]'), 'invalid range end');
  assert.equal(err('a\\'), 'trailing backslash');
  assert.equal(err('(a{255}){255}'), 'regular expression too big');
  assert.ok(REGEX_MAX_PROGRAM >= 10_000);
});
