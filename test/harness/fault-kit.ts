/**
 * fault-kit - what the fault and security suites (test/faults, test/security) share: a load of
 * real SMTP clients (smtp-load.py, Python smtplib) whose every 250 is recorded with its token and
 * queue ID, the count of delivered copies per token and recipient (read from the Maildir files,
 * truncation checked by the "END token" last line), and waiting for the queue to drain.
 *
 *   const load = startLoad({ port: sys.ports.smtp, threads: 8, count: 50, tag: 'k1', rcpts });
 *   ... sys.kill(); await PosternSystem.start(sys); ...
 *   const out = await load.done();            // Map token → { kind, qid, detail }
 *   await waitQueueEmpty(sys);
 *   const copies = scanMaildir(sys.maildir('bob@example.test'));   // Map token → copy count
 *   const t = tallyDeliveries({ maildirs, sent: out, all, allowed: () => 1 });   // lost, excess, ...
 *   checkDovecot(join(sys.configDir, 'data', 'vmail'), t);   // real Dovecot opens every Maildir
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { PosternSystem } from './postern-system.ts';
import { haveDoveadm, verifyMaildirs } from './dovecot-verify.ts';

const LOAD = join(import.meta.dirname, 'smtp-load.py');

export type OutcomeKind = 'ACK' | 'TEMP' | 'PERM' | 'DROP';
export interface Outcome { kind: OutcomeKind; qid?: string; detail: string }

export interface LoadOptions {
  port: number;
  threads: number;
  /** Messages per thread at most (the load also stops at stop()). */
  count: number;
  /** Token prefix, unique per load. */
  tag: string;
  rcpts: string[];
  /** Approximate body size in bytes. */
  size?: number;
  host?: string;
  /** Local address to bind the clients to (e.g. 127.0.0.2). */
  bind?: string;
  /** Envelope sender (default load@example.org). */
  sender?: string;
}

export interface Load {
  /** Outcomes seen so far. */
  outcomes(): Map<string, Outcome>;
  /** Ask the clients to stop after their current message. */
  stop(): void;
  /** Wait for the clients to finish; the outcomes. */
  done(): Promise<Map<string, Outcome>>;
}

function parseOutcomes(text: string): Map<string, Outcome> {
  const m = new Map<string, Outcome>();
  for (const line of text.split('\n')) {
    const r = /^(ACK|TEMP|PERM|DROP) (\S+) ?(.*)$/.exec(line);
    if (!r) continue;
    const kind = r[1] as OutcomeKind;
    m.set(r[2]!, { kind, detail: r[3]!, ...(kind === 'ACK' ? { qid: r[3]! } : {}) });
  }
  return m;
}

