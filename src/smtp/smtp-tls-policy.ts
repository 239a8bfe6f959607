/**
 * smtp-tls-policy - which TLS security level smtp(8)/lmtp(8) applies to a destination and to
 * each server address, after Postfix smtp/smtp_tls_policy.c and TLS_README "Client-side TLS
 * security levels":
 *
 *   none < may < encrypt < fingerprint < dane < dane-only < verify < secure
 *
 * Order of precedence for one delivery (first that applies wins):
 *   1. smtp_tls_policy_maps, looked up with the nexthop as written ("[mx.example.com]:587",
 *      "example.com"), then without a ":port", then the parent domains as ".example.com".
 *      Entry syntax: `level [match=a:b] [protocols=...] [ciphers=...] [exclude=...]`; for
 *      fingerprint the match separator is "|" (a fingerprint contains ':'). A bad entry defers
 *      the mail ("TLS policy lookup for X: invalid TLS security level ...") and never falls back
 *      to plaintext.
 *   2. DANE (RFC 7672) when the level is dane/dane-only: `_port._tcp.<host>` TLSA records,
 *      trusted only when the resolver set the AD bit and smtp_dns_support_level = dnssec.
 *      Without validated records dane is `may` and dane-only defers. Validated records that
 *      are all unusable (usage 0/1, unknown selector/matching type, wrong digest length) mean
 *      `encrypt` (RFC 7672 §2.2), each logged "unusable TLSA RR: 3 1 255 0011" as Postfix.
 *   3. MTA-STS (RFC 8461, postern_mta_sts = yes, not for [host] nexthops): enforce → `secure`
 *      with the certificate matched against the MX host name and the MX host required to match
 *      the policy's mx: patterns; testing → `may` with what would have failed logged.
 *   4. smtp_tls_security_level (dane degrades to may when smtp_dns_support_level ≠ dnssec).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { isIP } from 'node:net';
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import type { Logger } from '../util/msg.ts';
import { DnsError, type DnsResolver, type TlsaRecord } from '../util/dns-resolver.ts';
import { MtaStsCache, type MtaStsOptions, mxPatternMatches, type MtaStsPolicy } from './smtp-tls-mta-sts.ts';

export type TlsLevel = 'none' | 'may' | 'encrypt' | 'fingerprint' | 'dane' | 'dane-only' | 'verify' | 'secure';
const LEVELS: readonly TlsLevel[] = ['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure'];

/** Levels where STARTTLS is mandatory (Postfix TLS_REQUIRED: level > may). */
export function tlsRequired(l: TlsLevel): boolean { return l !== 'none' && l !== 'may'; }
/** Levels where the peer must be authenticated (Postfix TLS_MUST_MATCH: level > encrypt). */
export function tlsMustMatch(l: TlsLevel): boolean { return tlsRequired(l) && l !== 'encrypt'; }

export function parseTlsLevel(v: string): TlsLevel | undefined {
  const s = v.trim().toLowerCase();
  if (s === '') return 'none';
  return (LEVELS as readonly string[]).includes(s) ? s as TlsLevel : undefined;
}

/** The policy for one destination (before the per-address DANE step). */
export interface TlsDestPolicy {
  level: TlsLevel;
  /** verify/secure: match strategies or names; fingerprint: fingerprints (upper-case hex with ':'). */
  match: string[];
  protocols?: string;
  ciphers?: string;
  /** The domain used for "nexthop"/"dot-nexthop" matching ([] and :port removed). */
  nexthopDomain: string;
  /** Where the level came from, for logs: "smtp_tls_policy_maps", "MTA-STS", "main.cf". */
  source: string;
  mtaSts?: MtaStsPolicy & { domain: string };
}

/** The policy for one server address. */
export interface TlsHostPolicy extends TlsDestPolicy {
  /** Usable, validated TLSA records (level dane only). */
  tlsa?: TlsaRecord[];
  /** CA certificates for chain verification (smtp_tls_CAfile, smtp_tls_CApath, tls_append_default_CA). */
  ca: string[];
  fingerprintDigest: string;
}

/** A destination or address that must not be tried: defer with this text (4.7.5). */
export interface TlsPolicyRefusal { refuse: string; dsn: string }

export function isRefusal(x: unknown): x is TlsPolicyRefusal { return typeof x === 'object' && x !== null && 'refuse' in x; }

/** Postfix's canonical fingerprint form: upper-case hex pairs joined by ':'. */
export function normalizeFingerprint(s: string): string {
  const hex = s.replace(/^(md5|sha1|sha224|sha256|sha384|sha512):(?=[0-9a-f]{2}[:0-9a-f])/i, '').replace(/:/g, '').toUpperCase();
  return hex.match(/../g)?.join(':') ?? hex;
}

