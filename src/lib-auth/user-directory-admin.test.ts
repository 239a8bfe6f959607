/**
 * Tests for the web console's administrator flag in the two writable directories
 * (user-directory-write.ts, user-directory-embedded.ts): passwd-file's extra field
 * postern_admin=yes and the embedded SQLite column postern_admin (added in place to a database
 * created before it), both returned by verifyPlain() as the passdb field postern_admin=yes
 * through the ordinary drivers, set and cleared without touching the other fields.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { openUserWriter } from './user-directory-write.ts';
import { openUserDirectory } from './user-directory-open.ts';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from './user-directory-embedded.ts';
import { passwordHash } from './password-scheme.ts';

const tmp = mkdtempSync(join(tmpdir(), 'postern-admin-flag-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('passwd-file: postern_admin=yes extra field written, listed, returned by the passdb, cleared', async () => {
  const dir = join(tmp, 'pf');
  const users = join(dir, 'users');

  mkdirSync(dir);
  writeFileSync(users, `# users\ncarol@example.com:{PLAIN}carolpw::::::userdb_quota_rule=*:storage=1G\n`);
  writeFileSync(join(dir, 'dovecot.conf'), `passdb {\n  driver = passwd-file\n  args = ${users}\n}\nuserdb {\n  driver = passwd-file\n  args = ${users}\n}\n`);
  const conf = loadDovecotConf(dir);
  const w = openUserWriter(conf);
  w.add({ user: 'alice@example.com', password: await passwordHash('SHA512-CRYPT', 'alicepw1'), admin: true });
  w.add({ user: 'bob@example.com', password: '{PLAIN}bobpw' });
  w.setAdmin('carol@example.com', true);
  assert.deepEqual(w.list().map((u) => [u.user, u.admin]), [['carol@example.com', true], ['alice@example.com', true], ['bob@example.com', false]]);
  const text = readFileSync(users, 'utf8');
  assert.match(text, /^carol@example\.com:\{PLAIN\}carolpw::::::userdb_quota_rule=\*:storage=1G postern_admin=yes$/m, 'the other extra field kept');
  assert.match(text, /^# users$/m);
  const d = await openUserDirectory(conf);
  assert.equal((await d.verifyPlain('alice@example.com', 'alicepw1')).fields?.['postern_admin'], 'yes');
  assert.equal((await d.verifyPlain('bob@example.com', 'bobpw')).fields?.['postern_admin'], undefined);
  assert.equal((await d.lookup('carol@example.com'))?.quotaBytes, 1 << 30, 'userdb fields still read');
  w.setAdmin('carol@example.com', false);
  assert.match(readFileSync(users, 'utf8'), /^carol@example\.com:\{PLAIN\}carolpw::::::userdb_quota_rule=\*:storage=1G$/m);
  assert.throws(() => w.setAdmin('nobody@example.com', true), /does not exist/);
  assert.throws(() => w.setAdmin('../../etc/passwd', true), /invalid user name/);
  await d.close();
  w.close();
});

test('embedded SQLite: the column is added to an old database, returned as postern_admin=yes', async () => {
  const dir = join(tmp, 'sq');

  mkdirSync(dir);
  const db = join(dir, 'users.db');
  // A database from before the console: no postern_admin column.
  const old = new DatabaseSync(db);
  old.exec(`CREATE TABLE users (username TEXT PRIMARY KEY NOT NULL, domain TEXT NOT NULL DEFAULT '', password TEXT NOT NULL,
    uid INTEGER, gid INTEGER, home TEXT, maildir TEXT, quota_rule TEXT, active INTEGER NOT NULL DEFAULT 1, created TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)`);
  old.prepare('INSERT INTO users (username, domain, password) VALUES (?, ?, ?)').run('old@example.com', 'example.com', '{PLAIN}oldpw');
  old.close();
  const sqlConf = join(dir, 'dovecot-sql.conf.ext');
  writeFileSync(sqlConf, embeddedUserDbSqlConf(db));
  writeFileSync(join(dir, 'dovecot.conf'), `passdb {\n  driver = sql\n  args = ${sqlConf}\n}\nuserdb {\n  driver = sql\n  args = ${sqlConf}\n}\n`);
  const conf = loadDovecotConf(dir);
  const w0 = openUserWriter(conf);
  assert.throws(() => w0.setAdmin('old@example.com', true), /no postern_admin column/);
  assert.deepEqual(w0.list(), [{ user: 'old@example.com', admin: false, active: true }]);
  w0.close();
  createEmbeddedUserDb(db);   // what postern start does: upgrade in place
  createEmbeddedUserDb(db);   // idempotent
  const w = openUserWriter(conf);
  w.setAdmin('old@example.com', true);
  w.add({ user: 'new@example.com', password: '{PLAIN}newpw' });
  assert.deepEqual(w.list().map((u) => [u.user, u.admin]), [['new@example.com', false], ['old@example.com', true]]);
  const d = await openUserDirectory(conf);
  assert.equal((await d.verifyPlain('old@example.com', 'oldpw')).fields?.['postern_admin'], 'yes');
  const n = await d.verifyPlain('new@example.com', 'newpw');
  assert.equal(n.result, 'ok');
  assert.equal(n.fields?.['postern_admin'], undefined, 'NULL for a non-administrator: no field');
  await d.close();
  w.close();
});
