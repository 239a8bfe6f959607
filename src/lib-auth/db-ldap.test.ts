/**
 * Dovecot's ldap passdb/userdb against a private slapd: the same dovecot.conf and
 * dovecot-ldap.conf.ext served by a real Dovecot 2.3 auth process and by Postern; `doveadm auth
 * test` / `doveadm user` and `postern user verify` / `postern user` agree — password lookup,
 * auth_bind (with and without auth_bind_userdn), attribute templates —; filter injection in login
 * names; a server that is gone is a temporary failure, never "unknown user".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LdapServer } from '../../test/harness/ldap-server.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { assertHostileAndList, assertSameUser, assertSameVerify, authConfDir, haveDovecotAuth, startDovecotAuth, stopDovecots } from '../../test/harness/dovecot-auth-kit.ts';
import { passwordHash } from './password-scheme.ts';
import { openUserDirectory } from './user-directory-open.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';

const skip = LdapServer.unavailable();
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
  await stopDovecots(dovecots);
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

const setup = (name: string, ext: string): string => authConfDir(tmp, name, 'ldap', ext);
const HOSTILE = ['*', 'alice@example.com)(uid=*', '*)(|(mail=*', 'alice*', ')(', 'a|b@example.com', '\\2a@example.com'];

for (const name of Object.keys(CONFS)) {
  test(`ldap (${name}): Postern answers as real Dovecot (doveadm auth test, doveadm user)`, { skip: skip ?? (!haveDovecotAuth && 'needs root and dovecot') }, async () => {
    const dir = setup(name, CONFS[name]!(ldap.port));
    dovecots.push(await startDovecotAuth(dir));
    for (const [, user, pw] of USERS) {
      for (const tryPw of [pw, 'wrong', '']) assertSameVerify(dir, user, tryPw, `${user}/${tryPw}`);
      const both = assertSameUser(dir, user);
      if (both && both[1].mail?.startsWith('maildir:/')) assert.equal(both[0].mail, both[1].mail);
    }
    assertHostileAndList(dir, HOSTILE, 'alice-pw', name === 'lookup');
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