/**
 * Postfix cipher grades (postconf(5) smtp_tls_ciphers: export, low, medium, high, null) → an
 * OpenSSL cipher list; undefined = Node's default. TLS 1.3 suites are not affected by grades,
 * as in Postfix.
 */
export function cipherGrade(grade: string | undefined): string | undefined {
  switch ((grade ?? '').trim().toLowerCase()) {
    case 'high': return 'HIGH:!aNULL:!eNULL';
    case 'medium': return 'HIGH:MEDIUM:!aNULL:!eNULL';
    case 'low': case 'export': return 'DEFAULT:!aNULL:!eNULL';
    default: return undefined;
  }
}

/** Parse one smtp_tls_policy_maps value. Throws Error with the reason. */
export function parsePolicyEntry(value: string): { level: TlsLevel; match?: string[]; protocols?: string; ciphers?: string } {
  const words = value.trim().split(/\s+/).filter(Boolean);
  const level = parseTlsLevel(words[0] ?? '');
  if (!words.length || !level) throw new Error(`invalid TLS security level "${words[0] ?? ''}"`);
  const out: { level: TlsLevel; match?: string[]; protocols?: string; ciphers?: string } = { level };
  for (const w of words.slice(1)) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new Error(`malformed attribute "${w}" (expected name=value)`);
    const k = w.slice(0, eq).toLowerCase();
    const v = w.slice(eq + 1);
    switch (k) {
      case 'match':
        // smtp_tls_policy.c: fingerprints are '|'-separated, names ':'-separated.
        out.match = (level === 'fingerprint' ? v.split('|') : v.split(':')).map((x) => x.trim()).filter(Boolean);
        if (level === 'fingerprint') out.match = out.match.map(normalizeFingerprint);
        break;
      case 'protocols': out.protocols = v; break;
      case 'ciphers': out.ciphers = v; break;
      case 'exclude': case 'tafile': case 'connection_reuse': case 'servername': case 'enable_rpk': break; // accepted, not used
      default: throw new Error(`unknown attribute "${k}"`);
    }
  }
  return out;
}

/** The lookup keys for one nexthop, in order. */
export function policyKeys(nexthop: string): string[] {
  const n = nexthop.trim().toLowerCase();
  const keys = [n];
  const bare = /^(\[[^\]]+\]|[^:[\]]+):(\d+)$/.exec(n);
  if (bare) keys.push(bare[1]!);
  const host = bare ? bare[1]! : n;
  if (!host.startsWith('[')) {
    const labels = host.split('.');
    for (let i = 1; i < labels.length; i++) keys.push('.' + labels.slice(i).join('.'));
  }
  return [...new Set(keys)];
}

/** "[mx.example.com]:587" → "mx.example.com"; "example.com:2525" → "example.com". */
export function nexthopDomain(nexthop: string): string {
  const n = nexthop.trim().toLowerCase();
  const b = /^\[([^\]]+)\]/.exec(n);
  if (b) return b[1]!.replace(/^ipv6:/, '');
  return n.replace(/:\d+$/, '');
}

/** The CA certificates (PEM) of <prefix>tls_CAfile, <prefix>tls_CApath and tls_append_default_CA. */
export function loadCa(config: MainConfig, P: (n: string) => string, log: Logger): string[] {
  const out: string[] = [];
  const file = config.get(P('tls_CAfile')).trim();
  const dir = config.get(P('tls_CApath')).trim();
  if (file) {
    try { out.push(...splitPem(readFileSync(file, 'utf8'))); } catch (e) { log.warn(`cannot read ${P('tls_CAfile')} = ${file}: ${(e as Error).message}`); }
  }
  if (dir) {
    try {
      for (const f of readdirSync(dir).sort()) {
        const p = join(dir, f);
        try { if (statSync(p).isFile()) out.push(...splitPem(readFileSync(p, 'utf8'))); } catch { /* unreadable entry: skip */ }
      }
    } catch (e) { log.warn(`cannot read ${P('tls_CApath')} = ${dir}: ${(e as Error).message}`); }
  }
  // Postfix uses only the configured CAs unless tls_append_default_CA = yes.
  if (config.bool('tls_append_default_CA')) out.push(...rootCertificates);
  return out;
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

/** RFC 7672 §3.1: usable TLSA records for SMTP are DANE-TA(2) and DANE-EE(3). */
function tlsaUsable(r: TlsaRecord): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  if (r.matchingType === 1) return r.data.length === 32;
  if (r.matchingType === 2) return r.data.length === 64;
  return r.matchingType === 0 && r.data.length > 0;
}

