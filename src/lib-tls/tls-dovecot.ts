/**
 * tls-dovecot - the server TLS context of the Dovecot-side services (imapd, pop3d, lmtpd) from
 * dovecot.conf: `ssl = yes|required|no`, `ssl_cert = </path`, `ssl_key = </path`,
 * `ssl_min_protocol` (Dovecot 2.3 default TLSv1.2), `ssl_cipher_list`, and per-name
 * certificates chosen by SNI:
 *
 *   local_name mail.example.com {          # also "a.example.com b.example.com", "*.example.com"
 *     ssl_cert = </etc/ssl/mail.crt
 *     ssl_key = </etc/ssl/private/mail.key
 *   }
 *
 * A local_name block that sets only one of ssl_cert/ssl_key takes the other from the top level,
 * as Dovecot's settings inheritance does. Blocks inside `protocol X { }` apply to that protocol.
 * undefined when ssl = no or no certificate is configured: STARTTLS/STLS are then not offered
 * and implicit-TLS listeners refuse connections (never served in clear).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { DovecotConfig, DovecotFilter } from '../global/dovecot-conf.ts';
import type { Logger } from '../util/msg.ts';
import { serverContext, TlsConfigError, type TlsServerFiles } from './tls-server.ts';
import { TlsContextProvider } from './tls-provider.ts';

function files(d: DovecotConfig, cert: string, key: string): TlsServerFiles {
  const min = (d.sslMinProtocol || 'TLSv1.2').trim();
  return {
    certFile: cert,
    keyFile: key,
    protocols: /^TLSv1(\.[0-3])?$/i.test(min) ? `>=${min}` : '>=TLSv1.2',
    ciphers: d.get('ssl_cipher_list') || undefined,
  };
}

/** The top-level certificate only (no SNI, no reload); kept for callers that want a plain context. */
export function dovecotTlsContext(d: DovecotConfig): SecureContext | undefined {
  if (d.ssl === 'no' || !d.sslCert) return undefined;
  return serverContext(files(d, d.sslCert, d.sslKey ?? d.sslCert), 'ssl');
}

/** `<path` of a filter setting → absolute path (relative to the file that holds the block). */
function filterPath(f: DovecotFilter, key: string): string | undefined {
  const v = f.settings[key];
  if (v === undefined) return undefined;
  const p = v.startsWith('<') ? v.slice(1).trim() : v.trim();
  if (!v.startsWith('<')) {
    throw new TlsConfigError(`${f.file}, line ${f.line}: ${key} must name a file: ${key} = <${p}`);
  }
  return isAbsolute(p) ? p : resolve(dirname(f.file), p);
}

interface NamedFiles { name: string; cert: string; key: string; where: string }

/** The SNI names of dovecot.conf's local_name blocks for `protocol`, with their files. */
export function dovecotSniNames(d: DovecotConfig, protocol?: string): NamedFiles[] {
  const out = new Map<string, NamedFiles>();
  // Blocks inside protocol X { } are more specific: handle them last so they win.
  const blocks = d.filters
    .filter((f) => f.localName !== undefined && (f.protocol === undefined || f.protocol === protocol))
    .filter((f) => 'ssl_cert' in f.settings || 'ssl_key' in f.settings)
    .sort((a, b) => (a.protocol === undefined ? 0 : 1) - (b.protocol === undefined ? 0 : 1));
  for (const f of blocks) {
    for (const raw of f.localName!.split(/\s+/).filter(Boolean)) {
      const name = raw.toLowerCase();
      const prev = out.get(name);
      const cert = filterPath(f, 'ssl_cert') ?? prev?.cert ?? d.sslCert;
      const key = filterPath(f, 'ssl_key') ?? prev?.key ?? d.sslKey ?? cert;
      if (!cert || !key) throw new TlsConfigError(`${f.file}, line ${f.line}: local_name ${raw}: ssl_key without ssl_cert`);
      out.set(name, { name, cert, key, where: `${f.file}, line ${f.line}` });
    }
  }
  return [...out.values()];
}

/**
 * The reloadable provider for a Dovecot-side service: the top-level certificate plus the
 * local_name ones by SNI. undefined when ssl = no or there is no ssl_cert.
 */
export function dovecotTlsProvider(d: DovecotConfig, protocol?: string, log?: Logger): TlsContextProvider | undefined {
  if (d.ssl === 'no' || !d.sslCert) return undefined;
  const cert = d.sslCert;
  const key = d.sslKey ?? d.sslCert;
  return new TlsContextProvider('ssl_cert', () => {
    const names = new Map<string, SecureContext>();
    const all = [cert, key];
    for (const n of dovecotSniNames(d, protocol)) {
      try {
        names.set(n.name, serverContext(files(d, n.cert, n.key), 'ssl'));
      } catch (e) {
        throw new TlsConfigError(`${n.where}: local_name ${n.name}: ${(e as Error).message}`);
      }
      all.push(n.cert, n.key);
    }
    return { context: serverContext(files(d, cert, key), 'ssl'), names, files: [...new Set(all)] };
  }, log);
}
