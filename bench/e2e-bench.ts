/**
 * e2e-bench - end-to-end SMTP → Maildir rate (issue 4's bench line, issue 8's scenario
 * "end-to-end SMTP→Maildir rate"): messages per second accepted by smtpd AND delivered by
 * virtual(8) into Maildir, 2 KB messages, 20 concurrent senders, 100 virtual users, against
 *   (i)  real Postfix 3.7 (smtpd → cleanup → qmgr → virtual(8), test/harness/real-postfix.ts),
 *   (ii) the whole Postern system (`postern -c DIR start`: smtpd → cleanup → qmgr → virtual).
 * Both get the same main.cf lines: the seed's virtual-mailbox example from bench-site.ts
 * (virtual_mailbox_domains, hash: virtual_mailbox_maps with user1..user100, static uid/gid 5000),
 * each with its own virtual_mailbox_base so deliveries can be counted apart.
 *
 * The load: 20 concurrent workers, each running Postfix's smtp-source(1) once for each of its 5
 * users (`smtp-source -l 2048 -m N/100 -f from@example.org -t userK@myoffice.space`), so there
 * are always 20 SMTP sessions (one message per connection, as smtp-source without -d) and every
 * one of the 100 mailboxes receives N/100 messages. The round's time runs from the start of the
 * first smtp-source until the count of files in every user's Maildir new/ reaches N (polled every
 * 20 ms); a round that does not reach N within its timeout fails, so a fast answer that lost
 * mail never counts. Between rounds the delivered files are removed (outside the timing).
 * Rounds alternate (Postfix first in rounds 1, 3, 5, ...), medians are reported, ratio = Postern/Postfix.
 * Memory: RSS and PSS of each system's whole process tree after each round (Postfix: master +
 * every child, from /proc; Postern: the master process, which is the whole system).
 *
 * With `profile: true` one extra Postern round runs under `node --cpu-prof` (not timed for the
 * table) and the hottest functions by self time are listed (analyseCpuProfile()).
 *
 * POSTERN_BENCH_SMTPD_MODE=process|thread|inline runs Postern's smtpd with
 * `-o postern_process_mode=VALUE` (docs/master.md), POSTERN_BENCH_QMGR_MODE the same for qmgr
 * (default: each service's default placement), POSTERN_BENCH_SMTPD_COUNT=N adds
 * `-o postern_process_count=N` (N smtpd processes). Memory then counts the children too.
 *
 *   node bench/e2e-bench.ts [--rounds N] [--messages N] [--no-profile] [--keep] [--postern-only]
 *   import { runE2eBench } from './e2e-bench.ts'; const r = await runE2eBench({ rounds: 3 });
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { freePort } from '../test/harness/free-port.ts';
import { BENCH_SENDER, SITE_DOMAIN, SITE_USERS, writeSite, type Site } from './bench-site.ts';
import { machineCpuSeconds, POSTERN_NODE_FLAGS, timedRun, treeCpuSeconds, treeMemory, warmStart } from './bench-proc.ts';
import { median } from './bench-scenario.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SMTP_SOURCE = '/usr/sbin/smtp-source';
const MESSAGE_BYTES = 2048;
const SENDERS = 20;
const DEFAULT_MESSAGES = 2000;
const WARM_UP_MESSAGES = 200;
const VMAIL_UID = 5000;
const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface E2eOptions {
  rounds?: number;
  /** Messages per round (rounded up to a multiple of 100, one share per user). */
  messages?: number;
  /**
   * Postern alone (no Postfix): for profiling with outside tools (`perf record -p PID`, the pid
   * is logged); the reference figures are then NaN.
   */
  posternOnly?: boolean;
  /** Run one extra profiled Postern round and list the hot spots. */
  profile?: boolean;
  /** Where the .cpuprofile goes (default: a temp dir that is removed unless keep). */
  profileDir?: string;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface HotSpot {
  fn: string;
  where: string;
  selfPct: number;
  selfMs: number;
  /** For a native or anonymous frame: the nearest named JavaScript caller taking most of its time. */
  via?: string;
}

