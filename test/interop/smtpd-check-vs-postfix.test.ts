/**
 * smtpd access decisions, compared with real Postfix 3.7: the same main.cf lines (the seed's
 * virtual mailbox and alias domains, relay_domains with relay_recipient_maps, access(5) tables
 * in texthash: form, mynetworks without 127.0.0.2), the same SMTP scripts from several client
 * addresses (the client socket is bound to 127.0.0.2/.3/.4 to be "outside mynetworks"), and
 * every reply must be identical. One real Postfix instance serves all listeners (master.cf -o
 * overrides); AUTH cases run against Postern only (the private Postfix has no SASL).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { directoryAuth } from '../../src/smtpd/smtpd-sasl.ts';
import { SmtpdCheck } from '../../src/smtpd/smtpd-check.ts';
import { TrivialRewrite } from '../../src/trivial-rewrite/trivial-rewrite.ts';
import { setLogSink } from '../../src/util/msg.ts';
import type { UserDirectory } from '../../src/lib-auth/user-directory.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable();

const FILES: Record<string, string> = {
  vmailbox: 'info@myoffice.space myoffice.space/info\nsales@myoffice.space myoffice.space/sales/\n',
  virtual: 'postmaster@stud12.myoffice.space postmaster\ninfo@stud12.myoffice.space joe\nsales@stud12.myoffice.space jane\n',
  relay_rcpt: 'known@relay.test x\n',
  local_rcpt: 'alice x\n',
  access_client: '127.0.0.3 REJECT\n127.0.0.4 550 5.7.2 go away\n',
  access_helo: 'bad.helo.test REJECT bad helo\nevil.test REJECT\nholdme.test HOLD\n',
  access_sender: [
    'spammer@example.org REJECT', 'example.net 554 5.7.1 no mail from example.net',
    'tmp@example.org 451 4.7.1 try later', 'dip@example.org DEFER_IF_PERMIT please wait',
    'warn@example.org WARN watch this', 'allow@example.org OK', 'user+tag@example.com REJECT tagged',
    'plain@example.com REJECT plain', 'local@ REJECT by localpart', 'restr@example.org reject_unauth_destination',
    'cls@example.org myclass', 'digits@example.org 12345', 'discard@example.org DISCARD',
    'unk@example.org no_such_restriction', 'sub.parent.test REJECT sub', 'parent.test REJECT parent',
    'x@dsn.test REJECT 5.1.1 bad mailbox', 'hold@example.org HOLD',
  ].join('\n') + '\n',
  access_rcpt: 'blocked@myoffice.space REJECT\nroute.test OK\n',
  access_etrn: 'blocked.test REJECT no flush for you\nsub.relay.test 450 4.7.1 later\n',
  login: 'alice@example.test alice\ncarol@example.test carol\n',
};

let dir = '';
let pf: RealPostfix | undefined;
const servers: Server[] = [];
const sockets = new Set<Socket>();
const pfPorts: Record<string, number> = {};
const ourPorts: Record<string, number> = {};
let qdir = '';

const shared = (d: string) => `myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = mx.example.test, localhost
mynetworks = 127.0.0.1/32
virtual_mailbox_domains = myoffice.space
virtual_mailbox_maps = texthash:${d}/vmailbox
virtual_alias_domains = stud12.myoffice.space
virtual_alias_maps = texthash:${d}/virtual
relay_domains = relay.test
relay_recipient_maps = texthash:${d}/relay_rcpt
local_recipient_maps = texthash:${d}/local_rcpt
recipient_delimiter = +
smtpd_client_restrictions = check_client_access texthash:${d}/access_client
smtpd_helo_restrictions = check_helo_access texthash:${d}/access_helo
smtpd_sender_restrictions = check_sender_access texthash:${d}/access_sender
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = check_recipient_access texthash:${d}/access_rcpt
smtpd_restriction_classes = myclass
myclass = reject
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_discard_ehlo_keywords = etrn
`;

/** Listeners: name → master.cf -o overrides (the same on both servers). */
const LISTENERS: Record<string, Record<string, string>> = {
  main: {},
  nodelay: { smtpd_delay_reject: 'no' },
  data: {
    smtpd_sender_restrictions: '',
    smtpd_data_restrictions: 'reject_multi_recipient_bounce',
    smtpd_end_of_data_restrictions: `check_sender_access,texthash:DIR/access_sender`,
  },
  syntax: {
    smtpd_helo_restrictions: 'reject_invalid_helo_hostname,reject_non_fqdn_helo_hostname',
    smtpd_sender_restrictions: 'reject_non_fqdn_sender',
    smtpd_recipient_restrictions: 'reject_non_fqdn_recipient',
  },
  defer: { smtpd_relay_restrictions: 'permit_mynetworks,defer_unauth_destination', smtpd_sender_restrictions: '', smtpd_reject_unlisted_sender: 'yes' },
  // Obsolete restrictions Postfix still accepts (with a deprecation warning).
  relaydomains: { smtpd_relay_restrictions: 'check_relay_domains', smtpd_sender_restrictions: '' },
  etrn: { smtpd_etrn_restrictions: 'check_etrn_access,texthash:DIR/access_etrn' },
  naked: { smtpd_helo_restrictions: '', smtpd_sender_restrictions: '', smtpd_recipient_restrictions: 'permit_naked_ip_address,reject' },
};

