/**
 * python-sleep - no Python snippet or helper in the tests waits with time.sleep(): from Python
 * 3.11 it is clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME), which fails with EINVAL under
 * libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC (libfaketime's issue #426), so the test
 * breaks only under `npm run test:clock` (scripts/test-clock.sh). Wait with
 * threading.Event().wait(seconds) (or an Event's wait, select()) instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|py)$/.test(name)) out.push(p);
  }
  return out;
}

test('tests wait in Python with threading.Event().wait, never time.sleep (EINVAL under npm run test:clock)', () => {
  const offenders: string[] = [];
  for (const f of [...files(join(ROOT, 'test')), ...files(join(ROOT, 'src')), ...files(join(ROOT, 'bench'))]) {
    if (f === import.meta.filename) continue;
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      if (/\btime\.sleep\(/.test(line) && !/not time\.sleep/i.test(line)) offenders.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(offenders, []);
});
