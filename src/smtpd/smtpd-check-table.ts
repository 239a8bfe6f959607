/**
 * smtpd-check-table - the check_*_access restrictions' engine side (Postfix smtpd_check.c
 * check_access(), check_mail_access(), check_table_result()): look the keys up in an access(5)
 * table and act on the value found. The key order and the parsing of a value are
 * smtpd-check-access.ts's.
 *
 * Contract: accessCheck() answers DUNNO when no key matches; a table that fails answers as
 * "451 4.3.5 Server configuration error" would. tableResult() maps a value to a Status: OK,
 * DUNNO, a reject (with access_map_reject_code / access_map_defer_code and the table's text),
 * remembered defer_if_permit / defer_if_reject, WARN (logged), HOLD and DISCARD (set st.action
 * for the session; skipped, with a warning, before MAIL with smtpd_delay_reject = no), or a list
 * of restrictions evaluated in place (CheckContext.generic, recursion-limited), PREPEND (a
 * header for the message, st.prepend → SmtpdVerdict.prepend, written before Received:), FILTER
 * transport:destination (st.filter → SmtpdVerdict.filter → the queue file's content filter).
 * REDIRECT user@domain (st.redirect → SmtpdVerdict.redirect → the queue file's redirect address).
 */
import { DictError } from '../util/dict.ts';
import { logger } from '../util/msg.ts';
import { dsnFix, findFirst, mailKeys, parseAccessValue, type AccessKey } from './smtpd-check-access.ts';
import {
  DUNNO, OK, RECIPIENT, SENDER, deferIf, deferIfPermit, logWhatsup, reject, resolveAddr, serverError,
  type CheckContext, type CheckState, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

export async function accessCheck(cx: CheckContext, st: CheckState, spec: string, keys: AccessKey[], replyName: string,
                                  replyClass: string, defAcl: string | undefined): Promise<Status> {
  const maps = await cx.table(spec);
  let value: string | undefined;
  try {
    value = (await findFirst(maps, keys))?.value;
  } catch (e) {
    if (!(e instanceof DictError)) throw e;
    log.warn(e.message);
    value = '451 4.3.5 Server configuration error';
  }
  if (value === undefined) return DUNNO;
  return tableResult(cx, st, spec, value, replyName, replyClass, defAcl);
}

/** check_mail_access(): keys from the resolved address; OK is void for routed recipients. */
export async function mailAccess(cx: CheckContext, st: CheckState, spec: string, addr: string, replyClass: string,
                                 defAcl: string | undefined): Promise<Status> {
  const r = await resolveAddr(cx, st, addr, replyClass === SENDER ? st.recipient ?? '' : st.sender ?? '');
  if (!r.recipient.includes('@')) { log.warn(`check_mail_access: no @domain in address: ${r.recipient}`); return DUNNO; }
  const status = await accessCheck(cx, st, spec, mailKeys(r.recipient, cx.p.delim, cx.p.accessParent), addr, replyClass, defAcl);
  const suspicious = !cx.p.untrustedRouting && r.flags.routed && replyClass === RECIPIENT;
  return status === OK && suspicious ? DUNNO : status;
}

/** check_table_result(): act on one access(5) value (also a policy server's action=). */
export async function tableResult(cx: CheckContext, st: CheckState, table: string, value: string, replyName: string,
                           replyClass: string, defAcl: string | undefined): Promise<Status> {
  const a = parseAccessValue(value);
  const rejected = (text: string) => `<${replyName}>: ${replyClass} rejected: ${text}`;
  const inTx = () => {
    if (st.sender === undefined) {
      log.warn(`access table ${table}: with smtpd_delay_reject=no, action ${a.kind.toUpperCase()} is always skipped in client or helo restrictions`);
      return false;
    }
    return true;
  };
  switch (a.kind) {
    case 'dunno': return DUNNO;
    case 'ok': return OK;
    case 'reject': return reject(cx, st, 'policy', a.code ?? cx.p.accessRejectCode, dsnFix(a.dsn, replyClass), rejected(a.text));
    case 'defer': return reject(cx, st, 'policy', cx.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
    case 'defer_if_permit': return deferIfPermit(cx, st, true, cx.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
    case 'defer_if_reject': return deferIf(st.deferIfReject, 'policy', cx.p.accessDeferCode, dsnFix(a.dsn, replyClass), rejected(a.text));
    case 'warn': logWhatsup(st, 'warn', a.text); return DUNNO;
    case 'hold':
      if (!inTx()) return DUNNO;
      logWhatsup(st, 'hold', `<${replyName}>: ${replyClass} ${a.text || 'triggers HOLD action'}`);
      st.action = 'hold';
      st.actionReason = a.text || 'triggers HOLD action';
      return DUNNO;
    case 'discard':
      if (!inTx()) return DUNNO;
      logWhatsup(st, 'discard', `<${replyName}>: ${replyClass} ${a.text || 'triggers DISCARD action'}`);
      st.discard = true;
      st.action = 'discard';
      st.actionReason = a.text || 'triggers DISCARD action';
      return OK;
    case 'prepend':
      // check_table_result(): only in a transaction, before END-OF-MESSAGE, and a header.
      if (!inTx()) return DUNNO;
      if (st.where === 'END-OF-MESSAGE') {
        log.warn(`access table ${table}: action PREPEND must be used before smtpd_end_of_data_restrictions`);
        return DUNNO;
      }
      if (!/^[!-9;-~]+:/.test(a.text)) {
        log.warn(`access table ${table} entry "${value}" requires header: text`);
        return DUNNO;
      }
      (st.prepend ??= []).push(a.text);
      return DUNNO;
    case 'filter':
      // check_table_result(): FILTER transport:destination, for cleanup (the last one wins).
      if (!inTx()) return DUNNO;
      if (!a.text) { log.warn(`access table ${table} entry "${value}" has FILTER entry without value`); return DUNNO; }
      if (!a.text.includes(':')) { log.warn(`access table ${table} entry "${value}" requires transport:destination`); return DUNNO; }
      logWhatsup(st, 'filter', `<${replyName}>: ${replyClass} triggers FILTER ${a.text}`);
      st.filter = a.text;
      return DUNNO;
    case 'redirect':
      // check_table_result(): REDIRECT user@domain, for cleanup (the last one wins).
      if (!inTx()) return DUNNO;
      if (!a.text) { log.warn(`access table ${table} entry "${value}" has REDIRECT entry without value`); return DUNNO; }
      if (!a.text.includes('@')) { log.warn(`access table ${table} entry "${value}" requires user@domain target`); return DUNNO; }
      logWhatsup(st, 'redirect', `<${replyName}>: ${replyClass} triggers REDIRECT ${a.text}`);
      st.redirect = a.text;
      return DUNNO;
    case 'table-in-value':
      log.warn(`access table ${table} has entry with lookup table: ${value}`);
      log.warn('do not specify lookup tables inside SMTPD access maps');
      log.warn('define a restriction class and specify its name instead.');
      serverError(cx, st);
      break;
    case 'empty':
      log.warn(`access table ${table} entry ${value} has empty value`);
      return OK;
    case 'restrictions':
      if (st.recursion > 100) {
        log.warn(`access table ${table} entry ${value} causes unreasonable recursion`);
        serverError(cx, st);
      }
      return cx.generic(st, a.names, replyName, replyClass, defAcl);
  }
  return DUNNO;
}
