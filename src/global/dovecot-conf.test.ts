/**
 * Tests for dovecot-conf.ts: Debian's stock /etc/dovecot tree loads without errors or warnings;
 * a virtual-mailbox config gives the values an administrator wrote, and the same values as
 * real `doveconf -n` (our reading of the file = our reading of doveconf's normalised dump);
 * doveconf's syntax (quotes, continuation, $var, <file, !include globs, filters); Dovecot's error
 * texts with file and line; hostile input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from './config-error.ts';
import { dovecotDefaults, loadDovecotConf, parseDovecotConf, type DovecotConfig } from './dovecot-conf.ts';

const execFileP = promisify(execFile);
const TESTDATA = join(import.meta.dirname, 'testdata');
const VIRTUAL = join(TESTDATA, 'dovecot-virtual', 'dovecot.conf');

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dovecotconf-'));
  try { return fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

function parse(text: string, file = '/etc/dovecot/dovecot.conf'): DovecotConfig {
  return parseDovecotConf(text, file);
}

function throwsDovecot(fn: () => unknown, file: string, line: number, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.file, file);
    assert.equal(err.line, line);
    if (line > 0) assert.ok(err.message.startsWith(`Error in configuration file ${file} line ${line}: `), err.message);
    assert.match(err.message, re);
    return true;
  });
}

/** The API-visible reading of a config, for comparing two readings. */
function summary(c: DovecotConfig): unknown {
  const svc = (name: string) => c.services.find((s) => s.name === name);
  return {
    protocols: c.protocols, listen: c.listen, mailLocation: c.mailLocation, ssl: c.ssl, sslCert: c.sslCert, sslKey: c.sslKey,
    sslMinProtocol: c.sslMinProtocol, authMechanisms: c.authMechanisms, disablePlaintextAuth: c.disablePlaintextAuth,
    passdbs: c.passdbs.map((d) => [d.driver, d.args, d.defaultFields, d.overrideFields]),
    userdbs: c.userdbs.map((d) => [d.driver, d.args, d.defaultFields, d.overrideFields]),
    imapLogin: svc('imap-login')?.inetListeners, lmtp: svc('lmtp')?.unixListeners, auth: svc('auth')?.unixListeners,
    namespaces: c.namespaces.map((n) => ({ ...n, settings: undefined, mailboxes: [...n.mailboxes].sort((a, b) => a.name.localeCompare(b.name)) })),
    greeting: c.get('login_greeting'), maxConn: c.get('mail_max_userip_connections'), plugins: c.get('mail_plugins'),
    quota: c.get('plugin/quota'),
    imapMaxConn: c.getFor('mail_max_userip_connections', { protocol: 'imap' }),
    imapPlugins: c.getFor('mail_plugins', { protocol: 'imap', remoteIp: '192.0.2.1' }),
    localMaxConn: c.getFor('mail_max_userip_connections', { protocol: 'pop3', localIp: '127.0.0.1' }),
    idleRemote: c.getFor('imap_idle_notify_interval', { protocol: 'imap', remoteIp: '10.1.2.3' }),
  };
}

