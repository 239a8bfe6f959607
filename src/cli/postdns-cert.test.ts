/**
 * Tests for the certificate row of `postern dns --check` (postdns-check.ts certCheck) with
 * certificates made by openssl (test/harness/test-ca.ts): a CA-issued one with few days left,
 * one that lacks the MTA-STS host, one valid for long, a self-signed one.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { certCheck } from './postdns-check.ts';
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
