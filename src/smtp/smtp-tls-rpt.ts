/**
 * smtp-tls-rpt - what smtp(8) tells TLS-RPT (RFC 8460) about each session to an MX host:
 * the policy domain (the nexthop domain of an MX delivery; relayhost-style [host] and LMTP
 * deliveries are not reported), the policy that applied (MTA-STS: sts with the policy lines and
 * mx patterns; DANE: tlsa with the records; else no-policy-found), and the outcome, appended
 * to the day's file by global/tls-rpt.ts when postern_tlsrpt_reporting = yes.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { recordTlsRpt, type TlsRptResultType } from '../global/tls-rpt.ts';
import type { TlsHostPolicy } from './smtp-tls-policy.ts';

export type TlsReportFn = (ok: boolean, resultType?: TlsRptResultType, info?: string) => void;

export interface SmtpTlsRpt {
  /** An MTA-STS policy that was announced but could not be had (one failed session, §4.3.2). */
  policyError(domain: string, kind: 'sts-policy-fetch-error' | 'sts-policy-invalid', why: string): void;
  /** The reporter for one session, or undefined when this delivery is not reported. */
  forSession(destText: string, hp: TlsHostPolicy, mx: { host: string; addr: string }, localAddress: () => string | undefined): TlsReportFn | undefined;
}

export function smtpTlsRpt(config: MainConfig, lmtp: boolean): SmtpTlsRpt | undefined {
  if (lmtp || !config.bool('postern_tlsrpt_reporting')) return undefined;
  const dir = config.get('postern_tlsrpt_directory');
  return {
    policyError(domain, kind, why) {
      recordTlsRpt(dir, { domain, policyType: 'sts', ok: false, resultType: kind, info: why });
    },
    forSession(destText, hp, mx, localAddress) {
      const d = destText.trim();
      if (!d || d.startsWith('[') || d.includes('/')) return undefined;
      const domain = d.replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '');
      const sts = hp.mtaSts;
      const policy = sts
        ? { policyType: 'sts' as const, policyString: ['version: STSv1', `mode: ${sts.mode}`, ...sts.mx.map((m) => `mx: ${m}`), `max_age: ${sts.maxAge}`], mxHost: sts.mx }
        : hp.tlsa?.length
          ? { policyType: 'tlsa' as const, policyString: hp.tlsa.map((r) => `${r.usage} ${r.selector} ${r.matchingType} ${r.data.toString('hex')}`) }
          : { policyType: 'no-policy-found' as const };
      return (ok, resultType, info) => {
        const sendingIp = localAddress();
        recordTlsRpt(dir, {
          domain, ...policy, ok, ...(resultType ? { resultType } : {}), ...(info ? { info } : {}),
          receivingMx: mx.host, receivingIp: mx.addr, ...(sendingIp ? { sendingIp } : {}),
        });
      };
    },
  };
}
