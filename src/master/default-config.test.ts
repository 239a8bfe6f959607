/**
 * Tests for default-config.ts: the written configuration is accepted by real Postfix
 * (`postconf -c DIR -n`) and real Dovecot (`doveconf -c FILE -n`), loads with Postern's own
 * parsers without warnings, and its user directory and certificate work.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { POSTERN_SERVICES } from '../global/master-cf.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { dictOpen } from '../util/dict-registry.ts';
import {
  DEFAULT_PORTS, SAMPLE_USER, defaultDataDir, portsFromBase, writeDefaultConfig, type DefaultConfigResult,
} from './default-config.ts';
import { hasConfig, loadConfigSet } from './master-config.ts';

let dir: string;
let res: DefaultConfigResult;
const said: string[] = [];
const BASE = 30100;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-default-'));
  res = await writeDefaultConfig({ configDir: join(dir, 'etc'), dataDir: join(dir, 'data'), portBase: BASE, say: (l) => said.push(l) });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('real postconf accepts main.cf and master.cf without a warning', () => {
  const n = spawnSync('postconf', ['-c', join(dir, 'etc'), '-n'], { encoding: 'utf8' });
  assert.equal(n.status, 0, n.stderr);
  assert.equal(n.stderr, '', 'postconf -n printed warnings');
  assert.match(n.stdout, /^inet_interfaces = loopback-only$/m);
  assert.match(n.stdout, /^virtual_mailbox_maps = auth:userdb$/m);
  assert.match(n.stdout, /^virtual_mailbox_domains = auth:domains$/m);
  assert.match(n.stdout, new RegExp(`^queue_directory = ${dir}/data/queue$`, 'm'));
  assert.match(n.stdout, new RegExp(`^smtpd_tls_cert_file = ${dir}/etc/tls/postern.crt$`, 'm'));
  const m = spawnSync('postconf', ['-c', join(dir, 'etc'), '-M'], { encoding: 'utf8' });
  assert.equal(m.status, 0, m.stderr);
  assert.equal(m.stderr, '');
  assert.match(m.stdout, new RegExp(`^${BASE + 1} +inet +n +- +n +- +- +smtpd -o syslog_name=postern/submission -o smtpd_tls_security_level=encrypt`, 'm'));
});

test('real doveconf accepts dovecot.conf', () => {
  const r = spawnSync('doveconf', ['-c', join(dir, 'etc', 'dovecot.conf'), '-n'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /error|warning/i);
  assert.match(r.stdout, new RegExp(`port = ${BASE + 4}\\n\\s+ssl = yes`));
});

test('Postern\'s parsers load all three files, with every service one Postern implements', () => {
  const cfg = loadConfigSet(join(dir, 'etc'));
  assert.deepEqual(cfg.dovecot.warnings, []);
  assert.equal(cfg.main.get('inet_interfaces'), 'loopback-only');
  assert.equal(cfg.main.get('virtual_mailbox_base'), `${dir}/data/vmail`);
  const inet = cfg.masterCf.filter((e) => e.type === 'inet').map((e) => [e.service, e.command, e.overrides['smtpd_tls_wrappermode'] ?? '']);
  assert.deepEqual(inet, [[`${BASE}`, 'smtpd', ''], [`${BASE + 1}`, 'smtpd', ''], [`${BASE + 2}`, 'smtpd', 'yes']]);
  assert.deepEqual(cfg.masterCf.filter((e) => !POSTERN_SERVICES.has(e.command)), [], 'no "not implemented" warning for the default');
  assert.deepEqual(cfg.dovecot.protocols, ['imap', 'pop3', 'lmtp', 'sieve']);
  const ports = Object.fromEntries(cfg.dovecot.services.flatMap((s) => s.inetListeners.map((l) => [l.name, [l.port, l.ssl]])));
  assert.deepEqual(ports.imap, [BASE + 3, false]);
  assert.deepEqual(ports.imaps, [BASE + 4, true]);
  assert.deepEqual(ports.pop3, [BASE + 5, false]);
  assert.deepEqual(ports.pop3s, [BASE + 6, true]);
  assert.deepEqual(ports.lmtp, [BASE + 7, false]);
  assert.deepEqual(ports.sieve, [BASE + 8, false]);
  assert.equal(cfg.dovecot.get('plugin/sieve'), 'file:~/sieve;active=~/.dovecot.sieve');
  assert.equal(cfg.dovecot.sslCert, `${dir}/etc/tls/postern.crt`);
  assert.equal(cfg.dovecot.ssl, 'yes');
});

test('the certificate and key are in place with safe modes', () => {
  const key = join(dir, 'etc', 'tls', 'postern.key');
  const cert = join(dir, 'etc', 'tls', 'postern.crt');
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.equal(statSync(cert).mode & 0o777, 0o644);
  const x = new X509Certificate(readFileSync(cert));
  assert.equal(x.checkHost(res.values.myhostname), res.values.myhostname);
  assert.equal(x.checkHost('localhost'), 'localhost');
  assert.ok(said.includes(`postern: generated a self-signed certificate in ${cert}; replace it with a real one (smtpd_tls_cert_file, ssl_cert)`));
});

test('the sample user logs in with the printed password, and auth:userdb finds its mailbox', async () => {
  assert.equal(said.filter((l) => l.includes(res.password)).length >= 1, true);
  assert.ok(said.some((l) => l === `postern: user ${SAMPLE_USER} has the password ${res.password}`));
  assert.ok(said.some((l) => l.includes(`swaks --server 127.0.0.1 --port ${BASE} `)));
  assert.ok(said.some((l) => l.includes(`imaps://127.0.0.1:${BASE + 4}/INBOX`)));
  assert.equal(statSync(join(dir, 'data', 'users.db')).mode & 0o777, 0o600);
  const cfg = loadConfigSet(join(dir, 'etc'));
  const ud = await openUserDirectory(cfg.dovecot);
  try {
    assert.equal((await ud.verifyPlain(SAMPLE_USER, res.password)).result, 'ok');
    assert.equal((await ud.verifyPlain(SAMPLE_USER, 'wrong')).result, 'mismatch');
    const rec = await ud.lookup(SAMPLE_USER);
    assert.equal(rec?.mail, `maildir:${dir}/data/vmail/example.test/postmaster`);
    assert.equal(rec?.uid, res.values.uid);
  } finally {
    await ud.close();
  }
  const flags = loadConfigSet(join(dir, 'etc')).main.dictFlags;   // as the master gives them to its services
  const userdb = await dictOpen('auth:userdb', flags);
  const domains = await dictOpen('auth:domains', flags);
  try {
    assert.equal(await userdb.lookup(SAMPLE_USER), 'example.test/postmaster/');
    assert.equal(await domains.lookup('example.test'), 'OK');
    assert.equal(await domains.lookup('example.com'), undefined);
  } finally {
    await userdb.close();
    await domains.close();
  }
});

test('an existing configuration is never overwritten', async () => {
  const before = readFileSync(join(dir, 'etc', 'main.cf'), 'utf8');
  assert.equal(hasConfig(join(dir, 'etc')), true);
  await assert.rejects(writeDefaultConfig({ configDir: join(dir, 'etc'), dataDir: join(dir, 'data'), say: () => undefined }), /EEXIST/);
  assert.equal(readFileSync(join(dir, 'etc', 'main.cf'), 'utf8'), before);
});

test('ports and data directory choices', () => {
  assert.deepEqual(portsFromBase(), { ...DEFAULT_PORTS });
  assert.deepEqual(Object.values(portsFromBase(40000)), [40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008]);
  const saved = process.env.POSTERN_DATA_DIR;
  try {
    delete process.env.POSTERN_DATA_DIR;
    assert.equal(defaultDataDir('/srv/mail/conf', true), '/srv/mail/conf/data');
    if (process.getuid?.() === 0) assert.equal(defaultDataDir('/etc/postern', false), '/var/lib/postern');
    process.env.POSTERN_DATA_DIR = '/srv/data';
    assert.equal(defaultDataDir('/srv/mail/conf', true), '/srv/data');
  } finally {
    if (saved === undefined) delete process.env.POSTERN_DATA_DIR; else process.env.POSTERN_DATA_DIR = saved;
  }
});
