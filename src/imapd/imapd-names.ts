/**
 * imapd-names - mailbox names between the wire and lib-storage: modified UTF-7 (RFC 3501
 * §5.1.3) ⇄ UTF-8 (UTF-8 on the wire too after ENABLE IMAP4rev2, RFC 9051 §5.1, or ENABLE
 * UTF8=ACCEPT, RFC 6855 §3, where invalid UTF-8 or NUL is `NO Mailbox name is not valid UTF-8`), the namespace prefix, INBOX case-insensitivity (RFC 3501 §5.1), and the
 * astring form used in LIST/STATUS answers. Invalid modified UTF-7 is refused with Dovecot's
 * text `NO Mailbox name is not valid mUTF-7`.
 */
import { argBytes, type ImapArg, ImapParseError } from '../lib-imap/imap-parser.ts';
import { decodeMailboxName, mutf7Encode } from '../lib-imap/imap-utf7.ts';
import { imapAstring } from '../lib-imap/imap-compose.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { ImapSession } from './imapd-session.ts';

/** Mailbox names are UTF-8 on the wire: after ENABLE IMAP4rev2 (RFC 9051 §5.1) or UTF8=ACCEPT (RFC 6855 §3). */
export function utf8Names(s: ImapSession): boolean {
  return s.rev2 || s.enabled.has('UTF8=ACCEPT');
}

/** A NO without response code (Dovecot's text for invalid mUTF-7). */
export class ImapNoError extends Error {}

export function mailboxArg(s: ImapSession, a: ImapArg | undefined): string {
  const raw = a && a.type !== 'list' ? argBytes(a) : undefined; // NIL is the name "NIL" (astring)
  if (!raw) throw new ImapParseError('Invalid arguments');
  let name: string;
  const utf8 = utf8Names(s);
  try { name = decodeMailboxName(raw, utf8); } catch { // IMAP4rev2 / UTF8=ACCEPT: UTF-8 names
    throw new ImapNoError(utf8 ? 'Mailbox name is not valid UTF-8' : 'Mailbox name is not valid mUTF-7');
  }
  const sep = s.shared.settings.separator;
  const prefix = s.shared.settings.prefix;
  if (prefix && name.toUpperCase() !== 'INBOX') {
    if (!name.startsWith(prefix)) throw new MailError('NOTFOUND', `Mailbox doesn't exist: ${name}`);
    name = name.slice(prefix.length);
  }
  const first = name.split(sep, 1)[0]!;
  if (first.toUpperCase() === 'INBOX') name = 'INBOX' + name.slice(first.length);
  return name;
}

/** The name as the client sees it (prefix + modified UTF-7, or UTF-8 in IMAP4rev2), as an astring. */
export function mailboxOut(s: ImapSession, name: string): Buffer {
  const full = name === 'INBOX' || name.startsWith('INBOX' + s.shared.settings.separator) && s.shared.settings.prefix === ''
    ? name : s.shared.settings.prefix + name;
  return imapAstring(utf8Names(s) ? Buffer.from(full, 'utf8') : mutf7Encode(full));
}

/** For texts like "Mailbox doesn't exist: X". */
export function mailboxText(name: string): string {
  return mutf7Encode(name);
}
