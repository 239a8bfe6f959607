/**
 * smtp(8)/lmtp(8) against Postfix's real smtp-sink(1), with MX records served by the loopback
 * DNS server (test/harness/dns-server.ts): byte-exact content, MX preference and fallback to
 * the next MX, per-recipient 4xx/5xx, 8BITMIME downgrade, SMTPUTF8, DSN parameters, SASL,
 * LMTP per-recipient replies, connection caching. Queue files are real, written by cleanup.
 *
 * MX tests aim the exchangers' A records at 127.0.0.2/127.0.0.3 and give the nexthop a port
 * (`example.test:PORT`): Postfix's smtp(8) uses the nexthop's port for every MX host.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import type { QueueRecipient } from '../../src/global/queue-file.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { QF, ATTR, DSN_NOTIFY } from '../../src/global/rec-type.ts';
import type { DeliverRequest } from '../../src/global/deliver-request.ts';
import { createSmtpAgent, createLmtpAgent } from '../../src/smtp/smtp.ts';
import { seededRandom } from '../../src/smtp/smtp-connect.ts';
import { createDnsResolver } from '../../src/util/dns-resolver.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { DnsServer, type Zone } from '../harness/dns-server.ts';
import { SmtpSink } from '../harness/smtp-sink.ts';
import { freePort } from '../harness/free-port.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));

const dir = mkdtempSync(join(tmpdir(), 'postern-smtp-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
let dns: DnsServer;
const sinks: SmtpSink[] = [];

const ZONE: Zone = {
  // MX → loopback aliases; the nexthop's port applies to every MX host.
  'example.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
  'mx.example.test': { A: ['127.0.0.3'] },
  'down.test': { MX: [{ preference: 20, exchange: 'mx2.down.test' }, { preference: 10, exchange: 'mx1.down.test' }] },
  'mx1.down.test': { A: ['127.0.0.2'] }, // nothing listens there
  'mx2.down.test': { A: ['127.0.0.3'] },
  'alldown.test': { MX: [{ preference: 10, exchange: 'mx1.alldown.test' }] },
  'mx1.alldown.test': { A: ['127.0.0.2'] },
  'shuffle.test': { MX: [{ preference: 10, exchange: 'a.shuffle.test' }, { preference: 10, exchange: 'b.shuffle.test' }, { preference: 10, exchange: 'c.shuffle.test' }, { preference: 5, exchange: 'first.shuffle.test' }] },
  'a.shuffle.test': { A: ['127.0.0.11'] }, 'b.shuffle.test': { A: ['127.0.0.12'] }, 'c.shuffle.test': { A: ['127.0.0.13'] }, 'first.shuffle.test': { A: ['127.0.0.10'] },
  'broken.test': 'SERVFAIL',
  'amx.test': { A: ['127.0.0.4'] },
  'soft.test': { MX: [{ preference: 1, exchange: 'bad.soft.test' }, { preference: 2, exchange: 'good.soft.test' }] },
  'bad.soft.test': { A: ['127.0.0.5'] }, 'good.soft.test': { A: ['127.0.0.6'] },
  'nullmx.test': { MX: [{ preference: 0, exchange: '' }] },
};

before(async () => { dns = await DnsServer.start(ZONE); });
after(async () => {
  await Promise.all(sinks.map((s) => s.stop()));
  await dns.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function sink(o: { host?: string; port?: number; args?: string[] } = {}): Promise<SmtpSink> {
  const s = await SmtpSink.start(o);
  sinks.push(s);
  return s;
}

function config(extra = ''): MainConfig {
  return MainConfig.parse(`myhostname = client.postern.test\nsmtp_connect_timeout = 2s\nsmtp_helo_timeout = 5s\npostern_dns_servers = 127.0.0.1:${dns.port}\n${extra}`, join(dir, 'main.cf'), dir);
}

/** A real queue file, written by cleanup, opened as qmgr would. */
async function queued(o: { sender?: string; rcpts: (string | QueueRecipient)[]; content: string | Buffer; flags?: number; attrs?: Record<string, string> }): Promise<QueueFile> {
  const c = await CleanupSession.open({ myhostname: 'client.postern.test', myorigin: 'postern.test', headerSizeLimit: 102400, messageSizeLimit: 10240000, alwaysAddMissingHeaders: false }, queue,
    { sender: o.sender ?? 'sender@postern.test', attrs: o.attrs ?? {}, addMissingHeaders: false, flags: o.flags });
  for (const r of o.rcpts) c.addRecipient(typeof r === 'string' ? { address: r, orig: r } : r);
  await c.write(Buffer.isBuffer(o.content) ? o.content : Buffer.from(o.content, 'utf8'));
  const res = await c.finish();
  assert.ok('queueId' in res, JSON.stringify(res));
  return QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
}

