/**
 * auth-penalty - authentication failure throttling per client IP and per user, as Dovecot's
 * auth_penalty (src/auth/auth-penalty.c, 2.3): every failed login raises a penalty, and the next
 * login attempt waits 2 s doubling up to 15 s before its password is even checked. SMTP AUTH,
 * IMAP LOGIN/AUTHENTICATE and POP3 PASS/AUTH share one process-wide table.
 *
 * SUMMARY
 *   const penalty = sharedAuthPenalty();
 *   await penalty.beforeAuth(ip, user);          // sleeps while the penalty lasts
 *   const r = await dir.verifyPlain(user, pass);
 *   await penalty.result(ip, user, r.result === 'ok');   // on failure also waits auth_failure_delay
 *   // or simply: penalty.directory(dir, ip).verifyPlain(user, pass)
 *
 * DESCRIPTION
 *   Dovecot's rules, copied:
 *     delay(n)  = min(2 * 2^n, 15) seconds for a penalty n > 0 (auth_penalty_to_secs(); n = 0
 *                 means no delay)
 *     decay     on lookup, while n > 0: if the time since the last failure is at least
 *                 delay(d) for d = 4, 3, 2, ... then n-- (auth_penalty_anvil_callback()); so a
 *                 client idle for 15 s starts again from zero
 *     failure   n = decayed n + 1, last failure = now (auth_request_handler: last_penalty + 1)
 *     success   n = 0
 *     IPv6      the ident is the /64 (Dovecot masks IPv6 addresses: one host owns a whole /64)
 *   Dovecot also delays every failure reply by auth_failure_delay (2 s): result() does that.
 *
 *   Postern addition: the same penalty per user name, so guessing one account from many
 *   addresses slows down too. To keep an attacker from slowing down the real user, a (client
 *   address, user) pair that logged in successfully within the last day is exempt from the
 *   per-user penalty (the per-IP penalty still applies to it).
 *
 * SECURITY
 *   Waiting uses timers, never blocks the event loop: a password-guessing client costs one
 *   timer per connection. Both tables are capped (least recently used entries evicted) and
 *   entries are dropped once fully decayed, so spraying addresses or user names cannot grow
 *   memory without bound.
 *
 * DIAGNOSTICS
 *   `auth: penalty: rip=ADDR user=<u> failures reached N, delaying the next attempt Ss` when a
 *   client reaches the maximum delay (then every 100th failure), so fail2ban-style tools and
 *   administrators see the attack. Never logs the password.
 *
 * PARAMETERS (Dovecot)
 *   auth_failure_delay (default 2 secs)
 */
import { logger } from '../util/msg.ts';
import type { UserDirectory, VerifyResult } from '../lib-auth/user-directory.ts';

const log = logger('auth');

/** Dovecot auth-penalty.h */
export const AUTH_PENALTY_INIT_SECS = 2;
export const AUTH_PENALTY_MAX_SECS = 15;
export const AUTH_PENALTY_MAX_PENALTY = 4;
/** How long a penalty stays relevant: 2 + 4 + 8 + 15 seconds. */
export const AUTH_PENALTY_TIMEOUT_SECS = AUTH_PENALTY_INIT_SECS + 4 + 8 + AUTH_PENALTY_MAX_SECS;

/** auth_penalty_to_secs() */
export function penaltyToSecs(penalty: number): number {
  let secs = AUTH_PENALTY_INIT_SECS;
  for (let i = 0; i < penalty && secs < AUTH_PENALTY_MAX_SECS; i++) secs *= 2;
  return Math.min(secs, AUTH_PENALTY_MAX_SECS);
}

interface Entry {
  penalty: number;
  /** Time of the last failure. */
  last: number;
  failures: number;
  /** The decayed penalty as the last beforeAuth() saw it (Dovecot's request->last_penalty). */
  looked?: number;
  lookedAt?: number;
}

export interface AuthPenaltyOptions {
  /** Dovecot auth_failure_delay in ms (default 2000); 0 = answer failures at once. */
  failureDelayMs?: number;
  /** Most entries per table (default 100 000). */
  maxEntries?: number;
  /** How long a successful (address, user) pair is exempt from the per-user penalty (default 1 day). */
  trustMs?: number;
  /** false = Dovecot's behaviour exactly: per IP only. */
  perUser?: boolean;
  /** Clock and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const sleepReal = (ms: number) => new Promise<void>((r) => { setTimeout(r, ms); });

/** A Map used as an LRU with a size cap. */
class Lru<V> {
  private readonly m = new Map<string, V>();
  private readonly cap: number;
  constructor(cap: number) { this.cap = cap; }
  get size(): number { return this.m.size; }
  get(k: string): V | undefined { return this.m.get(k); }
  set(k: string, v: V): void {
    this.m.delete(k);
    this.m.set(k, v);
    if (this.m.size > this.cap) this.m.delete(this.m.keys().next().value!);
  }
  delete(k: string): void { this.m.delete(k); }
  /** Drop entries from the old end while `dead` says so. */
  sweep(dead: (v: V) => boolean): void {
    for (const [k, v] of this.m) { if (!dead(v)) break; this.m.delete(k); }
  }
}

export class AuthPenalty {
  readonly failureDelayMs: number;
  private readonly perUser: boolean;
  private readonly trustMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly ips: Lru<Entry>;
  private readonly users: Lru<Entry>;
  /** "ip user" → time of the last successful login. */
  private readonly trusted: Lru<number>;

  constructor(opts: AuthPenaltyOptions = {}) {
    this.failureDelayMs = opts.failureDelayMs ?? 2000;
    this.perUser = opts.perUser ?? true;
    this.trustMs = opts.trustMs ?? 86_400_000;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleepReal;
    const cap = opts.maxEntries && opts.maxEntries > 0 ? opts.maxEntries : 100_000;
    this.ips = new Lru(cap);
    this.users = new Lru(cap);
    this.trusted = new Lru(cap);
  }

