/**
 * lmtp-bench - LMTP final delivery rate: messages delivered per second into the Maildir store,
 * 2 KB messages, 1 recipient each, 10 concurrent sessions, driven by Postfix's own load
 * generator in LMTP mode (`smtp-source -L`) against
 *   (i)  a private real Dovecot 2.3 lmtp (test/harness/real-dovecot.ts, run as root), and
 *   (ii) Postern's lmtpd in its own Node process (bench/postern-lmtpd.ts).
 * Both write durable Maildir files (Dovecot: fsync_mode default; Postern: fsync of file and
 * directory before the 250). After each round the delivered files are counted — a round that
 * lost mail fails — and removed outside the timing.
 *
 *   node bench/lmtp-bench.ts [--messages N] [--rounds N] [--sessions N]
 *
 * Exports `lmtpScenario` (a PairedScenario for bench/run.ts) and `runLmtpBench(o)`, and the
 * pieces sieve-bench.ts runs the same way: the smtp-source contender, Postern's lmtpd process,
 * alternating rounds (runPairedRounds).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { RealDovecot } from '../test/harness/real-dovecot.ts';
import { POSTERN_NODE_FLAGS, timedRun, treeMemory, warmStart } from './bench-proc.ts';
import { Cleanup, median, type BenchOptions, type Contender, type PairedScenario } from './bench-scenario.ts';

const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const USER = 'bench@x.test';
export const MESSAGE_BYTES = 2048;
export const DEFAULT_MESSAGES = 2000;
export const SESSIONS = 10;
const ROUND_TIMEOUT_MS = 300_000;

function countMessages(maildir: string): number {
  let n = 0;
  for (const sub of ['new', 'cur']) {
    try { n += readdirSync(join(maildir, sub)).length; } catch { /* not created yet */ }
  }
  return n;
}

function emptyMaildir(maildir: string): void {
  for (const sub of ['new', 'cur']) {
    let names: string[];
    try { names = readdirSync(join(maildir, sub)); } catch { continue; }
    for (const f of names) rmSync(join(maildir, sub, f), { force: true });
  }
}

/** One contender: smtp-source -L against PORT, then count what landed in MAILDIR. */
export function lmtpContender(port: number, maildir: string, messages: number, sessions: number, pid: () => number, stop: () => Promise<void>): Contender {
  return {
    async round() {
      emptyMaildir(maildir);
      const r = await timedRun(SMTP_SOURCE, ['-L', '-s', String(sessions), '-m', String(messages), '-l', String(MESSAGE_BYTES),
        '-f', 'sender@y.test', '-t', USER, `127.0.0.1:${port}`], ROUND_TIMEOUT_MS);
      if (r.code !== 0) throw new Error(`smtp-source exited ${r.code}: ${r.stderr.slice(0, 500)}`);
      const got = countMessages(maildir);
      if (got !== messages) throw new Error(`${got} of ${messages} messages delivered into ${maildir}`);
      return messages / (r.ms / 1000);
    },
    async memory() { return treeMemory(pid()); },
    stop,
  };
}

export interface PosternLmtpd { child: ChildProcess; lmtp: number; maildir: string }

