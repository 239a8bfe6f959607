/**
 * tlsrpt - the daily SMTP TLS Reporting (RFC 8460) sender: turns the TLS outcomes the smtp
 * client recorded (global/tls-rpt.ts) into one aggregate JSON report per policy domain and
 * sends it to the `rua` of the domain's `_smtp._tls` TXT record.
 *
 * DESCRIPTION
 *   Once a day, a random moment in the first hour after 00:00 UTC (§4.1 asks senders to spread
 *   their load), every finished day file not yet sent is reported: for each domain, the
 *   `_smtp._tls.DOMAIN` TXT record is looked up (§3; none, or more than one v=TLSRPTv1 record:
 *   no report); `mailto:` addresses get a mail (§5.3: multipart/report; report-type="tlsrpt",
 *   the report gzipped as application/tlsrpt+gzip, TLS-Report-Domain and TLS-Report-Submitter
 *   header fields), submitted through cleanup like any local mail; `https:` addresses get an
 *   HTTP POST of the gzipped report (§5.4: Content-Type application/tlsrpt+gzip; 2xx = done;
 *   no redirect followed; the host resolved through postern_dns_servers; certificate checked
 *   against the system CAs and smtp_tls_CAfile; postern_tlsrpt_timeout for the whole request).
 *   The day file is then renamed DAY.jsonl.sent.
 *
 * SECURITY
 *   Reads the local day files, asks DNS, submits mail through cleanup. Sends nothing unless
 *   postern_tlsrpt_reporting = yes.
 *
 * PARAMETERS
 *   postern_tlsrpt_reporting, postern_tlsrpt_directory, postern_tlsrpt_organization,
 *   postern_tlsrpt_contact, postern_dns_servers, myhostname.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { gzipSync } from 'node:zlib';
import type { CleanupClient } from '../global/cleanup-client.ts';
import { pendingDays, pruneSent, scheduleDaily, submitReportMail } from '../global/daily-report.ts';
import { gzipReportMail } from '../global/report-mail.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { buildTlsRptReports, readTlsRptDay, tlsRptRua } from '../global/tls-rpt.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import type { Logger } from '../util/msg.ts';

export function tlsRptReportsFor(config: MainConfig, day: string): Map<string, Record<string, unknown>> {
  const dir = config.get('postern_tlsrpt_directory');
  const org = config.get('postern_tlsrpt_organization');
  const stamp = Date.now().toString(36);
  return buildTlsRptReports(readTlsRptDay(dir, day), {
    organization: org, contact: config.get('postern_tlsrpt_contact'), day,
    reportId: (domain) => `${day}T00:00:00Z_${domain}_${stamp}${randomBytes(3).toString('hex')}@${config.get('myhostname')}`,
  });
}

/** The report mail of RFC 8460 §5.3. */
export function reportMessage(config: MainConfig, domain: string, to: string, report: Record<string, unknown>): Buffer {
  const submitter = config.get('postern_tlsrpt_organization');
  const day = (report['date-range'] as { 'start-datetime': string })['start-datetime'];
  const start = Math.floor(new Date(day).getTime() / 1000);
  const id = String(report['report-id']);
  return gzipReportMail({
    headers: [
      `From: ${config.get('postern_tlsrpt_contact')}`,
      `To: ${to}`,
      `Subject: Report Domain: ${domain} Submitter: ${submitter} Report-ID: <${id}>`,
      `TLS-Report-Domain: ${domain}`,
      `TLS-Report-Submitter: ${submitter}`,
    ],
    contentType: 'multipart/report; report-type="tlsrpt"',
    boundaryPrefix: 'tlsrpt',
    text: [`This is an aggregate TLS report (RFC 8460) from ${submitter} for ${domain}, ${day.slice(0, 10)}.`],
    attachmentType: 'application/tlsrpt+gzip',
    fileName: `${submitter}!${domain}!${start}!${start + 86399}.json.gz`,
    report: JSON.stringify(report),
  });
}

