/**
 * scale-bench - costs that should stay flat as things grow (issue 18, item 5): each scenario is
 * measured at two sizes 10x apart, on real Postfix 3.7 / Dovecot 2.3 and on Postern, and the
 * table shows every figure at both sizes, its growth (big / small: 1.00x is flat, 10x linear)
 * and the ratio at the big size (> 1: Postern better).
 *
 *   node bench/scale-bench.ts [--full | --fraction F] [--rounds N] [SCENARIO...]
 *
 * Scenarios and their full sizes:
 *   mailbox  1,000,000-message Maildir: SELECT, FETCH of the newest 50, STORE, SEARCH, memory;
 *            vs Dovecot 2.3 (scale-mailbox.ts)
 *   queue    1,000,000 deferred messages behind a relayhost that refuses: memory held by the
 *            queue manager, flush rate once it accepts; vs Postfix 3.7 qmgr (scale-queue.ts)
 *   idle     10,000 IMAP IDLE connections on one INBOX: memory per connection, time for one
 *            APPEND's EXISTS to reach all; vs Dovecot 2.3 (imap-notify-bench.ts, IDLE only)
 *   users    100,000 users in the directory: passdb lookups/s, LOGIN rate; vs Dovecot with a
 *            passwd-file (scale-users.ts)
 * Sizes: --full measures the full size and a tenth of it; --fraction F measures full/F and
 * full/(10F); without either, each scenario's default fraction (what `npm run bench` runs, to
 * fit its time): mailbox and queue 1/100, idle and users 1/10. Full sizes need time and disk
 * (the 1,000,000-message Maildir is ~1.7 GB, written once and copied to both servers); see
 * docs/bench-scale.md for what each figure did on this machine.
 * Exported: SCALE_SCENARIOS, runScale(), for bench/run.ts (scenario "scale-NAME").
 */
import { runNotifyBench } from './imap-notify-bench.ts';
import { measureMailbox } from './scale-mailbox.ts';
import { measureQueue } from './scale-queue.ts';
import { measureUsers } from './scale-users.ts';
import { formatGrowth, growth, growthResultRows, type Figure, type GrowthRow } from './scale-growth.ts';
import type { ExternalScenario, ResultRow } from './bench-scenario.ts';

export interface ScaleScenario {
  name: string;
  full: number;
  /** full / defaultFraction is the big size `npm run bench` measures. */
  defaultFraction: number;
  reference: string;
  what: string;
  measure(size: number, rounds: number, log: (l: string) => void): Promise<Figure[]>;
}

const idle: ScaleScenario = {
  name: 'idle', full: 10_000, defaultFraction: 10, reference: 'Dovecot 2.3',
  what: 'IMAP IDLE connections on one INBOX',
  async measure(n, rounds, log) {
    const rows = await runNotifyBench({ clients: n, rounds: Math.min(rounds, 3), modes: ['IDLE'] }, log);
    const note = 'Dovecot watches the Maildir with one inotify instance per imap process; past fs.inotify.max_user_instances (128 here) the other processes only notice at mailbox_idle_check_interval (30 s)';
    return rows.map((r) => ({
      metric: r.unit === 'ms' ? 'one APPEND told to all (EXISTS)' : 'memory per IDLE connection',
      unit: r.unit, better: 'lower' as const, reference: r.dovecot, postern: r.postern,
      ...(r.unit === 'ms' ? { note } : {}),
    }));
  },
};

export const SCALE_SCENARIOS: readonly ScaleScenario[] = [
  { name: 'mailbox', full: 1_000_000, defaultFraction: 100, reference: 'Dovecot 2.3', what: 'messages in one Maildir INBOX', measure: measureMailbox },
  { name: 'queue', full: 1_000_000, defaultFraction: 100, reference: 'Postfix 3.7', what: 'deferred messages', measure: measureQueue },
  idle,
  { name: 'users', full: 100_000, defaultFraction: 10, reference: 'Dovecot 2.3', what: 'users in the directory', measure: measureUsers },
];

/** Run one scale scenario at full/fraction and a tenth of that; returns the growth rows. */
export async function runScale(s: ScaleScenario, fraction: number, rounds: number, log: (l: string) => void): Promise<GrowthRow[]> {
  const big = Math.max(10, Math.round(s.full / fraction));
  const small = Math.max(1, Math.round(big / 10));
  log(`scale ${s.name}: ${small.toLocaleString('en-US')} then ${big.toLocaleString('en-US')} ${s.what}`);
  const a = await s.measure(small, rounds, log);
  const b = await s.measure(big, rounds, log);
  return growth(small, big, a, b);
}

/** The scale scenarios as the runner's external scenarios ("scale-mailbox", ...). */
export const SCALE_RUNNER_SCENARIOS: readonly ExternalScenario[] = SCALE_SCENARIOS.map((s) => ({
  kind: 'external' as const,
  name: `scale-${s.name}`,
  reference: s.reference,
  description: `costs as ${s.what} grow: ${(s.full / s.defaultFraction / 10).toLocaleString('en-US')} → ${(s.full / s.defaultFraction).toLocaleString('en-US')} (node bench/scale-bench.ts --full ${s.name} for ${s.full.toLocaleString('en-US')})`,
  async run(o): Promise<ResultRow[]> {
    const log = (l: string) => { process.stderr.write(`  ${l}\n`); };
    const rows = await runScale(s, s.defaultFraction, Math.min(o.rounds, 5), log);
    log(formatGrowth(`scale-${s.name}`, s.reference, rows).replace(/\n/g, '\n  '));
    return growthResultRows(`scale-${s.name}`, rows);
  },
}));

function usage(msg: string): never {
  process.stderr.write(`scale-bench: ${msg}\nusage: node bench/scale-bench.ts [--full | --fraction F] [--rounds N] [${SCALE_SCENARIOS.map((s) => s.name).join('|')}...]\n`);
  process.exit(64);
}

if (import.meta.main) {
  const argv = process.argv.slice(2);
  let fraction: number | undefined;
  let rounds = 5;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--full') fraction = 1;
    else if (a === '--fraction' || a === '--rounds') {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1 || v > 100_000) usage(`${a} wants a positive integer`);
      if (a === '--fraction') fraction = v; else rounds = v;
    } else if (SCALE_SCENARIOS.some((s) => s.name === a)) names.push(a);
    else usage(`unknown argument ${a}`);
  }
  const log = (l: string) => { process.stderr.write(`${l}\n`); };
  let failed = false;
  for (const s of SCALE_SCENARIOS.filter((x) => !names.length || names.includes(x.name))) {
    try {
      const rows = await runScale(s, fraction ?? s.defaultFraction, rounds, log);
      process.stdout.write(formatGrowth(`\n${s.name}: ${s.what}, Postern vs ${s.reference} (growth = big/small: 1.00x flat, 10x linear; ratio > 1: Postern better at the big size)`, s.reference, rows) + '\n');
    } catch (e) {
      failed = true;
      process.stderr.write(`scale-bench: ${s.name} failed: ${(e as Error).stack ?? e}\n`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}
