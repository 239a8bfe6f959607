/**
 * auth-penalty - authentication failure throttling, as Dovecot's auth_penalty (2.3:
 * src/auth/auth-penalty.c with anvil's penalty.c) but delaying only FAILED attempts, and with a
 * per-user bound on password guessing that never slows the user's correct logins. SMTP AUTH,
 * IMAP LOGIN/AUTHENTICATE and POP3 PASS/AUTH share one process-wide table.
 *
 * SUMMARY
 *   const penalty = sharedAuthPenalty();
 *   const dir2 = penalty.directory(dir, clientIp);      // a UserDirectory for one client
 *   const r = await dir2.verifyPlain(user, pass);        // right: at once; wrong: after the delay
 *
 * DESCRIPTION
 *   Per client address (the ident: IPv4 address, IPv6 /64 as Dovecot masks it), Dovecot's rules:
 *     delay(n)  = min(2 * 2^n, 15) seconds for a penalty n > 0 (auth_penalty_to_secs())
 *     decay     on lookup, while n > 0: if the time since the last failure is at least
 *               delay(d) for d = 4, 3, 2, ... then n-- ; so 15 s without a failure clears it
 *     failure   n + 1, unless the same (user, password) failed from that ident recently
 *               (Dovecot keeps 8 password checksums per ident: a phone retrying one stale
 *               password does not escalate)
 *     success   n = 0
 *   The answer to a failed attempt waits auth_failure_delay (2 s) plus delay(n) of the address's
 *   penalty before the attempt: 2, 6, 10, 17, 17 ... seconds for a guesser on one connection,
 *   the totals the real Dovecot 2.3 gives (measured).
 *
 *   Where Postern differs from Dovecot: Dovecot waits out the penalty BEFORE checking the
 *   password, so a correct password from a penalised address waits up to 15 s too. Here the
 *   password is checked at once and only a failure is held, so a correct login is never
 *   delayed: not by its own address's earlier typos, never by another address's failures.
 *
 *   Per user (what Dovecot lacks; a botnet guessing one account from many addresses): the
 *   failed attempts on one user name are counted per window of USER_WINDOW_MS (60 s). Past
 *   USER_FAILURE_LIMIT (10) in a window, a login for that user from an address that itself has
 *   a penalty (it failed within the last 15 s) is answered as failed WITHOUT checking the
 *   password, after auth_failure_delay + 15 s — unless that (address, user) pair logged in
 *   successfully within the last day. Attempts from clean addresses are still checked, so the
 *   real user logs in at once from anywhere; a correct password is never refused from a clean
 *   address.
 *
 *   The bound: while one user is under attack, password checks against that account are at
 *   most USER_FAILURE_LIMIT per minute plus, per guessing ident, the first attempt after it has
 *   been silent for 15 s (one per 15 s of silence); on one connection a guesser gets at most
 *   one check per 17 s anyway. A burst of parallel connections from a clean ident gets one
 *   check per connection (bounded by the connection limits: smtpd_client_connection_count_limit,
 *   Dovecot's process/client limits).
 *
 * SECURITY
 *   Waiting uses timers, never blocks the event loop: a held failure costs one timer per
 *   connection. All tables are capped (least recently used entries evicted) and entries are
 *   dropped once fully decayed, so spraying addresses or user names cannot grow memory without
 *   bound. Only CRC-32 checksums of failed (user, password) pairs are kept, never a password.
 *
 * DIAGNOSTICS
 *   `auth: penalty: rip=ADDR user=<u> failures reached N, delaying failures Ss` when an address
 *   reaches the maximum delay (then every 100th failure);
 *   `auth: penalty: user=<u>: N failed logins within 60 s, not checking passwords from
 *   penalised addresses` once per window when a user goes over the limit. Never the password.
 *
 * PARAMETERS (Dovecot)
 *   auth_failure_delay (default 2 secs)
 */
import { crc32 } from 'node:zlib';
import { logger } from '../util/msg.ts';
import type { AuthRequestInfo, UserDirectory, VerifyResult } from '../lib-auth/user-directory.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { metrics } from '../util/metrics.ts';

const log = logger('auth');

