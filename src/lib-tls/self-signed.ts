/**
 * self-signed - make a self-signed X.509 certificate with node:crypto alone (no `openssl`
 * command, no network), for the embedded default configuration's TLS (smtpd_tls_cert_file,
 * Dovecot's ssl_cert).
 *
 * The certificate (RFC 5280):
 *   - version 3, a random positive 128-bit serial number (§4.1.2.2: at most 20 octets);
 *   - subject = issuer = CN=<hostname> (UTF8String, §4.1.2.4);
 *   - validity from one hour ago (clock skew) to `days` days later (default 365); UTCTime before
 *     2050, GeneralizedTime after (§4.1.2.5);
 *   - extensions: basicConstraints CA:FALSE (critical), keyUsage (critical; digitalSignature, plus
 *     keyEncipherment for RSA), extKeyUsage serverAuth, subjectKeyIdentifier (§4.2.1.2 method 1),
 *     subjectAltName = hostname + localhost + 127.0.0.1 + ::1 (§4.2.1.6; host names that are not
 *     valid DNS names are left out of the SAN);
 *   - key: RSA 2048 with sha256WithRSAEncryption (the default: every mail client accepts it) or
 *     ECDSA P-256 with ecdsa-with-SHA256 (RFC 5758 §3.2).
 *
 * The DER encoder below knows only the handful of ASN.1 types a certificate needs (X.690 §8).
 * Keys are written as PKCS#8 PEM ("BEGIN PRIVATE KEY"), which OpenSSL (Postfix) and Dovecot read.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';

export type SelfSignedKeyType = 'rsa' | 'ec';

export interface SelfSignedOptions {
  /** CN and first subjectAltName, usually $myhostname. */
  hostname: string;
  /** More DNS names or IP literals for the subjectAltName. localhost, 127.0.0.1 and ::1 are always added. */
  altNames?: string[];
  keyType?: SelfSignedKeyType;
  /** Validity in days (default 365). */
  days?: number;
  /** "Now", for tests. */
  now?: Date;
  /** subjectAltName = hostname + altNames only (no localhost, 127.0.0.1, ::1): ACME tls-alpn-01. */
  onlyNames?: boolean;
  /** More extensions (RFC 8737 §3 id-pe-acmeIdentifier); `value` is the extnValue contents. */
  extraExtensions?: { oid: string; critical: boolean; value: Buffer }[];
}

export interface SelfSigned {
  certPem: string;
  keyPem: string;
  /** The DER certificate, for callers that want to inspect it. */
  certDer: Buffer;
}

// ---- DER (X.690 §8, definite-length form only) ---------------------------------------------

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: tag byte, length, contents. */
export function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => der(0x30, ...c);
const set = (...c: Buffer[]): Buffer => der(0x31, ...c);
const nul = (): Buffer => Buffer.from([0x05, 0x00]);
const octets = (b: Buffer): Buffer => der(0x04, b);
const utf8 = (s: string): Buffer => der(0x0c, Buffer.from(s, 'utf8'));
/** BIT STRING with no unused bits (X.690 §8.6). */
const bits = (b: Buffer): Buffer => der(0x03, Buffer.from([0]), b);
const bool = (v: boolean): Buffer => Buffer.from([0x01, 0x01, v ? 0xff : 0x00]);
/** [n] EXPLICIT (constructed context-specific). */
const explicit = (n: number, c: Buffer): Buffer => der(0xa0 | n, c);

/** INTEGER from big-endian magnitude bytes: minimal, and positive (X.690 §8.3.2). */
function uint(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return der(0x02, v);
}

/** OBJECT IDENTIFIER (X.690 §8.19). */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const out: number[] = [40 * arcs[0]! + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const enc: number[] = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) enc.unshift(0x80 | (v & 0x7f));
    out.push(...enc);
  }
  return der(0x06, Buffer.from(out));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; always Zulu, with seconds. */
