/**
 * dict-db-common - what the network tables (pgsql:, mysql:, ldap:) share, after Postfix
 * global/db_common.c and cfg_parser.c: reading their parameter file, the `%` templates of
 * `query`/`query_filter`/`search_base`/`result_format`, the `domain` filter and the
 * `expansion_limit` on results.
 *
 * Templates (db_common_parse/db_common_expand):
 *   %%  a literal %
 *   %s  the whole key (query) / the result value (result_format)
 *   %u  the local part of a user@domain key (query) or value (result); the whole string without @
 *   %d  the domain of the key (query) / value (result); a key or value without one is skipped
 *   %S %U %D  the same, always of the lookup key (in result_format too)
 *   %1..%9  the non-empty domain labels of the key from the right (%1 = top-level); a key with
 *           fewer labels than the highest one used is skipped
 * As in Postfix the needs of every template of a table are added up: a table whose result_format
 * uses %D skips keys without a domain before any query. "Skipped" means not found, never an error.
 * Each substituted piece goes through the table's quoting function (SQL literal escaping by the
 * driver's rules, RFC 4515 for LDAP filters, RFC 4514 for DNs): a key never becomes syntax.
 *
 * `domain = example.com, example.net` (Postfix string_list: names, !name to exclude, matched
 * case-insensitively) limits the lookups to keys user@listed-domain; other keys are not found
 * without asking the database.
 *
 * Results: each non-empty value is expanded with result_format and appended with a comma; NULL
 * values are skipped silently and empty ones with Postfix's warning; more results than
 * expansion_limit (0 = no limit) is a temporary error, as in Postfix.
 */
import { DictError } from './dict.ts';
import { logicalLines, splitBraceList } from './dict-source.ts';

/** Parse a Postfix parameter file (`name = value`, main.cf syntax); cfg_parser_alloc(). */
export function parseCfFile(text: string, file: string, warn: (m: string) => void): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of logicalLines(text, file, warn)) {
    const eq = l.text.indexOf('=');
    if (eq < 0) throw new DictError('config', `${file}, line ${l.line}: missing '=' after attribute name: "${l.text}"`);
    out.set(l.text.slice(0, eq).trim(), l.text.slice(eq + 1).trim());
  }
  return out;
}

/** Typed access to a parsed parameter file, with Postfix's cfg_get_str/int/bool rules. */
export class CfParams {
  readonly file: string;
  readonly map: Map<string, string>;
  constructor(file: string, map: Map<string, string>) { this.file = file; this.map = map; }

  str(name: string, dflt: string): string;
  str(name: string, dflt?: string): string | undefined;
  str(name: string, dflt?: string): string | undefined {
    return this.map.get(name) ?? dflt;
  }

  /** An integer ≥ min (and ≤ max when given); anything else is a configuration error. */
  int(name: string, dflt: number, min = 0, max = 0): number {
    const v = this.map.get(name);
    if (v === undefined) return dflt;
    if (!/^-?\d+$/.test(v)) throw new DictError('config', `${this.file}: bad numerical configuration: ${name} = ${v}`);
    const n = Number(v);
    if (n < min) throw new DictError('config', `${this.file}: invalid ${name} parameter value ${n} < ${min}`);
    if (max > 0 && n > max) throw new DictError('config', `${this.file}: invalid ${name} parameter value ${n} > ${max}`);
    return n;
  }

  /** yes/no/true/false (case-insensitive); anything else is a configuration error. */
  bool(name: string, dflt: boolean): boolean {
    const v = this.map.get(name);
    if (v === undefined) return dflt;
    if (/^(yes|true)$/i.test(v)) return true;
    if (/^(no|false)$/i.test(v)) return false;
    throw new DictError('config', `${this.file}: bad boolean configuration: ${name} = ${v}`);
  }

  /** A list split on commas and white space (Postfix CHARS_COMMA_SP). */
  list(name: string, dflt = ''): string[] {
    return (this.map.get(name) ?? dflt).split(/[\s,]+/).filter((s) => s !== '');
  }
}

/** How each substituted value is quoted for the target language. */
export type QuoteFn = (s: string) => string;

const KEY_DOMAIN = 1, KEY_USER = 2, VALUE_DOMAIN = 4, VALUE_USER = 8;

/** The parsed templates of one table (Postfix's DB_COMMON_CTX). */
export class DbTemplates {
  private flags = 0;
  private nparts = 0;
  private domains: { name: string; negate: boolean }[] | undefined;
  private readonly label: string;
  private readonly warn: (m: string) => void;

