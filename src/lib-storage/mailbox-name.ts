/**
 * mailbox-name - validation of user-supplied mailbox names, before any path is built.
 *
 * Names reach lib-storage in UTF-8 with the namespace separator ('/' or '.'). What is refused
 * (MailError PARAMS, text safe to show): empty names and components, NUL and control
 * characters, components "." and "..", '/' when it is not the
 * separator, a leading '~', names that are not valid UTF-16 (lone surrogates), and names
 * too long for one directory entry (Maildir++ stores "Archive/2024" as ".Archive.2024";
 * NAME_MAX = 255 bytes) or longer than 1024 characters in total. "INBOX" is case-insensitive
 * (RFC 3501 §5.1) and normalised. The LIST wildcards '%' and '*' are allowed, as Dovecot allows them
 * (a Maildir Dovecot made may hold `.a%b`). Because no component may contain '/' or be "..", a validated
 * name can never address anything outside the user's mail root.
 *
 * `decodeImapMailboxName` turns what an IMAP client sent (modified UTF-7, RFC 3501 §5.1.3)
 * into the UTF-8 name, refusing invalid modified UTF-7 with PARAMS.
 */
import { MailError } from './mail-error.ts';
import { mutf7ToUtf8 } from '../lib-imap/imap-utf7.ts';

export const MAILBOX_NAME_MAX_CHARS = 1024;
/** The PARAMS text for a name too long to be stored (imapd answers SELECT of one "doesn't exist"). */
export const MAILBOX_NAME_TOO_LONG = 'Mailbox name is too long.';

export function normalizeInbox(name: string, sep: string): string {
  const first = name.split(sep, 1)[0]!;
  return first.toUpperCase() === 'INBOX' && first !== 'INBOX' ? 'INBOX' + name.slice(first.length) : name;
}

/** Validate and split a mailbox name; returns the components with INBOX normalised. */
export function validateMailboxName(name: unknown, sep: string): string[] {
  if (typeof name !== 'string' || name.length === 0) throw new MailError('PARAMS', 'Mailbox name is empty.');
  if (name.length > MAILBOX_NAME_MAX_CHARS) throw new MailError('PARAMS', MAILBOX_NAME_TOO_LONG);
  if (/[\x00-\x1f\x7f]/.test(name)) throw new MailError('PARAMS', 'Mailbox name contains control characters.');
  if (!name.isWellFormed()) throw new MailError('PARAMS', 'Mailbox name is not valid UTF-8.');
  const parts = normalizeInbox(name, sep).split(sep);
  for (const p of parts) {
    if (p === '') throw new MailError('PARAMS', 'Mailbox name has an empty hierarchy level.');
    if (p === '.' || p === '..') throw new MailError('PARAMS', "Mailbox name must not contain '.' or '..' levels.");
    if (sep !== '/' && p.includes('/')) throw new MailError('PARAMS', "Character not allowed in mailbox name: '/'");
    if (p.startsWith('~')) throw new MailError('PARAMS', "Mailbox name must not start with '~'.");
  }
  return parts;
}

/** Decode an IMAP client's modified UTF-7 name (PARAMS if invalid). */
export function decodeImapMailboxName(raw: string): string {
  const s = mutf7ToUtf8(raw);
  if (s === undefined) throw new MailError('PARAMS', 'Mailbox name is not valid mUTF-7.');
  return s;
}
