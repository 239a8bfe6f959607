/**
 * multi-process-bench - throughput of the whole system (`postern start`, the embedded default
 * configuration) with smtpd, imapd, pop3d and lmtpd in the master (postern_process_count = 1)
 * and spread over N child processes (postern_process_count = N), rounds alternating between
 * the settings on one running system (`postern reload` switches them).
 *
 *   node bench/multi-process-bench.ts [--rounds 3] [--counts 1,2] [--messages 2000] [--imap-ops 40]
 *
 * smtp-accept-20  Postfix's smtp-source, 20 sessions, 2 KB messages, to the SMTP port; messages
 *                 per second, wall clock around smtp-source; one connection per message (as
 *                 smtp-source does by default), and again with -d (each session sends its
 *                 messages over one connection), with the master process's CPU time per
 *                 message (what accepting and handing over a connection costs it). qmgr is removed from master.cf
 *                 for the measurement (as in bench-smtp-accept.ts, the accepted mail stays in
 *                 incoming/, durably: fsync before 250), so delivery does not compete.
 * imap-50         50 IMAP clients at once, each: LOGIN, SELECT INBOX (200 messages), then
 *                 --imap-ops rounds of FETCH 1:20 (FLAGS ENVELOPE), SEARCH UNSEEN, NOOP,
 *                 LOGOUT; commands per second, from the first connect to the last LOGOUT. The
 *                 client is a minimal one (raw sockets, one tagged reply read at a time) so that
 *                 it costs the server's CPU as little as possible on a small machine.
 * Also printed: the median time from connect() to the SMTP banner over 200 sequential
 * connections (what the master's hand-over adds to a connection), and the PSS of the master's
 * process tree after each round (bench-proc.ts treeMemory).
 *
 * The figures are medians over the rounds; the ratio N=k / N=1 is what docs/multi-process.md
 * reports. On a loaded machine the ratios are noisy: run it on a quiet one for decisions.
 */
import { connect, type Socket } from 'node:net';
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem } from '../test/harness/postern-system.ts';
import { timedRun, treeMemory } from './bench-proc.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : dflt; };
const ROUNDS = Number(opt('rounds', '3'));
const COUNTS = opt('counts', '1,2').split(',').map(Number);
const MESSAGES = Number(opt('messages', '2000'));
const IMAP_OPS = Number(opt('imap-ops', '40'));
const IMAP_CLIENTS = 50;
const USER = 'postmaster@example.test';
const say = (m: string) => process.stderr.write(`multi-process-bench: ${m}\n`);
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const n = s.length; return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2; };

/** A minimal IMAP client: one command at a time, read up to its tagged reply. */
class Imap {
  private buf = '';
  private wake: (() => void) | undefined;
  private n = 0;
  private closed = false;
  private readonly sock: Socket;
  constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { this.buf += d; this.wake?.(); });
    sock.on('close', () => { this.closed = true; this.wake?.(); });
    sock.on('error', () => undefined);
  }
  static async open(port: number): Promise<Imap> {
    const s = connect(port, '127.0.0.1');
    const c = new Imap(s);
    await c.until((b) => b.includes('\r\n'));
    c.buf = '';
    return c;
  }
  private async until(done: (b: string) => boolean): Promise<void> {
    while (!done(this.buf)) {
      if (this.closed) throw new Error(`connection closed: ${this.buf.slice(-200)}`);
      await new Promise<void>((r) => { this.wake = r; });
    }
  }
  async cmd(text: string): Promise<string> {
    const tag = `t${++this.n}`;
    this.sock.write(`${tag} ${text}\r\n`);
    const re = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`);
    await this.until((b) => re.test(b));
    const m = re.exec(this.buf)!;
    const out = this.buf.slice(0, m.index + m[0].length);
    this.buf = this.buf.slice(m.index + m[0].length);
    if (m[2] !== 'OK') throw new Error(`${text.split(' ')[0]}: ${m[0].trim()}`);
    return out;
  }
  async append(msg: string): Promise<void> {
    const tag = `t${++this.n}`;
    this.sock.write(`${tag} APPEND INBOX {${Buffer.byteLength(msg)}+}\r\n${msg}\r\n`);
    const re = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`);
    await this.until((b) => re.test(b));
    this.buf = '';
  }
  close(): void { this.sock.destroy(); }
}

