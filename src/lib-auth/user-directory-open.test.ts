/**
 * Tests for user-directory-open (CONTRACT 6): passwd-file, sql (SQLite, the embedded schema),
 * static and prefetch userdbs built from DovecotConfig-shaped objects, as an administrator
 * would check them: who can log in, where their mail lives, what a broken file does.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { AuthDbSpec, DovecotConfig } from '../global/dovecot-conf.ts';
import { setLogSink } from '../util/msg.ts';
import { openUserDirectory } from './user-directory-open.ts';
import { PASSWD_INDEX_DELAY_MS } from './db-passwd-file.ts';
import { createEmbeddedUserDb, embeddedUserDbSqlConf } from './user-directory-embedded.ts';
import { passwordHash } from './password-scheme.ts';
import { bindQuery } from './db-sql.ts';

const tmp = mkdtempSync(join(tmpdir(), 'postern-ud-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const logged: string[] = [];
setLogSink((l) => logged.push(l));

/** A DovecotConfig as src/global/dovecot-conf.ts produces it. */
export function fakeConf(o: { file?: string; passdbs?: Partial<AuthDbSpec>[]; userdbs?: Partial<AuthDbSpec>[]; mailLocation?: string; settings?: Record<string, string> }): DovecotConfig {
  const file = o.file ?? join(tmp, 'dovecot.conf');
  const spec = (s: Partial<AuthDbSpec>, i: number): AuthDbSpec => ({ driver: '', args: '', file, line: 10 + i, ...s });
  return {
    file, protocols: ['imap'], listen: ['*'], mailLocation: o.mailLocation ?? '',
    passdbs: (o.passdbs ?? []).map(spec), userdbs: (o.userdbs ?? []).map(spec), services: [],
    ssl: 'no', sslMinProtocol: 'TLSv1.2', authMechanisms: ['plain'], disablePlaintextAuth: false, namespaces: [],
    get: (n: string) => o.settings?.[n], warnings: [],
    isSet: (n: string) => o.settings?.[n] !== undefined, getFor: (n: string) => o.settings?.[n], filters: [],
  };
}

const SHA512 = '{SHA512-CRYPT}$6$uD2h/v9lTCr3hQcY$KynSYH8os83gcFuKJP1OdzKVFfmOHRp5cWHUkEbxZLB8gXmwddnr8g4yD0zA2kC.QN2A8hkdj0SPDFZ0bm37d0'; // sécret

function passwdFile(name: string, text: string): string {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
}

