/**
 * Table-driven tests of smtpd-check: each row is a small SMTP dialogue (client address, SASL
 * user, HELO, MAIL, RCPT) against a main.cf fragment, and the reply Postfix 3.7 would give.
 * Tables are real texthash files in a temp dir; DNS is a loopback test server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resolver } from 'node:dns/promises';
import { MainConfig } from '../global/mail-conf.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { SmtpdCheck } from './smtpd-check.ts';
import type { SmtpdState } from './smtpd-state.ts';
import type { SmtpdVerdict } from './smtpd-policy.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { setLogSink } from '../util/msg.ts';
import { clientKeys, domainKeys, mailKeys, parseAccessValue } from './smtpd-check-access.ts';

const logs: string[] = [];
setLogSink((l) => { logs.push(l); });

let dir = '';
let dns: DnsServer;
let resolver: Resolver;

const FILES: Record<string, string> = {
  vmailbox: 'info@myoffice.space myoffice.space/info\nsales@myoffice.space myoffice.space/sales/\n',
  virtual: 'postmaster@stud12.myoffice.space postmaster\ninfo@stud12.myoffice.space joe\nsales@stud12.myoffice.space jane\n',
  relay_rcpt: 'known@relay.test x\n',
  local_rcpt: 'alice x\n',
  access_client: '127.0.0.3 REJECT\n127.0.0.4 550 5.7.2 go away\n10.1 REJECT whole net\nbad.client.test REJECT bad name\n',
  access_helo: 'bad.helo.test REJECT bad helo\nevil.test REJECT\nholdme.test HOLD\n',
  access_sender: [
    'spammer@example.org REJECT', 'example.net 554 5.7.1 no mail from example.net', '<> REJECT no bounces',
    'tmp@example.org 451 4.7.1 try later', 'dip@example.org DEFER_IF_PERMIT please wait',
    'warn@example.org WARN watch this', 'allow@example.org OK', 'user+tag@example.com REJECT tagged',
    'plain@example.com REJECT plain', 'local@ REJECT by localpart', 'restr@example.org reject_unauth_destination',
    'cls@example.org myclass', 'digits@example.org 12345', 'table@example.org texthash:/etc/x',
    'discard@example.org DISCARD', 'unk@example.org no_such_restriction', 'sub.parent.test REJECT sub',
    'parent.test REJECT parent', 'x@dsn.test REJECT 5.1.1 bad mailbox',
  ].join('\n') + '\n',
  access_server: 'bad.test REJECT bad mx\n192.0.2.77 REJECT bad address\n192.0.2.70 DUNNO\n',
  access_rcpt: 'blocked@myoffice.space REJECT\nopen@example.com OK\nroute.test OK\n',
  login: 'alice@example.test alice, bob\nshared@example.test carol\n',
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-check-'));
  for (const [f, t] of Object.entries(FILES)) writeFileSync(join(dir, f), t);
  dns = await DnsServer.start({
    'exists.test': { A: ['192.0.2.1'] },
    'mxonly.test': { MX: [{ preference: 10, exchange: 'mx.mxonly.test' }] },
    'nullmx.test': { MX: [{ preference: 0, exchange: '' }] },
    'servfail.test': 'SERVFAIL',
    'good.helo.test': { A: ['192.0.2.2'] },
    // DNS lists: 127.0.0.2 is listed in rbl.test and allowed by wl.test; 127.0.0.6's allow list
    // lookup fails; the client name good.client.test is allowed by rhswl.test.
    '2.0.0.127.rbl.test': { A: ['127.0.0.2'] },
    '2.0.0.127.rbl2.test': { A: ['127.0.0.2'], TXT: ['second list'] },
    '2.0.0.127.wl.test': { A: ['127.0.5.1'] },
    '6.0.0.127.wl.test': 'SERVFAIL',
    'good.client.test.rhswl.test': { A: ['127.0.5.1'] },
    // check_*_mx_access / check_*_a_access: an MX in a listed domain, a domain without MX.
    'mxhost.test': { MX: [{ preference: 10, exchange: 'mx1.bad.test' }] },
    'mx1.bad.test': { A: ['192.0.2.66'] },
    'goodmx.test': { MX: [{ preference: 10, exchange: 'mx.goodmx.test' }] },
    'mx.goodmx.test': { A: ['192.0.2.70'] },
    'nomx.test': { A: ['192.0.2.77'] },
    'nsbad.test': { NS: ['ns1.bad.test'] },
    'host.nsbad.test': { A: ['192.0.2.90'] },
    'ns1.bad.test': { A: ['192.0.2.91'] },
    // permit_mx_backup: 127.0.0.1 (ours, inet_interfaces = loopback-only) as backup or primary.
    'backup.test': { MX: [{ preference: 10, exchange: 'primary.elsewhere.test' }, { preference: 20, exchange: 'backup.mine.test' }] },
    'primary.elsewhere.test': { A: ['192.0.2.80'] },
    'backup.mine.test': { A: ['127.0.0.1'] },
    'primary.test': { MX: [{ preference: 10, exchange: 'backup.mine.test' }] },
    'notus.test': { MX: [{ preference: 10, exchange: 'primary.elsewhere.test' }] },
    'mxfail.test': 'SERVFAIL',
  });
  resolver = new Resolver({ timeout: 300, tries: 1 });
  resolver.setServers([`127.0.0.1:${dns.port}`]);
});
after(async () => {
  await dns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const BASE = (d: string) => `myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = mx.example.test, localhost
inet_interfaces = loopback-only
mynetworks = 127.0.0.1/32
virtual_mailbox_domains = myoffice.space
virtual_mailbox_maps = texthash:${d}/vmailbox
virtual_alias_domains = stud12.myoffice.space
virtual_alias_maps = texthash:${d}/virtual
relay_domains = relay.test
relay_recipient_maps = texthash:${d}/relay_rcpt
local_recipient_maps = texthash:${d}/local_rcpt
recipient_delimiter = +
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
`;

async function checker(extra = '', sharedDns = false): Promise<SmtpdCheck> {
  const cfg = MainConfig.parse(BASE(dir) + extra.replaceAll('$DIR', dir), join(dir, 'main.cf'), dir);
  return SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg), ...(sharedDns ? {} : { dns: resolver }) });
}

interface Dialogue { client?: string; name?: string; sasl?: string; helo?: string; from?: string; to?: string | string[]; pending?: boolean; ehlo?: boolean }

function fmt(v: SmtpdVerdict | undefined): string {
  if (!v) return 'OK';
  if (v.reply) return `${v.reply.code} ${v.reply.enh} ${v.reply.text}`;
  return v.action!.toUpperCase();
}

function newState(d: Dialogue): SmtpdState & { inputPending?: () => boolean } {
  const addr = d.client ?? '127.0.0.2';
  return {
    sessionId: 'T', clientAddr: addr, clientPort: 1, clientName: d.name ?? 'unknown', serverAddr: '127.0.0.1',
    serverPort: 25, service: 'smtp', protocol: d.ehlo === false ? 'SMTP' : 'ESMTP', tls: false,
    saslUsername: d.sasl, errorCount: 0, junkCount: 0, messages: 0,
    inputPending: () => d.pending ?? false,
  };
}

/** Run the stages as smtpd-session does; returns the first non-OK verdict, with its stage. */
async function dialogue(ck: SmtpdCheck, d: Dialogue): Promise<string> {
  const s = newState(d);
  let v = await ck.connect(s);
  if (v) return `connect: ${fmt(v)}`;
  if (d.helo !== undefined) {
    s.helo = d.helo;
    v = await ck.helo(s, d.helo);
    if (v) return `helo: ${fmt(v)}`;
  }
  const from = d.from ?? 'someone@example.org';
  s.tx = { sender: from, senderArg: { address: from, params: [], utf8: false } as never, recipients: [], smtputf8: false, rcptCount: 0 };
  v = await ck.mail(s, from);
  if (v) return `mail: ${fmt(v)}`;
  const out: string[] = [];
  for (const to of [d.to ?? 'info@myoffice.space'].flat()) {
    v = await ck.rcpt(s, to);
    if (v?.reply) out.push(fmt(v));
    else { s.tx.recipients.push({ address: to, orig: to, notify: 0 }); out.push(fmt(v)); }
  }
  return out.join(' | ');
}

