/**
 * dns-plan - what `postern dns DOMAIN` prints: the records a mail domain publishes (MX, the
 * host's A/AAAA, SPF, DKIM, DMARC, MTA-STS, TLS-RPT) in zone-file syntax (RFC 1035 §5.1), with
 * the PTR records to ask for as comments; the names and addresses that go into them, and the DKIM
 * keys whose public halves they carry. The command and its options are cli/postdns.ts; the check of
 * what is published, dns-check.ts. postinit and the web console use it too.
 */
import { isIP } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import { dkimPublicValue, keygen, listKeys, readSigningKey } from '../lib-authres/dkim-keys.ts';
import { DkimSigningTable } from '../lib-authres/dkim-sign-table.ts';
import { localAddresses } from '../global/mail-params-computed.ts';

const TTL = 3600;

// ---- names -----------------------------------------------------------------------------------

/**
 * Why NAME is not a host or domain name we print into a zone, or undefined when it is one:
 * RFC 1035 §2.3.4 limits (labels 1-63 octets, 253 in all) and RFC 1123 §2.1 LDH labels, at least
 * two labels. Shown names are JSON-quoted so a NUL or newline in the input stays visible.
 */
export function checkDomainName(name: string): string | undefined {
  const q = JSON.stringify(name);
  if (name === '') return 'the name is empty';
  if (name.length > 253) return `${q.slice(0, 40)}...: longer than 253 characters (RFC 1035 §2.3.4)`;
  const labels = name.split('.');
  if (labels.length < 2) return `${q}: not a fully qualified name (it needs at least one dot, e.g. example.com)`;
  for (const l of labels) {
    if (l.length === 0) return `${q}: empty label (two dots in a row, or a leading or trailing dot)`;
    if (l.length > 63) return `${q.slice(0, 40)}...: a label is longer than 63 characters (RFC 1035 §2.3.4)`;
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(l)) {
      return `${q}: label ${JSON.stringify(l)} may hold only letters, digits and inner hyphens (RFC 1123 §2.1); `
        + 'write an internationalized name in its xn-- form';
    }
  }
  if (/^\d+$/.test(labels[labels.length - 1]!)) return `${q}: the last label is all digits (an address, not a domain name)`;
  return undefined;
}

/** A DKIM selector is one DNS label (RFC 6376 §3.1). */
export function checkSelector(s: string): string | undefined {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/.test(s)) return `selector ${JSON.stringify(s)}: use one label of letters, digits and inner hyphens`;
  return undefined;
}

// ---- addresses -------------------------------------------------------------------------------

function v4num(a: string): number { return a.split('.').reduce((n, o) => n * 256 + Number(o), 0); }

function inV4(a: string, net: string, prefix: number): boolean {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return ((v4num(a) & mask) >>> 0) === ((v4num(net) & mask) >>> 0);
}

/** Loopback, link-local, private (RFC 1918, RFC 6598 shared, RFC 4193 ULA), documentation-free. */
export function isPublicAddress(a: string): boolean {
  if (isIP(a) === 4) {
    return !(inV4(a, '127.0.0.0', 8) || inV4(a, '10.0.0.0', 8) || inV4(a, '172.16.0.0', 12) || inV4(a, '192.168.0.0', 16)
      || inV4(a, '169.254.0.0', 16) || inV4(a, '100.64.0.0', 10) || inV4(a, '0.0.0.0', 8));
  }
  const l = a.toLowerCase();
  return !(l === '::1' || l === '::' || /^fe[89ab]/.test(l) || /^f[cd]/.test(l));
}

/** The host's addresses and where they came from (see the header). */
export function hostAddresses(cf: MainConfig, given: string[]): { addresses: string[]; source: string } {
  if (given.length > 0) return { addresses: given, source: '--ip' };
  const literal = (v: string) => v.split(/[\s,]+/).map((x) => x.replace(/^\[(.*)\]$/, '$1')).filter((x) => isIP(x) !== 0);
  const proxy = literal(cf.get('proxy_interfaces'));
  if (proxy.length > 0) return { addresses: proxy, source: 'proxy_interfaces' };
  const inet = cf.get('inet_interfaces').trim().toLowerCase();
  if (inet === 'all') {
    return { addresses: localAddresses().map((a) => a.address).filter(isPublicAddress), source: 'the public addresses of this machine (inet_interfaces = all)' };
  }
  return { addresses: literal(inet).filter(isPublicAddress), source: 'inet_interfaces' };
}

