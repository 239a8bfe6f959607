/**
 * user-directory-open - builds the UserDirectory (CONTRACT 6, user-directory.ts) from the
 * `passdb {}` and `userdb {}` blocks of dovecot.conf, with Dovecot's semantics (auth/auth.c,
 * auth-request.c):
 *
 *  - Names are checked and normalised first: `auth_username_format` (default %Lu, lower case),
 *    `auth_username_chars` (Dovecot's default set; names with '/', ':', NUL, control characters
 *    or a `..` are always refused), `auth_default_realm` appended to names without '@'.
 *  - verifyPlain: passdbs are asked in order; a password mismatch goes on to the next passdb
 *    (result_failure = continue), the first match wins. A user found in a `deny = yes` passdb
 *    is refused; `master = yes` passdbs (master users) are not used for ordinary logins. An unknown user costs one dummy
 *    SHA512-CRYPT verification, so timing does not tell whether a name exists.
 *  - lookup: userdbs are asked in order, the first that knows the user wins; `default_fields`
 *    under, `override_fields` over its fields. A static userdb only answers for users a passdb
 *    knows (unless allow_all_users=yes); prefetch takes the passdb's `userdb_*` fields.
 *  - The record: uid/gid by number or name (/etc/passwd, /etc/group), falling back to mail_uid /
 *    mail_gid, then to this process's ids; `mail` falls back to mail_location; %u %n %d %h and
 *    a leading `~` (home) are expanded in it; `quota_rule` becomes quotaBytes/quotaMessages.
 *
 * Drivers: passwd-file, sql (sqlite, pgsql, mysql), ldap, static; passdb also shadow and oauth2
 * (db-oauth2.ts: the secret is a bearer token; `mechanisms = ...` limits a passdb to those SASL
 * mechanisms, as in Dovecot), userdb
 * also prefetch and passwd (system users). sql and ldap answers go through the auth cache when
 * auth_cache_size is set (auth-cache.ts).
 * With no passdb/userdb block at all, the embedded default is used: the dovecot-sql.conf.ext
 * beside dovecot.conf (written by `postern start`, master/default-config.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../global/config-error.ts';
import type { AuthDbSpec, DovecotConfig } from '../global/dovecot-conf.ts';
import { logger } from '../util/msg.ts';
import type { Passdb, Userdb } from './auth-db.ts';
import { parseQuotaRule } from './auth-quota-rule.ts';
import { quotaGraceBytes, quotaWarningsFor } from './auth-quota-warning.ts';
import { resolveGid, resolveUid, shadowHash, systemUser } from './auth-system-users.ts';
import { expandVars } from './auth-var-expand.ts';
import { PasswdFileSource, passwdFilePassdb, passwdFileUserdb } from './db-passwd-file.ts';
import { loadSqlConf } from './db-sql-conf.ts';
import { SqlSource, sqlPassdb, sqlUserdb } from './db-sql.ts';
import { NetSqlBackend } from './db-sql-net.ts';
import { LdapSource, ldapPassdb, ldapUserdb, loadLdapConf } from './db-ldap.ts';
import { AuthCache, cachedPassdb, cachedUserdb, fromCache, type CachedPassdb } from './auth-cache.ts';
import { parseDovecotSize, parseDovecotTime } from '../global/dovecot-units.ts';
import { loadOAuth2Conf, oauth2Passdb } from './db-oauth2.ts';
import { staticPassdb, staticUserdb, type StaticUserdb } from './db-static.ts';
import { passwordDummyVerify, passwordVerify } from './password-scheme.ts';
import type { AuthRequestInfo, UserDirectory, UserRecord, VerifyResult } from './user-directory.ts';

const log = logger('auth');

/** Dovecot's default auth_username_chars. */
const DEFAULT_USERNAME_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@';
export const MAX_USERNAME_LENGTH = 255;

/** Fields that become UserRecord members rather than `extra`. */
const RECORD_FIELDS = new Set(['user', 'uid', 'gid', 'home', 'mail', 'quota_rule']);


interface DbEntry<T> { db: T; spec: AuthDbSpec }

