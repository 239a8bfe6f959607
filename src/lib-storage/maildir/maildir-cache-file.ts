/**
 * maildir-cache-file - `postern-cache`: one file per mailbox, in the CONTROL directory next to
 * dovecot-uidlist and postern-index, that a protocol layer keeps derived data in (imapd: the
 * parsed ENVELOPE/BODYSTRUCTURE/BODY answers, format in src/imapd/imapd-cache-file.ts). This
 * module only stores opaque bytes (the MailboxCacheFile of mail-storage.ts): the protocol code
 * never touches a path (STYLE §6). It is a CACHE: deleting it loses nothing.
 * Dovecot ignores it as it ignores postern-index (plain files in the root are skipped by its
 * Maildir++ and LAYOUT=fs listings; the name starts with `postern-`, never `.`).
 *
 * READ: lstat first; anything but a regular file, or a file above the caller's byte limit, is
 * ignored with a warning (never read into memory). A missing file is silently "none".
 * WRITE: atomically (unique tmp name + rename, no fsync: a cache), owner inherited from the
 * directory as every file Postern creates in a mailbox. A mailbox deleted or renamed meanwhile
 * (ENOENT on its directory) is not recreated: the write is dropped silently. Never throws.
 */
import { lchownSync, promises as fsp, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { MailboxCacheFile } from '../mail-storage.ts';
import { logger } from '../../util/msg.ts';
import { inheritOwner } from './maildir-owner.ts';

export const CACHE_FILE_NAME = 'postern-cache';
const log = logger('lib-storage');

/** Every mailbox's file by its path: the same object for every handle (its `key`). */
const files = new Map<string, MaildirCacheFile>();

export function maildirCacheFile(ctlDir: string): MailboxCacheFile {
  const path = join(ctlDir, CACHE_FILE_NAME);
  let f = files.get(path);
  if (!f) { f = new MaildirCacheFile(path); files.set(path, f); }
  return f;
}

class MaildirCacheFile implements MailboxCacheFile {
  readonly key: string;
  constructor(path: string) { this.key = path; }

  async read(maxBytes: number): Promise<Buffer | undefined> {
    const path = this.key;
    try {
      const st = await fsp.lstat(path);
      if (!st.isFile()) { log.warn(`${path}: not a regular file; ignored (remove it)`); return undefined; }
      if (st.size > maxBytes) { log.warn(`${path}: ${st.size} bytes is more than a cache file may hold (${maxBytes}); ignored (it is a cache, it will be rewritten)`); return undefined; }
      const b = await fsp.readFile(path);
      if (b.length > maxBytes) { log.warn(`${path}: grew beyond ${maxBytes} bytes while read; ignored`); return undefined; }
      return b;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${path}: ${(e as Error).message}; ignored (it is a cache)`);
      return undefined;
    }
  }

  async write(data: Buffer): Promise<void> {
    const tmp = `${this.key}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await fsp.writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
      await inheritOwner(tmp);
      await fsp.rename(tmp, this.key);
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {});
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`${this.key}: cannot write (a cache; answers are recomputed): ${(e as Error).message}`);
    }
  }

  writeSync(data: Buffer): void {
    const tmp = `${this.key}.tmp.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
      if (process.getuid?.() === 0) {
        // as inheritOwner(): a file made by root belongs to the mailbox's owner
        const st = statSync(join(this.key, '..'));
        if (st.uid !== 0 || st.gid !== 0) lchownSync(tmp, st.uid, st.gid);
      }
      renameSync(tmp, this.key);
    } catch {
      try { unlinkSync(tmp); } catch { /* not created */ }
    }
  }
}
