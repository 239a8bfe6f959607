/**
 * dns-check - `postern dns DOMAIN --check` and the web console's checklist: asks the resolver of
 * main.cf's postern_dns_servers (the system resolver when empty) for each record of the plan
 * (dns-plan.ts) and for the PTR of each host address, and reads the TLS certificate; one
 * CheckLine per record (the command, cli/postdns.ts, prints them as
 * `WHAT NAME: OK|MISSING|MISMATCH|ERROR|WARNING - detail`).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import { DnsError, dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import { planRecords, reverseName, type DnsPlanOptions, type DnsRecord } from './dns-plan.ts';

// ---- --check ---------------------------------------------------------------------------------

export type CheckStatus = 'OK' | 'MISSING' | 'MISMATCH' | 'ERROR' | 'WARNING';

export interface CheckLine {
  what: string;
  name: string;
  status: CheckStatus;
  detail: string;
  required: boolean;
}

export function formatCheck(c: CheckLine): string {
  return `${c.what} ${c.name}: ${c.status}${c.detail ? ' - ' + c.detail : ''}`;
}

export interface CheckDeps {
  resolver: DnsResolver;
  /** PTR lookup (node:dns Resolver.reverse on the same servers). */
  reverse: (address: string) => Promise<string[]>;
}

function lookupFailure(what: string, name: string, e: unknown): CheckLine {
  if (e instanceof DnsError && (e.kind === 'NOTFOUND' || e.kind === 'NODATA')) {
    return { what, name, status: 'MISSING', detail: e.kind === 'NOTFOUND' ? 'the name does not exist' : `no ${e.qtype} record`, required: true };
  }
  return { what, name, status: 'ERROR', detail: `lookup failed: ${(e as Error).message}`, required: true };
}

async function txt(deps: CheckDeps, name: string): Promise<string[]> {
  return (await deps.resolver.resolveTxt(name)).map((chunks) => chunks.join(''));
}

/** DKIM/DMARC tag=value lists (RFC 6376 §3.2): tags without spaces, case of names kept. */
function tags(v: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of v.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) m.set(part.slice(0, eq).trim(), part.slice(eq + 1).replace(/\s+/g, ''));
  }
  return m;
}

function normalHost(h: string): string { return h.toLowerCase().replace(/\.$/, ''); }

async function checkRecord(r: DnsRecord, o: DnsPlanOptions, deps: CheckDeps): Promise<CheckLine> {
  const base = { what: r.what, name: r.name, required: r.required };
  try {
    if (r.type === 'MX') {
      const mx = await deps.resolver.resolveMx(r.name);
      const list = mx.map((m) => `${m.priority} ${m.exchange}`).join(', ');
      if (mx.some((m) => normalHost(m.exchange) === normalHost(o.myhostname))) return { ...base, status: 'OK', detail: list };
      return { ...base, status: 'MISMATCH', detail: `published ${list}; none is ${o.myhostname}` };
    }
    if (r.type === 'A' || r.type === 'AAAA') {
      const got = await (r.type === 'A' ? deps.resolver.resolve4(r.name) : deps.resolver.resolve6(r.name));
      if (got.includes(r.value)) return { ...base, status: 'OK', detail: r.value };
      return { ...base, status: 'MISMATCH', detail: `published ${got.join(', ')}, this host is ${r.value}` };
    }
    const all = await txt(deps, r.name);
    if (r.what === 'SPF') return spfCheck(base, all, o);
    if (r.what === 'DKIM') {
      // v= is only RECOMMENDED in a key record (RFC 6376 §3.6.1): compare p= of every TXT record.
      const want = tags(r.value).get('p');
      if (all.some((t) => tags(t).get('p') === want)) return { ...base, status: 'OK', detail: `k=${tags(r.value).get('k')}` };
      if (!all.some((t) => tags(t).has('p'))) return { ...base, status: 'MISSING', detail: 'no TXT record with a p= key' };
      return { ...base, status: 'MISMATCH', detail: `published p= differs from the key in ${o.dkim.find((k) => r.name.startsWith(k.selector + '.'))?.file ?? 'the key file'}` };
    }
    const prefix = /^v=[A-Za-z0-9]+/.exec(r.value)![0].toLowerCase();
    const mine = all.filter((t) => t.replace(/\s+/g, '').toLowerCase().startsWith(prefix + ';') || t.trim().toLowerCase() === prefix);
    if (mine.length === 0) return { ...base, status: 'MISSING', detail: `no TXT record starting with ${prefix}` };
    if (mine.length > 1) return { ...base, status: 'MISMATCH', detail: `${mine.length} ${prefix} records (there must be exactly one)` };
    if (r.what === 'DMARC') {
      const p = tags(mine[0]!).get('p');
      if (!p || !['none', 'quarantine', 'reject'].includes(p)) return { ...base, status: 'MISMATCH', detail: `"${mine[0]}" has no valid p= (none, quarantine or reject; RFC 7489 §6.3)` };
      return { ...base, status: 'OK', detail: `p=${p}` };
    }
    return { ...base, status: 'OK', detail: mine[0]! };
  } catch (e) {
    return { ...lookupFailure(r.what, r.name, e), required: r.required };
  }
}

