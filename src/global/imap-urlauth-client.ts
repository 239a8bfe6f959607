/**
 * imap-urlauth-client - the contract between the submission server's BURL (RFC 4468) and the
 * IMAP service's URLFETCH (RFC 4467 §6.3): smtpd never imports imapd; it connects to the IMAP
 * service configured in main.cf (`postern_burl_imap_server = host:port`, plain IMAP on
 * loopback or a trusted network), logs in as the submission server's own login
 * (postern_burl_submit_user, password from postern_burl_submit_password_file — the login
 * dovecot.conf's `plugin { urlauth_submit_user }` names, the only one whose URLFETCH may use
 * `submit+USER` URLs) and asks URLFETCH for the one URL. The caller (smtpd BURL) has already
 * checked that USER is its SASL login. (Dovecot's submission server asks its imap-urlauth
 * service over a socket instead.)
 *
 *   urlFetch({ server, user, secret, mechanism, url }) →
 *     { ok: true, data }                  the message, CRLF, as URLFETCH gave it
 *     { ok: false, temp: false, why }     URLFETCH answered NIL, or the login was refused
 *     { ok: false, temp: true, why }      server unreachable, timed out, protocol error
 * Bounded: timeoutMs for the whole exchange (default 30 s), maxBytes for the literal (default
 * 64 MB, more is a permanent failure). One connection per URL, closed with LOGOUT.
 */
import { connect, type Socket } from 'node:net';

export interface UrlFetchRequest {
  /** host:port of the IMAP service ([v6]:port for IPv6). */
  server: string;
  user: string;
  secret: string;
  /** The SASL mechanism the user authenticated with (PLAIN, LOGIN, OAUTHBEARER, XOAUTH2). */
  mechanism: string;
  url: string;
  timeoutMs?: number;
  maxBytes?: number;
}

export type UrlFetchResult = { ok: true; data: Buffer } | { ok: false; temp: boolean; why: string };

export function parseServer(server: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(server.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

const quote = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;

function initialResponse(mech: string, user: string, secret: string): string {
  const m = mech.toUpperCase();
  if (m === 'XOAUTH2') return Buffer.from(`user=${user}\x01auth=Bearer ${secret}\x01\x01`).toString('base64');
  if (m === 'OAUTHBEARER') return Buffer.from(`n,a=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},\x01auth=Bearer ${secret}\x01\x01`).toString('base64');
  return Buffer.from(`\0${user}\0${secret}`).toString('base64');
}

export async function urlFetch(r: UrlFetchRequest): Promise<UrlFetchResult> {
  const addr = parseServer(r.server);
  if (!addr) return { ok: false, temp: true, why: `postern_burl_imap_server = ${r.server}: expected host:port` };
  if (/[\r\n"\\]/.test(r.url)) return { ok: false, temp: false, why: 'invalid URL' };
  const mech = ['XOAUTH2', 'OAUTHBEARER'].includes(r.mechanism.toUpperCase()) ? r.mechanism.toUpperCase() : 'PLAIN';
  const maxBytes = r.maxBytes ?? 64 * 1024 * 1024;
  return new Promise<UrlFetchResult>((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let step = 0;
    let done = false;
    const sock: Socket = connect({ host: addr.host, port: addr.port });
    const finish = (res: UrlFetchResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!sock.destroyed) { sock.end('z LOGOUT\r\n'); setTimeout(() => sock.destroy(), 1000).unref(); }
      resolve(res);
    };
    const timer = setTimeout(() => finish({ ok: false, temp: true, why: `${r.server}: no answer within ${r.timeoutMs ?? 30_000} ms` }), r.timeoutMs ?? 30_000);
    sock.on('error', (e) => finish({ ok: false, temp: true, why: `${r.server}: ${e.message}` }));
    sock.on('close', () => finish({ ok: false, temp: true, why: `${r.server}: connection closed` }));
    let data: Buffer | undefined;
    let nil = false;
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      if (buf.length > maxBytes + 65536) return finish({ ok: false, temp: false, why: `message larger than ${maxBytes} bytes` });
      for (;;) {
        if (done) return;
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = buf.subarray(0, eol).toString('latin1');
        if (step === 0) {
          buf = buf.subarray(eol + 2);
          if (!line.startsWith('* OK')) return finish({ ok: false, temp: true, why: `${r.server}: greeting: ${line.slice(0, 200)}` });
          sock.write(`a AUTHENTICATE ${mech} ${initialResponse(mech, r.user, r.secret)}\r\n`);
          step = 1;
          continue;
        }
        if (step === 1) {
          buf = buf.subarray(eol + 2);
          if (line.startsWith('+')) { sock.write('AQ==\r\n'); continue; }   // RFC 7628 dummy response
          if (line.startsWith('* ')) continue;
          if (!line.startsWith('a ')) continue;
          if (!line.startsWith('a OK')) return finish({ ok: false, temp: /\[UNAVAILABLE\]/.test(line), why: `IMAP login as ${r.user}: ${line.slice(2, 200)}` });
          sock.write(`b URLFETCH ${quote(r.url)}\r\n`);
          step = 2;
          continue;
        }
        // step 2: * URLFETCH "url" {n}\r\n<n bytes>\r\n | * URLFETCH "url" NIL, then b OK
        const lit = /^\* URLFETCH .* \{(\d{1,12})\}$/i.exec(line);
        if (lit) {
          const n = Number(lit[1]);
          if (n > maxBytes) return finish({ ok: false, temp: false, why: `message larger than ${maxBytes} bytes` });
          if (buf.length < eol + 2 + n) return;   // wait for the literal
          data = Buffer.from(buf.subarray(eol + 2, eol + 2 + n));
          buf = buf.subarray(eol + 2 + n);
          continue;
        }
        buf = buf.subarray(eol + 2);
        if (line === '') continue;   // the CRLF after the literal
        if (/^\* URLFETCH .* NIL$/i.test(line)) { nil = true; continue; }
        if (line.startsWith('b ')) {
          if (!line.startsWith('b OK')) return finish({ ok: false, temp: false, why: `URLFETCH: ${line.slice(2, 200)}` });
          if (data) return finish({ ok: true, data });
          return finish({ ok: false, temp: false, why: nil ? 'URLFETCH answered NIL' : 'URLFETCH gave no data' });
        }
      }
    });
  });
}
