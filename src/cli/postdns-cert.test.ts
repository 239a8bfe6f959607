/**
 * Tests for the certificate row of `postern dns --check` (postdns-check.ts certCheck) with
 * certificates made by openssl (test/harness/test-ca.ts): a CA-issued one with few days left,
 * one that lacks the MTA-STS host, one valid for long, a self-signed one.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certCheck, checkPublished } from './postdns-check.ts';
import { createDnsResolver } from '../util/dns-resolver.ts';
import { DnsServer } from '../../test/harness/dns-server.ts';
import { TestCa } from '../../test/harness/test-ca.ts';
import { writeSelfSigned } from '../lib-tls/self-signed.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-dns-cert-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('certificate row: days left, names, self-signed', () => {
  const ca = TestCa.create(dir);
  const leaf = ca.issue('mail', ['mail.example.test', 'mta-sts.example.test']);   // 2 days
  const short = certCheck(leaf.certFile, 'mail.example.test', new Date(), ['mta-sts.example.test']);
  assert.equal(short.status, 'WARNING');
  assert.match(short.detail, /issued by CN=Postern Test CA, but only 1 days left \(until .*\): postern cert renew/);
  // Not valid yet.
  const early = certCheck(leaf.certFile, 'mail.example.test', new Date(Date.now() - 30 * 86400_000 + 60_000), []);
  assert.equal(early.status, 'MISMATCH', 'not valid yet then');
  const only = ca.issue('only', ['mail.example.test']);
  const noSts = certCheck(only.certFile, 'mail.example.test', new Date(), ['mta-sts.example.test']);
  assert.equal(noSts.status, 'WARNING');
  assert.match(noSts.detail, /does not name mta-sts\.example\.test/);
  assert.equal(certCheck(only.certFile, 'other.example.test').status, 'MISMATCH');
  writeSelfSigned(join(dir, 's.crt'), join(dir, 's.key'), { hostname: 'mail.example.test' });
  assert.match(certCheck(join(dir, 's.crt'), 'mail.example.test').detail, /^self-signed/);
});

test('--check: the certificate must also name the published MX hosts that are this host', async () => {
  mkdirSync(join(dir, 'mx'), { recursive: true });
  const ca = TestCa.create(join(dir, 'mx'));
  const leaf = ca.issue('mailonly', ['mail.example.test']);
  const dns = await DnsServer.start({
    'example.test': { MX: [{ preference: 10, exchange: 'mail.example.test' }, { preference: 20, exchange: 'mx2.example.test' }, { preference: 30, exchange: 'mx.other.test' }] },
    'mail.example.test': { A: ['192.0.2.25'] },
    'mx2.example.test': { A: ['192.0.2.25'] },
    'mx.other.test': { A: ['198.51.100.1'] },
  });
  try {
    const deps = { resolver: createDnsResolver({ servers: [`127.0.0.1:${dns.port}`], timeoutMs: 1000, tries: 1 }), reverse: async () => [] };
    const lines = await checkPublished({ domain: 'example.test', myhostname: 'mail.example.test', addresses: ['192.0.2.25'], dkim: [], certFile: leaf.certFile }, deps);
    const tls = lines.find((l) => l.what === 'TLS')!;
    assert.equal(tls.status, 'WARNING');
    assert.match(tls.detail, /^does not name mx2\.example\.test \(/, 'mx.other.test is another host: not required');
    const both = ca.issue('both', ['mail.example.test', 'mx2.example.test']);
    const ok = (await checkPublished({ domain: 'example.test', myhostname: 'mail.example.test', addresses: ['192.0.2.25'], dkim: [], certFile: both.certFile }, deps)).find((l) => l.what === 'TLS')!;
    assert.match(ok.detail, /only 1 days left|days left/);
  } finally {
    await dns.stop();
  }
});
