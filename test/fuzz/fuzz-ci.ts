/**
 * fuzz-ci - the bounded fuzz run for CI (issue 8): every fuzz target for a few seconds with a fixed
 * seed, coverage-guided, in-process. A target passes when its parser threw only its documented
 * error types and no input took longer than the slow limit. The long run is scripts/fuzz.sh
 * (`npm run fuzz -- TARGET --minutes N`, docs/fuzzing.md). The test files fuzz-protocols.test.ts
 * and fuzz-config.test.ts split the targets in two so `node --test` runs them in parallel.
 *
 * A target with a known, not yet fixed finding is marked todo with a pointer to its regression
 * test under test/fuzz/regressions/ (remove the mark when the fix lands).
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzz } from './fuzz-engine.ts';
import { TARGETS, loadTarget } from './fuzz-targets.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});

const SEED = 20261127;
const BUDGET_MS = Number(process.env.POSTERN_FUZZ_CI_MS ?? 2500);

/** Targets with an open finding: name → what (see the regression test). */
const KNOWN: Record<string, string> = {};

/** Registers one bounded CI test per target name. */
export function ciFuzz(names: readonly string[]): void {
  for (const name of names) {
    if (!TARGETS[name]) throw new Error(`unknown fuzz target ${name}`);
    test(`fuzz ${name}: ${BUDGET_MS} ms, seed ${SEED}: only documented errors, no slow input`, { todo: KNOWN[name] }, async () => {
    const target = await loadTarget(name);
    const s = await fuzz(target, { seed: SEED, maxMs: BUDGET_MS, minMutations: 256, slowMs: 2000 });
    assert.ok(s.runs > s.corpus, `${name}: ran ${s.runs} inputs`);
    assert.ok(s.blocks > 0, `${name}: coverage was collected`);
    const report = s.findings.map((f) => `${f.kind} ${f.signature}: ${f.message.slice(0, 200)}\n  input (base64): ${f.input.subarray(0, 500).toString('base64')}\n  ${f.stack.split('\n').slice(0, 6).join('\n  ')}`);
    assert.deepEqual(report, [], `${name}: ${s.runs} runs`);
    });
  }
}
