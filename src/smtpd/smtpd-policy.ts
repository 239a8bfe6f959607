/**
 * smtpd-policy - the access-decision hook smtpd calls at Postfix's stages (connect, HELO, MAIL,
 * RCPT, DATA, end of data). Keeping it an interface keeps policy out of the protocol code
 * (smtp-server's onMailFrom/onRcptTo, Haraka's hooks): smtpd-check.ts implements it with the
 * smtpd_*_restrictions lists; tests may use a literal object.
 *
 * A check returns undefined to go on, or a SmtpdVerdict: a reply to send instead of the success
 * reply (4xx/5xx), or an action that accepts but DISCARDs or HOLDs the message (access(5)).
 * smtpd_delay_reject is the checker's business: it may remember a connect/HELO/MAIL rejection
 * and report it at RCPT, as Postfix does.
 */
import type { SmtpdState } from './smtpd-state.ts';

export interface SmtpdReply {
  code: number;
  /** RFC 3463 enhanced status code, e.g. "5.7.1". */
  enh: string;
  text: string;
}

export interface SmtpdVerdict {
  reply?: SmtpdReply;
  action?: 'discard' | 'hold';
  reason?: string;
  /** FILTER transport:nexthop (access(5) / policy FILTER): the message's content filter. */
  filter?: string;
  /** REDIRECT user@domain (access(5) / policy REDIRECT): every recipient goes there instead. */
  redirect?: string;
  /** Headers to prepend to the message (access(5) / policy PREPEND), in order. */
  prepend?: string[];
  /** The restriction that produced `reply` (reject_unauth_destination, check_client_access, ...). */
  restriction?: string;
  /** Drop the connection after the reply (e.g. 421). */
  disconnect?: boolean;
}

export interface SmtpdPolicy {
  connect?(s: SmtpdState): Promise<SmtpdVerdict | undefined>;
  helo?(s: SmtpdState, helo: string): Promise<SmtpdVerdict | undefined>;
  mail?(s: SmtpdState, sender: string): Promise<SmtpdVerdict | undefined>;
  rcpt?(s: SmtpdState, recipient: string): Promise<SmtpdVerdict | undefined>;
  data?(s: SmtpdState): Promise<SmtpdVerdict | undefined>;
  endOfData?(s: SmtpdState): Promise<SmtpdVerdict | undefined>;
  /** ETRN domain: smtpd_etrn_restrictions (after the client and HELO ones with smtpd_delay_reject). */
  etrn?(s: SmtpdState, domain: string): Promise<SmtpdVerdict | undefined>;
  /** Is the client in $mynetworks? (cleanup signs such mail: SubmissionOrigin in global/cleanup-client.ts) */
  mynetworks?(s: SmtpdState): Promise<boolean>;
}

/** No restrictions at all: for tests of the protocol engine only. */
export const PERMIT_ALL: SmtpdPolicy = {};

/**
 * postscreen "enforce" (global/postscreen-client.ts): the session goes on, but every recipient is refused with the saved
 * reply (Postfix psc_smtpd.c answers RCPT with it and logs the helo/sender/recipient).
 */
export function enforcePolicy(inner: SmtpdPolicy, reply: SmtpdReply): SmtpdPolicy {
  const out: SmtpdPolicy = {};
  for (const k of ['connect', 'helo', 'mail', 'data', 'endOfData', 'etrn', 'mynetworks'] as const) {
    const f = inner[k] as ((...a: unknown[]) => Promise<never>) | undefined;
    if (f) (out as Record<string, unknown>)[k] = f.bind(inner);
  }
  out.rcpt = async () => ({ reply });
  return out;
}