function time(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  const y = d.getUTCFullYear();
  if (y < 2050) return der(0x17, Buffer.from(`${p(y % 100)}${rest}`, 'ascii'));
  return der(0x18, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
}

// ---- the certificate -------------------------------------------------------------------------

const OID = {
  commonName: '2.5.4.3',
  rsaSha256: '1.2.840.113549.1.1.11',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

/** A DNS name we may put in a dNSName SAN (RFC 1123 LDH labels, optional leading "*."). */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.replace(/^\*\./, '').split('.');
  return labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

/** Binary form of an IP literal for an iPAddress SAN (RFC 5280 §4.2.1.6: 4 or 16 octets). */
function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // IPv6: expand "::" then 8 groups of 16 bits (an embedded dotted quad is not needed here).
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function subjectAltNames(hostname: string, extra: string[], only = false): Buffer {
  const seen = new Set<string>();
  const entries: Buffer[] = [];
  for (const n of [hostname, ...extra, ...(only ? [] : ['localhost', '127.0.0.1', '::1'])]) {
    const key = n.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    if (isIP(n)) entries.push(der(0x87, ipBytes(n)));          // [7] iPAddress, implicit
    else if (isDnsName(n)) entries.push(der(0x82, Buffer.from(n, 'ascii')));  // [2] dNSName, implicit
  }
  return seq(...entries);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
}

function generateKey(type: SelfSignedKeyType): { privateKey: KeyObject; publicKey: KeyObject } {
  if (type === 'ec') return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
}

/** Make a key pair and a self-signed certificate for it. Pure: writes nothing. */
export function generateSelfSigned(o: SelfSignedOptions): SelfSigned {
  const keyType = o.keyType ?? 'rsa';
  const days = o.days ?? 365;
  const now = o.now ?? new Date();
  const { privateKey, publicKey } = generateKey(keyType);
  const spki = publicKey.export({ type: 'spki', format: 'der' });

  // RFC 5280 §4.1.1.2: RSA signatures carry NULL parameters; ECDSA ones carry none (RFC 5758 §3.2).
  const sigAlg = keyType === 'rsa' ? seq(oid(OID.rsaSha256), nul()) : seq(oid(OID.ecdsaSha256));
  const cn = o.hostname.slice(0, 64) || 'localhost';   // ub-common-name = 64 (RFC 5280 App. A)
  const name = seq(set(seq(oid(OID.commonName), utf8(cn))));
  const notBefore = new Date(now.getTime() - 3600_000);
  const notAfter = new Date(now.getTime() + days * 86400_000);

  // subjectKeyIdentifier method 1: SHA-1 of the subjectPublicKey BIT STRING contents.
  const pubKeyBits = readSpkiKeyBits(spki);
  const ski = createHash('sha1').update(pubKeyBits).digest();
  // keyUsage bits (§4.2.1.3): digitalSignature = bit 0, keyEncipherment = bit 2 (RSA key exchange).
  const keyUsage = keyType === 'rsa' ? Buffer.from([0x03, 0x02, 0x05, 0xa0]) : Buffer.from([0x03, 0x02, 0x07, 0x80]);

  const extensions = seq(
    extension(OID.basicConstraints, true, seq()),
    extension(OID.keyUsage, true, keyUsage),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectKeyIdentifier, false, octets(ski)),
    extension(OID.subjectAltName, false, subjectAltNames(o.hostname, o.altNames ?? [], o.onlyNames)),
    ...(o.extraExtensions ?? []).map((e) => extension(e.oid, e.critical, e.value)),
  );
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;                                   // positive, at most 20 octets (§4.1.2.2)
  if (serial[0] === 0) serial[0] = 1;
  const tbs = seq(
    explicit(0, der(0x02, Buffer.from([2]))),            // version v3
    uint(serial),
    sigAlg,
    name,
    seq(time(notBefore), time(notAfter)),
    name,
    spki,
    explicit(3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey);    // DER ECDSA-Sig-Value for EC keys
  const certDer = seq(tbs, sigAlg, bits(signature));
  const b64 = certDer.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return {
    certDer,
    certPem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** The contents of the subjectPublicKey BIT STRING inside a DER SubjectPublicKeyInfo. */
function readSpkiKeyBits(spki: Buffer): Buffer {
  // SEQUENCE { AlgorithmIdentifier SEQUENCE, BIT STRING }
  const inner = tlv(spki, 0).body;
  const alg = tlv(inner, 0);
  const bitString = tlv(inner, alg.end);
  return bitString.body.subarray(1);                   // skip the unused-bits octet
}

function tlv(buf: Buffer, at: number): { body: Buffer; end: number } {
  let len = buf[at + 1]!;
  let off = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + i]!;
    off += n;
  }
  return { body: buf.subarray(off, off + len), end: off + len };
}

/** Write a file with exactly `mode`: fchmod before the first byte, so a key is never readable. */
function writeMode(file: string, text: string, mode: number): void {
  const fd = openSync(file, 'w', mode);
  try {
    fchmodSync(fd, mode);
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/**
 * Generate and write a certificate (mode 0644) and its key (mode 0600), creating their
 * directories. `say` receives the one line telling the administrator to replace it.
 */
export function writeSelfSigned(
  certFile: string, keyFile: string, o: SelfSignedOptions,
  say: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): SelfSigned {
  const made = generateSelfSigned(o);
  mkdirSync(dirname(keyFile), { recursive: true });
  mkdirSync(dirname(certFile), { recursive: true });
  writeMode(keyFile, made.keyPem, 0o600);
  writeMode(certFile, made.certPem, 0o644);
  say(`postern: generated a self-signed certificate in ${certFile}; replace it with a real one (smtpd_tls_cert_file, ssl_cert)`);
  return made;
}
