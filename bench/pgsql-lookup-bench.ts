/**
 * pgsql-lookup-bench - pgsql: table lookups/s, Postern vs real Postfix (postfix-pgsql), the same
 * pgsql_table(5) file against one private PostgreSQL (test/harness/pg-server.ts).
 *
 *   node bench/pgsql-lookup-bench.ts [--keys 5000] [--rounds 3]
 *
 * 1. Batch: `postmap -q - pgsql:FILE` vs `postern map -q - pgsql:FILE`, the same keys (half hits,
 *    half misses) one after the other, whole processes, alternating rounds; answers compared.
 * 2. Daemon-style: the same keys looked up all at once by one process through the shared pool
 *    (what smtpd, cleanup and virtual share in Postern); Postfix has no in-process equivalent
 *    (each of its daemons runs one query at a time, or proxymap does), so its batch rate is the
 *    reference.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgServer } from '../test/harness/pg-server.ts';
import { dictOpen } from '../src/util/dict-registry.ts';
import { row, type ExternalScenario, type ResultRow } from './bench-scenario.ts';

const POSTMAP = '/usr/sbin/postmap';
const POSTERN = join(import.meta.dirname, '../bin/postern');
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };

function timed(cmd: string, args: string[], input: string): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 28, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd}: exit ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout.split('\n').sort().join('\n') };
}

export async function runPgsqlLookupBench(o: { keys?: number; rounds?: number; log?: (l: string) => void } = {}): Promise<ResultRow[]> {
  const nKeys = o.keys ?? 5000, rounds = o.rounds ?? 3, log = o.log ?? ((l: string) => console.log(l));
  const dir = mkdtempSync(join(tmpdir(), 'postern-pgbench-'));
  const pg = await PgServer.start();
  try {
    writeFileSync(join(dir, 'main.cf'), '');
    utimesSync(join(dir, 'main.cf'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
    await pg.sql(`CREATE TABLE alias (address TEXT PRIMARY KEY, goto TEXT, active BOOLEAN);
      INSERT INTO alias SELECT 'user' || i || '@example.com', 'box' || i || '@mail.example.com', TRUE FROM generate_series(1, ${nKeys}) i;
      CREATE USER postfix PASSWORD 'pfpass'; GRANT SELECT ON alias TO postfix;`);
    const cf = join(dir, 'alias.cf');
    writeFileSync(cf, `hosts = 127.0.0.1:${pg.port}\nuser = postfix\npassword = pfpass\ndbname = mail\nquery = SELECT goto FROM alias WHERE address='%s' AND active = '1'\n`);
    const keys = Array.from({ length: nKeys }, (_, i) => (i % 2 ? `user${i}@example.com` : `nobody${i}@example.com`));
    const input = keys.join('\n') + '\n';
    const spec = `pgsql:${cf}`;
    const ref: number[] = [], ours: number[] = [], inproc: number[] = [];
    let answers: [string, string] | undefined;
    for (let r = 0; r < rounds; r++) {
      const runs: ['postfix' | 'postern', string, string[]][] = [['postfix', POSTMAP, ['-c', dir, '-q', '-', spec]], ['postern', POSTERN, ['map', '-q', '-', spec]]];
      if (r % 2) runs.reverse();
      for (const [who, cmd, args] of runs) {
        const { ms, out } = timed(cmd, args, input);
        (who === 'postfix' ? ref : ours).push(nKeys / (ms / 1000));
        if (r === 0) answers = who === 'postfix' ? [out, answers?.[1] ?? ''] : [answers?.[0] ?? '', out];
      }
      const d = await dictOpen(spec);
      const t0 = process.hrtime.bigint();
      const vals = await Promise.all(keys.map((k) => d.lookup(k)));
      inproc.push(nKeys / (Number(process.hrtime.bigint() - t0) / 1e9));
      await d.close();
      if (vals.filter((v) => v !== undefined).length !== nKeys / 2) throw new Error('in-process answers are wrong');
    }
    if (!answers || answers[0] !== answers[1]) throw new Error('postern map and postmap answers differ');
    log(`pgsql: ${nKeys.toLocaleString('en-US')} keys, half hits`);
    log(`  postfix postmap -q -   : ${Math.round(median(ref)).toLocaleString('en-US')} lookups/s`);
    log(`  postern map -q -       : ${Math.round(median(ours)).toLocaleString('en-US')} lookups/s (${(median(ours) / median(ref)).toFixed(2)}x)`);
    log(`  postern, all at once   : ${Math.round(median(inproc)).toLocaleString('en-US')} lookups/s through the shared pool (${(median(inproc) / median(ref)).toFixed(2)}x)`);
    return [
      row('pgsql-lookup', `pgsql: ${nKeys.toLocaleString('en-US')} keys, batch postmap -q -`, 'lookups/s', 'higher', ref, ours),
      row('pgsql-lookup', 'pgsql: the same keys at once through the shared pool (ref: postmap batch)', 'lookups/s', 'higher', ref, inproc),
    ];
  } finally {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const pgsqlLookupScenario: ExternalScenario = {
  kind: 'external', name: 'pgsql-lookup', reference: 'Postfix postmap + postfix-pgsql',
  description: 'pgsql: table lookups against a private PostgreSQL: batch postern map -q - vs postmap -q -, and all keys at once through the shared pool',
  async run(o) {
    return runPgsqlLookupBench({ rounds: Math.min(o.rounds, 3), log: (l) => { process.stderr.write(`  ${l}\n`); } });
  },
};

if (import.meta.main) {
  const arg = (name: string, def: number) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def; };
  await runPgsqlLookupBench({ keys: arg('keys', 5000), rounds: arg('rounds', 3) });
}
