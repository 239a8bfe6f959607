/**
 * postdns - `postern dns DOMAIN`: the DNS records a mail domain needs, and a check of what is
 * published (the seed's deliverability checklist: PTR, MX, SPF, DKIM, DMARC, TLS certificate).
 *
 * SYNOPSIS
 *   postern [-c CONFIG_DIR] dns DOMAIN [--selector S] [--dkim-key DIR] [--ip ADDR]...
 *                                      [--mta-sts] [--tls-rpt] [--check]
 *
 * DESCRIPTION
 *   Prints, in zone-file syntax (RFC 1035 §5.1, one record per line, absolute names), for DOMAIN
 *   and CONFIG_DIR/main.cf's myhostname:
 *     DOMAIN.                 MX    10 MYHOSTNAME.                       (RFC 5321 §5.1)
 *     MYHOSTNAME.             A/AAAA the host's public addresses          (when known, see below)
 *     DOMAIN.                 TXT   "v=spf1 mx [ip4:X ip6:Y] -all"       (RFC 7208)
 *     S._domainkey.DOMAIN.    TXT   "v=DKIM1; k=rsa; p=..."              (RFC 6376 §3.6.1)
 *     S-ed25519._domainkey.DOMAIN. TXT "v=DKIM1; k=ed25519; p=..."       (RFC 8463 §4)
 *     _dmarc.DOMAIN.          TXT   "v=DMARC1; p=none; rua=mailto:postmaster@DOMAIN" (RFC 7489 §6.3)
 *     _mta-sts.DOMAIN.        TXT   "v=STSv1; id=..."                    (--mta-sts, RFC 8461 §3.1)
 *     _smtp._tls.DOMAIN.      TXT   "v=TLSRPTv1; rua=mailto:..."         (--tls-rpt, RFC 8460 §3)
 *   and, as comments, the PTR records to ask the address's provider for.
 *
 *   The host's addresses: every --ip ADDR; else main.cf's proxy_interfaces (the public address
 *   in front of a NAT, as Postfix uses it); else the addresses of inet_interfaces when it names
 *   addresses, or this machine's global (not loopback, link-local or private) addresses when it
 *   is `all`. With loopback-only (the default configuration) none is known: the A record is
 *   printed as a comment to fill in.
 *
 *   DKIM keys: --dkim-key DIR generates, when missing, DIR/DOMAIN.S.rsa.key (RSA 2048) and
 *   DIR/DOMAIN.S-ed25519.ed25519.key (PKCS#8 PEM, mode 0600) and prints their public halves.
 *   Without --dkim-key, keys already in CONFIG_DIR/dkim are used; else the DKIM lines are a
 *   comment saying how to make them. Postern does not sign mail yet (no DKIM signing milter):
 *   the keys are for a signer such as OpenDKIM (milter) until it does.
 *
 *   --check asks the resolver of main.cf's postern_dns_servers (the system resolver when that
 *   is empty) and prints one line per record:
 *     WHAT NAME: OK|MISSING|MISMATCH|ERROR|WARNING - detail
 *   PTR: every host address (or, when none is known, the A/AAAA records of myhostname) must
 *   have a PTR naming myhostname whose own A/AAAA record lists that address again (the seed:
 *   "match myhostname with the PTR record, and check that the PTR has a matching A record").
 *   TLS: smtpd_tls_cert_file must exist, be valid now and name myhostname; a self-signed
 *   certificate is a WARNING (the checklist wants one from a CA), not a failure.
 *
 * EXIT STATUS
 *   0 printed (or, with --check, every required record is OK); 1 a record is missing, differs
 *   or could not be looked up; 64 usage error (a DOMAIN that is not a domain name included).
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { localAddresses } from '../global/mail-params-computed.ts';
import { DnsError, dnsResolverFromConfig, type DnsResolver } from '../util/dns-resolver.ts';
import type { CliContext } from './cli-context.ts';

const EX_USAGE = 64;
const TTL = 3600;
const USAGE = 'usage: postern [-c CONFIG_DIR] dns DOMAIN [--selector S] [--dkim-key DIR] [--ip ADDR]... [--mta-sts] [--tls-rpt] [--check]';

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
  file: string;
  /** The p= value: base64 SubjectPublicKeyInfo for RSA (RFC 6376 §3.6.1), the raw 32-byte key for Ed25519 (RFC 8463 §4). */
  publicKey: string;
}

