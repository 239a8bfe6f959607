/**
 * queue-bench - a large deferred queue (issue 4's "memory flat when 100,000 messages are queued
 * behind a stopped destination", issue 8's scenario "queue with 100,000 deferred messages
 * (memory and flush time)"), against real Postfix 3.7 and the whole Postern system, one after
 * the other (never at the same time: they share the machine's cores).
 *
 * Both get the same main.cf lines: bench-site.ts's site plus
 *     relayhost = [127.0.0.1]:P      (P: a loopback port where nothing listens yet)
 * so every delivery of mail to remote.example is deferred with "connection refused".
 * Phases, per system:
 *   1. inject N messages of 2 KB with smtp-source(1) (20 sessions, -d: several messages per
 *      connection) to rcpt@remote.example; qmgr tries each (or, like Postfix, marks the
 *      destination dead) and moves it to `deferred`. Wait (bounded) until incoming and active
 *      are empty and deferred holds N files.
 *   2. hold: the queue holds N deferred messages; sample RSS every second for HOLD_S seconds.
 *   3. start smtp-sink(1) on P, run `postqueue -f` / `postern queue flush`, and time until the
 *      queue is empty (every message accepted by the sink), sampling RSS every second.
 * Memory is the queue manager's RSS: Postfix's qmgr process (the child of master whose comm is
 * "qmgr") vs Postern's master process (which is the whole system, smtpd and agents included);
 * Postfix's whole process tree is printed as well. Samples: min / median / max.
 * Ratios are Postern/Postfix (for times and memory, < 1 means Postern is better).
 *
 *   node bench/queue-bench.ts [--messages N] [--hold S] [--keep]
 *   import { runQueueBench } from './queue-bench.ts'; await runQueueBench({ messages: 100_000 });
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { freePort } from '../test/harness/free-port.ts';
import { BENCH_SENDER, writeSite } from './bench-site.ts';
import { processTree, timedRun, treeMemory } from './bench-proc.ts';
import { median } from './bench-scenario.ts';
import { PosternMaster, postfixMasterPid } from './e2e-bench.ts';

const run = promisify(execFile);
const SMTP_SOURCE = '/usr/sbin/smtp-source';
const SMTP_SINK = '/usr/sbin/smtp-sink';
const MESSAGE_BYTES = 2048;
const SESSIONS = 20;
const RECIPIENT = 'rcpt@remote.example';
const DEFAULT_MESSAGES = 100_000;
const DEFAULT_HOLD_S = 20;
const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface QueueOptions {
  /** Messages queued (default 100,000). */
  messages?: number;
  /** Seconds to sample memory while the queue holds all messages (default 20). */
  holdSeconds?: number;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface Stats { min: number; median: number; max: number; samples: number }

export interface SideResult {
  injectSeconds: number;
  /** Seconds from the end of injection until all N are in deferred (qmgr's first attempts). */
  settleSeconds: number;
  flushSeconds: number;
  /** Queue manager RSS (MB) while the queue holds N messages. */
  holdRssMB: Stats;
  /** Queue manager RSS (MB) during injection and during the flush. */
  injectRssMB: Stats;
  flushRssMB: Stats;
  /** Whole process tree (MB) at the end of the hold phase. */
  treeRssMB: number;
  treePssMB: number;
  treeProcesses: number;
}

export interface BenchResult {
  /** Flush time in seconds (the headline: time to drain N deferred messages). */
  postern: number;
  reference: number;
  /** postern / reference flush seconds (< 1: Postern drains faster). */
  ratio: number;
  details: { messages: number; holdSeconds: number; postfix: SideResult; postern: SideResult };
}

function stats(xs: number[]): Stats {
  return { min: xs.length ? Math.min(...xs) : NaN, median: median(xs), max: xs.length ? Math.max(...xs) : NaN, samples: xs.length };
}

function rssOf(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch { return 0; }
}

/** Postfix's qmgr: the child of master whose comm is "qmgr". */
export function postfixQmgrPid(masterPid: number): number {
  for (const pid of processTree(masterPid)) {
    try { if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'qmgr') return pid; } catch { /* exited */ }
  }
  return 0;
}

/** Queue files in the named queues (hashed subdirectories too), by name only: no stat(). */
export function countQueue(queueDir: string, queues: readonly string[]): number {
  let n = 0;
  const walk = (d: string, depth: number): void => {
    let ents;
    try { ents = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of ents) {
      if (e.isDirectory()) { if (depth < 4) walk(join(d, e.name), depth + 1); } else if (/^[0-9A-Za-z]{6,}$/.test(e.name)) n++;
    }
  };
  for (const q of queues) walk(join(queueDir, q), 0);
  return n;
}

/** Sample a pid's RSS every second until stopped. */
export function sampler(pidOf: () => number): { stop(): number[] } {
  const xs: number[] = [];
  const t = setInterval(() => { const r = rssOf(pidOf()); if (r) xs.push(r / MB); }, 1000);
  return { stop: () => { clearInterval(t); return xs; } };
}

