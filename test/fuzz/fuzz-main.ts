/**
 * fuzz-main - the long-run fuzzing command behind scripts/fuzz.sh (`npm run fuzz -- TARGET
 * --minutes N`). Runs one target (or `all`, one after the other) with V8-coverage feedback,
 * prints progress every 30 s and a closing summary per target:
 *   fuzz smtp-data: 1234567 execs in 10.0 min (2057/s), corpus 87, features 412, blocks 96, findings 0
 * Findings (crash-*.bin/.txt, slow-*.bin, hang-*.bin) go to --out DIR (default
 * $TMPDIR/postern-fuzz/TARGET); the summary is also written there as summary.json.
 *
 * Options: --minutes N (default 10), --seed S (default: time), --runs N, --out DIR,
 * --no-coverage (plain mutation, faster per input), --slow-ms N (default 1000),
 * --replay (then: TARGET FILE...: run the target once on each saved input, without coverage counting, and
 * print its time and what it threw: to check a finding or time a 'slow' input).
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzz, type FuzzStats } from './fuzz-engine.ts';
import { TARGETS, loadTarget } from './fuzz-targets.ts';
import { setLogSink } from '../../src/util/msg.ts';

function usage(): never {
  process.stderr.write(`usage: npm run fuzz -- TARGET|all [--minutes N] [--seed S] [--runs N] [--out DIR] [--no-coverage]\ntargets: ${Object.keys(TARGETS).join(', ')}\n`);
  process.exit(2);
}

export function summaryLine(s: FuzzStats): string {
  const min = s.ms / 60000;
  return `fuzz ${s.target}: ${s.runs} execs in ${min.toFixed(1)} min (${Math.round(s.runs / Math.max(s.ms / 1000, 0.001))}/s), ` +
    `corpus ${s.corpus}, features ${s.features}, blocks ${s.blocks}, findings ${s.findings.length}`;
}

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  let minutes = 10;
  let seed = Date.now() % 2147483647;
  let runs: number | undefined;
  let out: string | undefined;
  let coverage = true;
  let slowMs = 1000;
  let replay = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => argv[++i] ?? usage();
    if (a === '--minutes') minutes = Number(val());
    else if (a === '--seed') seed = Number(val());
    else if (a === '--runs') runs = Number(val());
    else if (a === '--out') out = val();
    else if (a === '--slow-ms') slowMs = Number(val());
    else if (a === '--no-coverage') coverage = false;
    else if (a === '--replay') replay = true;
    else if (a.startsWith('-')) usage();
    else names.push(a);
  }
  if (names.length === 0 || !Number.isFinite(minutes)) usage();
  const files = replay ? names.splice(1) : [];
  const list = names.includes('all') ? Object.keys(TARGETS) : names;
  const unknown = list.filter((n) => !TARGETS[n]);
  if (unknown.length) {
    process.stderr.write(`fuzz: unknown target ${unknown.join(', ')}; known: ${Object.keys(TARGETS).join(', ')}\n`);
    return 2;
  }
  setLogSink(() => {}); // servers under fuzz log every rejected command
  if (replay) {
    const target = await loadTarget(list[0]!);
    await target.setup?.();
    let bad = 0;
    for (const f of files) {
      const data = readFileSync(f);
      const t = performance.now();
      let verdict = 'ok';
      try { await target.run(data); } catch (e) {
        verdict = target.expected(e) ? `documented error: ${String(e).slice(0, 120)}` : `FINDING: ${(e as Error)?.stack ?? String(e)}`;
        if (!target.expected(e)) bad++;
      }
      process.stdout.write(`${f}: ${data.length} bytes, ${(performance.now() - t).toFixed(0)} ms, ${verdict}\n`);
    }
    await target.teardown?.();
    return bad ? 1 : 0;
  }
  let bad = 0;
  for (const name of list) {
    const target = await loadTarget(name);
    const dir = out ? (list.length > 1 ? join(out, name) : out) : join(tmpdir(), 'postern-fuzz', name);
    mkdirSync(dir, { recursive: true });
    process.stdout.write(`fuzz ${name}: seed ${seed}, ${minutes} min, findings -> ${dir}\n`);
    const stats = await fuzz(target, {
      seed, maxMs: minutes * 60_000, maxRuns: runs, outDir: dir, coverage, slowMs, watchdogMs: Math.max(5000, slowMs * 5),
      statusEveryMs: 30_000, onStatus: (s) => process.stdout.write(`  ${summaryLine(s)}\n`),
    });
    process.stdout.write(`${summaryLine(stats)}\n`);
    for (const f of stats.findings) {
      process.stdout.write(`  FINDING ${f.kind}: ${f.signature}\n    ${f.message.slice(0, 200)}\n    input (base64, ${f.input.length} bytes): ${f.input.subarray(0, 300).toString('base64')}\n`);
    }
    writeFileSync(join(dir, 'summary.json'), JSON.stringify({ ...stats, seed, findings: stats.findings.map((f) => ({ ...f, input: f.input.toString('base64') })) }, null, 1));
    if (stats.findings.length) bad++;
  }
  return bad ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
