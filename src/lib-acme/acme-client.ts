/**
 * acme-client - the protocol side of an ACME client (RFC 8555): directory, nonces, account,
 * orders, authorizations, challenges, finalization, certificate download, and renewal
 * information (ARI, RFC 9773) when the directory offers `renewalInfo`.
 *
 *   const c = new AcmeClient({ directoryUrl, caFile, timeoutMs: 30_000 }, accountKey);
 *   await c.account(['mailto:postmaster@example.com']);
 *   const { url, order } = await c.newOrder(['mail.example.com']);
 *   ... authorizations → c.respond(challenge.url) → c.poll(authz) ...
 *   const pem = await c.finalizeAndDownload(url, order, csr);
 *
 * The CA is a server on the network like any other, so every answer is bounded: a response
 * larger than 1 MiB (postern's certificate chains are a few KiB) or slower than the time limit
 * fails the request; JSON that is not an object of the expected shape fails it; redirects are
 * never followed (ACME has none); a URL the CA hands out must be https on the directory's own
 * host and port (a CA that tries to send the client elsewhere — another host, an internal
 * address — is refused). badNonce (§6.5) is retried once with the fresh nonce.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { b64u, jws } from './acme-crypto.ts';

export const MAX_RESPONSE = 1 << 20;

export class AcmeError extends Error {
  override name = 'AcmeError';
  /** The RFC 8555 §6.7 error type ("urn:ietf:params:acme:error:badNonce"), or '' for transport errors. */
  readonly type: string;
  readonly status: number;
  constructor(message: string, type = '', status = 0) { super(message); this.type = type; this.status = status; }
}

export interface AcmeOptions {
  directoryUrl: string;
  /** A PEM file of CAs to trust for the ACME server's own TLS certificate, besides the system's. */
  caFile?: string;
  timeoutMs: number;
  maxResponse?: number;
}

interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

export interface AcmeOrder {
  status: string;
  identifiers: { type: string; value: string }[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  error?: { type?: string; detail?: string };
}

export interface AcmeChallenge { type: string; url: string; token: string; status: string; error?: { detail?: string } }
export interface AcmeAuthorization { status: string; identifier: { type: string; value: string }; wildcard?: boolean; challenges: AcmeChallenge[] }

export class AcmeClient {
  private readonly o: Required<Omit<AcmeOptions, 'caFile'>> & { caFile?: string };
  private readonly key: KeyObject;
  private readonly ca: string[] | undefined;
  private readonly origin: string;
  private dir: Record<string, unknown> | undefined;
  private nonce: string | undefined;
  kid: string | undefined;

  constructor(o: AcmeOptions, accountKey: KeyObject) {
    this.o = { maxResponse: MAX_RESPONSE, ...o };
    this.key = accountKey;
    this.ca = o.caFile ? [...rootCertificates, readFileSync(o.caFile, 'utf8')] : undefined;
    const u = new URL(o.directoryUrl);
    if (u.protocol !== 'https:') throw new AcmeError(`postern_acme_directory must be an https URL (RFC 8555 §6.1): ${o.directoryUrl}`);
    this.origin = u.origin;
  }

  /** Refuse a URL that is not https on the directory's host and port. */
  private checkUrl(url: unknown, what: string): string {
    if (typeof url !== 'string' || url.length > 2048) throw new AcmeError(`the CA's ${what} URL is missing or malformed`);
    let u: URL;
    try { u = new URL(url); } catch { throw new AcmeError(`the CA's ${what} URL is malformed: ${url.slice(0, 100)}`); }
    if (u.origin !== this.origin) throw new AcmeError(`the CA's ${what} URL ${u.origin} is not on the directory's server ${this.origin}; refused`);
    return url;
  }

