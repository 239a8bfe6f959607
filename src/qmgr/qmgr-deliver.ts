/**
 * qmgr-deliver - hand one entry to its delivery agent and record what happened to each
 * recipient (Postfix qmgr_deliver.c + the agents' deliver_completed()/bounce_append()/
 * defer_append()), in the order that keeps the queue file honest after a crash:
 *
 *   1. bounced  → record appended to bounce/<qid> (fsync'd)
 *      NOTIFY=SUCCESS delivered → record appended to trace/<qid> (fsync'd)
 *      deferred → record appended to defer/<qid> (the reason `postern queue list` shows)
 *   2. sent and bounced recipients: R → D in the queue file, one fdatasync for the batch,
 *      before this entry is reported finished (so before the next batch of the message runs
 *      to completion, and before the message leaves the active queue). Not when this was the
 *      message's last entry and every recipient is sent: the file is unlinked next.
 *      A 'sent' result with `durable` (virtual(8)'s grouped fsync of new/) is on disk only
 *      when that resolves: before its D record is written, or — when the file is unlinked
 *      next — before finishMessage() unlinks it (msg.durable). If it fails, the recipient
 *      is deferred instead.
 *   3. one log line per recipient (logDelivery).
 *
 * A crash between the agent's success and step 2 leaves R: that recipient is delivered again
 * after the restart — at most one duplicate, never a loss.
 *
 * The agent is the master.cf command of the transport (smtp, lmtp, virtual, local, pipe,
 * discard, error). A transport without a master.cf entry or without an implementation defers
 * with Postfix's "mail transport unavailable" (qmgr_deliver.c, qmgr_transport_unavailable).
 */
import { promises as fsp, constants as C } from 'node:fs';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { deferOnError, logDelivery } from '../global/deliver-request.ts';
import { isRedirect } from '../global/deliver-redirect.ts';
import type { MailQueue } from '../global/mail-queue.ts';
import { REC } from '../global/rec-type.ts';
import { writeFully } from '../util/fs-write.ts';
import { appendBounceLogs, type BounceLogEntry } from '../global/bounce-log.ts';
import { wantsNotice } from '../global/bounce-client.ts';
import { logger } from '../util/msg.ts';
import { suspendedText, type DeadDestinations } from './qmgr-dead.ts';
import { isUserVerify, isVerifyProbe, TRACE_FLAGS_ATTR, VRFY, type VerifyCache } from '../global/verify-client.ts';

/** Agents that can answer a verification probe without delivering (the others: assumed deliverable). */
const VERIFYING_AGENTS = new Set(['smtp', 'lmtp', 'virtual', 'local', 'pipe', 'error', 'discard']);
import type { QmgrEntry, QmgrMessage } from './qmgr-message.ts';

const log = logger('qmgr');

export interface DeliverContext {
  queue: MailQueue;
  /** master.cf service name → command (agent name); undefined when master.cf has no such service. */
  commandOf(transport: string): string | undefined;
  agents: ReadonlyMap<string, DeliveryAgent>;
  /** Agents of master.cf entries with their own -o overrides, by transport; before `agents`. */
  transportAgents?: ReadonlyMap<string, DeliveryAgent>;
  /** Address verification: where probe results go (global/verify-client.ts). */
  verify?: { cache: VerifyCache; negativeCache: boolean };
  /** The service name of a transport's delivery log lines (default: the transport). */
  logNameOf?(transport: string): string;
  signal?: AbortSignal;
  /** Destinations that are down (qmgr-dead.ts); without it every entry goes to its agent. */
  dead?: DeadDestinations;
}

function splitTyped(v: string | undefined, defType: string): [string | undefined, string | undefined] {
  if (!v) return [undefined, undefined];
  const m = /^([A-Za-z0-9-]+);\s*(.*)$/s.exec(v);
  return m ? [m[1]!, m[2]!] : [defType, v];
}

/** A RecipientResult as a bounce/defer/trace log record. */
export function logEntryOf(r: RecipientResult, action: string): BounceLogEntry {
  const [diagType, diagText] = splitTyped(r.diagnostic, 'smtp');
  const [mtaType, mtaName] = splitTyped(r.remoteMta, 'dns');
  return {
    recipient: r.recipient.address,
    original: r.recipient.orig,
    offset: r.recipient.offset,
    dsnOrigRcpt: r.recipient.orcpt,
    notifyFlags: r.recipient.notify ?? 0,
    status: r.dsn,
    action,
    diagType, diagText, mtaType, mtaName,
    reason: r.text,
  };
}