test('Debian stock /etc/dovecot tree: loads with no error and no warning', () => {
  const c = loadDovecotConf(join(TESTDATA, 'dovecot'));
  assert.deepEqual(c.warnings, []);
  // dovecot.conf includes /usr/share/dovecot/protocols.d/*.protocol: `sieve` is there when
  // Debian's dovecot-managesieved is installed, `submission` with dovecot-submissiond (the test
  // command installs both)
  const installed = (f: string) => existsSync(`/usr/share/dovecot/protocols.d/${f}.protocol`);
  assert.deepEqual([...c.protocols].sort(), ['imap', 'lmtp', 'pop3', ...(installed('managesieved') ? ['sieve'] : []), ...(installed('submissiond') ? ['submission'] : [])]);
  assert.equal(c.mailLocation, 'mbox:~/mail:INBOX=/var/mail/%u');
  assert.deepEqual(c.passdbs.map((d) => d.driver), ['pam']);
  assert.deepEqual(c.userdbs.map((d) => d.driver), ['passwd']);
  assert.match(c.passdbs[0]!.file, /conf\.d\/auth-system\.conf\.ext$/);
  assert.equal(c.ssl, 'yes');
  assert.equal(c.sslCert, '/etc/dovecot/private/dovecot.pem');   // kept as a path: the file does not exist
  assert.equal(c.sslKey, '/etc/dovecot/private/dovecot.key');
  assert.equal(c.get('ssl_dh'), '</usr/share/dovecot/dh.pem');
  assert.equal(c.get('mail_privileged_group'), 'mail');
  assert.equal(c.get('ssl_client_ca_dir'), '/etc/ssl/certs');
  assert.deepEqual(c.authMechanisms, ['plain']);
  assert.equal(c.disablePlaintextAuth, true);
  assert.deepEqual(c.listen, ['*', '::']);
  const inbox = c.namespaces.find((n) => n.name === 'inbox')!;
  assert.equal(inbox.inbox, true);
  assert.deepEqual(inbox.mailboxes.map((m) => [m.name, m.specialUse]), [
    ['Drafts', ['\\Drafts']], ['Junk', ['\\Junk']], ['Trash', ['\\Trash']], ['Sent', ['\\Sent']], ['Sent Messages', ['\\Sent']]]);
  // Listeners whose ports are commented out keep Dovecot's defaults.
  assert.deepEqual(c.services.find((s) => s.name === 'imap-login')!.inetListeners,
    [{ name: 'imap', port: 143, ssl: false }, { name: 'imaps', port: 993, ssl: true }]);
  assert.deepEqual(c.services.find((s) => s.name === 'pop3-login')!.inetListeners.map((l) => l.port), [110, 995]);
});

test('virtual-mailbox config: the values the administrator wrote', () => {
  const c = parseDovecotConf(readFileSync(VIRTUAL, 'latin1'), VIRTUAL);
  assert.deepEqual(c.warnings, []);
  assert.deepEqual(c.protocols, ['imap', 'lmtp']);
  assert.deepEqual(c.listen, ['127.0.0.1', '::1']);
  assert.equal(c.mailLocation, 'maildir:/var/vmail/%d/%n/Maildir');
  assert.equal(c.ssl, 'required');
  assert.equal(c.sslCert, '/etc/ssl/certs/mail.example.pem');
  assert.equal(c.sslMinProtocol, 'TLSv1.3');
  assert.deepEqual(c.authMechanisms, ['plain', 'login']);
  assert.equal(c.disablePlaintextAuth, false);
  assert.deepEqual(c.passdbs.map((d) => [d.driver, d.args, d.line]), [['passwd-file', 'scheme=SHA512-CRYPT /etc/dovecot/users', 16]]);
  assert.deepEqual(c.userdbs[0]!.defaultFields, { quota_rule: '*:storage=1G' });
  assert.equal(c.userdbs[0]!.args, 'uid=vmail gid=vmail home=/var/vmail/%d/%n');
  assert.deepEqual(c.services.find((s) => s.name === 'imap-login')!.inetListeners,
    [{ name: 'imap', port: 1143, ssl: false, address: ['127.0.0.1'] }]);   // imaps: port = 0 disables it
  assert.deepEqual(c.services.find((s) => s.name === 'lmtp')!.unixListeners.at(-1),
    { path: '/var/spool/postfix/private/dovecot-lmtp', mode: '0600', user: 'postfix', group: 'postfix' });
  const ns = c.namespaces[0]!;
  assert.deepEqual([ns.name, ns.inbox, ns.separator, ns.prefix], ['inbox', true, '/', '']);
  assert.deepEqual(ns.mailboxes.find((m) => m.name === 'Archive'), { name: 'Archive', specialUse: ['\\Archive', '\\All'], auto: 'create' });
  assert.equal(c.get('login_greeting'), 'Postern  ready.');
  assert.equal(c.get('mail_max_userip_connections'), '20');
  assert.equal(c.getFor('mail_max_userip_connections', { protocol: 'imap' }), '50');
  assert.equal(c.getFor('mail_max_userip_connections', { protocol: 'pop3' }), '20');
  assert.equal(c.getFor('mail_max_userip_connections', { protocol: 'imap', localIp: '127.0.0.1' }), '100');
  assert.equal(c.getFor('mail_plugins', { protocol: 'imap' }), 'quota imap_quota');
  assert.equal(c.getFor('imap_idle_notify_interval', { protocol: 'imap', remoteIp: '10.9.8.7' }), '5 mins');
  assert.equal(c.getFor('imap_idle_notify_interval', { protocol: 'imap', remoteIp: '192.0.2.1' }), '2 mins');
  assert.equal(c.get('plugin/quota'), 'maildir:User quota');
  assert.equal(c.isSet('recipient_delimiter'), true);
  assert.equal(c.isSet('hostname'), false);
  assert.equal(c.get('first_valid_uid'), '500');   // Dovecot's default
  assert.equal(c.get('no_such_setting'), undefined);
});