interface System {
  name: 'postfix' | 'postern';
  port: number;
  queueDir: string;
  qmgrPid(): number;
  rootPid(): number;
  flush(): Promise<void>;
  tail(): string;
  stop(): Promise<void>;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs: number, sys: System, pollMs = 1000): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`${sys.name}: timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}\n${sys.tail()}`);
    await sleep(pollMs);
  }
  return (performance.now() - t0) / 1000;
}

export function startSink(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const p = spawn(SMTP_SINK, ['-u', 'root', `127.0.0.1:${port}`, '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.setEncoding('utf8').on('data', (d: string) => { if (err.length < 4000) err += d; });
    p.once('error', reject);
    p.once('exit', (c) => reject(new Error(`smtp-sink exited ${c}: ${err}`)));
    setTimeout(() => resolve(p), 300);
  });
}

async function measure(sys: System, n: number, holdS: number, sinkPort: number, log: (l: string) => void): Promise<SideResult> {
  const all = ['incoming', 'active', 'deferred', 'hold', 'maildrop'];
  log(`  ${sys.name}: injecting ${n} messages (smtp-source -d -s ${SESSIONS})`);
  const injS = sampler(() => sys.qmgrPid());
  const inj = await timedRun(SMTP_SOURCE, ['-d', '-l', String(MESSAGE_BYTES), '-m', String(n), '-s', String(SESSIONS),
    '-f', BENCH_SENDER, '-t', RECIPIENT, `127.0.0.1:${sys.port}`], Math.max(600_000, n * 20));
  if (inj.code !== 0 || /fatal|error/i.test(inj.stderr)) throw new Error(`${sys.name}: smtp-source exit ${inj.code}: ${inj.stderr.slice(0, 500)}`);
  const injectSeconds = inj.ms / 1000;
  log(`  ${sys.name}: injected in ${injectSeconds.toFixed(1)} s (${(n / injectSeconds).toFixed(0)} msg/s); waiting for all to be deferred`);
  const settleSeconds = await waitFor(`${n} messages in deferred`, () =>
    countQueue(sys.queueDir, ['incoming', 'active']) === 0 && countQueue(sys.queueDir, ['deferred']) === n, Math.max(300_000, n * 10), sys, 2000);
  const injectRss = injS.stop();
  log(`  ${sys.name}: ${n} deferred (${settleSeconds.toFixed(1)} s after injection); holding ${holdS} s`);
  const holdS_ = sampler(() => sys.qmgrPid());
  await sleep(holdS * 1000 + 200);
  const holdRss = holdS_.stop();
  const tree = treeMemory(sys.rootPid());
  const sink = await startSink(sinkPort);
  try {
    const flS = sampler(() => sys.qmgrPid());
    const t0 = performance.now();
    await sys.flush();
    await waitFor('an empty queue', () => countQueue(sys.queueDir, all) === 0, Math.max(600_000, n * 20), sys, 500);
    const flushSeconds = (performance.now() - t0) / 1000;
    const flushRss = flS.stop();
    log(`  ${sys.name}: flushed ${n} in ${flushSeconds.toFixed(1)} s (${(n / flushSeconds).toFixed(0)} msg/s)`);
    return {
      injectSeconds, settleSeconds, flushSeconds,
      holdRssMB: stats(holdRss), injectRssMB: stats(injectRss), flushRssMB: stats(flushRss),
      treeRssMB: tree.rss / MB, treePssMB: tree.pss / MB, treeProcesses: tree.processes,
    };
  } finally {
    sink.kill('SIGTERM');
  }
}

