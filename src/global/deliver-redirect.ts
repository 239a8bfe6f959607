/**
 * deliver-redirect - an extension of CONTRACT 4 (deliver-request.ts): a delivery agent hands a
 * recipient back to qmgr for delivery by ANOTHER transport, as Postfix local(8) does with
 * deliver_pass() for `mailbox_transport`, `mailbox_transport_maps`, `fallback_transport` and
 * `fallback_transport_maps` (e.g. `mailbox_transport = lmtp:unix:private/dovecot-lmtp`).
 *
 * Shape: a RecipientResult with status 'deferred' (so a qmgr that does not know this extension
 * defers the recipient: the mail is never lost, never bounced) and a `redirect` field:
 *
 *   { status: 'deferred', dsn: '4.3.0', text: 'mail transport redirect to lmtp:unix:/x',
 *     relay: 'local', redirect: { transport: 'lmtp', nexthop: 'unix:/x' } }
 *
 * qmgr's duty (engineer "qmgr"): for a result with `redirect`, do NOT record a deferral and do
 * NOT apply backoff; queue the same recipient of the same queue file (in memory, no rewrite
 * of the file) for `redirect.transport` / `redirect.nexthop` at once, as Postfix's deliver_pass
 * does inside the local agent. A redirect to the transport that produced it is a configuration
 * loop: defer it normally with a warning. If `redirect.transport` is not in master.cf, defer
 * with "mail transport unavailable".
 */
import type { RecipientResult } from './deliver-request.ts';
import type { QueueRecipient } from './queue-file.ts';

export interface DeliverRedirect {
  /** master.cf service name, e.g. "lmtp", "dovecot". */
  transport: string;
  /** nexthop for that transport; the original request's nexthop when the setting gave none. */
  nexthop: string;
}

export type RedirectResult = RecipientResult & { redirect?: DeliverRedirect };

/** Parse `transport[:nexthop]` as Postfix deliver_pass() does; nexthop defaults to `fallbackNexthop`. */
export function parseTransportNexthop(value: string, fallbackNexthop: string): DeliverRedirect | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  const colon = v.indexOf(':');
  if (colon < 0) return { transport: v, nexthop: fallbackNexthop };
  const transport = v.slice(0, colon);
  const nexthop = v.slice(colon + 1);
  if (transport === '') return undefined;
  return { transport, nexthop: nexthop === '' ? fallbackNexthop : nexthop };
}

export function redirectResult(recipient: QueueRecipient, to: DeliverRedirect, relay: string): RedirectResult {
  return {
    recipient, status: 'deferred', dsn: '4.3.0', relay,
    text: `mail transport redirect to ${to.transport}:${to.nexthop}`,
    redirect: to,
  };
}

export function isRedirect(r: RecipientResult): r is RecipientResult & { redirect: DeliverRedirect } {
  return (r as RedirectResult).redirect !== undefined;
}
