/**
 * STARTTLS (RFC 3207) and implicit TLS (smtpd_tls_wrappermode, RFC 8314) with real TLS clients:
 * Python's ssl/smtplib, openssl s_client, swaks.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { createSmtpd } from './smtpd.ts';
import { smtpdClients } from '../master/master-clients.ts';
import { PERMIT_ALL } from './smtpd-policy.ts';
import { directoryAuth } from './smtpd-sasl.ts';
import { writeSelfSigned } from '../lib-tls/self-signed.ts';
import { LineChat } from '../../test/harness/line-chat.ts';
import { setLogSink } from '../util/msg.ts';
import type { UserDirectory } from '../lib-auth/user-directory.ts';

const run = promisify(execFile);
const logs: string[] = [];
setLogSink((l) => { logs.push(l); });
const dir = mkdtempSync(join(tmpdir(), 'postern-smtpd-tls-'));
const cert = join(dir, 'c.pem');
const key = join(dir, 'k.pem');
writeSelfSigned(cert, key, { hostname: 'mx.example.test', keyType: 'ec' }, () => {});

const fakeDir: UserDirectory = {
  async lookup() { return undefined; },
  async verifyPlain(u, p) { return u === 'alice@example.test' && p === 's3cret' ? { result: 'ok', user: u } : { result: 'mismatch' }; },
  async *iterate() { /* none */ },
  async close() {},
};

const servers: { server: Server; sessions: ReadonlySet<Socket> }[] = [];
after(() => { for (const s of servers) { for (const c of s.sessions) c.destroy(); s.server.close(); } rmSync(dir, { recursive: true, force: true }); });