export async function runQueueBench(opts: QueueOptions = {}): Promise<BenchResult> {
  const n = opts.messages ?? DEFAULT_MESSAGES;
  const holdS = opts.holdSeconds ?? DEFAULT_HOLD_S;
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const why = RealPostfix.unavailable();
  if (why) throw new Error(`real Postfix cannot run: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-queue-'));
  chmodSync(dir, 0o755);
  const stops: (() => Promise<void>)[] = [];
  const onSignal = () => { void Promise.allSettled(stops.map((s) => s())).then(() => { if (!opts.keep) rmSync(dir, { recursive: true, force: true }); process.exit(130); }); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: Partial<Record<'postfix' | 'postern', SideResult>> = {};
  try {
    log(`queue: ${n} messages of ${MESSAGE_BYTES} bytes behind a stopped relayhost, hold ${holdS} s, then flush`);
    // --- real Postfix
    {
      const site = writeSite(join(dir, 'site-postfix'));
      const sinkPort = await freePort();
      const port = await freePort();
      const pf = await RealPostfix.start({
        mainCf: site.mainCf + `relayhost = [127.0.0.1]:${sinkPort}\n`,
        masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
      });
      stops.push(() => pf.stop());
      const sys: System = {
        name: 'postfix', port, queueDir: pf.queueDir,
        qmgrPid: () => postfixQmgrPid(postfixMasterPid(pf)),
        rootPid: () => postfixMasterPid(pf),
        flush: async () => { await run('/usr/sbin/postqueue', ['-c', pf.configDir, '-f']); },
        tail: () => pf.log().split('\n').slice(-12).join('\n'),
        stop: () => pf.stop(),
      };
      results.postfix = await measure(sys, n, holdS, sinkPort, log);
      await pf.stop();
      stops.pop();
    }
    // --- Postern
    {
      const site = writeSite(join(dir, 'site-postern'));
      const sinkPort = await freePort();
      const port = await freePort();
      const conf = join(dir, 'postern');
      const queueDir = join(conf, 'data', 'queue');
      const m = await PosternMaster.start(conf, site.mainCf + [
        `relayhost = [127.0.0.1]:${sinkPort}`,
        `queue_directory = ${queueDir}`,
        `data_directory = ${join(conf, 'data', 'lib')}`,
        '',
      ].join('\n'), port);
      stops.push(() => m.stop());
      const sys: System = {
        name: 'postern', port, queueDir,
        qmgrPid: () => m.pid,
        rootPid: () => m.pid,
        flush: async () => {
          const r = (await m.cli('queue', 'flush'));
          if (r.status !== 0) throw new Error(`postern queue flush: exit ${r.status}: ${r.stderr}`);
        },
        tail: () => m.logTail.split('\n').slice(-12).join('\n'),
        stop: () => m.stop(),
      };
      results.postern = await measure(sys, n, holdS, sinkPort, log);
      await m.stop();
      stops.pop();
    }
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
  }
  const pf = results.postfix!;
  const pn = results.postern!;
  return {
    postern: pn.flushSeconds, reference: pf.flushSeconds, ratio: pn.flushSeconds / pf.flushSeconds,
    details: { messages: n, holdSeconds: holdS, postfix: pf, postern: pn },
  };
}

export function formatQueue(r: BenchResult): string {
  const { postfix: a, postern: b, messages, holdSeconds } = r.details;
  const f = (x: number) => x.toFixed(1);
  const st = (s: Stats) => `${f(s.min)}/${f(s.median)}/${f(s.max)}`;
  const line = (name: string, x: string, y: string, ratio: number | string) =>
    `${name.padEnd(44)} ${x.padStart(17)} ${y.padStart(17)} ${(typeof ratio === 'number' ? ratio.toFixed(2) : ratio).padStart(10)}`;
  return [
    `queue: ${messages} deferred messages × 2 KB behind a stopped relayhost, hold ${holdSeconds} s, then flush to smtp-sink (1 run each)`,
    line('metric', 'Postfix 3.7', 'Postern', 'ratio P/PF'),
    line('inject, s (smtp-source -d -s 20)', f(a.injectSeconds), f(b.injectSeconds), b.injectSeconds / a.injectSeconds),
    line('inject rate, msg/s', f(messages / a.injectSeconds), f(messages / b.injectSeconds), a.injectSeconds / b.injectSeconds),
    line('all deferred, s after injection', f(a.settleSeconds), f(b.settleSeconds), ''),
    line('flush until queue empty, s', f(r.reference), f(r.postern), r.ratio),
    line('flush rate, msg/s', f(messages / r.reference), f(messages / r.postern), r.reference / r.postern),
    line('qmgr RSS MB while injecting, min/med/max', st(a.injectRssMB), st(b.injectRssMB), b.injectRssMB.max / a.injectRssMB.max),
    line('qmgr RSS MB holding N, min/med/max', st(a.holdRssMB), st(b.holdRssMB), b.holdRssMB.median / a.holdRssMB.median),
    line('qmgr RSS MB during flush, min/med/max', st(a.flushRssMB), st(b.flushRssMB), b.flushRssMB.max / a.flushRssMB.max),
    line('whole tree RSS MB holding N', f(a.treeRssMB), f(b.treeRssMB), b.treeRssMB / a.treeRssMB),
    line('whole tree PSS MB holding N', f(a.treePssMB), f(b.treePssMB), b.treePssMB / a.treePssMB),
    line('processes', String(a.treeProcesses), String(b.treeProcesses), ''),
    '(qmgr = Postfix\'s qmgr process; for Postern its master, which is the whole system)',
  ].join('\n');
}

function parseArgs(argv: string[]): QueueOptions {
  const o: QueueOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const int = (max: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`${a} wants an integer from 1 to ${max}, got "${argv[i] ?? ''}"`);
      return v;
    };
    if (a === '--messages') o.messages = int(1_000_000);
    else if (a === '--hold') o.holdSeconds = int(3600);
    else if (a === '--keep') o.keep = true;
    else throw new Error(`unknown option ${a}; usage: node bench/queue-bench.ts [--messages N] [--hold S] [--keep]`);
  }
  return o;
}

if (import.meta.main) {
  let o: QueueOptions;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { process.stderr.write(`queue-bench: ${(e as Error).message}\n`); process.exit(64); }
  runQueueBench(o).then((r) => { process.stdout.write(formatQueue(r) + '\n'); }, (e: Error) => {
    process.stderr.write(`queue-bench: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  });
}
