/**
 * db-ldap - Dovecot's ldap passdb and userdb (auth/db-ldap.c, passdb-ldap.c, userdb-ldap.c) with
 * the settings of dovecot-ldap.conf.ext, on the `ldapts` client:
 *
 *   hosts = ldap1.example.com ldap2.example.com:389     (or uris = ldap://... ldaps://...)
 *   dn = cn=dovecot,dc=example,dc=com                   dnpass = secret
 *   tls = no                                            (yes: StartTLS; tls_ca_cert_file, tls_require_cert)
 *   base = ou=people,dc=example,dc=com                  scope = subtree | onelevel | base
 *   deref = never | searching | finding | always
 *   user_filter = (&(objectClass=posixAccount)(uid=%u))
 *   user_attrs = homeDirectory=home,uidNumber=uid,gidNumber=gid
 *   pass_filter = (&(objectClass=posixAccount)(uid=%u))
 *   pass_attrs = uid=user,userPassword=password
 *   iterate_filter = (objectClass=posixAccount)         iterate_attrs = uid=user
 *   default_pass_scheme = CRYPT
 *   auth_bind = no                                      (yes: check the password by binding as the user)
 *   auth_bind_userdn = uid=%n,ou=people,dc=example,dc=com   (bind without searching for the DN)
 *   ldap_version = 3
 *
 * Attribute lists: `ldapAttribute=field` pairs separated by commas; a bare `ldapAttribute` keeps
 * its name; `=field=template` sets a field from a template in which `%{ldap:attr}` is the
 * attribute's value (and %u %n %d the user). A multi-valued attribute gives its first value.
 * `%u %n %d` (and %L/%U forms) in filters and base are escaped per RFC 4515 / RFC 4514, so a
 * login name never changes a filter.
 *
 * auth_bind = yes: the passdb finds the user's DN with pass_filter (bound as dn/dnpass), then
 * checks the password by binding as that DN on a separate connection; the DN search is skipped
 * with auth_bind_userdn. A bind refused for bad credentials is a password mismatch; anything else
 * (server down, timeout) a temporary failure.
 *
 * Any server failure throws: the directory answers "temporary failure", never "unknown user".
 * The lookup connection is shared by every passdb/userdb of the same settings.
 */
import { readFileSync } from 'node:fs';
import { Client, InvalidCredentialsError, NoSuchObjectError, type Entry } from 'ldapts';
import { ConfigError } from '../global/config-error.ts';
import { readConfExt } from './auth-conf-ext.ts';
import { ldapDnQuote, ldapFilterQuote } from '../util/dict-db-common.ts';
import { Limiter, withDeadline } from '../util/dict-db-pool.ts';
import { logger } from '../util/msg.ts';
import type { Passdb, PassdbEntry, Userdb } from './auth-db.ts';
import { expandParts, splitUser } from './auth-var-expand.ts';

const log = logger('auth');
const TIMEOUT_MS = 10_000;

export interface LdapConf {
  file: string;
  urls: string[];
  dn: string; dnpass: string;
  startTls: boolean; tlsCa?: string; tlsRequireCert: boolean;
  base: string; scope: 'sub' | 'one' | 'base'; deref: 'never' | 'search' | 'find' | 'always';
  userFilter: string; userAttrs: string;
  passFilter: string; passAttrs: string;
  iterateFilter: string; iterateAttrs: string;
  defaultPassScheme: string;
  authBind: boolean; authBindUserdn: string;
}

const SETTINGS = new Set(['hosts', 'uris', 'dn', 'dnpass', 'tls', 'tls_ca_cert_file', 'tls_ca_cert_dir', 'tls_cert_file', 'tls_key_file',
  'tls_require_cert', 'tls_cipher_suite', 'base', 'scope', 'deref', 'user_filter', 'user_attrs', 'pass_filter', 'pass_attrs',
  'iterate_filter', 'iterate_attrs', 'default_pass_scheme', 'auth_bind', 'auth_bind_userdn', 'ldap_version', 'sasl_bind',
  'blocking', 'debug_level', 'ldaprc_path']);

