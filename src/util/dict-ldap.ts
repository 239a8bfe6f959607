/**
 * dict-ldap - the `ldap:/etc/postfix/file.cf` table (ldap_table(5), Postfix global/dict_ldap.c)
 * on the `ldapts` client.
 *
 * Parameters: server_host (LDAP URLs or host[:port], default localhost; tried in order, as
 * libldap does), server_port (389), search_base, scope (sub|one|base), query_filter (default
 * `(mailacceptinggeneralid=%s)`), result_format (or result_filter), domain, result_attribute
 * (default maildrop), special_result_attribute (DN or LDAP URL values, searched in turn),
 * terminal_result_attribute, leaf_result_attribute, bind (yes|no; sasl is not supported),
 * bind_dn, bind_pw, timeout (10 s, for connecting and each search), size_limit (default:
 * expansion_limit), expansion_limit, recursion_limit (1000), dereference (0-3), start_tls,
 * tls_ca_cert_file, tls_ca_cert_dir, tls_cert, tls_key, tls_require_cert, tls_cipher_suite.
 * `version` is accepted but Postern always speaks LDAPv3 (Postfix's default of 2 is refused
 * by current OpenLDAP servers anyway). cache, cache_expiry, cache_size, debuglevel,
 * chase_referrals: accepted and ignored.
 *
 * Quoting: the key's pieces are escaped per RFC 4515 in query_filter (`*`, `(`, `)`, `\`, NUL)
 * and per RFC 4514 in search_base — a key never changes the shape of the filter.
 *
 * Results (dict_ldap_get_values): for every entry, in the server's order, the values of its
 * result attributes go through result_format; the values of special_result_attribute are DNs
 * (or LDAP URLs) whose entries are read in turn, up to recursion_limit; an entry with a
 * terminal_result_attribute gives only those values and is not followed; leaf_result_attribute
 * values are used only from entries that have no special attribute. A DN that does not exist is
 * skipped with a warning.
 *
 * Errors are temporary (DictError 'retry'): a server that cannot be reached, bound or searched,
 * a timeout, too many entries (size_limit) or results (expansion_limit), recursion too deep, a
 * static search_base that does not exist. A search_base that uses the key and does not exist
 * means not found. The connection is dropped after an error and made again at the next lookup.
 *
 * Connections are shared: every ldap: table of the process with the same servers, bind and TLS
 * settings uses one connection (as Postfix's connection cache), which carries many searches at
 * once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Client, NoSuchObjectError, ResultCodeError, type Entry } from 'ldapts';
import { DictError, type Dict } from './dict.ts';
import { CfParams, DbResult, DbTemplates, ldapDnQuote, ldapFilterQuote, parseCfFile } from './dict-db-common.ts';
import { Limiter, sharedPool, unsharePool } from './dict-db-pool.ts';
import { readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

type Scope = 'base' | 'one' | 'sub';
const DEREF = ['never', 'search', 'find', 'always'] as const;

interface LdapSettings {
  urls: string[]; bind: boolean; bindDn: string; bindPw: string; startTls: boolean;
  tls: ConnectionOptions | undefined; timeoutMs: number;
}

/** One shared connection (Postfix's conn_hash entry). */
class LdapConn {
  private readonly s: LdapSettings;
  private readonly warn: (m: string) => void;
  private current: Promise<Client> | undefined;
  /**
   * Searches in flight on the connection: slapd closes a connection with more pending operations
   * than conn_max_pending (100 for anonymous sessions); the rest wait here.
   */
  readonly limiter = new Limiter(64);

  constructor(s: LdapSettings, warn: (m: string) => void) { this.s = s; this.warn = warn; }

  /** A connected, bound client; the servers are tried in order. */
  get(): Promise<Client> {
    if (!this.current) {
      const p = this.connect();
      this.current = p;
      p.catch(() => { if (this.current === p) this.current = undefined; });
    }
    return this.current;
  }

