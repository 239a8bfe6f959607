/**
 * queue-message - one message into a test's private queue the way smtpd or pickup puts it there:
 * through cleanup (CleanupSession), so the queue file is a real one; returns it opened for a
 * delivery agent (qmgr hands agents the same QueueFile).
 *
 *   const qf = await queueMessage(queue, { sender: 's@x.test', rcpts: [{ address: 'r@y.test' }], body: 'Subject: x\n\nbody\n' });
 */
import assert from 'node:assert/strict';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import type { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';

export async function queueMessage(queue: MailQueue, m: {
  sender: string; rcpts: { address: string; orig?: string }[]; body: string;
  myhostname?: string; myorigin?: string; messageSizeLimit?: number;
}): Promise<QueueFile> {
  const c = await CleanupSession.open({ myhostname: m.myhostname ?? 'mx.example.test', myorigin: m.myorigin ?? 'example.test', headerSizeLimit: 102400,
    messageSizeLimit: m.messageSizeLimit ?? 10240000, alwaysAddMissingHeaders: false }, queue, { sender: m.sender, attrs: {}, addMissingHeaders: false });
  for (const r of m.rcpts) c.addRecipient(r);
  await c.write(Buffer.from(m.body));
  const res = await c.finish();
  assert.ok('queueId' in res);
  return QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
}
