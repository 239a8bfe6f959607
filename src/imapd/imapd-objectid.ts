/**
 * imapd-objectid - OBJECTID (RFC 8474): the identifiers of mailboxes and messages.
 *   MAILBOXID  the mailbox GUID Dovecot keeps for the mailbox (Maildir: the `G` field of the
 *              dovecot-uidlist header, `doveadm mailbox status guid`; the same GUID METADATA keys
 *              its entries by), 32 hex digits. It lives in the mailbox's own directory, so it
 *              survives restarts and RENAME (RFC 8474 §4.1) and both servers show the same value.
 *              Answered in SELECT/EXAMINE (`* OK [MAILBOXID (id)] Ok`), CREATE
 *              (`OK [MAILBOXID (id)] Create completed`) and STATUS (MAILBOXID), also in LIST-STATUS.
 *   EMAILID    the message's GUID (Maildir: the file's base name, which a flag change keeps) when it
 *              is valid objectid syntax, else `M` and 24 hex digits of its SHA-256: stable across
 *              sessions, restarts and flag changes, different for different messages (§5.1).
 *   THREADID   NIL: Postern keeps no thread index (RFC 8474 §5.2 lets a server answer NIL); SEARCH
 *              THREADID therefore matches nothing.
 * Syntax (§4): objectid = 1*255(ALPHA / DIGIT / "_" / "-"); anything else given to SEARCH
 * EMAILID/THREADID is BAD.
 */
import { createHash } from 'node:crypto';
import type { MessageInfo } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';

const OBJECTID = /^[A-Za-z0-9_-]{1,255}$/;

export function isObjectId(s: string): boolean { return OBJECTID.test(s); }

/** The MAILBOXID of a mailbox, or undefined when the format keeps no GUID (mbox). */
export async function mailboxId(s: ImapSession, name: string): Promise<string | undefined> {
  const u = s.user;
  if (!u?.mailboxGuid) return undefined;
  // a format without GUIDs behind a namespace wrapper, or a GUID that cannot be written
  // (another user's read-only mailbox): no MAILBOXID rather than a failed SELECT
  const g = await u.mailboxGuid(name).catch(() => undefined);
  return g && isObjectId(g) ? g : undefined;
}

const emailIds = new WeakMap<MessageInfo, string>();

export function emailId(m: Pick<MessageInfo, 'guid'>): string {
  if (isObjectId(m.guid)) return m.guid;
  const cached = emailIds.get(m as MessageInfo);
  if (cached) return cached;
  const id = 'M' + createHash('sha256').update(m.guid).digest('hex').slice(0, 24);
  emailIds.set(m as MessageInfo, id);
  return id;
}
