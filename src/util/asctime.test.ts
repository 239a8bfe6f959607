/** asctime: C's 24-character form, day padded with a space, local time or UTC. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asctime } from './asctime.ts';

test('asctime pads the day like C, in local time', () => {
  assert.equal(asctime(new Date(2026, 10, 7, 9, 5, 3)), 'Sat Nov  7 09:05:03 2026');
  assert.equal(asctime(new Date(2026, 10, 27, 19, 11, 18)), 'Fri Nov 27 19:11:18 2026');
});

test('asctime(d, true) is the UTC form the old toUTCString() based copy wrote', () => {
  for (const t of [0, 1_795_000_000_000, Date.UTC(2026, 10, 7, 9, 5, 3), Date.UTC(2026, 0, 1, 0, 0, 0), Date.UTC(2024, 1, 29, 23, 59, 59)]) {
    const d = new Date(t);
    const m = /^(\w{3}), (\d{2}) (\w{3}) (\d{4}) (\d{2}:\d{2}:\d{2})/.exec(d.toUTCString())!;
    assert.equal(asctime(d, true), `${m[1]} ${m[3]} ${String(Number(m[2])).padStart(2, ' ')} ${m[5]} ${m[4]}`);
  }
  assert.equal(asctime(new Date(Date.UTC(2026, 10, 7, 9, 5, 3)), true), 'Sat Nov  7 09:05:03 2026');
});
