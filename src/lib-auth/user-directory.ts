/**
 * user-directory - CONTRACT 6 of DESIGN.md: the one user list shared by every part.
 *
 * passdb answers "is this secret right for this user" (Dovecot auth/passdb.h results), userdb
 * answers "where does this user's mail live" (auth/userdb.h). smtpd SASL, recipient validation
 * (the `auth:` lookup-table type), virtual(8), lmtpd, imapd and pop3d all use this interface, so
 * the MTA and the access servers can never disagree about who exists.
 *
 * Implementation: user-directory-open.ts (passwd-file, sql with SQLite — the embedded default —,
 * static, prefetch, passwd), password schemes in password-scheme.ts.
 */

import type { QuotaWarning } from './auth-quota-warning.ts';

/** Dovecot PASSDB_RESULT_*: OK, PASSWORD_MISMATCH, USER_UNKNOWN, USER_DISABLED, INTERNAL_FAILURE. */
export type PassResult = 'ok' | 'mismatch' | 'unknown' | 'disabled' | 'tempfail';

export interface UserRecord {
  /** The login name, usually `user@domain`. */
  user: string;
  uid: number;
  gid: number;
  home: string;
  /** Dovecot `mail` / mail_location for this user, with %u %n %d %h already expanded. */
  mail: string;
  /** RFC 9208 STORAGE limit in bytes, from userdb `quota_rule=*:storage=...`; undefined = none. */
  quotaBytes?: number;
  /** Message-count limit from `quota_rule=*:messages=N`. */
  quotaMessages?: number;
  /** Dovecot's quota_grace in bytes, when set: how far a delivery crossing quotaBytes may go over it (default 10%). */
  quotaGraceBytes?: number;
  /** plugin/userdb quota_warning, quota_warning2, ...: scripts run when usage crosses a threshold. */
  quotaWarnings?: QuotaWarning[];
  /** Remaining extra fields (userdb_*) as given. */
  extra?: Record<string, string>;
}

export interface VerifyResult {
  result: PassResult;
  /** The canonical user name on success (may differ in case from what was typed). */
  user?: string;
  /**
   * The passdb's extra fields other than userdb_* (`proxy`, `proxy_maybe`, `host`, `port`,
   * `destuser`, `ssl`, `starttls`, `proxy_timeout`, `nologin`, `reason`, ...), on 'ok' and
   * 'disabled'. A login with `proxy` or `proxy_maybe` is 'ok' even with `nologin`: the login
   * process decides (lib-login/login-proxy.ts), as Dovecot's login-common does.
   */
  fields?: Record<string, string>;
}

/**
 * Who asks, for Dovecot's %s %r %l variables in passdb/userdb args and fields
 * (`args = /etc/dovecot/proxy.%s`): the protocol (imap, pop3, sieve, smtp, lmtp) and the
 * connection's addresses.
 */
export interface AuthRequestInfo {
  service?: string | undefined;
  remoteIp?: string | undefined;
  localIp?: string | undefined;
  remotePort?: number | undefined;
  localPort?: number | undefined;
  /** The SASL mechanism (PLAIN for IMAP LOGIN / POP3 USER+PASS), for passdb `mechanisms = ...`. */
  mechanism?: string | undefined;
}

export interface UserDirectory {
  /** undefined = no such user. Throws on temporary failure (the caller defers / says NO [UNAVAILABLE]). */
  lookup(user: string): Promise<UserRecord | undefined>;
  /** Check a plaintext secret (from PLAIN, LOGIN, USER/PASS, IMAP LOGIN). */
  verifyPlain(user: string, secret: string, req?: AuthRequestInfo): Promise<VerifyResult>;
  /** Every user name (doveadm user '*', postmap -s of the auth table). */
  iterate(): AsyncIterable<string>;
  close(): Promise<void>;
  /**
   * Optional: a string that changes whenever the user list may have changed (passwd-file mtime,
   * SQLite data_version), so callers can cache derived data such as the domain set.
   */
  changeStamp?(): Promise<string>;
}
