/**
 * pg-server - a private PostgreSQL (Debian's postgresql 15) for the tests: `initdb` in a temp
 * dir, `postgres` on an OS-chosen loopback port with its unix socket in the same dir, run as the
 * unprivileged user `postgres` (PostgreSQL refuses to run as root), stopped and removed after.
 *
 *   const pg = await PgServer.start();         // superuser postgres, password "pgpass"
 *   await pg.sql('CREATE TABLE ...');          // as the superuser, in database "mail"
 *   pg.port, pg.socketDir                      // for pgsql_table(5) files
 *   await pg.pause() / resume()                // SIGSTOP/SIGCONT: a database that hangs
 *   await pg.stop() / restart()                // a database that is gone, then back
 *
 * Start-up takes about 2 s (initdb with fsync off, then the server).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './free-port.ts';
import { startOrClean, stopAndWait, terminate } from './proc-stop.ts';
import { account } from './run-as.ts';

const BIN = '/usr/lib/postgresql/15/bin';
const RUN_AS = 'postgres';

/** Run a command as RUN_AS when we are root (setpriv execs it: signals reach the server), else as ourselves. */
function asUser(cmd: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['setpriv', ['--reuid', RUN_AS, '--regid', RUN_AS, '--init-groups', cmd, ...args]] : [cmd, args];
}

export class PgServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  port = 0;
  readonly password = 'pgpass';
  readonly database = 'mail';
  private proc: ChildProcess | undefined;
  private log = '';

  private constructor(dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.socketDir = dir;
  }

  static unavailable(): string | undefined {
    if (!existsSync(join(BIN, 'postgres'))) return 'Debian package postgresql-15 is not installed';
    if (userInfo().uid === 0 && !account(RUN_AS)) return `user ${RUN_AS} does not exist`;
    return undefined;
  }

  static async start(): Promise<PgServer> {
    const why = PgServer.unavailable();
    if (why) throw new Error(why);
    const dir = mkdtempSync(join(tmpdir(), 'postern-pg-'));
    chmodSync(dir, 0o755);
    const s = new PgServer(dir);
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, s.password + '\n');
    if (userInfo().uid === 0) {
      const a = account(RUN_AS)!;
      chownSync(dir, a.uid, a.gid);
      chownSync(pwfile, a.uid, a.gid);
    }
    const [cmd, args] = asUser(join(BIN, 'initdb'), ['-D', s.dataDir, '-U', 'postgres', '--pwfile', pwfile,
      '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--locale=C', '--no-sync']);
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) { rmSync(dir, { recursive: true, force: true }); throw new Error(`initdb failed: ${r.stderr}${r.stdout}`); }
    return startOrClean(async () => {
      await s.launch();
      await s.sql(`CREATE DATABASE ${s.database}`, 'postgres');
      return s;
    }, () => s.stop());
  }

  private async launch(): Promise<void> {
    this.port = await freePort();
    const [cmd, args] = asUser(join(BIN, 'postgres'), ['-D', this.dataDir, '-k', this.socketDir, '-h', '127.0.0.1',
      '-p', String(this.port), '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
      '-c', 'max_connections=200', '-c', 'shared_buffers=16MB', '-c', 'log_min_messages=fatal']);
    this.log = '';
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.proc = p;
    p.stdout!.on('data', (d) => { this.log += d; });
    p.stderr!.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`postgres exited: ${this.log}`);
      try {
        const c = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', password: this.password, database: 'postgres', connectionTimeoutMillis: 2000 });
        await c.connect();
        await c.end();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`postgres did not start: ${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Run SQL as the superuser (several statements allowed); returns the rows of the last one. */
  async sql(text: string, database = this.database): Promise<Record<string, unknown>[]> {
    const c = new pg.Client({ host: '127.0.0.1', port: this.port, user: 'postgres', password: this.password, database });
    await c.connect();
    try {
      const r = await c.query(text);
      const last = Array.isArray(r) ? r[r.length - 1] : r;
      return last?.rows ?? [];
    } finally {
      await c.end();
    }
  }

  /** The postmaster and its children (each backend calls setsid(), so no process group holds them all). */
  private pids(): number[] {
    const top = this.proc?.pid;
    if (!top) return [];
    const out = [top];
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const stat = readFileSync(`/proc/${e}/stat`, 'latin1');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        if (ppid === top) out.push(Number(e));
      } catch { /* gone */ }
    }
    return out;
  }

  /** SIGSTOP the server and every backend: connections and queries hang. */
  pause(): void { for (const p of this.pids()) stopAndWait(p); }
  resume(): void { for (const p of this.pids()) { try { process.kill(p, 'SIGCONT'); } catch { /* gone */ } } }

  /** Stop the server (fast shutdown); the data stays for restart(). */
  async halt(): Promise<void> {
    if (this.proc && this.proc.exitCode === null) this.resume();   // every backend, not only the postmaster
    await terminate(this.proc, 10_000, 'SIGINT');
    this.proc = undefined;
  }

  /** Start again on the same port after halt(). */
  async restart(): Promise<void> {
    const port = this.port;
    const [cmd, args] = asUser(join(BIN, 'postgres'), ['-D', this.dataDir, '-k', this.socketDir, '-h', '127.0.0.1',
      '-p', String(port), '-c', 'fsync=off', '-c', 'max_connections=200', '-c', 'log_min_messages=fatal']);
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.proc = p;
    p.stderr!.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`postgres exited: ${this.log}`);
      try {
        await this.sql('SELECT 1', 'postgres');
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`postgres did not restart: ${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
