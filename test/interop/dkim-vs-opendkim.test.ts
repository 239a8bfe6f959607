/**
 * Postern → real Postfix + OpenDKIM (verifying): mail a Postern user sends arrives at a real
 * Postfix 3.7 whose smtpd runs Debian's opendkim daemon as a milter (Mode v, its unbound
 * resolver forwarding to the test's loopback DNS server, which serves the keys `postern dkim
 * keygen` made), and OpenDKIM's Authentication-Results says dkim=pass for Postern's RSA and
 * Ed25519 signatures. Postfix relays to Postfix's smtp-sink, where the test reads the message.
 *
 *   Postern (submission, SASL) --relayhost--> Postfix smtpd + opendkim milter --relayhost--> smtp-sink
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { PosternSystem } from '../harness/postern-system.ts';
import { RealPostfix } from '../harness/real-postfix.ts';
import { SmtpSink, type SinkMessage } from '../harness/smtp-sink.ts';
import { DnsServer, type Zone } from '../harness/dns-server.ts';
import { freePort } from '../harness/free-port.ts';
import { SYSTEM_PYTHON } from '../harness/dkim-verifiers.ts';
import { dkimRecordValue, listKeys, readSigningKey } from '../../src/lib-authres/dkim-keys.ts';

const skip = RealPostfix.unavailable();
let sys: PosternSystem;
let pf: RealPostfix;
let sink: SmtpSink;
let dns: DnsServer;
let opendkim: ChildProcess;
let odOut = '';
const dir = mkdtempSync(join(tmpdir(), 'dkim-opendkim-'));

async function listening(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => { s.destroy(); res(true); });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`opendkim did not listen on ${port}: ${odOut}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  if (skip) return;
  sys = await PosternSystem.start();
  assert.equal((await sys.cli('dkim', 'keygen', 'example.test')).status, 0);
  const zone: Zone = {};
  for (const k of listKeys(join(sys.configDir, 'dkim'))) zone[`${k.selector}._domainkey.${k.domain}`] = { TXT: [dkimRecordValue(k, readSigningKey(k.file, k.algorithm))] };
  dns = await DnsServer.start(zone);

  const odPort = await freePort();
  writeFileSync(join(dir, 'unbound.conf'), `server:\n  do-ip6: no\n  module-config: "iterator"\n  qname-minimisation: no\nlocal-zone: "test." nodefault\nforward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${dns.port}\n`);
  writeFileSync(join(dir, 'opendkim.conf'), `Mode v\nSocket inet:${odPort}@127.0.0.1\nBackground no\nSyslog no\nAuthservID opendkim.test\nResolverConfiguration ${join(dir, 'unbound.conf')}\n`);
  opendkim = spawn('opendkim', ['-f', '-x', join(dir, 'opendkim.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
  opendkim.stdout!.on('data', (d) => { odOut += d; });
  opendkim.stderr!.on('data', (d) => { odOut += d; });
  await listening(odPort);

  sink = await SmtpSink.start({ host: '127.0.0.3' });
  const pfPort = await freePort();
  pf = await RealPostfix.start({
    mainCf: `mydestination =\nlocal_recipient_maps =\nalias_maps =\nmynetworks = 127.0.0.0/8\nrelayhost = [127.0.0.3]:${sink.port}\n`
      + `smtpd_milters = inet:127.0.0.1:${odPort}\nmilter_default_action = tempfail\n`,
    masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd`,
  });
  const e = (await sys.cli('conf', '-e', `relayhost = [127.0.0.1]:${pfPort}`));
  assert.equal(e.status, 0, e.stderr);
  assert.equal((await sys.cli('reload')).status, 0);
  await new Promise((r) => setTimeout(r, 1000));
});
after(async () => {
  await sys?.destroy();
  await pf?.stop();
  await sink?.stop();
  opendkim?.kill();
  await dns?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function arrived(subject: string, ms = 30_000): Promise<SinkMessage> {
  const end = Date.now() + ms;
  for (;;) {
    const m = (await sink.messages()).find((x) => x.body.toString('latin1').includes(`\nSubject: ${subject}\n`));
    if (m) return m;
    if (Date.now() > end) throw new Error(`"${subject}" did not arrive\n${sys.log.slice(-2000)}\n${odOut}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('OpenDKIM behind real Postfix says dkim=pass for Postern\'s rsa-sha256 and ed25519-sha256 signatures', { skip }, async () => {
  const script = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", ${sys.ports.submission}); c.ehlo("client.example.org"); c.starttls(context=ctx); c.ehlo("client.example.org")
c.login("postmaster@example.test", ${JSON.stringify(sys.password)})
print(c.sendmail("postmaster@example.test", ["someone@elsewhere.example"], sys.stdin.buffer.read()) or "ok")
c.quit()
`;
  const msg = 'From: Postmaster <postmaster@example.test>\r\nTo: someone@elsewhere.example\r\nSubject: to opendkim\r\n'
    + 'Content-Type: text/plain; charset=utf-8\r\n\r\nGrüße, checked by OpenDKIM\r\n';
  const p = spawnSync(SYSTEM_PYTHON, ['-c', script], { input: Buffer.from(msg, 'utf8'), encoding: 'utf8', timeout: 30_000 });
  assert.equal(p.stdout.trim(), 'ok', p.stderr);
  const m = await arrived('to opendkim');
  const text = m.body.toString('latin1');
  const ar = /^Authentication-Results: opendkim\.test;[^\n]*(?:\n[ \t][^\n]*)*/m.exec(text)?.[0];
  assert.ok(ar, `OpenDKIM added its Authentication-Results\n${text.slice(0, 3000)}`);
  const flat = ar.replace(/\s+/g, ' ');
  assert.match(flat, /dkim=pass \(2048-bit key[^)]*\) header\.d=example\.test header\.i=@example\.test header\.a=rsa-sha256 header\.s=postern /, flat);
  assert.match(flat, /dkim=pass (?:\([^)]*\) )?header\.d=example\.test header\.i=@example\.test header\.a=ed25519-sha256 header\.s=postern-ed25519/, flat);
  assert.doesNotMatch(flat, /dkim=(fail|neutral|permerror|temperror)/);
});