  /** `label` is "type:name", used in warnings. */
  constructor(label: string, warn: (m: string) => void) { this.label = label; this.warn = warn; }

  /**
   * Check a template and add its needs to the table's (db_common_parse). Returns true when the
   * template depends on the key or value (has an expansion other than %%).
   */
  parse(format: string, query: boolean, file: string, param: string): boolean {
    let dynamic = false;
    for (let i = 0; i < format.length; i++) {
      if (format[i] !== '%') continue;
      const c = format[++i];
      switch (c) {
        case '%': break;
        case 'u': this.flags |= query ? KEY_USER : VALUE_USER; dynamic = true; break;
        case 'd': this.flags |= query ? KEY_DOMAIN : VALUE_DOMAIN; dynamic = true; break;
        case 's': case 'S': dynamic = true; break;
        case 'U': this.flags |= KEY_USER; dynamic = true; break;
        case 'D': this.flags |= KEY_DOMAIN; dynamic = true; break;
        default:
          if (c !== undefined && c >= '1' && c <= '9') {
            this.nparts = Math.max(this.nparts, Number(c));
            this.flags |= KEY_DOMAIN;
            dynamic = true;
            break;
          }
          throw new DictError('config', `${file}: invalid ${param} template: "${format}" (unknown escape "%${c ?? ''}")`);
      }
    }
    return dynamic;
  }

  /** The `domain` parameter (db_common_parse_domain). */
  parseDomain(text: string | undefined, file = this.label): void {
    if (text === undefined || text.trim() === '') return;
    const { items } = splitBraceList(text);
    const odd = items.find((d) => d.includes(':') || d.startsWith('/') || d.startsWith('{'));
    if (odd) {
      // Postfix also takes /file and type:table here; a silent mismatch would skip real keys.
      throw new DictError('config', `${file}: domain = ${text}: "${odd}": only domain names (and !name) are supported, not files or tables`);
    }
    this.domains = items.map((d) => d.startsWith('!') ? { name: d.slice(1).toLowerCase(), negate: true } : { name: d.toLowerCase(), negate: false });
  }

  /**
   * The key a lookup asks with: case-folded unless the table says not to; undefined when no
   * entry can match (a NUL byte, or outside the `domain` list). A closed table is a
   * temporary error.
   */
  lookupKey(rawKey: string, fold: boolean, closed: boolean): string | undefined {
    if (closed) throw new DictError('retry', `${this.label}: table is closed`);
    const key = fold ? rawKey.toLowerCase() : rawKey;
    if (key.includes('\0') || !this.checkDomain(key)) return undefined;
    return key;
  }

  /** db_common_check_domain: false when a domain list is set and the key is not in it. */
  checkDomain(key: string): boolean {
    if (!this.domains) return true;
    const at = key.lastIndexOf('@');
    if (at <= 0) return false;
    const d = key.slice(at + 1).toLowerCase();
    for (const m of this.domains) if (m.name === d) return !m.negate;
    return false;
  }

