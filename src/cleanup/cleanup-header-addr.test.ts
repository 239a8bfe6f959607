import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findAddresses, rewriteHeaderValue } from './cleanup-header-addr.ts';

const addrs = (v: string) => findAddresses(v).map((s) => s.address);

test('addresses in header values: angle addresses, bare addresses, comments, quoted names, groups', () => {
  assert.deepEqual(addrs(' joe@example.com'), ['joe@example.com']);
  assert.deepEqual(addrs(' Joe Smith <joe@example.com>'), ['joe@example.com']);
  assert.deepEqual(addrs(' "Smith, Joe" <joe@example.com>, ann@example.org (Ann)'), ['joe@example.com', 'ann@example.org']);
  assert.deepEqual(addrs(' joe@example.com (Joe <not@this>)'), ['joe@example.com']);
  assert.deepEqual(addrs(' team: a@x.example, b@y.example;, c@z.example'), ['a@x.example', 'b@y.example', 'c@z.example']);
  assert.deepEqual(addrs(' undisclosed-recipients:;'), []);
  assert.deepEqual(addrs(' a@x.example,\n\tb@y.example'), ['a@x.example', 'b@y.example']);
  assert.deepEqual(addrs(''), []);
});

test('rewriting replaces only the address text; unchanged values stay undefined', async () => {
  const up = async (a: string) => (a === 'joe@example.com' ? 'Joe.Smith@example.com' : a);
  assert.equal(await rewriteHeaderValue(' "Smith, Joe"  <joe@example.com> (home),\n\tann@example.org', up),
    ' "Smith, Joe"  <Joe.Smith@example.com> (home),\n\tann@example.org');
  assert.equal(await rewriteHeaderValue(' ann@example.org', up), undefined);
  // Hostile: unbalanced brackets, quotes and comments do not throw.
  for (const v of [' <joe@example.com', ' "unterminated <joe@example.com>', ' (open comment joe@example.com', ' >>><<<', '\u0000joe@example.com']) {
    await rewriteHeaderValue(v, up);
  }
});
