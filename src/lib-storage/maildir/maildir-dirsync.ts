/**
 * maildir-dirsync - group commit of directory fsyncs for delivery agents (issue 3's "batch
 * fsyncs across concurrent sessions rather than giving up durability", applied to new/).
 *
 *   await syncDirGrouped('/base/user/Maildir/new')   // resolves once that directory's
 *                                                     // entries are on disk
 *
 * A rename into new/ is durable only when the directory is fsync'd (Dovecot does it; Postfix's
 * maildir.c relies on the file system journal ordering the rename before the queue file's
 * unlink). Done in the delivery itself, that second fsync waits for a second journal commit
 * while the delivery holds its destination concurrency slot, which halved throughput (issue 4).
 * Here the caller gets a promise instead: requests made while a round of fsyncs runs wait for
 * the next round, and a round fsyncs each distinct directory once, all of them at the same time
 * (so they share the file system's journal commits). qmgr keeps the queue file until the
 * promise resolves (qmgr-deliver.ts, RecipientResult.durable): nothing is forgotten before
 * it is on disk. A failed fsync rejects every promise of that directory in the round.
 */
import { closeSync, openSync, constants as C } from 'node:fs';
import { fsyncFd } from '../../util/fs-write.ts';

interface Waiter { resolve: () => void; reject: (e: unknown) => void }

/** Directories asked for since the current round started, with who waits for each. */
let waiting = new Map<string, Waiter[]>();
let running = false;

/** fsync(2) one directory (open read-only, fsync in the thread pool, close). */
async function syncDir(dir: string): Promise<void> {
  const fd = openSync(dir, C.O_RDONLY | C.O_DIRECTORY);
  try { await fsyncFd(fd); } finally { closeSync(fd); }
}

async function rounds(): Promise<void> {
  running = true;
  try {
    while (waiting.size > 0) {
      const round = waiting;
      waiting = new Map();
      await Promise.all([...round].map(async ([dir, ws]) => {
        try {
          await syncDir(dir);
          for (const w of ws) w.resolve();
        } catch (e) {
          for (const w of ws) w.reject(e);
        }
      }));
    }
  } finally {
    running = false;
  }
}

/** Resolves when `dir` has been fsync'd after this call (rejects with the fsync's error). */
export function syncDirGrouped(dir: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const ws = waiting.get(dir);
    if (ws) ws.push({ resolve, reject });
    else waiting.set(dir, [{ resolve, reject }]);
    if (!running) void rounds();
  });
}
