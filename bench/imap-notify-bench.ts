/**
 * imap-notify-bench - push fan-out: N clients (default 1,000) wait for news, another session
 * APPENDs one message to INBOX, and the time until every client has been told is measured,
 * Postern's imapd against real Dovecot 2.3 (the servers of imap-bench.ts: Postern in a child
 * process, a private Dovecot instance), with the memory each waiting client costs (RSS delta / N;
 * Dovecot: its imap + imap-login processes).
 *
 *   node bench/imap-notify-bench.ts [--clients N] [--rounds N]
 *
 * Two scenarios, each with its own N clients:
 *   IDLE     SELECT INBOX, IDLE; told by `* n EXISTS` (RFC 2177)
 *   NOTIFY   SELECT Other, NOTIFY SET (personal (MessageNew MessageExpunge)), IDLE; told by
 *            `* STATUS INBOX (...)` (RFC 5465)
 * Each round APPENDs once and waits for all N; the median of the rounds is reported (ratio > 1:
 * Postern better). Exported: runNotifyBench(options) → rows, for bench/run.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildMaildir, startDovecot, startPostern, type Server } from './imap-bench.ts';
import { warmStart } from './bench-proc.ts';

export interface NotifyBenchOptions {
  clients: number;
  rounds: number;
  /** Which fan-outs to run (default both); bench/scale-bench.ts runs IDLE alone at two sizes. */
  modes?: readonly ('IDLE' | 'NOTIFY')[];
}
export interface NotifyBenchRow { name: string; dovecot: number; postern: number; unit: string; ratio: number }

const USER = 'a@x.test';
const PASS = 'pw';

/** A raw client that keeps only the tail of what it receives and can wait for a pattern. */
class Waiter {
  private buf = '';
  private wake: (() => void) | undefined;
  private n = 0;
  readonly sock: Socket;
  private constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (d: Buffer) => { this.buf = (this.buf + d.toString('latin1')).slice(-8192); this.wake?.(); });
    sock.on('close', () => this.wake?.());
    sock.on('error', () => {});
  }
  static async open(port: number): Promise<Waiter> {
    const s = connect(port, '127.0.0.1');
    await new Promise<void>((r, j) => { s.once('connect', r); s.once('error', j); });
    s.setNoDelay(true);
    const w = new Waiter(s);
    await w.until(/\r\n/);
    return w;
  }
  async until(re: RegExp, ms = 120_000): Promise<void> {
    const end = Date.now() + ms;
    while (!re.test(this.buf)) {
      if (this.sock.destroyed) throw new Error(`closed waiting for ${re}: ${this.buf.slice(-200)}`);
      if (Date.now() > end) throw new Error(`timeout waiting for ${re}: ${this.buf.slice(-200)}`);
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, 1000).unref(); });
    }
    this.buf = '';
  }
  async cmd(line: string): Promise<void> {
    const tag = `c${++this.n}`;
    this.sock.write(`${tag} ${line}\r\n`);
    await this.until(new RegExp(`(^|\\n)${tag} (OK|NO|BAD)[^\\n]*\\n`));
  }
  idle(): Promise<void> { this.sock.write(`i IDLE\r\n`); return this.until(/\+ idling\r\n/); }
  close(): void { this.sock.destroy(); }
}

type Mode = 'IDLE' | 'NOTIFY';

async function waiters(srv: Server, n: number, mode: Mode): Promise<Waiter[]> {
  const out: Waiter[] = [];
  for (let i = 0; i < n; i += 50) {
    out.push(...await Promise.all(Array.from({ length: Math.min(50, n - i) }, async () => {
      const w = await Waiter.open(srv.port);
      await w.cmd(`LOGIN ${USER} ${PASS}`);
      if (mode === 'IDLE') await w.cmd('SELECT INBOX');
      else { await w.cmd('SELECT Other'); await w.cmd('NOTIFY SET (personal (MessageNew MessageExpunge))'); }
      await w.idle();
      return w;
    })));
  }
  return out;
}

