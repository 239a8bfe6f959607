/**
 * qmgr-crash-child - runs the real Qmgr over a queue directory with an agent that "delivers"
 * by appending `qid recipient` lines to a file (fsync'd, like a mailbox write), slowly enough
 * that a SIGKILL from the parent lands in the middle of delivery batches. Exits 0 when the
 * queue is empty. Used by qmgr-crash.test.ts.
 *
 *   node qmgr-crash-child.ts QUEUE_DIR DELIVERIES_FILE
 */
import { openSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { parseMasterCf } from '../../src/global/master-cf.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../../src/global/deliver-request.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { Qmgr } from '../../src/qmgr/qmgr.ts';
import { bounce } from '../../src/master/master-clients.ts';
import { setLogSink } from '../../src/util/msg.ts';

const [dir, out] = process.argv.slice(2) as [string, string];
setLogSink(() => {});
const fd = openSync(out, 'a');
const agent: DeliveryAgent = {
  name: 'mailbox',
  async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
    const res: RecipientResult[] = [];
    for (const r of req.recipients) {
      await new Promise((ok) => setTimeout(ok, 1));
      writeSync(fd, `${req.qf.queueId} ${r.address}\n`);
      fsyncSync(fd);
      res.push({ recipient: r, status: 'sent', dsn: '2.0.0', text: 'delivered to mailbox', relay: 'mailbox' });
    }
    return res;
  },
};
const config = MainConfig.parse([
  `queue_directory = ${dir}`, 'myhostname = mx.example.test', 'mydomain = example.test', 'myorigin = example.test',
  'mydestination = localhost', 'default_transport = test', 'inet_interfaces = loopback-only',
  'test_destination_recipient_limit = 3',
].join('\n'), join(dir, 'main.cf'), dir);
const queue = new MailQueue(dir);
const qmgr = new Qmgr({
  config, queue, resolver: await TrivialRewrite.open(config), agents: new Map([['mailbox', agent]]), bounce, watch: false,
  masterEntries: parseMasterCf('test unix - - n - 8 mailbox\n', 'master.cf'),
});
await qmgr.start();
await qmgr.idle();
await qmgr.stop();
process.stdout.write('DONE\n');
