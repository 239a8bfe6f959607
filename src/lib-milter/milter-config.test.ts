import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MainConfig } from '../global/mail-conf.ts';
import { milterConfig } from './milter-config.ts';
import { validSmtpReply } from './milter8.ts';
import { encodePacket, cstr, splitStrings, SMFIC } from './milter-protocol.ts';

const cfg = (s: string) => MainConfig.parse(s, 'main.cf', '/tmp');

test('smtpd_milters: plain endpoints, per-milter overrides in braces, DISABLE', () => {
  const c = milterConfig(cfg('smtpd_milters = inet:localhost:8891, unix:/run/m.sock { inet:127.0.0.1:11332, connect_timeout=10s, default_action=accept, protocol=4 }\nmilter_command_timeout = 1m'), 'smtpd_milters')!;
  assert.deepEqual(c.milters.map((m) => m.name), ['inet:localhost:8891', 'unix:/run/m.sock', 'inet:127.0.0.1:11332']);
  assert.equal(c.milters[0]!.connectTimeoutMs, 30_000);
  assert.equal(c.milters[0]!.commandTimeoutMs, 60_000);
  assert.equal(c.milters[0]!.contentTimeoutMs, 300_000);
  assert.equal(c.milters[0]!.defaultAction, 'tempfail');
  assert.equal(c.milters[0]!.protocol, '6');
  assert.equal(c.milters[2]!.connectTimeoutMs, 10_000);
  assert.equal(c.milters[2]!.defaultAction, 'accept');
  assert.equal(c.milters[2]!.protocol, '4');
  assert.equal(milterConfig(cfg('smtpd_milters = DISABLE'), 'smtpd_milters'), undefined);
  assert.equal(milterConfig(cfg(''), 'smtpd_milters'), undefined);
  assert.throws(() => milterConfig(cfg('smtpd_milters = { inet:h:1, bogus=1 }'), 'smtpd_milters'), /unknown milter attribute "bogus=1"/);
  const spaced = milterConfig(cfg('smtpd_milters = { inet:h:1, { protocol = 6 no_header_reply }, default_action=accept }'), 'smtpd_milters')!;
  assert.equal(spaced.milters[0]!.protocol, '6 no_header_reply');
});

test('macro lists have Postfix\'s defaults; milter_macro_defaults', () => {
  const c = milterConfig(cfg('smtpd_milters = inet:h:1\nmilter_macro_defaults = auth_type=none, {mail_host}=x'), 'smtpd_milters')!;
  assert.deepEqual(c.macros.conn, ['j', '{daemon_name}', '{daemon_addr}', 'v', '_']);
  assert.deepEqual(c.macros.mail, ['i', '{auth_type}', '{auth_authen}', '{auth_author}', '{mail_addr}', '{mail_host}', '{mail_mailer}']);
  assert.deepEqual(c.macros.rcpt, ['i', '{rcpt_addr}', '{rcpt_host}', '{rcpt_mailer}']);
  assert.deepEqual(c.macros.eod, ['i']);
  assert.equal(c.defaults.get('auth_type'), 'none');
  assert.equal(c.defaults.get('mail_host'), 'x');
});

test('reply syntax (Postfix milter8_valid_smtp_reply)', () => {
  assert.ok(validSmtpReply('550 5.7.1 no'));
  assert.ok(validSmtpReply('550-5.7.1 one\r\n550 5.7.1 two'));
  assert.ok(!validSmtpReply('250 2.0.0 ok'));
  assert.ok(!validSmtpReply('999 nonsense'));
  assert.ok(!validSmtpReply('550 4.7.1 mismatch'));
  assert.ok(!validSmtpReply('550-one\r\n550-two'));
  assert.ok(!validSmtpReply('550 a\0b'));
});

test('packets: length, command, NUL-terminated strings', () => {
  const p = encodePacket(SMFIC.HELO, cstr('client.example'));
  assert.equal(p.readUInt32BE(0), 1 + 'client.example'.length + 1);
  assert.equal(String.fromCharCode(p[4]!), 'H');
  assert.deepEqual(splitStrings(p.subarray(5)), ['client.example']);
  assert.deepEqual(splitStrings(Buffer.from('a\0b\0c')), ['a', 'b', 'c']);
});
