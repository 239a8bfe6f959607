/**
 * tls-provider / tls-dovecot: certificates chosen by SNI from dovecot.conf `local_name` blocks
 * (checked with `openssl s_client -servername`), reload on file change only, a broken file kept
 * out, and hostile dovecot.conf TLS settings answered with file and line.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDovecotConf } from '../global/dovecot-conf.ts';
import { generateSelfSigned } from './self-signed.ts';
import { dovecotSniNames, dovecotTlsProvider } from './tls-dovecot.ts';
import { fileTlsProvider, reloadTlsContexts } from './tls-provider.ts';
import { startServerTls, TlsConfigError, type TlsContextSource } from './tls-server.ts';

const dir = mkdtempSync(join(tmpdir(), 'postern-tlsprov-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function certFiles(name: string): { crt: string; key: string; fp: string } {
  const c = generateSelfSigned({ hostname: name });
  const crt = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(crt, c.certPem);
  writeFileSync(key, c.keyPem, { mode: 0o600 });
  return { crt, key, fp: new X509Certificate(c.certPem).fingerprint256 };
}

/** A TLS-from-the-first-byte server on the provider; closed by the caller. */
async function serve(source: TlsContextSource): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => {
    startServerTls(sock, source, 5000).then((t) => { t.end('hello\r\n'); }, () => sock.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** The SHA-256 fingerprint of the certificate `openssl s_client` (with `extra` args, e.g. -starttls smtp) is given. */
function opensslFp(port: number, servername?: string, extra: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['s_client', ...extra, '-connect', `127.0.0.1:${port}`];
    if (servername) args.push('-servername', servername); else args.push('-noservername');
    const c = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stdin.end();
    c.on('close', () => {
      const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out);
      if (m) resolve(new X509Certificate(m[0]).fingerprint256); else reject(new Error(out));
    });
  });
}

test('dovecot.conf local_name blocks: the SNI name picks the certificate; others get the default', async () => {
  const def = certFiles('default.example.test');
  const mail = certFiles('mail.example.com');
  const multi = certFiles('imap.example.com');
  const wild = certFiles('wild.example.net');
  const conf = parseDovecotConf([
    'ssl = yes', `ssl_cert = <${def.crt}`, `ssl_key = <${def.key}`,
    'local_name mail.example.com {', `  ssl_cert = <${mail.crt}`, `  ssl_key = <${mail.key}`, '}',
    'local_name "imap.example.com pop.example.com" {', `  ssl_cert = <${multi.crt}`, `  ssl_key = <${multi.key}`, '}',
    'local_name *.example.net {', `  ssl_cert = <${wild.crt}`, `  ssl_key = <${wild.key}`, '}',
    'protocol imap {', '  local_name mail.example.com {', `    ssl_cert = <${multi.crt}`, `    ssl_key = <${multi.key}`, '  }', '}',
  ].join('\n') + '\n', join(dir, 'dovecot.conf'));
  const p = dovecotTlsProvider(conf, 'pop3')!;
  const { server, port } = await serve(p);
  try {
    assert.equal(await opensslFp(port, 'mail.example.com'), mail.fp);
    assert.equal(await opensslFp(port, 'MAIL.Example.COM'), mail.fp);
    assert.equal(await opensslFp(port, 'pop.example.com'), multi.fp);
    assert.equal(await opensslFp(port, 'a.example.net'), wild.fp);
    assert.equal(await opensslFp(port, 'a.b.example.net'), def.fp, 'a wildcard covers one label');
    assert.equal(await opensslFp(port, 'other.example.org'), def.fp);
    assert.equal(await opensslFp(port), def.fp, 'no SNI');
  } finally {
    p.close();
    server.close();
  }
  // The protocol imap { local_name } block wins for imap only.
  assert.equal(dovecotSniNames(conf, 'imap').find((n) => n.name === 'mail.example.com')!.cert, multi.crt);
  assert.equal(dovecotSniNames(conf, 'pop3').find((n) => n.name === 'mail.example.com')!.cert, mail.crt);
});

test('reload: unchanged files are not reloaded; a changed certificate is; a broken one is kept out', async () => {
  const a = certFiles('reload.example.test');
  const p = fileTlsProvider({ certFile: a.crt, keyFile: a.key }, 'smtpd_tls');
  const { server, port } = await serve(p);
  try {
    assert.equal(p.reload(), 'unchanged');
    const b = generateSelfSigned({ hostname: 'reload2.example.test' });
    writeFileSync(a.crt, b.certPem);
    writeFileSync(a.key, b.keyPem);
    assert.equal(reloadTlsContexts() >= 1, true);
    assert.equal(p.generation, 1);
    assert.equal(await opensslFp(port), new X509Certificate(b.certPem).fingerprint256);
    // A key that does not match the certificate: the previous pair stays in use.
    writeFileSync(a.key, generateSelfSigned({ hostname: 'other.example.test' }).keyPem);
    assert.equal(p.reload(), 'failed');
    assert.equal(p.generation, 1);
    assert.equal(await opensslFp(port), new X509Certificate(b.certPem).fingerprint256);
  } finally {
    p.close();
    server.close();
  }
});

