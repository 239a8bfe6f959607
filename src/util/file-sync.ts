/**
 * file-sync - make a written file durable, with the flushes of concurrent writers committed
 * together (issue 18: group commit for file data).
 *
 *   await syncFile(fd, '3F2A1C0042')   // the file's data and inode (and, where the file
 *                                      // system does it, its new name: fs-durability.ts) are
 *                                      // on stable storage; rejects with fsync(2)'s error
 *
 * Used for every file whose durability a client is promised: queue files before smtpd's 250
 * (global/queue-file-writer.ts) and Maildir files before the queue forgets the recipient or
 * LMTP answers 250 (lib-storage/maildir/maildir-save.ts).
 *
 * GROUP COMMIT. fsync(2) is issued AT ONCE from libuv's thread pool (64 threads,
 * uv-threadpool.ts): a lone message is flushed without any wait, and the flushes of concurrent
 * sessions and deliveries are in flight together, so the kernel merges their device cache
 * flushes (the block layer runs one flush for every request that queued behind the running
 * one; a journaled file system commits them in one transaction). fsyncs of N different files
 * cannot be one system call; issuing them together is what makes them one commit. Measured on
 * the project's machine (bench/fsync-options.ts, docs/durability.md): 20 concurrent writers
 * cost 0.41 disk flushes per file and 3.5-4x the files/s of one-at-a-time fsyncs; a batcher that
 * holds files written while a flush runs and releases them together cut that to 0.32 flushes
 * per file but lost 30-40% of the files/s (each file also waits for the batch before it), and
 * syncfs(2) of the file system (`sync -f`; Node has no syncfs) 0.10 flushes per file at 0.17x.
 * So there is no holding here, and no timer.
 *
 * `postern_fsync_group_size` (metrics.ts) counts, for each flush, the file flushes in flight
 * with it (itself included): how much the commits are shared under the current load.
 *
 * FAULT POINT, for the crash tests only: with POSTERN_FAULT_SYNC_HOLD_MS=N in the environment,
 * the flushes of the files written within N ms of the first are held together for those N ms
 * (a group written but not flushed), each logged as it joins,
 *   fault point: file written, flush held (K waiting): LABEL
 * so that test/faults/group-commit-kill.test.ts can SIGKILL the system between a group's
 * writes and its flush. Never set it on a real system: it only adds latency.
 */
import { fsyncFd } from './fs-write.ts';
import { metrics } from './metrics.ts';
import { logger } from './msg.ts';

const GROUP = metrics.histogram('postern_fsync_group_size',
  'file fsyncs (queue files, Maildir files) of this process in flight together when one is issued', [], [1, 2, 4, 8, 16, 32, 64]).labels();

let inFlight = 0;

async function flush(fd: number): Promise<void> {
  inFlight++;
  GROUP.observe(inFlight);
  try { await fsyncFd(fd); } finally { inFlight--; }
}

const HOLD_MS = Number(process.env['POSTERN_FAULT_SYNC_HOLD_MS'] ?? 0) || 0;
let held: Array<() => void> = [];

function holdForFault(label: string): Promise<void> {
  return new Promise<void>((release) => {
    held.push(release);
    if (held.length === 1) {
      setTimeout(() => { const group = held; held = []; for (const r of group) r(); }, HOLD_MS);
    }
    logger('fault').info(`fault point: file written, flush held (${held.length} waiting): ${label}`);
  });
}

/** fsync(2) `fd` at once, beside every other file's flush in flight (see the file comment). */
export async function syncFile(fd: number, label: string): Promise<void> {
  if (HOLD_MS > 0) await holdForFault(label);
  await flush(fd);
}
