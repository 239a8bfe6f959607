/**
 * tls-server - server-side TLS for every protocol (smtpd STARTTLS and wrapper mode, pop3d,
 * lmtpd, imapd): the secure context from Postfix-style parameters (protocols, cipher grades),
 * and the upgrade of a plaintext socket (with a fixed context or a reloadable provider,
 * tls-provider.ts). See docs/tls.md.
 *
 * Defaults are safer than Postfix 3.7's: TLS 1.2 or newer unless smtpd_tls_protocols says
 * otherwise, no TLS compression (OpenSSL 3 has none), no renegotiation (Node refuses
 * client-initiated renegotiation beyond tls.CLIENT_RENEG_LIMIT; we disable it outright), session
 * resumption by tickets on (Node's default). Renegotiation is refused both by OpenSSL
 * (SSL_OP_NO_RENEGOTIATION, as Postfix ≥ 3.4) and by Node's own check; a client that tries is
 * disconnected and logged (`postern/tls: warning: ADDR: TLS renegotiation attempt refused`).
 *
 * Postfix protocol syntax (postconf(5) smtpd_tls_protocols): either ">=TLSv1.2" (3.6+) or a list
 * of exclusions "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1" — the lowest protocol not excluded wins.
 */
import { constants as cryptoConstants } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createSecureContext, TLSSocket, type SecureContext, type SecureVersion, type TLSSocketOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { describeServerTls } from './tls-describe.ts';
import { logger } from '../util/msg.ts';
import { metrics } from '../util/metrics.ts';

const tlsLog = logger('tls');

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

const GRADES: Readonly<Record<string, string>> = {
  high: 'tls_high_cipherlist', medium: 'tls_medium_cipherlist', low: 'tls_low_cipherlist',
  export: 'tls_export_cipherlist', null: 'tls_null_cipherlist',
};

/**
 * Postfix's cipher grade (smtpd_tls_ciphers / smtpd_tls_mandatory_ciphers: high, medium, low,
 * export, null) → the OpenSSL cipher list (tls_<grade>_cipherlist, e.g. medium =
 * "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH"), minus the exclusions (smtpd_tls_exclude_ciphers,
 * smtpd_tls_mandatory_exclude_ciphers) as "!X" (tls_misc.c tls_set_ciphers()). @STRENGTH
 * puts AES-256 before AES-128, which is what real Postfix's smtpd picks for a TLS 1.2 client.
 */
export function postfixCipherList(grade: string, param: string, get: (name: string) => string, exclude: string[] = []): string {
  const g = grade.trim().toLowerCase();
  const listParam = GRADES[g];
  if (!listParam) throw new TlsConfigError(`${param}: invalid cipher grade "${grade}" (use high, medium, low, export or null)`);
  let list = get(listParam).trim();
  for (const x of exclude) {
    if (!/^[A-Za-z0-9+_.=-]+$/.test(x)) throw new TlsConfigError(`invalid cipher exclusion "${x}" (an OpenSSL cipher name or type such as aNULL, RC4)`);
    list += `:!${x}`;
  }
  return list;
}

export interface TlsServerFiles {
  certFile: string;
  keyFile: string;
  /** Extra PEM files (smtpd_tls_chain_files: key then certificate chain, in one or more files). */
  chainFiles?: string[];
  protocols?: string;
  ciphers?: string;
  /**
   * smtpd_tls_CAfile / smtpd_tls_CApath: the CAs whose client certificates are trusted
   * (permit_tls_all_clientcerts, the {cert_subject} milter macros); without them only the
   * system's roots are (a client certificate from a private CA is then untrusted).
   */
  caFile?: string;
  caPath?: string;
}

