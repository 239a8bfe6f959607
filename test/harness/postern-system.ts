/**
 * postern-system - the whole system as an administrator runs it, for end-to-end tests:
 * `bin/postern -c DIR start` on an empty DIR (the embedded default: loopback, unprivileged
 * ports from a free range, embedded user directory, self-signed TLS), waiting until the master
 * reports it started. Gives the ports, the generated postmaster password, the data directory and
 * the log; stop() sends SIGTERM and waits (kill() = SIGKILL, for crash tests).
 *
 *   const sys = await PosternSystem.start();
 *   sys.ports.smtp, sys.password, sys.maildir('postmaster@example.test')
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePortBase } from './free-port.ts';
import { terminate } from './proc-stop.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const POSTERN = join(ROOT, 'bin', 'postern');

/** Port order of the embedded default (src/master/default-config.ts portsFromBase). */
const PORT_NAMES = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'lmtp', 'sieve'] as const;
export type PortName = (typeof PORT_NAMES)[number];

export class PosternSystem {
  readonly dir: string;
  readonly configDir: string;
  readonly ports: Record<PortName, number>;
  password = '';
  /** Extra environment for the next start (a test's fault point, e.g. POSTERN_FAULT_SYNC_HOLD_MS). */
  env: Record<string, string> = {};
  private child: ChildProcess | undefined;
  private out = '';

  private constructor(dir: string, base: number) {
    this.dir = dir;
    this.configDir = join(dir, 'conf');
    this.ports = Object.fromEntries(PORT_NAMES.map((n, i) => [n, base + i])) as Record<PortName, number>;
  }

  /** Start on a new empty configuration directory (or `reuse` an existing system's, after kill()). */
  static async start(reuse?: PosternSystem): Promise<PosternSystem> {
    if (reuse) { await reuse.spawn(); return reuse; }
    // freePortBase() finds ports free at that moment only: a test running in parallel may take
    // one before postern binds it. A fresh system then starts over on other ports (bounded).
    for (let attempt = 1; ; attempt++) {
      const sys = new PosternSystem(mkdtempSync(join(tmpdir(), 'postern-sys-')), await freePortBase(PORT_NAMES.length));
      try {
        await sys.spawn();
        return sys;
      } catch (e) {
        if (attempt >= 5 || !sys.out.includes('address already in use')) throw e;
        rmSync(sys.dir, { recursive: true, force: true });
      }
    }
  }

  /**
   * A system whose directory exists but which is not started yet, so a test can mount something
   * under `dir` first (a small tmpfs for the full-disk test); start it with PosternSystem.start(sys).
   */
  static async prepare(): Promise<PosternSystem> {
    return new PosternSystem(mkdtempSync(join(tmpdir(), 'postern-sys-')), await freePortBase(PORT_NAMES.length));
  }

  /** Is the master process still running (not crashed, not stopped)? */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The master's pid (undefined before start). */
  get pid(): number | undefined { return this.child?.pid; }

