/**
 * postexplain-queue - `postern explain QUEUE_ID`: where one message is and how it got there.
 *
 * DESCRIPTION
 *   1. The queue: the first of maildrop, hold, incoming, active, deferred that holds the file,
 *      read with global/queue-file-reader.ts as postcat does (arrival, sender, each recipient
 *      and whether it is done), with the reasons of the defer log (bounce-log.ts) beside the
 *      recipients still waiting — or "not in the queue" (delivered, bounced or deleted).
 *   2. The log: every line of maillog_file (master/master-maillog.ts, Postfix's postlogd
 *      shape) that names the queue ID, in order, each given its step of the mail path:
 *        receive  smtpd/qmqpd/pickup/sendmail  `QID: client=...`, `QID: uid=...`
 *        cleanup  cleanup                      `QID: message-id=<...>`, milter and check actions
 *        queue    qmgr                         `QID: from=<...>, size=..., nrcpt=...`, `removed`
 *        deliver  smtp/lmtp/local/virtual/...  `QID: to=<...>, relay=..., status=sent|deferred|bounced (...)`
 *        notify   bounce                       `QID: sender non-delivery notification: NEWQID`
 *      then a summary per recipient: its last status and reason. A delivery status notification
 *      made for this message (its queue ID named by bounce) is followed one level down.
 *   The log is maillog_file; `--log FILE` reads another one (a file rotated by postern logrotate:
 *   $maillog_file.$maillog_file_rotate_suffix, uncompressed).
 */
import { createReadStream, promises as fsp } from 'node:fs';
import { createInterface } from 'node:readline';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue, type QueueName } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { readBounceLog } from '../global/bounce-log.ts';
import { asctime } from '../util/asctime.ts';

const QUEUES: QueueName[] = ['maildrop', 'hold', 'incoming', 'active', 'deferred'];

/** The step of the mail path a program's log line belongs to. */
export function stepOf(program: string): string {
  const p = program.slice(program.lastIndexOf('/') + 1);
  if (p === 'smtpd' || p === 'qmqpd' || p === 'pickup' || p === 'postdrop' || p === 'sendmail' || p === 'postscreen') return 'receive';
  if (p === 'cleanup') return 'cleanup';
  if (p === 'qmgr' || p === 'postsuper' || p === 'postqueue') return 'queue';
  if (p === 'bounce') return 'notify';
  return 'deliver';
}

export interface LogEvent { time: string; program: string; text: string; step: string }

const LINE_RE = /^(\w{3} [ \d]\d \d\d:\d\d:\d\d) \S+ ([^\s[]+)\[\d+\]: (.*)$/;

/** The maillog_file lines that name `qid` (as `QID:` at the start of the text). */
export async function logEventsFor(path: string, qids: ReadonlySet<string>): Promise<Map<string, LogEvent[]>> {
  const out = new Map<string, LogEvent[]>();
  for (const q of qids) out.set(q, []);
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const line of rl) {
    const m = LINE_RE.exec(line);
    if (!m) continue;
    const text = m[3]!;
    const colon = text.indexOf(': ');
    if (colon < 0) continue;
    const list = out.get(text.slice(0, colon));
    if (!list) continue;
    list.push({ time: m[1]!, program: m[2]!, text: text.slice(colon + 2), step: stepOf(m[2]!) });
  }
  return out;
}

/** Recipient outcomes from delivery lines: `to=<a>, ..., status=deferred (reason)`. */
export function outcomes(events: readonly LogEvent[]): Map<string, { status: string; reason: string; relay?: string }> {
  const m = new Map<string, { status: string; reason: string; relay?: string }>();
  for (const e of events) {
    const to = /^to=<([^>]*)>/.exec(e.text);
    const st = /, status=(\w+)(?: \((.*)\))?$/.exec(e.text);
    if (!to || !st) continue;
    const relay = /, relay=([^,]+)/.exec(e.text)?.[1];
    m.set(to[1]!, { status: st[1]!, reason: st[2] ?? '', ...(relay ? { relay } : {}) });
  }
  return m;
}

