/**
 * smtp(8) STARTTLS against real Postfix 3.7 smtpd (private instance, test/harness/real-postfix.ts)
 * with a self-signed certificate: smtp_tls_security_level = may upgrades when STARTTLS is
 * offered, logs Postfix's "Untrusted TLS connection established to ..." line, and Postfix logs
 * the TLS session on its side; = encrypt defers with Postfix's words when a server (smtp-sink)
 * does not offer STARTTLS; = none never sends STARTTLS.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import type { QueueFile } from '../../src/global/queue-file-reader.ts';
import { queueMessage } from '../harness/queue-message.ts';
import { createSmtpAgent } from '../../src/smtp/smtp.ts';
import { setLogSink } from '../../src/util/msg.ts';
import { writeSelfSigned } from '../../src/lib-tls/self-signed.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { SmtpSink } from '../harness/smtp-sink.ts';
import { freePort } from '../harness/free-port.ts';

const logs: string[] = [];
setLogSink((l) => logs.push(l));
const skip = RealPostfix.unavailable();
const dir = mkdtempSync(join(tmpdir(), 'postern-smtptls-'));
const queue = new MailQueue(join(dir, 'queue'));
queue.ensureDirs();
let pf: RealPostfix | undefined;
let port = 0;

before(async () => {
  if (skip) return;
  port = await freePort();
  writeSelfSigned(join(dir, 'cert.pem'), join(dir, 'key.pem'), { hostname: 'mx.example.test' }, () => {});
  pf = await RealPostfix.start({
    mainCf: `smtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${join(dir, 'cert.pem')}\nsmtpd_tls_key_file = ${join(dir, 'key.pem')}\nsmtpd_tls_loglevel = 1\nmydestination = mx.example.test\nlocal_recipient_maps =\nalias_maps =\n`,
    masterCf: `127.0.0.1:${port} inet n - n - - smtpd`,
  });
});
after(async () => {
  await pf?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function queued(): Promise<QueueFile> {
  return queueMessage(queue, { myhostname: 'client.postern.test', myorigin: 'postern.test', sender: 'sender@postern.test',
    rcpts: [{ address: 'root@mx.example.test', orig: 'root@mx.example.test' }], body: 'Subject: tls\n\nover TLS\n' });
}

const cfg = (extra: string) => MainConfig.parse(`myhostname = client.postern.test\nsmtp_tls_loglevel = 1\n${extra}\n`, join(dir, 'main.cf'), dir);

test('smtp_tls_security_level = may: STARTTLS with real Postfix, Postfix-shaped log line, mail accepted', { skip }, async () => {
  const agent = createSmtpAgent(cfg('smtp_tls_security_level = may'));
  const qf = await queued();
  logs.length = 0;
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: `[127.0.0.1]:${port}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  assert.match(r!.text, /^250 2\.0\.0 Ok: queued as \w+$/);
  assert.ok(logs.some((l) => new RegExp(`smtp\\[\\d+\\]: Untrusted TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}: TLSv1\\.3 with cipher TLS_\\w+ \\((256/256|128/128) bits\\) key-exchange X25519 server-signature RSA-PSS \\(2048 bits\\) server-digest SHA256$`).test(l)), logs.join('\n'));
  // Postfix's side of the same session.
  const deadline = Date.now() + 3000;
  while (!/TLS connection established from \w+\[127\.0\.0\.1\]/.test(pf!.log()) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
  assert.match(pf!.log(), /Anonymous TLS connection established from \w+\[127\.0\.0\.1\]: TLSv1\.3/);
});

test('smtp_tls_security_level = none never sends STARTTLS', { skip }, async () => {
  const agent = createSmtpAgent(cfg(''));
  const qf = await queued();
  logs.length = 0;
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: `[127.0.0.1]:${port}`, recipients: qf.recipients, activeSince: Date.now() });
  await agent.close();
  assert.equal(r!.status, 'sent', r!.text);
  assert.ok(!logs.some((l) => l.includes('TLS connection established')));
});

test('smtp_tls_security_level = encrypt to a server without STARTTLS: deferred 4.7.4, nothing sent', async () => {
  const sink = await SmtpSink.start();
  try {
    const agent = createSmtpAgent(cfg('smtp_tls_security_level = encrypt'));
    const qf = await queued();
    const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: `[127.0.0.1]:${sink.port}`, recipients: qf.recipients, activeSince: Date.now() });
    await agent.close();
    assert.deepEqual([r!.status, r!.dsn, r!.text], ['deferred', '4.7.4', 'TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]']);
    assert.equal(sink.messages().length, 0);
  } finally {
    await sink.stop();
  }
});

test('an invalid TLS level defers with a configuration message instead of sending in clear', async () => {
  const agent = createSmtpAgent(cfg('smtp_tls_security_level = bogus'));
  const qf = await queued();
  const [r] = await agent.deliver({ qf, transport: 'smtp', nexthop: '[127.0.0.1]:1', recipients: qf.recipients, activeSince: Date.now() });
  assert.equal(r!.status, 'deferred');
  assert.equal(r!.text, 'TLS configuration problem: invalid smtp_tls_security_level = bogus');
});