export interface BenchResult {
  /** Median messages/second, accepted and delivered into Maildir. */
  postern: number;
  reference: number;
  /** postern / reference (> 1: Postern is faster). */
  ratio: number;
  details: {
    messages: number;
    rounds: number;
    senders: number;
    users: number;
    samples: { reference: number[]; postern: number[] };
    rssMB: { reference: number[]; postern: number[] };
    pssMB: { reference: number[]; postern: number[] };
    /** CPU ms per message of the system's process tree, and the machine's busy %, per round. */
    cpuMsPerMsg: { reference: number[]; postern: number[] };
    machineBusyPct: { reference: number[]; postern: number[] };
    processes: { reference: number; postern: number };
    hotSpots?: HotSpot[];
    /** Self time per source file (native frames by name). */
    hotFiles?: { where: string; selfPct: number }[];
    profileFile?: string;
  };
}

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by queue-bench.ts)

/** Postfix's stock internal services (master.cf), for both systems. */
export const INTERNAL_SERVICES = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
`;

/** A running Postern master (`node src/cli/postern.ts -c DIR start`), its output drained. */
export class PosternMaster {
  readonly configDir: string;
  readonly child: ChildProcess;
  private tail = '';

  private constructor(configDir: string, child: ChildProcess) {
    this.configDir = configDir;
    this.child = child;
  }

  /**
   * Write main.cf (the given text), master.cf (one smtpd on 127.0.0.1:port + INTERNAL_SERVICES)
   * and a dovecot.conf without protocols into configDir, then start the master and wait for
   * "daemon started". nodeFlags go before the script (e.g. --cpu-prof).
   */
  static async start(configDir: string, mainCf: string, port: number, nodeFlags: string[] = []): Promise<PosternMaster> {
    mkdirSync(configDir, { recursive: true });
    writeFileSync(join(configDir, 'main.cf'), mainCf);
    const mode = (v: string | undefined) => (v ? `\n  -o postern_process_mode=${v}` : '');
    const internal = INTERNAL_SERVICES.replace(/^(qmgr .*)$/m, `$1${mode(process.env.POSTERN_BENCH_QMGR_MODE)}`);
    const count = process.env.POSTERN_BENCH_SMTPD_COUNT ? `\n  -o postern_process_count=${process.env.POSTERN_BENCH_SMTPD_COUNT}` : '';
    writeFileSync(join(configDir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd${mode(process.env.POSTERN_BENCH_SMTPD_MODE)}${count}\n${internal}`);
    writeFileSync(join(configDir, 'dovecot.conf'), '# bench: no IMAP/POP3/LMTP\nprotocols =\n');
    const child = spawn(process.execPath, [...POSTERN_NODE_FLAGS, ...nodeFlags,
      join(ROOT, 'src/cli/postern.ts'), '-c', configDir, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const m = new PosternMaster(configDir, child);
    let seen = '';
    const keep = (d: Buffer) => {
      const s = d.toString('latin1');
      m.tail = (m.tail + s).slice(-20_000);
      if (seen.length < 200_000) seen += s;
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const end = Date.now() + 30_000;
    while (!seen.includes('daemon started')) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postern start exited (${child.exitCode ?? child.signalCode}):\n${m.tail}`);
      if (Date.now() > end) { await m.stop(); throw new Error(`postern start did not report "daemon started" in 30 s:\n${m.tail}`); }
      await sleep(25);
    }
    seen = 'x'.repeat(200_000); // stop keeping the start-up text
    return m;
  }

  get pid(): number { return this.child.pid!; }
  /** The last 20 KB of the log. */
  get logTail(): string { return this.tail; }

  cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [...POSTERN_NODE_FLAGS, join(ROOT, 'src/cli/postern.ts'),
      '-c', this.configDir, ...args], { encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** SIGTERM, wait up to 30 s (a --cpu-prof master writes its profile on exit), then SIGKILL. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((res) => {
      const kill = setTimeout(() => c.kill('SIGKILL'), 30_000);
      c.once('exit', () => { clearTimeout(kill); res(); });
      c.kill('SIGTERM');
    });
  }
}

/** Files in new/ of every Maildir directly under base/domain/. */
export function countMaildirNew(domainDir: string): number {
  let n = 0;
  let users: string[];
  try { users = readdirSync(domainDir); } catch { return 0; }
  for (const u of users) {
    try { n += readdirSync(join(domainDir, u, 'new')).length; } catch { /* not created yet */ }
  }
  return n;
}

function emptyMaildirNew(domainDir: string): void {
  let users: string[];
  try { users = readdirSync(domainDir); } catch { return; }
  for (const u of users) {
    for (const sub of ['new', 'cur']) {
      let names: string[];
      try { names = readdirSync(join(domainDir, u, sub)); } catch { continue; }
      for (const f of names) { try { unlinkSync(join(domainDir, u, sub, f)); } catch { /* gone */ } }
    }
  }
}

/** The Postfix master's pid from its pid file. */
export function postfixMasterPid(pf: RealPostfix): number {
  try { return Number(/\d+/.exec(readFileSync(join(pf.queueDir, 'pid', 'master.pid'), 'utf8'))?.[0] ?? 0); } catch { return 0; }
}

/**
 * The hottest functions of a V8 .cpuprofile by self time: samples attributed to each node,
 * summed per (function, url:line). Idle/program/GC are kept (they say where time went).
 */
export function analyseCpuProfile(file: string, top = 15): HotSpot[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
    samples: number[]; timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const short = (url: string) => url.replace(/^file:\/\//, '').replace(ROOT + '/', '');
  /** The nearest ancestor in the project's own source (src/...), as "fn file:line". */
  const ownCaller = (id: number): string | undefined => {
    for (let p = parent.get(id), i = 0; p !== undefined && i < 200; p = parent.get(p), i++) {
      const cf = byId.get(p)!.callFrame;
      const u = short(cf.url);
      if (u.startsWith('src/')) return `${cf.functionName || '(anonymous)'} ${u}:${cf.lineNumber + 1}`;
    }
    return undefined;
  };
  const viaUs = new Map<string, Map<string, number>>();
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const d = prof.timeDeltas[i + 1] ?? 0; // a sample's time is the delta to the next one
    selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + Math.max(0, d));
  }
  const agg = new Map<string, HotSpot>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)?.callFrame;
    if (!cf) continue;
    total += us;
    const url = short(cf.url);
    const where = url ? `${url}:${cf.lineNumber + 1}` : '(native)';
    const fn = cf.functionName || '(anonymous)';
    const key = `${fn}@${where}`;
    const h = agg.get(key) ?? { fn, where, selfPct: 0, selfMs: 0 };
    h.selfMs += us / 1000;
    agg.set(key, h);
    if (!url.startsWith('src/') && !/^\(/.test(fn)) {
      const v = ownCaller(id);
      if (v) {
        const m = viaUs.get(key) ?? new Map<string, number>();
        m.set(v, (m.get(v) ?? 0) + us);
        viaUs.set(key, m);
      }
    }
  }
  const list = [...agg.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const h of list) {
    const v = viaUs.get(`${h.fn}@${h.where}`);
    if (v) {
      const all = [...v.values()].reduce((a, b) => a + b, 0);
      const [best, us] = [...v.entries()].sort((a, b) => b[1] - a[1])[0]!;
      h.via = `${best} (${Math.round((100 * us) / all)}%)`;
    }
    h.selfPct = total ? (100 * h.selfMs) / (total / 1000) : 0;
    h.selfMs = Math.round(h.selfMs);
  }
  return list;
}

/** Per-file self time (%), to see which module the time goes to. */
export function cpuProfileByFile(file: string, top = 12): { where: string; selfPct: number }[] {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string } }[]; samples: number[]; timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const per = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const d = Math.max(0, prof.timeDeltas[i + 1] ?? 0);
    const cf = byId.get(prof.samples[i]!)?.callFrame;
    const key = cf?.url ? cf.url.replace(/^file:\/\//, '').replace(ROOT + '/', '') : `(${cf?.functionName || 'native'})`;
    per.set(key, (per.get(key) ?? 0) + d);
    total += d;
  }
  return [...per.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([where, us]) => ({ where, selfPct: (100 * us) / total }));
}

// ---------------------------------------------------------------------------------------------

interface Side {
  name: 'reference' | 'postern';
  port: number;
  /** base/myoffice.space */
  domainDir: string;
  rootPid(): number;
  describe(): string;
  stop(): Promise<void>;
}

/** 20 workers × 5 users each, one smtp-source per user, sequentially within a worker. */
async function sendLoad(port: number, messages: number): Promise<void> {
  const perUser = Math.ceil(messages / SITE_USERS);
  const perWorker = SITE_USERS / SENDERS;
  const worker = async (w: number): Promise<void> => {
    for (let k = 0; k < perWorker; k++) {
      const user = `user${w * perWorker + k + 1}@${SITE_DOMAIN}`;
      const args = ['-l', String(MESSAGE_BYTES), '-m', String(perUser), '-f', BENCH_SENDER, '-t', user, `127.0.0.1:${port}`];
      const r = await timedRun(SMTP_SOURCE, args, 300_000);
      if (r.code !== 0 || /fatal|error/i.test(r.stderr)) {
        throw new Error(`smtp-source ${args.join(' ')}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
      }
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, (_, w) => worker(w)));
}

