/**
 * smtpd-check-spf - SPF restrictions of smtpd (docs/authres.md), in the place where Postfix
 * sites call policyd-spf (check_policy_service unix:private/policyd-spf): usable in
 * smtpd_sender_restrictions, smtpd_recipient_restrictions and later stages (they need MAIL FROM;
 * before it they answer DUNNO).
 *
 *   reject_spf_fail        SPF "fail" (-all): 550 5.7.23 <sender>: Sender address rejected: SPF fail - not authorized
 *   reject_spf_softfail    SPF "softfail" (~all): the same reply, "SPF softfail - not authorized"
 *   reject_spf_permerror   SPF "permerror": 550 5.7.24 ...: SPF permerror - <reason>
 *   defer_spf_temperror    SPF "temperror" (a DNS failure): 451 4.7.24 ...: SPF temperror - try again later
 *
 * The identity is the MAIL FROM address, or postmaster@HELO for the null sender (RFC 7208 §2.4);
 * the replies use RFC 7372's codes (X.7.23 "SPF validation failed", X.7.24 "SPF validation
 * error"). A DNS failure never rejects: only defer_spf_temperror acts on it, with a 4xx.
 * Each result is logged as Postfix logs a restriction (`NOQUEUE: reject: RCPT from ...`).
 *
 * Contract: SPF_RESTRICTIONS maps each name to its implementation (smtpd-check-generic.ts
 * dispatches to it); CheckContext.spf evaluates (lib-authres/spf-check.ts).
 */
import { DUNNO, SENDER, reject, type CheckContext, type CheckState, type Restriction } from './smtpd-check-reject.ts';
import type { SpfResult } from '../lib-authres/spf-check.ts';

function spfRestriction(result: SpfResult, code: number, enh: string, what: (comment: string) => string): Restriction {
  return async (cx: CheckContext, st: CheckState) => {
    if (st.sender === undefined || !cx.spf) return DUNNO;
    const v = await cx.spf({ ip: st.s.clientAddr, helo: st.helo ?? st.s.helo ?? '', sender: st.sender });
    if (v.result !== result) return DUNNO;
    const who = st.sender || `postmaster@${st.helo ?? st.s.helo ?? ''}`;
    return reject(cx, st, 'policy', code, enh, `<${who}>: ${SENDER} rejected: ${what(v.comment)}`);
  };
}

export const SPF_RESTRICTIONS: Record<string, Restriction> = {
  reject_spf_fail: spfRestriction('fail', 550, '5.7.23', () => 'SPF fail - not authorized'),
  reject_spf_softfail: spfRestriction('softfail', 550, '5.7.23', () => 'SPF softfail - not authorized'),
  reject_spf_permerror: spfRestriction('permerror', 550, '5.7.24', (c) => `SPF permerror - ${c.replace(/^[^:]*: /, '') || 'invalid record'}`),
  defer_spf_temperror: spfRestriction('temperror', 451, '4.7.24', () => 'SPF temperror - try again later'),
};
