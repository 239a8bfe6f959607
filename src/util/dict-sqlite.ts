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
 * Query escapes (db_common.c): %% a literal %; %s the key; %u the local part of user@domain
 * (the whole key when it has no @); %d the domain (the query is skipped — not found — when the
 * key has no domain); %1..%9 the domain labels from the right (%1 = top-level domain); the
 * upper-case %S %U %D are the same in a query. Every value is SQL-quoted ('' for ').
 * In result_format the lower-case escapes refer to the result and the upper-case ones to the key.
 *
 * Each row's first column is one result; results are joined with commas (NULL and empty values
 * are skipped). More rows than expansion_limit is a temporary error, as Postfix. A broken
 * query is a configuration error naming the .cf file.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { isAbsolute, dirname, join } from 'node:path';
import { DictError, type Dict } from './dict.ts';
import { errnoText, logicalLines, readSourceFile, splitBraceList, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

/** Parse a Postfix parameter file (`name = value`). */
export function parseCfFile(text: string, file: string, warn: (m: string) => void): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of logicalLines(text, file, warn)) {
    const eq = l.text.indexOf('=');
    if (eq < 0) throw new DictError('config', `${file}, line ${l.line}: missing '=' after attribute name: "${l.text}"`);
    out.set(l.text.slice(0, eq).trim(), l.text.slice(eq + 1).trim());
  }
  return out;
}

const sqlQuote = (s: string) => s.replace(/'/g, "''");

/** The parts of a key or result for the % escapes. */
function addrParts(v: string): { user: string; domain?: string } {
  const at = v.lastIndexOf('@');
  return at < 0 ? { user: v } : { user: v.slice(0, at), domain: v.slice(at + 1) };
}

/** Check a template for unknown escapes (db_common_check). */
function checkTemplate(t: string, file: string, param: string): void {
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== '%') continue;
    const c = t[++i];
    if (c === undefined || !'%suUdDS123456789'.includes(c)) {
      throw new DictError('config', `${file}: invalid ${param} template: unknown escape "%${c ?? ''}" in "${t}"`);
    }
  }
}

/**
 * db_common_expand: returns undefined when the template cannot be expanded for this value
 * (the query is suppressed / the result skipped).
 */
export function expandTemplate(t: string, value: string, key: string | undefined, quote: (s: string) => string): string | undefined {
  const v = addrParts(value);
  const k = key === undefined ? v : addrParts(key);
  let out = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i]!;
    if (c !== '%') { out += c; continue; }
    const e = t[++i]!;
    const src = e === 'S' || e === 'U' || e === 'D' ? k : v;
    const whole = e === 'S' ? (key ?? value) : value;
    switch (e) {
      case '%': out += '%'; break;
      case 's': case 'S': out += quote(whole); break;
      case 'u': case 'U':
        if (src.domain !== undefined && src.user === '') return undefined;
        out += quote(src.user);
        break;
      case 'd': case 'D':
        if (!src.domain) return undefined;
        out += quote(src.domain);
        break;
      default: {   // %1..%9: domain labels from the right
        if (!v.domain) return undefined;
        const labels = v.domain.split('.');
        const n = Number(e);
        if (n > labels.length) return undefined;
        out += quote(labels[labels.length - n]!);
      }
    }
  }
  return out;
}

export async function openSqliteDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const cf = tablePath(name, flags);
  const warn = warnFn(flags);
  const p = parseCfFile(readSourceFile(cf), cf, warn);
  const dbpath = p.get('dbpath');
  if (!dbpath) throw new DictError('config', `${cf}: missing "dbpath" parameter`);
  let query = p.get('query');
  if (!query) {
    const table = p.get('table'), select = p.get('select_field'), where = p.get('where_field');
    if (!table || !select || !where) {
      throw new DictError('config', `${cf}: missing "query" parameter (or the old table, select_field and where_field)`);
    }
    query = `SELECT ${select} FROM ${table} WHERE ${where} = '%s' ${p.get('additional_conditions') ?? ''}`.trim();
  }
  const resultFormat = p.get('result_format') ?? p.get('result_filter') ?? '%s';
  checkTemplate(query, cf, 'query');
  checkTemplate(resultFormat, cf, 'result_format');
  const limitText = p.get('expansion_limit') ?? '0';
  if (!/^\d+$/.test(limitText)) throw new DictError('config', `${cf}: bad expansion_limit value: "${limitText}"`);
  const limit = Number(limitText);
  const domains = p.has('domain') ? new Set(splitBraceList(p.get('domain')!).items.map((d) => d.toLowerCase())) : undefined;
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
      if (domains) {
        const d = addrParts(key).domain;
        if (d === undefined || !domains.has(d)) return undefined;
      }
      const sql = expandTemplate(query, key, undefined, sqlQuote);
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
      const results: string[] = [];
      for (const row of rows) {
        const first = Object.values(row)[0];
        if (first === null || first === undefined) continue;
        const v = first instanceof Uint8Array ? Buffer.from(first).toString('utf8') : String(first);
        if (v === '') continue;
        const r = expandTemplate(resultFormat, v, key, (s) => s);
        if (r === undefined) continue;
        if (limit > 0 && results.length >= limit) {
          throw new DictError('retry', `${cf}: Expansion limit exceeded for key: '${key}'`);
        }
        results.push(r);
      }
      return results.length ? results.join(',') : undefined;
    },
    close: async () => { db.close(); },
  };
}
