/**
 * db-sql - Dovecot's sql passdb and userdb (auth/passdb-sql.c, userdb-sql.c) with the queries of
 * dovecot-sql.conf.ext: on SQLite through node:sqlite (here), or on PostgreSQL and MySQL/MariaDB
 * (db-sql-net.ts: `driver = pgsql|mysql`).
 *
 * Dovecot substitutes %u %n %d (escaped) into the query text. We never put a user-supplied value
 * into SQL text: each single-quoted literal that contains %-variables ('%u', '%n@%d') and each
 * bare variable becomes one `?` parameter bound to the expanded value, so no name can inject SQL.
 *
 * Result columns are fields: `user` (or `username` + `domain`) renames the user, `password` is
 * the stored password, everything else is an extra field; NULL columns are absent. More than one
 * row from password_query/user_query is an error, as in Dovecot.
 */
import { stat } from 'node:fs/promises';
import { DatabaseSync, type StatementSync, type SQLInputValue } from 'node:sqlite';
import type { Passdb, PassdbEntry, Userdb } from './auth-db.ts';
import { expandParts } from './auth-var-expand.ts';
import type { SqlConf } from './db-sql-conf.ts';

/**
 * Turn a Dovecot query into SQL with placeholders (`?`, or `$1`.. for PostgreSQL) and the values
 * to bind for `user`.
 */
export function bindQuery(query: string, user: string, placeholder: (n: number) => string = () => '?'): { sql: string; params: string[] } {
  let sql = '';
  const params: string[] = [];
  let i = 0;
  while (i < query.length) {
    const c = query[i]!;
    if (c === "'") {
      // A string literal: find its end ('' is an escaped quote).
      let j = i + 1;
      let body = '';
      while (j < query.length) {
        if (query[j] === "'" && query[j + 1] === "'") { body += "'"; j += 2; continue; }
        if (query[j] === "'") break;
        body += query[j++];
      }
      if (j >= query.length) throw new Error(`unterminated string literal in query: ${query}`);
      if (/%(?!%)/.test(body.replace(/%%/g, ''))) {
        sql += placeholder(params.length + 1);
        params.push(expandParts(body, { user }).map((p) => (typeof p === 'string' ? p : p.value)).join(''));
      } else {
        sql += query.slice(i, j + 1).replace(/%%/g, '%');
      }
      i = j + 1;
      continue;
    }
    if (c === '%') {
      if (query[i + 1] === '%') { sql += '%'; i += 2; continue; }
      // A bare variable: %u, %Lu, %{user}
      const m = /^%[LU]?(\{[a-z]+\}|[a-zA-Z])/.exec(query.slice(i));
      if (!m) throw new Error(`bad variable in query at "${query.slice(i, i + 10)}"`);
      const v = expandParts(m[0], { user });
      sql += placeholder(params.length + 1);
      params.push(v.map((p) => (typeof p === 'string' ? p : p.value)).join(''));
      i += m[0].length;
      continue;
    }
    sql += c;
    i++;
  }
  return { sql, params };
}

export function rowFields(row: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(row)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'string' ? v : v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : String(v);
  }
  return out;
}

/** The user name a row names: `user`, or `username` + `domain` (Dovecot's rename rule). */
function rowUser(f: Record<string, string>, fallback: string): string {
  if (f.user) return f.user;
  if (f.username) return f.domain ? `${f.username}@${f.domain}` : f.username;
  return fallback;
}

/** Where the queries run: SQLite here, PostgreSQL/MySQL in db-sql-net.ts. */
export interface SqlBackend {
  placeholder(n: number): string;
  /** The rows (NULL columns absent), at most `limit`. Throws on any failure (a temporary error). */
  run(sql: string, params: string[], limit: number): Promise<Record<string, string>[]>;
  stamp?(): Promise<string>;
  close(): void;
}

/** One SQLite connection shared by the passdb and userdb built from the same settings file. */
export class SqliteBackend implements SqlBackend {
  private readonly conf: SqlConf;
  private db: DatabaseSync | undefined;
  private stmts = new Map<string, StatementSync>();

