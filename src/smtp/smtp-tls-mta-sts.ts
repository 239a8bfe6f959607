/**
 * smtp-tls-mta-sts - MTA-STS (RFC 8461) for smtp(8): discover a domain's policy, fetch it over
 * HTTPS, cache it for max_age. Postfix needs an external policy daemon for this
 * (postfix-mta-sts-resolver behind smtp_tls_policy_maps); Postern does it itself when
 * `postern_mta_sts = yes`.
 *
 *   1. `_mta-sts.<domain>` TXT: exactly one record starting "v=STSv1" with an id (§3.1).
 *      Several such records, or none, mean no policy.
 *   2. A cached policy with that id and not older than its max_age is used as is (§5.1).
 *   3. Else GET https://mta-sts.<domain>/.well-known/mta-sts.txt (§3.3): certificate valid for
 *      mta-sts.<domain> against the smtp_tls_CAfile/CApath CAs plus the system's WebPKI roots,
 *      no redirects, status 200, Content-Type text/plain, at most 64 KiB, within
 *      postern_mta_sts_timeout.
 *   4. The body (§3.2): "key: value" lines (LF or CRLF); version STSv1, mode
 *      enforce|testing|none, one or more mx patterns, max_age ≤ 31557600.
 *   A failed refresh keeps using an unexpired cached policy (§5.1).
 *
 * `postern_mta_sts_port` (default 443) exists for tests: the policy host is reached on another
 * port (a loopback HTTPS server), because 443 is not available to an unprivileged test. The
 * policy host's address comes from the agent's own resolver (postern_dns_servers), so tests
 * point mta-sts.<domain> at 127.0.0.1 in their loopback zone.
 */
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { LookupFunction } from 'node:net';
import type { DnsResolver } from '../util/dns-resolver.ts';
import type { Logger } from '../util/msg.ts';

export interface MtaStsPolicy {
  mode: 'enforce' | 'testing' | 'none';
  mx: string[];
  maxAge: number;
  id: string;
  fetchedAt: number;
}

const MAX_BODY = 64 * 1024;
const MAX_AGE_LIMIT = 31557600;

/** RFC 8461 §3.2. Throws Error("line N: ...") for a malformed policy. */
export function parseMtaStsPolicy(text: string): Omit<MtaStsPolicy, 'id' | 'fetchedAt'> {
  let version: string | undefined;
  let mode: string | undefined;
  let maxAge: number | undefined;
  const mx: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '') continue;
    const m = /^([A-Za-z0-9_]+)[ \t]*:[ \t]*(.*?)[ \t]*$/.exec(l);
    if (!m) throw new Error(`line ${i + 1}: expected "key: value"`);
    const k = m[1]!.toLowerCase();
    const v = m[2]!;
    if (k === 'version') version ??= v;
    else if (k === 'mode') mode ??= v;
    else if (k === 'max_age') {
      if (!/^\d{1,10}$/.test(v)) throw new Error(`line ${i + 1}: bad max_age "${v.slice(0, 40)}"`);
      maxAge ??= Math.min(Number(v), MAX_AGE_LIMIT);
    } else if (k === 'mx') {
      if (!/^(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(v)) throw new Error(`line ${i + 1}: bad mx pattern "${v.slice(0, 80)}"`);
      mx.push(v.toLowerCase().replace(/\.$/, ''));
    } // §3.2: unknown fields are ignored
  }
  if (version !== 'STSv1') throw new Error('version is not STSv1');
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') throw new Error(`bad mode "${mode ?? ''}"`);
  if (maxAge === undefined) throw new Error('max_age is missing');
  if (mode !== 'none' && mx.length === 0) throw new Error('no mx pattern');
  return { mode, mx, maxAge };
}

/** §3.1: the id of the single v=STSv1 TXT record, or undefined. */
export function mtaStsRecordId(txt: string[][]): string | undefined {
  const recs = txt.map((chunks) => chunks.join('')).filter((t) => /^v=STSv1\s*(;|$)/.test(t));
  if (recs.length !== 1) return undefined;
  const id = /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(;|$)/.exec(recs[0]!);
  return id?.[1];
}

