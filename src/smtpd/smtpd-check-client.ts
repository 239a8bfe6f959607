/**
 * smtpd-check-client - the client restrictions of smtpd (Postfix smtpd_check.c, "Client host"):
 * permit_inet_interfaces, permit_mynetworks, reject_unknown_client_hostname (and its old name
 * reject_unknown_client), reject_unknown_reverse_client_hostname, check_client_access,
 * check_reverse_client_access, permit_sasl_authenticated, check_sasl_access, the client
 * certificate restrictions check_ccert_access, permit_tls_clientcerts (relay_clientcerts) and
 * permit_tls_all_clientcerts (a certificate smtpd_tls_CAfile trusts; smtpd_tls_ask_ccert = yes
 * makes smtpd ask for one), and the DNS list restrictions reject_rbl_client and reject_rhsbl_* (client, reverse
 * client, helo, sender, recipient), the obsolete reject_maps_rbl (maps_rbl_domains), and the
 * allow lists permit_dnswl_client / permit_rhswl_client, which query through global/dnsbl.ts.
 *
 * Contract: CLIENT_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it). Reply texts and codes are Postfix 3.7's (unknown_client_reject_code,
 * default_rbl_reply, maps_rbl_reject_code); SASL restrictions without smtpd_sasl_auth_enable
 * log "restriction `name' ignored: no SASL support".
 */
import { createHash } from 'node:crypto';
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
    // Postfix smtpd_check.c: 4.7.25 (RFC 7372) for the forward-confirmed name, 4.7.1 for the reverse one.
    const reverse = r.name === 'reject_unknown_reverse_client_hostname';
    return reject(cx, st, 'policy', cx.p.unkClientCode, reverse ? '4.7.1' : '4.7.25',
      `Client host rejected: cannot find your ${reverse ? 'reverse ' : ''}hostname, [${s.clientAddr}]`);
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

/** The client certificate's fingerprints (certificate, then public key) with smtpd_tls_fingerprint_digest. */
function clientCert(cx: CheckContext, st: CheckState): { prints: string[]; cn: string; trusted: boolean } | undefined {
  const t = st.s.tlsSocket;
  if (!t || !st.s.tls) return undefined;
  const cert = t.getPeerCertificate?.(false);
  if (!cert || !cert.raw) return undefined;
  const d = cx.p.tlsFingerprintDigest;
  const alg = /^(md5|sha1|sha256|sha512)$/i.test(d) ? d.toLowerCase() : 'sha256';
  const colon = (b: Buffer) => b.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
  const prints = [colon(createHash(alg).update(cert.raw).digest())];
  if (cert.pubkey) prints.push(colon(createHash(alg).update(cert.pubkey).digest()));
  return { prints, cn: String(cert.subject?.CN ?? ''), trusted: t.authorized === true };
}

/** check_ccert_access type:table: the certificate's, then the public key's fingerprint. */
const ccertAccess: Restriction = async (cx, st, r) => {
  const table = r.mapArg();
  const c = clientCert(cx, st);
  if (!c) return DUNNO;
  for (const p of c.prints) {
    const s = await accessCheck(cx, st, table, [{ key: p, partial: false }], c.cn, 'Client certificate', r.defAcl);
    if (s !== DUNNO) return s;
  }
  return DUNNO;
};

/**
 * permit_tls_clientcerts: a fingerprint listed in relay_clientcerts (the CA need not be
 * trusted); permit_tls_all_clientcerts: any certificate the CAs (smtpd_tls_CAfile) trust.
 */
const tlsClientcerts: Restriction = async (cx, st, r) => {
  const c = clientCert(cx, st);
  if (!c) return DUNNO;
  if (r.name === 'permit_tls_all_clientcerts') return c.trusted ? OK : DUNNO;
  const spec = cx.config?.get('relay_clientcerts').trim();
  if (!spec) return DUNNO;
  const maps = await cx.table(spec);
  for (const p of c.prints) {
    try {
      if ((await maps.find(p)) !== undefined) return OK;
    } catch (e) { tableError(cx, st, e, r.replyName); }
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
  check_ccert_access: ccertAccess,
  permit_tls_clientcerts: tlsClientcerts,
  permit_tls_all_clientcerts: tlsClientcerts,
};

function rblResult(cx: CheckContext, st: CheckState, r: SmtpdReply | undefined): Status {
  if (!r) return DUNNO;
  return reject(cx, st, r.code === 451 ? 'software' : 'policy', r.code, r.enh, r.text);
}
