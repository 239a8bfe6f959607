/**
 * acme-crypto - the cryptography of an ACME client (RFC 8555) with node:crypto alone: the
 * account key and its JWK (RFC 7517), the JWK thumbprint (RFC 7638) of key authorizations, the
 * flattened JWS of every request (RFC 8555 §6.2, RFC 7515), the certificate key and the CSR
 * (PKCS #10, RFC 2986) with the names in a subjectAltName extension request.
 *
 * Account keys are ECDSA P-256 (JWS "ES256", RFC 7518 §3.4: the signature is r||s, 64 bytes).
 * Certificate keys are ECDSA P-256 (default) or RSA 2048 (postern_acme_key_type).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { der, oid } from '../lib-tls/self-signed.ts';

export type CertKeyType = 'ecdsa-p256' | 'rsa-2048';

export const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export function newAccountKeyPem(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function newCertKeyPem(type: CertKeyType): string {
  const k = type === 'rsa-2048'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    : generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The public JWK with only the required members, in RFC 7638 §3.2 lexicographic order. */
export function publicJwk(key: KeyObject): Record<string, string> {
  const j = key.export({ format: 'jwk' }) as Record<string, string>;
  if (j.kty === 'EC') return { crv: j.crv!, kty: 'EC', x: j.x!, y: j.y! };
  if (j.kty === 'RSA') return { e: j.e!, kty: 'RSA', n: j.n! };
  throw new Error(`unsupported account key type ${j.kty}`);
}

/** RFC 7638 thumbprint, base64url. */
export function jwkThumbprint(key: KeyObject): string {
  return b64u(createHash('sha256').update(JSON.stringify(publicJwk(key))).digest());
}

export function loadKey(pem: string): KeyObject { return createPrivateKey(pem); }

/**
 * RFC 8555 §6.2: a flattened JWS. `kid` (the account URL) once the account exists, else the
 * JWK. `payload` undefined = POST-as-GET (empty payload, §6.3).
 */
export function jws(key: KeyObject, header: { nonce: string; url: string; kid?: string }, payload: unknown): string {
  const prot: Record<string, unknown> = { alg: key.asymmetricKeyType === 'rsa' ? 'RS256' : 'ES256', nonce: header.nonce, url: header.url };
  if (header.kid) prot.kid = header.kid; else prot.jwk = publicJwk(key);
  const p64 = b64u(JSON.stringify(prot));
  const pl64 = payload === undefined ? '' : b64u(JSON.stringify(payload));
  const sig = sign('sha256', Buffer.from(`${p64}.${pl64}`), key.asymmetricKeyType === 'rsa' ? key : { key, dsaEncoding: 'ieee-p1363' });
  return JSON.stringify({ protected: p64, payload: pl64, signature: b64u(sig) });
}

const seq = (...c: Buffer[]) => der(0x30, ...c);

/** PKCS #10 CSR (DER) for `names` (the first is also the CN), signed with `key`. */
export function csrDer(key: KeyObject, names: string[]): Buffer {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const san = seq(...names.map((n) => der(0x82, Buffer.from(n, 'ascii'))));          // GeneralName dNSName [2]
  const ext = seq(seq(oid('2.5.29.17'), der(0x04, san)));                              // Extensions
  const attrs = der(0xa0, seq(oid('1.2.840.113549.1.9.14'), der(0x31, ext)));          // [0] extensionRequest
  const subject = seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(names[0]!, 'utf8')))));
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), subject, spki, attrs);
  const rsa = key.asymmetricKeyType === 'rsa';
  const alg = rsa ? seq(oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00])) : seq(oid('1.2.840.10045.4.3.2'));
  const sig = sign('sha256', info, key);
  return seq(info, alg, der(0x03, Buffer.from([0]), sig));
}