/**
 * The TLS policy of one smtp(8) or lmtp(8) agent for this configuration, as the agent builds it
 * (smtp.ts) and `postern explain` asks it: the smtp_ or lmtp_ parameters, and for smtp with
 * postern_mta_sts = yes an MTA-STS cache (RFC 8461, Postern's own switch: Postfix needs a
 * policy daemon for it).
 */
export function agentTlsPolicy(config: MainConfig, lmtp: boolean, resolver: () => DnsResolver, log: Logger, onPolicyError?: MtaStsOptions['onPolicyError']): SmtpTlsPolicy {
  const pfx = lmtp ? 'lmtp_' : 'smtp_';
  return new SmtpTlsPolicy({
    config, prefix: pfx, resolver, log,
    mtaSts: !lmtp && config.bool('postern_mta_sts')
      ? new MtaStsCache({ resolver, port: config.int('postern_mta_sts_port'), ca: loadCa(config, (n) => pfx + n, log), timeoutMs: config.time('postern_mta_sts_timeout') * 1000, log, ...(onPolicyError ? { onPolicyError } : {}) })
      : undefined,
  });
}

export interface SmtpTlsPolicyOptions {
  config: MainConfig;
  /** "smtp_" or "lmtp_". */
  prefix: string;
  resolver: () => DnsResolver;
  log: Logger;
  mtaSts?: MtaStsCache;
}

export class SmtpTlsPolicy {
  readonly defaultLevel: TlsLevel | undefined;
  private readonly o: SmtpTlsPolicyOptions;
  private maps: Promise<Maps> | undefined;
  private readonly mapsSpec: string;
  private ca: string[] | undefined;
  private readonly dnssec: boolean;
  private warnedDane = false;
  readonly mtaSts: MtaStsCache | undefined;

  constructor(o: SmtpTlsPolicyOptions) {
    this.o = o;
    const P = (n: string) => o.prefix + n;
    this.defaultLevel = parseTlsLevel(o.config.get(P('tls_security_level')));
    this.mapsSpec = o.config.get(P('tls_policy_maps')).trim();
    this.dnssec = o.config.get(P('dns_support_level')).trim().toLowerCase() === 'dnssec'
      || (o.prefix === 'lmtp_' && o.config.get('smtp_dns_support_level').trim().toLowerCase() === 'dnssec');
    this.mtaSts = o.mtaSts;
  }

  private P(n: string): string { return this.o.prefix + n; }

  private matchFor(level: TlsLevel): string[] {
    const c = this.o.config;
    if (level === 'verify') return c.list(this.P('tls_verify_cert_match'));
    if (level === 'secure') return c.list(this.P('tls_secure_cert_match'));
    if (level === 'fingerprint') return c.list(this.P('tls_fingerprint_cert_match')).map(normalizeFingerprint);
    return [];
  }

  /** Postfix: smtp_tls_mandatory_protocols for levels that require TLS, smtp_tls_protocols otherwise. */
  private protocolsFor(level: TlsLevel): string {
    return this.o.config.get(this.P(tlsRequired(level) ? 'tls_mandatory_protocols' : 'tls_protocols'));
  }

