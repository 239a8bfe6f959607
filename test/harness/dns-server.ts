/**
 * dns-server - a tiny authoritative DNS server on 127.0.0.1 (UDP, OS-chosen port) for tests that
 * must never ask the machine's resolver (RFC 1035 §4.1 message format; RFC 7505 null MX).
 *
 *   const dns = await DnsServer.start({
 *     'example.org': { A: ['192.0.2.1'], MX: [{ preference: 10, exchange: 'mx.example.org' }] },
 *     'v6.example':  { AAAA: ['2001:db8::1'] },
 *     'nomail.example': { MX: [{ preference: 0, exchange: '' }] },    // null MX
 *     'broken.example': 'SERVFAIL',
 *   });
 *   const r = new Resolver(); r.setServers([`127.0.0.1:${dns.port}`]);
 *   ...
 *   await dns.stop();
 *
 * DANE tests add TLSA records and mark a name's answers as DNSSEC-validated with `AD: true`
 * (the answer then carries the AD bit, as a validating resolver would send it, RFC 4035 §3.2.3):
 *     '_25._tcp.mx.example.org': { TLSA: [{ usage: 3, selector: 1, matchingType: 1, data: 'ab12..' }], AD: true },
 *
 * A name in the zone without records of the asked type gets NOERROR with no answer (NODATA); a
 * name not in the zone gets NXDOMAIN. Names match case-insensitively. `queries` records every
 * question ("name TYPE") so a test can check what was asked.
 */
import { createSocket, type Socket } from 'node:dgram';
import { addrBytes } from '../../src/util/cidr-match.ts';

export interface ZoneEntry {
  A?: string[];
  AAAA?: string[];
  MX?: { preference: number; exchange: string }[];
  TXT?: string[];
  /** RFC 1035 §3.3.12 PTR targets, for names like '1.2.0.192.in-addr.arpa'. */
  PTR?: string[];
  /** RFC 1035 §3.3.11 NS targets. */
  NS?: string[];
  /** RFC 6698 TLSA records; data as hex or bytes. */
  TLSA?: { usage: number; selector: number; matchingType: number; data: string | Buffer }[];
  /** Answers for this name (records or NODATA) carry the AD bit: "validated by DNSSEC". */
  AD?: boolean;
}
export type Zone = Record<string, ZoneEntry | 'SERVFAIL'>;

const TYPES: Record<number, 'A' | 'AAAA' | 'MX' | 'TXT' | 'TLSA' | 'PTR' | 'NS'> = { 1: 'A', 28: 'AAAA', 15: 'MX', 16: 'TXT', 52: 'TLSA', 12: 'PTR', 2: 'NS' };

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  const bufs = parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')]));
  return Buffer.concat([...bufs, Buffer.from([0])]);
}

/** Read the question name; returns it and the offset after it (no compression in queries). */
function readName(msg: Buffer, off: number): { name: string; end: number } {
  const labels: string[] = [];
  let o = off;
  for (let guard = 0; guard < 128; guard++) {
    const len = msg[o];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return { name: labels.join('.'), end: o + 1 };
    if (len >= 0xc0) throw new Error('compression in question');
    labels.push(msg.subarray(o + 1, o + 1 + len).toString('ascii'));
    o += 1 + len;
  }
  throw new Error('name too long');
}

export class DnsServer {
  readonly port: number;
  readonly queries: string[] = [];
  private readonly sock: Socket;
  private readonly zone: Map<string, ZoneEntry | 'SERVFAIL'>;

  private constructor(sock: Socket, port: number, zone: Zone) {
    this.sock = sock;
    this.port = port;
    this.zone = new Map(Object.entries(zone).map(([k, v]) => [k.toLowerCase().replace(/\.$/, ''), v]));
  }

  /**
   * `at`: another loopback address and port (port 53 of 127.1.2.3, for a resolver that can only
   * be given an address: real Postfix through a private /etc/resolv.conf, real-postfix.ts).
   */
  static async start(zone: Zone, at: { host?: string; port?: number } = {}): Promise<DnsServer> {
    const host = at.host ?? '127.0.0.1';
    if (!host.startsWith('127.')) throw new Error(`DnsServer: ${host} is not a loopback address`);
    const sock = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind(at.port ?? 0, host, () => resolve());
    });
    const srv = new DnsServer(sock, sock.address().port, zone);
    sock.on('message', (msg, rinfo) => {
      const out = srv.answer(msg);
      if (out) sock.send(out, rinfo.port, rinfo.address);
    });
    return srv;
  }

  private answer(msg: Buffer): Buffer | undefined {
    if (msg.length < 12) return undefined;
    let q;
    try { q = readName(msg, 12); } catch { return undefined; }
    const qtype = msg.readUInt16BE(q.end);
    const question = msg.subarray(12, q.end + 4);
    const name = q.name.toLowerCase();
    const type = TYPES[qtype];
    this.queries.push(`${name} ${type ?? qtype}`);
    const entry = this.zone.get(name);
    let rcode = 0;
    const answers: Buffer[] = [];
    if (entry === undefined) rcode = 3;
    else if (entry === 'SERVFAIL') rcode = 2;
    else if (type) {
      for (const v of entry[type] ?? []) {
        let rdata: Buffer;
        if (type === 'MX') {
          const mx = v as { preference: number; exchange: string };
          const pref = Buffer.alloc(2);
          pref.writeUInt16BE(mx.preference);
          rdata = Buffer.concat([pref, encodeName(mx.exchange)]);
        } else if (type === 'PTR' || type === 'NS') {
          rdata = encodeName(v as string);
        } else if (type === 'TLSA') {
          const t = v as { usage: number; selector: number; matchingType: number; data: string | Buffer };
          rdata = Buffer.concat([Buffer.from([t.usage, t.selector, t.matchingType]), typeof t.data === 'string' ? Buffer.from(t.data, 'hex') : t.data]);
        } else if (type === 'TXT') {
          const t = Buffer.from(v as string, 'utf8');
          const chunks: Buffer[] = [];
          for (let o = 0; o < t.length || o === 0; o += 255) {
            const part = t.subarray(o, o + 255);
            chunks.push(Buffer.from([part.length]), part);
            if (t.length === 0) break;
          }
          rdata = Buffer.concat(chunks);
        } else {
          rdata = Buffer.from(addrBytes(v as string) ?? []);
        }
        const head = Buffer.alloc(12);
        head.writeUInt16BE(0xc00c, 0);
        head.writeUInt16BE(qtype, 2);
        head.writeUInt16BE(1, 4);
        head.writeUInt32BE(60, 6);
        head.writeUInt16BE(rdata.length, 10);
        answers.push(head, rdata);
      }
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    const ad = typeof entry === 'object' && entry.AD ? 0x0020 : 0;
    header.writeUInt16BE(0x8000 | (msg.readUInt16BE(2) & 0x7900) | 0x0400 | 0x0080 | ad | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length / 2, 6);
    return Buffer.concat([header, question, ...answers]);
  }

  /** Publish (or replace) the records of NAME while the server runs (a test "fixing" its DNS). */
  set(name: string, entry: ZoneEntry | 'SERVFAIL'): void {
    this.zone.set(name.toLowerCase().replace(/\.$/, ''), entry);
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.sock.close(() => r()));
  }
}
