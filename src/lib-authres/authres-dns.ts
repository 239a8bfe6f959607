/**
 * authres-dns - the DNS questions of inbound verification (SPF, DKIM keys, DMARC policies, ARC
 * keys) asked through Postern's own resolver (util/dns-resolver.ts: `postern_dns_servers`, else
 * the system's), in the form the mailauth library expects (node:dns `resolve(name, rrtype)`:
 * TXT as string[][], MX as {exchange, priority}[], errors carrying node's codes), with a cache
 * and a deadline.
 *
 * DESCRIPTION
 *   Answers map back to the codes mailauth (and RFC 7208 §4.4/§5, RFC 6376 §6.1.2) tell apart:
 *   NOTFOUND → ENOTFOUND and NODATA → ENODATA (a "void lookup", the record does not exist),
 *   TEMP → ESERVFAIL or ETIMEOUT (a temporary error: temperror, never a permanent verdict).
 *
 *   Cache: positive answers are kept AUTHRES_DNS_TTL_MS, "does not exist" answers
 *   AUTHRES_DNS_NEGATIVE_TTL_MS, temporary failures AUTHRES_DNS_TEMP_TTL_MS (a little, so a
 *   flood of messages from one broken domain does not query it for each); at most
 *   AUTHRES_DNS_CACHE_MAX names per resolver, the oldest dropped first. The cache is shared by
 *   every user of the same servers in the process (smtpd's SPF restrictions and cleanup's
 *   verification of the same message ask each question once). Node's resolver does not give
 *   TTLs for TXT and MX, hence fixed lifetimes, shorter than the usual record TTLs.
 *
 *   Deadline: withDeadline() gives a resolver whose questions fail at once with ETIMEOUT once a
 *   time has passed, so a DNS server that never answers bounds a whole verification to
 *   postern_authres_timeout (each single question is bounded by the resolver's own 2 s × 2 tries).
 *
 *   Oversized answers: a TXT answer over AUTHRES_TXT_MAX bytes (all strings of all records) is
 *   refused as a permanent problem of the record (ENODATA for the caller, logged), so a 64 KB
 *   record costs no more than its parse.
 *
 * SECURITY
 *   Answers are data from the network: nothing here trusts their size or content.
 */
import type { DnsResolver } from '../util/dns-resolver.ts';
import { DnsError } from '../util/dns-resolver.ts';
import { logger } from '../util/msg.ts';

const log = logger('authres');

export const AUTHRES_DNS_TTL_MS = 300_000;
export const AUTHRES_DNS_NEGATIVE_TTL_MS = 60_000;
export const AUTHRES_DNS_TEMP_TTL_MS = 5_000;
export const AUTHRES_DNS_CACHE_MAX = 10_000;
/** The largest TXT answer accepted (RFC 7208 §3.4 asks records to fit 512 bytes; DKIM keys ~1 KB). */
export const AUTHRES_TXT_MAX = 16_384;

/** node:dns `resolve(name, rrtype)`, as mailauth's `resolver` option. */
export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown>;

export interface ResolverCounters { queries: number; hits: number; temp: number }

interface Entry { expires: number; value?: unknown; error?: { code: string; message: string } }

