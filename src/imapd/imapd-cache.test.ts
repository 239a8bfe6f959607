/**
 * imapd-cache: an answer that is a view on a larger buffer is kept in a buffer of its own, so
 * the cache's byte bound is what it really holds (a 300-byte ENVELOPE must not keep a 64 KB
 * chunk alive).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageCache } from './imapd-cache.ts';

test('a cached answer owns exactly its bytes, whatever buffer it was cut from', () => {
  const cache = new MessageCache(1024 * 1024);
  const chunk = Buffer.alloc(64 * 1024, 0x41);
  const view = chunk.subarray(1000, 1300);
  view.write('("Mon, 7 Dec 2026 10:00:00 +0000" "hello" NIL NIL NIL NIL NIL NIL NIL NIL)');
  const m = { guid: '1765188000.M1P2.host', vsize: 2048 };
  cache.set('box', m, 'ENVELOPE', view);
  const got = cache.get('box', m, 'ENVELOPE')!;
  assert.deepEqual(got, view);
  assert.equal(got.buffer.byteLength, 300, 'not the 64 KB chunk');
  chunk.fill(0);   // the chunk reused by its writer: the cached answer does not change
  assert.match(got.toString('latin1'), /^\("Mon, 7 Dec 2026/);
  // A buffer that is already exactly its own is kept as it is.
  const own = Buffer.from('(NIL NIL)');
  const exact = Buffer.allocUnsafeSlow(own.length);
  own.copy(exact);
  cache.set('box', m, 'BODY', exact);
  assert.equal(cache.get('box', m, 'BODY'), exact);
});

test('the byte bound evicts the oldest entries first', () => {
  const cache = new MessageCache(10_000);
  for (let i = 0; i < 100; i++) cache.set('box', { guid: `g${i}`, vsize: i }, 'ENVELOPE', Buffer.alloc(1000, 0x42));
  assert.ok(cache.size < 12, `${cache.size} entries for a 10,000-byte bound`);
  assert.equal(cache.get('box', { guid: 'g0', vsize: 0 }, 'ENVELOPE'), undefined);
  assert.ok(cache.get('box', { guid: 'g99', vsize: 99 }, 'ENVELOPE'));
});
