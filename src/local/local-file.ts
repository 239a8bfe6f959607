/**
 * local-file - local(8) delivery to a file or Maildir named by an alias, a .forward or an
 * :include: file, or by home_mailbox (Postfix local/file.c, local/maildir.c).
 *
 * SECURITY (the route chosen): when Postern runs as root the write happens in a child process
 * (local-file-child.ts) spawned with the target user's uid/gid, exactly as Postfix switches to
 * the user's rights (set_eugid) before opening the file. The kernel then checks every path
 * component with the user's rights, so a symlink, a hard link or a directory the user does not
 * own cannot make root write anywhere; no owner/mode checks of our own could cover all those
 * races. Files are never written with uid 0: Privs with uid 0 are refused (the caller maps root
 * to default_privs). When Postern is not root, the write happens in-process (it already has
 * no more rights than the user it runs as).
 *
 * The message written is mbox-formatted (From_ line, >From quoting, blank line) for files and
 * as-is for Maildir; the delivery headers are prepended by the caller.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { mailCopy } from '../global/mail-copy.ts';
import { maildirDeliver, mboxDeliver, MailError, MBOX_FILE_TOO_LARGE } from '../lib-storage/mail-deliver.ts';
import { allowed, isRoot, log, SENT, traced, type Outcome, type State, type Walk } from './local-state.ts';
import { quarantineOf } from '../lib-authres/authres-header.ts';
import type { MainConfig } from '../global/mail-conf.ts';

export interface Privs { uid: number; gid: number; name: string }

export interface FileOutcome { status: 'sent' | 'deferred' | 'bounced'; dsn: string; text: string }

const CHILD = join(import.meta.dirname, 'local-file-child.ts');

/**
 * A /file or Maildir/ target of an alias, .forward or :include: file, with the expansion's
 * rights; allow_mail_to_files limits which expansions may name files (bounce 5.7.1 "mail to
 * file is restricted"). Return-Path:, Delivered-To: and X-Original-To: are prepended.
 */
export async function deliverFileTarget(st: State, path: string, w: Walk): Promise<Outcome> {
  const { config } = st.lc;
  if (!allowed(config, 'allow_mail_to_files', w.context)) return { status: 'bounced', dsn: '5.7.1', text: `mail to file is restricted` };
  if (!w.privs) return { status: 'deferred', dsn: '4.3.0', text: `no unprivileged user for file delivery (default_privs = ${config.get('default_privs')} unknown or root)` };
  if (st.req.verify) return traced(st, st.top.address, SENT(`delivers to file: ${path}`));
  const key = `file:${path}`;
  if (st.seen.has(key)) return SENT('duplicate suppressed');
  st.seen.add(key);
  const msg = mailCopy(st.content, { sender: w.sender, recipient: st.top.address, originalRecipient: st.top.orig ?? st.top.address, flags: 'RDO' });
  const r = await deliverToFile(path, w.sender, msg, w.privs, config.size('mailbox_size_limit'), junkFolder(config, msg));
  if (r.status !== 'sent') log.warn(`${st.req.qf.queueId}: ${r.text}`);
  return r;
}

/**
 * `fileSizeLimit` is mailbox_size_limit, a limit on the mbox FILE (Postfix's set_file_limit()):
 * a message that would take the file past it bounces 5.2.2 "... error writing message: File too
 * large", the file left as it was.
 */
/**
 * The folder of a Maildir for DMARC-quarantined mail (docs/authres.md): postern_junk_mailbox when
 * the message carries cleanup's quarantine mark for our myhostname, else undefined (INBOX).
 */
export function junkFolder(config: MainConfig, content: Buffer): string | undefined {
  return quarantineOf(content, config.get('myhostname')) ? (config.get('postern_junk_mailbox') || 'Junk') : undefined;
}

/** `junk`: a Maildir target gets the message in that folder instead of INBOX (created when missing). */
export async function deliverToFile(path: string, sender: string, content: Buffer, privs: Privs, fileSizeLimit: number, junk?: string): Promise<FileOutcome> {
  const what = path.endsWith('/') ? 'maildir' : 'file';
  const tooLarge: FileOutcome = { status: 'bounced', dsn: '5.2.2', text: `cannot append message to ${what} ${path}: ${MBOX_FILE_TOO_LARGE}` };
  if (isRoot) {
    if (privs.uid === 0) return { status: 'deferred', dsn: '4.3.0', text: `refusing delivery to ${what} ${path} with root privileges` };
    const r = await runChild(path, sender, content, privs, fileSizeLimit, what === 'maildir' ? junk : undefined);
    if (r.code === 0) return { status: 'sent', dsn: '2.0.0', text: `delivered to ${what}: ${path}` };
    if (r.code === 73 && r.err === MBOX_FILE_TOO_LARGE) return tooLarge;
    const soft = r.code === 75 || r.code === null;
    return { status: soft ? 'deferred' : 'bounced', dsn: soft ? '4.2.0' : '5.2.0', text: `cannot append message to ${what} ${path}: ${r.err || `exit status ${r.code}`}` };
  }
  try {
    if (what === 'maildir') {
      await maildirDeliver(path, content, privs.name, junk);
    } else {
      await mboxDeliver(path, content, { sender, fileSizeLimit: fileSizeLimit > 0 ? fileSizeLimit : undefined });
    }
    return { status: 'sent', dsn: '2.0.0', text: `delivered to ${what}: ${path}` };
  } catch (e) {
    if (e instanceof MailError && e.errno === 'EFBIG') return tooLarge;
    const soft = !(e instanceof MailError) || e.code === 'TEMP' || e.code === 'NOQUOTA' || e.code === 'INUSE';
    const why = e instanceof MailError ? (e.detail ?? e.message) : (e as Error).message;
    return { status: soft ? 'deferred' : 'bounced', dsn: soft ? '4.2.0' : '5.2.0', text: `cannot append message to ${what} ${path}: ${why}` };
  }
}

function runChild(path: string, sender: string, content: Buffer, privs: Privs, fileSizeLimit: number, junk?: string): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CHILD, path, sender, String(fileSizeLimit), ...(junk ? [junk] : [])], {
      uid: privs.uid, gid: privs.gid, cwd: '/', stdio: ['pipe', 'ignore', 'pipe'], env: { PATH: '/usr/bin:/bin' },
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => { if (err.length < 1000) err += b.toString(); });
    child.stdin!.on('error', () => {});
    child.on('error', (e) => resolve({ code: null, err: e.message }));
    child.on('close', (code) => resolve({ code, err: err.trim() }));
    child.stdin!.end(content);
  });
}