/** Dovecot auth-penalty.h */
export const AUTH_PENALTY_INIT_SECS = 2;
export const AUTH_PENALTY_MAX_SECS = 15;
export const AUTH_PENALTY_MAX_PENALTY = 4;
/** How long a penalty stays relevant: 2 + 4 + 8 + 15 seconds. */
export const AUTH_PENALTY_TIMEOUT_SECS = AUTH_PENALTY_INIT_SECS + 4 + 8 + AUTH_PENALTY_MAX_SECS;
/** Dovecot penalty.c CHECKSUM_VALUE_COUNT: the recent password checksums kept per ident. */
const CHECKSUM_COUNT = 8;
/** Failed logins per user name per window before penalised addresses are no longer checked. */
export const USER_FAILURE_LIMIT = 10;
export const USER_WINDOW_MS = 60_000;

/** auth_penalty_to_secs() */
export function penaltyToSecs(penalty: number): number {
  let secs = AUTH_PENALTY_INIT_SECS;
  for (let i = 0; i < penalty && secs < AUTH_PENALTY_MAX_SECS; i++) secs *= 2;
  return Math.min(secs, AUTH_PENALTY_MAX_SECS);
}

interface AddrEntry {
  penalty: number;
  /** When the last failure was answered (the decay counts from there). */
  last: number;
  failures: number;
  /** CRC-32 of recent failed "user\0password" pairs, newest last. */
  sums: number[];
}

interface UserEntry { start: number; count: number; warned: boolean }

export interface AuthPenaltyOptions {
  /** Dovecot auth_failure_delay in ms (default 2000); 0 = no fixed wait for failures. */
  failureDelayMs?: number;
  /** Most entries per table (default 100 000). */
  maxEntries?: number;
  /** How long a successful (address, user) pair is exempt from the per-user bound (default 1 day). */
  trustMs?: number;
  /** false = per address only (Dovecot's scope). */
  perUser?: boolean;
  /** Failed logins per user per window before the bound applies (default USER_FAILURE_LIMIT). */
  userFailureLimit?: number;
  userWindowMs?: number;
  /** Clock and sleep, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const sleepReal = (ms: number) => new Promise<void>((r) => { setTimeout(r, ms); });

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

const AUTH = metrics.counter('postern_auth_attempts_total', 'Password checks through the auth penalty (imapd, pop3d, smtpd AUTH), by result: success, failure, tempfail, refused_unchecked (per-user bound)', ['result']);
const PENALIZED = metrics.counter('postern_auth_penalized_total', 'Failed logins answered with an extra penalty delay (the client address had failed recently)').labels();

export class AuthPenalty implements AuthPenaltyTable {
  failureDelayMs: number;
  private readonly perUser: boolean;
  private readonly trustMs: number;
  private readonly userLimit: number;
  private readonly userWindowMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly ips: Lru<AddrEntry>;
  private readonly users: Lru<UserEntry>;
  /** "ident user" → time of the last successful login. */
  private readonly trusted: Lru<number>;

  constructor(opts: AuthPenaltyOptions = {}) {
    this.failureDelayMs = opts.failureDelayMs ?? 2000;
    this.perUser = opts.perUser ?? true;
    this.trustMs = opts.trustMs ?? 86_400_000;
    this.userLimit = opts.userFailureLimit ?? USER_FAILURE_LIMIT;
    this.userWindowMs = opts.userWindowMs ?? USER_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? sleepReal;
    const cap = opts.maxEntries && opts.maxEntries > 0 ? opts.maxEntries : 100_000;
    this.ips = new Lru(cap);
    this.users = new Lru(cap);
    this.trusted = new Lru(cap);
  }

  /** Take auth_failure_delay from dovecot.conf (the master does this for every service). */
  configure(dovecot: DovecotConfig): this {
    this.failureDelayMs = dovecotTimeMs(dovecot.get('auth_failure_delay'), this.failureDelayMs);
    return this;
  }

  /** Entries held (address and user tables), for tests and statistics. */
  get size(): number { return this.ips.size + this.users.size; }

  /** The extra delay (beyond auth_failure_delay) a failure from `ip` would get now, in ms. */
  delayMs(ip: string): number {
    const n = this.level(ipIdent(ip), this.now());
    return n > 0 ? penaltyToSecs(n) * 1000 : 0;
  }