  private async spawn(): Promise<void> {
    const base = this.ports.smtp;
    const child = spawn(POSTERN, ['-c', this.configDir, 'start'], {
      env: { ...process.env, POSTERN_PORT_BASE: String(base), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const mark = this.out.length;
    child.stdout!.on('data', (d) => { this.out += d; });
    child.stderr!.on('data', (d) => { this.out += d; });
    const end = Date.now() + 30_000;
    while (!this.out.slice(mark).includes('daemon started')) {
      if (child.exitCode !== null) throw new Error(`postern start exited ${child.exitCode}:\n${this.out}`);
      if (Date.now() > end) {
        // Not ready in time: the half-started master must not outlive the test run.
        await terminate(child, 5000);
        throw new Error(`postern start did not report ready:\n${this.out}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    const m = /has the password (\S+)/.exec(this.out);
    if (m) this.password = m[1]!;
  }

  get log(): string { return this.out; }

  /** Wait until the log matches. */
  async waitLog(re: RegExp, ms = 20_000): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out);
      if (m) return m;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re} in the log:\n${this.out.slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** The Maildir of a user of the embedded default (virtual_mailbox_base/domain/user/). */
  maildir(user: string): string {
    const [local, domain] = user.split('@');
    return join(this.configDir, 'data', 'vmail', domain!, local!);
  }

  /**
   * Run a postern subcommand against this system's configuration (30 s at most). Asynchronous:
   * the test's own servers (the loopback DNS server, a policy or milter server) keep answering
   * while the command runs.
   */
  cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const c = spawn(POSTERN, ['-c', this.configDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
      let stdout = '', stderr = '';
      c.stdout!.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      c.stderr!.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      c.once('error', (e) => resolve({ status: null, stdout, stderr: stderr + e.message }));
      c.once('close', (code) => resolve({ status: code, stdout, stderr }));
    });
  }

  /**
   * Append `-o NAME=VALUE` to the master.cf entries whose service name (column 1) is in
   * `services` ('smtp' = the first smtpd line's port, as PortName; or 'qmgr', 'pickup'...), then
   * reload (SIGHUP) and wait until `postern status` shows every one of them running again.
   * E.g. sys.setMasterOption(['smtp', 'qmgr'], 'postern_process_mode', 'process').
   */
  async setMasterOption(services: string[], name: string, value: string): Promise<void> {
    const file = join(this.configDir, 'master.cf');
    const names = services.map((s) => (s in this.ports ? String(this.ports[s as PortName]) : s));
    const lines = readFileSync(file, 'utf8').split('\n');
    const found = new Set<string>();
    const out = lines.map((l) => {
      const svc = /^(\S+)\s/.exec(l)?.[1];
      if (svc === undefined || !names.includes(svc)) return l;
      found.add(svc);
      return `${l}\n  -o ${name}=${value}`;
    });
    const missing = names.filter((n) => !found.has(n));
    if (missing.length) throw new Error(`master.cf has no entry ${missing.join(', ')}`);
    writeFileSync(file, out.join('\n'));
    const mark = this.out.length;
    const r = await this.cli('reload');
    if (r.status !== 0) throw new Error(`postern reload: ${r.stderr}`);
    const ours = (key: string) => names.includes(key.replace(/\/[^/]*$/, '').replace(/^.*:/, ''));
    const end = Date.now() + 30_000;
    for (;;) {
      const now = (await this.services()).filter((x) => ours(x.key));
      const done = this.out.slice(mark).includes('reload -- version') && now.length === names.length
        && now.every((x) => x.running && x.pids.length > 0 && (name !== 'postern_process_mode' || x.mode === value));
      if (done) return;
      if (Date.now() > end) throw new Error(`services ${names.join(' ')} did not restart with ${name}=${value}:\n${JSON.stringify(now)}\n${this.out.slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  /**
   * The services as \`postern status\` lists them (src/master/master-status.ts): key ("2525/inet",
   * "qmgr/unix", "dovecot/imap"), implementation, mode (inline, thread, process), running, pids.
   */
  async services(): Promise<{ key: string; impl: string; mode: string; running: boolean; pids: number[] }[]> {
    const r = await this.cli('status');
    if (r.status !== 0) return [];
    return r.stdout.split('\n').map((l) => l.trim().split(' ')).filter((f) => f.length === 5).map((f) => ({
      key: f[0]!, impl: f[1]!, mode: f[2]!, running: f[3] === 'running',
      pids: f[4] === '-' ? [] : f[4]!.split(',').map(Number),
    }));
  }

  /** The pid of the one process of a service (by key prefix: 'qmgr/', '2525/'); throws unless it has one. */
  async servicePid(keyPrefix: string): Promise<number> {
    const s = (await this.services()).find((x) => x.key.startsWith(keyPrefix));
    if (!s || !s.running || s.pids.length !== 1) throw new Error(`no single running process for ${keyPrefix}: ${JSON.stringify(await this.services())}`);
    return s.pids[0]!;
  }

  /**
   * Graceful stop (SIGTERM), waiting for the master to exit; SIGKILL if it has not after 45 s
   * (its own stop gives services 30 s), so a stop never holds the test run.
   */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;   // exited, or killed
    await terminate(c, 45_000);
  }

  /** Crash: SIGKILL the whole system. */
  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;   // exited, or killed
    c.kill('SIGKILL');
    await new Promise<void>((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else c.once('exit', () => r()); });
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
