/**
 * maildir-owner - files Postern creates in a mailbox belong to the mailbox's owner.
 *
 * Dovecot runs as the mail user, so everything it creates is that user's. When Postern runs as
 * root (the master before it drops privileges, tests), a file or directory it creates takes
 * the uid/gid of the directory it is created in, so Dovecot (running as the user) can still
 * read, rename and replace it. As a non-root process this does nothing.
 */
import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

export async function inheritOwner(path: string): Promise<void> {
  if (!isRoot) return;
  try {
    const st = await fsp.stat(dirname(path));
    if (st.uid !== 0 || st.gid !== 0) await fsp.lchown(path, st.uid, st.gid);
  } catch { /* best effort: the operation itself already succeeded */ }
}
