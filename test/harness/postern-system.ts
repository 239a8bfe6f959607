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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const POSTERN = join(ROOT, 'bin', 'postern');

/** Port order of the embedded default (src/master/default-config.ts portsFromBase). */
const PORT_NAMES = ['smtp', 'submission', 'submissions', 'imap', 'imaps', 'pop3', 'pop3s', 'lmtp'] as const;
export type PortName = (typeof PORT_NAMES)[number];

/** A base port with the 8 ports after it free on 127.0.0.1 right now. */
export async function freePortBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    const servers = [];
    let ok = true;
    for (let p = base; p < base + PORT_NAMES.length && ok; p++) {
      const s = createServer();
      ok = await new Promise<boolean>((r) => { s.once('error', () => r(false)); s.listen(p, '127.0.0.1', () => r(true)); });
      if (ok) servers.push(s);
    }
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (ok) return base;
  }
  throw new Error('no free port range');
}

export class PosternSystem {
  readonly dir: string;
  readonly configDir: string;
  readonly ports: Record<PortName, number>;
  password = '';
  private child: ChildProcess | undefined;
  private out = '';

  private constructor(dir: string, base: number) {
    this.dir = dir;
    this.configDir = join(dir, 'conf');
    this.ports = Object.fromEntries(PORT_NAMES.map((n, i) => [n, base + i])) as Record<PortName, number>;
  }

  /** Start on a new empty configuration directory (or `reuse` an existing system's, after kill()). */
  static async start(reuse?: PosternSystem): Promise<PosternSystem> {
    const sys = reuse ?? new PosternSystem(mkdtempSync(join(tmpdir(), 'postern-sys-')), await freePortBase());
    await sys.spawn();
    return sys;
  }

  /**
   * A system whose directory exists but which is not started yet, so a test can mount something
   * under `dir` first (a small tmpfs for the full-disk test); start it with PosternSystem.start(sys).
   */
  static async prepare(): Promise<PosternSystem> {
    return new PosternSystem(mkdtempSync(join(tmpdir(), 'postern-sys-')), await freePortBase());
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
      env: { ...process.env, POSTERN_PORT_BASE: String(base) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const mark = this.out.length;
    child.stdout!.on('data', (d) => { this.out += d; });
    child.stderr!.on('data', (d) => { this.out += d; });
    const end = Date.now() + 30_000;
    while (!this.out.slice(mark).includes('daemon started')) {
      if (child.exitCode !== null) throw new Error(`postern start exited ${child.exitCode}:\n${this.out}`);
      if (Date.now() > end) throw new Error(`postern start did not report ready:\n${this.out}`);
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

  /** Run a postern subcommand against this system's configuration. */
  cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(POSTERN, ['-c', this.configDir, ...args], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** Graceful stop (SIGTERM), waiting for the master to exit. */
  async stop(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;   // exited, or killed
    c.kill('SIGTERM');
    await new Promise<void>((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else c.once('exit', () => r()); });
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