/** Run one entry through its agent and record the results. Never throws. */
export async function deliverEntry(ctx: DeliverContext, entry: QmgrEntry): Promise<void> {
  const msg = entry.message;
  const dead = ctx.dead?.get(entry.transport, entry.nexthop);
  if (dead) {
    // qmgr_defer_todo(): no attempt while the destination is dead
    const text = suspendedText(dead);
    await recordResults(ctx, msg, entry.transport, entry.recipients.map((recipient) => ({ recipient, status: 'deferred', dsn: dead.dsn, text, relay: 'none' })));
    return;
  }
  const { results, req } = await runAgent(ctx, entry, 0);
  ctx.dead?.record(ctx.commandOf(entry.transport), entry.transport, entry.nexthop, results);
  await recordResults(ctx, msg, entry.transport, results, req);
}

/** How many times one recipient may be handed on (mailbox_transport → fallback_transport ...). */
const MAX_REDIRECTS = 3;

/**
 * Call the transport's agent; results carrying a `redirect` (deliver-redirect.ts: local(8)'s
 * mailbox_transport/fallback_transport) are delivered at once through the named transport, as
 * Postfix's deliver_pass() does, and replaced by that transport's results.
 */
async function runAgent(ctx: DeliverContext, entry: QmgrEntry, depth: number): Promise<{ results: RecipientResult[]; req: DeliverRequest }> {
  const msg = entry.message;
  const userVerify = isUserVerify(msg.qf.attr(TRACE_FLAGS_ATTR));
  const verify = userVerify || isVerifyProbe(msg.qf.attr(TRACE_FLAGS_ATTR));
  const req: DeliverRequest = {
    qf: msg.qf, transport: entry.transport, nexthop: entry.nexthop,
    recipients: entry.recipients, activeSince: msg.activeSince, signal: ctx.signal,
    ...(verify ? { verify } : {}), ...(userVerify ? { userVerify } : {}),
  };
  let results: RecipientResult[];
  const command = ctx.commandOf(entry.transport);
  const agent = command === undefined ? undefined : ctx.transportAgents?.get(entry.transport) ?? ctx.agents.get(command);
  if (verify && agent && !VERIFYING_AGENTS.has(agent.name)) {
    // An agent that cannot answer probes itself (none of Postern's delivery agents today):
    // the address resolved to it, and is reported deliverable.
    results = entry.recipients.map((recipient) => ({ recipient, status: 'sent', dsn: '2.0.0', text: `delivery via ${entry.transport}: deliverable`, relay: entry.transport }));
  } else if (!agent) {
    // Postfix qmgr: "mail transport unavailable" when the transport cannot be reached.
    results = entry.recipients.map((recipient) => ({ recipient, status: 'deferred', dsn: '4.3.0', text: 'mail transport unavailable', relay: 'none' }));
  } else {
    try {
      results = await agent.deliver(req);
    } catch (e) {
      log.warn(`${msg.queueId}: ${entry.transport} agent failed: ${(e as Error).message}`);
      results = deferOnError(req, e);
    }
    // An agent that forgets a recipient must not lose it: defer what was not answered.
    const answered = new Set(results.map((r) => r.recipient.offset));
    for (const r of entry.recipients) {
      if (!answered.has(r.offset)) results.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: 'delivery agent returned no status', relay: 'none' });
    }
  }
  if (!results.some(isRedirect)) return { results, req };
  const out: RecipientResult[] = [];
  const groups = new Map<string, { transport: string; nexthop: string; recipients: RecipientResult['recipient'][] }>();
  for (const r of results) {
    if (!isRedirect(r)) { out.push(r); continue; }
    const { transport, nexthop } = r.redirect;
    if (transport === entry.transport || depth >= MAX_REDIRECTS) {
      log.warn(`${msg.queueId}: ${r.recipient.address}: mail transport redirect loop via ${transport} (check mailbox_transport and fallback_transport)`);
      out.push({ recipient: r.recipient, status: 'deferred', dsn: '4.3.5', text: 'mail system configuration error', relay: r.relay });
      continue;
    }
    const key = `${transport}\0${nexthop}`;
    let g = groups.get(key);
    if (!g) { g = { transport, nexthop, recipients: [] }; groups.set(key, g); }
    g.recipients.push(r.recipient);
  }
  for (const g of groups.values()) {
    const sub = await runAgent(ctx, { ...entry, transport: g.transport, nexthop: g.nexthop, recipients: g.recipients }, depth + 1);
    out.push(...sub.results);
  }
  return { results: out, req };
}

