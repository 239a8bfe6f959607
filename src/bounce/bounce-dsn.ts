/**
 * bounce-dsn - compose a delivery status notification as Postfix's bounce(8) does
 * (bounce_notify_util.c, bounce_template.c): an RFC 3464 multipart/report with
 *
 *   1. text/plain "Notification": the template text of the notice kind (the wording of
 *      `postconf -b`), then one "<recipient>: reason" paragraph per recipient;
 *   2. message/delivery-status "Delivery report": per-message fields (Reporting-MTA,
 *      X-Postfix-Queue-ID, X-Postfix-Sender, Arrival-Date) and per-recipient fields
 *      (Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code,
 *      Will-Retry-Until);
 *   3. the original: message/rfc822 (RET=FULL, the default for failures, cut at
 *      bounce_size_limit on a line boundary) or text/rfc822-headers (RET=HDRS, and always for
 *      delay and success notices).
 *
 * The message is LF-terminated (queue-file content form); cleanup adds Message-Id and Date.
 * Memory is bounded: at most bounce_size_limit bytes (or the header block, capped) of the
 * original are read.
 */
import type { QueueFile } from '../global/queue-file-reader.ts';
import { QF } from '../global/rec-type.ts';
import { mailDate } from '../global/mail-date.ts';
import type { BounceLogEntry } from '../global/bounce-log.ts';
import type { NoticeKind } from '../global/bounce-client.ts';

export interface DsnOptions {
  kind: NoticeKind;
  myhostname: string;
  /** The DSN's To: (the original sender, or postmaster for a copy). */
  to: string;
  /** A postmaster copy ("Postmaster Copy: ..." subject, headers only). */
  postmasterCopy?: boolean;
  /** $myorigin (From: Mail Delivery System <MAILER-DAEMON@$myorigin>). */
  myorigin?: string;
  /**
   * smtputf8_enable: with it (Postfix 3.7's default) every notice is 8bit and its text part
   * utf-8, as Postfix's bounce_mail_init(); without it us-ascii, and 8bit only for an 8-bit
   * original.
   */
  smtputf8?: boolean;
  /** The notice's own queue id and $mail_name, for the Received: line post_mail.c writes first. */
  noticeId?: string;
  mailName?: string;
  /** bounce_size_limit in bytes. */
  sizeLimit: number;
  /** delay_warning_time / maximal_queue_lifetime in seconds (delay notice wording). */
  delayWarningTime?: number;
  maximalQueueLifetime?: number;
  now?: number;
}

/** Postfix's default templates (bounce_template.c; `postconf -b` prints them). */
const SUBJECT: Record<NoticeKind, [string, string]> = {
  failure: ['Undelivered Mail Returned to Sender', 'Postmaster Copy: Undelivered Mail'],
  delay: ['Delayed Mail (still being retried)', 'Postmaster Warning: Delayed Mail'],
  success: ['Successful Mail Delivery Report', 'Successful Mail Delivery Report'],
  verify: ['Mail Delivery Status Report', 'Mail Delivery Status Report'],
};

function templateText(o: DsnOptions): string {
  // Postfix 3.7's postmaster copies carry no template text, only the recipient paragraphs.
  if (o.postmasterCopy) return '';
  const head = `This is the mail system at host ${o.myhostname}.\n\n`;
  const help = 'For further assistance, please send mail to postmaster.\n\n'
    + 'If you do so, please include this problem report. You can\n'
    + 'delete your own text from the attached returned message.\n\n';
  const sig = '                   The mail system\n';
  switch (o.kind) {
    case 'failure':
      return head + 'I\'m sorry to have to inform you that your message could not\n'
        + 'be delivered to one or more recipients. It\'s attached below.\n\n' + help + sig;
    case 'delay': {
      const hours = Math.floor((o.delayWarningTime ?? 0) / 3600);
      const days = Math.floor((o.maximalQueueLifetime ?? 0) / 86400);
      return head
        + '####################################################################\n'
        + '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n'
        + '####################################################################\n\n'
        + `Your message could not be delivered for more than ${hours} hour(s).\n`
        + `It will be retried until it is ${days} day(s) old.\n\n` + help + sig;
    }
    case 'success':
      return head + 'Your message was successfully delivered to the destination(s)\n'
        + 'listed below. If the message was delivered to mailbox you will\n'
        + 'receive no further notifications. Otherwise you may still receive\n'
        + 'notifications of mail delivery errors from other systems.\n\n' + sig;
    case 'verify':
      return head + 'Enclosed is the mail delivery report that you requested.\n\n' + sig;
  }
}

