/**
 * sieve-vacation - whether a vacation action (RFC 5230) may answer, and the answer itself, as
 * Pigeonhole 0.5's cmd-vacation.c decides and writes it (RFC 3834 §2 rules):
 *
 *   no reply to the null sender, to the recipient itself or an :addresses address, to a sender
 *   answered within the period (duplicate tracking, per user, keyed by :handle and sender), to
 *   a mailing list (List-Id, List-Owner, List-Subscribe, List-Post, List-Unsubscribe,
 *   List-Help, List-Archive), to an auto-submitted message (Auto-Submitted other than "no"),
 *   to Precedence junk/bulk/list, to X-Auto-Response-Suppress All/OOF, to a system address
 *   (MAILER-DAEMON, LISTSERV, majordomo, *-request*, owner-*), nor when none of the user's
 *   addresses is in To/Cc/Bcc/Resent-To/Resent-Cc/Resent-Bcc (sieve_vacation_dont_check_recipient).
 *
 *   The reply: envelope sender <> (the recipient with sieve_vacation_send_from_recipient),
 *   X-Sieve, Message-ID, Date, From (:from, else the address found in the headers), To (the
 *   sender, with the display name of the Sender/Resent-From/From header that has it), Subject
 *   (:subject, else "Auto: " + the original subject, else "Automated reply"), In-Reply-To,
 *   References, Auto-Submitted: auto-replied (vacation), Precedence: bulk,
 *   X-Auto-Response-Suppress: All, MIME-Version, and with :mime the reason as a MIME entity,
 *   else text/plain; charset=utf-8 with 8bit.
 */
import { randomBytes } from 'node:crypto';
import { messageDateCreate } from '../lib-mail/mail-date.ts';
import { parseAddressList } from '../lib-mail/mail-address.ts';
import { encodeRfc2047Header } from './sieve-mime-out.ts';
import type { SieveEnvelope, SieveMessage } from './sieve-message.ts';
import type { VacationAction } from './sieve-result.ts';

export const SIEVE_IMPLEMENTATION = 'Pigeonhole Sieve 0.5.19';

const LIST_HEADERS = ['list-id', 'list-owner', 'list-subscribe', 'list-post', 'list-unsubscribe', 'list-help', 'list-archive'];
const MY_ADDRESS_HEADERS = ['to', 'cc', 'bcc', 'resent-to', 'resent-cc', 'resent-bcc'];
const SENDER_HEADERS = ['sender', 'resent-from', 'from'];

/** A display name as Dovecot writes it: quoted unless it is a single atom. */
export function quotePhrase(name: string): string {
  if (/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/.test(name) || /^=\?.*\?=$/.test(name)) return name;
  return `"${name.replace(/(["\\])/g, '\\$1')}"`;
}

export function isSystemAddress(addr: string): boolean {
  const local = addr.slice(0, Math.max(addr.lastIndexOf('@'), 0)).toLowerCase() || addr.toLowerCase();
  return local === 'mailer-daemon' || local === 'listserv' || local === 'majordomo' || local.includes('-request') || local.startsWith('owner-');
}

const same = (a: string, b: string): boolean => a.toLowerCase() === b.toLowerCase();

function headerAddresses(msg: SieveMessage, name: string): string[] {
  const out: string[] = [];
  for (const raw of msg.headerRaw(name)) {
    for (const a of parseAddressList(raw, false)) {
      if (a.domain !== undefined && a.mailbox !== undefined) out.push(`${a.mailbox.toString('utf8')}@${a.domain.toString('utf8')}`);
    }
  }
  return out;
}

export interface VacationSettings {
  sendFromRecipient: boolean;
  dontCheckRecipient: boolean;
  useOriginalRecipient: boolean;
  postmaster: string;
  hostname: string;
  defaultSubject?: string;
  defaultSubjectTemplate?: string;
  userEmail?: string;
}

export type VacationDecision =
  | { send: false; log: string }
  | { send: true; smtpFrom: string; to: string; content: Buffer; dupKey: string };

/** The duplicate key of a vacation answer to one sender (Pigeonhole's act_vacation_hash). */
export function vacationKey(a: VacationAction, sender: string): string {
  return `vacation\0${a.handle}\0${sender.toLowerCase()}`;
}

