/**
 * mariadb-server - a private MariaDB (Debian's mariadb-server) for the tests: a data dir made by
 * `mariadb-install-db` in a temp dir, `mariadbd` on an OS-chosen loopback port with its socket
 * in the same dir, run as the unprivileged user `mysql` when we are root; stopped and removed after.
 *
 *   const db = await MariaDbServer.start();    // user root, password "dbpass", database "mail"
 *   await db.sql('CREATE TABLE ...');
 *   db.port, db.socket                         // for mysql_table(5) files
 *   db.pause() / resume(); await db.halt() / restart()
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { freePort } from './free-port.ts';
import { startOrClean, stopAndWait, terminate } from './proc-stop.ts';
import { account } from './run-as.ts';

const RUN_AS = 'mysql';

export class MariaDbServer {
  readonly dir: string;
  readonly dataDir: string;
  readonly socket: string;
  port = 0;
  readonly password = 'dbpass';
  readonly database = 'mail';
  private proc: ChildProcess | undefined;
  private log = '';

  private constructor(dir: string) {
    this.dir = dir;
    this.dataDir = join(dir, 'data');
    this.socket = join(dir, 'mysqld.sock');
  }

  static unavailable(): string | undefined {
    if (!existsSync('/usr/sbin/mariadbd') || !existsSync('/usr/bin/mariadb-install-db')) return 'Debian package mariadb-server is not installed';
    if (userInfo().uid === 0 && !account(RUN_AS)) return `user ${RUN_AS} does not exist`;
    return undefined;
  }

  static async start(): Promise<MariaDbServer> {
    const why = MariaDbServer.unavailable();
    if (why) throw new Error(why);
    const dir = mkdtempSync(join(tmpdir(), 'postern-mariadb-'));
    chmodSync(dir, 0o755);
    if (userInfo().uid === 0) { const a = account(RUN_AS)!; chownSync(dir, a.uid, a.gid); }
    const s = new MariaDbServer(dir);
    const user = userInfo().uid === 0 ? [`--user=${RUN_AS}`] : [];
    const r = spawnSync('/usr/bin/mariadb-install-db', ['--no-defaults', `--datadir=${s.dataDir}`, ...user,
      '--auth-root-authentication-method=normal', '--skip-test-db', '--skip-name-resolve'], { encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) { rmSync(dir, { recursive: true, force: true }); throw new Error(`mariadb-install-db failed: ${r.stderr}${r.stdout}`); }
    s.port = await freePort();
    return startOrClean(async () => {
      await s.launch();
      // A fresh data dir has root@localhost with no password; give it one and allow 127.0.0.1.
      const c = await mysql.createConnection({ socketPath: s.socket, user: 'root', connectTimeout: 5000 });
      await c.query(`ALTER USER 'root'@'localhost' IDENTIFIED BY '${s.password}'`);
      await c.query(`CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'`);
      await c.query(`ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '${s.password}'`);
      await c.query(`GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION`);
      await c.query(`CREATE DATABASE ${s.database} CHARACTER SET utf8mb4`);
      await c.end();
      return s;
    }, () => s.stop());
  }

  private async launch(): Promise<void> {
    const user = userInfo().uid === 0 ? [`--user=${RUN_AS}`] : [];
    const p = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${this.dataDir}`, ...user,
      `--socket=${this.socket}`, `--port=${this.port}`, '--bind-address=127.0.0.1', '--skip-name-resolve',
      `--pid-file=${join(this.dir, 'mariadbd.pid')}`, '--innodb-buffer-pool-size=16M', '--innodb-log-file-size=8M',
      '--innodb-flush-log-at-trx-commit=0', '--skip-log-bin', '--max-connections=300', '--character-set-server=utf8mb4'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    this.log = '';
    p.stdout!.on('data', (d) => { this.log += d; });
    p.stderr!.on('data', (d) => { this.log += d; });
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (p.exitCode !== null) throw new Error(`mariadbd exited: ${this.log}`);
      try {
        const c = await mysql.createConnection({ socketPath: this.socket, user: 'root', password: this.password, connectTimeout: 2000 });
        await c.end();
        return;
      } catch (e) {
        const err = e as { code?: string };
        // Before the password is set, root has none: access denied with a password means "up".
        if (err.code === 'ER_ACCESS_DENIED_ERROR') return;
        if (Date.now() > deadline) throw new Error(`mariadbd did not start: ${this.log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Run SQL as root in database "mail" (several statements allowed). */
  async sql(text: string): Promise<unknown> {
    const c = await mysql.createConnection({ socketPath: this.socket, user: 'root', password: this.password, database: this.database, multipleStatements: true, charset: 'utf8mb4' });
    try {
      const [rows] = await c.query(text);
      return rows;
    } finally {
      await c.end();
    }
  }

  pause(): void { stopAndWait(this.proc?.pid); }
  resume(): void { this.proc?.kill('SIGCONT'); }

  async halt(): Promise<void> {
    await terminate(this.proc, 15_000);
    this.proc = undefined;
  }

  async restart(): Promise<void> { await this.launch(); }

  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
