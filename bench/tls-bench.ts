/**
 * tls-bench - TLS cost of the SMTP server: Postern's smtpd against real Postfix 3.7 smtpd, both
 * with the same RSA-2048 certificate from a private CA (openssl), the same site configuration
 * (bench-site.ts) and the same load client, printed as a ratio Postern/Postfix (> 1 = Postern
 * faster).
 *
 *   node bench/tls-bench.ts [--rounds 3] [--handshakes 400] [--messages 400] [--concurrency 10]
 *
 * Two measurements, each round alternating which system goes first, medians reported:
 *   1. handshakes/s: N sessions, C at a time, each `EHLO, STARTTLS, TLS handshake, EHLO, QUIT`
 *      on a fresh connection, no session resumption (the client never offers a session).
 *   2. TLS SMTP throughput, messages/s: C connections, each STARTTLS once and then sends its
 *      share of 2 KB messages (MAIL, RCPT, DATA, content, dot), one at a time.
 * The load client is this file run with `--load` in its own Node process, so it never shares
 * an event loop with Postern's server. Real Postfix's smtp-source cannot speak TLS and
 * posttls-finger starts one process per handshake (its start-up would dominate), so a small
 * client written once and used for both sides is the fair choice.
 *
 * Mail is queued durably and not delivered: Postern's smtpd child (bench/postern-smtpd.ts) has
 * no qmgr; Postfix runs with `defer_transports = virtual` (as bench-smtp-accept.ts). After each
 * throughput round the queued messages are counted (a round that lost mail fails) and removed.
 *
 * Exported: runTlsBench(options) → TlsBenchResult (for bench/run.ts, owned by "bench").
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../test/harness/real-postfix.ts';
import { freePort } from '../test/harness/free-port.ts';
import { TestCa } from '../test/harness/test-ca.ts';
import { BENCH_RECIPIENT, BENCH_SENDER, writeSite } from './bench-site.ts';
import { countQueueFiles } from './bench-smtp-accept.ts';
import { POSTERN_NODE_FLAGS } from './bench-proc.ts';

const run = promisify(execFile);

export interface TlsBenchOptions {
  rounds?: number;
  handshakes?: number;
  messages?: number;
  concurrency?: number;
  log?: (line: string) => void;
}

export interface TlsBenchRow { metric: string; postfix: number; postern: number; ratio: number }
export interface TlsBenchResult { rows: TlsBenchRow[]; rounds: number; concurrency: number }

// ---- the load client (child process) ----------------------------------------------------------

class Lines {
  private buf = '';
  private waiters: (() => void)[] = [];
  private sock: Socket | TLSSocket;
  constructor(sock: Socket | TLSSocket) { this.sock = sock; this.attach(sock); }
  attach(sock: Socket | TLSSocket): void {
    this.sock = sock;
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { this.buf += d; const w = this.waiters; this.waiters = []; for (const f of w) f(); });
  }
  detach(): Socket { this.sock.removeAllListeners('data'); return this.sock as Socket; }
  /** One complete reply; returns its code. */
  async reply(): Promise<number> {
    for (;;) {
      const m = /^(\d{3}) [^\n]*\n/m.exec(this.buf);
      if (m) { this.buf = this.buf.slice(m.index + m[0].length); return Number(m[1]); }
      if (this.sock.destroyed) throw new Error('connection closed');
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
  write(s: string): void { this.sock.write(s); }
}

async function expect(l: Lines, code: number, what: string): Promise<void> {
  const c = await l.reply();
  if (c !== code) throw new Error(`${what}: expected ${code}, got ${c}`);
}

async function openTls(port: number): Promise<{ lines: Lines; tls: TLSSocket }> {
  const sock = netConnect({ host: '127.0.0.1', port });
  await new Promise<void>((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
  sock.setNoDelay(true);
  const lines = new Lines(sock);
  await expect(lines, 220, 'greeting');
  lines.write('EHLO load.example\r\n'); await expect(lines, 250, 'EHLO');
  lines.write('STARTTLS\r\n'); await expect(lines, 220, 'STARTTLS');
  const raw = lines.detach();
  const tls = tlsConnect({ socket: raw, rejectUnauthorized: false, servername: 'mx.example.test' });
  await new Promise<void>((res, rej) => { tls.once('secureConnect', res); tls.once('error', rej); });
  const l2 = new Lines(tls);
  l2.write('EHLO load.example\r\n'); await expect(l2, 250, 'EHLO after TLS');
  return { lines: l2, tls };
}

async function loadHandshakes(port: number, total: number, conc: number): Promise<void> {
  let left = total;
  const worker = async () => {
    while (left > 0) {
      left--;
      const { lines, tls } = await openTls(port);
      lines.write('QUIT\r\n'); await expect(lines, 221, 'QUIT');
      tls.destroy();
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
}

async function loadMail(port: number, total: number, conc: number): Promise<void> {
  const body = `From: <${BENCH_SENDER}>\r\nTo: <${BENCH_RECIPIENT}>\r\nSubject: tls bench\r\n\r\n` + ('x'.repeat(78) + '\r\n').repeat(24);
  let left = total;
  const worker = async () => {
    if (left <= 0) return;
    const { lines, tls } = await openTls(port);
    while (left > 0) {
      left--;
      lines.write(`MAIL FROM:<${BENCH_SENDER}>\r\n`); await expect(lines, 250, 'MAIL');
      lines.write(`RCPT TO:<${BENCH_RECIPIENT}>\r\n`); await expect(lines, 250, 'RCPT');
      lines.write('DATA\r\n'); await expect(lines, 354, 'DATA');
      lines.write(body + '.\r\n'); await expect(lines, 250, 'end of data');
    }
    lines.write('QUIT\r\n'); await expect(lines, 221, 'QUIT');
    tls.destroy();
  };
  await Promise.all(Array.from({ length: conc }, worker));
}

/** Run the load client in a child process; resolves with the elapsed milliseconds. */
function loadRun(mode: 'handshake' | 'mail', port: number, total: number, conc: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', import.meta.filename, '--load', mode, String(port), String(total), String(conc)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { if (err.length < 10000) err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const m = /elapsed_ms=(\d+(?:\.\d+)?)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1])); else reject(new Error(`load client ${mode} :${port} failed (${code}): ${err.trim().slice(0, 500)}`));
    });
  });
}

// ---- the two servers ----------------------------------------------------------------------------

interface Server { name: string; port: number; queueCount(): number; emptyQueue(): Promise<void>; stop(): Promise<void> }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startPostfix(dir: string, siteCf: string, tlsCf: string, conc: number): Promise<Server> {
  const port = await freePort();
  const pf = await RealPostfix.start({
    mainCf: siteCf + tlsCf + `defer_transports = virtual\ndefault_process_limit = ${Math.max(100, conc * 2)}\n`,
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
  return {
    name: 'Postfix', port,
    queueCount: () => countQueueFiles(pf.queueDir, ['incoming', 'active', 'deferred', 'hold']),
    async emptyQueue() {
      for (let i = 0; i < 600 && countQueueFiles(pf.queueDir, ['incoming', 'active']) > 0; i++) await sleep(50);
      await run('/usr/sbin/postsuper', ['-c', pf.configDir, '-d', 'ALL']).catch(() => {});
    },
    stop: () => pf.stop(),
  };
}

async function startPostern(dir: string, siteCf: string, tlsCf: string): Promise<Server> {
  const port = await freePort();
  const pdir = join(dir, 'postern');
  const queueDir = join(pdir, 'queue');
  mkdirSync(queueDir, { recursive: true });
  writeFileSync(join(pdir, 'main.cf'), siteCf + tlsCf + `queue_directory = ${queueDir}\n`);
  const child: ChildProcess = spawn(process.execPath, [...POSTERN_NODE_FLAGS, join(import.meta.dirname, 'postern-smtpd.ts'), pdir, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { if (err.length < 10000) err += d; });
    const t = setTimeout(() => reject(new Error(`Postern smtpd did not start: ${err}`)), 20_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { if (d.includes('ready')) { clearTimeout(t); resolve(); } });
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`Postern smtpd exited (${c}): ${err}`)); });
  });
  const incoming = join(queueDir, 'incoming');
  return {
    name: 'Postern', port,
    queueCount: () => countQueueFiles(queueDir, ['incoming', 'hold']),
    async emptyQueue() { for (const n of readdirSync(incoming)) rmSync(join(incoming, n), { recursive: true, force: true }); },
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) { resolve(); return; }
      const k = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => { clearTimeout(k); resolve(); });
      child.kill('SIGTERM');
    }),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