async function table(ck: SmtpdCheck, rows: [string, Dialogue, string][]): Promise<void> {
  for (const [why, d, want] of rows) assert.equal(await dialogue(ck, d), want, why);
}

test('address classes: Postfix\'s "User unknown in ... table" texts and codes', async () => {
  const ck = await checker();
  await table(ck, [
    ['virtual mailbox user', { to: 'info@myoffice.space' }, 'OK'],
    ['unknown virtual mailbox user', { to: 'nobody@myoffice.space' }, '550 5.1.1 <nobody@myoffice.space>: Recipient address rejected: User unknown in virtual mailbox table'],
    ['virtual alias', { to: 'Sales@Stud12.MyOffice.Space' }, 'OK'],
    ['unknown virtual alias', { to: 'nobody@stud12.myoffice.space' }, '550 5.1.1 <nobody@stud12.myoffice.space>: Recipient address rejected: User unknown in virtual alias table'],
    ['relay recipient', { to: 'known@relay.test' }, 'OK'],
    ['unknown relay recipient', { to: 'who@relay.test' }, '550 5.1.1 <who@relay.test>: Recipient address rejected: User unknown in relay recipient table'],
    ['local user', { to: 'alice@mx.example.test' }, 'OK'],
    ['unknown local user', { to: 'bob@mx.example.test' }, '550 5.1.1 <bob@mx.example.test>: Recipient address rejected: User unknown in local recipient table'],
    ['postmaster is always local', { to: 'postmaster@mx.example.test' }, 'OK'],
    ['bare postmaster (RFC 5321)', { to: 'postmaster' }, 'OK'],
    ['address literal of our interface is local', { to: 'bob@[127.0.0.1]' }, '550 5.1.1 <bob@[127.0.0.1]>: Recipient address rejected: User unknown in local recipient table'],
    ['remote from outside', { to: 'x@example.com' }, '554 5.7.1 <x@example.com>: Relay access denied'],
    ['remote from mynetworks', { client: '127.0.0.1', to: 'x@example.com' }, 'OK'],
    ['remote with SASL', { sasl: 'alice', to: 'x@example.com' }, 'OK'],
  ]);
});

