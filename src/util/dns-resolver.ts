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
 *  - TLSA lookups for DANE (RFC 6698, RFC 7672): node:dns cannot report the AD bit, so
 *    resolveTlsa() sends its own query over UDP (RFC 1035 §4.1) with AD=1 and an EDNS0 OPT
 *    record with DO=1 (RFC 6840 §5.7, RFC 3225), and reports whether the answer came back with
 *    the AD bit: "DNSSEC-validated by the resolver", which is all Postfix trusts
 *    (smtp_dns_support_level = dnssec). A truncated answer (TC) is a TEMP error (no TCP retry).
 *
 * PARAMETERS
 *   postern_dns_servers (Postern-specific; list of ip or ip:port, default empty = system resolver)
 */
import { Resolver } from 'node:dns/promises';
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';

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
  /** NS records of a name (smtpd's check_*_ns_access). */
  resolveNs?(name: string): Promise<string[]>;
  /** PTR targets of a reverse name ("1.2.0.192.in-addr.arpa"), for SPF's ptr mechanism (RFC 7208 §5.5). */
  resolvePtr?(name: string): Promise<string[]>;
  /** TLSA records of a name ("_25._tcp.mx.example.com") and whether the answer was validated. */
  resolveTlsa?(name: string): Promise<TlsaAnswer>;
  /** The servers in use ('' entries never); [] = system resolver. */
  readonly servers: readonly string[];
}

/** RFC 6698 §2.1: one TLSA record. */
export interface TlsaRecord { usage: number; selector: number; matchingType: number; data: Buffer }

export interface TlsaAnswer {
  records: TlsaRecord[];
  /** The AD bit was set: the resolver validated the answer with DNSSEC (RFC 4035 §3.2.3). */
  secure: boolean;
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
    resolvePtr: wrap('PTR', (n) => r.resolvePtr(n)),
    resolveNs: wrap('NS', (n) => r.resolveNs(n)),
    resolveTlsa: (n) => rawTlsaQuery(servers.length ? servers : r.getServers(), n, opts.timeoutMs ?? 2000, opts.tries ?? 2),
  };
}

const TLSA_TYPE = 52;

function splitServer(s: string): { host: string; port: number } {
  const b = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (b) return { host: b[1]!, port: Number(b[2] ?? 53) };
  if (isIP(s) === 6) return { host: s, port: 53 };
  const m = /^([^:]+)(?::(\d+))?$/.exec(s);
  return { host: m?.[1] ?? s, port: Number(m?.[2] ?? 53) };
}

/** RFC 1035 §4.1 query for <name> TLSA with RD, AD and EDNS0 DO set. */
export function encodeTlsaQuery(id: number, name: string): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100 | 0x0020, 2); // RD, AD (RFC 6840 §5.7)
  head.writeUInt16BE(1, 4);
  head.writeUInt16BE(1, 10); // one additional: OPT
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  if (labels.some((l) => l.length > 63) || name.length > 253) throw new DnsError('NOTFOUND', name, 'TLSA', 'name too long');
  const qname = Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
  const q = Buffer.from([0, TLSA_TYPE, 0, 1]);
  // RFC 6891 §6.1.2: OPT, root name, UDP size 1232, DO bit (RFC 3225 §3).
  const opt = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
  return Buffer.concat([head, qname, q, opt]);
}

function skipName(msg: Buffer, off: number): number {
  for (let guard = 0; guard < 128; guard++) {
    const len = msg[off];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return off + 1;
    if (len >= 0xc0) return off + 2;
    off += 1 + len;
  }
  throw new Error('name too long');
}

/** Parse a TLSA response; throws DnsError for rcode failures. Hostile input gives TEMP, never a crash. */
export function decodeTlsaResponse(msg: Buffer, id: number, name: string): TlsaAnswer {
  if (msg.length < 12 || msg.readUInt16BE(0) !== id) throw new DnsError('TEMP', name, 'TLSA', 'bad response');
  const flags = msg.readUInt16BE(2);
  if (flags & 0x0200) throw new DnsError('TEMP', name, 'TLSA', 'truncated');
  const rcode = flags & 0x0f;
  if (rcode === 3) throw new DnsError('NOTFOUND', name, 'TLSA');
  if (rcode !== 0) throw new DnsError('TEMP', name, 'TLSA', `rcode ${rcode}`);
  const secure = (flags & 0x0020) !== 0;
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  const records: TlsaRecord[] = [];
  try {
    let o = 12;
    for (let i = 0; i < qd; i++) o = skipName(msg, o) + 4;
    for (let i = 0; i < an; i++) {
      o = skipName(msg, o);
      const type = msg.readUInt16BE(o);
      const rdlen = msg.readUInt16BE(o + 8);
      const rdata = msg.subarray(o + 10, o + 10 + rdlen);
      if (rdata.length !== rdlen) throw new Error('truncated rdata');
      o += 10 + rdlen;
      if (type !== TLSA_TYPE || rdlen < 3) continue; // CNAME chains etc.: only the TLSA data counts
      records.push({ usage: rdata[0]!, selector: rdata[1]!, matchingType: rdata[2]!, data: Buffer.from(rdata.subarray(3)) });
    }
  } catch {
    throw new DnsError('TEMP', name, 'TLSA', 'malformed response');
  }
  return { records, secure };
}

/** One TLSA query over UDP to each server in turn; NODATA is an empty record list (with its AD bit). */
export async function rawTlsaQuery(servers: readonly string[], name: string, timeoutMs: number, tries: number): Promise<TlsaAnswer> {
  let last: DnsError = new DnsError('TEMP', name, 'TLSA', 'no DNS server');
  for (let t = 0; t < Math.max(1, tries); t++) {
    for (const srv of servers) {
      const { host, port } = splitServer(srv);
      const id = randomBytes(2).readUInt16BE(0);
      const query = encodeTlsaQuery(id, name);
      try {
        return await new Promise<TlsaAnswer>((resolve, reject) => {
          const sock = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
          const timer = setTimeout(() => { sock.close(); reject(new DnsError('TEMP', name, 'TLSA', 'ETIMEOUT')); }, timeoutMs);
          sock.on('error', (e) => { clearTimeout(timer); sock.close(); reject(new DnsError('TEMP', name, 'TLSA', e.message)); });
          sock.on('message', (msg, rinfo) => {
            if (rinfo.port !== port) return;
            if (msg.length >= 2 && msg.readUInt16BE(0) !== id) return; // not ours: keep waiting
            clearTimeout(timer); sock.close();
            try { resolve(decodeTlsaResponse(msg, id, name)); } catch (e) { reject(e); }
          });
          sock.send(query, port, host);
        });
      } catch (e) {
        if (!(e instanceof DnsError)) throw e;
        if (e.kind === 'NOTFOUND') throw e;
        last = e;
      }
    }
  }
  throw last;
}

/** The resolver main.cf asks for: `postern_dns_servers`, else the system's. */
export function dnsResolverFromConfig(cfg: { get(name: string): string }): DnsResolver {
  const list = cfg.get('postern_dns_servers').split(/[\s,]+/).filter(Boolean);
  return createDnsResolver({ servers: list });
}
