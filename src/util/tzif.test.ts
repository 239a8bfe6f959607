import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { zoneAbbreviation } from './tzif.ts';

const skip = !existsSync('/usr/share/zoneinfo/Europe/Berlin') && 'no tz database in /usr/share/zoneinfo';

/** libc's offset (minutes east) and %Z for each instant, from date(1) (glibc's localtime). */
function libc(tz: string, secs: number[]): { off: number; zone: string }[] {
  const out = execFileSync('date', ['-f', '-', '+%z %Z'], { input: secs.map((s) => `@${s}\n`).join(''), env: { ...process.env, TZ: tz } }).toString();
  return out.trim().split('\n').map((l) => {
    const [z, name] = l.split(' ');
    const m = /^([+-])(\d\d)(\d\d)$/.exec(z!)!;
    return { off: (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])), zone: name! };
  });
}

const at = (iso: string) => Date.parse(iso) / 1000;
/** Each instant and the seconds around it. */
const around = (...isos: string[]) => isos.flatMap((s) => [at(s) - 1, at(s), at(s) + 1]);

const CASES: [string, number[]][] = [
  // Last Sunday of March and of October, 01:00 UTC: CET ↔ CEST.
  ['Europe/Berlin', [...around('2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2028-03-26T01:00:00Z'), at('2026-12-01T09:00:00Z'), at('1995-06-01T00:00:00Z')]],
  // Lord Howe Island: half-hour DST (+1030 ↔ +11), first Sunday of April and of October.
  ['Australia/Lord_Howe', [...around('2026-04-04T15:00:00Z', '2026-10-03T15:30:00Z'), at('2040-01-01T00:00:00Z')]],
  // Numeric abbreviations (no DST since 2019), and one from the footer's rule far ahead.
  ['America/Sao_Paulo', [at('2026-12-01T09:00:00Z'), at('2018-01-01T00:00:00Z'), at('2100-07-01T00:00:00Z')]],
  ['America/New_York', [...around('2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z'), at('2090-07-01T00:00:00Z')]],
  ['Europe/London', [at('2026-01-01T00:00:00Z'), at('2026-07-01T00:00:00Z')]],
  ['Asia/Kolkata', [at('2026-01-01T00:00:00Z')]],
  ['UTC', [at('2026-01-01T00:00:00Z')]],
  ['EST5EDT', [at('2026-01-01T00:00:00Z'), at('2026-07-01T00:00:00Z')]],
  ['<+03>-3', [at('2026-01-01T00:00:00Z')]],
];

for (const [tz, secs] of CASES) {
  test(`zoneAbbreviation: the same %Z as libc in ${tz}`, { skip }, () => {
    const want = libc(tz, secs);
    const got = secs.map((s, i) => ({ off: want[i]!.off, zone: zoneAbbreviation(s * 1000, want[i]!.off, tz) ?? '(none)' }));
    assert.deepEqual(got, want);
  });
}

test('zoneAbbreviation: TZ="" is UTC; an offset the zone never has gives no name', { skip }, () => {
  assert.equal(zoneAbbreviation(0, 0, ''), 'UTC');
  assert.equal(zoneAbbreviation(Date.parse('2026-07-01T00:00:00Z'), 5 * 60, 'Europe/Berlin'), undefined);
  assert.equal(zoneAbbreviation(Date.parse('2026-07-01T00:00:00Z'), 120, ':Europe/Berlin'), 'CEST');
});
