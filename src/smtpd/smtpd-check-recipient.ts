/**
 * smtpd-check-recipient - the recipient restrictions of smtpd (Postfix smtpd_check.c,
 * "Recipient address"): check_recipient_access, permit_auth_destination,
 * reject_unauth_destination / defer_unauth_destination ("Relay access denied",
 * relay_domains_reject_code), reject_unknown_recipient_domain, reject_non_fqdn_recipient,
 * reject_unlisted_recipient (old name check_recipient_maps), reject_multi_recipient_bounce.
 *
 * Contract: RECIPIENT_RESTRICTIONS maps each name to its implementation
 * (smtpd-check-generic.ts dispatches to it). Outside RCPT (no recipient known) they answer
 * DUNNO, except reject_multi_recipient_bounce, which also works at DATA and END-OF-DATA (more
 * than one recipient with the null sender). check_recipient_access never lets an OK through for
 * a routed recipient (user%host@ours) unless allow_untrusted_routing.
 */
import { logger } from '../util/msg.ts';
import { nonFqdnAddress } from './smtpd-check-addr.ts';
import { mailAccess } from './smtpd-check-table.ts';
import { permitAuthDestination, recipientRcptMaps, unknownAddress } from './smtpd-check-dest.ts';
import { DUNNO, OK, RECIPIENT, reject, rejected, type Restriction } from './smtpd-check-reject.ts';

const log = logger('smtpd');

const unauthDestination: Restriction = async (cx, st, r) => {
  if (st.recipient === undefined) return DUNNO;
  if ((await permitAuthDestination(cx, st, st.recipient)) === OK) return DUNNO;
  const defer = r.name === 'defer_unauth_destination';
  return reject(cx, st, 'policy', defer ? cx.p.relayCode - 100 : cx.p.relayCode, defer ? '4.7.1' : '5.7.1', `<${st.recipient}>: Relay access denied`);
};

/**
 * check_relay_domains (obsolete, Postfix warns): OK for a client whose name is in relay_domains
 * (matched as trivial-rewrite matches relay_domains, parent domains included) or for a
 * destination reject_unauth_destination would accept; else "Relay access denied".
 */
const relayDomains: Restriction = async (cx, st) => {
  log.warn('support for restriction "check_relay_domains" will be removed from Postern; use "reject_unauth_destination" instead');
  if (st.recipient === undefined) return DUNNO;
  const name = st.s.clientName;
  if (name !== 'unknown' && /^[A-Za-z0-9.-]+$/.test(name)) {
    const c = await cx.tr.resolve(`postmaster@${name}`, '');
    if (!c.flags.fail && c.class === 'relay') return OK;
  }
  if ((await permitAuthDestination(cx, st, st.recipient)) === OK) return OK;
  return reject(cx, st, 'policy', cx.p.relayCode, '5.7.1', `<${st.recipient}>: ${RECIPIENT} rejected: Relay access denied`);
};

const unlistedRecipient: Restriction = (cx, st) => (st.recipient ? recipientRcptMaps(cx, st, st.recipient) : DUNNO);

export const RECIPIENT_RESTRICTIONS: Record<string, Restriction> = {
  check_recipient_access: (cx, st, r) => {
    const t = r.mapArg();
    return st.recipient === undefined ? DUNNO : mailAccess(cx, st, t, st.recipient, RECIPIENT, r.defAcl);
  },
  permit_auth_destination: (cx, st) => (st.recipient === undefined ? DUNNO : permitAuthDestination(cx, st, st.recipient)),
  reject_unauth_destination: unauthDestination,
  check_relay_domains: relayDomains,
  defer_unauth_destination: unauthDestination,
  reject_unknown_recipient_domain: (cx, st) => (st.recipient ? unknownAddress(cx, st, st.recipient, RECIPIENT) : DUNNO),
  reject_non_fqdn_recipient: (cx, st) =>
    (st.recipient !== undefined && nonFqdnAddress(st.recipient) ? reject(cx, st, 'policy', cx.p.nonFqdnCode, '4.5.2', `<${st.recipient}>: ${RECIPIENT} rejected: need fully-qualified address`) : DUNNO),
  reject_unlisted_recipient: unlistedRecipient,
  check_recipient_maps: unlistedRecipient,
  reject_multi_recipient_bounce: (cx, st, r) => {
    const n = st.s.tx?.recipients.length ?? 0;
    if (st.sender === '' && n > (st.where !== 'RCPT' ? 1 : 0)) {
      return reject(cx, st, 'policy', cx.p.mulRcptCode, '5.5.3', rejected(r, 'Multi-recipient bounce'));
    }
    return DUNNO;
  },
};