  /**
   * Expand one template (db_common_expand). `key` is undefined for a query template (`value` is
   * the lookup key) and the lookup key for result_format (`value` is the result). Returns
   * undefined when the key or value lacks a part the table needs: skip the query or the result.
   */
  expand(format: string, value: string | null | undefined, key: string | undefined, quote?: QuoteFn): string | undefined {
    if (value === null || value === undefined) return undefined;
    if (value === '') {
      if (key !== undefined) this.warn(`table "${this.label}": empty lookup result for: "${key}" -- ignored`);
      else this.warn(`table "${this.label}": empty query string -- ignored`);
      return undefined;
    }
    const q = quote ?? ((s: string) => s);
    const at = (s: string) => { const i = s.lastIndexOf('@'); return i < 0 ? undefined : i; };
    let vAt: number | undefined;
    let kAt: number | undefined;
    if (key !== undefined) {
      if (this.flags & (VALUE_DOMAIN | VALUE_USER)) vAt = at(value);
      if ((vAt === undefined || vAt === value.length - 1) && (this.flags & VALUE_DOMAIN)) return undefined;
      if (vAt === 0 && (this.flags & VALUE_USER)) return undefined;
      if (this.flags & (KEY_DOMAIN | KEY_USER)) kAt = at(key);
      if (((kAt === undefined || kAt === key.length - 1) && (this.flags & KEY_DOMAIN)) || (kAt === 0 && (this.flags & KEY_USER))) {
        this.warn(`${this.label}: lookup key '${value}' skipped after query`);
        return undefined;
      }
    } else {
      if (this.flags & (KEY_DOMAIN | KEY_USER)) vAt = at(value);
      if (((vAt === undefined || vAt === value.length - 1) && (this.flags & KEY_DOMAIN)) || (vAt === 0 && (this.flags & KEY_USER))) return undefined;
    }
    let parts: string[] | undefined;
    if (this.nparts > 0) {
      const src = key !== undefined ? (kAt === undefined ? '' : key.slice(kAt + 1)) : (vAt === undefined ? '' : value.slice(vAt + 1));
      // Postfix argv_split(".") keeps the non-empty labels only ("a..b" has two).
      parts = src.split('.').filter((p) => p !== '');
      if (parts.length < this.nparts) return undefined;
    }
    const vUser = vAt === undefined ? value : value.slice(0, vAt);
    const vDomain = vAt === undefined ? undefined : value.slice(vAt + 1);
    const kUser = key === undefined ? vUser : kAt === undefined ? key : key.slice(0, kAt);
    const kDomain = key === undefined ? vDomain : kAt === undefined ? undefined : key.slice(kAt + 1);
    let out = '';
    for (let i = 0; i < format.length; i++) {
      const c = format[i]!;
      if (c !== '%') { out += c; continue; }
      const e = format[++i]!;
      switch (e) {
        case '%': out += '%'; break;
        case 's': out += q(value); break;
        case 'u': out += q(vUser); break;
        case 'd': out += q(vDomain ?? ''); break;
        case 'S': out += q(key ?? value); break;
        case 'U': out += q(kUser); break;
        case 'D': out += q(kDomain ?? ''); break;
        default: out += q(parts![parts!.length - Number(e)]!);
      }
    }
    return out;
  }
}

/** Collects result values as Postfix does: comma-joined, with expansion_limit. */
export class DbResult {
  private readonly out: string[] = [];
  private readonly t: DbTemplates;
  private readonly format: string;
  private readonly key: string;
  private readonly limit: number;
  private readonly file: string;

  constructor(t: DbTemplates, format: string, key: string, limit: number, file: string) {
    this.t = t; this.format = format; this.key = key; this.limit = limit; this.file = file;
  }

  /** Add one value (null/undefined: NULL, skipped). Throws DictError('retry') past the limit. */
  add(value: string | null | undefined): void {
    const r = this.t.expand(this.format, value, this.key);
    if (r === undefined) return;
    if (this.limit > 0 && this.out.length >= this.limit) {
      throw new DictError('retry', `${this.file}: Expansion limit exceeded for key: '${this.key}'`);
    }
    this.out.push(r);
  }

  get value(): string | undefined { return this.out.length ? this.out.join(',') : undefined; }
}

/** SQL string-literal body for PostgreSQL with standard_conforming_strings = on (PQescapeStringConn). */
export const pgsqlQuote: QuoteFn = (s) => s.replace(/'/g, "''");

/** mysql_real_escape_string(): backslash escapes, for the default sql_mode. */
export const mysqlQuote: QuoteFn = (s) => s.replace(/[\0\n\r\\'"\x1a]/g, (c) => {
  switch (c) {
    case '\0': return '\\0';
    case '\n': return '\\n';
    case '\r': return '\\r';
    case '\x1a': return '\\Z';
    default: return '\\' + c;
  }
});

/** mysql_real_escape_string_quote() under sql_mode NO_BACKSLASH_ESCAPES: quotes are doubled. */
export const mysqlQuoteNoBackslash: QuoteFn = (s) => s.replace(/'/g, "''").replace(/"/g, '""');

/**
 * An LDAP filter assertion value (RFC 4515 §3): `*`, `(`, `)`, `\` and NUL as \XX. Postfix
 * (rfc2254_quote) escapes the first four; NUL cannot reach it in a C string.
 */
export const ldapFilterQuote: QuoteFn = (s) => s.replace(/[*()\\\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase());

/** An attribute value in a DN (Postfix rfc2253_quote): blanks and `"#+,;<>\` as \XX, plus NUL. */
export const ldapDnQuote: QuoteFn = (s) => s.replace(/[ \t"#+,;<>\\\0]/g, (c) => '\\' + c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase());
