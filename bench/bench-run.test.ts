/**
 * Tests of the benchmark runner's own logic (no benchmark is run): parsing lookup-bench.ts's
 * output, scenario selection, the oriented ratio, the table, process-tree memory, queue counting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseLookupBench } from './bench-lookup.ts';
import { selectScenarios, main } from './run.ts';
import { orientedRatio, row, median } from './bench-scenario.ts';
import { formatTable } from './bench-table.ts';
import { processTree, treeMemory } from './bench-proc.ts';
import { countQueueFiles } from './bench-smtp-accept.ts';
import { PENDING_SCENARIOS } from './bench-pending.ts';
import { MORE_SCENARIOS } from './bench-scenarios-more.ts';

const LOOKUP_OUT = `hash: 100,000 entries, 100,000 keys (half hits, half misses), 5 alternating rounds
  build: postfix postmap 412 ms, postern map 388 ms
  postfix postmap -q -            : 1,234,567 lookups/s (median of 5)
  postern map -q -                : 617,283 lookups/s   ratio Postern/Postfix 0.50
  postern map -q -, compile cache : 900,000 lookups/s   ratio Postern/Postfix 0.73
hash, same table, 1,000,000 keys (start-up cost amortized), 3 rounds
  postfix postmap -q -            : 2,000,000 lookups/s (median of 3)
  postern map -q -                : 3,000,000 lookups/s   ratio Postern/Postfix 1.50
  postern map -q -, compile cache : 3,100,000 lookups/s   ratio Postern/Postfix 1.55

regexp: a realistic 1,000-rule file, 5,000 keys (3/4 hits spread over the file, 1/4 misses)
  postfix postmap -q -            : 10,000 lookups/s (median of 5)
  postern map -q -                : 20,000 lookups/s   ratio Postern/Postfix 2.00
  postern map -q -, compile cache : 25,000 lookups/s   ratio Postern/Postfix 2.50
`;

test('lookup-bench output becomes one row per section, Postern/postmap ratio, compile cache as a note', () => {
  const rows = parseLookupBench(LOOKUP_OUT);
  assert.deepEqual(rows.map((r) => [r.metric, r.reference, r.postern, r.ratio]), [
    ['hash: 100,000 keys', 1234567, 617283, 617283 / 1234567],
    ['hash: 1,000,000 keys', 2_000_000, 3_000_000, 1.5],
    ['regexp: 1,000 rules, 5,000 keys', 10_000, 20_000, 2],
  ]);
  assert.match(rows[0]!.note!, /NODE_COMPILE_CACHE: 900,000 lookups\/s \(0\.73x\)/);
});

test('garbage, CRLF, NUL bytes and a 1 MB line from lookup-bench give no rows rather than a crash', () => {
  assert.deepEqual(parseLookupBench(''), []);
  assert.deepEqual(parseLookupBench('x'.repeat(1 << 20) + '\0\r\n  postern map -q -  : NaN lookups/s\r\n'), []);
  // A Postern line without its postfix line: the reference is unknown, the ratio too.
  const r = parseLookupBench('hash: 5 keys\n  postern map -q -                : 10 lookups/s\n');
  assert.equal(r[0]!.reference, null);
  assert.equal(r[0]!.ratio, null);
});

test('scenario selection: exact names, prefix with a dash, unknown names refused', () => {
  assert.deepEqual(selectScenarios(['smtp-accept', 'lookup']).map((s) => s.name), ['smtp-accept-1', 'smtp-accept-20', 'lookup']);
  assert.deepEqual(selectScenarios(['smtp-accept-20']).map((s) => s.name), ['smtp-accept-20']);
  assert.deepEqual(selectScenarios(['smtp']).map((s) => s.name), ['smtp-accept-1', 'smtp-accept-20']);
  assert.throws(() => selectScenarios(['smtp-acc']), /no scenario "smtp-acc"; known: lookup, smtp-accept-1/);
  assert.throws(() => selectScenarios(['../etc/passwd']), /no scenario/);
  assert.ok(selectScenarios([]).length >= 3 + MORE_SCENARIOS.length);
});

test('ratio > 1 always means Postern is better: rates Postern/reference, memory reference/Postern', () => {
  assert.equal(orientedRatio('higher', 100, 150), 1.5);
  assert.equal(orientedRatio('lower', 300, 100), 3);
  assert.equal(orientedRatio('lower', 100, 0), null);
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  const r = row('s', 'm', 'MB', 'lower', [200, 100, 300], [50, 100, 60]);
  assert.equal(r.reference, 200);
  assert.equal(r.postern, 60);
  assert.equal(r.ratio!.toFixed(2), '3.33');
});

test('the table shows medians, ratios, failures and the scenarios not yet available with their needs', () => {
  const t = formatTable([row('smtp-accept-1', 'messages accepted/s', 'msg/s', 'higher', [400], [500])],
    PENDING_SCENARIOS.slice(0, 2), [{ name: 'lookup', error: 'postmap: exit 1\nmore' }]);
  const lines = t.split('\n');
  assert.match(lines[0]!, /^scenario +\| metric +\| reference \| Postern \| ratio \| note$/);
  assert.match(t, /smtp-accept-1 +\| messages accepted\/s \(msg\/s\) +\| +400 \| +500 \| 1\.25x \|/);
  assert.match(t, /lookup +\| FAILED .*postmap: exit 1$/m);
  assert.match(t, /e2e-smtp-maildir .* not yet available \(needs: qmgr\/virtual\)/);
  assert.match(t, /lmtp .* not yet available \(needs: lmtpd\)/);
  assert.doesNotMatch(t, /more/);
});

test('usage errors exit 64 without running anything', async () => {
  const err = process.stderr.write;
  process.stderr.write = () => true;
  try {
    assert.equal(await main(['--rounds', '0']), 64);
    assert.equal(await main(['--rounds', '1e9']), 64);
    assert.equal(await main(['--bogus']), 64);
    assert.equal(await main(['no-such-scenario']), 64);
  } finally { process.stderr.write = err; }
});

test('process-tree memory sums a parent and its children', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 100 && processTree(child.pid!).length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(processTree(child.pid!).length, 3);
    const m = treeMemory(child.pid!);
    assert.equal(m.processes, 3);
    assert.ok(m.rss > m.pss && m.pss > 0, `rss ${m.rss} pss ${m.pss}`);
    assert.deepEqual(treeMemory(2 ** 22 + 12345), { rss: 0, pss: 0, processes: 0 });
  } finally {
    for (const p of processTree(child.pid!).reverse()) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  }
});

test('queue counting walks hashed subdirectories and skips temp files and missing queues', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-test-'));
  try {
    mkdirSync(join(dir, 'incoming'));
    mkdirSync(join(dir, 'deferred', 'A'), { recursive: true });
    writeFileSync(join(dir, 'incoming', '3F2A1C0042'), '');
    writeFileSync(join(dir, 'incoming', 't123.4.x'), '');
    writeFileSync(join(dir, 'deferred', 'A', 'A1B2C3D4E'), '');
    assert.equal(countQueueFiles(dir, ['incoming', 'deferred', 'active']), 2);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
