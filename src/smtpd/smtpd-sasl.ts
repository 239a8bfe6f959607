/**
 * smtpd-sasl - SMTP AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN mechanisms, and
 * OAUTHBEARER (RFC 7628) / XOAUTH2 when auth_mechanisms lists them (lib-auth/sasl-oauth2.ts: a
 * failure is a 334 error challenge, the client's dummy response, then 535), verified
 * against the shared user directory (smtpd_sasl_type = dovecot means "our own directory": one
 * user list for SMTP, IMAP, POP3).
 *
 * Replies follow Postfix with a Dovecot SASL backend:
 *   235 2.7.0 Authentication successful
 *   535 5.7.8 Error: authentication failed: authentication failure
 *   501 5.5.4 Syntax: AUTH mechanism
 *   504 5.5.4 Unsupported authentication mechanism
 *   501 5.7.0 Authentication aborted         (client sent "*", RFC 4954 §4)
 *   535 5.7.8 Error: authentication failed: Invalid base64 data in continued response
 */
import type { UserDirectory } from '../lib-auth/user-directory.ts';
import type { SmtpdState } from './smtpd-state.ts';
import { isOAuth2Mechanism, oauth2ErrorChallenge, parseOAuth2Message } from '../lib-auth/sasl-oauth2.ts';
import { decodeSaslResponse, parsePlain } from '../lib-auth/sasl-response.ts';

export interface AuthResult {
  ok: boolean;
  user?: string;
  mechanism?: string;
  code?: number;
  enh?: string;
  text?: string;
  /** For the log only (never the secret). */
  logReason?: string;
}

export interface SmtpdAuth {
  readonly mechanisms: string[];
  /** `arg` is what follows "AUTH "; `exchange` sends a 334 challenge and returns the reply line. */
  authenticate(arg: string, state: SmtpdState, exchange: (challenge: string) => Promise<string | undefined>): Promise<AuthResult>;
}

/** Longest SASL response line we decode (Dovecot's auth request limit is similar). */
const MAX_RESPONSE = 16384;

const decodeB64 = (s: string): Buffer | undefined => decodeSaslResponse(s, MAX_RESPONSE);

export function directoryAuth(dir: UserDirectory, mechanisms: string[] = ['PLAIN', 'LOGIN']): SmtpdAuth {
  const fail = (mechanism: string, logReason: string): AuthResult => ({ ok: false, mechanism, logReason });
  return {
    mechanisms,
    async authenticate(arg, _state, exchange) {
      const parts = arg.trim().split(/\s+/);
      const mech = (parts[0] ?? '').toUpperCase();
      if (!mech) return { ok: false, code: 501, enh: '5.5.4', text: 'Syntax: AUTH mechanism' };
      if (!mechanisms.includes(mech)) return { ok: false, code: 504, enh: '5.5.4', text: 'Unsupported authentication mechanism' };
      let initial: string | undefined = parts[1];
      if (isOAuth2Mechanism(mech)) {
        if (initial === undefined) initial = await exchange('');
        if (initial === undefined) return fail(mech, 'connection lost');
        if (initial === '*') return { ok: false, mechanism: mech, code: 501, enh: '5.7.0', text: 'Authentication aborted' };
        const raw = initial === '=' ? Buffer.alloc(0) : decodeB64(initial);
        if (!raw) return { ok: false, mechanism: mech, code: 535, enh: '5.7.8', text: 'Error: authentication failed: Invalid base64 data in continued response' };
        const m = parseOAuth2Message(mech, raw);
        if ('error' in m) return fail(mech, m.error);
        const r = await verify(mech, m.user, m.token, _state);
        if (r.ok || r.code !== undefined) return r;   // a temporary failure is answered at once
        // RFC 7628 §3.2.2 / RFC 4954 §4: the error challenge, then the client's dummy response
        const dummy = await exchange(oauth2ErrorChallenge(mech));
        if (dummy === undefined) return fail(mech, 'connection lost');
        return r;
      }
      if (mech === 'PLAIN') {
        if (initial === undefined) initial = await exchange('');
        if (initial === undefined) return fail(mech, 'connection lost');
        if (initial === '*') return { ok: false, mechanism: mech, code: 501, enh: '5.7.0', text: 'Authentication aborted' };
        const raw = initial === '=' ? Buffer.alloc(0) : decodeB64(initial);
        if (!raw) return { ok: false, mechanism: mech, code: 535, enh: '5.7.8', text: 'Error: authentication failed: Invalid base64 data in continued response' };
        const p = parsePlain(raw);
        if ('error' in p) return fail(mech, p.error);
        return verify(mech, p.user, p.pass, _state);
      }
      if (mech === 'LOGIN') {
        let userLine: string | undefined = initial;
        if (userLine === undefined) userLine = await exchange(Buffer.from('Username:').toString('base64'));
        if (userLine === undefined) return fail(mech, 'connection lost');
        if (userLine === '*') return { ok: false, mechanism: mech, code: 501, enh: '5.7.0', text: 'Authentication aborted' };
        const u = decodeB64(userLine);
        if (!u) return { ok: false, mechanism: mech, code: 535, enh: '5.7.8', text: 'Error: authentication failed: Invalid base64 data in continued response' };
        const passLine = await exchange(Buffer.from('Password:').toString('base64'));
        if (passLine === undefined) return fail(mech, 'connection lost');
        if (passLine === '*') return { ok: false, mechanism: mech, code: 501, enh: '5.7.0', text: 'Authentication aborted' };
        const p = decodeB64(passLine);
        if (!p) return { ok: false, mechanism: mech, code: 535, enh: '5.7.8', text: 'Error: authentication failed: Invalid base64 data in continued response' };
        return verify(mech, u.toString('utf8'), p.toString('utf8'), _state);
      }
      return { ok: false, code: 504, enh: '5.5.4', text: 'Unsupported authentication mechanism' };
    },
  };

  async function verify(mech: string, user: string, pass: string, state: SmtpdState): Promise<AuthResult> {
    if (!user || user.includes('\0')) return fail(mech, 'empty user name');
    // service "smtp", as Postfix's SASL requests reach Dovecot's auth (%s in passdb args)
    const r = await dir.verifyPlain(user, pass, { service: 'smtp', mechanism: mech, remoteIp: state.clientAddr });
    if (r.result === 'ok') return { ok: true, user: r.user ?? user, mechanism: mech };
    if (r.result === 'tempfail') return { ok: false, mechanism: mech, code: 454, enh: '4.7.0', text: 'Temporary authentication failure', logReason: 'temporary failure' };
    return fail(mech, r.result === 'unknown' ? 'unknown user' : 'authentication failure');
  }
}