test('missing files and bad local_name settings are errors naming the file and line', () => {
  assert.throws(() => fileTlsProvider({ certFile: join(dir, 'nope.crt'), keyFile: join(dir, 'nope.key') }, 'smtpd_tls'),
    /cannot load the TLS certificate or key \(smtpd_tls_cert_file, smtpd_tls_key_file\): ENOENT.*nope\.crt/);
  const def = certFiles('def2.example.test');
  const file = join(dir, 'bad.conf');
  const bad = parseDovecotConf([
    'ssl = yes', `ssl_cert = <${def.crt}`, `ssl_key = <${def.key}`,
    'local_name mail.example.com {', '  ssl_cert = </nonexistent/../../etc/x.crt', '}',
  ].join('\n') + '\n', file);
  assert.throws(() => dovecotTlsProvider(bad, 'pop3'), (e: Error) => e instanceof TlsConfigError && e.message.includes(`${file}, line 4: local_name mail.example.com:`) && /ENOENT/.test(e.message));
  const noLt = parseDovecotConf([
    'ssl = yes', `ssl_cert = <${def.crt}`, `ssl_key = <${def.key}`,
    'local_name mail.example.com {', `  ssl_cert = ${def.crt}`, '}',
  ].join('\n') + '\n', file);
  assert.throws(() => dovecotTlsProvider(noLt, 'pop3'), new RegExp(`${file}, line 4: ssl_cert must name a file: ssl_cert = <`));
  // ssl = no: no TLS at all, whatever the certificates.
  assert.equal(dovecotTlsProvider(parseDovecotConf(`ssl = no\nssl_cert = <${def.crt}\n`, file), 'pop3'), undefined);
  // Relative paths are relative to the file holding the block.
  const rel = parseDovecotConf([
    'ssl = yes', `ssl_cert = <${def.crt}`, `ssl_key = <${def.key}`,
    'local_name x.example.com {', '  ssl_cert = <def2.example.test.crt', '  ssl_key = <def2.example.test.key', '}',
  ].join('\n') + '\n', file);
  assert.equal(dovecotSniNames(rel, 'pop3')[0]!.cert, def.crt);
});

test('smtpd tls_server_sni_maps: the SNI name, then its parent domains with a leading dot; others get the default', async () => {
  const { MainConfig } = await import('../global/mail-conf.ts');
  const { MailQueue } = await import('../global/mail-queue.ts');
  const { createSmtpd } = await import('../smtpd/smtpd.ts');
  const { smtpdClients } = await import('../master/master-clients.ts');
  const { PERMIT_ALL } = await import('../smtpd/smtpd-policy.ts');
  const def = certFiles('smtp-default.example.test');
  const mail = certFiles('mail.example.com');
  const org = certFiles('any.example.org');
  // smtpd_tls_chain_files form: the key, then the certificate, in one file.
  const chain = (c: { crt: string; key: string }, name: string) => {
    const f = join(dir, `${name}.pem`);
    writeFileSync(f, readFileSync(c.key, 'utf8') + readFileSync(c.crt, 'utf8'));
    return f;
  };
  writeFileSync(join(dir, 'sni'), `mail.example.com ${chain(mail, 'mail-chain')}\n.example.org ${chain(org, 'org-chain')}\nbroken.example.com ${join(dir, 'missing.pem')}\n`);
  const qdir = mkdtempSync(join(dir, 'q-'));
  const cfg = MainConfig.parse([`smtpd_tls_cert_file = ${def.crt}`, `smtpd_tls_key_file = ${def.key}`, 'smtpd_tls_security_level = may',
    `tls_server_sni_maps = texthash:${join(dir, 'sni')}`].join('\n') + '\n', 'main.cf', qdir);
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
  const server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const fp = (name?: string) => opensslFp(port, name, ['-starttls', 'smtp']);
  try {
    assert.equal(await fp('mail.example.com'), mail.fp);
    assert.equal(await fp('a.b.example.org'), org.fp, 'parent domain .example.org');
    assert.equal(await fp('example.org'), def.fp, '.example.org does not match example.org itself');
    assert.equal(await fp('other.example.com'), def.fp);
    assert.equal(await fp(), def.fp);
    assert.equal(await fp('broken.example.com'), def.fp, 'a missing file: the default certificate');
    assert.equal(await fp('bad_name..example.com'), def.fp);
  } finally {
    for (const c of smtpd.sessions) c.destroy();
    server.close();
  }
});
