/**
 * managesieve-auth - AUTHENTICATE (RFC 5804 §2.1) with SASL PLAIN (RFC 4616) and LOGIN on the
 * shared user directory, with Pigeonhole's managesieve-login replies:
 *
 *   OK "Logged in."                       NO "Authentication failed."
 *   NO "Unsupported authentication mechanism."
 *   NO "Invalid base64 data in initial response"   (continued response: "... in continued response")
 *   NO "Authentication aborted by client."         (the client answered "*")
 *   NO (ENCRYPT-NEEDED) "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."
 *   NO (TRYLATER) "Temporary authentication failure."
 *
 * Challenges are sent as ManageSieve strings (`"VXNlcm5hbWU6"`, `""` for PLAIN without an
 * initial response); the client answers with a string (quoted or a literal of at most 8192
 * bytes, Dovecot's LOGIN_MAX_AUTH_BUF_SIZE; a larger one ends the connection, logged as
 * "Authentication response too large").
 */
import type { AuthRequestInfo, UserDirectory } from '../lib-auth/user-directory.ts';
import { isOAuth2Mechanism, oauth2ErrorChallenge, parseOAuth2Message } from '../lib-auth/sasl-oauth2.ts';
import { decodeSaslResponse, parsePlain } from '../lib-auth/sasl-response.ts';

export type AuthOutcome =
  | { ok: true; user: string; mech: string; /** passdb extra fields (proxy, host, ...) */ fields?: Record<string, string> | undefined; password: string }
  | { ok: false; code?: string; text: string; /** a wrong password: the failure delay grows */ failure: boolean; logReason: string; close?: boolean };

/** Longest SASL response (Dovecot login-common LOGIN_MAX_AUTH_BUF_SIZE). */
export const MAX_SASL_RESPONSE = 8192;


export const TEXT_AUTH_FAILED = 'Authentication failed.';
export const TEXT_PLAINTEXT_DISABLED = 'Plaintext authentication disallowed on non-secure (SSL/TLS) connections.';

const decodeBase64Strict = (s: string): Buffer | undefined => decodeSaslResponse(s, MAX_SASL_RESPONSE);

async function verify(dir: UserDirectory, mech: string, user: string, pass: string, req?: AuthRequestInfo): Promise<AuthOutcome> {
  if (!user || user.includes('\0') || pass.includes('\0')) return { ok: false, text: TEXT_AUTH_FAILED, failure: true, logReason: 'invalid user name' };
  let r;
  try {
    r = await dir.verifyPlain(user, pass, req);
  } catch (e) {
    return { ok: false, code: 'TRYLATER', text: 'Temporary authentication failure.', failure: false, logReason: `user directory: ${(e as Error).message}` };
  }
  if (r.result === 'ok') return { ok: true, user: r.user ?? user, mech, fields: r.fields, password: pass };
  if (r.result === 'disabled' && r.fields?.reason) return { ok: false, text: r.fields.reason, failure: true, logReason: 'user disabled' };
  if (r.result === 'tempfail') return { ok: false, code: 'TRYLATER', text: 'Temporary authentication failure.', failure: false, logReason: 'temporary failure' };
  return { ok: false, text: TEXT_AUTH_FAILED, failure: true, logReason: r.result === 'unknown' ? 'unknown user' : r.result === 'disabled' ? 'user disabled' : 'password mismatch' };
}

/**
 * One AUTHENTICATE exchange. `exchange(challenge)` sends the challenge string and returns the
 * client's answer: a string, 'tooLarge' (the connection must end), 'bad', or undefined (gone).
 */
export async function saslAuthenticate(dir: UserDirectory, mechs: readonly string[], mechArg: string, initial: string | undefined,
  exchange: (challenge: string) => Promise<string | 'tooLarge' | 'bad' | undefined>, req?: AuthRequestInfo): Promise<AuthOutcome> {
  const mech = mechArg.toUpperCase();
  if (!mechs.includes(mech)) return { ok: false, text: 'Unsupported authentication mechanism.', failure: false, logReason: `unsupported mechanism ${mech}` };
  const abort: AuthOutcome = { ok: false, text: 'Authentication aborted by client.', failure: false, logReason: 'aborted' };
  const gone: AuthOutcome = { ok: false, text: '', failure: false, logReason: 'connection lost', close: true };
  const tooLarge: AuthOutcome = { ok: false, text: '', failure: false, logReason: 'Authentication response too large', close: true };
  const bad: AuthOutcome = { ok: false, text: 'Invalid AUTHENTICATE client response.', failure: false, logReason: 'invalid response' };
  const badB64 = (init: boolean): AuthOutcome => ({ ok: false, text: `Invalid base64 data in ${init ? 'initial response' : 'continued response'}`, failure: false, logReason: 'bad base64' });
  const ask = async (challenge: string): Promise<string | AuthOutcome> => {
    const a = await exchange(challenge);
    if (a === undefined) return gone;
    if (a === 'tooLarge') return tooLarge;
    if (a === 'bad') return bad;
    if (a === '*') return abort;
    return a;
  };
  /** The client's first response (given with AUTHENTICATE, or asked for), decoded; an outcome when there is none. */
  const firstResponse = async (): Promise<Buffer | AuthOutcome> => {
    const r = initial ?? await ask('');
    if (typeof r !== 'string') return r;
    return decodeBase64Strict(r) ?? badB64(initial !== undefined);
  };
  if (isOAuth2Mechanism(mech)) {
    const raw = await firstResponse();
    if (!Buffer.isBuffer(raw)) return raw;
    const m = parseOAuth2Message(mech, raw);
    if ('error' in m) return { ok: false, text: TEXT_AUTH_FAILED, failure: true, logReason: m.error };
    const r = await verify(dir, mech, m.user, m.token, { ...req, mechanism: mech });
    if (r.ok || !r.failure) return r;   // a temporary failure is answered at once
    // RFC 7628 §3.2.2: the error challenge; the client's dummy response ends the exchange
    const dummy = await exchange(oauth2ErrorChallenge(mech));
    if (dummy === undefined) return gone;
    if (dummy === 'tooLarge') return tooLarge;
    return r;
  }
  if (mech === 'PLAIN') {
    const raw = await firstResponse();
    if (!Buffer.isBuffer(raw)) return raw;
    const p = parsePlain(raw);
    if ('error' in p) return { ok: false, text: TEXT_AUTH_FAILED, failure: true, logReason: p.error };
    return verify(dir, mech, p.user, p.pass, { ...req, mechanism: mech });
  }
  // LOGIN: "Username:" then "Password:".
  let u: string | AuthOutcome | undefined = initial;
  const isInitial = u !== undefined;
  if (u === undefined) u = await ask(Buffer.from('Username:').toString('base64'));
  if (typeof u !== 'string') return u;
  const user = decodeBase64Strict(u);
  if (!user) return badB64(isInitial);
  const p = await ask(Buffer.from('Password:').toString('base64'));
  if (typeof p !== 'string') return p;
  const pass = decodeBase64Strict(p);
  if (!pass) return badB64(false);
  return verify(dir, mech, user.toString('utf8'), pass.toString('utf8'), { ...req, mechanism: mech });
}
