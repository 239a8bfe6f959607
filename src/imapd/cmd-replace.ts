/**
 * cmd-replace - REPLACE and UID REPLACE (RFC 8508): save a new message into a mailbox (the
 * selected one or another) and expunge the one it replaces from the selected mailbox, the way
 * clients auto-save a draft:
 *
 *   C: a REPLACE 4 Drafts (\Seen \Draft) {312}      (or UID REPLACE 1004 ..., literal8, CATENATE)
 *   S: * OK [APPENDUID 1 2000] Replacement Message ID
 *   S: * 5 EXISTS                                     (when Drafts is the selected mailbox)
 *   S: * 4 EXPUNGE                                    (VANISHED with QRESYNC)
 *   S: a OK Replace completed
 *
 * The new message is saved exactly as APPEND saves it (cmd-append.ts: LF line ends, literal8
 * binary parts as base64) and under APPEND's literal limit (mail_max_size); it is saved first,
 * so when that fails (`NO [TRYCREATE]`, `[OVERQUOTA]`, `[BADURL]`) the old message stays. A
 * sequence number outside the mailbox is `BAD Invalid messageset`; a UID that is not (or no
 * longer) in the mailbox is `NO Message to be replaced no longer exists` and nothing is saved;
 * a read-only (EXAMINEd) mailbox is `NO [READ-ONLY] Mailbox is read-only` — nothing is saved
 * either. One message only (no MULTIAPPEND). Dovecot 2.3 has no REPLACE: not compared with it.
 */
import { parseAppendArgs } from '../lib-imap/imap-command-args.ts';
import { argAtom, ImapParseError } from '../lib-imap/imap-parser.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg, mailboxText } from './imapd-names.ts';
import { indexOfUid, syncToClient } from './imapd-sync.ts';
import { saveAppendMessage } from './cmd-append.ts';

export async function cmdReplace(s: ImapSession, c: CommandContext): Promise<Reply> {
  const box = s.box!;
  const numText = argAtom(c.args[0]);
  if (numText === undefined || !/^[1-9]\d{0,9}$/.test(numText) || Number(numText) > 0xffffffff) {
    throw new ImapParseError(c.uid ? 'Invalid UID' : 'Invalid messageset');
  }
  const n = Number(numText);
  const cmd = parseAppendArgs(c.args.slice(1));
  if (cmd.messages.length !== 1) throw new ImapParseError('REPLACE takes exactly one message');
  const name = mailboxArg(s, c.args[1]);
  const view = box.messages();
  let index: number;
  if (c.uid) {
    index = indexOfUid(view, n);
    if (index < 0) return { status: 'NO', text: 'Message to be replaced no longer exists' };
  } else {
    if (n > view.length) throw new ImapParseError('Invalid messageset');
    index = n - 1;
  }
  if (box.readOnly) return { status: 'NO', code: 'READ-ONLY', text: 'Mailbox is read-only' };
  const old = view[index]!.uid;
  if (!(await s.user!.exists(name))) return { status: 'NO', code: 'TRYCREATE', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
  const r = await saveAppendMessage(s, name, cmd.messages[0]!);
  if ('status' in r) return r;
  await s.send(`* OK [APPENDUID ${r.uidValidity} ${r.uid}] Replacement Message ID\r\n`);
  // the old one goes even if another session changed its flags meanwhile (RFC 8508 §3.3);
  await box.expunge([old]);
  await syncToClient(s, true); // RFC 8508 §3.3: EXISTS and EXPUNGE belong to the REPLACE response
  return { status: 'OK', text: 'Replace completed', noSync: true };
}
