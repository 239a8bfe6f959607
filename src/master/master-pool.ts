/**
 * master-pool - N worker processes shared by the services that accept connections, so that
 * smtpd, imapd, pop3d and lmtpd use every core (postern_process_count = N > 1, master-mode.ts).
 * Each worker runs one instance of every such service; the master keeps the listening sockets
 * and passes each accepted connection to the next worker (round robin), as master-process.ts
 * does for a service in a process of its own. One pool per value of N: every service whose
 * postern_process_count is N shares the same N processes.
 *
 *   pooled('smtpd', './master-smtpd.ts').start(ctx) → RunningService
 *
 * WHY ONE POOL AND NOT N PROCESSES PER SERVICE
 *   A Node process costs ~40-60 MB before it serves anyone (V8 heap, compiled code); Postfix's
 *   smtpd costs a few. With a process set per master.cf entry, a default system (smtp,
 *   submission, submissions, imap, pop3, lmtp) would hold 6 x N processes; here it holds N,
 *   each serving all of them, as the master's own process does with N = 1. The price: a crash
 *   in one service's code ends that worker's sessions of every service (as a crash of the
 *   master's process does today); the other workers go on serving.
 *
 * CONTRACT (beyond master-process.ts's, which holds for each instance)
 *  - start(ctx): the pool of N is forked if it is not running; the service's request (with
 *    maxproc / N, rounded up, as its session limit per worker) goes to every worker under an
 *    instance number (`sid`); start() resolves once every live worker has started it, rejects
 *    when one reports it failed (the instance is then stopped in every worker).
 *  - Connections: the master passes each to the next worker that accepts on that listener; a
 *    connection that finds none (every worker restarting) waits in the master up to 10 s.
 *  - A worker that dies (crash, SIGKILL, out of memory) is replaced alone, as Postfix's master
 *    replaces a dead smtpd: "warning: process postern/smtpd pid 4321 killed by signal 9" (one
 *    line per service the worker ran), then "warning: postern/worker: restarting one of 2
 *    processes in 1s"; the delay doubles per consecutive failure up to service_throttle_time
 *    and starts over once a worker has run that long. The other workers take every connection
 *    meanwhile; the new worker gets every service the pool runs.
 *  - An instance that calls ctx.failed() in one worker is stopped there and started again in
 *    that worker after the same backoff; the worker's other services go on.
 *  - stop(): the instance is stopped in every worker (sessions finish, up to 35 s); when the
 *    pool runs no service any more its workers exit.
 *  - wakeup() and triggers reach the instance in every worker; pids() lists the workers.
 */
import type { Socket } from 'node:net';
import { onTrigger, trigger } from '../global/mail-trigger.ts';
import { handOff } from './master-listen.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { forkChild, processRequest, ProcessExitError, STOP_KILL_MS, type ChildMessage, type ForkedChild, type ProcessRequest } from './master-process.ts';
import { processCount } from './master-mode.ts';
import { logger } from '../util/msg.ts';

const HOLD_MS = 10_000;
const HOLD_MAX = 256;
const log = logger('master');

interface Worker {
  child: ForkedChild;
  /** sid → listener indexes the instance accepts on in this worker. */
  accepts: Map<number, Set<number>>;
}

/** One service instance spread over the pool. */
interface PoolService {
  sid: number;
  name: string;
  req: ProcessRequest;
  ctx: ServiceContext;
  /** Per worker: resolve/reject of the pending start. */
  starting: Map<Worker, { ok: () => void; fail: (e: Error) => void }>;
  stopping: Map<Worker, () => void>;
  next: Map<number, number>;
  routed: Set<number>;
  pending: Map<number, { sock: Socket; timer: NodeJS.Timeout }[]>;
  stopped: boolean;
}

let lastSid = 0;
const pools = new Map<number, Pool>();

class Pool {
  readonly n: number;
  readonly workers: Worker[] = [];
  readonly services = new Map<number, PoolService>();
  private failures = 0;
  private throttleMs = 60_000;
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Dead workers whose replacement is scheduled (open() must not fork them twice). */
  private respawning = 0;

  constructor(n: number) { this.n = n; }

  open(throttleMs: number): void {
    this.throttleMs = throttleMs;
    while (this.workers.length + this.respawning < this.n) this.spawn();
  }

  live(): Worker[] { return this.workers.filter((w) => w.child.alive() && w.child.proc.connected); }

