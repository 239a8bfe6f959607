/**
 * cmd-status - STATUS (RFC 3501 §6.3.10) with HIGHESTMODSEQ (RFC 7162 §3.1.9), SIZE
 * (RFC 8438 STATUS=SIZE), DELETED (RFC 9051) and MAILBOXID (RFC 8474 OBJECTID), answered once
 * each in Dovecot's fixed order (not the order asked; checked against 2.3.19 in
 * test/interop/imap-status-vs-dovecot.test.ts), HIGHESTMODSEQ enabling CONDSTORE:
 *   * STATUS Trash (MESSAGES 0 RECENT 0 UIDNEXT 1 UIDVALIDITY 1795807602 UNSEEN 0 HIGHESTMODSEQ 1 SIZE 0)
 * A missing mailbox: `NO Mailbox doesn't exist: X`. Also used by LIST-STATUS (RFC 5819).
 * HIGHESTMODSEQ of the selected mailbox is the session's own view (Mailbox.highestModseq): never
 * below a MODSEQ its STORE answered; another session's changes count after its next sync (NOOP).
 */
import { parseStatusItems, type StatusItem } from '../lib-imap/imap-command-args.ts';
import { ImapParseError } from '../lib-imap/imap-parser.ts';
import { MAILBOX_NAME_TOO_LONG } from '../lib-storage/mailbox-name.ts';
import { MailError } from '../lib-storage/mail-error.ts';
import type { MailboxStatus } from '../lib-storage/mail-storage.ts';
import type { ImapSession } from './imapd-session.ts';
import type { CommandContext, Reply } from './imapd-command.ts';
import { mailboxArg, mailboxOut, mailboxText } from './imapd-names.ts';
import { deletedCount } from './imapd-rev2.ts';
import { aclOn, requireRights } from './imapd-acl.ts';
import { mailboxId } from './imapd-objectid.ts';

/** Dovecot 2.3's order (imap-status.c), then RFC 9051's DELETED and RFC 8474's MAILBOXID. */
const STATUS_ORDER: readonly StatusItem[] = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'DELETED', 'MAILBOXID', 'APPENDLIMIT'];

export async function statusLine(s: ImapSession, name: string, items: readonly StatusItem[]): Promise<Buffer> {
  const st: MailboxStatus = s.box && s.box.name === name ? s.box.status() : await s.user!.status(name);
  const parts: string[] = [];
  // RFC 7162 §3.1: asking for HIGHESTMODSEQ enables CONDSTORE (Dovecot, also from LIST-STATUS);
  // enabled while a mailbox is selected: the selected one's `OK [HIGHESTMODSEQ]` right before
  // the STATUS line, also inside a LIST-STATUS answer (Dovecot 2.3, as ENABLE and FETCH do)
  let enabled = '';
  if (items.includes('HIGHESTMODSEQ') && !s.condstore) {
    s.enabled.add('CONDSTORE');
    if (s.box) enabled = `* OK [HIGHESTMODSEQ ${Math.max(1, s.box.highestModseq)}] Highest\r\n`;
  }
  // Dovecot answers each item once, in its own order, whatever order they were asked in
  const asked = new Set(items);
  for (const it of STATUS_ORDER.filter((x) => asked.has(x))) {
    switch (it) {
      case 'MESSAGES': parts.push(`MESSAGES ${st.messages}`); break;
      case 'RECENT': parts.push(`RECENT ${st.recent}`); break;
      case 'UIDNEXT': parts.push(`UIDNEXT ${st.uidNext}`); break;
      case 'UIDVALIDITY': parts.push(`UIDVALIDITY ${st.uidValidity}`); break;
      case 'UNSEEN': parts.push(`UNSEEN ${st.unseen}`); break;
      case 'HIGHESTMODSEQ': parts.push(`HIGHESTMODSEQ ${Math.max(1, st.highestModseq)}`); break;
      case 'SIZE': parts.push(`SIZE ${st.size}`); break;
      case 'MAILBOXID': { // RFC 8474 §4.2 (imapd-objectid.ts); not offered where the format keeps none
        const id = await mailboxId(s, name);
        if (id) parts.push(`MAILBOXID (${id})`);
        break;
      }
      case 'DELETED': parts.push(`DELETED ${await deletedCount(s, name)}`); break; // RFC 9051 §7.5.1
      default: throw new ImapParseError(`Unknown STATUS item ${it}`);
    }
  }
  return Buffer.concat([Buffer.from(`${enabled}* STATUS `), mailboxOut(s, name), Buffer.from(` (${parts.join(' ')})\r\n`)]);
}

export async function cmdStatus(s: ImapSession, c: CommandContext): Promise<Reply> {
  if (c.args.length !== 2) throw new ImapParseError('Invalid arguments');
  const name = mailboxArg(s, c.args[0]);
  const items = parseStatusItems(c.args[1]);
  try {
    if (aclOn(s) && (await s.user!.exists(name))) await requireRights(s, name, 'r');
    await s.send(await statusLine(s, name, items));
  } catch (e) {
    // a name too long to be stored cannot exist either (Dovecot: "doesn't exist" too)
    if (e instanceof MailError && (e.code === 'NOTFOUND' || (e.code === 'PARAMS' && e.message === MAILBOX_NAME_TOO_LONG))) {
      return { status: 'NO', text: `Mailbox doesn't exist: ${mailboxText(name)}` };
    }
    throw e;
  }
  // Dovecot: STATUS of the selected mailbox works, with a hint (RFC 3501 §6.3.10 "SHOULD NOT")
  if (s.box && s.box.name === name) return { status: 'OK', code: 'CLIENTBUG', text: 'Status on selected mailbox completed' };
  return { status: 'OK', text: 'Status completed' };
}
