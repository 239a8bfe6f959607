/**
 * Tests for the small auth helpers: Dovecot %-variables (auth-var-expand), quota_rule
 * (auth-quota-rule), dovecot-sql.conf.ext (db-sql-conf) and passwd-file parsing limits
 * (db-passwd-file), each with the hostile input an administrator's file may hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { expandVars, hasVars, splitUser } from './auth-var-expand.ts';
import { parseQuotaRule, parseQuotaSize } from './auth-quota-rule.ts';
import { parseSqlConf } from './db-sql-conf.ts';
import { MAX_PASSWD_LINE, parsePasswdFile } from './db-passwd-file.ts';
import { embeddedUserDbSqlConf } from './user-directory-embedded.ts';

test('Dovecot variables: short and long forms, modifiers, %%', () => {
  const v = { user: 'Alice@Example.com', home: '/home/a' };
  assert.equal(expandVars('/var/vmail/%d/%n', v), '/var/vmail/Example.com/Alice');
  assert.equal(expandVars('%{domain}/%{username}/%{user}|%{home}', v), 'Example.com/Alice/Alice@Example.com|/home/a');
  assert.equal(expandVars('%Lu %Ud %h 100%%', v), 'alice@example.com EXAMPLE.COM /home/a 100%');
  assert.deepEqual(splitUser('a@b@c'), { local: 'a@b', domain: 'c' });
  assert.equal(expandVars('%n|%d', { user: 'local' }), 'local|');
  assert.throws(() => expandVars('%x', v), /unknown variable %x/);
  assert.throws(() => expandVars('%{nope}', v), /unknown variable %\{nope\}/);
  assert.throws(() => expandVars('%{user', v), /unterminated/);
  assert.throws(() => expandVars('trailing %', v), /unknown variable/);
  assert.equal(hasVars('/etc/dovecot/users'), false);
  assert.equal(hasVars('/etc/%d/users'), true);
  assert.equal(hasVars('100%%'), false);
});

test('quota_rule: sizes with Dovecot units, messages, ignored forms, errors', () => {
  assert.deepEqual(parseQuotaRule('*:storage=1G'), { quotaBytes: 1024 ** 3 });
  assert.deepEqual(parseQuotaRule('*:storage=512M:messages=1000'), { quotaBytes: 512 * 1024 ** 2, quotaMessages: 1000 });
  assert.deepEqual(parseQuotaRule('*:bytes=100k'), { quotaBytes: 102400 });
  assert.deepEqual(parseQuotaRule('*:storage=2048'), { quotaBytes: 2048 });
  assert.deepEqual(parseQuotaRule('*:storage=0'), {});
  assert.deepEqual(parseQuotaRule('*:ignore'), {});
  assert.deepEqual(parseQuotaRule('Trash:storage=+10M'), {});
  assert.deepEqual(parseQuotaRule('*:storage=+10%'), {});
  assert.equal(parseQuotaSize('1T'), 1024 ** 4);
  assert.equal(parseQuotaSize('1GB'), 1024 ** 3);
  assert.equal(parseQuotaSize('lots'), undefined);
  assert.throws(() => parseQuotaRule('*:storage=lots'), /bad size "lots"/);
  assert.throws(() => parseQuotaRule('*:color=red'), /unknown limit "color"/);
  assert.throws(() => parseQuotaRule('*:messages=many'), /bad message count/);
});

test('dovecot-sql.conf.ext: continuation lines, quotes, defaults, errors with file and line', () => {
  const c = parseSqlConf([
    '# comment', 'driver = sqlite', 'connect = "users.db"', 'password_query = \\',
    "  SELECT username AS user, password \\", "  FROM users WHERE username = '%u'", '',
  ].join('\r\n'), '/etc/postern/dovecot-sql.conf.ext');
  assert.equal(c.connect, '/etc/postern/users.db', 'relative to the settings file');
  assert.equal(c.passwordQuery, "SELECT username AS user, password FROM users WHERE username = '%u'");
  assert.equal(c.defaultPassScheme, 'MD5', "Dovecot's default");
  assert.match(c.userQuery, /SELECT home, uid, gid FROM users/);
  const e = parseSqlConf(embeddedUserDbSqlConf('/data/users.db'), '/x/e.conf');
  assert.equal(e.connect, '/data/users.db');
  assert.equal(e.defaultPassScheme, 'SHA512-CRYPT');
  assert.throws(() => parseSqlConf('driver = sqlite\nconnect = x\njunk line\n', 'f.conf'), /f\.conf, line 3: expected "key = value"/);
  assert.throws(() => parseSqlConf('driver = sqlite\nconnect = x\nnosuch = 1\n', 'f.conf'), /f\.conf, line 3: unknown setting "nosuch"/);
  assert.throws(() => parseSqlConf('connect = x\n', 'f.conf'), /missing "driver = sqlite"/);
  assert.throws(() => parseSqlConf('driver = sqlite\n', 'f.conf'), /missing "connect/);
  assert.throws(() => parseSqlConf('driver = sqlite\nconnect = a\0b\n', 'f.conf'), /line 2: NUL byte/);
  assert.throws(() => embeddedUserDbSqlConf('/a\nb'), /line break/);
});

test('passwd-file: over-long lines and odd fields are warnings, not failures', () => {
  const long = 'x@y:{PLAIN}' + 'a'.repeat(MAX_PASSWD_LINE);
  const p = parsePasswdFile(['ok@y:{PLAIN}pw', long, ':{PLAIN}noname', 'sp ace@y:{PLAIN}x', 'g@y:{PLAIN}x:1:1:gecos:/h:/bin/sh:a=1 b', 'last@y:{PLAIN}z'].join('\n'), '/etc/u');
  assert.deepEqual([...p.users.keys()], ['ok@y', 'g@y', 'last@y']);
  assert.match(p.warnings[0]!, /^\/etc\/u, line 2: line is too long/);
  assert.match(p.warnings[1]!, /^\/etc\/u, line 3: empty user name/);
  assert.match(p.warnings[2]!, /^\/etc\/u, line 4: user name "sp ace@y" contains white space/);
  const g = p.users.get('g@y')!;
  assert.deepEqual({ uid: g.uid, gid: g.gid, gecos: g.gecos, home: g.home, shell: g.shell, extra: g.extra }, { uid: '1', gid: '1', gecos: 'gecos', home: '/h', shell: '/bin/sh', extra: { a: '1', b: '' } });
});
