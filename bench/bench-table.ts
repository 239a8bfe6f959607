/**
 * bench-table - the printed comparison table: one line per result row (median of the rounds),
 * then one line per scenario that is not available yet, with what it needs.
 */
import type { ResultRow, PendingScenario } from './bench-scenario.ts';

export const RATIO_HEADER = 'ratio > 1 means Postern is better: Postern/reference for rates, reference/Postern for memory';

function fmtValue(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '-';
  if (unit === 'MB') return v.toFixed(1);
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1);
}

export function formatTable(rows: readonly ResultRow[], pending: readonly PendingScenario[], failed: readonly { name: string; error: string }[]): string {
  const head = ['scenario', 'metric', 'reference', 'Postern', 'ratio', 'note'];
  const body = rows.map((r) => [
    r.scenario, `${r.metric} (${r.unit})`, fmtValue(r.reference, r.unit), fmtValue(r.postern, r.unit),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`, r.note ?? '',
  ]);
  for (const f of failed) body.push([f.name, 'FAILED', '-', '-', '-', f.error.split('\n')[0]!.slice(0, 120)]);
  for (const p of pending) body.push([p.name, p.metric, '-', '-', '-', `not yet available (needs: ${p.needs})`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