interface RoundResult {
  /** Messages per second, first connection to last file in new/. */
  rate: number;
  /** CPU milliseconds per message used by the system's own process tree (not the senders). */
  cpuMsPerMsg: number;
  /** The kernel's part of cpuMsPerMsg (system calls, page faults). */
  sysMsPerMsg: number;
  /** The machine's busy share of all its cores during the round, percent. */
  machineBusyPct: number;
}

/** One timed round: messages/second from the first connection to the last file in new/. */
async function round(side: Side, messages: number, timeoutMs: number): Promise<RoundResult> {
  emptyMaildirNew(side.domainDir);
  const cpu0 = treeCpuSeconds(side.rootPid());
  const m0 = machineCpuSeconds();
  const t0 = performance.now();
  let sendErr: Error | undefined;
  const sending = sendLoad(side.port, messages).catch((e: Error) => { sendErr = e; });
  let n = 0;
  for (;;) {
    n = countMaildirNew(side.domainDir);
    if (n >= messages) break;
    if (sendErr) throw sendErr;
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(`${side.name}: only ${n} of ${messages} messages in Maildir after ${timeoutMs / 1000} s\n${side.describe()}`);
    }
    await sleep(20);
  }
  const ms = performance.now() - t0;
  const cpu1 = treeCpuSeconds(side.rootPid());
  const m1 = machineCpuSeconds();
  await sending;
  if (sendErr) throw sendErr;
  if (n !== messages) throw new Error(`${side.name}: ${n} messages in Maildir, ${messages} sent (duplicates?)`);
  return {
    rate: messages / (ms / 1000),
    cpuMsPerMsg: ((cpu1.user + cpu1.system - cpu0.user - cpu0.system) * 1000) / messages,
    sysMsPerMsg: ((cpu1.system - cpu0.system) * 1000) / messages,
    machineBusyPct: (100 * (m1.busy - m0.busy)) / Math.max(0.01, m1.total - m0.total),
  };
}

