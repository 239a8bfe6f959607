import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Maps } from './maps.ts';
import { extensionIndex, mailAddrFind } from './mail-addr-find.ts';
import { DictError } from '../util/dict.ts';
import { tempDir } from '../../test/harness/dict-testkit.ts';

const local = (d: string) => d === 'local.example';

test('search order: user+ext@domain, user@domain, user+ext, user (local only), @domain', async () => {
  const all = 'inline:{ joe+spam@local.example=1, joe@local.example=2, joe+spam=3, joe=4, @local.example=5 }';
  const steps: [string, string, string][] = [
    ['joe+spam@local.example', '1', 'joe+spam@local.example'],
  ];
  const m = await Maps.open(all);
  for (const [addr, value, key] of steps) {
    assert.deepEqual(await mailAddrFind(m, addr, { recipientDelimiter: '+', isLocalDomain: local }), { value, key });
  }
  // Remove entries one by one and check the next key is used.
  const order = ['joe+spam@local.example', 'joe@local.example', 'joe+spam', 'joe', '@local.example'];
  for (let i = 0; i < order.length; i++) {
    const entries = order.slice(i).map((k, j) => `${k}=${i + j + 1}`).join(', ');
    const mm = await Maps.open(`inline:{ ${entries} }`);
    const r = await mailAddrFind(mm, 'Joe+Spam@Local.Example', { recipientDelimiter: '+', isLocalDomain: local });
    assert.deepEqual(r, { value: String(i + 1), key: order[i] }, `step ${i}`);
  }
});

test('bare user and user+ext are NOT tried for a non-local domain (seed: virtual domains)', async () => {
  const m = await Maps.open('inline:{ info=local-user, @myoffice.space=catchall }');
  assert.deepEqual(await mailAddrFind(m, 'info@myoffice.space', { isLocalDomain: local }), { value: 'catchall', key: '@myoffice.space' });
  const m2 = await Maps.open('inline:{ info=local-user }');
  assert.equal(await mailAddrFind(m2, 'info@myoffice.space', { isLocalDomain: local }), undefined);
});

test('several delimiter characters; no split for an empty user, owner-foo or foo-request', () => {
  assert.equal(extensionIndex('joe-a+b', '+-'), 3);
  assert.equal(extensionIndex('+joe', '+'), -1);
  assert.equal(extensionIndex('owner-list', '-'), -1);
  assert.equal(extensionIndex('list-request', '-'), -1);
  assert.equal(extensionIndex('list-request', '+'), -1);
  assert.equal(extensionIndex('joe', ''), -1);
});

test('regexp tables only see the full address', async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 're');
  writeFileSync(f, '/^joe@/ regexp-hit\n');
  const m = await Maps.open(`regexp:${f}`);
  assert.equal(await mailAddrFind(m, 'joe+x@example.com', { recipientDelimiter: '+' }), undefined);
  assert.deepEqual(await mailAddrFind(m, 'joe@example.com'), { value: 'regexp-hit', key: 'joe@example.com' });
});

test('an address without a domain: user+ext then user', async () => {
  const m = await Maps.open('inline:{ joe=4 }');
  assert.deepEqual(await mailAddrFind(m, 'joe+x', { recipientDelimiter: '+' }), { value: '4', key: 'joe' });
});

test('an error stops the search', async (t) => {
  const dir = tempDir(t);
  const m = await Maps.open(`hash:${join(dir, 'missing')}, inline:{@example.com=catchall}`, { warn: () => {} });
  await assert.rejects(mailAddrFind(m, 'a@example.com'), DictError);
});
