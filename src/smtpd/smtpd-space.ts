/**
 * smtpd-space - the free-space check at MAIL FROM (Postfix smtpd_check_size(), queue_minfree),
 * in file-system blocks: refuse (452 4.3.1 Insufficient system storage) when queue_minfree is
 * not free, or the declared SIZE would not leave queue_minfree, or would take half of what is
 * free. A completely full file system refuses even a message of unknown size.
 *
 * Postfix calls statfs() on every MAIL FROM; here a statfs() result is reused for at most
 * STATFS_MAX_AGE_MS per queue directory (shared by all sessions of the process), which takes a
 * thread-pool round trip off each message, but only while it showed at least STATFS_SPARE_BYTES
 * (plus the declared size) free above queue_minfree: closer to full, every MAIL FROM asks again,
 * as Postfix. The check is advisory either way (space can go between MAIL and the end of DATA;
 * cleanup's write errors answer 451 then). A statfs() failure lets mail through, as before: the
 * queue file write reports the real problem.
 */
import { statfs } from 'node:fs/promises';

/** How long one statfs() result of the queue file system is reused... */
export const STATFS_MAX_AGE_MS = 1000;
/** ...while it showed this much free above queue_minfree (more than a second of mail). */
export const STATFS_SPARE_BYTES = 256 * 1024 * 1024;

interface FsSpace { bsize: number; bavail: number; at: number }

const cache = new Map<string, { space?: FsSpace; pending?: Promise<FsSpace | undefined> }>();

async function queueFsSpace(dir: string, needBytes: number): Promise<FsSpace | undefined> {
  let e = cache.get(dir);
  if (!e) { e = {}; cache.set(dir, e); }
  const sp = e.space;
  if (sp && performance.now() - sp.at < STATFS_MAX_AGE_MS && sp.bavail * sp.bsize >= needBytes) return sp;
  const entry = e;
  // Concurrent sessions share one statfs() in flight.
  entry.pending ??= statfs(dir).then(
    (fs) => (entry.space = { bsize: Number(fs.bsize) || 4096, bavail: Number(fs.bavail), at: performance.now() }),
    () => undefined,
  ).finally(() => { entry.pending = undefined; });
  return entry.pending;
}

export interface SpaceVerdict { ok: boolean; free: number }

/** Is there room for a message of `size` bytes (0 = unknown) in the queue under queue_minfree? */
export async function enoughQueueSpace(queueDirectory: string, queueMinfree: number, size: number): Promise<SpaceVerdict> {
  const fs = await queueFsSpace(queueDirectory, queueMinfree + STATFS_SPARE_BYTES + size);
  if (!fs) return { ok: true, free: 0 };
  const free = fs.bavail;
  const minBlocks = Math.floor(queueMinfree / fs.bsize);
  const sizeBlocks = Math.floor(size / fs.bsize);
  const ok = !(minBlocks >= free || sizeBlocks >= free - minBlocks || sizeBlocks >= free / 2);
  return { ok, free: free * fs.bsize };
}