/** RFC 1035 §3.5 / RFC 3596 §2.5 reverse name of an address. */
export function reverseName(a: string): string {
  if (isIP(a) === 4) return `${a.split('.').reverse().join('.')}.in-addr.arpa`;
  const [head, tail] = a.includes('::') ? a.split('::') as [string, string] : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const nibbles = groups.map((g) => g.padStart(4, '0')).join('').toLowerCase().split('');
  return `${nibbles.reverse().join('.')}.ip6.arpa`;
}

// ---- DKIM keys -------------------------------------------------------------------------------

export interface DkimKey {
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  /** The key file (the signing table may name any path). */
  file: string;
  /** The p= value: base64 SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4). */
  publicKey: string;
  /** d= when it is not the DOMAIN printed (a DOMAIN:SELECTOR:FILE entry of postern_dkim_signing_maps). */
  domain?: string;
  /** false: a rotated-out key, still published until `postern dkim remove`. */
  active?: boolean;
}

export { dkimPublicValue };

export interface DnsDkimKeys {
  keys: DkimKey[];
  /** Keys that cannot be used, each with the file and the fix. */
  problems: string[];
  /** Where the signer takes DOMAIN's keys from (empty: nothing signs DOMAIN). */
  source?: string;
}

/**
 * The DKIM keys of DOMAIN as `postern dns` prints them: exactly those the signer uses (the
 * signing table, lib-authres/dkim-sign-table.ts: postern_dkim_signing_maps, else the key
 * directory DIR), then the retired keys of DIR, still published. With `create`, DIR has no key
 * of DOMAIN yet and the table has no entry for it: `postern dkim keygen DOMAIN --selector S`
 * first (RSA 2048 as S, Ed25519 as S-ed25519).
 */
