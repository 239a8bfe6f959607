/**
 * tls-rpt - SMTP TLS Reporting (RFC 8460): THE CONTRACT between the smtp client, which records
 * the TLS outcome of each session per policy domain, and the report sender (tlsrpt/tlsrpt.ts,
 * `postern tlsrpt`), which turns a day of outcomes into one aggregate JSON report per domain.
 *
 * Recording: one JSON object per line in $postern_tlsrpt_directory/YYYY-MM-DD.jsonl (UTC day of
 * the session), appended with O_APPEND (lines under PIPE_BUF-ish sizes, so concurrent writers —
 * qmgr's thread, child processes — do not interleave). Fields (TlsRptEvent): the policy domain
 * (the recipient domain of an MX delivery), the policy type (sts, tlsa, no-policy-found, §4.4
 * "policy-type"), the policy text (policy-string), the MX patterns (mx-host), success or a
 * result type of §4.3, the sending and receiving IP addresses and the MX host name.
 *
 * Report (§4.4): organization-name, date-range (start/end-datetime, RFC 3339), contact-info,
 * report-id, and per policy: policy {policy-type, policy-string, policy-domain, mx-host},
 * summary {total-successful-session-count, total-failure-session-count}, failure-details
 * [{result-type, sending-mta-ip, receiving-mx-hostname, receiving-ip, failed-session-count,
 * additional-information}].
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** §4.3 result types. */
export const RESULT_TYPES = [
  'starttls-not-supported', 'certificate-host-mismatch', 'certificate-expired', 'certificate-not-trusted', 'validation-failure',
  'tlsa-invalid', 'dnssec-invalid', 'dane-required', 'sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid',
] as const;
export type TlsRptResultType = (typeof RESULT_TYPES)[number];
export type TlsRptPolicyType = 'sts' | 'tlsa' | 'no-policy-found';

export interface TlsRptEvent {
  /** ISO time of the session. */
  t: string;
  domain: string;
  policyType: TlsRptPolicyType;
  policyString?: string[];
  mxHost?: string[];
  ok: boolean;
  resultType?: TlsRptResultType;
  sendingIp?: string;
  receivingIp?: string;
  receivingMx?: string;
  info?: string;
}

/** Append one outcome. Never throws (reporting must not affect delivery). */
export function recordTlsRpt(dir: string, ev: Omit<TlsRptEvent, 't'>, now = new Date()): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o750 });
    const line = JSON.stringify({ t: now.toISOString(), ...ev, ...(ev.info ? { info: ev.info.slice(0, 300) } : {}) });
    if (line.length > 3500) return;
    appendFileSync(join(dir, `${now.toISOString().slice(0, 10)}.jsonl`), line + '\n', { mode: 0o640 });
  } catch { /* a full disk or a bad directory loses a statistic, never mail */ }
}

/** The outcomes of one UTC day (YYYY-MM-DD; the file, or once reported DAY.jsonl.sent); malformed lines are skipped. */
export function readTlsRptDay(dir: string, day: string): TlsRptEvent[] {
  let text: string;
  try { text = readFileSync(join(dir, `${day}.jsonl`), 'utf8'); } catch {
    try { text = readFileSync(join(dir, `${day}.jsonl.sent`), 'utf8'); } catch { return []; }
  }
  const out: TlsRptEvent[] = [];
  for (const l of text.split('\n')) {
    if (!l) continue;
    try {
      const e = JSON.parse(l) as TlsRptEvent;
      if (typeof e.domain === 'string' && typeof e.ok === 'boolean' && ['sts', 'tlsa', 'no-policy-found'].includes(e.policyType)) out.push(e);
    } catch { /* torn or foreign line */ }
  }
  return out;
}

export interface TlsRptReportOptions {
  organization: string;
  contact: string;
  day: string;
  /** Unique per report (§4.4 report-id). */
  reportId: (domain: string) => string;
}

/** One RFC 8460 §4.4 report per policy domain. */
export function buildTlsRptReports(events: TlsRptEvent[], o: TlsRptReportOptions): Map<string, Record<string, unknown>> {
  const byDomain = new Map<string, TlsRptEvent[]>();
  for (const e of events) {
    const d = e.domain.toLowerCase();
    if (!byDomain.has(d)) byDomain.set(d, []);
    byDomain.get(d)!.push(e);
  }
  const out = new Map<string, Record<string, unknown>>();
  for (const [domain, evs] of byDomain) {
    const policies = new Map<string, { policy: Record<string, unknown>; ok: number; fail: number; details: Map<string, Record<string, unknown>> }>();
    for (const e of evs) {
      const key = JSON.stringify([e.policyType, e.policyString ?? [], e.mxHost ?? []]);
      let p = policies.get(key);
      if (!p) {
        const policy: Record<string, unknown> = { 'policy-type': e.policyType, 'policy-domain': domain };
        if (e.policyString?.length) policy['policy-string'] = e.policyString;
        if (e.mxHost?.length) policy['mx-host'] = e.mxHost;
        p = { policy, ok: 0, fail: 0, details: new Map() };
        policies.set(key, p);
      }
      if (e.ok) { p.ok++; continue; }
      p.fail++;
      const dk = JSON.stringify([e.resultType, e.sendingIp, e.receivingMx, e.receivingIp, e.info]);
      const d = p.details.get(dk);
      if (d) { d['failed-session-count'] = (d['failed-session-count'] as number) + 1; continue; }
      p.details.set(dk, {
        'result-type': e.resultType ?? 'validation-failure',
        ...(e.sendingIp ? { 'sending-mta-ip': e.sendingIp } : {}),
        ...(e.receivingMx ? { 'receiving-mx-hostname': e.receivingMx } : {}),
        ...(e.receivingIp ? { 'receiving-ip': e.receivingIp } : {}),
        'failed-session-count': 1,
        ...(e.info ? { 'additional-information': e.info } : {}),
      });
    }
    out.set(domain, {
      'organization-name': o.organization,
      'date-range': { 'start-datetime': `${o.day}T00:00:00Z`, 'end-datetime': `${o.day}T23:59:59Z` },
      'contact-info': o.contact,
      'report-id': o.reportId(domain),
      policies: [...policies.values()].map((p) => ({
        policy: p.policy,
        summary: { 'total-successful-session-count': p.ok, 'total-failure-session-count': p.fail },
        ...(p.details.size ? { 'failure-details': [...p.details.values()] } : {}),
      })),
    });
  }
  return out;
}

/** The rua URIs of a `_smtp._tls` TXT record (§3: "v=TLSRPTv1; rua=mailto:a@b,https://..."). */
export function tlsRptRua(txt: string[][]): string[] | undefined {
  const recs = txt.map((r) => r.join('')).filter((r) => /^v=TLSRPTv1\s*(;|$)/.test(r));
  if (recs.length !== 1) return undefined;
  const m = /(?:^|;)\s*rua=([^;]*)/.exec(recs[0]!);
  if (!m) return undefined;
  const uris = m[1]!.split(',').map((u) => u.trim()).filter((u) => /^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/i.test(u));
  return uris.length ? uris : undefined;
}
