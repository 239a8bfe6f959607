/**
 * sieve-mime-out - the messages Sieve actions send, other than vacation (sieve-vacation.ts):
 *
 *   rejectMessage()   the MDN of reject (RFC 5429 §2.1 and RFC 3798), as Dovecot's LDA/LMTP sends
 *                     it (mail_send_rejection): From "Postmaster <postmaster_address>", Subject "Rejected: SUBJECT",
 *                     Auto-Submitted: auto-replied (rejected), multipart/report with the
 *                     reason, a message/disposition-notification part and the original header.
 *   notifyMessage()   enotify's mailto method (RFC 5436): Auto-Submitted: auto-notified,
 *                     From :from or the postmaster, Subject :message or "[SIEVE] New mail".
 *   redirectMessage() the message as redirected (Pigeonhole's cmd-redirect.c): the original
 *                     without Return-Path, with X-Sieve and X-Sieve-Redirected-From (the final
 *                     recipient: the loop detection header) on top.
 *   encodeRfc2047Header()  an 8-bit header value as RFC 2047 encoded words (UTF-8, Q).
 */
import { randomBytes } from 'node:crypto';
import { messageDateCreate } from '../lib-mail/mail-date.ts';
import type { SieveMessage } from './sieve-message.ts';
import type { NotifyAction } from './sieve-result.ts';

export function encodeRfc2047Header(v: string): string {
  // eslint-disable-next-line no-control-regex
  const is8 = (w: string): boolean => /[^\x00-\x7f]/.test(w);
  if (!is8(v)) return v;
  // Dovecot's message_header_encode(): the words from the first to the last one with 8-bit
  // characters become encoded words; the rest stays as written.
  const parts = v.split(/(\s+)/);
  const first = parts.findIndex(is8);
  let last = parts.length - 1;
  while (!is8(parts[last]!)) last--;
  const span = parts.slice(first, last + 1).join('');
  const words: string[] = [];
  let cur = '';
  for (const ch of span) {
    const enc = [...Buffer.from(ch)].map((b) => (b >= 0x21 && b <= 0x7e && b !== 0x3d && b !== 0x3f && b !== 0x5f) ? String.fromCharCode(b) : b === 0x20 ? '_' : '=' + b.toString(16).toUpperCase().padStart(2, '0')).join('');
    if (cur.length + enc.length > 60) { words.push(cur); cur = ''; }
    cur += enc;
  }
  if (cur) words.push(cur);
  return parts.slice(0, first).join('') + words.map((w) => `=?utf-8?q?${w}?=`).join(' ') + parts.slice(last + 1).join('');
}

function msgId(hostname: string): string {
  return `<${randomBytes(12).toString('hex')}.${Date.now()}@${hostname}>`;
}