test('open-relay forms are never "our" destination, from a sender or the null sender; an access OK does not open a routed address', async () => {
  const ck = await checker();
  const denied = (a: string) => `554 5.7.1 <${a}>: Relay access denied`;
  const forms = [
    'user%remote.example@mx.example.test', 'user@remote.example@mx.example.test', '@mx.example.test:user@remote.example',
    'remote.example!user@mx.example.test', 'user%remote.example@myoffice.space', 'user%remote.example@relay.test',
    'remote.example!user@relay.test', 'user@remote.example@relay.test', 'user%remote.example@[127.0.0.1]',
  ];
  for (const f of forms) {
    const got = await dialogue(ck, { to: f });
    assert.equal(got, denied(f), f);
    assert.equal(await dialogue(ck, { to: f, from: '' }), denied(f), `${f} with the null sender`);
  }
  // check_recipient_access OK must not open a routed address (Postfix SUSPICIOUS()).
  const ck2 = await checker('smtpd_recipient_restrictions = check_recipient_access texthash:$DIR/access_rcpt, reject_unauth_destination\nsmtpd_relay_restrictions =\n');
  assert.equal(await dialogue(ck2, { to: 'open@example.com' }), 'OK', 'plain OK relays');
  assert.equal(await dialogue(ck2, { to: 'x@route.test@relay.test' }), denied('x@route.test@relay.test'));
});

test('access(5) results: REJECT, NNN text, DUNNO, OK, DEFER_IF_PERMIT, WARN, HOLD, DISCARD, restriction names', async () => {
  const ck = await checker(`smtpd_sender_restrictions = check_sender_access texthash:$DIR/access_sender
smtpd_restriction_classes = myclass
myclass = reject
`);
  logs.length = 0;
  await table(ck, [
    ['REJECT: generic text at RCPT (delay_reject)', { from: 'spammer@example.org' }, '554 5.7.1 <spammer@example.org>: Sender address rejected: Access denied'],
    ['domain key, explicit code and DSN', { from: 'x@example.net' }, '554 5.7.1 <x@example.net>: Sender address rejected: no mail from example.net'],
    ['parent domain key (parent style)', { from: 'x@a.parent.test' }, '554 5.7.1 <x@a.parent.test>: Sender address rejected: parent'],
    ['most specific domain first', { from: 'x@sub.parent.test' }, '554 5.7.1 <x@sub.parent.test>: Sender address rejected: sub'],
    ['null sender key <>', { from: '' }, '554 5.7.1 <>: Sender address rejected: no bounces'],
    ['4NN text', { from: 'tmp@example.org' }, '451 4.7.1 <tmp@example.org>: Sender address rejected: try later'],
    ['DEFER_IF_PERMIT: a later permit becomes 450', { from: 'dip@example.org' }, '450 4.7.1 <dip@example.org>: Sender address rejected: please wait'],
    ['WARN only logs', { from: 'warn@example.org' }, 'OK'],
    ['OK ends only the sender list: an unlisted recipient is still refused (as Postfix 3.7)', { from: 'allow@example.org', to: 'nobody@myoffice.space' }, '550 5.1.1 <nobody@myoffice.space>: Recipient address rejected: User unknown in virtual mailbox table'],
    ['full address with extension', { from: 'user+tag@example.com' }, '554 5.7.1 <user+tag@example.com>: Sender address rejected: tagged'],
    ['address without extension', { from: 'plain+x@example.com' }, '554 5.7.1 <plain+x@example.com>: Sender address rejected: plain'],
    ['user@ key', { from: 'local@anywhere.test' }, '554 5.7.1 <local@anywhere.test>: Sender address rejected: by localpart'],
    ['restriction name as result', { from: 'restr@example.org', to: 'x@example.com' }, '554 5.7.1 <x@example.com>: Relay access denied'],
    ['restriction class as result', { from: 'cls@example.org' }, '554 5.7.1 <cls@example.org>: Sender address rejected: Access denied'],
    ['all digits = OK', { from: 'digits@example.org' }, 'OK'],
    ['lookup table in a value: configuration error', { from: 'table@example.org' }, '451 4.3.5 Server configuration error'],
    ['unknown restriction in a value', { from: 'unk@example.org' }, '451 4.3.5 Server configuration error'],
    ['DSN of a recipient code fixed for a sender (measured on Postfix 3.7)', { from: 'x@dsn.test' }, '554 5.1.7 <x@dsn.test>: Sender address rejected: bad mailbox'],
    ['DISCARD', { from: 'discard@example.org', to: ['x@example.com', 'nobody@myoffice.space'] }, 'DISCARD | OK'],
  ]);
  assert.ok(logs.some((l) => l.includes('warn: RCPT from unknown[127.0.0.2]: watch this; from=<warn@example.org>')), logs.join('\n'));
  assert.ok(logs.some((l) => l.includes('warning: unknown smtpd restriction: "no_such_restriction"')));
  assert.ok(logs.some((l) => l.includes('warning: access table texthash:') && l.includes('has entry with lookup table')));
});

