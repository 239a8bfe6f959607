/**
 * scale-growth - what the scale scenarios (bench/scale-bench.ts) share: a figure measured at two
 * sizes, 10x apart, on the reference (real Postfix/Dovecot) and on Postern, and how it grows.
 *
 * A figure that should stay flat as the mailbox / queue / connection count / directory grows
 * (time to SELECT, to FETCH the newest 50, a lookup, memory per connection) shows a growth near
 * 1.0x; one that grows ~10x when the size grows 10x is linear in the size. Growth is
 * big / small for every figure, whatever its direction; the table prints it for both systems
 * and the ratio at the big size oriented like the rest of `npm run bench` (> 1: Postern better).
 */
import { row, orientedRatio, type Better, type ResultRow } from './bench-scenario.ts';

/** One figure measured at one size, on both systems (null: the reference has no such feature). */
export interface Figure {
  metric: string;
  unit: string;
  better: Better;
  reference: number | null;
  postern: number | null;
  /** What the figure is, or why the reference side is missing (printed as a note). */
  note?: string;
}

/** A scale scenario measured at one size. */
export type Measure = (size: number, log: (l: string) => void) => Promise<Figure[]>;

export interface GrowthRow {
  metric: string;
  unit: string;
  better: Better;
  small: number;
  big: number;
  reference: { small: number | null; big: number | null; growth: number | null };
  postern: { small: number | null; big: number | null; growth: number | null };
  note?: string;
}

const grow = (a: number | null, b: number | null): number | null => (a && b !== null && a > 0 ? b / a : null);

/** Pair the figures of the small and the big run by metric. */
export function growth(small: number, big: number, a: readonly Figure[], b: readonly Figure[]): GrowthRow[] {
  return b.map((fb) => {
    const fa = a.find((x) => x.metric === fb.metric);
    return {
      metric: fb.metric, unit: fb.unit, better: fb.better, small, big,
      reference: { small: fa?.reference ?? null, big: fb.reference, growth: grow(fa?.reference ?? null, fb.reference) },
      postern: { small: fa?.postern ?? null, big: fb.postern, growth: grow(fa?.postern ?? null, fb.postern) },
      ...(fb.note ? { note: fb.note } : {}),
    };
  });
}

const fmt = (v: number | null, unit: string): string => {
  if (v === null || !Number.isFinite(v)) return '-';
  if (unit === 'x') return `${v.toFixed(2)}x`;
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v >= 10 ? v.toFixed(1) : v.toFixed(2);
};

/** The printed growth table of one scenario. */
export function formatGrowth(title: string, refName: string, rows: readonly GrowthRow[]): string {
  if (!rows.length) return title;
  const { small, big } = rows[0]!;
  const head = ['metric', `${refName} ${small.toLocaleString('en-US')}`, `${big.toLocaleString('en-US')}`, 'growth',
    `Postern ${small.toLocaleString('en-US')}`, `${big.toLocaleString('en-US')}`, 'growth', 'ratio'];
  const body = rows.map((r) => [
    `${r.metric} (${r.unit})`,
    fmt(r.reference.small, r.unit), fmt(r.reference.big, r.unit), fmt(r.reference.growth, 'x'),
    fmt(r.postern.small, r.unit), fmt(r.postern.big, r.unit), fmt(r.postern.growth, 'x'),
    fmt(orientedRatio(r.better, r.reference.big, r.postern.big), 'x'),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i ? x.padStart(w[i]!) : x.padEnd(w[i]!))).join('  ').trimEnd();
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.metric}: ${r.note}`);
  return [title, line(head), ...body.map(line), ...notes].join('\n');
}

/**
 * The runner's rows: each figure at the big size (ratio as usual), then its growth (unit "x",
 * lower is better, so the ratio > 1 means Postern's figure grows less than the reference's).
 */
export function growthResultRows(scenario: string, rows: readonly GrowthRow[]): ResultRow[] {
  const out: ResultRow[] = [];
  const one = (v: number | null): number[] => (v === null ? [] : [v]);
  for (const r of rows) {
    out.push(row(scenario, `${r.metric} at ${r.big.toLocaleString('en-US')}`, r.unit, r.better, one(r.reference.big), one(r.postern.big), r.note));
    out.push(row(scenario, `${r.metric}, growth ${r.small.toLocaleString('en-US')} → ${r.big.toLocaleString('en-US')}`, 'x', 'lower',
      one(r.reference.growth), one(r.postern.growth), 'flat = 1.00x, linear = 10x'));
  }
  return out;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1]! : NaN;
}