export class AuthUserDirectory implements UserDirectory {
  readonly conf: DovecotConfig;
  readonly passdbs: DbEntry<Passdb>[];
  readonly userdbs: DbEntry<Userdb>[];
  private readonly usernameChars: Set<string> | undefined;
  private readonly usernameFormat: string;
  private readonly defaultRealm: string;

  constructor(conf: DovecotConfig, passdbs: DbEntry<Passdb>[], userdbs: DbEntry<Userdb>[]) {
    this.conf = conf;
    this.passdbs = passdbs;
    this.userdbs = userdbs;
    const chars = conf.get('auth_username_chars') ?? DEFAULT_USERNAME_CHARS;
    this.usernameChars = chars === '' ? undefined : new Set(chars);
    this.usernameFormat = conf.get('auth_username_format') ?? '%Lu';
    this.defaultRealm = conf.get('auth_default_realm') ?? '';
  }

  /** The normalised login name, or undefined when the name can never be a user. */
  normalizeName(user: string): string | undefined {
    if (user.length === 0 || user.length > MAX_USERNAME_LENGTH) return undefined;
    if (/[\x00-\x20\x7f/:\\]/.test(user)) return undefined;
    let name = user;
    if (this.defaultRealm && !name.includes('@')) name = `${name}@${this.defaultRealm}`;
    try {
      name = expandVars(this.usernameFormat, { user: name });
    } catch {
      return undefined;
    }
    if (this.usernameChars) for (const c of name) if (!this.usernameChars.has(c)) return undefined;
    // Names are expanded into paths (%n, %d): no empty, "." or ".." component, no leading dot.
    if (name.includes('..') || name.startsWith('.') || name.includes('@.') || name.endsWith('@') || name.startsWith('@')) return undefined;
    return name;
  }

  async verifyPlain(user: string, secret: string, req?: AuthRequestInfo): Promise<VerifyResult> {
    const name = this.normalizeName(user);
    if (name === undefined) {
      await passwordDummyVerify(secret);
      return { result: 'unknown' };
    }
    let mismatch = false;
    for (const { db, spec } of this.passdbs) {
      // Master-user passdbs (master = yes) only serve "user*master" logins, which we do not offer.
      if (isYes(spec.settings?.master)) continue;
      // passdb { mechanisms = xoauth2 oauthbearer }: only for logins with those mechanisms
      const mechs = spec.settings?.mechanisms;
      if (mechs && !mechs.toLowerCase().split(/[\s,]+/).includes((req?.mechanism ?? 'plain').toLowerCase())) continue;
      let entry;
      try {
        entry = await db.lookup(name, req);
      } catch (err) {
        log.error(`passdb ${db.driver}(${name}): ${(err as Error).message}`);
        return { result: 'tempfail' };
      }
      if (!entry) continue;
      // deny = yes: a user listed here may not log in, whatever the other passdbs say.
      if (isYes(spec.settings?.deny)) {
        await passwordDummyVerify(secret);
        return { result: 'disabled', user: entry.user };
      }
      const fields = { ...expandFields(spec.defaultFields, name, req), ...entry.fields, ...expandFields(spec.overrideFields, name, req) };
      const canonical = fields.user || entry.user;
      let match: boolean;
      if (db.verifyBind) {
        let v;
        try {
          v = await db.verifyBind(entry, secret, req);
        } catch (err) {
          log.error(`passdb ${db.driver}(${name}): ${(err as Error).message}`);
          return { result: 'tempfail' };
        }
        if (typeof v !== 'boolean') {
          log.info(`passdb ${db.driver}(${name}): ${v.reason}`);
          if (v.result === 'disabled') return { result: 'disabled', user: canonical };
          continue;   // unknown here: the next passdb may know the user
        }
        match = v;
      } else if ('nopassword' in fields && !/^(no|n|0)$/i.test(fields.nopassword!) && !entry.password) {
        match = true;
      } else if (entry.password === undefined) {
        await passwordDummyVerify(secret);
        match = false;
      } else {
        const r = await passwordVerify(secret, entry.password, db.defaultScheme);
        if (r.error) log.warn(`passdb ${db.driver}(${name}): ${r.error}`);
        match = r.match;
        if (!match && fromCache(entry)) {
          // Dovecot: a password that does not match the cached one is checked against the database.
          (db as CachedPassdb).forget(name);
          let fresh;
          try { fresh = await db.lookup(name, req); } catch (err) {
            log.error(`passdb ${db.driver}(${name}): ${(err as Error).message}`);
            return { result: 'tempfail' };
          }
          if (fresh?.password !== undefined && fresh.password !== entry.password) {
            match = (await passwordVerify(secret, fresh.password, db.defaultScheme)).match;
          }
        }
      }
      if (!match) { mismatch = true; continue; }
      const passFields = loginFields(fields);
      const withFields = Object.keys(passFields).length > 0 ? { fields: passFields } : {};
      // A proxy login is the login process's decision (login-common client_auth_handle_reply
      // looks at proxy before nologin); nologin alone refuses, with its reason.
      if ('nologin' in fields && !('proxy' in fields) && !('proxy_maybe' in fields)) return { result: 'disabled', user: canonical, ...withFields };
      return { result: 'ok', user: canonical, ...withFields };
    }
    if (!mismatch) await passwordDummyVerify(secret);
    return { result: mismatch ? 'mismatch' : 'unknown' };
  }