export function parseLdapConf(text: string, file: string): LdapConf {
  const v: Record<string, string> = {};
  readConfExt(text, file, (key, value, start) => {
    if (!SETTINGS.has(key)) throw new ConfigError(file, start, `unknown setting "${key}"`);
    v[key] = value;
  });
  const yes = (k: string) => /^(yes|y|1|true)$/i.test(v[k] ?? '');
  if (yes('sasl_bind')) throw new ConfigError(file, 0, 'sasl_bind = yes is not supported (use dn/dnpass)');
  if (v.ldap_version && v.ldap_version !== '3') throw new ConfigError(file, 0, `ldap_version = ${v.ldap_version}: only 3 is supported`);
  const urls = v.uris ? v.uris.split(/\s+/).filter(Boolean)
    : (v.hosts ?? 'localhost').split(/\s+/).filter(Boolean).map((h) => `ldap://${h.includes(':') ? h : `${h}:389`}`);
  const scopes: Record<string, LdapConf['scope']> = { subtree: 'sub', onelevel: 'one', base: 'base' };
  const scope = scopes[v.scope ?? 'subtree'];
  if (!scope) throw new ConfigError(file, 0, `scope = ${v.scope}: use subtree, onelevel or base`);
  const derefs: Record<string, LdapConf['deref']> = { never: 'never', searching: 'search', finding: 'find', always: 'always' };
  const deref = derefs[v.deref ?? 'never'];
  if (!deref) throw new ConfigError(file, 0, `deref = ${v.deref}: use never, searching, finding or always`);
  return {
    file, urls, dn: v.dn ?? '', dnpass: v.dnpass ?? '', startTls: yes('tls'),
    tlsCa: v.tls_ca_cert_file, tlsRequireCert: !/^(never|allow)$/i.test(v.tls_require_cert ?? 'demand'),
    base: v.base ?? '', scope, deref,
    userFilter: v.user_filter ?? '(&(objectClass=posixAccount)(uid=%u))',
    userAttrs: v.user_attrs ?? 'homeDirectory=home,uidNumber=uid,gidNumber=gid',
    passFilter: v.pass_filter ?? '(&(objectClass=posixAccount)(uid=%u))',
    passAttrs: v.pass_attrs ?? 'uid=user,userPassword=password',
    iterateFilter: v.iterate_filter ?? '(objectClass=posixAccount)',
    iterateAttrs: v.iterate_attrs ?? 'uid=user',
    defaultPassScheme: v.default_pass_scheme ?? 'CRYPT',
    authBind: yes('auth_bind'), authBindUserdn: v.auth_bind_userdn ?? '',
  };
}

export function loadLdapConf(file: string): LdapConf {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (err) {
    throw new ConfigError(file, 0, `cannot read LDAP settings: ${(err as Error).message}`);
  }
  return parseLdapConf(text, file);
}

interface AttrMap { ldap?: string; field: string; template?: string }

/** `uid=user,userPassword=password,=home=/var/vmail/%{ldap:mail}` → attribute → field maps. */
export function parseAttrs(text: string): AttrMap[] {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    if (s.startsWith('=')) {
      const eq = s.indexOf('=', 1);
      return eq < 0 ? { field: s.slice(1), template: '' } : { field: s.slice(1, eq), template: s.slice(eq + 1) };
    }
    const eq = s.indexOf('=');
    return eq < 0 ? { ldap: s, field: s } : { ldap: s.slice(0, eq), field: s.slice(eq + 1) };
  });
}

/** Expand %u %n %d with `quote` applied to each value (filters, DNs). */
function expandQuoted(template: string, user: string, quote: (s: string) => string): string {
  return expandParts(template, { user }).map((p) => (typeof p === 'string' ? p : quote(p.value))).join('');
}

