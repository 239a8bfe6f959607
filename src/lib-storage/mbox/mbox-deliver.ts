/**
 * mbox-deliver - append one message to a UNIX mailbox file, as Postfix local(8)/virtual(8)
 * do (global/mail_copy.c, util/dot_lockfile.c):
 *  - lock: "<file>.lock" created with O_EXCL (dotlock); a lock unchanged for 500 s is stale
 *    (Postfix stale_lock_time); we try for 20 s (deliver_lock_attempts × deliver_lock_delay).
 *    Dovecot's mbox writers take the same dotlock. Node has no fcntl(): readers that rely on
 *    fcntl only are not excluded (documented in docs/mail-store.md);
 *  - append the From_ line and the quoted message, fsync;
 *  - on any error after writing began, truncate the file back to its old size so no half
 *    message remains.
 * Never follows a symlink for the mailbox file (O_NOFOLLOW), as Postfix refuses them.
 * Options: `fileSizeLimit` (virtual(8)'s virtual_mailbox_limit, local(8)'s mailbox_size_limit:
 * Postfix's set_file_limit(), a limit on the FILE: a message that would make the file larger
 * fails as EFBIG, MailError NOQUOTA, errno EFBIG, detail "file too large"; local(8) reports it
 * as Postfix's mail_copy() does, MBOX_FILE_TOO_LARGE) and `makeParents` (create missing parent directories with that
 * mode first, as virtual(8) does).
 */
import { promises as fsp, constants as C } from 'node:fs';
import { dirname } from 'node:path';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { dotlockCreate } from '../maildir/maildir-dotlock.ts';
import { formatMboxMessage } from './mbox-format.ts';
import { writeFully } from '../../util/fs-write.ts';

export const MBOX_STALE_LOCK_SECS = 500;
export const MBOX_LOCK_TIMEOUT_SECS = 20;

export interface MboxDeliverOptions {
  sender?: string;
  date?: Date;
  /** Refuse a message larger than this (MailError TOOBIG). */
  maxSize?: number;
  /** Refuse a message that would make the file larger than this (bytes, 0: no limit). */
  fileSizeLimit?: number;
  /** Create missing parent directories with this mode before locking. */
  makeParents?: number;
}

/** Postfix mail_copy()'s reason when the mailbox file would pass its size limit (write: EFBIG). */
export const MBOX_FILE_TOO_LARGE = 'error writing message: File too large';

/** The MailError of a mailbox file that is not a regular file (its message tells the cases apart). */
export const MBOX_NOT_REGULAR = 'Mailbox is not a regular file.';

/** Append `content` to the mbox at `path` (created 0600 if missing). Returns the bytes written. */
export async function mboxDeliver(path: string, content: Buffer, o: MboxDeliverOptions = {}): Promise<number> {
  if (o.maxSize !== undefined && content.length > o.maxSize) throw new MailError('TOOBIG', 'Message is too large.');
  const data = formatMboxMessage(content, o.sender ?? 'MAILER-DAEMON', o.date ?? new Date());
  if (o.makeParents !== undefined) {
    await fsp.mkdir(dirname(path), { recursive: true, mode: o.makeParents }).catch((e: unknown) => { throw mailErrorFromErrno(e, `mkdir(${dirname(path)})`); });
  }
  const lock = await dotlockCreate(path, { staleSecs: MBOX_STALE_LOCK_SECS, timeoutSecs: MBOX_LOCK_TIMEOUT_SECS });
  let fh: fsp.FileHandle | undefined;
  let oldSize = -1;
  try {
    fh = await fsp.open(path, C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    const st = await fh.stat();
    if (!st.isFile()) throw new MailError('PERM', MBOX_NOT_REGULAR, `${path}: not a regular file`);
    if (o.fileSizeLimit && st.size + data.length > o.fileSizeLimit) {
      const big = new MailError('NOQUOTA', 'Quota exceeded (mailbox for user is full)', 'file too large');
      big.errno = 'EFBIG';
      throw big;
    }
    oldSize = st.size;
    await writeFully(fh, data);
    await fh.sync();
    return data.length;
  } catch (e) {
    if (fh && oldSize >= 0) await fh.truncate(oldSize).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new MailError('PERM', 'Mailbox is a symbolic link.', `${path}: symlink refused`);
    throw mailErrorFromErrno(e, `append(${path})`);
  } finally {
    await fh?.close().catch(() => {});
    await lock.release();
  }
}
