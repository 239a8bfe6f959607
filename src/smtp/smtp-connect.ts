/**
 * smtp-connect - destination → ordered list of server addresses for smtp(8)/lmtp(8), after
 * Postfix smtp/smtp_connect.c and smtp/smtp_addr.c.
 *
 * DESTINATION SYNTAX (the nexthop of a DeliverRequest; Postfix smtp(8) "SMTP DESTINATION SYNTAX")
 *   SMTP:  domain | domain:port       MX lookup, then the A/AAAA records of each exchanger
 *          [host] | [host]:port       no MX lookup ([] disables it, as in transport(5))
 *          [1.2.3.4] | [ipv6:2001:db8::1]:port
 *   LMTP:  unix:/path                 a UNIX-domain socket
 *          inet:host | inet:host:port | inet:[host]:port | host:port | [host]
 *          (LMTP never looks up MX records: smtp_connect.c "With SMTP, the Internet domain
 *          name service is queried for mail exchanger hosts")
 *   Several destinations separated by comma or space are tried in order (Postfix ≥ 3.5).
 *   The default port is smtp_tcp_port (25) / lmtp_tcp_port (24); an MX host gets the port of
 *   its nexthop (`example.com:2525` → every MX on 2525), which is how tests aim MX records at a
 *   loopback server on an unprivileged port.
 *
 * ADDRESS ORDER
 *   MX records sorted by preference, records of equal preference shuffled (RFC 5321 §5.1,
 *   Postfix dns_rr_shuffle); no MX record (NODATA) → the domain's own A/AAAA (implicit MX,
 *   RFC 5321 §5.1); a null MX (RFC 7505 `0 .`) bounces; an MX host equal to myhostname cuts the
 *   list at its preference ("mail for X loops back to myself" when nothing is left). At most
 *   smtp_mx_address_limit addresses (0 = no limit). NXDOMAIN bounces (5.4.4), a temporary DNS
 *   failure defers (4.4.3), in Postfix's "Host or domain name not found. Name service error
 *   for name=X type=MX: Host not found[, try again]" words.
 */
import { isIP } from 'node:net';
import { lookup as systemLookup } from 'node:dns/promises';
import { DnsError, type DnsResolver } from '../util/dns-resolver.ts';

export type SmtpDestination =
  | { kind: 'inet'; host: string; port: number; mx: boolean; text: string }
  | { kind: 'unix'; path: string; text: string };

/** One server to try. `host` is the name for logs (MX exchanger, or the literal). */
export interface SmtpServerAddress {
  host: string;
  /** IP address, or the socket path for unix:. */
  addr: string;
  port: number;
  unix?: boolean;
  /** MX preference (undefined without MX). */
  pref?: number;
}

/** A destination that cannot be resolved now (deferred) or ever (bounced). */
export interface SmtpResolveFailure { status: 'deferred' | 'bounced'; dsn: string; text: string }

export class DestinationSyntaxError extends Error { override name = 'DestinationSyntaxError'; }

const SERVICES: Record<string, number> = { smtp: 25, submission: 587, submissions: 465, smtps: 465, lmtp: 24 };

/** Port number of a numeric port or a well-known service name (getservbyname subset). */
export function parsePort(s: string): number {
  if (/^\d{1,5}$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 65535) return n;
  }
  const p = SERVICES[s.toLowerCase()];
  if (p === undefined) throw new DestinationSyntaxError(`unknown service port "${s}"`);
  return p;
}

/** Split `host:port` where host may be `[..]` (possibly with ':' inside). */
function splitHostPort(s: string): { host: string; bracket: boolean; port?: string } {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new DestinationSyntaxError(`"${s}": missing "]"`);
    const host = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new DestinationSyntaxError(`"${s}": garbage after "]"`);
    return { host: host.replace(/^ipv6:/i, ''), bracket: true, port: rest ? rest.slice(1) : undefined };
  }
  const colon = s.lastIndexOf(':');
  if (colon < 0) return { host: s, bracket: false };
  if (s.indexOf(':') !== colon) throw new DestinationSyntaxError(`"${s}": an IPv6 address must be written as [ipv6:address]`);
  return { host: s.slice(0, colon), bracket: false, port: s.slice(colon + 1) };
}

/** Parse one nexthop (no list). Throws DestinationSyntaxError with the reason. */
export function parseDestination(text: string, o: { lmtp: boolean; defaultPort: number }): SmtpDestination {
  let s = text.trim();
  if (s === '') throw new DestinationSyntaxError('empty destination');
  if (/[\0\r\n\s]/.test(s)) throw new DestinationSyntaxError(`"${s}": control or space character in destination`);
  if (o.lmtp) {
    if (s.startsWith('unix:')) {
      const path = s.slice(5);
      if (!path) throw new DestinationSyntaxError(`"${s}": empty socket path`);
      return { kind: 'unix', path, text };
    }
    if (s.startsWith('inet:')) s = s.slice(5);
  }
  const hp = splitHostPort(s);
  if (hp.host === '') throw new DestinationSyntaxError(`"${s}": empty host name`);
  if (!hp.bracket && !isIP(hp.host) && !/^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/.test(hp.host)) {
    throw new DestinationSyntaxError(`"${s}": bad host name syntax`);
  }
  if (hp.bracket && !isIP(hp.host) && !/^[A-Za-z0-9_.-]+$/.test(hp.host)) throw new DestinationSyntaxError(`"${s}": bad host name syntax`);
  const port = hp.port !== undefined ? parsePort(hp.port) : o.defaultPort;
  return { kind: 'inet', host: hp.host.replace(/\.$/, ''), port, mx: !o.lmtp && !hp.bracket && !isIP(hp.host), text };
}