test('passwd-file: schemes, fields, mail expansion, quota, broken lines', async () => {
  const p = passwdFile('users', [
    '# Postern test users',
    `alice@example.com:${SHA512}:1000:1000::/home/alice::userdb_mail=maildir:~/Mail userdb_quota_rule=*:storage=1G`,
    'bob@example.com:{PLAIN}bobpw:::::',
    'carol@example.org:{BLF-CRYPT}$2y$05$tredliOfOyxl5bMcsmF.M.//TcpdQ4eBcs33EdGLZmjGeHGdoGN6K:root:root::/var/vmail/example.org/carol',
    'name-only-line',
    'dave@example.com:{PLAIN}x:12ab!:',
    'eve@example.com:{PLAIN}\0evil',
    'bob@example.com:{PLAIN}second-bob',
    'frank@example.com:{PLAIN}f::::relative/home',
    'plainuser:secret', // no scheme: passwd-file default scheme= (here PLAIN)
    '',
  ].join('\r\n'));
  logged.length = 0;
  const dir = await openUserDirectory(fakeConf({
    passdbs: [{ driver: 'passwd-file', args: `scheme=PLAIN ${p}` }],
    userdbs: [{ driver: 'passwd-file', args: `scheme=PLAIN ${p}` }],
    mailLocation: 'maildir:/var/vmail/%d/%n/Maildir',
  }));
  assert.deepEqual(await dir.verifyPlain('alice@example.com', 'sécret'), { result: 'ok', user: 'alice@example.com' });
  assert.deepEqual(await dir.verifyPlain('Alice@Example.COM', 'sécret'), { result: 'ok', user: 'alice@example.com' });
  assert.equal((await dir.verifyPlain('alice@example.com', 'wrong')).result, 'mismatch');
  assert.equal((await dir.verifyPlain('bob@example.com', 'bobpw')).result, 'ok', 'first of a duplicated user wins');
  assert.equal((await dir.verifyPlain('bob@example.com', 'second-bob')).result, 'mismatch');
  assert.equal((await dir.verifyPlain('carol@example.org', 'sécret')).result, 'ok');
  assert.equal((await dir.verifyPlain('plainuser', 'secret')).result, 'ok');
  assert.equal((await dir.verifyPlain('nobody@example.com', 'x')).result, 'unknown');
  assert.equal((await dir.verifyPlain('name-only-line', 'x')).result, 'mismatch', 'a user without password cannot log in');
  for (const bad of ['dave@example.com', 'eve@example.com', 'frank@example.com']) {
    assert.equal((await dir.verifyPlain(bad, 'x')).result, 'unknown', bad);
  }

  const alice = await dir.lookup('alice@example.com');
  assert.deepEqual(alice, { user: 'alice@example.com', uid: 1000, gid: 1000, home: '/home/alice', mail: 'maildir:/home/alice/Mail', quotaBytes: 1024 ** 3 });
  const bob = await dir.lookup('bob@example.com');
  assert.equal(bob?.mail, 'maildir:/var/vmail/example.com/bob/Maildir', 'mail_location applies when the userdb has no mail');
  assert.equal(bob?.uid, process.getuid!());
  const carol = await dir.lookup('carol@example.org');
  assert.equal(carol?.uid, 0, 'uid by name through /etc/passwd');
  assert.equal(carol?.gid, 0);
  assert.equal(await dir.lookup('nobody@example.com'), undefined);

  // a broken line is warned about when its user is looked up; a duplicate user when the index
  // is built, PASSWD_INDEX_DELAY_MS after the first lookup (db-passwd-file.ts)
  for (let i = 0; i < 100 && !logged.some((l) => l.includes('exists more than once')); i++) await new Promise((r) => setTimeout(r, PASSWD_INDEX_DELAY_MS / 5));
  const warnings = logged.filter((l) => l.includes('warning:')).join('\n');
  assert.match(warnings, new RegExp(`${p}, line 6: user dave@example.com: invalid uid`));
  assert.match(warnings, new RegExp(`${p}, line 7: line contains a NUL byte`));
  assert.match(warnings, new RegExp(`${p}, line 8: user bob@example.com exists more than once \\(first entry on line 3`));
  assert.match(warnings, new RegExp(`${p}, line 9: user frank@example.com: home "relative/home" is not an absolute path`));

  const names: string[] = [];
  for await (const u of dir.iterate()) names.push(u);
  assert.deepEqual(names.sort(), ['alice@example.com', 'bob@example.com', 'carol@example.org', 'name-only-line', 'plainuser']);
  await dir.close();
});

test('passwd-file is re-read when it changes; missing file is a temporary failure', async () => {
  const p = passwdFile('users2', 'a@x.test:{PLAIN}one\n');
  const conf = fakeConf({ passdbs: [{ driver: 'passwd-file', args: p }], userdbs: [{ driver: 'passwd-file', args: p }] });
  const dir = await openUserDirectory(conf);
  assert.equal((await dir.verifyPlain('a@x.test', 'one')).result, 'ok');
  const s1 = await dir.changeStamp();
  writeFileSync(p, 'a@x.test:{PLAIN}two\nb@x.test:{PLAIN}bee\n');
  utimesSync(p, new Date(), new Date(Date.now() + 5000));
  assert.equal((await dir.verifyPlain('a@x.test', 'two')).result, 'ok');
  assert.equal((await dir.verifyPlain('b@x.test', 'bee')).result, 'ok');
  assert.notEqual(await dir.changeStamp(), s1);
  rmSync(p);
  assert.equal((await dir.verifyPlain('a@x.test', 'two')).result, 'tempfail');
  await assert.rejects(dir.lookup('a@x.test'), /passwd-file .*users2/);
  await dir.close();
});

test('per-domain passwd-file path with %d; a missing domain file means unknown', async () => {
  passwdFile('example.net.passwd', 'joe:{PLAIN}joepw\n');
  const args = `username_format=%n ${join(tmp, '%d.passwd')}`;
  const dir = await openUserDirectory(fakeConf({ passdbs: [{ driver: 'passwd-file', args }], userdbs: [{ driver: 'static', args: 'uid=root gid=root home=/var/vmail/%d/%n' }] }));
  assert.equal((await dir.verifyPlain('joe@example.net', 'joepw')).result, 'ok');
  assert.equal((await dir.verifyPlain('joe@nosuch.example', 'joepw')).result, 'unknown');
  // Path components from the name: ../ can never be formed.
  assert.equal((await dir.verifyPlain('joe@../example.net', 'joepw')).result, 'unknown');
  const rec = await dir.lookup('joe@example.net');
  assert.equal(rec?.home, '/var/vmail/example.net/joe');
  assert.equal(await dir.lookup('ghost@example.net'), undefined, 'static userdb answers only for users a passdb knows');
  passwdFile('example.org.passwd', 'ann:{PLAIN}a\n');
  const names: string[] = [];
  for await (const u of dir.iterate()) names.push(u);
  assert.deepEqual(names.sort(), ['ann@example.org', 'joe@example.net'], 'per-domain files are listed by globbing %d');
  await dir.close();
});

