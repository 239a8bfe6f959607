/**
 * Dovecot's sql passdb/userdb on PostgreSQL and MariaDB: the same dovecot.conf and
 * dovecot-sql.conf.ext (Postfixadmin's documented queries) served by a real Dovecot 2.3 auth
 * process and by Postern, against private servers; `doveadm auth test` / `doveadm user` and
 * `postern user verify` / `postern user` print the same. Hostile logins, a database that is gone
 * (temporary failure, never "unknown user"), the auth cache.
 * Real Dovecot needs root (it drops privileges); those parts are skipped otherwise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgServer } from '../../test/harness/pg-server.ts';
import { MariaDbServer } from '../../test/harness/mariadb-server.ts';
import { assertHostileAndList, assertSameUser, assertSameVerify, authConfDir, doveadm, haveDovecotAuth, passdbUserdb, posternUser as postern, startDovecotAuth, stopDovecots } from '../../test/harness/dovecot-auth-kit.ts';
import { passwordHash } from './password-scheme.ts';
import { openUserDirectory } from './user-directory-open.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';

const skip = PgServer.unavailable() ?? MariaDbServer.unavailable();
let pg: PgServer;
let my: MariaDbServer;
const tmp = mkdtempSync(join(tmpdir(), 'postern-authsql-'));
const dovecots: ChildProcess[] = [];

const USERS: [string, string, boolean, number][] = [
  ['alice@example.com', 'alice-pw', true, 1024000], ['bob@example.net', "b'o\"b\\pw", true, 0], ['off@example.com', 'off-pw', false, 0],
];

async function rows(): Promise<string> {
  const values = await Promise.all(USERS.map(async ([u, p, active, quota]) => {
    const [local, domain] = u.split('@');
    return `('${u}', '${(await passwordHash('SHA512-CRYPT', p)).replace(/'/g, "''")}', '${domain}/${local}/', ${quota}, ${active ? 'TRUE' : 'FALSE'})`;
  }));
  return `INSERT INTO mailbox (username, password, maildir, quota, active) VALUES ${values.join(', ')};`;
}

before(async () => {
  if (skip) return;
  chmodSync(tmp, 0o755);
  [pg, my] = await Promise.all([PgServer.start(), MariaDbServer.start()]);
  const insert = await rows();
  await pg.sql(`CREATE TABLE mailbox (username TEXT PRIMARY KEY, password TEXT, maildir TEXT, quota BIGINT, active BOOLEAN);
    ${insert} CREATE USER dovecot PASSWORD 'dvpass'; GRANT SELECT ON mailbox TO dovecot;`);
  await my.sql(`CREATE TABLE mailbox (username VARCHAR(255) PRIMARY KEY, password VARCHAR(255), maildir VARCHAR(255), quota BIGINT, active BOOLEAN);
    ${insert} CREATE USER dovecot@'127.0.0.1' IDENTIFIED BY 'dvpass'; GRANT SELECT ON mail.* TO dovecot@'127.0.0.1';`);
});
after(async () => {
  await stopDovecots(dovecots);
  await pg?.stop();
  await my?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

/** Postfixadmin's DOVECOT.txt queries, for `driver`. */
function sqlConf(driver: 'pgsql' | 'mysql', port: number): string {
  const concat = driver === 'pgsql' ? "'*:bytes=' || quota" : "CONCAT('*:bytes=', quota)";
  const home = driver === 'pgsql' ? "'/var/vmail/' || maildir" : "CONCAT('/var/vmail/', maildir)";
  return `driver = ${driver}
connect = host=127.0.0.1 port=${port} dbname=mail user=dovecot password=dvpass
default_pass_scheme = SHA512-CRYPT
password_query = SELECT username AS user, password, CASE WHEN active THEN NULL ELSE 'Y' END AS nologin, \\
  CASE WHEN active THEN NULL ELSE 'account disabled' END AS reason FROM mailbox WHERE username = '%u'
user_query = SELECT ${home} AS home, 5000 AS uid, 5000 AS gid, ${concat} AS quota_rule \\
  FROM mailbox WHERE username = '%u' AND active = '1'
iterate_query = SELECT username AS user FROM mailbox WHERE active = '1'
`;
}

const setup = (name: string, driver: 'pgsql' | 'mysql', port: number): string => authConfDir(tmp, name, 'sql', sqlConf(driver, port));

const HOSTILE = ["x' OR '1'='1", "alice@example.com' --", 'alice@example.com"', '%', '_lice@example.com', 'ali\\ce@example.com',
  "' UNION SELECT 'x', 'y' --", 'ü@example.com', '*'];