function request(qf: QueueFile, nexthop: string, transport = 'smtp'): DeliverRequest {
  return { qf, transport, nexthop, recipients: qf.recipients, activeSince: Date.now() };
}

const MSG = 'From: Sender <sender@postern.test>\nTo: rcpt@example.test\nSubject: hello\nMessage-ID: <1@postern.test>\n\nLine one\n.leading dot line\n..two dots\n\nlast line\n';

test('delivers through MX lookup to smtp-sink: byte-exact content, relay= and 250 text', async () => {
  const s = await sink({ host: '127.0.0.3' });
  const agent = createSmtpAgent(config(), { resolver: createDnsResolver({ servers: [`127.0.0.1:${dns.port}`] }) });
  const qf = await queued({ rcpts: ['a@example.test', 'b@example.test'], content: MSG });
  const res = await agent.deliver(request(qf, `example.test:${s.port}`));
  await agent.close();
  assert.deepEqual(res.map((r) => [r.recipient.address, r.status, r.dsn]), [['a@example.test', 'sent', '2.0.0'], ['b@example.test', 'sent', '2.0.0']]);
  assert.equal(res[0]!.relay, `mx.example.test[127.0.0.3]:${s.port}`);
  assert.match(res[0]!.text, /^250 2\.0\.0 Ok/);
  const msgs = s.messages();
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.body.toString('utf8'), MSG);
  assert.equal(msgs[0]!.mailArgs, '<sender@postern.test>'); // smtp-sink announces no SIZE
  assert.deepEqual(msgs[0]!.rcptArgs, ['<a@example.test>', '<b@example.test>']);
  assert.equal(msgs[0]!.heloArgs, 'client.postern.test');
  assert.deepEqual(dns.queries.slice(0, 2), ['example.test MX', 'mx.example.test A']);
});

test('a down MX (connection refused) is skipped for the next one; Postfix-worded log line', async () => {
  const port = await freePort('127.0.0.3');
  const s = await sink({ host: '127.0.0.3', port });
  logs.length = 0;
  const agent = createSmtpAgent(config(), { resolver: createDnsResolver({ servers: [`127.0.0.1:${dns.port}`] }) });
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const res = await agent.deliver(request(qf, `down.test:${port}`));
  await agent.close();
  assert.equal(res[0]!.status, 'sent', res[0]!.text);
  assert.equal(res[0]!.relay, `mx2.down.test[127.0.0.3]:${port}`);
  assert.ok(logs.some((l) => new RegExp(`postern/smtp\\[\\d+\\]: connect to mx1\\.down\\.test\\[127\\.0\\.0\\.2\\]:${port}: Connection refused$`).test(l)), logs.join('\n'));
  assert.equal(s.messages().length, 1);
});

test('every MX down: deferred 4.4.1 with "connect to host[addr]:port: Connection refused"', async () => {
  const port = await freePort('127.0.0.2');
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, `alldown.test:${port}`));
  assert.equal(r!.status, 'deferred');
  assert.equal(r!.dsn, '4.4.1');
  assert.equal(r!.text, `connect to mx1.alldown.test[127.0.0.2]:${port}: Connection refused`);
});

