/**
 * queue-admin - the queue operations of postqueue(1) and postsuper(1) on a MailQueue: the
 * showq listing (showq_compat.c layout), flush, deliver, delete, hold, release, requeue, show
 * (postcat -q, queue-cat.ts). `postern queue` (cli/postqueue.ts) and the web console
 * (console/) call the same functions, so both act on the queue identically.
 *
 * Queue IDs are checked against the queue ID syntax (isQueueId) before any file is named, so
 * `../x` never names a file; queue names are checked against the fixed list.
 * flush/deliver/release notify a running qmgr through $queue_directory/public/qmgr.trigger.
 */
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isQueueId, MailQueue, type QueueName } from './mail-queue.ts';
import { QueueFile } from './queue-file-reader.ts';
import { COMMITTED_MODE } from './queue-file.ts';
import { readBounceLog } from './bounce-log.ts';
import { QMGR_TRIGGER } from './mail-trigger.ts';
import { asctime } from '../util/asctime.ts';

/** The queues the listing walks, in showq's order (Postfix 3.7: hold last). */
const SHOWQ_QUEUES: QueueName[] = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];
const MESSAGE_QUEUES: QueueName[] = ['maildrop', 'hold', 'incoming', 'active', 'deferred'];

const padR = (s: string, n: number) => s.padEnd(n, ' ');
const padL = (s: string, n: number) => s.padStart(n, ' ');
/** showq_compat.c S_STRING_FORMAT "%-11s %7s %-20s %s\n". */
const row = (a: string, b: string, c: string, d: string) => `${padR(a, 11)} ${padL(b, 7)} ${padR(c, 20)} ${d}\n`;

export interface ShowqMessage { queue: QueueName; qid: string; arrival: number; size: number; sender: string; recipients: { address: string; why: string }[] }

/** Every message of the listing, queue by queue. Unreadable files are skipped. */
export async function* showq(queue: MailQueue): AsyncIterable<ShowqMessage> {
  for (const q of SHOWQ_QUEUES) {
    for await (const qid of queue.list(q)) {
      // A file still being written in incoming is mode 0600 (queue-file-writer.ts): not mail yet.
      if (q === 'incoming') {
        const st = await fsp.stat(queue.path(q, qid)).catch(() => undefined);
        if (!st || (st.mode & 0o777) !== COMMITTED_MODE) continue;
      }
      let qf: QueueFile;
      try { qf = await QueueFile.open(queue.path(q, qid), qid); } catch { continue; }
      const why = new Map<string, string>();
      if (q === 'deferred') for (const e of await readBounceLog(queue, 'defer', qid).catch(() => [])) why.set(e.recipient, e.reason);
      yield {
        queue: q, qid, arrival: qf.arrival, size: qf.contentLength, sender: qf.sender || 'MAILER-DAEMON',
        recipients: qf.undone.map((r) => ({ address: r.address, why: why.get(r.address) ?? '' })),
      };
    }
  }
}

/** Format one message exactly as showq_compat.c's showq_message(). */
export function formatShowqMessage(m: ShowqMessage): string {
  const id = m.qid + (m.queue === 'active' ? '*' : m.queue === 'hold' ? '!' : '');
  let out = `${padR(id, 11)} ${padL(String(m.size), 7)} ${asctime(new Date(m.arrival)).slice(0, 20).padStart(20)} ${m.sender}\n`;
  let saved = '';
  for (const r of m.recipients) {
    if (r.why !== saved) {
      saved = r.why;
      const show = saved || 'reason unavailable';
      out += `${' '.repeat(Math.max(0, 76 - show.length))}(${show})\n`;
    }
    out += row('', '', '', r.address);
  }
  return out;
}

export async function listQueue(queue: MailQueue, write: (s: string) => void): Promise<void> {
  let count = 0;
  let bytes = 0;
  for await (const m of showq(queue)) {
    write(count > 0 ? '\n' : row('-Queue ID-', '--Size--', '----Arrival Time----', '-Sender/Recipient-------'));
    write(formatShowqMessage(m));
    bytes += m.size;
    count++;
  }
  write(count === 0 ? 'Mail queue is empty\n' : `\n-- ${Math.floor(bytes / 1024)} Kbytes in ${count} Request${count === 1 ? '' : 's'}.\n`);
}

/** Tell a running qmgr: I = new mail, D = scan deferred, F = flush (ignore retry times). */
export async function triggerQmgr(queue: MailQueue, what: 'I' | 'D' | 'F'): Promise<void> {
  const p = join(queue.dir, 'public', QMGR_TRIGGER);
  await fsp.appendFile(p, what, { mode: 0o600 }).catch(() => {});
}

/** Where a message is now (first queue that has it). */
async function locate(queue: MailQueue, qid: string, queues: readonly QueueName[]): Promise<QueueName | undefined> {
  for (const q of queues) {
    if (await fsp.stat(queue.path(q, qid)).then(() => true, () => false)) return q;
  }
  return undefined;
}

