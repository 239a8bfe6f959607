/**
 * dmarcrep - the daily DMARC aggregate report sender (RFC 7489 §7.2): turns the evaluations
 * cleanup recorded (lib-authres/dmarc-record.ts) into one XML report per policy domain
 * (lib-authres/dmarc-report-xml.ts) and mails it, gzipped, to the `rua=mailto:` addresses of
 * the domain's DMARC record, through cleanup like any local mail (`postern dmarc report`, and
 * once a day the master when postern_dmarc_reporting = yes).
 *
 * DESCRIPTION
 *   The schedule and the day files are those of the TLS-RPT sender (global/daily-report.ts):
 *   a random moment in the first hour after 00:00 UTC, each finished day not yet reported,
 *   then DAY.jsonl.sent, kept two weeks.
 *
 *   The rua is the one of the policy record as last recorded that day. For each mailto: URI:
 *   - §7.1 external destinations: when the URI's domain has another Organizational Domain than
 *     the policy domain, `<policy-domain>._report._dmarc.<rua-domain>` TXT must hold a record
 *     starting v=DMARC1, asked through postern_dns_servers; without it (or on a DNS error) no
 *     report goes there.
 *   - §6.4 "!size": a report mail larger than the limit is not sent.
 *   - §7.2.1.1 the mail: From postern_dmarc_report_from, Subject "Report Domain: DOMAIN
 *     Submitter: MYDOMAIN Report-ID: <ID>", multipart/mixed with a short text part and the
 *     report as application/gzip, file name MYDOMAIN!DOMAIN!BEGIN!END!ID.xml.gz.
 *
 * SECURITY
 *   Reads the local day files, asks DNS, submits mail through cleanup. Sends nothing unless
 *   asked (`postern dmarc report`) or postern_dmarc_reporting = yes.
 *
 * PARAMETERS
 *   postern_dmarc_reporting, postern_dmarc_directory, postern_dmarc_report_org,
 *   postern_dmarc_report_from, mydomain, myhostname, postern_dns_servers,
 *   postern_public_suffix_list.
 */
import { randomBytes } from 'node:crypto';
import type { CleanupClient } from '../global/cleanup-client.ts';
import type { MainConfig } from '../global/mail-conf.ts';
import { scheduleDaily, submitReportMail } from '../global/daily-report.ts';
import { gzipReportMail } from '../global/report-mail.ts';
import { readDmarcDay } from '../lib-authres/dmarc-record.ts';
import { buildDmarcReports, parseRua, type DmarcReport } from '../lib-authres/dmarc-report-xml.ts';
import { loadPsl, orgDomain } from '../lib-authres/dmarc-psl.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';

export function dmarcReportsFor(config: MainConfig, day: string): Map<string, DmarcReport> {
  const stamp = Date.now().toString(36);
  return buildDmarcReports(readDmarcDay(config.get('postern_dmarc_directory'), day), {
    org: config.get('postern_dmarc_report_org'), email: config.get('postern_dmarc_report_from'), day,
    reportId: (domain) => `${day}.${domain}.${stamp}${randomBytes(3).toString('hex')}@${config.get('myhostname')}`,
  });
}

const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/** §7.2.1.1 file name: receiver!policy-domain!begin!end!unique-id.xml.gz */
export function reportFileName(submitter: string, r: DmarcReport): string {
  return `${fileSafe(submitter)}!${fileSafe(r.domain)}!${r.begin}!${r.end}!${fileSafe(r.reportId.split('@')[0]!)}.xml.gz`;
}

/** The report mail of §7.2.1.1. */
export function reportMessage(config: MainConfig, r: DmarcReport, to: string): Buffer {
  const submitter = config.get('mydomain');
  return gzipReportMail({
    headers: [
      `From: ${config.get('postern_dmarc_report_from')}`,
      `To: ${to}`,
      `Subject: Report Domain: ${r.domain} Submitter: ${submitter} Report-ID: <${r.reportId}>`,
    ],
    contentType: 'multipart/mixed',
    boundaryPrefix: 'dmarc',
    text: [
      `This is a DMARC aggregate report (RFC 7489) from ${submitter} for ${r.domain},`,
      `${new Date(r.begin * 1000).toISOString().slice(0, 10)}: ${r.messages} message(s) in ${r.records} record(s).`,
    ],
    attachmentType: 'application/gzip',
    fileName: reportFileName(submitter, r),
    report: r.xml,
  });
}

/** §7.1: may reports for `domain` go to an address in `ruaDomain`? A reason when not. */
export async function externalDestinationRefusal(config: MainConfig, domain: string, ruaDomain: string, resolver: DnsResolver): Promise<string | undefined> {
  const psl = loadPsl(config.get('postern_public_suffix_list').trim());
  if (orgDomain(psl, domain) === orgDomain(psl, ruaDomain)) return undefined;
  const name = `${domain}._report._dmarc.${ruaDomain}`;
  let txt: string[][];
  try { txt = await resolver.resolveTxt(name); } catch (e) { return `no ${name} TXT record (${(e as Error).message}): external destination not verified (RFC 7489 section 7.1)`; }
  if (txt.some((r) => /^v\s*=\s*DMARC1\s*(;|$)/.test(r.join('')))) return undefined;
  return `${name} TXT has no v=DMARC1 record: external destination not verified (RFC 7489 section 7.1)`;
}

export interface DmarcSendDeps { cleanup: CleanupClient; resolver?: DnsResolver; dryRun?: boolean }

/** Send (or with dryRun, only check) the reports of one day; one line per domain and address. */
export async function sendDmarcReports(config: MainConfig, day: string, deps: DmarcSendDeps): Promise<string[]> {
  const resolver = deps.resolver ?? dnsResolverFromConfig(config);
  const out: string[] = [];
  for (const [domain, r] of dmarcReportsFor(config, day)) {
    const targets = parseRua(r.rua);
    if (!targets.length) { out.push(`${domain}: no rua=mailto: in its DMARC record, no report`); continue; }
    for (const t of targets) {
      const refusal = await externalDestinationRefusal(config, domain, t.domain, resolver);
      if (refusal) { out.push(`${domain}: not sent to ${t.address}: ${refusal}`); continue; }
      const msg = reportMessage(config, r, t.address);
      if (t.maxSize !== undefined && msg.length > t.maxSize) { out.push(`${domain}: not sent to ${t.address}: ${msg.length} bytes is over its limit of ${t.maxSize} (rua !size)`); continue; }
      if (deps.dryRun) { out.push(`${domain}: report ${r.reportId} (${r.messages} messages, ${r.records} records, ${msg.length} bytes) would go to ${t.address}`); continue; }
      const res = await submitReportMail(config, deps.cleanup, config.get('postern_dmarc_report_from'), t.address, msg);
      out.push('refused' in res ? `${domain}: report to ${t.address} refused by cleanup: ${res.refused}` : `${domain}: report ${r.reportId} queued as ${res.queueId} to ${t.address}`);
    }
  }
  return out;
}

export function dmarcrepService(cleanup: CleanupClient): ServiceImpl {
  return {
    name: 'dmarcrep',
    async start(ctx: ServiceContext): Promise<RunningService> {
      const loop = scheduleDaily(ctx.config.get('postern_dmarc_directory'), async (day) => {
        for (const l of await sendDmarcReports(ctx.config, day, { cleanup })) ctx.log.info(`DMARC report ${day}: ${l}`);
      }, (m) => ctx.log.warn(`DMARC ${m}`));
      return { async stop() { loop.stop(); } };
    },
  };
}
