/**
 * Tests for postinit.ts (`postern init`): the written files are accepted by real Postfix
 * (`postconf -c DIR -n`) and real Dovecot (`doveconf -c FILE -n`) with the answers in place; the
 * first user logs in; an existing configuration is never overwritten without --force (and is
 * kept as FILE.bak with it); without a terminal nothing is asked and missing flags are listed;
 * hostile or dangerous answers (open-relay mynetworks, the seed's NEVER rule) are refused; the
 * questions on a terminal show Postfix's derived defaults.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadDovecotConf } from '../global/dovecot-conf.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { defaultMyDomain } from '../global/mail-params-computed.ts';
import { defaultHostname } from '../master/default-config.ts';
import { POSTERN } from '../../test/harness/postern-system.ts';
import { freePortBase } from '../../test/harness/free-port.ts';
import { runInit, type Asker } from './postinit.ts';

let dir: string;
let n = 0;
before(() => { dir = mkdtempSync(join(tmpdir(), 'postern-init-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

async function init(args: string[], configDir = join(dir, `c${++n}`), asker?: Asker, portBase?: number) {
  let out = '';
  let err = '';
  const code = await runInit(args, { configDir, configDirExplicit: true, command: 'init' },
    { out: (s) => { out += s; }, err: (s) => { err += s; }, asker, portBase });
  return { code, out, err, configDir };
}

function postconfN(configDir: string): string {
  const r = spawnSync('postconf', ['-c', configDir, '-n'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'postconf -n printed warnings');
  return r.stdout;
}

function doveconfN(configDir: string): string {
  const r = spawnSync('doveconf', ['-c', join(configDir, 'dovecot.conf'), '-n'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /error|warning/i);
  return r.stdout;
}

const SITE = ['--non-interactive', '--hostname', 'mail.example.com', '--domain', 'example.com', '--networks', '127.0.0.0/8 [::1]/128', '--origin', 'domain'];

test('non-interactive init: real postconf and doveconf accept the files; the first user logs in; DNS records printed', async () => {
  const r = await init([...SITE, '--user', 'Postmaster@Example.com']);
  assert.equal(r.code, 0, r.out + r.err);
  const n = postconfN(r.configDir);
  for (const line of ['myhostname = mail.example.com', 'mydomain = example.com', 'myorigin = $mydomain',
    'mydestination = $myhostname, localhost.$mydomain, localhost', 'mynetworks = 127.0.0.0/8 [::1]/128',
    'inet_interfaces = loopback-only', 'virtual_mailbox_domains = example.com auth:domains', 'relayhost =']) {
    assert.ok(n.split('\n').includes(line), `postconf -n lacks "${line}":\n${n}`);
  }
  assert.match(doveconfN(r.configDir), /^listen = 127\.0\.0\.1, ::1$/m);
  // Real Postfix agrees on what the derived parameters become.
  const d = spawnSync('postconf', ['-c', r.configDir, '-x', '-h', 'myorigin', 'mydestination'], { encoding: 'utf8' });
  assert.equal(d.stdout, 'example.com\nmail.example.com, localhost.example.com, localhost\n');

  const pw = /user postmaster@example\.com has the password (\S+)/.exec(r.out)?.[1];
  assert.ok(pw, r.out);
  const users = await openUserDirectory(loadDovecotConf(r.configDir));
  try {
    assert.equal((await users.verifyPlain('postmaster@example.com', pw)).result, 'ok');
    assert.equal((await users.verifyPlain('postmaster@example.com', pw + 'x')).result, 'mismatch');
    assert.equal((await users.lookup('postmaster@example.com'))?.home, join(r.configDir, 'data', 'vmail', 'example.com', 'postmaster'));
  } finally {
    await users.close();
  }
  const cert = new X509Certificate(readFileSync(join(r.configDir, 'tls', 'postern.crt')));
  assert.equal(cert.checkHost('mail.example.com'), 'mail.example.com');
  assert.match(r.out, /`postern check` found no errors/);
  assert.match(r.out, /^example\.com\. +3600 IN MX +10 mail\.example\.com\.$/m);
  assert.match(r.out, /^_dmarc\.example\.com\. .*"v=DMARC1; p=none; rua=mailto:postmaster@example\.com"$/m);
  assert.match(r.out, /dkim keygen /);
});

test('an existing configuration is refused without --force, and kept as .bak with it', async () => {
  const configDir = join(dir, 'existing');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'main.cf'), 'myhostname = old.example.net\n');
  const r1 = await init(SITE.slice(1), configDir, async () => assert.fail('asked a question although init must refuse'));
  assert.equal(r1.code, 73);
  assert.match(r1.err, /already holds a configuration \(main\.cf\); give --force/);
  assert.equal(readFileSync(join(configDir, 'main.cf'), 'utf8'), 'myhostname = old.example.net\n');
  assert.ok(!existsSync(join(configDir, 'master.cf')), 'nothing written');

  const r2 = await init([...SITE, '--force'], configDir);
  assert.equal(r2.code, 0, r2.err);
  assert.equal(readFileSync(join(configDir, 'main.cf.bak'), 'utf8'), 'myhostname = old.example.net\n');
  assert.match(readFileSync(join(configDir, 'main.cf'), 'utf8'), /^myhostname = mail\.example\.com$/m);

  const r3 = await init([...SITE.map((a) => a.replace('mail.example.com', 'mx.example.com')), '--force'], configDir);
  assert.equal(r3.code, 0, r3.err);
  assert.match(readFileSync(join(configDir, 'main.cf.bak.1'), 'utf8'), /^myhostname = mail\.example\.com$/m);
  assert.ok(existsSync(join(configDir, 'master.cf.bak')) && existsSync(join(configDir, 'dovecot.conf.bak')));
  // The certificate for the old name is set aside and a new one names the new host.
  assert.equal(new X509Certificate(readFileSync(join(configDir, 'tls', 'postern.crt'))).checkHost('mx.example.com'), 'mx.example.com');
  assert.ok(existsSync(join(configDir, 'tls', 'postern.crt.bak')));
});

test('without a terminal nothing is asked: the missing flags are listed and nothing is written', async () => {
  const r = await init(['--networks', '127.0.0.0/8']);
  assert.equal(r.code, 64);
  assert.match(r.err, /missing: --hostname, --domain/);
  assert.ok(!existsSync(r.configDir));
  const r2 = await init(['--non-interactive', '--hostname', 'mail.example.com']);
  assert.match(r2.err, /missing: --domain\)/);
});

test('hostile and dangerous answers are refused before anything is written', async () => {
  const cases: [string[], RegExp][] = [
    [['--hostname', '../x'], /--hostname "\.\.\/x": .*not a fully qualified name|label/],
    [['--hostname', 'mail\0.example.com'], /--hostname "mail\\u0000\.example\.com"/],
    [['--hostname', `${'a'.repeat(300)}.example.com`], /longer than 253/],
    [['--domain', 'exa mple.com'], /may hold only letters/],
    [['--networks', '0.0.0.0/0'], /open relay/],
    [['--networks', '10.0.0.0/8; rm -rf /'], /is not a network/],
    [['--role', 'backup'], /answer one of final, relay, null-client/],
    [['--relayhost', 'smtp.provider.example:99999'], /bad port/],
    [['--relayhost', '192.0.2.1'], /put an address in brackets/],
    [['--role', 'null-client'], /a null client needs a relayhost/],
    [['--user', '../../etc/passwd@example.com'], /invalid user name/],
    [['--origin', 'both'], /answer hostname or domain/],
    [['--hostname', 'example.com', '--domain', 'example.com'], /NEVER list a virtual MAILBOX domain in mydestination/],
    [['--destination', '$myhostname, example.com'], /NEVER list a virtual MAILBOX domain/],
    [['--bogus'], /unknown argument "--bogus"/],
  ];
  for (const [extra, re] of cases) {
    const args = [...SITE];
    for (let i = 0; i < extra.length; i++) {
      const at = args.indexOf(extra[i]!);
      if (extra[i]!.startsWith('--') && at >= 0) { args[at + 1] = extra[i + 1]!; i++; } else args.push(extra[i]!);
    }
    const r = await init(args);
    assert.equal(r.code, 64, `${extra.join(' ')}: ${r.err}`);
    assert.match(r.err, re, extra.join(' '));
    assert.ok(!existsSync(r.configDir), `${extra.join(' ')}: nothing may be written`);
  }
});

test('on a terminal: Table 2 questions with Postfix\'s derived defaults, a wrong answer asked again', async () => {
  const asked: { key: string; dflt: string; error?: string }[] = [];
  const script: Record<string, string[]> = { myhostname: ['mail.example.org'], mynetworks: ['0.0.0.0/0', '127.0.0.0/8'], myorigin: ['domain'], user: ['none'] };
  const asker: Asker = async (q, dflt, error) => {
    asked.push({ key: q.key, dflt, ...(error ? { error } : {}) });
    assert.ok(q.ask.endsWith('?') && q.explain.length > 0 && !q.explain.includes('\n'));
    return script[q.key]?.shift() ?? '';
  };
  const r = await init([], undefined, asker);
  assert.equal(r.code, 0, r.err + r.out);
  const dflt = Object.fromEntries(asked.map((a) => [a.key, a.dflt]));
  assert.equal(dflt.myhostname, defaultHostname());
  assert.equal(dflt.mydomain, 'example.org', 'mydomain derived from the answer for myhostname');
  assert.equal(dflt.mydomain, defaultMyDomain('mail.example.org'));
  assert.equal(dflt.myorigin, 'hostname');
  assert.equal(dflt.mydestination, '$myhostname, localhost.$mydomain, localhost');
  assert.equal(dflt.role, 'final');
  assert.equal(dflt.user, 'postmaster@example.org');
  assert.deepEqual(asked.filter((a) => a.key === 'mynetworks').map((a) => Boolean(a.error)), [false, true], 'the open-relay answer is asked again with the reason');
  assert.equal(asked.length, 10);
  const n = postconfN(r.configDir);
  assert.match(n, /^mydomain = example\.org$/m);
  assert.match(n, /^mynetworks = 127\.0\.0\.0\/8$/m);
  assert.doesNotMatch(r.out, /has the password/);

  // Flags answer their questions: those are not asked.
  asked.length = 0;
  const r2 = await init(['--hostname', 'mx.example.net', '--domain', 'example.net', '--no-user'], undefined, asker);
  assert.equal(r2.code, 0, r2.err);
  assert.ok(!asked.some((a) => a.key === 'myhostname' || a.key === 'mydomain' || a.key === 'user'));
});

test('--public: standard ports on all interfaces; null-client and relay roles; all accepted by real Postfix and Dovecot', async () => {
  const r = await init([...SITE, '--public', '--no-user']);
  assert.equal(r.code, 0, r.err);
  assert.match(postconfN(r.configDir), /^inet_interfaces = all$/m);
  const m = spawnSync('postconf', ['-c', r.configDir, '-M'], { encoding: 'utf8' });
  assert.equal(m.stderr, '');
  for (const port of ['25', '587', '465']) assert.match(m.stdout, new RegExp(`^${port} +inet +n +- +n +- +- +smtpd`, 'm'));
  const dc = doveconfN(r.configDir);
  // `listen = *, ::` is Dovecot's default, so -n omits it: ask for the value.
  assert.equal(spawnSync('doveconf', ['-c', join(r.configDir, 'dovecot.conf'), '-h', 'listen'], { encoding: 'utf8' }).stdout, '*, ::\n');
  for (const port of [143, 993, 110, 995]) assert.match(dc, new RegExp(`port = ${port}\\b`));
  assert.match(r.out, /will listen on all interfaces: SMTP 25, submission 587, submissions 465, IMAP 143, IMAPS 993, POP3 110, POP3S 995/);

  const nc = await init([...SITE, '--role', 'null-client', '--relayhost', '[smtp.provider.example]:587', '--no-user']);
  assert.equal(nc.code, 0, nc.err + nc.out);
  const ncn = postconfN(nc.configDir);
  assert.match(ncn, /^relayhost = \[smtp\.provider\.example\]:587$/m);
  assert.match(ncn, /^mydestination =$/m);
  assert.match(ncn, /^local_transport = error:local delivery is disabled$/m);
  assert.match(ncn, /^virtual_mailbox_domains =$/m);
  assert.doesNotMatch(nc.out, /IN MX/, 'a null client receives no mail: no MX to publish');

  const rl = await init([...SITE, '--role', 'relay', '--no-user']);
  assert.equal(rl.code, 0, rl.err);
  assert.match(postconfN(rl.configDir), /^virtual_mailbox_domains =$/m);
  doveconfN(rl.configDir);
  assert.deepEqual(readdirSync(join(rl.configDir, 'data')).sort(), ['lib', 'queue', 'run', 'users.db', 'vmail']);
});

test('the written configuration runs: postern start accepts mail for the first user, who can log in on submission', async () => {
  const base = await freePortBase(9);
  const r = await init([...SITE, '--user', 'alice@example.com'], undefined, undefined, base);
  assert.equal(r.code, 0, r.err);
  const pw = /has the password (\S+)/.exec(r.out)![1]!;
  const child = spawn(POSTERN, ['-c', r.configDir, 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  try {
    const end = Date.now() + 20_000;
    while (!log.includes('daemon started')) {
      assert.ok(child.exitCode === null && Date.now() < end, `postern start failed:\n${log}`);
      await new Promise((res) => setTimeout(res, 25));
    }
    const swaks = (...a: string[]) => spawnSync('swaks', ['--server', '127.0.0.1', '--from', 'bob@example.net', '--h-Subject', 'hello', ...a], { encoding: 'utf8', timeout: 20_000 });
    const inbound = swaks('--port', String(base), '--to', 'alice@example.com');
    assert.equal(inbound.status, 0, inbound.stdout);
    const unknown = swaks('--port', String(base), '--to', 'nobody@example.com');
    assert.match(unknown.stdout, /<\*\* +550 5\.1\.1 <nobody@example\.com>: Recipient address rejected: User unknown in virtual mailbox table/);
    const submit = swaks('--port', String(base + 1), '-tls', '--auth', 'PLAIN', '--auth-user', 'alice@example.com', '--auth-password', pw, '--from', 'alice@example.com', '--to', 'alice@example.com');
    assert.equal(submit.status, 0, submit.stdout);
    const maildir = join(r.configDir, 'data', 'vmail', 'example.com', 'alice', 'new');
    const until = Date.now() + 10_000;
    while ((existsSync(maildir) ? readdirSync(maildir).length : 0) < 2) {
      assert.ok(Date.now() < until, `two messages expected in ${maildir}:\n${log}`);
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((res) => { if (child.exitCode !== null) res(undefined); else child.once('exit', res); });
  }
});