/** RFC 7208 §4.5: exactly one v=spf1 record; it must let this host send (mx, a, or our ip4/ip6). */
function spfCheck(base: { what: string; name: string; required: boolean }, all: string[], o: DnsPlanOptions): CheckLine {
  const spf = all.filter((t) => /^v=spf1(\s|$)/i.test(t));
  if (spf.length === 0) return { ...base, status: 'MISSING', detail: 'no TXT record starting with v=spf1' };
  if (spf.length > 1) return { ...base, status: 'MISMATCH', detail: `${spf.length} v=spf1 records: receivers treat that as a permanent error (RFC 7208 §4.5)` };
  const terms = spf[0]!.toLowerCase().split(/\s+/).slice(1);
  const allTerm = terms.find((t) => /^[-~?+]?all$/.test(t));
  if (allTerm === 'all' || allTerm === '+all') return { ...base, status: 'MISMATCH', detail: `"${spf[0]}" ends in ${allTerm}: it lets anyone send as ${o.domain}; use -all` };
  const ok = terms.some((t) => t === 'mx' || t === '+mx' || t === 'a' || t === '+a'
    || o.addresses.some((a) => t === `ip4:${a}` || t === `ip6:${a.toLowerCase()}` || t === `+ip4:${a}`));
  if (ok) return { ...base, status: 'OK', detail: spf[0]! };
  if (terms.some((t) => /^\+?(include:|redirect=)/.test(t))) return { ...base, status: 'WARNING', detail: `"${spf[0]}" delegates (include/redirect): not followed, check that it covers ${o.myhostname}` };
  return { ...base, status: 'MISMATCH', detail: `"${spf[0]}" does not name this host (add mx or ip4:/ip6: of ${o.myhostname})` };
}

/** PTR of each address names myhostname, and myhostname resolves back to the address (FCrDNS). */
async function ptrChecks(o: DnsPlanOptions, deps: CheckDeps): Promise<CheckLine[]> {
  let addrs = o.addresses;
  if (addrs.length === 0) {
    addrs = [];
    for (const f of [deps.resolver.resolve4, deps.resolver.resolve6]) {
      try { addrs.push(...await f.call(deps.resolver, o.myhostname)); } catch { /* reported by the A line */ }
    }
    if (addrs.length === 0) return [{ what: 'PTR', name: o.myhostname, status: 'MISSING', detail: `no address known for ${o.myhostname} (publish its A record or give --ip ADDR)`, required: true }];
  }
  const out: CheckLine[] = [];
  for (const a of addrs) {
    const base = { what: 'PTR', name: a, required: true };
    let names: string[];
    try {
      names = await deps.reverse(a);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      out.push(code === 'ENOTFOUND' || code === 'ENODATA'
        ? { ...base, status: 'MISSING', detail: `no PTR record for ${reverseName(a)}: ask the address's provider for "${o.myhostname}"` }
        : { ...base, status: 'ERROR', detail: `PTR lookup failed: ${(e as Error).message}` });
      continue;
    }
    if (!names.some((n) => normalHost(n) === normalHost(o.myhostname))) {
      out.push({ ...base, status: 'MISMATCH', detail: `PTR names ${names.join(', ')}, not myhostname ${o.myhostname}` });
      continue;
    }
    let forward: string[] = [];
    try { forward = await (isIP(a) === 4 ? deps.resolver.resolve4(o.myhostname) : deps.resolver.resolve6(o.myhostname)); } catch { /* empty */ }
    out.push(forward.includes(a)
      ? { ...base, status: 'OK', detail: `${o.myhostname}, which resolves back to ${a}` }
      : { ...base, status: 'MISMATCH', detail: `PTR names ${o.myhostname} but its ${isIP(a) === 4 ? 'A' : 'AAAA'} record does not list ${a}` });
  }
  return out;
}

/**
 * The seed checklist item 6, from the certificate the services present (smtpd_tls_cert_file, the
 * file the ACME client installs and every service reloads): valid now, naming myhostname and
 * every other name given (the MTA-STS policy host with --mta-sts), issued by a CA, and more
 * than 14 days left (less: WARNING, with the command that renews).
 */