test('hostile user names and passwords never match and never throw', async () => {
  const p = passwdFile('users3', `a@x.test:{PLAIN}pw\n`);
  const dir = await openUserDirectory(fakeConf({ passdbs: [{ driver: 'passwd-file', args: p }], userdbs: [{ driver: 'passwd-file', args: p }] }));
  for (const name of ['a@x.test:', 'a:b@x.test', 'a\0@x.test', '../a@x.test', 'a/b@x.test', '..', '.', '', 'x'.repeat(300), 'a@x.test\n', ' a@x.test', 'a@..']) {
    assert.equal((await dir.verifyPlain(name, 'pw')).result, 'unknown', JSON.stringify(name));
    assert.equal(await dir.lookup(name), undefined, JSON.stringify(name));
  }
  const t0 = Date.now();
  assert.equal((await dir.verifyPlain('a@x.test', 'p'.repeat(10 * 1024 * 1024))).result, 'mismatch');
  assert.ok(Date.now() - t0 < 1000, '10 MB password rejected quickly');
  await dir.close();
});

test('verification time does not tell whether the user exists', async () => {
  const p = passwdFile('users4', `alice@x.test:${SHA512}\n`);
  const dir = await openUserDirectory(fakeConf({ passdbs: [{ driver: 'passwd-file', args: p }], userdbs: [] }));
  await dir.verifyPlain('ghost@x.test', 'x'); // warm the dummy hash
  const time = async (u: string) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 5; i++) await dir.verifyPlain(u, 'wrong');
    return Number(process.hrtime.bigint() - t0);
  };
  const known = await time('alice@x.test');
  const unknown = await time('ghost@x.test');
  assert.ok(unknown > known * 0.25, `unknown ${unknown} ns vs known ${known} ns`);
  await dir.close();
});

test('sql on the embedded SQLite schema: lookups, inactive users, quoting', async () => {
  const db = join(tmp, 'users.db');
  createEmbeddedUserDb(db);
  createEmbeddedUserDb(db); // idempotent
  const confFile = join(tmp, 'dovecot-sql.conf.ext');
  writeFileSync(confFile, embeddedUserDbSqlConf(db));
  const h = new DatabaseSync(db);
  const ins = h.prepare('INSERT INTO users (username, domain, password, uid, gid, home, maildir, quota_rule, active) VALUES (?,?,?,?,?,?,?,?,?)');
  ins.run('alice@example.com', 'example.com', await passwordHash('SHA512-CRYPT', 'alicepw'), 5000, 5000, '/var/vmail/example.com/alice', null, '*:storage=512M:messages=1000', 1);
  ins.run('old@example.com', 'example.com', '{PLAIN}oldpw', null, null, null, null, null, 0);
  ins.run("o'hara@example.com", 'example.com', '{PLAIN}q', null, null, null, 'maildir:/srv/mail/%u', null, 1);
  h.close();
  const conf = fakeConf({
    passdbs: [{ driver: 'sql', args: confFile }],
    userdbs: [{ driver: 'sql', args: confFile, defaultFields: { home: '/var/vmail/%d/%n' } }],
    mailLocation: 'maildir:~/Maildir',
    settings: { auth_username_chars: '' }, // allow every character: quoting must hold on its own
  });
  const dir = await openUserDirectory(conf);
  assert.equal((await dir.verifyPlain('alice@example.com', 'alicepw')).result, 'ok');
  assert.equal((await dir.verifyPlain('old@example.com', 'oldpw')).result, 'unknown', 'active = 0 users do not exist');
  assert.equal((await dir.verifyPlain("o'hara@example.com", 'q')).result, 'ok');
  assert.equal((await dir.verifyPlain("x' OR '1'='1", 'q')).result, 'unknown', 'no SQL injection');
  assert.equal((await dir.verifyPlain("' OR 1=1 --", 'q')).result, 'unknown');
  assert.deepEqual(await dir.lookup('alice@example.com'), {
    user: 'alice@example.com', uid: 5000, gid: 5000, home: '/var/vmail/example.com/alice',
    mail: 'maildir:/var/vmail/example.com/alice/Maildir', quotaBytes: 512 * 1024 ** 2, quotaMessages: 1000,
  });
  const ohara = await dir.lookup("o'hara@example.com");
  assert.equal(ohara?.home, "/var/vmail/example.com/o'hara", 'default_fields home with %d/%n');
  assert.equal(ohara?.mail, "maildir:/srv/mail/o'hara@example.com");
  const names: string[] = [];
  for await (const u of dir.iterate()) names.push(u);
  assert.deepEqual(names.sort(), ['alice@example.com', "o'hara@example.com"]);
  // A change through another connection changes the stamp (auth:domains refreshes on it).
  const s1 = await dir.changeStamp();
  const w = new DatabaseSync(db);
  w.prepare("INSERT INTO users (username, domain, password) VALUES ('new@other.test', 'other.test', '{PLAIN}n')").run();
  w.close();
  assert.notEqual(await dir.changeStamp(), s1);
  assert.equal((await dir.verifyPlain('new@other.test', 'n')).result, 'ok');
  await dir.close();
});

