/**
 * Tests for the `auth:` lookup-table type: main.cf's virtual_mailbox_maps = auth:userdb and
 * virtual_mailbox_domains = auth:domains answer from the user directory of dovecot.conf, so the
 * MTA accepts mail exactly for the users IMAP knows.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dictOpen } from '../util/dict-registry.ts';
import { DictError } from '../util/dict.ts';
import { setLogSink } from '../util/msg.ts';
import { MainConfig } from '../global/mail-conf.ts';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { authDictTypesFor, virtualMailboxValue } from './dict-auth.ts';

const tmp = mkdtempSync(join(tmpdir(), 'postern-dict-auth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const logged: string[] = [];
/** The open flags a service configured from `dir` has (master/ gives them the auth: type). */
const flagsOf = (dir: string) => MainConfig.load(dir).withDictTypes(authDictTypesFor(() => loadDovecotConf(dir))).dictFlags;
setLogSink((l) => logged.push(l));

function configDir(name: string, users: string, mailLocation = 'maildir:/var/vmail/%d/%n/Maildir'): { dir: string; users: string } {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const file = join(dir, 'users');
  writeFileSync(file, users);
  writeFileSync(join(dir, 'main.cf'), 'virtual_mailbox_base = /var/vmail\nvirtual_mailbox_domains = auth:domains\nvirtual_mailbox_maps = auth:userdb\n');
  writeFileSync(join(dir, 'dovecot.conf'), `mail_location = ${mailLocation}\npassdb {\n  driver = passwd-file\n  args = ${file}\n}\nuserdb {\n  driver = passwd-file\n  args = ${file}\n}\n`);
  return { dir, users: file };
}

test('auth:userdb gives virtual(8) the Maildir relative to virtual_mailbox_base', async () => {
  const { dir } = configDir('userdb', [
    'alice@example.com:{PLAIN}a',
    'bob@example.org:{PLAIN}b::::/home/bob::userdb_mail=maildir:~/Maildir',
    'mb@example.com:{PLAIN}m::::/home/mb::userdb_mail=mbox:~/mail:INBOX=/var/mail/mb',
    '',
  ].join('\n'));
  const d = await dictOpen('auth:userdb', flagsOf(dir));
  assert.equal(await d.lookup('alice@example.com'), 'example.com/alice/Maildir/');
  assert.equal(await d.lookup('Alice@Example.com'), 'example.com/alice/Maildir/');
  assert.equal(await d.lookup('nobody@example.com'), undefined);
  assert.equal(await d.lookup('@example.com'), undefined, 'no catch-all from the directory');
  assert.equal(await d.lookup('../etc@example.com'), undefined);
  // A maildir outside virtual_mailbox_base: domain/user/ and a warning for the administrator.
  logged.length = 0;
  assert.equal(await d.lookup('bob@example.org'), 'example.org/bob/');
  assert.match(logged.join('\n'), /bob@example\.org: maildir \/home\/bob\/Maildir is not below virtual_mailbox_base \/var\/vmail/);
  assert.equal(await d.lookup('mb@example.com'), 'mbox:/home/mb/mail:INBOX=/var/mail/mb', 'other formats: the location as is');
  const all: [string, string][] = [];
  for await (const e of d.entries!()) all.push(e);
  assert.deepEqual(all.map((e) => e[0]).sort(), ['alice@example.com', 'bob@example.org', 'mb@example.com']);
  await d.close();
});

test('auth:domains knows the domains that have users and follows changes', async () => {
  const { dir, users } = configDir('domains', 'a@example.com:{PLAIN}a\nb@Example.NET:{PLAIN}b\n');
  const d = await dictOpen('auth:domains', flagsOf(dir));
  assert.equal(await d.lookup('example.com'), 'OK');
  assert.equal(await d.lookup('example.net'), 'OK');
  assert.equal(await d.lookup('EXAMPLE.COM'), 'OK');
  assert.equal(await d.lookup('example.org'), undefined);
  assert.equal(await d.lookup(''), undefined);
  writeFileSync(users, 'a@example.com:{PLAIN}a\nc@example.org:{PLAIN}c\n# more users soon\n');
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('example.org'), 'OK', 'new domain seen after the file changed');
  assert.equal(await d.lookup('example.net'), undefined, 'removed domain gone');
  await d.close();
});

test('auth:domains follows changes a second later even when the wall clock was stepped back', async (t) => {
  const { dir, users } = configDir('domains-clock', 'a@example.com:{PLAIN}a\n');
  const d = await dictOpen('auth:domains', flagsOf(dir));
  assert.equal(await d.lookup('example.org'), undefined);
  const wall = Date.now;
  t.mock.method(Date, 'now', () => wall() - 3600_000);   // NTP, an administrator: an hour back
  writeFileSync(users, 'a@example.com:{PLAIN}a\nc@example.org:{PLAIN}c\n');
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(await d.lookup('example.org'), 'OK', 'a new domain is accepted within a second, not an hour');
  await d.close();
});

test('auth: errors are DictErrors a daemon can act on', async () => {
  await assert.rejects(dictOpen('auth:userdb', { configDir: tmp }), (e: unknown) => e instanceof DictError && e.kind === 'config' && /unsupported dictionary type: auth/.test(e.message), 'util/ alone knows no auth: type');
  await assert.rejects(dictOpen('auth:passdb', flagsOf(tmp)), (e: unknown) => e instanceof DictError && e.kind === 'config' && /auth:passdb: unknown table/.test(e.message));
  const bad = join(tmp, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'dovecot.conf'), 'passdb {\n  driver = vpopmail\n  args = /x\n}\n');
  await assert.rejects(dictOpen('auth:userdb', flagsOf(bad)), (e: unknown) => e instanceof DictError && e.kind === 'config' && /passdb driver "vpopmail"/.test(e.message));
  const { dir, users } = configDir('gone', 'a@example.com:{PLAIN}a\n');
  const d = await dictOpen('auth:userdb', flagsOf(dir));
  rmSync(users);
  await assert.rejects(d.lookup('a@example.com'), (e: unknown) => e instanceof DictError && e.kind === 'retry');
  await d.close();
});

test('virtualMailboxValue', () => {
  const rec = { user: 'u@d.test', uid: 1, gid: 1, home: '/h' };
  assert.equal(virtualMailboxValue({ ...rec, mail: 'maildir:/var/vmail/d.test/u' }, '/var/vmail/'), 'd.test/u/');
  assert.equal(virtualMailboxValue({ ...rec, mail: 'maildir:/var/vmail/d.test/u/:LAYOUT=fs' }, '/var/vmail'), 'd.test/u/');
  assert.equal(virtualMailboxValue({ ...rec, mail: 'maildir:/var/vmail/../etc' }, '/var/vmail'), 'd.test/u/');
});
