/**
 * Tests for `postern check` (postcheck.ts): the seed's configurations pass, the seed's NEVER
 * rules fail with Postfix's wording, broken files are reported with file and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfiguration, formatProblem } from './postcheck.ts';

function configDir(t: { after: (fn: () => void) => void }, files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'postern-check-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

const BASE = 'compatibility_level = 3.6\nmyhostname = mail.myoffice.ru\nmydomain = myoffice.ru\n'
  + 'inet_interfaces = loopback-only\nlocal_recipient_maps =\nalias_maps =\n';

async function lines(dir: string): Promise<string[]> {
  return (await checkConfiguration(dir)).map(formatProblem);
}

test('the seed virtual mailbox example passes', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'virtual_mailbox_domains = myoffice.space\nvirtual_mailbox_base = /var/mail/vhosts\n'
      + 'virtual_mailbox_maps = texthash:vmailbox\nvirtual_minimum_uid = 100\nvirtual_uid_maps = static:5000\n'
      + 'virtual_gid_maps = static:5000\nvirtual_alias_maps = texthash:virtual\n',
    vmailbox: 'info@myoffice.space myoffice.space/info\nsales@myoffice.space myoffice.space/sales/\n# @myoffice.space myoffice.space/catchall\n',
    virtual: 'postmaster@myoffice.space postmaster\n',
  });
  assert.deepEqual(await lines(d), []);
});

test('NEVER: a virtual mailbox domain in mydestination is an error naming both parameters', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'mydestination = $myhostname, localhost.$mydomain, localhost, myoffice.space\n'
      + 'virtual_mailbox_domains = myoffice.space\nvirtual_mailbox_maps = texthash:vmailbox\n',
    vmailbox: 'info@myoffice.space myoffice.space/info\n',
  });
  const out = await lines(d);
  assert.equal(out.length, 1, out.join('\n'));
  assert.match(out[0]!, /^postern: error: .*main\.cf, line 7: do not list domain myoffice\.space in BOTH mydestination and virtual_mailbox_domains/);
});

test('NEVER: a virtual mailbox domain that is also a virtual alias domain', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'virtual_mailbox_domains = myoffice.space\nvirtual_alias_domains = myoffice.space example.org\n'
      + 'virtual_alias_maps = inline:{ {info@example.org=joe} }\n',
  });
  const out = await lines(d);
  assert.deepEqual(out.map((l) => l.replace(/^.*?main\.cf, /, '')),
    ['line 8: do not list domain myoffice.space in BOTH virtual_alias_domains and virtual_mailbox_domains: '
      + 'every unknown address would bounce as "User unknown in virtual alias table"; remove it from virtual_alias_domains']);
});

test('NEVER: a catch-all of a virtual mailbox domain in the virtual alias file, with its file and line', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'virtual_mailbox_domains = myoffice.space\nvirtual_mailbox_maps = texthash:vmailbox\n'
      + 'virtual_alias_maps = texthash:virtual\n',
    vmailbox: 'info@myoffice.space myoffice.space/info\n',
    virtual: 'postmaster@myoffice.space postmaster\n# catch-all\n@myoffice.space jim\n',
  });
  const out = await lines(d);
  assert.equal(out.length, 1, out.join('\n'));
  assert.match(out[0]!, /^postern: error: .*\/virtual, line 3: virtual_alias_maps has the catch-all "@myoffice\.space" \(-> jim\)/);
  assert.match(out[0]!, /NEVER put a virtual MAILBOX wild-card in the virtual ALIAS file/);
});

test('a catch-all in a virtual ALIAS domain is fine (seed: "implement a catch-all address")', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'virtual_alias_domains = stud12.myoffice.space\nvirtual_alias_maps = texthash:virtual\n',
    virtual: 'postmaster@stud12.myoffice.space postmaster\n@stud12.myoffice.space jim\n',
  });
  assert.deepEqual(await lines(d), []);
});

test('broken files and tables are reported with file and line; exit status 1', async (t) => {
  const d = configDir(t, {
    'main.cf': BASE + 'transport_maps = texthash:missing-transport\nrelay_domains = myoffice.ru\n'
      + 'virtual_alias_domains = myoffice.ru\nvirtual_alias_maps = inline:{ {a@myoffice.ru=b} }\n',
    'master.cf': 'smtp      inet  n       -       y       -       -       smtpd\nbogus line\n',
    'dovecot.conf': 'protocols = imap\nservice imap {\n',
  });
  const out = await lines(d);
  const text = out.join('\n');
  assert.match(text, /error: .*master\.cf, line 2: /);
  assert.match(text, /error: .*dovecot\.conf.*/);
  assert.match(text, /error: .*main\.cf, line 7: .*missing-transport.*deferred/);
  assert.match(text, /warning: .*do not list domain myoffice\.ru in BOTH virtual_alias_domains and relay_domains/);

  const cli = spawnSync(process.execPath, [join(import.meta.dirname, 'postern.ts'), '-c', d, 'check'], { encoding: 'utf8' });
  assert.equal(cli.status, 1, cli.stderr);
  assert.match(cli.stderr, /^postern: error: /m);
});

test('a *_transport naming no master.cf service is an error', async (t) => {
  const master = ['smtp      unix  -       -       y       -       -       smtp',
    'local     unix  -       n       n       -       -       local',
    'virtual   unix  -       n       n       -       -       virtual', ''].join('\n');
  const d = configDir(t, { 'main.cf': BASE, 'master.cf': master });
  const out = await lines(d);
  assert.deepEqual(out.map((l) => l.replace(/^.*?main\.cf: /, '')),
    ['relay_transport = relay: ' + join(d, 'master.cf') + ' defines no "relay" service of type unix; '
      + 'mail for that address class would stay deferred. Add the service to master.cf or change relay_transport']);
});

test('hostile main.cf: NUL byte and a huge line do not crash the check', async (t) => {
  const d = configDir(t, { 'main.cf': BASE + 'mydestination = a\0b\n' + 'x'.repeat(1 << 20) + ' = y\n' });
  const out = await lines(d);
  assert.ok(out.some((l) => /error: .*main\.cf, line 7/.test(l)), out.join('\n'));
});

test('an empty configuration directory is fine (all defaults)', async (t) => {
  const d = configDir(t, {});
  const out = await checkConfiguration(d);
  assert.deepEqual(out.filter((p) => p.severity === 'error').map(formatProblem), []);
});

test('a broken table is blamed on the parameter that names it, not on one that defaults to it', async (t) => {
  const d = configDir(t, { 'main.cf': BASE + 'virtual_alias_maps = texthash:no-such-virtual\n' });
  const out = await lines(d);
  assert.equal(out.length, 1, out.join('\n'));
  assert.match(out[0]!, /^postern: error: .*main\.cf, line 7: virtual_alias_maps: texthash:no-such-virtual: /);
});
