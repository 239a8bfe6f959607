/**
 * deliver-request - CONTRACT 4 of DESIGN.md: qmgr ⇄ delivery agent (Postfix
 * global/deliver_request.h). A request is one queue file plus a batch of its recipients that
 * resolved to the same transport and nexthop; the answer is one status per recipient.
 *
 * Rules every agent follows (STYLE §9 "in delivery, unknown means defer"):
 *  - An agent never throws for a recipient: any unexpected error is a 'deferred' status with
 *    dsn 4.3.0 and the error text (maddy queue.go:42; Postfix discard.c "Instead of throwing
 *    away mail..."). Only a definite 5.x.x answer is 'bounced'.
 *  - An agent does not touch the queue file: qmgr marks delivered recipients done (R → D, fsync)
 *    and records deferred/bounced ones (defer/ and bounce/ logs) from the statuses returned, and
 *    logs one line per recipient with logDelivery().
 *  - `signal` aborts a delivery (shutdown): the agent stops and reports 'deferred' for what it
 *    did not finish.
 */
import type { MainConfig } from './mail-conf.ts';
import type { MasterEntry } from './master-cf.ts';
import type { QueueFile } from './queue-file-reader.ts';
import type { QueueRecipient } from './queue-file.ts';
import { logger } from '../util/msg.ts';
import { metrics } from '../util/metrics.ts';

export interface DeliverRequest {
  /** The opened queue file (envelope read; content via qf.contentStream()). */
  qf: QueueFile;
  /** master.cf service name of the transport, e.g. "smtp", "relay", "virtual", "lmtp". */
  transport: string;
  /** Transport-specific destination: "[mx.example.com]:25", "example.com", "unix:/path", text for error. */
  nexthop: string;
  /** This batch's recipients; `address` is the resolved recipient (after rewriting/aliasing). */
  recipients: QueueRecipient[];
  /** When qmgr took the message (for delays=). */
  activeSince: number;
  signal?: AbortSignal;
  /**
   * An address verification probe (the queue file's trace_flags has DEL_REQ_FLAG_MTA_VRFY,
   * global/verify-client.ts): find out whether each recipient is deliverable, deliver nothing.
   * smtp/lmtp stop after RCPT; qmgr records the results in the verify cache, not in bounce logs.
   */
  verify?: boolean;
  /**
   * With `verify`: a `sendmail -bv` request (DEL_REQ_FLAG_USR_VRFY) rather than an MTA probe:
   * local(8) expands aliases, .forward and :include: files and reports each final address
   * (RecipientResult.traces); qmgr writes the results to the trace log for the report.
   */
  userVerify?: boolean;
}

export type DeliveryStatus = 'sent' | 'deferred' | 'bounced';

export interface RecipientResult {
  recipient: QueueRecipient;
  status: DeliveryStatus;
  /** RFC 3463 enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1". */
  dsn: string;
  /** What happened, as in Postfix's log: "250 2.0.0 Ok: queued as X", "delivered to maildir". */
  text: string;
  /** Where it went: "mx.example.com[192.0.2.1]:25", "virtual", "local", "none". */
  relay: string;
  /** RFC 3464 Remote-MTA / Diagnostic-Code for DSNs: "smtp; 550 5.1.1 <x>: user unknown". */
  diagnostic?: string;
  remoteMta?: string;
  /**
   * For status 'sent' by an agent whose last step is still reaching the disk (virtual(8)'s
   * grouped fsync of new/): qmgr marks the recipient done and removes the queue file only once
   * this resolves; if it rejects, the recipient is deferred (delivered again later: at most a
   * duplicate, never a loss).
   */
  durable?: Promise<void>;
  /**
   * `sendmail -bv` through an expansion (local(8) aliases, .forward): one line per final
   * address of this recipient, each reported on its own ("<final> (expanded from <orig>)").
   */
  traces?: { address: string; status: DeliveryStatus; dsn: string; text: string }[];
}

