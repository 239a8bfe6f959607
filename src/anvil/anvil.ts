/**
 * anvil - the in-process equivalent of Postfix's anvil(8): per-client connection counts and
 * event rates, shared by every listener of one master process (all smtpd services, imapd,
 * pop3d), so that a client cannot escape a limit by spreading over processes. The servers know
 * it as the AnvilClient of global/anvil-client.ts; the master passes sharedAnvil() in.
 *
 * SUMMARY
 *   const a = sharedAnvil();                       // one table per process
 *   const { count, rate } = a.connect('smtp', '192.0.2.1');
 *   ... a.mail('smtp', addr) / rcpt / auth / newtls → the rate after this event
 *   a.disconnect('smtp', '192.0.2.1');
 *
 * DESCRIPTION
 *   As Postfix's anvil, an entry is keyed by "service:client-address" (the limits are "per
 *   client, to this service", postconf(5) smtpd_client_connection_count_limit), and holds the
 *   concurrent connection count plus five rate counters (connections, messages, recipients, new
 *   TLS sessions, AUTH commands). Rates use anvil.c's fixed window: the first event after
 *   anvil_rate_time_unit has passed since the window started resets all rate counters
 *   (ANVIL_REMOTE_INCR_RATE). An entry with no connection and an expired window is idle and is
 *   dropped by the next sweep (anvil.c anvil_remote_expire()).
 *
 * SECURITY
 *   Fed by the network: an attacker with many source addresses (a /64 of IPv6, a botnet) must
 *   not grow the table without bound. Postfix's anvil has no cap; here the table holds at most
 *   `maxEntries` entries and evicts the least recently used idle entry first (a Map in use
 *   order). Only when every entry holds a live connection is a busy entry evicted, which can
 *   only undercount that client (a limit becomes lenient, never wrongly strict).
 *
 * DIAGNOSTICS
 *   `statistics: max connection count N for (service:addr) at time` lines like anvil(8), from
 *   logStatistics() (the master may call it every anvil_status_update_time), and a warning when
 *   the table is full.
 *
 * PARAMETERS
 *   anvil_rate_time_unit, anvil_status_update_time
 */
import { logger } from '../util/msg.ts';
import type { AnvilClient, AnvilEvent, AnvilStatus } from '../global/anvil-client.ts';

const log = logger('anvil');

/** What anvil(8) keeps per (service, client). */
interface AnvilRemote {
  count: number;
  /** Start of the current rate window (ms). */
  start: number;
  /** Last use (ms), for expiry. */
  touched: number;
  connRate: number;
  mailRate: number;
  rcptRate: number;
  ntlsRate: number;
  authRate: number;
}

export interface AnvilOptions {
  /** anvil_rate_time_unit in milliseconds (default 60 s). */
  rateTimeUnitMs?: number;
  /** Most entries kept (default 100 000: ~20 MB worst case). */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const FIELD: Record<AnvilEvent, 'mailRate' | 'rcptRate' | 'ntlsRate' | 'authRate'> = {
  mail: 'mailRate', rcpt: 'rcptRate', newtls: 'ntlsRate', auth: 'authRate',
};

export class Anvil implements AnvilClient {
  rateTimeUnitMs: number;
  maxEntries: number;
  private readonly now: () => number;
  /** In least-recently-used-first order: every touch deletes and re-inserts. */
  private readonly table = new Map<string, AnvilRemote>();
  private lastSweep = 0;
  private fullWarned = 0;
  /** Peaks since the last logStatistics() (anvil(8) "statistics:" lines). */
  private maxCount = { value: 0, key: '', at: 0 };
  private maxRate = { value: 0, key: '', at: 0 };
  private maxSize = 0;
  /** Entries evicted because the table was full (a measure of address-spraying). */
  evictions = 0;

  constructor(opts: AnvilOptions = {}) {
    this.rateTimeUnitMs = opts.rateTimeUnitMs && opts.rateTimeUnitMs > 0 ? opts.rateTimeUnitMs : 60_000;
    this.maxEntries = opts.maxEntries && opts.maxEntries > 0 ? opts.maxEntries : 100_000;
    this.now = opts.now ?? Date.now;
  }

  get size(): number { return this.table.size; }

  /** A new connection: returns the concurrent count and the connection rate including it. */
  connect(service: string, addr: string): { count: number; rate: number } {
    const key = `${service}:${addr}`;
    const r = this.touch(key, true)!;
    this.incrRate(r);
    r.connRate++;
    r.count++;
    const t = this.now();
    if (r.count > this.maxCount.value) this.maxCount = { value: r.count, key, at: t };
    if (r.connRate > this.maxRate.value) this.maxRate = { value: r.connRate, key, at: t };
    return { count: r.count, rate: r.connRate };
  }

  /** The connection has ended (call exactly once per connect()). */
  disconnect(service: string, addr: string): void {
    const r = this.table.get(`${service}:${addr}`);
    if (r && r.count > 0) r.count--;
  }

  /** Count one event; returns its rate in the current window, this event included. */
  event(what: AnvilEvent, service: string, addr: string): number {
    const r = this.touch(`${service}:${addr}`, true)!;
    this.incrRate(r);
    return ++r[FIELD[what]];
  }

