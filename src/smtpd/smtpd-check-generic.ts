/**
 * smtpd-check-generic - generic_checks() of Postfix smtpd_check.c: evaluate one restriction list
 * left to right until a restriction answers OK or REJECT, and the restrictions that belong to no
 * address family (permit, reject, defer, defer_if_permit, defer_if_reject, warn_if_reject,
 * reject_unauth_pipelining, sleep), and check_policy_service (smtpd-check-policy.ts).
 *
 * Contract: generic() is CheckContext.generic. Each name is looked up in RESTRICTIONS (this
 * file's and those of smtpd-check-client.ts, -helo.ts, -sender.ts, -recipient.ts), then in the
 * restriction classes (smtpd_restriction_classes, evaluated in place). A bare "type:table" entry
 * becomes the stage's default check_*_access (or a 451 4.3.5 without one). A restriction Postfix
 * has but Postern does not, or an unknown name, logs a warning and answers
 * "451 4.3.5 Server configuration error" (Abort), as Postfix does for unknown names.
 * warn_if_reject applies to the next restriction only; it and the remembered defers follow the
 * recursion depth as in Postfix.
 */
import { SERVER_RESTRICTIONS } from './smtpd-check-server.ts';
import { logger } from '../util/msg.ts';
import {
  Abort, DUNNO, OK, REJECT, deferIf, deferIfPermit, lower, reject, rejected, serverError,
  type CheckContext, type CheckState, type Restriction, type RestrictionCall, type SessionExtras, type Status,
} from './smtpd-check-reject.ts';
import { CLIENT_RESTRICTIONS } from './smtpd-check-client.ts';
import { HELO_RESTRICTIONS } from './smtpd-check-helo.ts';
import { SENDER_RESTRICTIONS } from './smtpd-check-sender.ts';
import { RECIPIENT_RESTRICTIONS } from './smtpd-check-recipient.ts';
import { SPF_RESTRICTIONS } from './smtpd-check-spf.ts';
import { checkPolicyService } from './smtpd-check-policy.ts';
import { VERIFY_RESTRICTIONS } from './smtpd-check-verify.ts';

const log = logger('smtpd');

/** Restrictions Postfix has that Postern does not implement yet: they defer, loudly. */
const UNSUPPORTED = new Set<string>([]);

/** The restrictions of no particular family. */
const GENERIC_RESTRICTIONS: Record<string, Restriction> = {
  permit: () => OK,
  reject: (cx, st, r) => reject(cx, st, 'policy', cx.p.rejectCode, '5.7.1', rejected(r, 'Access denied')),
  defer: (cx, st, r) => reject(cx, st, 'policy', cx.p.deferCode, '4.3.2', rejected(r, 'Try again later')),
  defer_if_permit: (cx, st, r) => deferIfPermit(cx, st, true, 450, '4.7.0', rejected(r, 'defer_if_permit requested')),
  defer_if_reject: (_cx, st, r) => deferIf(st.deferIfReject, 'policy', 450, '4.7.0', rejected(r, 'defer_if_reject requested')),
  reject_unauth_pipelining: (cx, st, r) => {
    const s = st.s;
    const pending = (s as SessionExtras).inputPending?.() ?? false;
    if (pending && (s.protocol !== 'ESMTP' || st.where === 'DATA')) {
      return reject(cx, st, 'protocol', 503, '5.5.0', rejected(r, 'Improper use of SMTP command pipelining'));
    }
    return DUNNO;
  },
  check_policy_service: checkPolicyService,
  sleep: async (cx, st, r): Promise<Status> => {
    const n = r.list[r.i + 1];
    if (n === undefined || !/^\d+$/.test(n)) { log.warn('restriction sleep must be followed by number'); serverError(cx, st); }
    await new Promise((res) => setTimeout(res, Number(n) * 1000));
    return DUNNO;
  },
};