export interface TlsRptSendDeps { cleanup: CleanupClient; resolver?: DnsResolver; log: Logger }

/** Send the reports of one day; returns one line per domain for the log or the command. */
export async function sendTlsRptReports(config: MainConfig, day: string, deps: TlsRptSendDeps): Promise<string[]> {
  const reports = tlsRptReportsFor(config, day);
  const resolver = deps.resolver ?? dnsResolverFromConfig(config);
  const out: string[] = [];
  for (const [domain, report] of reports) {
    let rua: string[] | undefined;
    try { rua = tlsRptRua(await resolver.resolveTxt(`_smtp._tls.${domain}`)); } catch { rua = undefined; }
    if (!rua) { out.push(`${domain}: no _smtp._tls record, no report`); continue; }
    for (const uri of rua) {
      if (uri.toLowerCase().startsWith('https://')) {
        try {
          const status = await postReport(config, uri, report, resolver);
          out.push(`${domain}: report ${String(report['report-id'])} posted to ${uri}: HTTP ${status}`);
        } catch (e) {
          out.push(`${domain}: report to ${uri} failed: ${(e as Error).message}`);
        }
        continue;
      }
      const to = decodeURIComponent(uri.slice(7).split('?')[0]!);
      const r = await submitReportMail(config, deps.cleanup, config.get('postern_tlsrpt_contact'), to, reportMessage(config, domain, to, report));
      out.push('refused' in r ? `${domain}: report to ${to} refused by cleanup: ${r.refused}` : `${domain}: report ${String(report['report-id'])} queued as ${r.queueId} to ${to}`);
    }
  }
  return out;
}

export { pendingDays, pruneSent };

export function tlsrptService(cleanup: CleanupClient): ServiceImpl {
  return {
    name: 'tlsrpt',
    async start(ctx: ServiceContext): Promise<RunningService> {
      const loop = scheduleDaily(ctx.config.get('postern_tlsrpt_directory'), async (day) => {
        for (const l of await sendTlsRptReports(ctx.config, day, { cleanup, log: ctx.log })) ctx.log.info(`TLS-RPT ${day}: ${l}`);
      }, (m) => ctx.log.warn(`TLS-RPT ${m}`));
      return { async stop() { loop.stop(); } };
    },
  };
}

/** RFC 8460 §5.4: POST the gzipped report; resolves with the HTTP status (2xx), rejects otherwise. */
function postReport(config: MainConfig, uri: string, report: Record<string, unknown>, resolver: DnsResolver): Promise<number> {
  const u = new URL(uri);
  const body = gzipSync(Buffer.from(JSON.stringify(report)));
  const caFile = config.get('smtp_tls_CAfile').trim();
  const ca = [...rootCertificates, ...(caFile ? [readFileSync(caFile, 'utf8')] : [])];
  const timeoutMs = Math.max(1, config.time('postern_tlsrpt_timeout')) * 1000;
  const lookup: LookupFunction = (name, opts, cb) => {
    if (isIP(name)) { cb(null, name, isIP(name)); return; }
    resolver.resolve4(name).then((a) => {
      if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, a.map((x) => ({ address: x, family: 4 })));
      else cb(null, a[0]!, 4);
    }, (e: Error) => cb(Object.assign(e, { code: 'ENOTFOUND' }) as NodeJS.ErrnoException, '', 4));
  };
  return new Promise((resolve, reject) => {
    const req = httpsRequest(u, {
      method: 'POST', ca, lookup, agent: false, servername: isIP(u.hostname) ? undefined : u.hostname,
      headers: { 'Content-Type': 'application/tlsrpt+gzip', 'Content-Length': body.length, 'User-Agent': 'Postern-TLSRPT' },
    }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      res.on('end', () => { clearTimeout(timer); if (status >= 200 && status < 300) resolve(status); else reject(new Error(`HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`)); });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs);
    req.on('error', (e) => { clearTimeout(timer); reject(e); });
    req.end(body);
  });
}
