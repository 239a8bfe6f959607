/**
 * postern user export / import: users move from a PostgreSQL directory (Dovecot sql driver) to a
 * passwd-file and to the embedded SQLite directory with their passwords unchanged — they log in
 * with the same password afterwards — and back out again identically.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PgServer } from '../../test/harness/pg-server.ts';
import { passwordHash } from '../lib-auth/password-scheme.ts';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from '../lib-auth/user-directory-embedded.ts';

const POSTERN = join(import.meta.dirname, 'postern.ts');
const skip = PgServer.unavailable();
let pg: PgServer;
const tmp = mkdtempSync(join(tmpdir(), 'postern-userio-'));

before(async () => {
  if (skip) return;
  pg = await PgServer.start();
  await pg.sql(`CREATE TABLE mailbox (username TEXT PRIMARY KEY, password TEXT, maildir TEXT, quota BIGINT, active BOOLEAN);
    INSERT INTO mailbox VALUES ('joe@example.com', '${await passwordHash('SHA512-CRYPT', 'joe-pw')}', 'example.com/joe/', 1048576, TRUE),
      ('ann@example.org', '${await passwordHash('BLF-CRYPT', 'ann-pw')}', 'example.org/ann/', 0, TRUE),
      ('plain@example.com', 'plain-pw', 'example.com/plain/', 0, TRUE);`);
});
after(async () => { await pg?.stop(); rmSync(tmp, { recursive: true, force: true }); });

function postern(dir: string, args: string[], input = ''): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [POSTERN, '-c', dir, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

test('user export from PostgreSQL, import into a passwd-file and the embedded SQLite directory', { skip }, () => {
  const src = join(tmp, 'pg');
  mkdirSync(src);
  writeFileSync(join(src, 'sql.conf.ext'), `driver = pgsql
connect = host=127.0.0.1 port=${pg.port} dbname=mail user=postgres password=pgpass
default_pass_scheme = PLAIN
password_query = SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active
user_query = SELECT '/var/vmail/' || maildir AS home, 5000 AS uid, 5000 AS gid, '*:bytes=' || quota AS quota_rule FROM mailbox WHERE username = '%u' AND active
iterate_query = SELECT username AS user FROM mailbox WHERE active
`);
  writeFileSync(join(src, 'dovecot.conf'), `mail_location = maildir:~/Maildir\npassdb {\n  driver = sql\n  args = ${src}/sql.conf.ext\n}\nuserdb {\n  driver = sql\n  args = ${src}/sql.conf.ext\n}\n`);
  const exp = postern(src, ['user', 'export']);
  assert.equal(exp.code, 0, exp.err);
  const lines = exp.out.trim().split('\n').sort();
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^ann@example\.org:\{BLF-CRYPT\}\$2y\$.*:5000:5000::\/var\/vmail\/example\.org\/ann\/::userdb_mail=maildir:\/var\/vmail\/example\.org\/ann\/\/Maildir$/);
  assert.match(lines[1]!, /^joe@example\.com:\{SHA512-CRYPT\}\$6\$.*userdb_quota_rule=\*:storage=1024k$/);
  assert.match(lines[2]!, /^plain@example\.com:\{PLAIN\}plain-pw:/, 'the default scheme is made explicit');

  // Into a passwd-file directory.
  const pf = join(tmp, 'pf');
  mkdirSync(pf);
  writeFileSync(join(pf, 'users'), '');
  // The userdb_mail of the export is the source's mail_location; the target has the same one.
  writeFileSync(join(pf, 'dovecot.conf'), `mail_location = maildir:~/Maildir\npassdb {\n  driver = passwd-file\n  args = ${pf}/users\n}\nuserdb {\n  driver = passwd-file\n  args = ${pf}/users\n}\n`);
  const imp = postern(pf, ['user', 'import'], exp.out + exp.out.split('\n')[0] + '\n');
  assert.equal(imp.code, 0, imp.err);
  assert.equal(imp.out, 'imported 3 user(s), skipped 0\n');
  assert.match(imp.err, /exists more than once/);
  for (const [u, pw] of [['joe@example.com', 'joe-pw'], ['ann@example.org', 'ann-pw'], ['plain@example.com', 'plain-pw']]) {
    assert.equal(postern(pf, ['user', 'verify', u!], `${pw}\n`).code, 0, `${u} logs in with the same password`);
    assert.equal(postern(pf, ['user', 'verify', u!], 'wrong\n').code, 77);
  }
  assert.deepEqual(postern(pf, ['user', 'export']).out.trim().split('\n').sort(), lines, 'exported back identically');
  // Importing again skips the users that exist.
  assert.equal(postern(pf, ['user', 'import'], exp.out).out, 'imported 0 user(s), skipped 3\n');

  // Into the embedded SQLite directory.
  const em = join(tmp, 'embedded');
  mkdirSync(em);
  createEmbeddedUserDb(join(em, 'users.db'));
  writeFileSync(join(em, 'dovecot-sql.conf.ext'), embeddedUserDbSqlConf(join(em, 'users.db')));
  writeFileSync(join(em, 'dovecot.conf'), `mail_location = maildir:/var/vmail/%d/%n\npassdb {\n  driver = sql\n  args = ${em}/dovecot-sql.conf.ext\n}\nuserdb {\n  driver = sql\n  args = ${em}/dovecot-sql.conf.ext\n}\n`);
  writeFileSync(join(tmp, 'export.txt'), exp.out);
  const imp2 = postern(em, ['user', 'import', join(tmp, 'export.txt')]);
  assert.equal(imp2.out, 'imported 3 user(s), skipped 0\n', imp2.err);
  assert.equal(postern(em, ['user', 'verify', 'ann@example.org'], 'ann-pw\n').code, 0);
  assert.match(postern(em, ['user', 'joe@example.com']).out, /quota_rule\t\*:storage=1M/);
});
