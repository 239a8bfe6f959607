/**
 * qmgr-active - moving messages in and out of the active queue (Postfix qmgr_active.c).
 *
 *   recoverActive()  at start: active/* → incoming/ (a crash left them there; their D records
 *                    say who already has the mail).
 *   admitMessage()   incoming|deferred → active; a deferred file is admitted only when its
 *                    retry time (mtime) has come, unless the scan is a flush. The defer log of
 *                    the previous attempt is removed. A file that cannot be parsed goes to
 *                    `corrupt` (never thrown away, never delivered).
 *   finishMessage()  after every entry of the message is done (qmgr_active_done()):
 *                      1. bounce log → non-delivery DSN, then the log is removed;
 *                      2. some recipients deferred and the message is older than
 *                         maximal_queue_lifetime (bounce_queue_lifetime for null-sender mail)
 *                         → "status=expired, returned to sender": the defer log becomes a
 *                         non-delivery DSN and the file is removed;
 *                         else when delay_warning_time has passed, once → a delay DSN;
 *                         then utimes(mtime = now + backoff) and active → deferred, where
 *                         backoff = time in queue, clamped to [minimal_backoff_time,
 *                         maximal_backoff_time] (qmgr_active_done_3_generic);
 *                      3. all recipients done → NOTIFY=SUCCESS notices, then the file is removed.
 */
import { isUserVerify, TRACE_FLAGS_ATTR } from '../global/verify-client.ts';
import { existsSync, promises as fsp, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { MailQueue, QueueName } from '../global/mail-queue.ts';
import { QueueFile, QueueFileError } from '../global/queue-file-reader.ts';
import { COMMITTED_MODE, queueIdWriterPid } from '../global/queue-file.ts';
import { appendBounceLogs, bounceLogPath, readBounceLog, removeBounceLog, type BounceLogEntry } from '../global/bounce-log.ts';
import type { BounceClient } from '../global/bounce-client.ts';
import { logger } from '../util/msg.ts';
import { QmgrMessage } from './qmgr-message.ts';
import { logEntryOf, notDurable } from './qmgr-deliver.ts';

const log = logger('qmgr');

export interface ActiveSettings {
  minimalBackoffTime: number;
  maximalBackoffTime: number;
  maximalQueueLifetime: number;
  bounceQueueLifetime: number;
  delayWarningTime: number;
}

/** Seconds until the next attempt (qmgr_active_done_3_generic). */
export function backoffDelay(arrivalMs: number, nowMs: number, s: Pick<ActiveSettings, 'minimalBackoffTime' | 'maximalBackoffTime'>): number {
  let delay = Math.floor((nowMs - arrivalMs) / 1000);
  if (arrivalMs <= 0) delay = s.minimalBackoffTime;
  if (delay > s.maximalBackoffTime) delay = s.maximalBackoffTime;
  if (delay < s.minimalBackoffTime) delay = s.minimalBackoffTime;
  return delay;
}

/** A 0600 file in incoming older than this is not being written any more (smtpd_timeout is 300 s). */
const IN_PROGRESS_MAX_AGE_MS = 3600_000;

/**
 * Queue files a crash left in incoming with mode 0600, at start-up. Only files older than this
 * process, whose writer (the process ID in the queue ID) is not running, can be from a dead
 * writer. An incomplete one (no E record, a bad record: cleanup had not finished, so no client
 * was told 250 and the client retries) is removed; Postfix leaves these to postsuper. A complete
 * one is committed (mode 0700, fsync) and delivered: the writer sets 0700 only after the
 * file's fsync returned (queue-file-writer.ts), so a crash between the 250 and the mode
 * reaching the disk leaves exactly this, and an acknowledged message must not be lost (at worst,
 * when the crash came before the 250, the client's retry makes a second copy).
 */
export async function removeUncommitted(queue: MailQueue, processStart: number): Promise<number> {
  let n = 0;
  for await (const qid of queue.list('incoming')) {
    const p = queue.path('incoming', qid);
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st || (st.mode & 0o777) === COMMITTED_MODE || st.mtimeMs >= processStart) continue;
    // Its writer (the process ID in the queue ID) still runs: a live session of an smtpd in
    // another process that started before this qmgr (postern_process_mode=process), not a
    // crash's leftover. (A reused pid keeps a leftover until admission's one-hour rule.)
    const pid = queueIdWriterPid(qid);
    if (pid !== undefined && processAlive(pid)) continue;
    if (await completeFile(p, qid)) {
      const fh = await fsp.open(p, 'r+').catch(() => undefined);
      if (fh) {
        try { await fh.chmod(COMMITTED_MODE); await fh.sync(); } finally { await fh.close(); }
        log.warn(`${qid}: committing a complete queue file left in incoming by a crash (it may have been acknowledged)`);
        continue;
      }
    }
    await fsp.unlink(p).catch(() => {});
    log.warn(`${qid}: removing an incomplete queue file left in incoming by a crash (never acknowledged)`);
    n++;
  }
  return n;
}

