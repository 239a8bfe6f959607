/**
 * cidr-match - IPv4 and IPv6 addresses as bytes and "address/length" network matching (Postfix
 * util/cidr_match.c), the one implementation behind cidr: tables (dict-cidr.ts), namadr lists
 * (mynetworks, qmqpd_authorized_clients, ...) and anything else that asks "is this address in
 * that network".
 *
 * DESCRIPTION
 *   addrBytes(text) parses an address without brackets to 4 (IPv4) or 16 (IPv6) bytes;
 *   ::ffff:a.b.c.d stays 16 bytes. Not an address (also: an IPv4 part with a leading zero, an
 *   IPv6 zone "%eth0"): undefined.
 *
 *   maskAddr(bytes, bits) keeps the first `bits` bits and zeroes the rest (the network of an
 *   address). cidrMatch(addr, net) is true when both are of one family and agree on the first
 *   net.bits bits; the host bits of net are ignored, so a net whose host bits are set (which a
 *   parser may accept or refuse, its own rule) matches as its masked form would.
 *
 *   inNetworkList(ip, nets) asks the same of a list of "addr/len" texts (entries that are not
 *   networks are skipped), as login_trusted_networks and similar settings need.
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** A network: its address bytes (4 or 16) and the number of leading bits that count. */
export interface CidrNet { bytes: Uint8Array; bits: number }

/** Parse an address to bytes: 4 for IPv4, 16 for IPv6; undefined when not an address. */
export function addrBytes(text: string): Uint8Array | undefined {
  if (isIPv4(text)) {
    const parts = text.split('.');
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return Uint8Array.from(parts.map(Number));
  }
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {                        // ::ffff:1.2.3.4
    const v4 = addrBytes(last);
    if (!v4) return undefined;
    s = s.slice(0, lastColon + 1) + ((v4[0]! << 8) | v4[1]!).toString(16) + ':' + ((v4[2]! << 8) | v4[3]!).toString(16);
  }
  const [head, rest] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const hw = head ? head.split(':').filter((x) => x !== '').map((h) => parseInt(h, 16)) : [];
  const rw = rest ? rest.split(':').filter((x) => x !== '').map((h) => parseInt(h, 16)) : [];
  const fill = 8 - hw.length - rw.length;
  const words = rest !== undefined ? [...hw, ...new Array<number>(Math.max(fill, 0)).fill(0), ...rw] : hw;
  if (words.length !== 8) return undefined;
  const out = new Uint8Array(16);
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff; });
  return out;
}

/** The network of `bytes`: the first `bits` bits kept, the others zero. */
export function maskAddr(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0, b = bits; i < bytes.length; i++, b -= 8) {
    out[i] = b >= 8 ? bytes[i]! : b > 0 ? bytes[i]! & ((0xff << (8 - b)) & 0xff) : 0;
  }
  return out;
}

/** Is `addr` in `net` (same family, same first net.bits bits)? */
export function cidrMatch(addr: Uint8Array, net: CidrNet): boolean {
  if (addr.length !== net.bytes.length) return false;
  let bits = net.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (net.bytes[i]! & mask)) return false;
  }
  return true;
}

/**
 * Is `ip` in one of `nets` ("addr/len" or a bare address, either family)? Entries that are not
 * networks are skipped. The list form of Dovecot's login_trusted_networks.
 */
export function inNetworkList(ip: string, nets: string[]): boolean {
  if (ip === '' || nets.length === 0) return false;
  const bl = new BlockList();
  for (const n of nets) {
    const [addr, bits] = n.split('/');
    const type = addr!.includes(':') ? 'ipv6' : 'ipv4';
    try { if (bits !== undefined) bl.addSubnet(addr!, Number(bits), type); else bl.addAddress(addr!, type); } catch { /* not an address */ }
  }
  return bl.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
}