const fakeDir: UserDirectory = {
  async lookup() { return undefined; },
  async verifyPlain(u, p) { return ['alice', 'carol'].includes(u) && p === 'pw' ? { result: 'ok', user: u } : { result: 'mismatch' }; },
  async *iterate() { /* none */ },
  async close() {},
};

async function startOurs(name: string, o: Record<string, string>, extra = ''): Promise<number> {
  const base = MainConfig.parse(`${shared(dir)}inet_interfaces = loopback-only\ncompatibility_level = 3.6\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\nqueue_directory = ${qdir}\n${extra}`, join(dir, 'main.cf'), dir);
  const cfg = base.withOverrides(Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v.replaceAll('DIR', dir)])));
  const policy = await SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg) });
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy, service: name, auth: directoryAuth(fakeDir) });
  const server = createServer((s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); smtpd.handle(s); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return (server.address() as { port: number }).port;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-checkpf-'));
  chmodSync(dir, 0o755);
  for (const [f, t] of Object.entries(FILES)) { writeFileSync(join(dir, f), t); chmodSync(join(dir, f), 0o644); }
  qdir = join(dir, 'queue');
  let master = '';
  for (const [name, o] of Object.entries(LISTENERS)) {
    pfPorts[name] = await freePort();
    const opts = Object.entries(o).map(([k, v]) => ` -o ${k}=${v.replaceAll('DIR', dir)}`).join('');
    master += `127.0.0.1:${pfPorts[name]} inet n - n - - smtpd${opts}\n`;
  }
  pf = await RealPostfix.start({ mainCf: shared(dir), masterCf: master });
  for (const [name, o] of Object.entries(LISTENERS)) ourPorts[name] = await startOurs(name, o);
  ourPorts.sasl = await startOurs('sasl', {}, 'smtpd_sasl_auth_enable = yes\nsmtpd_sender_login_maps = texthash:' + dir + '/login\nsmtpd_sender_restrictions = reject_sender_login_mismatch\n');
});
after(async () => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
  await pf?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A raw SMTP conversation from a chosen local address (127.0.0.x: outside mynetworks). */
async function transcript(port: number, from: string, lines: string[]): Promise<string[]> {
  const sock = await new Promise<Socket>((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', localAddress: from }, () => resolve(s));
    s.once('error', reject);
  });
  sock.setEncoding('latin1');
  let buf = '';
  let closed = false;
  const waiters: (() => void)[] = [];
  sock.on('data', (d: string) => { buf += d; for (const w of waiters.splice(0)) w(); });
  sock.on('close', () => { closed = true; for (const w of waiters.splice(0)) w(); });
  const reply = async (): Promise<string> => {
    const deadline = Date.now() + 4000;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\n/.exec(buf);
      if (m) { buf = buf.slice(m[0].length); return m[0].replace(/\r\n/g, '\n').trimEnd().replace(/queued as [0-9A-Za-z]+/, 'queued as QID'); }
      if (closed) return '(closed)';
      if (Date.now() > deadline) return '(timeout)';
      await new Promise<void>((r) => { const t = setTimeout(r, 100); waiters.push(() => { clearTimeout(t); r(); }); });
    }
  };
  const out = [await reply()];
  for (const l of lines) {
    sock.write(l.endsWith('\n') ? l.replace(/\n/g, '\r\n') : `${l}\r\n`);
    out.push(`${l.split('\n')[0]!.slice(0, 60)} → ${await reply()}`);
  }
  sock.destroy();
  return out;
}

