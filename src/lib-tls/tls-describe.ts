/**
 * tls-describe - a TLS session in Postfix 3.7's words, for both sides (tls_misc.c
 * tls_log_summary() and smtpd.c's Received: clause), checked against real Postfix 3.7.11:
 *
 *   smtpd log:  Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher
 *               TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature
 *               RSA-PSS (2048 bits) server-digest SHA256
 *               ... TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)     (nothing more)
 *   Received:   (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
 *               <TAB> key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)
 *               (No client certificate requested)
 *               TLS 1.2: (using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))
 *
 * Real Postfix's smtpd adds the key-exchange/signature part only for TLS 1.3; its smtp client
 * adds it for every version. Node cannot tell a server which key-exchange group was negotiated
 * (getEphemeralKeyInfo() is client-only), so the server side writes "key-exchange" only when it
 * is known; the signature part is derived from the certificate's key (RSA → RSA-PSS as OpenSSL 3
 * negotiates it, EC → ECDSA (curve) with the curve's hash, Ed25519 without a digest), as
 * smtp-tls-verify.ts does for the client.
 */
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';

/** "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
export function cipherDescription(t: TLSSocket): string {
  // OpenSSL's cipher name, as Postfix logs it: "ECDHE-RSA-AES128-GCM-SHA256" for TLS 1.2
  // (not the IANA "TLS_ECDHE_RSA_WITH_..."), "TLS_AES_256_GCM_SHA384" for TLS 1.3.
  const name = t.getCipher().name;
  const bits = cipherBits(name);
  return `${t.getProtocol() ?? 'TLS'} with cipher ${name} (${bits}/${bits} bits)`;
}

/** Symmetric key bits from an OpenSSL cipher name (the digest's "256" in SHA256 does not count). */
export function cipherBits(name: string): number {
  const m = /(?:AES|CAMELLIA|ARIA)[_-]?(128|256)/i.exec(name);
  if (m) return Number(m[1]);
  if (/CHACHA20/i.test(name)) return 256;
  if (/DES-CBC3|3DES/i.test(name)) return 112;
  return 0;
}

interface CertKeyInfo { raw?: Buffer; modulus?: string; bits?: number; asn1Curve?: string; nistCurve?: string }

/** "server-signature RSA-PSS (2048 bits) server-digest SHA256" for a certificate ('' when unknown). */
export function signatureDescription(cert: CertKeyInfo | null | undefined): string {
  if (!cert || !cert.raw) return '';
  if (cert.modulus) return `server-signature RSA-PSS (${cert.bits} bits) server-digest SHA256`;
  if (cert.nistCurve || cert.asn1Curve) {
    const curve = cert.nistCurve ?? cert.asn1Curve!;
    const dg = /384/.test(curve) ? 'SHA384' : /521/.test(curve) ? 'SHA512' : 'SHA256';
    return `server-signature ECDSA (${curve}) server-digest ${dg}`;
  }
  try {
    const type = new X509Certificate(cert.raw).publicKey.asymmetricKeyType;
    return type ? `server-signature ${type.toUpperCase()}` : '';
  } catch {
    return '';
  }
}

/** "key-exchange X25519 server-signature ..." for the server side (TLS 1.3 only, as Postfix's smtpd). */
export function serverTlsDetails(t: TLSSocket): string {
  if (t.getProtocol() !== 'TLSv1.3' || t.isSessionReused()) return '';
  const parts: string[] = [];
  const ek = t.getEphemeralKeyInfo() as { type?: string; name?: string } | null; // null on a server today
  if (ek && ek.name) parts.push(`key-exchange ${ek.name}`);
  const sig = signatureDescription(t.getCertificate() as CertKeyInfo | null);
  if (sig) parts.push(sig);
  return parts.join(' ');
}

/** The server's log text: "TLSv1.3 with cipher ... (256/256 bits) server-signature ...". */
export function describeServerTls(t: TLSSocket): string {
  const d = serverTlsDetails(t);
  return d ? `${cipherDescription(t)} ${d}` : cipherDescription(t);
}

/**
 * The inside of smtpd's Received: TLS comment, without the parentheses' closing line:
 * "using TLSv1.3 with cipher ... (256/256 bits)\n\t key-exchange ... server-digest SHA256".
 */
export function receivedTlsText(t: TLSSocket): string {
  const d = serverTlsDetails(t);
  return d ? `using ${cipherDescription(t)}\n\t ${d}` : `using ${cipherDescription(t)}`;
}
