/**
 * qmgr-transport - per-transport and per-destination concurrency (Postfix qmgr_transport.c,
 * qmgr_queue.c): entries wait in one queue per (transport, nexthop); a transport runs at most
 * `maxproc` deliveries at once (master.cf column 7, `-` = default_process_limit) and a
 * destination at most `<transport>_destination_concurrency_limit` (default
 * default_destination_concurrency_limit; 0 = no per-destination limit). Destinations of a
 * transport are served round-robin so one busy domain does not starve the others.
 */
import type { QmgrEntry } from './qmgr-message.ts';

export interface TransportLimits {
  /** Deliveries at once over this transport (maxproc). */
  processLimit: number;
  /** Deliveries at once to one nexthop (0 = unlimited). */
  destinationConcurrency: number;
}

interface DestQueue { name: string; busy: number; todo: QmgrEntry[] }

class QmgrTransport {
  readonly name: string;
  readonly limits: TransportLimits;
  busy = 0;
  readonly queues = new Map<string, DestQueue>();
  /** Round-robin order of destinations with waiting entries. */
  ring: DestQueue[] = [];
  constructor(name: string, limits: TransportLimits) { this.name = name; this.limits = limits; }
}

export class QmgrScheduler {
  private readonly transports = new Map<string, QmgrTransport>();
  private readonly limitsOf: (transport: string) => TransportLimits;
  private readonly run: (entry: QmgrEntry) => Promise<void>;
  /** Entries waiting or running, over all transports. */
  inFlight = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(limitsOf: (transport: string) => TransportLimits, run: (entry: QmgrEntry) => Promise<void>) {
    this.limitsOf = limitsOf;
    this.run = run;
  }

  enqueue(e: QmgrEntry): void {
    let t = this.transports.get(e.transport);
    if (!t) { t = new QmgrTransport(e.transport, this.limitsOf(e.transport)); this.transports.set(e.transport, t); }
    let q = t.queues.get(e.nexthop);
    if (!q) { q = { name: e.nexthop, busy: 0, todo: [] }; t.queues.set(e.nexthop, q); }
    if (q.todo.length === 0) t.ring.push(q);
    q.todo.push(e);
    this.inFlight++;
    this.pump(t);
  }

  private pump(t: QmgrTransport): void {
    const destLimit = t.limits.destinationConcurrency;
    let scanned = 0;
    while (t.busy < t.limits.processLimit && t.ring.length > 0 && scanned < t.ring.length) {
      const q = t.ring.shift()!;
      if (destLimit > 0 && q.busy >= destLimit) { t.ring.push(q); scanned++; continue; }
      scanned = 0;
      const e = q.todo.shift()!;
      if (q.todo.length > 0) t.ring.push(q);
      t.busy++; q.busy++;
      void this.run(e).catch(() => { /* run() handles its own errors */ }).finally(() => {
        t.busy--; q.busy--;
        this.inFlight--;
        if (q.busy === 0 && q.todo.length === 0) t.queues.delete(q.name);
        this.pump(t);
        if (this.inFlight === 0) { const w = this.idleWaiters; this.idleWaiters = []; for (const f of w) f(); }
      });
    }
  }

  /** Resolves when nothing is waiting or running. */
  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** For tests and `qshape`-like views: running deliveries per transport. */
  busyOf(transport: string): number { return this.transports.get(transport)?.busy ?? 0; }
}