export function certCheck(file: string, myhostname: string, now = new Date(), names: string[] = []): CheckLine {
  const base = { what: 'TLS', name: file || 'smtpd_tls_cert_file', required: true };
  if (!file) return { ...base, status: 'MISSING', detail: 'smtpd_tls_cert_file is empty: no STARTTLS' };
  let x: X509Certificate;
  try { x = new X509Certificate(readFileSync(file)); } catch (e) { return { ...base, status: 'MISSING', detail: `cannot read a certificate: ${(e as Error).message}` }; }
  if (new Date(x.validTo) < now || new Date(x.validFrom) > now) return { ...base, status: 'MISMATCH', detail: `not valid now (${x.validFrom} to ${x.validTo})` };
  if (!x.checkHost(myhostname)) return { ...base, status: 'MISMATCH', detail: `does not name ${myhostname} (subject ${x.subject.replace(/\n/g, ', ')})` };
  // checkIssued() wants keyCertSign, which a leaf certificate lacks: compare names and verify the signature.
  if (x.issuer === x.subject && x.verify(x.publicKey)) return { ...base, status: 'WARNING', detail: `self-signed: get one from a CA for ${myhostname} (postern_acme_directory, docs/acme.md)`, required: false };
  const missing = names.filter((n) => !x.checkHost(n));
  if (missing.length) return { ...base, status: 'WARNING', detail: `does not name ${missing.join(', ')} (add to postern_acme_names, or postern_mta_sts_domains with ACME)`, required: false };
  const days = Math.floor((new Date(x.validTo).getTime() - now.getTime()) / 86400_000);
  if (days < 14) return { ...base, status: 'WARNING', detail: `issued by ${x.issuer.replace(/\n/g, ', ')}, but only ${days} days left (until ${x.validTo}): postern cert renew`, required: false };
  return { ...base, status: 'OK', detail: `issued by ${x.issuer.replace(/\n/g, ', ')}, valid until ${x.validTo} (${days} days left)` };
}

/**
 * The published MX hosts of the domain that are this host (they resolve to one of its
 * addresses), other than myhostname: clients reach us by those names, so the certificate must
 * carry them too. Lookup failures give none (the MX row reports them).
 */
async function ourMxNames(o: DnsPlanOptions, deps: CheckDeps): Promise<string[]> {
  if (o.addresses.length === 0) return [];
  let mx: { exchange: string }[] = [];
  try { mx = await deps.resolver.resolveMx(o.domain); } catch { return []; }
  const out: string[] = [];
  for (const m of mx.slice(0, 20)) {
    const host = m.exchange.toLowerCase().replace(/\.$/, '');
    if (!host || host === o.myhostname.toLowerCase()) continue;
    const addrs: string[] = [];
    for (const f of [deps.resolver.resolve4, deps.resolver.resolve6]) { try { addrs.push(...await f.call(deps.resolver, host)); } catch { /* none */ } }
    if (addrs.some((a) => o.addresses.includes(a))) out.push(host);
  }
  return out;
}

export async function checkPublished(o: DnsPlanOptions & { certFile: string }, deps: CheckDeps): Promise<CheckLine[]> {
  const lines: CheckLine[] = [];
  const recs = planRecords(o);
  for (const r of recs) lines.push(await checkRecord(r, o, deps));
  if (o.addresses.length === 0) {
    // No configured address: myhostname must at least resolve.
    const got: string[] = [];
    for (const f of [deps.resolver.resolve4, deps.resolver.resolve6]) { try { got.push(...await f.call(deps.resolver, o.myhostname)); } catch { /* none */ } }
    lines.splice(1, 0, got.length > 0
      ? { what: 'A', name: o.myhostname, status: 'OK', detail: got.join(', '), required: true }
      : { what: 'A', name: o.myhostname, status: 'MISSING', detail: 'no A or AAAA record', required: true });
  }
  lines.push(...await ptrChecks(o, deps));
  lines.push(certCheck(o.certFile, o.myhostname, new Date(), [...await ourMxNames(o, deps), ...(o.mtaSts ? [`mta-sts.${o.domain}`] : [])]));
  return lines;
}

export function checkDepsFromConfig(cf: MainConfig): CheckDeps {
  const resolver = dnsResolverFromConfig(cf);
  const r = new Resolver({ timeout: 2000, tries: 2 });
  if (resolver.servers.length > 0) r.setServers(resolver.servers as string[]);
  return { resolver, reverse: (a) => r.reverse(a) };
}
