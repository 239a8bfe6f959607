/**
 * bench-smtp-accept - SMTP accept rate: messages accepted per second, 2 KB messages, 1 or 20
 * concurrent sessions, fsync on, driven by Postfix's own load generator smtp-source(1) against
 *   (i)  real Postfix 3.7 (test/harness/real-postfix.ts, a private instance run as root), and
 *   (ii) Postern's smtpd with SmtpdCheck restrictions in a child Node process
 *        (bench/postern-smtpd.ts), writing the same kind of durable queue file.
 * Both read the same main.cf lines (bench-site.ts) and accept the same listed virtual mailbox.
 *
 * Mail is accepted and queued durably but not delivered during the measurement:
 *   - Postern's child has no qmgr, so queue files stay in `incoming`.
 *   - Postfix keeps its qmgr (without one, cleanup's qmgr trigger fails and Postfix pauses a
 *     second per message: "warning: unable to look up public/qmgr"), with
 *     `defer_transports = virtual`, so qmgr moves each message to `deferred` without delivering.
 *     That qmgr work runs concurrently and counts against Postfix, as it would in production.
 * The time is wall-clock around the smtp-source process. After each round the queue is counted
 * (a fast answer that lost mail does not count: the round fails) and emptied, outside the timing;
 * for Postfix the runner first waits until qmgr has moved everything out of incoming/active.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { freePort } from '../test/harness/free-port.ts';
import { BENCH_RECIPIENT, BENCH_SENDER, writeSite, type Site } from './bench-site.ts';
import { POSTERN_NODE_FLAGS, timedRun, treeMemory } from './bench-proc.ts';
import type { BenchOptions, Cleanup, Contender, PairedScenario } from './bench-scenario.ts';
import { opendkimUnavailable, startOpendkim } from './bench-opendkim.ts';

const run = promisify(execFile);
const SMTP_SOURCE = '/usr/sbin/smtp-source';
const MESSAGE_BYTES = 2048;
const DEFAULT_MESSAGES = 2000;
const WARM_UP_MESSAGES = 200;
const ROUND_TIMEOUT_MS = 300_000;

/** Number of queue files under a queue directory's named queues (hashed subdirectories too). */
export function countQueueFiles(queueDir: string, queues: readonly string[]): number {
  let n = 0;
  const walk = (d: string, depth: number): void => {
    let names: string[];
    try { names = readdirSync(d); } catch { return; }
    for (const name of names) {
      const p = join(d, name);
      let st;
      try { st = statSync(p); } catch { continue; } // moved by qmgr meanwhile
      if (st.isDirectory()) { if (depth < 4) walk(p, depth + 1); } else if (/^[0-9A-Za-z]{6,}$/.test(name)) n++;
    }
  };
  for (const q of queues) walk(join(queueDir, q), 0);
  return n;
}

function removeQueueFiles(queueDir: string, queues: readonly string[]): void {
  for (const q of queues) {
    const d = join(queueDir, q);
    let names: string[];
    try { names = readdirSync(d); } catch { continue; }
    for (const name of names) rmSync(join(d, name), { recursive: true, force: true });
  }
}

async function smtpSource(port: number, messages: number, sessions: number): Promise<number> {
  const args = ['-l', String(MESSAGE_BYTES), '-m', String(messages), '-s', String(sessions),
    '-f', BENCH_SENDER, '-t', BENCH_RECIPIENT, `127.0.0.1:${port}`];
  const r = await timedRun(SMTP_SOURCE, args, ROUND_TIMEOUT_MS);
  if (r.code !== 0 || /fatal|error/i.test(r.stderr)) {
    throw new Error(`smtp-source ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 5).join(' | ')}`);
  }
  return r.ms;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPostfix(site: Site, sessions: number, o: BenchOptions, cleanup: Cleanup): Promise<Contender> {
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: site.mainCf + [
      '# bench: accept and queue durably, never deliver (see bench/README.md)',
      'defer_transports = virtual',
      // Enough smtpd processes for every session (default_process_limit is 100).
      `default_process_limit = ${Math.max(100, sessions * 2)}`,
      '',
    ].join('\n'),
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
  cleanup.add('stop real Postfix', () => pf.stop());
  const queues = ['incoming', 'active', 'deferred', 'hold'];
  const masterPid = (): number => Number(/\d+/.exec(readPid(join(pf.queueDir, 'pid', 'master.pid')))?.[0] ?? 0);
  const settle = async (): Promise<void> => {
    // Wait (bounded) until qmgr has moved every new message out of incoming and active.
    for (let i = 0; i < 600 && countQueueFiles(pf.queueDir, ['incoming', 'active']) > 0; i++) await sleep(50);
  };
  const empty = async (): Promise<void> => {
    await run('/usr/sbin/postsuper', ['-c', pf.configDir, '-d', 'ALL']).catch(() => {});
    removeQueueFiles(pf.queueDir, ['defer']);
  };
  const once = async (messages: number): Promise<number> => {
    const ms = await smtpSource(port, messages, sessions);
    await settle();
    const n = countQueueFiles(pf.queueDir, queues);
    if (n !== messages) throw new Error(`real Postfix: ${messages} messages sent, ${n} in the queue\n${pf.log().split('\n').slice(-20).join('\n')}`);
    await empty();
    return messages / (ms / 1000);
  };
  await once(WARM_UP_MESSAGES);
  o.log(`  reference: real Postfix on 127.0.0.1:${port}, queue ${pf.queueDir}`);
  return {
    round: () => once(o.messages || DEFAULT_MESSAGES),
    memory: async () => treeMemory(masterPid()),
    stop: () => pf.stop(),
  };
}

function readPid(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return '0'; }
}

