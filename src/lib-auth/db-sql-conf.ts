/**
 * db-sql-conf - Dovecot's dovecot-sql.conf.ext (auth/db-sql.c settings):
 *
 *   driver = sqlite | pgsql | mysql
 *   connect = /var/lib/postern/users.db                          (sqlite: the database file)
 *   connect = host=db1 host=db2 dbname=mail user=dovecot password=secret   (pgsql, mysql)
 *   default_pass_scheme = SHA512-CRYPT
 *   password_query = SELECT username AS user, password FROM users WHERE username = '%u'
 *   user_query = SELECT home, uid, gid, maildir AS mail FROM users WHERE username = '%u'
 *   iterate_query = SELECT username AS user FROM users
 *
 * `#` comments, blank lines, a trailing `\` continues a value on the next line, values may be
 * double-quoted. Unknown keys are errors naming file and line (Dovecot refuses them too).
 * Defaults as Dovecot: default_pass_scheme MD5, user_query/password_query/iterate_query as in
 * db-sql.c.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../global/config-error.ts';
import { readConfExt } from './auth-conf-ext.ts';

export interface SqlConf {
  file: string;
  driver: string;
  connect: string;
  defaultPassScheme: string;
  passwordQuery: string;
  userQuery: string;
  iterateQuery: string;
}

const KEYS: Record<string, keyof SqlConf> = {
  driver: 'driver', connect: 'connect', default_pass_scheme: 'defaultPassScheme',
  password_query: 'passwordQuery', user_query: 'userQuery', iterate_query: 'iterateQuery',
};
// Accepted and ignored (Dovecot settings that do not change what we do).
const IGNORED = new Set(['userdb_warning_disable', 'password_pass_scheme']);

export function parseSqlConf(text: string, file: string): SqlConf {
  const conf: SqlConf = {
    file, driver: '', connect: '', defaultPassScheme: 'MD5',
    passwordQuery: "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'",
    userQuery: "SELECT home, uid, gid FROM users WHERE username = '%n' AND domain = '%d'",
    iterateQuery: 'SELECT username, domain FROM users',
  };
  readConfExt(text, file, (key, value, start) => {
    const field = KEYS[key];
    if (field) (conf as unknown as Record<string, string>)[field] = value;
    else if (!IGNORED.has(key)) throw new ConfigError(file, start, `unknown setting "${key}" (known: ${Object.keys(KEYS).join(', ')})`);
  });
  if (!conf.driver) throw new ConfigError(file, 0, 'missing "driver = sqlite"');
  if (!['sqlite', 'pgsql', 'mysql'].includes(conf.driver)) throw new ConfigError(file, 0, `driver "${conf.driver}" is not supported (use sqlite, pgsql or mysql)`);
  if (!conf.connect) throw new ConfigError(file, 0, conf.driver === 'sqlite' ? 'missing "connect = /path/to/users.db"' : 'missing "connect = host=... dbname=... user=... password=..."');
  if (conf.driver === 'sqlite') {
    // Dovecot's sqlite connect string is the database file; a relative name is taken relative to this file.
    conf.connect = resolve(dirname(file), conf.connect);
  } else {
    parseConnect(conf.connect, file);
  }
  return conf;
}

/** A pgsql/mysql connect string: `key=value` words (values may be quoted); host may repeat. */
export interface SqlConnect { hosts: string[]; settings: Record<string, string> }

const CONNECT_KEYS = new Set(['host', 'port', 'dbname', 'user', 'password', 'client_flags', 'ssl_ca', 'ssl_ca_path',
  'ssl_cert', 'ssl_key', 'ssl_cipher', 'ssl_verify_server_cert', 'option_file', 'option_group', 'connect_timeout',
  'sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name', 'maxconns', 'character_set']);

export function parseConnect(text: string, file: string): SqlConnect {
  const out: SqlConnect = { hosts: [], settings: {} };
  const re = /\s*([a-z_]+)\s*=\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(\S*))/gy;
  let m: RegExpExecArray | null;
  let pos = 0;
  while (pos < text.length && (re.lastIndex = pos, m = re.exec(text))) {
    pos = re.lastIndex;
    const key = m[1]!;
    const value = (m[2] ?? m[3] ?? m[4] ?? '').replace(/\\(.)/g, '$1');
    if (!CONNECT_KEYS.has(key)) throw new ConfigError(file, 0, `connect: unknown setting "${key}"`);
    if (key === 'host') out.hosts.push(value);
    else out.settings[key] = value;
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  }
  if (text.slice(pos).trim() !== '') throw new ConfigError(file, 0, `connect: cannot parse "${text.slice(pos, pos + 40)}" (expected key=value words)`);
  if (out.hosts.length === 0) out.hosts.push('localhost');
  return out;
}

export function loadSqlConf(file: string): SqlConf {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, 0, `cannot read SQL settings: ${(err as Error).message}`);
  }
  return parseSqlConf(text, file);
}
