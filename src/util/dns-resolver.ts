/**
 * dns-resolver - the one DNS client every Postern component uses (smtp(8) MX/A/AAAA lookups,
 * later DANE TLSA, SPF/DKIM TXT). A thin layer over node:dns/promises `Resolver` that
 *
 *  - talks to the servers named by the Postern parameter `postern_dns_servers`
 *    (`postern_dns_servers = 127.0.0.1:5353, [::1]:53`), and to the system resolver
 *    (/etc/resolv.conf) only when that parameter is unset or empty. Tests always set it to
 *    their loopback DNS server (test/harness/dns-server.ts), so they never query the machine's
 *    resolver;
 *  - maps c-ares error codes onto Postfix's three DNS outcomes (dns/dns_lookup.c):
 *    NOTFOUND (NXDOMAIN, "Host not found"), NODATA (name exists, no record of that type:
 *    "No address associated with hostname") and TEMP (SERVFAIL, timeout, refused: "Host not
 *    found, try again"). Callers bounce only on NOTFOUND, never on TEMP.
 *
 * PARAMETERS
 *   postern_dns_servers (Postern-specific; list of ip or ip:port, default empty = system resolver)
 */
import { Resolver } from 'node:dns/promises';

export interface MxRecord { exchange: string; priority: number }

export type DnsErrorKind = 'NOTFOUND' | 'NODATA' | 'TEMP';

export class DnsError extends Error {
  override name = 'DnsError';
  readonly kind: DnsErrorKind;
  readonly qname: string;
  readonly qtype: string;
  /** The resolver's own error code (ESERVFAIL, ETIMEOUT, ...), for logs. */
  readonly detail?: string;
  constructor(kind: DnsErrorKind, qname: string, qtype: string, detail?: string) {
    // Postfix dns_strerror() texts, in dns_lookup.c's "Name service error for name=X type=Y: ..." shape.
    const why = kind === 'NOTFOUND' ? 'Host not found' : kind === 'NODATA' ? 'No address associated with hostname' : 'Host not found, try again';
    super(`Name service error for name=${qname} type=${qtype}: ${why}`);
    this.kind = kind; this.qname = qname; this.qtype = qtype; this.detail = detail;
  }
}

/** The lookups Postern needs; tests may pass their own implementation. */
export interface DnsResolver {
  /** Throws DnsError; an empty answer is NODATA. */
  resolveMx(name: string): Promise<MxRecord[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
  resolveTxt(name: string): Promise<string[][]>;
  /** The servers in use ('' entries never); [] = system resolver. */
  readonly servers: readonly string[];
}

export interface DnsResolverOptions {
  /** ip, ip:port or [ipv6]:port; empty = the system resolver. */
  servers?: readonly string[];
  /** Per-try timeout in milliseconds (c-ares); default 2000. */
  timeoutMs?: number;
  /** Tries per server; default 2. */
  tries?: number;
}

function classify(err: unknown, qname: string, qtype: string): DnsError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  // c-ares codes (node:dns "Error codes"): ENOTFOUND = NXDOMAIN, ENODATA = no record of the type.
  if (code === 'ENOTFOUND') return new DnsError('NOTFOUND', qname, qtype);
  if (code === 'ENODATA') return new DnsError('NODATA', qname, qtype);
  return new DnsError('TEMP', qname, qtype, code || (err as Error).message);
}

/** Check one `postern_dns_servers` entry; returns an error text or undefined. */
export function checkDnsServer(s: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\](?::(\d+))?|([0-9.]+)(?::(\d+))?|([0-9a-fA-F:]+))$/.exec(s);
  if (!m) return `"${s}" is not an IP address or ip:port`;
  const port = m[2] ?? m[4];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return `"${s}": bad port ${port}`;
  return undefined;
}

export function createDnsResolver(opts: DnsResolverOptions = {}): DnsResolver {
  const servers = (opts.servers ?? []).filter((s) => s !== '');
  for (const s of servers) {
    const e = checkDnsServer(s);
    if (e) throw new Error(`postern_dns_servers: ${e}`);
  }
  const r = new Resolver({ timeout: opts.timeoutMs ?? 2000, tries: opts.tries ?? 2 });
  if (servers.length > 0) r.setServers(servers as string[]);
  const wrap = <T>(qtype: string, f: (name: string) => Promise<T[]>) => async (name: string): Promise<T[]> => {
    let out: T[];
    try { out = await f(name); } catch (e) { throw classify(e, name, qtype); }
    if (out.length === 0) throw new DnsError('NODATA', name, qtype);
    return out;
  };
  return {
    servers,
    resolveMx: wrap('MX', async (n) => (await r.resolveMx(n)).map((m) => ({ exchange: m.exchange, priority: m.priority }))),
    resolve4: wrap('A', (n) => r.resolve4(n)),
    resolve6: wrap('AAAA', (n) => r.resolve6(n)),
    resolveTxt: wrap('TXT', (n) => r.resolveTxt(n)),
  };
}

/** The resolver main.cf asks for: `postern_dns_servers`, else the system's. */
export function dnsResolverFromConfig(cfg: { get(name: string): string }): DnsResolver {
  const list = cfg.get('postern_dns_servers').split(/[\s,]+/).filter(Boolean);
  return createDnsResolver({ servers: list });
}