/** §4.1: "*.example.com" matches exactly one more label; otherwise an exact, case-insensitive match. */
export function mxPatternMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) {
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  }
  return h === p;
}

export interface MtaStsOptions {
  resolver: () => DnsResolver;
  port: number;
  /** Extra trusted CAs (PEM), e.g. smtp_tls_CAfile. */
  ca: string[];
  timeoutMs: number;
  log: Logger;
  now?: () => number;
  /**
   * Told when a domain announces a policy (TXT) that cannot be had and no cached one is valid
   * (TLS-RPT, RFC 8460 §4.3.2: sts-policy-fetch-error or sts-policy-invalid).
   */
  onPolicyError?: (domain: string, kind: 'sts-policy-fetch-error' | 'sts-policy-invalid', why: string) => void;
}

export class MtaStsCache {
  private readonly o: MtaStsOptions;
  private readonly cache = new Map<string, MtaStsPolicy>();
  /** Policy fetches made (tests check caching). */
  fetches = 0;

  constructor(o: MtaStsOptions) { this.o = o; }

  private now(): number { return (this.o.now ?? Date.now)(); }

  /** The policy in force for a domain, or undefined (no policy, or none could be had). */
  async lookup(domain: string): Promise<MtaStsPolicy | undefined> {
    const d = domain.toLowerCase();
    const cached = this.cache.get(d);
    const fresh = cached && this.now() - cached.fetchedAt < cached.maxAge * 1000 ? cached : undefined;
    let id: string | undefined;
    try {
      id = mtaStsRecordId(await this.o.resolver().resolveTxt(`_mta-sts.${d}`));
    } catch {
      return fresh; // §5.1: a DNS failure does not remove a valid cached policy
    }
    if (!id) return fresh;
    if (fresh && fresh.id === id) return fresh;
    let invalid = false;
    try {
      this.fetches++;
      const body = await this.fetch(d);
      invalid = true;
      const p: MtaStsPolicy = { ...parseMtaStsPolicy(body), id, fetchedAt: this.now() };
      this.cache.set(d, p);
      this.o.log.info(`MTA-STS policy for ${d}: mode=${p.mode} mx=${p.mx.join(',')} max_age=${p.maxAge} id=${id}`);
      return p.mode === 'none' ? undefined : p;
    } catch (e) {
      this.o.log.warn(`MTA-STS policy fetch for ${d} failed: ${(e as Error).message}`);
      if (!fresh) this.o.onPolicyError?.(d, invalid ? 'sts-policy-invalid' : 'sts-policy-fetch-error', (e as Error).message);
      return fresh;
    }
  }

  private fetch(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const resolver = this.o.resolver();
    const lookup: LookupFunction = (name, opts, cb) => {
      resolver.resolve4(name).then((a) => {
        if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, a.map((x) => ({ address: x, family: 4 })));
        else cb(null, a[0]!, 4);
      }, (e: Error) => cb(Object.assign(e, { code: 'ENOTFOUND' }) as NodeJS.ErrnoException, '', 4));
    };
    return new Promise((resolve, reject) => {
      const req = request({
        host, port: this.o.port, path: '/.well-known/mta-sts.txt', method: 'GET', servername: host,
        ca: [...this.o.ca, ...rootCertificates], lookup, timeout: this.o.timeoutMs, agent: false,
        headers: { 'User-Agent': 'Postern-MTA-STS' },
      }, (res) => {
        // §3.3: "HTTP 3xx redirects MUST NOT be followed"; only 200 counts.
        if (res.statusCode !== 200) { res.resume(); reject(new Error(`https://${host}/.well-known/mta-sts.txt: HTTP status ${res.statusCode}`)); return; }
        const ct = String(res.headers['content-type'] ?? '');
        if (!/^text\/plain\b/i.test(ct)) { res.resume(); reject(new Error(`https://${host}/.well-known/mta-sts.txt: Content-Type is "${ct}", not text/plain`)); return; }
        const parts: Buffer[] = [];
        let n = 0;
        res.on('data', (b: Buffer) => {
          n += b.length;
          if (n > MAX_BODY) { req.destroy(new Error(`policy larger than ${MAX_BODY} bytes`)); return; }
          parts.push(b);
        });
        res.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => reject(e));
      req.end();
    });
  }
}