/** The PEM certificates of a CAfile and of the files of a CApath (undefined: none set). */
function caCerts(f: TlsServerFiles, paramPrefix: string): Buffer[] | undefined {
  const out: Buffer[] = [];
  if (f.caFile) {
    try { out.push(readFileSync(f.caFile)); } catch (e) {
      throw new TlsConfigError(`cannot read ${paramPrefix}_CAfile = ${f.caFile}: ${(e as Error).message}`);
    }
  }
  if (f.caPath) {
    let names: string[];
    try { names = readdirSync(f.caPath); } catch (e) {
      throw new TlsConfigError(`cannot read ${paramPrefix}_CApath = ${f.caPath}: ${(e as Error).message}`);
    }
    for (const n of names.sort()) {
      try {
        const b = readFileSync(`${f.caPath}/${n}`);
        if (b.includes('-----BEGIN CERTIFICATE-----')) out.push(b);
      } catch { /* not a readable file (a subdirectory): skipped, as OpenSSL's lookup does */ }
    }
  }
  return out.length ? out : undefined;
}

export class TlsConfigError extends Error { override name = 'TlsConfigError'; }

/**
 * Session ticket keys for every server context of this process (48 bytes: name, HMAC and AES
 * keys). Unset, each context makes its own (Node's default). The master gives its worker
 * processes the same keys (master/master-process.ts), so a client that got a ticket from one
 * worker resumes its session in another, as Postfix's smtpd processes share their ticket keys
 * through tlsmgr(8).
 */
let ticketKeys: Buffer | undefined;
export function setServerTicketKeys(keys: Buffer): void {
  if (keys.length !== 48) throw new Error('TLS session ticket keys must be 48 bytes');
  ticketKeys = keys;
}

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
  const ca = caCerts(f, paramPrefix);
  try {
    return createSecureContext({
      key, cert, ...(ca ? { ca } : {}),
      minVersion: minProtocol(f.protocols ?? ''),
      ciphers: f.ciphers || undefined,
      honorCipherOrder: true,
      // Postfix ≥ 3.4 sets SSL_OP_NO_RENEGOTIATION: OpenSSL answers a renegotiation ClientHello
      // with a no_renegotiation alert (TLS 1.2; TLS 1.3 has no renegotiation at all).
      secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
      ...(ticketKeys ? { ticketKeys } : {}),
    });
  } catch (e) {
    throw new TlsConfigError(`bad TLS certificate or key (${paramPrefix}_cert_file=${f.certFile}, ${paramPrefix}_key_file=${f.keyFile}): ${(e as Error).message}`);
  }
}

/**
 * Where a handshake takes its certificate: a fixed SecureContext, or a provider whose context
 * can change on reload and which may choose one per SNI name (tls-provider.ts).
 */
export interface TlsContextSource {
  secureContext(): SecureContext;
  readonly hasNames: boolean;
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
}

function isSource(c: SecureContext | TlsContextSource): c is TlsContextSource {
  return typeof (c as TlsContextSource).secureContext === 'function';
}

/**
 * Start TLS on an accepted plaintext socket (STARTTLS, or wrapper mode from the first byte).
 * Resolves with the secure socket once the handshake is done; rejects on handshake failure or
 * after `timeoutMs` (a stalled handshake must not hold a session slot forever). With a
 * provider, the context is the one current at this moment (a reload changes later handshakes).
 */
