import { test } from 'node:test';
import assert from 'node:assert/strict';
import { masquerade } from './cleanup-masq.ts';

test('masquerade_domains: first matching entry decides; ! entries and exact domains stop; exceptions kept', () => {
  const d = ['!internal.example.com', 'example.com'];
  const ex = new Set(['root']);
  assert.equal(masquerade('joe@host.sub.example.com', d, ex), 'joe@example.com');
  assert.equal(masquerade('Joe@HOST.Example.COM', d, ex), 'Joe@example.com');
  assert.equal(masquerade('joe@example.com', d, ex), 'joe@example.com');
  assert.equal(masquerade('joe@box.internal.example.com', d, ex), 'joe@box.internal.example.com');
  assert.equal(masquerade('root@host.example.com', d, ex), 'root@host.example.com');
  assert.equal(masquerade('joe@notexample.com', d, ex), 'joe@notexample.com', 'a suffix that is not a parent domain');
  assert.equal(masquerade('joe', d, ex), 'joe');
  assert.equal(masquerade('joe@host.example.com', [], ex), 'joe@host.example.com');
  // Order matters (Postfix): a broader domain first wins over a narrower one.
  assert.equal(masquerade('joe@a.b.example.com', ['example.com', 'b.example.com'], ex), 'joe@example.com');
  assert.equal(masquerade('joe@a.b.example.com', ['b.example.com', 'example.com'], ex), 'joe@b.example.com');
});