export async function decideVacation(a: VacationAction, msg: SieveMessage, env: SieveEnvelope, s: VacationSettings,
  seen: (key: string) => Promise<boolean>, now: Date): Promise<VacationDecision> {
  const sender = env.from;
  const rcpt = env.to;
  if (rcpt === '') return { send: false, log: 'vacation action aborted: envelope recipient is <>' };
  if (sender === '') return { send: false, log: 'discarded vacation reply to <>' };
  if (same(sender, rcpt)) return { send: false, log: `discarded vacation reply to own address <${sender}>` };
  if (a.addresses.some((x) => same(x, sender))) {
    return { send: false, log: `discarded vacation reply to own address <${sender}> (as specified using :addresses argument)` };
  }
  const dupKey = vacationKey(a, sender);
  if (a.seconds > 0 && await seen(dupKey)) return { send: false, log: `discarded duplicate vacation response to <${sender}>` };
  for (const h of LIST_HEADERS) if (msg.header(h).length) return { send: false, log: `discarding vacation response to mailinglist recipient <${sender}>` };
  for (const v of msg.header('auto-submitted')) {
    if (v.toLowerCase() !== 'no') return { send: false, log: `discarding vacation response to auto-submitted message from <${sender}>` };
  }
  for (const v of msg.header('precedence')) {
    if (['junk', 'bulk', 'list'].includes(v.toLowerCase())) return { send: false, log: `discarding vacation response to precedence=${v} message from <${sender}>` };
  }
  for (const v of msg.header('x-auto-response-suppress')) {
    for (const f of v.split(',').map((x) => x.trim())) {
      if (same(f, 'All') || same(f, 'OOF')) return { send: false, log: `discarding vacation response to message from <${sender}> (\`${f}' flag found in x-auto-response-suppress header)` };
    }
  }
  if (isSystemAddress(sender)) return { send: false, log: `not sending vacation response to system address <${sender}>` };
  const orig = s.useOriginalRecipient ? env.origTo : undefined;
  let smtpFrom: string | undefined;
  let replyFrom: string | undefined;
  for (const h of MY_ADDRESS_HEADERS) {
    const addrs = headerAddresses(msg, h);
    if (addrs.length === 0) continue;
    if (addrs.some((x) => same(x, rcpt))) { smtpFrom = rcpt; replyFrom = rcpt; break; }
    if (orig && addrs.some((x) => same(x, orig))) { smtpFrom = orig; replyFrom = orig; break; }
    const mine = a.addresses.find((m) => addrs.some((x) => same(x, m)));
    if (mine) { smtpFrom = orig ?? rcpt; replyFrom = mine; break; }
    if (s.userEmail && addrs.some((x) => same(x, s.userEmail!))) { smtpFrom = s.userEmail; replyFrom = s.userEmail; break; }
  }
  if (smtpFrom === undefined) {
    if (!s.dontCheckRecipient) {
      return {
        send: false,
        log: `discarding vacation response for implicitly delivered message; no known (envelope) recipient address found in message headers (recipient=<${rcpt}>, and${a.addresses.length ? '' : ' no'} additional \`:addresses' are specified)`,
      };
    }
    smtpFrom = orig ?? rcpt;
    replyFrom = smtpFrom;
  }
  // To: the sender, with a display name from the first sender header that has its address.
  let to = `<${sender}>`;
  for (const h of SENDER_HEADERS) {
    const raw = msg.headerRaw(h)[0];
    if (!raw) continue;
    const hit = parseAddressList(raw, false).find((x) => x.mailbox && x.domain && same(`${x.mailbox.toString('utf8')}@${x.domain.toString('utf8')}`, sender));
    if (hit) {
      to = hit.name && hit.name.length ? `${quotePhrase(hit.name.toString('utf8'))} <${sender}>` : `<${sender}>`;
      break;
    }
  }
  const origSubject = msg.header('subject')[0];
  const defaultSubject = (): string => {
    if (origSubject === undefined) return s.defaultSubject ?? 'Automated reply';
    if (s.defaultSubjectTemplate === undefined) return `Auto: ${origSubject}`;
    return s.defaultSubjectTemplate.replace(/%(\$|\{subject\}|%)/g, (_m, k: string) => (k === '%' ? '%' : origSubject));
  };
  const subject = a.subject !== undefined && a.subject !== '' ? a.subject : defaultSubject();
  const msgid = msg.header('message-id')[0];
  const refs = msg.header('references')[0];
  const h: string[] = [
    `X-Sieve: ${SIEVE_IMPLEMENTATION}`,
    `Message-ID: <${randomBytes(12).toString('hex')}.${now.getTime()}@${s.hostname}>`,
    `Date: ${messageDateCreate(now)}`,
    `From: ${a.from !== undefined && a.from !== '' ? a.from : `<${replyFrom || s.postmaster}>`}`,
    `To: ${to}`,
    `Subject: ${encodeRfc2047Header(subject)}`,
  ];
  if (msgid !== undefined) {
    h.push(`In-Reply-To: ${msgid}`);
    h.push(`References: ${refs !== undefined ? `${refs} ${msgid}` : msgid}`);
  } else if (refs !== undefined) h.push(`References: ${refs}`);
  h.push('Auto-Submitted: auto-replied (vacation)', 'Precedence: bulk', 'X-Auto-Response-Suppress: All', 'MIME-Version: 1.0');
  if (!a.mime) h.push('Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit', '');
  const reason = a.reason.replace(/\r?\n/g, '\r\n');
  const content = Buffer.from(h.join('\r\n') + '\r\n' + reason + '\r\n');
  return { send: true, smtpFrom: s.sendFromRecipient ? smtpFrom : '', to: sender, content, dupKey };
}
