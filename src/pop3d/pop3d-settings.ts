/**
 * pop3d-settings - the dovecot.conf settings pop3d reads, with Dovecot 2.3's names and defaults
 * (doveconf -d), seen from inside `protocol pop3 { }` (DovecotConfig.getFor).
 *
 *   login_greeting           "Dovecot ready." when dovecot.conf sets nothing is shown as "Postern ready."
 *   auth_failure_delay       2 secs; doubled per failure of the session, at most 15 s (Dovecot's
 *                            auth penalty grows the same way)
 *   disable_plaintext_auth   yes: USER/PASS, PLAIN, LOGIN refused unless TLS or loopback
 *   auth_mechanisms          plain (login, oauthbearer, xoauth2 also when listed)
 *   pop3_lock_session        no
 *   pop3_uidl_format         %08Xu%08Xv (also %u %v %g %m, with Dovecot's %0NX forms; hex is
 *                            lower case, as Dovecot 2.3 writes it)
 *   pop3_logout_format       top=%t/%p, retr=%r/%b, del=%d/%m, size=%s
 *   mail_max_userip_connections (not enforced yet)
 *   login_trusted_networks   proxies that may send XCLIENT (the greeting then says [XCLIENT])
 */
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import { parseDovecotTime } from '../global/dovecot-units.ts';
import { offeredMechanisms } from '../lib-auth/sasl-oauth2.ts';

export interface Pop3dSettings {
  greeting: string;
  authFailureDelayMs: number;
  disablePlaintextAuth: boolean;
  mechanisms: string[];
  lockSession: boolean;
  uidlFormat: string;
  logoutFormat: string;
  /** Idle timeout of a session in ms (Dovecot: 10 min for authenticated, 3 min pre-login). */
  idleTimeoutMs: number;
  loginTimeoutMs: number;
  /** login_trusted_networks: proxies that may forward the client's address with XCLIENT. */
  trustedNetworks: string[];
}

export function pop3dSettings(conf: DovecotConfig): Pop3dSettings {
  const get = (n: string) => conf.getFor(n, { protocol: 'pop3' }) ?? '';
  const yes = (n: string) => /^(yes|y|1|true)$/i.test(get(n).trim());
  const greeting = conf.isSet('login_greeting') ? get('login_greeting') : 'Postern ready.';
  return {
    greeting,
    authFailureDelayMs: parseDovecotTime(get('auth_failure_delay') || '2 secs', 'auth_failure_delay'),
    // Dovecot client_check_plaintext_auth(): `ssl = required` refuses plaintext logins on
    // non-secure connections just as disable_plaintext_auth = yes does.
    disablePlaintextAuth: conf.disablePlaintextAuth || conf.ssl === 'required',
    mechanisms: offeredMechanisms(conf.authMechanisms),
    lockSession: yes('pop3_lock_session'),
    uidlFormat: get('pop3_uidl_format') || '%08Xu%08Xv',
    logoutFormat: get('pop3_logout_format') || 'top=%t/%p, retr=%r/%b, del=%d/%m, size=%s',
    idleTimeoutMs: 10 * 60_000,
    loginTimeoutMs: 3 * 60_000,
    trustedNetworks: get('login_trusted_networks').split(/[\s,]+/).filter((n) => /^[0-9a-fA-F.:]+(\/\d+)?$/.test(n)),
  };
}

/**
 * Expand pop3_uidl_format for one message: %u UID, %v UIDVALIDITY, %g GUID (maildir base name),
 * %m (no MD5 support: the GUID is used), with Dovecot's `%08X` form. NOTE: Dovecot 2.3's
 * var_expand writes the X (hex) modifier in LOWER case — real Dovecot 2.3.19 answers UIDL with
 * `000000016b09d921` for %08Xu%08Xv (test/interop/pop3-interop.test.ts compares) — and clients
 * compare UIDLs as strings, so Postern does the same.
 */
export function formatUidl(fmt: string, uid: number, uidValidity: number, guid: string): string {
  return fmt.replace(/%(0?\d*)([Xx]?)(\{[a-z]+\}|[uvgm%])/g, (_all, width: string, hex: string, key: string) => {
    if (key === '%') return '%';
    const k = key.startsWith('{') ? key.slice(1, -1) : key;
    let v: string;
    if (k === 'u' || k === 'uid') v = hex ? uid.toString(16) : String(uid);
    else if (k === 'v' || k === 'uidvalidity') v = hex ? uidValidity.toString(16) : String(uidValidity);
    else v = guid;
    const w = Number(width || '0');
    return v.padStart(w, width.startsWith('0') ? '0' : ' ');
  });
}
