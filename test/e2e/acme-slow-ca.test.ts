/**
 * A slow CA stalls nothing else: a running Postern is pointed (postern_acme_directory) at a
 * loopback server that accepts connections and never answers. While the ACME client waits,
 * SMTP (Python's smtplib), IMAP and the HTTP service answer at once; the attempt ends at
 * postern_acme_timeout with a clear log line and the self-signed certificate stays.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PosternSystem } from '../harness/postern-system.ts';
import { freePort } from '../harness/free-port.ts';

const run = promisify(execFile);
let sys: PosternSystem;
let tarpit: Server;
const held: Socket[] = [];

before(async () => {
  tarpit = createServer((s) => { held.push(s); s.on('error', () => {}); });
  await new Promise<void>((r) => tarpit.listen(0, '127.0.0.1', r));
  sys = await PosternSystem.start();
});
after(async () => {
  await sys?.destroy();
  for (const s of held) s.destroy();
  tarpit.close();
});

test('a CA that never answers: mail and HTTP are served meanwhile; bounded by postern_acme_timeout', async () => {
  const httpPort = await freePort();
  const certFile = join(sys.configDir, 'tls', 'postern.crt');
  const before = readFileSync(certFile, 'utf8');
  appendFileSync(join(sys.configDir, 'main.cf'), [
    '', `postern_http_listen = 127.0.0.1:${httpPort}`,
    `postern_acme_directory = https://127.0.0.1:${(tarpit.address() as { port: number }).port}/dir`,
    'postern_acme_names = mail.example.test', 'postern_acme_timeout = 20s', '',
  ].join('\n'));
  assert.equal((await sys.cli('reload')).status, 0);
  await sys.waitLog(/postern\/acme\[\d+\]: ordering a certificate for mail\.example\.test/, 30_000);
  // The CA holds the connection; everything else answers meanwhile.
  const py = `import smtplib, imaplib
s = smtplib.SMTP('127.0.0.1', ${sys.ports.smtp}, timeout=5); print(s.ehlo()[0]); s.quit()
m = imaplib.IMAP4('127.0.0.1', ${sys.ports.imap}, timeout=5); print(m.noop()[0]); m.logout()`;
  const { stdout } = await run('python3', ['-c', py]);
  assert.deepEqual(stdout.trim().split('\n'), ['250', 'OK']);
  const http = await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', `http://127.0.0.1:${httpPort}/.well-known/acme-challenge/none`]);
  assert.equal(http.stdout, '404');
  assert.ok(held.length >= 1, 'the ACME client is connected to the silent CA');
  assert.doesNotMatch(sys.log, /ACME order for mail\.example\.test failed/, 'served while the CA was still being waited for');
  await sys.waitLog(/postern\/acme\[\d+\]: warning: ACME order for mail\.example\.test failed: no complete answer from the CA to GET https:\/\/127\.0\.0\.1:\d+\/dir within 20s; keeping the installed certificate/, 45_000);
  assert.equal(readFileSync(certFile, 'utf8'), before);
});
