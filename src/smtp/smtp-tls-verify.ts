/**
 * smtp-tls-verify - after the STARTTLS handshake, decide what smtp(8) knows about the server's
 * certificate and say it in Postfix 3.7's words (checked against real Postfix's smtp client):
 *
 *   Verified TLS connection established to mx[addr]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384
 *     (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256
 *   Trusted ...    the chain verifies against smtp_tls_CAfile/CApath (levels may and encrypt)
 *   Untrusted ...  anything else
 *
 * and, before that line, when a level needs authentication and it failed:
 *   certificate verification failed for mx[addr]:25: untrusted issuer /CN=Some CA
 *   certificate verification failed for mx[addr]:25: self-signed certificate
 *   server certificate verification failed for mx[addr]:25: num=62:hostname mismatch
 *   server certificate verification failed for mx[addr]:25: num=64:IP address mismatch
 *   server certificate verification failed for mx[addr]:25: num=1:unspecified certificate verification error  (fingerprint)
 *   server certificate verification failed for mx[addr]:25: num=65:No matching DANE TLSA records  (dane)
 * The caller then defers with "Server certificate not verified" (4.7.5).
 *
 * Matching (TLS_README, postconf(5) smtp_tls_verify_cert_match / smtp_tls_secure_cert_match):
 * "hostname" = the server's name, "nexthop" = the nexthop domain, "dot-nexthop" = its
 * subdomains, "example.com" = that name, ".example.com" = its subdomains. Certificate names are
 * the subjectAltName DNS entries, or the CN when there are none; "*.example.com" in a
 * certificate matches one label.
 *
 * DANE (RFC 7672 §3, RFC 6698 §2.1): DANE-EE(3) matches the leaf, with no name or date check;
 * DANE-TA(2) matches a certificate the server sent above the leaf, the chain from the leaf up
 * to it must verify, and the leaf must match the MX host name or the nexthop. Selector 0 = the
 * whole certificate, 1 = the SubjectPublicKeyInfo; matching 0 = exact, 1 = SHA-256, 2 = SHA-512.
 * A DANE-TA key published only in DNS (not sent by the server) is not supported.
 *
 * The "server-signature"/"server-digest" part: Node does not expose the signature scheme the
 * server used, so it is derived from the key (RSA → RSA-PSS as OpenSSL 3 negotiates it, EC →
 * ECDSA (curve) with the curve's hash, Ed25519 without digest).
 */
import { createHash, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { TlsaRecord } from '../util/dns-resolver.ts';
import type { TlsHostPolicy } from './smtp-tls-policy.ts';
import { cipherDescription, signatureDescription } from '../lib-tls/tls-describe.ts';

export type TlsTrust = 'Verified' | 'Trusted' | 'Untrusted';

export interface TlsPeerVerdict {
  trust: TlsTrust;
  /** The authentication requirement of the level is met. */
  matched: boolean;
  /** The "... verification failed ..." log line, when the level required it and it failed. */
  failure?: string;
}

/** "TLSv1.3 with cipher X (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256". */
export function describeTlsClient(t: TLSSocket): string {
  let s = cipherDescription(t);
  const ek = t.getEphemeralKeyInfo() as { type?: string; name?: string; size?: number } | null;
  if (ek && ek.type) s += ` key-exchange ${ek.name ?? `${ek.type} (${ek.size} bits)`}`;
  const sig = signatureDescription(t.getPeerCertificate() as DetailedPeerCertificate);
  return sig ? `${s} ${sig}` : s;
}

/** OpenSSL's X509_NAME_oneline form: "/C=US/O=Example/CN=Some CA". */
function oneline(n: Record<string, string | string[]> | undefined): string {
  if (!n) return '';
  return Object.entries(n).map(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `/${k}=${x}`).join('')).join('');
}

/** The certificate's DNS names: subjectAltName DNS entries, else the CN (RFC 6125 §6.4.4). */
export function certNames(p: { subjectaltname?: string; subject?: unknown }): string[] {
  const peer = p as { subjectaltname?: string; subject?: Record<string, string | string[]> };
  const san = (peer.subjectaltname ?? '').split(/,\s*/).filter((x) => x.startsWith('DNS:')).map((x) => x.slice(4).toLowerCase());
  if (san.length) return san;
  const cn = peer.subject?.CN;
  return (Array.isArray(cn) ? cn : cn ? [cn] : []).map((x) => x.toLowerCase());
}

function nameMatches(certName: string, want: string, subdomains: boolean): boolean {
  const w = want.toLowerCase().replace(/\.$/, '');
  if (subdomains) {
    // ".example.com": any name below example.com; a wildcard "*.x.example.com" also qualifies.
    const c = certName.startsWith('*.') ? certName.slice(1) : certName;
    return c.endsWith(w) && c.length > w.length;
  }
  if (certName === w) return true;
  if (certName.startsWith('*.')) {
    const dot = w.indexOf('.');
    return dot > 0 && w.slice(dot + 1) === certName.slice(2);
  }
  return false;
}

/** Whether the certificate matches any of the match strategies/names. */
export function certMatches(names: string[], match: string[], host: string, nexthop: string): boolean {
  for (const m0 of match) {
    const m = m0.toLowerCase();
    let want: string; let sub = false;
    if (m === 'hostname') want = host;
    else if (m === 'nexthop') want = nexthop;
    else if (m === 'dot-nexthop') { want = '.' + nexthop; sub = true; }
    else if (m.startsWith('.')) { want = m; sub = true; }
    else want = m;
    if (names.some((n) => nameMatches(n, want, sub))) return true;
  }
  return false;
}

