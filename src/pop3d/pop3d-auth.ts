/**
 * pop3d-auth - the AUTHORIZATION state of RFC 1939 §4 as Dovecot's pop3-login serves it:
 * USER/PASS (§7), AUTH with SASL-IR (RFC 5034: PLAIN RFC 4616, LOGIN, OAUTHBEARER RFC 7628 and
 * XOAUTH2 via lib-auth/sasl-oauth2.ts), APOP refused unless
 * configured (Postern stores no APOP secrets: always "-ERR APOP not enabled."), STLS hook,
 * CAPA (RFC 2449), QUIT. Replies are Dovecot 2.3's texts, checked against a real Dovecot
 * (test/interop/pop3-vs-dovecot.test.ts):
 *
 *   +OK Logged in.                       -ERR [AUTH] Authentication failed.
 *   -ERR No username given.              -ERR [AUTH] Unsupported authentication mechanism.
 *   -ERR APOP not enabled.               -ERR [AUTH] Invalid base64 data in initial response
 *   -ERR TLS support isn't enabled.      -ERR Unknown command.
 *   -ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.
 *   -ERR [SYS/TEMP] Temporary authentication failure.
 *
 * A failed login is answered only after auth_failure_delay, doubled for each further failure
 * of the session (capped at 15 s), as Dovecot's auth penalty slows down password guessing.
 */
import type { AuthRequestInfo, UserDirectory } from '../lib-auth/user-directory.ts';
import { isOAuth2Mechanism, oauth2ErrorChallenge, parseOAuth2Message } from '../lib-auth/sasl-oauth2.ts';
import { decodeSaslResponse, parsePlain } from '../lib-auth/sasl-response.ts';

export type AuthOutcome =
  | { ok: true; user: string; mech: string; /** passdb extra fields (proxy, host, ...) */ fields?: Record<string, string> | undefined; password: string }
  | { ok: false; reply: string; /** counts as a failed password (delay grows) */ failure: boolean; logReason: string };

/** Longest SASL response accepted (Dovecot's auth request limit is of this order). */
const MAX_SASL = 8192;

export const REPLY_AUTH_FAILED = '-ERR [AUTH] Authentication failed.';
export const REPLY_PLAINTEXT_DISABLED = '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.';
export const REPLY_TEMPFAIL = '-ERR [SYS/TEMP] Temporary authentication failure.';

export const decodeBase64Strict = (s: string): Buffer | undefined => decodeSaslResponse(s, MAX_SASL);

export async function verifyPassword(dir: UserDirectory, mech: string, user: string, pass: string, req?: AuthRequestInfo): Promise<AuthOutcome> {
  if (!user || user.includes('\0') || pass.includes('\0')) return { ok: false, reply: REPLY_AUTH_FAILED, failure: true, logReason: 'invalid user name' };
  let r;
  try {
    r = await dir.verifyPlain(user, pass, req);
  } catch (e) {
    return { ok: false, reply: REPLY_TEMPFAIL, failure: false, logReason: `user directory: ${(e as Error).message}` };
  }
  if (r.result === 'ok') return { ok: true, user: r.user ?? user, mech, fields: r.fields, password: pass };
  if (r.result === 'tempfail') return { ok: false, reply: REPLY_TEMPFAIL, failure: false, logReason: 'temporary failure' };
  if (r.result === 'disabled' && r.fields?.reason) return { ok: false, reply: `-ERR [AUTH] ${r.fields.reason}`, failure: true, logReason: 'user disabled' };
  return { ok: false, reply: REPLY_AUTH_FAILED, failure: true, logReason: r.result === 'unknown' ? 'unknown user' : r.result === 'disabled' ? 'user disabled' : 'password mismatch' };
}

/**
 * AUTH <mech> [initial-response] (RFC 5034 §4). `exchange` sends a "+ challenge" line and
 * returns the client's answer (undefined when the connection is gone).
 */
export async function saslAuth(dir: UserDirectory, mechs: readonly string[], arg: string,
  exchange: (challenge: string) => Promise<string | undefined>, req?: AuthRequestInfo): Promise<AuthOutcome> {
  const sp = arg.indexOf(' ');
  const mech = (sp < 0 ? arg : arg.slice(0, sp)).toUpperCase();
  let ir: string | undefined = sp < 0 ? undefined : arg.slice(sp + 1);
  const abort: AuthOutcome = { ok: false, reply: '-ERR Authentication aborted by client.', failure: false, logReason: 'aborted' };
  const badB64 = (initial: boolean): AuthOutcome => ({ ok: false, reply: `-ERR [AUTH] Invalid base64 data in ${initial ? 'initial response' : 'continued response'}`, failure: false, logReason: 'bad base64' });
  const gone: AuthOutcome = { ok: false, reply: '', failure: false, logReason: 'connection lost' };
  if (!mechs.includes(mech)) return { ok: false, reply: '-ERR [AUTH] Unsupported authentication mechanism.', failure: false, logReason: `unsupported mechanism ${mech}` };
  /** The client's first response (given with AUTH, or asked for), decoded; an outcome when there is none. */
  const firstResponse = async (): Promise<Buffer | AuthOutcome> => {
    const initial = ir !== undefined;
    const r = ir ?? await exchange('');
    if (r === undefined) return gone;
    if (r === '*') return abort;
    return (r === '=' ? Buffer.alloc(0) : decodeBase64Strict(r)) ?? badB64(initial);
  };
  if (isOAuth2Mechanism(mech)) {
    const raw = await firstResponse();
    if (!Buffer.isBuffer(raw)) return raw;
    const m = parseOAuth2Message(mech, raw);
    if ('error' in m) return { ok: false, reply: REPLY_AUTH_FAILED, failure: true, logReason: m.error };
    const r = await verifyPassword(dir, mech, m.user, m.token, { ...req, mechanism: mech });
    if (r.ok || !r.failure) return r;   // a temporary failure is answered at once
    // RFC 7628 §3.2.2: the error challenge; the client's dummy response ends the exchange
    if (await exchange(oauth2ErrorChallenge(mech)) === undefined) return gone;
    return r;
  }
  if (mech === 'PLAIN') {
    const raw = await firstResponse();
    if (!Buffer.isBuffer(raw)) return raw;
    const p = parsePlain(raw);
    if ('error' in p) return { ok: false, reply: REPLY_AUTH_FAILED, failure: true, logReason: p.error };
    return verifyPassword(dir, mech, p.user, p.pass, { ...req, mechanism: mech });
  }
  // LOGIN (draft-murchison-sasl-login): "Username:" then "Password:".
  let u: string | undefined = ir;
  const initial = u !== undefined;
  if (u === undefined) u = await exchange(Buffer.from('Username:').toString('base64'));
  if (u === undefined) return gone;
  if (u === '*') return abort;
  const user = decodeBase64Strict(u);
  if (!user) return badB64(initial);
  const p = await exchange(Buffer.from('Password:').toString('base64'));
  if (p === undefined) return gone;
  if (p === '*') return abort;
  const pass = decodeBase64Strict(p);
  if (!pass) return badB64(false);
  return verifyPassword(dir, mech, user.toString('utf8'), pass.toString('utf8'), { ...req, mechanism: mech });
}