test('virtual-mailbox config: same reading as real doveconf -n', async () => {
  const { stdout } = await execFileP('doveconf', ['-c', VIRTUAL, '-n', '-P'], { encoding: 'latin1' });
  const ours = parseDovecotConf(readFileSync(VIRTUAL, 'latin1'), VIRTUAL);
  const theirs = parse(stdout, VIRTUAL);
  assert.deepEqual(summary(theirs), summary(ours));
});

test('Debian stock tree: same reading as real doveconf -n', async () => {
  const file = join(TESTDATA, 'dovecot', 'dovecot.conf');
  const { stdout } = await execFileP('doveconf', ['-c', file, '-n', '-P'], { encoding: 'latin1' });
  const ours = summary(parseDovecotConf(readFileSync(file, 'latin1'), file)) as Record<string, unknown>;
  const theirs = summary(parse(stdout, file)) as Record<string, unknown>;
  // doveconf prints " imap lmtp pop3" (Debian builds with protocols = ""); we start from
  // Dovecot's upstream default "imap pop3 lmtp", so compare the set.
  assert.deepEqual([...(ours.protocols as string[])].sort(), [...(theirs.protocols as string[])].sort());
  assert.deepEqual({ ...ours, protocols: 0 }, { ...theirs, protocols: 0 });
});

