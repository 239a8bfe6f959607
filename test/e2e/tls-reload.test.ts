/**
 * Certificate reload without restart, end to end: the embedded default system is started, its
 * certificate files (tls/postern.crt, tls/postern.key, used by smtpd_tls_cert_file and Dovecot's
 * ssl_cert) are replaced by a new certificate, `postern reload` is run, and an administrator's
 * checks follow: `openssl s_client -starttls smtp|pop3|lmtp` and an implicit-TLS connection see
 * the new certificate's fingerprint, the master's pid is unchanged, and a TLS session opened
 * before the reload still works (and still has the old certificate).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { PosternSystem } from '../harness/postern-system.ts';
import { generateSelfSigned } from '../../src/lib-tls/self-signed.ts';

let sys: PosternSystem;
before(async () => { sys = await PosternSystem.start(); });
after(async () => { await sys?.destroy(); });

/** The SHA-256 fingerprint `openssl s_client -starttls PROTO` sees (openssl x509 -fingerprint form). */
function opensslFingerprint(proto: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`];
    if (proto) args.push('-starttls', proto);
    const c = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stdin.end();
    const timer = setTimeout(() => c.kill(), 10_000);
    c.on('close', () => {
      clearTimeout(timer);
      const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out);
      if (!m) { reject(new Error(`openssl s_client ${args.join(' ')}: no certificate in:\n${out}`)); return; }
      resolve(new X509Certificate(m[0]).fingerprint256);
    });
  });
}

/** Implicit TLS (submissions): connected, banner read. */
async function tlsSession(port: number): Promise<{ t: TLSSocket; read: () => Promise<string> }> {
  const t = connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  let buf = '';
  let wake: (() => void) | undefined;
  t.on('data', (d) => { buf += d; wake?.(); });
  const read = async (): Promise<string> => {
    while (!/(^|\n)\d{3} [^\n]*\r\n$/.test(buf)) {
      await new Promise<void>((r, j) => { wake = r; setTimeout(() => j(new Error(`no reply; got ${JSON.stringify(buf)}`)), 5000); });
    }
    const s = buf; buf = ''; return s;
  };
  await new Promise<void>((r, j) => { t.once('secureConnect', () => r()); t.once('error', j); });
  return { t, read };
}

test('postern reload serves a replaced certificate to new handshakes; old sessions and the pid stay', async () => {
  const crt = join(sys.configDir, 'tls', 'postern.crt');
  const key = join(sys.configDir, 'tls', 'postern.key');
  const oldFp = new X509Certificate(readFileSync(crt)).fingerprint256;
  assert.equal(await opensslFingerprint('smtp', sys.ports.smtp), oldFp);

  // A session established before the reload.
  const early = await tlsSession(sys.ports.submissions);
  assert.match(await early.read(), /^220 /);
  assert.equal(new X509Certificate(early.t.getPeerCertificate(true).raw).fingerprint256, oldFp);

  const pidBefore = sys.pid;
  const fresh = generateSelfSigned({ hostname: 'reloaded.example.test' });
  const newFp = new X509Certificate(fresh.certPem).fingerprint256;
  assert.notEqual(newFp, oldFp);
  // Replace both files atomically, as an ACME client's deploy hook does.
  writeFileSync(`${key}.new`, fresh.keyPem, { mode: 0o600 });
  writeFileSync(`${crt}.new`, fresh.certPem);
  renameSync(`${key}.new`, key);
  renameSync(`${crt}.new`, crt);

  // Before the reload, the running services still serve the old certificate.
  assert.equal(await opensslFingerprint('smtp', sys.ports.smtp), oldFp);

  const mark = sys.log.length;
  const r = (await sys.cli('reload'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /refreshing the Postern mail system/);
  await sys.waitLog(/reload -- version/);
  // smtpd (3 listeners), pop3d and lmtpd each say so.
  const reloaded = async () => (sys.log.slice(mark).match(/TLS certificate reloaded \([a-z_]+\): .*reloaded\.example\.test/g) ?? []).length;
  for (let i = 0; i < 200 && (await reloaded()) < 3; i++) await new Promise((res) => setTimeout(res, 25));
  assert.ok((await reloaded()) >= 3, sys.log.slice(mark));

  assert.equal(await opensslFingerprint('smtp', sys.ports.smtp), newFp, 'smtpd STARTTLS');
  assert.equal(await opensslFingerprint('', sys.ports.submissions), newFp, 'smtpd wrapper mode (submissions)');
  assert.equal(await opensslFingerprint('pop3', sys.ports.pop3), newFp, 'pop3d STLS');
  assert.equal(await opensslFingerprint('', sys.ports.pop3s), newFp, 'pop3s');
  assert.equal(await opensslFingerprint('lmtp', sys.ports.lmtp), newFp, 'lmtpd STARTTLS');

  // The master was not restarted.
  assert.ok(sys.alive);
  assert.equal(sys.pid, pidBefore);
  assert.match((await sys.cli('status')).stderr, new RegExp(`PID: ${pidBefore}\\b`));

  // The early session still works, on its old certificate.
  early.t.write('EHLO early.example.org\r\n');
  assert.match(await early.read(), /^250-/);
  assert.equal(new X509Certificate(early.t.getPeerCertificate(true).raw).fingerprint256, oldFp);
  early.t.write('QUIT\r\n');
  assert.match(await early.read(), /^221 /);
  early.t.destroy();
});

test('a broken certificate file on reload keeps the previous certificate and says why', async () => {
  const crt = join(sys.configDir, 'tls', 'postern.crt');
  const goodFp = new X509Certificate(readFileSync(crt)).fingerprint256;
  const good = readFileSync(crt);
  const mark = sys.log.length;
  writeFileSync(crt, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  try {
    assert.equal((await sys.cli('reload')).status, 0);
    await sys.waitLog(/TLS certificate reload failed: .*keeping the previous certificate/);
    assert.match(sys.log.slice(mark), /warning: TLS certificate reload failed: bad TLS certificate or key \(smtpd_tls_cert_file=/);
    assert.equal(await opensslFingerprint('smtp', sys.ports.smtp), goodFp);
    assert.equal(await opensslFingerprint('pop3', sys.ports.pop3), goodFp);
    assert.ok(sys.alive);
  } finally {
    writeFileSync(crt, good);
  }
});