test('client and HELO access: address, net prefixes, names, parent domains', async () => {
  const ck = await checker(`smtpd_client_restrictions = check_client_access texthash:$DIR/access_client
smtpd_helo_restrictions = check_helo_access texthash:$DIR/access_helo
`);
  await table(ck, [
    ['client address', { client: '127.0.0.3' }, '554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: Access denied'],
    ['client NNN d.d.d text', { client: '127.0.0.4' }, '550 5.7.2 <unknown[127.0.0.4]>: Client host rejected: go away'],
    ['network prefix 10.1', { client: '10.1.2.3' }, '554 5.7.1 <unknown[10.1.2.3]>: Client host rejected: whole net'],
    ['HELO name', { helo: 'bad.helo.test' }, '554 5.7.1 <bad.helo.test>: Helo command rejected: bad helo'],
    ['HELO parent domain', { helo: 'a.b.evil.test' }, '554 5.7.1 <a.b.evil.test>: Helo command rejected: Access denied'],
    ['HELO HOLD', { helo: 'holdme.test' }, 'HOLD'],
    ['clean', { helo: 'fine.test', client: '127.0.0.9' }, 'OK'],
  ]);
  assert.deepEqual(clientKeys('mail.example.com', '10.1.2.3', true).map((k) => k.key),
    ['mail.example.com', 'example.com', 'com', '10.1.2.3', '10.1.2', '10.1', '10']);
  assert.deepEqual(domainKeys('a.example.com', false).map((k) => k.key), ['a.example.com', '.example.com', '.com']);
  assert.deepEqual(mailKeys('User+Ext@Sub.Example.COM', '+', true).map((k) => k.key),
    ['user+ext@sub.example.com', 'user@sub.example.com', 'sub.example.com', 'example.com', 'com', 'user+ext@', 'user@']);
  assert.deepEqual(parseAccessValue('REJECT 5.7.3 go away'), { kind: 'reject', dsn: '5.7.3', text: 'go away' });
  assert.deepEqual(parseAccessValue('450'), { kind: 'ok' }, 'all digits: OK (time stamp)');
});

test('smtpd_delay_reject = no rejects at the command itself', async () => {
  const ck = await checker(`smtpd_delay_reject = no
smtpd_client_restrictions = check_client_access texthash:$DIR/access_client
smtpd_helo_restrictions = check_helo_access texthash:$DIR/access_helo
smtpd_sender_restrictions = check_sender_access texthash:$DIR/access_sender
`);
  await table(ck, [
    ['client at connect', { client: '127.0.0.3' }, 'connect: 554 5.7.1 <unknown[127.0.0.3]>: Client host rejected: Access denied'],
    ['helo at HELO', { helo: 'bad.helo.test' }, 'helo: 554 5.7.1 <bad.helo.test>: Helo command rejected: bad helo'],
    ['sender at MAIL', { from: 'spammer@example.org' }, 'mail: 554 5.7.1 <spammer@example.org>: Sender address rejected: Access denied'],
    ['HOLD outside a transaction is skipped', { helo: 'holdme.test' }, 'OK'],
  ]);
});