  /** Does any passdb (other than static) know this name? For static userdbs. */
  private async passdbKnows(name: string): Promise<Record<string, string> | undefined> {
    for (const { db, spec } of this.passdbs) {
      if (db.driver === 'static' || db.driver === 'oauth2' || isYes(spec.settings?.deny) || isYes(spec.settings?.master)) continue;
      const e = await db.lookup(name);
      if (e) return e.fields;
    }
    return undefined;
  }

  async lookup(user: string): Promise<UserRecord | undefined> {
    const name = this.normalizeName(user);
    if (name === undefined) return undefined;
    for (const { db, spec } of this.userdbs) {
      let fields: Record<string, string> | undefined;
      if (db.driver === 'prefetch') {
        const pf = await this.passdbKnows(name);
        if (pf) {
          fields = {};
          for (const [k, v] of Object.entries(pf)) if (k.startsWith('userdb_')) fields[k.slice(7)] = v;
        }
      } else if (db.driver === 'static' && !(db as StaticUserdb).allowAllUsers) {
        if (await this.passdbKnows(name)) fields = expandFields(await db.lookup(name), name);
      } else {
        fields = await db.lookup(name);
        if (fields && db.driver === 'static') fields = expandFields(fields, name);
      }
      if (!fields) continue;
      const merged = { ...expandFields(spec.defaultFields, name), ...fields, ...expandFields(spec.overrideFields, name) };
      return this.toRecord(merged.user || name, merged);
    }
    return undefined;
  }

  private toRecord(user: string, f: Record<string, string>): UserRecord {
    const uidText = f.uid ?? this.conf.get('mail_uid');
    const gidText = f.gid ?? this.conf.get('mail_gid');
    const uid = uidText ? resolveUid(uidText) : process.getuid?.() ?? 0;
    const gid = gidText ? resolveGid(gidText) : process.getgid?.() ?? 0;
    if (uid === undefined) throw new Error(`userdb(${user}): uid "${uidText}" is neither a number nor a user in /etc/passwd`);
    if (gid === undefined) throw new Error(`userdb(${user}): gid "${gidText}" is neither a number nor a group in /etc/group`);
    const home = f.home ?? '';
    let mail = f.mail ?? this.conf.mailLocation ?? '';
    mail = expandVars(mail, { user, home });
    // Dovecot expands a leading ~ of the location path to the home directory.
    mail = mail.replace(/^((?:[a-z]+:)?)~(?=\/|:|$)/i, (_m, p: string) => p + home);
    const rec: UserRecord = { user, uid, gid, home, mail };
    // Dovecot's quota plugin: the userdb's quota_rule, else plugin { quota_rule } (the site default).
    const quotaRule = f.quota_rule ?? this.conf.get('plugin/quota_rule');
    if (quotaRule) {
      try {
        Object.assign(rec, parseQuotaRule(quotaRule));
      } catch (err) {
        log.warn(`userdb(${user}): ${(err as Error).message}: no quota applied`);
      }
    }
    if (rec.quotaBytes !== undefined || rec.quotaMessages !== undefined) {
      const grace = quotaGraceBytes(this.conf, f, rec.quotaBytes);
      if (grace !== undefined) rec.quotaGraceBytes = grace;
      const warnings = quotaWarningsFor(this.conf, f, (a) => {
        try { return expandVars(a, { user, home }); } catch { return a; }
      }, (m) => log.warn(`userdb(${user}): ${m}`));
      if (warnings.length) rec.quotaWarnings = warnings;
    }
    const extra: Record<string, string> = {};
    for (const [k, v] of Object.entries(f)) if (!RECORD_FIELDS.has(k)) extra[k] = v;
    if (Object.keys(extra).length) rec.extra = extra;
    return rec;
  }

