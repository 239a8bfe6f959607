import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mailDate } from './mail-date.ts';

const skip = !existsSync('/usr/share/zoneinfo/Europe/Berlin') && 'no tz database in /usr/share/zoneinfo';

/** What Postfix's mail_date() writes: strftime("%a, %e %b %Y %H:%M:%S ") + offset + " (%Z)", via date(1). */
function libcDates(tz: string, secs: number[]): string[] {
  return execFileSync('date', ['-f', '-', '+%a, %e %b %Y %H:%M:%S %z (%Z)'], {
    input: secs.map((s) => `@${s}\n`).join(''), env: { ...process.env, TZ: tz, LC_ALL: 'C' },
  }).toString().trim().split('\n');
}

const around = (...isos: string[]) => isos.flatMap((s) => { const t = Date.parse(s) / 1000; return [t - 1, t, t + 1]; });

const CASES: [string, number[]][] = [
  ['Europe/Berlin', around('2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-12-01T09:00:00Z')],
  ['Australia/Lord_Howe', around('2026-04-04T15:00:00Z', '2026-10-03T15:30:00Z')],
  ['America/Sao_Paulo', around('2026-12-07T02:59:59Z')],
  ['UTC', around('2026-12-31T23:59:59Z', '2028-02-29T12:00:00Z')],
];

test('mailDate: byte for byte what libc\'s strftime gives Postfix, across DST changes and zones', { skip }, () => {
  const saved = process.env.TZ;
  try {
    for (const [tz, secs] of CASES) {
      process.env.TZ = tz;
      assert.deepEqual(secs.map((s) => mailDate(new Date(s * 1000))), libcDates(tz, secs), tz);
    }
  } finally {
    if (saved === undefined) delete process.env.TZ; else process.env.TZ = saved;
  }
});