export function dkimPublicValue(key: KeyObject): string {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  // An Ed25519 SPKI is a fixed 12-byte header followed by the 32 key bytes (RFC 8410 §4).
  return (key.asymmetricKeyType === 'ed25519' ? spki.subarray(spki.length - 32) : spki).toString('base64');
}

/** The two keys of DOMAIN/SELECTOR in DIR; generated (mode 0600) when `create` and missing. */
export function dkimKeys(dir: string, domain: string, selector: string, create: boolean, say: (l: string) => void = () => {}): DkimKey[] {
  const out: DkimKey[] = [];
  for (const [algorithm, sel] of [['rsa', selector], ['ed25519', `${selector}-ed25519`]] as const) {
    const file = join(dir, `${domain}.${sel}.${algorithm}.key`);
    let key: KeyObject;
    if (existsSync(file)) {
      try {
        key = createPrivateKey(readFileSync(file));
      } catch (e) {
        throw new Error(`${file}: not a PEM private key (${(e as Error).message}); move it away to generate a new one`);
      }
      if (key.asymmetricKeyType !== algorithm) throw new Error(`${file}: holds a ${key.asymmetricKeyType} key, expected ${algorithm}`);
    } else if (create) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const pair = algorithm === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 })   // RFC 8301 §3.2: at least 1024, 2048 recommended
        : generateKeyPairSync('ed25519');
      key = pair.privateKey;
      writeFileSync(file, key.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600, flag: 'wx' });
      chmodSync(file, 0o600);
      say(`postern: generated the DKIM ${algorithm} key ${file} (selector ${sel})`);
    } else {
      continue;
    }
    out.push({ selector: sel, algorithm, file, publicKey: dkimPublicValue(key) });
  }
  return out;
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
  for (const k of o.dkim) r.push({ what: 'DKIM', name: `${k.selector}._domainkey.${d}`, type: 'TXT', value: `v=DKIM1; k=${k.algorithm}; p=${k.publicKey}`, required: true });
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
    if (r.what === 'DKIM' && r.value.includes('k=rsa')) out.push('; DKIM keys (RSA 2048 and Ed25519); Postern does not sign yet: configure a signer (e.g. OpenDKIM) with these keys');
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

/** The seed checklist item 6: a certificate that names myhostname, valid now, ideally from a CA. */
export function certCheck(file: string, myhostname: string, now = new Date()): CheckLine {
  const base = { what: 'TLS', name: file || 'smtpd_tls_cert_file', required: true };
  if (!file) return { ...base, status: 'MISSING', detail: 'smtpd_tls_cert_file is empty: no STARTTLS' };
  let x: X509Certificate;
  try { x = new X509Certificate(readFileSync(file)); } catch (e) { return { ...base, status: 'MISSING', detail: `cannot read a certificate: ${(e as Error).message}` }; }
  if (new Date(x.validTo) < now || new Date(x.validFrom) > now) return { ...base, status: 'MISMATCH', detail: `not valid now (${x.validFrom} to ${x.validTo})` };
  if (!x.checkHost(myhostname)) return { ...base, status: 'MISMATCH', detail: `does not name ${myhostname} (subject ${x.subject.replace(/\n/g, ', ')})` };
  // checkIssued() wants keyCertSign, which a leaf certificate lacks: compare names and verify the signature.
  if (x.issuer === x.subject && x.verify(x.publicKey)) return { ...base, status: 'WARNING', detail: `self-signed: get one from a CA for ${myhostname} (e.g. ACME/Let's Encrypt)`, required: false };
  return { ...base, status: 'OK', detail: `issued by ${x.issuer.replace(/\n/g, ', ')}, valid until ${x.validTo}` };
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
  lines.push(certCheck(o.certFile, o.myhostname));
  return lines;
}

