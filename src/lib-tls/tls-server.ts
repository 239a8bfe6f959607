/**
 * tls-server - server-side TLS for every protocol (smtpd STARTTLS and wrapper mode, later
 * imapd/pop3d/lmtpd): the secure context from Postfix-style parameters, and the upgrade of a
 * plaintext socket.
 *
 * Defaults are safer than Postfix 3.7's: TLS 1.2 or newer unless smtpd_tls_protocols says
 * otherwise, no TLS compression (OpenSSL 3 has none), no renegotiation (Node refuses
 * client-initiated renegotiation beyond tls.CLIENT_RENEG_LIMIT; we disable it outright), session
 * resumption by tickets on (Node's default).
 *
 * Postfix protocol syntax (postconf(5) smtpd_tls_protocols): either ">=TLSv1.2" (3.6+) or a list
 * of exclusions "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1" — the lowest protocol not excluded wins.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion } from 'node:tls';
import type { Socket } from 'node:net';

const ORDER: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Minimum protocol from Postfix's syntax; never below TLSv1.2 unless TLSv1/TLSv1.1 are named. */
export function minProtocol(spec: string): SecureVersion {
  const s = spec.trim();
  const ge = /^>=\s*(TLSv1(?:\.[0-3])?)$/i.exec(s);
  if (ge) return normalize(ge[1]!);
  const items = s.split(/[\s,:]+/).filter(Boolean);
  if (items.length === 0) return 'TLSv1.2';
  const excluded = new Set(items.filter((i) => i.startsWith('!')).map((i) => i.slice(1).toLowerCase()));
  const included = items.filter((i) => !i.startsWith('!')).map((i) => i.toLowerCase());
  for (const v of ORDER) {
    const k = v.toLowerCase();
    if (excluded.has(k)) continue;
    if (included.length && !included.includes(k)) continue;
    // Postfix 3.7's default "!SSLv2, !SSLv3" would allow TLSv1: Postern's floor is TLSv1.2 unless
    // the administrator names the old protocol explicitly.
    if ((v === 'TLSv1' || v === 'TLSv1.1') && !included.includes(k)) continue;
    return v;
  }
  return 'TLSv1.3';
}

function normalize(v: string): SecureVersion {
  const m = ORDER.find((o) => o.toLowerCase() === v.toLowerCase());
  return m ?? 'TLSv1.2';
}

export interface TlsServerFiles {
  certFile: string;
  keyFile: string;
  /** Extra PEM files (smtpd_tls_chain_files: key then certificate chain, in one or more files). */
  chainFiles?: string[];
  protocols?: string;
  ciphers?: string;
}

export class TlsConfigError extends Error { override name = 'TlsConfigError'; }

/** Load the certificate and key; errors name the parameter to fix. */
export function serverContext(f: TlsServerFiles, paramPrefix = 'smtpd_tls'): SecureContext {
  let key: Buffer;
  let cert: Buffer;
  try {
    if (f.chainFiles && f.chainFiles.length) {
      const pem = Buffer.concat(f.chainFiles.map((p) => readFileSync(p)));
      key = pem; cert = pem;
    } else {
      if (!f.certFile) throw new TlsConfigError(`${paramPrefix}_cert_file is not set`);
      cert = readFileSync(f.certFile);
      key = readFileSync(f.keyFile || f.certFile);
    }
  } catch (e) {
    if (e instanceof TlsConfigError) throw e;
    throw new TlsConfigError(`cannot load the TLS certificate or key (${paramPrefix}_cert_file, ${paramPrefix}_key_file): ${(e as Error).message}`);
  }
  try {
    return createSecureContext({
      key, cert,
      minVersion: minProtocol(f.protocols ?? ''),
      ciphers: f.ciphers || undefined,
      honorCipherOrder: true,
    });
  } catch (e) {
    throw new TlsConfigError(`bad TLS certificate or key (${paramPrefix}_cert_file=${f.certFile}, ${paramPrefix}_key_file=${f.keyFile}): ${(e as Error).message}`);
  }
}

/**
 * Start TLS on an accepted plaintext socket (STARTTLS, or wrapper mode from the first byte).
 * Resolves with the secure socket once the handshake is done; rejects on handshake failure or
 * after `timeoutMs` (a stalled handshake must not hold a session slot forever).
 */
export function startServerTls(sock: Socket, context: SecureContext, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = new TLSSocket(sock, { isServer: true, secureContext: context, requestCert: false });
    const timer = setTimeout(() => { t.destroy(); reject(new Error('TLS handshake timeout')); }, timeoutMs);
    t.once('secure', () => {
      clearTimeout(timer);
      // No renegotiation: a renegotiation attempt after the handshake ends the connection.
      t.disableRenegotiation();
      resolve(t);
    });
    t.once('error', (e) => { clearTimeout(timer); t.destroy(); reject(e); });
    t.once('close', () => { clearTimeout(timer); reject(new Error('connection closed during TLS handshake')); });
  });
}

/** Postfix's description: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
export function describeTls(t: TLSSocket): string {
  const c = t.getCipher();
  const bits = cipherBits(c.standardName || c.name);
  return `${t.getProtocol() ?? 'TLS'} with cipher ${c.standardName || c.name} (${bits}/${bits} bits)`;
}

function cipherBits(name: string): number {
  if (/256|CHACHA20/i.test(name)) return 256;
  if (/128/.test(name)) return 128;
  return 0;
}
