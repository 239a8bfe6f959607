/**
 * smtp(8) certificate checks against real Postfix 3.7 smtpd with a certificate from a private
 * CA (openssl, test/harness/test-ca.ts), names and TLSA records from the loopback DNS server,
 * and an MTA-STS policy from a loopback HTTPS server (postern_mta_sts_port). The expected log
 * lines and deferral texts are the ones real Postfix 3.7's smtp client writes for the same
 * situations (recorded by running it against the same smtpd):
 *   Verified/Trusted/Untrusted TLS connection established to host[addr]:port: TLSv1.3 with cipher ...
 *   certificate verification failed for host[addr]:port: untrusted issuer /CN=Postern Test CA
 *   server certificate verification failed for 127.0.0.1[127.0.0.1]:port: num=64:IP address mismatch
 *   ... status=deferred (Server certificate not verified), dsn 4.7.5
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import type { QueueFile } from '../../src/global/queue-file-reader.ts';
import { queueMessage } from '../harness/queue-message.ts';
import { createSmtpAgent, type SmtpAgent } from '../../src/smtp/smtp.ts';
import type { RecipientResult } from '../../src/global/deliver-request.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { TestCa, type TestLeaf } from '../harness/test-ca.ts';
import { freePort } from '../harness/free-port.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const skip = RealPostfix.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-smtptlsv-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
let pf: RealPostfix | undefined;
let dns: DnsServer | undefined;
let https: Server | undefined;
let port = 0;
let portTa = 0;
let httpsPort = 0;
let ca: TestCa;
let leaf: TestLeaf;
const policies: Record<string, string> = {};
const CIPHER = 'TLSv1\\.3 with cipher TLS_\\w+ \\((?:256/256|128/128) bits\\) key-exchange X25519 server-signature RSA-PSS \\(2048 bits\\) server-digest SHA256';

before(async () => {
  if (skip) return;
  port = await freePort();
  portTa = await freePort();
  ca = TestCa.create(dir);
  leaf = ca.issue('mx', ['mx.example.test', 'localhost']);
  // The same kind of certificate, sent with its CA certificate (for DANE-TA, RFC 7672 §3.1.2).
  const chained = ca.issue('mx-chain', ['mx.example.test'], { chain: true });
  const sts = ca.issue('mta-sts', ['mta-sts.example.test', 'mta-sts.badmx.test', 'mta-sts.testing.test']);
  pf = await RealPostfix.start({
    mainCf: `smtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${leaf.certFile}\nsmtpd_tls_key_file = ${leaf.keyFile}\nsmtpd_tls_loglevel = 1\nmydestination = mx.example.test\nlocal_recipient_maps =\nalias_maps =\nlocal_transport = discard:\n`,
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd\n127.0.0.1:${portTa} inet n - n - - smtpd -o smtpd_tls_cert_file=${chained.certFile} -o smtpd_tls_key_file=${chained.keyFile}`,
  });
  https = createServer({ cert: readFileSync(sts.certFile), key: readFileSync(sts.keyFile) }, (req, res) => {
    const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
    const body = req.url === '/.well-known/mta-sts.txt' ? policies[host] : undefined;
    if (body === undefined) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((r) => https!.listen(0, '127.0.0.1', () => r()));
  httpsPort = (https.address() as { port: number }).port;
  policies['mta-sts.example.test'] = 'version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n';
  policies['mta-sts.badmx.test'] = 'version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n';
  policies['mta-sts.testing.test'] = 'version: STSv1\nmode: testing\nmx: mx.example.test\nmax_age: 86400\n';
  const tlsa = (data: string, AD: boolean, usage = 3, selector = 1) => ({ TLSA: [{ usage, selector, matchingType: 1, data }], AD });
  dns = await DnsServer.start({
    'example.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    'mx.example.test': { A: ['127.0.0.1'] },
    [`_${port}._tcp.mx.example.test`]: tlsa(leaf.spkiSha256, true),
    'wrongtlsa.test': { MX: [{ preference: 10, exchange: 'mx.wrongtlsa.test' }] },
    'mx.wrongtlsa.test': { A: ['127.0.0.1'] },
    [`_${port}._tcp.mx.wrongtlsa.test`]: tlsa('00'.repeat(32), true),
    'insecure.test': { MX: [{ preference: 10, exchange: 'mx.insecure.test' }] },
    'mx.insecure.test': { A: ['127.0.0.1'] },
    [`_${port}._tcp.mx.insecure.test`]: tlsa(leaf.spkiSha256, false),
    [`_${portTa}._tcp.mx.example.test`]: tlsa(ca.digests.certSha256, true, 2, 0),
    '_mta-sts.example.test': { TXT: ['v=STSv1; id=20261127'] },
    'mta-sts.example.test': { A: ['127.0.0.1'] },
    'badmx.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    '_mta-sts.badmx.test': { TXT: ['v=STSv1; id=1'] },
    'mta-sts.badmx.test': { A: ['127.0.0.1'] },
    'testing.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    '_mta-sts.testing.test': { TXT: ['v=STSv1; id=1'] },
    'mta-sts.testing.test': { A: ['127.0.0.1'] },
  });
});
after(async () => {
  await pf?.stop();
  await dns?.stop();
  https?.close();
  rmSync(dir, { recursive: true, force: true });
});

function queued(): Promise<QueueFile> {
  return queueMessage(queue, { myhostname: 'client.postern.test', myorigin: 'postern.test', sender: 'sender@postern.test',
    rcpts: [{ address: 'root@mx.example.test', orig: 'root@mx.example.test' }], body: 'Subject: tls\n\nover TLS\n' });
}

function agentWith(extra: string): SmtpAgent {
  return createSmtpAgent(MainConfig.parse(`myhostname = client.postern.test\npostern_dns_servers = 127.0.0.1:${dns!.port}\nsmtp_connection_cache_on_demand = no\nsmtp_tls_loglevel = 1\n${extra}\n`, join(dir, 'main.cf'), dir));
}

async function send(extra: string, nexthop: string, agent = agentWith(extra)): Promise<RecipientResult> {
  const qf = await queued();
  logs.length = 0;
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  return r!;
}

const logged = (re: RegExp) => logs.some((l) => re.test(l));
const tlsLine = (trust: string, host: string) => new RegExp(`postern/smtp\\[\\d+\\]: ${trust} TLS connection established to ${host.replace(/\./g, '\\.')}\\[127\\.0\\.0\\.1\\]:${port}: ${CIPHER}$`);
const CAFILE = () => `smtp_tls_CAfile = ${ca.certFile}`;

test('verify: certificate from smtp_tls_CAfile, MX host name in the certificate → Verified, mail sent', { skip }, async () => {
  const r = await send(`smtp_tls_security_level = verify\n${CAFILE()}`, `example.test:${port}`);
  assert.equal(r.status, 'sent', r.text);
  assert.ok(logged(tlsLine('Verified', 'mx.example.test')), logs.join('\n'));
  const deadline = Date.now() + 3000;
  while (!/TLS connection established from/.test(pf!.log()) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  assert.match(pf!.log(), /Anonymous TLS connection established from \w+\[127\.0\.0\.1\]: TLSv1\.3/);
});

test('verify to [127.0.0.1]: IP address mismatch → deferred 4.7.5 "Server certificate not verified", nothing sent in clear', { skip }, async () => {
  const r = await send(`smtp_tls_security_level = verify\n${CAFILE()}`, `[127.0.0.1]:${port}`);
  assert.deepEqual([r.status, r.dsn, r.text], ['deferred', '4.7.5', 'Server certificate not verified']);
  assert.ok(logged(new RegExp(`: server certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}: num=64:IP address mismatch$`)), logs.join('\n'));
  assert.ok(logged(tlsLine('Untrusted', '127.0.0.1')), logs.join('\n'));
  assert.ok(!logs.some((l) => /MAIL FROM|queued as/.test(l)));
});

test('verify without smtp_tls_CAfile: the system CAs are not used (Postfix), untrusted issuer → deferred', { skip }, async () => {
  const r = await send('smtp_tls_security_level = verify', `[localhost]:${port}`);
  assert.deepEqual([r.status, r.dsn, r.text], ['deferred', '4.7.5', 'Server certificate not verified']);
  assert.ok(logged(new RegExp(`: certificate verification failed for localhost\\[127\\.0\\.0\\.1\\]:${port}: untrusted issuer /CN=Postern Test CA$`)), logs.join('\n'));
  assert.ok(logged(tlsLine('Untrusted', 'localhost')));
});

test('verify with a certificate name that does not match the MX host → hostname mismatch, deferred', { skip }, async () => {
  const r = await send(`smtp_tls_security_level = verify\n${CAFILE()}\nsmtp_tls_verify_cert_match = hostname, other.example.test`, `[localhost]:${port}`);
  assert.equal(r.status, 'sent', r.text); // localhost is in the certificate
  const r2 = await send(`smtp_tls_security_level = verify\n${CAFILE()}\nsmtp_tls_verify_cert_match = other.example.test`, `[localhost]:${port}`);
  assert.deepEqual([r2.status, r2.text], ['deferred', 'Server certificate not verified']);
  assert.ok(logged(new RegExp(`server certificate verification failed for localhost\\[127\\.0\\.0\\.1\\]:${port}: num=62:hostname mismatch$`)), logs.join('\n'));
});

test('secure: nexthop/dot-nexthop matching; smtp_tls_policy_maps "secure match=" overrides main.cf', { skip }, async () => {
  const r = await send(`smtp_tls_security_level = secure\n${CAFILE()}`, `example.test:${port}`);
  assert.equal(r.status, 'sent', r.text); // mx.example.test is below the nexthop example.test
  assert.ok(logged(tlsLine('Verified', 'mx.example.test')));
  const maps = join(dir, 'tls_policy');
  writeFileSync(maps, `[127.0.0.1]:${port}  secure match=mx.example.test\n[localhost]:${port} secure match=.nowhere.test\n`);
  const r2 = await send(`smtp_tls_security_level = may\n${CAFILE()}\nsmtp_tls_policy_maps = texthash:${maps}`, `[127.0.0.1]:${port}`);
  assert.equal(r2.status, 'sent', r2.text);
  assert.ok(logged(tlsLine('Verified', '127.0.0.1')), logs.join('\n'));
  const r3 = await send(`smtp_tls_security_level = may\n${CAFILE()}\nsmtp_tls_policy_maps = texthash:${maps}`, `[localhost]:${port}`);
  assert.deepEqual([r3.status, r3.text], ['deferred', 'Server certificate not verified']);
});

test('may with smtp_tls_CAfile → "Trusted TLS connection"; without → "Untrusted"', { skip }, async () => {
  assert.equal((await send(`smtp_tls_security_level = may\n${CAFILE()}`, `[127.0.0.1]:${port}`)).status, 'sent');
  assert.ok(logged(tlsLine('Trusted', '127.0.0.1')), logs.join('\n'));
  assert.equal((await send('smtp_tls_security_level = may', `[127.0.0.1]:${port}`)).status, 'sent');
  assert.ok(logged(tlsLine('Untrusted', '127.0.0.1')));
  assert.ok(!logged(/verification failed/), 'may logs no verification failure');
});

test('fingerprint (sha256, main.cf and policy table): match → Verified; mismatch → num=1 and deferred', { skip }, async () => {
  const r = await send(`smtp_tls_security_level = fingerprint\nsmtp_tls_fingerprint_digest = sha256\nsmtp_tls_fingerprint_cert_match = ${leaf.fingerprint}`, `[127.0.0.1]:${port}`);
  assert.equal(r.status, 'sent', r.text);
  assert.ok(logged(tlsLine('Verified', '127.0.0.1')), logs.join('\n'));
  const maps = join(dir, 'tls_fp');
  const wrong = leaf.fingerprint.replace(/^../, leaf.fingerprint.startsWith('00') ? '11' : '00');
  writeFileSync(maps, `[127.0.0.1]:${port} fingerprint match=${wrong}|sha256:${wrong}\n`);
  const r2 = await send(`smtp_tls_fingerprint_digest = sha256\nsmtp_tls_policy_maps = texthash:${maps}`, `[127.0.0.1]:${port}`);
  assert.deepEqual([r2.status, r2.dsn, r2.text], ['deferred', '4.7.5', 'Server certificate not verified']);
  assert.ok(logged(new RegExp(`server certificate verification failed for 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}: num=1:unspecified certificate verification error$`)), logs.join('\n'));
});

test('dane: DNSSEC-validated TLSA 3 1 1 → Verified without any CA; wrong TLSA → deferred; unvalidated → may', { skip }, async () => {
  const dane = 'smtp_tls_security_level = dane\nsmtp_dns_support_level = dnssec';
  const r = await send(dane, `example.test:${port}`);
  assert.equal(r.status, 'sent', r.text);
  assert.ok(logged(tlsLine('Verified', 'mx.example.test')), logs.join('\n'));
  assert.ok(dns!.queries.includes(`_${port}._tcp.mx.example.test TLSA`));
  const r2 = await send(dane, `wrongtlsa.test:${port}`);
  assert.deepEqual([r2.status, r2.dsn, r2.text], ['deferred', '4.7.5', 'Server certificate not verified']);
  assert.ok(logged(/num=65:No matching DANE TLSA records$/), logs.join('\n'));
  const r3 = await send(dane, `insecure.test:${port}`);
  assert.equal(r3.status, 'sent', r3.text);
  assert.ok(logged(tlsLine('Untrusted', 'mx.insecure.test')), logs.join('\n'));
  const r4 = await send('smtp_tls_security_level = dane-only\nsmtp_dns_support_level = dnssec', `insecure.test:${port}`);
  assert.equal(r4.status, 'deferred');
  assert.match(r4.text, /^TLS is required, but host mx\.insecure\.test\[127\.0\.0\.1\] has no DNSSEC-validated TLSA records$/);
  // Without smtp_dns_support_level = dnssec, the validated TLSA record is not used (Postfix: dane → may).
  const r5 = await send('smtp_tls_security_level = dane', `example.test:${port}`);
  assert.equal(r5.status, 'sent');
  assert.ok(logged(tlsLine('Untrusted', 'mx.example.test')), logs.join('\n'));
});

test('MTA-STS enforce: policy fetched over HTTPS, certificate and MX checked; MX outside the policy → deferred', { skip }, async () => {
  const extra = `postern_mta_sts = yes\npostern_mta_sts_port = ${httpsPort}\n${CAFILE()}\nsmtp_tls_security_level = may`;
  const agent = agentWith(extra);
  const r = await send(extra, `example.test:${port}`, agent);
  assert.equal(r.status, 'sent', r.text);
  assert.ok(logged(tlsLine('Verified', 'mx.example.test')), logs.join('\n'));
  assert.ok(logged(/MTA-STS policy for example\.test: mode=enforce mx=mx\.example\.test max_age=86400 id=20261127$/), logs.join('\n'));
  const r2 = await send(extra, `example.test:${port}`, agent);
  assert.equal(r2.status, 'sent');
  const agent2 = agentWith(extra);
  const r3 = await send(extra, `badmx.test:${port}`, agent2);
  assert.deepEqual([r3.status, r3.dsn, r3.text], ['deferred', '4.7.5', 'MX host mx.example.test does not match the MTA-STS policy of badmx.test']);
  const r4 = await send(extra, `testing.test:${port}`, agentWith(extra));
  assert.equal(r4.status, 'sent'); // testing mode: delivered at the main.cf level
  assert.ok(logged(tlsLine('Trusted', 'mx.example.test')), logs.join('\n'));
});

test('MTA-STS cache: the same policy id is not fetched twice', { skip }, async () => {
  const extra = `postern_mta_sts = yes\npostern_mta_sts_port = ${httpsPort}\n${CAFILE()}`;
  const agent = agentWith(extra);
  const before = https!.listenerCount('request');
  assert.ok(before >= 1);
  let hits = 0;
  https!.on('request', () => { hits++; });
  await send(extra, `example.test:${port}`, agent);
  await send(extra, `example.test:${port}`, agent);
  assert.equal(hits, 1);
});

test('a bad smtp_tls_policy_maps entry defers (never plaintext) and names the problem', { skip }, async () => {
  const maps = join(dir, 'tls_bad');
  writeFileSync(maps, `[127.0.0.1]:${port} verified\n`);
  const r = await send(`smtp_tls_policy_maps = texthash:${maps}`, `[127.0.0.1]:${port}`);
  assert.deepEqual([r.status, r.dsn], ['deferred', '4.7.5']);
  assert.equal(r.text, `TLS policy lookup for [127.0.0.1]:${port}: invalid TLS security level "verified"`);
});

test('dane with a DANE-TA(2) record for the CA the server sends: chain and MX name checked → Verified', { skip }, async () => {
  const r = await send('smtp_tls_security_level = dane\nsmtp_dns_support_level = dnssec', `example.test:${portTa}`);
  assert.equal(r.status, 'sent', r.text);
  assert.ok(logs.some((l) => new RegExp(`Verified TLS connection established to mx\\.example\\.test\\[127\\.0\\.0\\.1\\]:${portTa}: ${CIPHER}$`).test(l)), logs.join('\n'));
  // The TA record does not make a certificate for another name acceptable.
  const maps = join(dir, 'tls_dane_ta');
  writeFileSync(maps, `[127.0.0.1]:${portTa} dane\n`);
  const r2 = await send(`smtp_dns_support_level = dnssec\nsmtp_tls_policy_maps = texthash:${maps}`, `[127.0.0.1]:${portTa}`);
  assert.equal(r2.status, 'sent'); // an IP literal has no TLSA records: dane is "may"
  assert.ok(logs.some((l) => /Untrusted TLS connection established to 127\.0\.0\.1/.test(l)), logs.join('\n'));
});

test('Postern smtpd as the TLS server: verify and fingerprint from Postern smtp to Postern smtpd', async () => {
  const { createSmtpd } = await import('../../src/smtpd/smtpd.ts');
  const { smtpdClients } = await import('../../src/master/master-clients.ts');
  const { PERMIT_ALL } = await import('../../src/smtpd/smtpd-policy.ts');
  const { createServer } = await import('node:net');
  const ca2 = ca ?? TestCa.create(dir);
  const cert = ca2.issue('postern-mx', ['mx.postern.test']);
  const rq = new MailQueue(join(dir, 'pqueue'));
  rq.ensureDirs();
  const smtpd = createSmtpd(MainConfig.parse(`myhostname = mx.postern.test\nqueue_directory = ${rq.dir}\nsmtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${cert.certFile}\nsmtpd_tls_key_file = ${cert.keyFile}\n`, 'main.cf', dir), { ...smtpdClients, queue: rq, policy: PERMIT_ALL, service: 'smtp' });
  const server = createServer((c) => smtpd.handle(c));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pport = (server.address() as { port: number }).port;
  const zone = await DnsServer.start({ 'postern.test': { MX: [{ preference: 10, exchange: 'mx.postern.test' }] }, 'mx.postern.test': { A: ['127.0.0.1'] } });
  try {
    const cfg = (x: string) => createSmtpAgent(MainConfig.parse(`myhostname = client.postern.test\npostern_dns_servers = 127.0.0.1:${zone.port}\nsmtp_tls_loglevel = 1\n${x}\n`, join(dir, 'main.cf'), dir));
    const r = await send('', `postern.test:${pport}`, cfg(`smtp_tls_security_level = verify\nsmtp_tls_CAfile = ${ca2.certFile}`));
    assert.equal(r.status, 'sent', r.text);
    assert.ok(logs.some((l) => new RegExp(`postern/smtp\\[\\d+\\]: Verified TLS connection established to mx\\.postern\\.test\\[127\\.0\\.0\\.1\\]:${pport}: TLSv1\\.3 with cipher`).test(l)), logs.join('\n'));
    assert.ok(logs.some((l) => /postern\/smtpd\[\d+\]: Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3/.test(l)), logs.join('\n'));
    const r2 = await send('', `[127.0.0.1]:${pport}`, cfg(`smtp_tls_security_level = fingerprint\nsmtp_tls_fingerprint_digest = sha256\nsmtp_tls_fingerprint_cert_match = ${leaf?.fingerprint ?? '00'}`));
    assert.deepEqual([r2.status, r2.text], ['deferred', 'Server certificate not verified']); // another certificate's fingerprint
    const r3 = await send('', `[127.0.0.1]:${pport}`, cfg(`smtp_tls_security_level = fingerprint\nsmtp_tls_fingerprint_digest = sha256\nsmtp_tls_fingerprint_cert_match = ${cert.fingerprint}`));
    assert.equal(r3.status, 'sent', r3.text);
  } finally {
    for (const c of smtpd.sessions) c.destroy();
    server.close();
    await zone.stop();
  }
});

test('smtp_tls_loglevel = 0 (Postfix default): no "established" line, but verification failures are still logged', { skip }, async () => {
  const agent = createSmtpAgent(MainConfig.parse(`myhostname = client.postern.test\npostern_dns_servers = 127.0.0.1:${dns!.port}\nsmtp_tls_security_level = verify\n${CAFILE()}\n`, join(dir, 'main.cf'), dir));
  const r = await send('', `[127.0.0.1]:${port}`, agent);
  assert.equal(r.text, 'Server certificate not verified');
  assert.ok(logged(/num=64:IP address mismatch$/), logs.join('\n'));
  assert.ok(!logged(/TLS connection established/), logs.join('\n'));
});