/** Expand `ID`, `ALL` or `-` (stdin) into queue IDs present in `queues`. */
async function targets(queue: MailQueue, spec: string, queues: readonly QueueName[], err: (s: string) => void): Promise<{ qid: string; q: QueueName }[]> {
  const out: { qid: string; q: QueueName }[] = [];
  if (spec === 'ALL') {
    for (const q of queues) for await (const qid of queue.list(q)) out.push({ qid, q });
    return out;
  }
  const ids = spec === '-' ? readFileSync(0, 'utf8').split('\n').map((s) => s.trim()).filter(Boolean) : [spec];
  for (const id of ids) {
    if (!isQueueId(id)) { err(`postern: warning: invalid mail queue id: ${id}\n`); continue; }
    const q = await locate(queue, id, queues);
    if (!q) { err(`postern: warning: ${id}: no such message in queue${queues.length === 1 ? ` ${queues[0]}` : 's'}\n`); continue; }
    out.push({ qid: id, q });
  }
  return out;
}

function queueArg(name: string | undefined, allowed: readonly QueueName[]): readonly QueueName[] {
  if (name === undefined) return allowed;
  if (!(allowed as readonly string[]).includes(name)) throw new Error(`invalid queue name "${name}": use one of ${allowed.join(', ')}`);
  return [name as QueueName];
}

async function removeMessage(queue: MailQueue, qid: string, q: QueueName): Promise<boolean> {
  try { await fsp.unlink(queue.path(q, qid)); } catch { return false; }
  for (const l of ['bounce', 'defer', 'trace'] as const) await fsp.unlink(queue.path(l, qid)).catch(() => {});
  await fsp.unlink(join(queue.dir, 'trace', `${qid}.warned`)).catch(() => {});
  return true;
}

export interface QueueIo { out: (s: string) => void; err: (s: string) => void }

/** Run one `postern queue` operation against a queue (testable without a config directory). */
export async function queueCommand(queue: MailQueue, args: string[], io: QueueIo): Promise<number> {
  const [op = 'list', a1, a2] = args;
  const need = (what: string) => { if (!a1) throw new Error(`usage: postern queue ${op} ${what}`); return a1; };
  switch (op) {
    case 'list': case '-p': await listQueue(queue, io.out); return 0;
    case 'flush': case '-f': {
      const now = new Date();
      for await (const qid of queue.list('deferred')) await fsp.utimes(queue.path('deferred', qid), now, now).catch(() => {});
      await triggerQmgr(queue, 'F');
      return 0;
    }
    case 'deliver': case '-i': {
      const t = await targets(queue, need('ID'), ['deferred'], io.err);
      const now = new Date();
      for (const { qid } of t) {
        await fsp.utimes(queue.path('deferred', qid), now, now).catch(() => {});
        await queue.move(qid, 'deferred', 'incoming').catch(() => {});
      }
      if (t.length) await triggerQmgr(queue, 'I');
      return t.length ? 0 : 1;
    }
    case 'delete': case '-d': {
      const t = await targets(queue, need('ID|ALL [queue]'), queueArg(a2, MESSAGE_QUEUES), io.err);
      let n = 0;
      for (const { qid, q } of t) if (await removeMessage(queue, qid, q)) { n++; if (a1 !== 'ALL') io.err(`postern: ${qid}: removed\n`); }
      io.err(`postern: Deleted: ${n} message${n === 1 ? '' : 's'}\n`);
      return 0;
    }
    case 'hold': case '-h': {
      const t = await targets(queue, need('ID|ALL [queue]'), queueArg(a2, ['incoming', 'active', 'deferred']), io.err);
      let n = 0;
      for (const { qid, q } of t) { try { await queue.move(qid, q, 'hold'); n++; } catch { /* gone meanwhile */ } }
      io.err(`postern: Placed on hold: ${n} message${n === 1 ? '' : 's'}\n`);
      return 0;
    }
    case 'release': case '-H': {
      const t = await targets(queue, need('ID|ALL'), ['hold'], io.err);
      let n = 0;
      const now = new Date();
      for (const { qid } of t) {
        try { await fsp.utimes(queue.path('hold', qid), now, now); await queue.move(qid, 'hold', 'deferred'); n++; } catch { /* gone */ }
      }
      if (n) await triggerQmgr(queue, 'D');
      io.err(`postern: Released from hold: ${n} message${n === 1 ? '' : 's'}\n`);
      return 0;
    }
    case 'requeue': case '-r': {
      const t = await targets(queue, need('ID|ALL [queue]'), queueArg(a2, ['hold', 'incoming', 'active', 'deferred']), io.err);
      let n = 0;
      for (const { qid, q } of t) {
        if (q === 'incoming') { n++; continue; }
        try { await queue.move(qid, q, 'incoming'); await fsp.unlink(queue.path('defer', qid)).catch(() => {}); n++; } catch { /* gone */ }
      }
      if (n) await triggerQmgr(queue, 'I');
      io.err(`postern: Requeued: ${n} message${n === 1 ? '' : 's'}\n`);
      return 0;
    }
    case 'show': case '-q': {
      const { showQueueFile } = await import('./queue-cat.ts');
      const t = await targets(queue, need('ID'), MESSAGE_QUEUES, io.err);
      if (t.length === 0) return 1;
      for (const { qid, q } of t) await showQueueFile(queue, q, qid, io.out);
      return 0;
    }
    default:
      io.err(`postern queue: unknown operation "${op}"\nusage: postern queue [list|flush|deliver ID|delete ID|ALL [queue]|hold ID|ALL|release ID|ALL|requeue ID|ALL|show ID]\n`);
      return 64;
  }
}

