/**
 * local-file-child - the process that appends a message to a user-named file or Maildir with
 * the user's privileges (local(8) file delivery, Postfix local/file.c under set_eugid()).
 *
 * local-file.ts spawns it with the target's uid/gid when Postern runs as root, so the kernel
 * checks every path component with the user's rights: a symlink or a directory the user does
 * not own cannot make root write anywhere. Usage (internal):
 *   node local-file-child.ts PATH SENDER FILESIZELIMIT [FOLDER] < message-with-delivery-headers
 * PATH ending in "/" = Maildir (lib-storage/mail-deliver.ts, Dovecot layout), else mbox (From_
 * line, >From quoting, dotlock). FILESIZELIMIT (mailbox_size_limit, 0 = none) limits the mbox
 * file's size, as Postfix's set_file_limit(). FOLDER: a Maildir folder instead of INBOX (the
 * DMARC quarantine's Junk), created when missing. Exit status follows <sysexits.h>: 0 ok, 75
 * temporary (EX_TEMPFAIL), 73 cannot create/write (EX_CANTCREAT); the reason is written to
 * stderr: MBOX_FILE_TOO_LARGE exactly (with 73) when the file would pass the limit.
 */
import { maildirDeliver, mboxDeliver, MailError, MBOX_FILE_TOO_LARGE } from '../lib-storage/mail-deliver.ts';

async function main(): Promise<number> {
  const [path, sender, max, folder] = process.argv.slice(2);
  if (!path || sender === undefined) { process.stderr.write('usage: local-file-child PATH SENDER [FILESIZELIMIT]\n'); return 64; }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const content = Buffer.concat(chunks);
  const fileSizeLimit = Number(max) > 0 ? Number(max) : undefined;
  try {
    if (path.endsWith('/')) {
      await maildirDeliver(path, content, String(process.getuid?.() ?? 0), folder || 'INBOX');
    } else {
      await mboxDeliver(path, content, { sender, fileSizeLimit });
    }
    return 0;
  } catch (e) {
    // Postfix mbox_dsn(): EFBIG is permanent (5.2.2).
    if (e instanceof MailError && e.errno === 'EFBIG') { process.stderr.write(MBOX_FILE_TOO_LARGE); return 73; }
    // Postfix mbox_dsn(): a lock held too long or a full disk is temporary; the rest is not.
    const temp = e instanceof MailError ? e.code === 'TEMP' || e.code === 'NOQUOTA' || e.code === 'INUSE' : true;
    const detail = e instanceof MailError ? e.detail : undefined;
    process.stderr.write(detail ?? (e as Error).message);
    return temp ? 75 : 73;
  }
}

main().then((code) => { process.exitCode = code; }, (e) => { process.stderr.write(String(e)); process.exitCode = 75; });
