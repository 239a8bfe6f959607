/**
 * db-sql-net - Dovecot's sql passdb/userdb on PostgreSQL (`driver = pgsql`, the `pg` client) and
 * MySQL/MariaDB (`driver = mysql`, `mysql2`), as Dovecot's lib-sql drivers.
 *
 *   connect = host=db1 host=db2 dbname=mail user=dovecot password=secret port=5432
 *
 * `host` may repeat (Dovecot spreads the load over them; Postern uses the one that answers, like
 * the lookup tables, and fails over to the others); a host that starts with `/` is a socket
 * (pgsql: its directory, mysql: the socket file). Also: port, dbname, user, password,
 * connect_timeout (seconds, default 5), pgsql sslmode/sslrootcert/sslcert/sslkey, mysql
 * ssl_ca/ssl_cert/ssl_key/ssl_cipher/ssl_verify_server_cert. Each query has a deadline of
 * 10 seconds.
 *
 * The user's name is never put into SQL text: db-sql.ts binds each %-expanded literal as a query
 * parameter ($1.. for PostgreSQL, `?` for MySQL, escaped by the driver). A failure (no server
 * answered, an SQL error, a timeout) throws: the directory answers "temporary failure", never
 * "unknown user". The server's error text goes to the log only.
 *
 * Connections are pooled and shared (util/dict-db-pool.ts) by every passdb/userdb — and every
 * pgsql:/mysql: lookup table — of the process with the same server and credentials.
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import type mysql from 'mysql2/promise';
import { ConnPool, HostSet, sharedPool, unsharePool, withDeadline, type DbHost } from '../util/dict-db-pool.ts';
import { logger } from '../util/msg.ts';
import type { SqlBackend } from './db-sql.ts';
import { rowFields } from './db-sql.ts';
import { parseConnect, type SqlConf } from './db-sql-conf.ts';

const log = logger('auth');
const QUERY_TIMEOUT_MS = 10_000;

interface NetHost extends DbHost { host?: string; port?: number; socket?: string }

interface Conn { run(sql: string, params: string[]): Promise<Record<string, unknown>[]>; close(broken: boolean): void }

const TEXT_TYPES = { getTypeParser: () => (v: unknown) => v };

async function pgConnect(h: NetHost, s: Record<string, string>, timeoutMs: number): Promise<Conn> {
  const { default: pgmod } = await import('pg');
  const ssl = s.sslmode && s.sslmode !== 'disable' ? {
    rejectUnauthorized: s.sslmode === 'verify-ca' || s.sslmode === 'verify-full',
    ca: s.sslrootcert ? readFileSync(s.sslrootcert, 'utf8') : undefined,
    cert: s.sslcert ? readFileSync(s.sslcert, 'utf8') : undefined,
    key: s.sslkey ? readFileSync(s.sslkey, 'utf8') : undefined,
  } : undefined;
  const c: pg.Client = new pgmod.Client({
    host: h.socket ?? h.host, port: h.port, database: s.dbname, user: s.user, password: s.password ?? '',
    connectionTimeoutMillis: timeoutMs, ssl, types: TEXT_TYPES as unknown as pg.CustomTypesConfig,
    application_name: s.application_name,
  });
  c.on('error', () => {});
  try { await c.connect(); } catch (e) { c.end().catch(() => {}); throw e; }
  return {
    async run(sql, params) {
      const r = await withDeadline(c.query({ text: sql, values: params }), QUERY_TIMEOUT_MS, 'query');
      return r.rows as Record<string, unknown>[];
    },
    close(broken) {
      if (broken) (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      c.end().catch(() => {});
    },
  };
}

async function mysqlConnect(h: NetHost, s: Record<string, string>, timeoutMs: number): Promise<Conn> {
  const { default: my } = await import('mysql2/promise');
  const tls = ['ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_cipher', 'ssl_verify_server_cert'].some((k) => k in s);
  const c: mysql.Connection = await my.createConnection({
    host: h.host, port: h.port, socketPath: h.socket, database: s.dbname, user: s.user, password: s.password ?? '',
    connectTimeout: timeoutMs, charset: 'UTF8MB4_GENERAL_CI', dateStrings: true, supportBigNumbers: true, bigNumberStrings: true,
    typeCast: (field) => field.string(),
    ssl: tls ? {
      ca: s.ssl_ca ? readFileSync(s.ssl_ca, 'utf8') : undefined, cert: s.ssl_cert ? readFileSync(s.ssl_cert, 'utf8') : undefined,
      key: s.ssl_key ? readFileSync(s.ssl_key, 'utf8') : undefined, ciphers: s.ssl_cipher,
      rejectUnauthorized: /^(yes|1|true)$/i.test(s.ssl_verify_server_cert ?? ''),
    } : undefined,
  });
  c.on('error', () => {});
  return {
    async run(sql, params) {
      const [rows] = await withDeadline(c.query(sql, params), QUERY_TIMEOUT_MS, 'query');
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    },
    close(broken) { if (broken) c.destroy(); else c.end().catch(() => c.destroy()); },
  };
}

function parseHost(driver: string, text: string, port: number | undefined): NetHost {
  if (text.startsWith('/')) return { label: text, kind: 'unix', socket: text, port };
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  const host = m ? m[1]! : text;
  const p = m?.[2] ? Number(m[2]) : port;
  if (driver === 'mysql' && host === 'localhost') return { label: text, kind: 'unix', socket: '/run/mysqld/mysqld.sock' };
  return { label: text, kind: 'inet', host, port: p };
}

/** The backend of a dovecot-sql.conf.ext with driver = pgsql or mysql. */
export class NetSqlBackend implements SqlBackend {
  private readonly conf: SqlConf;
  private readonly hosts: HostSet<NetHost>;
  private readonly pools: ConnPool<Conn>[];
  private readonly keys: string[];
  private closed = false;

