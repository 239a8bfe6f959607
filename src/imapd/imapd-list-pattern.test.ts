/**
 * LIST patterns (RFC 3501 §6.3.8, cmd-list.ts listPattern): `*`, `%`, INBOX in any case, and
 * hostile patterns (64 KB of one character, thousands of wildcards) answered in bounded time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listPattern } from './cmd-list.ts';

test('* matches anything, % anything but the separator, INBOX in any case', () => {
  const m = (p: string, n: string): boolean => listPattern(p, '/')(n);
  assert.ok(m('*', 'a/b/c') && m('%', 'abc') && !m('%', 'a/b') && m('a/%', 'a/b') && !m('a/%', 'a/b/c'));
  assert.ok(m('inbox', 'INBOX') && m('InBoX/%', 'INBOX/x') && !m('inbox', 'Inbox2') && !m('archive', 'Archive'));
  assert.ok(m('a%*%b', 'a/x/b') && m('[%', '[x]') && m(']]', ']]') && !m('a', 'ab') && m('', '') && !m('', 'a'));
  assert.ok(m('%/%', 'a/b') && !m('%/%', 'a') && m('*b', 'abab') && m('a*b*c', 'axxbyyc') && !m('a*b*c', 'axxbyy'));
});

test('hostile patterns: 60,000 brackets, 30,000 wildcards, in bounded time', () => {
  const t0 = performance.now();
  assert.equal(listPattern(']'.repeat(60_000) + '%', '/')(']'.repeat(1000)), false);
  assert.equal(listPattern('*a'.repeat(30_000), '/')('a'.repeat(1000)), false);
  assert.equal(listPattern('%*'.repeat(30_000) + 'z', '/')('a'.repeat(1000) + 'z'), true);
  assert.ok(performance.now() - t0 < 10_000);
});
