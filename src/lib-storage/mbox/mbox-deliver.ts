/**
 * mbox-deliver - append one message to a UNIX mailbox file, as Postfix local(8)/virtual(8)
 * do (global/mail_copy.c, util/dot_lockfile.c):
 *  - lock: "<file>.lock" created with O_EXCL (dotlock); a lock unchanged for 500 s is stale
 *    (Postfix stale_lock_time); we try for 20 s (deliver_lock_attempts × deliver_lock_delay).
 *    Dovecot's mbox writers take the same dotlock. Node has no fcntl(): readers that rely on
 *    fcntl only are not excluded (documented in docs/mail-store.md);
 *  - append the From_ line and the quoted message, fsync;
 *  - on any error, truncate the file back to its old size so no half message remains.
 * Never follows a symlink for the mailbox file (O_NOFOLLOW), as Postfix refuses them.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { MailError, mailErrorFromErrno } from '../mail-error.ts';
import { dotlockCreate } from '../maildir/maildir-dotlock.ts';
import { formatMboxMessage } from './mbox-format.ts';
import { writeFully } from '../../util/fs-write.ts';

export const MBOX_STALE_LOCK_SECS = 500;
export const MBOX_LOCK_TIMEOUT_SECS = 20;

export interface MboxDeliverOptions { sender?: string; date?: Date; maxSize?: number }

/** Append `content` to the mbox at `path` (created 0600 if missing). Returns the bytes written. */
export async function mboxDeliver(path: string, content: Buffer, o: MboxDeliverOptions = {}): Promise<number> {
  if (o.maxSize !== undefined && content.length > o.maxSize) throw new MailError('TOOBIG', 'Message is too large.');
  const data = formatMboxMessage(content, o.sender ?? 'MAILER-DAEMON', o.date ?? new Date());
  const lock = await dotlockCreate(path, { staleSecs: MBOX_STALE_LOCK_SECS, timeoutSecs: MBOX_LOCK_TIMEOUT_SECS });
  let fh: fsp.FileHandle | undefined;
  let oldSize = 0;
  try {
    fh = await fsp.open(path, C.O_WRONLY | C.O_APPEND | C.O_CREAT | C.O_NOFOLLOW, 0o600);
    const st = await fh.stat();
    if (!st.isFile()) throw new MailError('PERM', 'Mailbox is not a regular file.', `${path}: not a regular file`);
    oldSize = st.size;
    await writeFully(fh, data);
    await fh.sync();
    return data.length;
  } catch (e) {
    if (fh) await fh.truncate(oldSize).catch(() => {});
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new MailError('PERM', 'Mailbox is a symbolic link.', `${path}: symlink refused`);
    throw mailErrorFromErrno(e, `append(${path})`);
  } finally {
    await fh?.close().catch(() => {});
    await lock.release();
  }
}