  /** The policy for one nexthop (policy maps, MTA-STS, main.cf). `mxLookup` = the nexthop is not [bracketed]. */
  async forDestination(nexthop: string, mxLookup: boolean): Promise<TlsDestPolicy | TlsPolicyRefusal> {
    const domain = nexthopDomain(nexthop);
    if (this.mapsSpec) {
      this.maps ??= Maps.open(this.mapsSpec, { paramName: this.P('tls_policy_maps') });
      const maps = await this.maps;
      for (const key of policyKeys(nexthop)) {
        let v: string | undefined;
        try { v = await maps.find(key); } catch (e) {
          return { refuse: `TLS policy lookup for ${nexthop}: ${(e as Error).message}`, dsn: '4.3.0' };
        }
        if (v === undefined) continue;
        let e: ReturnType<typeof parsePolicyEntry>;
        try { e = parsePolicyEntry(v); } catch (err) {
          this.o.log.warn(`${this.P('tls_policy_maps')}: ${key}: ${(err as Error).message}`);
          return { refuse: `TLS policy lookup for ${nexthop}: ${(err as Error).message}`, dsn: '4.7.5' };
        }
        return { level: e.level, match: e.match ?? this.matchFor(e.level), protocols: e.protocols ?? this.protocolsFor(e.level), ciphers: cipherGrade(e.ciphers), nexthopDomain: domain, source: this.P('tls_policy_maps') };
      }
    }
    if (this.defaultLevel === undefined) {
      return { refuse: `TLS configuration problem: invalid ${this.P('tls_security_level')} = ${this.o.config.get(this.P('tls_security_level'))}`, dsn: '4.7.5' };
    }
    const dflt = this.defaultLevel;
    const protocols = this.protocolsFor(dflt);
    // RFC 8461 §2: DANE, when in force, wins over MTA-STS.
    if (this.mtaSts && mxLookup && !(dflt === 'dane' || dflt === 'dane-only') && !isIP(domain)) {
      const sts = await this.mtaSts.lookup(domain);
      if (sts && sts.mode === 'enforce') return { level: 'secure', match: ['hostname'], protocols: this.protocolsFor('secure'), nexthopDomain: domain, source: 'MTA-STS', mtaSts: { ...sts, domain } };
      if (sts && sts.mode === 'testing') return { level: dflt === 'none' ? 'may' : dflt, match: this.matchFor(dflt), protocols, nexthopDomain: domain, source: 'MTA-STS', mtaSts: { ...sts, domain } };
    }
    return { level: dflt, match: this.matchFor(dflt), protocols, nexthopDomain: domain, source: 'main.cf' };
  }

  /** The policy for one server address: DANE TLSA lookup, MTA-STS mx check, CA list. */
  async forHost(d: TlsDestPolicy, host: string, addr: string, port: number): Promise<TlsHostPolicy | TlsPolicyRefusal> {
    this.ca ??= loadCa(this.o.config, (n) => this.P(n), this.o.log);
    const base: TlsHostPolicy = { ...d, ca: this.ca, fingerprintDigest: this.o.config.get(this.P('tls_fingerprint_digest')).trim().toLowerCase() || 'sha256' };
    if (d.mtaSts?.mode === 'enforce' && !d.mtaSts.mx.some((p) => mxPatternMatches(p, host))) {
      // RFC 8461 §4.1: an MX host that matches no "mx" pattern of an enforced policy is not used.
      return { refuse: `MX host ${host} does not match the MTA-STS policy of ${d.mtaSts.domain}`, dsn: '4.7.5' };
    }
    if (d.level !== 'dane' && d.level !== 'dane-only') return base;
    const danePolicy = (why: string): TlsHostPolicy | TlsPolicyRefusal => {
      if (d.level === 'dane-only') return { refuse: `TLS is required, but ${why}`, dsn: '4.7.5' };
      return { ...base, level: 'may' };
    };
    if (!this.dnssec) {
      if (!this.warnedDane) {
        this.warnedDane = true;
        this.o.log.warn(`DANE TLS authentication is not available: ${this.P('dns_support_level')} is not "dnssec"; using "may" for ${d.level === 'dane' ? 'dane' : 'dane-only'} destinations`);
      }
      return danePolicy(`DNSSEC is not enabled (${this.P('dns_support_level')} = dnssec)`);
    }
    if (isIP(host)) return danePolicy(`host ${host}[${addr}] has no DNSSEC-validated TLSA records`);
    const r = this.o.resolver();
    if (!r.resolveTlsa) return danePolicy('the resolver cannot look up TLSA records');
    const qname = `_${port}._tcp.${host}`;
    let ans;
    try {
      ans = await r.resolveTlsa(qname);
    } catch (e) {
      if (e instanceof DnsError && e.kind !== 'TEMP') return danePolicy(`host ${host}[${addr}] has no DNSSEC-validated TLSA records`);
      // RFC 7672 §2.2.1: a failed TLSA lookup for a secure name must not become plaintext.
      return { refuse: `TLSA lookup error for ${host}:${port}`, dsn: '4.7.5' };
    }
    if (!ans.secure || ans.records.length === 0) return danePolicy(`host ${host}[${addr}] has no DNSSEC-validated TLSA records`);
    const usable = ans.records.filter(tlsaUsable);
    for (const rr of ans.records) if (!tlsaUsable(rr)) this.o.log.warn(`${host}[${addr}]:${port}: unusable TLSA RR: ${rr.usage} ${rr.selector} ${rr.matchingType} ${rr.data.toString('hex')}`);
    // RFC 7672 §2.2: validated but unusable TLSA records: mandatory TLS without authentication.
    if (usable.length === 0) return { ...base, level: 'encrypt' };
    return { ...base, level: 'dane', tlsa: usable, match: ['hostname', 'nexthop'] };
  }
}
