/**
 * local-mailbox - the last step of local(8) for a UNIX account (Postfix local/mailbox.c,
 * maildir.c, command.c): in Postfix's order of precedence
 *   1. mailbox_transport (→ a redirect to another transport, deliver-redirect.ts)
 *   2. mailbox_command   (run through the shell as the user, with the Postfix environment)
 *   3. home_mailbox      ("Maildir/" → Maildir through lib-storage, with the user's Sieve
 *                         scripts when dovecot.conf enables them for the LDA: local-sieve.ts;
 *                         else an mbox file in $home)
 *   4. mail_spool_directory/USER (mbox through lib-storage/mail-deliver.ts: From_ line, >From,
 *      dotlock)
 * Every message gets Return-Path:, X-Original-To: and Delivered-To: prepended (mail_copy.c).
 *
 * SECURITY: home_mailbox lives in a directory the user controls, so it is written with the
 * user's rights (local-file.ts spawns a child with the user's uid). The spool file lives in a
 * directory the administrator controls: it is written in-process with O_NOFOLLOW, must be a
 * regular file owned by the user (else refused, as Postfix "not owned by user"), and a new one
 * is created 0600 and given to the user. Mail for uid 0 is delivered with default_privs
 * (Postfix never writes a mailbox or runs a command as root).
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { parseTransportNexthop } from '../global/deliver-redirect.ts';
import { mailCopy } from '../global/mail-copy.ts';
import { mboxDeliver, MailError, MBOX_FILE_TOO_LARGE } from '../lib-storage/mail-deliver.ts';
import type { PasswdEntry } from '../util/dict-unix.ts';
import { runShell } from './local-command.ts';
import { deliverToFile, junkFolder, type FileOutcome, type Privs } from './local-file.ts';
import { deliverMaildirSieve } from './local-sieve.ts';
import { forward } from './local-forward.ts';
import { isRoot, log, redirectTo, SENT, userPrivs, type Outcome, type State, type Walk } from './local-state.ts';

/** The mailbox of UNIX account `pw` (the steps of the header, in order). */
export async function deliverMailbox(st: State, pw: PasswdEntry, user: string, local: string, extension: string, domain: string, w: Walk): Promise<Outcome> {
  const { config, s } = st.lc;
  const mt = parseTransportNexthop(config.get('mailbox_transport'), st.req.nexthop);
  if (mt) return w.path.length > 1 ? forward(st, w.sender, `${local}@${domain}`) : redirectTo(mt);
  if (st.req.verify) return probeAnswer(config.rawOrDefault('mailbox_command') ?? '', config.get('home_mailbox'), config.get('mail_spool_directory'));
  const privs = userPrivs(config, pw);
  if (!privs) return { status: 'deferred', dsn: '4.3.0', text: `mail for ${user} (uid 0) needs default_privs, which is unknown or root` };
  const top = st.top;
  const cmd = config.rawOrDefault('mailbox_command') ?? '';
  if (cmd.trim()) {
    const filter = config.get('command_expansion_filter');
    const vars: Record<string, string> = { user, home: pw.dir, shell: pw.shell, local, extension, domain, recipient: top.address, sender: w.sender, original_recipient: top.orig ?? top.address, recipient_delimiter: s.delim, mailbox: local };
    // local(8) expands only its own lower-case names; `$HOME`, `$EXTENSION` etc. are left
    // for the shell (postconf(5) mailbox_command: "not subjected to $name substitutions").
    const expanded = cmd.replace(/\$(?:\{(\w+)\}|\((\w+)\)|(\w+))/g, (m, a?: string, b?: string, c?: string) => {
      const n = (a ?? b ?? c)!;
      if (!Object.hasOwn(vars, n)) return m;
      const v = vars[n]!;
      return n === 'home' || n === 'shell' ? v : [...v].map((ch) => (filter.includes(ch) ? ch : '_')).join('');
    });
    return runShell(st, expanded, { ...w, privs }, pw, { home: pw.dir, user, shell: pw.shell, local, extension, domain });
  }
  const msg = mailCopy(st.content, { sender: w.sender, recipient: top.address, originalRecipient: top.orig ?? top.address, flags: 'RDO' });
  const limit = config.size('mailbox_size_limit');
  const home = config.get('home_mailbox');
  const junk = junkFolder(config, msg);
  const r = home && home.endsWith('/') && st.lc.sieve && !junk && !home.startsWith('/') && !home.split('/').includes('..')
    ? await deliverMaildirSieve(st, pw.dir, join(pw.dir, home), user, w.sender, msg, privs)
    : home
    ? await deliverHomeMailbox(pw.dir, home, w.sender, msg, privs, limit, junk)
    : await deliverSpool(config.get('mail_spool_directory'), user, w.sender, msg, privs, limit);
  if (r.status !== 'sent') log.warn(`${st.req.qf.queueId}: ${r.text}`);
  return r;
}

