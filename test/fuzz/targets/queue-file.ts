/**
 * Fuzz target: the queue-file reader (src/global/queue-file-reader.ts QueueFile.open + content +
 * contentStream) on mutated real queue files written by QueueFileWriter. A corrupt or
 * truncated file must be refused with QueueFileError, never another exception (qmgr moves a
 * QueueFileError file to corrupt/ and carries on; anything else would stop delivery).
 */

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MailQueue } from '../../../src/global/mail-queue.ts';
import { QueueFile, QueueFileError } from '../../../src/global/queue-file-reader.ts';
import { QueueFileWriter } from '../../../src/global/queue-file-writer.ts';
import { DSN_NOTIFY } from '../../../src/global/rec-type.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { filesUnder } from '../fuzz-seeds.ts';

let dir = '';
const seeds: Buffer[] = [];

async function writeOne(q: MailQueue, body: Buffer, rcpts: string[], attrs: Record<string, string>): Promise<Buffer> {
  const w = await QueueFileWriter.create(q);
  w.setSender(rcpts.length % 2 ? 'sender@example.org' : '');
  for (const [k, v] of Object.entries(attrs)) w.addAttr(k, v);
  for (const r of rcpts) w.addRecipient({ address: r, orig: r.toUpperCase(), notify: DSN_NOTIFY.FAILURE | DSN_NOTIFY.DELAY, orcpt: `rfc822;${r}` });
  await w.writeContent(body);
  const qid = await w.commit();
  const qf = await QueueFile.open(q.path('incoming', qid), qid);
  if (rcpts.length > 1) await qf.markDone(qf.recipients[0]!);
  return readFileSync(q.path('incoming', qid));
}

export const target: FuzzTarget = {
  name: 'queue-file',
  coverage: ['src/global/queue-file-reader.ts', 'src/global/record.ts', 'src/global/queue-content.ts'],
  maxLen: 128 * 1024,
  dictionary: ['\0', '\x7f', '\xff', 'rfc822;', '@'],
  async setup() {
    dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-queue-'));
    const q = new MailQueue(dir);
    q.ensureDirs();
    const bodies = [...filesUnder('src/lib-mail/testdata/corpus').slice(0, 4), Buffer.from(''), Buffer.from('x\n'), Buffer.alloc(3000, 0x41)];
    let i = 0;
    for (const b of bodies) {
      seeds.push(await writeOne(q, b, ['a@example.test', 'b@example.test', 'c@example.test'].slice(0, 1 + (i % 3)),
        i % 2 ? { client_address: '127.0.0.1', helo_name: 'client.example.org' } : { log_ident: 'x' }));
      i++;
    }
  },
  seeds: () => seeds,
  teardown() { if (dir) rmSync(dir, { recursive: true, force: true }); },
  async run(data) {
    const f = join(dir, 'fuzzed');
    writeFileSync(f, data);
    const qf = await QueueFile.open(f, 'FUZZ');
    await qf.content();
    for await (const _ of qf.contentStream()) { /* drain */ }
  },
  expected: (e) => e instanceof QueueFileError,
};
