/**
 * The suite's bounds on a hang (scripts/test.sh, test/harness/proc-stop.ts): a before() hook
 * that never returns while a server it started holds the event loop fails with its file's name
 * under the runner's own node flags, instead of blocking the run; a server child that ignores
 * SIGTERM is SIGKILLed after its grace; a start-up that fails stops what it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOrClean, terminate } from './harness/proc-stop.ts';

const TEST_SH = join(import.meta.dirname, '..', 'scripts', 'test.sh');

/** The node flags scripts/test.sh runs the suite with. */
function runnerFlags(): string[] {
  const line = readFileSync(TEST_SH, 'utf8').split('\n').find((l) => /^node .*--test /.test(l));
  assert.ok(line, 'scripts/test.sh runs node --test');
  return line.split(/\s+/).filter((w) => w.startsWith('--'));
}

test('scripts/test.sh bounds every test and hook (--test-timeout, 10 minutes) and ends a file whose servers outlive its tests (--test-force-exit)', () => {
  const flags = runnerFlags();
  assert.ok(flags.includes('--test-force-exit'), flags.join(' '));
  const t = flags.find((f) => f.startsWith('--test-timeout='));
  assert.ok(t && Number(t.split('=')[1]) >= 600_000, `${t}: at least 10 minutes, well above the slowest test`);
});

test('a hung before() hook holding a server fails with the file named, under the runner\'s flags', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bounds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hung-hook.test.ts');
  writeFileSync(file, `import { before, test } from 'node:test';
import { createServer } from 'node:net';
before(() => new Promise(() => { createServer().listen(0, '127.0.0.1'); }));
test('never reached', () => {});
`);
  // The same flags, with a 2 s bound instead of 10 minutes.
  const flags = runnerFlags().map((f) => (f.startsWith('--test-timeout=') ? '--test-timeout=2000' : f));
  const started = Date.now();
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    // A run of its own, not a subtest of this one (node:test marks its children by this variable).
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT;
    const c = spawn(process.execPath, [...flags, file], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, env });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.on('close', (code) => resolve({ code, out }));
  });
  assert.notEqual(r.code, 0, r.out);
  assert.match(r.out, /test timed out after 2000ms/, r.out);
  assert.match(r.out, /never reached/, r.out);
  assert.match(r.out, /hung-hook\.test\.ts/, r.out);
  assert.ok(Date.now() - started < 30_000, `the run ended by itself (${Date.now() - started} ms)`);
});

test('terminate(): a server child that ignores SIGTERM is SIGKILLed after its grace', async () => {
  const c = spawn('sh', ['-c', 'trap "" TERM; while :; do sleep 1; done'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  await terminate(c, 500);
  assert.equal(c.signalCode, 'SIGKILL');
  assert.ok(Date.now() - started < 5000);
});

test('startOrClean(): a start-up that fails stops what it started, then fails', async () => {
  let cleaned = false;
  await assert.rejects(startOrClean(async () => { throw new Error('did not start'); }, async () => { cleaned = true; }), /did not start/);
  assert.ok(cleaned);
  assert.equal(await startOrClean(async () => 42, async () => { throw new Error('not called'); }), 42);
});
