/**
 * A new certificate reaches services wherever they run: `postern cert import` (the same
 * install-and-reload path as an ACME renewal) under a running Postern whose smtpd on port 25
 * runs in a child process (postern_process_mode = process) and submission in the master's
 * process; new STARTTLS handshakes on both (openssl s_client) see the new certificate without
 * a restart.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';
import { TestCa } from '../harness/test-ca.ts';

const run = promisify(execFile);
let sys: PosternSystem;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'postern-cert-modes-'));
  sys = await PosternSystem.start();
  await sys.setMasterOption(['smtp'], 'postern_process_mode', 'process');
});
after(async () => {
  await sys?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

const issuer = async (port: number) => {
  try {
    return (await run('sh', ['-c', `echo Q | timeout 10 openssl s_client -starttls smtp -connect 127.0.0.1:${port} 2>/dev/null | openssl x509 -noout -issuer`])).stdout.trim();
  } catch (e) {
    return `no certificate: ${(e as Error).message}`;
  }
};

test('postern cert import: the smtpd child process and the inline submission smtpd present the new certificate', async () => {
  const modes = Object.fromEntries((await sys.services()).map((s) => [s.key.replace(/\/.*$/, '').replace(/^.*:/, ''), s.mode]));
  assert.equal(modes[String(sys.ports.smtp)], 'process');
  assert.equal(modes[String(sys.ports.submission)], 'inline');
  const before = await issuer(sys.ports.smtp);
  assert.doesNotMatch(before, /Postern Test CA/);
  const leaf = TestCa.create(dir).issue('imported', ['mail.example.test']);
  const r = (await sys.cli('cert', 'import', leaf.certFile, leaf.keyFile));
  assert.equal(r.status, 0, r.stderr);
  let smtp = ''; let sub = '';
  for (let i = 0; i < 100; i++) {
    smtp = await issuer(sys.ports.smtp);
    sub = await issuer(sys.ports.submission);
    if (/Postern Test CA/.test(smtp) && /Postern Test CA/.test(sub)) break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.match(smtp, /issuer=CN ?= ?Postern Test CA/, sys.log.slice(-3000));
  assert.match(sub, /issuer=CN ?= ?Postern Test CA/);
  // The services were not restarted for it.
  assert.doesNotMatch(sys.log.slice(sys.log.lastIndexOf('reload -- version')), /exit status|daemon started/);
});