test('equal-preference MX hosts are shuffled (seeded), lower preference always first', async () => {
  const { resolveDestination, parseDestination } = await import('../../src/smtp/smtp-connect.ts');
  const orders = new Set<string>();
  for (let seed = 1; seed <= 12; seed++) {
    const r = await resolveDestination(parseDestination('shuffle.test', { lmtp: false, defaultPort: 25 }), { resolver: createDnsResolver({ servers: [`127.0.0.1:${dns.port}`] }), mxAddressLimit: 5, ipv4: true, ipv6: false, myhostname: 'me.test', native: false, random: seededRandom(seed) });
    assert.ok(Array.isArray(r));
    assert.equal(r[0]!.host, 'first.shuffle.test');
    orders.add(r.slice(1).map((x) => x.host[0]).join(''));
  }
  assert.ok(orders.size >= 3, `only ${[...orders].join(',')}`);
});

test('DNS: NXDOMAIN bounces 5.4.4, SERVFAIL defers 4.4.3, no MX falls back to A', async () => {
  const s = await sink({ host: '127.0.0.4' });
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@nx.test'], content: MSG });
  const [nx] = await agent.deliver(request(qf, 'nx.test'));
  assert.deepEqual([nx!.status, nx!.dsn, nx!.text], ['bounced', '5.4.4', 'Host or domain name not found. Name service error for name=nx.test type=MX: Host not found']);
  const [nm] = await agent.deliver(request(qf, 'nullmx.test'));
  assert.deepEqual([nm!.status, nm!.dsn, nm!.text], ['bounced', '5.1.10', 'Domain nullmx.test does not accept mail (nullMX)']);
  const [sf] = await agent.deliver(request(qf, 'broken.test'));
  assert.equal(sf!.status, 'deferred');
  assert.equal(sf!.dsn, '4.4.3');
  assert.match(sf!.text, /^Host or domain name not found\. Name service error for name=broken\.test type=MX: Host not found, try again/);
  const [a] = await agent.deliver(request(qf, `amx.test:${s.port}`));
  assert.equal(a!.status, 'sent', a!.text);
  assert.equal(a!.relay, `amx.test[127.0.0.4]:${s.port}`);
  await agent.close();
});

test('[host]:port disables MX lookup', async () => {
  const s = await sink();
  const before0 = dns.queries.length;
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  assert.equal(r!.relay, `127.0.0.1[127.0.0.1]:${s.port}`);
  assert.equal(dns.queries.length, before0);
});

test('5xx for RCPT bounces and 4xx defers, per recipient, with Postfix text', async () => {
  const hard = await sink({ args: ['-f', 'RCPT'] });
  const soft = await sink({ args: ['-r', 'RCPT'] });
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test', 'b@example.test'], content: MSG });
  const h = await agent.deliver(request(qf, `[127.0.0.1]:${hard.port}`));
  assert.deepEqual(h.map((r) => r.status), ['bounced', 'bounced']);
  assert.equal(h[0]!.dsn, '5.3.0');
  assert.equal(h[0]!.text, `host 127.0.0.1[127.0.0.1] said: 500 5.3.0 Error: command failed (in reply to RCPT TO command)`);
  assert.equal(h[0]!.diagnostic, 'smtp; 500 5.3.0 Error: command failed');
  const s = await agent.deliver(request(qf, `[127.0.0.1]:${soft.port}`));
  assert.deepEqual(s.map((r) => [r.status, r.dsn]), [['deferred', '4.3.0'], ['deferred', '4.3.0']]);
  assert.match(s[1]!.text, /said: 450 4\.3\.0 Error: command failed \(in reply to RCPT TO command\)$/);
  assert.equal(hard.messages().length + soft.messages().length, 0);
  await agent.close();
});

