/**
 * SMTP TLS Reporting (RFC 8460) end to end: Postern's smtp client delivers to real Postfix 3.7
 * smtpd on loopback (one listener with a certificate for mx.example.test from a private CA, one
 * without STARTTLS) for domains with MTA-STS policies (enforce and testing, from a loopback
 * HTTPS server) and without; the outcomes it records become one aggregate report per domain,
 * checked field by field against RFC 8460 §4.4 (the JSON schema of its appendix), and the
 * report mail (§5.3) is queued through cleanup for a domain that publishes _smtp._tls.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { summarizeFile } from '../../src/tlsrpt/tlsrpt-summary.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { QueueFile } from '../../src/global/queue-file-reader.ts';
import { CleanupSession } from '../../src/cleanup/cleanup.ts';
import { createSmtpAgent } from '../../src/smtp/smtp.ts';
import type { RecipientResult } from '../../src/global/deliver-request.ts';
import { logger, setLogSink } from '../../src/util/msg.ts';
import { RESULT_TYPES } from '../../src/global/tls-rpt.ts';
import { sendTlsRptReports, tlsRptReportsFor } from '../../src/tlsrpt/tlsrpt.ts';
import { cleanup } from '../../src/master/master-clients.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { TestCa } from '../harness/test-ca.ts';
import { freePort } from '../harness/free-port.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const skip = RealPostfix.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-tlsrpt-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
let pf: RealPostfix | undefined;
let dns: DnsServer | undefined;
let https: Server | undefined;
let receiver: Server | undefined;
let receiverPort = 0;
const posted: { url: string; type: string; body: Buffer }[] = [];
let tlsPort = 0;
let plainPort = 0;
let httpsPort = 0;
let ca: TestCa;
let config: MainConfig;

before(async () => {
  if (skip) return;
  tlsPort = await freePort();
  plainPort = await freePort();
  ca = TestCa.create(dir);
  const leaf = ca.issue('mx', ['mx.example.test']);
  const sts = ca.issue('mta-sts', ['mta-sts.sts-ok.test', 'mta-sts.badmx.test', 'mta-sts.mismatch.test', 'mta-sts.notls.test', 'mta-sts.fetchfail.test', 'mta-sts.badpolicy.test']);
  pf = await RealPostfix.start({
    mainCf: `smtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${leaf.certFile}\nsmtpd_tls_key_file = ${leaf.keyFile}\nmydestination = mx.example.test\nlocal_recipient_maps =\nalias_maps =\nlocal_transport = discard:\nrelay_domains = sts-ok.test badmx.test mismatch.test notls.test plain.test fetchfail.test badpolicy.test\nrelay_transport = discard:\n`,
    masterCf: `127.0.0.1:${tlsPort} inet n - n - - smtpd\n127.0.0.1:${plainPort} inet n - n - - smtpd -o smtpd_tls_security_level=none`,
  });
  const policies: Record<string, string> = {
    'mta-sts.sts-ok.test': 'version: STSv1\nmode: enforce\nmx: mx.example.test\nmax_age: 86400\n',
    'mta-sts.badmx.test': 'version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n',
    'mta-sts.mismatch.test': 'version: STSv1\nmode: enforce\nmx: mx.mismatch.test\nmax_age: 86400\n',
    'mta-sts.notls.test': 'version: STSv1\nmode: testing\nmx: mx.notls.test\nmax_age: 86400\n',
    'mta-sts.badpolicy.test': 'version: STSv1\nmode: strict\nmx: mx.example.test\nmax_age: 86400\n',
  };
  https = createServer({ cert: readFileSync(sts.certFile), key: readFileSync(sts.keyFile) }, (req, res) => {
    const body = policies[String(req.headers.host ?? '').replace(/:\d+$/, '')];
    if (body === undefined || req.url !== '/.well-known/mta-sts.txt') { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((r) => https!.listen(0, '127.0.0.1', () => r()));
  httpsPort = (https.address() as { port: number }).port;
  // An https rua receiver (§5.4): takes POSTs, except /moved which redirects elsewhere.
  const rcv = ca.issue('reports', ['reports.plain.test', 'reports.notls.test']);
  receiver = createServer({ cert: readFileSync(rcv.certFile), key: readFileSync(rcv.keyFile) }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      if (req.url === '/moved') { res.writeHead(302, { Location: 'https://192.0.2.1/tlsrpt' }); res.end(); return; }
      posted.push({ url: String(req.url), type: String(req.headers['content-type']), body: Buffer.concat(parts) });
      res.writeHead(201); res.end();
    });
  });
  await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', () => r()));
  receiverPort = (receiver.address() as { port: number }).port;
  const zone: Record<string, { A?: string[]; TXT?: string[]; MX?: { preference: number; exchange: string }[] }> = {
    'reports.plain.test': { A: ['127.0.0.1'] },
    'reports.notls.test': { A: ['127.0.0.1'] },
    '_smtp._tls.plain.test': { TXT: [`v=TLSRPTv1; rua=https://reports.plain.test:${receiverPort}/tlsrpt`] },
    '_smtp._tls.notls.test': { TXT: [`v=TLSRPTv1; rua=https://reports.notls.test:${receiverPort}/moved`] },
    'mx.example.test': { A: ['127.0.0.1'] },
    'mx.mismatch.test': { A: ['127.0.0.1'] },
    'mx.notls.test': { A: ['127.0.0.1'] },
    'sts-ok.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    'badmx.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    'mismatch.test': { MX: [{ preference: 10, exchange: 'mx.mismatch.test' }] },
    'notls.test': { MX: [{ preference: 10, exchange: 'mx.notls.test' }] },
    'plain.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    'fetchfail.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    'badpolicy.test': { MX: [{ preference: 10, exchange: 'mx.example.test' }] },
    '_smtp._tls.sts-ok.test': { TXT: ['v=TLSRPTv1; rua=mailto:tls-reports@sts-ok.test'] },
  };
  for (const d of ['sts-ok', 'badmx', 'mismatch', 'notls', 'fetchfail', 'badpolicy']) {
    zone[`_mta-sts.${d}.test`] = { TXT: ['v=STSv1; id=1'] };
    zone[`mta-sts.${d}.test`] = { A: ['127.0.0.1'] };
  }
  dns = await DnsServer.start(zone);
  config = MainConfig.parse([
    'myhostname = client.postern.test', 'mydomain = postern.test', `queue_directory = ${queue.dir}`,
    `postern_dns_servers = 127.0.0.1:${dns.port}`, 'smtp_connection_cache_on_demand = no',
    'postern_mta_sts = yes', `postern_mta_sts_port = ${httpsPort}`, `smtp_tls_CAfile = ${ca.certFile}`, 'smtp_tls_security_level = may',
    'postern_tlsrpt_reporting = yes', `postern_tlsrpt_directory = ${dir}/tlsrpt`, '',
  ].join('\n'), join(dir, 'main.cf'), dir);
});
after(async () => {
  await pf?.stop();
  await dns?.stop();
  https?.close();
  receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function send(domain: string, port: number): Promise<RecipientResult> {
  const c = await CleanupSession.open({ myhostname: 'client.postern.test', myorigin: 'postern.test', headerSizeLimit: 102400, messageSizeLimit: 10240000, alwaysAddMissingHeaders: false }, queue,
    { sender: 'sender@postern.test', attrs: {}, addMissingHeaders: false });
  c.addRecipient({ address: `user@${domain}`, orig: `user@${domain}` });
  await c.write(Buffer.from('Subject: tls\n\nhello\n'));
  const res = await c.finish();
  assert.ok('queueId' in res);
  const qf = await QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
  const agent = createSmtpAgent(config);
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: `${domain}:${port}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  return r!;
}

test('deliveries with and without TLS failures → one RFC 8460 report per domain, field by field', { skip }, async () => {
  assert.equal((await send('sts-ok.test', tlsPort)).status, 'sent');
  assert.equal((await send('sts-ok.test', tlsPort)).status, 'sent');
  const bad = await send('badmx.test', tlsPort);
  assert.deepEqual([bad.status, bad.dsn], ['deferred', '4.7.5']);
  const mism = await send('mismatch.test', tlsPort);
  assert.deepEqual([mism.status, mism.dsn, mism.text], ['deferred', '4.7.5', 'Server certificate not verified']);
  assert.equal((await send('notls.test', plainPort)).status, 'sent', 'testing mode delivers in clear');
  assert.equal((await send('plain.test', tlsPort)).status, 'sent');
  // A policy announced but not to be had (404; an invalid mode): delivered as without a policy,
  // and reported as an sts failure (§4.3.2).
  assert.equal((await send('fetchfail.test', tlsPort)).status, 'sent');
  assert.equal((await send('badpolicy.test', tlsPort)).status, 'sent');

  const day = new Date().toISOString().slice(0, 10);
  const reports = tlsRptReportsFor(config, day);
  assert.deepEqual([...reports.keys()].sort(), ['badmx.test', 'badpolicy.test', 'fetchfail.test', 'mismatch.test', 'notls.test', 'plain.test', 'sts-ok.test']);
  for (const [d, kind] of [['fetchfail.test', 'sts-policy-fetch-error'], ['badpolicy.test', 'sts-policy-invalid']] as const) {
    const ps = reports.get(d)!.policies as Record<string, any>[];
    const sts = ps.find((p) => p.policy['policy-type'] === 'sts')!;
    assert.deepEqual(sts.summary, { 'total-successful-session-count': 0, 'total-failure-session-count': 1 }, d);
    assert.equal(sts['failure-details'][0]['result-type'], kind);
    const none = ps.find((p) => p.policy['policy-type'] === 'no-policy-found')!;
    assert.deepEqual(none.summary, { 'total-successful-session-count': 1, 'total-failure-session-count': 0 }, d);
    reports.delete(d);
  }
  for (const [domain, r] of reports) {
    // RFC 8460 §4.4 / Appendix B: the required top-level members and their types.
    assert.deepEqual(Object.keys(r).sort(), ['contact-info', 'date-range', 'organization-name', 'policies', 'report-id'], domain);
    assert.equal(r['organization-name'], 'postern.test');
    assert.equal(r['contact-info'], 'postmaster@postern.test');
    assert.match(String(r['report-id']), /^\S+$/);
    assert.deepEqual(r['date-range'], { 'start-datetime': `${day}T00:00:00Z`, 'end-datetime': `${day}T23:59:59Z` });
    const policies = r.policies as Record<string, any>[];
    assert.equal(policies.length, 1, domain);
    const p = policies[0]!;
    assert.ok(['sts', 'tlsa', 'no-policy-found'].includes(p.policy['policy-type']));
    assert.equal(p.policy['policy-domain'], domain);
    assert.ok(Number.isInteger(p.summary['total-successful-session-count']) && Number.isInteger(p.summary['total-failure-session-count']));
    for (const f of p['failure-details'] ?? []) {
      assert.ok((RESULT_TYPES as readonly string[]).includes(f['result-type']), f['result-type']);
      assert.ok(Number.isInteger(f['failed-session-count']) && f['failed-session-count'] > 0);
      if (f['receiving-ip'] !== undefined) assert.equal(f['receiving-ip'], '127.0.0.1');
    }
  }
  const pol = (d: string) => (reports.get(d)!.policies as Record<string, any>[])[0]!;
  assert.deepEqual(pol('sts-ok.test').policy, {
    'policy-type': 'sts', 'policy-domain': 'sts-ok.test',
    'policy-string': ['version: STSv1', 'mode: enforce', 'mx: mx.example.test', 'max_age: 86400'], 'mx-host': ['mx.example.test'],
  });
  assert.deepEqual(pol('sts-ok.test').summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 0 });
  assert.equal(pol('sts-ok.test')['failure-details'], undefined);
  assert.deepEqual(pol('badmx.test').summary, { 'total-successful-session-count': 0, 'total-failure-session-count': 1 });
  assert.equal(pol('badmx.test')['failure-details'][0]['result-type'], 'validation-failure');
  assert.equal(pol('badmx.test')['failure-details'][0]['receiving-mx-hostname'], 'mx.example.test');
  const m = pol('mismatch.test')['failure-details'][0];
  assert.deepEqual([m['result-type'], m['receiving-mx-hostname'], m['receiving-ip'], m['sending-mta-ip'], m['failed-session-count']],
    ['certificate-host-mismatch', 'mx.mismatch.test', '127.0.0.1', '127.0.0.1', 1]);
  assert.equal(pol('notls.test').policy['policy-string'][1], 'mode: testing');
  assert.equal(pol('notls.test')['failure-details'][0]['result-type'], 'starttls-not-supported');
  assert.deepEqual(pol('plain.test').policy, { 'policy-type': 'no-policy-found', 'policy-domain': 'plain.test' });
  assert.deepEqual(pol('plain.test').summary, { 'total-successful-session-count': 1, 'total-failure-session-count': 0 });

  // The report mail (§5.3), for the one domain that publishes _smtp._tls.
  const lines = await sendTlsRptReports(config, day, { cleanup, log: logger('tlsrpt') });
  const queued = lines.find((l) => l.startsWith('sts-ok.test: report '));
  assert.ok(queued, lines.join('\n'));
  assert.ok(lines.includes('badmx.test: no _smtp._tls record, no report'));
  // https rua (§5.4): POSTed gzipped; a redirect is not followed.
  assert.ok(lines.some((l) => new RegExp(`^plain\\.test: report \\S+ posted to https://reports\\.plain\\.test:${receiverPort}/tlsrpt: HTTP 201$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /^notls\.test: report to https:\/\/reports\.notls\.test:\d+\/moved failed: HTTP 302 \(redirects are not followed\)$/.test(l)), lines.join('\n'));
  assert.equal(posted.length, 1);
  assert.equal(posted[0]!.type, 'application/tlsrpt+gzip');
  assert.deepEqual(JSON.parse(gunzipSync(posted[0]!.body).toString('utf8')).policies, reports.get('plain.test')!.policies);
  const qid = / queued as (\S+) to tls-reports@sts-ok\.test$/.exec(queued)![1]!;
  const qf = await QueueFile.open(queue.path('incoming', qid), qid);
  assert.deepEqual(qf.recipients.map((r) => r.address), ['tls-reports@sts-ok.test']);
  const msg = (await qf.content()).toString('latin1');
  assert.match(msg, /^TLS-Report-Domain: sts-ok\.test$/m);
  assert.match(msg, /^TLS-Report-Submitter: postern\.test$/m);
  assert.match(msg, /^Subject: Report Domain: sts-ok\.test Submitter: postern\.test Report-ID: <\S+>$/m);
  assert.match(msg, /^Content-Type: multipart\/report; report-type="tlsrpt"; boundary=/m);
  assert.match(msg, /filename="postern\.test!sts-ok\.test!\d+!\d+\.json\.gz"/);
  const b64 = /Content-Type: application\/tlsrpt\+gzip\r?\nContent-Transfer-Encoding: base64\r?\nContent-Disposition: [^\n]*\r?\n\r?\n([A-Za-z0-9+/=\r\n]+)\r?\n--/.exec(msg)![1]!;
  const attached = JSON.parse(gunzipSync(Buffer.from(b64.replace(/\s/g, ''), 'base64')).toString('utf8'));
  assert.deepEqual(attached.policies, reports.get('sts-ok.test')!.policies);
});

test('reports received for our domains are summarised; hostile report files are refused', { skip }, async () => {
  const day = new Date().toISOString().slice(0, 10);
  // The report mail queued above for sts-ok.test, as a mailbox file.
  const qids = readdirSync(join(queue.dir, 'incoming'));
  let mail = '';
  for (const q of qids) {
    const c = (await (await QueueFile.open(queue.path('incoming', q), q)).content()).toString('latin1');
    if (c.includes('TLS-Report-Domain: sts-ok.test')) mail = c;
  }
  assert.ok(mail);
  const f = join(dir, 'report.eml');
  writeFileSync(f, mail);
  assert.deepEqual(summarizeFile(f), [`postern.test ${day}: sts-ok.test sts: 2 successful, 0 failed`]);
  const mis = join(dir, 'mismatch.json.gz');
  writeFileSync(mis, gzipSync(JSON.stringify(tlsRptReportsFor(config, day).get('mismatch.test'))));
  const sm = summarizeFile(mis);
  assert.equal(sm.length, 2);
  assert.equal(sm[0], `postern.test ${day}: mismatch.test sts: 0 successful, 1 failed`);
  assert.match(sm[1]!, /^ {2}certificate-host-mismatch: 1 from 127\.0\.0\.1 to mx\.mismatch\.test\[127\.0\.0\.1\]/);
  const bomb = join(dir, 'bomb.json.gz');
  writeFileSync(bomb, gzipSync(Buffer.alloc(20 << 20, 0x20)));
  assert.throws(() => summarizeFile(bomb), /Cannot create a Buffer larger than|maxOutputLength|larger than/i);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"policies": 5}');
  assert.throws(() => summarizeFile(bad), /not an RFC 8460 report/);
  writeFileSync(bad, 'From: x\n\nhello');
  assert.throws(() => summarizeFile(bad), /neither a JSON report nor a mail/);
});
