/**
 * lookup-bench - lookup-table speed, Postern vs real Postfix postmap(1).
 *
 *   node bench/lookup-bench.ts [--entries 100000] [--keys 100000] [--rounds 5]
 *
 * 1. hash: a 100,000-entry virtual(5)-style table is built with `postmap hash:FILE` (Berkeley DB
 *    FILE.db) and with `postern map hash:FILE` (FILE.pdb); build times are printed.
 * 2. The same keys (half hits, half misses, shuffled) are looked up in batch mode,
 *    `postmap -q - hash:FILE < keys` and `postern map -q - hash:FILE < keys`, in alternating
 *    rounds. Each run is a whole process (start-up included, as an administrator or a script
 *    would use it). Medians of lookups/second and the ratio Postern/Postfix are printed.
 * 3. regexp: the same with a realistic 1,000-rule regexp: file (anchored addresses, domain
 *    patterns with $1 substitutions, a few if/endif blocks) and fewer keys, since every miss
 *    runs all 1,000 rules.
 * Both programs' answers are compared, so a fast wrong answer does not count.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const ENTRIES = arg('entries', 100_000);
const KEYS = arg('keys', 100_000);
const ROUNDS = arg('rounds', 5);
const RE_KEYS = arg('regexp-keys', 5_000);
const POSTMAP = '/usr/sbin/postmap';
const POSTERN = join(import.meta.dirname, '../bin/postern');

const dir = mkdtempSync(join(tmpdir(), 'postern-bench-'));
writeFileSync(join(dir, 'main.cf'), '');
// Postfix pauses ~2 s when main.cf was modified a moment ago; backdate it.
utimesSync(join(dir, 'main.cf'), new Date(Date.now() - 3600_000), new Date(Date.now() - 3600_000));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], input?: Buffer, env?: NodeJS.ProcessEnv): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30, env: env ?? process.env });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0 && r.status !== 1) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return { ms, out: r.stdout.toString() };
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

// Deterministic shuffle (xorshift) so runs are comparable.
let seed = 0x2545f491;
const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 0x100000000; };
function shuffle<T>(a: T[]): T[] { for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [a[i], a[j]] = [a[j]!, a[i]!]; } return a; }

// Node's compile cache keeps the type-stripped modules, cutting Postern's start-up from ~100 ms
// to ~30 ms; shown separately because bin/postern does not enable it (yet).
const cacheEnv = { ...process.env, NODE_COMPILE_CACHE: join(dir, 'node-compile-cache') };

type Who = 'postfix' | 'postern' | 'postern+cache';
function compare(spec: string, keys: Buffer, nKeys: number, rounds = ROUNDS): void {
  const results: Record<Who, number[]> = { postfix: [], postern: [], 'postern+cache': [] };
  const outs = new Map<Who, string>();
  run(POSTERN, ['map', '-q', 'warm-up', spec], undefined, cacheEnv);
  for (let r = 0; r < rounds; r++) {
    const order: [Who, string, string[], NodeJS.ProcessEnv | undefined][] = [
      ['postfix', POSTMAP, ['-c', dir, '-q', '-', spec], undefined],
      ['postern', POSTERN, ['map', '-q', '-', spec], undefined],
      ['postern+cache', POSTERN, ['map', '-q', '-', spec], cacheEnv],
    ];
    if (r % 2) order.reverse();
    for (const [who, cmd, args, env] of order) {
      const { ms, out } = run(cmd, args, keys, env);
      results[who].push(nKeys / (ms / 1000));
      if (r === 0) outs.set(who, out.split('\n').sort().join('\n'));
    }
  }
  if (outs.get('postfix') !== outs.get('postern') || outs.get('postern') !== outs.get('postern+cache')) {
    throw new Error(`${spec}: Postern and Postfix answers differ`);
  }
  const pf = median(results.postfix), pt = median(results.postern), pc = median(results['postern+cache']);
  console.log(`  postfix postmap -q -            : ${fmt(pf)} lookups/s (median of ${rounds})`);
  console.log(`  postern map -q -                : ${fmt(pt)} lookups/s   ratio Postern/Postfix ${(pt / pf).toFixed(2)}`);
  console.log(`  postern map -q -, compile cache : ${fmt(pc)} lookups/s   ratio Postern/Postfix ${(pc / pf).toFixed(2)}`);
}

// ---- hash: 100,000 entries ----
const src = join(dir, 'virtual');
const lines: string[] = [];
for (let i = 0; i < ENTRIES; i++) lines.push(`user${i}@domain${i % 500}.example maildir/domain${i % 500}/user${i}/`);
writeFileSync(src, lines.join('\n') + '\n');
const keyList: string[] = [];
for (let i = 0; i < KEYS; i++) {
  const n = Math.floor(rnd() * ENTRIES);
  keyList.push(i % 2 ? `user${n}@domain${n % 500}.example` : `nobody${n}@domain${n % 500}.example`);
}
const hashKeys = Buffer.from(shuffle(keyList).join('\n') + '\n');

console.log(`hash: ${fmt(ENTRIES)} entries, ${fmt(KEYS)} keys (half hits, half misses), ${ROUNDS} alternating rounds`);
const b1 = run(POSTMAP, ['-c', dir, `hash:${src}`]);
const b2 = run(POSTERN, ['map', `hash:${src}`]);
console.log(`  build: postfix postmap ${b1.ms.toFixed(0)} ms, postern map ${b2.ms.toFixed(0)} ms`);
compare(`hash:${src}`, hashKeys, KEYS);
const BIG = KEYS * 10;
const bigKeys = Buffer.from(Array.from({ length: 10 }, () => shuffle(keyList).join('\n')).join('\n') + '\n');
console.log(`hash, same table, ${fmt(BIG)} keys (start-up cost amortized), ${Math.min(ROUNDS, 3)} rounds`);
compare(`hash:${src}`, bigKeys, BIG, Math.min(ROUNDS, 3));

// ---- regexp: 1,000 rules ----
const re = join(dir, 'virtual.regexp');
const rules: string[] = ['# 1,000 rules as a site with many hosted domains might write them'];
for (let i = 0; i < 1000; i++) {
  switch (i % 5) {
    case 0: rules.push(`/^user${i}@domain${i}\\.example$/ mailbox${i}`); break;
    case 1: rules.push(`/^(.+)@old${i}\\.example$/ \${1}@new${i}.example`); break;
    case 2: rules.push(`/^(postmaster|abuse)@host${i}\\.example$/ admin${i}@example.net`); break;
    case 3: rules.push(`if /@sub${i}\\./`, `/^([a-z]+)\\.([a-z]+)@sub${i}\\.example$/ $2.$1@flat${i}.example`, 'endif'); break;
    default: rules.push(`/^list-[a-z0-9]+-${i}@lists\\.example$/ list${i}@mailman.example`);
  }
}
writeFileSync(re, rules.join('\n') + '\n');
const reKeys: string[] = [];
for (let i = 0; i < RE_KEYS; i++) {
  const n = Math.floor(rnd() * 1000);
  switch (i % 4) {
    case 0: reKeys.push(`user${n - (n % 5)}@domain${n - (n % 5)}.example`); break;
    case 1: reKeys.push(`someone@old${n - (n % 5) + 1}.example`); break;
    case 2: reKeys.push(`first.last@sub${n - (n % 5) + 3}.example`); break;
    default: reKeys.push(`nobody${n}@nowhere.example`);
  }
}
console.log(`\nregexp: a realistic 1,000-rule file, ${fmt(RE_KEYS)} keys (3/4 hits spread over the file, 1/4 misses)`);
compare(`regexp:${re}`, Buffer.from(reKeys.join('\n') + '\n'), RE_KEYS);
