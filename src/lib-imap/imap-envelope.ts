/**
 * imap-envelope — the IMAP ENVELOPE of a message header (RFC 3501 §7.4.2, RFC 9051 §7.5.2),
 * written byte-for-byte like Dovecot 2.3's lib-imap/imap-envelope.c:
 * - the last occurrence of each header is used;
 * - Date, In-Reply-To and Message-ID are the raw unfolded value as an IMAP string;
 * - Subject and address display names go through the "for humans" cleanup (tabs → space,
 *   runs of white space collapsed) and are NOT RFC 2047-decoded (Dovecot keeps encoded words);
 * - Sender and Reply-To default to From; an empty address header is NIL;
 * - 8-bit bytes force a literal.
 */
import { headerLast, type HeaderField } from '../lib-mail/mail-header.ts';
import { parseAddressList, type MailAddress } from '../lib-mail/mail-address.ts';
import { imapNstring, imapString, imapStringForHumans } from './imap-compose.ts';

function writeAddresses(list: MailAddress[] | undefined): Buffer {
  if (!list || list.length === 0) return Buffer.from('NIL');
  const parts: Buffer[] = [Buffer.from('(')];
  for (const a of list) {
    parts.push(Buffer.from('('),
      a.name === undefined ? Buffer.from('NIL') : imapStringForHumans(a.name), Buffer.from(' '),
      imapNstring(a.route === undefined ? undefined : Buffer.from(a.route, 'latin1')), Buffer.from(' '),
      imapNstring(a.mailbox), Buffer.from(' '),
      imapNstring(a.domain), Buffer.from(')'));
  }
  parts.push(Buffer.from(')'));
  return Buffer.concat(parts);
}

/** The ENVELOPE list contents, without the outer parentheses' name: `(date subject ...)`. */
export function imapEnvelope(headers: readonly HeaderField[]): Buffer {
  const str = (name: string): Buffer => {
    const f = headerLast(headers, name);
    return f ? imapString(f.value) : Buffer.from('NIL');
  };
  const addr = (name: string): MailAddress[] | undefined => {
    const f = headerLast(headers, name);
    return f ? parseAddressList(f.value, true) : undefined;
  };
  const subj = headerLast(headers, 'Subject');
  const from = addr('From');
  const sender = addr('Sender');
  const replyTo = addr('Reply-To');
  const nvl = (a: MailAddress[] | undefined): MailAddress[] | undefined => (a && a.length > 0 ? a : from);
  return Buffer.concat([
    Buffer.from('('), str('Date'), Buffer.from(' '),
    subj ? imapStringForHumans(subj.value) : Buffer.from('NIL'), Buffer.from(' '),
    writeAddresses(from), Buffer.from(' '),
    writeAddresses(nvl(sender)), Buffer.from(' '),
    writeAddresses(nvl(replyTo)), Buffer.from(' '),
    writeAddresses(addr('To')), Buffer.from(' '),
    writeAddresses(addr('Cc')), Buffer.from(' '),
    writeAddresses(addr('Bcc')), Buffer.from(' '),
    str('In-Reply-To'), Buffer.from(' '),
    str('Message-ID'), Buffer.from(')'),
  ]);
}
