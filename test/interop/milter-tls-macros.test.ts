/**
 * The milter macros of a TLS client certificate, {cert_subject} and {cert_issuer} (Postfix
 * smtpd_milter.c: the certificate's and its issuer's common names, sent only when the
 * certificate is trusted), with {tls_version}, {cipher} and {cipher_bits}, on real Postfix 3.7's
 * smtpd and on Postern's, both with smtpd_tls_ask_ccert = yes and the same CA in
 * smtpd_tls_CAfile. The python3-milter test milter records the macros of the HELO after
 * STARTTLS. Compared: what the milter saw for a client presenting a certificate of that CA, one
 * presenting a certificate of another CA (no cert macros), and one presenting none.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from '../harness/real-postfix.ts';
import { MilterPair, TestMilter, type Side } from '../harness/milter-kit.ts';
import { LineChat } from '../harness/line-chat.ts';
import { TestCa, type TestLeaf } from '../harness/test-ca.ts';
import { setLogSink } from '../../src/util/msg.ts';

setLogSink(() => {});
const skip = RealPostfix.unavailable() ?? TestMilter.unavailable();

const milters: Partial<Record<Side, TestMilter>> = {};
let pair: MilterPair | undefined;
let dir = '';
let trusted: TestLeaf;
let stranger: TestLeaf;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'milter-tls-'));
  mkdirSync(join(dir, 'ca'));
  mkdirSync(join(dir, 'other'));
  const ca = TestCa.create(join(dir, 'ca'), 'Postern Test CA');
  const other = TestCa.create(join(dir, 'other'), 'Somebody Else CA');
  const server = ca.issue('mx', ['mx.example.test', 'localhost']);
  trusted = ca.issue('client', ['client.example.org'], { eku: 'clientAuth' });
  stranger = other.issue('stranger', ['stranger.example.org'], { eku: 'clientAuth' });
  milters.postfix = await TestMilter.start({});
  milters.postern = await TestMilter.start({});
  pair = await MilterPair.start([
    `smtpd_tls_cert_file = ${server.certFile}`,
    `smtpd_tls_key_file = ${server.keyFile}`,
    `smtpd_tls_CAfile = ${ca.certFile}`,
    'smtpd_tls_security_level = may',
    'smtpd_tls_ask_ccert = yes',
    'smtpd_tls_loglevel = 1',
  ].join('\n'), (side) => `smtpd_milters = ${milters[side]!.spec}`);
});

after(async () => {
  await pair?.stop();
  await milters.postfix?.stop();
  await milters.postern?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The TLS macros of the HELO after STARTTLS, as the milter saw them. */
async function tlsMacros(side: Side, cert?: TestLeaf): Promise<Record<string, unknown>> {
  const m = milters[side]!;
  m.setPlan({});
  const { c } = await LineChat.greet(pair!.ports[side]);
  try {
    assert.match(await c.cmd('EHLO client.example.org'), /^250/);
    assert.match(await c.starttls(cert ? { cert: cert.certFile, key: cert.keyFile } : undefined), /^220/);
    assert.match(await c.cmd('EHLO client.example.org'), /^250/);
    assert.match(await c.cmd('MAIL FROM:<sender@example.org>'), /^250/);
    await c.cmd('QUIT');
  } finally { c.close(); }
  const ev = await m.waitFor('mail');
  const helos = ev.filter((e) => e.ev === 'helo');
  const macros = (helos[helos.length - 1]?.macros ?? {}) as Record<string, unknown>;
  const keys = ['{cert_subject}', '{cert_issuer}', '{tls_version}', '{cipher}', '{cipher_bits}'];
  return Object.fromEntries(keys.filter((k) => k in macros).map((k) => [k, macros[k]]));
}

test('{cert_subject} and {cert_issuer}: sent for a trusted client certificate only, as Postfix', { skip }, async () => {
  for (const [what, cert] of [['trusted', trusted], ['other CA', stranger], ['none', undefined]] as const) {
    const theirs = await tlsMacros('postfix', cert);
    const ours = await tlsMacros('postern', cert);
    assert.deepEqual(ours, theirs, what);
    if (what === 'trusted') {
      assert.equal(ours['{cert_subject}'], 'client.example.org');
      assert.equal(ours['{cert_issuer}'], 'Postern Test CA');
    } else {
      assert.ok(!('{cert_subject}' in ours) && !('{cert_issuer}' in ours), what);
    }
    assert.match(String(ours['{tls_version}']), /^TLSv1\.[23]$/);
  }
});
