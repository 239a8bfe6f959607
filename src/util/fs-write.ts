/**
 * fs-write - write a whole buffer or fail. write(2) may write less than asked (a nearly full
 * disk, a signal); FileHandle.write() reports that in bytesWritten and does not retry. Every
 * durable writer (queue files, Maildir files, mbox) uses this so that a short write can never
 * pass for a complete file: the remainder is retried, and a write that makes no progress
 * raises ENOSPC.
 *
 * The fd forms serve the queue file writer, which keeps a plain descriptor: writeFullySync()
 * for the few KB of a small message (a page-cache copy, cheaper on the event loop than a
 * thread-pool round trip), writeFullyFd() and fsyncFd() for the rest.
 */
import { fsync, write, writeSync, writevSync } from 'node:fs';
import { LATENCY_BOUNDS, metrics } from './metrics.ts';
import type { FileHandle } from 'node:fs/promises';

function noProgress(): NodeJS.ErrnoException {
  const e = new Error('short write: no space left on device') as NodeJS.ErrnoException;
  e.code = 'ENOSPC';
  return e;
}

export async function writeFully(fh: FileHandle, buf: Uint8Array, position?: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position === undefined ? null : position + off);
    if (bytesWritten <= 0) throw noProgress();
    off += bytesWritten;
  }
}

/** writeFully() on a descriptor, at `position`, without leaving the event loop. */
export function writeFullySync(fd: number, buf: Uint8Array, position: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = writeSync(fd, buf, off, buf.length - off, position + off);
    if (n <= 0) throw noProgress();
    off += n;
  }
}

/**
 * Several buffers written one after another from `position` with one writev(2) (a delivery's
 * added header lines, then the message), the rest retried buffer by buffer after a short write.
 */
export function writevFullySync(fd: number, bufs: readonly Uint8Array[], position: number): void {
  const total = bufs.reduce((n, b) => n + b.length, 0);
  let done = bufs.length > 1 ? writevSync(fd, bufs as Uint8Array[], position) : 0;
  if (done >= total) return;
  for (const b of bufs) {
    if (done >= b.length) { done -= b.length; position += b.length; continue; }
    writeFullySync(fd, b.subarray(done), position + done);
    position += b.length;
    done = 0;
  }
}

/** writeFully() on a descriptor, at `position`, in the thread pool. */
export async function writeFullyFd(fd: number, buf: Uint8Array, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const n = await new Promise<number>((res, rej) => write(fd, buf, off, buf.length - off, position + off, (e, w) => (e ? rej(e) : res(w))));
    if (n <= 0) throw noProgress();
    off += n;
  }
}

const FSYNC = metrics.histogram('postern_fsync_duration_seconds', 'fsync(2) of queue files and directories', [], LATENCY_BOUNDS).labels();

/** fsync(2) in the thread pool. */
export function fsyncFd(fd: number): Promise<void> {
  const t0 = performance.now();
  return new Promise((res, rej) => fsync(fd, (e) => { FSYNC.observe((performance.now() - t0) / 1000); if (e) rej(e); else res(); }));
}
