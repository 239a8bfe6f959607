/**
 * until - wait, bounded, for something a test expects to appear (a file, a log line, a queue
 * entry): `f` is asked every 100 ms until it returns a value, which until() returns; after `ms`
 * the test fails with "timed out waiting for WHAT".
 */
import assert from 'node:assert/strict';

export async function until<T>(f: () => T | undefined, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
