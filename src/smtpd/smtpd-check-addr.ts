/**
 * smtpd-check-addr - the host and address predicates behind smtpd's restrictions, each after
 * the Postfix routine named beside it (mynetworks-style lists are global/namadr-list.ts):
 *
 *  - dnsStatus(): Postfix dns_lookup_l(name, A/AAAA/MX) as reject_unknown_helo_hostname and
 *    reject_unknown_{sender,recipient}_domain use it, through an injectable resolver (node:dns
 *    Resolver with setServers()): found / not found (NXDOMAIN, no records) / null MX / retry.
 *  - nonFqdnDomain(), invalidHeloHostname(): reject_non_fqdn_*, reject_invalid_helo_hostname.
 */
import { validHostaddr, validHostname, validMailhostAddr } from '../global/address-syntax.ts';

/** What a DNS lookup needs: node:dns's Resolver, or src/util/dns-resolver.ts's DnsResolver. */
export interface DnsResolver {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  /** check_*_ns_access (absent: those restrictions answer DUNNO with a warning). */
  resolveNs?(name: string): Promise<string[]>;
}

export type DnsStatus = 'ok' | 'notfound' | 'nullmx' | 'retry';

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

/**
 * dns_lookup_l(name, MX then A/AAAA): does the name exist as a mail domain? A null MX
 * (RFC 7505: one MX with exchange ".") says it takes no mail. Any other error is "retry".
 */
export async function dnsStatus(dns: DnsResolver, name: string, mx: boolean): Promise<DnsStatus> {
  let retry = false;
  const classify = (e: unknown): void => {
    // src/util/dns-resolver.ts DnsError (kind) or a raw node:dns error (code).
    const kind = (e as { kind?: string }).kind;
    if (kind !== undefined) { if (kind === 'TEMP') retry = true; return; }
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (!NOT_FOUND.has(code)) retry = true;
  };
  if (mx) {
    try {
      const rr = await dns.resolveMx(name);
      if (rr.length === 1 && (rr[0]!.exchange === '' || rr[0]!.exchange === '.')) return 'nullmx';
      if (rr.length > 0) return 'ok';
    } catch (e) { classify(e); }
  }
  for (const f of [dns.resolve4, dns.resolve6]) {
    try {
      if ((await f.call(dns, name)).length > 0) return 'ok';
    } catch (e) { classify(e); }
  }
  return retry ? 'retry' : 'notfound';
}

/** Truncate a host name ending in one dot (not dot-dot): Postfix dup_if_truncate(). */
export function truncateDot(name: string): string {
  return name.length > 1 && name.endsWith('.') && !name.endsWith('..') ? name.slice(0, -1) : name;
}

/** reject_non_fqdn_address(): is the domain of this address not fully qualified? */
export function nonFqdnAddress(addr: string): boolean {
  const at = addr.lastIndexOf('@');
  const domain = at < 0 ? '' : addr.slice(at + 1);
  if (domain.startsWith('[') && domain.endsWith(']')) return false;
  const d = truncateDot(domain);
  return d === '' || !validHostname(d) || !d.includes('.');
}

/** reject_non_fqdn_hostname(): not a valid host name with a dot. */
export function nonFqdnHostname(name: string): boolean {
  const d = truncateDot(name);
  return !validHostname(d) || !d.includes('.');
}

/** reject_invalid_hostname(): neither a host name nor (back compat) a bare address. */
export function invalidHostname(name: string): boolean {
  const d = truncateDot(name);
  return !validHostname(d) && !validHostaddr(d);
}

/** reject_invalid_hostaddr(): a `[...]` HELO argument must hold a valid address. */
export function invalidHostaddr(name: string): boolean {
  const inner = name.startsWith('[') && name.endsWith(']') && name.length > 2 ? name.slice(1, -1) : name;
  return validMailhostAddr(inner) === undefined;
}
