/**
 * tlsrpt-summary - what the TLS-RPT reports other servers send about our domains say
 * (`postern tlsrpt summary FILE...`): each FILE is a report as JSON (RFC 8460 §4.4), gzipped
 * JSON (.json.gz, §5.3), or a whole report mail (§5.3: the application/tlsrpt+gzip or
 * application/tlsrpt+json part, base64), e.g. a Maildir file of the rua mailbox.
 *
 * One line per policy: reporter, day, policy domain and type, sessions that succeeded and
 * failed, then each failure detail (result type, receiving MX and IP, count). Input is
 * untrusted: at most 10 MiB per file and 10 MiB after decompression, JSON of the wrong shape is
 * reported as such, never trusted.
 */
import { readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

const MAX = 10 << 20;

function decode(buf: Buffer): unknown {
  let b = buf;
  if (b[0] === 0x1f && b[1] === 0x8b) b = gunzipSync(b, { maxOutputLength: MAX });
  const text = b.toString('utf8').trimStart();
  if (text.startsWith('{')) return JSON.parse(text);
  // A report mail: the application/tlsrpt+gzip (or +json) body part, base64.
  const m = /Content-Type:\s*application\/tlsrpt\+(gzip|json)[\s\S]*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]+?)(?:\r?\n--|\s*$)/i.exec(text);
  if (!m) throw new Error('neither a JSON report nor a mail with an application/tlsrpt part');
  const part = Buffer.from(m[2]!.replace(/\s/g, ''), 'base64');
  return JSON.parse((m[1]!.toLowerCase() === 'gzip' ? gunzipSync(part, { maxOutputLength: MAX }) : part).toString('utf8'));
}

const str = (v: unknown) => (typeof v === 'string' ? v.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) : '?');
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

export function summarizeReport(r: unknown): string[] {
  if (typeof r !== 'object' || r === null || !Array.isArray((r as { policies?: unknown }).policies)) throw new Error('not an RFC 8460 report (no "policies" array)');
  const o = r as Record<string, any>;
  const day = str(o['date-range']?.['start-datetime']).slice(0, 10);
  const out: string[] = [];
  for (const p of (o.policies as unknown[]).slice(0, 1000)) {
    const pol = (p as Record<string, any>)?.policy ?? {};
    const sum = (p as Record<string, any>)?.summary ?? {};
    out.push(`${str(o['organization-name'])} ${day}: ${str(pol['policy-domain'])} ${str(pol['policy-type'])}: ${num(sum['total-successful-session-count'])} successful, ${num(sum['total-failure-session-count'])} failed`);
    const details = (p as Record<string, any>)?.['failure-details'];
    if (Array.isArray(details)) {
      for (const d of details.slice(0, 1000)) {
        out.push(`  ${str(d?.['result-type'])}: ${num(d?.['failed-session-count'])} from ${str(d?.['sending-mta-ip'] ?? '-')} to ${str(d?.['receiving-mx-hostname'] ?? '-')}[${str(d?.['receiving-ip'] ?? '-')}]${d?.['additional-information'] ? ` (${str(d['additional-information'])})` : ''}`);
      }
    }
  }
  return out;
}

export function summarizeFile(file: string): string[] {
  if (statSync(file).size > MAX) throw new Error(`${file}: larger than ${MAX} bytes`);
  return summarizeReport(decode(readFileSync(file)));
}
