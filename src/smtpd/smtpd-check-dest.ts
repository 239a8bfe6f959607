/**
 * smtpd-check-dest - what smtpd's restrictions ask of the address resolver (trivial-rewrite):
 * is a recipient "ours" (permit_auth_destination: local, alias, virtual or relay class, never a
 * routed form like user%host@ours unless allow_untrusted_routing), is an address a known user
 * of its class (check_rcpt_maps: local_recipient_maps, virtual_*_maps, relay_recipient_maps),
 * and does the domain of a foreign address exist (reject_unknown_address: A/AAAA/MX, null MX).
 *
 * Contract: functions of the restriction engine (smtpd-check-sender.ts, -recipient.ts and the
 * implicit smtpd_reject_unlisted_sender/recipient of smtpd-check.ts). recipientRcptMaps() and
 * senderRcptMaps() run at most once per stage (st.*RcptmapChecked, not under warn_if_reject),
 * as Postfix. Resolver failures abandon the stage with 451 4.3.0.
 */
import { dsnFix } from './smtpd-check-access.ts';
import { dnsStatus } from './smtpd-check-addr.ts';
import {
  DUNNO, OK, RECIPIENT, SENDER, deferIfPermit, reject, resolveAddr, tableError,
  type CheckContext, type CheckState, type Status,
} from './smtpd-check-reject.ts';

/** permit_auth_destination(): final (local/alias/virtual) or relay_domains, never routed. */
export async function permitAuthDestination(cx: CheckContext, st: CheckState, rcpt: string): Promise<Status> {
  const r = await resolveAddr(cx, st, rcpt, st.sender ?? '');
  if (!r.recipient.includes('@')) return OK;
  if (!cx.p.untrustedRouting && r.flags.routed) return DUNNO;
  if (r.class === 'local' || r.class === 'alias' || r.class === 'virtual' || r.class === 'relay') return OK;
  return DUNNO;
}

export async function recipientRcptMaps(cx: CheckContext, st: CheckState, rcpt: string): Promise<Status> {
  if (st.recipientRcptmapChecked) return DUNNO;
  if (st.warnIfReject === 0) st.recipientRcptmapChecked = true;
  return rcptMaps(cx, st, st.sender ?? '', rcpt, RECIPIENT);
}

export async function senderRcptMaps(cx: CheckContext, st: CheckState, sender: string): Promise<Status> {
  if (st.senderRcptmapChecked) return DUNNO;
  if (st.warnIfReject === 0) st.senderRcptmapChecked = true;
  return rcptMaps(cx, st, st.recipient ?? '', sender, SENDER);
}

/** check_rcpt_maps(): is the address a known user of its address class? */
async function rcptMaps(cx: CheckContext, st: CheckState, other: string, addr: string, replyClass: string): Promise<Status> {
  // Postfix INPUT_TRANSP_UNKNOWN_RCPT: the mail was checked before it went to the filter.
  if (cx.p.noUnknownRcpt) return DUNNO;
  const r = await resolveAddr(cx, st, addr, other);
  // A valid SRS address of ours is known, as Postfix skips the check for an address its
  // recipient_canonical_maps (postsrsd) know: cleanup reverses it (docs/authres.md).
  if (replyClass === RECIPIENT && cx.srsKnown?.(r.recipient)) return DUNNO;
  let v;
  try { v = await cx.tr.checkRecipient(r); } catch (e) { tableError(cx, st, e, addr); }
  if (v.ok) return DUNNO;
  // The error transport's text carries its own DSN (dsn_split + smtpd_dsn_fix); the class
  // tables answer a literal 5.1.0 (sender) or 5.1.1 (recipient).
  const dsn = r.transport === 'error' ? dsnFix(v.dsn, replyClass) : replyClass === SENDER ? '5.1.0' : '5.1.1';
  return reject(cx, st, 'bounce', v.code, dsn, `<${addr}>: ${replyClass} rejected: ${v.text}`);
}

/** reject_unknown_address(): the domain of a non-final address must exist in DNS. */
export async function unknownAddress(cx: CheckContext, st: CheckState, addr: string, replyClass: string): Promise<Status> {
  const r = await resolveAddr(cx, st, addr, replyClass === SENDER ? st.recipient ?? '' : st.sender ?? '');
  const at = r.recipient.lastIndexOf('@');
  if (at < 0) return DUNNO;
  if (r.class === 'local' || r.class === 'alias' || r.class === 'virtual') return DUNNO;
  const domain = r.recipient.slice(at + 1);
  if (domain.startsWith('[') && domain.endsWith(']')) return DUNNO;
  const sender = replyClass === SENDER;
  const dsn = sender ? '4.1.8' : '4.1.2';
  const why = `<${addr}>: ${replyClass} rejected: Domain not found`;
  switch (await dnsStatus(cx.dns, domain, true)) {
    case 'ok': return DUNNO;
    case 'notfound': return reject(cx, st, 'policy', cx.p.unkAddrCode, dsn, why);
    case 'nullmx': return reject(cx, st, 'policy', sender ? 550 : 556, sender ? '4.7.27' : '4.1.10',
      `<${addr}>: ${replyClass} rejected: Domain ${domain} does not accept mail (nullMX)`);
    case 'retry': return deferIfPermit(cx, st, cx.p.unkAddrTfDefer, 450, dsn, why);
  }
}
