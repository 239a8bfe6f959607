/**
 * Tests for self-signed.ts: the certificate is checked by two independent readers (OpenSSL's
 * `openssl x509 -text` and Node's X509Certificate) and used in a real TLS handshake on 127.0.0.1.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { connect, createServer } from 'node:tls';
import { generateSelfSigned, isDnsName, oid, writeSelfSigned } from './self-signed.ts';

function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text'], { input: pem, encoding: 'utf8' });
}

test('OID encoding matches X.690 examples', () => {
  assert.equal(oid('1.2.840.113549.1.1.11').toString('hex'), '06092a864886f70d01010b');
  assert.equal(oid('2.5.29.17').toString('hex'), '0603551d11');
});

for (const keyType of ['rsa', 'ec'] as const) {
  test(`${keyType}: openssl and node read the certificate with the expected names and dates`, () => {
    const now = new Date('2026-11-27T12:00:00Z');
    const c = generateSelfSigned({ hostname: 'mail.example.test', keyType, now, days: 365 });
    const text = opensslText(c.certPem);
    assert.match(text, /Version: 3 \(0x2\)/);
    assert.match(text, /Subject: CN ?= ?mail\.example\.test/);
    assert.match(text, /Issuer: CN ?= ?mail\.example\.test/);
    assert.match(text, /DNS:mail\.example\.test, DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /TLS Web Server Authentication/);
    assert.match(text, keyType === 'rsa' ? /sha256WithRSAEncryption[\s\S]*Public-Key: \(2048 bit\)/ : /ecdsa-with-SHA256[\s\S]*prime256v1/);

    const x = new X509Certificate(c.certPem);
    assert.equal(x.subject, 'CN=mail.example.test');
    assert.equal(new Date(x.validFrom).toISOString(), '2026-11-27T11:00:00.000Z');
    assert.equal(new Date(x.validTo).toISOString(), '2027-11-27T12:00:00.000Z');
    assert.ok(x.verify(x.publicKey), 'self-signature verifies');
    assert.ok(x.checkPrivateKey(createPrivateKey(c.keyPem)), 'key matches certificate');
    assert.equal(x.checkHost('localhost'), 'localhost');
    assert.equal(x.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(x.checkHost('other.example'), undefined);
    assert.equal(x.ca, false);
  });
}

test('dates from 2050 on use GeneralizedTime (RFC 5280 §4.1.2.5)', () => {
  const c = generateSelfSigned({ hostname: 'h.example', keyType: 'ec', now: new Date('2049-12-01T00:00:00Z'), days: 60 });
  const x = new X509Certificate(c.certPem);
  assert.equal(new Date(x.validTo).toISOString(), '2050-01-30T00:00:00.000Z');
  assert.match(opensslText(c.certPem), /Not After : Jan 30 00:00:00 2050 GMT/);
});

test('a host name that is not a DNS name stays out of the SAN, an IP literal goes in as iPAddress', () => {
  const c = generateSelfSigned({ hostname: 'bad_name!', keyType: 'ec', altNames: ['192.0.2.7', '2001:db8::25'] });
  const san = new X509Certificate(c.certPem).subjectAltName ?? '';
  assert.doesNotMatch(san, /bad_name/);
  assert.match(san, /IP Address:192\.0\.2\.7/);
  assert.match(san, /IP Address:2001:DB8:0:0:0:0:0:25/i);
  assert.equal(isDnsName('mail.example.test'), true);
  assert.equal(isDnsName('-bad.example'), false);
  assert.equal(isDnsName('a'.repeat(64) + '.example'), false);
});

test('a real TLS handshake on 127.0.0.1 verifies against the certificate as trust anchor', async () => {
  const c = generateSelfSigned({ hostname: 'mail.example.test' });
  const server = createServer({ cert: c.certPem, key: c.keyPem }, (s) => s.end('hello\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    for (const servername of ['localhost', 'mail.example.test']) {
      const got = await new Promise<string>((resolve, reject) => {
        const sock = connect({ host: '127.0.0.1', port, servername, ca: c.certPem }, () => {
          assert.equal(sock.authorized, true);
          let data = '';
          sock.on('data', (d) => { data += d; });
          sock.on('end', () => resolve(data));
        });
        sock.on('error', reject);
      });
      assert.equal(got, 'hello\n');
    }
    // And a name the certificate does not carry is refused.
    await assert.rejects(new Promise((resolve, reject) => {
      const sock = connect({ host: '127.0.0.1', port, servername: 'other.example', ca: c.certPem }, () => resolve(sock.end()));
      sock.on('error', reject);
    }), /does not match|altnames/i);
  } finally {
    server.close();
  }
});

test('writeSelfSigned writes the key 0600 and the certificate 0644 and says so', () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-tls-'));
  try {
    const lines: string[] = [];
    const cert = join(dir, 'tls', 'cert.pem');
    const key = join(dir, 'tls', 'key.pem');
    writeSelfSigned(cert, key, { hostname: 'localhost', keyType: 'ec' }, (l) => lines.push(l));
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.equal(statSync(cert).mode & 0o777, 0o644);
    assert.match(readFileSync(key, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
    assert.deepEqual(lines, [`postern: generated a self-signed certificate in ${cert}; replace it with a real one (smtpd_tls_cert_file, ssl_cert)`]);
    // OpenSSL reads the key file too (Postfix and Dovecot load it through OpenSSL).
    execFileSync('openssl', ['pkey', '-in', key, '-noout']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
