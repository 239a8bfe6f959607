/**
 * OpenDKIM (Debian's opendkim, a private instance on a loopback port, key in a KeyTable) as a
 * signing milter in smtpd_milters, for real Postfix 3.7 and for Postern with the same main.cf.
 * The DKIM-Signature it adds is verified with python3-dkim against the public key it was
 * generated with (no DNS: the verifier is given the TXT record), in both queued messages, and
 * the two signatures cover the same headers and sit in the same place.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, waitListening, type Side } from '../harness/milter-kit.ts';
import { freePort } from '../harness/free-port.ts';
import { setLogSink } from '../../src/util/msg.ts';

const run = promisify(execFile);
setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? (existsSync('/usr/sbin/opendkim') && existsSync('/usr/sbin/opendkim-genkey') ? undefined : 'Debian packages opendkim and opendkim-tools are not installed');

let dir = '';
let odk: ChildProcess | undefined;
let pair: MilterPair | undefined;
/** A second OpenDKIM that verifies (Mode v), its public key from TestPublicKeys instead of DNS. */
let verifier: ChildProcess | undefined;
let vpair: MilterPair | undefined;
let txt = '';

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'postern-opendkim-'));
  chmodSync(dir, 0o755);
  await run('/usr/sbin/opendkim-genkey', ['-b', '1024', '-d', 'example.org', '-s', 'sel', '-D', dir]);
  // The TXT record's value, for the verifier.
  txt = [...readFileSync(join(dir, 'sel.txt'), 'utf8').matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
  const port = await freePort();
  writeFileSync(join(dir, 'KeyTable'), `sel._domainkey.example.org example.org:sel:${dir}/sel.private\n`);
  writeFileSync(join(dir, 'SigningTable'), '*@example.org sel._domainkey.example.org\n');
  writeFileSync(join(dir, 'TrustedHosts'), '127.0.0.1\n::1\n');
  writeFileSync(join(dir, 'opendkim.conf'), [
    'Syslog no', 'Mode sv', `Socket inet:${port}@127.0.0.1`, `KeyTable file:${dir}/KeyTable`,
    `SigningTable refile:${dir}/SigningTable`, `InternalHosts ${dir}/TrustedHosts`,
    'Canonicalization relaxed/simple', 'RequireSafeKeys false', `PidFile ${dir}/pid`, 'Background no', '',
  ].join('\n'));
  odk = spawn('/usr/sbin/opendkim', ['-f', '-x', join(dir, 'opendkim.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port);
  const vport = await freePort();
  writeFileSync(join(dir, 'TestPublicKeys'), `sel._domainkey.example.org ${txt}\n`);
  writeFileSync(join(dir, 'verify.conf'), [
    'Syslog no', 'Mode v', `Socket inet:${vport}@127.0.0.1`, `TestPublicKeys ${dir}/TestPublicKeys`,
    'AuthservID mx.example.test', `PidFile ${dir}/vpid`, 'Background no', 'AlwaysAddARHeader yes', '',
  ].join('\n'));
  verifier = spawn('/usr/sbin/opendkim', ['-f', '-x', join(dir, 'verify.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(vport);
  vpair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn\nmilter_default_action = tempfail', () => `smtpd_milters = inet:127.0.0.1:${vport}`);
  pair = await MilterPair.start('smtpd_discard_ehlo_keywords = etrn\nmilter_default_action = tempfail', () => `smtpd_milters = inet:127.0.0.1:${port}`);
});

after(async () => {
  await pair?.stop();
  await vpair?.stop();
  odk?.kill('SIGKILL');
  verifier?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const MESSAGE = 'From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: signed by OpenDKIM\nDate: Fri, 27 Nov 2026 10:00:00 +0000\nMessage-ID: <dkim@example.org>\n\nHello Bob,\nthis message is signed.\n';

/** python3-dkim's verdict on a message, with the public key given instead of DNS. */
async function verify(message: string): Promise<string> {
  const py = `
import sys, dkim
msg = sys.stdin.buffer.read().replace(b"\\n", b"\\r\\n")
def dns(name, timeout=5):
    return ${JSON.stringify(txt)}.encode() if name == b"sel._domainkey.example.org." else None
print("pass" if dkim.verify(msg, dnsfunc=dns) else "fail")
`;
  const p = execFile('/usr/bin/python3', ['-c', py]);
  p.stdin!.end(message);
  let out = '';
  p.stdout!.on('data', (d) => { out += String(d); });
  await new Promise((r) => p.on('close', r));
  return out.trim();
}

function headerNames(content: string): string[] {
  return content.slice(0, content.indexOf('\n\n')).split('\n').filter((l) => /^[^ \t]/.test(l)).map((l) => l.slice(0, l.indexOf(':')));
}

function tagH(content: string): string {
  return /DKIM-Signature:[\s\S]*?\bh=([^;]*);/.exec(content)?.[1]?.replace(/\s+/g, '') ?? '';
}

test('OpenDKIM signs through smtpd_milters: the signature verifies, as with Postfix', { skip }, async () => {
  const out = {} as Record<Side, string>;
  for (const side of ['postfix', 'postern'] as const) {
    const r = await pair!.dialogue(side, ['EHLO client.example.org', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.net>', 'DATA', '.'], MESSAGE);
    assert.match(r.replies[5]!, /^250 2\.0\.0 Ok: queued as/, `${side}: ${r.replies.join(' | ')}`);
    out[side] = (await pair!.queued(side, r.queueId!)).content;
  }
  assert.match(out.postern, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example.org;/m);
  assert.equal(await verify(out.postfix), 'pass', 'Postfix-signed message verifies');
  assert.equal(await verify(out.postern), 'pass', 'Postern-signed message verifies');
  assert.deepEqual(headerNames(out.postern), headerNames(out.postfix), 'same header order');
  assert.equal(tagH(out.postern), tagH(out.postfix), 'same signed headers');
  // A change after signing breaks it: the verifier is really checking.
  assert.equal(await verify(out.postern.replace('this message is signed', 'this message was changed')), 'fail');
});

test('OpenDKIM verifies through smtpd_milters: its Authentication-Results header, as with Postfix', { skip }, async () => {
  // A message signed by the signing instance (through Postfix), received from outside.
  const r0 = await pair!.dialogue('postfix', ['EHLO client.example.org', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.net>', 'DATA', '.'], MESSAGE);
  const signed = (await pair!.queued('postfix', r0.queueId!)).content.replace(/^Received: [^\n]*\n(?:[ \t][^\n]*\n)*/, '');
  const ar = {} as Record<Side, string[]>;
  for (const side of ['postfix', 'postern'] as const) {
    for (const [name, msg] of [['good', signed], ['bad', signed.replace('this message is signed', 'this message was changed')]] as const) {
      const r = await vpair!.dialogue(side, ['EHLO client.example.org', 'MAIL FROM:<alice@example.org>', 'RCPT TO:<bob@example.net>', 'DATA', '.'], msg);
      assert.match(r.replies[5]!, /^250 2\.0\.0 Ok: queued as/, `${side}: ${r.replies.join(' | ')}`);
      const content = (await vpair!.queued(side, r.queueId!)).content;
      const lines = content.slice(0, content.indexOf('\n\n')).replace(/\n[ \t]+/g, ' ').split('\n');
      (ar[side] ??= []).push(`${name}: ${lines.filter((l) => /^Authentication-Results: mx\.example\.test; dkim=/.test(l)).map((l) => l.replace(/header\.b="?[^ ;"]*"?/, 'header.b=X')).join(' | ')}`);
    }
  }
  assert.match(ar.postern[0]!, /^good: Authentication-Results: mx\.example\.test; dkim=pass /);
  assert.match(ar.postern[1]!, /^bad: Authentication-Results: mx\.example\.test; dkim=fail /);
  assert.deepEqual(ar.postern, ar.postfix);
});