/** Postfix line_wrap() as bounce(8) uses it: fold at 79 columns, continuation lines indented by 4. */
export function wrapText(text: string, width = 79, indent = 4): string {
  const words = text.split(' ');
  const lines: string[] = [];
  let cur = '';
  for (const w of words) {
    const lim = lines.length === 0 ? width : width - indent;
    if (cur && cur.length + 1 + w.length > lim) { lines.push(cur); cur = w; } else cur = cur ? `${cur} ${w}` : w;
  }
  if (cur || lines.length === 0) lines.push(cur);
  return lines.map((l, i) => (i === 0 ? l : ' '.repeat(indent) + l)).join('\n');
}

/** Text-part paragraph for one recipient: "<a@b> (expanded from <c@d>): reason". */
function recipientParagraph(e: BounceLogEntry): string {
  const exp = e.original && e.original.toLowerCase() !== e.recipient.toLowerCase() ? ` (expanded from <${e.original}>)` : '';
  return wrapText(`<${e.recipient}>${exp}: ${e.reason}`) + '\n';
}

/** Per-recipient delivery-status fields (RFC 3464 §2.3). */
export function recipientFields(e: BounceLogEntry, kind: NoticeKind, willRetryUntil?: number): string {
  let s = `Final-Recipient: rfc822; ${e.recipient}\n`;
  if (e.dsnOrigRcpt) {
    s += `Original-Recipient: ${e.dsnOrigRcpt}\n`;
  } else if (e.original) {
    s += `Original-Recipient: rfc822;${e.original}\n`;
  }
  s += `Action: ${e.action}\n`;
  s += `Status: ${e.status}\n`;
  if (e.mtaName) s += `Remote-MTA: ${e.mtaType || 'dns'}; ${e.mtaName}\n`;
  // Folded as Postfix's bounce_print_wrap() does (79 columns, continuation indented by 4).
  const line = (t: string) => wrapText(t) + '\n';
  if (e.diagText) s += line(`Diagnostic-Code: ${e.diagType || 'smtp'}; ${e.diagText}`);
  else if (e.reason) s += line(`Diagnostic-Code: X-Postfix; ${e.reason}`);
  if (kind === 'delay' && willRetryUntil) s += `Will-Retry-Until: ${mailDate(new Date(willRetryUntil))}\n`;
  return s;
}

/** Read the original's header block, or the full message up to `limit` bytes (on a line end). */
export async function readOriginal(qf: QueueFile, headersOnly: boolean, limit: number): Promise<Buffer> {
  const cap = headersOnly ? Math.max(limit, 102400) : limit;
  const parts: Buffer[] = [];
  let got = 0;
  let more = false;
  const stream = qf.contentStream();
  for await (const c of stream) {
    const b = c as Buffer;
    parts.push(b); got += b.length;
    if (headersOnly && Buffer.concat(parts).indexOf('\n\n') >= 0) break;
    if (got >= cap) { more = true; break; }
  }
  stream.destroy();
  let buf = Buffer.concat(parts);
  if (buf.length > cap) { buf = buf.subarray(0, cap); more = true; }
  if (headersOnly) {
    const end = buf.indexOf('\n\n');
    return end >= 0 ? buf.subarray(0, end + 1) : buf.subarray(0, buf.lastIndexOf('\n') + 1);
  }
  if (more) {
    const nl = buf.lastIndexOf('\n');
    if (nl >= 0) buf = buf.subarray(0, nl + 1);
  }
  return buf;
}