function firstValue(entry: Entry, attr: string): string | undefined {
  const key = Object.keys(entry).find((k) => k !== 'dn' && k.toLowerCase() === attr.toLowerCase());
  if (key === undefined) return undefined;
  const v = [entry[key]!].flat()[0];
  return v === undefined ? undefined : Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
}

function mapFields(entry: Entry, maps: AttrMap[], user: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of maps) {
    if (m.ldap !== undefined) {
      const v = firstValue(entry, m.ldap);
      if (v !== undefined) out[m.field] = v;
    } else {
      // %{ldap:attr} first, then the user variables.
      const t = (m.template ?? '').replace(/%\{ldap:([^}]+)\}/g, (_x, a: string) => (firstValue(entry, a) ?? '').replace(/%/g, '%%'));
      const { local, domain } = splitUser(user);
      out[m.field] = t.replace(/%%|%[LU]?[und]|%\{(user|username|domain)\}/g, (x) => {
        if (x === '%%') return '%';
        const letter = x.startsWith('%{') ? ({ user: 'u', username: 'n', domain: 'd' } as Record<string, string>)[x.slice(2, -1)]! : x.slice(-1);
        const val = letter === 'u' ? user : letter === 'n' ? local : domain;
        return x[1] === 'L' ? val.toLowerCase() : x[1] === 'U' ? val.toUpperCase() : val;
      });
    }
  }
  return out;
}

/** The lookup connection of one dovecot-ldap.conf.ext (bound as dn/dnpass). */
export class LdapSource {
  readonly conf: LdapConf;
  private current: Promise<Client> | undefined;
  private readonly limiter = new Limiter(64);

  constructor(conf: LdapConf) { this.conf = conf; }

  private tls() {
    return { ca: this.conf.tlsCa ? [readFileSync(this.conf.tlsCa, 'utf8')] : undefined, rejectUnauthorized: this.conf.tlsRequireCert };
  }

  /** A new client connected to the first server that answers, bound as `dn` (or anonymously). */
  async connect(dn: string, pw: string): Promise<Client> {
    let last: Error | undefined;
    for (const url of this.conf.urls) {
      // tlsOptions make ldapts speak TLS from the start: only for ldaps:// (StartTLS is asked below).
      const c = new Client({ url, timeout: TIMEOUT_MS, connectTimeout: TIMEOUT_MS, strictDN: false, tlsOptions: /^ldaps:/i.test(url) ? this.tls() : undefined });
      try {
        if (this.conf.startTls) await c.startTLS(this.tls());
        await c.bind(dn, pw);
        return c;
      } catch (e) {
        c.unbind().catch(() => {});
        if (e instanceof InvalidCredentialsError) throw e;
        last = e as Error;
      }
    }
    throw last ?? new Error('no LDAP server');
  }

  private client(): Promise<Client> {
    if (!this.current) {
      const p = this.connect(this.conf.dn, this.conf.dnpass);
      this.current = p;
      p.catch(() => { if (this.current === p) this.current = undefined; });
    }
    return this.current;
  }

  /** Search; a failure drops the connection and throws (a temporary failure). */
  async search(base: string, filter: string, attributes: string[]): Promise<Entry[]> {
    let c: Client;
    try {
      c = await this.client();
    } catch (e) {
      log.error(`ldap(${this.conf.urls.join(' ')}): ${(e as Error).message} (${this.conf.file})`);
      throw new Error(`${this.conf.file}: no LDAP server answered (see the log)`);
    }
    try {
      return await this.limiter.run(async () => (await c.search(base, {
        scope: this.conf.scope, filter: filter.startsWith('(') ? filter : `(${filter})`, attributes,
        derefAliases: this.conf.deref, timeLimit: TIMEOUT_MS / 1000,
      })).searchEntries);
    } catch (e) {
      if (e instanceof NoSuchObjectError) return [];
      log.error(`ldap: search ${filter} failed: ${(e as Error).message} (${this.conf.file})`);
      if (this.current) { const cur = this.current; this.current = undefined; cur.then((x) => x.unbind().catch(() => {}), () => {}); }
      throw new Error(`${this.conf.file}: LDAP search failed (see the log)`);
    }
  }

