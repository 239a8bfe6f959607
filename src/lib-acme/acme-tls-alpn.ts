/**
 * acme-tls-alpn - the ACME tls-alpn-01 challenge (RFC 8737) on the HTTP service's HTTPS
 * listener: the CA connects to NAME:443 offering only the ALPN protocol "acme-tls/1" with SNI
 * NAME (§3), and must get a self-signed certificate for exactly NAME carrying the critical
 * id-pe-acmeIdentifier extension (1.3.6.1.5.5.7.1.31) with the SHA-256 of the key
 * authorization (§3), with "acme-tls/1" negotiated.
 *
 * The order process (acme-issue.ts) writes that certificate and its key to
 * STATE/tls-alpn-01/NAME.pem (challengeCertificate()). The HTTPS listener's intercept peeks at
 * each ClientHello (at most one TLS record, 16 KiB, within the HTTP time limit) before the
 * handshake: a ClientHello whose ALPN list is exactly ["acme-tls/1"] is answered from that
 * file, then closed (§3: no application data); any other goes on to the ordinary handshake
 * with the bytes put back. A tls-alpn-01 hello for a name with no pending challenge is closed.
 * The intercept is only installed when postern_acme_challenges names tls-alpn-01.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { MainConfig } from '../global/mail-conf.ts';
import { der, generateSelfSigned } from '../lib-tls/self-signed.ts';

export const ACME_TLS_ALPN = 'acme-tls/1';
const ID_PE_ACME_IDENTIFIER = '1.3.6.1.5.5.7.1.31';

/** The challenge certificate + key (PEM, key first) for `name` and a key authorization. */
export function challengeCertificate(name: string, keyAuthorization: string): string {
  const digest = createHash('sha256').update(keyAuthorization).digest();
  const c = generateSelfSigned({
    hostname: name, onlyNames: true, keyType: 'ec', days: 7,
    extraExtensions: [{ oid: ID_PE_ACME_IDENTIFIER, critical: true, value: der(0x04, digest) }],
  });
  return c.keyPem + c.certPem;
}

export interface ClientHelloInfo { serverName?: string; alpn: string[] }

/** SNI and ALPN of a ClientHello record (RFC 8446 §4.1.2, RFC 6066 §3, RFC 7301 §3.1); undefined if malformed. */
export function parseClientHello(rec: Buffer): ClientHelloInfo | undefined {
  try {
    if (rec[0] !== 0x16 || rec.length < 9 || rec[5] !== 0x01) return undefined;
    let p = 9 + 2 + 32;                                   // record hdr 5, hs hdr 4, version, random
    p += 1 + rec[p]!;                                     // session id
    p += 2 + rec.readUInt16BE(p);                         // cipher suites
    p += 1 + rec[p]!;                                     // compression methods
    if (p + 2 > rec.length) return { alpn: [] };
    const end = Math.min(rec.length, p + 2 + rec.readUInt16BE(p));
    p += 2;
    const info: ClientHelloInfo = { alpn: [] };
    while (p + 4 <= end) {
      const type = rec.readUInt16BE(p); const len = rec.readUInt16BE(p + 2);
      const body = rec.subarray(p + 4, p + 4 + len);
      if (type === 0 && body.length >= 5 && body[2] === 0) info.serverName = body.subarray(5, 5 + body.readUInt16BE(3)).toString('latin1').toLowerCase();
      if (type === 16 && body.length >= 2) {
        let q = 2;
        while (q < body.length) { const n = body[q]!; info.alpn.push(body.subarray(q + 1, q + 1 + n).toString('latin1')); q += 1 + n; }
      }
      p += 4 + len;
    }
    return info;
  } catch {
    return undefined;
  }
}

/** Read the first TLS record without consuming it for the later handshake. */
function peekRecord(sock: Socket, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (r: Buffer | undefined) => {
      clearTimeout(timer);
      sock.off('data', onData); sock.off('close', onClose);
      sock.pause();
      if (buf.length) sock.unshift(buf);
      resolve(r);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 5) {
        if (buf[0] !== 0x16) { done(undefined); return; }
        const need = 5 + buf.readUInt16BE(3);
        if (need > 16384 + 5) { done(undefined); return; }
        if (buf.length >= need) done(buf.subarray(0, need));
      }
    };
    const onClose = () => done(undefined);
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.on('data', onData);
    sock.once('close', onClose);
  });
}

/** The HTTPS intercept for httpd (httpd.ts TlsIntercept), or undefined when tls-alpn-01 is off. */
export function acmeTlsAlpnIntercept(config: MainConfig, timeoutMs = 10_000): ((sock: Socket) => Promise<boolean>) | undefined {
  if (!config.get('postern_acme_directory').trim()) return undefined;
  if (!config.list('postern_acme_challenges').map((c) => c.toLowerCase()).includes('tls-alpn-01')) return undefined;
  const dir = join(config.get('postern_acme_state_directory'), 'tls-alpn-01');
  return async (sock) => {
    const rec = await peekRecord(sock, timeoutMs);
    const hello = rec && parseClientHello(rec);
    if (!hello || hello.alpn.length !== 1 || hello.alpn[0] !== ACME_TLS_ALPN) return false;
    const name = hello.serverName ?? '';
    let pem: string;
    try {
      if (!/^[a-z0-9.-]{1,253}$/.test(name) || name.includes('..')) throw new Error('bad name');
      pem = readFileSync(join(dir, `${name}.pem`), 'utf8');
    } catch {
      sock.destroy();
      return true;
    }
    const t = new TLSSocket(sock, { isServer: true, secureContext: createSecureContext({ key: pem, cert: pem }), ALPNProtocols: [ACME_TLS_ALPN] });
    const timer = setTimeout(() => t.destroy(), timeoutMs);
    t.on('secure', () => { clearTimeout(timer); t.end(); });
    t.on('error', () => { clearTimeout(timer); t.destroy(); });
    t.on('close', () => clearTimeout(timer));
    sock.resume();
    return true;
  };
}
