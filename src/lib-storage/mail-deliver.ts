/**
 * mail-deliver - the mailbox store's delivery calls for Postfix's delivery agents, which are
 * given a path by their configuration instead of a user of the user directory (the store's
 * other writers, lmtpd and IMAP APPEND, use MailUser.deliver() of mail-storage.ts):
 *
 *   deliverToNew(dir, parts)       Maildir as Postfix virtual(8)'s maildir.c: write tmp/, fsync,
 *                                  rename into new/; no uidlist lock (the reader numbers it at
 *                                  its next sync). `durable` resolves when new/ is fsync'd
 *                                  (grouped, util/dir-sync.ts): virtual(8) hands it to qmgr.
 *   maildirDeliver(dir, content, user)  Maildir with a UID at once (Dovecot's save under the
 *                                  uidlist lock), quota not checked: local(8) Maildir files.
 *   mboxDeliver(path, content, o)  mbox as Postfix mail_copy.c + dot_lockfile.c: append under
 *                                  the FILE.lock dotlock (stale after 500 s, Postfix's
 *                                  stale_lock_time; given up after 20 s): virtual(8), local(8)
 *                                  files and mail_spool_directory.
 *
 *   deliverWithSieve(user, o)      the user's Sieve filters (Pigeonhole: sieve_before, the
 *                                  user's active script, sieve_after) decide the mailboxes, flags,
 *                                  redirects and replies: lmtpd, virtual(8) and local(8) call it
 *                                  when mail_plugins has sieve (mail-deliver-sieve.ts).
 *
 * Each throws MailError (mail-error.ts, errno set when a system call failed).
 */
export { deliverToNew, type DeliveredFile } from './maildir/maildir-save.ts';
export { maildirDeliver, maildirEnsureMailbox } from './maildir/maildir-storage.ts';
export { mboxDeliver, MBOX_FILE_TOO_LARGE, MBOX_NOT_REGULAR, type MboxDeliverOptions } from './mbox/mbox-deliver.ts';
export { MailError } from './mail-error.ts';
export { deliverWithSieve, deliverToMaildirWithSieve, sieveScripts, type SieveDeliverOptions, type SieveDeliverResult, type SieveSend } from './mail-deliver-sieve.ts';