async function showQueued(queue: MailQueue, qid: string, out: (s: string) => void): Promise<boolean> {
  for (const q of QUEUES) {
    const path = queue.path(q, qid);
    if (!(await fsp.stat(path).then(() => true, () => false))) continue;
    let qf: QueueFile;
    try { qf = await QueueFile.open(path, qid); } catch (e) {
      out(`queue: ${q}/${qid} (unreadable: ${(e as Error).message})\n`);
      return true;
    }
    const why = new Map<string, string>();
    for (const e of await readBounceLog(queue, 'defer', qid).catch(() => [])) why.set(e.recipient, `${e.status} ${e.reason}`);
    out(`queue: ${q}/${qid}${q === 'hold' ? ' (on hold: postern queue release to send it)' : ''}\n`);
    out(`  arrival: ${asctime(new Date(qf.arrival * 1000))}\n`);
    out(`  sender: <${qf.sender}>\n`);
    const client = qf.attr('client_name');
    if (client) out(`  client: ${client}[${qf.attr('client_address') ?? ''}]\n`);
    out(`  content: ${qf.contentLength} bytes\n`);
    for (const r of qf.recipients) {
      const reason = !r.done ? why.get(r.address) : undefined;
      out(`  recipient <${r.address}>${r.orig && r.orig !== r.address ? ` (originally <${r.orig}>)` : ''}: ${r.done ? 'done' : 'waiting'}${reason ? ` (${reason})` : ''}\n`);
    }
    return true;
  }
  return false;
}

function showLog(qid: string, events: readonly LogEvent[], out: (s: string) => void, indent = ''): string[] {
  const children: string[] = [];
  if (events.length === 0) { out(`${indent}log: no line names ${qid}\n`); return children; }
  out(`${indent}log (${events.length} line${events.length === 1 ? '' : 's'}):\n`);
  for (const e of events) {
    out(`${indent}  ${e.step.padEnd(8)} ${e.time} ${e.program}: ${e.text}\n`);
    const child = /notification: ([0-9A-F]{6,})$/.exec(e.text);
    if (child) children.push(child[1]!);
  }
  const res = outcomes(events);
  if (res.size) {
    out(`${indent}recipients:\n`);
    for (const [rcpt, o] of res) out(`${indent}  <${rcpt}>: ${o.status}${o.relay ? ` via ${o.relay}` : ''}${o.reason ? ` (${o.reason})` : ''}\n`);
  }
  if (events.some((e) => e.step === 'queue' && e.text === 'removed')) out(`${indent}the message left the queue (removed)\n`);
  return children;
}

export async function explainQueueId(configDir: string, qid: string, out: (s: string) => void, logFile?: string): Promise<number> {
  const config = MainConfig.load(configDir);
  const queue = MailQueue.fromConfig(config);
  out(`queue ID: ${qid}\n`);
  const queued = await showQueued(queue, qid, out);
  if (!queued) out('queue: not in the queue (delivered, bounced, expired or deleted, or never existed)\n');
  const path = logFile ?? config.get('maillog_file').trim();
  if (path === '' || path.startsWith('/dev/')) {
    out(`log: maillog_file is ${path === '' ? 'not set' : path}: no log to read (set maillog_file = /var/log/postern.log)\n`);
    return queued ? 0 : 1;
  }
  let events: Map<string, LogEvent[]>;
  try { events = await logEventsFor(path, new Set([qid])); } catch (e) {
    out(`log: cannot read ${path}: ${(e as Error).message}\n`);
    return queued ? 0 : 1;
  }
  const mine = events.get(qid)!;
  const children = showLog(qid, mine, out);
  if (children.length) {
    const more = await logEventsFor(path, new Set(children));
    for (const c of children) {
      out(`delivery status notification ${c}:\n`);
      showLog(c, more.get(c) ?? [], out, '  ');
    }
  }
  return queued || mine.length > 0 ? 0 : 1;
}