test('includes, quotes, continuation and $var: same reading as real doveconf -n', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-dovecotconf-'));
  try {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'dovecot.conf'), [
      '# main file', 'protocols = pop3', '!include conf.d/*.conf', '!include_try local.conf',
      'login_greeting = "Welcome  to # Postern"', "mail_location = 'maildir:~/Mail'",
      'listen = 127.0.0.1, \\', '   ::1', '',
    ].join('\n'));
    writeFileSync(join(dir, 'conf.d', '10-auth.conf'), 'auth_mechanisms = plain\nauth_mechanisms = $auth_mechanisms login\n' +
      'passdb {\n  driver = passwd-file\n  args = scheme=BLF-CRYPT username_format=%u /etc/dovecot/users\n' +
      '  override_fields = nopassword=y\n}\nuserdb {\n  driver = passwd-file\n  args = username_format=%u /etc/dovecot/users\n}\n');
    writeFileSync(join(dir, 'conf.d', '20-imap.conf'), 'protocols = $protocols imap\nprotocol imap {\n  mail_max_userip_connections = 30\n}\n' +
      'service imap-login {\n  inet_listener imaps {\n    port = 10993\n    ssl = yes\n  }\n}\n');
    writeFileSync(join(dir, 'local.conf'), 'ssl = no\ndisable_plaintext_auth = no\n');
    const file = join(dir, 'dovecot.conf');
    const { stdout } = await execFileP('doveconf', ['-c', file, '-n', '-P'], { encoding: 'latin1' });
    const ours = parseDovecotConf(readFileSync(file, 'latin1'), file);
    assert.deepEqual(summary(parse(stdout, file)), summary(ours));
    assert.deepEqual([ours.protocols, ours.listen, ours.ssl, ours.authMechanisms, ours.get('login_greeting')],
      [['pop3', 'imap'], ['127.0.0.1', '::1'], 'no', ['plain', 'login'], 'Welcome  to # Postern']);
    assert.deepEqual(ours.passdbs[0]!.overrideFields, { nopassword: 'y' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('syntax: quotes, comments, continuation lines, $var, $ENV, CRLF', () => {
  process.env.POSTERN_TEST_DOMAIN = 'example.test';
  const c = parse([
    'login_greeting = "a \\"quoted\\" # not a comment"  # a comment',
    "postmaster_address = 'pm@$ENV:POSTERN_TEST_DOMAIN'",
    'hostname=mail.example.test',
    'mail_location = maildir:~/Maildir \\',
    '   :LAYOUT=fs',
    'auth_mechanisms = plain',
    'auth_mechanisms = $auth_mechanisms LOGIN',
    'mail_plugins = $mail_plugins   acl quota',
    'auth_realms = $hostname $ENV:POSTERN_TEST_DOMAIN',
    'recipient_delimiter = +#ambiguous',
    '',
  ].join('\r\n'));
  assert.equal(c.get('login_greeting'), 'a "quoted" # not a comment');
  assert.equal(c.get('postmaster_address'), 'pm@$ENV:POSTERN_TEST_DOMAIN');   // quoted: no expansion
  assert.equal(c.get('hostname'), 'mail.example.test');
  assert.equal(c.mailLocation, 'maildir:~/Maildir :LAYOUT=fs');
  assert.deepEqual(c.authMechanisms, ['plain', 'login']);
  assert.equal(c.get('mail_plugins'), ' acl quota');                          // as doveconf: empty default, then words
  assert.equal(c.get('auth_realms'), 'mail.example.test example.test');
  assert.equal(c.get('recipient_delimiter'), '+');
  assert.deepEqual(c.warnings, ["/etc/dovecot/dovecot.conf, line 10: ambiguous '#' character in line, treating it as comment (add a space before it)"]);
});

test('!include / !include_try: globs relative to the including file, sorted, <file values', () => {
  withDir((dir) => {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'dovecot.conf'), '!include conf.d/*.conf\n!include_try missing.conf\n!include_try nothing/*.conf\nprotocols = $protocols pop3\n');
    writeFileSync(join(dir, 'conf.d', '20-b.conf'), 'protocols = $protocols lmtp\nlogin_greeting = <greeting.txt\n');
    writeFileSync(join(dir, 'conf.d', '10-a.conf'), 'protocols = imap\nssl_cert = <../certs/mail.pem\nssl_key = </abs/mail.key\n');
    writeFileSync(join(dir, 'conf.d', 'greeting.txt'), 'Hello from a file');
    const c = loadDovecotConf(dir);
    assert.deepEqual(c.protocols, ['imap', 'lmtp', 'pop3']);
    assert.equal(c.get('login_greeting'), 'Hello from a file');
    assert.equal(c.sslCert, join(dir, 'certs', 'mail.pem'));
    assert.equal(c.sslKey, '/abs/mail.key');
    assert.deepEqual(c.warnings, []);
  });
});

