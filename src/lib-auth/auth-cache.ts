/**
 * auth-cache - Dovecot's authentication cache (auth/auth-cache.c; dovecot.conf `auth_cache_size`,
 * `auth_cache_ttl`, `auth_cache_negative_ttl`): passdb and userdb answers kept in memory so that
 * a busy site does not ask its SQL or LDAP server for every login and every delivery.
 *
 *  - auth_cache_size (default 0 = no cache; a size such as 10M): the memory the cache may use;
 *    the least recently used entries go first.
 *  - auth_cache_ttl (default 1 hour): how long a found user is kept.
 *  - auth_cache_negative_ttl (default 1 hour; 0 = never cached): how long "unknown user" is kept.
 *  - Errors are never cached: a database that fails is asked again at the next lookup.
 *  - As Dovecot, a password that does not match the cached one is checked once more against the
 *    database (the password may have changed): `forget()` then a fresh lookup.
 *
 * Without a cache (the default) a user added to the database can log in and receive mail at once.
 */
import type { Passdb, PassdbEntry, Userdb } from './auth-db.ts';

interface Slot<T> { value: T | undefined; expires: number; size: number }

export class AuthCache {
  private readonly max: number;
  private readonly ttl: number;
  private readonly negTtl: number;
  private readonly now: () => number;
  private readonly map = new Map<string, Slot<unknown>>();
  private used = 0;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number, ttlMs: number, negativeTtlMs: number, now: () => number = Date.now) {
    this.max = maxBytes; this.ttl = ttlMs; this.negTtl = negativeTtlMs; this.now = now;
  }

  /** { value } when cached (value undefined = cached "unknown"), else undefined. */
  get<T>(key: string): { value: T | undefined } | undefined {
    const s = this.map.get(key);
    if (!s || s.expires <= this.now()) {
      if (s) this.delete(key);
      this.misses++;
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, s);   // most recently used last
    this.hits++;
    return { value: s.value as T | undefined };
  }

  set<T>(key: string, value: T | undefined): void {
    const ttl = value === undefined ? this.negTtl : this.ttl;
    if (ttl <= 0) return;
    const size = key.length + JSON.stringify(value ?? null).length + 64;
    if (size > this.max) return;
    this.delete(key);
    this.map.set(key, { value, expires: this.now() + ttl, size });
    this.used += size;
    for (const [k] of this.map) {
      if (this.used <= this.max) break;
      this.delete(k);
    }
  }

  delete(key: string): void {
    const s = this.map.get(key);
    if (s) { this.used -= s.size; this.map.delete(key); }
  }

  clear(): void { this.map.clear(); this.used = 0; }
}

const FROM_CACHE = Symbol('from auth cache');

/** Did this passdb entry come from the cache (so a mismatch deserves a fresh lookup)? */
export function fromCache(e: PassdbEntry): boolean {
  return (e as PassdbEntry & { [FROM_CACHE]?: boolean })[FROM_CACHE] === true;
}

export type CachedPassdb = Passdb & { forget(user: string): void };

/** A passdb whose answers go through the cache; `forget(user)` drops one user's entry. */
export function cachedPassdb(db: Passdb, cache: AuthCache, id: string): CachedPassdb {
  const key = (u: string) => `p\0${id}\0${u}`;
  const out: CachedPassdb = {
    driver: db.driver,
    defaultScheme: db.defaultScheme,
    async lookup(user) {
      const hit = cache.get<PassdbEntry>(key(user));
      if (hit) return hit.value ? Object.assign({ ...hit.value, fields: { ...hit.value.fields } }, { [FROM_CACHE]: true }) : undefined;
      const v = await db.lookup(user);   // an error propagates and is not cached
      cache.set(key(user), v);
      return v;
    },
    forget(user) { cache.delete(key(user)); },
    close: () => db.close(),
  };
  if (db.verifyBind) out.verifyBind = (e, secret, req) => db.verifyBind!(e, secret, req);
  if (db.iterate) out.iterate = () => db.iterate!();
  if (db.stamp) out.stamp = () => db.stamp!();
  return out;
}

export function cachedUserdb(db: Userdb, cache: AuthCache, id: string): Userdb {
  const key = (u: string) => `u\0${id}\0${u}`;
  const out: Userdb = {
    driver: db.driver,
    async lookup(user) {
      const hit = cache.get<Record<string, string>>(key(user));
      if (hit) return hit.value ? { ...hit.value } : undefined;
      const v = await db.lookup(user);
      cache.set(key(user), v);
      return v ? { ...v } : undefined;
    },
    close: () => db.close(),
  };
  if (db.iterate) out.iterate = () => db.iterate!();
  if (db.stamp) out.stamp = () => db.stamp!();
  return out;
}
