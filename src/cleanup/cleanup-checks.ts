/**
 * cleanup-checks - built-in content inspection: header_checks, mime_header_checks,
 * nested_header_checks and body_checks (header_checks(5), Postfix cleanup/cleanup_message.c
 * cleanup_act()). A table (usually regexp: or pcre:) is asked with the whole logical header
 * (continuation lines joined by newlines) or with one body line; the first matching rule's
 * result is the action:
 *
 *   REJECT [text]    the message is refused: "550 5.7.1 text" (default "Message content rejected")
 *   WARN [text]      logged, nothing else
 *   INFO [text]      logged, nothing else (Postfix ≥ 3.0)
 *   HOLD [text]      the message goes to the hold queue
 *   DISCARD [text]   the message is accepted and thrown away
 *   REPLACE text     the header/line is replaced by text
 *   PREPEND text     text is inserted before the header/line
 *   IGNORE           the header/line is deleted
 *   DUNNO, OK        nothing (OK is DUNNO in header/body checks)
 *   BCC addr         addr is added as a recipient with NOTIFY=NEVER (like always_bcc)
 *   FILTER transport:dest   the message goes to that content filter (the queue file's L record,
 *                    Postfix REC_TYPE_FILT; the last FILTER wins; docs/content-filter.md)
 *   REDIRECT addr    every recipient is delivered to addr instead (the queue file's > record,
 *                    Postfix REC_TYPE_RDR; the last REDIRECT wins)
 *   END, SKIP        (body checks of later versions) treated as DUNNO
 *
 * An unknown action logs Postfix's warning ("unknown command in header_checks map: ...") and is
 * ignored. Log lines have Postfix's shape (cleanup_act_log):
 *   QID: reject: header Subject: xxx from client[1.2.3.4]; from=<a> to=<b> proto=ESMTP helo=<h>: 5.7.1 text
 */
import type { Maps } from '../global/maps.ts';
import { logger } from '../util/msg.ts';
import { dsnSplit } from '../global/dsn-split.ts';

const log = logger('cleanup');

export type CheckAction =
  | { kind: 'none' }
  | { kind: 'reject'; code: number; enh: string; text: string }
  | { kind: 'warn' | 'info' | 'hold' | 'discard'; text: string }
  | { kind: 'replace' | 'prepend'; text: string }
  | { kind: 'ignore' }
  | { kind: 'redirect' | 'filter' | 'bcc'; text: string }
  | { kind: 'end' };

/** Who sent the message, for the log line (Postfix cleanup_act_log). */
export interface CheckLogContext {
  queueId: string;
  clientName?: string;
  clientAddr?: string;
  sender: string;
  recipient?: string;
  proto?: string;
  helo?: string;
}

/** Parse one table result into an action (case-insensitive command, optional text). */
export function parseCheckAction(value: string, mapName: string): CheckAction {
  const v = value.trim();
  const m = /^(\S+)(?:\s+(.*))?$/s.exec(v);
  if (!m) return { kind: 'none' };
  const cmd = m[1]!.toUpperCase();
  const text = (m[2] ?? '').trim();
  switch (cmd) {
    case 'REJECT': {
      const d = dsnSplit('5.7.1', text || 'Message content rejected');
      // A 4.x.x status makes it a temporary rejection (smtpd: 451).
      return { kind: 'reject', code: d.dsn.startsWith('4') ? 451 : 550, enh: d.dsn, text: d.text || 'Message content rejected' };
    }
    case 'WARN': return { kind: 'warn', text };
    case 'INFO': return { kind: 'info', text };
    case 'HOLD': return { kind: 'hold', text };
    case 'DISCARD': return { kind: 'discard', text };
    case 'REPLACE':
      if (!text) { log.warn(`missing REPLACE header text in ${mapName} map -- ignored`); return { kind: 'none' }; }
      return { kind: 'replace', text };
    case 'PREPEND':
      if (!text) { log.warn(`PREPEND action without text in ${mapName} map -- ignored`); return { kind: 'none' }; }
      return { kind: 'prepend', text };
    case 'IGNORE': return { kind: 'ignore' };
    case 'DUNNO': case 'OK': return { kind: 'none' };
    case 'REDIRECT': return { kind: 'redirect', text };
    case 'FILTER': return { kind: 'filter', text };
    case 'BCC': return { kind: 'bcc', text };
    case 'END': case 'SKIP': return { kind: 'end' };
    default:
      log.warn(`unknown command in ${mapName} map: ${v}`);
      return { kind: 'none' };
  }
}

/** Look `text` up in `maps`; a table error is rethrown (the caller defers the message). */
export async function checkContent(maps: Maps, text: string): Promise<CheckAction> {
  const v = await maps.find(text);
  if (v === undefined) return { kind: 'none' };
  return parseCheckAction(v, maps.paramName ?? maps.spec);
}

/** Postfix cleanup_act_log(): `QID: action: class content from client; from=<> to=<> proto= helo=<>: text`. */
export function actLog(ctx: CheckLogContext, action: string, cls: string, content: string, text?: string): string {
  // Postfix printable(): control characters (the newlines of a multi-line header) become '?'.
  // eslint-disable-next-line no-control-regex
  let s = `${ctx.queueId}: ${action}: ${cls} ${content.slice(0, 200).replace(/[\x00-\x1f\x7f]/g, '?')}`;
  s += ctx.clientName !== undefined ? ` from ${ctx.clientName}[${ctx.clientAddr ?? 'unknown'}];` : ' from local;';
  s += ` from=<${ctx.sender}>`;
  if (ctx.recipient !== undefined) s += ` to=<${ctx.recipient}>`;
  if (ctx.proto) s += ` proto=${ctx.proto}`;
  if (ctx.helo) s += ` helo=<${ctx.helo}>`;
  if (text) s += `: ${text}`;
  return s;
}