  /** Entries held (both tables), for tests and statistics. */
  get size(): number { return this.ips.size + this.users.size; }

  /** The delay the next attempt from `ip` as `user` gets, in ms (0 = none). */
  delayMs(ip: string, user?: string): number {
    return this.lookup(ip, user, false);
  }

  /**
   * Wait out the penalty before checking credentials (Dovecot: the PENALTY-GET lookup, then a
   * timeout before auth_request_initial()).
   */
  async beforeAuth(ip: string, user?: string): Promise<void> {
    const ms = this.lookup(ip, user, true);
    if (ms > 0) await this.sleep(ms);
  }

  private lookup(ip: string, user: string | undefined, remember: boolean): number {
    const t = this.now();
    let n = this.current(this.ips, ipIdent(ip), t, remember);
    if (this.perUser && user !== undefined && !this.isTrusted(ip, user, t)) n = Math.max(n, this.current(this.users, userIdent(user), t, remember));
    return n > 0 ? penaltyToSecs(n) * 1000 : 0;
  }

  /**
   * Record the outcome. A failure raises the penalty of the address and the user and then waits
   * auth_failure_delay before the caller sends its failure reply; a success clears the
   * address's penalty and trusts the (address, user) pair.
   */
  async result(ip: string, user: string | undefined, ok: boolean): Promise<void> {
    const t = this.now();
    const ident = ipIdent(ip);
    if (ok) {
      this.ips.delete(ident);
      if (user !== undefined) {
        this.trusted.set(`${ident} ${userIdent(user)}`, t);
        this.users.delete(userIdent(user));
      }
      return;
    }
    const e = this.fail(this.ips, ident, t);
    if (this.perUser && user !== undefined) this.fail(this.users, userIdent(user), t);
    if (e.penalty >= AUTH_PENALTY_MAX_PENALTY && (e.failures === AUTH_PENALTY_MAX_PENALTY || e.failures % 100 === 0)) {
      log.warn(`penalty: rip=${ip} user=<${user ?? ''}> failures reached ${e.failures}, delaying the next attempt ${penaltyToSecs(e.penalty)}s`);
    }
    if (this.failureDelayMs > 0) await this.sleep(this.failureDelayMs);
  }

  /** A UserDirectory whose verifyPlain() applies this penalty for client `ip`. */
  directory(dir: UserDirectory, ip: string): UserDirectory {
    return {
      lookup: (u) => dir.lookup(u),
      iterate: () => dir.iterate(),
      close: () => dir.close(),
      changeStamp: dir.changeStamp?.bind(dir),
      verifyPlain: async (user: string, secret: string): Promise<VerifyResult> => {
        await this.beforeAuth(ip, user);
        const r = await dir.verifyPlain(user, secret);
        // A temporary failure says nothing about the password: no penalty.
        if (r.result !== 'tempfail') await this.result(ip, r.user ?? user, r.result === 'ok');
        return r;
      },
    };
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The decayed penalty (auth_penalty_anvil_callback()). */
  private current(table: Lru<Entry>, key: string, t: number, remember = false): number {
    const e = table.get(key);
    if (!e) return 0;
    const n = decay(e, t);
    if (remember) { e.looked = n; e.lookedAt = t; }
    return n;
  }

  private fail(table: Lru<Entry>, key: string, t: number): Entry {
    table.sweep((v) => t - v.last > AUTH_PENALTY_TIMEOUT_SECS * 1000);
    const old = table.get(key);
    // The failure raises the penalty the request saw before its delay, not the one left after
    // waiting (which has decayed by then): Dovecot's auth_penalty_update(last_penalty + 1).
    const recent = old?.lookedAt !== undefined && t - old.lookedAt <= (AUTH_PENALTY_MAX_SECS + 5) * 1000;
    const n = old ? Math.max(decay(old, t), recent ? old.looked ?? 0 : 0) : 0;
    const e: Entry = { penalty: n + 1, last: t, failures: n === 0 ? 1 : (old?.failures ?? 0) + 1 };
    table.set(key, e);
    return e;
  }

  private isTrusted(ip: string, user: string, t: number): boolean {
    const at = this.trusted.get(`${ipIdent(ip)} ${userIdent(user)}`);
    return at !== undefined && t - at < this.trustMs;
  }
}

/** The decayed penalty (auth_penalty_anvil_callback()). */
function decay(e: Entry, t: number): number {
  let n = e.penalty;
  let drop = AUTH_PENALTY_MAX_PENALTY;
  const elapsed = (t - e.last) / 1000;
  while (n > 0) {
    // Dovecot's unsigned drop_penalty wraps below zero, where auth_penalty_to_secs() caps at 15.
    if (elapsed < (drop >= 0 ? penaltyToSecs(drop) : AUTH_PENALTY_MAX_SECS)) break;
    drop--;
    n--;
  }
  return n;
}

/** Dovecot auth_penalty_get_ident(): the address, IPv6 reduced to its /64. */
export function ipIdent(ip: string): string {
  const a = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  if (!a.includes(':')) return a;
  const [head = '', tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = a.includes('::') ? [...h, ...Array(Math.max(0, 8 - h.length - tl.length)).fill('0'), ...tl] : h;
  return groups.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16)).join(':') + '::/64';
}

function userIdent(user: string): string { return user.toLowerCase(); }

let shared: AuthPenalty | undefined;

/** The process-wide table every protocol shares (Dovecot: the one anvil process). */
export function sharedAuthPenalty(opts?: AuthPenaltyOptions): AuthPenalty {
  shared ??= new AuthPenalty(opts);
  return shared;
}