export async function dnsDkimKeys(cf: MainConfig, dir: string, domain: string, selector: string, create: boolean, say: (l: string) => void = () => {}): Promise<DnsDkimKeys> {
  const spec = cf.get('postern_dkim_signing_maps').trim();
  const table = new DkimSigningTable(dir, spec ? await Maps.open(spec, { paramName: 'postern_dkim_signing_maps', ...cf.dictFlags }) : undefined);
  let found = await table.keysFor(domain);
  if (create && found.keys.length === 0 && found.warnings.length === 0 && listKeys(dir, domain).length === 0) {
    for (const k of keygen(dir, domain, { selector })) say(`postern: generated the DKIM ${k.algorithm} key ${k.file} (selector ${k.selector})`);
    found = await table.keysFor(domain);
  }
  const keys: DkimKey[] = found.keys.map((k) => ({
    selector: k.selector, algorithm: k.key.asymmetricKeyType as 'rsa' | 'ed25519', publicKey: dkimPublicValue(k.key),
    file: k.file ?? '', active: true, ...(k.domain !== domain ? { domain: k.domain } : {}),
  }));
  const problems = [...found.warnings];
  for (const r of listKeys(dir, domain).filter((k) => !k.active)) {
    try {
      keys.push({ selector: r.selector, algorithm: r.algorithm, file: r.file, publicKey: dkimPublicValue(readSigningKey(r.file, r.algorithm)), active: false });
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  return { keys, problems, source: found.source };
}

// ---- the records -----------------------------------------------------------------------------

export interface DnsRecord {
  /** What the check line calls it: MX, A, SPF, DKIM, DMARC, MTA-STS, TLS-RPT. */
  what: string;
  name: string;
  type: 'MX' | 'A' | 'AAAA' | 'TXT';
  /** The value as the resolver returns it (TXT strings joined). */
  value: string;
  /** Counts for --check's exit status. */
  required: boolean;
}

export interface DnsPlanOptions {
  domain: string;
  myhostname: string;
  addresses: string[];
  dkim: DkimKey[];
  mtaSts?: boolean;
  tlsRpt?: boolean;
  /** MTA-STS policy id (RFC 8461 §3.1); default: now as YYYYMMDDhhmmss. */
  stsId?: string;
}

export function spfValue(addresses: string[]): string {
  const ips = addresses.map((a) => (isIP(a) === 4 ? `ip4:${a}` : `ip6:${a}`));
  return ['v=spf1', 'mx', ...ips, '-all'].join(' ');
}

export function planRecords(o: DnsPlanOptions): DnsRecord[] {
  const d = o.domain;
  const r: DnsRecord[] = [{ what: 'MX', name: d, type: 'MX', value: `10 ${o.myhostname}`, required: true }];
  for (const a of o.addresses) r.push({ what: isIP(a) === 4 ? 'A' : 'AAAA', name: o.myhostname, type: isIP(a) === 4 ? 'A' : 'AAAA', value: a, required: true });
  r.push({ what: 'SPF', name: d, type: 'TXT', value: spfValue(o.addresses), required: true });
  for (const k of o.dkim) r.push({ what: 'DKIM', name: `${k.selector}._domainkey.${k.domain ?? d}`, type: 'TXT', value: `v=DKIM1; k=${k.algorithm}; p=${k.publicKey}`, required: true });
  r.push({ what: 'DMARC', name: `_dmarc.${d}`, type: 'TXT', value: `v=DMARC1; p=none; rua=mailto:postmaster@${d}`, required: true });
  if (o.mtaSts) {
    const id = o.stsId ?? new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    r.push({ what: 'MTA-STS', name: `_mta-sts.${d}`, type: 'TXT', value: `v=STSv1; id=${id}`, required: true });
  }
  if (o.tlsRpt) r.push({ what: 'TLS-RPT', name: `_smtp._tls.${d}`, type: 'TXT', value: `v=TLSRPTv1; rua=mailto:postmaster@${d}`, required: true });
  return r;
}

/** RFC 1035 §5.1 <character-string>s: at most 255 octets each, quoted. */
function txtStrings(v: string): string {
  const parts: string[] = [];
  for (let i = 0; i < v.length; i += 255) parts.push(`"${v.slice(i, i + 255).replace(/(["\\])/g, '\\$1')}"`);
  return parts.join(' ');
}

export function zoneLine(r: DnsRecord): string {
  const data = r.type === 'TXT' ? txtStrings(r.value)
    : r.type === 'MX' ? r.value.replace(/ (\S+)$/, ' $1.') : r.value;
  return `${(r.name + '.').padEnd(32)} ${TTL} IN ${r.type.padEnd(4)} ${data}`;
}

/** The whole printout: records, and comments for what cannot be a record of DOMAIN's zone. */
export function zoneText(o: DnsPlanOptions & { addressSource: string; dkimHint?: string }): string {
  const out = [`; postern dns ${o.domain}: the records to publish in the ${o.domain} zone (myhostname = ${o.myhostname})`];
  const recs = planRecords(o);
  for (const r of recs) {
    if (r.what === 'SPF' && o.addresses.length === 0) {
      out.push(`; ${o.myhostname}. IN A <this host's public address>: not known from ${o.addressSource}; give --ip ADDR`);
    }
    if (r.what === 'DMARC' && o.dkim.length === 0 && o.dkimHint) out.push(`; ${o.dkimHint}`);
    if (r.what === 'DKIM' && r === recs.find((x) => x.what === 'DKIM')) out.push(`; DKIM: the keys Postern signs ${o.domain}'s mail with (postern dkim list)${o.dkim.some((k) => k.active === false) ? ', and rotated-out keys kept until `postern dkim remove`' : ''}`);
    if (r.what === 'MTA-STS') out.push(`; MTA-STS also needs https://mta-sts.${o.domain}/.well-known/mta-sts.txt (RFC 8461 §3.2)`);
    out.push(zoneLine(r));
  }
  if (o.addresses.length > 0) {
    out.push('; Reverse DNS (PTR): ask the provider of each address to publish');
    for (const a of o.addresses) out.push(`; ${(reverseName(a) + '.').padEnd(30)} ${TTL} IN PTR ${o.myhostname}.`);
  }
  out.push(`; check what is published: postern dns ${o.domain} --check`);
  return out.join('\n') + '\n';
}