function siteFor(dir: string): Site & { base: string } {
  const site = writeSite(dir);
  const base = join(dir, 'vhosts');
  // virtual(8) creates the per-user Maildirs as virtual_uid_maps' uid.
  chownSync(base, VMAIL_UID, VMAIL_UID);
  return { ...site, base };
}

async function startReference(dir: string, o: Required<Pick<E2eOptions, 'log'>>): Promise<Side & { pf: RealPostfix }> {
  const site = siteFor(join(dir, 'site-postfix'));
  const port = await freePort();
  const pf = await RealPostfix.start({ mainCf: site.mainCf, masterCf: `127.0.0.1:${port} inet n - n - - smtpd` });
  o.log(`  reference: real Postfix on 127.0.0.1:${port}, config ${pf.configDir}`);
  return {
    pf, name: 'reference', port, domainDir: join(site.base, SITE_DOMAIN),
    rootPid: () => postfixMasterPid(pf),
    describe: () => pf.log().split('\n').slice(-15).join('\n'),
    stop: () => pf.stop(),
  };
}

function posternMainCf(site: Site, dataDir: string): string {
  return site.mainCf + [
    '# Postern: where its queue and data live',
    `queue_directory = ${join(dataDir, 'queue')}`,
    `data_directory = ${join(dataDir, 'lib')}`,
    '',
  ].join('\n');
}

async function startPostern(dir: string, nodeFlags: string[], o: Required<Pick<E2eOptions, 'log'>>): Promise<Side & { m: PosternMaster }> {
  const site = siteFor(join(dir, 'site-postern'));
  const port = await freePort();
  const conf = join(dir, 'postern');
  const m = await warmStart(() => PosternMaster.start(conf, posternMainCf(site, join(conf, 'data')), port, nodeFlags), (x) => x.stop());
  o.log(`  Postern: master pid ${m.pid} on 127.0.0.1:${port}, config ${conf}`);
  return {
    m, name: 'postern', port, domainDir: join(site.base, SITE_DOMAIN),
    rootPid: () => m.pid,
    describe: () => m.logTail.split('\n').slice(-15).join('\n'),
    stop: () => m.stop(),
  };
}