export function startLoad(o: LoadOptions): Load {
  const dir = mkdtempSync(join(tmpdir(), 'postern-load-'));
  const stopFile = join(dir, 'stop');
  const args = [LOAD, o.host ?? '127.0.0.1', String(o.port), String(o.threads), String(o.count), o.tag,
    String(o.size ?? 1000), stopFile, o.rcpts.join(','), ...(o.bind ? [o.bind] : [])];
  const env = { ...process.env, ...(o.sender !== undefined ? { SMTP_LOAD_SENDER: o.sender } : {}) };
  const child = spawn('python3', args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<void>((res, rej) => {
    child.on('error', rej);
    child.on('exit', (code) => {
      rmSync(dir, { recursive: true, force: true });
      if (code === 0 && out.includes('DONE')) res();
      else rej(new Error(`smtp-load.py exited ${code}: ${err.slice(-2000)}`));
    });
  });
  return {
    outcomes: () => parseOutcomes(out),
    stop: () => { try { writeFileSync(stopFile, ''); } catch { /* already gone */ } },
    done: async () => { await exited; return parseOutcomes(out); },
  };
}

export function countKinds(m: Map<string, Outcome>): Record<OutcomeKind, number> {
  const c: Record<OutcomeKind, number> = { ACK: 0, TEMP: 0, PERM: 0, DROP: 0 };
  for (const o of m.values()) c[o.kind]++;
  return c;
}

export interface MaildirScan {
  /** token → number of copies in this Maildir (new/ and cur/ of INBOX). */
  copies: Map<string, number>;
  /** Files whose token has no "END token" last line (a partial message). */
  truncated: string[];
  /** Files without a recognisable token. */
  foreign: string[];
  files: number;
}

/** Count the copies of each token in a Maildir's INBOX (messages from smtp-load.py). */
export function scanMaildir(maildir: string): MaildirScan {
  const s: MaildirScan = { copies: new Map(), truncated: [], foreign: [], files: 0 };
  for (const sub of ['new', 'cur']) {
    const d = join(maildir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      s.files++;
      const text = readFileSync(join(d, f), 'latin1');
      const m = /^Subject: fault (\S+)$/m.exec(text);
      if (!m) { s.foreign.push(f); continue; }
      const token = m[1]!;
      s.copies.set(token, (s.copies.get(token) ?? 0) + 1);
      if (!text.replace(/\r\n/g, '\n').endsWith(`\nEND ${token}\n`)) s.truncated.push(f);
    }
  }
  return s;
}

/** The clients' outcomes compared with the Maildirs (tallyDeliveries()). */
export interface Tally {
  /** Messages the clients got a 250 for. */
  acked: number;
  /** Acknowledged and not delivered: never allowed. */
  lost: string[];
  /** Files without their END line. */
  truncated: string[];
  /** Refused (4xx/5xx) yet delivered. */
  refusedButDelivered: string[];
  /** More copies than `allowed` for that message. */
  excess: string[];
  /** "queue ID (or token) for user" → copies, for every recipient with more than one. */
  dups: Map<string, number>;
  /** Extra copies in all (copies beyond the first, summed). */
  extraCopies: number;
  /** Most copies of one message one recipient got. */
  maxCopies: number;
  /** The connection broke before the 250, yet delivered (allowed: the client cannot know). */
  deliveredUnacked: number;
}

/**
 * Compare the outcomes of `sent` with the Maildirs of `maildirs`. Every token found in a
 * Maildir must be one of `all` (what was ever sent), and only messages of the load may be
 * there; `allowed(queue ID)` is how many copies one recipient may have (1, or more where kills
 * interrupted deliveries: DESIGN.md §5, at most one duplicate per interrupting kill).
 */
export function tallyDeliveries(o: {
  maildirs: { user: string; path: string }[];
  sent: Map<string, Outcome>;
  all: Map<string, Outcome>;
  allowed: (qid: string | undefined) => number;
}): Tally {
  const t: Tally = { acked: 0, lost: [], truncated: [], refusedButDelivered: [], excess: [], dups: new Map(), extraCopies: 0, maxCopies: 0, deliveredUnacked: 0 };
  const scans = o.maildirs.map(({ user, path }) => ({ u: user, s: scanMaildir(path) }));
  for (const { u, s } of scans) {
    t.truncated.push(...s.truncated.map((f) => `${u}: ${f}`));
    assert.deepEqual(s.foreign, [], `${u}: only messages of the load are in the Maildir`);
    for (const token of s.copies.keys()) assert.ok(o.all.has(token), `${u}: ${token} was delivered but never sent`);
  }
  for (const [token, out] of o.sent) {
    if (out.kind === 'ACK') t.acked++;
    for (const { u, s } of scans) {
      const n = s.copies.get(token) ?? 0;
      t.maxCopies = Math.max(t.maxCopies, n);
      if (n > 1) { t.dups.set(`${out.qid ?? token} for ${u}`, n); t.extraCopies += n - 1; }
      const allowed = o.allowed(out.qid);
      if (n > allowed) t.excess.push(`${token} (${out.qid ?? 'no 250'}) for ${u}: ${n} copies, ${allowed} allowed`);
      if (out.kind === 'ACK' && n === 0) t.lost.push(`${token} (${out.qid}) for ${u}`);
      if (out.kind === 'DROP' && n > 0) t.deliveredUnacked++;
      if ((out.kind === 'TEMP' || out.kind === 'PERM') && n > 0) t.refusedButDelivered.push(`${token} for ${u}: ${out.detail}`);
    }
  }
  return t;
}

/** Real Dovecot (doveadm) opens every Maildir under `base` without a problem. */
export function checkDovecot(base: string, t: { diagnostic(s: string): void }): void {
  if (!haveDoveadm) { t.diagnostic('doveadm not installed: Dovecot check skipped'); return; }
  const v = verifyMaildirs(base);
  t.diagnostic(`dovecot: ${v.maildirs.map((m) => `${m.user} ${m.messages} messages/${m.files} files`).join(', ')}`);
  assert.deepEqual(v.problems, [], 'real Dovecot opens every Maildir cleanly');
}

/** Poll `postern queue list` until the queue is empty. */
export async function waitQueueEmpty(sys: PosternSystem, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  let last = '';
  for (;;) {
    const r = (await sys.cli('queue', 'list'));
    last = r.stdout + r.stderr;
    if (r.status === 0 && r.stdout.trim() === 'Mail queue is empty') return;
    if (Date.now() > end) {
      // POSTERN_FAULTS_LOG=FILE keeps the whole system log of a failed drain for a post-mortem.
      if (process.env.POSTERN_FAULTS_LOG) writeFileSync(process.env.POSTERN_FAULTS_LOG, `${last}\n${sys.log}`);
      throw new Error(`queue did not drain in ${ms} ms:\n${last.slice(0, 1500)}\n...\n${sys.log.slice(-3000)}`);
    }
    await new Promise((r2) => setTimeout(r2, 200));
  }
}

/** Is `mountpoint` a mount point? (for tmpfs/bind tests) */
export function isMountPoint(dir: string): boolean {
  return spawnSync('mountpoint', ['-q', dir]).status === 0;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Message files anywhere in the queue (every queue directory, hashed or not), i.e. everything
 * under queue_directory except the pid file and the service sockets.
 */
export function queueFiles(sys: PosternSystem): string[] {
  const root = join(sys.configDir, 'data', 'queue');
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    let entries;
    try { entries = readdirSync(d, { withFileTypes: true }); } catch { return; }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) { if (r !== 'pid') walk(join(d, e.name), r); } else if (e.isFile()) out.push(r);
    }
  };
  walk(root, '');
  return out.filter((f) => !/^(public|private)\//.test(f));
}

/**
 * Create the users' Maildirs with one message (token "warm-0-0") before a concurrent load:
 * concurrent FIRST deliveries to a new Maildir race (test/faults/first-delivery-race.test.ts,
 * a todo) and would only add deferral delays to tests about something else.
 */
export async function warmMaildirs(sys: PosternSystem, users: string[]): Promise<Map<string, Outcome>> {
  const out = await startLoad({ port: sys.ports.smtp, threads: 1, count: 1, tag: 'warm', rcpts: users }).done();
  const qid = out.get('warm-0-0')?.qid;
  if (!qid) throw new Error(`warm-up message not accepted: ${JSON.stringify([...out])}`);
  await sys.waitLog(new RegExp(`${qid}: removed`));   // the log (a pipe) may lag the queue
  return out;
}
