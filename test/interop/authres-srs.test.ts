/**
 * authres-srs - the Sender Rewriting Scheme end to end (docs/authres.md, issue 14 item 4): mail
 * from outside (Python's smtplib) to a virtual alias that points to another domain leaves
 * Postern (its smtp client, to Postfix's smtp-sink) with the envelope sender rewritten to
 * SRS0=...@$myhostname, and the bounce to that address coming back (MAIL FROM:<>) is accepted
 * at RCPT and delivered to the original sender. A forged SRS address is refused at RCPT.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DnsServer } from '../harness/dns-server.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { SmtpSink, type SinkMessage } from '../harness/smtp-sink.ts';
import { AUTHSERV_ID, delivered, message, reconfigure, smtpSend } from '../harness/authres-kit.ts';

let dns: DnsServer;
let sys: PosternSystem;
let sink: SmtpSink;

before(async () => {
  dns = await DnsServer.start({
    'origin.test': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
  });
  sink = await SmtpSink.start({ host: '127.0.0.1' });
  sys = await PosternSystem.start();
  writeFileSync(join(sys.configDir, 'virtual'), 'fwd@example.test  someone@remote.test\n');
  writeFileSync(join(sys.configDir, 'transport'), `remote.test  smtp:[127.0.0.1]:${sink.port}\norigin.test  smtp:[127.0.0.1]:${sink.port}\n`);
  await reconfigure(sys, `\nmyhostname = ${AUTHSERV_ID}\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\n`
    + `virtual_alias_maps = texthash:${join(sys.configDir, 'virtual')}\ntransport_maps = texthash:${join(sys.configDir, 'transport')}\n`);
});
after(async () => {
  await sys?.destroy();
  await sink?.stop();
  await dns?.stop();
});

async function sunk(pred: (m: SinkMessage) => boolean, ms = 30_000): Promise<SinkMessage> {
  const end = Date.now() + ms;
  for (;;) {
    const m = (await sink.messages()).find(pred);
    if (m) return m;
    if (Date.now() > end) throw new Error(`smtp-sink got no such message:\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a virtual alias forward to another domain leaves with an SRS0 sender; the bounce to it is accepted and goes back to the original sender', async () => {
  const id = `srs-${process.pid}`;
  const r = await smtpSend(sys.ports.smtp, { helo: 'mail.origin.test', from: 'alice@origin.test', rcpt: 'fwd@example.test',
    msg: message(['From: <alice@origin.test>', 'To: <fwd@example.test>', `Subject: ${id}`]) });
  assert.equal(r.code, 250, r.text);
  const out = await sunk((m) => m.body.includes(id));
  const srs = /<([^>]*)>/.exec(out.mailArgs)?.[1] ?? '';
  assert.match(srs, new RegExp(`^SRS0=[A-Za-z0-9+/]{4}=[A-Z2-7]{2}=origin\\.test=alice@${AUTHSERV_ID.replace(/\./g, '\\.')}$`), out.mailArgs);
  assert.deepEqual(out.rcptArgs.map((a) => /<([^>]*)>/.exec(a)?.[1]), ['someone@remote.test']);
  await sys.waitLog(new RegExp(`srs: sender <alice@origin\\.test> rewritten to <${srs.replace(/[+/.]/g, '\\$&')}>`));
  // The remote side bounces: a DSN to the SRS address, from the null sender.
  const bounceId = `srs-bounce-${process.pid}`;
  const b = await smtpSend(sys.ports.smtp, { helo: 'mx.remote.test', from: '', rcpt: srs,
    msg: message(['From: MAILER-DAEMON@remote.test', `To: <${srs}>`, `Subject: ${bounceId}`], 'Your message could not be delivered.\n') });
  assert.equal(b.code, 250, b.text);
  const back = await sunk((m) => m.body.includes(bounceId));
  assert.deepEqual(back.rcptArgs.map((a) => /<([^>]*)>/.exec(a)?.[1]), ['alice@origin.test']);
  assert.match(back.mailArgs, /^(FROM:)?<>/);
});

test('a forged or damaged SRS address is refused at RCPT as an unknown user; mail to our own users keeps its sender', async () => {
  const forged = `SRS0=AAAA=AB=victim.test=bob@${AUTHSERV_ID}`;
  const r = await smtpSend(sys.ports.smtp, { helo: 'mx.remote.test', from: '', rcpt: forged, msg: message(['Subject: forged']) });
  assert.equal(r.code, 550, r.text);
  assert.match(r.text, /^5\.1\.1 <SRS0=AAAA=AB=victim\.test=bob@mx\.postern\.test>: Recipient address rejected: User unknown in local recipient table$/);
  // Delivered locally: no rewriting (the user's mailbox gets the real sender).
  const id = `srs-local-${process.pid}`;
  const ok = await smtpSend(sys.ports.smtp, { helo: 'mail.origin.test', from: 'alice@origin.test', msg: message(['From: <alice@origin.test>', `Subject: ${id}`]) });
  assert.equal(ok.code, 250);
  const d = await delivered(sys.maildir('postmaster@example.test'), id);
  assert.match(d.text, /^Return-Path: <alice@origin\.test>$/m);
});
