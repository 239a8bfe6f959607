/**
 * qshape - `postern qshape [QUEUE...]`: the shape of the queue as Postfix's qshape(1)
 * (QSHAPE_README): one row per recipient domain (plus TOTAL), sorted by count, and one column
 * per age bucket in minutes — T (total), 5, 10, 20, 40, 80, 160, 320, 640, 1280, 1280+ —
 * counting undelivered recipients by the age of their message. Default queues: incoming and
 * active (qshape's default); name `deferred` or `hold` to see those.
 *
 * Memory: one counter row per distinct domain, never the messages.
 */
import type { MailQueue, QueueName } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';

const BUCKETS = [5, 10, 20, 40, 80, 160, 320, 640, 1280];

export async function qshape(queue: MailQueue, queues: readonly QueueName[], now = Date.now(), top = 0): Promise<string> {
  const rows = new Map<string, number[]>();
  const total = new Array<number>(BUCKETS.length + 2).fill(0);
  for (const q of queues) {
    for await (const qid of queue.list(q)) {
      let qf: QueueFile;
      try { qf = await QueueFile.open(queue.path(q, qid), qid); } catch { continue; }
      const age = (now - qf.arrival) / 60000;
      let b = BUCKETS.findIndex((m) => age < m);
      if (b < 0) b = BUCKETS.length;
      for (const r of qf.undone) {
        const dom = r.address.includes('@') ? r.address.slice(r.address.lastIndexOf('@') + 1).toLowerCase() : '';
        let row = rows.get(dom);
        if (!row) { row = new Array<number>(BUCKETS.length + 2).fill(0); rows.set(dom, row); }
        row[0]!++; row[b + 1]!++;
        total[0]!++; total[b + 1]!++;
      }
    }
  }
  let sorted = [...rows].sort((a, b) => b[1][0]! - a[1][0]! || a[0].localeCompare(b[0]));
  if (top > 0) sorted = sorted.slice(0, top);
  const head = ['T', ...BUCKETS.map(String), `${BUCKETS.at(-1)}+`];
  const all: [string, (string | number)[]][] = [['', head], ['TOTAL', total], ...sorted];
  const nameW = Math.max(...all.map(([n]) => n.length));
  const colW = head.map((h, i) => Math.max(h.length, ...all.map(([, r]) => String(r[i]).length)));
  return all.map(([n, r]) => `${n.padStart(nameW)} ${r.map((v, i) => String(v).padStart(colW[i]!)).join(' ')}`).join('\n') + '\n';
}
