/**
 * Tests for `postern user` and `postern pw` (doveadm-user.ts), run as an administrator would:
 * the real CLI in a child process, passwords on standard input, real `doveadm pw` to check
 * the hashes we write.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from '../lib-auth/user-directory-embedded.ts';

const POSTERN = join(import.meta.dirname, 'postern.ts');
const tmp = mkdtempSync(join(tmpdir(), 'postern-user-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const hasDoveadm = spawnSync('doveadm', ['pw', '-l']).status === 0;

function run(args: string[], input = ''): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [POSTERN, ...args], { input, encoding: 'utf8', env: { ...process.env, MAIL_CONFIG: '' }, timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function embeddedConfigDir(name: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const db = join(dir, 'data', 'users.db');
  createEmbeddedUserDb(db);
  writeFileSync(join(dir, 'dovecot-sql.conf.ext'), embeddedUserDbSqlConf(db));
  writeFileSync(join(dir, 'dovecot.conf'), `mail_location = maildir:~/Maildir
mail_uid = 5000
mail_gid = 5000
passdb {
  driver = sql
  args = ${join(dir, 'dovecot-sql.conf.ext')}
}
userdb {
  driver = sql
  args = ${join(dir, 'dovecot-sql.conf.ext')}
  default_fields = home=/var/vmail/%d/%n
}
`);
  return dir;
}

test('postern pw: hashes that doveadm accepts; -t answers with doveadm pw\'s output and exit codes', { skip: !hasDoveadm && 'doveadm not installed' }, () => {
  const h = run(['pw', '-s', 'SHA512-CRYPT', '-p', 'sécret']);
  assert.equal(h.code, 0, h.err);
  assert.match(h.out, /^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}\n$/);
  assert.equal(spawnSync('doveadm', ['pw', '-t', h.out.trim(), '-p', 'sécret']).status, 0, 'doveadm accepts our hash');
  const def = run(['pw'], 'from-stdin\n');
  assert.match(def.out, /^\{SHA512-CRYPT\}/, 'default scheme SHA512-CRYPT, password from stdin');
  assert.equal(spawnSync('doveadm', ['pw', '-t', def.out.trim(), '-p', 'from-stdin']).status, 0);

  const theirs = spawnSync('doveadm', ['pw', '-s', 'BLF-CRYPT', '-p', 'pw'], { encoding: 'utf8' }).stdout.trim();
  const ok = run(['pw', '-t', theirs, '-p', 'pw']);
  assert.equal(ok.code, 0);
  assert.equal(ok.out, `${theirs} (verified)\n`);
  const bad = run(['pw', '-t', theirs, '-p', 'nope']);
  assert.equal(bad.code, 75);
  assert.equal(bad.err, 'Fatal: reverse password verification check failed: Password mismatch\n');
  const noScheme = run(['pw', '-t', 'garbage', '-p', 'x']);
  assert.equal(noScheme.code, 75);
  assert.equal(noScheme.err, 'Fatal: Missing {scheme} prefix from hash\n');
  // Not as doveadm: `doveadm pw -s NOPE` says "Fatal: Unknown scheme: NOPE" and exits 75 (Dovecot 2.3).
  assert.equal(run(['pw', '-s', 'NOPE', '-p', 'x']).code, 1);
  assert.match(run(['pw', '-l']).out, /SHA512-CRYPT .*ARGON2ID/);
  assert.equal(run(['pw', '-x']).code, 64);
});

test('postern user on the embedded SQLite directory: add, lookup, verify, passwd, list, del', () => {
  const c = embeddedConfigDir('embedded');
  let r = run(['-c', c, 'user', 'add', 'Alice@Example.com', '--quota', '1G'], 'alicepw\n');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /added alice@example\.com \(sqlite .*users\.db\)/);
  r = run(['-c', c, 'user', 'add', 'bob@example.org', '-p', 'bobpw', '-s', 'BLF-CRYPT']);
  assert.equal(r.code, 0, r.err);
  r = run(['-c', c, 'user', 'add', 'alice@example.com'], 'again\n');
  assert.equal(r.code, 1);
  assert.match(r.err, /user alice@example\.com already exists/);

  r = run(['-c', c, 'user', 'alice@example.com']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'field\tvalue\nuid\t5000\ngid\t5000\nhome\t/var/vmail/example.com/alice\nmail\tmaildir:/var/vmail/example.com/alice/Maildir\nquota_rule\t*:storage=1G\n');
  r = run(['-c', c, 'user', 'ghost@example.com']);
  assert.equal(r.code, 67);
  assert.equal(r.out, "userdb lookup: user ghost@example.com doesn't exist\n");

  assert.deepEqual(run(['-c', c, 'user', 'verify', 'alice@example.com'], 'alicepw\n'), { code: 0, out: 'passdb: alice@example.com auth succeeded\nextra fields:\n  user=alice@example.com\n', err: '' });
  assert.deepEqual(run(['-c', c, 'user', 'verify', 'alice@example.com'], 'wrong\n'), { code: 77, out: 'passdb: alice@example.com auth failed\n', err: '' });
  assert.equal(run(['-c', c, 'user', 'verify', 'ghost@example.com'], 'x\n').code, 77);
  assert.equal(run(['-c', c, 'user', 'verify', 'bob@example.org'], 'bobpw\r\n').code, 0, 'CRLF after the password is not part of it');

  assert.equal(run(['-c', c, 'user', 'passwd', 'alice@example.com'], 'newpw\n').code, 0);
  assert.equal(run(['-c', c, 'user', 'verify', 'alice@example.com'], 'alicepw\n').code, 77);
  assert.equal(run(['-c', c, 'user', 'verify', 'alice@example.com'], 'newpw\n').code, 0);
  assert.match(run(['-c', c, 'user', 'passwd', 'ghost@example.com'], 'x\n').err, /user ghost@example\.com does not exist/);

  assert.equal(run(['-c', c, 'user', 'list']).out, 'alice@example.com\nbob@example.org\n');
  assert.equal(run(['-c', c, 'user', 'list', '*@example.org']).out, 'bob@example.org\n');
  assert.equal(run(['-c', c, 'user', 'del', 'bob@example.org']).code, 0);
  assert.equal(run(['-c', c, 'user', 'list']).out, 'alice@example.com\n');
  assert.equal(run(['-c', c, 'user', 'del', 'bob@example.org']).code, 1);
});

test('postern user refuses hostile names, passwords and options with a clear error', () => {
  const c = embeddedConfigDir('hostile');
  for (const name of ['a:b@x.test', 'a/b@x.test', '../etc@x.test', 'a@..', 'a b@x.test', 'a\u0001@x.test', '.a@x.test', 'x'.repeat(300)]) {
    const r = run(['-c', c, 'user', 'add', name, '-p', 'pw']);
    assert.equal(r.code, 1, name);
    assert.match(r.err, /user name/, name);
  }
  const t0 = Date.now();
  const big = run(['-c', c, 'user', 'add', 'big@x.test'], 'p'.repeat(10 * 1024 * 1024));
  assert.equal(big.code, 1);
  assert.match(big.err, /password is too long/);
  assert.ok(Date.now() - t0 < 10_000);
  assert.match(run(['-c', c, 'user', 'add', 'q@x.test', '-p', 'x', '--quota', 'lots']).err, /--quota lots: expected a size/);
  assert.match(run(['-c', c, 'user', 'add', 'h@x.test', '-p', 'x', '--home', 'rel/dir']).err, /must be an absolute path/);
  assert.equal(run(['-c', c, 'user', 'add']).code, 64);
  assert.equal(run(['-c', c, 'user', 'frob', 'x']).code, 64);
  assert.equal(run(['-c', c, 'user', 'list']).out, '', 'nothing was added');
});

test('postern user on a passwd-file: atomic rewrite keeps other lines and the mode', { skip: !hasDoveadm && 'doveadm not installed' }, () => {
  const c = join(tmp, 'pwfile');
  mkdirSync(c);
  const users = join(c, 'users');
  const original = '# our users\nold@x.test:{PLAIN}old:1000:1000::/home/old::userdb_mail=maildir:~/M\nthis line is broken\n\n';
  writeFileSync(users, original);
  chmodSync(users, 0o640);
  writeFileSync(join(c, 'dovecot.conf'), `passdb {\n  driver = passwd-file\n  args = scheme=CRYPT ${users}\n}\nuserdb {\n  driver = passwd-file\n  args = ${users}\n}\n`);
  let r = run(['-c', c, 'user', 'add', 'new@x.test', '--quota', '2G', '--home', '/var/vmail/x.test/new'], 'newpw\n');
  assert.equal(r.code, 0, r.err);
  const text = readFileSync(users, 'utf8');
  assert.ok(text.startsWith(original), 'existing lines, comments and broken lines are kept');
  const line = text.split('\n').find((l) => l.startsWith('new@x.test:'))!;
  const f = line.split(':');
  assert.equal(line, `new@x.test:${f[1]}::::/var/vmail/x.test/new::userdb_quota_rule=*:storage=2G`);
  assert.match(f[1]!, /^\{SHA512-CRYPT\}\$6\$/);
  assert.equal(spawnSync('doveadm', ['pw', '-t', f[1]!, '-p', 'newpw']).status, 0, 'doveadm verifies the stored hash');
  assert.equal(statSync(users).mode & 0o777, 0o640, 'mode kept');
  r = run(['-c', c, 'user', 'new@x.test']);
  assert.match(r.out, /home\t\/var\/vmail\/x\.test\/new\n/);
  assert.match(r.out, /quota_rule\t\*:storage=2G\n/);
  assert.equal(run(['-c', c, 'user', 'verify', 'old@x.test'], 'old\n').code, 0);
  assert.equal(run(['-c', c, 'user', 'passwd', 'old@x.test', '-s', 'ARGON2ID'], 'fresh\n').code, 0);
  assert.equal(run(['-c', c, 'user', 'verify', 'old@x.test'], 'fresh\n').code, 0);
  assert.match(readFileSync(users, 'utf8'), /^old@x\.test:\{ARGON2ID\}\$argon2id\$v=19\$[^:]+:1000:1000::\/home\/old::userdb_mail=maildir:~\/M$/m);
  assert.equal(run(['-c', c, 'user', 'del', 'new@x.test']).code, 0);
  assert.ok(!readFileSync(users, 'utf8').includes('new@x.test'));
  assert.ok(readFileSync(users, 'utf8').includes('this line is broken'));
});

test('read-only passdbs say so', () => {
  const c = join(tmp, 'static');
  mkdirSync(c);
  writeFileSync(join(c, 'dovecot.conf'), 'passdb {\n  driver = static\n  args = nopassword=y\n}\n');
  const r = run(['-c', c, 'user', 'add', 'a@x.test', '-p', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.err, /dovecot\.conf, line 1: passdb driver "static" is read-only for postern user/);
});
