/**
 * user-directory-embedded - the embedded default user directory: one SQLite file driven by the
 * ordinary `sql` driver (db-sql.ts) with the queries below, so an administrator can later point
 * a real Dovecot at the same database with the same dovecot-sql.conf.ext.
 *
 * Schema (docs/user-directory.md):
 *   users(username TEXT PRIMARY KEY  -- full login name, "alice@example.com", lower case
 *         domain TEXT                -- "example.com" ('' for a name without '@')
 *         password TEXT              -- "{SHA512-CRYPT}$6$..."
 *         uid INTEGER, gid INTEGER   -- NULL: mail_uid/mail_gid (or the server's own ids)
 *         home TEXT                  -- NULL: the userdb's default_fields home (e.g. /var/vmail/%d/%n)
 *         maildir TEXT               -- Dovecot mail location for this user; NULL: mail_location
 *         quota_rule TEXT            -- "*:storage=1G"; NULL: no quota
 *         active INTEGER             -- 0: the user cannot log in and receives no mail
 *         postern_admin INTEGER      -- 1: may log in to the web console as an administrator
 *                                       (the passdb extra field postern_admin=yes, docs/console.md)
 *         created TEXT)
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export const EMBEDDED_SCHEMA = `CREATE TABLE IF NOT EXISTS users (
  username   TEXT PRIMARY KEY NOT NULL,
  domain     TEXT NOT NULL DEFAULT '',
  password   TEXT NOT NULL,
  uid        INTEGER,
  gid        INTEGER,
  home       TEXT,
  maildir    TEXT,
  quota_rule TEXT,
  active     INTEGER NOT NULL DEFAULT 1,
  postern_admin INTEGER NOT NULL DEFAULT 0,
  created    TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS users_domain ON users(domain);`;

/** The columns `postern user` needs to find before it writes to a SQLite directory. */
export const EMBEDDED_COLUMNS = ['username', 'domain', 'password', 'uid', 'gid', 'home', 'maildir', 'quota_rule', 'active'];

/** dovecot-sql.conf.ext text for the embedded database (also valid for Dovecot itself). */
export function embeddedUserDbSqlConf(dbPath: string): string {
  if (/[\n\r\0]/.test(dbPath)) throw new Error(`database path contains a line break or NUL: ${JSON.stringify(dbPath)}`);
  return `# dovecot-sql.conf.ext for Postern's embedded user directory (docs/user-directory.md).
# Manage users with: postern user add|passwd|del|list|verify
driver = sqlite
connect = ${dbPath}
default_pass_scheme = SHA512-CRYPT

password_query = SELECT username AS user, password, CASE WHEN postern_admin = 1 THEN 'yes' END AS postern_admin FROM users WHERE username = '%u' AND active = 1
user_query = SELECT username AS user, uid, gid, home, maildir AS mail, quota_rule FROM users WHERE username = '%u' AND active = 1
iterate_query = SELECT username AS user FROM users WHERE active = 1
`;
}

/** Create (or upgrade in place) the embedded database with mode 0600. Idempotent. */
export function createEmbeddedUserDb(dbPath: string): void {
  mkdirSync(dirname(dbPath), { recursive: true });
  const db = new DatabaseSync(dbPath);
  try {
    db.exec(EMBEDDED_SCHEMA);
    // A database from before the web console: add its admin column in place.
    const cols = (db.prepare('PRAGMA table_info(users)').all() as { name: string }[]).map((r) => r.name);
    if (!cols.includes('postern_admin')) db.exec('ALTER TABLE users ADD COLUMN postern_admin INTEGER NOT NULL DEFAULT 0');
  } finally {
    db.close();
  }
  chmodSync(dbPath, 0o600); // password hashes: readable by the mail system only
}
