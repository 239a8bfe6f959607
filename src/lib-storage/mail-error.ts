/**
 * mail-error - the error every lib-storage call throws, with Dovecot's codes (mail-error.h).
 *
 * `code` tells the protocol layer what to answer; `message` is ALWAYS safe to show to the user
 * (IMAP `NO [code] text`, LMTP 4xx/5xx). Details that must not reach the user (paths, errno)
 * go to the log through `detail` only.
 *
 *   TEMP      temporary failure (I/O, lock timeout)       IMAP NO [UNAVAILABLE] / LMTP 451 4.2.0
 *   NOTFOUND  no such mailbox or message                  IMAP NO [NONEXISTENT]  / LMTP 550 5.1.1
 *   EXISTS    mailbox already exists                      IMAP NO [ALREADYEXISTS]
 *   PERM      permission denied / read-only mailbox       IMAP NO [NOPERM]
 *   NOQUOTA   over quota                                  IMAP NO [OVERQUOTA]    / LMTP 552 5.2.2
 *   EXPUNGED  the message was expunged meanwhile          IMAP NO [EXPUNGEISSUED]
 *   INUSE     mailbox busy (e.g. deleting INBOX)          IMAP NO [INUSE]
 *   PARAMS    invalid name / arguments                    IMAP NO / BAD [CANNOT]
 *   LIMIT     a limit was hit (26 keywords in maildir)    IMAP NO [LIMIT]
 *   TOOBIG    message larger than allowed                 IMAP NO [TOOBIG] / LMTP 552 5.3.4
 */

export type MailErrorCode =
  'TEMP' | 'NOTFOUND' | 'EXISTS' | 'PERM' | 'NOQUOTA' | 'EXPUNGED' | 'INUSE' | 'PARAMS' | 'LIMIT' | 'TOOBIG';

/** Dovecot's MAIL_ERRSTR_CRITICAL_MSG: what the user sees for an internal error. */
export const MAIL_ERRSTR_CRITICAL_MSG = 'Internal error occurred. Refer to server log for more information.';

export class MailError extends Error {
  readonly code: MailErrorCode;
  /** For the log only (paths, errno text); never shown to the user. */
  readonly detail?: string;
  /** The system error behind it (ENOSPC, EDQUOT, ...), when there was one. */
  errno?: string;
  constructor(code: MailErrorCode, message: string, detail?: string) {
    super(message);
    this.name = 'MailError';
    this.code = code;
    if (detail !== undefined) this.detail = detail;
  }
}

/**
 * The C library's wording of a Node fs error ("EROFS: read-only file system, open '/x'" →
 * "Read-only file system"), which is what Postfix and Dovecot print after the file name.
 */
export function strerror(e: unknown): string {
  const msg = (e as Error | undefined)?.message ?? String(e);
  const m = /^E[A-Z0-9]+: ([^,]+)(?:, \w+ '.*')?$/s.exec(msg);
  if (!m) return msg;
  return m[1]!.charAt(0).toUpperCase() + m[1]!.slice(1);
}

/** Map a Node fs error to a MailError: ENOENT → NOTFOUND, EACCES/EPERM → PERM, ENOSPC/EDQUOT → NOQUOTA, else TEMP. */
export function mailErrorFromErrno(e: unknown, what: string): MailError {
  if (e instanceof MailError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const detail = `${what}: ${strerror(e)}`;
  let m: MailError;
  switch (code) {
    case 'ENOENT': m = new MailError('NOTFOUND', 'Mailbox does not exist.', detail); break;
    case 'EACCES': case 'EPERM': case 'EROFS': m = new MailError('PERM', 'Permission denied.', detail); break;
    case 'ENOSPC': case 'EDQUOT': m = new MailError('NOQUOTA', 'Not enough disk space.', detail); break;
    default: m = new MailError('TEMP', MAIL_ERRSTR_CRITICAL_MSG, detail);
  }
  if (code) m.errno = code;
  return m;
}