for (const driver of ['pgsql', 'mysql'] as const) {
  test(`sql ${driver}: Postern answers as real Dovecot (doveadm auth test, doveadm user)`, { skip: skip ?? (!haveDovecotAuth && 'needs root and dovecot') }, async () => {
    const dir = setup(`dc-${driver}`, driver, driver === 'pgsql' ? pg.port : my.port);
    dovecots.push(await startDovecotAuth(dir));
    for (const [user, pw] of USERS) {
      for (const tryPw of [pw, 'wrong']) {
        if (user.startsWith('off@') && tryPw === pw) {
          // The nologin and reason fields come from the query: doveadm shows them on a "success"
          // (its login processes then refuse); postern user verify refuses at once.
          assert.match(doveadm(dir, ['auth', 'test', user, tryPw]).out, /\n {2}nologin\n {2}reason=account disabled\n/);
          const ours = postern(dir, ['user', 'verify', user], `${tryPw}\n`);
          assert.equal(ours.code, 77);
          assert.equal(ours.out, 'passdb: off@example.com auth failed (login disabled)\n');
          continue;
        }
        assertSameVerify(dir, user, tryPw, `${user}/${tryPw === pw ? 'right' : 'wrong'} password`);
      }
      // postern user prints mail expanded and quota_rule normalised (docs/user-directory.md):
      // the fields that come from the query must be the same.
      const both = assertSameUser(dir, user);
      if (both) assert.equal(both[0].mail, `maildir:${both[1].home}/Maildir`.replace('//', '/'.repeat(2)));
    }
    assertHostileAndList(dir, HOSTILE, 'x');
  });
}

test('sql pgsql: a database that is gone is a temporary failure, never "unknown user"; the auth cache', { skip }, async () => {
  const dir = setup('gone', 'pgsql', pg.port);
  writeFileSync(join(dir, 'dovecot.conf'), `${'mail_location = maildir:~/Maildir'}
auth_cache_size = 1M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 0
${passdbUserdb(dir, 'sql')}`);
  const conf = loadDovecotConf(dir);
  const ud = await openUserDirectory(conf);
  try {
    assert.equal((await ud.verifyPlain('alice@example.com', 'alice-pw')).result, 'ok');
    assert.equal((await ud.lookup('alice@example.com'))?.home, '/var/vmail/example.com/alice/');
    await pg.halt();
    try {
      // Cached: alice still logs in and is still found while the database is down.
      assert.equal((await ud.verifyPlain('alice@example.com', 'alice-pw')).result, 'ok');
      assert.equal((await ud.lookup('alice@example.com'))?.quotaBytes, 1024000);
      // Not cached: a temporary failure, not "unknown".
      assert.equal((await ud.verifyPlain('bob@example.net', "b'o\"b\\pw")).result, 'tempfail');
      await assert.rejects(ud.lookup('ghost@example.com'));
    } finally {
      await pg.restart();
    }
    await new Promise((r) => setTimeout(r, 1100));   // the failed server is left alone for a second
    assert.equal((await ud.verifyPlain('bob@example.net', "b'o\"b\\pw")).result, 'ok');
    assert.equal((await ud.verifyPlain('off@example.com', 'off-pw')).result, 'disabled');
    // A user added while running is found at once (negative answers are not cached here).
    assert.equal(await ud.lookup('new@example.com'), undefined);
    await pg.sql(`INSERT INTO mailbox VALUES ('new@example.com', '${await passwordHash('SHA512-CRYPT', 'new-pw')}', 'example.com/new/', 0, TRUE)`);
    assert.equal((await ud.lookup('new@example.com'))?.home, '/var/vmail/example.com/new/');
    assert.equal((await ud.verifyPlain('new@example.com', 'new-pw')).result, 'ok');
    // A changed password is checked against the database, not only the cached hash.
    await pg.sql(`UPDATE mailbox SET password = '${await passwordHash('SHA512-CRYPT', 'alice-new')}' WHERE username = 'alice@example.com'`);
    assert.equal((await ud.verifyPlain('alice@example.com', 'alice-new')).result, 'ok');
  } finally {
    await ud.close();
  }
});

test('sql pgsql: 10,000 concurrent user lookups and logins through the shared pool, none lost', { skip }, async () => {
  // A generous connect_timeout: on a loaded machine PostgreSQL forks its backends slowly, and this
  // test is about no lookup being lost in the pool's queue, not about connect times.
  const dir = authConfDir(tmp, 'many', 'sql', sqlConf('pgsql', pg.port).replace('password=dvpass', 'password=dvpass connect_timeout=60'));
  await pg.sql(`INSERT INTO mailbox VALUES ('many@example.com', '${await passwordHash('SHA512-CRYPT', 'many-pw')}', 'example.com/many/', 0, TRUE)`);
  const ud = await openUserDirectory(loadDovecotConf(dir));
  try {
    const names = Array.from({ length: 10_000 }, (_, i) => (i % 5 === 0 ? 'alice@example.com' : `ghost${i}@example.com`));
    const recs = await Promise.all(names.map((n) => ud.lookup(n)));
    recs.forEach((r, i) => assert.equal(r?.home, i % 5 === 0 ? '/var/vmail/example.com/alice/' : undefined));
    // Logins hash passwords (SHA512-CRYPT): fewer, still all at once.
    const logins = await Promise.all(Array.from({ length: 200 }, (_, i) => ud.verifyPlain(i % 2 ? 'many@example.com' : "x' OR '1'='1", 'many-pw')));
    logins.forEach((r, i) => assert.equal(r.result, i % 2 ? 'ok' : 'unknown'));
  } finally {
    await ud.close();
  }
});
