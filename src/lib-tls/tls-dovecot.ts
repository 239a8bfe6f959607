/**
 * tls-dovecot - the server TLS context of the Dovecot-side services (imapd, pop3d, lmtpd) from
 * dovecot.conf: `ssl = yes|required|no`, `ssl_cert = </path`, `ssl_key = </path`,
 * `ssl_min_protocol` (Dovecot 2.3 default TLSv1.2), `ssl_cipher_list`.
 * undefined when ssl = no or no certificate is configured: STARTTLS/STLS are then not offered
 * and implicit-TLS listeners refuse connections (never served in clear).
 */
import type { SecureContext } from 'node:tls';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { serverContext } from './tls-server.ts';

export function dovecotTlsContext(d: DovecotConfig): SecureContext | undefined {
  if (d.ssl === 'no' || !d.sslCert) return undefined;
  const min = (d.sslMinProtocol || 'TLSv1.2').trim();
  return serverContext({
    certFile: d.sslCert,
    keyFile: d.sslKey ?? d.sslCert,
    protocols: /^TLSv1(\.[0-3])?$/i.test(min) ? `>=${min}` : '>=TLSv1.2',
    ciphers: d.get('ssl_cipher_list') || undefined,
  }, 'ssl');
}
