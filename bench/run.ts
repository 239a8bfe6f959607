/**
 * run - the benchmark runner behind `npm run bench`: every scenario (or those named), each
 * against the reference (real Postfix/Dovecot from Debian's packages) and Postern in the same
 * run, alternating, several rounds; prints the machine and a table of medians and ratios, and
 * writes the whole result (with every sample) to bench/results/YYYY-MM-DDTHHMM.json.
 *
 *   node bench/run.ts [--rounds N] [--messages N] [--profile DIR] [--keep] [--list] [SCENARIO...]
 *
 * A SCENARIO argument selects the scenario of that name or every scenario whose name starts with
 * it and a dash (`smtp-accept` = smtp-accept-1 and smtp-accept-20). Scenarios whose Postern side
 * does not exist yet are listed as "not yet available" (bench-pending.ts), never measured.
 * Temp dirs, real Postfix instances and child processes are removed at the end, also after a
 * failure or Ctrl-C (SIGINT/SIGTERM run the cleanup, then exit 130).
 * --profile DIR runs Postern's child under `node --cpu-prof` and writes the profiles and this
 * run's JSON to DIR (not to bench/results/, since profiling slows Postern down).
 * Exit status: 0 when every selected scenario ran, 1 when one failed, 64 on a usage error.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describeMachine, machineLine } from './bench-machine.ts';
import { lookupScenario } from './bench-lookup.ts';
import { MORE_SCENARIOS } from './bench-scenarios-more.ts';
import { smtpAcceptScenario } from './bench-smtp-accept.ts';
import { authresAcceptScenario } from './authres-bench.ts';
import { metricsAcceptScenario } from './metrics-bench.ts';
import { memorySiteScenario } from './memory-site.ts';
import { formatTable, RATIO_HEADER } from './bench-table.ts';
import { Cleanup, row, type BenchOptions, type PairedScenario, type ResultRow, type Scenario } from './bench-scenario.ts';

export const SCENARIOS: readonly Scenario[] = [
  lookupScenario,
  smtpAcceptScenario(1),
  smtpAcceptScenario(20),
  authresAcceptScenario(20),
  metricsAcceptScenario(20),
  smtpAcceptScenario(20, { milter: 'opendkim' }),
  ...MORE_SCENARIOS,
  memorySiteScenario,
];

const MB = 1024 * 1024;

interface Args { rounds: number; messages: number; profileDir?: string; keep: boolean; list: boolean; names: string[] }

function parseArgs(argv: string[]): Args {
  const a: Args = { rounds: 5, messages: 0, keep: false, list: false, names: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    const int = (name: string, max: number): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > max) throw new UsageError(`${name} wants an integer from 1 to ${max}, got "${argv[i] ?? ''}"`);
      return n;
    };
    if (v === '--rounds') a.rounds = int('--rounds', 100);
    else if (v === '--messages') a.messages = int('--messages', 1_000_000);
    else if (v === '--profile') { a.profileDir = argv[++i]; if (!a.profileDir) throw new UsageError('--profile wants a directory'); }
    else if (v === '--keep') a.keep = true;
    else if (v === '--list') a.list = true;
    else if (v.startsWith('-')) throw new UsageError(`unknown option ${v}`);
    else a.names.push(v);
  }
  return a;
}

class UsageError extends Error {}

export function selectScenarios(names: readonly string[]): Scenario[] {
  if (!names.length) return [...SCENARIOS];
  const out: Scenario[] = [];
  for (const n of names) {
    const hit = SCENARIOS.filter((s) => s.name === n || s.name.startsWith(n + '-'));
    if (!hit.length) throw new UsageError(`no scenario "${n}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
    for (const s of hit) if (!out.includes(s)) out.push(s);
  }
  return out;
}

async function runPaired(s: PairedScenario, o: BenchOptions, cleanup: Cleanup): Promise<ResultRow[]> {
  const { reference, postern } = await s.start(o, cleanup);
  const rates = { reference: [] as number[], postern: [] as number[] };
  const rss = { reference: [] as number[], postern: [] as number[] };
  const pss = { reference: [] as number[], postern: [] as number[] };
  const procs = { reference: 0, postern: 0 };
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? (['reference', 'postern'] as const) : (['postern', 'reference'] as const);
      for (const who of order) {
        const c = who === 'reference' ? reference : postern;
        const rate = await c.round();
        const m = await c.memory();
        rates[who].push(rate);
        rss[who].push(m.rss / MB);
        pss[who].push(m.pss / MB);
        procs[who] = m.processes;
        o.log(`  round ${r + 1}/${o.rounds} ${who.padEnd(9)} ${rate.toFixed(1)} ${s.unit}, RSS ${(m.rss / MB).toFixed(1)} MB in ${m.processes} process(es)`);
      }
    }
  } finally {
    await postern.stop();
    await reference.stop();
  }
  const procNote = `processes: ${procs.reference} vs ${procs.postern}`;
  return [
    row(s.name, s.metric, s.unit, 'higher', rates.reference, rates.postern),
    row(s.name, 'memory after load, RSS of process tree', 'MB', 'lower', rss.reference, rss.postern, procNote),
    row(s.name, 'memory after load, PSS of process tree', 'MB', 'lower', pss.reference, pss.postern),
  ];
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}T${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  let selected: Scenario[];
  try {
    args = parseArgs(argv);
    selected = selectScenarios(args.names);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`bench: ${e.message}\nusage: npm run bench -- [--rounds N] [--messages N] [--profile DIR] [--keep] [--list] [SCENARIO...]\n`);
    return 64;
  }
  if (args.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(20)} ${s.kind === 'pending' ? `[needs ${s.needs}] ` : ''}${s.description}\n`);
    return 0;
  }
  const log = (l: string) => { process.stderr.write(l + '\n'); };
  const o: BenchOptions = { rounds: args.rounds, messages: args.messages, profileDir: args.profileDir, keep: args.keep, log };
  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) return;
    interrupted = true;
    log(`bench: ${sig}, cleaning up`);
    void cleanup.runAll(log).finally(() => process.exit(130));
  };
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));

  const started = new Date();
  const machine = describeMachine();
  const rows: ResultRow[] = [];
  const failed: { name: string; error: string }[] = [];
  const pending = selected.filter((s) => s.kind === 'pending');
  try {
    for (const s of selected) {
      if (s.kind === 'pending') continue;
      log(`== ${s.name}: ${s.description}, ${args.rounds} rounds`);
      // One Cleanup for the whole run, unwound to this mark after each scenario, so that a
      // signal in the middle of a scenario still finds everything it started.
      const mark = cleanup.mark();
      try {
        rows.push(...(s.kind === 'paired' ? await runPaired(s, o, cleanup) : await s.run(o, cleanup)));
      } catch (e) {
        if (interrupted) break;
        log(`bench: ${s.name} failed: ${(e as Error).stack ?? e}`);
        failed.push({ name: s.name, error: (e as Error).message });
      } finally {
        if (!interrupted) await cleanup.runAll(log, mark);
      }
    }
  } finally {
    await cleanup.runAll(log);
  }

  const loadEnd = Math.round(loadavg()[0]! * 10) / 10;
  const out = [
    `Postern benchmarks, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, median of ${args.rounds} alternating rounds`,
    `machine: ${machineLine(machine)}, ${loadEnd} at end`,
    `reference: real ${machine.postfix} / ${machine.dovecot} from Debian's packages, same main.cf, loopback`,
    RATIO_HEADER,
    '',
    formatTable(rows, pending, failed),
  ].join('\n');
  process.stdout.write(out + '\n');
  if (rows.length || failed.length) {
    // A profiled run is slower on Postern's side: its JSON goes beside the profiles, not into
    // the history under bench/results/.
    const dir = args.profileDir ?? join(import.meta.dirname, 'results');
    mkdirSync(dir, { recursive: true });
    let file = join(dir, `${stamp(started)}.json`);
    for (let i = 2; existsSync(file) && i < 100; i++) file = join(dir, `${stamp(started)}-${i}.json`);
    const result = {
      date: started.toISOString(), machine, loadAverageAtEnd: loadEnd, rounds: args.rounds, messages: args.messages || undefined,
      ratio: RATIO_HEADER, results: rows, failed,
      notAvailable: pending.map((p) => ({ scenario: p.name, needs: p.needs })),
    };
    writeFileSync(file, JSON.stringify(result, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 100) / 100 : v), 1) + '\n');
    log(`bench: results written to ${file}`);
    if (args.profileDir) log(`bench: CPU profiles of Postern's smtpd child in ${args.profileDir} (open in Chrome DevTools > Performance)`);
  }
  return failed.length ? 1 : 0;
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
