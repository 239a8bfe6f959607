/**
 * smtpd-check-addr - the host and address predicates behind smtpd's restrictions, each after
 * the Postfix routine named beside it:
 *
 *  - NamadrList: Postfix namadr_list (util/match_list.c with match_hostname()/match_hostaddr()),
 *    the matcher of mynetworks: `net/len` CIDR blocks, bare or [bracketed] addresses, host names
 *    (`.domain` or, when mynetworks is in parent_domain_matches_subdomains, `domain` for it and
 *    its subdomains), `type:table` (the client name and its parents, then the address, must
 *    be a key), `/file/name` with more patterns, `!pattern` negation.
 *  - dnsStatus(): Postfix dns_lookup_l(name, A/AAAA/MX) as reject_unknown_helo_hostname and
 *    reject_unknown_{sender,recipient}_domain use it, through an injectable resolver (node:dns
 *    Resolver with setServers()): found / not found (NXDOMAIN, no records) / null MX / retry.
 *  - nonFqdnDomain(), invalidHeloHostname(): reject_non_fqdn_*, reject_invalid_helo_hostname.
 */
import { readFileSync } from 'node:fs';
import { addrBytes } from '../util/dict-cidr.ts';
import { ConfigError } from '../global/config-error.ts';
import { splitList } from '../global/mail-conf.ts';
import type { Maps } from '../global/maps.ts';
import { validHostaddr, validHostname, validMailhostAddr } from '../global/address-syntax.ts';

interface Net { bytes: Uint8Array; bits: number }
type Pattern =
  | { negate: boolean; kind: 'net'; net: Net }
  | { negate: boolean; kind: 'name'; text: string }
  | { negate: boolean; kind: 'table'; maps: Maps };

function parseNet(text: string): Net | undefined {
  const slash = text.indexOf('/');
  let a = slash < 0 ? text : text.slice(0, slash);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const bytes = addrBytes(a);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  const bits = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max || !/^\d*$/.test(slash < 0 ? '' : text.slice(slash + 1))) return undefined;
  return { bytes, bits };
}

function inNet(addr: Uint8Array, net: Net): boolean {
  if (addr.length !== net.bytes.length) return false;
  let bits = net.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}

/** Postfix namadr_list: client name/address match lists (mynetworks). */
export class NamadrList {
  readonly paramName: string;
  private readonly patterns: Pattern[];
  private readonly parentStyle: boolean;

  private constructor(paramName: string, patterns: Pattern[], parentStyle: boolean) {
    this.paramName = paramName;
    this.patterns = patterns;
    this.parentStyle = parentStyle;
  }

  /**
   * Parse the (expanded) parameter value. A bad network pattern is a ConfigError naming the
   * parameter (Postfix: "fatal: bad net/mask pattern"); tables are opened with `open`.
   */
  static async create(paramName: string, value: string, parentStyle: boolean,
                      open: (spec: string) => Promise<Maps>, file = 'main.cf'): Promise<NamadrList> {
    const patterns: Pattern[] = [];
    const add = async (raw: string, from: string | undefined, line: number): Promise<void> => {
      let negate = false;
      let text = raw;
      while (text.startsWith('!')) { negate = !negate; text = text.slice(1); }
      if (text === '') return;
      const looksNet = text.startsWith('[') || /^[\d.]+(\/.*)?$/.test(text) || /^[0-9a-fA-F]*:[0-9a-fA-F:.]*(\/.*)?$/.test(text);
      if (looksNet) {
        const net = parseNet(text);
        if (!net) throw new ConfigError(from ?? file, line, `${paramName}: bad net/mask pattern: "${text}"`);
        patterns.push({ negate, kind: 'net', net });
      } else if (text.includes(':')) {
        patterns.push({ negate, kind: 'table', maps: await open(text) });
      } else if (text.startsWith('/') && from === undefined) {
        let body: string;
        try { body = readFileSync(text, 'utf8'); } catch (e) {
          throw new ConfigError(text, 0, `cannot read the patterns of ${paramName}: ${(e as Error).message}`);
        }
        const lines = body.split('\n');
        for (let n = 0; n < lines.length; n++) {
          if (lines[n]!.includes('\0')) throw new ConfigError(text, n + 1, `NUL byte in ${paramName} pattern file`);
          for (const item of splitList(lines[n]!.replace(/#.*/, ''))) await add(negate ? `!${item}` : item, text, n + 1);
        }
      } else {
        patterns.push({ negate, kind: 'name', text: text.toLowerCase() });
      }
    };
    for (const item of splitList(value)) await add(item, undefined, 0);
    return new NamadrList(paramName, patterns, parentStyle);
  }

  get isEmpty(): boolean { return this.patterns.length === 0; }

  /** namadr_list_match(name, addr). Throws a table's DictError. */
  async match(name: string, addr: string): Promise<boolean> {
    const bytes = addrBytes(addr);
    const lc = name.toLowerCase();
    for (const p of this.patterns) {
      if (await this.matchOne(p, lc, addr, bytes)) return !p.negate;
    }
    return false;
  }

  private async matchOne(p: Pattern, name: string, addr: string, bytes: Uint8Array | undefined): Promise<boolean> {
    switch (p.kind) {
      case 'net': return bytes !== undefined && inNet(bytes, p.net);
      case 'name': {
        if (name === p.text) return true;
        const rest = name.length - p.text.length;
        if (rest <= 0 || !name.endsWith(p.text)) return false;
        return this.parentStyle ? name[rest - 1] === '.' : p.text.startsWith('.');
      }
      case 'table': {
        let entry = name;
        while (entry !== '' && entry !== 'unknown') {
          if ((await p.maps.find(entry, { fixedOnly: entry !== name })) !== undefined) return true;
          const next = entry.indexOf('.', 1);
          if (next < 0) break;
          entry = this.parentStyle ? entry.slice(next + 1) : entry.slice(next);
        }
        return (await p.maps.find(addr)) !== undefined;
      }
    }
  }
}

/** What a DNS lookup needs: node:dns's Resolver, or src/util/dns-resolver.ts's DnsResolver. */
export interface DnsResolver {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
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
