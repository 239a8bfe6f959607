/**
 * Dovecot's ldap passdb/userdb against a private slapd: the same dovecot.conf and
 * dovecot-ldap.conf.ext served by a real Dovecot 2.3 auth process and by Postern; `doveadm auth
 * test` / `doveadm user` and `postern user verify` / `postern user` agree — password lookup,
 * auth_bind (with and without auth_bind_userdn), attribute templates —; filter injection in login
 * names; a server that is gone is a temporary failure, never "unknown user".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LdapServer } from '../../test/harness/ldap-server.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { passwordHash } from './password-scheme.ts';
import { openUserDirectory } from './user-directory-open.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';

const POSTERN = join(import.meta.dirname, '..', 'cli', 'postern.ts');
const skip = LdapServer.unavailable();
const haveDovecot = spawnSync('dovecot', ['--version']).status === 0 && process.getuid?.() === 0;
let ldap: LdapServer;
const tmp = mkdtempSync(join(tmpdir(), 'postern-authldap-'));
const dovecots: ChildProcess[] = [];
const B = LdapServer.BASE;
const USERS: [string, string, string, number][] = [['alice', 'alice@example.com', 'alice-pw', 5001], ['bob', 'bob@example.net', 'b*o(b)pw', 5002]];

before(async () => {
  if (skip) return;
  chmodSync(tmp, 0o755);
  ldap = await LdapServer.start();
  const ldif = await Promise.all(USERS.map(async ([uid, mail, pw, n]) => `dn: uid=${uid},ou=people,${B}
objectClass: inetOrgPerson
objectClass: posixAccount
uid: ${uid}
cn: ${uid}
sn: ${uid}
mail: ${mail}
uidNumber: ${n}
gidNumber: 5000
homeDirectory: /var/vmail/${mail.split('@')[1]}/${uid}
userPassword: ${await passwordHash('SHA512-CRYPT', pw)}
`));
  await ldap.add(ldif.join('\n'));
});
after(async () => {
  for (const d of dovecots) {
    if (d.exitCode === null && d.signalCode === null) {
      const exited = once(d, 'exit');
      d.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
  }
  await ldap?.stop();
  rmSync(tmp, { recursive: true, force: true, maxRetries: 5 });
});

const CONFS: Record<string, (port: number) => string> = {
  lookup: (port) => `hosts = 127.0.0.1:${port}
dn = ${LdapServer.ROOT_DN}
dnpass = ldappass
base = ou=people,${B}
pass_filter = (&(objectClass=inetOrgPerson)(mail=%u))
pass_attrs = mail=user,userPassword=password
user_filter = (&(objectClass=inetOrgPerson)(mail=%u))
user_attrs = homeDirectory=home,uidNumber=uid,gidNumber=gid,=mail=maildir:%{ldap:homeDirectory}/Maildir
iterate_filter = (objectClass=inetOrgPerson)
iterate_attrs = mail=user
default_pass_scheme = SHA512-CRYPT
`,
  bind: (port) => `uris = ldap://127.0.0.1:${port}
dn = ${LdapServer.ROOT_DN}
dnpass = ldappass
auth_bind = yes
base = ou=people,${B}
pass_filter = (&(objectClass=inetOrgPerson)(mail=%u))
pass_attrs = mail=user
user_filter = (&(objectClass=inetOrgPerson)(mail=%u))
user_attrs = homeDirectory=home,uidNumber=uid,gidNumber=gid
`,
  binddn: (port) => `uris = ldap://127.0.0.1:${port}
auth_bind = yes
auth_bind_userdn = uid=%n,ou=people,${B}
base = ou=people,${B}
user_filter = (&(objectClass=inetOrgPerson)(uid=%n))
user_attrs = homeDirectory=home,uidNumber=uid,gidNumber=gid
`,
};

function setup(name: string, ext: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'dovecot-ldap.conf.ext'), ext);
  chmodSync(join(dir, 'dovecot-ldap.conf.ext'), 0o644);
  writeFileSync(join(dir, 'dovecot.conf'), `protocols =
base_dir = ${dir}/run
state_dir = ${dir}/state
log_path = ${dir}/dovecot.log
ssl = no
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
mail_location = maildir:~/Maildir
passdb {
  driver = ldap
  args = ${dir}/dovecot-ldap.conf.ext
}
userdb {
  driver = ldap
  args = ${dir}/dovecot-ldap.conf.ext
}
`);
  return dir;
}

function postern(dir: string, args: string[], input = ''): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [POSTERN, '-c', dir, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}
function doveadm(dir: string, args: string[]): { code: number; out: string } {
  const r = spawnSync('doveadm', ['-c', join(dir, 'dovecot.conf'), ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, out: r.stdout };
}
const fields = (t: string) => Object.fromEntries(t.trim().split('\n').slice(1).map((l) => l.split('\t')));
const HOSTILE = ['*', 'alice@example.com)(uid=*', '*)(|(mail=*', 'alice*', ')(', 'a|b@example.com', '\\2a@example.com'];

for (const name of Object.keys(CONFS)) {
  test(`ldap (${name}): Postern answers as real Dovecot (doveadm auth test, doveadm user)`, { skip: skip ?? (!haveDovecot && 'needs root and dovecot') }, async () => {
    const dir = setup(name, CONFS[name]!(ldap.port));
    const d = spawn('dovecot', ['-F', '-c', join(dir, 'dovecot.conf')], { stdio: 'ignore' });
    dovecots.push(d);
    for (let i = 0; i < 100 && !existsSync(join(dir, 'run', 'auth-userdb')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(existsSync(join(dir, 'run', 'auth-userdb')), 'dovecot auth started');
    const norm = (s: string) => s.replace(/\n\s*\n$/, '\n').replace(/\n  \n/, '\n');
    for (const [, user, pw] of USERS) {
      for (const tryPw of [pw, 'wrong', '']) {
        const theirs = doveadm(dir, ['auth', 'test', user, tryPw]);
        const ours = postern(dir, ['user', 'verify', user], `${tryPw}\n`);
        assert.equal(ours.code, theirs.code, `${user}/${tryPw}: ${ours.out}${ours.err} vs ${theirs.out}`);
        if (theirs.code === 0) assert.equal(ours.out, norm(theirs.out), `${user}: same text as doveadm auth test`);
      }
      const theirs = doveadm(dir, ['user', user]);
      const ours = postern(dir, ['user', user]);
      assert.equal(ours.code, theirs.code, `doveadm user ${user}: ${ours.out}${ours.err} vs ${theirs.out}`);
      if (theirs.code === 0) {
        const [a, b] = [fields(ours.out), fields(theirs.out)];
        for (const f of ['uid', 'gid', 'home']) assert.equal(a[f], b[f], `${user}: ${f}`);
        if (b.mail?.startsWith('maildir:/')) assert.equal(a.mail, b.mail);
      }
    }
    for (const h of HOSTILE) {
      assert.equal(postern(dir, ['user', 'verify', h], 'alice-pw\n').code, 77, `postern verify ${h}`);
      assert.equal(doveadm(dir, ['auth', 'test', h, 'alice-pw']).code, 77, `dovecot verify ${h}`);
      if (!/[*%?]/.test(h)) assert.equal(postern(dir, ['user', h]).code, doveadm(dir, ['user', h]).code, `user ${h}`);
    }
    if (name === 'lookup') {
      assert.deepEqual(postern(dir, ['user', 'list']).out.trim().split('\n'), doveadm(dir, ['user', '-u', '*']).out.trim().split('\n').sort());
    }
  });
}

test('ldap: a server that is gone is a temporary failure, never "unknown user"', { skip }, async () => {
  const dead = await freePort();
  for (const name of ['lookup', 'bind']) {
    const dir = setup(`gone-${name}`, CONFS[name]!(dead));
    const ud = await openUserDirectory(loadDovecotConf(dir));
    try {
      assert.equal((await ud.verifyPlain('alice@example.com', 'alice-pw')).result, 'tempfail');
      await assert.rejects(ud.lookup('alice@example.com'));
    } finally {
      await ud.close();
    }
  }
  // The same settings with the live server: found, and injection finds nothing.
  const dir = setup('live', CONFS.lookup!(ldap.port));
  const ud = await openUserDirectory(loadDovecotConf(dir));
  try {
    assert.equal((await ud.verifyPlain('alice@example.com', 'alice-pw')).result, 'ok');
    assert.equal((await ud.lookup('bob@example.net'))?.uid, 5002);
    assert.equal(await ud.lookup('*'), undefined);
  } finally {
    await ud.close();
  }
});
