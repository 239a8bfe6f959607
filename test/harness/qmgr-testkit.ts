/**
 * qmgr-testkit - helpers for qmgr/bounce tests: a temp queue with a real configuration,
 * real trivial-rewrite, messages written through the real CleanupSession, and scriptable
 * delivery agents. Not used by production code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { parseMasterCf } from '../../src/global/master-cf.ts';
import type { DeliverRequest, DeliveryAgent, RecipientResult } from '../../src/global/deliver-request.ts';
import type { QueueRecipient } from '../../src/global/queue-file.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { createDiscardAgent } from '../../src/discard/discard.ts';
import { createErrorAgent } from '../../src/error/error.ts';
import { Qmgr } from '../../src/qmgr/qmgr.ts';
import { bounce } from '../../src/master/master-clients.ts';

export const TEST_MASTER_CF = `
test      unix  -       -       n       -       4       testagent
local     unix  -       n       n       -       -       testagent
discard   unix  -       -       n       -       -       discard
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
nowhere   unix  -       -       n       -       -       notimplemented
`;

export interface Delivery { qid: string; transport: string; nexthop: string; rcpts: string[]; sender: string; content: string }

/** Records every request; `decide` chooses each recipient's fate (default: sent). */
export class RecordingAgent implements DeliveryAgent {
  readonly name = 'testagent';
  readonly deliveries: Delivery[] = [];
  running = 0;
  maxRunning = 0;
  delayMs = 0;
  decide: (r: QueueRecipient, req: DeliverRequest, attempt: number) => Pick<RecipientResult, 'status' | 'dsn' | 'text'> & Partial<RecipientResult> = () => ({ status: 'sent', dsn: '2.0.0', text: 'delivered' });
  private attempts = new Map<string, number>();

  async deliver(req: DeliverRequest): Promise<RecipientResult[]> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      const content = (await req.qf.content()).toString('utf8');
      this.deliveries.push({ qid: req.qf.queueId, transport: req.transport, nexthop: req.nexthop, rcpts: req.recipients.map((r) => r.address), sender: req.qf.sender, content });
      return req.recipients.map((r) => {
        const key = `${req.qf.queueId}/${r.address}`;
        const n = (this.attempts.get(key) ?? 0) + 1;
        this.attempts.set(key, n);
        return { recipient: r, relay: 'test', ...this.decide(r, req, n) };
      });
    } finally { this.running--; }
  }

  to(addr: string): Delivery[] { return this.deliveries.filter((d) => d.rcpts.includes(addr)); }
}

export interface Env {
  dir: string;
  config: MainConfig;
  queue: MailQueue;
  agent: RecordingAgent;
  qmgr: Qmgr;
  submit(sender: string, rcpts: (string | QueueRecipient)[], body?: string, attrs?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function makeEnv(mainCf = '', masterCf = TEST_MASTER_CF, opts: { watch?: boolean; notify?: boolean } = {}): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-qmgr-'));
  const config = MainConfig.parse([
    `queue_directory = ${dir}`,
    'myhostname = mx.example.test',
    'mydomain = example.test',
    'myorigin = example.test',
    'mydestination = mx.example.test, localhost',
    'default_transport = test',
    'relay_transport = test',
    'local_recipient_maps =',
    'inet_interfaces = loopback-only',
    mainCf,
  ].join('\n'), join(dir, 'main.cf'), dir);
  const queue = new MailQueue(dir);
  queue.ensureDirs();
  const resolver = await TrivialRewrite.open(config);
  const agent = new RecordingAgent();
  // The recording agent also answers for the `smtp` command (for transports that must look
  // like network ones, e.g. the dead-destination cache).
  const agents = new Map<string, DeliveryAgent>([['testagent', agent], ['smtp', agent], ['discard', createDiscardAgent()], ['error', createErrorAgent()]]);
  const masterEntries = parseMasterCf(masterCf, 'master.cf', { defaultProcessLimit: 100 });
  const qmgr = new Qmgr({ config, queue, resolver, agents, masterEntries, bounce, watch: opts.watch ?? false });
  const env: Env = {
    dir, config, queue, agent, qmgr,
    async submit(sender, rcpts, body = 'Subject: test\n\nhello\n', attrs = {}) {
      const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false, notify: opts.notify === false ? undefined : (qid) => qmgr.notify(qid) }, queue, { sender, attrs, addMissingHeaders: true });
      for (const r of rcpts) c.addRecipient(typeof r === 'string' ? { address: r, orig: r } : r);
      await c.write(Buffer.from(body));
      const res = await c.finish();
      if ('reject' in res) throw new Error(res.reject.text);
      return res.queueId;
    },
    async close() {
      await qmgr.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** Wait until `cond` holds (polling every 20 ms) or fail after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every queue ID in a queue. */
export async function listQueue(queue: MailQueue, name: Parameters<MailQueue['list']>[0]): Promise<string[]> {
  const out: string[] = [];
  for await (const id of queue.list(name)) out.push(id);
  return out;
}