export function checkDepsFromConfig(cf: MainConfig): CheckDeps {
  const resolver = dnsResolverFromConfig(cf);
  const r = new Resolver({ timeout: 2000, tries: 2 });
  if (resolver.servers.length > 0) r.setServers(resolver.servers as string[]);
  return { resolver, reverse: (a) => r.reverse(a) };
}

// ---- command line ----------------------------------------------------------------------------

export interface DnsArgs {
  domain: string;
  selector: string;
  dkimDir?: string;
  ips: string[];
  check: boolean;
  mtaSts: boolean;
  tlsRpt: boolean;
}

export function parseDnsArgs(args: string[]): DnsArgs {
  const o: DnsArgs = { domain: '', selector: 'postern', ips: [], check: false, mtaSts: false, tlsRpt: false };
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const val = () => { const v = args[++i]; if (v === undefined) throw new Error(`option ${a} needs a value`); return v; };
    if (a === '--selector') o.selector = val();
    else if (a === '--dkim-key') o.dkimDir = val();
    else if (a === '--ip') o.ips.push(val());
    else if (a === '--check') o.check = true;
    else if (a === '--mta-sts') o.mtaSts = true;
    else if (a === '--tls-rpt') o.tlsRpt = true;
    else if (a.startsWith('-') && a !== '-') throw new Error(`unknown option ${a}`);
    else pos.push(a);
  }
  if (pos.length !== 1) throw new Error('give exactly one DOMAIN');
  o.domain = pos[0]!.replace(/\.$/, '').toLowerCase();
  const bad = checkDomainName(o.domain) ?? checkSelector(o.selector);
  if (bad) throw new Error(bad);
  for (const ip of o.ips) if (isIP(ip.replace(/^\[(.*)\]$/, '$1')) === 0) throw new Error(`--ip ${JSON.stringify(ip)}: not an IPv4 or IPv6 address`);
  o.ips = o.ips.map((ip) => ip.replace(/^\[(.*)\]$/, '$1'));
  return o;
}

/** Where the output goes; tests capture it (the test runner owns process.stdout). */
export interface CliOutput {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const STDIO: CliOutput = { out: (s) => { process.stdout.write(s); }, err: (s) => { process.stderr.write(s); } };

export async function main(args: string[], ctx: CliContext, io: CliOutput = STDIO): Promise<number> {
  let a: DnsArgs;
  try {
    a = parseDnsArgs(args);
  } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n${USAGE}\n`);
    return EX_USAGE;
  }
  let cf: MainConfig;
  let myhostname: string;
  try {
    cf = MainConfig.load(ctx.configDir);
    myhostname = cf.get('myhostname').toLowerCase();
  } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n`);   // ConfigError names the file and line
    return 1;
  }
  const badHost = checkDomainName(myhostname);
  if (badHost) io.err(`postern dns: warning: myhostname = ${myhostname} (${cf.file}): ${badHost}; other mail servers will not find this host\n`);
  const { addresses, source } = hostAddresses(cf, a.ips);
  const dir = a.dkimDir ?? join(ctx.configDir, 'dkim');
  const say = (l: string) => io.err(l + '\n');
  let dkim: DkimKey[];
  try { dkim = dkimKeys(dir, a.domain, a.selector, a.dkimDir !== undefined, say); } catch (e) {
    io.err(`postern dns: ${(e as Error).message}\n`);
    return 1;
  }
  const plan = {
    domain: a.domain, myhostname, addresses, addressSource: source, dkim, mtaSts: a.mtaSts, tlsRpt: a.tlsRpt,
    dkimHint: `DKIM: no key in ${dir}; run: postern dns ${a.domain} --dkim-key ${dir}`,
  };
  if (!a.check) {
    io.out(zoneText(plan));
    return 0;
  }
  const lines = await checkPublished({ ...plan, certFile: cf.get('smtpd_tls_cert_file') }, checkDepsFromConfig(cf));
  for (const l of lines) io.out(formatCheck(l) + '\n');
  const failed = lines.filter((l) => l.required && l.status !== 'OK');
  if (failed.length > 0) io.out(`postern dns: ${failed.length} of ${lines.length} checks failed; \`postern dns ${a.domain}\` prints the records to publish\n`);
  return failed.length > 0 ? 1 : 0;
}