export async function runTlsBench(o: TlsBenchOptions = {}): Promise<TlsBenchResult> {
  const why = RealPostfix.unavailable();
  if (why) throw new Error(`real Postfix cannot run: ${why}`);
  const rounds = o.rounds ?? 3;
  const handshakes = o.handshakes ?? 400;
  const messages = o.messages ?? 400;
  const conc = o.concurrency ?? 10;
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'postern-bench-tls-'));
  const servers: Server[] = [];
  try {
    const site = writeSite(join(dir, 'site'));
    const ca = TestCa.create(dir);
    const leaf = ca.issue('mx', ['mx.myoffice.space', 'mx.example.test']);
    // The same certificate, protocol floor and no client certificates on both sides.
    const tlsCf = `smtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${leaf.certFile}\nsmtpd_tls_key_file = ${leaf.keyFile}\nsmtpd_tls_protocols = >=TLSv1.2\nsmtpd_tls_loglevel = 1\n`;
    const pf = await startPostfix(dir, site.mainCf, tlsCf, conc);
    servers.push(pf);
    const pt = await startPostern(dir, site.mainCf, tlsCf);
    servers.push(pt);
    const rates: Record<string, Record<string, number[]>> = { handshake: { Postfix: [], Postern: [] }, mail: { Postfix: [], Postern: [] } };
    // Warm-up (JIT, Postfix's process pool), not counted.
    for (const s of servers) {
      await loadRun('handshake', s.port, conc * 2, conc);
      await loadRun('mail', s.port, conc * 2, conc);
      await s.emptyQueue();
    }
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [pf, pt] : [pt, pf];
      for (const s of order) {
        const ms = await loadRun('handshake', s.port, handshakes, conc);
        rates.handshake![s.name]!.push(handshakes / (ms / 1000));
        log(`  round ${r + 1} ${s.name}: ${handshakes} TLS handshakes in ${ms.toFixed(0)} ms`);
      }
      for (const s of order) {
        const ms = await loadRun('mail', s.port, messages, conc);
        await sleep(100);
        const n = s.name === 'Postfix' ? await settleCount(s, messages) : s.queueCount();
        if (n !== messages) throw new Error(`${s.name}: ${messages} messages sent over TLS, ${n} queued`);
        await s.emptyQueue();
        rates.mail![s.name]!.push(messages / (ms / 1000));
        log(`  round ${r + 1} ${s.name}: ${messages} messages over TLS in ${ms.toFixed(0)} ms`);
      }
    }
    const row = (metric: string, k: string): TlsBenchRow => {
      const postfix = median(rates[k]!.Postfix!); const postern = median(rates[k]!.Postern!);
      return { metric, postfix, postern, ratio: postern / postfix };
    };
    return { rows: [row(`TLS handshakes/s (STARTTLS + QUIT, ${conc} concurrent)`, 'handshake'), row(`TLS SMTP messages/s (2 KB, ${conc} connections)`, 'mail')], rounds, concurrency: conc };
  } finally {
    for (const s of servers.reverse()) await s.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

async function settleCount(s: Server, want: number): Promise<number> {
  let n = s.queueCount();
  for (let i = 0; i < 100 && n < want; i++) { await sleep(50); n = s.queueCount(); }
  return n;
}

// ---- command line -------------------------------------------------------------------------------

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--load') {
    const [, mode, port, total, conc] = argv;
    const t0 = performance.now();
    if (mode === 'handshake') await loadHandshakes(Number(port), Number(total), Number(conc));
    else await loadMail(Number(port), Number(total), Number(conc));
    process.stdout.write(`elapsed_ms=${(performance.now() - t0).toFixed(1)}\n`);
    return 0;
  }
  const opt = (name: string, d: number) => { const i = argv.indexOf(`--${name}`); return i >= 0 ? Number(argv[i + 1]) : d; };
  const res = await runTlsBench({ rounds: opt('rounds', 3), handshakes: opt('handshakes', 400), messages: opt('messages', 400), concurrency: opt('concurrency', 10), log: (l) => process.stderr.write(l + '\n') });
  process.stdout.write(`TLS benchmark, Postern smtpd vs real Postfix 3.7 smtpd, same certificate, medians of ${res.rounds} rounds\n`);
  process.stdout.write(`${'metric'.padEnd(52)} ${'Postfix'.padStart(10)} ${'Postern'.padStart(10)} ${'ratio'.padStart(7)}\n`);
  for (const r of res.rows) process.stdout.write(`${r.metric.padEnd(52)} ${r.postfix.toFixed(1).padStart(10)} ${r.postern.toFixed(1).padStart(10)} ${r.ratio.toFixed(2).padStart(7)}\n`);
  return 0;
}

if (import.meta.filename === process.argv[1] || process.argv[1]?.endsWith('/tls-bench.ts')) {
  main(process.argv.slice(2)).then((c) => process.exit(c), (e: Error) => { process.stderr.write(`tls-bench: ${e.stack ?? e.message}\n`); process.exit(1); });
}