test('generic restrictions, warn_if_reject, defer_if_reject, relay list order', async () => {
  const mk = (rcpt: string, extra = '') => checker(`smtpd_recipient_restrictions = ${rcpt}\n${extra}`);
  await table(await mk('reject'), [['reject', {}, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied']]);
  await table(await mk('defer'), [['defer', {}, '450 4.3.2 <info@myoffice.space>: Recipient address rejected: Try again later']]);
  await table(await mk('permit, reject'), [['permit stops the list', {}, 'OK']]);
  await table(await mk('warn_if_reject reject, permit'), [['warn_if_reject only logs', {}, 'OK']]);
  await table(await mk('defer_if_permit, permit'), [['defer_if_permit', {}, '450 4.7.0 <info@myoffice.space>: Recipient address rejected: defer_if_permit requested']]);
  await table(await mk('defer_if_reject, reject'), [['defer_if_reject', {}, '450 4.7.0 <info@myoffice.space>: Recipient address rejected: defer_if_reject requested']]);
  await table(await mk('permit', 'smtpd_relay_restrictions = reject\n'), [['relay rejects before recipient permits', {}, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied']]);
  await table(await mk('bogus_restriction'), [['unknown name', {}, '451 4.3.5 Server configuration error']]);
  await table(await mk('check_recipient_access'), [['check_*_access without table', {}, '451 4.3.5 Server configuration error']]);
  await table(await mk('check_etrn_access'), [['check_etrn_access without a table', {}, '451 4.3.5 Server configuration error']]);
  await table(await mk('reject_unverified_recipient'), [['verify service failure: defer, never permit', {}, '450 4.3.0 <info@myoffice.space>: Recipient address rejected: address verification problem']]);
  // Not as Postfix 3.7 (measured): it skips reject_rbl_client without a domain and goes on with
  // the list (a client in mynetworks got 250). This row asserts what Postern answers today.
  await table(await mk('reject_rbl_client'), [['reject_rbl_client without a domain', {}, '451 4.3.5 Server configuration error']]);
  await table(await mk('permit', 'soft_bounce = yes\nsmtpd_relay_restrictions = reject_unauth_destination\n'), [['soft_bounce', { to: 'x@example.com' }, '454 4.7.1 <x@example.com>: Relay access denied']]);
  await table(await mk('permit', 'smtpd_relay_restrictions = defer_unauth_destination\n'), [['defer_unauth_destination', { to: 'x@example.com' }, '454 4.7.1 <x@example.com>: Relay access denied']]);
  await table(await mk('permit', 'smtpd_reject_unlisted_recipient = no\n'), [['unlisted check off', { to: 'nobody@myoffice.space' }, 'OK']]);
  await table(await mk('reject_unlisted_sender, permit'), [['reject_unlisted_sender', { from: 'nobody@myoffice.space' }, '550 5.1.0 <nobody@myoffice.space>: Sender address rejected: User unknown in virtual mailbox table']]);
  await table(await mk('reject_multi_recipient_bounce, permit'), [['multi-recipient bounce', { from: '', to: ['info@myoffice.space', 'sales@myoffice.space'] }, 'OK | 550 5.5.3 <sales@myoffice.space>: Recipient address rejected: Multi-recipient bounce']]);
  await assert.rejects(checker('smtpd_relay_restrictions = permit_mynetworks\nsmtpd_recipient_restrictions = permit_mynetworks\n'),
    /main\.cf, line \d+: in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains/);
  await assert.rejects(checker('smtpd_restriction_classes = nodef\n'), /restriction class `nodef' needs a definition/);
  await assert.rejects(checker('mynetworks = 10.0.0.0/99\n'), /main\.cf: mynetworks: bad net\/mask pattern: "10.0.0.0\/99"/);
});

test('syntax: non-FQDN, invalid HELO, address literals, bad addresses', async () => {
  const ck = await checker(`smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname
smtpd_sender_restrictions = reject_non_fqdn_sender
smtpd_recipient_restrictions = reject_non_fqdn_recipient
`);
  await table(ck, [
    ['invalid HELO', { helo: 'bad_host!' }, '501 5.5.2 <bad_host!>: Helo command rejected: Invalid name'],
    ['non-FQDN HELO', { helo: 'localhostonly' }, '504 5.5.2 <localhostonly>: Helo command rejected: need fully-qualified hostname'],
    ['bad address literal HELO', { helo: '[1.2.3]' }, '501 5.5.2 <[1.2.3]>: Helo command rejected: invalid ip address'],
    ['good literal HELO', { helo: '[192.0.2.1]' }, 'OK'],
    ['non-FQDN sender', { helo: 'ok.test', from: 'joe@host' }, '504 5.5.2 <joe@host>: Sender address rejected: need fully-qualified address'],
    ['non-FQDN recipient', { helo: 'ok.test', to: 'joe@host' }, '504 5.5.2 <joe@host>: Recipient address rejected: need fully-qualified address'],
    ['bad recipient syntax', { helo: 'ok.test', to: 'joe@exa mple.com' }, '501 5.1.3 Bad recipient address syntax'],
    ['bad sender syntax', { helo: 'ok.test', from: 'joe@[999.1.1.1]' }, 'mail: 501 5.1.7 Bad sender address syntax'],
    ['hostile: 5000-octet recipient', { helo: 'ok.test', to: `${'a'.repeat(5000)}@myoffice.space` }, '501 5.1.3 Bad recipient address syntax'],
    ['hostile: NUL in recipient', { helo: 'ok.test', to: 'a\0b@myoffice.space' }, '501 5.1.3 Bad recipient address syntax'],
    ['hostile: CR LF in sender', { helo: 'ok.test', from: 'a\r\nRCPT TO:<x@y>@example.org' }, 'mail: 501 5.1.7 Bad sender address syntax'],
    ['non-ASCII domain without SMTPUTF8', { helo: 'ok.test', to: 'a@exämple.test' }, '501 5.1.3 Bad recipient address syntax'],
  ]);
});

test('DNS restrictions through the loopback test server', async () => {
  const ck = await checker(`smtpd_helo_restrictions = reject_unknown_helo_hostname
smtpd_sender_restrictions = reject_unknown_sender_domain
smtpd_recipient_restrictions = reject_unknown_recipient_domain, permit
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
`);
  const me = '127.0.0.1';
  await table(ck, [
    ['all found', { client: me, helo: 'good.helo.test', from: 'a@exists.test', to: 'b@mxonly.test' }, 'OK'],
    ['HELO not found', { client: me, helo: 'nx.helo.test', from: 'a@exists.test' }, '450 4.7.1 <nx.helo.test>: Helo command rejected: Host not found'],
    ['sender domain not found', { client: me, helo: 'good.helo.test', from: 'a@nx.test' }, '450 4.1.8 <a@nx.test>: Sender address rejected: Domain not found'],
    ['recipient domain not found', { client: me, helo: 'good.helo.test', from: 'a@exists.test', to: 'b@nx.test' }, '450 4.1.2 <b@nx.test>: Recipient address rejected: Domain not found'],
    ['null MX recipient', { client: me, helo: 'good.helo.test', from: 'a@exists.test', to: 'b@nullmx.test' }, '556 5.1.10 <b@nullmx.test>: Recipient address rejected: Domain nullmx.test does not accept mail (nullMX)'],
    ['SERVFAIL: defer_if_permit', { client: me, helo: 'good.helo.test', from: 'a@exists.test', to: 'b@servfail.test' }, '450 4.1.2 <b@servfail.test>: Recipient address rejected: Domain not found'],
    ['our own domains are not looked up', { client: me, helo: 'good.helo.test', from: 'a@exists.test', to: 'info@myoffice.space' }, 'OK'],
  ]);
  assert.ok(!dns.queries.some((q) => q.startsWith('myoffice.space')), 'no DNS for a virtual domain');
  // The default resolver is the shared one (src/util/dns-resolver.ts), from postern_dns_servers.
  const shared = await checker(`postern_dns_servers = 127.0.0.1:${dns.port}
smtpd_recipient_restrictions = reject_unknown_recipient_domain, permit
`, true);
  assert.equal(await dialogue(shared, { client: me, to: 'b@viashared.test' }), '450 4.1.2 <b@viashared.test>: Recipient address rejected: Domain not found');
  assert.equal(await dialogue(shared, { client: me, to: 'b@servfail.test' }), '450 4.1.2 <b@servfail.test>: Recipient address rejected: Domain not found');
  assert.equal(await dialogue(shared, { client: me, to: 'b@mxonly.test' }), 'OK');
  assert.ok(dns.queries.includes('viashared.test MX'), dns.queries.join(', '));
  await assert.rejects(checker('postern_dns_servers = not-an-address\n', true), /main\.cf, line \d+: postern_dns_servers: "not-an-address"/);
});

test('sender login maps: reject_sender_login_mismatch and its halves', async () => {
  const ck = await checker(`smtpd_sender_login_maps = texthash:$DIR/login
smtpd_sender_restrictions = reject_sender_login_mismatch
`);
  await table(ck, [
    ['owner', { sasl: 'alice', from: 'alice@example.test' }, 'OK'],
    ['second owner, case-insensitive', { sasl: 'BOB', from: 'alice@example.test' }, 'OK'],
    ['not the owner', { sasl: 'carol', from: 'alice@example.test' }, '553 5.7.1 <alice@example.test>: Sender address rejected: not owned by user carol'],
    ['unlisted sender with AUTH', { sasl: 'carol', from: 'other@example.test' }, '553 5.7.1 <other@example.test>: Sender address rejected: not owned by user carol'],
    ['owned sender without AUTH', { from: 'alice@example.test' }, '553 5.7.1 <alice@example.test>: Sender address rejected: not logged in'],
    ['unowned sender without AUTH', { from: 'nobody@example.org' }, 'OK'],
  ]);
  const known = await checker(`smtpd_sender_login_maps = texthash:$DIR/login
smtpd_sender_restrictions = reject_known_sender_login_mismatch
`);
  await table(known, [['known: unlisted sender is fine', { sasl: 'carol', from: 'other@example.test' }, 'OK']]);
});

test('reject_unauth_pipelining uses the session\'s inputPending() hook', async () => {
  const ck = await checker('smtpd_data_restrictions = reject_unauth_pipelining\nsmtpd_helo_restrictions = reject_unauth_pipelining\nsmtpd_delay_reject = no\n');
  const s = newState({ pending: true, ehlo: false });
  s.helo = 'c.test';
  assert.equal(fmt(await ck.helo(s, 'c.test')), '503 5.5.0 <c.test>: Helo command rejected: Improper use of SMTP command pipelining');
  const e = newState({ pending: true });
  e.tx = { sender: 'a@b.test', senderArg: {} as never, recipients: [{ address: 'info@myoffice.space', orig: '', notify: 0 }], smtputf8: false, rcptCount: 1 };
  assert.equal(fmt(await ck.data(e)), '503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining');
  assert.equal(fmt(await ck.data(newState({ pending: false }))), 'OK');
});

test('a broken table defers (451), never accepts or bounces', async () => {
  const ck = await checker(`smtpd_recipient_restrictions = check_recipient_access texthash:$DIR/missing-table
virtual_mailbox_maps = texthash:$DIR/missing-vmailbox
`);
  const got = await dialogue(ck, { to: 'info@myoffice.space' });
  assert.match(got, /^451 4\.3\.[05] /, got);
  const ck2 = await checker('smtpd_recipient_restrictions = permit\nvirtual_mailbox_maps = texthash:$DIR/missing-vmailbox\n');
  assert.match(await dialogue(ck2, { to: 'info@myoffice.space' }), /^451 4\.3\.[05] /);
});

test('DNS lists through the loopback DNS server: reject_maps_rbl, permit_dnswl_client, permit_rhswl_client', async () => {
  const mk = (rcpt: string, extra = '') => checker(`smtpd_recipient_restrictions = ${rcpt}\n${extra}`);
  // reject_maps_rbl: reject_rbl_client for each of maps_rbl_domains, in order.
  await table(await mk('reject_maps_rbl, permit', 'maps_rbl_domains = none.test, rbl2.test, rbl.test\n'), [
    ['listed', {}, '554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using rbl2.test; second list'],
    ['not listed', { client: '127.0.0.3' }, 'OK'],
  ]);
  await table(await mk('reject_maps_rbl, permit'), [['maps_rbl_domains empty', {}, 'OK']]);
  await table(await mk('permit_dnswl_client wl.test, reject'), [
    ['allowed', {}, 'OK'],
    ['not listed', { client: '127.0.0.3' }, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied'],
    ['DNS failure: the reject becomes defer_if_reject', { client: '127.0.0.6' }, '450 4.7.1 <127.0.0.6>: Client host rejected: Service unavailable'],
  ]);
  await table(await mk('permit_dnswl_client wl.test=127.0.5.[2..9], reject'), [['reply filter', {}, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied']]);
  // Never an open relay: an allow-listed client still cannot relay.
  await table(await mk('permit', 'smtpd_relay_restrictions = permit_dnswl_client wl.test, reject_unauth_destination\n'), [
    ['allowed client, our domain', {}, 'OK'],
    ['allowed client, someone else\'s domain', { to: 'x@example.com' }, '554 5.7.1 <x@example.com>: Relay access denied'],
  ]);
  await table(await mk('permit_rhswl_client rhswl.test, reject'), [
    ['allowed name', { name: 'good.client.test', client: '127.0.0.3' }, 'OK'],
    ['unknown name', { client: '127.0.0.3' }, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied'],
  ]);
});

test('obsolete restrictions: permit_naked_ip_address, check_relay_domains', async () => {
  const mk = (rcpt: string, extra = '') => checker(`smtpd_recipient_restrictions = ${rcpt}\n${extra}`);
  await table(await mk('permit_naked_ip_address, reject'), [
    ['bare IPv4 HELO', { helo: '192.0.2.7' }, 'OK'],
    ['a name', { helo: 'host.example.org' }, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied'],
    ['bracketed', { helo: '[192.0.2.7]' }, '554 5.7.1 <info@myoffice.space>: Recipient address rejected: Access denied'],
    ['invalid address', { helo: '300.1.1.1' }, '501 5.5.2 <300.1.1.1>: Helo command rejected: invalid ip address'],
  ]);
  await table(await mk('permit', 'smtpd_relay_restrictions = check_relay_domains\n'), [
    ['our domain', {}, 'OK'],
    ['relay domain', { to: 'known@relay.test' }, 'OK'],
    ['elsewhere', { to: 'x@example.com' }, '554 5.7.1 <x@example.com>: Recipient address rejected: Relay access denied'],
    ['a client named in relay_domains', { name: 'mail.relay.test', to: 'x@example.com' }, 'OK'],
  ]);
});

test('check_*_mx_access and check_*_a_access: the servers of a name and their addresses in an access table', async () => {
  const mk = (rcpt: string) => checker(`smtpd_recipient_restrictions = ${rcpt}\n`);
  await table(await mk('check_sender_mx_access texthash:$DIR/access_server, permit'), [
    ['an MX host in a listed parent domain', { from: 'a@mxhost.test' }, '554 5.7.1 <a@mxhost.test>: Sender address rejected: bad mx'],
    ['no MX: the domain is its own server, its address is listed', { from: 'a@nomx.test' }, '554 5.7.1 <a@nomx.test>: Sender address rejected: bad address'],
    ['MX host and address not listed', { from: 'a@goodmx.test' }, 'OK'],
    ['a domain the DNS does not know', { from: 'a@nowhere.test' }, 'OK'],
    ['the null sender', { from: '' }, 'OK'],
  ]);
  await table(await mk('check_sender_a_access texthash:$DIR/access_server, permit'), [
    ['the domain\'s own address is listed', { from: 'a@nomx.test' }, '554 5.7.1 <a@nomx.test>: Sender address rejected: bad address'],
    ['A lookups do not look at MX hosts', { from: 'a@mxhost.test' }, 'OK'],
  ]);
  await table(await mk('check_helo_mx_access texthash:$DIR/access_server, permit'), [
    ['HELO name', { helo: 'mxhost.test' }, '554 5.7.1 <mxhost.test>: Helo command rejected: bad mx'],
    ['address literal', { helo: '[192.0.2.77]' }, 'OK'],
  ]);
  await table(await mk('check_recipient_mx_access texthash:$DIR/access_server, permit'), [
    ['recipient domain', { to: 'x@mxhost.test', client: '127.0.0.1' }, '554 5.7.1 <x@mxhost.test>: Recipient address rejected: bad mx'],
  ]);
  await table(await mk('check_sender_ns_access texthash:$DIR/access_server, permit'), [
    ['a name server in a listed domain', { from: 'a@nsbad.test' }, '554 5.7.1 <a@nsbad.test>: Sender address rejected: bad mx'],
    ['no NS: the parent domain\'s name servers', { from: 'a@host.nsbad.test' }, '554 5.7.1 <a@host.nsbad.test>: Sender address rejected: bad mx'],
    ['a name server not listed', { from: 'a@goodmx.test' }, 'OK'],
  ]);
});

test('permit_mx_backup: mail for domains this host is a backup MX of (not a primary), permit_mx_backup_networks', async () => {
  const mk = (extra = '') => checker(`smtpd_relay_restrictions = permit_mx_backup, reject_unauth_destination\nsmtpd_recipient_restrictions = permit\n${extra}`);
  await table(await mk(), [
    ['we are a backup MX', { to: 'x@backup.test' }, 'OK'],
    ['we are the primary MX', { to: 'x@primary.test' }, '554 5.7.1 <x@primary.test>: Relay access denied'],
    ['we are not an MX', { to: 'x@notus.test' }, '554 5.7.1 <x@notus.test>: Relay access denied'],
    ['our own domains', { to: 'info@myoffice.space' }, 'OK'],
    ['routed form', { to: 'x%y@backup.test' }, '554 5.7.1 <x%y@backup.test>: Relay access denied'],
    ['DNS failure: the rejection is deferred', { to: 'x@mxfail.test' }, '450 4.4.4 <x@mxfail.test>: Recipient address rejected: Unable to look up mail exchanger information: Host not found, try again'],
  ]);
  await table(await mk('permit_mx_backup_networks = 192.0.2.0/24\n'), [['primary in the networks', { to: 'x@backup.test' }, 'OK']]);
  await table(await mk('permit_mx_backup_networks = 198.51.100.0/24\n'), [['primary outside the networks', { to: 'x@backup.test' }, '554 5.7.1 <x@backup.test>: Relay access denied']]);
});
