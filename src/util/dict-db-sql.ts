/**
 * dict-db-sql - the part of `pgsql:` and `mysql:` that is the same for both (Postfix
 * dict_pgsql.c and dict_mysql.c share it line for line): the parameters of pgsql_table(5) and
 * mysql_table(5), the lookup, the host failover loop. The drivers (dict-pgsql.ts,
 * dict-mysql.ts) only say how to reach a host, quote a string and run one query.
 *
 * Parameters: hosts (default localhost), user, password, dbname, query (or the old table,
 * select_field, where_field, additional_conditions; pgsql also select_function), result_format
 * (or result_filter), domain, expansion_limit, retry_interval (60), idle_interval (60). Postern
 * adds `timeout` (seconds for connecting and for each query, default 10; Postfix waits as long
 * as the client library does) and `max_connections` (per host, default 4); Postfix ignores both.
 *
 * A lookup:
 *   - the key is lower-cased (unless the caller asked for case as given); a key with a NUL is
 *     not found (no SQL string can hold it as Postfix would have sent it);
 *   - `domain` and the query template may skip it: not found, no query;
 *   - the query is expanded with the driver's quoting of the connection that will run it;
 *   - every column of every row is a result (NULL skipped), joined with commas;
 *   - a connection or query failure marks the host down and tries the next; when none is left
 *     the lookup throws DictError('retry'): callers defer (4xx, deferred mail), never "not found".
 * The server's error text is logged (the warning sink) and never put in the DictError message,
 * which reaches queue listings and delay notices.
 *
 * Identical keys looked up at the same time share one query.
 */
import { DictError, type Dict } from './dict.ts';
import { CfParams, DbResult, DbTemplates, parseCfFile, type QuoteFn } from './dict-db-common.ts';
import { ConnPool, HostSet, sharedPool, unsharePool, type DbHost } from './dict-db-pool.ts';
import { readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

export interface SqlSettings {
  user: string; password: string; dbname: string;
  timeoutMs: number; maxConnections: number; idleSeconds: number;
  params: CfParams;
}

export interface SqlDriver<C, H extends DbHost> {
  readonly type: 'pgsql' | 'mysql';
  parseHost(text: string, s: SqlSettings): H;
  /** What makes two connections interchangeable (server, user, password, database, options). */
  poolKey(host: H, s: SqlSettings): string;
  connect(host: H, s: SqlSettings): Promise<C>;
  close(c: C, broken: boolean): void;
  /** The quoting of this connection (its sql_mode or standard_conforming_strings). */
  quote(c: C): QuoteFn;
  /** Run one query; each row as its columns' text (null for NULL), in column order. */
  query(c: C, sql: string, s: SqlSettings): Promise<(string | null)[][]>;
  /** Extra checks of the parameters (a surrogate-free configuration error). */
  check?(p: CfParams, hosts: H[]): void;
  /** The old-style query of pgsql's select_function, if any. */
  oldQuery?(p: CfParams): string | undefined;
}

export async function openSqlDict<C, H extends DbHost>(driver: SqlDriver<C, H>, name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const cf = tablePath(name, flags);
  const warn = warnFn(flags);
  const p = new CfParams(cf, parseCfFile(readSourceFile(cf), cf, warn));
  const label = `${driver.type}:${name}`;
  const s: SqlSettings = {
    user: p.str('user', ''), password: p.str('password', ''), dbname: p.str('dbname', ''),
    timeoutMs: p.int('timeout', 10, 1) * 1000, maxConnections: p.int('max_connections', 4, 1),
    idleSeconds: p.int('idle_interval', 60, 1), params: p,
  };
  let query = p.str('query');
  if (query === undefined) {
    query = driver.oldQuery?.(p);
    if (query === undefined) {
      const table = p.str('table'), select = p.str('select_field'), where = p.str('where_field');
      if (!table || !select || !where) {
        throw new DictError('config', `${cf}: missing "query" parameter (or the old table, select_field and where_field)`);
      }
      query = `SELECT ${select} FROM ${table} WHERE ${where}='%s' ${p.str('additional_conditions', '')}`;
    }
  }
  const resultFormat = p.str('result_format') ?? p.str('result_filter', '%s');
  const limit = p.int('expansion_limit', 0);
  const t = new DbTemplates(label, warn);
  t.parse(query, true, cf, 'query');
  t.parse(resultFormat, false, cf, 'result_format');
  t.parseDomain(p.str('domain'), cf);
  const hostTexts = p.list('hosts');
  const hosts = (hostTexts.length ? hostTexts : ['localhost']).map((h) => driver.parseHost(h, s));
  driver.check?.(p, hosts);
  const set = new HostSet(hosts, p.int('retry_interval', 60, 1));
  const keys = hosts.map((h) => `${driver.type}\0${driver.poolKey(h, s)}`);
  const pools = hosts.map((h, i) => sharedPool(keys[i]!, () => new ConnPool<C>({
    connect: () => driver.connect(h, s),
    close: (c, broken) => driver.close(c, broken),
  }, s.maxConnections, s.idleSeconds, s.timeoutMs * 2, `connect to ${driver.type} server ${h.label}`)));
  const fold = flags.foldCase !== false;
  const inflight = new Map<string, Promise<string | undefined>>();
  let closed = false;

  /** plpgsql_query / plmysql_query: the query on the first host that answers. */
  async function run(key: string): Promise<(string | null)[][]> {
    const tried = new Set<number>();
    for (;;) {
      const pick = set.pick(tried);
      if (!pick) break;
      tried.add(pick.index);
      // The two entries of a single host share one pool (same key).
      const pool = pools[pick.index % pools.length]!;
      let conn: C;
      try {
        // Opening a connection is bounded inside the pool; waiting for a busy one is not a failure.
        conn = await pool.acquire();
      } catch (e) {
        warn(`connect to ${driver.type} server ${pick.host.label}: ${(e as Error).message}`);
        set.markDown(pick.index);
        pool.failWaiters(e as Error);
        continue;
      }
      const sql = t.expand(query!, key, undefined, driver.quote(conn))!;
      try {
        const rows = await driver.query(conn, sql, s);
        pool.release(conn);
        set.markActive(pick.index);
        return rows;
      } catch (e) {
        pool.release(conn, true);
        warn(`${label}: query failed on host ${pick.host.label}: ${(e as Error).message}`);
        set.markDown(pick.index);
      }
    }
    throw new DictError('retry', `${label}: lookup failed: no database server answered (see the log for why)`);
  }

  async function lookupOnce(key: string): Promise<string | undefined> {
    const rows = await run(key);
    const r = new DbResult(t, resultFormat, key, limit, cf);
    try {
      for (const row of rows) for (const v of row) r.add(v);
    } catch (e) {
      warn((e as Error).message);
      throw new DictError('retry', `${label}: Expansion limit exceeded for key: '${key}'`);
    }
    return r.value;
  }

  return {
    type: driver.type,
    name,
    async lookup(rawKey) {
      const key = t.lookupKey(rawKey, fold, closed);
      if (key === undefined) return undefined;
      if (t.expand(query!, key, undefined) === undefined) return undefined;
      let pending = inflight.get(key);
      if (!pending) {
        pending = lookupOnce(key).finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return pending;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const k of keys) unsharePool(k);
    },
  };
}
