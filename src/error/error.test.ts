/** error(8)/retry and discard(8) agents: status class, the code and text of the nexthop, defaults. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliverRequest } from '../global/deliver-request.ts';
import type { QueueFile } from '../global/queue-file-reader.ts';
import { ErrorAgent } from './error.ts';
import { DiscardAgent } from '../discard/discard.ts';

const req = (transport: string, nexthop: string): DeliverRequest => ({
  qf: { queueId: 'ABCDEF1' } as QueueFile, transport, nexthop, activeSince: Date.now(),
  recipients: [{ address: 'a@x.example', offset: 10 }, { address: 'b@y.example', offset: 20 }],
});

test('error bounces every recipient with the nexthop text; retry defers; wrong class is forced', async () => {
  let r = await new ErrorAgent().deliver(req('error', '5.1.6 User has moved to new@example.net'));
  assert.deepEqual(r.map((x) => [x.status, x.dsn, x.text, x.relay]), [
    ['bounced', '5.1.6', 'User has moved to new@example.net', 'none'], ['bounced', '5.1.6', 'User has moved to new@example.net', 'none']]);
  r = await new ErrorAgent().deliver(req('error', '4.7.1 not a temporary thing here'));
  assert.equal(r[0]!.dsn, '5.7.1');
  r = await new ErrorAgent().deliver(req('error', ''));
  assert.deepEqual([r[0]!.status, r[0]!.dsn, r[0]!.text], ['bounced', '5.0.0', 'unknown mail transport error']);
  r = await new ErrorAgent().deliver(req('retry', '5.7.0 maintenance'));
  assert.deepEqual([r[0]!.status, r[0]!.dsn, r[0]!.text], ['deferred', '4.7.0', 'maintenance']);
});

test('discard reports sent (never bounced), text from the nexthop or the recipient domain', async () => {
  let r = await new DiscardAgent().deliver(req('discard', ''));
  assert.deepEqual(r.map((x) => [x.status, x.dsn, x.text]), [['sent', '2.0.0', 'x.example'], ['sent', '2.0.0', 'y.example']]);
  r = await new DiscardAgent().deliver(req('discard', '5.0.0 never bounce'));
  assert.deepEqual([r[0]!.status, r[0]!.dsn, r[0]!.text], ['sent', '2.0.0', 'never bounce']);
});
