/**
 * bounce-client - the contract between qmgr and bounce(8): "send the notices owed for these log
 * records" (Postfix global/bounce.c, defer.c, trace.c: the client side of the bounce, defer and
 * trace services) and the RFC 3461 NOTIFY test both sides apply (global/dsn_mask.c).
 *
 * SUMMARY
 *   const bounce = makeBounce(config, queue, wake);   // BounceClientFactory, passed in by the master
 *   await bounce.notify(qf, 'failure' | 'delay' | 'success', entries)
 *       → true (sent, or nothing owed) | false (not queued: keep the logs, try again later)
 *   wantsNotice(recipient.notify, 'success')   → does this recipient want that notice?
 *
 * DESCRIPTION
 *   The records are those of global/bounce-log.ts. The implementation is bounce/bounce.ts
 *   (BounceService), which composes the DSN and submits it through cleanup; `wake` is called
 *   for each notice queued, as cleanup's trigger for qmgr.
 */
import type { MainConfig } from './mail-conf.ts';
import type { MailQueue } from './mail-queue.ts';
import type { QueueFile } from './queue-file-reader.ts';
import type { BounceLogEntry } from './bounce-log.ts';
import { DSN_NOTIFY } from './rec-type.ts';

/**
 * failure = bounce, delay = defer (delay warning), success = trace (NOTIFY=SUCCESS),
 * verify = trace for `sendmail -bv` (the "Mail Delivery Status Report", every recipient).
 */
export type NoticeKind = 'failure' | 'delay' | 'success' | 'verify';

export interface BounceClient {
  /** Is this the sender of our own postmaster notices (double_bounce_sender)? */
  isDoubleBounceSender(sender: string): boolean;
  /** Send the notices owed for `entries` (records of one log); false: try again later. */
  notify(qf: QueueFile, kind: NoticeKind, entries: readonly BounceLogEntry[]): Promise<boolean>;
}

/** How qmgr gets its bounce service: for its configuration and queue, waking qmgr when a notice is queued. */
export type BounceClientFactory = (config: MainConfig, queue: MailQueue, wake: (queueId: string) => void) => BounceClient;

/** Does this recipient want a notice of this kind (RFC 3461 §4.1)? */
export function wantsNotice(notify: number | undefined, kind: NoticeKind): boolean {
  const n = notify ?? 0;
  if (kind === 'verify') return true;   // Postfix DSN_NOTIFY_OVERRIDE
  if (n & DSN_NOTIFY.NEVER) return false;
  if (kind === 'success') return (n & DSN_NOTIFY.SUCCESS) !== 0;
  if (n === 0) return true;
  return (n & (kind === 'failure' ? DSN_NOTIFY.FAILURE : DSN_NOTIFY.DELAY)) !== 0;
}
