/**
 * bench-proc - processes for the benchmarks: the memory of a whole process tree (from /proc),
 * and running a driver program with a bounded time.
 *
 * Memory is read from /proc/PID/status (VmRSS) and /proc/PID/smaps_rollup (Pss) of the root
 * process and every descendant (found through the PPid field of /proc/PID/stat), so Postfix's
 * master + smtpd + cleanup + postlogd + ... are summed just like Postern's single Node process.
 * RSS counts shared pages (libc, Postfix's libpostfix-*.so) once per process, which penalises a
 * multi-process design; PSS splits them among the sharers. Both are reported.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TreeMemory } from './bench-scenario.ts';

/**
 * The Node flags every Postern process runs with (bin/node-flags, also read by bin/postern), for
 * benchmarks that start a Postern server directly: measured as administrators run it.
 */
export const POSTERN_NODE_FLAGS: readonly string[] = readFileSync(new URL('../bin/node-flags', import.meta.url), 'utf8')
  .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/**
 * Node's compile cache, as bin/postern sets it for every Postern process (same directory): the
 * Postern servers the benchmarks start inherit it, and each is started once before it is
 * measured (`warmStart`), as an administrator's second `postern start` finds the cache warm —
 * a cold cache leaves the TypeScript stripper loaded in every process and thread (~30 MB).
 */
process.env.NODE_COMPILE_CACHE ??= fileURLToPath(new URL('../node_modules/.cache/postern-compile-cache', import.meta.url));

/** Start a Postern server once and stop it (filling the compile cache), then start it for real. */
export async function warmStart<T>(start: () => Promise<T>, stop: (t: T) => Promise<unknown>): Promise<T> {
  await stop(await start());
  return start();
}

function readOr(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch { return ''; }
}

/** The PIDs of a process and all its descendants (a snapshot of /proc). */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readOr(`/proc/${name}/stat`);
    // pid (comm) state ppid ...: comm may contain spaces and parentheses; split after the last ')'.
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(after[1]);
    if (!Number.isFinite(ppid)) continue;
    const list = children.get(ppid) ?? [];
    list.push(Number(name));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length && out.length < 10_000) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

export function treeMemory(root: number): TreeMemory {
  let rss = 0;
  let pss = 0;
  let processes = 0;
  for (const pid of processTree(root)) {
    const status = readOr(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    if (!m) continue; // exited meanwhile, or a zombie
    rss += Number(m[1]) * 1024;
    const p = /^Pss:\s+(\d+) kB/m.exec(readOr(`/proc/${pid}/smaps_rollup`));
    pss += p ? Number(p[1]) * 1024 : Number(m[1]) * 1024;
    processes++;
  }
  return { rss, pss, processes };
}

/**
 * CPU seconds used so far by a process tree: utime + stime of every live process (all its
 * threads) + cutime + cstime (children it has already reaped, e.g. Postfix processes that
 * ended at max_idle). Take the difference over a round for the system's own CPU.
 */
export function treeCpuSeconds(root: number): { user: number; system: number } {
  const hz = 100; // USER_HZ on Linux
  let user = 0;
  let system = 0;
  for (const pid of processTree(root)) {
    const stat = readOr(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields after comm: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14)
    const [u, s, cu, cs] = [11, 12, 13, 14].map((i) => Number(f[i] ?? 0));
    if ([u, s, cu, cs].every(Number.isFinite)) { user += u! + cu!; system += s! + cs!; }
  }
  return { user: user / hz, system: system / hz };
}

/** The whole machine's busy and total CPU seconds (all cores) since boot, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readOr('/proc/stat').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

/** Drivers still running; killed if the runner exits (e.g. after SIGINT) before they end. */
const live = new Set<import('node:child_process').ChildProcess>();
process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });

export interface RunResult { ms: number; code: number | null; stdout: string; stderr: string }

/** Run a program to its end (killed after timeoutMs); wall-clock time measured from outside. */
export function timedRun(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { if (stdout.length < 1 << 20) stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (stderr.length < 1 << 20) stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); live.delete(child); reject(e); });
    child.once('close', (code) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, code, stdout, stderr });
    });
  });
}
