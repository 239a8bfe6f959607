/**
 * postern-index - `postern index`: the full-text search index of a user's mailboxes from the
 * command line, as `doveadm fts rescan` / `doveadm index` are used (docs/fts.md).
 *
 * SYNOPSIS
 *   postern index rebuild USER [MAILBOX]
 *
 * DESCRIPTION
 *   rebuild: writes a new `postern-fts` index (lib-fts/fts-index.ts) for MAILBOX, or for every
 *   mailbox of USER, from the messages as they are now, and replaces the old one when complete
 *   (a crash meanwhile leaves the old one). Only a batch of messages is held in memory at a
 *   time. Nothing else needs it: IMAP SEARCH indexes what an index lacks (or creates a missing
 *   one) before it answers; rebuild moves that cost out of the first search after a bulk import
 *   (e.g. a Maildir copied in with rsync). USER is looked up in the userdb of
 *   CONFIG_DIR/dovecot.conf; MAILBOX is named as IMAP shows it (the inbox namespace's separator).
 *   Prints one line per mailbox: `MAILBOX: N messages indexed`.
 *
 * DIAGNOSTICS
 *   Usage errors exit 64 (EX_USAGE), an unknown user 67 (EX_NOUSER), a missing mailbox or an
 *   unwritable index 1 with the reason.
 *
 * SECURITY
 *   Run it as root or as the mail owner: the index is created owned by the mailbox directory's
 *   owner, as every file Postern makes in a mailbox.
 */
import type { CliContext } from './cli-context.ts';

const EX_USAGE = 64;
const EX_NOUSER = 67;
const USAGE = 'usage: postern index rebuild USER [MAILBOX]';

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const [sub, user, mailbox, ...extra] = args;
  if (sub !== 'rebuild' || !user || extra.length > 0) { process.stderr.write(`${USAGE}\n`); return EX_USAGE; }
  const { loadDovecotConf } = await import('../global/dovecot-conf.ts');
  const { openUserDirectory } = await import('../lib-auth/user-directory-open.ts');
  const { MaildirStore } = await import('../lib-storage/maildir/maildir-storage.ts');
  const { imapdSettings } = await import('../imapd/imapd-settings.ts');
  const conf = loadDovecotConf(ctx.configDir);
  const dir = await openUserDirectory(conf);
  let rec;
  try { rec = await dir.lookup(user); } finally { await dir.close(); }
  if (!rec) { process.stderr.write(`postern index: user ${user} doesn't exist in the userdb of ${conf.file}\n`); return EX_NOUSER; }
  const mu = await new MaildirStore({ separator: imapdSettings(conf).separator }).forUser(rec);
  try {
    const names = mailbox !== undefined ? [mailbox] : (await mu.list()).filter((b) => !b.nonExistent && !b.attributes.includes('\\Noselect')).map((b) => b.name);
    for (const name of names) {
      let box;
      try { box = await mu.open(name, { readOnly: true }); } catch (e) {
        process.stderr.write(`postern index: ${name}: ${(e as Error).message}\n`);
        return 1;
      }
      try {
        const fts = box.ftsIndex;
        if (!fts) { process.stdout.write(`${name}: no full-text index for this mailbox format (mbox): searches read every message\n`); continue; }
        const n = await fts.rebuild(box.uidValidity, box.messages().map((m) => m.uid), (uids, each) => box.readMany(uids, each));
        process.stdout.write(`${name}: ${n} messages indexed\n`);
      } catch (e) {
        process.stderr.write(`postern index: ${name}: cannot write the index: ${(e as Error).message} (check the mailbox directory's owner and free space)\n`);
        return 1;
      } finally { await box.close(); }
    }
  } finally { await mu.close(); }
  return 0;
}
