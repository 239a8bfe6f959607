/**
 * smtpd-check-sender - the sender restrictions of smtpd (Postfix smtpd_check.c, "Sender
 * address"): check_sender_access (the null sender looked up as smtpd_null_access_lookup_key),
 * reject_unknown_sender_domain (old name reject_unknown_address), reject_non_fqdn_sender,
 * reject_unlisted_sender, and the SASL login checks against smtpd_sender_login_maps:
 * reject_authenticated_sender_login_mismatch, reject_known_sender_login_mismatch,
 * reject_unauthenticated_sender_login_mismatch (reject_sender_login_mismatch is the built-in
 * class of the first and the last, defined by SmtpdCheck.open()).
 *
 * Contract: SENDER_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it). Before MAIL FROM, or for the null sender where Postfix skips them, they
 * answer DUNNO. Login mismatches answer "553 5.7.1 <addr>: Sender address rejected: not owned
 * by user U" / "...: not logged in"; a smtpd_sender_login_maps failure abandons the stage
 * (451 4.3.0 or 4.3.5).
 */
import { mailAddrFind } from '../global/mail-addr-find.ts';
import { logger } from '../util/msg.ts';
import { nonFqdnAddress } from './smtpd-check-addr.ts';
import { accessCheck, mailAccess } from './smtpd-check-table.ts';
import { senderRcptMaps, unknownAddress } from './smtpd-check-dest.ts';
import {
  DUNNO, SENDER, lower, reject, resolveAddr, tableError,
  type CheckContext, type CheckState, type Restriction, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

const unknownSender: Restriction = (cx, st) => (st.sender ? unknownAddress(cx, st, st.sender, SENDER) : DUNNO);

const loginMismatch: Restriction = (cx, st, r) => {
  if (!cx.p.sasl) { log.warn(`restriction \`${r.name}' ignored: no SASL support`); return DUNNO; }
  if (!st.sender) return DUNNO;
  if (r.name === 'reject_unauthenticated_sender_login_mismatch' || (r.name === 'reject_known_sender_login_mismatch' && !st.s.saslUsername)) {
    return unauthLoginMismatch(cx, st, st.sender);
  }
  return authLoginMismatch(cx, st, st.sender, r.name === 'reject_known_sender_login_mismatch');
};

export const SENDER_RESTRICTIONS: Record<string, Restriction> = {
  check_sender_access: (cx, st, r) => {
    const t = r.mapArg();
    if (st.sender === undefined) return DUNNO;
    if (st.sender === '') return accessCheck(cx, st, t, [{ key: cx.p.nullKey, partial: false }], '', SENDER, r.defAcl);
    return mailAccess(cx, st, t, st.sender, SENDER, r.defAcl);
  },
  reject_unknown_sender_domain: unknownSender,
  reject_unknown_address: unknownSender,
  reject_non_fqdn_sender: (cx, st) =>
    (st.sender && nonFqdnAddress(st.sender) ? reject(cx, st, 'policy', cx.p.nonFqdnCode, '4.5.2', `<${st.sender}>: ${SENDER} rejected: need fully-qualified address`) : DUNNO),
  reject_authenticated_sender_login_mismatch: loginMismatch,
  reject_known_sender_login_mismatch: loginMismatch,
  reject_unauthenticated_sender_login_mismatch: loginMismatch,
  reject_unlisted_sender: (cx, st) => (st.sender ? senderRcptMaps(cx, st, st.sender) : DUNNO),
};

/** The owners of a sender address in smtpd_sender_login_maps (comma/space list). */
async function loginOwners(cx: CheckContext, st: CheckState, sender: string): Promise<string[] | undefined> {
  const r = await resolveAddr(cx, st, sender, st.recipient ?? '');
  let hit;
  try {
    hit = await mailAddrFind(cx.senderLoginMaps!, r.recipient, {
      recipientDelimiter: cx.p.delim,
      isLocalDomain: () => r.class === 'local',
    });
  } catch (e) { tableError(cx, st, e, sender); }
  return hit ? hit.value.split(/[\s,]+/).filter((x) => x !== '') : undefined;
}

async function authLoginMismatch(cx: CheckContext, st: CheckState, sender: string, allowUnknown: boolean): Promise<Status> {
  const user = st.s.saslUsername;
  if (!cx.senderLoginMaps || !user) return DUNNO;
  const owners = await loginOwners(cx, st, sender);
  if (!owners && allowUnknown) return DUNNO;
  if (owners?.some((o) => lower(o) === lower(user))) return DUNNO;
  return reject(cx, st, 'policy', 553, '5.7.1', `<${sender}>: Sender address rejected: not owned by user ${user}`);
}

async function unauthLoginMismatch(cx: CheckContext, st: CheckState, sender: string): Promise<Status> {
  if (!cx.senderLoginMaps || st.s.saslUsername) return DUNNO;
  if (await loginOwners(cx, st, sender)) {
    return reject(cx, st, 'policy', 553, '5.7.1', `<${sender}>: Sender address rejected: not logged in`);
  }
  return DUNNO;
}
