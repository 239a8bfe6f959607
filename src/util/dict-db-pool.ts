/**
 * dict-db-pool - database connections for the network tables (pgsql:, mysql:, ldap:): the host
 * list with Postfix's failover, a small pool of connections per host, and the sharing of those
 * pools by every table of the process that talks to the same server as the same user.
 *
 * Failover (Postfix dict_pgsql.c / dict_mysql.c `dict_*_get_active`): a host that answers is
 * used again; among several usable hosts one is taken at random, unix-socket hosts before TCP
 * ones (and, for pgsql, before connection URIs). A host that fails to connect or to answer a
 * query is left alone for `retry_interval` seconds (default 60) while the others are tried;
 * when every host is down the lookup is a temporary error. As Postfix ("don't blacklist the load
 * balancer"), a single host is listed twice, so one failure is retried once at once.
 *
 * Pools: Postfix keeps one connection per table per process and shares connections across
 * processes through proxymap(8). Postern's services share one process (or thread), so the pool
 * is shared directly: every table of that process with the same connection parameters (the
 * pool key) uses the same connections — `proxy:` adds nothing and is accepted for
 * compatibility. A pool holds at most `max` connections (the tables' `max_connections`,
 * a Postern parameter, default 4); lookups beyond that wait in order. A connection idle for
 * `idle_interval` seconds (default 60) is closed, as in Postfix.
 *
 * Nothing here waits forever: connecting and every query have a deadline (the tables'
 * `timeout`, default 10 s); a connection that misses it is destroyed and its host marked down.
 * Waiting in the queue for one of the `max` busy connections is not connecting: a burst of
 * lookups on a healthy server waits its turn (each query ahead is bounded by its own deadline)
 * and is never taken for a dead server.
 */

export type HostKind = 'unix' | 'inet' | 'uri';

export interface DbHost {
  /** As written in `hosts`, for log messages. */
  readonly label: string;
  readonly kind: HostKind;
}

interface HostState<H extends DbHost> { host: H; stat: 'untried' | 'active' | 'fail'; until: number }

const KIND_ORDER: HostKind[] = ['unix', 'inet', 'uri'];

/** The hosts of one table, with their up/down state. */
export class HostSet<H extends DbHost> {
  private readonly hosts: HostState<H>[];
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(hosts: H[], retrySeconds: number, now: () => number = Date.now) {
    const list = hosts.length === 1 ? [hosts[0]!, hosts[0]!] : hosts;
    this.hosts = list.map((host) => ({ host, stat: 'untried', until: 0 }));
    this.retryMs = retrySeconds * 1000;
    this.now = now;
  }

  /** The next host to use, or undefined when every host is down (dict_*_get_active). */
  pick(exclude: ReadonlySet<number> = new Set()): { host: H; index: number } | undefined {
    const t = this.now();
    const usable = (s: HostState<H>, i: number, want: 'active' | 'other') =>
      !exclude.has(i) && (want === 'active' ? s.stat === 'active' : s.stat !== 'active' && (s.stat !== 'fail' || s.until < t));
    for (const want of ['active', 'other'] as const) {
      for (const kind of KIND_ORDER) {
        const cands: number[] = [];
        this.hosts.forEach((s, i) => { if (s.host.kind === kind && usable(s, i, want)) cands.push(i); });
        if (cands.length) {
          const i = cands[Math.floor(Math.random() * cands.length)]!;
          return { host: this.hosts[i]!.host, index: i };
        }
      }
    }
    return undefined;
  }

  markActive(index: number): void { const s = this.hosts[index]; if (s) s.stat = 'active'; }

  markDown(index: number): void {
    const s = this.hosts[index];
    if (s) { s.stat = 'fail'; s.until = this.now() + this.retryMs; }
  }

  get size(): number { return this.hosts.length; }
}