  mail(service: string, addr: string): number { return this.event('mail', service, addr); }
  rcpt(service: string, addr: string): number { return this.event('rcpt', service, addr); }
  auth(service: string, addr: string): number { return this.event('auth', service, addr); }
  newtls(service: string, addr: string): number { return this.event('newtls', service, addr); }

  /** anvil(8) "lookup": the state without counting anything (undefined = never seen or expired). */
  lookup(service: string, addr: string): AnvilStatus | undefined {
    const r = this.table.get(`${service}:${addr}`);
    if (!r) return undefined;
    if (r.start + this.rateTimeUnitMs < this.now()) return { count: r.count, connRate: 0, mailRate: 0, rcptRate: 0, ntlsRate: 0, authRate: 0 };
    return { count: r.count, connRate: r.connRate, mailRate: r.mailRate, rcptRate: r.rcptRate, ntlsRate: r.ntlsRate, authRate: r.authRate };
  }

  /** Log the peaks like anvil(8)'s anvil_status_dump() and reset them. */
  logStatistics(): void {
    const when = (t: number) => new Date(t).toString().slice(4, 24);
    if (this.maxCount.value > 0) log.info(`statistics: max connection count ${this.maxCount.value} for (${this.maxCount.key}) at ${when(this.maxCount.at)}`);
    if (this.maxRate.value > 0) log.info(`statistics: max connection rate ${this.maxRate.value}/${this.rateTimeUnitMs / 1000}s for (${this.maxRate.key}) at ${when(this.maxRate.at)}`);
    if (this.maxSize > 0) log.info(`statistics: max cache size ${this.maxSize} at ${when(this.now())}`);
    this.maxCount = { value: 0, key: '', at: 0 };
    this.maxRate = { value: 0, key: '', at: 0 };
    this.maxSize = 0;
  }

  /** Drop every entry (tests, `postern reload` keeps it: anvil state is volatile by design). */
  clear(): void { this.table.clear(); }

  // ---- internals ---------------------------------------------------------------------------

  /** ANVIL_REMOTE_INCR_RATE: a window older than the time unit restarts all rate counters. */
  private incrRate(r: AnvilRemote): void {
    const t = this.now();
    if (r.start + this.rateTimeUnitMs < t) {
      r.start = t;
      r.connRate = r.mailRate = r.rcptRate = r.ntlsRate = r.authRate = 0;
    }
  }

  /** Find or create the entry and mark it most recently used. */
  private touch(key: string, create: boolean): AnvilRemote | undefined {
    const t = this.now();
    let r = this.table.get(key);
    if (r) {
      this.table.delete(key);
    } else {
      if (!create) return undefined;
      this.sweep(t);
      if (this.table.size >= this.maxEntries) this.evict(t);
      r = { count: 0, start: t, touched: t, connRate: 0, mailRate: 0, rcptRate: 0, ntlsRate: 0, authRate: 0 };
    }
    r.touched = t;
    this.table.set(key, r);
    if (this.table.size > this.maxSize) this.maxSize = this.table.size;
    return r;
  }

  /**
   * Drop idle entries (no connection, window expired) from the old end of the use order; at
   * most once per second, and it stops at the first entry still in use recently, so a sweep
   * costs O(expired entries).
   */
  private sweep(t: number): void {
    if (t - this.lastSweep < 1000) return;
    this.lastSweep = t;
    for (const [k, r] of this.table) {
      if (r.touched + this.rateTimeUnitMs >= t) break;
      if (r.count === 0) this.table.delete(k);
    }
  }

  /** The table is full: evict the least recently used idle entry, else the least recently used. */
  private evict(t: number): void {
    let victim: string | undefined;
    let scanned = 0;
    for (const [k, r] of this.table) {
      if (r.count === 0) { victim = k; break; }
      if (++scanned >= 64) break; // bounded scan: O(1) per new entry
    }
    victim ??= this.table.keys().next().value;
    if (victim === undefined) return;
    this.table.delete(victim);
    this.evictions++;
    if (t - this.fullWarned > 60_000) {
      this.fullWarned = t;
      log.warn(`client table full (${this.maxEntries} entries): evicting least recently used clients; many client addresses are connecting`);
    }
  }
}

let shared: Anvil | undefined;

/**
 * The process-wide table every listener shares (Postfix: the one anvil(8) server per
 * instance). The first caller's options win; configureSharedAnvil() adjusts it (master start).
 */
export function sharedAnvil(opts?: AnvilOptions): Anvil {
  shared ??= new Anvil(opts);
  return shared;
}

/** Create the shared table from main.cf (anvil_rate_time_unit); called once by the master. */
export function configureSharedAnvil(c: { time(name: string): number }, opts: Omit<AnvilOptions, 'rateTimeUnitMs' | 'now'> = {}): Anvil {
  const a = sharedAnvil();
  // Reconfigured in place: listeners created earlier keep the same table.
  a.rateTimeUnitMs = (c.time('anvil_rate_time_unit') || 60) * 1000;
  if (opts.maxEntries && opts.maxEntries > 0) a.maxEntries = opts.maxEntries;
  return a;
}