export async function runE2eBench(opts: E2eOptions = {}): Promise<BenchResult> {
  const rounds = opts.rounds ?? 5;
  const messages = Math.ceil((opts.messages ?? DEFAULT_MESSAGES) / SITE_USERS) * SITE_USERS;
  const log = opts.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const why = RealPostfix.unavailable();
  if (why) throw new Error(`real Postfix cannot run: ${why}`);
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-e2e-'));
  chmodSync(dir, 0o755); // Postfix's virtual(8) opens the tables below it without root privileges
  const timeoutMs = Math.max(120_000, messages * 100);
  const stops: (() => Promise<void>)[] = [];
  const onSignal = () => { void Promise.allSettled(stops.map((s) => s())).then(() => { if (!opts.keep) rmSync(dir, { recursive: true, force: true }); process.exit(130); }); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const samples = { reference: [] as number[], postern: [] as number[] };
  const rssMB = { reference: [] as number[], postern: [] as number[] };
  const pssMB = { reference: [] as number[], postern: [] as number[] };
  const cpuMs = { reference: [] as number[], postern: [] as number[] };
  const busyPct = { reference: [] as number[], postern: [] as number[] };
  const processes = { reference: 0, postern: 0 };
  let hotSpots: HotSpot[] | undefined;
  let hotFiles: { where: string; selfPct: number }[] | undefined;
  let profileFile: string | undefined;
  try {
    log(`e2e: ${messages} messages of ${MESSAGE_BYTES} bytes per round, ${SENDERS} concurrent senders, ${SITE_USERS} users, ${rounds} rounds`);
    const ref = opts.posternOnly ? undefined : await startReference(dir, { log });
    if (ref) stops.push(() => ref.stop());
    const ours = await startPostern(dir, [], { log });
    stops.push(() => ours.stop());
    const sides = ref ? [ref, ours] : [ours];
    for (const s of sides) {
      // One message per user first, so that every Maildir is created by a single delivery:
      // Postern's first deliveries to a new Maildir race (see docs/bench-e2e.md) and the loser
      // is deferred for minimal_backoff_time.
      await round(s, SITE_USERS, timeoutMs);
      const r = await round(s, WARM_UP_MESSAGES, timeoutMs);
      log(`  warm-up ${s.name.padEnd(9)} ${r.rate.toFixed(1)} msg/s`);
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        const { rate, cpuMsPerMsg, sysMsPerMsg, machineBusyPct } = await round(s, messages, timeoutMs);
        const mem = treeMemory(s.rootPid());
        samples[s.name].push(rate);
        cpuMs[s.name].push(cpuMsPerMsg);
        busyPct[s.name].push(machineBusyPct);
        rssMB[s.name].push(mem.rss / MB);
        pssMB[s.name].push(mem.pss / MB);
        processes[s.name] = mem.processes;
        log(`  round ${r + 1}/${rounds} ${s.name.padEnd(9)} ${rate.toFixed(1)} msg/s, RSS ${(mem.rss / MB).toFixed(1)} MB, PSS ${(mem.pss / MB).toFixed(1)} MB in ${mem.processes} process(es), CPU ${cpuMsPerMsg.toFixed(2)} ms/msg (${sysMsPerMsg.toFixed(2)} in the kernel), machine ${machineBusyPct.toFixed(0)}% busy`);
      }
    }
    await ours.stop();
    stops.pop();
    if (ref) { await ref.stop(); stops.pop(); }
    if (opts.profile ?? true) {
      const pdir = opts.profileDir ?? join(dir, 'profile');
      mkdirSync(pdir, { recursive: true });
      const name = `e2e-postern-${Date.now()}.cpuprofile`;
      const prof = await startPostern(join(dir, 'profiled'), ['--cpu-prof', `--cpu-prof-dir=${pdir}`, `--cpu-prof-name=${name}`], { log });
      stops.push(() => prof.stop());
      await round(prof, SITE_USERS, timeoutMs);
      await round(prof, WARM_UP_MESSAGES, timeoutMs);
      const { rate } = await round(prof, messages, timeoutMs);
      await prof.stop();
      stops.pop();
      profileFile = join(pdir, name);
      if (existsSync(profileFile)) {
        hotSpots = analyseCpuProfile(profileFile);
        hotFiles = cpuProfileByFile(profileFile);
        log(`  profiled Postern round (--cpu-prof, not in the table): ${rate.toFixed(1)} msg/s; profile ${profileFile}`);
      } else log(`  profiled Postern round: no profile written at ${profileFile}`);
    }
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!opts.keep) {
      // keep a requested profile directory outside the temp dir
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const reference = median(samples.reference);
  const postern = median(samples.postern);
  return {
    postern, reference, ratio: postern / reference,
    details: { messages, rounds, senders: SENDERS, users: SITE_USERS, samples, rssMB, pssMB, cpuMsPerMsg: cpuMs, machineBusyPct: busyPct, processes, ...(hotSpots ? { hotSpots } : {}), ...(hotFiles ? { hotFiles } : {}), ...(profileFile && opts.profileDir ? { profileFile } : {}) },
  };
}

export function formatE2e(r: BenchResult): string {
  const d = r.details;
  const f = (x: number) => x.toFixed(1);
  const lines = [
    `end-to-end SMTP → Maildir, ${d.messages} msgs × 2 KB per round, ${d.senders} senders, ${d.users} users, ${d.rounds} rounds (medians)`,
    `${'metric'.padEnd(34)} ${'Postfix 3.7'.padStart(12)} ${'Postern'.padStart(12)} ${'ratio P/PF'.padStart(11)}`,
    `${'delivered msg/s'.padEnd(34)} ${f(r.reference).padStart(12)} ${f(r.postern).padStart(12)} ${r.ratio.toFixed(2).padStart(11)}`,
    `${'RSS after round, MB (tree)'.padEnd(34)} ${f(median(d.rssMB.reference)).padStart(12)} ${f(median(d.rssMB.postern)).padStart(12)} ${(median(d.rssMB.postern) / median(d.rssMB.reference)).toFixed(2).padStart(11)}`,
    `${'PSS after round, MB (tree)'.padEnd(34)} ${f(median(d.pssMB.reference)).padStart(12)} ${f(median(d.pssMB.postern)).padStart(12)} ${(median(d.pssMB.postern) / median(d.pssMB.reference)).toFixed(2).padStart(11)}`,
    `${'CPU ms per message (tree)'.padEnd(34)} ${median(d.cpuMsPerMsg.reference).toFixed(2).padStart(12)} ${median(d.cpuMsPerMsg.postern).toFixed(2).padStart(12)} ${(median(d.cpuMsPerMsg.reference) / median(d.cpuMsPerMsg.postern)).toFixed(2).padStart(11)}`,
    `${'machine busy during round, %'.padEnd(34)} ${median(d.machineBusyPct.reference).toFixed(0).padStart(12)} ${median(d.machineBusyPct.postern).toFixed(0).padStart(12)}`,
    `${'processes'.padEnd(34)} ${String(d.processes.reference).padStart(12)} ${String(d.processes.postern).padStart(12)}`,
    `samples msg/s: Postfix ${d.samples.reference.map(f).join(', ')}; Postern ${d.samples.postern.map(f).join(', ')}`,
  ];
  if (d.hotSpots?.length) {
    lines.push('Postern hot spots (self time, profiled round):');
    for (const h of d.hotSpots) lines.push(`  ${h.selfPct.toFixed(1).padStart(5)}%  ${String(h.selfMs).padStart(6)} ms  ${h.fn}  ${h.where}${h.via ? `  via ${h.via}` : ''}`);
  }
  if (d.hotFiles?.length) lines.push('self time by file: ' + d.hotFiles.map((f) => `${f.where} ${f.selfPct.toFixed(1)}%`).join(', '));
  return lines.join('\n');
}

function parseArgs(argv: string[]): E2eOptions {
  const o: E2eOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const int = (): number => {
      const n = Number(argv[++i]);
      if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`${a} wants a positive integer, got "${argv[i] ?? ''}"`);
      return n;
    };
    if (a === '--rounds') o.rounds = int();
    else if (a === '--messages') o.messages = int();
    else if (a === '--no-profile') o.profile = false;
    else if (a === '--profile-dir') o.profileDir = argv[++i];
    else if (a === '--keep') o.keep = true;
    else if (a === '--postern-only') o.posternOnly = true;
    else throw new Error(`unknown option ${a}; usage: node bench/e2e-bench.ts [--rounds N] [--messages N] [--no-profile] [--profile-dir DIR] [--keep] [--postern-only]`);
  }
  return o;
}

if (import.meta.main) {
  let o: E2eOptions;
  try { o = parseArgs(process.argv.slice(2)); } catch (e) { process.stderr.write(`e2e-bench: ${(e as Error).message}\n`); process.exit(64); }
  runE2eBench(o).then((r) => { process.stdout.write(formatE2e(r) + '\n'); }, (e: Error) => {
    process.stderr.write(`e2e-bench: ${e.stack ?? e.message}\n`);
    process.exitCode = 1;
  });
}