  /** Exactly one entry for `user` (Dovecot refuses several), or undefined. */
  async one(filterTemplate: string, attrs: AttrMap[], user: string): Promise<Entry | undefined> {
    const base = expandQuoted(this.conf.base, user, ldapDnQuote);
    const filter = expandQuoted(filterTemplate, user, ldapFilterQuote);
    const wanted = [...new Set(attrs.flatMap((a) => a.ldap ? [a.ldap] : [...(a.template ?? '').matchAll(/%\{ldap:([^}]+)\}/g)].map((m) => m[1]!)))];
    const entries = await this.search(base, filter, wanted.length ? wanted : ['1.1']);
    if (entries.length > 1) throw new Error(`${this.conf.file}: ${filter} matched ${entries.length} entries (must be one)`);
    return entries[0];
  }

  /** auth_bind: can `dn` bind with `secret`? false for bad credentials; throws otherwise. */
  async bindAs(dn: string, secret: string): Promise<boolean> {
    if (secret === '') return false;   // an empty password would be an anonymous bind
    try {
      const c = await withDeadline(this.connect(dn, secret), TIMEOUT_MS * 2, 'auth bind');
      c.unbind().catch(() => {});
      return true;
    } catch (e) {
      if (e instanceof InvalidCredentialsError) return false;
      log.error(`ldap: auth bind as ${dn}: ${(e as Error).message} (${this.conf.file})`);
      throw new Error(`${this.conf.file}: LDAP auth bind failed (see the log)`);
    }
  }

  async *iterate(): AsyncIterable<string> {
    const maps = parseAttrs(this.conf.iterateAttrs);
    const entries = await this.search(this.conf.base.replace(/%[LU]?[und]/g, ''), this.conf.iterateFilter, maps.flatMap((m) => (m.ldap ? [m.ldap] : [])));
    for (const e of entries) {
      const u = mapFields(e, maps, '').user;
      if (u) yield u;
    }
  }

  close(): void {
    const cur = this.current;
    this.current = undefined;
    cur?.then((c) => c.unbind().catch(() => {}), () => {});
  }
}

const DN = Symbol('ldap dn');

export function ldapPassdb(src: LdapSource): Passdb {
  const maps = parseAttrs(src.conf.passAttrs);
  const db: Passdb = {
    driver: 'ldap',
    defaultScheme: src.conf.defaultPassScheme,
    async lookup(user): Promise<PassdbEntry | undefined> {
      if (src.conf.authBind && src.conf.authBindUserdn) {
        // No search: the DN comes from the template; the bind says whether the password is right.
        const dn = expandQuoted(src.conf.authBindUserdn, user, ldapDnQuote);
        return Object.assign({ user, fields: {} }, { [DN]: dn });
      }
      const e = await src.one(src.conf.passFilter, maps, user);
      if (!e) return undefined;
      const fields = mapFields(e, maps, user);
      const password = fields.password;
      delete fields.password;
      const name = fields.user || user;
      delete fields.user;
      const entry: PassdbEntry = { user: name, password: src.conf.authBind ? undefined : password, fields };
      return Object.assign(entry, { [DN]: e.dn });
    },
    iterate: () => src.iterate(),
    async close() { src.close(); },
  };
  if (src.conf.authBind) {
    db.verifyBind = async (entry, secret) => {
      const dn = (entry as PassdbEntry & { [DN]?: string })[DN];
      return dn ? src.bindAs(dn, secret) : false;
    };
  }
  return db;
}

export function ldapUserdb(src: LdapSource): Userdb {
  const maps = parseAttrs(src.conf.userAttrs);
  return {
    driver: 'ldap',
    async lookup(user) {
      const e = await src.one(src.conf.userFilter, maps, user);
      if (!e) return undefined;
      const fields = mapFields(e, maps, user);
      return { ...fields, user: fields.user || user };
    },
    iterate: () => src.iterate(),
    async close() { src.close(); },
  };
}