  private spawn(): Worker {
    const w: Worker = { child: undefined as unknown as ForkedChild, accepts: new Map() };
    w.child = forkChild('worker', log, (m) => this.onMessage(w, m));
    this.workers.push(w);
    void w.child.exited.then(({ code, signal }) => this.onExit(w, code, signal));
    for (const s of this.services.values()) if (!s.stopped) this.request(s, w);
    return w;
  }

  request(s: PoolService, w: Worker): void {
    w.child.post({ type: 'request', sid: s.sid, req: s.req });
  }

  private onMessage(w: Worker, m: ChildMessage): void {
    if (m.type === 'trigger') {
      // A trigger for a service this pool runs came from a worker that has no listener for it.
      if (![...this.services.values()].some((s) => s.name === m.service)) trigger(m.service, m.what);
      return;
    }
    if (m.type !== 'started' && m.type !== 'accept' && m.type !== 'failed' && m.type !== 'stopped') return;
    const s = this.services.get(m.sid);
    if (!s) return;
    if (m.type === 'started') { s.starting.get(w)?.ok(); s.starting.delete(w); return; }
    if (m.type === 'stopped') { w.accepts.delete(s.sid); s.stopping.get(w)?.(); s.stopping.delete(w); return; }
    if (m.type === 'accept') {
      let a = w.accepts.get(s.sid);
      if (!a) w.accepts.set(s.sid, a = new Set());
      a.add(m.l);
      if (!s.routed.has(m.l)) { s.routed.add(m.l); s.ctx.listeners[m.l]?.accept(route(this, s, m.l)); }
      flushPending(s, m.l, w);
      return;
    }
    // failed
    const err = new ProcessExitError(m.error, w.child.pid, 1, null);
    const pendingStart = s.starting.get(w);
    if (pendingStart) { s.starting.delete(w); pendingStart.fail(err); return; }
    if (s.stopped) return;
    w.accepts.delete(s.sid);
    s.ctx.log.warn(`${m.error.split('\n')[0]}`);
    const delay = this.backoff(w.child.startedAt);
    log.warn(`process postern/${s.name} pid ${w.child.pid} exit status 1`);
    log.warn(`postern/${s.name}: restarting in process ${w.child.pid} in ${fmt(delay)}`);
    w.child.post({ type: 'stop', sid: s.sid });
    this.later(delay, () => { if (!s.stopped && w.child.alive()) this.request(s, w); });
  }

  private onExit(w: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const i = this.workers.indexOf(w);
    if (i >= 0) this.workers.splice(i, 1);
    const err = new ProcessExitError(signal ? `worker killed by ${signal}` : `worker exited with status ${code}`, w.child.pid, code, signal);
    for (const s of this.services.values()) {
      s.starting.get(w)?.fail(err);
      s.starting.delete(w);
      s.stopping.get(w)?.();
      s.stopping.delete(w);
    }
    if (this.closed) return;
    for (const name of new Set([...this.services.values()].map((s) => s.name))) log.warn(`process postern/${name} pid ${w.child.pid} ${err.status}`);
    const delay = this.backoff(w.child.startedAt);
    log.warn(`postern/worker: restarting one of ${this.n} processes in ${fmt(delay)}`);
    for (const s of this.services.values()) s.ctx.changed?.();
    this.respawning++;
    this.later(delay, () => {
      this.respawning--;
      if (this.closed) return;
      this.spawn();
      for (const s of this.services.values()) s.ctx.changed?.();
    });
  }

