/**
 * bounce-log - the per-message logs of recipient outcomes that qmgr keeps beside a queue file
 * and bounce(8) turns into DSNs (Postfix bounce_append_service.c / bounce_log.c):
 *
 *   bounce/<qid>   recipients that failed for good (a non-delivery DSN is owed)
 *   defer/<qid>    recipients deferred in the current attempt (reasons for `postern queue list`,
 *                  a delay DSN, or the bounce when the message expires)
 *   trace/<qid>    recipients delivered that asked for NOTIFY=SUCCESS (a success DSN is owed)
 *
 * Format (as Postfix's bounce logs): one record per recipient, `name=value` lines ended by an
 * empty line. Values never contain a newline (CR/LF/NUL become spaces):
 *
 *   recipient=user@example.com
 *   original_recipient=User@Example.COM
 *   offset=1234
 *   dsn_orig_rcpt=rfc822;User@Example.COM
 *   notify_flags=0
 *   status=5.1.1
 *   action=failed
 *   diag_type=smtp
 *   diag_text=550 5.1.1 <user@example.com>: Recipient address rejected
 *   mta_type=dns
 *   mta_mname=mx.example.com
 *   reason=host mx.example.com[192.0.2.1] said: 550 5.1.1 ...
 *
 * Appends are single write() calls on an O_APPEND descriptor, so concurrent batches of one
 * message never interleave. bounce and trace logs are fsync'd before appendBounceLogs()
 * returns: qmgr marks a bounced recipient done (R → D) only after its bounce record is on disk,
 * so a crash never loses a DSN. The defer log is not fsync'd (as Postfix): a deferred recipient
 * stays R in the queue file, so a lost defer record loses only the reason text.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { join } from 'node:path';
import { isQueueId, type MailQueue } from './mail-queue.ts';

export type BounceLogName = 'bounce' | 'defer' | 'trace';

export interface BounceLogEntry {
  recipient: string;
  /** The recipient as first received (before aliasing/rewriting). */
  original?: string;
  offset?: number;
  /** DSN ORCPT "type;address". */
  dsnOrigRcpt?: string;
  notifyFlags?: number;
  /** RFC 3463 status, e.g. "5.1.1". */
  status: string;
  /** RFC 3464 action: failed, delayed, delivered, relayed, expanded. */
  action: string;
  /** Diagnostic-Code type and text ("smtp", "550 5.1.1 ..."). */
  diagType?: string;
  diagText?: string;
  /** Remote-MTA type and name ("dns", "mx.example.com"). */
  mtaType?: string;
  mtaName?: string;
  /** Human-readable reason (Postfix's "status=... (reason)" text). */
  reason: string;
}

const FIELDS: [keyof BounceLogEntry, string][] = [
  ['recipient', 'recipient'], ['original', 'original_recipient'], ['offset', 'offset'],
  ['dsnOrigRcpt', 'dsn_orig_rcpt'], ['notifyFlags', 'notify_flags'], ['status', 'status'],
  ['action', 'action'], ['diagType', 'diag_type'], ['diagText', 'diag_text'],
  ['mtaType', 'mta_type'], ['mtaName', 'mta_mname'], ['reason', 'reason'],
];
const BY_NAME = new Map(FIELDS.map(([k, n]) => [n, k]));

/** Largest log read into memory (a runaway log is read up to here, the rest ignored). */
const MAX_LOG_BYTES = 16 * 1024 * 1024;

function clean(v: string): string {
  return v.replace(/[\r\n\0]/g, ' ');
}

export function formatBounceLogEntry(e: BounceLogEntry): string {
  let out = '';
  for (const [k, n] of FIELDS) {
    const v = e[k];
    if (v === undefined || v === '') continue;
    out += `${n}=${clean(String(v))}\n`;
  }
  return out + '\n';
}

/** Parse a log; malformed lines are skipped, a record without recipient= is dropped. */
export function parseBounceLog(text: string): BounceLogEntry[] {
  const out: BounceLogEntry[] = [];
  for (const block of text.split(/\n\n+/)) {
    const e: Record<string, string | number> = {};
    for (const line of block.split('\n')) {
      const i = line.indexOf('=');
      if (i <= 0) continue;
      const k = BY_NAME.get(line.slice(0, i));
      if (!k) continue;
      const v = line.slice(i + 1);
      e[k] = k === 'offset' || k === 'notifyFlags' ? Number(v) | 0 : v;
    }
    if (typeof e.recipient === 'string' && e.recipient) {
      out.push({ status: '4.0.0', action: 'delayed', reason: '', ...e } as unknown as BounceLogEntry);
    }
  }
  return out;
}

/** Path of a message's log in one of the log queues. */
export function bounceLogPath(queue: MailQueue, name: BounceLogName, qid: string): string {
  if (!isQueueId(qid)) throw new Error(`${name} log: ${JSON.stringify(qid)} is not a queue ID`);
  return queue.path(name, qid);
}

/** Append records to a message's log and fsync it. */
export async function appendBounceLogs(queue: MailQueue, name: BounceLogName, qid: string, entries: readonly BounceLogEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const path = bounceLogPath(queue, name, qid);
  const data = Buffer.from(entries.map(formatBounceLogEntry).join(''), 'utf8');
  let fh;
  try {
    fh = await fsp.open(path, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await fsp.mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
    fh = await fsp.open(path, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o600);
  }
  try {
    await fh.write(data);
    if (name !== 'defer') await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Read a message's log; [] when there is none. */
export async function readBounceLog(queue: MailQueue, name: BounceLogName, qid: string): Promise<BounceLogEntry[]> {
  let fh;
  try {
    fh = await fsp.open(bounceLogPath(queue, name, qid), C.O_RDONLY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  try {
    const st = await fh.stat();
    const buf = Buffer.alloc(Math.min(st.size, MAX_LOG_BYTES));
    await fh.read(buf, 0, buf.length, 0);
    return parseBounceLog(buf.toString('utf8'));
  } finally {
    await fh.close();
  }
}

export async function removeBounceLog(queue: MailQueue, name: BounceLogName, qid: string): Promise<void> {
  await fsp.unlink(bounceLogPath(queue, name, qid)).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}
