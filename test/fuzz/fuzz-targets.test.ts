/** Every registered fuzz target is exercised by one of the CI fuzz test files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TARGETS } from './fuzz-targets.ts';

test('every fuzz target has a bounded CI run', () => {
  const dir = new URL('.', import.meta.url);
  const text = ['fuzz-protocols.test.ts', 'fuzz-config.test.ts'].map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n');
  const missing = Object.keys(TARGETS).filter((n) => !text.includes(`'${n}'`));
  assert.deepEqual(missing, []);
});
