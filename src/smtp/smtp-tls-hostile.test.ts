/**
 * Client STARTTLS against hostile scripted servers on loopback: garbage instead of a TLS
 * handshake, a stalled handshake, STARTTLS refused at a mandatory level, and the STARTTLS
 * response-injection attack (plaintext lines sent right after "220 Ready to start TLS" must not
 * be read as replies inside the TLS session, RFC 3207 §4.2 / CVE-2011-0411 class). None of them
 * may end with the message sent in clear.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { setLogSink } from '../util/msg.ts';
import { generateSelfSigned } from '../lib-tls/self-signed.ts';
import { createSmtpAgent } from './smtp.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const dir = mkdtempSync(join(tmpdir(), 'postern-smtptlsh-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
const servers: Server[] = [];
const socks: Socket[] = [];
after(() => { for (const s of socks) s.destroy(); for (const s of servers) s.close(); rmSync(dir, { recursive: true, force: true }); });
const cert = generateSelfSigned({ hostname: 'mx.example.test', keyType: 'ec' });

type Step = (sock: Socket, line: string) => void;

/** A line-driven plaintext server; `onLine` answers each command line. */
async function server(onLine: Step): Promise<{ port: number; got: string[] }> {
  const got: string[] = [];
  const srv = createServer((sock) => {
    socks.push(sock);
    sock.on('error', () => {});
    sock.write('220 hostile ESMTP\r\n');
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).replace(/\r$/, '');
        buf = buf.slice(i + 1);
        got.push(line);
        if (/^STARTTLS/i.test(line)) sock.off('data', onData);
        onLine(sock, line);
      }
    };
    sock.on('data', onData);
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as { port: number }).port, got };
}

async function queued(): Promise<QueueFile> {
  const c = await CleanupSession.open({ myhostname: 'h', myorigin: 'h', headerSizeLimit: 102400, messageSizeLimit: 10240000, alwaysAddMissingHeaders: false }, queue, { sender: 's@h.test', attrs: {}, addMissingHeaders: false });
  c.addRecipient({ address: 'u@example.test', orig: 'u@example.test' });
  await c.write(Buffer.from('Subject: t\n\nsecret body\n'));
  const res = await c.finish();
  assert.ok('queueId' in res);
  return QueueFile.open(queue.path('incoming', res.queueId), res.queueId);
}

async function deliver(extra: string, port: number) {
  const agent = createSmtpAgent(MainConfig.parse(`myhostname = client.test\nsmtp_starttls_timeout = 1s\nsmtp_helo_timeout = 2s\nsmtp_connection_cache_on_demand = no\nsmtp_tls_loglevel = 1\n${extra}`, join(dir, 'main.cf'), dir));
  const qf = await queued();
  logs.length = 0;
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: `[127.0.0.1]:${port}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  return r!;
}

const ehlo: Step = (sock, line) => {
  if (/^EHLO/i.test(line)) sock.write('250-hostile\r\n250-PIPELINING\r\n250 STARTTLS\r\n');
  else if (/^QUIT/i.test(line)) sock.end('221 bye\r\n');
};

test('garbage instead of a TLS handshake: deferred 4.7.5, never continued in clear', async () => {
  const s = await server((sock, line) => {
    // After the client's ClientHello, answer with plaintext garbage instead of a ServerHello.
    if (/^STARTTLS/i.test(line)) { sock.write('220 go ahead\r\n'); sock.once('data', () => sock.write('this is not TLS at all\r\n\0\0\0\r\n'.repeat(20))); }
    else ehlo(sock, line);
  });
  for (const level of ['may', 'encrypt']) {
    const r = await deliver(`smtp_tls_security_level = ${level}`, s.port);
    assert.equal(r.status, 'deferred', level);
    assert.equal(r.dsn, '4.7.5');
    assert.match(r.text, /^Cannot start TLS: handshake failure/);
  }
  assert.ok(!s.got.some((l) => /^MAIL FROM/i.test(l)), s.got.join('|'));
});

test('a stalled handshake ends at smtp_starttls_timeout', async () => {
  const s = await server((sock, line) => { if (/^STARTTLS/i.test(line)) sock.write('220 go ahead\r\n'); else ehlo(sock, line); });
  const t0 = Date.now();
  const r = await deliver('smtp_tls_security_level = encrypt', s.port);
  assert.equal(r.status, 'deferred');
  assert.match(r.text, /timed out while performing the TLS handshake/);
  assert.ok(Date.now() - t0 < 4000);
});

test('STARTTLS refused at a mandatory level: deferred with the server reply; at may: delivered in clear (Postfix)', async () => {
  const s = await server((sock, line) => {
    if (/^STARTTLS/i.test(line)) {
      sock.write('454 4.7.0 TLS not available due to local problem\r\n');
      // Re-attach a plaintext handler for the rest of the session.
      let buf = '';
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const l = buf.slice(0, i).replace(/\r$/, ''); buf = buf.slice(i + 1);
          if (/^(MAIL|RCPT)/i.test(l)) sock.write('250 ok\r\n');
          else if (/^DATA/i.test(l)) sock.write('354 go\r\n');
          else if (l === '.') sock.write('250 2.0.0 queued\r\n');
          else if (/^QUIT/i.test(l)) sock.end('221 bye\r\n');
          else if (/^RSET/i.test(l)) sock.write('250 ok\r\n');
        }
      });
    } else ehlo(sock, line);
  });
  const r = await deliver('smtp_tls_security_level = verify', s.port);
  assert.deepEqual([r.status, r.dsn, r.text], ['deferred', '4.7.5', 'host 127.0.0.1[127.0.0.1] said: 454 4.7.0 TLS not available due to local problem (in reply to STARTTLS command)']);
  const r2 = await deliver('smtp_tls_security_level = may', s.port);
  assert.equal(r2.status, 'sent', r2.text);
});

test('STARTTLS response injection: plaintext sent after "220 Ready" is discarded, not read as the TLS EHLO reply', async () => {
  let tlsEhlo = '';
  const s = await server((sock, line) => {
    if (!/^STARTTLS/i.test(line)) { ehlo(sock, line); return; }
    // The attack: the 220 and forged replies in one segment, before the TLS handshake.
    sock.write('220 Ready to start TLS\r\n250-forged\r\n250 AUTH PLAIN\r\n554 forged refusal\r\n');
    const t = new TLSSocket(sock, { isServer: true, cert: cert.certPem, key: cert.keyPem });
    t.on('error', () => {});
    let buf = '';
    t.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const l = buf.slice(0, i).replace(/\r$/, ''); buf = buf.slice(i + 1);
        if (/^EHLO/i.test(l)) { tlsEhlo = l; t.write('250-real after TLS\r\n250 PIPELINING\r\n'); }
        else if (/^(MAIL|RCPT|RSET)/i.test(l)) t.write('250 ok\r\n');
        else if (/^DATA/i.test(l)) t.write('354 go\r\n');
        else if (l === '.') t.write('250 2.0.0 Ok: queued as TLSONLY\r\n');
        else if (/^QUIT/i.test(l)) t.end('221 bye\r\n');
      }
    });
  });
  const r = await deliver('smtp_tls_security_level = encrypt', s.port);
  assert.equal(r.status, 'sent', r.text);
  assert.equal(r.text, '250 2.0.0 Ok: queued as TLSONLY');
  assert.equal(tlsEhlo, 'EHLO client.test');
  assert.ok(logs.some((l) => /Untrusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.3 with cipher \S+ \(\d+\/\d+ bits\) key-exchange \S+ server-signature ECDSA \(P-256\) server-digest SHA256$/.test(l)), logs.join('\n'));
});