/** Steps 1-3 of the header comment, for results of an agent or of resolve. */
export async function recordResults(ctx: DeliverContext, msg: QmgrMessage, transport: string, results: RecipientResult[], req?: DeliverRequest): Promise<void> {
  const qid = msg.queueId;
  const userVerify = isUserVerify(msg.qf.attr(TRACE_FLAGS_ATTR));
  const probe = userVerify || isVerifyProbe(msg.qf.attr(TRACE_FLAGS_ATTR));
  let verifyTraces: BounceLogEntry[] = [];
  if (userVerify) ({ results, traces: verifyTraces } = recordUserVerify(ctx, msg, transport, results, req));
  else if (probe) results = recordProbe(ctx, msg, transport, results, req);
  const wantsTrace = (r: RecipientResult) => r.status === 'sent' && wantsNotice(r.recipient.notify, 'success');
  // The last entry of a message and every recipient of it delivered: finishMessage() unlinks
  // the queue file next, which says more than D records (Postfix's agents mark D without an
  // fsync; a crash before the unlink delivers again, as one before the mark would).
  const removedNext = msg.pending === 1 && results.every((r) => r.status === 'sent' && !wantsTrace(r))
    && !msg.deferred && !msg.bounced && !msg.traced && !msg.gone && verifyTraces.length === 0;
  // A delivery still reaching the disk (RecipientResult.durable): finishMessage() waits for it
  // before the unlink; otherwise it must be on disk before its D record is written.
  if (removedNext) {
    for (const r of results) if (r.durable) msg.durable.push(r);
  } else {
    await Promise.all(results.map(async (r) => {
      if (!r.durable) return;
      try { await r.durable; } catch (e) { notDurable(msg, r, e); }
    }));
  }
  const bounces: BounceLogEntry[] = [];
  const traces: BounceLogEntry[] = verifyTraces;
  const defers: BounceLogEntry[] = [];
  const done: RecipientResult[] = [];
  for (const r of results) {
    if (r.status === 'sent') {
      done.push(r);
      // Postfix trace_append(): the success notice's text is "delivery via RELAY: TEXT".
      const via = r.relay && r.relay !== 'none' ? `delivery via ${r.relay}: ` : '';
      if (wantsTrace(r)) traces.push(logEntryOf({ ...r, text: via + r.text }, transport === 'smtp' || transport === 'relay' ? 'relayed' : 'delivered'));
    } else if (r.status === 'bounced') {
      done.push(r);
      bounces.push(logEntryOf(r, 'failed'));
    } else {
      defers.push(logEntryOf(r, 'delayed'));
    }
  }
  try {
    await appendBounceLogs(ctx.queue, 'bounce', qid, bounces);
    await appendBounceLogs(ctx.queue, 'trace', qid, traces);
    await appendBounceLogs(ctx.queue, 'defer', qid, defers);
  } catch (e) {
    // Without the log the outcome would be lost: leave the recipients undone (retried later).
    log.warn(`${qid}: cannot append to bounce/defer log: ${(e as Error).message}`);
    for (const r of done) if (r.status === 'bounced') r.status = 'deferred';
    // Those recipients stay undone in the queue file: the message must stay queued.
    msg.deferred = true;
  }
  if (bounces.length) msg.bounced = true;
  if (traces.length) msg.traced = true;
  const toMark = done.filter((r) => r.status !== 'deferred');
  if (removedNext) {
    const offsets = new Set(toMark.map((r) => r.recipient.offset));
    for (const r of msg.qf.recipients) if (offsets.has(r.offset)) r.done = true;
  } else if (toMark.length) {
    try {
      const fh = await fsp.open(msg.qf.path, C.O_RDWR);
      try {
        for (const r of toMark) {
          if (r.recipient.offset === undefined) continue;
          await writeFully(fh, Buffer.from(REC.DONE), r.recipient.offset);
        }
        await fh.datasync();
      } finally { await fh.close(); }
      const offsets = new Set(toMark.map((r) => r.recipient.offset));
      for (const r of msg.qf.recipients) if (offsets.has(r.offset)) r.done = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') msg.gone = true;
      else log.warn(`${qid}: cannot update queue file: ${(e as Error).message}`);
      msg.deferred = true;
    }
  }
  if (defers.length) msg.deferred = true;
  const fakeReq: DeliverRequest = req ?? { qf: msg.qf, transport, nexthop: '', recipients: [], activeSince: msg.activeSince };
  const logName = ctx.logNameOf?.(transport) ?? transport;
  if (!probe) for (const r of results) logDelivery(logName, fakeReq, r);
}