/** Run `p` with a deadline; on expiry `onTimeout` runs and the result is a rejection. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string, onTimeout?: () => void): Promise<T> {
  if (!(ms > 0)) return p;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what}: timed out after ${ms / 1000} s`));
    }, ms);
    p.then((v) => { clearTimeout(timer); resolve(v); }, (e) => { clearTimeout(timer); reject(e); });
  });
}

export interface PoolDriver<C> {
  connect(): Promise<C>;
  /** Close (or destroy, when broken) one connection; never throws. */
  close(c: C, broken: boolean): void;
}

interface Waiter<C> { resolve: (c: C) => void; reject: (e: Error) => void }

/** A bounded pool of connections to one server. */
export class ConnPool<C> {
  private readonly driver: PoolDriver<C>;
  private readonly max: number;
  private readonly idleMs: number;
  private readonly connectMs: number;
  private readonly what: string;
  private readonly idle: { c: C; timer: NodeJS.Timeout }[] = [];
  private readonly waiters: Waiter<C>[] = [];
  private open = 0;
  private ended = false;

  /** `connectMs` bounds opening one connection (0: the driver's own timeout only); `what` names it in the error. */
  constructor(driver: PoolDriver<C>, max: number, idleSeconds: number, connectMs = 0, what = 'connect') {
    this.driver = driver;
    this.max = Math.max(1, max);
    this.idleMs = idleSeconds * 1000;
    this.connectMs = connectMs;
    this.what = what;
  }

  /** A connection for one query; give it back with release(). */
  acquire(): Promise<C> {
    if (this.ended) return Promise.reject(new Error('connection pool closed'));
    const i = this.idle.pop();
    if (i) { clearTimeout(i.timer); return Promise.resolve(i.c); }
    if (this.open < this.max) {
      this.open++;
      const p = this.driver.connect();
      // A connection that arrives after the deadline is not used: destroyed, its place freed.
      return withDeadline(p, this.connectMs, this.what, () => { p.then((c) => this.driver.close(c, true), () => {}); })
        .catch((e: unknown) => {
          this.open--;
          throw e instanceof Error ? e : new Error(String(e));
        });
    }
    return new Promise<C>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Give a connection back; a broken one is destroyed and its place freed. */
  release(c: C, broken = false): void {
    if (broken || this.ended) {
      this.open--;
      this.driver.close(c, broken);
      this.next();
      return;
    }
    const w = this.waiters.shift();
    if (w) { w.resolve(c); return; }
    const timer = setTimeout(() => {
      const k = this.idle.findIndex((x) => x.c === c);
      if (k >= 0) { this.idle.splice(k, 1); this.open--; this.driver.close(c, false); }
    }, this.idleMs);
    timer.unref();
    this.idle.push({ c, timer });
  }

  /** A freed place: open a new connection for the first waiter. */
  private next(): void {
    const w = this.waiters.shift();
    if (!w) return;
    this.acquire().then(w.resolve, w.reject);
  }

  /** The server is down: every waiting lookup fails now instead of queueing behind it. */
  failWaiters(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  end(): void {
    this.ended = true;
    this.failWaiters(new Error('connection pool closed'));
    for (const i of this.idle.splice(0)) { clearTimeout(i.timer); this.open--; this.driver.close(i.c, false); }
  }
}

const shared = new Map<string, { pool: unknown; refs: number }>();

/** The process's pool for `key` (created by `make` the first time); drop it with unsharePool(). */
export function sharedPool<P extends { end(): void }>(key: string, make: () => P): P {
  let e = shared.get(key);
  if (!e) { e = { pool: make(), refs: 0 }; shared.set(key, e); }
  e.refs++;
  return e.pool as P;
}

/** One table lets go of a shared pool; the last one closes it. */
export function unsharePool(key: string): void {
  const e = shared.get(key);
  if (!e) return;
  if (--e.refs <= 0) { shared.delete(key); (e.pool as { end(): void }).end(); }
}

/** How many tables share each pool (for tests and `postern check`). */
export function sharedPoolCount(): number { return shared.size; }

/** At most `max` operations at once; the rest wait in order (e.g. searches on one LDAP connection). */
export class Limiter {
  private readonly max: number;
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(max: number) { this.max = Math.max(1, max); }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }
}