  private http(method: 'GET' | 'HEAD' | 'POST', url: string, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(url, {
        method,
        headers: { 'User-Agent': 'Postern-ACME/0.1', ...(body !== undefined ? { 'Content-Type': 'application/jose+json', 'Content-Length': Buffer.byteLength(body) } : {}) },
        ...(this.ca ? { ca: this.ca } : {}),
        agent: false,
      }, (res) => {
        const parts: Buffer[] = [];
        let n = 0;
        res.on('data', (d: Buffer) => {
          n += d.length;
          if (n > this.o.maxResponse) { req.destroy(new AcmeError(`the CA's answer to ${method} ${url} is over ${this.o.maxResponse} bytes; refused`)); return; }
          parts.push(d);
        });
        res.on('end', () => { clearTimeout(timer); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }); });
        res.on('error', (e) => { clearTimeout(timer); reject(e); });
      });
      const timer = setTimeout(() => req.destroy(new AcmeError(`no complete answer from the CA to ${method} ${url} within ${this.o.timeoutMs / 1000}s`)), this.o.timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e instanceof AcmeError ? e : new AcmeError(`cannot reach the CA at ${url}: ${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim()));
      });
      req.end(body);
    });
  }

  private static json(r: Reply, what: string): Record<string, unknown> {
    let v: unknown;
    try { v = JSON.parse(r.body.toString('utf8')); } catch { throw new AcmeError(`the CA's answer to ${what} is not JSON (HTTP ${r.status})`, '', r.status); }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new AcmeError(`the CA's answer to ${what} is not a JSON object`, '', r.status);
    return v as Record<string, unknown>;
  }

  private static problem(r: Reply, what: string): AcmeError {
    let type = '';
    let detail = r.body.toString('utf8').slice(0, 200);
    try {
      const p = JSON.parse(r.body.toString('utf8')) as { type?: unknown; detail?: unknown };
      if (typeof p.type === 'string') type = p.type;
      if (typeof p.detail === 'string') detail = p.detail.slice(0, 500);
    } catch { /* not a problem document */ }
    return new AcmeError(`${what}: HTTP ${r.status}${type ? ` ${type}` : ''}: ${detail.replace(/[^\x20-\x7e]/g, '?')}`, type, r.status);
  }

  async directory(): Promise<Record<string, unknown>> {
    if (this.dir) return this.dir;
    const r = await this.http('GET', this.o.directoryUrl);
    if (r.status >= 300 && r.status < 400) throw new AcmeError(`the ACME directory ${this.o.directoryUrl} redirects (HTTP ${r.status}); redirects are not followed`);
    if (r.status !== 200) throw AcmeClient.problem(r, `GET ${this.o.directoryUrl}`);
    const d = AcmeClient.json(r, 'the directory request');
    for (const k of ['newNonce', 'newAccount', 'newOrder']) this.checkUrl(d[k], k);
    this.dir = d;
    return d;
  }

  private async freshNonce(): Promise<string> {
    if (this.nonce) { const n = this.nonce; this.nonce = undefined; return n; }
    const d = await this.directory();
    const r = await this.http('HEAD', this.checkUrl(d.newNonce, 'newNonce'));
    const n = r.headers['replay-nonce'];
    if (typeof n !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(n)) throw new AcmeError(`the CA gave no usable Replay-Nonce (HTTP ${r.status})`);
    return n;
  }

  /** A signed POST (payload undefined = POST-as-GET); badNonce retried once. */
  async post(url: string, payload: unknown, what: string, useJwk = false): Promise<Reply> {
    this.checkUrl(url, what);
    for (let attempt = 0; ; attempt++) {
      const nonce = await this.freshNonce();
      const body = jws(this.key, { nonce, url, ...(useJwk ? {} : { kid: this.kid! }) }, payload);
      const r = await this.http('POST', url, body);
      const n = r.headers['replay-nonce'];
      if (typeof n === 'string' && /^[A-Za-z0-9_-]{1,200}$/.test(n)) this.nonce = n;
      if (r.status >= 300 && r.status < 400) throw new AcmeError(`${what}: the CA redirects (HTTP ${r.status}); redirects are not followed`);
      if (r.status >= 400) {
        const e = AcmeClient.problem(r, what);
        if (e.type === 'urn:ietf:params:acme:error:badNonce' && attempt === 0) continue;
        throw e;
      }
      return r;
    }
  }

  /** newAccount (§7.3): creates or finds the account of this key; sets `kid`. */
  async account(contact: string[]): Promise<string> {
    const d = await this.directory();
    const r = await this.post(this.checkUrl(d.newAccount, 'newAccount'), { termsOfServiceAgreed: true, ...(contact.length ? { contact } : {}) }, 'newAccount', true);
    this.kid = this.checkUrl(r.headers.location, 'account');
    return this.kid;
  }

  async newOrder(names: string[], replaces?: string): Promise<{ url: string; order: AcmeOrder }> {
    const d = await this.directory();
    const payload: Record<string, unknown> = { identifiers: names.map((value) => ({ type: 'dns', value })) };
    if (replaces && d.renewalInfo) payload.replaces = replaces;              // RFC 9773 §5
    const r = await this.post(this.checkUrl(d.newOrder, 'newOrder'), payload, 'newOrder');
    return { url: this.checkUrl(r.headers.location, 'order'), order: this.order(AcmeClient.json(r, 'newOrder')) };
  }

  private order(o: Record<string, unknown>): AcmeOrder {
    if (typeof o.status !== 'string' || !Array.isArray(o.authorizations) || o.authorizations.length > 100) throw new AcmeError('the CA sent a malformed order');
    return {
      status: o.status,
      identifiers: Array.isArray(o.identifiers) ? o.identifiers as AcmeOrder['identifiers'] : [],
      authorizations: o.authorizations.map((a) => this.checkUrl(a, 'authorization')),
      finalize: this.checkUrl(o.finalize, 'finalize'),
      ...(o.certificate !== undefined ? { certificate: this.checkUrl(o.certificate, 'certificate') } : {}),
      ...(typeof o.error === 'object' && o.error ? { error: o.error as AcmeOrder['error'] } : {}),
    };
  }

  async getOrder(url: string): Promise<AcmeOrder> { return this.order(AcmeClient.json(await this.post(url, undefined, 'order'), 'order')); }

  async authorization(url: string): Promise<AcmeAuthorization> {
    const a = AcmeClient.json(await this.post(url, undefined, 'authorization'), 'authorization');
    const ident = a.identifier as { type?: unknown; value?: unknown } | undefined;
    if (typeof a.status !== 'string' || !ident || typeof ident.value !== 'string' || !Array.isArray(a.challenges) || a.challenges.length > 20) {
      throw new AcmeError('the CA sent a malformed authorization');
    }
    const challenges: AcmeChallenge[] = [];
    for (const c of a.challenges as Record<string, unknown>[]) {
      if (typeof c?.type !== 'string' || typeof c.token !== 'string' || !/^[A-Za-z0-9_-]{1,200}$/.test(c.token)) continue;
      challenges.push({ type: c.type, url: this.checkUrl(c.url, 'challenge'), token: c.token, status: String(c.status), ...(c.error ? { error: c.error as { detail?: string } } : {}) });
    }
    return { status: a.status, identifier: { type: String(ident.type), value: ident.value }, ...(a.wildcard === true ? { wildcard: true } : {}), challenges };
  }

  /** §7.5.1: tell the CA the challenge is ready. */
  async respond(challengeUrl: string): Promise<void> { await this.post(challengeUrl, {}, 'challenge'); }

  /** Poll `get` until `done` holds, with Retry-After (capped) and an overall deadline. */
  async poll<T>(get: () => Promise<T>, done: (v: T) => boolean, deadlineMs: number, stepMs = 500): Promise<T> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      const v = await get();
      if (done(v)) return v;
      if (Date.now() + stepMs > end) throw new AcmeError(`the CA did not finish within ${Math.round(deadlineMs / 1000)}s`);
      await new Promise((r) => setTimeout(r, stepMs));
      stepMs = Math.min(stepMs * 2, 5000);
    }
  }

  /** Finalize (§7.4) with the CSR, wait for `valid`, download the PEM chain (§7.4.2). */
  async finalizeAndDownload(orderUrl: string, order: AcmeOrder, csr: Buffer, deadlineMs: number): Promise<string> {
    let o = order;
    if (o.status === 'ready') o = this.order(AcmeClient.json(await this.post(o.finalize, { csr: b64u(csr) }, 'finalize'), 'finalize'));
    o = await this.poll(() => this.getOrder(orderUrl), (x) => x.status === 'valid' || x.status === 'invalid', deadlineMs);
    if (o.status !== 'valid' || !o.certificate) throw new AcmeError(`the order became ${o.status}${o.error?.detail ? `: ${o.error.detail}` : ''}`);
    const r = await this.post(o.certificate, undefined, 'certificate');
    const pem = r.body.toString('utf8');
    if (!/^-----BEGIN CERTIFICATE-----/.test(pem.trimStart())) throw new AcmeError('the CA\'s certificate download is not a PEM certificate chain');
    try { new X509Certificate(pem); } catch (e) { throw new AcmeError(`the CA's certificate does not parse: ${(e as Error).message}`); }
    return pem;
  }

  /**
   * ARI (RFC 9773 §4.2): the CA's suggested renewal window for a certificate, or undefined when
   * the directory has no renewalInfo or the answer is unusable (the caller uses 2/3 of the lifetime).
   */
  async renewalInfo(certPem: string): Promise<{ start: Date; end: Date } | undefined> {
    const d = await this.directory();
    if (d.renewalInfo === undefined) return undefined;
    const base = this.checkUrl(d.renewalInfo, 'renewalInfo');
    const id = ariCertId(certPem);
    if (!id) return undefined;
    const r = await this.http('GET', `${base.replace(/\/$/, '')}/${id}`);
    if (r.status !== 200) return undefined;
    const j = AcmeClient.json(r, 'renewalInfo');
    const w = j.suggestedWindow as { start?: unknown; end?: unknown } | undefined;
    const start = new Date(String(w?.start)); const end = new Date(String(w?.end));
    if (isNaN(start.getTime()) || isNaN(end.getTime()) || end < start) return undefined;
    return { start, end };
  }
}

/** RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial DER INTEGER contents). */
export function ariCertId(certPem: string): string | undefined {
  const x = new X509Certificate(certPem);
  const raw = x.raw;
  const akiOid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  const at = raw.indexOf(akiOid);
  if (at < 0) return undefined;
  // OID, [BOOLEAN critical], OCTET STRING { SEQUENCE { [0] keyIdentifier ... } }
  let p = at + akiOid.length;
  if (raw[p] === 0x01) p += 3;
  if (raw[p] !== 0x04) return undefined;
  p += lenBytes(raw, p + 1) + 1;
  if (raw[p] !== 0x30) return undefined;
  p += lenBytes(raw, p + 1) + 1;
  if (raw[p] !== 0x80) return undefined;
  const n = raw[p + 1]!;
  const kid = raw.subarray(p + 2, p + 2 + n);
  let serial = Buffer.from(x.serialNumber.length % 2 ? `0${x.serialNumber}` : x.serialNumber, 'hex');
  if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${b64u(kid)}.${b64u(serial)}`;
}

/** Number of bytes of a DER length field starting at `at` (1 for short form). */
function lenBytes(b: Buffer, at: number): number {
  const first = b[at]!;
  return first < 0x80 ? 1 : 1 + (first & 0x7f);
}
