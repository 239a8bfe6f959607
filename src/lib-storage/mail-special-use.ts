/**
 * mail-special-use - the RFC 6154 special-use attributes a mailbox was created with (CREATE
 * ... (USE (\Sent)), RFC 6154 §3), kept where Dovecot 2.3 has no place for them: the file
 * `postern-special-use` in the mailbox's control directory, one line of attributes
 * ("\Sent \Archive\n"). The file lives in the mailbox's directory, so RENAME moves it with the
 * mailbox and DELETE removes it; Dovecot ignores it (its special-use comes from dovecot.conf's
 * `mailbox X { special_use }`, which LIST merges with these). A damaged or over-long file reads
 * as no attributes (logged); nothing is lost but the attribute.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MailError, mailErrorFromErrno } from './mail-error.ts';
import { logger } from '../util/msg.ts';

const log = logger('lib-storage');

export const SPECIAL_USE_FILE = 'postern-special-use';
const MAX_BYTES = 1024;
const ATTR = /^\\[A-Za-z0-9]{1,64}$/;

/** The attributes in `dir`'s file; [] when there is none. */
export async function readSpecialUse(dir: string): Promise<string[]> {
  let text: string;
  try {
    const h = await fsp.open(join(dir, SPECIAL_USE_FILE), 'r');
    try {
      const b = Buffer.alloc(MAX_BYTES + 1);
      const { bytesRead } = await h.read(b, 0, b.length, 0);
      if (bytesRead > MAX_BYTES) { log.warn(`${join(dir, SPECIAL_USE_FILE)}: over ${MAX_BYTES} bytes, ignored`); return []; }
      text = b.toString('latin1', 0, bytesRead);
    } finally { await h.close(); }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw mailErrorFromErrno(e, join(dir, SPECIAL_USE_FILE));
  }
  const attrs = text.split(/\s+/).filter((a) => a !== '');
  if (attrs.some((a) => !ATTR.test(a))) { log.warn(`${join(dir, SPECIAL_USE_FILE)}: not a list of special-use attributes, ignored`); return []; }
  return attrs;
}

/** Replace `dir`'s file atomically (tmp + rename); [] removes it. */
export async function writeSpecialUse(dir: string, attrs: readonly string[]): Promise<void> {
  if (attrs.some((a) => !ATTR.test(a))) throw new MailError('PARAMS', 'Invalid special-use attribute');
  const path = join(dir, SPECIAL_USE_FILE);
  try {
    if (attrs.length === 0) { await fsp.rm(path, { force: true }); return; }
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.tmp`;
    await fsp.writeFile(tmp, attrs.join(' ') + '\n', { mode: 0o600 });
    await fsp.rename(tmp, path);
  } catch (e) {
    throw mailErrorFromErrno(e, path);
  }
}
