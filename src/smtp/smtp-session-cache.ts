/**
 * smtp-session-cache - connection caching for smtp(8)/lmtp(8), after Postfix's scache(8) and
 * smtp_connect.c: after a transaction the client sends RSET and, when the server answered 250,
 * keeps the connection idle for the next request to the same nexthop, for at most
 * smtp_connection_cache_time_limit (default 2s), so a burst of messages to one destination
 * reuses one session instead of one TCP+EHLO(+TLS) per message.
 *
 * Bounded: at most `maxEntries` idle connections in total (oldest closed first), and a
 * connection is reused at most smtp_connection_reuse_count_limit times (0 = no limit) and for
 * no longer than smtp_connection_reuse_time_limit after it was opened. A connection that was
 * closed by the server while idle, or that received unasked input (a 421 while idle), is
 * dropped on take().
 *
 * Postfix's "on demand" mode caches only while the active queue has a backlog for the
 * destination (qmgr tells smtp via the request); Postern's qmgr does not pass that hint, so
 * smtp_connection_cache_on_demand = yes caches after every transaction and the short time
 * limit bounds the cost (docs/smtp-client.md).
 */
import type { SmtpSession } from './smtp-proto.ts';

interface Entry { key: string; sess: SmtpSession; timer: NodeJS.Timeout; openedAt: number }

export interface SmtpSessionCacheOptions {
  idleMs: number;
  maxEntries: number;
  reuseCountLimit: number;
  reuseTimeMs: number;
  /** Politely end a connection that leaves the cache (QUIT + close). */
  quit: (sess: SmtpSession) => Promise<void>;
}

export class SmtpSessionCache {
  private readonly entries: Entry[] = [];
  private readonly opened = new WeakMap<SmtpSession, number>();
  private readonly o: SmtpSessionCacheOptions;

  constructor(o: SmtpSessionCacheOptions) { this.o = o; }

  get size(): number { return this.entries.length; }

  /** Remember when a session was opened (for the reuse time limit). */
  opening(sess: SmtpSession): void { this.opened.set(sess, performance.now()); }

  /** A usable idle session for this key, removed from the cache; undefined when none. */
  take(key: string): SmtpSession | undefined {
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.key !== key) continue;
      this.entries.splice(i, 1);
      clearTimeout(e.timer);
      if (e.sess.conn.isOpen && !e.sess.conn.hasPendingInput) return e.sess;
      e.sess.conn.close();
      i--;
    }
    return undefined;
  }

  /** Whether a session may go back to the cache at all. */
  mayCache(sess: SmtpSession): boolean {
    if (this.o.maxEntries <= 0 || this.o.idleMs <= 0) return false;
    if (this.o.reuseCountLimit > 0 && sess.reuseCount >= this.o.reuseCountLimit) return false;
    // An age, so on the monotonic clock (opening() too): a wall clock stepped back would keep
    // a connection in use past smtp_connection_reuse_time_limit for the whole step.
    const at = this.opened.get(sess) ?? performance.now();
    return performance.now() - at < this.o.reuseTimeMs;
  }

  put(key: string, sess: SmtpSession): void {
    while (this.entries.length >= this.o.maxEntries) {
      const old = this.entries.shift()!;
      clearTimeout(old.timer);
      void this.o.quit(old.sess);
    }
    const timer = setTimeout(() => {
      const i = this.entries.findIndex((e) => e.sess === sess);
      if (i >= 0) { this.entries.splice(i, 1); void this.o.quit(sess); }
    }, this.o.idleMs);
    timer.unref();
    this.entries.push({ key, sess, timer, openedAt: this.opened.get(sess) ?? performance.now() });
  }

  async closeAll(): Promise<void> {
    const all = this.entries.splice(0);
    await Promise.all(all.map((e) => { clearTimeout(e.timer); return this.o.quit(e.sess); }));
  }
}
