/**
 * dict-pgsql - the `pgsql:/etc/postfix/file.cf` table (pgsql_table(5), Postfix
 * global/dict_pgsql.c) on the `pg` client. Parameters, lookup and failover: dict-db-sql.ts.
 *
 * hosts: `host`, `host:port`, `inet:host:port`, `unix:/socket/dir` or `/socket/dir` (the
 * directory holding .s.PGSQL.PORT, as libpq), or a connection URI
 * `postgresql://user:pass@host:port/dbname?...` (then user, password and dbname of the file are
 * not used). A host that is not a URI needs `dbname`.
 *
 * Quoting: every connection is opened with standard_conforming_strings = on, so a substituted
 * value is made safe inside '...' by doubling its single quotes — what PQescapeStringConn() does
 * on such a connection. Values come back as the server's text, as libpq gives them to Postfix.
 * `encoding` (Postfix default UTF8) must be UTF8: the `pg` client speaks nothing else.
 */
import pg from 'pg';
import { DictError, type Dict } from './dict.ts';
import { pgsqlQuote } from './dict-db-common.ts';
import { withDeadline, type DbHost } from './dict-db-pool.ts';
import { openSqlDict, type SqlDriver, type SqlSettings } from './dict-db-sql.ts';
import type { DictOpenFlags } from './dict-source.ts';

interface PgHost extends DbHost { host?: string; port?: number; uri?: string }

const TEXT_TYPES = { getTypeParser: () => (v: unknown) => v } as unknown as pg.CustomTypesConfig;

function parseHost(text: string): PgHost {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return { label: text, kind: 'uri', uri: text };
  let d = text;
  if (d.startsWith('unix:') || d.startsWith('inet:')) d = d.slice(5);
  if (d === '' || d.startsWith('/')) return { label: text, kind: 'unix', host: d || undefined };
  // host:port (split at the right, as Postfix), or [ipv6]:port; a bare IPv6 address has no port.
  const m = /^\[([^\]]+)\](?::(.*))?$/.exec(d) ?? (d.split(':').length === 2 ? /^([^:]+):(.*)$/.exec(d) : null);
  if (m) {
    const port = m[2] === undefined ? undefined : Number(m[2]);
    if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65535)) {
      throw new DictError('config', `pgsql: bad port in host "${text}"`);
    }
    return { label: text, kind: 'inet', host: m[1], port };
  }
  return { label: text, kind: 'inet', host: d };
}

const driver: SqlDriver<pg.Client, PgHost> = {
  type: 'pgsql',
  parseHost,
  poolKey: (h, s) => JSON.stringify([h.uri ?? null, h.host ?? null, h.port ?? null, s.user, s.password, s.dbname, s.timeoutMs]),
  check(p, hosts) {
    const enc = p.str('encoding', 'UTF8');
    if (!/^utf-?8$/i.test(enc)) throw new DictError('config', `${p.file}: encoding = ${enc}: only UTF8 is supported`);
    const plain = hosts.find((h) => h.kind !== 'uri');
    if (plain && p.str('dbname', '') === '') {
      throw new DictError('config', `pgsql:${p.file} host target '${plain.label}' requires dbname setting`);
    }
  },
  oldQuery(p) {
    const f = p.str('select_function');
    return f === undefined ? undefined : `SELECT ${f}('%s')`;
  },
  async connect(h, s: SqlSettings) {
    const base: pg.ClientConfig = {
      connectionTimeoutMillis: s.timeoutMs,
      options: '-c standard_conforming_strings=on',
      types: TEXT_TYPES,
    };
    const c = new pg.Client(h.uri ? { ...base, connectionString: h.uri } : {
      ...base, host: h.host, port: h.port, user: s.user || undefined, password: s.password, database: s.dbname,
    });
    // An idle connection that breaks must not crash the process; the next query notices.
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (e) {
      c.end().catch(() => {});
      throw e;
    }
    return c;
  },
  close(c, broken) {
    if (broken) {
      // end() waits for the server; a hung server would keep the socket: destroy it.
      const stream = (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
      stream?.destroy();
    }
    c.end().catch(() => {});
  },
  quote: () => pgsqlQuote,
  async query(c, sql, s) {
    const r = await withDeadline(c.query({ text: sql, rowMode: 'array' }) as Promise<pg.QueryArrayResult | pg.QueryArrayResult[]>,
      s.timeoutMs, 'query');
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return (last?.rows ?? []).map((row) => row.map((v) => (v === null || v === undefined ? null : String(v))));
  },
};

export function openPgsqlDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  return openSqlDict(driver, name, flags);
}