export function startServerTls(sock: Socket, context: SecureContext | TlsContextSource, timeoutMs: number,
                               o: { requestCert?: boolean } = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // requestCert (smtpd_tls_ask_ccert): ask for a client certificate, and keep the connection
    // whatever it is (socket.authorized says whether the CAs trust it).
    const opts: TLSSocketOptions = { isServer: true, requestCert: o.requestCert ?? false, rejectUnauthorized: false };
    if (isSource(context)) {
      opts.secureContext = context.secureContext();
      if (context.hasNames) opts.SNICallback = context.sniCallback;
    } else {
      opts.secureContext = context;
    }
    const t = new TLSSocket(sock, opts);
    const timer = setTimeout(() => { TLS_FAILURES.inc(); t.destroy(); reject(new Error('TLS handshake timeout')); }, timeoutMs);
    let secured = false;
    t.once('secure', () => {
      clearTimeout(timer);
      secured = true;
      if (o.requestCert) peerVerdict(t);
      TLS_SESSIONS.labels(tlsVersionLabel(t.getProtocol())).inc();
      // No renegotiation: a renegotiation attempt after the handshake ends the connection.
      // Node reports it (and a renegotiation flood, ERR_TLS_SESSION_ATTACK) on '_tlsError' only
      // for sockets that no tls.Server owns, so listen there and end the connection.
      t.disableRenegotiation();
      let refused = false;
      const peer = (t.remoteAddress ?? sock.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d)/, '');
      t.on('_tlsError', (e: Error) => {
        if (refused) return;
        refused = true;
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (code === 'ERR_TLS_RENEGOTIATION_DISABLED' || code === 'ERR_TLS_SESSION_ATTACK') {
          tlsLog.warn(`${peer}: TLS renegotiation attempt refused, connection closed (${code})`);
        } else if (/^ERR_(SSL|TLS)_/.test(code)) {
          // A TLS protocol error after the handshake (Node drops these silently for sockets
          // no tls.Server owns): the connection cannot go on.
          tlsLog.info(`${peer}: TLS error, connection closed: ${e.message.replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:/, '')}`);
        }
        t.destroy(e);
      });
      resolve(t);
    });
    t.once('error', (e) => { clearTimeout(timer); if (!secured) TLS_FAILURES.inc(); t.destroy(); reject(e); });
    t.once('close', () => { clearTimeout(timer); reject(new Error('connection closed during TLS handshake')); });
  });
}

/**
 * socket.authorized / authorizationError for a client certificate: Node sets them only for
 * sockets a tls.Server owns, so a socket started here is judged as onServerSocketSecure()
 * does — OpenSSL's verification result against the context's CAs (smtpd_tls_CAfile).
 */
function peerVerdict(t: TLSSocket): void {
  const cert = t.getPeerCertificate(false);
  if (!cert || !cert.raw) return;   // no certificate: not authorized, no error
  const handle = (t as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  const err = handle?.verifyError?.() ?? null;
  if (err) t.authorizationError = err;
  else t.authorized = true;
}

const TLS_SESSIONS = metrics.counter('postern_tls_handshakes_total', 'Server-side TLS handshakes completed (smtpd, imapd, pop3d, lmtpd, managesieve, httpd), by protocol version', ['version']);
const TLS_FAILURES = metrics.counter('postern_tls_handshake_failures_total', 'Server-side TLS handshakes that failed').labels();

/** A bounded label value for a negotiated protocol version. */
function tlsVersionLabel(v: string | null): string {
  return v && /^(TLSv1(\.[0-3])?|SSLv3)$/.test(v) ? v : 'other';
}

/**
 * Postfix 3.7 smtpd's description: "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
 * server-signature RSA-PSS (2048 bits) server-digest SHA256" (tls-describe.ts).
 */
export function describeTls(t: TLSSocket): string {
  return describeServerTls(t);
}

/**
 * Implicit TLS on an accepted socket of an `ssl = yes` listener (imaps, pop3s, lmtps): the TLS
 * socket, or undefined after the connection was closed — never served in clear when no
 * certificate is configured, and a failed handshake is logged and dropped.
 */
export async function acceptImplicitTls(sock: Socket, source: TlsContextSource | undefined, handshakeMs: number,
  listenerName: string, log: { info(s: string): void; warn(s: string): void }): Promise<TLSSocket | undefined> {
  if (!source) {
    log.warn(`${listenerName}: ssl listener but no ssl_cert/ssl_key in dovecot.conf; closing the connection`);
    sock.destroy();
    return undefined;
  }
  try {
    return await startServerTls(sock, source, handshakeMs);
  } catch (e) {
    log.info(`${listenerName}: TLS handshaking failed: ${(e as Error).message}`);
    sock.destroy();
    return undefined;
  }
}
