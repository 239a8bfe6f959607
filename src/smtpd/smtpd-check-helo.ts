/**
 * smtpd-check-helo - the HELO/EHLO restrictions of smtpd (Postfix smtpd_check.c, "Helo
 * command"): check_helo_access, reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname,
 * reject_unknown_helo_hostname (and their old names without "_helo").
 *
 * Contract: HELO_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it). Without a HELO they answer DUNNO. An address literal ("[1.2.3.4]") is only
 * checked for a valid address ("invalid ip address"), never looked up in DNS. A DNS failure of
 * reject_unknown_helo_hostname is a remembered defer_if_permit unless
 * unknown_helo_hostname_tempfail_action says otherwise; codes from invalid_hostname_reject_code,
 * non_fqdn_reject_code, unknown_hostname_reject_code.
 */
import { logger } from '../util/msg.ts';
import { domainKeys } from './smtpd-check-access.ts';
import { dnsStatus, invalidHostaddr, invalidHostname, nonFqdnHostname } from './smtpd-check-addr.ts';
import { accessCheck } from './smtpd-check-table.ts';
import {
  DUNNO, HELO, OK, REJECT, deferIfPermit, reject,
  type CheckContext, type CheckState, type Restriction, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

const invalidHelo: Restriction = (cx, st) => {
  if (st.helo === undefined) return DUNNO;
  if (st.helo.startsWith('[')) return hostaddr(cx, st, st.helo);
  return invalidHostname(st.helo) ? reject(cx, st, 'policy', cx.p.badNameCode, '5.5.2', `<${st.helo}>: ${HELO} rejected: Invalid name`) : DUNNO;
};

const nonFqdnHelo: Restriction = (cx, st) => {
  if (st.helo === undefined) return DUNNO;
  if (st.helo.startsWith('[')) return hostaddr(cx, st, st.helo);
  return nonFqdnHostname(st.helo) ? reject(cx, st, 'policy', cx.p.nonFqdnCode, '5.5.2', `<${st.helo}>: ${HELO} rejected: need fully-qualified hostname`) : DUNNO;
};

const unknownHelo: Restriction = async (cx, st) => {
  if (st.helo === undefined) return DUNNO;
  if (st.helo.startsWith('[')) return hostaddr(cx, st, st.helo);
  const r = await dnsStatus(cx.dns, st.helo, true);
  const why = `<${st.helo}>: ${HELO} rejected: Host not found`;
  if (r === 'notfound') return reject(cx, st, 'policy', cx.p.unkNameCode, '4.7.1', why);
  if (r === 'retry') return deferIfPermit(cx, st, cx.p.unkNameTfDefer, 450, '4.7.1', why);
  return DUNNO;
};

export const HELO_RESTRICTIONS: Record<string, Restriction> = {
  check_helo_access: (cx, st, r) => {
    const t = r.mapArg();
    return st.helo === undefined ? DUNNO : accessCheck(cx, st, t, domainKeys(st.helo, cx.p.accessParent), st.helo, HELO, r.defAcl);
  },
  // Obsolete (Postfix warns): OK for a HELO that is a bare IP address; an invalid one is refused
  // as reject_invalid_hostaddr refuses it.
  permit_naked_ip_address: (cx, st) => {
    log.warn('restriction permit_naked_ip_address is deprecated. Use permit_mynetworks or permit_sasl_authenticated instead');
    if (st.helo === undefined || !/^[0-9.:]+$/.test(st.helo)) return DUNNO;
    return hostaddr(cx, st, st.helo) === DUNNO ? OK : REJECT;
  },
  // check_etrn_access: the ETRN domain and its parent domains (smtpd_etrn_restrictions).
  check_etrn_access: (cx, st, r) => accessCheck(cx, st, r.mapArg(), domainKeys(r.replyName, cx.p.accessParent), r.replyName, 'Etrn command', r.defAcl),
  reject_invalid_helo_hostname: invalidHelo,
  reject_invalid_hostname: invalidHelo,
  reject_non_fqdn_helo_hostname: nonFqdnHelo,
  reject_non_fqdn_hostname: nonFqdnHelo,
  reject_unknown_helo_hostname: unknownHelo,
  reject_unknown_hostname: unknownHelo,
};

function hostaddr(cx: CheckContext, st: CheckState, helo: string): Status {
  return invalidHostaddr(helo) ? reject(cx, st, 'policy', cx.p.badNameCode, '5.5.2', `<${helo}>: ${HELO} rejected: invalid ip address`) : DUNNO;
}