async function start(extra: string): Promise<{ port: number; queue: MailQueue }> {
  const qdir = mkdtempSync(join(dir, 'q-'));
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_tls_cert_file = ${cert}\nsmtpd_tls_key_file = ${key}\nsmtpd_sasl_auth_enable = yes\n${extra}`, 'main.cf', qdir);
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp', auth: directoryAuth(fakeDir) });
  const server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({ server, sessions: smtpd.sessions });
  return { port: (server.address() as { port: number }).port, queue };
}

test('STARTTLS with Python smtplib: TLS 1.2+, AUTH offered only after TLS with smtpd_tls_auth_only, Received says TLS', async () => {
  const s = await start('smtpd_tls_security_level = may\nsmtpd_tls_auth_only = yes');
  const py = `
import smtplib, ssl
c = smtplib.SMTP("127.0.0.1", ${s.port}); c.ehlo("client.example.org")
print("before", c.has_extn("starttls"), c.has_extn("auth"))
ctx = ssl._create_unverified_context()
c.starttls(context=ctx); c.ehlo("client.example.org")
print("after", c.has_extn("starttls"), c.has_extn("auth"), c.sock.version())
c.login("alice@example.test", "s3cret")
c.sendmail("alice@example.test", ["b@example.test"], b"Subject: tls\\r\\n\\r\\nsecret body\\r\\n")
c.quit()
`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.match(stdout, /before True False/);
  assert.match(stdout, /after False True TLSv1\.[23]/);
  const ids: string[] = [];
  for await (const id of s.queue.list('incoming')) ids.push(id);
  assert.equal(ids.length, 1);
  const qf = await QueueFile.open(s.queue.path('incoming', ids[0]!), ids[0]!);
  assert.equal(qf.attrs.get('sasl_username'), 'alice@example.test');
  const content = (await qf.content()).toString();
  assert.match(content, /^Received: from client\.example\.org \(localhost \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)(\n\t server-signature [^\n]+)?\)\n\t\(No client certificate requested\)\n\tby mx\.example\.test \(Postern\) with ESMTPSA id /);
  assert.ok(logs.some((l) => /Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23] with cipher/.test(l)));
});

test('openssl s_client -starttls smtp completes the handshake; TLS 1.1 is refused', async () => {
  const s = await start('smtpd_tls_security_level = may');
  const sClient = (extra: string[]) => new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('openssl', ['s_client', '-starttls', 'smtp', '-connect', `127.0.0.1:${s.port}`, '-brief', ...extra]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.stdin.end('QUIT\r\n');
    const t = setTimeout(() => p.kill(), 10000);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
  const ok = await sClient([]);
  assert.match(ok.out, /CONNECTION ESTABLISHED[\s\S]*Protocol version: TLSv1\.3/);
  const old = await sClient(['-tls1_1']);
  assert.doesNotMatch(old.out, /CONNECTION ESTABLISHED/);
  assert.notEqual(old.code, 0);
});

test('STARTTLS command injection: plaintext pipelined after STARTTLS is discarded, never executed', async () => {
  const s = await start('smtpd_tls_security_level = may');
  const py = `
import socket, ssl
s = socket.create_connection(("127.0.0.1", ${s.port})); f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO x\\r\\n")
while True:
    l = f.readline()
    if l[3:4] == b" ": break
s.sendall(b"STARTTLS\\r\\nRSET\\r\\nNOOP\\r\\n")
print(f.readline().decode().strip())
t = ssl._create_unverified_context().wrap_socket(s)
t.sendall(b"EHLO y\\r\\n")
tf = t.makefile("rb")
lines = []
while True:
    l = tf.readline().decode().strip(); lines.append(l)
    if l[3:4] == " ": break
print("first-after-tls:", lines[0])
t.sendall(b"QUIT\\r\\n"); print(tf.readline().decode().strip())
`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.match(stdout, /^220 2\.0\.0 Ready to start TLS\n/);
  assert.match(stdout, /first-after-tls: 250-mx\.example\.test\n/, 'the first reply over TLS answers EHLO, not the injected RSET');
  assert.match(stdout, /221 2\.0\.0 Bye/);
  assert.ok(logs.some((l) => /discarding 12 bytes of plaintext sent after STARTTLS/.test(l)));
});

test('smtpd_tls_security_level = encrypt refuses mail before STARTTLS with Postfix\'s text', async () => {
  const s = await start('smtpd_tls_security_level = encrypt');
  const c = await LineChat.open(s.port);
  await c.reply();
  assert.match(await c.cmd('EHLO x'), /250-STARTTLS/);
  assert.equal(await c.cmd('MAIL FROM:<a@example.org>'), '530 5.7.0 Must issue a STARTTLS command first');
  assert.equal(await c.cmd('AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzM2NyZXQ='), '530 5.7.0 Must issue a STARTTLS command first');
  assert.equal(await c.cmd('STARTTLS extra'), '501 5.5.4 Syntax: STARTTLS');
  c.close();
});

test('implicit TLS (smtpd_tls_wrappermode) with swaks --tlsc and Python SMTP_SSL; garbage instead of ClientHello is dropped', async () => {
  const s = await start('smtpd_tls_wrappermode = yes');
  const { stdout } = await run('swaks', ['--server', '127.0.0.1', '--port', String(s.port), '--tlsc', '--from', 'a@example.org', '--to', 'b@example.test', '--auth', 'PLAIN', '--auth-user', 'alice@example.test', '--auth-password', 's3cret']);
  assert.match(stdout, /235 2\.7\.0 Authentication successful/);
  assert.match(stdout, /250 2\.0\.0 Ok: queued as/);
  const garbage = await new Promise<string>((resolve) => {
    const p = spawn('python3', ['-c', `import socket; s=socket.create_connection(("127.0.0.1", ${s.port})); s.sendall(b"HELO garbage\\r\\n"*10); s.settimeout(5)\ntry:\n  print(repr(s.recv(100)))\nexcept Exception as e: print("err", e)`]);
    let out = ''; p.stdout.on('data', (d) => { out += d; }); p.on('close', () => resolve(out));
  });
  assert.match(garbage, /^b''|err/, 'no SMTP banner in plaintext; connection closed');
  const again = await run('python3', ['-c', `import smtplib,ssl; c=smtplib.SMTP_SSL("127.0.0.1", ${s.port}, context=ssl._create_unverified_context()); print(c.noop()); c.quit()`]);
  assert.match(again.stdout, /250/, 'the server keeps serving after a bad handshake');
});

test('client certificates (smtpd_tls_ask_ccert): check_ccert_access and permit_tls_clientcerts with relay_clientcerts, with Python ssl clients', async () => {
  const { SmtpdCheck } = await import('./smtpd-check.ts');
  const { TrivialRewrite } = await import('../trivial-rewrite/trivial-rewrite.ts');
  const { X509Certificate } = await import('node:crypto');
  const { readFileSync, writeFileSync } = await import('node:fs');
  const pair = (n: string) => {
    const c = join(dir, `${n}.crt`); const k = join(dir, `${n}.key`);
    writeSelfSigned(c, k, { hostname: `${n}.example.org`, keyType: 'ec' }, () => {});
    return { c, k, fp: new X509Certificate(readFileSync(c)).fingerprint256 };
  };
  const relay = pair('relayclient');
  const bad = pair('badclient');
  const other = pair('otherclient');
  writeFileSync(join(dir, 'relay_clientcerts'), `${relay.fp} relay-ok\n`);
  writeFileSync(join(dir, 'ccert_access'), `${bad.fp} REJECT certificate revoked\n`);
  const qdir = mkdtempSync(join(dir, 'q-'));
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_tls_cert_file = ${cert}\nsmtpd_tls_key_file = ${key}
smtpd_tls_security_level = may\nsmtpd_tls_ask_ccert = yes\nsmtpd_tls_fingerprint_digest = sha256\nmynetworks = 192.0.2.0/24
mydestination = mx.example.test\nrelay_clientcerts = texthash:${dir}/relay_clientcerts
smtpd_relay_restrictions = permit_tls_clientcerts, reject_unauth_destination
smtpd_recipient_restrictions = check_ccert_access texthash:${dir}/ccert_access, permit\n`, 'main.cf', qdir);
  const queue = new MailQueue(qdir);
  queue.ensureDirs();
  const policy = await SmtpdCheck.open(cfg, { rewrite: await TrivialRewrite.open(cfg) });
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy, service: 'smtp' });
  const server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push({ server, sessions: smtpd.sessions });
  const port = (server.address() as { port: number }).port;
  const py = `
import smtplib, ssl, sys
for chain in sys.argv[2:]:
    ctx = ssl._create_unverified_context()
    if chain != "-":
        c, k = chain.split(",")
        ctx.load_cert_chain(c, k)
    s = smtplib.SMTP("127.0.0.1", int(sys.argv[1])); s.ehlo("client.example.org"); s.starttls(context=ctx); s.ehlo("client.example.org")
    s.mail("a@example.org")
    code, text = s.rcpt("x@elsewhere.example")
    print(code, text.decode())
    s.quit()
`;
  const { stdout } = await run('python3', ['-c', py, String(port), `${relay.c},${relay.k}`, `${bad.c},${bad.k}`, `${other.c},${other.k}`, '-'], { timeout: 30_000 });
  assert.deepEqual(stdout.trim().split('\n'), [
    '250 2.1.5 Ok',
    '554 5.7.1 <badclient.example.org>: Client certificate rejected: certificate revoked',
    '554 5.7.1 <x@elsewhere.example>: Relay access denied',
    '554 5.7.1 <x@elsewhere.example>: Relay access denied',
  ]);
});
