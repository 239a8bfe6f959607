/**
 * Fuzz regression (target smtpd-session): a client that pipelines MAIL and RCPT and then
 * disconnects (FIN, no QUIT) leaves a temporary queue file in incoming/ and an open file
 * descriptor in smtpd, every time ("Warning: Closing file descriptor N on garbage
 * collection"). The RCPT handler awaits deps.openCleanup(); the connection's close() runs
 * abortTx() meanwhile, finds no cleanup session yet, and the one that then arrives is never
 * aborted. A stranger can fill the queue directory and exhaust smtpd's descriptors this way.
 * Postfix's smtpd removes the queue file on "lost connection after RCPT".
 */

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../../../src/global/mail-conf.ts';
import { MailQueue } from '../../../src/global/mail-queue.ts';
import { createSmtpd } from '../../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../../src/smtpd/smtpd-policy.ts';
import { setLogSink } from '../../../src/util/msg.ts';

setLogSink(() => {});
const dir = mkdtempSync(join(tmpdir(), 'postern-fuzz-reg-smtpd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('MAIL + RCPT then disconnect: no temporary queue file is left in incoming/', async () => {
  const cfg = MainConfig.parse(`myhostname = mx.example.test\nqueue_directory = ${dir}\n`, 'main.cf', dir);
  const queue = new MailQueue(dir);
  queue.ensureDirs();
  const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
  const server = createServer((s) => smtpd.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((r) => {
        const c = connect(port, '127.0.0.1');
        c.on('data', () => {});
        c.on('close', () => r());
        c.end('EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.test>\r\n');
      });
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(readdirSync(join(dir, 'incoming')), [], 'incoming/ is empty after five aborted transactions');
  } finally {
    for (const s of smtpd.sessions) s.destroy();
    await new Promise((r) => server.close(r));
  }
});