/**
 * Postern's smtpd child on the site; `extraMainCf` lines come after the site's (they win), and
 * `name` is its directory under the site (two Postern contenders side by side: authres-bench.ts).
 */
export async function startPostern(site: Site, sessions: number, o: BenchOptions, cleanup: Cleanup, extraMainCf = '', name = 'postern'): Promise<Contender> {
  const port = await freePort();
  const dir = join(site.dir, name);
  const queueDir = join(dir, 'queue');
  mkdirSync(queueDir, { recursive: true });
  writeFileSync(join(dir, 'main.cf'), site.mainCf + extraMainCf + `queue_directory = ${queueDir}\n`);
  const nodeArgs = [...POSTERN_NODE_FLAGS];
  if (o.profileDir) {
    mkdirSync(o.profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.profileDir}`, `--cpu-prof-name=smtpd-${sessions}-${Date.now()}.cpuprofile`);
  }
  const spawnSmtpd = async (args: string[]) => {
    const c = spawn(process.execPath, [...args, join(import.meta.dirname, 'postern-smtpd.ts'), dir, String(port)],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitReady(c);
    return c;
  };
  await stopChild(await spawnSmtpd([...POSTERN_NODE_FLAGS]));   // fills the compile cache (bench-proc.ts warmStart)
  const child = await spawnSmtpd(nodeArgs);
  const stop = () => stopChild(child);
  cleanup.add('stop Postern smtpd child', stop);
  const once = async (messages: number): Promise<number> => {
    const ms = await smtpSource(port, messages, sessions);
    const n = countQueueFiles(queueDir, ['incoming', 'hold']);
    if (n !== messages) throw new Error(`Postern: ${messages} messages sent, ${n} in the queue (see ${join(dir, 'maillog')})`);
    removeQueueFiles(queueDir, ['incoming']);
    return messages / (ms / 1000);
  };
  await once(WARM_UP_MESSAGES);
  o.log(`  ${name === 'postern' ? 'Postern' : name}: smtpd child pid ${child.pid} on 127.0.0.1:${port}, queue ${queueDir}`);
  return {
    round: () => once(o.messages || DEFAULT_MESSAGES),
    memory: async () => treeMemory(child.pid!),
    stop,
  };
}

function waitReady(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (err.length < 10_000) err += d; });
    const timer = setTimeout(() => reject(new Error(`Postern smtpd did not start within 20 s: ${err}`)), 20_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('ready')) { clearTimeout(timer); resolve(); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`Postern smtpd exited (${code}): ${err}`)); });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

/** `milter`: both sides sign every message through the same OpenDKIM milter (milter-opendkim-N). */
export function smtpAcceptScenario(sessions: number, opts: { milter?: 'opendkim' } = {}): PairedScenario {
  return {
    kind: 'paired',
    name: opts.milter ? `milter-${opts.milter}-${sessions}` : `smtp-accept-${sessions}`,
    description: `SMTP accept rate, 2 KB messages, ${sessions} concurrent session${sessions > 1 ? 's' : ''}, fsync on (smtp-source)${opts.milter ? ', signed by OpenDKIM as smtpd_milters' : ''}`,
    metric: 'messages accepted/s',
    unit: 'msg/s',
    reference: 'Postfix smtpd',
    async start(o, cleanup) {
      const why = RealPostfix.unavailable();
      if (why) throw new Error(`real Postfix cannot run: ${why}`);
      const dir = mkdtempSync(join(tmpdir(), 'postern-bench-smtp-'));
      if (!o.keep) cleanup.add(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      const site = writeSite(dir);
      if (opts.milter) {
        const why = opendkimUnavailable();
        if (why) throw new Error(`OpenDKIM cannot run: needs ${why}`);
        site.mainCf += `smtpd_milters = ${await startOpendkim(join(dir, 'opendkim'), cleanup)}\nmilter_default_action = tempfail\n`;
      }
      const reference = await startPostfix(site, sessions, o, cleanup);
      const postern = await startPostern(site, sessions, o, cleanup);
      return { reference, postern };
    },
  };
}
