/**
 * imap-bench - Postern's imapd against real Dovecot 2.3 on the same machine and the same
 * N-message Maildir (default 10,000), printed as ratios (> 1 means Postern is better:
 * Dovecot time / Postern time; Dovecot memory / Postern memory).
 *
 *   node bench/imap-bench.ts [--messages N] [--rounds N] [--idle N]
 *
 * Scenarios: LOGIN+SELECT; UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE); UID SEARCH BODY x;
 * FETCH of 100 full bodies; STORE on 1:*; 50 concurrent clients each LOGIN/SELECT/FETCH; memory
 * per idle connection (N IDLE sessions: RSS delta / N of Postern's server process vs the sum of
 * Dovecot's imap + imap-login processes). Each measured operation runs once to warm up (Dovecot
 * builds its index and cache on the first SELECT/FETCH, Postern its in-memory state), then
 * `rounds` times alternating between the two servers; medians are compared.
 *
 * Postern's server runs in a child process (this file with --server) so that its RSS is its own.
 * Real Dovecot runs as a private instance (test/harness/real-dovecot.ts: needs root).
 * Exported: runImapBench(options) → rows, for bench/run.ts.
 */
import '../src/util/uv-threadpool.ts';   // first: the file-system thread pool as `postern start` sizes it
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { POSTERN_NODE_FLAGS, warmStart } from './bench-proc.ts';

export interface ImapBenchOptions { messages: number; rounds: number; idle: number }
export interface ImapBenchRow { name: string; dovecot: number; postern: number; unit: string; ratio: number }

const USER = 'a@x.test';
const PASS = 'pw';

// ---- a tiny IMAP client ----