  /** Postfix's throttle: 1 s doubling per consecutive failure, up to service_throttle_time. */
  private backoff(startedAt: number): number {
    if (performance.now() - startedAt >= this.throttleMs) this.failures = 0;
    this.failures++;
    return Math.min(1000 * 2 ** (this.failures - 1), this.throttleMs);
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  /** No service left: the workers exit (after stopping what they still run). */
  async close(): Promise<void> {
    this.closed = true;
    if (pools.get(this.n) === this) pools.delete(this.n);
    for (const t of this.timers) clearTimeout(t);
    await Promise.all(this.workers.map(async (w) => {
      if (!w.child.alive()) return;
      if (!w.child.post({ type: 'exit' })) w.child.proc.kill('SIGTERM');
      const t = setTimeout(() => { w.child.proc.kill('SIGKILL'); }, STOP_KILL_MS);
      await w.child.exited;
      clearTimeout(t);
    }));
  }
}

const fmt = (ms: number) => (ms >= 1000 ? `${Math.round(ms / 1000)}s` : `${ms}ms`);

/** The master's listener route of one instance: round robin over the workers that accept. */
function route(pool: Pool, s: PoolService, l: number): (sock: Socket) => void {
  return handOff((sock: Socket) => {
    const able = pool.live().filter((w) => w.accepts.get(s.sid)?.has(l));
    if (able.length === 0) {
      const q = s.pending.get(l) ?? [];
      if (q.length >= HOLD_MAX || s.stopped) { sock.destroy(); return; }
      const timer = setTimeout(() => { s.pending.set(l, (s.pending.get(l) ?? []).filter((h) => h.sock !== sock)); sock.destroy(); }, HOLD_MS);
      timer.unref();
      q.push({ sock, timer });
      s.pending.set(l, q);
      return;
    }
    const i = (s.next.get(l) ?? 0) % able.length;
    s.next.set(l, i + 1);
    pass(able[i]!, s, l, sock);
  });
}

function pass(w: Worker, s: PoolService, l: number, sock: Socket): void {
  // On a send error (the worker just died) the connection is closed: the client retries.
  if (!w.child.post({ type: 'conn', sid: s.sid, l }, sock, (err) => { if (err) sock.destroy(); })) sock.destroy();
}

function flushPending(s: PoolService, l: number, w: Worker): void {
  const q = s.pending.get(l);
  if (!q?.length) return;
  s.pending.delete(l);
  for (const h of q) { clearTimeout(h.timer); if (!h.sock.destroyed) pass(w, s, l, h.sock); }
}

export function pooled(name: string, module: string): ServiceImpl {
  return {
    name,
    async start(ctx: ServiceContext): Promise<RunningService> {
      const n = processCount(name, ctx.entry.maxproc, ctx.config);
      let pool = pools.get(n);
      if (!pool) { pool = new Pool(n); pools.set(n, pool); }
      let throttle = 60;
      try { throttle = ctx.config.time('service_throttle_time') || 60; } catch { /* Postfix's default */ }
      // maxproc limits the sessions of the service: shared out among the workers.
      const maxproc = ctx.entry.maxproc === 0 ? 0 : Math.max(1, Math.ceil(ctx.entry.maxproc / n));
      const s: PoolService = {
        sid: ++lastSid, name, req: processRequest(ctx, module, maxproc), ctx,
        starting: new Map(), stopping: new Map(), next: new Map(), routed: new Set(), pending: new Map(), stopped: false,
      };
      const p = pool;
      const starts: Promise<void>[] = [];
      // Registered before the workers are forked: a new worker is given every service of the pool.
      const waitStart = (w: Worker) => starts.push(new Promise<void>((ok, fail) => { s.starting.set(w, { ok, fail }); }));
      p.services.set(s.sid, s);
      const before = new Set(p.workers);
      p.open(throttle * 1000);
      for (const w of p.workers) {
        waitStart(w);
        if (before.has(w)) p.request(s, w);   // new workers were sent it by spawn()
      }
      const offTrigger = onTrigger(name, (what) => { for (const w of p.live()) w.child.post({ type: 'trigger', service: name, what }); });
      const stop = async (): Promise<void> => {
        if (s.stopped) return;
        s.stopped = true;
        offTrigger();
        for (const q of s.pending.values()) for (const h of q) { clearTimeout(h.timer); h.sock.destroy(); }
        s.pending.clear();
        await Promise.all(p.live().map((w) => new Promise<void>((done) => {
          const t = setTimeout(done, STOP_KILL_MS);
          s.stopping.set(w, () => { clearTimeout(t); done(); });
          w.child.post({ type: 'stop', sid: s.sid });
        })));
        p.services.delete(s.sid);
        for (const w of p.workers) w.accepts.delete(s.sid);
        if (p.services.size === 0) await p.close();
      };
      const results = await Promise.allSettled(starts);
      const failed = results.find((r) => r.status === 'rejected' && r.reason instanceof ProcessExitError && !/^worker /.test(r.reason.message));
      if (failed || p.live().length === 0) {
        await stop();
        throw failed ? (failed as PromiseRejectedResult).reason : new Error(`${name}: no worker process could start it`);
      }
      return {
        pids: () => p.live().map((w) => w.child.pid),
        stop,
        wakeup() { for (const w of p.live()) w.child.post({ type: 'wakeup', sid: s.sid }); },
      };
    },
  };
}
