/**
 * Tests for console-maillog.ts and console-session.ts: log line times (no year in the line; a
 * December line read in January is last year's), the hour/day buckets, the search bounds and
 * refusals, junk lines; sessions expiring when idle, cookies parsed strictly, CSRF comparison.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activity, badQuery, eventOf, lineTime, search, tailLines, SEARCH_LIMIT } from './console-maillog.ts';
import { SessionStore, cookieValue, sameSecret, COOKIE } from './console-session.ts';

const stamp = (d: Date) => `${d.toLocaleString('en-US', { month: 'short' })} ${String(d.getDate()).padStart(2, '0')} ${d.toTimeString().slice(0, 8)}`;

test('log line times: this year, or last year for a time after now', () => {
  const now = new Date(2027, 0, 2, 10, 0, 0);
  assert.equal(lineTime('Jan 02 09:59:00 mx postern/smtp[1]: x', now), new Date(2027, 0, 2, 9, 59, 0).getTime());
  assert.equal(lineTime('Dec 31 23:00:00 mx postern/smtp[1]: x', now), new Date(2026, 11, 31, 23, 0, 0).getTime());
  assert.equal(lineTime('Foo 31 23:00:00 mx x', now), undefined);
  assert.equal(lineTime('\0\0garbage', now), undefined);
  assert.equal(lineTime('', now), undefined);
});

test('activity: five-minute and hourly buckets, kinds, junk ignored', () => {
  const now = new Date(2026, 5, 15, 12, 0, 0);
  const at = (minAgo: number, text: string) => `${stamp(new Date(now.getTime() - minAgo * 60_000))} mx postern/x[1]: ${text}`;
  const lines = [
    at(1, 'ABC: to=<a@b>, relay=virtual, status=sent (delivered)'),
    at(2, 'ABC: to=<c@b>, relay=virtual, status=sent (delivered)'),
    at(7, 'DEF: to=<x@y>, status=deferred (connect refused)'),
    at(30, 'NOQUEUE: reject: RCPT from h[1.2.3.4]: 550 5.1.1 <n@b>: Recipient address rejected'),
    at(90, 'GHI: to=<a@b>, status=bounced (unknown user)'),
    at(60 * 30, 'OLD: to=<a@b>, status=sent (too old for the day)'),
    'junk without a time status=sent',
    at(-30, 'FUT: status=sent (in the future)'),
  ];
  const a = activity(lines, now);
  assert.equal(a.hour.delivered[11], 2);
  assert.equal(a.hour.deferred[10], 1);
  assert.equal(a.hour.rejected[5], 1);
  assert.equal(a.hour.bounced.reduce((x, y) => x + y, 0), 0);
  assert.equal(a.day.bounced[22], 1);
  assert.equal(a.day.delivered.reduce((x, y) => x + y, 0), 2);
  assert.equal(eventOf('x status=sentinel'), undefined);
});

test('search: case-insensitive, newest 500, hostile queries refused', () => {
  const lines = Array.from({ length: 700 }, (_, i) => `Jun 15 12:00:00 mx postern/qmgr[1]: Q${i}: from=<Alice@Example.org>`);
  const r = search(lines, 'alice@example.ORG');
  assert.equal(r.lines.length, SEARCH_LIMIT);
  assert.equal(r.more, true);
  assert.match(r.lines[r.lines.length - 1]!, /Q699:/);
  assert.equal(search(lines, 'Q42:').lines.length, 1);
  assert.ok(badQuery('a\nb'));
  assert.ok(badQuery('\0'));
  assert.ok(badQuery('x'.repeat(257)));
  assert.equal(badQuery('../../etc/passwd'), undefined, 'a plain substring: never a path');
});

test('tailLines: a missing file or /dev/ path reads nothing; a partial first line is dropped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-console-log-'));
  try {
    assert.deepEqual(await tailLines(join(dir, 'none')), []);
    assert.deepEqual(await tailLines('/dev/stdout'), []);
    writeFileSync(join(dir, 'log'), 'one\ntwo\n');
    assert.deepEqual(await tailLines(join(dir, 'log')), ['one', 'two']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sessions: idle expiry, strict cookie ids, constant-time CSRF comparison', () => {
  const store = new SessionStore(1000);
  const s = store.create('a@b', true, 0);
  const cookie = `other=1; ${COOKIE}=${s.id}`;
  assert.equal(store.get(cookie, 500)?.user, 'a@b');
  assert.equal(store.get(cookie, 1400)?.user, 'a@b', 'each request extends the idle time');
  assert.equal(store.get(cookie, 2500), undefined, 'idle too long');
  const t = store.create('c@d', false, 0);
  assert.equal(store.get(`${COOKIE}=${t.id}x`, 1), undefined);
  assert.equal(store.get(`${COOKIE}=../../etc/passwd`, 1), undefined);
  assert.equal(store.get(`${COOKIE}=${'a'.repeat(9000)}`, 1), undefined);
  store.endUser('c@d');
  assert.equal(store.get(`${COOKIE}=${t.id}`, 1), undefined);
  assert.equal(cookieValue(undefined, COOKIE), undefined);
  assert.equal(sameSecret(s.csrf, s.csrf), true);
  assert.equal(sameSecret(s.csrf, s.csrf.slice(0, -1)), false);
  assert.equal(sameSecret('', s.csrf), false);
});
