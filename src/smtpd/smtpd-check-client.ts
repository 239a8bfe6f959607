/**
 * smtpd-check-client - the client restrictions of smtpd (Postfix smtpd_check.c, "Client host"):
 * permit_inet_interfaces, permit_mynetworks, reject_unknown_client_hostname (and its old name
 * reject_unknown_client), reject_unknown_reverse_client_hostname, check_client_access,
 * check_reverse_client_access, permit_sasl_authenticated, check_sasl_access,
 * permit_tls_clientcerts / permit_tls_all_clientcerts (no verified client certificates yet:
 * DUNNO), and the DNS list restrictions reject_rbl_client and reject_rhsbl_* (client, reverse
 * client, helo, sender, recipient), the obsolete reject_maps_rbl (maps_rbl_domains), and the
 * allow lists permit_dnswl_client / permit_rhswl_client, which query through global/dnsbl.ts.
 *
 * Contract: CLIENT_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it). Reply texts and codes are Postfix 3.7's (unknown_client_reject_code,
 * default_rbl_reply, maps_rbl_reject_code); SASL restrictions without smtpd_sasl_auth_enable
 * log "restriction `name' ignored: no SASL support".
 */
import { logger } from '../util/msg.ts';
import { reverseAddr, type RhsblKind } from '../global/dnsbl.ts';
import { permitAuthDestination } from './smtpd-check-dest.ts';
import type { SmtpdReply } from './smtpd-policy.ts';
import { clientKeys } from './smtpd-check-access.ts';
import { accessCheck } from './smtpd-check-table.ts';
import {
  CLIENT, DUNNO, OK, SASL_USER, deferIf, namaddr, reject, tableError,
  type CheckContext, type CheckState, type Restriction, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

const unknownClient: Restriction = (cx, st, r) => {
  const s = st.s;
  if (s.clientName === 'unknown') {
    return reject(cx, st, 'policy', cx.p.unkClientCode, '4.7.1',
      `Client host rejected: cannot find your ${r.name === 'reject_unknown_reverse_client_hostname' ? 'reverse ' : ''}hostname, [${s.clientAddr}]`);
  }
  return DUNNO;
};

const clientAccess: Restriction = (cx, st, r) =>
  accessCheck(cx, st, r.mapArg(), clientKeys(st.s.clientName, st.s.clientAddr, cx.p.accessParent), namaddr(st), CLIENT, r.defAcl);

const rhsbl: Restriction = async (cx, st, r) => {
  const kind = r.name.slice('reject_rhsbl_'.length) as RhsblKind;
  const d = r.domainArg();
  return rblResult(cx, st, await cx.rbl.rejectRhsbl(kind, { ...st.s, helo: st.helo }, d, { sender: st.sender, recipient: st.recipient }));
};

const rbl: Restriction = async (cx, st, r) => rblResult(cx, st, await cx.rbl.rejectRblClient(st.s, r.domainArg()));

/**
 * permit_dnswl_client / permit_rhswl_client (Postfix permit_dnswl_addr/_domain): OK when the
 * client address (reversed) or name is in the allow list. Never for a recipient that is not
 * ours to accept (an allow list must not make an open relay); a DNS failure answers "450 4.7.1
 * ... Service unavailable" if the request would otherwise be rejected (defer_if_reject).
 */
const allowList: Restriction = async (cx, st, r) => {
  const arg = r.domainArg();
  if (st.where === 'RCPT' && st.recipient !== undefined && (await permitAuthDestination(cx, st, st.recipient)) !== OK) return DUNNO;
  const s = st.s;
  let name: string | undefined;
  if (r.name === 'permit_dnswl_client') name = reverseAddr(s.clientAddr);
  else if (s.clientName !== 'unknown') name = s.clientName.toLowerCase().replace(/\.$/, '');
  if (!name) return DUNNO;
  const v = await cx.rbl.allowListed(name, arg);
  if (v === 'listed') return OK;
  if (v === 'error') {
    const what = r.name === 'permit_dnswl_client' ? s.clientAddr : s.clientName;
    log.warn(`${namaddr(st)}: DNS allow list lookup error for "${arg}"`);
    return deferIf(st.deferIfReject, 'policy', 450, '4.7.1', `<${what}>: ${CLIENT} rejected: Service unavailable`);
  }
  return DUNNO;
};

/** reject_maps_rbl (obsolete): reject_rbl_client for each domain of maps_rbl_domains. */
const mapsRbl: Restriction = async (cx, st) => {
  log.warn('support for restriction "reject_maps_rbl" will be removed from Postern; use "reject_rbl_client domain-name" instead');
  for (const d of cx.mapsRblDomains) {
    const v = await cx.rbl.rejectRblClient(st.s, d);
    if (v) return rblResult(cx, st, v);
  }
  return DUNNO;
};

export const CLIENT_RESTRICTIONS: Record<string, Restriction> = {
  permit_inet_interfaces: (cx, st) => (cx.tr.isLocalAddress(st.s.clientAddr) ? OK : DUNNO),
  permit_mynetworks: async (cx, st, r) => {
    try { return (await cx.mynetworks.match(st.s.clientName, st.s.clientAddr)) ? OK : DUNNO; } catch (e) { tableError(cx, st, e, r.replyName); }
  },
  reject_unknown_client_hostname: unknownClient,
  reject_unknown_client: unknownClient,
  reject_unknown_reverse_client_hostname: unknownClient,
  check_client_access: clientAccess,
  check_reverse_client_access: clientAccess,
  permit_sasl_authenticated: (cx, st) => (cx.p.sasl && st.s.saslUsername ? OK : DUNNO),
  check_sasl_access: (cx, st, r) => {
    const t = r.mapArg();
    const user = st.s.saslUsername;
    if (!cx.p.sasl) { log.warn(`restriction \`${r.name}' ignored: no SASL support`); return DUNNO; }
    if (!user) return DUNNO;
    return accessCheck(cx, st, t, [{ key: user, partial: false }], user, SASL_USER, r.defAcl);
  },
  // DNS lists (src/postscreen/dnsbl.ts): default_rbl_reply, maps_rbl_reject_code.
  reject_rbl_client: rbl,
  reject_rbl: rbl,
  reject_rhsbl_client: rhsbl,
  reject_rhsbl_reverse_client: rhsbl,
  reject_rhsbl_helo: rhsbl,
  reject_rhsbl_sender: rhsbl,
  reject_rhsbl_recipient: rhsbl,
  reject_maps_rbl: mapsRbl,
  permit_dnswl_client: allowList,
  permit_rhswl_client: allowList,
  permit_tls_clientcerts: () => DUNNO, // no verified client certificates yet (TLS issue)
  permit_tls_all_clientcerts: () => DUNNO,
};

function rblResult(cx: CheckContext, st: CheckState, r: SmtpdReply | undefined): Status {
  if (!r) return DUNNO;
  return reject(cx, st, r.code === 451 ? 'software' : 'policy', r.code, r.enh, r.text);
}