  private async connect(): Promise<Client> {
    let last: Error | undefined;
    for (const url of this.s.urls) {
      // tlsOptions make ldapts speak TLS from the start: only for ldaps:// (StartTLS is asked below).
      const c = new Client({ url, timeout: this.s.timeoutMs, connectTimeout: this.s.timeoutMs, strictDN: false,
        tlsOptions: /^ldaps:/i.test(url) ? this.s.tls : undefined });
      try {
        if (this.s.startTls) await c.startTLS(this.s.tls ?? {});
        if (this.s.bind) await c.bind(this.s.bindDn, this.s.bindPw);
        else {
          // No bind: read the root DSE to know the server answers (an LDAP refusal is an answer).
          await c.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'], sizeLimit: 1 })
            .catch((e: unknown) => { if (!(e instanceof ResultCodeError)) throw e; });
        }
        return c;
      } catch (e) {
        last = e as Error;
        this.warn(`dict_ldap_connect: Unable to connect to or bind to LDAP server ${url} with dn ${this.s.bindDn || 'empty or implicit'}: ${last.message}`);
        c.unbind().catch(() => {});
      }
    }
    throw last ?? new Error('no LDAP server');
  }

  /** Drop the connection after an error; the next lookup connects again. */
  drop(c: Client): void {
    const cur = this.current;
    if (!cur) return;
    cur.then((x) => {
      if (x !== c) return;
      if (this.current === cur) this.current = undefined;
      x.unbind().catch(() => {});
    }, () => {});
  }

  end(): void {
    const cur = this.current;
    this.current = undefined;
    cur?.then((c) => c.unbind().catch(() => {}), () => {});
  }
}

/** RFC 4512 §2.5: attribute descriptions compare case-insensitively; ";option" is a subtype. */
function attrSubtype(a1: string, a2: string): number {
  const x = a1.toLowerCase(), y = a2.toLowerCase();
  if (x === y || y.startsWith(x + ';')) return 1;
  if (x.startsWith(y + ';')) return -1;
  return 0;
}

/** An LDAP URL value (RFC 4516): ldap://host/dn?attrs?scope?filter. */
function parseLdapUrl(u: string): { dn: string; attrs: string[]; scope: Scope; filter: string } | undefined {
  const m = /^ldaps?:\/\/[^/]*\/?([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?([^?]*))?)?)?$/i.exec(u);
  if (!m) return undefined;
  const scope = (m[3] || 'base').toLowerCase();
  if (!['base', 'one', 'sub'].includes(scope)) return undefined;
  return {
    dn: decodeURIComponent(m[1] ?? ''), attrs: (m[2] ? decodeURIComponent(m[2]) : '').split(',').filter(Boolean),
    scope: scope as Scope, filter: m[4] ? decodeURIComponent(m[4]) : '(objectClass=*)',
  };
}

function tlsOptions(p: CfParams): ConnectionOptions | undefined {
  const any = ['tls_ca_cert_file', 'tls_ca_cert_dir', 'tls_cert', 'tls_key', 'tls_require_cert', 'tls_cipher_suite'].some((n) => p.map.has(n));
  if (!any) return undefined;
  const ca: string[] = [];
  const f = p.str('tls_ca_cert_file');
  if (f) ca.push(readFileSync(f, 'utf8'));
  const d = p.str('tls_ca_cert_dir');
  if (d) for (const n of readdirSync(d)) if (/\.(pem|crt|\d)$/.test(n)) ca.push(readFileSync(join(d, n), 'utf8'));
  const cert = p.str('tls_cert'), key = p.str('tls_key');
  return {
    ca: ca.length ? ca : undefined, cert: cert ? readFileSync(cert, 'utf8') : undefined, key: key ? readFileSync(key, 'utf8') : undefined,
    rejectUnauthorized: p.bool('tls_require_cert', false), ciphers: p.str('tls_cipher_suite'),
  };
}

