import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { addrBytes } from './cidr-match.ts';
import { HAVE_POSTMAP, postfixQuery, posternQuery, tempDir } from '../../test/harness/dict-testkit.ts';

const CIDR = [
  '# client access by network',
  '1.2.3.0/24 net',
  '1.2.3.4/24 host bits set',
  '[::1] v6lo',
  '2001:db8::/32\tdoc',
  'if 192.168.0.0/16',
  '192.168.1.0/24 inner',
  'endif',
  '!10.0.0.0/8 not-ten',
  '10.1.2.3 exact',
  '1.2.3.0/33 bad mask',
  'foo bar',
  '0.0.0.0/0 everything-v4',
  '::/0 everything-v6',
  '',
].join('\r\n');
const KEYS = ['1.2.3.9', '::1', '2001:db8::5', '2001:DB8::5', '10.1.2.3', '192.168.1.5', '192.168.2.5', '11.0.0.1',
  'foo', '[1.2.3.4]', 'fe80::1', '::ffff:1.2.3.4', '01.2.3.4', '1.2.3', '10.9.9.9'];

test('cidr: first match, IPv4 and IPv6, negation, if/endif, bad rules skipped with file:line', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'c');
  writeFileSync(f, CIDR);
  const { answers, warnings } = await posternQuery(`cidr:${f}`, KEYS);
  assert.equal(answers.get('1.2.3.9'), 'net');
  assert.equal(answers.get('2001:DB8::5'), 'doc');
  assert.equal(answers.get('192.168.1.5'), 'inner', 'a rule inside a matching if');
  assert.equal(answers.get('192.168.2.5'), 'not-ten', 'no rule inside the if matched: on after endif');
  assert.equal(answers.get('11.0.0.1'), 'not-ten', 'negation');
  assert.equal(answers.get('10.1.2.3'), 'exact', 'a negated rule does not match its own network');
  assert.equal(answers.get('10.9.9.9'), 'everything-v4');
  assert.equal(answers.get('fe80::1'), 'everything-v6');
  assert.equal(answers.has('foo'), false);
  assert.deepEqual(warnings, [
    `cidr map ${f}, line 3: non-null host address bits in "1.2.3.4/24", perhaps you should use "1.2.3.0/24" instead: skipping this rule`,
    `cidr map ${f}, line 11: bad mask length in "1.2.3.0/33": skipping this rule`,
    `cidr map ${f}, line 12: bad address pattern: "foo": skipping this rule`,
  ]);
});

test('cidr: address parsing', () => {
  assert.deepEqual(addrBytes('::ffff:1.2.3.4'), Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]));
  assert.equal(addrBytes('1.2.3.256'), undefined);
  assert.equal(addrBytes('fe80::1%eth0'), undefined);
});

test('cidr: missing file', async () => {
  await assert.rejects(dictOpen('cidr:/nonexistent/c'), { message: 'open /nonexistent/c: No such file or directory' });
});

test('cidr: same answers as real postmap', { skip: !HAVE_POSTMAP && 'postmap not installed' }, async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'c');
  writeFileSync(f, CIDR);
  assert.deepEqual((await posternQuery(`cidr:${f}`, KEYS)).answers, postfixQuery(dir, `cidr:${f}`, KEYS));
});
