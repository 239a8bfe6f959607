/**
 * milter-kit - milters and the two MTAs that talk to them, for the milter tests:
 *
 *   const m = await TestMilter.start({ eom: 'continue', edits: [...] });   // python3-milter (libmilter)
 *   m.events()  → what the milter saw, as JSON objects; m.setPlan({...}); await m.stop();
 *
 *   const pair = await MilterPair.start(mainCf, (side) => `smtpd_milters = inet:127.0.0.1:${port}`);
 *   const r = await pair.dialogue('postfix' | 'postern', ['EHLO x', 'MAIL FROM:<a@b>', ...], message);
 *   r.replies, r.queueId;  await pair.queued(side, qid) → { sender, recipients, content }
 *
 * Real Postfix gets the same main.cf lines as Postern plus a HOLD at the end of data
 * (smtpd_end_of_data_restrictions, applied before the milters' own decision) so that its
 * queue file stays for postcat; Postern's smtpd runs in this process with its own queue
 * directory and no qmgr, so its queue file stays in incoming/ (or hold/).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from './real-postfix.ts';
import { freePort } from './free-port.ts';
import { LineChat } from './line-chat.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../src/smtpd/smtpd-policy.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { SmtpdCheck } from '../../src/smtpd/smtpd-check.ts';

const run = promisify(execFile);
const HERE = new URL('.', import.meta.url).pathname;

export type MilterPlan = Record<string, unknown>;
export type MilterEvent = { ev: string; [k: string]: unknown };

/** Wait until something listens on 127.0.0.1:port. */
export async function waitListening(port: number, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class TestMilter {
  readonly port: number;
  private readonly dir: string;
  private readonly proc: ChildProcess;

  private constructor(port: number, dir: string, proc: ChildProcess) { this.port = port; this.dir = dir; this.proc = proc; }

  static unavailable(): string | undefined {
    return existsSync('/usr/lib/python3/dist-packages/Milter/__init__.py') ? undefined : 'Debian package python3-milter is not installed';
  }

  static async start(plan: MilterPlan): Promise<TestMilter> {
    const dir = mkdtempSync(join(tmpdir(), 'postern-milter-'));
    chmodSync(dir, 0o777);
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
    writeFileSync(join(dir, 'log'), '');
    chmodSync(join(dir, 'log'), 0o666);
    const port = await freePort();
    const proc = spawn('/usr/bin/python3', [join(HERE, 'test-milter.py'), `inet:${port}@127.0.0.1`, join(dir, 'log'), join(dir, 'plan.json')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const m = new TestMilter(port, dir, proc);
    await waitListening(port);
    return m;
  }

  get spec(): string { return `inet:127.0.0.1:${this.port}`; }

  setPlan(plan: MilterPlan): void {
    writeFileSync(join(this.dir, 'plan.json'), JSON.stringify(plan));
    this.clear();
  }

  clear(): void { writeFileSync(join(this.dir, 'log'), ''); }

  events(): MilterEvent[] {
    return readFileSync(join(this.dir, 'log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as MilterEvent);
  }

  /** Wait for an event (the milter's close comes after the MTA's reply). */
  async waitFor(ev: string, ms = 10_000): Promise<MilterEvent[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.events();
      if (e.some((x) => x.ev === ev)) return e;
      if (Date.now() > deadline) throw new Error(`milter event ${ev} not seen: ${JSON.stringify(e)}`);
      await new Promise((r) => setTimeout(r, 30));
    }
  }

  async stop(): Promise<void> {
    this.proc.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export type Side = 'postfix' | 'postern';

export interface Queued { queue: string; sender: string; recipients: string[]; content: string }

export class MilterPair {
  readonly ports: Record<Side, number>;
  readonly pf: RealPostfix;
  private readonly server: Server;
  private readonly qdir: string;

  private constructor(ports: Record<Side, number>, pf: RealPostfix, server: Server, qdir: string) {
    this.ports = ports; this.pf = pf; this.server = server; this.qdir = qdir;
  }

  /**
   * `shared`: main.cf lines for both; `milters(side)`: the side's own milter lines; `checks`:
   * Postern runs its real smtpd restrictions (SmtpdCheck) instead of accepting every command.
   */
  static async start(shared: string, milters: (side: Side) => string, checks = false): Promise<MilterPair> {
    const pfPort = await freePort();
    const pf = await RealPostfix.start({
      mainCf: `${shared}\n${milters('postfix')}\nsmtpd_end_of_data_restrictions = check_client_access static:HOLD\n`,
      masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd`,
    });
    const qdir = mkdtempSync(join(tmpdir(), 'postern-milterpair-'));
    const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\nmynetworks = 127.0.0.0/8\n${shared}\n${milters('postern')}\n`, 'main.cf', qdir);
    const queue = new MailQueue(qdir);
    queue.ensureDirs();
    const resolve = await TrivialRewrite.open(cfg);
    const policy = checks ? await SmtpdCheck.open(cfg, { rewrite: resolve }) : PERMIT_ALL;
    const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy, service: 'smtp', resolve });
    const server = createServer((s) => smtpd.handle(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new MilterPair({ postfix: pfPort, postern: (server.address() as { port: number }).port }, pf, server, qdir);
  }

  /**
   * Greeting, then each command (a "." entry sends `message` after DATA's 354), then QUIT.
   * Returns every reply (LF-joined lines) and the queue ID of a "queued as" reply.
   */
  async dialogue(side: Side, commands: string[], message = ''): Promise<{ replies: string[]; queueId?: string }> {
    const { c, greeting } = await LineChat.greet(this.ports[side]);
    const replies = [greeting];
    let queueId: string | undefined;
    try {
      for (const cmd of commands) {
        const r = cmd === '.' ? await c.cmd(`${message.replace(/\n/g, '\r\n').replace(/^\./gm, '..')}.`, 60_000) : await c.cmd(cmd, 60_000);
        replies.push(r);
        const m = /queued as ([0-9A-Za-z]+)/.exec(r);
        if (m) queueId = m[1];
        if (/^421/.test(r)) break;
      }
      if (!/^421/.test(replies[replies.length - 1]!)) replies.push(await c.cmd('QUIT'));
    } catch (e) {
      replies.push(`(closed: ${(e as Error).message.slice(0, 80)})`);
    }
    return { replies, queueId };
  }

  async queued(side: Side, qid: string): Promise<Queued> {
    if (side === 'postern') {
      const q = new MailQueue(this.qdir);
      for (const name of ['incoming', 'hold'] as const) {
        const p = q.path(name, qid);
        if (!existsSync(p)) continue;
        const qf = await QueueFile.open(p, qid);
        return { queue: name, sender: qf.sender, recipients: qf.recipients.map((r) => r.address), content: (await qf.content()).toString('utf8') };
      }
      throw new Error(`postern: no queue file ${qid}`);
    }
    const { stdout } = await run('/usr/sbin/postcat', ['-c', this.pf.configDir, '-q', qid]);
    let sender = '';
    const recipients: string[] = [];
    for (const line of stdout.split('\n')) {
      const r = /^(sender|recipient): ?(.*)$/.exec(line);
      if (r?.[1] === 'sender') sender = r[2]!;
      else if (r?.[1] === 'recipient') recipients.push(r[2]!);
      if (line.startsWith('*** MESSAGE CONTENTS')) break;
    }
    const from = stdout.indexOf('*** MESSAGE CONTENTS');
    const end = stdout.indexOf('*** HEADER EXTRACTED');
    let content = stdout.slice(stdout.indexOf('\n', from) + 1, end < 0 ? undefined : end);
    content = content.replace(/\n?$/, '\n');
    return { queue: 'hold', sender, recipients, content };
  }

  /** The named attributes of one of Postern's queue files (dsn_ret, dsn_envid, ...). */
  async posternAttrs(qid: string): Promise<Map<string, string>> {
    const q = new MailQueue(this.qdir);
    for (const name of ['incoming', 'hold'] as const) {
      const p = q.path(name, qid);
      if (existsSync(p)) return (await QueueFile.open(p, qid)).attrs;
    }
    throw new Error(`postern: no queue file ${qid}`);
  }

  /** Postern's queue directory has nothing left in incoming/ (no half-written or leftover file). */
  leftovers(): string[] {
    const q = new MailQueue(this.qdir);
    const out: string[] = [];
    for (const name of ['incoming', 'hold'] as const) {
      try { for (const f of readdirSyncSafe(q.dirOf(name, ''))) out.push(`${name}/${f}`); } catch { /* none */ }
    }
    return out;
  }

  log(): string { return this.pf.log(); }

  async stop(): Promise<void> {
    this.server.close();
    await this.pf.stop();
    rmSync(this.qdir, { recursive: true, force: true });
  }
}

import { readdirSync } from 'node:fs';
function readdirSyncSafe(d: string): string[] { return readdirSync(d).filter((f) => !f.startsWith('.')); }