test('4xx at MAIL FROM on the first MX: the next MX gets the mail', async () => {
  const port = await freePort('127.0.0.5');
  const bad = await sink({ host: '127.0.0.5', port, args: ['-r', 'MAIL'] });
  const good = await sink({ host: '127.0.0.6', port });
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, `soft.test:${port}`));
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  assert.equal(r!.relay, `good.soft.test[127.0.0.6]:${port}`);
  assert.equal(bad.messages().length, 0);
  assert.equal(good.messages().length, 1);
});

test('8-bit message to a server without 8BITMIME is sent as quoted-printable that decodes to the same text', async () => {
  const s = await sink({ args: ['-8'] });
  const text = 'Привет, мир! Grüße — ünïcödé\nsecond line ends with space \n';
  const content = `From: a@postern.test\nTo: b@example.test\nSubject: 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n${text}`;
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['b@example.test'], content, flags: QF.EIGHTBIT, attrs: { [ATTR.ENCODING]: '8BITMIME' } });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  const [m] = s.messages();
  const got = m!.body.toString('latin1');
  assert.ok(!/[\x80-\xff]/.test(got), 'no 8-bit byte on the wire');
  assert.doesNotMatch(m!.mailArgs, /BODY=8BITMIME/);
  assert.match(got, /\nContent-Transfer-Encoding: quoted-printable\n/);
  assert.doesNotMatch(got, /Content-Transfer-Encoding: 8bit/);
  const qp = got.slice(got.indexOf('\n\n') + 2);
  for (const line of qp.split('\n')) assert.ok(line.length <= 76, `line too long: ${line}`);
  // Decode with Python's quopri, an independent decoder.
  const { execFileSync } = await import('node:child_process');
  const decoded = execFileSync('python3', ['-c', 'import sys,quopri;sys.stdout.buffer.write(quopri.decodestring(sys.stdin.buffer.read()))'], { input: Buffer.from(qp, 'latin1') });
  assert.equal(decoded.toString('utf8'), text);
});

test('8-bit message to a server with 8BITMIME goes unchanged with BODY=8BITMIME', async () => {
  const s = await sink();
  const content = 'From: a@postern.test\nSubject: 8bit\n\nGrüße\n';
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['b@example.test'], content, flags: QF.EIGHTBIT });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  const [m] = s.messages();
  assert.equal(m!.body.toString('utf8'), content);
  assert.match(m!.mailArgs, / BODY=8BITMIME/);
});

