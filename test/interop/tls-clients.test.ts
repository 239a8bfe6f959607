/**
 * Server TLS against TLS clients nobody here wrote, on the embedded default system:
 *   - Postfix's posttls-finger against smtpd: the session and certificate it reports, and the
 *     line Postern's smtpd logs (Postfix 3.7's shape);
 *   - openssl s_client -starttls pop3 / -starttls lmtp: the handshake, then commands over TLS;
 *   - hostile clients: stalled handshakes time out (smtpd_starttls_timeout) while other clients
 *     are served, garbage instead of a ClientHello, a client-initiated renegotiation, TLS 1.0/1.1;
 *   - `encrypt` levels: submission's 530 before STARTTLS; Dovecot's `ssl = required` refuses a
 *     POP3 plaintext login from another address with Dovecot's text, and accepts it after STLS.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { PosternSystem } from '../harness/postern-system.ts';

let sys: PosternSystem;
let certFp: string;
before(async () => {
  sys = await PosternSystem.start();
  certFp = new X509Certificate(readFileSync(join(sys.configDir, 'tls', 'postern.crt'))).fingerprint256;
});
after(async () => { await sys?.destroy(); });

interface Run { status: number | null; out: string }

/** openssl s_client; `lines` are sent one by one, `gapMs` apart, after the handshake. */
function sClient(args: string[], lines: string[] = [], gapMs = 300): Promise<Run> {
  return new Promise((resolve) => {
    const c = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.stderr.on('data', (d) => { out += d; });
    c.stdin.on('error', () => {});
    let i = 0;
    const next = () => {
      if (i >= lines.length) { setTimeout(() => c.stdin.end(), gapMs); return; }
      c.stdin.write(`${lines[i++]}\n`);
      setTimeout(next, gapMs);
    };
    setTimeout(next, gapMs * 2);
    const timer = setTimeout(() => c.kill(), 15_000);
    c.on('close', (status) => { clearTimeout(timer); resolve({ status, out }); });
  });
}

