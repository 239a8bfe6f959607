/**
 * spf-check - SPF (RFC 7208) of a client at MAIL FROM time, for smtpd's restrictions
 * (reject_spf_fail and friends, smtpd-check-spf.ts): the same evaluation cleanup's verification
 * makes (mailauth through Postern's resolver, authres-dns.ts), so the two share DNS answers.
 *
 * SUMMARY
 *   const spf = spfEvaluator(config);
 *   const r = await spf({ ip, helo, sender });   // { result: 'fail', comment: '...' }
 *
 * DESCRIPTION
 *   The identity is the MAIL FROM address, or postmaster@HELO for the null sender (RFC 7208
 *   §2.4). One evaluation per (DNS servers, receiver, client address, HELO, sender) is
 *   remembered for SPF_MEMO_MS by memoSpf(), shared with cleanup's verification: a restriction
 *   named in several lists, the verification of the same message, or a client sending many
 *   messages cost one evaluation; a temperror is never remembered. The evaluation is bounded by
 *   postern_authres_timeout (temperror past it).
 *
 * PARAMETERS
 *   postern_authres_timeout, postern_dns_servers, myhostname
 */
import { spf as spfCheck } from 'mailauth';
import type { MainConfig } from '../global/mail-conf.ts';
import { dnsResolverFromConfig } from '../util/dns-resolver.ts';
import { authresDns } from './authres-dns.ts';

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'permerror' | 'temperror';
export interface SpfVerdict { result: SpfResult; comment: string; domain: string }
export interface SpfFacts { ip: string; helo: string; sender: string }

export const SPF_MEMO_MS = 60_000;
const MEMO_MAX = 1000;

type MailauthSpf = Awaited<ReturnType<typeof spfCheck>>;
const results = new Map<string, { at: number; p: Promise<MailauthSpf> }>();

/**
 * One SPF evaluation per (receiver, client address, HELO, sender) for SPF_MEMO_MS, shared by the
 * process (a mailing list or a busy sender costs one evaluation a minute; the DNS answers
 * themselves are cached longer, authres-dns.ts). A temperror is not remembered.
 */
export function memoSpf(key: string, run: () => Promise<MailauthSpf>): Promise<MailauthSpf> {
  const now = Date.now();
  const hit = results.get(key);
  if (hit && now - hit.at < SPF_MEMO_MS) return hit.p;
  const p = run();
  if (results.size >= MEMO_MAX) results.delete(results.keys().next().value!);
  results.set(key, { at: now, p });
  p.then((r) => { if (r.status.result === 'temperror') results.delete(key); }, () => results.delete(key));
  return p;
}

export function spfEvaluator(c: MainConfig): (f: SpfFacts) => Promise<SpfVerdict> {
  let dns: ReturnType<typeof authresDns> | undefined;
  const timeoutMs = c.time('postern_authres_timeout') * 1000;
  const mta = c.get('myhostname');
  return (f) => {
    const d = dns ??= authresDns(dnsResolverFromConfig(c));
    const resolver = d.withDeadline(Date.now() + timeoutMs);
    return memoSpf(`${d.serversKey}|${mta}|${f.ip}|${f.helo}|${f.sender}`,
      () => spfCheck({ sender: f.sender, ip: f.ip, helo: f.helo || undefined, mta, resolver, maxElapsedTime: timeoutMs } as Parameters<typeof spfCheck>[0]))
      .then((r) => ({ result: r.status.result as SpfResult, comment: String(r.status.comment || ''), domain: String((r as unknown as { domain?: string }).domain ?? '') }),
        (e: Error) => ({ result: 'temperror' as const, comment: e.message, domain: '' }));
  };
}
