/**
 * metrics-cpu - the CPU time Postern's smtpd child spends per accepted message with metrics off
 * and on (postern_metrics = yes: runtime gauges, and the whole page rendered every second as a
 * scrape would have it; bench/postern-smtpd.ts), measured from /proc/PID/stat (utime + stime)
 * around each round of smtp-source (2 KB messages, 20 sessions), alternating the two sides.
 * CPU time per message moves less with a noisy neighbour than the accept rate does
 * (metrics-bench.ts), which is why this exists beside it.
 *
 *   node bench/metrics-cpu.ts [ROUNDS] [MESSAGES]      (defaults 6 and 1500; needs smtp-source)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_RECIPIENT, BENCH_SENDER, writeSite } from './bench-site.ts';
import { POSTERN_NODE_FLAGS } from './bench-proc.ts';
import { freePort } from '../test/harness/free-port.ts';

const rounds = Number(process.argv[2] ?? 6);
const messages = Number(process.argv[3] ?? 1500);
const dir = mkdtempSync(join(tmpdir(), 'postern-bench-metrics-cpu-'));
const site = writeSite(dir);
const TICK_MS = 10; // USER_HZ = 100 on Linux

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
}

interface Side { name: string; child: ChildProcess; port: number; queue: string; samples: number[] }

async function start(name: string, extra: string): Promise<Side> {
  const d = join(dir, name);
  const queue = join(d, 'queue');
  mkdirSync(queue, { recursive: true });
  writeFileSync(join(d, 'main.cf'), `${site.mainCf}${extra}queue_directory = ${queue}\n`);
  const port = await freePort();
  const child = spawn(process.execPath, [...POSTERN_NODE_FLAGS, join(import.meta.dirname, 'postern-smtpd.ts'), d, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: smtpd child not ready`)), 30_000);
    child.stdout!.on('data', (x) => { if (String(x).includes('ready')) { clearTimeout(t); resolve(); } });
  });
  return { name, child, port, queue, samples: [] };
}

function send(s: Side, n: number): void {
  const r = spawnSync('/usr/sbin/smtp-source', ['-l', '2048', '-m', String(n), '-s', '20', '-f', BENCH_SENDER, '-t', BENCH_RECIPIENT, `127.0.0.1:${s.port}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`smtp-source: ${r.stderr}`);
  rmSync(join(s.queue, 'incoming'), { recursive: true, force: true });
  mkdirSync(join(s.queue, 'incoming'));
}

const off = await start('off', 'postern_metrics = no\n');
const on = await start('on', 'postern_metrics = yes\n');
try {
  send(off, 300); send(on, 300); // warm-up, untimed
  for (let r = 0; r < rounds; r++) {
    for (const s of r % 2 ? [on, off] : [off, on]) {
      const before = cpuMs(s.child.pid!);
      send(s, messages);
      s.samples.push((cpuMs(s.child.pid!) - before) / messages);
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  for (const s of [off, on]) console.log(`metrics ${s.name.padEnd(3)}: CPU ms per message ${s.samples.map((v) => v.toFixed(3)).join(' ')} (median ${median(s.samples).toFixed(3)})`);
  console.log(`cost of metrics: ${((median(on.samples) / median(off.samples) - 1) * 100).toFixed(1)} % CPU per message`);
} finally {
  off.child.kill(); on.child.kill();
  rmSync(dir, { recursive: true, force: true });
}
