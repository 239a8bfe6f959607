/**
 * dmarc-report-xml - the DMARC aggregate report (RFC 7489 §7.2.1 and the XML schema of its
 * Appendix C) of one day of recorded evaluations (dmarc-record.ts), one per policy domain, and
 * the rua tag's URIs (§6.2 with the "!size" suffix of §6.4).
 *
 * DESCRIPTION
 *   feedback: report_metadata (org_name, email, report_id, date_range begin/end in seconds
 *   since the epoch, UTC), policy_published (domain, adkim, aspf, p, sp, pct: the record as
 *   last seen that day), then one record per distinct (source_ip, disposition, DMARC dkim and
 *   spf results, header_from, envelope_from, auth results) with its count: row (source_ip,
 *   count, policy_evaluated: disposition, dkim, spf = pass when aligned, reason sampled_out or
 *   local_policy when the disposition is less than the policy), identifiers
 *   (header_from, envelope_from), auth_results (dkim: domain, selector, result; spf: domain,
 *   scope, result). Result words outside the schema's enumerations become the nearest one
 *   (policy → permerror for spf...). Text is XML-escaped.
 */
import type { DmarcEvaluation } from './dmarc-record.ts';

export interface DmarcReport {
  domain: string;
  reportId: string;
  rua: string;
  /** Seconds since the epoch. */
  begin: number;
  end: number;
  xml: string;
  records: number;
  messages: number;
}

export interface DmarcReportOptions {
  org: string;
  email: string;
  day: string;
  reportId: (domain: string) => string;
}

const esc = (s: string | number) => String(s).replace(/[&<>"']/g, (c) => `&${({ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' } as Record<string, string>)[c]};`).replace(/[\x00-\x08\x0b\x0c\x0e-\x1f]/g, '');
const DKIM_RESULTS = new Set(['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror']);
const SPF_RESULTS = new Set(['none', 'neutral', 'pass', 'fail', 'softfail', 'temperror', 'permerror']);
const DISPOSITIONS = new Set(['none', 'quarantine', 'reject']);
const pol = (s: string) => (DISPOSITIONS.has(s) ? s : 'none');

export function buildDmarcReports(evs: DmarcEvaluation[], o: DmarcReportOptions): Map<string, DmarcReport> {
  const begin = Math.floor(Date.parse(`${o.day}T00:00:00Z`) / 1000);
  const end = begin + 86399;
  const byDomain = new Map<string, DmarcEvaluation[]>();
  for (const e of evs) {
    const d = e.policy.domain.toLowerCase();
    if (!byDomain.has(d)) byDomain.set(d, []);
    byDomain.get(d)!.push(e);
  }
  const out = new Map<string, DmarcReport>();
  for (const [domain, list] of byDomain) {
    const last = list[list.length - 1]!.policy;
    const rows = new Map<string, { e: DmarcEvaluation; count: number }>();
    for (const e of list) {
      const key = JSON.stringify([e.ip, e.disposition, e.reason, e.dkimAligned, e.spfAligned, e.from, e.spf, e.dkim]);
      const r = rows.get(key);
      if (r) r.count++; else rows.set(key, { e, count: 1 });
    }
    const reportId = o.reportId(domain);
    const x: string[] = ['<?xml version="1.0" encoding="UTF-8"?>', '<feedback>',
      '  <report_metadata>', `    <org_name>${esc(o.org)}</org_name>`, `    <email>${esc(o.email)}</email>`, `    <report_id>${esc(reportId)}</report_id>`,
      `    <date_range>`, `      <begin>${begin}</begin>`, `      <end>${end}</end>`, `    </date_range>`, '  </report_metadata>',
      '  <policy_published>', `    <domain>${esc(domain)}</domain>`, `    <adkim>${last.adkim === 's' ? 's' : 'r'}</adkim>`, `    <aspf>${last.aspf === 's' ? 's' : 'r'}</aspf>`,
      `    <p>${pol(last.p)}</p>`, `    <sp>${pol(last.sp)}</sp>`, `    <pct>${Number.isInteger(last.pct) ? last.pct : 100}</pct>`, '  </policy_published>'];
    for (const { e, count } of rows.values()) {
      x.push('  <record>', '    <row>', `      <source_ip>${esc(e.ip)}</source_ip>`, `      <count>${count}</count>`, '      <policy_evaluated>',
        `        <disposition>${pol(e.disposition)}</disposition>`, `        <dkim>${e.dkimAligned ? 'pass' : 'fail'}</dkim>`, `        <spf>${e.spfAligned ? 'pass' : 'fail'}</spf>`,
        ...(e.reason === 'sampled_out' || e.reason === 'local_policy' ? ['        <reason>', `          <type>${e.reason}</type>`, '        </reason>'] : []),
        '      </policy_evaluated>', '    </row>', '    <identifiers>', `      <header_from>${esc(e.from)}</header_from>`, `      <envelope_from>${esc(e.spf.scope === 'mfrom' ? e.spf.domain : '')}</envelope_from>`, '    </identifiers>',
        '    <auth_results>');
      for (const k of e.dkim) {
        x.push('      <dkim>', `        <domain>${esc(k.domain)}</domain>`, ...(k.selector ? [`        <selector>${esc(k.selector)}</selector>`] : []),
          `        <result>${DKIM_RESULTS.has(k.result) ? k.result : 'permerror'}</result>`, '      </dkim>');
      }
      x.push('      <spf>', `        <domain>${esc(e.spf.domain)}</domain>`, `        <scope>${e.spf.scope === 'helo' ? 'helo' : 'mfrom'}</scope>`,
        `        <result>${SPF_RESULTS.has(e.spf.result) ? e.spf.result : 'permerror'}</result>`, '      </spf>', '    </auth_results>', '  </record>');
    }
    x.push('</feedback>', '');
    out.set(domain, { domain, reportId, rua: last.rua ?? '', begin, end, xml: x.join('\n'), records: rows.size, messages: list.length });
  }
  return out;
}

export interface RuaTarget { address: string; domain: string; /** bytes; undefined = no limit */ maxSize?: number }

/** The mailto: URIs of a rua tag (§6.2, "!size" with k/m/g/t units, §6.4); other schemes are skipped. */
export function parseRua(rua: string): RuaTarget[] {
  const out: RuaTarget[] = [];
  for (const raw of rua.split(',').slice(0, 10)) {
    const u = raw.trim();
    const m = /^mailto:([^!\s]+?)(?:!(\d{1,12})([kmgt]?))?$/i.exec(u);
    if (!m) continue;
    let address: string;
    try { address = decodeURIComponent(m[1]!.split('?')[0]!); } catch { continue; }
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1 || /[\s<>]/.test(address)) continue;
    const unit = ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as Record<string, number>)[(m[3] ?? '').toLowerCase()]!;
    out.push({ address, domain: address.slice(at + 1).toLowerCase(), ...(m[2] ? { maxSize: Number(m[2]) * unit } : {}) });
  }
  return out;
}