/** The file reads as a whole queue file (QueueFile.open(): every record, the E record). */
async function completeFile(path: string, qid: string): Promise<boolean> {
  try { await QueueFile.open(path, qid); return true; } catch { return false; }
}

function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Move every file left in active back to incoming (qmgr start-up). Returns how many. */
export async function recoverActive(queue: MailQueue): Promise<number> {
  let n = 0;
  for await (const qid of queue.list('active')) {
    try { await queue.move(qid, 'active', 'incoming', false); n++; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  if (n) await queue.syncDir(join(queue.dir, 'incoming'));
  return n;
}

/** The delay-warning marker: Postfix clears the W record; Postern keeps a flag file. */
function warnedPath(queue: MailQueue, qid: string): string {
  return join(queue.dir, 'trace', `${qid}.warned`);
}

/**
 * Take one file into the active queue. Returns undefined when it is not (yet) eligible, is
 * gone, or is corrupt.
 */
export async function admitMessage(queue: MailQueue, qid: string, from: QueueName, opts: { ignoreTime: boolean; now: number; fresh?: boolean }): Promise<QmgrMessage | undefined> {
  // A file cleanup just committed and named in its trigger (opts.fresh): a new queue ID, so
  // no log of an earlier attempt can exist; the three look-ups below are skipped.
  const fresh = from === 'incoming' && opts.fresh === true;
  const src = queue.path(from, qid);
  // The lookups and the rename of admission are synchronous system calls, as in Postfix's qmgr:
  // each takes microseconds, while a thread-pool round trip costs more CPU and waits behind the
  // delivery agents' fsync()s. (An unlink of a file with data can wait for the file system
  // journal for a millisecond: those stay asynchronous.)
  if (from === 'incoming') {
    // A file still being written is mode 0600 (queue-file-writer.ts); its chmod to 0700 at commit
    // wakes the incoming watch again. One left by a crash (never acknowledged) is taken after
    // an hour anyway and ends in corrupt/ when incomplete, but never while its writer (the pid
    // in the queue ID) runs: the hour is the wall clock against a file time, and a clock
    // stepped forward would make a file being written look an hour old.
    const st = statSync(src, { throwIfNoEntry: false });
    if (!st) return undefined;
    if ((st.mode & 0o777) !== COMMITTED_MODE) {
      if (opts.now - st.mtimeMs < IN_PROGRESS_MAX_AGE_MS) return undefined;
      const pid = queueIdWriterPid(qid);
      if (pid !== undefined && processAlive(pid)) return undefined;
    }
  }
  if (from === 'deferred' && !opts.ignoreTime) {
    const st = statSync(src, { throwIfNoEntry: false });
    if (!st || st.mtimeMs > opts.now) return undefined;
  }
  try {
    queue.moveNow(qid, from, 'active');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (!fresh) await unlinkIfThere(bounceLogPath(queue, 'defer', qid));
  let qf: QueueFile;
  try {
    qf = await QueueFile.open(queue.path('active', qid), qid, { keepContent: true });
  } catch (e) {
    if (e instanceof QueueFileError) {
      log.warn(`saving corrupt file "${qid}" from queue "active" to queue "corrupt": ${e.message}`);
      await queue.move(qid, 'active', 'corrupt').catch(() => {});
      return undefined;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  if (from === 'incoming') {
    // Postfix logs this once, when the message first enters the active queue.
    log.info(`${qid}: from=<${qf.sender}>, size=${qf.contentLength}, nrcpt=${qf.recipients.length} (queue active)`);
  }
  const msg = new QmgrMessage(qf, from, opts.now);
  if (fresh) { msg.oldLogs = false; return msg; }
  // Notices still owed from an earlier attempt (a DSN that could not be queued then).
  msg.bounced = (statSync(bounceLogPath(queue, 'bounce', qid), { throwIfNoEntry: false })?.size ?? 0) > 0;
  msg.traced = (statSync(bounceLogPath(queue, 'trace', qid), { throwIfNoEntry: false })?.size ?? 0) > 0;
  return msg;
}

/** Everything after the last entry of a message finished (see header). */
export async function finishMessage(queue: MailQueue, bounce: BounceClient, s: ActiveSettings, msg: QmgrMessage, now = Date.now()): Promise<void> {
  const qid = msg.queueId;
  const qf = msg.qf;
  qf.dropContent();
  if (msg.gone) { log.info(`${qid}: removed from the active queue while being delivered`); return; }
  // Deliveries still reaching the disk (qmgr-deliver.ts): the queue file goes only after them.
  if (msg.durable.length) {
    const failed: BounceLogEntry[] = [];
    await Promise.all(msg.durable.map(async (r) => {
      try { await r.durable; } catch (e) { notDurable(msg, r, e); failed.push(logEntryOf(r, 'delayed')); }
    }));
    msg.durable = [];
    if (failed.length) {
      for (const r of qf.recipients) if (failed.some((f) => f.offset === r.offset)) r.done = false;
      await appendBounceLogs(queue, 'defer', qid, failed).catch((e: Error) => log.warn(`${qid}: cannot append to defer log: ${e.message}`));
      msg.deferred = true;
    }
  }
  // 1. Non-delivery notices for recipients that failed for good.
  let keep = msg.deferred;
  if (msg.bounced) {
    const entries = await readBounceLog(queue, 'bounce', qid);
    if (await bounce.notify(qf, 'failure', entries)) await removeBounceLog(queue, 'bounce', qid);
    else keep = true;
  }
  if (keep) {
    const lifetime = (qf.sender === '' || bounce.isDoubleBounceSender(qf.sender)) ? s.bounceQueueLifetime : s.maximalQueueLifetime;
    const defers = await readBounceLog(queue, 'defer', qid);
    if (msg.deferred && now - qf.arrival >= lifetime * 1000) {
      log.info(`${qid}: from=<${qf.sender}>, status=expired, returned to sender`);
      const failed = defers.map((e) => ({ ...e, action: 'failed' }));
      if (await bounce.notify(qf, 'failure', failed)) {
        await removeQueueFile(queue, qid, msg);
        return;
      }
    } else if (msg.deferred && s.delayWarningTime > 0 && now - qf.arrival >= s.delayWarningTime * 1000) {
      const marker = warnedPath(queue, qid);
      const warned = await fsp.stat(marker).then(() => true, () => false);
      if (!warned && await bounce.notify(qf, 'delay', defers)) {
        await fsp.writeFile(marker, '', { mode: 0o600 }).catch(() => {});
      }
    }
    const delay = backoffDelay(qf.arrival, now, s);
    const next = new Date(now + delay * 1000);
    try {
      await fsp.utimes(queue.path('active', qid), new Date(now), next);
      await queue.move(qid, 'active', 'deferred');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    return;
  }
  // 3. All recipients done.
  if (msg.traced) {
    const entries = await readBounceLog(queue, 'trace', qid);
    // sendmail -bv (DEL_REQ_FLAG_USR_VRFY): the "Mail Delivery Status Report" (bounce_trace_service.c).
    const kind = isUserVerify(qf.attr(TRACE_FLAGS_ATTR)) ? 'verify' : 'success';
    if (!await bounce.notify(qf, kind, entries)) log.warn(`${qid}: ${kind === 'verify' ? 'delivery status report' : 'success notification'} failed; not retried`);
  }
  await removeQueueFile(queue, qid, msg);
}

/**
 * unlink() a log or marker that is usually not there: existsSync() first, a lookup of a few
 * microseconds that creates no exception, and the unlink (which may wait for the file system
 * journal) only for a file that exists.
 */
async function unlinkIfThere(path: string): Promise<void> {
  if (!existsSync(path)) return;
  await fsp.unlink(path).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
}

/**
 * Remove a finished message and its logs (Postfix logs "removed"). With `msg`, a message
 * without old logs (QmgrMessage.oldLogs) has only the logs its attempt wrote looked for.
 */
export async function removeQueueFile(queue: MailQueue, qid: string, msg?: QmgrMessage): Promise<void> {
  let gone = false;
  // A synchronous unlink, as Postfix's qmgr (one process) does it: a queue file is a few KB in
  // the page cache, and a thread-pool round trip per message cost more CPU than the unlink.
  try { unlinkSync(queue.path('active', qid)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    gone = true;
  }
  const all = !msg || msg.oldLogs;
  const logs = all ? (['bounce', 'defer', 'trace'] as const)
    : ([msg.bounced && 'bounce', msg.deferred && 'defer', msg.traced && 'trace'] as const).filter((l) => l !== false);
  for (const l of logs) await unlinkIfThere(bounceLogPath(queue, l, qid));
  if (all || msg.deferred) await unlinkIfThere(warnedPath(queue, qid)).catch(() => {});
  log.info(gone ? `${qid}: removed from the active queue while being delivered` : `${qid}: removed`);
}