/** A line-oriented plaintext client (optionally from another loopback address). */
async function lineClient(port: number, localAddress?: string) {
  let sock: Socket = netConnect({ host: '127.0.0.1', port, ...(localAddress ? { localAddress } : {}) });
  let buf = '';
  let wake: (() => void) | undefined;
  const onData = (d: Buffer) => { buf += d.toString('latin1'); wake?.(); };
  sock.on('data', onData);
  await new Promise<void>((r, j) => { sock.once('connect', () => r()); sock.once('error', j); });
  const line = async (): Promise<string> => {
    const end = Date.now() + 5000;
    while (!buf.includes('\n')) {
      if (Date.now() > end) throw new Error(`no line; have ${JSON.stringify(buf)}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 100); });
    }
    const i = buf.indexOf('\n');
    const l = buf.slice(0, i + 1); buf = buf.slice(i + 1); return l;
  };
  return {
    line,
    send: (s: string) => { sock.write(s); },
    async cmd(s: string): Promise<string> { sock.write(`${s}\r\n`); return line(); },
    async startTls(): Promise<void> {
      sock.off('data', onData);
      const t = tlsConnect({ socket: sock, rejectUnauthorized: false });
      await new Promise<void>((r, j) => { t.once('secureConnect', () => r()); t.once('error', j); });
      t.on('data', onData);
      sock = t;
    },
    close: () => sock.destroy(),
  };
}

/** Set main.cf parameters and reload; wait until the reload is logged. */
async function postconfAndReload(lines: string): Promise<void> {
  appendFileSync(join(sys.configDir, 'main.cf'), lines);
  const mark = sys.log.length;
  assert.equal((await sys.cli('reload')).status, 0);
  for (let i = 0; i < 400 && !/reload -- version/.test(sys.log.slice(mark)); i++) await new Promise((r) => setTimeout(r, 25));
  await new Promise((r) => setTimeout(r, 300)); // services restart after the log line
}

test("posttls-finger (Postfix's TLS probe) reports the TLS session and Postern's certificate", async () => {
  const conf = join(sys.dir, 'posttls-finger');
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, 'main.cf'), 'compatibility_level = 3.6\n');
  const mark = sys.log.length;
  const r = spawnSync('/usr/sbin/posttls-finger', ['-c', '-l', 'may', '-L', 'summary,certmatch', `[127.0.0.1]:${sys.ports.smtp}`],
    { env: { ...process.env, MAIL_CONFIG: conf }, encoding: 'utf8', timeout: 20_000 });
  const out = r.stdout + r.stderr;
  assert.equal(r.status, 0, out);
  assert.match(out, new RegExp(`127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${sys.ports.smtp}: subject_CN=\\S+, issuer_CN=\\S+, fingerprint=${certFp}`));
  assert.match(out, /Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\) key-exchange \S+ server-signature RSA-PSS \(2048 bits\) server-digest SHA256/);
  // Postern's smtpd logs what Postfix 3.7's smtpd logs (key-exchange is not known to a Node server).
  await sys.waitLog(/Anonymous TLS connection established from \S+\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\) server-signature RSA-PSS \(2048 bits\) server-digest SHA256/);
  assert.ok(sys.log.length > mark);
});

test('openssl s_client -starttls pop3 and -starttls lmtp: handshake, then commands over TLS', async () => {
  const pop = await sClient(['-starttls', 'pop3', '-crlf', '-connect', `127.0.0.1:${sys.ports.pop3}`], ['CAPA', 'quit']);
  assert.match(pop.out, /New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384/);
  assert.match(pop.out, /\+OK\r?\n(CAPA|TOP|USER|UIDL|RESP-CODES|PIPELINING|SASL|AUTH-RESP-CODE|TOP)/);
  assert.doesNotMatch(pop.out.slice(pop.out.indexOf('+OK')), /^STLS/m, 'STLS is not offered again over TLS');

  const lmtp = await sClient(['-starttls', 'lmtp', '-crlf', '-connect', `127.0.0.1:${sys.ports.lmtp}`], ['LHLO client.example.org', 'STARTTLS', 'quit']);
  assert.match(lmtp.out, /New, TLSv1\.3, Cipher is TLS_AES_256_GCM_SHA384/);
  assert.match(lmtp.out, /250 PIPELINING/, 'LHLO over TLS does not list STARTTLS');
  assert.match(lmtp.out, /502 5\.5\.1 TLS is already active\./);
  assert.match(lmtp.out, /221 2\.0\.0 Bye/);

  // In plaintext, LHLO lists STARTTLS (Dovecot 2.3 with ssl = yes and a certificate).
  const c = await lineClient(sys.ports.lmtp);
  assert.match(await c.line(), /^220 /);
  c.send('LHLO x\r\n');
  const lhlo: string[] = [];
  for (let l = await c.line(); ; l = await c.line()) { lhlo.push(l.trim()); if (/^250 /.test(l)) break; }
  assert.deepEqual(lhlo.slice(1), ['250-8BITMIME', '250-ENHANCEDSTATUSCODES', '250-PIPELINING', '250 STARTTLS']);
  // Plaintext pipelined behind STARTTLS is never executed (command injection).
  c.send('STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n');
  assert.equal((await c.line()).trim(), '220 2.0.0 Begin TLS negotiation now.');
  await c.startTls();
  assert.equal((await c.cmd('RCPT TO:<postmaster@example.test>')).trim(), '503 5.5.0 MAIL needed first');
  c.close();
  await sys.waitLog(/discarding plaintext pipelined after STARTTLS/);
});

test('stalled TLS handshakes time out (smtpd_starttls_timeout) while other clients are served; garbage is refused', async () => {
  await postconfAndReload('smtpd_starttls_timeout = 2s\n');
  const mark = sys.log.length;
  const stalled: Socket[] = [];
  const closedAt: number[] = [];
  const t0 = Date.now();
  for (let i = 0; i < 20; i++) {
    // Implicit TLS (submissions): connect and send nothing.
    const s = netConnect({ host: '127.0.0.1', port: sys.ports.submissions });
    s.on('error', () => {});
    s.on('close', () => closedAt.push(Date.now() - t0));
    stalled.push(s);
  }
  // STARTTLS, then no ClientHello.
  const st = await lineClient(sys.ports.smtp);
  assert.match(await st.line(), /^220 /);
  assert.match(await st.cmd('STARTTLS'), /^220 2\.0\.0 Ready to start TLS/);
  // Meanwhile a legitimate client is served at once.
  const t1 = Date.now();
  const ok = await sClient(['-connect', `127.0.0.1:${sys.ports.submissions}`, '-crlf'], ['EHLO ok.example.org', 'quit'], 150);
  assert.match(ok.out, /250-/);
  assert.ok(Date.now() - t1 < 5000);
  // Garbage instead of a ClientHello.
  const g = netConnect({ host: '127.0.0.1', port: sys.ports.submissions });
  let gotBack = '';
  g.on('data', (d) => { gotBack += d.toString('latin1'); });
  g.on('error', () => {});
  g.write('GET / HTTP/1.0\r\nHost: example\r\n\r\n');
  await new Promise<void>((r) => g.once('close', () => r()));
  assert.doesNotMatch(gotBack, /^220/, 'no SMTP greeting in clear on the implicit-TLS port');
  for (let i = 0; i < 200 && closedAt.length < 20; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(closedAt.length, 20, 'every stalled handshake was closed');
  assert.ok(Math.max(...closedAt) < 6000 && Math.min(...closedAt) >= 1500, `closed after ${closedAt.join(',')} ms`);
  await sys.waitLog(/SSL_accept error from unknown\[127\.0\.0\.1\]: TLS handshake timeout/);
  assert.match(sys.log.slice(mark), /SSL_accept error from \S+\[127\.0\.0\.1\]: TLS handshake timeout/);
  assert.match(sys.log.slice(mark), /SSL_accept error from unknown\[127\.0\.0\.1\]: .*(wrong version number|http request|packet length|unknown protocol)/i);
  st.close();
  for (const s of stalled) s.destroy();
});

test('a client-initiated renegotiation ends the connection; TLS 1.0 and 1.1 are refused', async () => {
  const mark = sys.log.length;
  const r = await sClient(['-tls1_2', '-starttls', 'smtp', '-crlf', '-connect', `127.0.0.1:${sys.ports.smtp}`], ['EHLO a.example.org', 'R', 'noop', 'noop'], 400);
  assert.match(r.out, /New, TLSv1\.2/);
  assert.match(r.out, /RENEGOTIATING/);
  assert.doesNotMatch(r.out.slice(r.out.indexOf('RENEGOTIATING')), /250 2\.0\.0 Ok/, 'nothing is answered after the renegotiation attempt');
  await sys.waitLog(/warning: 127\.0\.0\.1: TLS renegotiation attempt refused, connection closed \(ERR_TLS_RENEGOTIATION_DISABLED\)/);
  assert.ok(sys.log.length > mark);
  for (const v of ['-tls1', '-tls1_1']) {
    for (const [proto, port] of [['smtp', sys.ports.smtp], ['pop3', sys.ports.pop3], ['lmtp', sys.ports.lmtp]] as const) {
      const old = await sClient([v, '-cipher', 'DEFAULT@SECLEVEL=0', '-starttls', proto, '-connect', `127.0.0.1:${port}`], [], 100);
      assert.notEqual(old.status, 0, `${v} ${proto}`);
      assert.match(old.out, /alert protocol version|unsupported protocol|no protocols available/, `${v} ${proto}: ${old.out}`);
      assert.doesNotMatch(old.out, /New, TLSv1(\.1)?,/);
    }
  }
});

test('encrypt levels: submission says 530 before STARTTLS; ssl = required refuses a POP3 plaintext login', async () => {
  const s = await lineClient(sys.ports.submission);
  assert.match(await s.line(), /^220 /);
  s.send('EHLO x.example.org\r\n');
  for (let l = await s.line(); !/^250 /.test(l); l = await s.line());
  assert.equal((await s.cmd('MAIL FROM:<a@example.org>')).trim(), '530 5.7.0 Must issue a STARTTLS command first');
  s.close();

  const dc = join(sys.configDir, 'dovecot.conf');
  writeFileSync(dc, readFileSync(dc, 'utf8').replace(/^ssl = yes$/m, 'ssl = required'));
  assert.match(readFileSync(dc, 'utf8'), /^ssl = required$/m);
  await postconfAndReload('');
  // From 127.0.0.2 to 127.0.0.1: not a local connection, so not "secured" (Dovecot's rule).
  const p = await lineClient(sys.ports.pop3, '127.0.0.2');
  assert.match(await p.line(), /^\+OK/);
  assert.equal((await p.cmd('USER postmaster@example.test')).trim(), '-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.');
  assert.match(await p.cmd('STLS'), /^\+OK Begin TLS negotiation now\./);
  await p.startTls();
  assert.match(await p.cmd('USER postmaster@example.test'), /^\+OK/);
  assert.match(await p.cmd(`PASS ${sys.password}`), /^\+OK Logged in\./);
  assert.match(await p.cmd('QUIT'), /^\+OK/);
  p.close();
});
