/**
 * smtp-sasl - SMTP client authentication to relay hosts (RFC 4954), after Postfix
 * smtp/smtp_sasl_glue.c and smtp/smtp_sasl_proto.c.
 *
 *  - Credentials come from smtp_sasl_password_maps (`[mail.isp.example]:587 user:password`).
 *    The lookup tries the remote host name first, then the nexthop as written in the transport
 *    or relayhost (smtp_sasl_passwd_lookup(): "Try the hostname first, then try the
 *    destination"). No entry → no AUTH: "we talk to each other like strangers".
 *  - Mechanisms: PLAIN (RFC 4616) then LOGIN (draft-murchison-sasl-login), filtered by
 *    smtp_sasl_mechanism_filter and by smtp_sasl_security_options (smtp_sasl_tls_security_options
 *    inside TLS): `noplaintext` forbids both, as Cyrus SASL would. Postfix's default
 *    "noplaintext, noanonymous" therefore allows AUTH only after STARTTLS unless the
 *    administrator relaxes it — the same as Postfix.
 *  - A failed AUTH is a soft failure of the session (smtp_sasl_helo_login(): "assume that an
 *    authentication error is recoverable"): the mail is deferred, never bounced.
 * Passwords are never logged.
 */
import type { Maps } from '../global/maps.ts';
import { SmtpConn, SmtpSessionError, replyText } from './smtp-conn.ts';

export interface SaslCredentials { user: string; password: string }

export interface SmtpSaslSettings {
  maps: Maps;
  /** smtp_sasl_mechanism_filter (lower-case names; empty = all). */
  mechanismFilter: string[];
  securityOptions: string[];
  tlsSecurityOptions: string[];
  timeoutMs: number;
}

/** Look up `host`, then `nexthop`; undefined when neither has an entry. Table errors propagate. */
export async function saslCredentials(maps: Maps, host: string, nexthop: string): Promise<SaslCredentials | undefined> {
  for (const key of [host.toLowerCase(), nexthop.toLowerCase()]) {
    const v = await maps.find(key);
    if (v === undefined) continue;
    const colon = v.indexOf(':');
    // smtp_sasl_glue.c: "username:password"; a value without ':' is a username with an empty password.
    return colon < 0 ? { user: v, password: '' } : { user: v.slice(0, colon), password: v.slice(colon + 1) };
  }
  return undefined;
}

/** A failure to authenticate: the session cannot deliver, the mail is deferred. */
export class SaslFailure extends Error { override name = 'SaslFailure'; readonly dsn = '4.7.0'; }

/** Authenticate on an established session; `offered` = the EHLO AUTH mechanisms. */
export async function saslAuthenticate(conn: SmtpConn, offered: string[], cred: SaslCredentials, s: SmtpSaslSettings): Promise<void> {
  const opts = conn.tls ? s.tlsSecurityOptions : s.securityOptions;
  const plainOk = !opts.includes('noplaintext');
  const candidates = ['PLAIN', 'LOGIN'].filter((m) => offered.includes(m) && plainOk && (s.mechanismFilter.length === 0 || s.mechanismFilter.includes(m.toLowerCase())));
  const mech = candidates[0];
  if (!mech) {
    throw new SaslFailure(`SASL authentication failed: server ${conn.namaddr} offered no compatible authentication mechanisms for this type of connection security`);
  }
  const stage = 'sending AUTH';
  const fail = (r: { code: number; enh?: string; lines: string[] }) =>
    new SaslFailure(`SASL authentication failed; server ${conn.namaddr} said: ${replyText(r)}`);
  if (mech === 'PLAIN') {
    // RFC 4616 §2: [authzid] NUL authcid NUL passwd; initial response (RFC 4954 §4).
    const ir = Buffer.from(`\0${cred.user}\0${cred.password}`, 'utf8').toString('base64');
    await conn.write(`AUTH PLAIN ${ir}\r\n`, s.timeoutMs, stage);
    const r = await conn.readReply(s.timeoutMs, stage);
    if (r.code !== 235) throw fail(r);
    return;
  }
  await conn.write('AUTH LOGIN\r\n', s.timeoutMs, stage);
  for (const secret of [cred.user, cred.password]) {
    const r = await conn.readReply(s.timeoutMs, stage);
    if (r.code !== 334) throw fail(r);
    await conn.write(Buffer.from(secret, 'utf8').toString('base64') + '\r\n', s.timeoutMs, stage);
  }
  const r = await conn.readReply(s.timeoutMs, stage);
  if (r.code !== 235) throw fail(r);
}

export { SmtpSessionError };