/** Per round: ms from the APPEND until every waiter has been told. Also the RSS per waiter. */
async function fanOut(srv: Server, n: number, rounds: number, mode: Mode): Promise<{ ms: number[]; kibPerClient: number }> {
  const admin = await Waiter.open(srv.port);
  await admin.cmd(`LOGIN ${USER} ${PASS}`);
  admin.sock.write('x CREATE Other\r\n');
  await admin.until(/x (OK|NO)[^\n]*\n/);
  await new Promise((r) => setTimeout(r, 500));
  const before = srv.rssKb();
  const ws = await waiters(srv, n, mode);
  await new Promise((r) => setTimeout(r, 1500)); // Dovecot adds its watches a moment after a command
  const kibPerClient = (srv.rssKb() - before) / n;
  const ms: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const msg = `Subject: round ${r}\r\n\r\nbody\r\n`;
      const told = ws.map((w) => w.until(mode === 'IDLE' ? /\* \d+ EXISTS\r\n/ : /\* STATUS INBOX [^\r]*\r\n/));
      const t0 = performance.now();
      await admin.cmd(`APPEND INBOX {${msg.length}+}\r\n${msg}`);
      await Promise.all(told);
      ms.push(performance.now() - t0);
      await new Promise((res) => setTimeout(res, 1500));
    }
  } finally {
    for (const w of ws) w.close();
    admin.close();
    await new Promise((r) => setTimeout(r, 1000));
  }
  return { ms, kibPerClient };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function runNotifyBench(o: NotifyBenchOptions, say: (m: string) => void = (m) => process.stderr.write(`imap-notify-bench: ${m}\n`)): Promise<NotifyBenchRow[]> {
  const work = mkdtempSync(join(tmpdir(), 'postern-notifybench-'));
  const src = join(work, 'Maildir');
  buildMaildir(src, 100);
  let pst: Server | undefined;
  let dc: Server | undefined;
  try {
    dc = await startDovecot(src);
    pst = await warmStart(() => startPostern(src), (s) => s.stop());
    const rows: NotifyBenchRow[] = [];
    for (const mode of o.modes ?? (['IDLE', 'NOTIFY'] as const)) {
      const d = await fanOut(dc, o.clients, o.rounds, mode);
      say(`${mode} dovecot: ${d.ms.map((x) => x.toFixed(0)).join(', ')} ms, ${d.kibPerClient.toFixed(0)} KiB/client`);
      const p = await fanOut(pst, o.clients, o.rounds, mode);
      say(`${mode} postern: ${p.ms.map((x) => x.toFixed(0)).join(', ')} ms, ${p.kibPerClient.toFixed(0)} KiB/client`);
      const dm = median(d.ms);
      const pm = median(p.ms);
      rows.push({ name: `${mode}: one APPEND told to ${o.clients} clients`, dovecot: dm, postern: pm, unit: 'ms', ratio: dm / pm });
      rows.push({ name: `${mode}: memory per waiting client`, dovecot: d.kibPerClient, postern: p.kibPerClient, unit: 'KiB', ratio: d.kibPerClient / p.kibPerClient });
    }
    return rows;
  } finally {
    await pst?.stop().catch(() => {});
    await dc?.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const o: NotifyBenchOptions = { clients: 1000, rounds: 3 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!.replace(/^--/, '');
    if (k === 'clients' || k === 'rounds') o[k] = Number(argv[++i]);
    else { console.error('usage: node bench/imap-notify-bench.ts [--clients N] [--rounds N]'); process.exit(64); }
  }
  const rows = await runNotifyBench(o);
  console.log(`IMAP push fan-out vs Dovecot 2.3, ${o.clients} clients, median of ${o.rounds} rounds (ratio > 1: Postern better)`);
  for (const r of rows) {
    console.log(`${r.name.padEnd(44)} dovecot ${r.dovecot.toFixed(1).padStart(8)} ${r.unit}  postern ${r.postern.toFixed(1).padStart(8)} ${r.unit}  ratio ${r.ratio.toFixed(2)}x`);
  }
}