  constructor(conf: SqlConf) { this.conf = conf; }

  placeholder(): string { return '?'; }

  private open(): DatabaseSync {
    if (!this.db) {
      try {
        this.db = new DatabaseSync(this.conf.connect, { readOnly: true, timeout: 5000 });
      } catch (err) {
        throw new Error(`${this.conf.file}: cannot open SQLite database ${this.conf.connect}: ${(err as Error).message}`);
      }
    }
    return this.db;
  }

  async run(sql: string, params: string[], limit: number): Promise<Record<string, string>[]> {
    try {
      let st = this.stmts.get(sql);
      if (!st) { st = this.open().prepare(sql); this.stmts.set(sql, st); }
      const out: Record<string, string>[] = [];
      for (const row of st.iterate(...(params as SQLInputValue[]))) {
        out.push(rowFields(row as Record<string, unknown>));
        if (out.length >= limit) break;
      }
      return out;
    } catch (err) {
      throw new Error(`${this.conf.file}: query failed: ${(err as Error).message} (query: ${sql})`);
    }
  }

  async stamp(): Promise<string> {
    const parts: string[] = [];
    for (const suffix of ['', '-wal']) {
      try { const st = await stat(this.conf.connect + suffix); parts.push(`${st.size}:${st.mtimeMs}`); } catch { parts.push('-'); }
    }
    try {
      const v = this.open().prepare('PRAGMA data_version').get() as { data_version: number };
      parts.push(String(v.data_version));
    } catch { /* reported by the next lookup */ }
    return parts.join('/');
  }

  close(): void {
    this.stmts.clear();
    this.db?.close();
    this.db = undefined;
  }
}

/** The queries of one dovecot-sql.conf.ext on its backend, shared by its passdb and userdb. */
export class SqlSource {
  readonly conf: SqlConf;
  private readonly backend: SqlBackend;

  constructor(conf: SqlConf, backend?: SqlBackend) {
    this.conf = conf;
    this.backend = backend ?? new SqliteBackend(conf);
  }

  /** Run `query` for `user`; at most `limit` rows. Errors name the settings file. */
  rows(query: string, user: string, limit: number): Promise<Record<string, string>[]> {
    const { sql, params } = bindQuery(query, user, (n) => this.backend.placeholder(n));
    return this.backend.run(sql, params, limit);
  }

  async stamp(): Promise<string> { return this.backend.stamp ? this.backend.stamp() : ''; }

  async *iterate(): AsyncIterable<string> {
    for (const f of await this.rows(this.conf.iterateQuery, '', Number.MAX_SAFE_INTEGER)) {
      const u = rowUser(f, '');
      if (u) yield u;
    }
  }

  close(): void { this.backend.close(); }
}

export function sqlPassdb(src: SqlSource): Passdb {
  return {
    driver: 'sql',
    defaultScheme: src.conf.defaultPassScheme,
    async lookup(user): Promise<PassdbEntry | undefined> {
      const rows = await src.rows(src.conf.passwordQuery, user, 2);
      if (rows.length === 0) return undefined;
      if (rows.length > 1) throw new Error(`${src.conf.file}: password_query returned more than one row for ${user}`);
      const f = rows[0]!;
      const password = f.password;
      const fields = { ...f };
      delete fields.password; delete fields.user; delete fields.username; delete fields.domain;
      return { user: rowUser(f, user), password, fields };
    },
    iterate: () => src.iterate(),
    stamp: () => src.stamp(),
    async close() { src.close(); },
  };
}

export function sqlUserdb(src: SqlSource): Userdb {
  return {
    driver: 'sql',
    async lookup(user) {
      const rows = await src.rows(src.conf.userQuery, user, 2);
      if (rows.length === 0) return undefined;
      if (rows.length > 1) throw new Error(`${src.conf.file}: user_query returned more than one row for ${user}`);
      const f = rows[0]!;
      const name = rowUser(f, user);
      delete f.username; delete f.domain;
      return { ...f, user: name };
    },
    iterate: () => src.iterate(),
    stamp: () => src.stamp(),
    async close() { src.close(); },
  };
}
