/**
 * dict-sqlite - the `sqlite:/etc/postfix/file.cf` table (sqlite_table(5), Postfix
 * global/dict_sqlite.c and db_common.c), on Node's built-in node:sqlite, read-only.
 *
 * The .cf file uses main.cf syntax (`name = value`, comments, continuation lines):
 *
 *   dbpath = /var/lib/postfix/mail.sqlite
 *   query = SELECT goto FROM alias WHERE address='%s' AND active = 1
 *   result_format = %s          (default; e.g. "%d/%u/" to build a maildir path)
 *   domain = example.com, example.net   (only keys user@listed-domain are looked up)
 *   expansion_limit = 0         (0 = no limit on the number of result rows)
 *   Old style, instead of query: table, select_field, where_field, additional_conditions.
 *
 * Query escapes, `domain` and results are Postfix's db_common.c rules, shared with pgsql: and
 * mysql: in dict-db-common.ts. Every value is SQL-quoted ('' for ').
 *
 * Each row's first column is one result; results are joined with commas (NULL and empty values
 * are skipped). More rows than expansion_limit is a temporary error, as Postfix. A broken
 * query is a configuration error naming the .cf file.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { isAbsolute, dirname, join } from 'node:path';
import { DictError, type Dict } from './dict.ts';
import { CfParams, DbResult, DbTemplates, parseCfFile, pgsqlQuote } from './dict-db-common.ts';
import { errnoText, readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

export { parseCfFile } from './dict-db-common.ts';

/** SQLite string literals: a ' is doubled (the same rule as standard PostgreSQL). */
const sqlQuote = pgsqlQuote;

/**
 * db_common_expand of one query template alone: undefined when the key lacks a part the
 * template needs (the query is suppressed).
 */
export function expandTemplate(t: string, value: string, key: string | undefined, quote: (s: string) => string): string | undefined {
  const tpl = new DbTemplates('sqlite', () => {});
  tpl.parse(t, key === undefined, 'template', 'query');
  return tpl.expand(t, value, key, quote);
}

export async function openSqliteDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const cf = tablePath(name, flags);
  const warn = warnFn(flags);
  const p = new CfParams(cf, parseCfFile(readSourceFile(cf), cf, warn));
  const dbpath = p.str('dbpath');
  if (!dbpath) throw new DictError('config', `${cf}: missing "dbpath" parameter`);
  let query = p.str('query');
  if (!query) {
    const table = p.str('table'), select = p.str('select_field'), where = p.str('where_field');
    if (!table || !select || !where) {
      throw new DictError('config', `${cf}: missing "query" parameter (or the old table, select_field and where_field)`);
    }
    query = `SELECT ${select} FROM ${table} WHERE ${where} = '%s' ${p.str('additional_conditions', '')}`.trim();
  }
  const resultFormat = p.str('result_format') ?? p.str('result_filter', '%s');
  const limitText = p.str('expansion_limit', '0');
  if (!/^\d+$/.test(limitText)) throw new DictError('config', `${cf}: bad expansion_limit value: "${limitText}"`);
  const limit = Number(limitText);
  const t = new DbTemplates(`sqlite:${name}`, warn);
  t.parse(query, true, cf, 'query');
  t.parse(resultFormat, false, cf, 'result_format');
  t.parseDomain(p.str('domain'), cf);
  const fold = flags.foldCase !== false;
  const dbfile = isAbsolute(dbpath) || !flags.configDir ? dbpath : join(dirname(cf), dbpath);

  let db: DatabaseSync;
  try {
    db = new DatabaseSync(dbfile, { readOnly: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DictError('config', `${cf}: open database ${dbfile}: ${e.code && e.code.startsWith('E') ? errnoText(err) : e.message}`);
  }
  const cache = new Map<string, StatementSync>();

  return {
    type: 'sqlite',
    name,
    async lookup(rawKey) {
      const key = fold ? rawKey.toLowerCase() : rawKey;
      if (key.includes('\0')) return undefined;
      if (!t.checkDomain(key)) return undefined;
      const sql = t.expand(query, key, undefined, sqlQuote);
      if (sql === undefined) return undefined;
      let rows: Record<string, unknown>[];
      try {
        let st = cache.get(sql);
        if (!st) {
          st = db.prepare(sql);
          if (cache.size > 1000) cache.clear();
          cache.set(sql, st);
        }
        rows = st.all() as Record<string, unknown>[];
      } catch (err) {
        const e = err as Error;
        if (/locked|busy/i.test(e.message)) throw new DictError('retry', `${cf}: ${e.message}`);
        throw new DictError('config', `${cf}: SQL query failed: ${e.message}: ${sql}`);
      }
      // Postfix dict_sqlite: the first column of each row.
      const r = new DbResult(t, resultFormat, key, limit, cf);
      for (const row of rows) {
        const first = Object.values(row)[0];
        r.add(first === null || first === undefined ? null : first instanceof Uint8Array ? Buffer.from(first).toString('utf8') : String(first));
      }
      return r.value;
    },
    close: async () => { db.close(); },
  };
}
