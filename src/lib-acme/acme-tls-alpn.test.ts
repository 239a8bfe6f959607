/**
 * The ACME answers of a running HTTP service (a real Master with the httpd service, curl and
 * openssl s_client on loopback): tls-alpn-01 (RFC 8737) challenge certificates for a ClientHello
 * offering only acme-tls/1, ordinary HTTPS for everyone else, and hostile input on both
 * listeners (garbage instead of a ClientHello, a stalled ClientHello, a path traversal on the
 * http-01 path); other clients are served meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SERVICES } from '../master/master-services.ts';
import { challengeCertificate, parseClientHello } from './acme-tls-alpn.ts';
import type { TestCa } from '../../test/harness/test-ca.ts';
import { startHttpdMaster, type HttpdMaster } from '../../test/harness/httpd-master.ts';

const run = promisify(execFile);
let h: HttpdMaster;
let httpPort: number;
let httpsPort: number;
let ca: TestCa;

before(async () => {
  h = await startHttpdMaster({
    prefix: 'postern-alpn-', names: ['mail.example.test'], httpListen: (p) => String(p),
    mainCf: ({ dir }) => {
      const state = join(dir, 'acme');
      mkdirSync(join(state, 'tls-alpn-01'), { recursive: true });
      mkdirSync(join(state, 'http-01'), { recursive: true });
      writeFileSync(join(state, 'tls-alpn-01', 'mail.example.test.pem'), challengeCertificate('mail.example.test', 'tok.thumbprint'));
      writeFileSync(join(state, 'http-01', 'Tok_en-1'), 'Tok_en-1.thumbprint');
      writeFileSync(join(state, 'status.json'), '{"secret": true}');
      return ['postern_http_timeout = 2s',
        // The ACME client itself is not in this master's registry: nothing contacts this URL.
        'postern_acme_directory = https://localhost:9/dir', 'postern_acme_challenges = tls-alpn-01, http-01',
        `postern_acme_state_directory = ${state}`];
    },
    registry: { httpd: SERVICES.httpd! },
  });
  ({ httpPort, httpsPort, ca } = h);
});
after(async () => { await h?.stop(); });

async function sClient(args: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `echo Q | timeout 10 openssl s_client -connect 127.0.0.1:${httpsPort} ${args} 2>&1; true`]);
  return stdout;
}

test('tls-alpn-01: an acme-tls/1-only hello gets the challenge certificate; others the ordinary one', async () => {
  const out = await sClient('-servername mail.example.test -alpn acme-tls/1');
  assert.match(out, /ALPN protocol: acme-tls\/1/);
  const { stdout: text } = await run('sh', ['-c', `echo Q | timeout 10 openssl s_client -connect 127.0.0.1:${httpsPort} -servername mail.example.test -alpn acme-tls/1 2>/dev/null | openssl x509 -noout -text`]);
  assert.match(text, /1\.3\.6\.1\.5\.5\.7\.1\.31: critical/);
  assert.match(text, /DNS:mail\.example\.test\s*$/m);
  assert.doesNotMatch(text, /localhost|IP Address/);
  // No pending challenge for that name: closed without a certificate.
  assert.doesNotMatch(await sClient('-servername other.example.test -alpn acme-tls/1'), /BEGIN CERTIFICATE/);
  // An ordinary client (ALPN h2 + http/1.1, or none) gets the mail certificate and a page.
  const ord = await sClient('-servername mail.example.test -alpn h2,http/1.1');
  assert.match(ord, /issuer=CN ?= ?Postern Test CA/);
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '--resolve', `mail.example.test:${httpsPort}:127.0.0.1`, `https://mail.example.test:${httpsPort}/nothing`]);
  assert.equal(stdout, '404');
});

test('http-01 answers only base64url tokens; traversal toward other state files is refused', async () => {
  const get = async (p: string) => (await run('curl', ['-s', '--path-as-is', '-w', ' %{http_code}', `http://127.0.0.1:${httpPort}${p}`])).stdout;
  assert.equal(await get('/.well-known/acme-challenge/Tok_en-1'), 'Tok_en-1.thumbprint 200');
  assert.match(await get('/.well-known/acme-challenge/../status.json'), / 400$/);
  assert.match(await get('/.well-known/acme-challenge/..%2fstatus.json'), / 400$/);
  assert.match(await get('/.well-known/acme-challenge/%2e%2e/status.json'), / 400$/);
  assert.match(await get('/.well-known/acme-challenge/status.json'), / 404$/, 'a dot is not in the token alphabet');
  assert.match(await get('/.well-known/acme-challenge/'), / 404$/);
});

test('hostile bytes on the HTTPS listener: garbage, a stalled ClientHello; others served meanwhile', async () => {
  const raw = (data: Buffer) => new Promise<number>((resolve) => {
    const t0 = performance.now();
    const s = connect(httpsPort, '127.0.0.1', () => s.write(data));
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => resolve(performance.now() - t0));
  });
  const garbage = raw(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const stalled = raw(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]));   // a 16 KiB record that never comes
  const huge = raw(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]));           // over the record limit
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', ca.certFile, '--resolve', `mail.example.test:${httpsPort}:127.0.0.1`, `https://mail.example.test:${httpsPort}/x`]);
  assert.equal(stdout, '404');
  await garbage;
  await huge;
  const held = await stalled;
  assert.ok(held >= 1500, `closed by the time limit (${held} ms)`);
});

test('ClientHello parser: malformed records give no ALPN', () => {
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x02, 0x01, 0x00])), undefined);
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1')), undefined);
  const junk = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03]), Buffer.alloc(32), Buffer.from([0xff])]);
  const r = parseClientHello(junk);
  assert.ok(r === undefined || r.alpn.length === 0);
});
