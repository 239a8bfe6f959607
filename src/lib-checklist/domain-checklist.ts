/**
 * domain-checklist - the seed's deliverability checklist for one domain, as `postern dns DOMAIN
 * --check` runs it (the same plan, the same DNS checks, the same SIGNING line), with for each
 * line a colour and the fix: the zone line to publish (dns-plan.ts's zoneLine) or the command to
 * run. The web console shows it; cli/postdns.ts prints the same CheckLines.
 *
 *   green  OK
 *   amber  WARNING, or a line that does not count for the exit status (required = false)
 *   red    MISSING, MISMATCH or ERROR on a required line
 *
 * Defaults where the command takes options: selector "postern", the host addresses of main.cf
 * (proxy_interfaces, inet_interfaces), MTA-STS when DOMAIN is in postern_mta_sts_domains,
 * TLS-RPT when postern_tlsrpt_reporting = yes. Never creates DKIM keys.
 */
import { isIP } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import { publishedMtaSts, mtaStsDomains } from '../global/mta-sts-policy.ts';
import { checkDepsFromConfig, checkPublished, type CheckDeps, type CheckLine } from './dns-check.ts';
import { checkDomainName, dnsDkimKeys, hostAddresses, planRecords, reverseName, zoneLine, type DnsDkimKeys } from './dns-plan.ts';

/**
 * The SIGNING line: does Postern sign DOMAIN's mail (postern_dkim_signing = yes and a usable key
 * in the signing table)? The DKIM lines say whether DNS has these keys.
 */
export function signingCheck(cf: MainConfig, domain: string, dk: DnsDkimKeys): CheckLine {
  const base = { what: 'SIGNING', name: domain, required: true };
  if (!cf.bool('postern_dkim_signing')) return { ...base, status: 'MISMATCH', detail: `postern_dkim_signing = no in ${cf.file}: nothing is signed` };
  const active = dk.keys.filter((k) => k.active !== false);
  if (active.length === 0) {
    return dk.problems.length
      ? { ...base, status: 'ERROR', detail: `no usable key: ${dk.problems[0]}` }
      : { ...base, status: 'MISSING', detail: `no key, mail from ${domain} goes out unsigned; run: postern dkim keygen ${domain}` };
  }
  const sels = active.map((k) => `s=${k.selector} (${k.algorithm === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256'})`).join(', ');
  return { ...base, status: 'OK', detail: `active: signs with ${sels} from ${dk.source}` };
}

export type ChecklistColour = 'green' | 'amber' | 'red';
export interface ChecklistRow extends CheckLine { colour: ChecklistColour; fix: string }

export function colourOf(l: CheckLine): ChecklistColour {
  if (l.status === 'OK') return 'green';
  return l.required && l.status !== 'WARNING' ? 'red' : 'amber';
}

export async function domainChecklist(cf: MainConfig, domain: string, deps: CheckDeps = checkDepsFromConfig(cf)): Promise<ChecklistRow[]> {
  const d = domain.toLowerCase().replace(/\.$/, '');
  const bad = checkDomainName(d);
  if (bad) throw new Error(bad);
  const myhostname = cf.get('myhostname').toLowerCase();
  const { addresses } = hostAddresses(cf, []);
  const dk = await dnsDkimKeys(cf, cf.get('postern_dkim_key_directory'), d, 'postern', false);
  const mtaSts = mtaStsDomains(cf).includes(d);
  const plan = {
    domain: d, myhostname, addresses, dkim: dk.keys, mtaSts, tlsRpt: cf.bool('postern_tlsrpt_reporting'),
    ...(mtaSts ? { stsId: publishedMtaSts(cf).id } : {}),
  };
  const lines = await checkPublished({ ...plan, certFile: cf.get('smtpd_tls_cert_file') }, deps);
  lines.push(signingCheck(cf, d, dk));
  const records = planRecords(plan);
  return lines.map((l) => {
    const colour = colourOf(l);
    let fix = '';
    if (colour !== 'green') {
      const r = records.find((x) => x.what === l.what && x.name === l.name);
      if (r) fix = `publish: ${zoneLine(r)}`;
      else if (l.what === 'PTR' && isIP(l.name)) fix = `ask the provider of the address for: ${reverseName(l.name)}. IN PTR ${myhostname}.`;
      else if (l.what === 'A') fix = `publish: ${myhostname}. IN A <this host's public address>`;
      else if (l.what === 'SIGNING') fix = `postern dkim keygen ${d}; set postern_dkim_signing = yes`;
      else if (l.what === 'TLS') fix = 'a certificate from a CA: postern_acme_directory (docs/acme.md)';
      else fix = l.detail;
    }
    return { ...l, colour, fix };
  });
}
