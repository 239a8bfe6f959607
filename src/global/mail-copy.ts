/**
 * mail-copy - the byte stream a command or file receives (Postfix global/mail_copy.c), driven
 * by pipe(8)'s flags= letters (local(8) uses the same with fixed flags):
 *   F  `From sender  Thu Nov 27 19:11:18 2026` envelope line first (sender "" → MAILER-DAEMON)
 *   R  `Return-Path: <sender>`
 *   O  `X-Original-To: original recipient`
 *   D  `Delivered-To: recipient` (lower-cased, as mail_copy.c; written after X-Original-To)
 *   .  dot-stuffing: a line starting with "." gets one more (for SMTP-like readers)
 *   >  `>From ` quoting of lines starting with "From "
 *   B  a blank line after the message (mbox separator)
 * Every line, including the added headers, ends with `eol` (pipe(8) eol=, default "\n").
 * The queue file stores LF lines; a missing final newline is supplied.
 */
import { asctime } from '../util/asctime.ts';

export interface CopyOptions {
  sender: string;
  recipient?: string;
  originalRecipient?: string;
  flags: string;
  eol?: string;
  date?: Date;
}

export function mailCopy(content: Buffer, o: CopyOptions): Buffer {
  const eol = o.eol ?? '\n';
  const f = o.flags;
  const head: string[] = [];
  if (f.includes('F')) head.push(`From ${o.sender === '' ? 'MAILER-DAEMON' : o.sender.replace(/\s/g, '')}  ${asctime(o.date ?? new Date(), true)}`);
  if (f.includes('R')) head.push(`Return-Path: <${o.sender}>`);
  if (f.includes('O') && o.originalRecipient !== undefined) head.push(`X-Original-To: ${o.originalRecipient}`);
  if (f.includes('D') && o.recipient !== undefined) head.push(`Delivered-To: ${o.recipient.toLowerCase()}`);
  let text = content.toString('latin1');
  if (text.endsWith('\n')) text = text.slice(0, -1);
  let lines = text === '' && content.length === 0 ? [] : text.split('\n');
  if (f.includes('.')) lines = lines.map((l) => (l.startsWith('.') ? '.' + l : l));
  if (f.includes('>')) lines = lines.map((l) => (l.startsWith('From ') ? '>' + l : l));
  const all = [...head.map((h) => Buffer.from(h, 'utf8').toString('latin1')), ...lines];
  if (f.includes('B')) all.push('');
  return Buffer.from(all.map((l) => l + eol).join(''), 'latin1');
}