/**
 * An address verification probe (Postfix mailbox.c, maildir.c, command.c: "Don't deliver
 * trace-only requests"): what delivery would do, in the same order, nothing written.
 */
function probeAnswer(mailboxCommand: string, homeMailbox: string, spool: string): Outcome {
  if (mailboxCommand.trim()) return SENT(`delivers to command: ${mailboxCommand}`);
  if (homeMailbox.endsWith('/') || (!homeMailbox && spool.endsWith('/'))) return SENT('delivers to maildir');
  return SENT('delivers to mailbox');
}

/**
 * The user's file in mail_spool_directory. `fileSizeLimit` is mailbox_size_limit: a limit on the
 * mailbox FILE, as Postfix's set_file_limit() (postconf(5): "the maximal size of any local(8)
 * individual mailbox or maildir file"); a message that would take the file past it bounces
 * 5.2.2 "... error writing message: File too large" and the file is left as it was.
 */
export async function deliverSpool(spoolDir: string, user: string, sender: string, content: Buffer, privs: Privs, fileSizeLimit: number): Promise<FileOutcome> {
  if (user.includes('/') || user === '.' || user === '..' || user === '') return { status: 'bounced', dsn: '5.1.3', text: `bad user name for mailbox: "${user}"` };
  const path = join(spoolDir, user);
  try {
    const st = await fsp.lstat(path).catch((e: NodeJS.ErrnoException) => { if (e.code === 'ENOENT') return undefined; throw e; });
    if (st && !st.isFile()) return { status: 'bounced', dsn: '5.2.0', text: `cannot update mailbox ${path} for user ${user}. file type is not a regular file` };
    if (st && isRoot && st.uid !== privs.uid) return { status: 'bounced', dsn: '5.2.0', text: `cannot update mailbox ${path} for user ${user}. file owner uid ${st.uid} is not the user's uid ${privs.uid}` };
    await mboxDeliver(path, content, { sender, fileSizeLimit: fileSizeLimit > 0 ? fileSizeLimit : undefined });
    if (!st && isRoot) await fsp.lchown(path, privs.uid, privs.gid);
    return { status: 'sent', dsn: '2.0.0', text: 'delivered to mailbox' };
  } catch (e) {
    // Postfix mbox_dsn(): EFBIG (the file size limit) is 5.2.2.
    if (e instanceof MailError && e.errno === 'EFBIG') return { status: 'bounced', dsn: '5.2.2', text: `cannot update mailbox ${path} for user ${user}. ${MBOX_FILE_TOO_LARGE}` };
    const soft = !(e instanceof MailError) || e.code === 'TEMP' || e.code === 'NOQUOTA' || e.code === 'INUSE';
    const why = e instanceof MailError ? (e.detail ?? e.message) : (e as Error).message;
    return { status: soft ? 'deferred' : 'bounced', dsn: soft ? '4.2.0' : '5.2.0', text: `cannot update mailbox ${path} for user ${user}. ${why}` };
  }
}

/** home_mailbox delivery: `Maildir/` (trailing slash) or a file name, relative to $home. */
export async function deliverHomeMailbox(home: string, homeMailbox: string, sender: string, content: Buffer, privs: Privs, fileSizeLimit: number, junk?: string): Promise<FileOutcome> {
  if (homeMailbox.startsWith('/') || homeMailbox.split('/').includes('..')) {
    return { status: 'deferred', dsn: '4.3.5', text: `mail system configuration error: home_mailbox = ${homeMailbox} must be relative to $home without ".."` };
  }
  const r = await deliverToFile(join(home, homeMailbox) + (homeMailbox.endsWith('/') ? '/' : ''), sender, content, privs, fileSizeLimit, junk);
  return r.status === 'sent' ? { ...r, text: homeMailbox.endsWith('/') ? 'delivered to maildir' : 'delivered to mailbox' } : r;
}
