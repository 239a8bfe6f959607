/**
 * fs-write - write a whole buffer or fail. write(2) may write less than asked (a nearly full
 * disk, a signal); FileHandle.write() reports that in bytesWritten and does not retry. Every
 * durable writer (queue files, Maildir files, mbox) uses this so that a short write can never
 * pass for a complete file: the remainder is retried, and a write that makes no progress
 * raises ENOSPC.
 */
import type { FileHandle } from 'node:fs/promises';

export async function writeFully(fh: FileHandle, buf: Uint8Array, position?: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position === undefined ? null : position + off);
    if (bytesWritten <= 0) {
      const e = new Error('short write: no space left on device') as NodeJS.ErrnoException;
      e.code = 'ENOSPC';
      throw e;
    }
    off += bytesWritten;
  }
}