export function rejectMessage(msg: SieveMessage, o: { sender: string; recipient: string; origRecipient?: string; reason: string; postmaster: string; hostname: string; now: Date }): Buffer {
  const boundary = `${process.pid}/${Date.now()}/${o.hostname}`;
  const subject = msg.header('subject')[0] ?? '';
  const id = msg.header('message-id')[0];
  const head = msg.content().subarray(0, headerEnd(msg.content())).toString('latin1')
    .split(/\r?\n(?![ \t])/).filter((l) => l !== '' && !/^content-type:/i.test(l)).join('\r\n');
  const lines = [
    `Message-ID: ${msgId(o.hostname)}`,
    `Date: ${messageDateCreate(o.now)}`,
    `From: Postmaster <${o.postmaster}>`,
    `To: <${o.sender}>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=disposition-notification;\r\n\tboundary="${boundary}"`,
    `Subject: ${encodeRfc2047Header(`Rejected: ${subject}`)}`,
    'Auto-Submitted: auto-replied (rejected)',
    'Precedence: bulk',
    '',
    'This is a MIME-encapsulated message',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Disposition: inline',
    'Content-Transfer-Encoding: 8bit',
    '',
    `Your message to <${o.recipient}> was automatically rejected:`,
    o.reason.replace(/\r?\n/g, '\r\n'),
    '',
    `--${boundary}`,
    'Content-Type: message/disposition-notification',
    '',
    `Reporting-UA: ${o.hostname}; Dovecot Mail Delivery Agent`,
    ...(o.origRecipient ? [`Original-Recipient: rfc822; ${o.origRecipient}`] : []),
    `Final-Recipient: rfc822; ${o.recipient}`,
    ...(id ? [`Original-Message-ID: ${id}`] : []),
    'Disposition: automatic-action/MDN-sent-automatically; deleted',
    '',
    `--${boundary}`,
    'Content-Type: message/rfc822-headers',
    '',
    head,
    '',
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

function headerEnd(b: Buffer): number {
  const a = b.indexOf('\r\n\r\n');
  const c = b.indexOf('\n\n');
  if (a < 0 && c < 0) return b.length;
  if (a < 0) return c + 1;
  if (c < 0) return a + 2;
  return Math.min(a + 2, c + 1);
}

/** mailto: URI → recipients and header fields (RFC 6068). */
export function parseMailto(uri: string): { to: string[]; headers: [string, string][]; body?: string } {
  const rest = uri.replace(/^mailto:/i, '');
  const q = rest.indexOf('?');
  const to = decodeURIComponent(q < 0 ? rest : rest.slice(0, q)).split(',').map((s) => s.trim()).filter((s) => s !== '');
  const headers: [string, string][] = [];
  let body: string | undefined;
  if (q >= 0) {
    for (const kv of rest.slice(q + 1).split('&')) {
      const eq = kv.indexOf('=');
      if (eq < 0) continue;
      const k = decodeURIComponent(kv.slice(0, eq));
      const v = decodeURIComponent(kv.slice(eq + 1));
      if (k.toLowerCase() === 'to') to.push(...v.split(',').map((s) => s.trim()).filter((s) => s !== ''));
      else if (k.toLowerCase() === 'body') body = v;
      else if (['subject', 'cc', 'keywords', 'comments', 'in-reply-to', 'references'].includes(k.toLowerCase())) headers.push([k, v]);
    }
  }
  return { to, headers, ...(body !== undefined ? { body } : {}) };
}

export function notifyMessage(msg: SieveMessage, a: NotifyAction, o: { user: string; postmaster: string; hostname: string; now: Date; nullSender: boolean }): { sender: string; to: string[]; content: Buffer } {
  const m = parseMailto(a.method);
  const origSubject = msg.header('subject')[0];
  const subject = a.message ?? m.headers.find(([k]) => k.toLowerCase() === 'subject')?.[1] ?? (origSubject !== undefined ? `Notification: ${origSubject}` : 'Notification: (no subject)');
  const pri = a.importance === '1' ? ['X-Priority: 1 (Highest)', 'Importance: High'] : a.importance === '3' ? ['X-Priority: 5 (Lowest)', 'Importance: Low'] : ['X-Priority: 3 (Normal)', 'Importance: Normal'];
  const body = m.body;
  // eslint-disable-next-line no-control-regex
  const eight = body !== undefined && /[^\x00-\x7f]/.test(body);
  const lines = [
    `X-Sieve: Pigeonhole Sieve 0.5.19`,
    `Message-ID: ${msgId(o.hostname)}`,
    `Date: ${messageDateCreate(o.now)}`,
    `Subject: ${encodeRfc2047Header(subject)}`,
    `From: ${a.from ?? `Postmaster <${o.postmaster}>`}`,
    `To: ${m.to.join(', ')}`,
    `Auto-Submitted: auto-notified; owner-email="${o.user}"`,
    'Precedence: bulk',
    ...pri,
    ...m.headers.filter(([k]) => k.toLowerCase() !== 'subject').map(([k, v]) => `${k}: ${v}`),
    'MIME-Version: 1.0',
    ...(body === undefined ? ['Content-Type: text/plain; charset=US-ASCII', 'Content-Transfer-Encoding: 7bit']
      : eight ? ['Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit']
        : ['Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit']),
    '',
    (body ?? 'Notification of new message.').replace(/\r?\n/g, '\r\n'),
    '',
  ];
  // The envelope sender: :from's address, else the postmaster; <> when the message had <>.
  const fromAddr = a.from !== undefined ? (/<([^>]*)>/.exec(a.from)?.[1] ?? a.from.trim()) : o.postmaster;
  return { sender: o.nullSender ? '' : fromAddr, to: m.to, content: Buffer.from(lines.join('\r\n'), 'utf8') };
}

export function redirectMessage(content: Buffer, finalRecipient: string, newMsgId?: string): Buffer {
  const eol = content.indexOf('\r\n') >= 0 && content.indexOf('\r\n') < content.indexOf('\n') + 1 ? '\r\n' : '\n';
  // Return-Path is hidden (Pigeonhole's header filter); X-Sieve and X-Sieve-Redirected-From on top.
  const text = content.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end + 1);
  const kept = head.replace(/^Return-Path:.*(?:\r?\n[ \t].*)*\r?\n/gim, '');
  const top = `X-Sieve: Pigeonhole Sieve 0.5.19${eol}X-Sieve-Redirected-From: ${finalRecipient}${eol}${newMsgId ? `Message-ID: ${newMsgId}${eol}` : ''}`;
  return Buffer.concat([Buffer.from(top), Buffer.from(kept, 'latin1'), content.subarray(Buffer.byteLength(head, 'latin1'))]);
}
