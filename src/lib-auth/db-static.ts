/**
 * db-static - Dovecot's static userdb and passdb (auth/userdb-static.c, passdb-static.c):
 *
 *   userdb { driver = static  args = uid=vmail gid=vmail home=/var/vmail/%d/%n }
 *   passdb { driver = static  args = nopassword=y }        (or password=SECRET)
 *
 * The static userdb gives every user the same template fields (expanded per user by the
 * directory). Like Dovecot, it does not by itself say that a user exists: unless
 * `allow_all_users=yes`, the directory first asks the passdbs (userdb-static.c does a passdb
 * lookup for userdb-only requests such as LMTP delivery), so `auth:userdb` never accepts mail
 * for a name nobody has.
 */
import { parseKeyValues, type Passdb, type Userdb } from './auth-db.ts';

export interface StaticUserdb extends Userdb {
  readonly allowAllUsers: boolean;
}

export function staticUserdb(args: string): StaticUserdb {
  const fields = parseKeyValues(args);
  const allowAllUsers = /^(yes|y|1)$/i.test(fields.allow_all_users ?? '');
  delete fields.allow_all_users;
  return {
    driver: 'static',
    allowAllUsers,
    async lookup(user) { return { ...fields, user }; },
    async close() {},
  };
}

export function staticPassdb(args: string): Passdb {
  const fields = parseKeyValues(args);
  const password = fields.password;
  delete fields.password;
  return {
    driver: 'static',
    defaultScheme: 'PLAIN',
    async lookup(user) { return { user, password, fields: { ...fields } }; },
    async close() {},
  };
}