/** Every implemented restriction by name (a Map: names come from main.cf and tables). */
const RESTRICTIONS = new Map<string, Restriction>(Object.entries({
  ...GENERIC_RESTRICTIONS,
  ...CLIENT_RESTRICTIONS,
  ...HELO_RESTRICTIONS,
  ...SENDER_RESTRICTIONS,
  ...RECIPIENT_RESTRICTIONS,
  ...SPF_RESTRICTIONS,
  ...VERIFY_RESTRICTIONS,
  ...SERVER_RESTRICTIONS,
}));

export async function generic(cx: CheckContext, st: CheckState, list: string[], replyName: string, replyClass: string,
                              defAcl: string | undefined): Promise<Status> {
  const saved = st.recursion++;
  let status: Status = DUNNO;
  for (let i = 0; i < list.length; i++) {
    if (st.discard) break;
    let name = list[i]!;
    if (lower(name) === 'warn_if_reject') {
      if (st.warnIfReject === 0) st.warnIfReject = st.recursion;
      continue;
    }
    let table: string | undefined;
    if (name.includes(':')) {
      if (!defAcl) {
        log.warn(`specify one of (check_client_access, check_reverse_client_access, check_helo_access, check_sender_access, check_recipient_access, check_etrn_access) before ${replyClass} restriction "${name}"`);
        serverError(cx, st);
      }
      table = name;
      name = defAcl;
    }
    const restrictionName = name;
    const index = i;
    const mapArg = (): string => {
      if (table !== undefined) return table;
      const next = list[i + 1];
      if (next === undefined || !next.includes(':')) {
        log.warn(`restriction ${restrictionName}: bad argument "${next ?? ''}": need maptype:mapname`);
        serverError(cx, st);
      }
      i++;
      return next;
    };
    const domainArg = (): string => {
      const next = list[i + 1];
      if (next === undefined) {
        log.warn(`restriction ${restrictionName} requires domain name argument`);
        serverError(cx, st);
      }
      i++;
      return next;
    };
    const skip = (): void => { i++; };
    const trace = (st.s as SessionExtras).checkTrace;
    try {
      status = await one(cx, st, { name: lower(name), list, i: index, replyName, replyClass, defAcl, mapArg, domainArg, skip });
    } catch (e) {
      if (e instanceof Abort) {
        st.rejectedBy ??= lower(name);
        trace?.({ where: st.where, replyClass, depth: st.recursion, restriction: list[index]!, args: table !== undefined ? [table] : list.slice(index + 1, i + 1), status: 'ABORT', reply: st.error });
      }
      throw e;
    }
    // The innermost restriction that rejected names the rejection (a class's member, not the class).
    if (status === REJECT && !cx.classes.has(name) && !cx.classes.has(lower(name))) st.rejectedBy ??= lower(name);
    trace?.({ where: st.where, replyClass, depth: st.recursion, restriction: list[index]!, args: table !== undefined ? [table] : list.slice(index + 1, i + 1),
              status: status === DUNNO ? 'DUNNO' : status === OK ? 'OK' : 'REJECT', ...(status === REJECT ? { reply: st.error } : {}) });
    if (st.warnIfReject >= st.recursion) st.warnIfReject = 0;
    if (status !== DUNNO) break;
    if (st.deferIfPermit.active && st.deferIfReject.active) break;
  }
  st.recursion = saved;
  if (st.warnIfReject >= st.recursion) st.warnIfReject = 0;
  return status;
}

/** One restriction: an implemented one, else a restriction class, else a configuration error. */
async function one(cx: CheckContext, st: CheckState, r: RestrictionCall): Promise<Status> {
  const impl = RESTRICTIONS.get(r.name);
  if (impl) return impl(cx, st, r);
  const cls = cx.classes.get(r.name) ?? cx.classes.get(r.list[r.i]!);
  if (cls) return cx.generic(st, cls, r.replyName, r.replyClass, r.defAcl);
  if (UNSUPPORTED.has(r.name)) {
    log.warn(`restriction "${r.name}" is not implemented in Postern yet: remove it from the restriction list`);
    serverError(cx, st);
  }
  log.warn(`unknown smtpd restriction: "${r.list[r.i]}"`);
  serverError(cx, st);
}
