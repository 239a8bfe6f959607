/**
 * auth-db - what one passdb or userdb driver gives the user directory (Dovecot auth/passdb.h,
 * auth/userdb.h), below the UserDirectory contract of user-directory.ts:
 *
 *  - Passdb.lookup(user) → the stored password (`{SCHEME}hash`, or bare with `defaultScheme`)
 *    and extra fields (`nopassword`, `nologin`, `userdb_*` for prefetch, `user` to rename);
 *  - Userdb.lookup(user) → userdb fields as strings (uid, gid, home, mail, quota_rule, ...);
 *  - undefined = user unknown; a thrown Error = temporary failure (file unreadable, SQL error).
 *
 * Drivers never see an unchecked name: user-directory-open.ts validates names first.
 */
import type { AuthRequestInfo } from './user-directory.ts';

export interface PassdbEntry {
  /** The user name as the database spells it (may differ from the lookup key in case). */
  user: string;
  /** undefined = no password stored (only `nopassword` lets such a user in). */
  password?: string;
  fields: Record<string, string>;
}

/** A verifyBind answer other than right/wrong. */
export interface BindVerdict { result: 'unknown' | 'disabled'; reason: string }

export interface Passdb {
  readonly driver: string;
  /** Scheme for passwords stored without `{SCHEME}` (passwd-file `scheme=`, sql default_pass_scheme). */
  readonly defaultScheme: string;
  /** `req`: who asks, for %s %r %l in the driver's args (passwd-file path). */
  lookup(user: string, req?: AuthRequestInfo): Promise<PassdbEntry | undefined>;
  /**
   * Check the password by the database itself instead of comparing hashes (LDAP auth_bind, an
   * oauth2 token endpoint): true = right, false = wrong, or another passdb result with the
   * reason for the log (oauth2: the token names another user, the account is not active);
   * throws on a temporary failure.
   */
  verifyBind?(entry: PassdbEntry, secret: string, req?: AuthRequestInfo): Promise<boolean | BindVerdict>;
  iterate?(): AsyncIterable<string>;
  /** Changes whenever the underlying data may have changed (file mtime, SQLite data_version). */
  stamp?(): Promise<string>;
  close(): Promise<void>;
}

export interface Userdb {
  readonly driver: string;
  lookup(user: string): Promise<Record<string, string> | undefined>;
  iterate?(): AsyncIterable<string>;
  stamp?(): Promise<string>;
  close(): Promise<void>;
}

/** Parse Dovecot's space-separated `key=value` args/extra fields; a bare `key` means `key=` (a flag). */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of text.split(/[ \t]+/)) {
    if (!word) continue;
    const eq = word.indexOf('=');
    if (eq < 0) out[word] = '';
    else out[word.slice(0, eq)] = word.slice(eq + 1);
  }
  return out;
}
