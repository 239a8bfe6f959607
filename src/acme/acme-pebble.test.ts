/**
 * The ACME client end to end against Debian's pebble (test/harness/pebble.ts) on loopback:
 * a running Postern (the embedded default, self-signed) is given postern_acme_directory and
 * postern_http_listen by `postern reload`; it orders by http-01 through its own HTTP service,
 * installs the certificate, and the live IMAP and SMTP servers hand it to new handshakes
 * (`openssl s_client` verifies it against pebble's root) while a session opened before keeps
 * working. Then the CA goes away: a forced renewal fails, the certificate stays, a clear log
 * line and a backoff.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../../test/harness/postern-system.ts';
import { Pebble } from '../../test/harness/pebble.ts';
import { freePort } from '../../test/harness/free-port.ts';
import { TestCa } from '../../test/harness/test-ca.ts';

const run = promisify(execFile);
let dir: string;
let pebble: Pebble;
let sys: PosternSystem;
let httpPort: number;
let pebblePort: number;
let pebbleTls: TestCa;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-acme-'));
  httpPort = await freePort();
  pebblePort = await freePort();
  pebbleTls = TestCa.create(dir, 'Pebble Listener CA');
  sys = await PosternSystem.start();
});
after(async () => {
  await sys?.destroy();
  await pebble?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function lineReader(s: TLSSocket): (re: RegExp) => Promise<string> {
  let buf = '';
  s.on('data', (d) => { buf += d; });
  return async (re) => {
    const end = Date.now() + 10_000;
    while (!re.test(buf)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${re}; got ${buf}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const out = buf; buf = ''; return out;
  };
}

async function sClient(args: string[]): Promise<{ subject: string; issuer: string; verify: string }> {
  const { stdout } = await run('sh', ['-c', `echo Q | openssl s_client ${args.join(' ')} 2>&1`], { timeout: 20_000 });
  return {
    subject: /subject=(.*)/.exec(stdout)?.[1] ?? '',
    issuer: /issuer=(.*)/.exec(stdout)?.[1] ?? '',
    verify: /Verify return code: (.*)/.exec(stdout)?.[1] ?? stdout.slice(-500),
  };
}

test('CA unreachable, then http-01 issuance by pebble, installed under live IMAP and SMTP servers', async () => {
  const certFile = join(sys.configDir, 'tls', 'postern.crt');
  const selfSigned = readFileSync(certFile, 'utf8');
  appendFileSync(join(sys.configDir, 'main.cf'), [
    '', `postern_http_listen = 127.0.0.1:${httpPort}`,
    `postern_acme_directory = https://localhost:${pebblePort}/dir`, `postern_acme_ca_file = ${pebbleTls.certFile}`,
    'postern_acme_names = mail.example.test', 'postern_acme_contact = postmaster@example.test',
    'postern_acme_minimal_backoff_time = 2s', '',
  ].join('\n'));
  assert.equal(sys.cli('reload').status, 0);
  // The CA is not running yet: a clear line, the self-signed certificate stays, a backoff.
  await sys.waitLog(/postern\/acme\[\d+\]: warning: ACME order for mail\.example\.test failed: cannot reach the CA at https:\/\/localhost:\d+\/dir: ECONNREFUSED.*; keeping the installed certificate \(valid until .*\); next attempt in [12]s/, 30_000);
  assert.equal(readFileSync(certFile, 'utf8'), selfSigned);

  // A session opened on the self-signed certificate (after the reload restarted imapd).
  let old: TLSSocket | undefined;
  for (let i = 0; i < 100 && !old; i++) {
    try {
      old = await new Promise<TLSSocket>((res, rej) => { const s = tlsConnect({ host: '127.0.0.1', port: sys.ports.imaps, rejectUnauthorized: false }, () => res(s)); s.on('error', rej); });
    } catch { await new Promise((r) => setTimeout(r, 100)); }
  }
  const readOld = lineReader(old!);
  await readOld(/\* OK/);
  const before = old!.getPeerX509Certificate()!;
  assert.equal(before.issuer, before.subject, 'self-signed at first');

  pebble = await Pebble.start(dir, { httpPort, tlsPort: await freePort(), port: pebblePort, tlsCa: pebbleTls });
  const m = await sys.waitLog(/postern\/acme\[\d+\]: certificate for mail\.example\.test issued by (.*), valid until .*, installed in (\S+); (\d+) TLS services reloaded/, 60_000);
  assert.match(m[1]!, /Pebble Intermediate/);
  assert.ok(Number(m[3]) >= 2, `TLS services reloaded: ${m[3]}`);
  assert.match(sys.log, /ACME http-01 challenge for mail\.example\.test ready/);

  const root = join(dir, 'pebble-root.pem');
  writeFileSync(root, await pebble.rootPem());
  // New handshakes, by a client nobody here wrote, verified against pebble's root.
  const imaps = await sClient(['-connect', `127.0.0.1:${sys.ports.imaps}`, '-servername', 'mail.example.test', '-CAfile', root, '-verify_hostname', 'mail.example.test']);
  assert.equal(imaps.verify, '0 (ok)');
  assert.match(imaps.issuer, /Pebble Intermediate/);
  const smtp = await sClient(['-starttls', 'smtp', '-connect', `127.0.0.1:${sys.ports.smtp}`, '-CAfile', root, '-verify_hostname', 'mail.example.test']);
  assert.equal(smtp.verify, '0 (ok)');

  // The old session still works, on its old certificate.
  old!.write('a1 NOOP\r\n');
  assert.match(await readOld(/a1 /), /a1 OK/);
  old!.end();

  const installed = new X509Certificate(readFileSync(m[2]!));
  const status = JSON.parse(readFileSync(join(sys.configDir, 'data', 'lib', 'acme', 'status.json'), 'utf8'));
  assert.equal(status.failures, 0);
  const life = new Date(installed.validTo).getTime() - new Date(installed.validFrom).getTime();
  const next = new Date(status.nextAttempt).getTime() - new Date(installed.validFrom).getTime();
  assert.ok(Math.abs(next - life * 2 / 3) < 2000, 'next renewal at two thirds of the lifetime');
});