/**
 * A 'sent' result whose delivery could not be made durable (its fsync failed): deferred, so
 * the queue file keeps the recipient and it is delivered again (at most a duplicate).
 */
export function notDurable(msg: QmgrMessage, r: RecipientResult, e: unknown): void {
  const why = e instanceof Error ? e.message : String(e);
  log.warn(`${msg.queueId}: to=<${r.recipient.address}>: delivered, but not known to be on disk (${why}): will be delivered again`);
  r.status = 'deferred';
  r.dsn = '4.3.0';
  r.text = `mail system error: ${why}`;
  delete r.durable;
}

/**
 * A verification probe's results (Postfix verify_append()): each recipient's status goes to the
 * verify cache under the address smtpd asked about, logged as Postfix logs probes
 * (status=deliverable / undeliverable, also for a deferral); the probe itself is finished: every recipient
 * counts as done, nothing is bounced, deferred or retried.
 */
function recordProbe(ctx: DeliverContext, msg: QmgrMessage, transport: string, results: RecipientResult[], req?: DeliverRequest): RecipientResult[] {
  const logName = ctx.logNameOf?.(transport) ?? transport;
  const fakeReq: DeliverRequest = req ?? { qf: msg.qf, transport, nexthop: '', recipients: [], activeSince: msg.activeSince };
  return results.map((r) => {
    const status = r.status === 'sent' ? VRFY.OK : r.status === 'bounced' ? VRFY.BOUNCE : VRFY.DEFER;
    // Postfix sent.c / bounce.c / defer.c: a deferred probe is logged "undeliverable" too.
    let shown = r.status === 'sent' ? 'deliverable' : 'undeliverable';
    // Postfix verify_append(): the original address (the one smtpd asked about) and, when the
    // address was rewritten, the final one too.
    const addrs = [...new Set([r.recipient.orig || r.recipient.address, r.recipient.address].map((a) => a.toLowerCase()))];
    try {
      for (const a of addrs) {
        if (ctx.verify?.cache.update(a, status, r.text, ctx.verify.negativeCache) === 'not-cached') shown = 'undeliverable-but-not-cached';
      }
    } catch (e) {
      log.warn(`${msg.queueId}: cannot update the address verification cache: ${(e as Error).message}`);
    }
    logDelivery(logName, fakeReq, { ...r, status: shown as RecipientResult['status'] });
    return { ...r, status: 'sent', durable: undefined, recipient: { ...r.recipient, notify: 0 } };
  });
}

/**
 * `sendmail -bv` results (Postfix sent.c / bounce.c / defer.c with DEL_REQ_FLAG_USR_VRFY, and
 * trace.c trace_append()): each recipient — each final address of an expansion — becomes a
 * trace log record, "deliverable" or "undeliverable" (a deferral too), its text prefixed with
 * "delivery via RELAY: ", and is logged so; the recipient itself is done (nothing bounced,
 * deferred or retried). The report is mailed when the message is finished (qmgr-active.ts).
 */
function recordUserVerify(ctx: DeliverContext, msg: QmgrMessage, transport: string, results: RecipientResult[], req?: DeliverRequest): { results: RecipientResult[]; traces: BounceLogEntry[] } {
  const logName = ctx.logNameOf?.(transport) ?? transport;
  const fakeReq: DeliverRequest = req ?? { qf: msg.qf, transport, nexthop: '', recipients: [], activeSince: msg.activeSince };
  const traces: BounceLogEntry[] = [];
  const done = results.map((r) => {
    const lines: RecipientResult[] = r.traces?.length
      ? r.traces.map((t) => ({ ...r, recipient: { ...r.recipient, address: t.address }, status: t.status, dsn: t.dsn, text: t.text }))
      : [r];
    for (const l of lines) {
      const action = l.status === 'sent' ? 'deliverable' : 'undeliverable';
      logDelivery(logName, fakeReq, { ...l, status: action as RecipientResult['status'] });
      const via = l.relay && l.relay !== 'none' ? `delivery via ${l.relay}: ` : '';
      traces.push(logEntryOf({ ...l, text: via + l.text }, action));
    }
    return { ...r, status: 'sent' as const, durable: undefined, recipient: { ...r.recipient, notify: 0 } };
  });
  return { results: done, traces };
}