test('SMTPUTF8 message to a server without SMTPUTF8 bounces with Postfix text; DSN parameters passed on', async () => {
  const s = await sink();
  const agent = createSmtpAgent(config());
  const qf = await queued({ sender: 'отправитель@postern.test', rcpts: ['b@example.test'], content: 'Subject: x\n\nx\n', flags: QF.SMTPUTF8 });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  assert.deepEqual([r!.status, r!.dsn, r!.text], ['bounced', '5.6.7', 'SMTPUTF8 is required, but was not offered by host 127.0.0.1[127.0.0.1]']);
  const qf2 = await queued({ rcpts: [{ address: 'c@example.test', orig: 'c@example.test', notify: DSN_NOTIFY.SUCCESS | DSN_NOTIFY.FAILURE, orcpt: 'rfc822;C+x@example.test' }], content: 'Subject: y\n\ny\n', attrs: { [ATTR.DSN_RET]: 'HDRS', [ATTR.DSN_ENVID]: 'env id=1' } });
  const [r2] = await agent.deliver(request(qf2, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r2!.status, 'sent', r2!.text);
  const m = s.messages().find((x) => x.rcptArgs[0]?.includes('c@example.test'))!;
  assert.match(m.mailArgs, / RET=HDRS ENVID=env\+20id\+3D1$/);
  assert.deepEqual(m.rcptArgs, ['<c@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;C+2Bx@example.test']);
});

test('without PIPELINING the client sends command by command and still delivers', async () => {
  const s = await sink({ args: ['-p', '-v'] });
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test', 'b@example.test'], content: MSG });
  const res = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.deepEqual(res.map((r) => r.status), ['sent', 'sent']);
  assert.equal(s.messages()[0]!.body.toString('utf8'), MSG);
});

test('connection cache: two requests to one nexthop share one session (RSET between)', async () => {
  const s = await sink({ args: ['-v'] });
  const agent = createSmtpAgent(config('smtp_connection_cache_time_limit = 5s'));
  for (let i = 0; i < 2; i++) {
    const qf = await queued({ rcpts: [`r${i}@example.test`], content: MSG });
    const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
    assert.equal(r!.status, 'sent', r!.text);
  }
  assert.equal(agent.cache.size, 1);
  await agent.close();
  assert.equal(s.messages().length, 2);
  const ehlos = s.transcript.match(/EHLO client\.postern\.test/gi) ?? [];
  assert.equal(ehlos.length, 1, s.transcript);
  assert.match(s.transcript, /RSET/i);
});

test('SASL: AUTH PLAIN and LOGIN with smtp_sasl_password_maps (hostname key, then nexthop key) to Postern smtpd', async () => {
  // smtp-sink answers AUTH with 250 whatever is sent, so a server that checks passwords is used here.
  const { createSmtpd } = await import('../../src/smtpd/smtpd.ts');
  const { smtpdClients } = await import('../../src/master/master-clients.ts');
  const { PERMIT_ALL } = await import('../../src/smtpd/smtpd-policy.ts');
  const { directoryAuth } = await import('../../src/smtpd/smtpd-sasl.ts');
  const { createServer } = await import('node:net');
  const { writeFileSync } = await import('node:fs');
  const rq = new MailQueue(join(dir, 'rqueue'));
  rq.ensureDirs();
  const users = {
    async lookup() { return undefined; },
    async verifyPlain(u: string, p: string) { return u === 'relayuser' && p === 's3cret pass' ? { result: 'ok' as const, user: u } : { result: 'mismatch' as const }; },
    async *iterate() { /* none */ },
    async close() {},
  };
  const smtpd = createSmtpd(MainConfig.parse(`myhostname = relay.test\nqueue_directory = ${rq.dir}\nsmtpd_sasl_auth_enable = yes\n`, 'main.cf', dir), { ...smtpdClients, queue: rq, policy: PERMIT_ALL, service: 'smtp', auth: directoryAuth(users as never) });
  const server = createServer((c) => smtpd.handle(c));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const maps = join(dir, 'sasl_passwd');
  try {
    for (const [filter, entry] of [['', `[127.0.0.1]:${port} relayuser:s3cret pass`], ['login', `127.0.0.1 relayuser:s3cret pass`]] as const) {
      writeFileSync(maps, `${entry}\n`);
      const agent = createSmtpAgent(config(`smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:${maps}\nsmtp_sasl_security_options = noanonymous\nsmtp_sasl_mechanism_filter = ${filter}\n`));
      const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
      const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${port}`));
      await agent.close();
      assert.equal(r!.status, 'sent', r!.text);
      const id = /queued as (\w+)/.exec(r!.text)![1]!;
      const got = await QueueFile.open(rq.path('incoming', id), id);
      assert.equal(got.attr(ATTR.SASL_USERNAME), 'relayuser');
      assert.equal(got.attr(ATTR.SASL_METHOD)?.toUpperCase(), filter ? 'LOGIN' : 'PLAIN');
    }
    writeFileSync(maps, `[127.0.0.1]:${port} relayuser:wrong\n`);
    const agent = createSmtpAgent(config(`smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:${maps}\nsmtp_sasl_security_options = noanonymous\n`));
    const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
    const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${port}`));
    await agent.close();
    assert.equal(r!.status, 'deferred');
    assert.match(r!.text, /^SASL authentication failed; server 127\.0\.0\.1\[127\.0\.0\.1\] said: 535 5\.7\.8 /);
    assert.ok(!logs.some((l) => l.includes('s3cret')), 'password never logged');
  } finally {
    for (const c of smtpd.sessions) c.destroy();
    server.close();
  }
});