function digestHex(alg: string, data: Buffer): string | undefined {
  try { return createHash(alg).update(data).digest('hex').toUpperCase().match(/../g)!.join(':'); } catch { return undefined; }
}

function spkiOf(raw: Buffer): Buffer {
  return new X509Certificate(raw).publicKey.export({ type: 'spki', format: 'der' });
}

/** RFC 6698 §2.1.2-2.1.3: does the certificate (DER) match the TLSA record? */
export function tlsaMatches(r: TlsaRecord, certDer: Buffer): boolean {
  let data: Buffer;
  try { data = r.selector === 0 ? certDer : spkiOf(certDer); } catch { return false; }
  const h = r.matchingType === 0 ? data : createHash(r.matchingType === 1 ? 'sha256' : 'sha512').update(data).digest();
  return h.equals(r.data);
}

/** The chain the server sent, leaf first (getPeerCertificate(true) links, loop-safe). */
function sentChain(peer: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const out: DetailedPeerCertificate[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = peer; c && c.raw && out.length < 10; c = c.issuerCertificate) {
    const fp = c.fingerprint256;
    if (seen.has(fp)) break;
    seen.add(fp);
    out.push(c);
  }
  return out;
}

function chainVerifiesTo(chain: DetailedPeerCertificate[], top: number): boolean {
  try {
    for (let i = 0; i < top; i++) {
      const child = new X509Certificate(chain[i]!.raw);
      const parent = new X509Certificate(chain[i + 1]!.raw);
      if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) return false;
      const now = Date.now();
      if (Date.parse(child.validFrom) > now || Date.parse(child.validTo) < now) return false;
    }
    return true;
  } catch { return false; }
}

function daneMatch(p: TlsHostPolicy, peer: DetailedPeerCertificate, host: string): boolean {
  const chain = sentChain(peer);
  for (const r of p.tlsa ?? []) {
    if (r.usage === 3 && tlsaMatches(r, peer.raw)) return true;
    if (r.usage === 2) {
      for (let i = 1; i < chain.length; i++) {
        if (tlsaMatches(r, chain[i]!.raw) && chainVerifiesTo(chain, i) && certMatches(certNames(peer), ['hostname', 'nexthop'], host, p.nexthopDomain)) return true;
      }
    }
  }
  return false;
}

/** Judge the peer of an established TLS session under the host's policy. */
export function verifyPeer(t: TLSSocket, p: TlsHostPolicy, host: string, namaddrport: string): TlsPeerVerdict {
  const peer = t.getPeerCertificate(true) as DetailedPeerCertificate;
  if (!peer || !peer.raw) return { trust: 'Untrusted', matched: !['fingerprint', 'dane', 'dane-only', 'verify', 'secure'].includes(p.level), failure: `server certificate verification failed for ${namaddrport}: no certificate` };
  const caTrusted = p.ca.length > 0 && t.authorized;
  switch (p.level) {
    case 'none': case 'may': case 'encrypt':
      return { trust: caTrusted ? 'Trusted' : 'Untrusted', matched: true };
    case 'fingerprint': {
      const fps = new Set(p.match.map((m) => m.toUpperCase()));
      const alg = p.fingerprintDigest;
      const cert = digestHex(alg, peer.raw);
      let key: string | undefined;
      try { key = digestHex(alg, spkiOf(peer.raw)); } catch { key = undefined; }
      if ((cert && fps.has(cert)) || (key && fps.has(key))) return { trust: 'Verified', matched: true };
      return { trust: 'Untrusted', matched: false, failure: `server certificate verification failed for ${namaddrport}: num=1:unspecified certificate verification error` };
    }
    case 'dane': case 'dane-only':
      if (daneMatch(p, peer, host)) return { trust: 'Verified', matched: true };
      return { trust: 'Untrusted', matched: false, failure: `server certificate verification failed for ${namaddrport}: num=65:No matching DANE TLSA records` };
    case 'verify': case 'secure': {
      if (!caTrusted) return { trust: 'Untrusted', matched: false, failure: trustFailure(t, peer, namaddrport) };
      if (certMatches(certNames(peer), p.match, host, p.nexthopDomain)) return { trust: 'Verified', matched: true };
      const ipOnly = isIP(host) !== 0 && p.match.every((m) => m === 'hostname' || (m === 'nexthop' && isIP(p.nexthopDomain) !== 0));
      return { trust: 'Untrusted', matched: false, failure: `server certificate verification failed for ${namaddrport}: ${ipOnly ? 'num=64:IP address mismatch' : 'num=62:hostname mismatch'}` };
    }
  }
}

/** tls_verify.c tls_log_verify_error() texts for a chain that does not verify. */
function trustFailure(t: TLSSocket, peer: DetailedPeerCertificate, namaddrport: string): string {
  const err = String(t.authorizationError ?? '');
  switch (err) {
    case 'DEPTH_ZERO_SELF_SIGNED_CERT': case 'SELF_SIGNED_CERT_IN_CHAIN':
      return `certificate verification failed for ${namaddrport}: self-signed certificate`;
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY': case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE': case 'UNABLE_TO_GET_ISSUER_CERT': case '': {
      const chain = sentChain(peer);
      return `certificate verification failed for ${namaddrport}: untrusted issuer ${oneline(chain[chain.length - 1]!.issuer as unknown as Record<string, string>)}`;
    }
    case 'CERT_HAS_EXPIRED': return `server certificate verification failed for ${namaddrport}: certificate has expired`;
    case 'CERT_NOT_YET_VALID': return `server certificate verification failed for ${namaddrport}: certificate not yet valid`;
    default: return `server certificate verification failed for ${namaddrport}: ${err}`;
  }
}
