/**
 * Crash safety of the queue manager (DESIGN.md §5, issue 4 "Crash tests"): messages written by
 * the real cleanup, delivered by a child process running the real qmgr, which the test
 * SIGKILLs several times in the middle of delivery batches and then restarts. Afterwards every
 * recipient must have been delivered at least once, and duplicates (deliveries whose R → D
 * had not reached the disk when the process died) are counted and reported: each kill can
 * duplicate at most the recipients of the batches in flight at that moment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeEnv, listQueue } from '../harness/qmgr-testkit.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const CHILD = join(import.meta.dirname, 'qmgr-crash-child.ts');

/**
 * Run the child; with `killAfterMs`, SIGKILL it that long after its first delivery is on record
 * (so the kill lands mid-batch however slow the machine's start-up is), or after 10 s.
 */
function runChild(dir: string, out: string, killAfterMs?: number, delivered?: () => number): Promise<'done' | 'killed'> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CHILD, dir, out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    let t: NodeJS.Timeout | undefined;
    let poll: NodeJS.Timeout | undefined;
    if (killAfterMs !== undefined) {
      const start = delivered?.() ?? 0;
      const began = Date.now();
      poll = setInterval(() => {
        if ((delivered?.() ?? 0) > start || Date.now() - began > 10_000) {
          clearInterval(poll);
          t = setTimeout(() => c.kill('SIGKILL'), killAfterMs);
        }
      }, 5);
    }
    c.on('exit', (code, sig) => {
      if (t) clearTimeout(t);
      if (poll) clearInterval(poll);
      if (sig === 'SIGKILL') resolve('killed');
      else if (code === 0 && stdout.includes('DONE')) resolve('done');
      else reject(new Error(`child exited ${code} ${sig}: ${stderr}`));
    });
  });
}

test('SIGKILL during delivery batches: every recipient delivered, duplicates bounded and reported', async () => {
  const env = await makeEnv();
  try {
    const MESSAGES = 300;
    const RCPTS = 10;
    const expected = new Set<string>();
    for (let m = 0; m < MESSAGES; m++) {
      const rcpts = Array.from({ length: RCPTS }, (_, i) => `u${i}@d${m % 5}.example.com`);
      const qid = await env.submit('sender@example.org', rcpts);
      for (const r of rcpts) expected.add(`${qid} ${r}`);
    }
    const out = join(env.dir, 'deliveries.txt');
    let kills = 0;
    let midRun = 0;
    const delivered = () => { try { return readFileSync(out, 'utf8').split('\n').length - 1; } catch { return 0; } };
    // Kill often, while batches are in flight: a few ms after the child's first delivery of the
    // run; then let a last run finish.
    for (const ms of [20, 40, 60, 40, 20, 60]) {
      const before = delivered();
      const r = await runChild(env.dir, out, ms, delivered);
      if (r !== 'killed') break;
      kills++;
      const after = delivered();
      if (after > before && after < expected.size) midRun++;
    }
    assert.equal(await runChild(env.dir, out), 'done');
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const counts = new Map<string, number>();
    for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
    const missing = [...expected].filter((k) => !counts.has(k));
    const dups = [...counts.values()].reduce((a, n) => a + (n - 1), 0);
    const worst = Math.max(...counts.values());
    console.log(`# crash test: ${expected.size} recipients, ${kills} SIGKILLs (${midRun} in the middle of deliveries), ${lines.length} deliveries, ${dups} duplicates, max ${worst} per recipient`);
    assert.ok(midRun >= 2, `the child was killed while delivering (${midRun} of ${kills} kills)`);
    assert.deepEqual(missing, [], 'no recipient lost');
    assert.ok([...counts.keys()].every((k) => expected.has(k)), 'nothing delivered that was not sent');
    // Each kill can duplicate at most the in-flight batches: maxproc 8 × recipient limit 3.
    assert.ok(dups <= kills * 8 * 3, `duplicates ${dups} > ${kills * 24}`);
    assert.ok(worst <= 1 + kills);
    for (const q of ['incoming', 'active', 'deferred'] as const) assert.deepEqual(await listQueue(env.queue, q), [], `${q} empty`);
  } finally {
    await env.close();
  }
});