test('bindQuery turns every %-variable into a bound parameter', () => {
  assert.deepEqual(bindQuery("SELECT password FROM users WHERE username = '%n' AND domain = '%d'", "a'b@x"), {
    sql: 'SELECT password FROM users WHERE username = ? AND domain = ?', params: ["a'b", 'x'],
  });
  assert.deepEqual(bindQuery("SELECT 1 WHERE u = '%n@%d' AND x LIKE 'a%%' AND y = %Lu AND z = 'it''s'", 'A@B'), {
    sql: "SELECT 1 WHERE u = ? AND x LIKE 'a%' AND y = ? AND z = 'it''s'", params: ['A@B', 'a@b'],
  });
  assert.throws(() => bindQuery("SELECT 'unterminated", 'u'), /unterminated/);
  assert.throws(() => bindQuery("SELECT '%q'", 'u'), /unknown variable %q/);
});

test('static passdb, prefetch userdb, override_fields, allow_all_users', async () => {
  const p = passwdFile('users5', 'pf@x.test:{PLAIN}pw::::::userdb_home=/srv/pf userdb_uid=123 userdb_gid=456 userdb_mail=maildir:%h/M\n');
  const dir = await openUserDirectory(fakeConf({
    passdbs: [{ driver: 'passwd-file', args: p }],
    userdbs: [{ driver: 'prefetch' }, { driver: 'static', args: 'uid=1 gid=1 home=/h/%n allow_all_users=yes', overrideFields: { gid: '7' } }],
  }));
  assert.deepEqual(await dir.lookup('pf@x.test'), { user: 'pf@x.test', uid: 123, gid: 456, home: '/srv/pf', mail: 'maildir:/srv/pf/M' });
  assert.deepEqual(await dir.lookup('anyone@y.test'), { user: 'anyone@y.test', uid: 1, gid: 7, home: '/h/anyone', mail: '' });
  await dir.close();
  const st = await openUserDirectory(fakeConf({ passdbs: [{ driver: 'static', args: 'password=shared' }], userdbs: [] }));
  assert.equal((await st.verifyPlain('who@ever.test', 'shared')).result, 'ok');
  assert.equal((await st.verifyPlain('who@ever.test', 'nope')).result, 'mismatch');
  await st.close();
});

test('deny = yes passdbs refuse listed users; master = yes passdbs are not ordinary logins', async () => {
  const deny = passwdFile('denied', 'mallory@x.test\n');
  const master = passwdFile('masters', 'admin@x.test:{PLAIN}adminpw\n');
  const p = passwdFile('users6', 'mallory@x.test:{PLAIN}m\nok@x.test:{PLAIN}o\n');
  const dir = await openUserDirectory(fakeConf({
    passdbs: [
      { driver: 'passwd-file', args: deny, settings: { deny: 'yes' } },
      { driver: 'passwd-file', args: master, settings: { master: 'yes' } },
      { driver: 'passwd-file', args: p },
    ],
    userdbs: [{ driver: 'static', args: 'uid=1 gid=1 home=/h/%n' }],
  }));
  assert.equal((await dir.verifyPlain('mallory@x.test', 'm')).result, 'disabled');
  assert.equal((await dir.verifyPlain('ok@x.test', 'o')).result, 'ok');
  assert.equal((await dir.verifyPlain('admin@x.test', 'adminpw')).result, 'unknown');
  assert.equal(await dir.lookup('admin@x.test'), undefined);
  await dir.close();
});