function nodeError(code: string, message: string): Error {
  const e = new Error(message) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

function codeOf(e: unknown): { code: string; message: string } {
  if (e instanceof DnsError) {
    const code = e.kind === 'NOTFOUND' ? 'ENOTFOUND' : e.kind === 'NODATA' ? 'ENODATA' : e.detail === 'ETIMEOUT' ? 'ETIMEOUT' : 'ESERVFAIL';
    return { code, message: e.message };
  }
  return { code: 'ESERVFAIL', message: (e as Error)?.message ?? String(e) };
}

export class AuthresDns {
  readonly counters: ResolverCounters = { queries: 0, hits: 0, temp: 0 };
  private readonly dns: DnsResolver;
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly now: () => number;

  /** Which servers answer (memo keys of results computed from these answers include it). */
  readonly serversKey: string;

  constructor(dns: DnsResolver, now: () => number = Date.now) { this.dns = dns; this.now = now; this.serversKey = dns.servers.join(','); }

  /** The mailauth-shaped resolver (no deadline). */
  readonly resolve: MailauthResolver = (name, rrtype) => this.lookup(name, rrtype);

  /** A resolver whose questions fail with ETIMEOUT once `deadline` (ms since the epoch) has passed. */
  withDeadline(deadline: number): MailauthResolver {
    return async (name, rrtype) => {
      const hit = this.cached(name, rrtype);   // a cached answer needs no timer
      if (hit) {
        if (hit.error) throw nodeError(hit.error.code, hit.error.message);
        return copy(hit.value);
      }
      const left = deadline - this.now();
      if (left <= 0) throw nodeError('ETIMEOUT', `queryTxt ETIMEOUT ${name}: postern_authres_timeout reached`);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, rej) => { timer = setTimeout(() => rej(nodeError('ETIMEOUT', `${rrtype} ${name}: postern_authres_timeout reached`)), left); });
      try { return await Promise.race([this.lookup(name, rrtype), late]); } finally { clearTimeout(timer); }
    };
  }

  /** A live cache entry for the question, counted as a hit; undefined when it must be asked. */
  private cached(name: string, rrtype: string): Entry | undefined {
    const hit = this.cache.get(`${rrtype.toUpperCase()} ${name.toLowerCase().replace(/\.$/, '')}`);
    if (!hit || hit.expires <= this.now()) return undefined;
    this.counters.hits++;
    return hit;
  }

  private async lookup(name: string, rrtype: string): Promise<unknown> {
    const type = rrtype.toUpperCase();
    const key = `${type} ${name.toLowerCase().replace(/\.$/, '')}`;
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.expires > now) {
      this.counters.hits++;
      if (hit.error) throw nodeError(hit.error.code, hit.error.message);
      return copy(hit.value);
    }
    if (hit) this.cache.delete(key);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.ask(name, type, key).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    } else this.counters.hits++;
    return copy(await p);
  }

  private async ask(name: string, type: string, key: string): Promise<unknown> {
    this.counters.queries++;
    try {
      const value = await this.query(name, type);
      this.put(key, { expires: this.now() + AUTHRES_DNS_TTL_MS, value });
      return value;
    } catch (e) {
      const err = (e as NodeJS.ErrnoException).code?.startsWith('E') && !(e instanceof DnsError) ? { code: (e as NodeJS.ErrnoException).code!, message: (e as Error).message } : codeOf(e);
      const temp = err.code !== 'ENOTFOUND' && err.code !== 'ENODATA';
      if (temp) {
        this.counters.temp++;
        log.info(`warning: DNS ${type} lookup for ${name} failed: ${err.message}`);
      }
      this.put(key, { expires: this.now() + (temp ? AUTHRES_DNS_TEMP_TTL_MS : AUTHRES_DNS_NEGATIVE_TTL_MS), error: err });
      throw nodeError(err.code, err.message);
    }
  }

  private put(key: string, e: Entry): void {
    if (this.cache.size >= AUTHRES_DNS_CACHE_MAX) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, e);
  }

  private async query(name: string, type: string): Promise<unknown> {
    const d = this.dns;
    switch (type) {
      case 'TXT': {
        const txt = await d.resolveTxt(name);
        let size = 0;
        for (const r of txt) for (const s of r) size += s.length;
        if (size > AUTHRES_TXT_MAX) {
          log.warn(`TXT answer for ${name} is ${size} bytes, over the ${AUTHRES_TXT_MAX}-byte limit: treated as no record`);
          throw nodeError('ENODATA', `queryTxt ENODATA ${name}: answer too large (${size} bytes)`);
        }
        return txt;
      }
      case 'A': return d.resolve4(name);
      case 'AAAA': return d.resolve6(name);
      case 'MX': return (await d.resolveMx(name)).map((m) => ({ exchange: m.exchange, priority: m.priority }));
      case 'PTR':
        if (!d.resolvePtr) throw nodeError('ENOTIMP', `PTR lookups are not available for ${name}`);
        return d.resolvePtr(name);
      default:
        // CNAME and the rest: not needed by the checks Postern runs (the DMARC Tree Walk of
        // draft DMARCbis is not used, see dmarc-eval.ts).
        throw nodeError('ENOTIMP', `${type} lookups are not supported (${name})`);
    }
  }
}

function copy(v: unknown): unknown {
  return Array.isArray(v) ? v.map((x) => (Array.isArray(x) ? x.slice() : typeof x === 'object' && x ? { ...x } : x)) : v;
}

const shared = new Map<string, AuthresDns>();

/** The process's verification resolver for these DNS servers (one cache per server list). */
export function authresDns(dns: DnsResolver): AuthresDns {
  const key = dns.servers.join(',');
  let r = shared.get(key);
  if (!r) {
    if (shared.size >= 64) shared.clear();
    r = new AuthresDns(dns);
    shared.set(key, r);
  }
  return r;
}