  /**
   * Check `user`/`secret` against `dir` for a client at `ip`: a right password resolves at once;
   * a wrong one (or one refused unchecked by the per-user bound) after its delay.
   */
  async verify(dir: UserDirectory, ip: string, user: string, secret: string, req?: AuthRequestInfo): Promise<VerifyResult> {
    return checkWithPenalty(this, this.sleep, dir, ip, user, secret, req);
  }

  /** A UserDirectory whose verifyPlain() goes through verify() for client `ip`. */
  directory(dir: UserDirectory, ip: string): UserDirectory {
    return penalizedDirectory(this, this.sleep, dir, ip);
  }

  /**
   * The first half of a check (AuthPenaltyTable): the address's decayed penalty, and whether the
   * per-user bound refuses the attempt unchecked (then the failure is recorded here already).
   */
  begin(ip: string, user: string): PenaltyBegin {
    const t = this.now();
    const ident = ipIdent(ip);
    const u = userIdent(user.slice(0, 255));
    const n = this.level(ident, t);
    if (this.perUser && n > 0 && this.userOver(u, t) && !this.isTrusted(ident, u, t)) {
      const wait = this.failureDelayMs + AUTH_PENALTY_MAX_SECS * 1000;
      AUTH.labels('refused_unchecked').inc();
      PENALIZED.inc();
      this.fail(ip, ident, u, undefined, t, wait);
      return { level: n, refuseMs: wait };
    }
    return { level: n };
  }

  /**
   * The second half (AuthPenaltyTable): record the outcome of the password check; returns how
   * long the answer is to be held, in ms (0 for a success or a temporary failure).
   */
  finish(ip: string, user: string, outcome: PenaltyOutcome): number {
    const ident = ipIdent(ip);
    const u = userIdent(user.slice(0, 255));
    if (outcome.result === 'ok') { AUTH.labels('success').inc(); this.succeeded(ident, userIdent(outcome.user ?? user)); return 0; }
    // A temporary failure says nothing about the password: no penalty.
    if (outcome.result === 'tempfail') { AUTH.labels('tempfail').inc(); return 0; }
    AUTH.labels('failure').inc();
    const n = outcome.level;
    if (n > 0) PENALIZED.inc();
    const t2 = this.now();
    const wait = this.failureDelayMs + (n > 0 ? penaltyToSecs(n) * 1000 : 0);
    this.fail(ip, ident, u, outcome.sum, t2, wait);
    return wait;
  }

  // ---- internals ---------------------------------------------------------------------------

  /** The decayed penalty of an ident (auth_penalty_anvil_callback()). */
  private level(ident: string, t: number): number {
    const e = this.ips.get(ident);
    return e ? decay(e, t) : 0;
  }

  private succeeded(ident: string, u: string): void {
    this.ips.delete(ident);
    this.trusted.set(`${ident} ${u}`, this.now());
  }

  /** Record a failure answered `wait` ms after `t`; `sum` undefined = not checked. */
  private fail(ip: string, ident: string, u: string, sum: number | undefined, t: number, wait: number): void {
    const answered = t + wait;
    this.ips.sweep((v) => t - v.last > AUTH_PENALTY_TIMEOUT_SECS * 1000);
    const old = this.ips.get(ident);
    const n = old ? decay(old, t) : 0;
    const repeat = sum !== undefined && old !== undefined && n > 0 && old.sums.includes(sum);
    const sums = old && n > 0 ? old.sums : [];
    if (sum !== undefined && !repeat) { sums.push(sum); if (sums.length > CHECKSUM_COUNT) sums.shift(); }
    const e: AddrEntry = {
      penalty: repeat ? n : Math.min(n + 1, 1000),
      last: answered,
      failures: n === 0 ? 1 : (old?.failures ?? 0) + 1,
      sums,
    };
    this.ips.set(ident, e);
    if (e.penalty >= AUTH_PENALTY_MAX_PENALTY && (e.failures === AUTH_PENALTY_MAX_PENALTY || e.failures % 100 === 0)) {
      log.warn(`penalty: rip=${ip} user=<${u.slice(0, 64)}> failures reached ${e.failures}, delaying failures ${penaltyToSecs(e.penalty)}s`);
    }
    if (!this.perUser || repeat) return;
    this.users.sweep((v) => t - v.start >= this.userWindowMs);
    let ue = this.users.get(u);
    if (!ue || t - ue.start >= this.userWindowMs) ue = { start: t, count: 0, warned: false };
    ue.count++;
    if (ue.count > this.userLimit && !ue.warned) {
      ue.warned = true;
      log.warn(`penalty: user=<${u.slice(0, 64)}>: ${ue.count} failed logins within ${Math.round(this.userWindowMs / 1000)} s, not checking passwords from penalised addresses`);
    }
    this.users.set(u, ue);
  }