test('SASL with Postfix default security options (noplaintext) refuses PLAIN: deferred, not sent', async () => {
  const s = await sink();
  const maps = join(dir, 'sasl_passwd2');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(maps, `127.0.0.1 u:p\n`);
  const agent = createSmtpAgent(config(`smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:${maps}\n`));
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r!.status, 'deferred');
  assert.equal(r!.text, 'SASL authentication failed: server 127.0.0.1[127.0.0.1] offered no compatible authentication mechanisms for this type of connection security');
  assert.equal(s.messages().length, 0);
});

test('LMTP to smtp-sink -L: LHLO, per-recipient replies after DATA, inet:host:port syntax', async () => {
  const s = await sink({ args: ['-L'] });
  const agent = createLmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test', 'b@example.test'], content: MSG });
  const res = await agent.deliver(request(qf, `inet:127.0.0.1:${s.port}`, 'lmtp'));
  await agent.close();
  assert.deepEqual(res.map((r) => r.status), ['sent', 'sent']);
  const [m] = s.messages();
  assert.equal(m!.proto, 'LMTP');
  assert.equal(m!.body.toString('utf8'), MSG);
});

test('timeouts: a server that never greets is abandoned after smtp_helo_timeout, deferred 4.4.2', async () => {
  const { createServer } = await import('node:net');
  const silent = createServer(() => { /* say nothing */ });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  const agent = createSmtpAgent(config('smtp_helo_timeout = 1s'));
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const t0 = Date.now();
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${port}`));
  silent.close();
  assert.ok(Date.now() - t0 < 3000);
  assert.deepEqual([r!.status, r!.dsn, r!.text], ['deferred', '4.4.2', 'conversation with 127.0.0.1[127.0.0.1] timed out while receiving the initial server greeting']);
});

test('a server that drops the connection after DATA: deferred, "lost connection ... while sending DATA command"', async () => {
  const s = await sink({ args: ['-q', 'DATA'] });
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, `[127.0.0.1]:${s.port}`));
  await agent.close();
  assert.equal(r!.status, 'deferred');
  assert.equal(r!.text, 'lost connection with 127.0.0.1[127.0.0.1] while sending DATA command');
});

test('bad nexthop syntax defers with a configuration message, never bounces', async () => {
  const agent = createSmtpAgent(config());
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, '[127.0.0.1'));
  assert.equal(r!.status, 'deferred');
  assert.match(r!.text, /bad SMTP destination "\[127\.0\.0\.1": .*missing "\]"/);
  const [r2] = await agent.deliver(request(qf, '[127.0.0.1]:99999'));
  assert.equal(r2!.status, 'deferred');
});

test('smtp_tcp_port sets the port for MX hosts of a bare domain; an empty nexthop uses relayhost', async () => {
  const s = await sink({ host: '127.0.0.3' });
  const agent = createSmtpAgent(config(`smtp_tcp_port = ${s.port}`));
  const qf = await queued({ rcpts: ['a@example.test'], content: MSG });
  const [r] = await agent.deliver(request(qf, 'example.test'));
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  assert.equal(r!.relay, `mx.example.test[127.0.0.3]:${s.port}`);
  const relay = createSmtpAgent(config(`relayhost = [127.0.0.3]:${s.port}`));
  const [r2] = await relay.deliver(request(qf, ''));
  await relay.close();
  assert.equal(r2!.status, 'sent', r2!.text);
  assert.equal(r2!.relay, `127.0.0.3[127.0.0.3]:${s.port}`);
  assert.equal(s.messages().length, 2);
});
