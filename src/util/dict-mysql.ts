/**
 * dict-mysql - the `mysql:/etc/postfix/file.cf` table (mysql_table(5), Postfix
 * global/dict_mysql.c) on the `mysql2` client; MariaDB and MySQL alike. Parameters, lookup and
 * failover: dict-db-sql.ts.
 *
 * hosts: `host`, `host:port`, `inet:host:port`, `unix:/path/to/socket`; `localhost` means the
 * default UNIX socket (/run/mysqld/mysqld.sock), as libmysqlclient does. `dbname` is required.
 * charset (default utf8mb4), require_result_set (default yes: a query that returns no result
 * set, e.g. an UPDATE, is an error), tls_cert_file, tls_key_file, tls_CAfile, tls_CApath,
 * tls_verify_cert, tls_ciphers (any of them turns TLS on). option_file/option_group are not read.
 *
 * Quoting is mysql_real_escape_string_quote() for the connection: backslash escapes, or doubled
 * quotes when the server's sql_mode has NO_BACKSLASH_ESCAPES (asked once per connection).
 * Values come back as the server's text (field.string()), as libmysqlclient gives them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { DictError, type Dict } from './dict.ts';
import { mysqlQuote, mysqlQuoteNoBackslash, type CfParams, type QuoteFn } from './dict-db-common.ts';
import { withDeadline, type DbHost } from './dict-db-pool.ts';
import { openSqlDict, type SqlDriver, type SqlSettings } from './dict-db-sql.ts';
import type { DictOpenFlags } from './dict-source.ts';

interface MyHost extends DbHost { host?: string; port?: number; socket?: string }
interface MyConn { c: mysql.Connection; quote: QuoteFn }

const DEFAULT_SOCKET = '/run/mysqld/mysqld.sock';

function parseHost(text: string): MyHost {
  if (text.startsWith('unix:')) return { label: text, kind: 'unix', socket: text.slice(5) || DEFAULT_SOCKET };
  let d = text.startsWith('inet:') ? text.slice(5) : text;
  let port: number | undefined;
  const colon = d.lastIndexOf(':');
  if (colon >= 0) {
    const ps = d.slice(colon + 1);
    port = Number(ps);
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new DictError('config', `unknown service: ${ps}/tcp`);
    d = d.slice(0, colon);
  }
  if (d.toLowerCase() === 'localhost') return { label: text, kind: 'unix', socket: DEFAULT_SOCKET };
  return { label: text, kind: 'inet', host: d.replace(/^\[(.*)\]$/, '$1'), port };
}

function tlsOptions(p: CfParams): mysql.SslOptions | undefined {
  const names = ['tls_cert_file', 'tls_key_file', 'tls_CAfile', 'tls_CApath', 'tls_ciphers', 'tls_verify_cert'];
  if (!names.some((n) => p.map.has(n))) return undefined;
  const read = (n: string) => { const f = p.str(n); return f ? readFileSync(f, 'utf8') : undefined; };
  const ca: string[] = [];
  const caFile = read('tls_CAfile');
  if (caFile) ca.push(caFile);
  const caPath = p.str('tls_CApath');
  if (caPath) for (const f of readdirSync(caPath)) if (/\.(pem|crt|\d)$/.test(f)) ca.push(readFileSync(join(caPath, f), 'utf8'));
  return {
    ca: ca.length ? ca : undefined, cert: read('tls_cert_file'), key: read('tls_key_file'),
    ciphers: p.str('tls_ciphers'), rejectUnauthorized: p.bool('tls_verify_cert', false),
  };
}

const driver: SqlDriver<MyConn, MyHost> = {
  type: 'mysql',
  parseHost,
  poolKey: (h, s) => JSON.stringify([h.host ?? null, h.port ?? null, h.socket ?? null, s.user, s.password, s.dbname,
    s.params.str('charset', 'utf8mb4'), s.timeoutMs, [...s.params.map].filter(([k]) => k.startsWith('tls_'))]),
  check(p) {
    if (p.str('dbname', '') === '') throw new DictError('config', `${p.file}: missing "dbname" parameter`);
    const cs = p.str('charset', 'utf8mb4');
    if (!/^(utf8mb4|utf8|utf8mb3|latin1|ascii)$/i.test(cs)) throw new DictError('config', `${p.file}: charset = ${cs}: not supported`);
    p.bool('require_result_set', true);
    tlsOptions(p);
  },
  async connect(h, s: SqlSettings) {
    const cs = s.params.str('charset', 'utf8mb4').toUpperCase();
    const c = await mysql.createConnection({
      host: h.host, port: h.port, socketPath: h.socket, user: s.user, password: s.password, database: s.dbname,
      charset: cs === 'UTF8' ? 'UTF8MB3_GENERAL_CI' : `${cs}_GENERAL_CI`, connectTimeout: s.timeoutMs,
      ssl: tlsOptions(s.params), multipleStatements: false, supportBigNumbers: true, bigNumberStrings: true,
      dateStrings: true, typeCast: (field) => field.string(),
    });
    c.on('error', () => {});
    try {
      const [rows] = await withDeadline(c.query({ sql: 'SELECT @@SESSION.sql_mode', rowsAsArray: true }), s.timeoutMs, 'sql_mode');
      const mode = String((rows as unknown[][])[0]?.[0] ?? '');
      return { c, quote: /NO_BACKSLASH_ESCAPES/i.test(mode) ? mysqlQuoteNoBackslash : mysqlQuote };
    } catch (e) {
      c.destroy();
      throw e;
    }
  },
  close(m, broken) {
    if (broken) m.c.destroy();
    else m.c.end().catch(() => m.c.destroy());
  },
  quote: (m) => m.quote,
  async query(m, sql, s) {
    const [rows, fields] = await withDeadline(m.c.query({ sql, rowsAsArray: true }), s.timeoutMs, 'query');
    let data: unknown = rows;
    if (Array.isArray(fields) && Array.isArray(fields[0])) {
      // CALL: several result sets; the first with data is the answer (Postfix rejects several).
      const sets = (rows as unknown[]).filter((r, i) => Array.isArray(r) && Array.isArray((fields as unknown[])[i]));
      if (sets.length > 1) throw new Error('multiple result sets returning data are not supported');
      data = sets[0] ?? {};
    }
    if (!Array.isArray(data)) {
      if (s.params.bool('require_result_set', true)) throw new Error('query returned no result set');
      return [];
    }
    return (data as unknown[][]).map((row) => row.map((v) => (v === null || v === undefined ? null : String(v))));
  },
};

export function openMysqlDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  return openSqlDict(driver, name, flags);
}
