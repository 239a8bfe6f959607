/**
 * qmgr-message - one message in the active queue (Postfix qmgr_message.c): the opened queue
 * file, its not-yet-delivered recipients resolved through trivial-rewrite, and those recipients
 * grouped into delivery requests ("entries") by transport and nexthop, at most
 * `<transport>_destination_recipient_limit` recipients per entry (qmgr_message_assign()).
 *
 * Resolve outcomes that never reach an agent (qmgr_message_resolve()):
 *   flags.fail   → deferred, 4.3.0 "address resolver failure" (a table is down: retry later)
 *   flags.error  → bounced, the error text from resolve (5.1.3 bad address syntax)
 * relocated_maps and `error:` transport entries are resolved to the error transport and are
 * bounced by the error(8) agent with their text ("5.1.6 User has moved to ...").
 *
 * Content filtering overrides the address resolver (qmgr_message_resolve(), FILTER_README): a
 * queue file with a content filter (the L record: content_filter or a FILTER action) sends
 * every recipient, as written in the queue file, to the filter's transport and nexthop; a
 * filter without a nexthop ("smtp:" or "smtp") uses $default_filter_nexthop, else the
 * recipient's domain, else $myhostname. Address verification probes are never filtered
 * (`filter` is then not given). A redirect address (the queue file's > record, a REDIRECT
 * action) overrides all else: every recipient is resolved and delivered as that address, and
 * the content filter is not used.
 */
import type { QueueFile } from '../global/queue-file-reader.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import type { QueueName } from '../global/mail-queue.ts';
import type { RecipientResult } from '../global/deliver-request.ts';
import type { ResolveReply } from '../global/resolve-client.ts';

export interface Resolver {
  resolve(address: string, sender?: string): Promise<ResolveReply>;
}

/** What assign() needs for a content filter: default_filter_nexthop, myhostname. */
export interface FilterRoute {
  /** The queue file's content filter "transport[:nexthop]". */
  filter: string;
  defaultNexthop: string;
  myhostname: string;
}

/** transport and nexthop of a content filter for one recipient (qmgr_message_resolve()). */
export function filterDestination(f: FilterRoute, recipient: string): { transport: string; nexthop: string } {
  const i = f.filter.indexOf(':');
  const transport = i < 0 ? f.filter : f.filter.slice(0, i);
  let nexthop = i < 0 ? '' : f.filter.slice(i + 1);
  if (!nexthop) nexthop = f.defaultNexthop;
  if (!nexthop) {
    const at = recipient.lastIndexOf('@');
    nexthop = at >= 0 && at < recipient.length - 1 ? recipient.slice(at + 1) : f.myhostname;
  }
  return { transport, nexthop };
}

/** One delivery request in waiting: recipients of one message for one transport:nexthop. */
export interface QmgrEntry {
  message: QmgrMessage;
  transport: string;
  nexthop: string;
  recipients: QueueRecipient[];
}

/** A recipient that resolve already decided (no agent involved). */
export interface QmgrEarlyResult {
  recipient: QueueRecipient;
  status: 'deferred' | 'bounced';
  dsn: string;
  text: string;
}

export class QmgrMessage {
  readonly qf: QueueFile;
  /** The queue it came from (incoming or deferred); it now lives in active. */
  readonly from: QueueName;
  readonly activeSince: number;
  /** Entries handed to the scheduler and not finished yet. */
  pending = 0;
  /** Some recipient was deferred in this attempt. */
  deferred = false;
  /** Some recipient bounced in this attempt (bounce log written). */
  bounced = false;
  /** Some delivered recipient asked for NOTIFY=SUCCESS (trace log written). */
  traced = false;
  /** The queue file vanished from active (postsuper -d/-h while delivering). */
  gone = false;
  /** Sent results still reaching the disk (RecipientResult.durable): awaited before the unlink. */
  durable: RecipientResult[] = [];
  /**
   * A bounce, defer or trace log, or the delay-warning marker, may exist for this queue ID
   * from before this attempt. False for a file cleanup just committed and named in its
   * trigger (a new, unique queue ID, never in the active queue before): then only the logs
   * this attempt writes (bounced, traced, deferred) are looked for when the file is removed.
   */
  oldLogs = true;
  /** Number of recipients held in memory (for qmgr_message_recipient_limit). */
  readonly rcptCount: number;

  constructor(qf: QueueFile, from: QueueName, activeSince: number) {
    this.qf = qf;
    this.from = from;
    this.activeSince = activeSince;
    this.rcptCount = qf.recipients.length;
  }

  get queueId(): string { return this.qf.queueId; }

  /**
   * Resolve each recipient not yet done and group them. `recipientLimit(transport)` gives
   * `<transport>_destination_recipient_limit` (0 = no limit).
   */
  async assign(resolver: Resolver, recipientLimit: (transport: string) => number, filter?: FilterRoute, redirect?: string): Promise<{ entries: QmgrEntry[]; early: QmgrEarlyResult[] }> {
    const groups = new Map<string, QmgrEntry[]>();
    const early: QmgrEarlyResult[] = [];
    const entries: QmgrEntry[] = [];
    for (const r of this.qf.recipients) {
      if (r.done) continue;
      let reply: ResolveReply;
      try {
        // REDIRECT overrides all else (qmgr_message_resolve()): every recipient goes there.
        reply = await resolver.resolve(redirect ?? r.address, this.qf.sender);
      } catch (e) {
        early.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: `address resolver failure: ${(e as Error).message}` });
        continue;
      }
      if (reply.flags.fail) {
        early.push({ recipient: r, status: 'deferred', dsn: '4.3.0', text: 'address resolver failure' });
        continue;
      }
      if (reply.flags.error && reply.transport !== 'error') {
        early.push({ recipient: r, status: 'bounced', dsn: '5.1.3', text: 'bad address syntax' });
        continue;
      }
      if (filter && !redirect) {
        // Content filtering overrides the address resolver: the recipient as queued.
        const d = filterDestination(filter, r.address);
        reply = { ...reply, transport: d.transport, nexthop: d.nexthop, recipient: r.address };
      }
      const key = `${reply.transport}\0${reply.nexthop}`;
      let list = groups.get(key);
      if (!list) { list = []; groups.set(key, list); }
      const limit = recipientLimit(reply.transport);
      let cur = list[list.length - 1];
      if (!cur || (limit > 0 && cur.recipients.length >= limit)) {
        cur = { message: this, transport: reply.transport, nexthop: reply.nexthop, recipients: [] };
        list.push(cur);
        entries.push(cur);
      }
      // The agent sees the resolved address; the queue file keeps the record as received.
      cur.recipients.push(reply.recipient && reply.recipient !== r.address ? { ...r, address: reply.recipient, orig: r.orig ?? r.address } : r);
    }
    return { entries, early };
  }
}
