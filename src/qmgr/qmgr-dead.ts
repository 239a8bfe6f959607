/**
 * qmgr-dead - the short-term "dead destination" cache (Postfix qmgr_queue_throttle() with
 * destination_concurrency_failed_cohort_limit = 1, qmgr_defer_todo()).
 *
 * When a delivery over a network transport (master.cf command smtp or lmtp) could not reach any
 * server of its destination — every recipient deferred with relay=none: connection refused,
 * timed out, no address, a TLS policy refusal — the destination (transport + nexthop) is dead
 * for minimal_backoff_time. Entries of that destination that wait in the scheduler, and those of
 * messages admitted meanwhile, are then deferred at once with Postfix's
 * "delivery temporarily suspended: <reason>" instead of one more connection attempt each. That
 * keeps a stopped relayhost from holding thousands of messages in the active queue (issue 4:
 * memory flat however many messages are queued). `postern queue flush` revives every
 * destination (Postfix: postqueue -f flushes dead destinations too). At most
 * qmgr_message_recipient_limit destinations are remembered, as in Postfix.
 */

export interface DeadReason { dsn: string; text: string }

/** master.cf commands whose "could not connect" means the whole destination is down. */
const NETWORK_AGENTS = new Set(['smtp', 'lmtp']);

export class DeadDestinations {
  private readonly dead = new Map<string, DeadReason & { until: number }>();
  private readonly holdMs: number;
  private readonly max: number;

  constructor(holdSeconds: number, max: number) {
    this.holdMs = Math.max(1, holdSeconds) * 1000;
    this.max = Math.max(1, max);
  }

  private static key(transport: string, nexthop: string): string { return `${transport}\0${nexthop}`; }

  /** The reason the destination is dead, or undefined when it may be tried. */
  get(transport: string, nexthop: string, now = Date.now()): DeadReason | undefined {
    const k = DeadDestinations.key(transport, nexthop);
    const d = this.dead.get(k);
    if (!d) return undefined;
    if (now >= d.until) { this.dead.delete(k); return undefined; }
    return d;
  }

  /**
   * After a delivery attempt: mark the destination dead when an agent of `command` reached no
   * server for any recipient (all deferred, relay none).
   */
  record(command: string | undefined, transport: string, nexthop: string, results: readonly { status: string; relay: string; dsn: string; text: string }[], now = Date.now()): void {
    if (command === undefined || !NETWORK_AGENTS.has(command) || results.length === 0) return;
    if (!results.every((r) => r.status === 'deferred' && r.relay === 'none')) return;
    if (this.dead.size >= this.max) {
      for (const [k, d] of this.dead) if (now >= d.until) this.dead.delete(k);
      if (this.dead.size >= this.max) return;
    }
    const r = results[0]!;
    this.dead.set(DeadDestinations.key(transport, nexthop), { dsn: r.dsn, text: r.text, until: now + this.holdMs });
  }

  /** postqueue -f: every destination may be tried again. */
  clear(): void { this.dead.clear(); }

  get size(): number { return this.dead.size; }
}

/** Postfix's wording for a recipient of a dead destination. */
export function suspendedText(reason: DeadReason): string {
  return reason.text.startsWith('delivery temporarily suspended: ') ? reason.text : `delivery temporarily suspended: ${reason.text}`;
}