export class Client {
  private sock: Socket;
  private chunks: Buffer[] = [];
  private waiter: (() => void) | undefined;
  private n = 0;
  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => { this.chunks.push(d); this.waiter?.(); });
    sock.on('close', () => this.waiter?.());
  }
  static async open(port: number): Promise<Client> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => { s.once('connect', r); s.once('error', j); });
    s.setNoDelay(true);
    const c = new Client(s);
    await c.until((t) => t.includes('\r\n'));
    c.chunks = [];
    return c;
  }
  /** Waits until the last bytes satisfy `done`; only the tail is looked at (responses can be MBs). */
  private async until(done: (tail: string) => boolean): Promise<string> {
    for (;;) {
      const tailParts: Buffer[] = [];
      let n = 0;
      for (let i = this.chunks.length - 1; i >= 0 && n < 4096; i--) { tailParts.unshift(this.chunks[i]!); n += this.chunks[i]!.length; }
      const t = Buffer.concat(tailParts);
      const tail = t.subarray(Math.max(0, t.length - 4096)).toString('latin1');
      if (done(tail)) { const all = Buffer.concat(this.chunks).toString('latin1'); this.chunks = []; return all; }
      if (this.sock.destroyed) throw new Error('connection closed: ' + tail);
      await new Promise<void>((r) => { this.waiter = r; });
      this.waiter = undefined;
    }
  }
  async cmd(line: string): Promise<string> {
    const tag = `b${++this.n}`;
    this.sock.write(`${tag} ${line}\r\n`);
    const re = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n$`);
    const out = await this.until((t) => re.test(t));
    if (!new RegExp(`(^|\\r\\n)${tag} OK`).test(out.slice(-4096))) throw new Error(`${line.slice(0, 40)}: ${out.slice(-300)}`);
    return out;
  }
  async idle(): Promise<void> {
    this.sock.write(`i${++this.n} IDLE\r\n`);
    await this.until((t) => t.includes('+ idling'));
  }
  close(): void { this.sock.destroy(); }
}

// ---- the Maildir ----

export function buildMaildir(root: string, n: number): void {
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet'];
  for (let i = 1; i <= n; i++) {
    const body = Array.from({ length: 30 }, (_, j) => `${words[(i + j) % 10]} line ${j} of message ${i}`).join('\r\n') +
      (i % 100 === 0 ? '\r\nthe needle is here\r\n' : '\r\n');
    const msg = `Return-Path: <s${i}@example.org>\r\nFrom: Sender ${i} <s${i}@example.org>\r\nTo: User <a@x.test>\r\n` +
      `Subject: message number ${i} about ${words[i % 10]}\r\nDate: Mon, 2 Jan 2023 10:${String(i % 60).padStart(2, '0')}:00 +0000\r\n` +
      `Message-ID: <${i}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`;
    const t = 1672653600 + i;
    const name = `${t}.M${i}P1Q1.bench,S=${Buffer.byteLength(msg)},W=${Buffer.byteLength(msg)}:2,${i % 3 === 0 ? 'S' : ''}`;
    writeFileSync(join(root, 'cur', name), msg);
  }
}

// ---- servers ----

/** `maildir`: the user's Maildir the server serves (Postern's copy; absent for Dovecot). */
export interface Server { port: number; rssKb(): number; stop(): Promise<void>; maildir?: string }

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch { return 0; }
}

/** users > 0: the passdb also holds u1@x.test ... uN@x.test (password pw), for scale-users.ts. */
export async function startPostern(src: string, users = 0): Promise<Server> {
  const self = fileURLToPath(import.meta.url);
  // IMAP_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles Postern's server
  const extra = process.env.IMAP_BENCH_NODE_ARGS ? process.env.IMAP_BENCH_NODE_ARGS.split(' ') : [];
  const child: ChildProcess = spawn(process.execPath, [...POSTERN_NODE_FLAGS, ...extra, self, '--server', src, String(users)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let maildir: string | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      maildir ??= /MAILDIR (.*)\n/.exec(out)?.[1];
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (c) => reject(new Error(`postern server exited ${c}`)));
  });
  return {
    port,
    ...(maildir ? { maildir } : {}),
    rssKb: () => rssOf(child.pid!),
    async stop() { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); },
  };
}

async function serverMain(src: string, many: number): Promise<void> {
  const { startFixture } = await import('../test/harness/imapd-testkit.ts');
  const { setLogSink } = await import('../src/util/msg.ts');
  setLogSink(() => {});
  const users: [string, string][] = [[USER, PASS]];
  for (let i = 1; i <= many; i++) users.push([`u${i}@x.test`, PASS]);
  const f = await startFixture({ users, conf: 'mail_max_userip_connections = 0\nimap_idle_notify_interval = 0' });
  const dest = f.maildir(USER);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest, { recursive: true });
  process.stdout.write(`MAILDIR ${dest}\nPORT ${f.port}\n`);
  process.once('SIGTERM', () => { void f.stop().then(() => process.exit(0)); });
}

export async function startDovecot(src: string, extraConf = '', mailPlugins?: string): Promise<Server & { dir: string }> {
  const { RealDovecot, DOVECOT_MAIL_UID } = await import('../test/harness/real-dovecot.ts');
  const why = RealDovecot.unavailable();
  if (why) throw new Error(why);
  const dc = await RealDovecot.start({
    protocols: ['imap'], users: [{ user: USER, pass: PASS }], ...(mailPlugins ? { mailPlugins } : {}),
    extraConf: extraConf + `
mail_max_userip_connections = 0
default_process_limit = 5000
default_client_limit = 10000
service imap {
  process_limit = 5000
}
service imap-login {
  process_limit = 5000
}
service anvil {
  client_limit = 12000
}
imap_idle_notify_interval = 0
namespace inbox {
  inbox = yes
  separator = /
}
`,
  });
  const dest = dc.maildir(USER);
  mkdirSync(dirname(dest), { recursive: true });
  cpSync(src, dest, { recursive: true });
  execFileSync('chown', ['-R', `${DOVECOT_MAIL_UID}:${DOVECOT_MAIL_UID}`, join(dc.dir, 'mail')]);
  const masterPid = Number(readFileSync(join(dc.dir, 'run', 'master.pid'), 'utf8').trim());
  return {
    port: dc.ports.imap!, dir: dc.dir,
    rssKb(): number {
      // every imap and imap-login process of this instance (children of its master)
      let sum = 0;
      for (const p of readdirSync('/proc')) {
        if (!/^\d+$/.test(p)) continue;
        try {
          const st = readFileSync(`/proc/${p}/stat`, 'utf8');
          const m = /^\d+ \(([^)]*)\) \S+ (\d+)/.exec(st);
          if (m && Number(m[2]) === masterPid && (m[1] === 'imap' || m[1] === 'imap-login')) sum += rssOf(Number(p));
        } catch { /* gone */ }
      }
      return sum;
    },
    async stop() { await dc.stop(); },
  };
}

// ---- scenarios ----

export async function session(port: number): Promise<Client> {
  const c = await Client.open(port);
  await c.cmd(`LOGIN ${USER} ${PASS}`);
  return c;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

type Op = { name: string; run: (port: number) => Promise<void> };

function ops(): Op[] {
  return [
    { name: 'LOGIN+SELECT', run: async (port) => { const c = await session(port); await c.cmd('SELECT INBOX'); await c.cmd('LOGOUT').catch(() => {}); c.close(); } },
    { name: 'UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)', run: async (port) => { const c = await session(port); await c.cmd('EXAMINE INBOX'); await c.cmd('UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)'); c.close(); } },
    { name: 'UID SEARCH BODY needle', run: async (port) => { const c = await session(port); await c.cmd('EXAMINE INBOX'); await c.cmd('UID SEARCH BODY needle'); c.close(); } },
    { name: 'FETCH 100 full bodies', run: async (port) => { const c = await session(port); await c.cmd('EXAMINE INBOX'); await c.cmd('FETCH 1:100 BODY.PEEK[]'); c.close(); } },
    { name: 'STORE on 1:*', run: async (port) => {
      const c = await session(port); await c.cmd('SELECT INBOX');
      await c.cmd('STORE 1:* +FLAGS.SILENT (\\Flagged)'); await c.cmd('STORE 1:* -FLAGS.SILENT (\\Flagged)'); c.close();
    } },
    { name: '50 clients LOGIN/SELECT/FETCH', run: async (port) => {
      await Promise.all(Array.from({ length: 50 }, async () => {
        const c = await session(port); await c.cmd('SELECT INBOX'); await c.cmd('FETCH 1:50 (FLAGS ENVELOPE)'); c.close();
      }));
    } },
  ];
}

async function idleMemory(srv: Server, n: number): Promise<number> {
  await new Promise((r) => setTimeout(r, 500));
  const before = srv.rssKb();
  const clients: Client[] = [];
  for (let i = 0; i < n; i += 50) {
    clients.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => {
      const c = await session(srv.port); await c.cmd('SELECT INBOX'); await c.idle(); return c;
    })));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const after = srv.rssKb();
  for (const c of clients) c.close();
  await new Promise((r) => setTimeout(r, 500));
  return ((after - before) * 1024) / n; // bytes per idle connection
}

export async function runImapBench(o: ImapBenchOptions): Promise<ImapBenchRow[]> {
  const work = mkdtempSync(join(tmpdir(), 'postern-imapbench-'));
  const src = join(work, 'Maildir');
  buildMaildir(src, o.messages);
  let pst: Server | undefined;
  let dc: (Server & { dir: string }) | undefined;
  try {
    const say = (m: string): void => { process.stderr.write(`imap-bench: ${m}\n`); };
    say(`built ${o.messages} messages`);
    dc = await startDovecot(src);
    say(`dovecot on port ${dc.port}`);
    pst = await warmStart(() => startPostern(src), (s) => s.stop());
    say(`postern on port ${pst.port}`);
    const rows: ImapBenchRow[] = [];
    for (const op of ops()) {
      await op.run(dc.port); await op.run(pst.port); // warm-up: indexes, caches, JIT
      const td: number[] = [];
      const tp: number[] = [];
      for (let r = 0; r < o.rounds; r++) {
        td.push(await timeIt(() => op.run(dc!.port)));
        tp.push(await timeIt(() => op.run(pst!.port)));
      }
      const d = median(td);
      const p = median(tp);
      rows.push({ name: op.name, dovecot: d, postern: p, unit: 'ms', ratio: d / p });
      process.stderr.write(`${op.name}: dovecot ${d.toFixed(1)} ms, postern ${p.toFixed(1)} ms\n`);
    }
    if (o.idle > 0) {
      const d = await idleMemory(dc, o.idle);
      const p = await idleMemory(pst, o.idle);
      rows.push({ name: `memory per idle connection (${o.idle} IDLE)`, dovecot: d / 1024, postern: p / 1024, unit: 'KiB', ratio: d / p });
    }
    return rows;
  } finally {
    await pst?.stop().catch(() => {});
    await dc?.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

function printRows(rows: ImapBenchRow[], o: ImapBenchOptions): void {
  console.log(`imapd vs Dovecot 2.3, ${o.messages} messages, median of ${o.rounds} rounds (ratio > 1: Postern better)`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(52)} dovecot ${r.dovecot.toFixed(1).padStart(9)} ${r.unit}  postern ${r.postern.toFixed(1).padStart(9)} ${r.unit}  ratio ${r.ratio.toFixed(2)}x`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--server') {
    await serverMain(argv[1]!, Number(argv[2] ?? 0));
  } else {
    const o: ImapBenchOptions = { messages: 10_000, rounds: 5, idle: 1000 };
    for (let i = 0; i < argv.length; i++) {
      const k = argv[i]!.replace(/^--/, '');
      if (k === 'messages' || k === 'rounds' || k === 'idle') o[k] = Number(argv[++i]);
      else { console.error('usage: node bench/imap-bench.ts [--messages N] [--rounds N] [--idle N]'); process.exit(64); }
    }
    printRows(await runImapBench(o), o);
  }
}