test('system users: shadow passdb and passwd userdb', async () => {
  const sys = await import('./auth-system-users.ts');
  const saved = { ...sys.SYSTEM_FILES };
  sys.SYSTEM_FILES.passwd = passwdFile('etc-passwd', 'root:x:0:0:root:/root:/bin/bash\nsam:x:1500:1600:Sam:/home/sam:/bin/sh\n');
  sys.SYSTEM_FILES.shadow = passwdFile('etc-shadow', `root:!:19000:0:99999:7:::\nsam:${SHA512.slice('{SHA512-CRYPT}'.length)}:19000:0:99999:7:::\n`);
  try {
    const dir = await openUserDirectory(fakeConf({ passdbs: [{ driver: 'shadow' }], userdbs: [{ driver: 'passwd' }] }));
    assert.equal((await dir.verifyPlain('sam', 'sécret')).result, 'ok');
    assert.equal((await dir.verifyPlain('sam', 'nope')).result, 'mismatch');
    assert.equal((await dir.verifyPlain('root', '')).result, 'mismatch', 'locked account');
    assert.equal((await dir.verifyPlain('sam@x.test', 'sécret')).result, 'unknown');
    assert.deepEqual(await dir.lookup('sam'), { user: 'sam', uid: 1500, gid: 1600, home: '/home/sam', mail: '' });
    await dir.close();
  } finally {
    Object.assign(sys.SYSTEM_FILES, saved);
  }
});

test('configuration errors name dovecot.conf and the block line', async () => {
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'ldap', args: join(tmp, 'missing-ldap.conf.ext') }] })), /missing-ldap\.conf\.ext: cannot read LDAP settings/);
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'vpopmail', args: '' }] })), /dovecot\.conf, line 10: passdb driver "vpopmail" is not supported/);
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'passwd-file', args: '' }] })), /line 10: passwd-file: args must name the file/);
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'sql', args: join(tmp, 'missing.conf.ext') }] })), /missing\.conf\.ext: cannot read SQL settings/);
  const bad = join(tmp, 'bad-sql.conf.ext');
  writeFileSync(bad, 'driver = sqlite\nconnect = x.db\npasword_query = SELECT 1\n');
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'sql', args: bad }] })), /bad-sql\.conf\.ext, line 3: unknown setting "pasword_query"/);
  writeFileSync(bad, 'driver = oracle\nconnect = host=x\n');
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'sql', args: bad }] })), /driver "oracle" is not supported/);
  writeFileSync(bad, 'driver = pgsql\nconnect = host=x dbname=y nonsense=1\n');
  await assert.rejects(openUserDirectory(fakeConf({ passdbs: [{ driver: 'sql', args: bad }] })), /connect: unknown setting "nonsense"/);
  const empty = join(tmp, 'empty');
  mkdirSync(empty);
  await assert.rejects(openUserDirectory(fakeConf({ file: join(empty, 'dovecot.conf') })), /no passdb or userdb is configured .*postern start/);
});

test('no passdb/userdb blocks: the embedded dovecot-sql.conf.ext beside dovecot.conf is used', async () => {
  const d = join(tmp, 'embedded');
  mkdirSync(d);
  createEmbeddedUserDb(join(d, 'data', 'users.db'));
  writeFileSync(join(d, 'dovecot-sql.conf.ext'), embeddedUserDbSqlConf(join(d, 'data', 'users.db')));
  const h = new DatabaseSync(join(d, 'data', 'users.db'));
  h.prepare("INSERT INTO users (username, domain, password) VALUES ('postmaster@example.test', 'example.test', ?)").run(await passwordHash('SHA512-CRYPT', 'pm'));
  h.close();
  const dir = await openUserDirectory(fakeConf({ file: join(d, 'dovecot.conf'), mailLocation: 'maildir:/srv/vmail/%d/%n' }));
  assert.equal((await dir.verifyPlain('postmaster@example.test', 'pm')).result, 'ok');
  assert.equal((await dir.lookup('postmaster@example.test'))?.mail, 'maildir:/srv/vmail/example.test/postmaster');
  await dir.close();
});