  private userOver(u: string, t: number): boolean {
    const ue = this.users.get(u);
    return ue !== undefined && t - ue.start < this.userWindowMs && ue.count >= this.userLimit;
  }

  private isTrusted(ident: string, u: string, t: number): boolean {
    const at = this.trusted.get(`${ident} ${u}`);
    return at !== undefined && t - at < this.trustMs;
  }
}

/** What AuthPenaltyTable.begin() answers. */
export interface PenaltyBegin {
  /** The address's decayed penalty before this attempt (finish() needs it back). */
  level: number;
  /** Set when the attempt is refused without checking the password: hold the answer this long. */
  refuseMs?: number;
}

/** What the caller tells AuthPenaltyTable.finish(): never the password, only its checksum. */
export interface PenaltyOutcome {
  result: VerifyResult['result'];
  /** The canonical user name of a success. */
  user?: string | undefined;
  /** CRC-32 of "user\0password" (a repeated wrong password does not escalate). */
  sum: number;
  level: number;
}

/**
 * The penalty table a check goes through: AuthPenalty itself in the process that holds it (the
 * master), or a client that asks the master's (master/master-anvil.ts, from a child process),
 * so that failures count the same wherever a client's connections land.
 */
export interface AuthPenaltyTable {
  begin(ip: string, user: string): PenaltyBegin | Promise<PenaltyBegin>;
  finish(ip: string, user: string, outcome: PenaltyOutcome): number | Promise<number>;
}

/** One password check through `table`: the answer to a failure is held as the table says. */
export async function checkWithPenalty(table: AuthPenaltyTable, sleep: (ms: number) => Promise<void>, dir: UserDirectory,
  ip: string, user: string, secret: string, req?: AuthRequestInfo): Promise<VerifyResult> {
  const b = await table.begin(ip, user);
  if (b.refuseMs !== undefined) { await sleep(b.refuseMs); return { result: 'mismatch' }; }
  const r = await dir.verifyPlain(user, secret, req);
  const u = userIdent(user.slice(0, 255));
  const wait = await table.finish(ip, user, { result: r.result, user: r.user, sum: crc32(`${u}\0${secret}`), level: b.level });
  if (wait > 0) await sleep(wait);
  return r;
}

/** `dir` with every verifyPlain() checked through `table` for client `ip`. */
export function penalizedDirectory(table: AuthPenaltyTable, sleep: (ms: number) => Promise<void>, dir: UserDirectory, ip: string): UserDirectory {
  return {
    lookup: (u) => dir.lookup(u),
    iterate: () => dir.iterate(),
    close: () => dir.close(),
    changeStamp: dir.changeStamp?.bind(dir),
    verifyPlain: (user: string, secret: string, req?: AuthRequestInfo) => checkWithPenalty(table, sleep, dir, ip, user, secret, req),
  };
}

/** The decayed penalty (auth_penalty_anvil_callback()). */
function decay(e: AddrEntry, t: number): number {
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

/** Dovecot time values: "2 secs", "500 msecs", "1 min", a bare number = seconds. */
function dovecotTimeMs(v: string | undefined, dflt: number): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(v ?? '');
  if (!m) return dflt;
  const n = Number(m[1]);
  const u = m[2]!.toLowerCase();
  if (u.startsWith('ms') || u.startsWith('milli')) return n;
  if (u === '' || u.startsWith('s')) return n * 1000;
  if (u.startsWith('m')) return n * 60_000;
  return dflt;
}

let shared: AuthPenalty | undefined;

/** The process-wide table every protocol shares (Dovecot: the one anvil process). */
export function sharedAuthPenalty(opts?: AuthPenaltyOptions): AuthPenalty {
  shared ??= new AuthPenalty(opts);
  return shared;
}
