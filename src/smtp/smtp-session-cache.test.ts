/**
 * smtp-session-cache: bounded idle-connection cache (Postfix scache semantics): one taker per
 * connection, dead or chatty connections dropped, oldest evicted, idle limit enforced,
 * reuse count limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SmtpSessionCache } from './smtp-session-cache.ts';
import type { SmtpSession } from './smtp-proto.ts';

function fakeSession(o: { open?: boolean; pending?: boolean } = {}): SmtpSession & { closed: boolean } {
  const s = {
    closed: false,
    reuseCount: 0,
    features: { esmtp: true, pipelining: true, eightBitMime: true, dsn: false, smtputf8: false, starttls: false, auth: [] },
    conn: { get isOpen() { return (o.open ?? true) && !s.closed; }, get hasPendingInput() { return o.pending ?? false; }, close() { s.closed = true; } },
  };
  return s as unknown as SmtpSession & { closed: boolean };
}

const quitted: SmtpSession[] = [];
const opts = { idleMs: 50, maxEntries: 2, reuseCountLimit: 3, reuseTimeMs: 60_000, quit: async (s: SmtpSession) => { quitted.push(s); } };

test('take() hands a cached session out once, for its own key only', () => {
  const c = new SmtpSessionCache(opts);
  const s = fakeSession();
  c.put('[a]:25', s);
  assert.equal(c.take('[b]:25'), undefined);
  assert.equal(c.take('[a]:25'), s);
  assert.equal(c.take('[a]:25'), undefined);
});

test('a connection closed while idle, or with unasked input (421), is dropped on take()', () => {
  const c = new SmtpSessionCache(opts);
  const dead = fakeSession({ open: false });
  const chatty = fakeSession({ pending: true });
  c.put('k', dead);
  c.put('k', chatty);
  assert.equal(c.take('k'), undefined);
  assert.equal(chatty.closed, true);
  assert.equal(c.size, 0);
});

test('bounded: the oldest idle session is QUIT when the cache is full; idle limit closes the rest', async () => {
  quitted.length = 0;
  const c = new SmtpSessionCache(opts);
  const [a, b, d] = [fakeSession(), fakeSession(), fakeSession()];
  c.put('a', a); c.put('b', b); c.put('d', d);
  assert.equal(c.size, 2);
  assert.deepEqual(quitted, [a]);
  await new Promise((r) => setTimeout(r, 120));
  assert.equal(c.size, 0);
  assert.equal(quitted.length, 3);
});

test('reuse count limit and disabled cache', () => {
  const c = new SmtpSessionCache(opts);
  const s = fakeSession();
  c.opening(s);
  assert.equal(c.mayCache(s), true);
  s.reuseCount = 3;
  assert.equal(c.mayCache(s), false);
  assert.equal(new SmtpSessionCache({ ...opts, idleMs: 0 }).mayCache(fakeSession()), false);
});

test('smtp_connection_reuse_time_limit counts on the monotonic clock: a wall clock stepped back does not extend it', async (t) => {
  const c = new SmtpSessionCache({ ...opts, reuseTimeMs: 1000 });
  const s = fakeSession();
  c.opening(s);
  assert.equal(c.mayCache(s), true);
  const wall = Date.now;
  t.mock.method(Date, 'now', () => wall() - 3600_000);   // an hour back
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(c.mayCache(s), false, 'older than the reuse time limit');
});
