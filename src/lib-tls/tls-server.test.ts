/**
 * tls-server / tls-describe: Postfix protocol and cipher-grade syntax (with hostile values), the
 * cipher key size in log lines, and the handshake helper's limits (a stalled or garbage
 * ClientHello ends in a rejection, never a hang).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { writeSelfSigned } from './self-signed.ts';
import { cipherBits } from './tls-describe.ts';
import { minProtocol, postfixCipherList, serverContext, startServerTls, TlsConfigError } from './tls-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-tlssrv-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('protocol floors from Postfix syntax: TLSv1.2 unless old versions are named', () => {
  assert.equal(minProtocol(''), 'TLSv1.2');
  assert.equal(minProtocol('!SSLv2, !SSLv3'), 'TLSv1.2');
  assert.equal(minProtocol('>=TLSv1.3'), 'TLSv1.3');
  assert.equal(minProtocol('!SSLv2, !SSLv3, !TLSv1, !TLSv1.1, !TLSv1.2'), 'TLSv1.3');
  assert.equal(minProtocol('TLSv1.1, TLSv1.2'), 'TLSv1.1');
  // Nonsense never lowers the floor.
  for (const v of ['>=TLSv9', 'SSLv3', '!TLSv1.2\0', 'x'.repeat(10_000)]) assert.ok(['TLSv1.2', 'TLSv1.3'].includes(minProtocol(v)), v.slice(0, 20));
});

test('cipher grades map to Postfix 3.7 cipher lists; bad grades and exclusions are named errors', () => {
  const c = MainConfig.parse('');
  const get = (n: string) => c.get(n);
  assert.equal(postfixCipherList('medium', 'smtpd_tls_ciphers', get), 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH');
  assert.equal(postfixCipherList('HIGH', 'smtpd_tls_mandatory_ciphers', get, ['RC4', 'aNULL']), 'aNULL:-aNULL:HIGH:@STRENGTH:!RC4:!aNULL');
  assert.throws(() => postfixCipherList('strong', 'smtpd_tls_ciphers', get), /smtpd_tls_ciphers: invalid cipher grade "strong"/);
  assert.throws(() => postfixCipherList('medium', 'smtpd_tls_ciphers', get, ['RC4:ALL']), /invalid cipher exclusion "RC4:ALL"/);
  assert.throws(() => postfixCipherList('medium', 'smtpd_tls_ciphers', get, ['a\0b']), TlsConfigError);
});

test('key sizes in log lines come from the cipher, not from the digest', () => {
  assert.equal(cipherBits('TLS_AES_256_GCM_SHA384'), 256);
  assert.equal(cipherBits('TLS_AES_128_GCM_SHA256'), 128);
  assert.equal(cipherBits('ECDHE-RSA-AES128-GCM-SHA256'), 128);
  assert.equal(cipherBits('ECDHE-RSA-AES256-GCM-SHA384'), 256);
  assert.equal(cipherBits('TLS_CHACHA20_POLY1305_SHA256'), 256);
  assert.equal(cipherBits('NULL-SHA256'), 0);
});

test('certificate errors name the parameter; a stalled or garbage handshake is rejected in time', async () => {
  assert.throws(() => serverContext({ certFile: '', keyFile: '' }), /smtpd_tls_cert_file is not set/);
  assert.throws(() => serverContext({ certFile: join(dir, '../nope/x.pem'), keyFile: '' }, 'ssl'), /cannot load the TLS certificate or key \(ssl_cert_file, ssl_key_file\): ENOENT/);
  const crt = join(dir, 'c.pem');
  const key = join(dir, 'k.pem');
  writeSelfSigned(crt, key, { hostname: 'mx.example.test' }, () => {});
  const ctx = serverContext({ certFile: crt, keyFile: key });
  const results: string[] = [];
  const server = createServer((sock) => {
    startServerTls(sock, ctx, 300).then(() => results.push('secure'), (e: Error) => results.push(e.message));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const stalled = connect(port, '127.0.0.1');
  stalled.on('error', () => {});
  const garbage = connect(port, '127.0.0.1', () => { garbage.write('EHLO x\r\n\0\0\0\xff'.repeat(100)); });
  garbage.on('error', () => {});
  for (let i = 0; i < 100 && results.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(results.length, 2);
  assert.ok(results.includes('TLS handshake timeout'), results.join('; '));
  assert.ok(results.some((m) => /wrong version number|packet length|unknown protocol|http|record/i.test(m)), results.join('; '));
  stalled.destroy();
  garbage.destroy();
  server.close();
});