async function compare(listener: string, from: string, lines: string[]): Promise<string[]> {
  const theirs = await transcript(pfPorts[listener]!, from, lines);
  const ours = await transcript(ourPorts[listener]!, from, lines);
  assert.deepEqual(ours, theirs, `${listener} from ${from}: Postern (actual) vs Postfix (expected)`);
  return ours;
}

const rcpts = (xs: string[]) => xs.map((x) => `RCPT TO:<${x}>`);

test('recipient validation per address class, as Postfix, from outside and inside mynetworks', { skip }, async () => {
  const script = ['EHLO client.example.org', 'MAIL FROM:<a@example.org>', ...rcpts([
    'info@myoffice.space', 'nobody@myoffice.space', 'Sales@Stud12.myoffice.space', 'nobody@stud12.myoffice.space',
    'known@relay.test', 'who@relay.test', 'alice@mx.example.test', 'bob@mx.example.test', 'postmaster@mx.example.test',
    'postmaster', 'bob@[127.0.0.1]', 'x@example.com', 'blocked@myoffice.space', 'alice+ext@mx.example.test',
  ]), 'QUIT'];
  const out = await compare('main', '127.0.0.2', script);
  assert.ok(out.some((l) => l.includes('550 5.1.1 <nobody@myoffice.space>: Recipient address rejected: User unknown in virtual mailbox table')), out.join('\n'));
  assert.ok(out.some((l) => l.includes('554 5.7.1 <x@example.com>: Relay access denied')));
  await compare('main', '127.0.0.1', script);
});

test('open-relay forms are refused exactly as Postfix refuses them', { skip }, async () => {
  const forms = [
    'user%remote.example@mx.example.test', '"user@remote.example"@mx.example.test', '@mx.example.test:user@remote.example',
    '@a.example,@b.example:user@remote.example', 'remote.example!user@mx.example.test',
    'user%remote.example@myoffice.space', '"user@remote.example"@myoffice.space', 'user%remote.example@relay.test',
    '"user@remote.example"@relay.test', 'remote.example!user@relay.test', 'user%remote.example@[127.0.0.1]',
    'user@[192.0.2.1]', 'x%route.test@mx.example.test', 'user%remote.example@stud12.myoffice.space',
  ];
  const out = await compare('main', '127.0.0.2', ['EHLO c.example.org', 'MAIL FROM:<a@example.org>', ...rcpts(forms), 'RSET', 'MAIL FROM:<>', ...rcpts(forms), 'QUIT']);
  for (const l of out) assert.doesNotMatch(l, /^RCPT.*→ 250/, `accepted for relay: ${l}`);
});

test('access(5) tables: sender, client, HELO results and key order, as Postfix', { skip }, async () => {
  const senders = ['spammer@example.org', 'x@example.net', 'x@a.parent.test', 'x@sub.parent.test', 'tmp@example.org',
    'dip@example.org', 'warn@example.org', 'allow@example.org', 'user+tag@example.com', 'plain+x@example.com',
    'local@anywhere.test', 'restr@example.org', 'cls@example.org', 'digits@example.org', 'unk@example.org',
    'x@dsn.test', 'discard@example.org', 'hold@example.org', 'SPAMMER@EXAMPLE.ORG'];
  const lines = ['EHLO c.example.org'];
  for (const s of senders) lines.push(`MAIL FROM:<${s}>`, 'RCPT TO:<info@myoffice.space>', 'RCPT TO:<x@example.com>', 'RSET');
  lines.push('QUIT');
  await compare('main', '127.0.0.2', lines);
  const probe = ['EHLO c.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<info@myoffice.space>', 'QUIT'];
  await compare('main', '127.0.0.3', probe);
  await compare('main', '127.0.0.4', probe);
  for (const h of ['bad.helo.test', 'a.b.evil.test', 'holdme.test', 'fine.test']) {
    await compare('main', '127.0.0.2', [`HELO ${h}`, 'MAIL FROM:<a@example.org>', 'RCPT TO:<info@myoffice.space>', 'QUIT']);
  }
});

