/**
 * The MTA-STS policy Postern publishes (RFC 8461 §3.2, §3.3), served by the HTTP service of a
 * real Master at https://mta-sts.example.test/.well-known/mta-sts.txt on loopback, with the id
 * `postern dns --mta-sts` prints in the TXT record: fetched and validated by Postern's own
 * MTA-STS client (src/smtp/smtp-tls-mta-sts.ts, through a loopback DNS server) and by Python's
 * urllib with the test CA.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { logger, setLogSink } from '../../src/util/msg.ts';
import { Master } from '../../src/master/master.ts';
import { loadConfigSet } from '../../src/master/master-config.ts';
import { SERVICES } from '../../src/master/master-services.ts';
import { MtaStsCache, parseMtaStsPolicy } from '../../src/smtp/smtp-tls-mta-sts.ts';
import { createDnsResolver } from '../../src/util/dns-resolver.ts';
import { freePort } from '../harness/free-port.ts';
import { TestCa } from '../harness/test-ca.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { POSTERN } from '../harness/postern-system.ts';

const run = promisify(execFile);
let dir: string;
let master: Master;
let port: number;
let ca: TestCa;
let dns: DnsServer | undefined;
const lines: string[] = [];
let restoreSink: ReturnType<typeof setLogSink>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-mta-sts-'));
  restoreSink = setLogSink((l) => { lines.push(l); });
  ca = TestCa.create(dir);
  const leaf = ca.issue('mail', ['mail.example.test', 'mta-sts.example.test']);
  port = await freePort();
  writeFileSync(join(dir, 'main.cf'), [
    `queue_directory = ${dir}/queue`, 'inet_interfaces = loopback-only', 'inet_protocols = ipv4',
    'myhostname = mail.example.test', 'mydomain = example.test',
    `postern_https_listen = ${port}`, `smtpd_tls_cert_file = ${leaf.certFile}`, `smtpd_tls_key_file = ${leaf.keyFile}`,
    'postern_mta_sts_mode = enforce', 'postern_mta_sts_domains = $mydomain', '',
  ].join('\n'));
  writeFileSync(join(dir, 'master.cf'), '');
  writeFileSync(join(dir, 'dovecot.conf'), 'protocols = none\n');
  master = new Master({ configDir: dir, load: () => loadConfigSet(dir), registry: { httpd: SERVICES.httpd! } });
  await master.start();
});
after(async () => {
  await master?.stop();
  await dns?.stop();
  setLogSink(restoreSink);
  rmSync(dir, { recursive: true, force: true });
});

async function printedId(): Promise<string> {
  const { stdout } = await run(POSTERN, ['-c', dir, 'dns', 'example.test', '--mta-sts', '--ip', '192.0.2.1']);
  const m = /^_mta-sts\.example\.test\. .* "v=STSv1; id=([A-Za-z0-9]{1,32})"$/m.exec(stdout);
  assert.ok(m, stdout);
  return m[1]!;
}

test("Postern's MTA-STS client fetches the served policy with the id `postern dns --mta-sts` prints", async () => {
  const id = await printedId();
  dns = await DnsServer.start({
    '_mta-sts.example.test': { TXT: [`v=STSv1; id=${id}`] },
    'mta-sts.example.test': { A: ['127.0.0.1'] },
  });
  const cache = new MtaStsCache({
    resolver: () => createDnsResolver({ servers: [`127.0.0.1:${dns!.port}`] }),
    port, ca: [readFileSync(ca.certFile, 'utf8')], timeoutMs: 10_000, log: logger('smtp'),
  });
  const p = await cache.lookup('example.test');
  assert.ok(p, lines.join('\n'));
  assert.equal(p.mode, 'enforce');
  assert.deepEqual(p.mx, ['mail.example.test']);
  assert.equal(p.maxAge, 604800);
  assert.equal(p.id, id);
});

test('Python urllib fetches and validates the policy over HTTPS with the test CA; another host name gets none', async () => {
  const py = `import socket, ssl, urllib.request
real = socket.getaddrinfo
def fake(host, *a, **k):
    return real('127.0.0.1' if host == 'mta-sts.example.test' else host, *a, **k)
socket.getaddrinfo = fake
ctx = ssl.create_default_context(cafile=${JSON.stringify(ca.certFile)})
r = urllib.request.urlopen('https://mta-sts.example.test:${port}/.well-known/mta-sts.txt', context=ctx, timeout=10)
print(r.status, r.headers['Content-Type'])
print(r.read().decode(), end='')`;
  const { stdout } = await run('python3', ['-c', py]);
  const [status, ...body] = stdout.split('\n');
  assert.equal(status, '200 text/plain; charset=utf-8');
  const text = body.join('\n');
  assert.deepEqual(text.split('\n'), ['version: STSv1\r', 'mode: enforce\r', 'mx: mail.example.test\r', 'max_age: 604800\r', '']);
  assert.deepEqual(parseMtaStsPolicy(text), { mode: 'enforce', mx: ['mail.example.test'], maxAge: 604800 });
  const other = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '--resolve', `mail.example.test:${port}:127.0.0.1`,
    `https://mail.example.test:${port}/.well-known/mta-sts.txt`]);
  assert.equal(other.stdout, '404');
});

test('the id changes when the policy changes, and only then', async () => {
  const a = await printedId();
  assert.equal(await printedId(), a);
  appendFileSync(join(dir, 'main.cf'), 'postern_mta_sts_mode = testing\n');
  assert.notEqual(await printedId(), a);
});
