/**
 * bench-scenario - what a benchmark scenario is, for bench/run.ts.
 *
 * Three kinds:
 *   - paired: the runner starts both systems (the reference, real Postfix/Dovecot, and Postern),
 *     then calls round() on each ALTERNATELY (reference first in even rounds, Postern first in
 *     odd ones, so that warm caches and background noise hit both alike) and takes medians.
 *     After every round the memory of each system's whole process tree is sampled.
 *   - external: a self-contained program that alternates by itself (bench/lookup-bench.ts); the
 *     runner runs it as a child process and parses its printed medians.
 *   - pending: a scenario whose Postern side does not exist yet; the table says what it needs.
 *     No number is ever invented for it.
 *
 * A result row's ratio is oriented so that > 1 always means Postern is better:
 * Postern/reference for rates (higher is better), reference/Postern for memory and durations
 * (lower is better).
 */

export type Better = 'higher' | 'lower';

/** Memory of one system's process tree, in bytes. */
export interface TreeMemory {
  rss: number;
  /** Proportional set size: shared pages (libc, Postfix's shared libraries) counted once. */
  pss: number;
  processes: number;
}

/** One side of a paired scenario: a running system plus the load that drives it. */
export interface Contender {
  /** Run one timed round; returns the measured rate (per second). */
  round(): Promise<number>;
  memory(): Promise<TreeMemory>;
  stop(): Promise<void>;
}

export interface BenchOptions {
  rounds: number;
  /** Messages per round for the SMTP scenarios (0 = the scenario's default). */
  messages: number;
  /** Directory for the Postern child's --cpu-prof output, when profiling. */
  profileDir?: string;
  /** Keep temp dirs (for debugging a failed run). */
  keep: boolean;
  log: (line: string) => void;
}

export interface PairedScenario {
  kind: 'paired';
  name: string;
  description: string;
  metric: string;
  unit: string;
  /** Name of the reference system, e.g. "Postfix 3.7 smtpd". */
  reference: string;
  start(o: BenchOptions, cleanup: Cleanup): Promise<{ reference: Contender; postern: Contender }>;
}

export interface ExternalScenario {
  kind: 'external';
  name: string;
  description: string;
  reference: string;
  run(o: BenchOptions, cleanup: Cleanup): Promise<ResultRow[]>;
}

export interface PendingScenario {
  kind: 'pending';
  name: string;
  description: string;
  /** What it will measure, short (the table's metric column). */
  metric: string;
  /** The Postern services it waits for, e.g. "lmtpd". */
  needs: string;
}

export type Scenario = PairedScenario | ExternalScenario | PendingScenario;

export interface ResultRow {
  scenario: string;
  metric: string;
  unit: string;
  better: Better;
  reference: number | null;
  postern: number | null;
  /** > 1 means Postern is better (see the file header). */
  ratio: number | null;
  samples?: { reference: number[]; postern: number[] };
  note?: string;
}

/** Things to undo at the end of the run, even after a failure or SIGINT (LIFO). */
export class Cleanup {
  private readonly steps: { what: string; fn: () => Promise<void> | void }[] = [];

  add(what: string, fn: () => Promise<void> | void): void {
    this.steps.push({ what, fn });
  }

  /** A point to unwind back to (runAll(log, mark)): one scenario's steps, leaving the rest. */
  mark(): number {
    return this.steps.length;
  }

  async runAll(log: (l: string) => void, downTo = 0): Promise<void> {
    while (this.steps.length > downTo) {
      const s = this.steps.pop()!;
      try { await s.fn(); } catch (e) { log(`bench: cleanup "${s.what}" failed: ${(e as Error).message}`); }
    }
  }
}

export function median(xs: readonly number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The ratio oriented so that > 1 means Postern is better. */
export function orientedRatio(better: Better, reference: number | null, postern: number | null): number | null {
  if (reference === null || postern === null || !reference || !postern) return null;
  return better === 'higher' ? postern / reference : reference / postern;
}

export function row(scenario: string, metric: string, unit: string, better: Better,
  ref: number[], ours: number[], note?: string): ResultRow {
  const reference = ref.length ? median(ref) : null;
  const postern = ours.length ? median(ours) : null;
  return {
    scenario, metric, unit, better, reference, postern,
    ratio: orientedRatio(better, reference, postern),
    samples: { reference: ref, postern: ours },
    ...(note ? { note } : {}),
  };
}