test('smtpd_delay_reject = no: HELO and MAIL are refused at the command', { skip }, async () => {
  await compare('nodelay', '127.0.0.2', ['EHLO bad.helo.test', 'EHLO fine.test', 'MAIL FROM:<spammer@example.org>', 'MAIL FROM:<a@example.org>', 'RCPT TO:<nobody@myoffice.space>', 'QUIT']);
});

test('smtpd_delay_reject = no: a refused client gets the rejection as greeting', { skip }, async () => {
  await compare('nodelay', '127.0.0.3', ['EHLO c.example.org', 'MAIL FROM:<a@example.org>', 'QUIT']);
});

test('data and end-of-data restrictions, as Postfix', { skip }, async () => {
  await compare('data', '127.0.0.1', ['EHLO c.example.org', 'MAIL FROM:<>', 'RCPT TO:<info@myoffice.space>', 'RCPT TO:<sales@myoffice.space>', 'DATA', 'RSET',
    'MAIL FROM:<spammer@example.org>', 'RCPT TO:<info@myoffice.space>', 'DATA', 'Subject: x\n\nbody\n.\n', 'QUIT']);
});

test('syntax restrictions: invalid and non-FQDN HELO, sender, recipient', { skip }, async () => {
  await compare('syntax', '127.0.0.2', ['HELO bad_host!', 'HELO localhostonly', 'HELO [1.2.3]', 'HELO [192.0.2.1]', 'HELO ok.example.org',
    'MAIL FROM:<joe@host>', 'RCPT TO:<info@myoffice.space>', 'RSET', 'MAIL FROM:<joe@host.example.org>', 'RCPT TO:<bob@host>',
    'RCPT TO:<bob@host.>', 'RCPT TO:<info@myoffice.space.>', 'QUIT']);
});

test('defer_unauth_destination answers 454; smtpd_reject_unlisted_sender per class, as Postfix', { skip }, async () => {
  await compare('defer', '127.0.0.2', ['EHLO c.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<x@example.com>', 'RCPT TO:<info@myoffice.space>', 'QUIT']);
  const lines = ['EHLO c.example.org'];
  for (const s of ['nobody@myoffice.space', 'nobody@stud12.myoffice.space', 'bob@mx.example.test', 'who@relay.test', 'info@myoffice.space', 'x@example.com']) {
    lines.push(`MAIL FROM:<${s}>`, 'RCPT TO:<info@myoffice.space>', 'RSET');
  }
  const out = await compare('defer', '127.0.0.2', [...lines, 'QUIT']);
  assert.ok(out.includes('RCPT TO:<info@myoffice.space> → 550 5.1.7 <nobody@stud12.myoffice.space>: Sender address rejected: User unknown in virtual alias table'), out.join('\n'));
  assert.ok(out.includes('RCPT TO:<info@myoffice.space> → 550 5.1.0 <nobody@myoffice.space>: Sender address rejected: User unknown in virtual mailbox table'), out.join('\n'));
});

test('user@remote@ours (unquoted) is refused like Postfix: 554 Relay access denied', { skip }, async () => {
  await compare('main', '127.0.0.2', ['EHLO c.example.org', 'MAIL FROM:<a@example.org>', 'RCPT TO:<user@remote.example@mx.example.test>', 'QUIT']);
});

