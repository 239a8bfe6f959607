/**
 * DKIM signing end to end, as an administrator sets it up: `postern dkim keygen example.test`
 * and nothing else. Mail of our users leaves signed twice (rsa-sha256 and ed25519-sha256) and
 * the signatures verify with independent verifiers from Debian, python3-dkim (dkimpy) and
 * OpenDKIM (`opendkim -t`), both asking a loopback DNS server (test/harness/dns-server.ts) for
 * the TXT records `postern dns` prints:
 *   - submission port, STARTTLS + SASL (Python smtplib), an 8-bit UTF-8 body, relayed by
 *     Postern's smtp client to Postfix's smtp-sink started without 8BITMIME (-8): the body is
 *     quoted-printable on arrival and the signatures still verify;
 *   - sendmail -t (pickup, the added From:/Date:/Message-Id: are signed);
 *   - a virtual alias that forwards to an outside address;
 * and, hostile: a key readable by others and a key file of garbage are not used, the message
 * goes out unsigned with a warning naming the file, nothing is lost.
 * `postern dns example.test --check` says SIGNING OK and the published keys match.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, existsSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PosternSystem, POSTERN } from '../harness/postern-system.ts';
import { SmtpSink, type SinkMessage } from '../harness/smtp-sink.ts';
import { DnsServer, type Zone } from '../harness/dns-server.ts';
import { opendkimVerify, pythonArcVerify, pythonDkimVerify, SYSTEM_PYTHON } from '../harness/dkim-verifiers.ts';
import { dkimRecordValue, listKeys, readSigningKey } from '../../src/lib-authres/dkim-keys.ts';

let sys: PosternSystem;
let sink: SmtpSink;
let dns: DnsServer;

/** `postern dns DOMAIN --check`, asynchronously: the DNS server it asks runs in this process. */
async function dnsCheck(): Promise<string> {
  const r = await promisify(execFile)(POSTERN, ['-c', sys.configDir, 'dns', 'example.test', '--check'], { timeout: 30_000 }).catch((e: { stdout: string }) => e);
  return r.stdout;
}

