/**
 * bench-lookup - the `lookup` scenario: runs bench/lookup-bench.ts (hash: and regexp: lookups,
 * Postern's `postern map -q` vs real `postmap -q`, its own alternating rounds) as a child
 * process and turns its printed medians into result rows. Its answers are compared by the
 * child itself; a mismatch makes it exit non-zero and the scenario fail.
 */
import { join } from 'node:path';
import { timedRun } from './bench-proc.ts';
import { orientedRatio, type BenchOptions, type ExternalScenario, type ResultRow } from './bench-scenario.ts';

const num = (s: string) => Number(s.replace(/,/g, ''));

/** Parse lookup-bench.ts's output: a section line, then the postfix / postern / cache lines. */
export function parseLookupBench(out: string): ResultRow[] {
  const rows: ResultRow[] = [];
  let section = '';
  let ref: number | null = null;
  for (const line of out.split('\n')) {
    if (/^\S/.test(line)) {
      // "hash: 100,000 entries, 100,000 keys (...)", "hash, same table, 1,000,000 keys (...)",
      // "regexp: a realistic 1,000-rule file, 5,000 keys (...)"
      const keys = /([\d,]+) keys/.exec(line)?.[1];
      section = line.startsWith('regexp') ? `regexp: 1,000 rules, ${keys} keys` : line.startsWith('hash') ? `hash: ${keys} keys` : section;
      ref = null;
      continue;
    }
    const m = /^\s+(postfix postmap|postern map) -q -(, compile cache)?\s*: ([\d,]+) lookups\/s/.exec(line);
    if (!m) continue;
    const v = num(m[3]!);
    if (m[1] === 'postfix postmap') { ref = v; continue; }
    if (m[2]) {
      const last = rows[rows.length - 1];
      if (last) last.note = `with NODE_COMPILE_CACHE: ${Math.round(v).toLocaleString('en-US')} lookups/s (${(v / (ref ?? v)).toFixed(2)}x)`;
      continue;
    }
    rows.push({ scenario: 'lookup', metric: section, unit: 'lookups/s', better: 'higher', reference: ref, postern: v, ratio: orientedRatio('higher', ref, v) });
  }
  return rows;
}

export const lookupScenario: ExternalScenario = {
  kind: 'external',
  name: 'lookup',
  description: 'lookup tables: hash: (100,000 entries) and regexp: (1,000 rules), batch `postern map -q -` vs `postmap -q -`, whole processes',
  reference: 'Postfix postmap',
  async run(o: BenchOptions): Promise<ResultRow[]> {
    const script = join(import.meta.dirname, 'lookup-bench.ts');
    const r = await timedRun(process.execPath, ['--disable-warning=ExperimentalWarning', script, '--rounds', String(o.rounds)], 1_800_000);
    if (r.code !== 0) throw new Error(`bench/lookup-bench.ts exited ${r.code}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
    const rows = parseLookupBench(r.stdout);
    if (!rows.length) throw new Error(`bench/lookup-bench.ts printed no result lines:\n${r.stdout}`);
    return rows;
  },
};
