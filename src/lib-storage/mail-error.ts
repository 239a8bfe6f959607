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
  constructor(code: MailErrorCode, message: string, detail?: string) {
    super(message);
    this.name = 'MailError';
    this.code = code;
    if (detail !== undefined) this.detail = detail;
  }
}

/** Map a Node fs error to a MailError: ENOENT → NOTFOUND, EACCES/EPERM → PERM, ENOSPC/EDQUOT → NOQUOTA, else TEMP. */
export function mailErrorFromErrno(e: unknown, what: string): MailError {
  if (e instanceof MailError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const detail = `${what}: ${(e as Error | undefined)?.message ?? String(e)}`;
  switch (code) {
    case 'ENOENT': return new MailError('NOTFOUND', 'Mailbox does not exist.', detail);
    case 'EACCES': case 'EPERM': case 'EROFS': return new MailError('PERM', 'Permission denied.', detail);
    case 'ENOSPC': case 'EDQUOT': return new MailError('NOQUOTA', 'Not enough disk space.', detail);
    default: return new MailError('TEMP', MAIL_ERRSTR_CRITICAL_MSG, detail);
  }
}
