/**
 * discard - discard(8): the delivery agent that throws mail away and reports it delivered
 * (Postfix discard.c). Used by `discard:` entries in transport_maps, access maps (DISCARD is
 * handled in smtpd) and master.cf `discard unix - - n - - discard`.
 *
 * DESCRIPTION
 *   Every recipient of the request gets status "sent" with relay=none. The nexthop is the
 *   reason text: an optional RFC 3463 code and text (`discard:2.0.0 silently dropped`); without
 *   a code, 2.0.0 is used; an empty nexthop (`discard:`) gives the recipient's domain as Postfix
 *   does (the resolver puts the domain in nexthop). A non-2.X.X code in the nexthop is replaced
 *   by 2.0.0, since discarding is always a success.
 *
 * SECURITY
 *   Reads nothing but the request.
 *
 * DIAGNOSTICS
 *   `QID: to=<a@b>, relay=none, delay=0.1, delays=0/0/0/0, dsn=2.0.0, status=sent (example.com)`
 *
 * PARAMETERS
 *   none
 */
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { dsnSplit } from '../global/dsn-split.ts';

export class DiscardAgent implements DeliveryAgent {
  readonly name = 'discard';

  async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
    return req.recipients.map((recipient) => {
      let { dsn, text } = dsnSplit('2.0.0', req.nexthop.trim());
      if (!dsn.startsWith('2.')) dsn = '2.0.0';
      if (!text) text = recipient.address.slice(recipient.address.lastIndexOf('@') + 1) || 'discarded';
      return { recipient, status: 'sent' as const, dsn, text, relay: 'none' };
    });
  }
}

export function createDiscardAgent(): DeliveryAgent { return new DiscardAgent(); }