  async *iterate(): AsyncIterable<string> {
    const seen = new Set<string>();
    const sources: { iterate?(): AsyncIterable<string> }[] = [];
    for (const { db } of this.userdbs) {
      if (db.iterate) sources.push(db);
      else if (db.driver === 'static' || db.driver === 'prefetch') {
        for (const p of this.passdbs) if (p.db.iterate && !isYes(p.spec.settings?.deny) && !isYes(p.spec.settings?.master)) sources.push(p.db);
      }
    }
    for (const s of sources) {
      for await (const u of s.iterate!()) {
        const key = u.toLowerCase();
        if (!seen.has(key)) { seen.add(key); yield u; }
      }
    }
  }

  async changeStamp(): Promise<string> {
    const parts: string[] = [];
    for (const { db } of [...this.passdbs, ...this.userdbs]) parts.push(db.stamp ? await db.stamp() : '');
    return parts.join('|');
  }

  async close(): Promise<void> {
    for (const { db } of [...this.passdbs, ...this.userdbs]) await db.close();
  }
}

function isYes(v: string | undefined): boolean {
  return v !== undefined && /^(yes|y|1|true)$/i.test(v);
}

function expandFields(fields: Record<string, string> | undefined, user: string, req?: AuthRequestInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields ?? {})) out[k] = k === 'mail' ? v : expandVars(v, { user, ...req });
  return out;
}

/** The passdb fields a login process sees: all but userdb_* (those go to the userdb). */
function loginFields(fields: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(fields)) if (!k.startsWith('userdb_')) out[k] = v;
  return out;
}