test('unknown settings and sections are warnings, never errors', () => {
  const c = parse([
    'protocols = imap',
    'no_such_setting = 1',
    'frobnicate {',
    '  inner {',
    '    deeper = 1',
    '  }',
    '}',
    'metric imap_commands {',
    '  filter = event=imap_command_finished',
    '}',
    'service imap-login {',
    '  bogus_service_key = 2',
    '  inet_listener imap {',
    '    port = 10143',
    '    colour = blue',
    '  }',
    '}',
    'protocol imap {',
    '  service imap {',
    '    process_limit = 1',
    '  }',
    '  plugin {',
    '    quota = maildir',
    '  }',
    '}',
    'listen = 127.0.0.1',
  ].join('\n'));
  assert.deepEqual(c.warnings, [
    '/etc/dovecot/dovecot.conf, line 2: unknown setting no_such_setting (ignored)',
    '/etc/dovecot/dovecot.conf, line 3: unknown section frobnicate (ignored)',
    '/etc/dovecot/dovecot.conf, line 8: section metric is not supported by Postern (ignored)',
    '/etc/dovecot/dovecot.conf, line 12: unknown service setting bogus_service_key (ignored)',
    '/etc/dovecot/dovecot.conf, line 15: unknown inet_listener setting colour (ignored)',
    '/etc/dovecot/dovecot.conf, line 19: section service inside a filter is not supported by Postern (ignored)',
  ]);
  assert.equal(c.services.find((s) => s.name === 'imap')?.settings.process_limit, undefined);
  assert.equal(c.get('plugin/quota'), undefined);                       // plugin {} inside a filter stays there
  assert.equal(c.getFor('plugin/quota', { protocol: 'imap' }), 'maildir');
  assert.deepEqual(c.listen, ['127.0.0.1']);
  assert.equal(c.services.find((s) => s.name === 'imap-login')!.inetListeners[0]!.port, 10143);
});

test('errors: Dovecot wording with file and line', () => {
  const F = '/etc/dovecot/dovecot.conf';
  throwsDovecot(() => parse('protocols = imap\n}\n'), F, 2, /Unexpected '\}'/);
  assert.throws(() => parse('service imap-login {\n  inet_listener imap {\n  }\n'), (err: unknown) => err instanceof ConfigError &&
    err.line === 1 && err.message === "Error in configuration file /etc/dovecot/dovecot.conf: Missing '}' (section started at /etc/dovecot/dovecot.conf:1)");
  throwsDovecot(() => parse('protocols imap\n'), F, 1, /Expecting '\{'/);
  throwsDovecot(() => parse('service imap-login\n{\n}\n'), F, 1, /Expecting '\{'/);
  throwsDovecot(() => parse('service imap-login { port = 1 }\n'), F, 1, /Garbage after '\{'/);
  throwsDovecot(() => parse('  = x\n'), F, 1, /Missing key name \('=' at the beginning of line\)/);
  throwsDovecot(() => parse('mail_location = $nosuchvar x\n'), F, 1, /Unknown variable: \$nosuchvar/);
  throwsDovecot(() => parse('\ndisable_plaintext_auth = maybe\n'), F, 2, /disable_plaintext_auth: Invalid boolean value: maybe \(use yes or no\)/);
  throwsDovecot(() => parse('ssl = sometimes\n'), F, 1, /ssl: Invalid value: sometimes/);
  throwsDovecot(() => parse('service imap-login {\n inet_listener imap {\n  port = 99999\n }\n}\n'), F, 3, /Invalid port number: 99999/);
  throwsDovecot(() => parse('local 127.0.0.1 {\n  auth_mechanisms = plain login\n}\n'), F, 2,
    /Auth settings not supported inside local\/remote blocks: auth_mechanisms/);
  throwsDovecot(() => parse('remote 10.0.0.300/8 {\n}\n'), F, 1, /Invalid network mask/);
  throwsDovecot(() => parse('namespace inbox {\n mailbox Sent {\n  auto = always\n }\n}\n'), F, 3, /auto: Invalid value: always/);
  throwsDovecot(() => parse('login_greeting = </nonexistent/greeting\n'), F, 1, /login_greeting: Can't open file \/nonexistent\/greeting: ENOENT/);
});

test('include errors: missing file, self-include, include loop, include bomb, non-config file', () => {
  withDir((dir) => {
    const main = join(dir, 'dovecot.conf');
    writeFileSync(main, 'protocols = imap\n!include nope.conf\n');
    throwsDovecot(() => loadDovecotConf(dir), main, 2, /No matches for !include nope\.conf/);
    writeFileSync(main, '\n!include dovecot.conf\n');
    throwsDovecot(() => loadDovecotConf(dir), main, 2, new RegExp(`Recursive include file: ${main}`));
    writeFileSync(main, '!include a.conf\n');
    writeFileSync(join(dir, 'a.conf'), '# a\n!include b.conf\n');
    writeFileSync(join(dir, 'b.conf'), '!include_try a.conf\n');
    throwsDovecot(() => loadDovecotConf(dir), join(dir, 'b.conf'), 1, /Recursive include file: .*a\.conf/);
    // An include "bomb": each file includes the next one 10 times.
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, `bomb${i}.conf`), `!include bomb${i + 1}.conf\n`.repeat(10));
    writeFileSync(join(dir, 'bomb5.conf'), 'protocols = imap\n');
    writeFileSync(main, '!include bomb0.conf\n');
    assert.throws(() => loadDovecotConf(dir), /Too many included files/);
    // A file that is not a dovecot config: a clear error naming that file and line.
    writeFileSync(main, '!include /etc/passwd\n');
    assert.throws(() => loadDovecotConf(dir), (err: unknown) => err instanceof ConfigError && err.file === '/etc/passwd' && err.line === 1);
  });
});