export interface ResolveOptions {
  resolver: DnsResolver;
  /** smtp_mx_address_limit (0 = unlimited). */
  mxAddressLimit: number;
  /** inet_protocols: which address families to look up. */
  ipv4: boolean;
  ipv6: boolean;
  myhostname: string;
  /** smtp_host_lookup contains "native": use getaddrinfo (the system) for host names. */
  native: boolean;
  /** Source of randomness for equal-preference shuffling (tests pass a seeded one). */
  random: () => number;
}

function shuffle<T>(a: T[], random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

function dnsFailure(e: DnsError): SmtpResolveFailure {
  // Postfix smtp_addr.c: NXDOMAIN → 5.4.4 bounce; anything temporary → 4.4.3 defer.
  const perm = e.kind !== 'TEMP';
  return { status: perm ? 'bounced' : 'deferred', dsn: perm ? '5.4.4' : '4.4.3', text: `Host or domain name not found. ${e.message}` };
}

/** Addresses of one host name (A then AAAA, per inet_protocols). Throws DnsError. */
async function hostAddrs(host: string, o: ResolveOptions): Promise<string[]> {
  if (isIP(host)) return [host];
  if (host.toLowerCase() === 'localhost') return [o.ipv4 ? '127.0.0.1' : '::1'];
  if (o.native) {
    const r = await systemLookup(host, { all: true }).catch((e: NodeJS.ErrnoException) => {
      throw new DnsError(e.code === 'ENOTFOUND' ? 'NOTFOUND' : 'TEMP', host, 'A');
    });
    return r.filter((a) => (a.family === 4 ? o.ipv4 : o.ipv6)).map((a) => a.address);
  }
  const out: string[] = [];
  let firstErr: DnsError | undefined;
  const tries: [boolean, (n: string) => Promise<string[]>][] = [[o.ipv4, (n) => o.resolver.resolve4(n)], [o.ipv6, (n) => o.resolver.resolve6(n)]];
  for (const [on, f] of tries) {
    if (!on) continue;
    try { out.push(...await f(host)); } catch (e) {
      if (!(e instanceof DnsError)) throw e;
      // A temporary failure of one family matters more than NODATA of the other.
      if (!firstErr || (e.kind === 'TEMP' && firstErr.kind !== 'TEMP')) firstErr = e;
    }
  }
  if (out.length === 0) throw firstErr ?? new DnsError('NODATA', host, 'A');
  return out;
}

/** Resolve one destination to the addresses to try, or a failure for every recipient. */
export async function resolveDestination(dest: SmtpDestination, o: ResolveOptions): Promise<SmtpServerAddress[] | SmtpResolveFailure> {
  if (dest.kind === 'unix') return [{ host: o.myhostname, addr: dest.path, port: 0, unix: true }];
  const limit = (list: SmtpServerAddress[]) => (o.mxAddressLimit > 0 ? list.slice(0, o.mxAddressLimit) : list);
  if (!dest.mx) {
    try {
      return limit((await hostAddrs(dest.host, o)).map((addr) => ({ host: dest.host, addr, port: dest.port })));
    } catch (e) {
      if (e instanceof DnsError) return dnsFailure(e);
      throw e;
    }
  }
  let mx: { exchange: string; priority: number }[];
  try {
    mx = await o.resolver.resolveMx(dest.host);
  } catch (e) {
    if (!(e instanceof DnsError)) throw e;
    if (e.kind !== 'NODATA') return dnsFailure(e);
    // RFC 5321 §5.1: no MX → the domain itself is the implicit MX with preference 0.
    try {
      return limit((await hostAddrs(dest.host, o)).map((addr) => ({ host: dest.host, addr, port: dest.port })));
    } catch (e2) {
      if (e2 instanceof DnsError) return dnsFailure(e2);
      throw e2;
    }
  }
  // RFC 7505 §3: a single MX with root target means "accepts no mail".
  if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) {
    return { status: 'bounced', dsn: '5.1.10', text: `Domain ${dest.host} does not accept mail (nullMX)` };
  }
  const groups = new Map<number, { exchange: string; priority: number }[]>();
  for (const r of mx) groups.set(r.priority, [...(groups.get(r.priority) ?? []), r]);
  const sorted: { exchange: string; priority: number }[] = [];
  for (const p of [...groups.keys()].sort((a, b) => a - b)) {
    const g = groups.get(p)!;
    shuffle(g, o.random);
    sorted.push(...g);
  }
  // smtp_addr.c smtp_truncate_self(): only exchangers more preferred than this host.
  const self = sorted.find((r) => r.exchange.toLowerCase().replace(/\.$/, '') === o.myhostname.toLowerCase());
  const usable = self ? sorted.filter((r) => r.priority < self.priority) : sorted;
  if (self && usable.length === 0) {
    return { status: 'bounced', dsn: '5.4.6', text: `mail for ${dest.host} loops back to myself` };
  }
  const out: SmtpServerAddress[] = [];
  let lastErr: DnsError | undefined;
  let sawTemp: DnsError | undefined;
  for (const r of usable) {
    const host = r.exchange.replace(/\.$/, '');
    try {
      for (const addr of await hostAddrs(host, o)) out.push({ host, addr, port: dest.port, pref: r.priority });
    } catch (e) {
      if (!(e instanceof DnsError)) throw e;
      lastErr = e;
      if (e.kind === 'TEMP') sawTemp = e;
    }
  }
  if (out.length === 0) return dnsFailure(sawTemp ?? lastErr ?? new DnsError('NODATA', dest.host, 'MX'));
  return limit(out);
}

/** A seeded PRNG (mulberry32) for reproducible MX shuffling in tests. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