/** Build the directory; throws ConfigError naming the dovecot.conf line of a bad block. */
export async function openUserDirectory(conf: DovecotConfig): Promise<AuthUserDirectory> {
  const base = dirname(resolve(conf.file));
  const passwdFiles = new Map<string, PasswdFileSource>();
  const sqls = new Map<string, SqlSource>();
  const wrap = <T>(spec: AuthDbSpec, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(spec.file, spec.line, (err as Error).message);
    }
  };
  const passwdFile = (spec: AuthDbSpec) => wrap(spec, () => {
    const key = spec.args.trim();
    let s = passwdFiles.get(key);
    if (!s) { s = new PasswdFileSource(spec.args, base); passwdFiles.set(key, s); }
    return s;
  });
  const sql = (spec: AuthDbSpec) => wrap(spec, () => {
    const file = resolve(base, spec.args.trim());
    let s = sqls.get(file);
    if (!s) {
      const c = loadSqlConf(file);
      s = new SqlSource(c, c.driver === 'sqlite' ? undefined : new NetSqlBackend(c));
      sqls.set(file, s);
    }
    return s;
  });

  const ldaps = new Map<string, LdapSource>();
  const ldap = (spec: AuthDbSpec) => wrap(spec, () => {
    const file = resolve(base, spec.args.trim());
    let s = ldaps.get(file);
    if (!s) { s = new LdapSource(loadLdapConf(file)); ldaps.set(file, s); }
    return s;
  });

  let passdbSpecs = conf.passdbs, userdbSpecs = conf.userdbs;
  if (passdbSpecs.length === 0 && userdbSpecs.length === 0) {
    // No passdb/userdb blocks (dovecot-conf.ts defaults): the embedded SQLite directory, when
    // `postern start` wrote its dovecot-sql.conf.ext beside dovecot.conf.
    const sqlFile = resolve(base, 'dovecot-sql.conf.ext');
    if (!existsSync(sqlFile)) {
      throw new ConfigError(conf.file, 0, `no passdb or userdb is configured (and no ${sqlFile}): add passdb { driver = ... } and userdb { driver = ... } blocks, or run \`postern start\` once to write the default configuration`);
    }
    const spec: AuthDbSpec = { driver: 'sql', args: sqlFile, file: conf.file, line: 0 };
    passdbSpecs = [spec];
    userdbSpecs = [spec];
  }
  const cache = authCache(conf);
  const passdbs: DbEntry<Passdb>[] = [];
  for (const spec of passdbSpecs) {
    let db: Passdb;
    switch (spec.driver) {
      case 'passwd-file': db = passwdFilePassdb(passwdFile(spec)); break;
      case 'sql': db = sqlPassdb(sql(spec)); break;
      case 'ldap': db = ldapPassdb(ldap(spec)); break;
      case 'static': db = staticPassdb(spec.args); break;
      case 'shadow': db = shadowPassdb(); break;
      case 'oauth2': db = oauth2Passdb(wrap(spec, () => loadOAuth2Conf(resolve(base, spec.args.trim())))); break;
      default:
        throw new ConfigError(spec.file, spec.line, `passdb driver "${spec.driver}" is not supported (use passwd-file, sql, ldap, static, shadow or oauth2)`);
    }
    if (cache && CACHED_DRIVERS.has(spec.driver)) db = cachedPassdb(db, cache, `${passdbs.length}`);
    passdbs.push({ db, spec });
  }
  const userdbs: DbEntry<Userdb>[] = [];
  for (const spec of userdbSpecs) {
    let db: Userdb;
    switch (spec.driver) {
      case 'passwd-file': db = passwdFileUserdb(passwdFile(spec)); break;
      case 'sql': db = sqlUserdb(sql(spec)); break;
      case 'ldap': db = ldapUserdb(ldap(spec)); break;
      case 'static': db = staticUserdb(spec.args); break;
      case 'prefetch': db = { driver: 'prefetch', lookup: async () => undefined, close: async () => {} }; break;
      case 'passwd': db = systemUserdb(); break;
      default:
        throw new ConfigError(spec.file, spec.line, `userdb driver "${spec.driver}" is not supported (use passwd-file, sql, ldap, static, prefetch or passwd)`);
    }
    if (cache && CACHED_DRIVERS.has(spec.driver)) db = cachedUserdb(db, cache, `${userdbs.length}`);
    userdbs.push({ db, spec });
  }
  return new AuthUserDirectory(conf, passdbs, userdbs);
}

/** Drivers whose answers go through the auth cache (the ones that ask a server). */
const CACHED_DRIVERS = new Set(['sql', 'ldap']);

/** The auth cache of dovecot.conf, or undefined when auth_cache_size is 0 (Dovecot's default). */
function authCache(conf: DovecotConfig): AuthCache | undefined {
  const time = (name: string) => parseDovecotTime(conf.get(name) ?? '1 hour', name);
  try {
    const size = parseDovecotSize(conf.get('auth_cache_size') ?? '0', 'auth_cache_size');
    if (size === 0) return undefined;
    return new AuthCache(size, time('auth_cache_ttl'), time('auth_cache_negative_ttl'));
  } catch (err) {
    throw new ConfigError(conf.file, 0, `auth cache: ${(err as Error).message}`);
  }
}

/** Dovecot's passwd userdb: system users from /etc/passwd (names without '@'). */
function systemUserdb(): Userdb {
  return {
    driver: 'passwd',
    async lookup(user) {
      const u = systemUser(user);
      return u ? { user, uid: String(u.uid), gid: String(u.gid), home: u.home } : undefined;
    },
    async close() {},
  };
}

/** Dovecot's shadow passdb: system users' crypt(3) hashes from /etc/shadow (needs root). */
function shadowPassdb(): Passdb {
  return {
    driver: 'shadow',
    defaultScheme: 'CRYPT',
    async lookup(user) {
      if (user.includes('@')) return undefined;
      const hash = shadowHash(user);
      if (hash === undefined) return undefined;
      return { user, password: hash === '' ? undefined : `{CRYPT}${hash}`, fields: {} };
    },
    async close() {},
  };
}
