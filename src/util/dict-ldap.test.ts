/**
 * ldap: tables against a private OpenLDAP slapd: Postfix's own ldap_table(5) files answered the
 * same by `postern map -q` as by real `postmap -q` (postfix-ldap) — filters, bases that use the
 * key, special/leaf/terminal attributes, domain, limits —, filter injection, a server that hangs
 * or is gone (temporary error, never "not found"), 10,000 concurrent lookups.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dictOpen } from './dict-registry.ts';
import { DictError } from './dict.ts';
import { LdapServer } from '../../test/harness/ldap-server.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { HAVE_POSTMAP, tempDir } from '../../test/harness/dict-testkit.ts';
import { HOSTILE_KEYS, postfixMapQuery, posternMapQuery, sameAnswers } from '../../test/harness/sql-table-kit.ts';

const skip = LdapServer.unavailable();
let ldap: LdapServer;
const B = LdapServer.BASE;

function person(uid: string, mail: string, extra = ''): string {
  return `dn: uid=${uid},ou=people,${B}
objectClass: inetOrgPerson
objectClass: inetLocalMailRecipient
uid: ${uid}
cn: ${uid}
sn: ${uid}
mail: ${mail}
${extra}`;
}

before(async () => {
  if (skip) return;
  ldap = await LdapServer.start();
  await ldap.add([
    person('alice', 'alice@example.com', 'mailLocalAddress: alice@example.com\nmailLocalAddress: a.smith@example.com\nmailRoutingAddress: alice@mbox1.example.com\n'),
    person('bob', 'bob@example.com', 'mailLocalAddress: bob@example.com\nmailRoutingAddress: bob@mbox2.example.com\n'),
    person('oneil', "o'neil@example.com", "mailLocalAddress: o'neil@example.com\nmailRoutingAddress: oneil@mbox1.example.com\n"),
    person('star', 'star*@example.com', 'mailLocalAddress: star*@example.com\nmailRoutingAddress: star@mbox1.example.com\n'),
    person('paren', 'p(x)@example.com', 'mailLocalAddress: p(x)@example.com\nmailRoutingAddress: paren@mbox1.example.com\n'),
    person('carol', 'carol@example.net', 'mailLocalAddress: carol@example.net\nmailRoutingAddress: carol@mbox2.example.com\ndescription: terminal\n'),
    `dn: cn=staff,ou=groups,${B}
objectClass: groupOfNames
objectClass: inetLocalMailRecipient
cn: staff
mailLocalAddress: staff@example.com
member: uid=alice,ou=people,${B}
member: uid=bob,ou=people,${B}
member: uid=ghost,ou=people,${B}
`,
    `dn: cn=all,ou=groups,${B}
objectClass: groupOfNames
objectClass: inetLocalMailRecipient
cn: all
mailLocalAddress: all@example.com
member: cn=staff,ou=groups,${B}
member: uid=carol,ou=people,${B}
`,
  ].join('\n'));
});
after(async () => { await ldap?.stop(); });

function cf(dir: string, file: string, body: string, server = `127.0.0.1:${ldap.port}`): string {
  const path = join(dir, file);
  writeFileSync(path, `server_host = ${server}\nversion = 3\nbind = no\ntimeout = 5\n${body}`);
  return path;
}

const FILES: Record<string, string> = {
  'virtual.cf': `search_base = ou=people,${B}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mailRoutingAddress\n`,
  'uid.cf': `search_base = ${B}\nquery_filter = (&(objectClass=inetOrgPerson)(mail=%s))\nresult_attribute = uid\nresult_format = %s/Maildir/\n`,
  'groups.cf': `search_base = ${B}\nquery_filter = (mailLocalAddress=%s)\nspecial_result_attribute = member\nleaf_result_attribute = mail\nresult_attribute = \n`,
  'groups-all.cf': `search_base = ${B}\nquery_filter = (mailLocalAddress=%s)\nspecial_result_attribute = member\nresult_attribute = mail, mailLocalAddress\n`,
  'terminal.cf': `search_base = ${B}\nquery_filter = (mailLocalAddress=%s)\nterminal_result_attribute = description\nspecial_result_attribute = member\nresult_attribute = mail\n`,
  'dynbase.cf': `search_base = uid=%u,ou=people,${B}\nscope = base\nquery_filter = (mail=%s)\nresult_attribute = cn\n`,
  'parts.cf': `search_base = ${B}\nquery_filter = (mail=%u@%d)\nresult_attribute = mail\nresult_format = %u at %d (%1) <%S>\ndomain = example.com, example.net\n`,
  'bind.cf': `search_base = ${B}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = uid\nbind = yes\nbind_dn = ${LdapServer.ROOT_DN}\nbind_pw = ldappass\n`,
  'sizelimit.cf': `search_base = ${B}\nquery_filter = (|(mail=%s)(objectClass=inetOrgPerson))\nresult_attribute = uid\nsize_limit = 2\n`,
  'explimit.cf': `search_base = ${B}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mailLocalAddress\nexpansion_limit = 1\n`,
  'onelevel.cf': `search_base = ${B}\nscope = one\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = mailRoutingAddress\n`,
  'badbase.cf': `search_base = ou=nowhere,${B}\nquery_filter = (mailLocalAddress=%s)\nresult_attribute = uid\n`,
};

const LDAP_KEYS = [...HOSTILE_KEYS, 'alice@example.com', 'a.smith@example.com', 'bob@example.com', "o'neil@example.com",
  'star*@example.com', 'p(x)@example.com', 'carol@example.net', 'staff@example.com', 'all@example.com', 'ALICE@EXAMPLE.COM',
  '*@example.com', 'alice@*', '(mail=*)', 'alice@example.com)(uid=*', 'a*', 'alice\\2a@example.com'];

test('ldap: postern map -q answers as real postmap -q (postfix-ldap) for Postfix map files', { skip: skip ?? (!HAVE_POSTMAP && 'postmap missing') }, async (t) => {
  const dir = tempDir(t);
  for (const [file, body] of Object.entries(FILES)) {
    const spec = `ldap:${cf(dir, file, body)}`;
    // Keys that fail stop both programs (postmap -q - exits at the first error): ask one by one where needed.
    const keys = file === 'badbase.cf' ? ['alice@example.com'] : LDAP_KEYS;
    sameAnswers(posternMapQuery(spec, keys), postfixMapQuery(dir, spec, keys), `${file}: postern map -q - vs postmap -q -`);
  }
});

test('ldap: filter injection finds nothing; the filter keeps its shape', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`ldap:${cf(dir, 'v.cf', FILES['virtual.cf']!)}`, { warn: () => {} });
  t.after(() => d.close());
  assert.equal(await d.lookup('alice@example.com'), 'alice@mbox1.example.com');
  for (const k of ['*', '*@example.com', ')(mailLocalAddress=*', 'x)(|(mailLocalAddress=*', 'alice@example.com)(|(uid=*)', '\\2a', 'a\0b', '|']) {
    assert.equal(await d.lookup(k), undefined, `key ${JSON.stringify(k)}`);
  }
  // Characters that are special in filters are matched literally.
  assert.equal(await d.lookup('star*@example.com'), 'star@mbox1.example.com');
  assert.equal(await d.lookup('p(x)@example.com'), 'paren@mbox1.example.com');
});

test('ldap: a server that is gone or hangs is a temporary error; the table recovers', { skip }, async (t) => {
  const dir = tempDir(t);
  const dead = await freePort();
  const warnings: string[] = [];
  const gone = await dictOpen(`ldap:${cf(dir, 'g.cf', FILES['virtual.cf']!, `127.0.0.1:${dead}`)}`, { warn: (m) => warnings.push(m) });
  await assert.rejects(gone.lookup('alice@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry' && !/ECONNREFUSED/.test(e.message));
  await gone.close();
  assert.ok(warnings.some((w) => /ECONNREFUSED|connect/i.test(w)));

  // Failover in order: the dead server first, then the live one.
  const two = await dictOpen(`ldap:${cf(dir, 'two.cf', FILES['virtual.cf']!, `ldap://127.0.0.1:${dead} ldap://127.0.0.1:${ldap.port}`)}`, { warn: () => {} });
  assert.equal(await two.lookup('bob@example.com'), 'bob@mbox2.example.com');
  await two.close();

  const d = await dictOpen(`ldap:${cf(dir, 'h.cf', FILES['virtual.cf']!.replace('', '') + 'timeout = 1\n')}`, { warn: () => {} });
  t.after(() => d.close());
  assert.equal(await d.lookup('alice@example.com'), 'alice@mbox1.example.com');
  ldap.pause();
  try {
    await assert.rejects(d.lookup('bob@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
  } finally {
    ldap.resume();
  }
  assert.equal(await d.lookup('bob@example.com'), 'bob@mbox2.example.com');
});

test('ldap: 10,000 concurrent lookups over one shared connection, none lost', { skip }, async (t) => {
  const dir = tempDir(t);
  const d = await dictOpen(`ldap:${cf(dir, 'c.cf', FILES['virtual.cf']!)}`);
  t.after(() => d.close());
  const keys = Array.from({ length: 10_000 }, (_, i) => (i % 4 === 0 ? 'bob@example.com' : `nobody${i}@example.com`));
  const results = await Promise.all(keys.map((k) => d.lookup(k)));
  results.forEach((v, i) => assert.equal(v, i % 4 === 0 ? 'bob@mbox2.example.com' : undefined));
});