export interface DeliveryAgent {
  /** master.cf command name: smtp, lmtp, virtual, local, pipe, discard, error. */
  readonly name: string;
  deliver(req: DeliverRequest): Promise<RecipientResult[]>;
  close?(): Promise<void>;
}

/**
 * Makes one agent for a configuration: main.cf and master.cf's entries, both as the master read
 * them (an agent that needs its master.cf entry, pipe(8), finds it there and never reads the
 * file). qmgr is given a table of these by master.cf command name (the master's registry of
 * agents) and makes one agent per command with its own configuration, plus one per master.cf
 * entry that has `-o` overrides (`relay unix - - n - - smtp -o smtp_helo_name=...`): that one
 * gets main.cf with the entry's overrides (and service_name/process_name set, for
 * `syslog_name=postfix/$service_name`) and `entry`, the master.cf entry it serves.
 */
/**
 * Makes an agent from main.cf (with the entry's -o overrides), master.cf, and dovecot.conf when
 * the master has one (virtual(8) and local(8) read Pigeonhole's sieve settings from it).
 */
export type DeliveryAgentFactory = (config: MainConfig, masterCf: readonly MasterEntry[], entry?: MasterEntry, dovecot?: DovecotSettingsView) => Promise<DeliveryAgent>;

/** What an agent may read of dovecot.conf (global/dovecot-conf.ts DovecotConfig satisfies it). */
export interface DovecotSettingsView {
  get(name: string): string | undefined;
  getFor(name: string, ctx: { protocol?: string }): string | undefined;
}

/** Helper for agents: the same status for every recipient of a request. */
export function allRecipients(req: DeliverRequest, status: DeliveryStatus, dsn: string, text: string, relay: string, diagnostic?: string): RecipientResult[] {
  return req.recipients.map((recipient) => ({ recipient, status, dsn, text, relay, diagnostic }));
}

/** Map an unexpected exception to a deferral (never a bounce). */
export function deferOnError(req: DeliverRequest, err: unknown, relay = 'none'): RecipientResult[] {
  const msg = err instanceof Error ? err.message : String(err);
  return allRecipients(req, 'deferred', '4.3.0', `delivery temporarily suspended: ${msg}`, relay);
}

const log = logger('qmgr');

const DELIVERIES = metrics.counter('postern_deliveries_total', 'Recipient delivery attempts by transport (master.cf service) and status (sent, deferred, bounced, ...)', ['transport', 'status']);
const DELAY = metrics.histogram('postern_delivery_delay_seconds', 'Time from arrival to delivery of delivered recipients, by transport', ['transport'], [1, 5, 15, 60, 300, 900, 3600, 14400, 86400, 432000]);

function fmtDelay(ms: number): string {
  const s = ms / 1000;
  return s < 10 ? s.toFixed(s < 0.1 ? 2 : 1).replace(/\.0$/, '') : String(Math.round(s));
}

/**
 * One log line per recipient, in Postfix's log_adhoc() shape:
 * `QID: to=<a@b>, orig_to=<A@B>, relay=x[1.2.3.4]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 ok)`
 */
export function logDelivery(service: string, req: DeliverRequest, r: RecipientResult, now = Date.now()): void {
  const q = req.qf;
  const orig = r.recipient.orig && r.recipient.orig !== r.recipient.address ? `, orig_to=<${r.recipient.orig}>` : '';
  const total = now - q.arrival;
  const inQueue = Math.max(0, req.activeSince - q.arrival);
  const line = `${q.queueId}: to=<${r.recipient.address}>${orig}, relay=${r.relay}, delay=${fmtDelay(total)}, delays=${fmtDelay(inQueue)}/0/0/${fmtDelay(now - req.activeSince)}, dsn=${r.dsn}, status=${r.status} (${r.text})`;
  logger(service).info(line);
  DELIVERIES.labels(service, r.status).inc();
  if (r.status === 'sent') DELAY.labels(service).observe(Math.max(0, total) / 1000);
  void log;
}
