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
import { clockMovedSkip } from '../../test/harness/test-clock.ts';

const run = promisify(execFile);
let dir: string;
let pebble: Pebble;
let sys: PosternSystem;
let httpPort: number;
let pebblePort: number;
let tlsPort: number;
let pebbleTls: TestCa;
/** pebble issues certificates on the kernel's clock; Postern and openssl judge them on theirs. */
const skip = clockMovedSkip('pebble (a Go program) dates certificates by the real clock');

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-acme-'));
  httpPort = await freePort();
  pebblePort = await freePort();
  tlsPort = await freePort();
  pebbleTls = TestCa.create(dir, 'Pebble Listener CA');
  sys = await PosternSystem.start();
});
after(async () => {
  await sys?.destroy();
  await pebble?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
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

test('CA unreachable, then http-01 issuance by pebble, installed under live IMAP and SMTP servers', { skip }, async () => {
  const certFile = join(sys.configDir, 'tls', 'postern.crt');
  const selfSigned = readFileSync(certFile, 'utf8');
  // The embedded default (loopback, self-signed) runs neither the ACME client nor an HTTP listener.
  const keys = (await sys.services()).map((x) => x.key);
  assert.ok(keys.length > 5 && !keys.some((k) => k.startsWith('postern/')), keys.join(' '));
  appendFileSync(join(sys.configDir, 'main.cf'), [
    '', `postern_http_listen = 127.0.0.1:${httpPort}`,
    `postern_acme_directory = https://localhost:${pebblePort}/dir`, `postern_acme_ca_file = ${pebbleTls.certFile}`,
    'postern_acme_names = mail.example.test', 'postern_acme_contact = postmaster@example.test',
    'postern_acme_minimal_backoff_time = 2s', 'postern_metrics = yes', '',
  ].join('\n'));
  assert.equal((await sys.cli('reload')).status, 0);
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

  // Short-lived certificates (40 s), so that the renewal at two thirds of the lifetime comes in the test.
  pebble = await Pebble.start(dir, { httpPort, tlsPort, port: pebblePort, tlsCa: pebbleTls, validitySeconds: 40 });
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
  // The expiry as a metric, on the HTTP service's /metrics page.
  const page = (await run('curl', ['-s', `http://127.0.0.1:${httpPort}/metrics`])).stdout;
  const g = /^postern_tls_certificate_expiry_timestamp_seconds\{file="([^"]+)"\} (\d+)$/m.exec(page);
  assert.ok(g, page.slice(0, 2000));
  assert.equal(Number(g[2]), Math.floor(new Date(installed.validTo).getTime() / 1000));
  assert.match(page, /^postern_acme_renewal_failures 0$/m);
  const status = JSON.parse(readFileSync(join(sys.configDir, 'data', 'lib', 'acme', 'status.json'), 'utf8'));
  assert.equal(status.failures, 0);
  const life = new Date(installed.validTo).getTime() - new Date(installed.validFrom).getTime();
  const next = new Date(status.nextAttempt).getTime() - new Date(installed.validFrom).getTime();
  assert.ok(Math.abs(next - life * 2 / 3) < 2000, 'next renewal at two thirds of the lifetime');
});

const serialOf = async (port: number, extra: string[] = []) => {
  const { stdout } = await run('sh', ['-c', `echo Q | openssl s_client -connect 127.0.0.1:${port} -servername mail.example.test ${extra.join(' ')} 2>/dev/null | openssl x509 -noout -serial -issuer`], { timeout: 20_000 });
  return stdout;
};

test('renewal near expiry by the service; postern cert status; renew --force by dns-01 through a hook; tls-alpn-01 on the HTTPS listener; import', { skip }, async () => {
  const first = await serialOf(sys.ports.imaps);
  // The service renews by itself at two thirds of the 40 s lifetime.
  const installs = () => (sys.log.match(/postern\/acme\[\d+\]: certificate for mail\.example\.test issued by/g) ?? []).length;
  const end = Date.now() + 60_000;
  while (installs() < 2) {
    assert.ok(Date.now() < end, `no renewal near expiry; log:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.match(sys.log, /ordering a certificate for mail\.example\.test from .*: renewal time .* reached/);
  const second = await serialOf(sys.ports.imaps);
  assert.notEqual(second, first);
  assert.match(second, /Pebble Intermediate/);

  const st = (await sys.cli('cert', 'status'));
  assert.equal(st.status, 0, st.stderr);
  assert.match(st.stdout, /^names: mail\.example\.test$/m);
  assert.match(st.stdout, /^issuer: .*Pebble Intermediate/m);
  assert.match(st.stdout, /^next renewal: \d{4}-/m);
  assert.match(st.stdout, /^last success: \d{4}-/m);
  assert.doesNotMatch(st.stdout, /^last error/m, 'a success clears the error of the unreachable CA');

  // dns-01 through a hook that publishes the TXT record in pebble-challtestsrv's DNS.
  const hook = join(dir, 'dns-hook.sh');
  writeFileSync(hook, `#!/bin/sh
case "$1" in set) p=set-txt ;; clear) p=clear-txt ;; *) exit 2 ;; esac
echo "$@" >> ${dir}/hook.log
exec curl -sf -X POST -d "{\\"host\\":\\"$2.\\",\\"value\\":\\"$3\\"}" ${pebble.challtestManagement}/$p
`, { mode: 0o755 });
  appendFileSync(join(sys.configDir, 'main.cf'), `postern_acme_challenges = dns-01\npostern_acme_dns_hook = ${hook}\n`);
  const r = (await sys.cli('cert', 'renew', '--force'));
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^renewed: mail\.example\.test, issued by .*Pebble Intermediate/m);
  assert.match(r.stdout, /reloaded the running mail system/);
  const hookLog = readFileSync(join(dir, 'hook.log'), 'utf8').trim().split('\n');
  assert.match(hookLog[0]!, /^set _acme-challenge\.mail\.example\.test [A-Za-z0-9_-]{43}$/);
  assert.match(hookLog[1]!, /^clear _acme-challenge\.mail\.example\.test [A-Za-z0-9_-]{43}$/);
  let third = '';
  for (let i = 0; i < 50; i++) {
    third = await serialOf(sys.ports.smtp, ['-starttls', 'smtp']);
    if (third !== second) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.notEqual(third, second, 'SMTP STARTTLS presents the dns-01 certificate');

  // tls-alpn-01 on the HTTPS listener: adding postern_https_listen adds the MTA-STS policy
  // host to the names, so the service orders again at once, by tls-alpn-01 for both names.
  appendFileSync(join(sys.configDir, 'main.cf'), `postern_https_listen = 127.0.0.1:${tlsPort}\npostern_mta_sts_domains = example.test\npostern_acme_challenges = tls-alpn-01\n`);
  assert.equal((await sys.cli('reload')).status, 0);
  await sys.waitLog(/postern\/acme\[\d+\]: certificate for mail\.example\.test, mta-sts\.example\.test issued by .*Pebble Intermediate/, 60_000);
  assert.match(sys.log, /ACME tls-alpn-01 challenge for mta-sts\.example\.test ready/);
  // The same HTTPS listener still serves ordinary clients (the MTA-STS policy) after the peeks.
  const sts = await run('curl', ['-s', '--cacert', join(dir, 'pebble-root.pem'), '--resolve', `mta-sts.example.test:${tlsPort}:127.0.0.1`, `https://mta-sts.example.test:${tlsPort}/.well-known/mta-sts.txt`]);
  assert.match(sts.stdout, /^version: STSv1\r\nmode: testing\r\n/);

  // An RSA 2048 certificate (postern_acme_key_type), ordered from the command line.
  appendFileSync(join(sys.configDir, 'main.cf'), 'postern_acme_key_type = rsa-2048\n');
  const rsa = (await sys.cli('cert', 'renew', '--force'));
  assert.equal(rsa.status, 0, rsa.stdout + rsa.stderr);
  let pub = '';
  for (let i = 0; i < 50; i++) {
    pub = (await run('sh', ['-c', `echo Q | openssl s_client -connect 127.0.0.1:${sys.ports.imaps} -servername mail.example.test 2>/dev/null | openssl x509 -noout -text`])).stdout;
    if (/Public-Key: \(2048 bit\)/.test(pub)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.match(pub, /Public Key Algorithm: rsaEncryption/);

  // A certificate from elsewhere, with the ACME client off: a mismatched key is refused, the pair is installed.
  writeFileSync(join(sys.configDir, 'main.cf'), readFileSync(join(sys.configDir, 'main.cf'), 'utf8').replace(/^postern_acme_directory = .*$/m, ''));
  assert.equal((await sys.cli('reload')).status, 0);
  const other = TestCa.create(join(dir), 'Other CA');
  const leaf = other.issue('imported', ['mail.example.test']);
  const bad = (await sys.cli('cert', 'import', leaf.certFile, join(dir, 'pebble-localhost.key')));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /is not the key of/);
  const ok = (await sys.cli('cert', 'import', leaf.certFile, leaf.keyFile));
  assert.equal(ok.status, 0, ok.stderr);
  let now = '';
  for (let i = 0; i < 50; i++) {
    now = await serialOf(sys.ports.imaps);
    if (/Other CA/.test(now)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.match(now, /issuer=CN ?= ?Other CA/);
});
