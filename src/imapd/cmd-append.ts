/**
 * cmd-append - APPEND (RFC 3501 §6.3.11) with MULTIAPPEND (RFC 3502: all or nothing is not
 * promised by Maildir; each message is saved in turn and the reply names every UID), CATENATE
 * (RFC 4469: TEXT literals and IMAP URLs of messages in this user's mailboxes,
 * `/INBOX;UIDVALIDITY=v/;UID=n[/;SECTION=s][/;PARTIAL=o.n]`) and UIDPLUS APPENDUID
 * (RFC 4315 §3). Saving goes through MailUser.deliver(), the same entry as virtual(8)/lmtpd, in
 * the form Dovecot saves (lib-imap/imap-append-save.ts): LF line ends, and the binary parts of a
 * literal8 message (RFC 3516 §4.4) base64-encoded.
 *   OK [APPENDUID v uid-set] Append completed       NO [TRYCREATE] Mailbox doesn't exist: X
 *   NO [BADURL url] ...                             NO [OVERQUOTA] / [TOOBIG] from the store
 */
import { parseAppendArgs, type AppendMessage } from '../lib-imap/imap-command-args.ts';
import { numbersToSeqSet } from '../lib-imap/imap-seqset.ts';
import { parseFetchAtt } from '../lib-imap/imap-fetch-args.ts';
import { parseMime } from '../lib-mail/mail-mime.ts';
import { applyPartial, extractSection } from '../lib-mail/mail-section.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import { decodeMailboxName } from '../lib-imap/imap-utf7.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg, mailboxText } from './imapd-names.ts';
import { aclOn, allowedFlags, myRights } from './imapd-acl.ts';
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import { saveForm } from '../lib-imap/imap-append-save.ts';

const URL_RE = /^(?:imap:\/\/[^/]*)?\/([^;]+?)(?:;UIDVALIDITY=(\d+))?\/;UID=(\d+)(?:\/;SECTION=([^/]+))?(?:\/;PARTIAL=(\d+)(?:\.(\d+))?)?$/i;

class BadUrl extends Error {}

async function resolveUrl(s: ImapSession, url: string): Promise<Buffer> {
  const m = URL_RE.exec(url);
  if (!m) throw new BadUrl('Invalid URL');
  let name: string;
  try { name = decodeMailboxName(Buffer.from(decodeURIComponent(m[1]!), 'latin1'), false); } catch { throw new BadUrl('Invalid mailbox in URL'); }
  if (name.toUpperCase() === 'INBOX') name = 'INBOX';
  const box = s.box && s.box.name === name ? s.box : await s.user!.open(name, { readOnly: true }).catch(() => undefined);
  if (!box) throw new BadUrl('Mailbox in URL does not exist');
  try {
    if (m[2] && Number(m[2]) !== box.uidValidity) throw new BadUrl('UIDVALIDITY of URL does not match');
    const uid = Number(m[3]);
    if (!box.byUid(uid)) throw new BadUrl('Message in URL does not exist');
    let data = await box.readContent(uid);
    if (m[4]) {
      let att;
      try { att = parseFetchAtt(`BODY[${decodeURIComponent(m[4])}]`)[0]; } catch { throw new BadUrl('Invalid SECTION in URL'); }
      if (att?.kind !== 'body') throw new BadUrl('Invalid SECTION in URL');
      data = Buffer.from(extractSection(parseMime(data), att.section));
    } else data = Buffer.from(parseMime(data).data);
    if (m[5]) data = Buffer.from(applyPartial(data, Number(m[5]), m[6] ? Number(m[6]) : undefined));
    return data;
  } finally {
    if (box !== s.box) await box.close();
  }
}

async function messageData(s: ImapSession, msg: AppendMessage): Promise<Buffer> {
  if (msg.message) return msg.message.value;
  const parts: Buffer[] = [];
  for (const p of msg.catenate ?? []) parts.push(p.kind === 'text' ? p.data.value : await resolveUrl(s, p.url));
  return Buffer.concat(parts);
}

/** Saves one APPEND (or REPLACE) message: its UID, or the NO reply that refuses it. */
export async function saveAppendMessage(s: ImapSession, name: string, msg: AppendMessage): Promise<{ uid: number; uidValidity: number } | Reply> {
  let data: Buffer;
  try { data = await messageData(s, msg); } catch (e) {
    if (e instanceof BadUrl) {
      const url = msg.catenate?.find((p) => p.kind === 'url');
      return { status: 'NO', code: `BADURL ${url && url.kind === 'url' ? url.url : ''}`, text: e.message };
    }
    throw e;
  }
  if (data.length === 0) throw new ImapParseError('Can\'t save a zero byte message');
  const flags = msg.flags.filter((f) => f.startsWith('\\'));
  const keywords = msg.flags.filter((f) => !f.startsWith('\\'));
  try {
    // saved as Dovecot saves it: literal8 binary parts as base64, LF line ends (imap-append-save.ts)
    return await s.user!.deliver(name, saveForm(data, { literal8: msg.message?.literal8 === true }), {
      flags, keywords, ...(msg.internalDate ? { internalDate: msg.internalDate.date } : {}),
    });
  } catch (e) {
    if (e instanceof MailError && e.code === 'NOTFOUND') return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
    throw e;
  }
}

export async function cmdAppend(s: ImapSession, c: CommandContext): Promise<Reply> {
  const cmd = parseAppendArgs(c.args);
  const name = mailboxArg(s, c.args[0]);
  const u = s.user!;
  if (!(await u.exists(name))) return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  // ACL (imapd-acl.ts): i to append; flags without their right are dropped
  const rights = aclOn(s) ? await myRights(s, name) : undefined;
  if (rights !== undefined && !rights.includes('i')) {
    return rights.includes('l') ? { status: 'NO', code: 'NOPERM', text: 'Permission denied' } : { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  }
  const uids: number[] = [];
  let uidValidity = 0;
  for (const msg of cmd.messages) {
    const r = await saveAppendMessage(s, name, rights === undefined ? msg : { ...msg, flags: allowedFlags(rights, msg.flags) });
    if ('status' in r) return r;
    uids.push(r.uid);
    uidValidity = r.uidValidity;
  }
  return { status: 'OK', code: `APPENDUID ${uidValidity} ${numbersToSeqSet(uids)}`, text: 'Append completed' };
}
