/**
 * fuzz-replay - runs a saved corpus (OUT/corpus/* of a long run) through its target once, under
 * node's test runner, so `--experimental-test-coverage` prints the line/branch/function coverage
 * of the parser's source files that the corpus reaches (the figure docs/fuzzing.md reports):
 *
 *   FUZZ_TARGET=mime FUZZ_CORPUS=/tmp/postern-fuzz/mime/corpus node --test \
 *     --experimental-test-coverage --test-coverage-include='src/lib-mail/**' test/fuzz/fuzz-replay.ts
 *
 * Inputs that throw are counted, not failed: finding them is the fuzzer's job.
 */

import { test } from 'node:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTarget } from './fuzz-targets.ts';
import { setLogSink } from '../../src/util/msg.ts';

test(`replay ${process.env.FUZZ_TARGET} corpus`, async (t) => {
  setLogSink(() => {});
  const target = await loadTarget(process.env.FUZZ_TARGET ?? '');
  const dir = process.env.FUZZ_CORPUS ?? '';
  await target.setup?.();
  let threw = 0;
  const names = readdirSync(dir);
  try {
    for (const n of names) {
      try { await target.run(readFileSync(join(dir, n))); } catch { threw++; }
    }
  } finally { await target.teardown?.(); }
  t.diagnostic(`${names.length} inputs, ${threw} threw`);
});
