/**
 * smtpd-pair - real Postfix's smtpd and Postern's smtpd side by side, configured from the same
 * main.cf lines, for tests that send both the same dialogue and compare every reply:
 *
 *   const pair = await SmtpdPair.start(SHARED);   // SHARED: main.cf lines both read
 *   pair.pfPort, pair.ourPort;  await pair.stop();
 *
 * Postern's side is createSmtpd in this process (PERMIT_ALL policy, its own queue directory),
 * with Postfix's banner and mail_name so the greetings compare equal.
 */
import { after, before } from 'node:test';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealPostfix } from './real-postfix.ts';
import { freePort } from './free-port.ts';
import { MainConfig } from '../../src/global/mail-conf.ts';
import { MailQueue } from '../../src/global/mail-queue.ts';
import { createSmtpd } from '../../src/smtpd/smtpd.ts';
import { smtpdClients } from '../../src/master/master-clients.ts';
import { PERMIT_ALL } from '../../src/smtpd/smtpd-policy.ts';

export class SmtpdPair {
  readonly pfPort: number;
  readonly ourPort: number;
  private readonly pf: RealPostfix;
  private readonly server: Server;
  private readonly qdir: string;

  private constructor(pfPort: number, ourPort: number, pf: RealPostfix, server: Server, qdir: string) {
    this.pfPort = pfPort;
    this.ourPort = ourPort;
    this.pf = pf;
    this.server = server;
    this.qdir = qdir;
  }

  static async start(shared: string): Promise<SmtpdPair> {
    const pfPort = await freePort();
    const pf = await RealPostfix.start({ mainCf: shared, masterCf: `127.0.0.1:${pfPort} inet n - n - - smtpd` });
    const qdir = mkdtempSync(join(tmpdir(), 'postern-pair-'));
    const cfg = MainConfig.parse(`myhostname = mx.example.test\nsmtpd_banner = $myhostname ESMTP $mail_name\nmail_name = Postfix\n${shared}`, 'main.cf', qdir);
    const queue = new MailQueue(qdir);
    queue.ensureDirs();
    const smtpd = createSmtpd(cfg, { ...smtpdClients, queue, policy: PERMIT_ALL, service: 'smtp' });
    const server = createServer((s) => smtpd.handle(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return new SmtpdPair(pfPort, (server.address() as { port: number }).port, pf, server, qdir);
  }

  async stop(): Promise<void> {
    this.server.close();
    await this.pf.stop();
    rmSync(this.qdir, { recursive: true, force: true });
  }
}

/**
 * The set-up of a differential test file: before() starts a pair on `shared` (unless the file
 * is skipped), after() stops it. The ports are filled in once the pair runs.
 */
export function smtpdPairForFile(shared: string, skip: string | undefined): { pfPort: number; ourPort: number } {
  const ports = { pfPort: 0, ourPort: 0 };
  let pair: SmtpdPair | undefined;
  before(async () => {
    if (skip) return;
    pair = await SmtpdPair.start(shared);
    ports.pfPort = pair.pfPort;
    ports.ourPort = pair.ourPort;
  });
  after(async () => { await pair?.stop(); });
  return ports;
}