function serverUrls(p: CfParams): string[] {
  const port = p.int('server_port', 389, 0);
  return p.list('server_host', 'localhost').map((h) => {
    if (/^ldaps?:\/\//i.test(h)) return h.replace(/\/+$/, '');
    if (/^ldapi:/i.test(h)) throw new DictError('config', `${p.file}: server_host ${h}: ldapi:// is not supported`);
    return h.includes(':') ? `ldap://${h}` : `ldap://${h}:${port}`;
  });
}

export async function openLdapDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const cf = tablePath(name, flags);
  const warn = warnFn(flags);
  const p = new CfParams(cf, parseCfFile(readSourceFile(cf), cf, warn));
  const label = `ldap:${name}`;
  const scopeText = p.str('scope', 'sub').toLowerCase();
  let scope: Scope = 'sub';
  if (scopeText === 'one' || scopeText === 'base' || scopeText === 'sub') scope = scopeText;
  else warn(`dict_ldap_open: ${cf}: Unrecognized value ${scopeText} specified for scope; using sub`);
  const base = p.str('search_base', '');
  const filter = p.str('query_filter', '(mailacceptinggeneralid=%s)');
  const resultFormat = p.str('result_format') ?? p.str('result_filter', '%s');
  const t = new DbTemplates(label, warn);
  const dynamicBase = t.parse(base, true, cf, 'search_base');
  if (!t.parse(filter, true, cf, 'query_filter')) warn(`dict_ldap_open: ${cf}: Fixed query_filter ${filter} is probably useless`);
  t.parse(resultFormat, false, cf, 'result_format');
  t.parseDomain(p.str('domain'), cf);
  const terminal = p.list('terminal_result_attribute');
  const leaf = p.list('leaf_result_attribute');
  const regular = p.list('result_attribute', 'maildrop');
  const special = p.list('special_result_attribute');
  const attrs = [...terminal, ...leaf, ...regular, ...special];
  const numAttributes = terminal.length + leaf.length + regular.length;
  const bindText = p.str('bind', 'yes').toLowerCase();
  if (bindText === 'sasl') throw new DictError('config', `${cf}: bind = sasl is not supported (use a simple bind: bind_dn, bind_pw)`);
  if (!/^(yes|no|true|false)$/.test(bindText)) throw new DictError('config', `${cf}: unsupported parameter value: bind = ${bindText}`);
  const recursionLimit = p.int('recursion_limit', 1000, 1);
  const expansionLimit = p.int('expansion_limit', 0);
  const sizeLimit = p.int('size_limit', expansionLimit);
  let deref = p.int('dereference', 0);
  if (deref > 3) { warn(`dict_ldap_open: ${cf} Unrecognized value ${deref} specified for dereference; using 0`); deref = 0; }
  for (const n of ['cache', 'cache_expiry', 'cache_size']) if (p.map.has(n)) warn(`dict_ldap_open: ${cf} ignoring ${n}`);
  const s: LdapSettings = {
    urls: serverUrls(p), bind: /^(yes|true)$/.test(bindText), bindDn: p.str('bind_dn', ''), bindPw: p.str('bind_pw', ''),
    startTls: p.bool('start_tls', false), tls: tlsOptions(p), timeoutMs: p.int('timeout', 10, 1) * 1000,
  };
  const poolKey = `ldap\0${JSON.stringify([s.urls, s.bind, s.bind ? s.bindDn : '', s.bind ? s.bindPw : '', s.startTls, p.map.get('tls_ca_cert_file'),
    p.map.get('tls_ca_cert_dir'), p.map.get('tls_cert'), p.map.get('tls_key'), p.map.get('tls_require_cert'), s.timeoutMs])}`;
  const conn = sharedPool(poolKey, () => new LdapConn(s, warn));
  const fold = flags.foldCase !== false;
  const inflight = new Map<string, Promise<string | undefined>>();
  const searchOpts = (attributes: string[], sc: Scope, f: string) => ({
    scope: sc, filter: f.startsWith('(') ? f : `(${f})`, attributes, sizeLimit: sizeLimit ? sizeLimit + 1 : undefined,
    timeLimit: Math.ceil(s.timeoutMs / 1000), derefAliases: DEREF[deref],
  });

  /** dict_ldap_get_values: the values of the entries, following special attributes. */
  async function getValues(c: Client, entries: Entry[], key: string, out: DbResult, depth: number): Promise<void> {
    let count = 0;
    for (const entry of entries) {
      if (sizeLimit && ++count > sizeLimit) throw new DictError('retry', `${cf}: Query size limit (${sizeLimit}) exceeded`);
      const has = (a: string) => Object.keys(entry).some((k) => k !== 'dn' && attrSubtype(a, k) > 0 && [entry[k]].flat().length > 0);
      const isTerminal = terminal.some(has);
      const isLeaf = isTerminal || leaf.length === 0 ? true : !special.some(has);
      for (const [attr, raw] of Object.entries(entry)) {
        if (attr === 'dn') continue;
        const vals = [raw].flat().map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
        if (vals.length === 0) continue;
        const i = attrs.findIndex((a) => attrSubtype(a, attr) > 0);
        if (i < 0) continue;
        if (i < numAttributes || isTerminal) {
          if ((isTerminal && i >= terminal.length) || (!isLeaf && i < terminal.length + leaf.length)) continue;
          for (const v of vals) out.add(v);
        } else if (depth < recursionLimit) {
          for (const v of vals) {
            let sub: Entry[];
            try {
              if (/^ldaps?:\/\//i.test(v)) {
                const u = parseLdapUrl(v);
                if (!u) throw new DictError('retry', `${cf}: malformed URL ${v}`);
                const want = u.attrs.length === 0 ? attrs : u.attrs.flatMap((a1) => attrs.flatMap((a2) => {
                  const rel = attrSubtype(a1, a2);
                  return rel > 0 ? [a2] : rel < 0 ? [a1] : [];
                }));
                if (want.length === 0) continue;
                sub = (await c.search(u.dn, searchOpts(want, u.scope, u.filter))).searchEntries;
              } else {
                sub = (await c.search(v, searchOpts(attrs, 'base', 'objectclass=*'))).searchEntries;
              }
            } catch (e) {
              if (e instanceof NoSuchObjectError) { warn(`dict_ldap_get_values[${depth}]: DN ${v} not found, skipping`); continue; }
              throw e;
            }
            await getValues(c, sub, key, out, depth + 1);
          }
        } else {
          throw new DictError('retry', `${cf}: Recursion limit exceeded for special attribute ${attr}=${vals[0]}`);
        }
      }
    }
  }

  async function lookupOnce(key: string, b: string, f: string): Promise<string | undefined> {
    for (let attempt = 0; ; attempt++) {
      let c: Client;
      try {
        c = await conn.get();
      } catch {
        throw new DictError('retry', `${label}: lookup failed: no LDAP server answered (see the log for why)`);
      }
      const out = new DbResult(t, resultFormat, key, expansionLimit, cf);
      try {
        await conn.limiter.run(async () => {
          const r = await c.search(b, searchOpts(attrs, scope, f));
          // One more entry than size_limit asked for: more means the server would have said
          // sizeLimitExceeded (an error in Postfix).
          if (sizeLimit && r.searchEntries.length > sizeLimit) throw new DictError('retry', `${cf}: Query size limit (${sizeLimit}) exceeded`);
          await getValues(c, r.searchEntries, key, out, 1);
        });
        return out.value;
      } catch (e) {
        if (e instanceof NoSuchObjectError) {
          if (dynamicBase) return undefined;
          warn(`dict_ldap_lookup: ${cf}: Search base '${b}' not found: ${e.message}`);
          throw new DictError('retry', `${label}: lookup failed: search base not found (see the log)`);
        }
        if (e instanceof DictError) { warn(e.message); throw new DictError('retry', `${label}: lookup failed: ${e.message.replace(`${cf}: `, '')}`); }
        warn(`dict_ldap_lookup: ${cf}: Search error: ${(e as Error).message}`);
        conn.drop(c);
        // LDAP_SERVER_DOWN: Postfix reconnects once and searches again.
        if (attempt === 0 && !c.isConnected) continue;
        throw new DictError('retry', `${label}: lookup failed: search error (see the log for why)`);
      }
    }
  }

  let closed = false;
  return {
    type: 'ldap',
    name,
    async lookup(rawKey) {
      const key = t.lookupKey(rawKey, fold, closed);
      if (key === undefined) return undefined;
      const b = t.expand(base, key, undefined, ldapDnQuote) ?? (base === '' ? '' : undefined);
      if (b === undefined) return undefined;
      const f = t.expand(filter, key, undefined, ldapFilterQuote);
      if (f === undefined) return undefined;
      let pending = inflight.get(key);
      if (!pending) {
        pending = lookupOnce(key, b, f).finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return pending;
    },
    async close() {
      if (closed) return;
      closed = true;
      unsharePool(poolKey);
    },
  };
}