before(async () => {
  sink = await SmtpSink.start({ host: '127.0.0.3', args: ['-8'] });   // no 8BITMIME
  sys = await PosternSystem.start();
  const k = (await sys.cli('dkim', 'keygen', 'example.test'));
  assert.equal(k.status, 0, k.stderr);
  assert.equal((await sys.cli('dkim', 'keygen', 'alias.test')).status, 0);
  assert.match(k.stdout, /^postern\._domainkey\.example\.test\. +3600 IN TXT +"v=DKIM1; k=rsa; p=/m);
  const zone: Zone = {};
  const dir = join(sys.configDir, 'dkim');
  for (const key of listKeys(dir)) zone[`${key.selector}._domainkey.${key.domain}`] = { TXT: [dkimRecordValue(key, readSigningKey(key.file, key.algorithm))] };
  assert.equal(Object.keys(zone).length, 4);
  zone['sender.example'] = { TXT: ['v=spf1 ip4:127.0.0.1 -all'] };   // the outside sender of the ARC test
  dns = await DnsServer.start(zone);
  writeFileSync(join(sys.configDir, 'virtual'), 'fwd@alias.test friend@outside.example\n');
  const m = (await sys.cli('map', `hash:${join(sys.configDir, 'virtual')}`));
  assert.equal(m.status, 0, m.stderr);
  const e = (await sys.cli('conf', '-e', `relayhost = [127.0.0.3]:${sink.port}`, 'virtual_alias_domains = alias.test',
    `virtual_alias_maps = hash:${join(sys.configDir, 'virtual')}`, `postern_dns_servers = 127.0.0.1:${dns.port}`,
    // The test's port-25 client (127.0.0.1) is "outside": its mail is not signed; forwarded, it is ARC-sealed.
    'mynetworks = 127.0.0.2/32'));
  assert.equal(e.status, 0, e.stderr);
  await sys.stop();
  sys = await PosternSystem.start(sys);
});
after(async () => {
  await sys?.destroy();
  await sink?.stop();
  await dns?.stop();
});

/** Submission with STARTTLS and AUTH as postmaster@example.test. */
async function submit(rcpt: string, message: string): Promise<string> {
  const script = `
import smtplib, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
c = smtplib.SMTP("127.0.0.1", ${sys.ports.submission}); c.ehlo("client.example.org"); c.starttls(context=ctx); c.ehlo("client.example.org")
c.login("postmaster@example.test", ${JSON.stringify(sys.password)})
refused = c.sendmail("postmaster@example.test", [${JSON.stringify(rcpt)}], sys.stdin.buffer.read())
print("ok" if not refused else refused)
c.quit()
`;
  const p = spawnSync(SYSTEM_PYTHON, ['-c', script], { input: Buffer.from(message, 'utf8'), encoding: 'utf8', timeout: 30_000 });
  assert.equal(p.status, 0, p.stderr);
  return p.stdout.trim();
}

async function arrived(subject: string, ms = 20_000): Promise<SinkMessage> {
  const end = Date.now() + ms;
  for (;;) {
    const m = (await sink.messages()).find((x) => x.body.toString('latin1').includes(`\nSubject: ${subject}\n`));
    if (m) return m;
    if (Date.now() > end) throw new Error(`"${subject}" did not arrive at smtp-sink\n${sys.log.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Both signatures (rsa-sha256, ed25519-sha256, d=example.test) verify with both verifiers. */
async function assertVerifies(msg: Buffer): Promise<void> {
  const py = await pythonDkimVerify(msg, dns.port);
  assert.deepEqual(py.map((v) => [v.a, v.d, v.ok]).sort(), [['ed25519-sha256', 'example.test', true], ['rsa-sha256', 'example.test', true]], JSON.stringify(py));
  const od = await opendkimVerify(msg, dns.port);
  assert.equal(od.length, 2);
  for (const v of od) assert.ok(v.ok, `opendkim: ${v.text}`);
}

test('submission (SASL): an 8-bit body relayed to a server without 8BITMIME arrives quoted-printable and both signatures verify', async () => {
  const msg = 'From: Postmaster <postmaster@example.test>\r\nTo: someone@outside.example\r\nSubject: grüße 8bit\r\n'
    + 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
    + 'Grüße aus Köln — ünïcödé body\r\n  trailing spaces   \r\n\r\n\r\n';
  assert.equal(await submit('someone@outside.example', msg.replace('Subject: grüße 8bit', 'Subject: sasl 8bit')), 'ok');
  const m = await arrived('sasl 8bit');
  assert.doesNotMatch(m.mailArgs, /BODY=8BITMIME/);
  const text = m.body.toString('latin1');
  assert.match(text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.test;/m);
  assert.match(text, /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.test;/m);
  assert.match(text, /h=From:From:To:Subject:Date:Message-Id:MIME-Version:Content-Type:Content-Transfer-Encoding;/, 'From over-signed, the issue\'s fields when present');
  assert.match(text, /\nContent-Transfer-Encoding: quoted-printable\n/);
  assert.ok(!/[\x80-\xff]/.test(text.slice(text.indexOf('\n\n'))), 'the body is 7bit');
  await assertVerifies(m.body);
  // The verifiers are not vacuous: one changed body byte fails every signature with both.
  const forged = Buffer.from(text.replace('Gr=C3=BC', 'Gr=C3=BD'), 'latin1');
  assert.ok((await pythonDkimVerify(forged, dns.port)).every((v) => !v.ok));
  assert.ok((await opendkimVerify(forged, dns.port)).every((v) => !v.ok));
  await sys.waitLog(/: DKIM-Signature field added \(s=postern, d=example\.test\)/);
});

test('sendmail -t: the headers pickup adds are signed and both signatures verify', async () => {
  const p = spawnSync(POSTERN, ['-c', sys.configDir, 'sendmail', '-t', '-f', 'postmaster@example.test'], {
    input: 'To: other@outside.example\nSubject: via sendmail\n\nsent with sendmail(1)\n', encoding: 'utf8', timeout: 30_000,
  });
  assert.equal(p.status, 0, p.stderr);
  const m = await arrived('via sendmail');
  assert.match(m.body.toString('latin1'), /^From: root <postmaster@example\.test>$/m, 'the From: pickup adds, with the full name');
  await assertVerifies(m.body);
});

test('a virtual alias that forwards outside: the signature made after expansion verifies', async () => {
  assert.equal(await submit('fwd@alias.test', 'From: postmaster@example.test\r\nTo: fwd@alias.test\r\nSubject: via alias\r\n\r\nforwarded\r\n'), 'ok');
  const m = await arrived('via alias');
  assert.deepEqual(m.rcptArgs.map((r) => r.replace(/^TO:/i, '')), ['<friend@outside.example>']);
  await assertVerifies(m.body);
});

/**
 * Port 25, no AUTH, from a client outside $mynetworks. Asynchronous: Postern's inbound checks
 * ask the DNS server that runs in this process.
 */
async function sendFromOutside(rcpt: string, message: string): Promise<string> {
  const script = `
import smtplib, sys
c = smtplib.SMTP("127.0.0.1", ${sys.ports.smtp}); c.ehlo("mail.sender.example")
refused = c.sendmail("someone@sender.example", [${JSON.stringify(rcpt)}], sys.stdin.buffer.read())
print("ok" if not refused else refused)
c.quit()
`;
  const child = spawn(SYSTEM_PYTHON, ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  child.stdin.end(Buffer.from(message, 'utf8'));
  const code = await new Promise<number | null>((res) => child.on('close', res));
  assert.equal(code, 0, err);
  return out.trim();
}

test('ARC: mail from outside that a virtual alias forwards is sealed with the alias domain\'s RSA key; python3-dkim validates the chain', async () => {
  const msg = 'From: Someone <someone@sender.example>\r\nTo: fwd@alias.test\r\nSubject: arc forward\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nfrom outside\r\n';
  assert.equal(await sendFromOutside('fwd@alias.test', msg), 'ok');
  const m = await arrived('arc forward');
  const text = m.body.toString('latin1');
  assert.doesNotMatch(text, /^DKIM-Signature:/m, 'mail from outside is not DKIM-signed by us');
  assert.match(text, /^ARC-Seal: i=1; a=rsa-sha256; t=\d+; cv=none; d=alias\.test;\s+s=postern;/m);
  assert.match(text, /^ARC-Authentication-Results: i=1; \S+; /m);
  // The verdict of Postern's inbound checks on arrival (its Authentication-Results) is what the set carries.
  assert.match(text, /^ARC-Authentication-Results: i=1; \S+; .*spf=pass [^;]*smtp\.mailfrom=someone@sender\.example/m);
  const v = await pythonArcVerify(m.body, dns.port);
  assert.equal(v.cv, 'pass', JSON.stringify(v));
  assert.deepEqual(v.sets.map((x) => [x.i, x.d, x.s, x.amsValid, x.asValid]), [[1, 'alias.test', 'postern', true, true]]);
  const tampered = await pythonArcVerify(Buffer.from(text.replace('from outside', 'from 0utside'), 'latin1'), dns.port);
  assert.equal(tampered.cv, 'fail');
  await sys.waitLog(/: ARC-Seal field added \(i=1, s=postern, d=alias\.test\)/);
  // Not forwarded (a local mailbox): no ARC set.
  assert.equal(await sendFromOutside('postmaster@example.test', msg.replace('arc forward', 'arc local')), 'ok');
  const newDir = join(sys.maildir('postmaster@example.test'), 'new');
  const end = Date.now() + 20_000;
  let local: string | undefined;
  while (!local && Date.now() < end) {
    local = existsSync(newDir) ? readdirSync(newDir).map((f) => readFileSync(join(newDir, f), 'latin1')).find((t) => t.includes('\nSubject: arc local\n')) : undefined;
    if (!local) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(local, 'delivered to the local mailbox');
  assert.doesNotMatch(local, /^(ARC-Seal|DKIM-Signature):/m);
});

test('postern dns --check: the published keys match and signing is active', async () => {
  const out = await dnsCheck();
  assert.match(out, /^DKIM postern\._domainkey\.example\.test: OK - k=rsa$/m);
  assert.match(out, /^DKIM postern-ed25519\._domainkey\.example\.test: OK - k=ed25519$/m);
  assert.match(out, /^SIGNING example\.test: OK - active: signs with s=postern \(rsa-sha256\), s=postern-ed25519 \(ed25519-sha256\)/m);
});

test('hostile key files: a key readable by others and a garbage key are not used; mail goes out unsigned, with a warning', async () => {
  const dir = join(sys.configDir, 'dkim');
  const rsa = join(dir, 'example.test.postern.rsa.key');
  const ed = join(dir, 'example.test.postern-ed25519.ed25519.key');
  const edKey = readFileSync(ed);
  chmodSync(rsa, 0o644);
  writeFileSync(ed, 'garbage\0\xff not a key\n');
  try {
    assert.equal(await submit('someone@outside.example', 'From: postmaster@example.test\r\nTo: someone@outside.example\r\nSubject: bad keys\r\n\r\nstill delivered\r\n'), 'ok');
    const m = await arrived('bad keys');
    assert.doesNotMatch(m.body.toString('latin1'), /DKIM-Signature/i);
    assert.match(m.body.toString('latin1'), /\n\nstill delivered\n$/);
    await sys.waitLog(/warning: [0-9A-F]+: DKIM key \S+example\.test\.postern\.rsa\.key: readable or writable by group or others \(mode 0644\): not used; run chmod 600 /);
    await sys.waitLog(/warning: [0-9A-F]+: DKIM key \S+example\.test\.postern-ed25519\.ed25519\.key: not a PEM private key/);
    assert.match(await dnsCheck(), /^SIGNING example\.test: ERROR - no usable key: DKIM key /m);
  } finally {
    chmodSync(rsa, 0o600);
    writeFileSync(ed, edKey, { mode: 0o600 });
  }
  // Fixed: the next message is signed again, without a reload.
  assert.equal(await submit('someone@outside.example', 'From: postmaster@example.test\r\nTo: someone@outside.example\r\nSubject: keys fixed\r\n\r\nsigned again\r\n'), 'ok');
  await assertVerifies((await arrived('keys fixed')).body);
});