/** The complete DSN message (LF line endings). */
export async function composeDsn(qf: QueueFile, entries: readonly BounceLogEntry[], o: DsnOptions): Promise<Buffer> {
  const now = o.now ?? Date.now();
  const boundary = `${qf.queueId}.${Math.floor(now / 1000)}/${o.myhostname}`;
  const verify = o.kind === 'verify';
  const eightBit = o.smtputf8 === true || (qf.flags & QF.EIGHTBIT) !== 0 || qf.attrs.get('encoding') === '8BITMIME';
  const ret = (qf.attrs.get('dsn_ret') ?? '').toUpperCase();
  // A 2bounce copy (a postmaster copy of a message from the null sender) returns the whole
  // message whatever RET said, and names the sender MAILER-DAEMON@$myhostname (Postfix 3.7).
  const twoBounce = o.postmasterCopy === true && qf.sender === '' && o.kind === 'failure';
  const headersOnly = !twoBounce && (o.postmasterCopy || o.kind !== 'failure' || ret === 'HDRS');
  const subject = SUBJECT[o.kind][o.postmasterCopy ? 1 : 0];
  const sender = qf.sender !== '' ? qf.sender : twoBounce ? `MAILER-DAEMON@${o.myhostname}` : 'MAILER-DAEMON';

  // RFC 6533 types for a message that came with SMTPUTF8 (Postfix bounce_notify_util.c).
  const utf8Msg = (qf.flags & QF.SMTPUTF8) !== 0;
  let head = '';
  // Postfix post_mail.c writes "Received: by $myhostname ($mail_name)" and Date: first.
  if (o.noticeId) head += `Received: by ${o.myhostname} (${o.mailName ?? 'Postfix'})\n\tid ${o.noticeId}; ${mailDate(new Date(now))}\n`;
  head += `Date: ${mailDate(new Date(now))}\n`;
  head += `From: Mail Delivery System <MAILER-DAEMON@${o.myorigin ?? o.myhostname}>\n`;
  head += `Subject: ${subject}\n`;
  head += `To: ${o.to || 'MAILER-DAEMON'}\n`;
  // Postfix 3.7: a reply to the sender is auto-replied, a postmaster copy auto-generated.
  head += `Auto-Submitted: ${o.postmasterCopy ? 'auto-generated' : 'auto-replied'}\n`;
  head += 'MIME-Version: 1.0\n';
  head += 'Content-Type: multipart/report; report-type=delivery-status;\n';
  head += `\tboundary="${boundary}"\n`;
  head += `Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}\n`;
  head += '\n';
  head += 'This is a MIME-encapsulated message.\n\n';

  // Part 1: the human-readable notification.
  let text = `--${boundary}\n`;
  text += 'Content-Description: Notification\n';
  text += o.smtputf8 === true ? 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n' : 'Content-Type: text/plain; charset=us-ascii\n\n';
  text += templateText(o) + '\n';
  for (const e of entries) text += recipientParagraph(e) + '\n';

  // Part 2: machine-readable delivery-status (RFC 3464 §2.2 per-message, §2.3 per-recipient).
  let ds = `--${boundary}\n`;
  ds += 'Content-Description: Delivery report\n';
  ds += utf8Msg ? 'Content-Type: message/global-delivery-status\nContent-Transfer-Encoding: 8bit\n\n' : 'Content-Type: message/delivery-status\n\n';
  ds += `Reporting-MTA: dns; ${o.myhostname}\n`;
  ds += `X-Postfix-Queue-ID: ${qf.queueId}\n`;
  ds += `X-Postfix-Sender: rfc822; ${sender}\n`;
  const envid = qf.attrs.get('dsn_envid');
  if (envid) ds += `Original-Envelope-Id: ${envid}\n`;
  ds += `Arrival-Date: ${mailDate(new Date(qf.arrival))}\n`;
  const retryUntil = qf.arrival + (o.maximalQueueLifetime ?? 0) * 1000;
  for (const e of entries) ds += '\n' + recipientFields(e, o.kind, retryUntil);
  ds += '\n';

  // Part 3: the original message or its headers.
  const orig = await readOriginal(qf, headersOnly, o.sizeLimit);
  let op = `--${boundary}\n`;
  const desc = (o.kind === 'success' || verify ? '' : 'Undelivered ') + (headersOnly ? 'Message Headers' : 'Message');
  op += `Content-Description: ${desc}\n`;
  op += `Content-Type: ${headersOnly ? (utf8Msg ? 'message/global-headers' : 'text/rfc822-headers') : (utf8Msg ? 'message/global' : 'message/rfc822')}\n`;
  if (eightBit) op += 'Content-Transfer-Encoding: 8bit\n';
  op += '\n';
  // Postfix bounce_original(): "Return-Path: <sender>" first (cleanup removed the original's).
  op += `Return-Path: <${twoBounce ? sender : qf.sender}>\n`;
  const tail = `\n--${boundary}--\n`;
  return Buffer.concat([Buffer.from(head + text + ds + op, 'utf8'), orig, Buffer.from(tail)]);
}
