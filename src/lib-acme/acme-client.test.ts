/**
 * Tests for acme-client.ts against a hostile CA: a loopback HTTPS server (the test CA's
 * certificate) that answers the directory request with a huge body, malformed JSON, a redirect
 * to a non-loopback address, URLs on another host, or never answers. Each is refused within
 * its bound with an error that says why; a good request to the same server meanwhile is not
 * held up. Plus the CSR and ARI certID encodings checked with openssl.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { AcmeClient, ariCertId } from './acme-client.ts';
import { csrDer, loadKey, newAccountKeyPem, newCertKeyPem } from './acme-crypto.ts';
import { TestCa } from '../../test/harness/test-ca.ts';

let dir: string;
let ca: TestCa;
let server: Server;
let base: string;
const held: { end(): void }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-acme-client-'));
  ca = TestCa.create(dir);
  const leaf = ca.issue('ca-server', ['localhost']);
  server = createServer({ cert: readFileSync(leaf.certFile), key: readFileSync(leaf.keyFile) }, (req, res) => {
    const dirJson = (u: string) => JSON.stringify({ newNonce: `${u}/nonce`, newAccount: `${u}/acct`, newOrder: `${u}/order` });
    switch (req.url) {
      case '/ok': res.end(dirJson(base)); return;
      case '/huge': {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let n = 0;
        const more = () => { while (n++ < 64) { if (!res.write(chunk)) { res.once('drain', more); return; } } res.end(); };
        more();
        return;
      }
      case '/bad': res.end('{"newNonce": "https://localhost/n", '); return;
      case '/array': res.end('[1,2,3]'); return;
      case '/deep': res.end('['.repeat(100000) + ']'.repeat(100000)); return;
      case '/redirect': res.writeHead(302, { Location: 'https://10.1.2.3/dir' }); res.end(); return;
      case '/foreign': res.end(dirJson('https://10.1.2.3')); return;
      case '/slow': held.push(res); return;                    // never answers
      default: res.writeHead(404); res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  for (const r of held) r.end();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const client = (path: string, timeoutMs = 5000) => new AcmeClient({ directoryUrl: `${base}${path}`, caFile: ca.certFile, timeoutMs }, loadKey(newAccountKeyPem()));

test('a good directory is accepted', async () => {
  const d = await client('/ok').directory();
  assert.equal(d.newOrder, `${base}/order`);
});

test('hostile directory answers are refused with a reason', async () => {
  await assert.rejects(client('/huge').directory(), /answer to GET .*\/huge is over 1048576 bytes; refused/);
  await assert.rejects(client('/bad').directory(), /is not JSON/);
  await assert.rejects(client('/array').directory(), /is not a JSON object/);
  await assert.rejects(client('/deep').directory(), /is not a JSON object|is not JSON/);
  await assert.rejects(client('/redirect').directory(), /redirects \(HTTP 302\); redirects are not followed/);
  await assert.rejects(client('/foreign').directory(), /newNonce URL https:\/\/10\.1\.2\.3 is not on the directory's server https:\/\/localhost:\d+; refused/);
  assert.throws(() => new AcmeClient({ directoryUrl: 'http://localhost/dir', timeoutMs: 1000 }, loadKey(newAccountKeyPem())), /must be an https URL/);
});

test('a CA that never answers fails after the time limit; other requests are not held up', async () => {
  const t0 = performance.now();
  const slow = client('/slow', 1500).directory();
  slow.catch(() => {});
  // Meanwhile, the same server answers another client at once.
  const t1 = performance.now();
  await client('/ok').directory();
  assert.ok(performance.now() - t1 < 1500, 'not serialised behind the slow request');
  await assert.rejects(slow, /no complete answer from the CA to GET .*\/slow within 1\.5s/);
  assert.ok(performance.now() - t0 >= 1400);
});

test('the CSR is one openssl accepts, with the names in subjectAltName; RSA and ECDSA', () => {
  for (const type of ['ecdsa-p256', 'rsa-2048'] as const) {
    const der = csrDer(createPrivateKey(newCertKeyPem(type)), ['mail.example.test', 'mta-sts.example.test']);
    const f = join(dir, `csr-${type}.der`);
    writeFileSync(f, der);
    const out = execFileSync('openssl', ['req', '-inform', 'DER', '-in', f, '-noout', '-verify', '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /Subject: CN ?= ?mail\.example\.test/);
    assert.match(out, /DNS:mail\.example\.test, DNS:mta-sts\.example\.test/);
  }
});

test('ARI certID (RFC 9773 §4.1): authority key identifier and serial, base64url', () => {
  const leaf = ca.issue('ari', ['mail.example.test']);
  const x = new X509Certificate(leaf.certPem);
  const text = execFileSync('openssl', ['x509', '-in', leaf.certFile, '-noout', '-ext', 'authorityKeyIdentifier'], { encoding: 'utf8' });
  const aki = /([0-9A-F]{2}(?::[0-9A-F]{2})+)/.exec(text)![1]!.replace(/:/g, '');
  let serial = Buffer.from(x.serialNumber.length % 2 ? `0${x.serialNumber}` : x.serialNumber, 'hex');
  if (serial[0]! & 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  assert.equal(ariCertId(leaf.certPem), `${Buffer.from(aki, 'hex').toString('base64url')}.${serial.toString('base64url')}`);
});