async function setCount(sys: PosternSystem, n: number): Promise<void> {
  const main = join(sys.configDir, 'main.cf');
  const text = readFileSync(main, 'utf8').replace(/\npostern_process_count = \d+\n/g, '\n');
  writeFileSync(main, `${text.replace(/\n*$/, '\n')}postern_process_count = ${n}\n`);
  const r = await sys.cli('reload');
  if (r.status !== 0) throw new Error(`reload: ${r.stderr}`);
  const end = Date.now() + 60_000;
  for (;;) {
    const list = await sys.services();
    const spread = list.filter((s) => s.key.startsWith(`${sys.ports.smtp}/`) || s.key === 'dovecot/imap');
    const ok = spread.length === 2 && spread.every((s) => s.running && (n === 1 ? s.mode === 'inline' : s.mode === 'process' && s.pids.length === n));
    if (ok) return;
    if (Date.now() > end) throw new Error(`services did not switch to ${n}: ${JSON.stringify(list)}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

/** CPU seconds of one process (all its threads), from /proc. */
function processCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/**
 * smtp-source with 20 sessions: one connection per message (as most inbound MX traffic), or
 * with `reuse` (-d) every session sends its messages over one connection. Returns messages/s
 * and the master process's CPU per message in µs (its share: accept, hand-over, log lines).
 */
async function smtpRound(sys: PosternSystem, reuse = false): Promise<{ rate: number; masterUs: number }> {
  const cpu0 = processCpu(sys.pid!);
  const r = await timedRun('/usr/sbin/smtp-source', [...(reuse ? ['-d'] : []), '-l', '2048', '-m', String(MESSAGES), '-s', '20', '-f', 'bench@example.org', '-t', USER, `127.0.0.1:${sys.ports.smtp}`], 300_000);
  if (r.code !== 0) throw new Error(`smtp-source: ${r.stderr}`);
  return { rate: MESSAGES / (r.ms / 1000), masterUs: ((processCpu(sys.pid!) - cpu0) / MESSAGES) * 1e6 };
}

/** Median time from connect() to the 220 banner over `n` sequential connections, in ms. */
async function bannerLatency(sys: PosternSystem, n = 200): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const s = connect(sys.ports.smtp, '127.0.0.1');
      s.once('data', () => { ms.push(performance.now() - t0); s.end('QUIT\r\n'); s.destroy(); resolve(); });
      s.once('error', reject);
    });
  }
  return median(ms);
}

async function imapRound(sys: PosternSystem): Promise<number> {
  const t0 = performance.now();
  let ops = 0;
  await Promise.all(Array.from({ length: IMAP_CLIENTS }, async () => {
    const c = await Imap.open(sys.ports.imap);
    await c.cmd(`LOGIN ${USER} ${sys.password}`);
    await c.cmd('SELECT INBOX');
    ops += 2;
    for (let i = 0; i < IMAP_OPS; i++) {
      await c.cmd('FETCH 1:20 (FLAGS ENVELOPE)');
      await c.cmd('SEARCH UNSEEN');
      await c.cmd('NOOP');
      ops += 3;
    }
    await c.cmd('LOGOUT').catch(() => undefined);
    ops++;
    c.close();
  }));
  return ops / ((performance.now() - t0) / 1000);
}

const sys = await PosternSystem.start();
try {
  // Accepted mail stays in incoming/: no qmgr (as bench-smtp-accept.ts's Postern side).
  const mc = join(sys.configDir, 'master.cf');
  writeFileSync(mc, readFileSync(mc, 'utf8').replace(/^qmgr\s.*$/m, '#$&'));
  // 50 clients of one user from one address (Dovecot's default allows 10).
  appendFileSync(join(sys.configDir, 'dovecot.conf'), '\nmail_max_userip_connections = 100\n');
  await setCount(sys, 1);
  const filler = await Imap.open(sys.ports.imap);
  await filler.cmd(`LOGIN ${USER} ${sys.password}`);
  for (let i = 0; i < 200; i++) {
    await filler.append(`From: a${i}@example.org\r\nTo: ${USER}\r\nSubject: message ${i}\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m${i}@example.org>\r\n\r\nbody ${i}\r\n`);
  }
  filler.close();
  const smtp = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const reuse = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const masterUs = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const banner = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const imap = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  const pss = new Map<number, number[]>(COUNTS.map((n) => [n, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? COUNTS : [...COUNTS].reverse();
    for (const n of order) {
      await setCount(sys, n);
      await smtpRound(sys).catch(() => undefined);   // warm-up: first connections, compiled code
      const s = await smtpRound(sys);
      const d = await smtpRound(sys, true);
      const i = await imapRound(sys);
      const lat = await bannerLatency(sys);
      const m = treeMemory(sys.pid!).pss / 2 ** 20;
      smtp.get(n)!.push(s.rate); reuse.get(n)!.push(d.rate); masterUs.get(n)!.push(s.masterUs); imap.get(n)!.push(i); pss.get(n)!.push(m); banner.get(n)!.push(lat);
      say(`round ${round} N=${n}: smtp-accept-20 ${s.rate.toFixed(0)} msg/s (master ${s.masterUs.toFixed(0)} µs CPU/msg), -d ${d.rate.toFixed(0)} msg/s, imap-50 ${i.toFixed(0)} commands/s, banner ${lat.toFixed(2)} ms, PSS ${m.toFixed(0)} MB`);
    }
  }
  const base = COUNTS[0]!;
  console.log(`| postern_process_count | smtp-accept-20 (msg/s) | ratio | master CPU per message | smtp-accept-20 -d (msg/s) | ratio | imap-50 (commands/s) | ratio | connect to banner (median) | PSS after (MB) |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|`);
  for (const n of COUNTS) {
    const s = median(smtp.get(n)!), d = median(reuse.get(n)!), i = median(imap.get(n)!);
    console.log(`| ${n} | ${s.toFixed(0)} | ${(s / median(smtp.get(base)!)).toFixed(2)}x | ${median(masterUs.get(n)!).toFixed(0)} µs | ${d.toFixed(0)} | ${(d / median(reuse.get(base)!)).toFixed(2)}x | ${i.toFixed(0)} | ${(i / median(imap.get(base)!)).toFixed(2)}x | ${median(banner.get(n)!).toFixed(2)} ms | ${median(pss.get(n)!).toFixed(0)} |`);
  }
} finally {
  await sys.destroy();
}