test('include errors: an unreadable included file', (t) => {
  if (process.getuid?.() === 0) {
    t.skip('running as root: chmod 000 does not stop root from reading the file');
    return;
  }
  withDir((dir) => {
    writeFileSync(join(dir, 'dovecot.conf'), '!include secret.conf\n');
    writeFileSync(join(dir, 'secret.conf'), 'protocols = imap\n');
    chmodSync(join(dir, 'secret.conf'), 0o000);
    assert.throws(() => loadDovecotConf(dir), /Couldn't open include file .*secret\.conf: EACCES/);
  });
});

test('hostile input: NUL bytes, 10 MB lines, endless continuation, CRLF = LF', () => {
  const F = '/etc/dovecot/dovecot.conf';
  throwsDovecot(() => parse('protocols = imap\nlogin_greeting = a\0b\n'), F, 2, /NUL byte/);
  const t0 = Date.now();
  throwsDovecot(() => parse(`login_greeting = ${'x'.repeat(10 << 20)}\n`), F, 1, /Line too long/);
  assert.throws(() => parse('login_greeting = a \\\n'.repeat(200_000)), /line 55189: Line too long/);
  assert.ok(Date.now() - t0 < 5000, 'rejected quickly');
  const lf = readFileSync(VIRTUAL, 'latin1');
  assert.deepEqual(summary(parse(lf.replace(/\n/g, '\r\n'), VIRTUAL)), summary(parse(lf, VIRTUAL)));
  assert.deepEqual(parse('').warnings, []);
  assert.equal(parse('protocols = imap').protocols[0], 'imap');   // no final newline
});

test('missing dovecot.conf: Postern defaults', () => {
  withDir((dir) => {
    const c = loadDovecotConf(dir);
    assert.equal(c.file, join(dir, 'dovecot.conf'));
    assert.deepEqual(summary(c), summary(dovecotDefaults(join(dir, 'dovecot.conf'))));
    assert.deepEqual(c.protocols, ['imap', 'pop3', 'lmtp']);
    assert.deepEqual(c.listen, ['*', '::']);
    assert.equal(c.ssl, 'yes');
    assert.equal(c.disablePlaintextAuth, true);
    assert.deepEqual(c.authMechanisms, ['plain']);
    assert.equal(c.mailLocation, '');
    assert.equal(c.sslMinProtocol, 'TLSv1.2');
    assert.deepEqual(c.passdbs, []);
    assert.deepEqual(c.namespaces[0]!.mailboxes.map((m) => [m.name, m.specialUse[0], m.auto]), [
      ['Drafts', '\\Drafts', 'subscribe'], ['Junk', '\\Junk', 'subscribe'], ['Trash', '\\Trash', 'subscribe'], ['Sent', '\\Sent', 'subscribe']]);
    assert.equal(c.get('recipient_delimiter'), '+');
  });
});
