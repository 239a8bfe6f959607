/**
 * smtpd-check-verify - reject_unverified_recipient and reject_unverified_sender (Postfix
 * smtpd_check.c check_verify(); ADDRESS_VERIFICATION_README): ask the address verification
 * cache (global/verify-client.ts) about the address, which sends a probe when it knows nothing.
 *
 * Contract: while the status is "in progress" smtpd asks again address_verify_poll_count times,
 * address_verify_poll_delay apart. Then, as Postfix:
 *   deliverable              DUNNO
 *   in progress / deferred   unverified_*_tempfail_action (defer_if_permit: remembered; defer:
 *                            at once) with unverified_*_defer_code and
 *                            "<addr>: Recipient address rejected: unverified address: TEXT"
 *   undeliverable            unverified_*_reject_code (450 by default) and "<addr>: Recipient
 *                            address rejected: unverified address: TEXT" (TEXT: the probe's
 *                            result; the whole text after "rejected: " is
 *                            unverified_*_reject_reason when set). Postfix 3.7 says "unverified
 *                            address" here too (measured: test/interop/verify-vs-postfix.test.ts).
 *   cache or probe failure   "450 4.3.0 <addr>: ... rejected: address verification problem",
 *                            logged as "verify service failure".
 * The null sender and "postmaster" are not verified; without a verify client (tests) the
 * restrictions answer as a verify service failure.
 */
import { logger } from '../util/msg.ts';
import { VRFY } from '../global/verify-client.ts';
import {
  DUNNO, RECIPIENT, SENDER, deferIfPermit, lower, reject, type CheckContext, type CheckState, type Restriction, type Status,
} from './smtpd-check-reject.ts';

const log = logger('smtpd');

async function checkVerify(cx: CheckContext, st: CheckState, addr: string, replyClass: string, kind: 'recipient' | 'sender'): Promise<Status> {
  const c = cx.config;
  const dsnBase = kind === 'recipient' ? '1.1' : '1.7';
  const tempfailRemember = lower(c.get(`unverified_${kind}_tempfail_action`)) === 'defer_if_permit';
  let result: { status: number; text: string } | undefined;
  try {
    if (!cx.verify) throw new Error('no verify service');
    const polls = Math.max(1, c.int('address_verify_poll_count'));
    for (let count = 0; ; ) {
      result = await cx.verify.query(addr);
      if (result.status !== VRFY.TODO || ++count >= polls) break;
      await new Promise((r) => setTimeout(r, c.time('address_verify_poll_delay') * 1000));
    }
  } catch (e) {
    log.warn(`verify service failure: ${(e as Error).message}`);
    return deferIfPermit(cx, st, tempfailRemember, 450, '4.3.0', `<${addr}>: ${replyClass} rejected: address verification problem`);
  }
  const reason = c.get(`unverified_${kind}_reject_reason`).trim();
  switch (result.status) {
    case VRFY.OK: return DUNNO;
    case VRFY.BOUNCE:
      return reject(cx, st, 'policy', c.int(`unverified_${kind}_reject_code`), `5.${dsnBase}`, `<${addr}>: ${replyClass} rejected: ${reason || `unverified address: ${result.text.slice(0, 250)}`}`);
    default:
      return deferIfPermit(cx, st, tempfailRemember, c.int(`unverified_${kind}_defer_code`), `4.${dsnBase}`, `<${addr}>: ${replyClass} rejected: unverified address: ${result.text.slice(0, 250)}`);
  }
}

export const VERIFY_RESTRICTIONS: Record<string, Restriction> = {
  reject_unverified_recipient: (cx, st) => {
    const a = st.recipient;
    if (a === undefined || a === '' || lower(a) === 'postmaster') return DUNNO;
    return checkVerify(cx, st, a, RECIPIENT, 'recipient');
  },
  reject_unverified_sender: (cx, st) => {
    const a = st.sender;
    if (a === undefined || a === '') return DUNNO;
    return checkVerify(cx, st, a, SENDER, 'sender');
  },
};