/** bench/postern-lmtpd.ts in its own process (`env` added to ours), once it prints its port. */
export async function startPosternLmtpd(o: { profileDir?: string | undefined; env?: Record<string, string> } = {}): Promise<PosternLmtpd> {
  const profileDir = o.profileDir;
  const prof = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=lmtpd-${Date.now()}.cpuprofile`] : [];
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const child = spawn(process.execPath, [...POSTERN_NODE_FLAGS, ...prof, join(import.meta.dirname, 'postern-lmtpd.ts'), USER, 'pw'], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...o.env },
  });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { buf += d; const nl = buf.indexOf('\n'); if (nl >= 0) resolve(buf.slice(0, nl)); });
    child.once('exit', (c) => reject(new Error(`postern-lmtpd exited ${c}`)));
  });
  const info = JSON.parse(line) as { lmtp: number; maildir: string };
  return { child, lmtp: info.lmtp, maildir: info.maildir };
}

export const lmtpScenario: PairedScenario = {
  kind: 'paired',
  name: 'lmtp-delivery',
  description: `LMTP deliveries/s into Maildir, ${MESSAGE_BYTES} B messages, ${SESSIONS} sessions, smtp-source -L`,
  metric: 'deliveries/s',
  unit: 'msg/s',
  reference: 'Dovecot 2.3 lmtp',
  async start(o: BenchOptions, cleanup: Cleanup) {
    const why = RealDovecot.unavailable();
    if (why) throw new Error(why);
    const messages = o.messages || DEFAULT_MESSAGES;
    const d = await startDovecotLmtp(o, cleanup, {});
    return pairedContenders(d, d.dc.maildir(USER), await warmLmtpd({ profileDir: o.profileDir }, cleanup), messages);
  },
};

/** Postern's lmtpd started twice (the first start warms the caches), stopped by `cleanup`. */
export async function warmLmtpd(o: Parameters<typeof startPosternLmtpd>[0], cleanup: Cleanup): Promise<{ pm: PosternLmtpd; stop: () => Promise<void> }> {
  const pm = await warmStart(() => startPosternLmtpd(o), (p) => { p.child.kill('SIGTERM'); return new Promise((r) => p.child.once('exit', r)); });
  const stop = async () => { if (pm.child.exitCode === null) { pm.child.kill('SIGTERM'); await new Promise((r) => pm.child.once('exit', r)); } };
  cleanup.add('postern lmtpd', stop);
  return { pm, stop };
}

/** A private real Dovecot lmtp for USER (`extraConf` added to its dovecot.conf), stopped by `cleanup` unless --keep. */
export async function startDovecotLmtp(o: BenchOptions, cleanup: Cleanup, extra: { extraConf?: string }): Promise<{ dc: RealDovecot; stop: () => Promise<void> }> {
  const dc = await RealDovecot.start({ protocols: ['lmtp'], users: [{ user: USER, pass: 'pw' }], ...extra });
  let stopped = false;
  const stop = async () => { if (!stopped && !o.keep) { stopped = true; await dc.stop(); } };
  cleanup.add('real dovecot', stop);
  return { dc, stop };
}

/** The two contenders of an LMTP pair: the real Dovecot (delivering into `dcMaildir`) and Postern. */
export function pairedContenders(d: { dc: RealDovecot; stop: () => Promise<void> }, dcMaildir: string,
  p: { pm: PosternLmtpd; stop: () => Promise<void> }, messages: number): { reference: Contender; postern: Contender } {
  const dcPid = () => Number(readFileSync(join(d.dc.dir, 'run', 'master.pid'), 'utf8').trim());
  return {
    reference: lmtpContender(d.dc.ports.lmtp!, dcMaildir, messages, SESSIONS, dcPid, d.stop),
    postern: lmtpContender(p.pm.lmtp, p.pm.maildir, messages, SESSIONS, () => p.pm.child.pid!, p.stop),
  };
}

export interface LmtpBenchResult { dovecot: number; postern: number; ratio: number; rounds: { dovecot: number; postern: number }[] }

/** Alternating rounds (Dovecot first in even rounds), medians, ratio Postern/Dovecot (> 1: Postern faster). */
export async function runLmtpBench(o: { messages?: number; rounds?: number; log?: (s: string) => void } = {}): Promise<LmtpBenchResult> {
  return runPairedRounds(lmtpScenario, 'Dovecot', o);
}

/** runLmtpBench() for any LMTP pair; `reference` names the Dovecot side in the round lines. */
export async function runPairedRounds(scenario: PairedScenario, reference: string,
  o: { messages?: number; rounds?: number; log?: (s: string) => void } = {}): Promise<LmtpBenchResult> {
  const cleanup = new Cleanup();
  const log = o.log ?? (() => {});
  try {
    const pair = await scenario.start({ rounds: o.rounds ?? 3, messages: o.messages ?? DEFAULT_MESSAGES, keep: false, log }, cleanup);
    const ref = pair.reference;
    const postern = pair.postern;
    // Warm-up round for both (Dovecot forks its lmtp processes, Node compiles).
    await ref.round(); await postern.round();
    const rounds: { dovecot: number; postern: number }[] = [];
    for (let i = 0; i < (o.rounds ?? 3); i++) {
      let d: number, p: number;
      if (i % 2 === 0) { d = await ref.round(); p = await postern.round(); } else { p = await postern.round(); d = await ref.round(); }
      rounds.push({ dovecot: d, postern: p });
      log(`round ${i + 1}: ${reference} ${d.toFixed(0)} msg/s, Postern ${p.toFixed(0)} msg/s`);
    }
    const dovecot = median(rounds.map((r) => r.dovecot));
    const pst = median(rounds.map((r) => r.postern));
    return { dovecot, postern: pst, ratio: pst / dovecot, rounds };
  } finally {
    await cleanup.runAll(log);
  }
}

if (import.meta.main) {
  const arg = (n: string, d: number) => { const i = process.argv.indexOf(n); return i >= 0 ? Number(process.argv[i + 1]) : d; };
  const r = await runLmtpBench({ messages: arg('--messages', DEFAULT_MESSAGES), rounds: arg('--rounds', 3), log: (s) => console.log(s) });
  console.log(`LMTP delivery, ${MESSAGE_BYTES} B, ${SESSIONS} sessions: Dovecot 2.3 ${r.dovecot.toFixed(0)} msg/s, Postern ${r.postern.toFixed(0)} msg/s, ratio Postern/Dovecot ${r.ratio.toFixed(2)}x`);
}
