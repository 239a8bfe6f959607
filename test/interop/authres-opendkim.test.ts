/**
 * authres-opendkim - real Postfix 3.7 with real OpenDKIM (Debian's opendkim, signing milter in
 * smtpd_milters) relaying to Postern (relayhost): the message OpenDKIM signed arrives at Postern
 * from outside and is verified there: dkim=pass, SPF pass for the relaying host, DMARC pass
 * (issue 14, "real Postfix + OpenDKIM (signing) → Postern shows dkim=pass"). DNS for Postern is
 * the loopback server serving OpenDKIM's key as opendkim-genkey wrote it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { freePort } from '../harness/free-port.ts';
import { waitListening } from '../harness/milter-kit.ts';
import { DnsServer } from '../harness/dns-server.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { AUTHSERV_ID, delivered, message, ourAuthres, reconfigure, smtpSend } from '../harness/authres-kit.ts';

const run = promisify(execFile);
const skip = RealPostfix.unavailable() ?? (existsSync('/usr/sbin/opendkim') && existsSync('/usr/sbin/opendkim-genkey') ? undefined : 'Debian packages opendkim and opendkim-tools are not installed');

let dir = '';
let odk: ChildProcess | undefined;
let pf: RealPostfix | undefined;
let dns: DnsServer | undefined;
let sys: PosternSystem | undefined;
let pfPort = 0;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-authres-opendkim-'));
  chmodSync(dir, 0o755);
  await run('/usr/sbin/opendkim-genkey', ['-b', '2048', '-d', 'example.org', '-s', 'odk', '-D', dir]);
  const txt = [...readFileSync(join(dir, 'odk.txt'), 'utf8').matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  dns = await DnsServer.start({
    'example.org': { TXT: ['v=spf1 ip4:127.0.0.0/8 -all'] },
    'odk._domainkey.example.org': { TXT: [txt] },
    '_dmarc.example.org': { TXT: ['v=DMARC1; p=reject; adkim=s'] },
  });
  sys = await PosternSystem.start();
  await reconfigure(sys, `\nmyhostname = ${AUTHSERV_ID}\nmynetworks = 192.0.2.0/24\npostern_dns_servers = 127.0.0.1:${dns.port}\n`);
  const milterPort = await freePort();
  writeFileSync(join(dir, 'KeyTable'), `odk._domainkey.example.org example.org:odk:${dir}/odk.private\n`);
  writeFileSync(join(dir, 'SigningTable'), '*@example.org odk._domainkey.example.org\n');
  writeFileSync(join(dir, 'TrustedHosts'), '127.0.0.1\n::1\n');
  writeFileSync(join(dir, 'opendkim.conf'), [
    'Syslog no', 'Mode s', `Socket inet:${milterPort}@127.0.0.1`, `KeyTable file:${dir}/KeyTable`,
    `SigningTable refile:${dir}/SigningTable`, `InternalHosts ${dir}/TrustedHosts`,
    'Canonicalization relaxed/simple', 'RequireSafeKeys false', `PidFile ${dir}/pid`, 'Background no', '',
  ].join('\n'));
  odk = spawn('/usr/sbin/opendkim', ['-f', '-x', join(dir, 'opendkim.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(milterPort);
  pfPort = await freePort();
  pf = await RealPostfix.start({
    mainCf: [`smtpd_milters = inet:127.0.0.1:${milterPort}`, 'milter_default_action = tempfail',
      `relayhost = [127.0.0.1]:${sys.ports.smtp}`, 'smtp_helo_name = relay.example.org', ''].join('\n'),
    masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd`,
  });
});

after(async () => {
  await pf?.stop();
  odk?.kill('SIGKILL');
  await sys?.destroy();
  await dns?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('OpenDKIM signs in real Postfix, Postfix relays to Postern: dkim=pass, spf=pass, dmarc=pass (strict alignment)', { skip }, async () => {
  const id = `opendkim-${process.pid}`;
  const msg = message(['From: Alice <alice@example.org>', 'To: <postmaster@example.test>', `Subject: ${id}`,
    'Date: Mon, 07 Dec 2026 10:00:00 +0000', `Message-ID: <${id}@example.org>`], 'Hello,\nsigned by OpenDKIM.\n');
  const r = await smtpSend(pfPort, { helo: 'client.example.org', from: 'alice@example.org', msg });
  assert.equal(r.code, 250, r.text);
  const d = await delivered(sys!.maildir('postmaster@example.test'), id, 60_000);
  assert.match(d.text, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example\.org; s=odk;/m, 'OpenDKIM signed it');
  const ar = ourAuthres(d.text);
  assert.equal(ar.length, 1, d.text.slice(0, 3000));
  assert.match(ar[0]!, /dkim=pass header\.i=@example\.org header\.s=odk header\.a=rsa-sha256/);
  assert.match(ar[0]!, /spf=pass [^;]*smtp\.mailfrom=alice@example\.org/);
  assert.match(ar[0]!, /dmarc=pass \(p=REJECT[^)]*\) header\.from=example\.org/);
  assert.equal(d.folder, 'INBOX');
});