  constructor(conf: SqlConf) {
    this.conf = conf;
    const c = parseConnect(conf.connect, conf.file);
    const s = c.settings;
    const port = s.port ? Number(s.port) : undefined;
    const timeoutMs = (Number(s.connect_timeout) || 5) * 1000;
    const list = c.hosts.map((h) => parseHost(conf.driver, h, port));
    // Dovecot reconnects to a failed server after a second (doubling to a minute); one second here.
    this.hosts = new HostSet(list, 1);
    const connect = conf.driver === 'pgsql' ? pgConnect : mysqlConnect;
    this.keys = list.map((h) => `auth-${conf.driver}\0${JSON.stringify([h, s])}`);
    this.pools = list.map((h, i) => sharedPool(this.keys[i]!, () => new ConnPool<Conn>({
      connect: () => connect(h, s, timeoutMs),
      close: (x, broken) => x.close(broken),
    }, Number(s.maxconns) || 5, 60, QUERY_TIMEOUT_MS, `connect to ${h.label}`)));
  }

  placeholder(n: number): string { return this.conf.driver === 'pgsql' ? `$${n}` : '?'; }

  async run(sql: string, params: string[], limit: number): Promise<Record<string, string>[]> {
    const tried = new Set<number>();
    for (;;) {
      const pick = this.hosts.pick(tried);
      if (!pick) break;
      tried.add(pick.index);
      const pool = this.pools[pick.index % this.pools.length]!;
      let conn: Conn;
      try {
        // Opening a connection is bounded inside the pool; waiting for a busy one is not a failure.
        conn = await pool.acquire();
      } catch (e) {
        log.error(`${this.conf.driver}(${pick.host.label}): connect failed: ${(e as Error).message} (${this.conf.file})`);
        this.hosts.markDown(pick.index);
        pool.failWaiters(e as Error);
        continue;
      }
      try {
        const rows = await conn.run(sql, params);
        pool.release(conn);
        this.hosts.markActive(pick.index);
        return rows.slice(0, limit).map(rowFields);
      } catch (e) {
        pool.release(conn, true);
        log.error(`${this.conf.driver}(${pick.host.label}): query failed: ${(e as Error).message} (${this.conf.file})`);
        this.hosts.markDown(pick.index);
      }
    }
    throw new Error(`${this.conf.file}: no ${this.conf.driver} server answered (see the log)`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const k of this.keys) unsharePool(k);
  }
}