test('AUTH (Postern only): sender login maps; only a logged-in client relays, routed forms included', { skip }, async () => {
  const plain = (u: string, p = 'pw') => Buffer.from(`\0${u}\0${p}`).toString('base64');
  const t = await transcript(ourPorts.sasl!, '127.0.0.2', [
    'EHLO c.example.org', `AUTH PLAIN ${plain('carol')}`, 'MAIL FROM:<alice@example.test>', 'RCPT TO:<info@myoffice.space>', 'RSET',
    'MAIL FROM:<carol@example.test>', 'RCPT TO:<x@example.com>', 'RCPT TO:<user%remote.example@mx.example.test>',
    'RCPT TO:<nobody@myoffice.space>', 'QUIT']);
  assert.deepEqual(t.slice(2), [
    `AUTH PLAIN ${plain('carol')} → 235 2.7.0 Authentication successful`,
    'MAIL FROM:<alice@example.test> → 250 2.1.0 Ok',
    'RCPT TO:<info@myoffice.space> → 553 5.7.1 <alice@example.test>: Sender address rejected: not owned by user carol',
    'RSET → 250 2.0.0 Ok',
    'MAIL FROM:<carol@example.test> → 250 2.1.0 Ok',
    // permit_sasl_authenticated: an authenticated client may relay (Postfix does the same).
    'RCPT TO:<x@example.com> → 250 2.1.5 Ok',
    'RCPT TO:<user%remote.example@mx.example.test> → 250 2.1.5 Ok',
    'RCPT TO:<nobody@myoffice.space> → 550 5.1.1 <nobody@myoffice.space>: Recipient address rejected: User unknown in virtual mailbox table',
    'QUIT → 221 2.0.0 Bye',
  ]);
  const forms = ['x@example.com', 'user%remote.example@mx.example.test', '"user@remote.example"@mx.example.test',
    '@mx.example.test:user@remote.example', 'remote.example!user@mx.example.test', 'user%remote.example@[127.0.0.1]'];
  const failed = await transcript(ourPorts.sasl!, '127.0.0.2', ['EHLO c.example.org', `AUTH PLAIN ${plain('carol', 'wrong')}`,
    'MAIL FROM:<a@example.org>', ...rcpts(forms), 'RSET', 'MAIL FROM:<>', ...rcpts(forms), 'QUIT']);
  assert.match(failed[2]!, /→ 535 5\.7\.8 /);
  const rcptReplies = failed.filter((l) => l.startsWith('RCPT'));
  assert.equal(rcptReplies.length, forms.length * 2);
  for (const l of rcptReplies) assert.match(l, /→ 554 5\.7\.1 <[^>]+>: Relay access denied$/, l);
  const anon = await transcript(ourPorts.sasl!, '127.0.0.2', ['EHLO c.example.org', 'MAIL FROM:<alice@example.test>', 'RCPT TO:<info@myoffice.space>', 'QUIT']);
  assert.equal(anon[3], 'RCPT TO:<info@myoffice.space> → 553 5.7.1 <alice@example.test>: Sender address rejected: not logged in');
});

test('obsolete restrictions check_relay_domains and permit_naked_ip_address answer as Postfix', { skip }, async () => {
  await compare('relaydomains', '127.0.0.2', ['EHLO c.example.org', 'MAIL FROM:<a@example.org>',
    ...rcpts(['info@myoffice.space', 'known@relay.test', 'x@example.com', 'user%remote.example@mx.example.test']), 'QUIT']);
  for (const h of ['192.0.2.1', '[192.0.2.1]', 'host.example.org', '300.1.1.1']) {
    await compare('naked', '127.0.0.2', [`HELO ${h}`, 'MAIL FROM:<a@example.org>', 'RCPT TO:<info@myoffice.space>', 'QUIT']);
  }
});

test('ETRN: syntax, smtpd_etrn_restrictions with check_etrn_access, fast_flush_domains, as Postfix', { skip }, async () => {
  const script = ['ETRN relay.test', 'EHLO c.example.org', 'ETRN', 'ETRN a b', 'ETRN bad_domain!', 'ETRN relay.test', 'ETRN @relay.test',
    'ETRN other.test', 'ETRN blocked.test', 'ETRN sub.relay.test', 'MAIL FROM:<a@example.org>', 'ETRN relay.test', 'RSET', 'QUIT'];
  const out = await compare('etrn', '127.0.0.2', script);
  assert.ok(out.some((l) => /^ETRN relay\.test → 250 Queuing started/.test(l)), out.join('\n'));
  await compare('main', '127.0.0.3', ['EHLO c.example.org', 'ETRN relay.test', 'QUIT']);
});
