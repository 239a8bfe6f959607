/**
 * error - error(8) and its `retry` clone: the delivery agents that fail every recipient with
 * the text of the nexthop (Postfix error.c). The resolver sends here `error:` transport_maps
 * entries, relocated_maps hits ("5.1.6 User has moved to X") and bad addresses.
 *
 * DESCRIPTION
 *   The nexthop is an optional RFC 3463 code and a reason. Under the master.cf service name
 *   `retry` (Postfix: `retry unix - - n - - error`), every recipient is deferred with a 4.X.X
 *   code (default 4.0.0); under any other name, every recipient is bounced with a 5.X.X code
 *   (default 5.0.0). A code of the wrong class is forced to the right class, as error.c does
 *   (the first digit is replaced). An empty nexthop gives "unknown mail transport error".
 *
 * SECURITY
 *   Reads nothing but the request.
 *
 * DIAGNOSTICS
 *   `QID: to=<a@b>, relay=none, ..., dsn=5.1.6, status=bounced (User has moved to new@example.com)`
 *
 * PARAMETERS
 *   none
 */
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../global/deliver-request.ts';
import { dsnSplit } from '../global/dsn-split.ts';

export class ErrorAgent implements DeliveryAgent {
  readonly name = 'error';

  async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
    const retry = req.transport === 'retry';
    const split = dsnSplit(retry ? '4.0.0' : '5.0.0', req.nexthop.trim());
    let dsn = split.dsn;
    const want = retry ? '4' : '5';
    if (dsn[0] !== want) dsn = want + dsn.slice(1);
    const text = split.text || 'unknown mail transport error';
    return req.recipients.map((recipient) => ({
      recipient, status: retry ? 'deferred' as const : 'bounced' as const, dsn, text, relay: 'none',
      diagnostic: `X-Postfix; ${text}`,
    }));
  }
}

export function createErrorAgent(): DeliveryAgent { return new ErrorAgent(); }
